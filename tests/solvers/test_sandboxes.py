"""Serverless optima: greedy reuse reaches the peak concurrency, the min-cost-flow reuse
schedule matches brute force on tiny traces and bounds a run's start time, and the verifiers
name the rule a schedule breaks."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.serverless import Invocations
from schedlab.datasets.serverless import trenv_functions
from schedlab.sim import simulate_serverless
from schedlab.solvers import (
    InvalidRun,
    ReuseSchedule,
    assign_sandboxes,
    latency_floor,
    peak_concurrency,
    solve_reuse,
    verify_reuse,
    verify_serverless_run,
)

FNS = trenv_functions(("DH", "JS", "IR"))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 6)), min_size=1, max_size=30))
def test_greedy_reuse_uses_exactly_the_peak(pairs) -> None:
    b = np.array([p[0] for p in pairs], float)
    e = b + np.array([p[1] for p in pairs], float)
    s = assign_sandboxes(b, e)
    assert np.unique(s).shape[0] == peak_concurrency(b, e)
    for k in np.unique(s):  # no sandbox serves two overlapping intervals
        idx = np.flatnonzero(s == k)
        order = idx[np.lexsort((e[idx] > b[idx], b[idx]))]  # an instant first
        assert (b[order][1:] >= e[order][:-1]).all()


@st.composite
def tiny(draw: st.DrawFn) -> Invocations:
    n = draw(st.integers(1, 6))
    t = np.sort(np.array(draw(st.lists(st.sampled_from([0.0, 0.05, 0.1, 0.2, 1.0]),
                                       min_size=n, max_size=n))))
    f = np.array(draw(st.lists(st.integers(0, 2), min_size=n, max_size=n)))
    return Invocations(arrival_s=t, function=f, n_functions=3)


def _brute(trace: Invocations, repurpose: bool, restore: str, backend: str) -> float:
    """Every hand-over schedule by depth-first search, priced by verify_reuse."""
    n, best = len(trace), [np.inf]
    end = trace.arrival_s + FNS.exec_s[trace.function]

    def go(i: int, pred: list[int]) -> None:
        if i == n:
            cost = verify_reuse(trace, FNS, ReuseSchedule(np.array(pred)), restore=restore,
                                backend=backend, repurpose=repurpose)
            best[0] = min(best[0], cost)
            return
        for j in [-1, *range(i)]:
            if j >= 0 and (j in pred or end[j] > trace.arrival_s[i] + 1e-9 or
                           (not repurpose and trace.function[j] != trace.function[i])):
                continue
            go(i + 1, [*pred, j])

    go(0, [])
    return best[0]


@settings(max_examples=40, deadline=None)
@given(tiny(), st.booleans())
def test_min_cost_flow_matches_brute_force(trace, repurpose) -> None:
    restore, backend = ("template", "cxl") if repurpose else ("criu", "local")
    r = solve_reuse(trace, FNS, repurpose=repurpose, restore=restore, backend=backend)
    assert r.objective == pytest.approx(_brute(trace, repurpose, restore, backend), abs=1e-5)
    assert r.status == "OPTIMAL" and r.gap == 0.0
    assert r.stats["creations"] + r.stats["reuses"] + r.stats["repurposes"] == len(trace)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from(["trenv", "criu", "reap"]))
def test_optimum_bounds_the_run_from_below(seed, policy) -> None:
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 3.0, 40))
    tr = Invocations(arrival_s=t, function=rng.integers(0, 3, 40), n_functions=3)
    run = simulate_serverless(tr, FNS, policy)
    key = {"trenv": ("template", "cxl", True), "criu": ("criu", "local", False),
           "reap": ("vm-lazy", "local", False)}[policy]
    opt = solve_reuse(tr, FNS, restore=key[0], backend=key[1], repurpose=key[2],
                      begin_s=tr.arrival_s + run.queue_s)
    assert opt.objective <= run.start_s.sum() + 1e-6


def test_verify_reuse_names_the_rule() -> None:
    tr = Invocations(arrival_s=[0.0, 0.01, 5.0], function=[0, 1, 1], n_functions=3)
    with pytest.raises(InvalidRun, match="busy"):
        verify_reuse(tr, FNS, ReuseSchedule(np.array([-1, 0, -1])))
    assert verify_reuse(tr, FNS, ReuseSchedule(np.array([-1, -1, 0]))) > 0  # handed once
    with pytest.raises(InvalidRun, match="handed twice"):
        verify_reuse(tr, FNS, ReuseSchedule(np.array([-1, 0, 0])))
    with pytest.raises(InvalidRun, match="no repurpose"):
        verify_reuse(tr, FNS, ReuseSchedule(np.array([-1, -1, 0])), repurpose=False)
    with pytest.raises(ValueError, match="at most max_invocations=2"):
        solve_reuse(tr, FNS, max_invocations=2)
    with pytest.raises(ValueError, match="begin_s"):
        solve_reuse(tr, FNS, begin_s=[0.0, 0.0, 0.0])


def test_verify_run_catches_each_broken_rule() -> None:
    tr = Invocations(arrival_s=[0.0, 0.0, 1.0], function=[0, 1, 0], n_functions=3)
    run = simulate_serverless(tr, FNS, "criu")
    cols = dict(path=run.path, sandbox=run.sandbox, queue_s=run.queue_s,
                start_s=run.start_s, exec_s=run.exec_s, rejected={})
    verify_serverless_run(tr, FNS, **cols)
    with pytest.raises(InvalidRun, match="served once"):
        verify_serverless_run(tr, FNS, **{**cols, "rejected": {0: "why"}})
    with pytest.raises(InvalidRun, match="e2e terms"):
        verify_serverless_run(tr, FNS, **{**cols, "queue_s": np.array([-1.0, 0, 0])})
    with pytest.raises(InvalidRun, match="served in no sandbox"):
        verify_serverless_run(tr, FNS, **{**cols, "sandbox": np.array([0, -1, 1])})
    with pytest.raises(InvalidRun, match="one invocation per sandbox"):
        verify_serverless_run(tr, FNS, **{**cols, "sandbox": np.array([0, 0, 1])})
    with pytest.raises(InvalidRun, match="latency floor"):
        verify_serverless_run(tr, FNS, **{**cols, "exec_s": np.zeros(3)})
    with pytest.raises(InvalidRun, match="memory cap"):
        verify_serverless_run(tr, FNS, **cols, cap_mb=10.0, charged_mb=[0.0, 20.0])
    np.testing.assert_array_equal(latency_floor(tr, FNS), FNS.exec_s[[0, 1, 0]])
