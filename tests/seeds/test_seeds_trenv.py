"""The TrEnv seed at smoke size: the report keeps the contract, its claims come from its
tables, the optimum bounds every system, and T-CXL never creates more than the peak."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.seeds import trenv
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("trenv", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in trenv.CLAIMS]
    for c in report["claims"]:
        assert c["note"] and c["measured_value"] is not None, c
    assert report["setup"]["mode"] == "quick" and not has_full_mode("trenv")
    recon = [c["name"] for c in report["claims"] if "[recon" in c["metric"]]
    assert recon == ["agent-p99-saving", "agent-memory-saving"]


def test_claims_come_from_the_tables(report: dict) -> None:
    claims = {c["name"]: c["measured_value"] for c in report["claims"]}
    f13 = report["tables"]["fig13"]
    assert claims["p99-vs-reap-greatest"] == pytest.approx(max(f13["p99_reap_over_tcxl"]),
                                                           rel=1e-3)
    assert claims["p99-vs-reap-least"] == pytest.approx(min(f13["p99_reap_over_tcxl"]),
                                                        rel=1e-3)
    m = report["tables"]["memory"]
    peak = {(w, s): v for w, s, v in zip(m["workload"], m["system"], m["peak_memory_mb"],
                                         strict=True)}
    saving = np.mean([100 * (1 - peak[(w, "T-CXL")] / peak[(w, b)])
                      for w in ("W1", "W2") for b in ("REAP+", "FaaSnap+")])
    assert claims["memory-saving"] == pytest.approx(saving, abs=0.01)
    for w, s, v, fl in zip(m["workload"], m["system"], m["peak_memory_mb"], m["floor_mb"],
                           strict=True):
        assert fl <= v + 1e-6 or not s.startswith("T-"), (w, s)  # the floor bounds TrEnv
    f14 = report["tables"]["fig14"]
    np.testing.assert_allclose(f14["e2e_ms"], f14["paper_ms"], rtol=0.05)


def test_optimum_bounds_every_system(report: dict) -> None:
    o = report["tables"]["optimum"]
    assert all(r >= 1.0 - 1e-6 for r in o["ratio"] if r is not None)
    for s, c, p in zip(o["system"], o["creations"], o["peak_concurrency"], strict=True):
        assert c >= p if s != "T-CXL" else c == p  # greedy reuse reaches the peak


def test_trenv_repurposes_where_baselines_create(report: dict) -> None:
    m = report["tables"]["memory"]
    for w, s, c, r, rej in zip(m["workload"], m["system"], m["creations"], m["repurposes"],
                               m["rejected"], strict=True):
        assert rej == 0, (w, s)
        assert (r > 0) == s.startswith("T-"), (w, s)
        assert c > 0 or s.startswith("T-"), (w, s)  # TrEnv's 70 prestarted may suffice
