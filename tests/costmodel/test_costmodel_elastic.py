"""Elastic sequence parallelism on the roofline (LoongServe §2.3, §5.5): one instance is a plain
prefill, more instances are never slower on long prompts and approach k-fold, and the analytic
model fits the roofline within the paper's 10% on average."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel import iteration_cost
from schedlab.costmodel.elastic import ElasticPrefillCost, PrefillModel, fit_prefill_model

COST = iteration_cost("lwm-text-1m", "a800", tp=2)
ESP = ElasticPrefillCost(cost=COST)


@pytest.mark.parametrize("length", [1, 100, 5_000, 100_000])
def test_one_instance_is_a_plain_prefill(length):
    assert ESP.time_s(1, [length]) == pytest.approx(
        float(COST.prefill_time_s(np.array([length]))[0]), rel=1e-9)


@settings(max_examples=60, deadline=None, database=None)
@given(lengths=st.lists(st.integers(1, 300_000), min_size=1, max_size=8), k=st.integers(1, 7))
def test_time_grows_with_the_batch_and_shrinks_at_most_k_fold(lengths, k):
    t1, tk, tk1 = ESP.time_s(1, lengths), ESP.time_s(k, lengths), ESP.time_s(k + 1, lengths)
    assert tk >= t1 / k * (1 - 1e-9)  # never better than perfect scaling
    assert ESP.time_s(k, [*lengths, 1000]) >= tk
    if sum(lengths) >= 50_000:  # long batches: one more instance helps
        assert tk1 < tk


def test_the_fit_is_within_the_papers_ten_percent_on_average():
    fit = fit_prefill_model(ESP, ks=(1, 2, 3, 4))
    assert fit.model.degrees == (1, 2, 3, 4)
    assert (fit.mean_rel_error < 0.10).all()
    a, b, c = (np.array([fit.model.rows[k][j] for k in (1, 2, 3, 4)]) for j in range(3))
    assert (np.diff(b) < 0).all() and (np.diff(c) < 0).all()  # more instances, less per token
    assert (a > 0).all()


def test_prefill_model_names_what_is_wrong():
    with pytest.raises(ValueError, match="at least one"):
        PrefillModel({})
    with pytest.raises(ValueError, match="three finite"):
        PrefillModel({1: (0.0, float("nan"), 0.0)})
    with pytest.raises(ValueError, match="no row for k=3"):
        PrefillModel({1: (0.0, 1.0, 0.0)}).time_s(3, 1, 1)
    with pytest.raises(ValueError, match="'k'"):
        ESP.time_s(0, [5])
    with pytest.raises(ValueError, match="'lengths'"):
        ESP.time_s(1, [0])
