"""The StreamRL seed at smoke size: the report keeps the contract, the tables hold what the
claims were read from, the ranker reaches the paper's recall, and StreamRL's disaggregated
streaming beats the colocated baseline."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schedlab.cli import main
from schedlab.seeds import streamrl
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("streamrl", quick=True).to_dict()


def test_report_measures_every_claim_it_runs(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in streamrl.CLAIMS]
    for c in report["claims"]:
        assert c["note"], c
        assert c["measured_value"] is not None, c
    assert len(report["tables"]["elastic"]["iteration"]) == 8  # --quick: 8 of 24 iterations
    assert report["setup"]["mode"] == "quick"
    assert not has_full_mode("streamrl")  # the default already runs the paper's scale


def test_ranker_reaches_the_papers_recall(report: dict) -> None:
    ranker = report["setup"]["ranker"]
    assert ranker["recall_top20"] == pytest.approx(streamrl.RECALL, abs=0.02)
    sweep = report["tables"]["ranker"]
    assert sweep["recall_top20"][0] == 1.0  # sigma 0: the oracle
    assert np.all(np.diff(sweep["recall_top20"]) <= 0)  # more error, less recall


def test_breakdown_claims_come_from_the_throughput_table(report: dict) -> None:
    t = report["tables"]["throughput"]
    rate = {s: v for m, s, v in zip(t["model"], t["system"], t["samples_per_s"], strict=True)
            if m == "72b"}
    claims = {c["name"]: c for c in report["claims"]}
    for name, system in (("breakdown-skew-aware", "skew-aware"),
                         ("breakdown-stream", "streamrl-sync"),
                         ("breakdown-async", "streamrl-async")):
        assert claims[name]["measured_value"] == pytest.approx(
            rate[system] / rate["baseline"], rel=1e-3)
    assert claims["breakdown-stream"]["holds"] and claims["breakdown-async"]["holds"]
    assert rate["streamrl-async"] >= rate["streamrl-sync"] * (1 - 1e-9)


def test_balance_split_fits_the_budget(report: dict) -> None:
    b = report["tables"]["balance"]
    for g, x, y in zip(b["model"], b["gen_gpus"], b["train_gpus"], strict=True):
        assert x + y <= streamrl.MODELS[g][1] and x % 8 == 0 and y % 8 == 0


def test_fig7_lengths_match_the_paper() -> None:
    w = streamrl.streamrl_batch(50_000, seed=1)
    out = w.output_tokens
    assert 1000 <= out.min() and out.max() <= 20_000
    assert np.median(out) == pytest.approx(3300, rel=0.05)  # Fig. 7: P50 about 3.3K
    assert np.percentile(out, 90) == pytest.approx(12_800, rel=0.05)  # P90 about 12.8K
    assert 0.10 < (out > 10_000).mean() < 0.15  # 12-14% above 10K
    half = streamrl.streamrl_batch(50_000, scale=0.5, seed=1).output_tokens
    assert half.max() <= 10_000


def test_cli_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "streamrl", "--quick", "--json", "--no-plot"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["paper"] == "streamrl" and len(doc["claims"]) == len(streamrl.CLAIMS)
