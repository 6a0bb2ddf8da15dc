"""The Seer seed at smoke size: the report keeps the contract, its claims come from its table,
divided rollout never preempts, and ``--full`` is the paper-scale mode."""

from __future__ import annotations

import pytest

from schedlab.seeds import seer
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("seer", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in seer.CLAIMS]
    for c in report["claims"]:
        assert c["note"], c
        assert c["measured_value"] is not None, c
    assert report["setup"]["mode"] == "quick" and has_full_mode("seer")


def test_claims_come_from_the_table(report: dict) -> None:
    t = report["tables"]["throughput"]
    thr = {(w, s): v for w, s, v in zip(t["workload"], t["system"], t["output_tokens_per_s"],
                                        strict=True)}
    claims = {c["name"]: c for c in report["claims"]}
    least = min(thr[w, "seer+sd"] / thr[w, "verl"] for w in seer.WORKLOADS)
    assert claims["throughput-vs-verl"]["measured_value"] == pytest.approx(least, rel=1e-2)
    q = "qwen2-vl-72b"
    assert claims["near-oracle"]["measured_value"] == pytest.approx(
        thr[q, "seer"] / thr[q, "oracle-lfs"], rel=1e-2)
    sd = {w: thr[w, "seer+sd"] / thr[w, "seer"] for w in seer.WORKLOADS}
    assert claims["ablation-grouped-sd"]["measured_value"] == pytest.approx(min(sd.values()),
                                                                           rel=1e-2)
    assert min(sd.values()) > 1  # speculation never slows a decode step
    for w, s, p in zip(t["workload"], t["system"], t["preemptions"], strict=True):
        if s in ("divided", "seer", "seer+sd", "seer+vanilla-sd", "oracle-lfs"):
            assert p == 0, (w, s)  # memory-aware chunks never preempt


def test_modes_scale_the_prompts_per_instance() -> None:
    for name, (_, tp, gpus, prompts, _, _, small) in seer.WORKLOADS.items():
        k, p = seer._scale(name, "full")
        assert (k, p) == (gpus // tp, prompts)
        k, p = seer._scale(name, "default")
        assert k == small and p == pytest.approx(prompts * small / (gpus // tp), abs=1)
    with pytest.raises(ValueError, match="quick=True or full=True"):
        seer.run(quick=True, full=True)
