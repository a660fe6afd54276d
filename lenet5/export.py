"""Export LeNet-5 for use without this package: ONNX or TorchScript, (N, 1, 32, 32) -> (N, 10) penalties.

Both files take the inputs already scaled as in Sec. II-A (:func:`lenet5.data.to_field`: background
-0.1, ink 1.175, the 28x28 digit centred in the 32x32 field) under the name ``input``, with any batch
size, and return the ten RBF penalties under the name ``penalties``: the prediction is their argmin.

A leaf: nothing in the core imports this module. ONNX goes through torch's dynamo exporter (torch >= 2.5)
and needs onnx and onnxscript (pip install 'lenet5[export]'); TorchScript needs only torch, which has
deprecated it in favour of torch.export but still writes and loads it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from .errors import Lenet5Error
from .fileio import atomic_path, atomic_write_bytes
from .model import LeNet5

FORMATS = ("onnx", "torchscript")
INPUT_NAME, OUTPUT_NAME = "input", "penalties"


def _example() -> torch.Tensor:
    # A batch of 2, not 1: torch.export specialises a dimension of size 1 to a constant.
    return torch.zeros(2, 1, 32, 32)


def _description(model: LeNet5) -> str:
    return json.dumps(
        {
            "input": f"{INPUT_NAME}: (N, 1, 32, 32) float32, scaled as in Sec. II-A (background -0.1, ink 1.175)",
            "output": f"{OUTPUT_NAME}: (N, 10) RBF penalties; the prediction is the argmin",
            "model_config": vars(model.config),
        }
    )


@contextlib.contextmanager
def _quiet_onnx_logs() -> Iterator[None]:
    """Hide the exporter's notes about torchvision ops we never use and torch's own internal deprecations."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*", category=FutureWarning)
            yield
    finally:
        logger.setLevel(level)


def export_onnx(model: LeNet5, out: str | os.PathLike) -> Path:
    """Write ``model`` as an ONNX file (opset of torch's dynamo exporter) with a dynamic batch axis."""
    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx.export needs it and says so less clearly)
    except ImportError as e:
        raise Lenet5Error(f"ONNX export needs {e.name}: pip install 'lenet5[export]'") from None
    model = model.cpu().eval()
    with _quiet_onnx_logs():
        program = torch.onnx.export(
            model,
            (_example(),),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes={"x": {0: torch.export.Dim("batch")}},
            dynamo=True,
            verbose=False,
        )
    proto = program.model_proto
    proto.doc_string = "LeNet-5 (LeCun et al. 1998), exported by lenet5"
    onnx.helper.set_model_props(proto, {"lenet5": _description(model)})
    onnx.checker.check_model(proto)
    atomic_write_bytes(out, proto.SerializeToString())  # one file: 60,000 weights need no external data
    return Path(out)


def export_torchscript(model: LeNet5, out: str | os.PathLike) -> Path:
    """Write ``model`` as a traced TorchScript file (``torch.jit.load`` reads it); any batch size works.

    Tracing is exact here: the forward pass has no data-dependent control flow.
    """
    model = model.cpu().eval()
    with warnings.catch_warnings():  # torch deprecates TorchScript; asking for it is the user's informed choice
        warnings.filterwarnings("ignore", message="`torch.jit", category=DeprecationWarning)
        with torch.no_grad():
            traced = torch.jit.trace(model, _example())
        with atomic_path(out) as tmp:
            torch.jit.save(traced, str(tmp), _extra_files={"lenet5.json": _description(model)})
    return Path(out)


def export_model(model: LeNet5, out: str | os.PathLike, fmt: str = "onnx") -> Path:
    """Write ``model`` to ``out`` in ``fmt`` ('onnx' or 'torchscript'), atomically."""
    if fmt == "onnx":
        return export_onnx(model, out)
    if fmt == "torchscript":
        return export_torchscript(model, out)
    raise Lenet5Error(f"unknown export format {fmt!r}; expected one of {', '.join(FORMATS)}")
