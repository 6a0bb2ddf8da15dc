"""The LoongServe seed at smoke size: the report keeps the contract and its claims come from its
tables."""

from __future__ import annotations

import pytest

from schedlab.seeds import loongserve
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("loongserve", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in loongserve.CLAIMS]
    for c in report["claims"]:
        assert c["note"] and c["measured_value"] is not None, c
    assert report["setup"]["mode"] == "quick" and has_full_mode("loongserve")


def test_claims_come_from_the_tables(report: dict) -> None:
    t = report["tables"]["fig10_throughput"]
    rate = {(d, s): r for d, s, r in zip(t["dataset"], t["system"], t["rate"], strict=True)}
    claims = {c["name"]: c for c in report["claims"]}
    best = max(rate[d, "loongserve"] / rate[d, "vllm"] for d in loongserve.SLOS
               if rate[d, "vllm"] > 0)
    assert claims["vs-vllm"]["measured_value"] == pytest.approx(best, rel=1e-2)
    g = report["tables"]["fig12_goodput"]
    good = {(a, s): v for a, s, v in zip(g["zipf"], g["system"], g["p90_goodput"], strict=True)}
    least = min(good[a, "loongserve"] / max(good[a, s] for s in loongserve.FIG12_SYSTEMS[1:])
                for a in loongserve.ZIPF)
    assert claims["esp-ablation"]["measured_value"] == pytest.approx(least, rel=1e-2)
    assert claims["model-fit"]["measured_value"] < 0.10
