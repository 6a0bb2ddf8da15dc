"""The AverSearch seed at smoke size: the report keeps the contract and its claims come from its
tables."""

from __future__ import annotations

import pytest

from schedlab.seeds import aversearch
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("aversearch", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in aversearch.CLAIMS]
    for c in report["claims"]:
        assert c["note"] and c["measured_value"] is not None, c
    assert report["setup"]["mode"] == "quick" and has_full_mode("aversearch")


def test_claims_come_from_the_tables(report: dict) -> None:
    t = report["tables"]["curves"]
    rows = list(zip(t["system"], t["threads"], t["latency_us"], t["loaded_latency_us"],
                    t["qps"], strict=True))
    fj = [(la, q) for s, _, _, la, q in rows if s == "fork-join"]
    av = [(la, q) for s, _, _, la, q in rows if s == "aversearch"]
    claims = {c["name"]: c for c in report["claims"]}
    assert claims["throughput-at-equal-latency"]["measured_value"] == pytest.approx(
        aversearch._equal_latency(fj, av), rel=1e-3)
    best_fj = min(a for s, _, a, _, _ in rows if s == "fork-join")
    best_av = min(a for s, _, a, _, _ in rows if s == "aversearch")
    assert claims["min-latency"]["measured_value"] == pytest.approx(best_fj / best_av, rel=1e-3)
    batch = next(q for s, _, _, _, q in rows if s == "sequential")
    at16 = next(q for s, t_, _, _, q in rows if s == "fork-join" and t_ == 16)
    assert claims["fork-join-loses-throughput"]["measured_value"] == pytest.approx(
        at16 / batch, rel=1e-3)
    o = report["tables"]["optimum"]
    for st, opt, bound in zip(o["status"], o["optimum_us"], o["bound_us"], strict=True):
        assert st in ("OPTIMAL", "FEASIBLE") and bound <= opt * (1 + 1e-6)


def test_equal_latency_reads_the_frontier():
    fj = [(10.0, 100.0), (20.0, 50.0), (5.0, 40.0)]  # (20, 50) is dominated by (10, 100)
    av = [(4.0, 120.0), (9.0, 200.0)]
    assert aversearch._frontier(fj) == [(5.0, 40.0), (10.0, 100.0)]
    assert aversearch._equal_latency(fj, av) == pytest.approx(3.0)  # 120 / 40 at 5 us
    assert aversearch._equal_latency(fj, [(30.0, 1e9)]) == 0.0
