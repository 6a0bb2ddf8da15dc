"""TrEnv's workloads: W1 and W2 as the artifact generates them, the Azure-like generator's
exact count and bounds, the agent workload, and bad input named."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.datasets.serverless import (
    agent_functions,
    agent_workload,
    bursty_functions,
    bursty_trace,
    paper_workload,
    trenv_functions,
)


def test_w2_is_deterministic_bursts_of_the_artifact() -> None:
    w = paper_workload("w2")
    assert len(w.trace) == 12 * 450  # 450 a cycle (the artifact's W2), 12 cycles
    per_cycle = np.bincount((w.trace.arrival_s // 160).astype(int))
    assert per_cycle.tolist() == [450] * 12
    dh = w.trace.function == w.functions.index("DH")
    assert (np.floor(w.trace.arrival_s[dh]) % 160 == 10).all()  # DH bursts at second 10
    assert (w.warmup_s, w.cap_mb, w.keep_alive_s) == (320.0, 32768.0, 180.0)


def test_w1_bursts_are_noisy_and_capped() -> None:
    a, b = paper_workload("w1", seed=0), paper_workload("w1", seed=1)
    assert len(a.trace) != len(b.trace)
    dh = a.trace.function == a.functions.index("DH")
    per = np.bincount((a.trace.arrival_s[dh] // 143).astype(int))
    assert per.max() <= 220 and per.min() > 150  # |N(200, 20)| capped at 1.1 c
    assert a.cap_mb == 65536.0 and a.keep_alive_s == 120.0


def test_bursty_trace_has_exactly_n_within_the_duration() -> None:
    tr = bursty_trace(50_000, 300, duration_s=1800.0, seed=3)
    assert len(tr) == 50_000 and tr.arrival_s.max() < 1800.0
    assert (np.diff(tr.arrival_s) >= 0).all() and tr.function.max() < 300
    counts = np.bincount(tr.function, minlength=300)
    assert counts.max() > 20 * np.median(counts)  # heavy-tailed popularity
    again = bursty_trace(50_000, 300, duration_s=1800.0, seed=3)
    np.testing.assert_array_equal(tr.arrival_s, again.arrival_s)


def test_bursty_functions_cycle_the_paper_profiles() -> None:
    f = bursty_functions(23)
    base = trenv_functions()
    assert len(f) == 23 and f.image_mb[11] == base.image_mb[0]


def test_agent_workload_and_browser_sharing() -> None:
    w = agent_workload(50, duration_s=300.0, seed=2)
    assert len(w.trace) >= 50 * 4 and w.functions.names[0] == "blackjack"
    shared = agent_functions(browser_sharing=True)
    plain = agent_functions()
    assert (shared.written_mb <= plain.written_mb + 1e-9).all()
    assert (shared.touched_mb == plain.touched_mb).all()


@pytest.mark.parametrize(("call", "match"), [
    (lambda: paper_workload("w3"), "Unknown TrEnv workload 'w3'"),
    (lambda: paper_workload("w1", cycles=2, warmup_cycles=2), "warmup_cycles"),
    (lambda: bursty_trace(0, 5), "n_invocations"),
    (lambda: bursty_trace(10, 5, burst_share=2.0), "burst_share"),
    (lambda: bursty_trace(10, 5, duration_s=float("nan")), "duration_s"),
    (lambda: trenv_functions(("IR", "XX")), "Unknown TrEnv function 'XX'"),
    (lambda: agent_workload(10, calls_per_session=(3, 1)), "calls_per_session"),
])
def test_bad_input_is_named(call, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        call()
