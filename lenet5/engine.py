"""A fast per-pattern training engine for the exact paper model, compiled with numba.

It runs the paper's inner loop (forward, back-propagation, SDLM update w -= eps_k dE_p/dw_k after
every pattern) for a whole pass in compiled code, with no Python between patterns. The PyTorch model
in model.py stays the definition: tests check that this engine makes the same steps from the same
weights and sample order (tests/test_engine.py).

The engine updates the model's parameters in place (it works on numpy views of the torch tensors).

Layout trick: a valid 5x5 convolution of an H x W map is computed on the flattened map with row
stride W, giving rows of W outputs of which the last 4 are junk: never read by the next layer, and
given zero gradient in the backward pass. The inner loops then
run over long contiguous stretches (892 for C1, 136 for C3), which the compiler vectorises.
"""

from __future__ import annotations

import math
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from .config import SQUASH_A, SQUASH_S

try:  # numba is an optional dependency (the 'fast' extra); without it the torch engine is used
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only where numba is missing
    HAVE_NUMBA = False

    def njit(*args, **kwargs):
        def wrap(f):
            return f

        return wrap if not args or not callable(args[0]) else args[0]


A = np.float32(SQUASH_A)
S = np.float32(SQUASH_S)
AS = np.float32(SQUASH_A * SQUASH_S)
S_OVER_A = np.float32(SQUASH_S / SQUASH_A)
K = 5  # kernel side of C1, C3, C5
GRADIENT_CHUNKS = 4  # mini-batch gradients are summed in this many fixed parts, in parallel

# Field and map sizes (Fig. 2). "W" is a row stride of the wide layout.
W0, H1, H2, W2, H3, H4 = 32, 28, 14, 14, 10, 5
N1 = (H1 - 1) * W0 + H1  # 892: wide length of a C1 map (28 rows of stride 32, last row without junk)
N3 = (H3 - 1) * W2 + H3  # 136: wide length of a C3 map (10 rows of stride 14)


# tanh(x) ~ x P(x^2) / Q(x^2) on |x| <= 9 (tanh(9) = 1 - 3e-8), a rational fit we made for this engine
# (scripts/fit_tanh.py). Evaluated in float64 it is within 5e-8 of the true tanh over the whole range, i.e.
# as close as float32 tanh itself, and unlike the libm call it vectorises: this doubles the engine's speed.
TANH_P = (0.9999999794537106, 0.1338104442556436, 0.0034956104956636973, 2.060945304084818e-05, 1.3355180822101977e-08)
TANH_Q = (1.0, 0.46714360019636053, 0.02587706715130944, 0.00032856715060239404, 7.776769649665261e-07)


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _tanh(x):
    x = min(max(np.float64(x), -9.0), 9.0)
    x2 = x * x
    num = TANH_P[0] + x2 * (TANH_P[1] + x2 * (TANH_P[2] + x2 * (TANH_P[3] + x2 * TANH_P[4])))
    den = TANH_Q[0] + x2 * (TANH_Q[1] + x2 * (TANH_Q[2] + x2 * (TANH_Q[3] + x2 * TANH_Q[4])))
    return np.float32(x * num / den)


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _squash(a):
    return A * _tanh(S * a)


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _forward(xf, weights, table_out, table_in, prototypes, buffers):  # pragma: no cover - compiled
    """The forward pass of one pattern (xf: the flattened 32x32 field) into ``buffers``. Returns the argmin."""
    c1w, c1b, s2w, s2b, c3w, c3b, s4w, s4b, c5w, c5b, f6w, f6b = weights
    o1, o2, o3, o4, o5, o6, d1, d2, d3, d4, d5, d6, pen, sum2, sum4 = buffers
    # C1: 6 maps, wide layout (6, 892), row stride 32
    for m in range(6):
        w = c1w[m, 0]
        b = c1b[m]
        for t in range(N1):
            o1[m, t] = b
        for ki in range(K):  # one kernel row per sweep: 5 taps per load/store of the output
            w0, w1, w2, w3, w4 = w[ki, 0], w[ki, 1], w[ki, 2], w[ki, 3], w[ki, 4]
            off = ki * W0
            for t in range(N1):
                o1[m, t] += (
                    w0 * xf[off + t]
                    + w1 * xf[off + t + 1]
                    + w2 * xf[off + t + 2]
                    + w3 * xf[off + t + 3]
                    + w4 * xf[off + t + 4]
                )
        for t in range(N1):
            o1[m, t] = _squash(o1[m, t])
    # S2: sum of 2x2 blocks * coefficient + bias -> (6, 14*14)
    for m in range(6):
        for i in range(H2):
            for jj in range(W2):
                r = 2 * i * W0 + 2 * jj
                s = o1[m, r] + o1[m, r + 1] + o1[m, r + W0] + o1[m, r + W0 + 1]
                sum2[m, i * W2 + jj] = s
                o2[m, i * W2 + jj] = _squash(s2w[m] * s + s2b[m])
    # C3: the connections of Table I, wide layout (16, 136), row stride 14
    for o in range(16):
        for t in range(N3):
            o3[o, t] = c3b[o]
    for k in range(table_out.shape[0]):
        o, c = table_out[k], table_in[k]
        w = c3w[k]
        for ki in range(K):
            w0, w1, w2, w3, w4 = w[ki, 0], w[ki, 1], w[ki, 2], w[ki, 3], w[ki, 4]
            src = o2[c, ki * W2 :]
            dst = o3[o]
            for t in range(N3):
                dst[t] += w0 * src[t] + w1 * src[t + 1] + w2 * src[t + 2] + w3 * src[t + 3] + w4 * src[t + 4]
    for o in range(16):
        for t in range(N3):
            o3[o, t] = _squash(o3[o, t])
    # S4 -> (16, 25)
    for m in range(16):
        for i in range(H4):
            for jj in range(H4):
                r = 2 * i * W2 + 2 * jj
                s = o3[m, r] + o3[m, r + 1] + o3[m, r + W2] + o3[m, r + W2 + 1]
                sum4[m, i * H4 + jj] = s
                o4[m, i * H4 + jj] = _squash(s4w[m] * s + s4b[m])
    o4f = o4.reshape(400)  # in (map, row, col) order, as C5's kernels
    # C5: 120 units, each a dot product over 400 inputs
    for u in range(120):
        wu = c5w[u].reshape(400)
        acc = c5b[u]
        for t in range(400):
            acc += wu[t] * o4f[t]
        o5[u] = _squash(acc)
    # F6: 84 units over 120 inputs
    for u in range(84):
        acc = f6b[u]
        for t in range(120):
            acc += f6w[u, t] * o5[t]
        o6[u] = _squash(acc)
    # RBF penalties
    best = 0
    for c in range(10):
        acc = np.float32(0.0)
        for t in range(84):
            diff = o6[t] - prototypes[c, t]
            acc += diff * diff
        pen[c] = acc
        if pen[c] < pen[best]:
            best = c
    return best


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _output_gradient(label, prototypes, loss_kind, j, buffers):  # pragma: no cover - compiled
    """The loss of the pattern in ``buffers`` and dE/d(F6 outputs) into d6. Returns the loss."""
    o6, d6, pen = buffers[5], buffers[11], buffers[12]
    if loss_kind == 0:  # Eq. 8: E = y_D
        for t in range(84):
            d6[t] = 2.0 * (o6[t] - prototypes[label, t])
        return pen[label]
    # Eq. 9: E = y_D + log(e^-j + sum_i e^-y_i); dE/dy_i = [i == D] - q_i
    lo = -j  # the largest exponent, so that every exp() below is <= 1 and the sum >= 1 (log-sum-exp)
    for c in range(10):
        lo = max(lo, -pen[c])
    total = math.exp(-j - lo)
    for c in range(10):
        total += math.exp(-pen[c] - lo)
    for t in range(84):
        d6[t] = 0.0
    for c in range(10):
        g = np.float32((1.0 if c == label else 0.0) - math.exp(-pen[c] - lo) / total)
        for t in range(84):
            d6[t] += g * 2.0 * (o6[t] - prototypes[c, t])
    return pen[label] + lo + math.log(total)


@njit(cache=True, error_model="numpy", fastmath=True, inline="always")
def _backward(xf, weights, out, update, table_out, table_in, buffers):  # pragma: no cover - compiled
    """Back-propagate d6 through the network.

    update=True: ``out`` holds the step sizes eps_k and each weight is updated in place as soon as its
    gradient is known (each layer's input gradient uses the weights before their update), the paper's
    per-pattern SDLM step. update=False: ``out`` holds gradient accumulators and the weights are unchanged.
    """
    c1w, c1b, s2w, s2b, c3w, c3b, s4w, s4b, c5w, c5b, f6w, f6b = weights
    e1w, e1b, e2w, e2b, e3w, e3b, e4w, e4b, e5w, e5b, e6w, e6b = out
    o1, o2, o3, o4, o5, o6, d1, d2, d3, d4, d5, d6, pen, sum2, sum4 = buffers
    o4f = o4.reshape(400)
    # F6
    for u in range(84):
        d6[u] *= S * (A - o6[u] * o6[u] / A)  # f'(a) from f(a): S (A - f^2 / A)
    for t in range(120):
        d5[t] = 0.0
    for u in range(84):
        g = d6[u]
        for t in range(120):
            d5[t] += f6w[u, t] * g
        if update:
            for t in range(120):
                f6w[u, t] -= e6w[u, t] * g * o5[t]
            f6b[u] -= e6b[u] * g
        else:
            for t in range(120):
                e6w[u, t] += g * o5[t]
            e6b[u] += g
    # C5
    for u in range(120):
        d5[u] *= S * (A - o5[u] * o5[u] / A)
    for t in range(400):
        d4[t] = 0.0
    for u in range(120):
        g = d5[u]
        wu = c5w[u].reshape(400)
        eu = e5w[u].reshape(400)
        for t in range(400):
            d4[t] += wu[t] * g
        if update:
            for t in range(400):
                wu[t] -= eu[t] * g * o4f[t]
            c5b[u] -= e5b[u] * g
        else:
            for t in range(400):
                eu[t] += g * o4f[t]
            e5b[u] += g
    # S4: d4 is laid out (16, 25)
    for m in range(16):
        gw = np.float32(0.0)
        gb = np.float32(0.0)
        for t in range(25):
            v = o4[m, t]
            g = d4[m * 25 + t] * S * (A - v * v / A)
            gw += g * sum4[m, t]
            gb += g
            d4[m * 25 + t] = g * s4w[m]  # gradient reaching each of the 4 summed inputs
        if update:
            s4w[m] -= e4w[m] * gw
            s4b[m] -= e4b[m] * gb
        else:
            e4w[m] += gw
            e4b[m] += gb
    # into C3's wide maps (junk columns stay zero)
    for m in range(16):
        for t in range(N3):
            d3[m, t] = 0.0
        for i in range(H4):
            for jj in range(H4):
                g = d4[m * 25 + i * H4 + jj]
                r = 2 * i * W2 + 2 * jj
                d3[m, r] = g
                d3[m, r + 1] = g
                d3[m, r + W2] = g
                d3[m, r + W2 + 1] = g
        gb = np.float32(0.0)
        for t in range(N3):
            v = o3[m, t]
            d3[m, t] *= S * (A - v * v / A)
            gb += d3[m, t]
        if update:
            c3b[m] -= e3b[m] * gb
        else:
            e3b[m] += gb
    # C3: input gradient into S2's maps, then the weights
    for c in range(6):
        for t in range(H2 * W2):
            d2[c, t] = 0.0
    for k in range(table_out.shape[0]):
        o, c = table_out[k], table_in[k]
        for ki in range(K):
            for kj in range(K):
                off = ki * W2 + kj
                w = c3w[k, ki, kj]
                g = np.float32(0.0)
                for t in range(N3):
                    d2[c, off + t] += w * d3[o, t]
                    g += d3[o, t] * o2[c, off + t]
                if update:
                    c3w[k, ki, kj] = w - e3w[k, ki, kj] * g
                else:
                    e3w[k, ki, kj] += g
    # S2
    for m in range(6):
        gw = np.float32(0.0)
        gb = np.float32(0.0)
        for t in range(H2 * W2):
            v = o2[m, t]
            g = d2[m, t] * S * (A - v * v / A)
            gw += g * sum2[m, t]
            gb += g
            d2[m, t] = g * s2w[m]
        if update:
            s2w[m] -= e2w[m] * gw
            s2b[m] -= e2b[m] * gb
        else:
            e2w[m] += gw
            e2b[m] += gb
    # into C1's wide maps, then C1's weights
    for m in range(6):
        for t in range(N1):
            d1[m, t] = 0.0
        for i in range(H2):
            for jj in range(W2):
                g = d2[m, i * W2 + jj]
                r = 2 * i * W0 + 2 * jj
                d1[m, r] = g
                d1[m, r + 1] = g
                d1[m, r + W0] = g
                d1[m, r + W0 + 1] = g
        gb = np.float32(0.0)
        for t in range(N1):
            v = o1[m, t]
            d1[m, t] *= S * (A - v * v / A)
            gb += d1[m, t]
        if update:
            c1b[m] -= e1b[m] * gb
        else:
            e1b[m] += gb
        for ki in range(K):
            for kj in range(K):
                off = ki * W0 + kj
                g = np.float32(0.0)
                for t in range(N1):
                    g += d1[m, t] * xf[off + t]
                if update:
                    c1w[m, 0, ki, kj] -= e1w[m, 0, ki, kj] * g
                else:
                    e1w[m, 0, ki, kj] += g


@njit(cache=True, error_model="numpy", fastmath=True, nogil=True)
def _patterns(
    xs, labels, weights, out, update, table_out, table_in, prototypes, loss_kind, j, buffers
):  # pragma: no cover - compiled
    """Forward and back-propagation over xs (N, 32, 32) in order. With ``update``, ``out`` holds the step sizes
    and every pattern makes its SDLM update (the paper's per-pattern training); without, the per-pattern
    gradients are summed into ``out`` (zeroed by the caller; a mini-batch chunk). Returns (loss sum, errors).
    Runs without the GIL: the engine runs one chunk of a mini-batch per thread."""
    loss_sum = 0.0
    errors = 0
    for p in range(xs.shape[0]):
        xf = xs[p].reshape(1024)
        pred = _forward(xf, weights, table_out, table_in, prototypes, buffers)
        loss_sum += _output_gradient(labels[p], prototypes, loss_kind, j, buffers)
        errors += pred != labels[p]
        _backward(xf, weights, out, update, table_out, table_in, buffers)
    return loss_sum, errors


@njit(cache=True, error_model="numpy", fastmath=True, nogil=True)
def _infer_chunk(xs, weights, table_out, table_in, prototypes, buffers, penalties):  # pragma: no cover - compiled
    """Penalties (N, 10) of xs (N, 32, 32). Runs without the GIL: the engine runs one chunk per thread."""
    for p in range(xs.shape[0]):
        _forward(xs[p].reshape(1024), weights, table_out, table_in, prototypes, buffers)
        penalties[p] = buffers[12]


def _buffers():
    """One pattern's work space: activations, their gradients, the penalties, S2/S4 input sums."""
    f = np.float32
    return (
        np.zeros((6, N1), f), np.zeros((6, H2 * W2), f), np.zeros((16, N3), f), np.zeros((16, 25), f),
        np.zeros(120, f), np.zeros(84, f),
        np.zeros((6, N1), f), np.zeros((6, H2 * W2), f), np.zeros((16, N3), f), np.zeros(400, f),
        np.zeros(120, f), np.zeros(84, f),
        np.zeros(10, f), np.zeros((6, H2 * W2), f), np.zeros((16, 25), f),
    )  # fmt: skip


def _pool(threads: int) -> ThreadPoolExecutor:
    """A process-wide pool of ``threads`` worker threads for the engine's chunks (made once per size).

    Python threads calling ``nogil`` kernels rather than numba's ``parallel=True``: a parallel numba function
    computed other float32 sums when freshly compiled than when loaded from numba's cache (so the first run
    on a machine differed from the next), and numba's OpenMP layer reset the thread count torch reads."""
    with _POOL_LOCK:
        if threads not in _POOLS:
            _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="lenet5-engine")
        return _POOLS[threads]


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()


class NumbaEngine:
    """Per-pattern SDLM passes, mini-batch gradients and inference for a :class:`~lenet5.model.LeNet5`,
    in compiled code.

    Args:
        model: a LeNet5 on the CPU in float32 (any C3 table); its parameters are updated in place.
        loss: 'mse' (Eq. 8) or 'map' (Eq. 9).
        j: the constant of Eq. 9.
        threads: parallel chunks for inference (0 = torch's thread count).
    """

    def __init__(self, model, loss: str = "map", j: float = 0.1, threads: int = 0) -> None:
        if not HAVE_NUMBA:
            raise RuntimeError("the numba engine needs numba: pip install 'lenet5[fast]' (or numba)")
        params = list(model.parameters())
        if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
            raise ValueError("the numba engine needs a float32 model on the CPU")
        if loss not in ("mse", "map"):
            raise ValueError(f"unknown loss {loss!r}; expected mse or map")
        self.model = model
        self.loss_kind = {"mse": 0, "map": 1}[loss]
        self.j = float(j)
        self.weights = tuple(p.detach().numpy() for p in params)  # views: updates land in the model
        self.table_out = model.c3.out_index.numpy().astype(np.int64)
        self.table_in = model.c3.in_index.numpy().astype(np.int64)
        self.prototypes = model.output.prototypes.numpy().astype(np.float32)
        self.buffers = _buffers()
        self.threads = max(1, threads or torch.get_num_threads())
        self.chunk_buffers = [self.buffers]  # one work space per parallel chunk, more made on first use
        self.steps = None

    def _chunk_buffers(self, n: int) -> list[tuple]:
        while len(self.chunk_buffers) < n:
            self.chunk_buffers.append(_buffers())
        return self.chunk_buffers[:n]

    def _run_chunks(self, kernel, n: int, chunks: int) -> list:
        """kernel(chunk, start, stop, buffers) for ``chunks`` consecutive parts of range(n), on up to
        ``self.threads`` threads; the results in chunk order."""
        bounds = [(c, c * n // chunks, (c + 1) * n // chunks, buf) for c, buf in enumerate(self._chunk_buffers(chunks))]
        workers = min(chunks, self.threads)
        if workers == 1:
            return [kernel(*b) for b in bounds]
        return [f.result() for f in [_pool(workers).submit(kernel, *b) for b in bounds]]

    def set_steps(self, steps: list[torch.Tensor]) -> None:
        """The per-parameter step sizes eta / (mu + h_kk) (from ``SDLM.step_sizes()``), in parameter order."""
        self.steps = tuple(np.ascontiguousarray(s.detach().cpu().numpy(), dtype=np.float32) for s in steps)

    @staticmethod
    def _inputs(xs, labels=None):
        if isinstance(xs, torch.Tensor):
            xs = xs.detach().cpu().numpy()  # a view when possible: no copy of a whole training set
        xs = np.ascontiguousarray(xs.reshape(-1, 32, 32), dtype=np.float32)
        if labels is None:
            return xs
        return xs, np.ascontiguousarray(np.asarray(labels, dtype=np.int64))

    def train(self, xs, labels) -> tuple[float, int]:
        """Per-pattern updates over ``xs`` (N, 1, 32, 32), in the given order.

        Returns:
            (loss sum, running errors).
        """
        if self.steps is None:
            raise RuntimeError("call set_steps() before train()")
        xs, labels = self._inputs(xs, labels)
        loss, errors = _patterns(
            xs, labels, self.weights, self.steps, True, self.table_out, self.table_in, self.prototypes,
            self.loss_kind, np.float32(self.j), self.buffers,
        )  # fmt: skip
        return float(loss), int(errors)

    def gradients(self, xs, labels) -> tuple[float, int, list[np.ndarray]]:
        """The summed per-pattern gradients over a mini-batch, computed in parallel chunks.

        Returns:
            (loss sum, errors, gradients in parameter order).
        """
        xs, labels = self._inputs(xs, labels)
        # A fixed number of chunks (not the thread count) fixes the order of the float sums, so the result
        # does not depend on how many threads run them: a resumed run on another machine takes the same steps.
        chunks = max(1, min(GRADIENT_CHUNKS, len(xs)))
        grads = [tuple(np.zeros_like(w) for w in self.weights) for _ in range(chunks)]

        def kernel(chunk: int, a: int, b: int, buffers: tuple):
            return _patterns(
                xs[a:b], labels[a:b], self.weights, grads[chunk], False, self.table_out, self.table_in, self.prototypes,
                self.loss_kind, np.float32(self.j), buffers,
            )  # fmt: skip

        results = self._run_chunks(kernel, len(xs), chunks)
        loss, errors = sum(r[0] for r in results), sum(int(r[1]) for r in results)
        total = [sum(g[k] for g in grads) for k in range(len(self.weights))]
        return float(loss), int(errors), total

    def train_batch(self, xs, labels, scale: float = 1.0) -> tuple[float, int]:
        """One SDLM step on a mini-batch: w -= scale * eps_k * (sum of per-pattern gradients)."""
        if self.steps is None:
            raise RuntimeError("call set_steps() before train_batch()")
        loss, errors, grads = self.gradients(xs, labels)
        for w, e, g in zip(self.weights, self.steps, grads, strict=True):
            w -= np.float32(scale) * e * g
        return loss, errors

    def infer(self, xs) -> np.ndarray:
        """The ten penalties of every pattern, (N, 10) float32, computed in parallel chunks."""
        xs = self._inputs(xs)
        out = np.empty((len(xs), 10), np.float32)
        chunks = max(1, min(self.threads, len(xs) // 64))  # small inputs are not worth waking threads for

        def kernel(chunk: int, a: int, b: int, buffers: tuple) -> None:
            _infer_chunk(xs[a:b], self.weights, self.table_out, self.table_in, self.prototypes, buffers, out[a:b])

        self._run_chunks(kernel, len(xs), chunks)
        return out


# ---- the engine behind LeNet5.forward at inference ----------------------------------------------------

_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (key, NumbaEngine)
_LOCK = threading.Lock()  # the engines' work space is shared: one inference at a time


def _is_tracing() -> bool:
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def fast_forward(model, x: torch.Tensor) -> torch.Tensor | None:
    """The penalties of ``x`` from the compiled engine, or None where it does not apply.

    It applies to the paper's LeNet-5 (either C3 table) with float32 weights on the CPU, for a plain float32
    (N, 1, 32, 32) CPU tensor, when no gradient is wanted, nothing is tracing or exporting the model, and no
    forward hook is registered on it. The engine works on views of the model's weights, so in-place updates
    are seen; it is rebuilt when the parameters or the prototypes are replaced or changed.
    """
    if not HAVE_NUMBA or getattr(model.config, "arch", None) != "lenet5" or _is_tracing():
        return None
    if type(x) is not torch.Tensor or x.dtype != torch.float32 or x.device.type != "cpu" or x.dim() != 4:
        return None
    if tuple(x.shape[1:]) != (1, 32, 32):
        return None
    params = list(model.parameters())
    if torch.is_grad_enabled() and (x.requires_grad or any(p.requires_grad for p in params)):
        return None
    if any(m._forward_hooks or m._forward_pre_hooks for m in model.modules()):
        return None
    fixed = (model.output.prototypes, model.c3.out_index, model.c3.in_index)
    key = tuple(p.data_ptr() for p in params) + tuple((b.data_ptr(), b._version) for b in fixed)
    with _LOCK:
        entry = _ENGINES.get(model)
        if entry is None or entry[0] != key:
            if any(p.device.type != "cpu" or p.dtype != torch.float32 for p in params):
                return None
            entry = (key, NumbaEngine(model))
            _ENGINES[model] = entry
        return torch.from_numpy(entry[1].infer(x))
