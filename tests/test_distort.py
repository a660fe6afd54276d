"""The distorted training set (Sec. III-C): documented ranges, digits kept in the field, fixed by the seed."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lenet5.distort import (
    AUGMENT_RANGES,
    COPIES,
    RANGES,
    DistortedSet,
    affine_matrices,
    augment,
    distort,
    elastic_displacement,
    sample_params,
)


def test_parameters_stay_in_the_documented_ranges():
    p = sample_params(100_000, np.random.default_rng(0))
    for k, (lo, hi) in enumerate(RANGES.values()):
        assert p[:, k].min() >= lo and p[:, k].max() <= hi
        # the whole range is used
        assert p[:, k].min() < lo + 0.01 * (hi - lo) and p[:, k].max() > hi - 0.01 * (hi - lo)


def test_every_map_keeps_the_central_20x20_box_inside_the_32x32_field():
    """MNIST digits fit a 20x20 box; its corners, mapped by any sampled distortion, stay in the field."""
    m = affine_matrices(sample_params(100_000, np.random.default_rng(1)))
    corners = torch.tensor([[-10.0, -10.0, 1.0], [10.0, -10.0, 1.0], [-10.0, 10.0, 1.0], [10.0, 10.0, 1.0]]).double()
    mapped = torch.einsum("nij,cj->nci", m, corners)  # (N, 4, 2) offsets from the field centre
    assert float(mapped.abs().max()) <= 16.0


def test_identity_parameters_leave_the_image_unchanged(mnist):
    x = mnist[0][:8]
    identity = np.tile(np.array([[0, 0, 1, 1, 0]], np.float32), (8, 1))
    assert torch.allclose(distort(x, identity), x, atol=1e-5)


def test_translation_moves_the_ink_by_whole_pixels(mnist):
    x = mnist[0][:4]
    shifted = distort(x, np.tile(np.array([[1, -1, 1, 1, 0]], np.float32), (4, 1)))
    # one pixel right and one up: output (r, c) is input (r + 1, c - 1)
    assert torch.allclose(shifted[:, :, 1:-2, 2:-1], x[:, :, 2:-1, 1:-2], atol=1e-5)


def test_real_digits_keep_their_ink_inside_the_field(mnist):
    x = mnist[0][:512]
    params = sample_params(512, np.random.default_rng(2))
    out = distort(x, params)
    ink_in, ink_out = (x + 0.1).sum((1, 2, 3)), (out + 0.1).sum((1, 2, 3))
    area = params[:, 2] ** 2  # the area scales as scale^2 (squeeze and shear preserve area)
    ratio = (ink_out / ink_in).numpy() / area
    assert np.all(np.abs(ratio - 1) < 0.05)  # no ink lost off the edge (bilinear blur aside)
    assert float(out.min()) >= -0.1 - 1e-5 and float(out.max()) <= 1.175 + 1e-5


def test_distorted_set_is_fixed_by_the_seed_and_covers_ten_versions(mnist):
    x = mnist[0][:100]
    a, b, c = DistortedSet(x, 7), DistortedSet(x, 7), DistortedSet(x, 8)
    assert len(a) == 100 * (COPIES + 1)
    assert np.array_equal(a.params, b.params) and not np.array_equal(a.params, c.params)
    versions = a.versions_for_pass(np.random.default_rng(0))
    assert versions.min() >= 0 and versions.max() <= COPIES
    idx = np.arange(100)
    pats = a.patterns(idx, versions)
    originals = versions == 0
    assert torch.equal(pats[originals], x[originals])
    assert not torch.allclose(pats[~originals], x[~originals])
    assert torch.equal(pats, b.patterns(idx, versions))  # the same copy every time it is drawn


def test_twenty_passes_see_about_the_papers_number_of_distinct_patterns():
    """Each pass shows each digit in one of its 10 versions: 20 passes see ~60,000 x 10 x (1 - 0.9^20)."""
    n = 60000
    fields = torch.zeros(n, 1, 32, 32)
    dataset = DistortedSet(fields, seed=0)
    seen = np.zeros((n, COPIES + 1), bool)
    for epoch in range(20):
        versions = dataset.versions_for_pass(np.random.default_rng([0, epoch]))
        assert versions.shape == (n,)
        seen[np.arange(n), versions] = True
    assert seen.sum() == pytest.approx(n * 10 * (1 - 0.9**20), rel=0.01)
    assert seen.sum() / len(dataset) == pytest.approx(0.878, abs=0.01)


def test_augment_without_rotation_or_elastic_draws_what_it_drew_before(mnist):
    """Runs recorded before --rotate and --elastic existed stay reproducible: the same draws, the same images."""
    x = mnist[0][:16]
    old = distort(x, sample_params(16, np.random.default_rng(3), AUGMENT_RANGES))
    assert torch.equal(augment(x, np.random.default_rng(3)), old)


def _orientation(img: torch.Tensor) -> float:
    """Angle (degrees, x right, y down) of the ink's long axis, from its second moments."""
    w = (img[0] + 0.1).clamp(min=0).double()
    ys, xs = torch.meshgrid(torch.arange(32.0).double(), torch.arange(32.0).double(), indexing="ij")
    m = w.sum()
    cx, cy = (w * xs).sum() / m, (w * ys).sum() / m
    dx, dy = xs - cx, ys - cy
    cxx, cyy, cxy = (w * dx * dx).sum() / m, (w * dy * dy).sum() / m, (w * dx * dy).sum() / m
    return float(np.degrees(0.5 * np.arctan2(float(2 * cxy), float(cxx - cyy))))


def test_rotation_turns_the_digit_by_the_drawn_angle(monkeypatch):
    """With the affine part held at the identity, a horizontal bar comes out at the angle the generator drew."""
    import lenet5.distort as d

    identity = {"tx": (0.0, 0.0), "ty": (0.0, 0.0), "scale": (1.0, 1.0), "squeeze": (1.0, 1.0), "shear": (0.0, 0.0)}
    monkeypatch.setattr(d, "AUGMENT_RANGES", identity)
    bar = torch.full((64, 1, 32, 32), -0.1)
    bar[:, :, 15:17, 6:26] = 1.175
    out = d.augment(bar, np.random.default_rng(4), rotate=30.0)
    rng = np.random.default_rng(4)
    d.sample_params(64, rng, d.AUGMENT_RANGES)
    drawn = rng.uniform(-30.0, 30.0, 64)  # what augment drew after the affine parameters
    measured = np.array([_orientation(im) for im in out])
    assert np.abs(drawn).max() > 25  # the whole range is used
    assert np.abs(np.abs(measured) - np.abs(drawn)).max() < 1.5  # bilinear sampling blurs a little
    assert np.corrcoef(measured, drawn)[0, 1] > 0.99 or np.corrcoef(measured, -drawn)[0, 1] > 0.99


def test_elastic_displacements_are_smooth_zero_mean_and_scale_with_alpha():
    a = elastic_displacement(200, 32, 10.0, np.random.default_rng(5))
    b = elastic_displacement(200, 32, 20.0, np.random.default_rng(5))
    assert a.shape == (200, 32, 32, 2) and torch.allclose(b, 2 * a, atol=1e-5)
    centre = a[:, 8:24, 8:24]  # away from the zero-padded border
    assert abs(float(centre.mean())) < 0.02 and 0.2 < float(centre.std()) < 0.8
    # neighbouring pixels move together (the Gaussian smoothing): correlation far above 0
    corr = torch.corrcoef(torch.stack([centre[:, :, :-1].flatten(), centre[:, :, 1:].flatten()]))[0, 1]
    assert float(corr) > 0.9


def test_elastic_augmentation_bends_digits_but_keeps_them_in_the_field(mnist):
    x = mnist[0][:512]
    plain = augment(x, np.random.default_rng(6))
    bent = augment(x, np.random.default_rng(6), rotate=10.0, elastic=34.0)
    assert float((bent - plain).abs().mean()) > 0.02  # it does something
    ink = bent + 0.1
    # strokes are locally stretched or squeezed, so a digit's ink changes, but not on the whole
    ratio = ink.sum((1, 2, 3)) / (plain + 0.1).sum((1, 2, 3))
    assert 0.9 < float(ratio.median()) < 1.1 and float(ratio.min()) > 0.4 and float(ratio.max()) < 2.0
    frame = torch.ones(32, 32, dtype=torch.bool)
    frame[2:-2, 2:-2] = False
    assert float(ink[:, 0][:, frame].sum() / ink.sum()) < 0.01  # almost nothing pushed to the edge
    assert float(bent.min()) >= -0.1 - 1e-5 and float(bent.max()) <= 1.175 + 1e-5


def test_test_time_views_are_the_input_shifted_rotated_and_scaled_as_named(mnist):
    from lenet5.config import PIXEL_BACKGROUND, TTA_VIEWS
    from lenet5.distort import view_maps, warp
    from lenet5.robustness import transform

    x = mnist[2][:4]
    maps = view_maps("shift-rotate-scale")
    assert maps.shape == (len(TTA_VIEWS["shift-rotate-scale"]), 2, 3) and len(view_maps("shift")) == 5
    assert torch.equal(warp(x, maps[0].expand(4, 2, 3)), x)  # the first view is the digit itself
    # dx = +-1 moves the digit one pixel right / left, dy = +-1 down / up: MNIST keeps the field's border blank,
    # so each is a roll of the image
    for k, shift, dim in ((1, 1, 3), (2, -1, 3), (3, 1, 2), (4, -1, 2)):
        moved = warp(x, maps[k].expand(4, 2, 3))
        torch.testing.assert_close(moved, torch.roll(x, shift, dims=dim), atol=1e-6, rtol=0)
    # the rotations and scalings are the robustness study's own (clockwise on screen for positive degrees)
    for k, study, value in ((5, "rotate", -5), (6, "rotate", 5), (7, "scale", 0.93), (8, "scale", 1.07)):
        assert torch.equal(warp(x, maps[k].expand(4, 2, 3)), transform(x, study, value))
    # x1.07 spreads the ink, x0.93 gathers it
    ink = [float((warp(x, maps[k].expand(4, 2, 3)) > PIXEL_BACKGROUND + 0.5).sum()) for k in (7, 0, 8)]
    assert ink[0] < ink[1] < ink[2]
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        view_maps("tilt")
    with pytest.raises(ValueError, match=r"\(dx, dy, degrees, scale\) rows"):
        view_maps([(0, 0, 0), (1, 0, 0), (0, 1, 0), (0, 0, 5)])  # four 3-tuples are not three views
