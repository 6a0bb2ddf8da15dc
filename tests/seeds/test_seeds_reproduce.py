"""`schedlab reproduce`, the seed registry and the FastServe seed, end to end at smoke sizes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schedlab.cli import main
from schedlab.seeds import fastserve
from schedlab.seeds.contract import CLAIM_KEYS, REPORT_KEYS, SeedReport
from schedlab.seeds.registry import get_seed, run_seed, seed_names


def _json(capsys, argv):
    assert main(argv) == 0
    out = capsys.readouterr().out
    return json.loads(out)  # exactly one JSON document on stdout


def _check_report(doc):
    assert list(doc) == list(REPORT_KEYS)
    assert [c["name"] for c in doc["claims"]] == [c.name for c in get_seed(doc["paper"]).CLAIMS]
    for c in doc["claims"]:
        assert list(c) == list(CLAIM_KEYS)
        assert isinstance(c["holds"], bool) and c["note"]
        if c["measured_value"] is None:  # the contract: nothing could be measured, said why
            assert not c["holds"], c
            continue
        assert isinstance(c["measured_value"], float), c
        assert np.isfinite(c["measured_value"])
    assert doc["wall_s"] > 0


def test_reproduce_fastserve_quick_json(capsys):
    doc = _json(capsys, ["reproduce", "fastserve", "--quick", "--json", "--no-plot"])
    _check_report(doc)
    setup = doc["setup"]
    assert setup["model"] == "opt-13b" and setup["gpu"] == "a100-80gb"
    assert setup["dataset"] == "sharegpt-lengths" and setup["quick"] is True
    assert setup["policies"] == list(fastserve.POLICIES)
    slo, large = doc["tables"]["slo_vs_rate"], doc["tables"]["jct_large_batch"]
    assert set(slo["policy"]) == {*fastserve.POLICIES, fastserve.NO_KV_LIMIT}
    assert len(slo["policy"]) == len(set(slo["policy"])) * len(setup["rates_per_s"])
    assert setup["policy_params"]["skip-join-mlfq"]["base_quantum_s"] == 0.010
    assert setup["policy_params"]["orca-max"]["reserve_max_tokens"] == 2048
    assert setup["plots"] == []
    # the artifact's two engines: FastServe's (56 GiB host, overlapped swaps) for FastServe and
    # FastServe-FCFS, vLLM's (4 GiB, swaps in series, prefill-only iterations) for vLLM
    fs, vl = setup["engines"]["fastserve"], setup["engines"]["vllm"]
    assert fs["overlap_swap"] is True and fs["swap_space_gib"] == 56.0
    assert fs["host_kv_capacity_tokens"] == 56 * 2**30 // 819_200
    assert vl["overlap_swap"] is False and vl["swap_space_gib"] == 4.0
    assert fs["max_batch_size"] == vl["max_batch_size"] == 16
    assert 0.6 < setup["lengths"]["output_tokens_cv"] < 0.7
    assert setup["large_batch"]["batch_sizes"] == [64]
    assert set(large["policy"]) == set(fastserve.LARGE_POLICIES)
    assert set(large["batch_size"]) == {64}
    # every request of every run completes (none rejected) on the artifact's lengths
    assert sum(slo["rejected"]) == sum(large["rejected"]) == 0


def test_reproduce_all_json_and_no_argument_mean_all(capsys):
    doc = _json(capsys, ["reproduce", "--all", "--quick", "--json", "--no-plot"])
    assert list(doc) == ["seeds", "wall_s"]
    assert [s["paper"] for s in doc["seeds"]] == seed_names()
    for s in doc["seeds"]:
        _check_report(s)
    again = _json(capsys, ["reproduce", "--quick", "--json", "--no-plot"])
    assert [s["claims"] for s in again["seeds"]] == [s["claims"] for s in doc["seeds"]]


def test_reproduce_text_table_and_plot(capsys, tmp_path):
    assert main(["reproduce", "fastserve", "--quick", "--plot-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for claim in fastserve.CLAIMS:
        assert claim.name in out
    assert "paper value" in out and "measured" in out and "5.100x" in out
    for name in ("fastserve_slo_vs_rate.png", "fastserve_jct_large_batch.png"):
        png = tmp_path / "quick" / name  # a smoke run's plots stay apart from a full run's
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
        assert str(png) in out
    # each sweep behind the plots, as CSV beside them, read back equal to the report's table
    import pandas as pd

    report = fastserve.run(quick=True)
    for table in ("slo_vs_rate", "jct_large_batch"):
        csv = tmp_path / "quick" / f"fastserve_{table}.csv"
        assert str(csv) in out
        pd.testing.assert_frame_equal(pd.read_csv(csv), report.frame(table), check_dtype=False)


def test_unknown_paper_is_an_error_listing_known_ones(capsys):
    assert main(["reproduce", "fastsrve", "--json"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "Unknown seed paper 'fastsrve'" in captured.err and "'fastserve'" in captured.err
    with pytest.raises(ValueError, match=r"Known: .*'fastserve'"):
        get_seed("orca")


def test_papers_and_all_together_is_an_error(capsys):
    assert main(["reproduce", "fastserve", "--all", "--quick"]) == 1
    assert "either PAPER names or --all" in capsys.readouterr().err


def test_same_seed_same_measurements_other_seed_other_workload():
    a = fastserve.run(quick=True, seed=3)
    b = fastserve.run(quick=True, seed=3)
    c = fastserve.run(quick=True, seed=4)
    assert [r.measured_value for r in a.claims] == [r.measured_value for r in b.claims]
    assert a.tables == b.tables
    assert a.tables["slo_vs_rate"] != c.tables["slo_vs_rate"]


def test_paper_values_are_the_crossings_of_the_papers_own_curves():
    """Each throughput claim's paper value is the ratio of the first crossings of the curves
    read off the figures (PAPER_CURVES), and its source quotes those rates."""
    claims = {c.name: c for c in fastserve.CLAIMS}
    for name, metric, base in (
        ("throughput-at-mean-slo-vs-fcfs", "mean_norm_s", "fcfs"),
        ("throughput-at-mean-slo-vs-vllm", "mean_norm_s", "vllm"),
        ("throughput-at-p95-slo-vs-fcfs", "p95_norm_s", "fcfs"),
        ("throughput-at-p95-slo-vs-vllm", "p95_norm_s", "vllm"),
        ("goodput-at-slo-attainment-vs-fcfs", "attainment", "fcfs"),
        ("goodput-at-slo-attainment-vs-vllm", "attainment", "vllm"),
    ):
        ours, theirs = fastserve.paper_rate(metric, "fastserve"), fastserve.paper_rate(metric, base)
        assert claims[name].paper_value == pytest.approx(ours / theirs, abs=0.011), name
        assert f"{ours:.2f}" in claims[name].source and f"{theirs:.2f}" in claims[name].source
    for curves in fastserve.PAPER_CURVES.values():
        assert len(curves["fastserve"]) >= 15 and len(curves["fcfs"]) == len(curves["vllm"]) == 11


def test_artifact_workloads_follow_the_artifacts_filter_and_arrivals():
    inp, out = fastserve.artifact_lengths()
    assert inp.max() <= fastserve.MAX_PROMPT and (inp + out).max() <= fastserve.MAX_CONTEXT
    assert not ((inp < fastserve.MIN_TOKENS) & (out < fastserve.MIN_TOKENS)).any()
    ws = fastserve.artifact_workloads((0.5, 4.0), (300, 300), np.random.default_rng(1))
    for w, rate in zip(ws, (0.5, 4.0), strict=True):
        assert w.arrival_s[0] == 0.0 and len(np.unique(w.input_tokens)) > 100
        # Poisson: the mean gap is 1/rate (within sampling noise over 299 gaps)
        assert np.diff(w.arrival_s).mean() == pytest.approx(1 / rate, rel=0.2)


def test_run_seed_refuses_a_report_that_drops_a_declared_claim(monkeypatch):
    real = fastserve.run

    def dropping(**kw):
        rep = real(**kw)
        return SeedReport(paper=rep.paper, claims=rep.claims[:-1], setup=rep.setup,
                          wall_s=rep.wall_s)

    monkeypatch.setattr(fastserve, "run", dropping)
    with pytest.raises(ValueError, match="every declared claim must be measured"):
        run_seed("fastserve", quick=True)


def test_sustained_rate_interpolates_the_first_crossing_linearly():
    rates = np.array([1.0, 2.0, 4.0])
    lat = np.array([0.01, 0.04, 0.16])
    assert fastserve.sustained_rate(rates, lat, 0.025) == pytest.approx(1.5)  # linear midpoint
    assert fastserve.sustained_rate(rates, lat, 0.04) == 2.0
    assert fastserve.sustained_rate(rates, lat, 1.0) == 4.0  # met everywhere: highest rate
    assert fastserve.sustained_rate(rates, lat, 0.001) == 1.0  # met nowhere: lowest rate
    # the first crossing counts, even if latency dips again later
    assert fastserve.sustained_rate(rates, np.array([0.01, 0.1, 0.02]), 0.05) < 2.0
    # attainment: the first rate where the share falls below the target
    share = np.array([1.0, 0.9, 0.5])
    assert fastserve.sustained_rate(rates, share, 0.95, at_least=True) == pytest.approx(1.5)
