"""Every figure of ``lenet5 plot`` is drawn from real runs, weights and MNIST, and is a real, non-blank PNG."""

from __future__ import annotations

import importlib.util
import shutil
import sys

import numpy as np
import pytest
from conftest import run_cli
from PIL import Image

from lenet5 import plots
from lenet5.__main__ import main
from lenet5.checkpoint import load_model
from lenet5.data import load_mnist, load_split_arrays

pytest.importorskip("matplotlib")


@pytest.fixture(scope="module")
def mnist_test(data_dir):
    return load_mnist("test", data_dir)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, data_dir):
    """A real run directory: ``lenet5 train --dry-run`` (2 passes on 600 MNIST patterns).

    The figures need a completed run, not a particular recipe, so the loss is pinned to Eq. 8 (mse),
    which completes the dry run whatever the default recipe is being tuned to.
    """
    out = tmp_path_factory.mktemp("runs")
    r = run_cli(
        "train", "--dry-run", "--loss", "mse", "--quiet", "--out-dir", str(out), "--run-name", "dry",
        "--data-dir", str(data_dir),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    return out / "dry"


def assert_real_png(path, min_width: int = 300, min_height: int = 150) -> None:
    """A PNG of at least the given size whose pixels vary (std > 20 of 255) over many colours (> 16)."""
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = image.size
        pixels = np.asarray(image.convert("RGB"))
    assert width >= min_width and height >= min_height, (width, height)
    assert pixels.std() > 20, f"{path} looks blank (pixel std {pixels.std():.1f})"
    colours = len(np.unique(pixels.reshape(-1, 3), axis=0))
    assert colours > 16, f"{path} has only {colours} distinct colours"
    assert not list(path.parent.glob(f".{path.name}.*")), "a temporary file of the atomic write was left behind"


def test_learning_curves_of_two_runs_through_the_cli(run_dir, tmp_path, capsys):
    other = tmp_path / "dry-copy"
    shutil.copytree(run_dir, other)
    out = tmp_path / "curves.png"
    assert main(["plot", "curves", "--run", str(run_dir), str(other), "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert_real_png(out, 600, 400)


def test_learning_curves_of_a_run_without_training_set_evaluation(run_dir, tmp_path):
    """--no-train-eval leaves train_error null: the running error during the pass is drawn instead."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 2
    bare = tmp_path / "no-train-eval"
    bare.mkdir()
    (bare / "metrics.jsonl").write_text(
        "\n".join(line.replace('"train_error": ', '"train_error": null, "was": ') for line in lines) + "\n"
    )
    assert_real_png(plots.learning_curves([bare], tmp_path / "curves.png"), 600, 400)


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (None, "no metrics.jsonl"),
        ("", "empty (no pass has completed yet)"),
        ("{oops\n", "line 1 is not JSON"),
        ('{"epoch": 1}\n', "line 1 has no epoch and test_error"),
    ],
)
def test_curves_of_a_bad_run_directory_fail_in_one_line(tmp_path, capsys, metrics, message):
    if metrics is not None:
        (tmp_path / "metrics.jsonl").write_text(metrics)
    assert main(["plot", "curves", "--run", str(tmp_path), "--out", str(tmp_path / "c.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("lenet5 plot: error: ") and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "c.png").exists()


def test_curves_of_a_missing_run_directory(tmp_path, capsys):
    assert main(["plot", "curves", "--run", str(tmp_path / "absent"), "--out", str(tmp_path / "c.png")]) == 1
    assert capsys.readouterr().err == f"lenet5 plot: error: {tmp_path / 'absent'}: no such run directory\n"


def test_misclassified_digits_of_the_pretrained_model_on_the_whole_test_set(tmp_path, capsys):
    out = tmp_path / "mis.png"
    assert main(["plot", "misclassified", "--pretrained", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    assert_real_png(out, 600, 600)


def test_misclassified_limit_and_a_model_that_makes_no_mistake(mnist_test, tmp_path):
    x, y = mnist_test[0][:1000], mnist_test[1][:1000]
    model = load_model("paper")
    assert_real_png(plots.misclassified(model, x, y, tmp_path / "five.png", limit=5), 300, 100)
    right = (model.predict(x[:100]) == y[:100]).nonzero().flatten()
    path = plots.misclassified(model, x[right], y[right], tmp_path / "none.png")
    with Image.open(path) as image:
        assert image.size[0] >= 300  # a title and "no misclassified digits": small but valid


def test_confusion_matrix(mnist_test, tmp_path):
    """On the first 2,000 test digits (the CLI path evaluates all 10,000, as the misclassified test does)."""
    x, y = mnist_test
    path = plots.confusion(load_model("paper"), x[:2000], y[:2000], tmp_path / "confusion.png", label="first 2000")
    assert_real_png(path, 500, 500)


def test_rbf_bitmaps(tmp_path):
    assert_real_png(plots.rbf_bitmaps(tmp_path / "rbf.png"), 600, 200)


def test_feature_maps_of_a_test_digit_with_weights_from_a_run(run_dir, tmp_path):
    out = tmp_path / "features.png"
    assert main(["plot", "features", "--weights", str(run_dir / "weights.pt"), "--index", "7", "--out", str(out)]) == 0
    assert_real_png(out, 1000, 700)


@pytest.mark.skipif(importlib.util.find_spec("lenet5.imageprep") is None, reason="lenet5.imageprep is not there")
def test_feature_maps_of_an_image_file(data_dir, tmp_path):
    images, _ = load_split_arrays("mnist", "test", data_dir)
    photo = tmp_path / "digit.png"
    Image.fromarray(255 - images[0]).resize((112, 112), Image.Resampling.BILINEAR).save(photo)  # dark ink on white
    out = tmp_path / "features.png"
    assert main(["plot", "features", "--image", str(photo), "--out", str(out)]) == 0
    assert_real_png(out, 1000, 700)


def test_distortions(tmp_path):
    out = tmp_path / "distortions.png"
    assert main(["plot", "distortions", "--digits", "3", "--seed", "1", "--out", str(out)]) == 0
    assert_real_png(out, 600, 200)


def test_feature_maps_index_outside_the_test_set(tmp_path, capsys):
    assert main(["plot", "features", "--index", "10000", "--out", str(tmp_path / "f.png")]) == 1
    assert "outside the test set" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["curves"], "needs at least one --run"),
        (["rbf", "--run", "x"], "--run is for 'curves' and 'softmax-curves' only"),
        (["rbf", "--pretrained"], "do not apply to 'rbf'"),
        (["rbf", "--out", "rbf.jpg"], "must be a .png file"),
    ],
)
def test_wrong_flags_fail_in_one_line(tmp_path, capsys, argv, message):
    assert main(["plot", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err


def test_without_matplotlib_the_cli_says_what_to_install(tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)  # makes `import name` raise ImportError
    assert main(["plot", "rbf", "--out", str(tmp_path / "rbf.png")]) == 1
    err = capsys.readouterr().err
    assert err == "lenet5 plot: error: matplotlib is not installed: pip install 'lenet5[plot]'\n"
    assert not list(tmp_path.iterdir())
