"""Configuration. Every default is the paper's value; each number cites where it comes from.

Choices the paper leaves open are tagged ``DEVIATION(Dn)`` here and listed in PAPER_NOTES.md.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# ---- numbers from the paper (LeCun et al. 1998), in one place ----------------------------------
SQUASH_A = 1.7159  # Appendix A: f(a) = A tanh(S a)
SQUASH_S = 2.0 / 3.0  # Appendix A: chosen so that f(1) = 1 and f(-1) = -1
PIXEL_BACKGROUND = -0.1  # Sec. II-A: white background
PIXEL_FOREGROUND = 1.175  # Sec. II-A: black foreground; mean input ~0, variance ~1
INIT_SCALE = 2.4  # Appendix A: weights uniform in [-2.4/F_i, 2.4/F_i]
SDLM_MU_PAPER = 0.02  # Sec. II-C / Appendix C
SDLM_MU = 0.5  # DEVIATION(D3): with the paper's 0.02, per-pattern SDLM at the paper's eta diverges (PAPER_NOTES.md)
SDLM_HESSIAN_SAMPLES = 500  # Sec. II-C: "re-evaluated on 500 patterns" before each pass
PAPER_EPOCHS = 20  # Sec. III-C: 20 passes through the training set


BATCH_LR_SCALES = ("sqrt", "sum", "mean")
MODERN_ARCHS = ("slides", "modern", "modern2")  # softmax networks of modern.py, trained by adamw/adam/sgd
ARCHS = ("lenet5", "lenet4", "lenet1", "linear", "mlp300", *MODERN_ARCHS)
OPTIMIZERS = ("sdlm", "adamw", "adam", "sgd")
# Test-time augmentation (`lenet5 evaluate --tta NAME`): each view is (dx, dy, degrees, scale) about the field
# centre, dx to the right, dy down, degrees clockwise on screen as in robustness.STUDIES; the first is the input
# itself (distort.view_maps makes their maps). Our choice; results/tta/validate.py
# compares them on held-out training digits.
_SHIFTS = ((0, 0, 0, 1), (1, 0, 0, 1), (-1, 0, 0, 1), (0, 1, 0, 1), (0, -1, 0, 1))  # itself, 1-pixel shifts
TTA_VIEWS = {
    "none": ((0, 0, 0, 1),),
    "shift": _SHIFTS,
    "shift-rotate": (*_SHIFTS, (0, 0, -5, 1), (0, 0, 5, 1)),
    "shift-rotate-scale": (*_SHIFTS, (0, 0, -5, 1), (0, 0, 5, 1), (0, 0, 0, 0.93), (0, 0, 0, 1.07)),
}
LOSSES = ("mse", "map", "ce")


def valid_device(device: str) -> bool:
    """'cpu', 'cuda' or 'cuda:N' (whether that device exists is checked where it is used)."""
    if device in ("cpu", "cuda"):
        return True
    return device.startswith("cuda:") and device[5:].isdigit()


def batch_step_scale(rule: str, batch: int) -> float:
    """The factor applied to the summed gradient of a mini-batch of ``batch`` patterns (D7)."""
    return {"sum": 1.0, "sqrt": batch**-0.5, "mean": 1.0 / batch}[rule]


def paper_eta(epoch: int) -> float:
    """Global learning rate eta of the paper's schedule for a 0-based pass index (Sec. III-C)."""
    if epoch < 2:
        return 5e-4
    if epoch < 5:
        return 2e-4
    if epoch < 8:
        return 1e-4
    if epoch < 12:
        return 5e-5
    return 1e-5


# Test errors (percent) reported in Fig. 9 / Sec. III-C, for the comparison tables.
PAPER_TEST_ERROR = {
    "lenet5": 0.95,
    "lenet5-distort": 0.8,
    "lenet4": 1.1,
    "lenet1": 1.7,
    "boosted-lenet4": 0.7,
    "linear": 12.0,
    "knn": 5.0,
    "mlp-300": 4.7,
}
PAPER_TRAIN_ERROR_PASS19 = 0.35  # Sec. III-C, LeNet-5 without distortions


SUBSAMPLE_INITS = ("uniform", "nonzero")  # initial subsampling coefficients (D15)


@dataclass
class ModelConfig:
    """The network. The defaults build the paper's LeNet-5 (Sec. II-B, Fig. 2)."""

    arch: str = "lenet5"
    """Architecture: 'lenet5' (the paper's); its siblings 'lenet4' and 'lenet1' and the Fig. 9 baselines
    'linear' and 'mlp300' (Sec. III-C); 'slides' (the talk slides' Keras LeNet-5), 'modern' and 'modern2'
    (two LeNet-5-sized networks of today's parts, under 60,000 parameters) from modern.py."""
    c3_table: str = "paper"
    """C3 connectivity: 'paper' (Table I, 60 of the 96 map pairs) or 'full' (every S2 map feeds every C3 map)."""
    in_size: int = 32
    """Side of the input field in pixels: the 28x28 digit is centred in a 32x32 field (Sec. II-B)."""
    init: str = "fan-in"
    """Initial weight range: 'fan-in' is Appendix A as printed, uniform in +-2.4/F_i; 'sqrt-fan-in' is
    uniform in +-2.4/sqrt(F_i), an option we measured (PAPER_NOTES.md, D1)."""
    subsample_init: str = "uniform"
    """Initial subsampling coefficients: 'uniform' draws them like every other weight (Appendix A); 'nonzero'
    folds the same draw away from 0, into +-[b/2, b] (PAPER_NOTES.md, D15)."""

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ValueError(f"unknown arch {self.arch!r}; expected one of {', '.join(ARCHS)}")
        if self.c3_table not in ("paper", "full"):
            raise ValueError(f"unknown c3_table {self.c3_table!r}; expected 'paper' or 'full'")
        if self.init not in ("fan-in", "sqrt-fan-in"):
            raise ValueError(f"unknown init {self.init!r}; expected 'fan-in' or 'sqrt-fan-in'")
        if self.subsample_init not in SUBSAMPLE_INITS:
            raise ValueError(f"unknown subsample_init {self.subsample_init!r}; expected one of {SUBSAMPLE_INITS}")
        if self.in_size != 32:
            raise ValueError(f"in_size must be 32 (every network reads the 32x32 field), got {self.in_size}")

    @property
    def paper_family(self) -> bool:
        """Squashed units with a trunk SDLM can train (everything but MODERN_ARCHS)."""
        return self.arch not in MODERN_ARCHS


@dataclass
class TrainConfig:
    """A training run. The defaults are the paper's recipe (Sec. II-C, III-C, Appendix C)."""

    dataset: str = "mnist"
    """Dataset: 'mnist' or 'fashion-mnist'."""
    epochs: int = PAPER_EPOCHS
    """Passes through the 60,000 training patterns."""
    batch_size: int = 1
    """Patterns per update. 1 is the paper's per-pattern (stochastic) update."""
    loss: str = "map"
    """'mse' (Eq. 8, penalty of the correct class) or 'map' (Eq. 9, the discriminative criterion).
    DEVIATION(D4): the paper does not say which gave its MNIST numbers; Eq. 9 measured better.
    'ce' is cross-entropy on -penalties, for the softmax networks."""
    optimizer: str = "sdlm"
    """'sdlm' (the paper's, Appendix C), or 'adamw', 'adam', 'sgd' (Nesterov momentum 0.9) for the
    modern networks; those use ``lr`` and ``schedule`` instead of eta and mu."""
    lr: float = 3e-3
    """Peak learning rate of adamw/adam/sgd."""
    schedule: str = "onecycle"
    """Learning rate of adamw/adam/sgd over the run: 'onecycle' (linear warm-up over the first 10% of
    the steps, then a cosine down to 0) or 'constant'."""
    weight_decay: float = 0.0
    """Weight decay of adamw/adam/sgd."""
    label_smoothing: float = 0.0
    """Label smoothing of the 'ce' loss."""
    augment: bool = False
    """Fresh random affine distortions of every training pattern, every pass (modern training; the
    paper's fixed 540,000 copies are ``distort``). Ranges: distort.AUGMENT_RANGES."""
    rotate: float = 0.0
    """With ``augment``: also rotate every pattern by a uniform angle in +-rotate degrees (0 = none)."""
    elastic: float = 0.0
    """With ``augment``: also an elastic distortion of strength alpha = elastic pixels (Simard et al. 2003;
    smoothing width distort.ELASTIC_SIGMA); 0 = none."""
    noise: float = 0.0
    """Salt-and-pepper noise during training: each pixel flipped with this probability (Fig. 13 used 0.1)."""
    train_file: str | None = None
    """Train on the (x, y) tensors of this file instead of the dataset's training set (boosting's nets 2, 3)."""
    map_j: float = 0.1
    """The constant j > 0 of Eq. 9. DEVIATION(D5): the paper gives no value; 0.1 is our choice."""
    mu: float = SDLM_MU
    """SDLM damping mu in eta / (mu + h_kk). The paper's 0.02 is DEVIATION(D3): we use 0.5."""
    eta: list[float] | None = None
    """Global learning rate per pass; None uses the paper's schedule (5e-4, 2e-4, 1e-4, 5e-5, 1e-5)."""
    eta_scale: float = 1.0
    """Multiplies every eta of the schedule (1 = the paper's values; PAPER_NOTES.md reports what smaller values do)."""
    hessian_samples: int = SDLM_HESSIAN_SAMPLES
    """Training patterns on which h_kk is re-estimated before each pass."""
    batch_lr_scale: str = "sqrt"
    """How SDLM steps are made for a mini-batch of B patterns: eps_k times the sum of the B per-pattern
    gradients divided by sqrt(B) ('sqrt'), by 1 ('sum': one pass moves as far as per-pattern updates) or
    by B ('mean'). DEVIATION(D7): 'sqrt' is the one of the three that trained at B = 32 and 128."""
    distort: bool = False
    """Train on distorted patterns (Sec. III-C): 60,000 originals + 540,000 affine-distorted copies."""
    train_subset: int = 0
    """Use only the first N training patterns (0 = all 60,000), for quick runs and Fig. 6."""
    test_subset: int = 0
    """Evaluate on only the first N test patterns (0 = all 10,000)."""
    train_eval: bool = True
    """Measure the error on the whole training set after every pass (the paper's Fig. 5)."""
    engine: str = "auto"
    """'torch' (the reference), 'numba' (the fast per-pattern engine) or 'auto' (numba where it applies)."""
    seed: int = 0
    """Seeds the initial weights, every pass's order and the distorted copies (>= 0)."""
    device: str = "cpu"
    """'cpu', 'cuda' or 'cuda:N'."""
    threads: int = 0
    """torch intra-op threads (0 = torch's default)."""
    data_dir: str | None = None
    """Where datasets live; None = $LENET5_DATA or ~/.cache/lenet5."""
    out_dir: str = "runs"
    """Parent folder of run directories."""
    run_name: str | None = None
    """Run directory name; None = a timestamp plus the recipe."""
    model: ModelConfig = field(default_factory=ModelConfig)

    def __post_init__(self) -> None:
        if isinstance(self.model, dict):
            self.model = ModelConfig(**self.model)
        checks = [
            (
                self.dataset in ("mnist", "fashion-mnist"),
                f"unknown dataset {self.dataset!r}; expected mnist or fashion-mnist",
            ),
            (self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be >= 1, got {self.batch_size}"),
            (self.loss in LOSSES, f"unknown loss {self.loss!r}; expected {', '.join(LOSSES)}"),
            (
                self.optimizer in OPTIMIZERS,
                f"unknown optimizer {self.optimizer!r}; expected {', '.join(OPTIMIZERS)}",
            ),
            (
                self.optimizer != "sdlm" or self.model.paper_family,
                f"SDLM trains the paper's networks only; use --optimizer adamw for arch {self.model.arch!r}",
            ),
            (self.lr > 0, f"lr must be > 0, got {self.lr}"),
            (self.schedule in ("onecycle", "constant"), f"unknown schedule {self.schedule!r}"),
            (self.weight_decay >= 0, f"weight decay must be >= 0, got {self.weight_decay}"),
            (0 <= self.label_smoothing < 1, f"label smoothing must be in [0, 1), got {self.label_smoothing}"),
            (0 <= self.noise <= 0.5, f"noise must be a flip probability in [0, 0.5], got {self.noise}"),
            (not (self.augment and self.distort), "--augment and --distort are two ways to distort: choose one"),
            (0 <= self.rotate <= 90, f"rotate must be in [0, 90] degrees, got {self.rotate}"),
            (self.elastic >= 0, f"elastic must be >= 0, got {self.elastic}"),
            (self.augment or not (self.rotate or self.elastic), "--rotate and --elastic add to --augment: give it too"),
            (self.map_j > 0, f"j must be > 0 (Eq. 9), got {self.map_j}"),
            (self.mu > 0, f"mu must be > 0, got {self.mu}"),
            (self.eta_scale > 0, f"eta scale must be > 0, got {self.eta_scale}"),
            (self.hessian_samples >= 1, f"hessian samples must be >= 1, got {self.hessian_samples}"),
            (
                self.batch_lr_scale in BATCH_LR_SCALES,
                f"batch lr scale must be one of {', '.join(BATCH_LR_SCALES)}, got {self.batch_lr_scale!r}",
            ),
            (self.train_subset >= 0, f"train subset must be >= 0, got {self.train_subset}"),
            (self.test_subset >= 0, f"test subset must be >= 0, got {self.test_subset}"),
            (
                self.engine in ("auto", "torch", "numba"),
                f"unknown engine {self.engine!r}; expected auto, torch or numba",
            ),
            (self.threads >= 0, f"threads must be >= 0, got {self.threads}"),
            (self.seed >= 0, f"seed must be >= 0, got {self.seed}"),
            (valid_device(self.device), f"unknown device {self.device!r}; expected cpu, cuda or cuda:N"),
            (self.eta is None or (len(self.eta) >= 1 and all(e > 0 for e in self.eta)), "eta values must be > 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    def eta_for(self, epoch: int) -> float:
        """The global learning rate of a 0-based pass; a short custom list repeats its last value."""
        base = paper_eta(epoch) if self.eta is None else self.eta[min(epoch, len(self.eta) - 1)]
        return base * self.eta_scale

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})
