"""Eq. 8 and Eq. 9 against values computed by hand."""

from __future__ import annotations

import math

import pytest
import torch

from lenet5.loss import loss_fn, map_loss, mse_loss

PENALTIES = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.5, 6.0]])
TARGETS = torch.tensor([2, 1])


def test_mse_loss_is_the_mean_penalty_of_the_correct_class():
    assert float(mse_loss(PENALTIES, TARGETS)) == pytest.approx((3.0 + 0.5) / 2)


def test_map_loss_matches_hand_computation():
    j = 0.1
    p1 = 3.0 + math.log(math.exp(-j) + math.exp(-1) + math.exp(-2) + math.exp(-3))
    p2 = 0.5 + math.log(math.exp(-j) + math.exp(-4) + math.exp(-0.5) + math.exp(-6))
    assert float(map_loss(PENALTIES, TARGETS, j)) == pytest.approx((p1 + p2) / 2, rel=1e-6)


def test_map_loss_is_stable_for_huge_penalties():
    big = torch.tensor([[1e4, 2e4, 3e4]])
    value = map_loss(big, torch.tensor([0]), 0.1)
    assert torch.isfinite(value) and float(value) == pytest.approx(1e4 - 0.1, rel=1e-6)


def test_map_gradient_pushes_wrong_classes_up_and_the_right_one_down():
    p = PENALTIES.clone().requires_grad_(True)
    map_loss(p, TARGETS, 0.1).backward()
    assert p.grad[0, 2] > 0 and p.grad[0, 0] < 0 and p.grad[0, 1] < 0


def test_loss_fn_and_validation():
    assert loss_fn("mse") is mse_loss
    assert float(loss_fn("map", 0.5)(PENALTIES, TARGETS)) == pytest.approx(float(map_loss(PENALTIES, TARGETS, 0.5)))
    with pytest.raises(ValueError):
        loss_fn("hinge")
    with pytest.raises(ValueError):
        map_loss(PENALTIES, TARGETS, 0.0)
