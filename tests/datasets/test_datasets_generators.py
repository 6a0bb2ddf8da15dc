"""Generators: determinism, requested rate, length bounds, group structure, rollout calibration."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab import datasets
from schedlab.datasets.rollout import CALIBRATED, rollout_stats

FAST = settings(max_examples=50, deadline=None)


def test_same_seed_same_workload():
    a = datasets.gamma_arrivals(100, 3.0, cv=2.0, seed=7)
    assert np.array_equal(a, datasets.gamma_arrivals(100, 3.0, cv=2.0, seed=7))
    assert not np.array_equal(a, datasets.gamma_arrivals(100, 3.0, cv=2.0, seed=8))
    g1, g2 = np.random.default_rng(5), np.random.default_rng(5)
    assert np.array_equal(
        datasets.poisson_arrivals(50, 1.0, seed=g1), datasets.poisson_arrivals(50, 1.0, seed=g2)
    )
    src = datasets.load("azure-code-2023")
    for lengths in ("empirical", "fitted"):
        w1 = datasets.synthetic_workload(300, rate_per_s=2.0, source=src, seed=1, lengths=lengths)
        w2 = datasets.synthetic_workload(300, rate_per_s=2.0, source=src, seed=1, lengths=lengths)
        assert np.array_equal(w1.output_tokens, w2.output_tokens)
        assert np.array_equal(w1.arrival_s, w2.arrival_s)
    r1 = datasets.rollout_batch(30, 8, seed=3)
    r2 = datasets.rollout_batch(30, 8, seed=3)
    for col in ("output_tokens", "input_tokens", "group_id"):
        assert np.array_equal(getattr(r1, col), getattr(r2, col))
    assert np.array_equal(r1.prefix_block_ids.ids, r2.prefix_block_ids.ids)
    with pytest.raises(ValueError, match="'seed' parameter"):
        datasets.poisson_arrivals(5, 1.0, seed=None)


@FAST
@given(rate=st.floats(0.05, 500.0), cv=st.floats(0.2, 4.0), seed=st.integers(0, 2**32 - 1))
def test_arrival_rate_and_cv(rate, cv, seed):
    n = 20_000
    t = datasets.gamma_arrivals(n, rate, cv=cv, seed=seed)
    gaps = np.diff(t)
    assert (gaps >= 0).all() and t[0] >= 0
    # mean gap has relative standard error cv / sqrt(n) <= 0.03: allow 5 sigma
    assert n / t[-1] == pytest.approx(rate, rel=5 * cv / np.sqrt(n))
    assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.25)


@FAST
@given(
    rate=st.floats(0.1, 100.0),
    duration=st.floats(1.0, 1e4),
    start=st.integers(0, 3000),
    n=st.integers(50, 2000),
)
def test_replay_hits_target_rate_or_window(rate, duration, start, n):
    w = datasets.load("azure-conv-2023").take(slice(start, start + n))
    fast = datasets.replay(w, rate_per_s=rate)
    assert len(fast) / fast.duration_s == pytest.approx(rate, rel=1e-9)
    assert np.array_equal(fast.input_tokens, w.input_tokens)
    win = datasets.replay(w, duration_s=duration)
    assert win.arrival_s[0] == 0 and win.duration_s == pytest.approx(duration, rel=1e-9)
    # burst shape kept: gaps are proportional
    g0, g1 = np.diff(w.arrival_s), np.diff(win.arrival_s)
    assert np.allclose(g1, g0 * (duration / w.duration_s))


@FAST
@given(
    P=st.integers(1, 40),
    G=st.integers(1, 16),
    max_tokens=st.integers(512, 131072),
    corr=st.one_of(st.none(), st.floats(0.0, 1.0)),
    seed=st.integers(0, 2**32 - 1),
)
def test_rollout_structure_and_bounds(P, G, max_tokens, corr, seed):
    w = datasets.rollout_batch(P, G, seed=seed, max_tokens=max_tokens, correlation=corr)
    assert len(w) == P * G
    lo = max(1, max_tokens // 128)
    assert w.output_tokens.min() >= lo and w.output_tokens.max() <= max_tokens
    assert np.array_equal(w.group_id, np.repeat(np.arange(P), G))
    prompts = w.input_tokens.reshape(P, G)
    assert (prompts == prompts[:, :1]).all()  # one prompt per group
    assert np.array_equal(w.features["truncated"], w.output_tokens == max_tokens)
    pb = w.prefix_block_ids
    assert np.array_equal(pb.counts(), w.input_tokens // w.block_tokens)
    for g in range(P):  # samples of a prompt share its blocks; prompts never share
        first = pb[g * G]
        assert all(np.array_equal(pb[g * G + i], first) for i in range(G))
    owners = np.repeat(w.group_id, pb.counts())
    assert all(np.unique(owners[pb.ids == b]).size == 1 for b in np.unique(pb.ids)[:50])


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("max_tokens", [32768, 8192])
def test_rollout_defaults_reproduce_published_statistics(seed, max_tokens):
    """Median within-prompt CV ~0.19, p90 ~0.51 (4 samples per prompt, ddof=1); the longest 10%
    of requests hold ~half of the generated tokens; a few hundred tokens up to max_tokens."""
    w = datasets.rollout_batch(20_000, 4, seed=seed, max_tokens=max_tokens)
    s = rollout_stats(w)
    targets = CALIBRATED["targets"]
    assert s["group_cv_median"] == pytest.approx(targets["group_cv_median"], abs=0.015)
    assert s["group_cv_p90"] == pytest.approx(targets["group_cv_p90"], abs=0.025)
    assert s["top10_token_share"] == pytest.approx(targets["top10_token_share"], abs=0.025)
    assert 0.02 < s["truncated_fraction"] < 0.08
    assert np.quantile(w.output_tokens, 0.05) >= max_tokens // 128
    assert np.median(w.output_tokens) == pytest.approx(max_tokens / 16, rel=0.1)


def test_rollout_correlation_is_tunable():
    icc = [
        rollout_stats(datasets.rollout_batch(2000, 8, seed=0, correlation=r))["log_icc"]
        for r in (0.0, 0.5, 0.9, 1.0)
    ]
    assert icc == sorted(icc) and icc[0] < 0.25 and icc[-1] == pytest.approx(1.0)
    same = datasets.rollout_batch(50, 4, seed=0, correlation=1.0).output_tokens.reshape(50, 4)
    assert (same == same[:, :1]).all()
    with pytest.raises(ValueError, match="'correlation' parameter"):
        datasets.rollout_batch(5, 4, seed=0, correlation=1.5)


def test_fit_lengths_recovers_a_lognormal():
    x = np.rint(np.random.default_rng(0).lognormal(np.log(300), 0.8, 20_000)) + 1
    fits = datasets.fit_lengths(x)
    assert fits[0].family == "lognorm" and fits[0].ks_statistic < 0.01
    assert fits[0].params[0] == pytest.approx(0.8, rel=0.03)
    assert [f.ks_statistic for f in fits] == sorted(f.ks_statistic for f in fits)
    s = fits[0].sample(5000, seed=1, high=2000)
    assert s.min() >= 1 and s.max() <= 2000
    with pytest.raises(ValueError, match="positive finite lengths"):
        datasets.fit_lengths(np.array([0, 1, 2]))


@FAST
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**32 - 1))
def test_resample_draws_real_pairs(n, seed):
    src = datasets.load("azure-code-2023")
    i, o = datasets.resample_lengths(src, n, seed=seed)
    pairs = set(zip(src.input_tokens.tolist(), src.output_tokens.tolist(), strict=True))
    assert all(p in pairs for p in zip(i.tolist(), o.tolist(), strict=True))


def test_synthetic_workload_rate_and_range():
    src = datasets.load("mooncake-conversation")
    w = datasets.synthetic_workload(
        20_000, rate_per_s=8.0, source=src, seed=2, arrival_cv=2.0, lengths="fitted"
    )
    assert len(w) / w.duration_s == pytest.approx(8.0, rel=0.05)
    assert w.output_tokens.max() <= src.output_tokens.max()
    assert w.input_tokens.min() >= 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"lengths": "uniform"}, "'lengths' parameter of synthetic_workload"),
        ({"source": [1, 2]}, "'source' parameter of synthetic_workload must be a Workload"),
    ],
)
def test_synthetic_workload_names_a_bad_argument(change, message):
    kwargs = {"rate_per_s": 1.0, "source": datasets.load("azure-code-2023"), "seed": 0, **change}
    with pytest.raises(ValueError, match=message):
        datasets.synthetic_workload(5, **kwargs)
