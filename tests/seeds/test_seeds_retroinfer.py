"""The RetroInfer seed at smoke size: the report keeps the contract, its claims come from its
tables, and the cache study puts Belady on top."""

from __future__ import annotations

import pytest

from schedlab.seeds import retroinfer
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("retroinfer", quick=True).to_dict()


def test_report_measures_its_claims(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in retroinfer.CLAIMS]
    for c in report["claims"]:
        assert c["note"], c
    missing = [c["name"] for c in report["claims"] if c["measured_value"] is None]
    assert missing == ["sparse-baselines-1m"]  # not modelled, said so
    assert report["setup"]["mode"] == "quick" and has_full_mode("retroinfer")


def test_claims_come_from_the_tables(report: dict) -> None:
    t = report["tables"]["fig13"]
    claims = {c["name"]: c["measured_value"] for c in report["claims"]}
    for ctx, name in ((60_000, "decode-speedup-60k"), (120_000, "decode-speedup-120k")):
        i = t["context_tokens"].index(ctx)
        assert claims[name] == t["speedup"][i] == pytest.approx(
            t["retro_tokens_per_s"][i] / t["full_tokens_per_s"][i], rel=1e-3)
    i30 = t["context_tokens"].index(30_000)
    assert t["fitted"][i30] and t["speedup"][i30] == pytest.approx(4.1, rel=1e-3)
    assert claims["full-attention-oom-1m"] == t["full_max_batch"][-1] == 0


def test_cache_study_puts_belady_on_top(report: dict) -> None:
    c = report["tables"]["cache"]
    for lru, fifo, best in zip(c["lru_hit_rate"], c["fifo_hit_rate"], c["belady_hit_rate"],
                               strict=True):
        assert lru <= best + 1e-9 and fifo <= best + 1e-9
    rates = [r for r, m in zip(c["lru_hit_rate"], c["cache_multiplier"], strict=True)]
    assert rates == sorted(rates)  # a larger cache never hits less (one context in quick)
