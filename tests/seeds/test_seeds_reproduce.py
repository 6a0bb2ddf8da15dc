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
        assert isinstance(c["measured_value"], float), c
        assert np.isfinite(c["measured_value"])
        assert isinstance(c["holds"], bool) and c["note"]
    assert doc["wall_s"] > 0


def test_reproduce_fastserve_quick_json(capsys):
    doc = _json(capsys, ["reproduce", "fastserve", "--quick", "--json", "--no-plot"])
    _check_report(doc)
    setup = doc["setup"]
    assert setup["model"] == "opt-13b" and setup["gpu"] == "a100-80gb"
    assert setup["dataset"] == "azure-conv-2023" and setup["quick"] is True
    assert setup["policies"] == list(fastserve.POLICIES)
    assert set(setup["sweep"]) == set(fastserve.POLICIES)
    assert setup["policy_params"]["skip-join-mlfq"]["base_quantum_s"] == 0.010
    assert setup["plots"] == []
    # every policy runs on the same engine, FastServe's overlapped (proactive) swapping
    assert setup["engine"]["overlap_swap"] is True and "every policy" in setup["engine_note"]
    # the heavy-tailed workload: its own claims, labelled, with its own sweep and lengths
    heavy = setup["heavy_tailed"]
    names = [c["name"] for c in doc["claims"]]
    assert heavy["claims"] and all(n in names for n in heavy["claims"])
    for c in doc["claims"]:
        assert c["name"].endswith(fastserve.HEAVY_SUFFIX) == ("heavy-tailed" in c["metric"])
    assert set(heavy["sweep"]) == set(fastserve.POLICIES)
    assert "338" in heavy["outputs"] and "SOSP'23" in heavy["outputs"]
    assert heavy["lengths"]["output_tokens_mean"] != setup["lengths"]["output_tokens_mean"]
    # rates are fractions of the measured saturation throughput, increasing
    rates = np.array(setup["rates_per_s"])
    assert np.all(np.diff(rates) > 0)
    assert np.allclose(rates, setup["saturation_rps"] * np.array(setup["loads"]), rtol=1e-3)


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
    for name in ("fastserve_jct_vs_rate.png", "fastserve_jct_vs_rate_heavy_tailed.png"):
        png = tmp_path / name
        assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
        assert str(png) in out


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
    assert a.setup["sweep"] == b.setup["sweep"]
    assert a.setup["sweep"] != c.setup["sweep"]


def test_heavy_tailed_outputs_have_the_mean_and_fit_the_context():
    rng = np.random.default_rng(5)
    inp = rng.integers(fastserve.MIN_TOKENS, fastserve.MAX_PROMPT + 1, 20_000)
    out = fastserve.heavy_tailed_outputs(inp, rng, mean=338.0, sigma=1.0)
    assert out.min() >= fastserve.MIN_TOKENS and (inp + out <= fastserve.MAX_CONTEXT).all()
    # no prompt limit left to bind: the log-normal's own mean and CV (sqrt(e - 1) = 1.31)
    free = fastserve.heavy_tailed_outputs(np.full(20_000, 4), rng, mean=100.0, sigma=1.0)
    assert free.mean() == pytest.approx(100.0, rel=0.05)
    assert free.std() / free.mean() == pytest.approx(1.31, rel=0.1)
    # the context filter only ever shortens the tail
    assert np.percentile(out, 99) < np.percentile(free * 3.38, 99)


def test_run_seed_refuses_a_report_that_drops_a_declared_claim(monkeypatch):
    real = fastserve.run

    def dropping(**kw):
        rep = real(**kw)
        return SeedReport(paper=rep.paper, claims=rep.claims[:-1], setup=rep.setup,
                          wall_s=rep.wall_s)

    monkeypatch.setattr(fastserve, "run", dropping)
    with pytest.raises(ValueError, match="every declared claim must be measured"):
        run_seed("fastserve", quick=True)


def test_sustainable_rate_interpolates_the_first_crossing():
    rates = np.array([1.0, 2.0, 4.0])
    lat = np.array([0.01, 0.04, 0.16])
    assert fastserve.sustainable_rate(rates, lat, 0.02) == pytest.approx(1.5)  # log midpoint
    assert fastserve.sustainable_rate(rates, lat, 0.04) == 2.0
    assert fastserve.sustainable_rate(rates, lat, 1.0) == 4.0  # met everywhere: highest rate
    assert fastserve.sustainable_rate(rates, lat, 0.001) == 1.0  # met nowhere: lowest rate
    # the first crossing counts, even if latency dips again later
    assert fastserve.sustainable_rate(rates, np.array([0.01, 0.1, 0.02]), 0.05) < 2.0


@pytest.mark.slow
def test_full_fastserve_reproduction_runs_in_under_two_minutes(capsys):
    doc = _json(capsys, ["reproduce", "fastserve", "--json", "--no-plot"])
    _check_report(doc)
    assert doc["setup"]["quick"] is False and doc["wall_s"] < 120


def _sweep_with_fcfs_over_sjmlfq(ratio):
    pol = fastserve.POLICIES
    k = len(ratio)
    ones = np.ones((len(pol), k))
    mean = ones.copy()
    mean[pol.index("fcfs")] = ratio
    return fastserve.Sweep(
        policies=pol, rates_per_s=np.arange(1.0, k + 1), loads=np.linspace(0.2, 1.0, k),
        mean_jct_s=mean, p99_jct_s=ones, mean_norm_s=ones, p99_norm_s=ones,
        swaps=0 * ones, rejected=0 * ones,
    )


def test_a_marginal_jct_lead_holds_but_is_flagged_as_a_tie():
    claim = fastserve.CLAIMS[0]
    s = _sweep_with_fcfs_over_sjmlfq([1.0, 1.001, 0.9])
    tie = fastserve._jct_claim(claim, s, s.mean_jct_s, 0.8, "")
    assert tie.holds and "a tie in practice" in tie.note and "FCFS leads at higher load" in tie.note
    s = _sweep_with_fcfs_over_sjmlfq([1.0, 1.5, 2.0])
    clear = fastserve._jct_claim(claim, s, s.mean_jct_s, 1.5, "")
    assert clear.holds and clear.measured_value == 2.0 and "tie" not in clear.note
    s = _sweep_with_fcfs_over_sjmlfq([1.0, 0.9, 0.8])
    miss = fastserve._jct_claim(claim, s, s.mean_jct_s, 0.8, "")
    assert not miss.holds and "Miss" in miss.note and "CV 0.80" in miss.note
