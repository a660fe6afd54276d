"""The paper's other networks, the modern ones, ensembles and boosting's filter, k-NN, robustness, compare."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import run_cli

from lenet5.baselines import knn_predict
from lenet5.boost import filtered_set
from lenet5.checkpoint import load_model
from lenet5.compare import ROWS, _with, compare, count_macs
from lenet5.config import PIXEL_BACKGROUND, PIXEL_FOREGROUND, ModelConfig, TrainConfig
from lenet5.distort import salt_and_pepper
from lenet5.layers import Downsample16, Subsampling
from lenet5.model import Ensemble, LeNet5, build_model, layer_table, place_codes
from lenet5.optim import SDLM
from lenet5.robustness import STUDIES, robustness, transform
from lenet5.train import evaluate, train

EXPECTED_PARAMS = {  # PAPER_NOTES.md D11, D12; modern.py
    "lenet5": 60_000,
    "lenet4": 50_698,
    "lenet1": 2_678,
    "linear": 7_850,
    "mlp300": 238_510,
    "slides": 61_706,
    "modern": 47_950,
    "modern2": 53_522,
}


def test_every_arch_has_an_expected_parameter_count_and_only_the_modern_ones_leave_the_paper_family():
    from lenet5.config import ARCHS, MODERN_ARCHS

    assert set(EXPECTED_PARAMS) == set(ARCHS)
    assert [a for a in ARCHS if not ModelConfig(arch=a).paper_family] == list(MODERN_ARCHS)


@pytest.mark.parametrize("arch", list(EXPECTED_PARAMS))
def test_every_arch_builds_with_its_parameter_count_and_returns_penalties(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch)).eval()
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == EXPECTED_PARAMS[arch]
    penalties = model(torch.randn(4, 1, 32, 32))
    assert penalties.shape == (4, 10) and torch.isfinite(penalties).all()
    assert (penalties >= 0).all()  # squared distances, or -log p
    model.train()
    model(torch.randn(4, 1, 32, 32))[:, 0].sum().backward()
    assert all(p.grad is not None for p in model.parameters()), "every parameter gets a gradient"


@pytest.mark.parametrize("arch", ["modern", "modern2"])
def test_modern_net_keeps_lenet5s_parameter_budget_and_its_penalties_are_log_probabilities(arch):
    model = build_model(ModelConfig(arch=arch)).eval()
    assert sum(p.numel() for p in model.parameters()) <= 60_000
    p = torch.exp(-model(torch.randn(5, 1, 32, 32)))
    torch.testing.assert_close(p.sum(1), torch.ones(5))


def test_count_macs_matches_the_lenet5_layer_table_and_the_paper_sized_siblings():
    assert count_macs(LeNet5()) == sum(r["macs"] for r in layer_table()) == 334_400
    assert count_macs(build_model(ModelConfig(arch="lenet4"))) == 257_540  # paper: about 260,000
    # modern2 by hand: 5x5 1->24 on 28x28, 3x3 24->32 and 32->48 on 14x14, 3x3 48->72 on 7x7, 72->10
    by_hand = 28 * 28 * 24 * 25 + 14 * 14 * 9 * (24 * 32 + 32 * 48) + 7 * 7 * 9 * 48 * 72 + 72 * 10
    assert count_macs(build_model(ModelConfig(arch="modern2"))) == by_hand == 6_059_472
    assert count_macs(build_model(ModelConfig(arch="lenet1"))) == 101_860  # paper: about 100,000


def test_subsampling_with_repeat_matches_subsampling_of_duplicated_maps():
    torch.manual_seed(0)
    layer = Subsampling(8, repeat=2)
    plain = Subsampling(8)
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(3, 4, 28, 28)
    torch.testing.assert_close(layer(x), plain(x.repeat_interleave(2, dim=1)))
    expected = F.avg_pool2d(x.repeat_interleave(2, 1), 2) * 4 * layer.weight.view(1, -1, 1, 1) + layer.bias.view(
        1, -1, 1, 1
    )
    torch.testing.assert_close(layer(x), expected)
    double = Subsampling(8, repeat=2).double()
    assert torch.autograd.gradcheck(double, (torch.randn(2, 4, 6, 6, dtype=torch.float64, requires_grad=True),))
    with pytest.raises(ValueError, match="multiple"):
        Subsampling(7, repeat=2)


def test_downsample16_keeps_the_background_and_shrinks_the_digit_to_16_pixels(mnist):
    blank = torch.full((1, 1, 32, 32), PIXEL_BACKGROUND)
    torch.testing.assert_close(Downsample16()(blank), torch.full((1, 1, 28, 28), PIXEL_BACKGROUND))
    x_test = mnist[2][:200]
    small = Downsample16()(x_test)
    assert small.shape == (200, 1, 28, 28)
    heights = []
    for img in small[:, 0]:
        rows = torch.nonzero((img > PIXEL_BACKGROUND + 0.3).any(1)).flatten()
        heights.append(int(rows.max() - rows.min() + 1))
    assert 14 <= np.median(heights) <= 17  # MNIST digits are ~20 px high: 0.8 of that
    assert float(small[:, :, :2].max()) == pytest.approx(PIXEL_BACKGROUND)  # the 2-px border stays blank


@pytest.mark.parametrize("arch", ["lenet4", "lenet1", "mlp300"])
def test_sdlm_curvature_covers_every_parameter_of_the_paper_family(arch):
    torch.manual_seed(0)
    model = build_model(ModelConfig(arch=arch))
    opt = SDLM(model.parameters(), lr=5e-4, mu=0.5)
    opt.estimate_hessian(model, torch.randn(20, 1, 32, 32))
    for p in model.parameters():
        h = opt.state[p]["hessian"]
        assert h.shape == p.shape and (h >= 0).all() and float(h.max()) > 0


def test_place_code_penalties_rank_classes_as_the_outputs_do_and_ensembles_add_outputs():
    torch.manual_seed(0)
    codes = place_codes()
    outputs = [torch.tanh(torch.randn(50, 10)) * 1.7 for _ in range(3)]
    penalties = [((y[:, None, :] - codes[None]) ** 2).sum(-1) for y in outputs]
    for y, p in zip(outputs, penalties, strict=True):
        assert torch.equal(p.argmin(1), y.argmax(1))
    # the paper's boosting adds the outputs; summing penalties picks the same class
    assert torch.equal(sum(penalties).argmin(1), sum(outputs).argmax(1))


def test_ensemble_sums_its_members_penalties():
    torch.manual_seed(0)
    members = [build_model(ModelConfig(arch="lenet1")).eval() for _ in range(3)]
    x = torch.randn(6, 1, 32, 32)
    ens = Ensemble(members).eval()
    torch.testing.assert_close(ens(x), sum(m(x) for m in members))
    assert torch.equal(ens.predict(x), sum(m(x) for m in members).argmin(1))
    with pytest.raises(ValueError):
        Ensemble([])


def test_salt_and_pepper_flips_the_asked_fraction_between_background_and_ink(mnist):
    x = mnist[2][:500]
    noisy = salt_and_pepper(x, 0.1, np.random.default_rng(0))
    changed = noisy != x
    assert 0.095 < changed.float().mean() < 0.105
    was_background = x == PIXEL_BACKGROUND
    assert torch.allclose(noisy[changed & was_background], torch.tensor(PIXEL_FOREGROUND))
    assert torch.equal(salt_and_pepper(x, 0.1, np.random.default_rng(0)), noisy)  # same rng, same noise


def test_knn_matches_a_brute_force_vote():
    g = torch.Generator().manual_seed(0)
    xtr, ytr = torch.randn(300, 1, 32, 32, generator=g), torch.randint(0, 10, (300,), generator=g)
    xte = torch.randn(40, 1, 32, 32, generator=g)
    d = torch.cdist(xte[..., 2:30, 2:30].flatten(1), xtr[..., 2:30, 2:30].flatten(1))
    nearest = ytr[d.topk(3, largest=False).indices]
    expected = [int(r[1]) if r[1] == r[2] else int(r[0]) for r in nearest]
    assert knn_predict(xtr, ytr, xte, k=3, chunk=7).tolist() == expected
    assert knn_predict(xtr, ytr, xte, k=1).tolist() == ytr[d.argmin(1)].tolist()


def test_knn_on_real_mnist_is_far_below_chance(mnist):
    x_train, y_train, x_test, y_test = mnist
    pred = knn_predict(x_train[:10_000], y_train[:10_000], x_test[:1000])
    assert (pred != y_test[:1000]).float().mean() < 0.10  # chance is 0.9; full 3-NN measured 2.83%


def test_robustness_transforms_are_identities_at_their_neutral_values_and_hurt_when_large(mnist):
    x, y = mnist[2][:500], mnist[3][:500]
    for study, value in (("scale", 1.0), ("shift", 0), ("rotate", 0), ("noise", 0.0)):
        torch.testing.assert_close(transform(x, study, value), x, atol=1e-5, rtol=0)
    down = transform(x, "shift", 4)
    torch.testing.assert_close(down[..., 8:28, :], x[..., 4:24, :], atol=1e-5, rtol=0)  # moved 4 rows down
    model = load_model("paper")
    result = robustness({"paper": model}, x, y, ["scale", "noise"])
    scale = result["studies"]["scale"]
    at_one = scale["errors"]["paper"][scale["values"].index(1.0)]
    assert at_one == pytest.approx(evaluate(model, x, y)["error_rate"])
    assert scale["errors"]["paper"][0] > 5 * max(at_one, 0.2)  # half size is much harder
    noise = result["studies"]["noise"]["errors"]["paper"]
    assert noise[-1] > noise[0]
    assert set(STUDIES) == {"scale", "shift", "rotate", "noise"}


class _ByMean(torch.nn.Module):
    """A fixed real classifier: the class is a threshold bucket of the mean ink (penalties from it)."""

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset

    def forward(self, x):
        k = ((x.mean((1, 2, 3)) + self.offset) * 40).long().remainder(10)
        return 1.0 - F.one_hot(k, 10).float()


def test_boosting_filters_give_half_wrong_and_all_disagreeing_sets(mnist):
    x, y = mnist[0][:2000], mnist[1][:2000]
    net1, net2 = _ByMean(0.0), _ByMean(0.013)
    xs, ys, counts = filtered_set([net1], x, y, 400, "half-wrong", seed=0)
    wrong = net1(xs).argmin(1) != ys
    assert len(xs) == 400 and int(wrong.sum()) == 200 and counts["kept"] == {"wrong": 200, "right": 200}
    xs, ys, counts = filtered_set([net1, net2], x, y, 300, "disagree", seed=0)
    assert len(xs) == 300 and bool((net1(xs).argmin(1) != net2(xs).argmin(1)).all())


def test_modern_training_resumes_to_the_same_weights_as_an_uninterrupted_run(tmp_path, data_dir):
    config = TrainConfig(
        model=ModelConfig(arch="modern"),
        optimizer="adamw",
        loss="ce",
        lr=3e-3,
        weight_decay=0.05,
        label_smoothing=0.05,
        augment=True,
        rotate=10.0,
        elastic=34.0,
        batch_size=64,
        epochs=2,
        train_subset=640,
        test_subset=200,
        train_eval=False,
        data_dir=str(data_dir),
        out_dir=str(tmp_path),
        threads=1,
    )
    whole = train(TrainConfig(**{**config.__dict__, "run_name": "whole"}), progress=False, log=lambda s: None)

    class Stop(Exception):
        pass

    def stop_after_first_pass(line: str) -> None:
        if line.startswith("pass  1/2"):
            raise Stop

    with pytest.raises(Stop):
        train(TrainConfig(**{**config.__dict__, "run_name": "cut"}), progress=False, log=stop_after_first_pass)
    resumed = train(None, resume=tmp_path / "cut", progress=False, log=lambda s: None)
    a = torch.load(tmp_path / "whole" / "weights.pt", weights_only=True)["state_dict"]
    b = torch.load(tmp_path / "cut" / "weights.pt", weights_only=True)["state_dict"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert whole["test"]["error_rate"] == resumed["test"]["error_rate"]
    machine = json.loads((tmp_path / "cut" / "machine.json").read_text())  # what ran it, for the timings
    assert machine["cpus"] >= 1 and machine["torch"] == torch.__version__ and machine["gpu"] is None


def test_cli_trains_a_sibling_and_the_slides_net_and_scores_an_ensemble(tmp_path, data_dir):
    for arch, extra in (("lenet1", ["--optimizer", "adam"]), ("slides", ["--optimizer", "adam", "--loss", "ce"])):
        r = run_cli("train", "--arch", arch, *extra, "--batch-size", "32", "--dry-run", "--quiet", "--json",
                    "--out-dir", str(tmp_path), "--run-name", arch, "--data-dir", str(data_dir))  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout.strip().splitlines()[-1])["n"] == 500
    out = tmp_path / "ens.json"
    weights = [a for arch in ("lenet1", "slides") for a in ("--weights", str(tmp_path / arch / "weights.pt"))]
    r = run_cli("evaluate", *weights, "--json", "--out", str(out), "--data-dir", str(data_dir))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["n"] == 10_000 and len(result["weights"]) == 2 and 0 <= result["error_rate"] <= 100


@pytest.mark.parametrize(
    "args, message",
    [
        (["--arch", "modern"], "SDLM trains the paper's networks only"),
        (["--arch", "modern2"], "SDLM trains the paper's networks only"),
        (["--noise", "0.7"], "noise must be a flip probability"),
        (["--augment", "--distort"], "choose one"),
        (["--arch", "modern", "--optimizer", "adamw", "--elastic", "34"], "add to --augment"),
        (["--arch", "modern", "--optimizer", "adamw", "--augment", "--rotate", "120"], "rotate must be in [0, 90]"),
        (["--arch", "lenet4", "--engine", "numba"], "numba trains LeNet-5"),
    ],
)
def test_cli_refuses_bad_variant_recipes_in_one_line(tmp_path, args, message):
    r = run_cli("train", *args, "--dry-run", "--quiet", "--out-dir", str(tmp_path))
    assert r.returncode == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_compare_writes_results_md_with_measured_rows_and_says_which_were_not_run(tmp_path, data_dir):
    r = run_cli("train", "--arch", "linear", "--optimizer", "adam", "--batch-size", "64", "--dry-run", "--quiet",
                "--out-dir", str(tmp_path), "--run-name", "linear-s0", "--data-dir", str(data_dir))  # fmt: skip
    assert r.returncode == 0, r.stderr
    knn = {"error_rate": 2.5, "misses": 250, "n": 10_000, "seconds": 90.0, "device": "cpu", "machine": {"cpus": 16}}
    (tmp_path / "knn.json").write_text(json.dumps(knn))
    md = tmp_path / "RESULTS.md"
    rows = compare(tmp_path, md, tmp_path / "none", robustness_json=None, speed=True, data_dir=str(data_dir))
    linear = next(row for row in rows if row["key"] == "linear")
    measured = json.loads((tmp_path / "linear-s0" / "test.json").read_text())["error_rate"]
    assert linear["status"] == "ok" and linear["mean"] == measured and linear["images_per_second"] > 0
    text = md.read_text()
    assert f"| {measured:.2f} | 1 | 7,850 | 7,940 |" in text
    assert text.count("not run yet") >= len(ROWS) - 2
    assert f"(cpu, {os.cpu_count()} cores) |" in text  # the linear run's machine.json, named beside its time
    assert "| 2.50 | 1 | - | - | 1.5 min (cpu, 16 cores) | - |" in text
    assert "`lenet5 train --arch linear" in text
    r = run_cli("compare", "--run", "bogus", "--results", str(tmp_path), "--out", str(tmp_path / "x.md"))
    assert r.returncode == 1 and "unknown row(s) bogus" in r.stderr


def test_ensemble_rows_name_their_members_and_the_confirmation_shares_none():
    from lenet5.compare import CONFIRM, ENSEMBLE

    members = {r.key: [a for a in r.argv if a.endswith("weights.pt")] for r in ROWS if r.kind == "ensemble"}
    assert members["modern-rotate-confirm"] == [f"{{out}}/modern-rotate-s{s}/weights.pt" for s in CONFIRM]
    earlier = set(members["modern-ensemble"]) | set(members["modern-rotate-ensemble"])
    assert len(members["modern-ensemble"]) == sum(len(s) for s in ENSEMBLE.values()) and not earlier & set(
        members["modern-rotate-confirm"]
    )
    rotate = next(r for r in ROWS if r.key == "modern-rotate")
    assert set(CONFIRM) <= set(rotate.seeds)  # `lenet5 compare --run modern-rotate` trains them


def test_plot_draws_the_robustness_curves_and_the_slides_training_curves(tmp_path):
    from PIL import Image

    pytest.importorskip("matplotlib")
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "robust.png"
    r = run_cli("plot", "robustness", "--results", str(repo / "results" / "robustness.json"), "--out", str(out))
    assert r.returncode == 0, r.stderr
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 2 * im.size[1]  # four panels side by side
    run = next((repo / "results" / "variants").glob("slides-s*"))
    out = tmp_path / "slides.png"
    r = run_cli("plot", "softmax-curves", "--run", str(run), "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert Image.open(out).format == "PNG"
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    r = run_cli("plot", "robustness", "--results", str(bad), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 1 and "not a robustness result" in r.stderr and "Traceback" not in r.stderr


def test_test_time_augmentation_sums_the_penalties_of_each_view(mnist):
    from lenet5.distort import view_maps, warp
    from lenet5.model import TestTimeAugment

    torch.manual_seed(0)
    net = build_model(ModelConfig(arch="modern")).eval()
    x = mnist[2][:16]
    tta = TestTimeAugment(net, "shift-rotate").eval()
    expected = sum(net(warp(x, m.expand(16, 2, 3))) for m in view_maps("shift-rotate"))
    with torch.no_grad():
        torch.testing.assert_close(tta(x), expected)
        assert torch.equal(tta.predict(x), expected.argmin(1))
        torch.testing.assert_close(TestTimeAugment(net, "none")(x), net(x))  # one view: the net itself
        listed = TestTimeAugment(net, [(0, 0, 0, 1), (1, 0, 0, 1)])  # views given as (dx, dy, degrees, scale)
        torch.testing.assert_close(listed(x), net(x) + net(torch.roll(x, 1, dims=3)), atol=1e-4, rtol=1e-5)
        # over an ensemble it is the ensemble of each member's test-time views (sums commute)
        other = build_model(ModelConfig(arch="modern")).eval()
        both = TestTimeAugment(Ensemble([net, other]), "shift")(x)
        torch.testing.assert_close(both, TestTimeAugment(net, "shift")(x) + TestTimeAugment(other, "shift")(x))


def test_cli_evaluate_with_test_time_augmentation_scores_the_shipped_weights(tmp_path):
    out = tmp_path / "tta.json"
    r = run_cli("evaluate", "--pretrained", "--tta", "shift", "--json", "--out", str(out))
    assert r.returncode == 0, r.stderr
    result = json.loads(out.read_text())
    assert result["tta"] == "shift" and result["n"] == 10_000
    plain = json.loads(run_cli("evaluate", "--pretrained", "--json").stdout)
    # results/tta/shipped.txt: 92 misses read once, 83 in the five shifted views
    assert plain["tta"] == "none" and result["misses"] < plain["misses"] <= 100
    r = run_cli("evaluate", "--pretrained", "--tta", "tilt")
    assert r.returncode == 2 and "invalid choice: 'tilt'" in r.stderr and "Traceback" not in r.stderr


def test_the_all_nets_row_holds_every_modern_member_once_and_rows_know_their_views():
    from lenet5.compare import Row, _evaluate

    rows = {r.key: r for r in ROWS}
    every = rows["modern-all"].members()
    assert len(every) == len(set(every)) == 17 and rows["modern-all"].tta == "none"
    assert set(every) == set(rows["modern-ensemble"].members()) | set(rows["modern-rotate-confirm"].members())
    row = Row("x", "x", "modern", _evaluate("x", ["a-s0", "b-s1"], "--tta", "shift"), "ensemble", (0,))
    assert row.tta == "shift" and row.members(out="o") == ["o/a-s0/weights.pt", "o/b-s1/weights.pt"]
    assert row.command(out="o")[-5:] == ["--tta", "shift", "--json", "--out", "o/x.json"]


def test_the_registered_test_time_row_scores_the_same_nets_with_the_views_validate_chose():
    from lenet5.config import TTA_VIEWS

    rows = {r.key: r for r in ROWS}
    tta = rows["modern-all-tta"]
    assert tta.members() == rows["modern-all"].members() and tta.tta == "shift-rotate-scale"
    assert f"in {len(TTA_VIEWS[tta.tta])} views" in tta.label
    # results/tta/validate.txt: the named set with the fewest misses of the two held-out nets together
    lines = (Path(__file__).parent.parent / "results" / "tta" / "validate.txt").read_text().splitlines()
    together = {ln.split(" (")[0]: int(ln.split()[-1]) for ln in lines if ln.split(" (")[0] in TTA_VIEWS}
    best = min((n for n in together if n != "none"), key=lambda n: (together[n], len(TTA_VIEWS[n])))
    assert best == tta.tta and together[best] < together["none"]


def test_compare_counts_each_view_and_refuses_a_result_scored_with_other_views(tmp_path):
    from lenet5.compare import collect
    from lenet5.errors import Lenet5Error

    rows = {r.key: r for r in ROWS}
    plain, tta = collect(rows["modern-all"], tmp_path), collect(rows["modern-all-tta"], tmp_path)
    assert plain["status"] == tta["status"] == "not run"  # nothing in tmp_path, but the costs are counted
    assert tta["params"] == plain["params"] == 17 * 47_950 and tta["macs"] == 9 * plain["macs"]
    (tmp_path / "modern-all-tta.json").write_text(json.dumps({"error_rate": 0.3, "misses": 30, "n": 10_000}))
    with pytest.raises(Lenet5Error, match="scored with --tta none, row modern-all-tta asks for shift-rotate-scale"):
        collect(rows["modern-all-tta"], tmp_path)


def test_the_mixed_rows_add_the_registered_second_design_nets_and_count_each_members_cost(tmp_path):
    from lenet5.compare import _member_arch, collect
    from lenet5.errors import Lenet5Error

    rows = {r.key: r for r in ROWS}
    old, mixed, tta = rows["modern-all"].members(), rows["modern-mixed"].members(), rows["modern-mixed-tta"].members()
    new = [m for m in mixed if m not in old]
    assert mixed == tta and mixed[: len(old)] == old and len(set(mixed)) == len(mixed) == 24
    assert new == [f"results/variants/modern2-s{s}/weights.pt" for s in range(20, 27)]
    assert {_member_arch(m) for m in old} == {"modern"} and {_member_arch(m) for m in new} == {"modern2"}
    assert rows["modern-mixed"].tta == "none" and rows["modern-mixed-tta"].tta == "shift-rotate-scale"
    plain, views = collect(rows["modern-mixed"], tmp_path), collect(rows["modern-mixed-tta"], tmp_path)
    assert plain["params"] == views["params"] == 17 * 47_950 + 7 * 53_522
    assert plain["macs"] == 17 * 10_783_320 + 7 * 6_059_472 and views["macs"] == 9 * plain["macs"]
    with pytest.raises(Lenet5Error, match="no training row 'mystery'"):
        _member_arch("results/variants/mystery-s3/weights.pt")
    # a result file of the row's views but fewer nets is not the registered ensemble
    short = [m.replace("results/variants", str(tmp_path)) for m in mixed[:-1]]
    (tmp_path / "modern-mixed-tta.json").write_text(
        json.dumps({"error_rate": 0.3, "misses": 30, "n": 10_000, "tta": "shift-rotate-scale", "weights": short})
    )
    with pytest.raises(Lenet5Error, match="scored with other nets than row modern-mixed-tta's 24"):
        collect(rows["modern-mixed-tta"], tmp_path)


@pytest.mark.parametrize(
    "folder, key, point, seeds, words",
    [
        ("modern2", "modern2", "2", range(20, 27), "Seeds 20 to 26 (seven nets)"),
        ("modern2-long", "modern2-long", "1", range(30, 35), "Seeds 30 to 34 (five nets)"),
        ("long-ensemble", "modern2-long", "1", range(30, 37), "is the `modern2-long` row's, unchanged"),
    ],
)
def test_the_registered_rows_train_the_recipe_and_seeds_registered_before_training(folder, key, point, seeds, words):
    """Each PREREGISTRATION.md names a command and seeds in its point on the recipe; the row must run exactly that."""
    text = (Path(__file__).parent.parent / "results" / folder / "PREREGISTRATION.md").read_text()
    point = re.split(r"\n\d\. \*\*", text.split(f"\n{point}. **The recipe**")[1])[0]
    registered = next(" ".join(c.split()) for c in point.split("`") if c.startswith("lenet5 train"))
    row = {r.key: r for r in ROWS}[key]
    argv = row.command(seed=seeds[0])
    assert argv[argv.index("--out-dir") :] == [
        "--out-dir", "results/variants", "--run-name", f"{key}-s{seeds[0]}", "--seed", str(seeds[0]), "--quiet"
    ]  # fmt: skip
    assert "lenet5 " + " ".join(argv[: argv.index("--out-dir")]) == registered
    # a later registration may add seeds to a row (results/long-ensemble: 35 and 36), never change the earlier ones
    assert row.seeds[: len(seeds)] == tuple(seeds) and words in " ".join(point.split())


def test_the_long_row_is_the_second_design_trained_twice_as_long():
    rows = {r.key: r for r in ROWS}
    long, short = rows["modern2-long"].command(), rows["modern2"].command()
    assert long[long.index("--epochs") + 1] == "60" and short[short.index("--epochs") + 1] == "30"
    assert _with(short, "--epochs", "60") == tuple(a.replace("modern2-long-sS", "modern2-sS") for a in long)
    assert rows["modern2-long"].arch == "modern2"


def test_the_sixth_registered_ensemble_is_the_seven_long_nets_alone():
    """results/modern2-long's gate closed, so no ensemble with other nets holds a 60-pass one;
    results/long-ensemble/PREREGISTRATION.md registered its five nets and two more (seeds 35, 36), alone, in the
    views, and the same without views as control."""
    text = " ".join(
        (Path(__file__).parent.parent / "results" / "long-ensemble" / "PREREGISTRATION.md").read_text().split()
    )
    assert "seeds 35 and 36" in text and "The seven 60-pass nets (modern2-long-s30 to s36), and no other" in text
    assert "`lenet5 compare --run long-tta`" in text and "without views (`long`)" in text
    rows = {r.key: r for r in ROWS}
    assert rows["modern2-long"].seeds == tuple(range(30, 37))
    seven = [f"results/variants/modern2-long-s{s}/weights.pt" for s in range(30, 37)]
    assert rows["long-tta"].members() == rows["long"].members() == seven
    assert rows["long-tta"].tta == "shift-rotate-scale" and rows["long"].tta == "none"
    others = [m for r in ROWS if r.kind == "ensemble" and r.key not in ("long", "long-tta") for m in r.members()]
    assert others and not [m for m in others if "modern2-long" in m]
