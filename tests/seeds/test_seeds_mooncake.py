"""The Mooncake seed at smoke size: the report keeps the contract, the tables hold what the
claims were read from, the disaggregated cluster beats colocated vLLM on capacity and
KV-cache-centric placement has the lowest TTFT; ``--full`` is the seed's paper-scale mode."""

from __future__ import annotations

import json

import pytest

from schedlab.cli import main
from schedlab.seeds import mooncake
from schedlab.seeds.registry import has_full_mode, run_seed


@pytest.fixture(scope="module")
def report() -> dict:
    return run_seed("mooncake", quick=True).to_dict()


def test_report_measures_every_claim(report: dict) -> None:
    assert [c["name"] for c in report["claims"]] == [c.name for c in mooncake.CLAIMS]
    for c in report["claims"]:
        assert c["measured_value"] is not None and c["note"], c
    assert report["setup"]["mode"] == "quick"
    assert report["setup"]["window_s"] == mooncake.WINDOWS["quick"]


def test_capacity_and_placement_claims_hold_at_smoke_size(report: dict) -> None:
    holds = {c["name"]: c["holds"] for c in report["claims"]}
    for name in ("capacity-100ms-vs-vllm", "capacity-200ms-vs-vllm", "capacity-300ms-vs-vllm",
                 "synthetic-capacity-200ms-vs-vllm", "ttft-vs-load-balancing", "ttft-vs-random"):
        assert holds[name], name


def test_tables_agree_with_the_claims(report: dict) -> None:
    t = report["tables"]
    cap = t["capacity"]
    assert set(cap["system"]) == {"mooncake", *mooncake.BASELINES}
    share = {(tr, s, x): v for tr, s, x, v in zip(cap["trace"], cap["system"],
                                                  cap["tbt_threshold_s"], cap["share"],
                                                  strict=True)}
    ratio = share["conversation", "mooncake", 0.1] / max(share["conversation", b, 0.1]
                                                         for b in mooncake.BASELINES)
    claim = next(c for c in report["claims"] if c["name"] == "capacity-100ms-vs-vllm")
    assert claim["measured_value"] == pytest.approx(ratio, rel=1e-3)
    placement = t["placement"]
    assert placement["rule"] == list(mooncake.RULES)
    assert placement["ttft_mean_s"][0] == min(placement["ttft_mean_s"])
    assert placement["transfers"][0] > 0 and placement["transfers"][1:] == [0, 0, 0]
    adm = t["admission"]
    assert adm["admission"] == list(mooncake.ADMISSIONS)
    assert adm["wasted_prefills"][1] == 0  # early rejection decides before the prefill runs
    assert set(t["load"]["admission"]) == set(mooncake.ADMISSIONS)


def test_full_mode_is_offered_and_exclusive(capsys: pytest.CaptureFixture[str]) -> None:
    assert has_full_mode("mooncake") and not has_full_mode("fastserve")
    with pytest.raises(ValueError, match="quick=True or full=True"):
        run_seed("mooncake", quick=True, full=True)
    with pytest.raises(SystemExit) as exc:
        main(["reproduce", "mooncake", "--quick", "--full"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_cli_json_report(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["reproduce", "mooncake", "--quick", "--json", "--no-plot"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["paper"] == "mooncake" and len(doc["claims"]) == len(mooncake.CLAIMS)
