"""Metric properties: perfect and reversed orders, ties, the top-k size, and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedlab.predictors import evaluate, kendall_tau, mae, top_alpha_recall, top_count


@pytest.fixture
def lengths() -> np.ndarray:
    return np.random.default_rng(0).permutation(np.arange(1, 101)).astype(float)


def test_perfect_ranking_has_recall_and_tau_one(lengths) -> None:
    for score in (lengths, 3 * lengths + 7, np.log(lengths)):  # any increasing transform
        assert top_alpha_recall(lengths, score) == 1.0
        assert kendall_tau(lengths, score) == pytest.approx(1.0)
    assert mae(lengths, lengths) == 0.0


def test_reversed_ranking_has_tau_minus_one_and_recall_zero(lengths) -> None:
    assert kendall_tau(lengths, -lengths) == pytest.approx(-1.0)
    assert top_alpha_recall(lengths, -lengths, alpha=0.2) == 0.0
    assert top_alpha_recall(lengths, -lengths, alpha=1.0) == 1.0  # everything is the top


def test_random_scores_recall_about_alpha() -> None:
    rng = np.random.default_rng(1)
    y = rng.lognormal(5, 1, 20_000)
    assert top_alpha_recall(y, rng.uniform(size=y.size), 0.2) == pytest.approx(0.2, abs=0.02)
    assert abs(kendall_tau(y, rng.uniform(size=y.size))) < 0.02


def test_top_count_is_ceil_alpha_n_without_float_surprises() -> None:
    assert [top_count(30, 0.1), top_count(10, 0.2), top_count(11, 0.2), top_count(5, 1.0)] == [
        3, 2, 3, 5]
    assert top_count(7, 1e-6) == 1
    for n in range(1, 200):
        for a in (0.1, 0.2, 0.3, 0.7):
            assert top_count(n, a) == math.ceil(round(a * n, 9))


def test_ties_break_by_row_order() -> None:
    y = [5, 1, 9, 7]
    # all scores equal: the top-2 by score are rows 0 and 1; the true top-2 are rows 2 and 3
    assert top_alpha_recall(y, [1, 1, 1, 1], alpha=0.5) == 0.0
    assert top_alpha_recall(y, [0, 0, 1, 1], alpha=0.5) == 1.0
    # tied truth at the boundary: the earlier row counts as longer
    assert top_alpha_recall([3, 3, 1], [0, 1, 0], alpha=0.3) == 0.0
    assert top_alpha_recall([3, 3, 1], [1, 0, 0], alpha=0.3) == 1.0


def test_evaluate_collects_every_metric(lengths) -> None:
    r = evaluate(lengths, lengths + 2, alpha=0.1)
    assert r == {"n": 100, "mae": 2.0, "kendall_tau": pytest.approx(1.0), "alpha": 0.1,
                 "top_alpha_recall": 1.0, "random_top_alpha_recall": 0.1}


def test_kendall_tau_is_nan_when_order_is_undefined() -> None:
    assert math.isnan(kendall_tau([5], [1]))
    assert math.isnan(kendall_tau([5, 5, 5], [1, 2, 3]))
    assert math.isnan(kendall_tau([1, 2, 3], [0, 0, 0]))


@pytest.mark.parametrize("alpha", [0.0, -0.1, 1.5, float("nan"), "0.2"])
def test_alpha_outside_unit_interval_is_named(alpha) -> None:
    with pytest.raises(ValueError, match=r"'alpha' parameter of top_alpha_recall"):
        top_alpha_recall([1, 2, 3], [1, 2, 3], alpha=alpha)
    with pytest.raises(ValueError, match=r"'alpha' parameter of evaluate"):
        evaluate([1, 2, 3], [1, 2, 3], alpha=alpha)


@pytest.mark.parametrize("fn", [mae, kendall_tau, top_alpha_recall, evaluate])
def test_bad_input_names_the_field(fn) -> None:
    with pytest.raises(ValueError, match=r"'y_true' parameter .* >= 0"):
        fn([1, -2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"'y_true' parameter .* finite"):
        fn([1, np.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match=r"parameter .* finite; element 2"):
        fn([1, 2, 3], [1, 2, np.inf])
    with pytest.raises(ValueError, match=r"must have length 3"):
        fn([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match=r"'y_true' parameter .* 1-dimensional"):
        fn([[1, 2, 3]], [[1, 2, 3]])
    with pytest.raises(ValueError, match=r"'y_true' parameter .* empty"):
        fn([], [])
