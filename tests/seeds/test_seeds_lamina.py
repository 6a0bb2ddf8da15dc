"""The Lamina seed at smoke size: the report keeps the contract, its claims come from its
tables, and the device-mix table's optimum is never worse than the rule or the homogeneous
best."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.seeds import lamina
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("lamina", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in lamina.CLAIMS]
    for c in report["claims"]:
        assert c["note"] and c["measured_value"] is not None, c
    assert report["setup"]["mode"] == "quick" and not has_full_mode("lamina")


def test_claims_come_from_the_tables(report: dict) -> None:
    t = report["tables"]["fig10"]
    claims = {c["name"]: c["measured_value"] for c in report["claims"]}
    assert claims["throughput-gain-least"] == min(t["gain"])
    assert claims["throughput-gain-greatest"] == max(t["gain"])
    assert claims["larger-batch"] == pytest.approx(np.mean(t["batch_ratio"]), abs=1e-4)
    for g, a, b in zip(t["gain"], t["lamina_tokens_per_s"], t["vllm_tokens_per_s"],
                       strict=True):
        assert g == pytest.approx(a / b, rel=1e-3)
    d = report["tables"]["device_mix"]
    assert claims["throughput-per-dollar"] == max(g for g in d["per_dollar_gain"] if g)


def test_the_optimum_is_never_worse_than_the_rule(report: dict) -> None:
    d = report["tables"]["device_mix"]
    for opt, rule in zip(d["usd_per_mtok"], d["lamina_usd_per_mtok"], strict=True):
        if rule is not None:
            assert opt is not None and opt <= rule + 1e-9


def test_time_averaged_context_counts_decoding_growth() -> None:
    ctx, p, o = lamina._context("azure-code-2023")
    assert p < ctx < p + 2 * o + 2000  # prompt plus part of the output, weighted by output
