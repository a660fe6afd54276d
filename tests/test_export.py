"""Exported models match the PyTorch model they came from, on every one of the 10,000 MNIST test digits.

Tolerance for ONNX: onnxruntime's float32 kernels (convolution, GEMM, reductions) sum in another order
than torch's, so penalties (0 to ~300, each a sum of 84 squares) may differ in the last bits. We allow
|onnx - torch| <= 1e-3 + 1e-5 |torch| elementwise; measured with the shipped weights: at most 1.2e-4
absolute, 6.9e-6 relative where the penalty is >= 1. The predictions must be identical on every
digit (the two smallest penalties are never closer than 0.025 on the test set, far above that noise).
TorchScript runs torch's own kernels on the traced graph, so we ask the same of it.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenet5.__main__ import main
from lenet5.checkpoint import load_model, save_checkpoint
from lenet5.data import load_mnist
from lenet5.model import LeNet5

ATOL, RTOL = 1e-3, 1e-5
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")


@pytest.fixture(scope="module")
def reference(data_dir):
    """The 10,000 test inputs and the shipped model's penalties for them."""
    x, y = load_mnist("test", data_dir)
    assert len(x) == 10_000
    with torch.no_grad():
        penalties = load_model("paper")(x).numpy()
    return x, penalties


def _assert_same_model(penalties: np.ndarray, ref: np.ndarray) -> None:
    assert penalties.shape == ref.shape == (10_000, 10)
    np.testing.assert_allclose(penalties, ref, rtol=RTOL, atol=ATOL)
    disagree = np.flatnonzero(penalties.argmin(1) != ref.argmin(1))
    assert len(disagree) == 0, f"different predictions on test digits {disagree[:20].tolist()}"


def test_onnx_matches_torch_on_every_mnist_test_digit(reference, tmp_path, capsys):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    x, ref = reference
    out = tmp_path / "lenet5.onnx"
    assert main(["export", "--format", "onnx", str(out), "--pretrained"]) == 0
    assert capsys.readouterr().out.startswith(f"wrote {out} (onnx)")
    assert [p.name for p in tmp_path.iterdir()] == ["lenet5.onnx"]  # one file, no external data, no temp file
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (inp,), (outp,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, outp.name) == ("input", "penalties")
    assert isinstance(inp.shape[0], str) and inp.shape[1:] == [1, 32, 32]  # a named, dynamic batch axis
    _assert_same_model(session.run(None, {"input": x.numpy()})[0], ref)
    one = session.run(None, {"input": x[:1].numpy()})[0]  # batch 1 is not the batch 2 it was traced with
    np.testing.assert_allclose(one, ref[:1], rtol=RTOL, atol=ATOL)


def test_torchscript_matches_torch_on_every_mnist_test_digit(reference, tmp_path):
    x, ref = reference
    out = tmp_path / "lenet5.ts.pt"
    assert main(["export", "--format", "torchscript", str(out)]) == 0
    scripted = torch.jit.load(str(out))
    with torch.no_grad():
        _assert_same_model(scripted(x).numpy(), ref)
        np.testing.assert_allclose(scripted(x[:1]).numpy(), ref[:1], rtol=RTOL, atol=ATOL)


def test_export_of_a_weights_file(reference, tmp_path):
    """--weights takes a checkpoint as ``evaluate`` does: here freshly initialised weights, not the shipped ones."""
    x, _ = reference
    model = LeNet5()
    save_checkpoint(tmp_path / "w.pt", model)
    out = tmp_path / "m.ts.pt"
    assert main(["export", "--format", "torchscript", str(out), "--weights", str(tmp_path / "w.pt")]) == 0
    with torch.no_grad():
        torch.testing.assert_close(torch.jit.load(str(out))(x[:100]), model.eval()(x[:100]), rtol=RTOL, atol=ATOL)


def test_export_of_missing_weights_fails_in_one_line(tmp_path, capsys):
    out = tmp_path / "m.pt"
    assert main(["export", "--format", "torchscript", str(out), "--weights", str(tmp_path / "absent.pt")]) == 1
    assert capsys.readouterr().err == f"lenet5 export: error: {tmp_path / 'absent.pt'}: no such weights file\n"
    assert not out.exists()
