"""The seed-reproduction contract: claim records, the holds logic, the report's JSON schema."""

from __future__ import annotations

import json
import math

import pytest

from schedlab.seeds.contract import CLAIM_KEYS, REPORT_KEYS, Claim, ClaimResult, SeedReport


def _claim(**kw):
    base = dict(name="mean-jct", metric="mean JCT, baseline / ours", baseline="orca",
                paper_value=5.1, unit="x", source="arXiv v1 abstract")
    base.update(kw)
    return Claim(**base)


def _report():
    c1 = _claim().measured(3.7, note="max over the sweep")
    c2 = _claim(name="p99-jct", paper_value=6.4).measured(0.9, note="a miss: slower")
    c3 = _claim(name="check", paper_value=None, direction=">=").measured(1.0)
    return SeedReport(paper="fastserve", claims=(c1, c2, c3),
                      setup={"model": "opt-13b", "rates": [0.5, 1.0]}, wall_s=12.3,
                      tables={"sweep": {"policy": ["a", "a"], "rate_per_s": [0.5, 1.0],
                                        "mean_jct_s": [1.5, 2.5]}})


def test_report_json_has_exactly_the_contract_keys_and_types():
    doc = json.loads(_report().to_json())
    assert list(doc) == list(REPORT_KEYS) == ["paper", "claims", "setup", "tables", "wall_s"]
    assert doc["tables"] == {"sweep": {"policy": ["a", "a"], "rate_per_s": [0.5, 1.0],
                                       "mean_jct_s": [1.5, 2.5]}}
    assert doc["paper"] == "fastserve" and isinstance(doc["setup"], dict)
    assert isinstance(doc["wall_s"], float) and doc["wall_s"] == 12.3
    assert len(doc["claims"]) == 3
    for c in doc["claims"]:
        assert list(c) == list(CLAIM_KEYS)
        for key in ("name", "metric", "baseline", "unit", "source", "note"):
            assert isinstance(c[key], str)
        assert isinstance(c["holds"], bool)
        assert c["paper_value"] is None or isinstance(c["paper_value"], float)
        assert isinstance(c["measured_value"], float)
    assert [c["holds"] for c in doc["claims"]] == [True, False, True]
    assert doc["claims"][2]["paper_value"] is None
    assert doc["claims"][1]["note"] == "a miss: slower"


@pytest.mark.parametrize(
    ("direction", "threshold", "value", "expected"),
    [
        (">", 1.0, 1.5, True), (">", 1.0, 1.0, False), (">", 1.0, 0.5, False),
        (">=", 1.0, 1.0, True), (">=", 1.0, 0.99, False),
        ("<", 1.0, 0.5, True), ("<", 1.0, 1.0, False), ("<", 1.0, 2.0, False),
        ("<=", 1.0, 1.0, True), ("<=", 1.0, 1.01, False),
        (">", 0.0, 0.1, True), ("<", 100.0, 99.0, True),
    ],
)
def test_holds_follows_the_direction(direction, threshold, value, expected):
    claim = _claim(direction=direction, threshold=threshold)
    assert claim.holds(value) is expected
    assert claim.measured(value).holds is expected
    assert claim.measured(value).to_dict()["holds"] is expected


def test_nothing_measured_never_holds_and_serialises_as_null():
    for direction in (">", "<", ">=", "<="):
        r = _claim(direction=direction).measured(None, note="no rate met the target")
        assert r.holds is False and r.to_dict()["measured_value"] is None
    assert _claim().measured(math.nan).measured_value is None


def test_infinite_measured_value_is_refused():
    with pytest.raises(ValueError, match=r"measured_value.*finite"):
        _claim().measured(math.inf)


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("direction", "higher", "direction"),
        ("name", "", "name"),
        ("paper_value", "5.1", "paper_value"),
        ("threshold", math.inf, "threshold"),
    ],
)
def test_bad_claim_fields_name_the_parameter(field, value, match):
    with pytest.raises(ValueError, match=match):
        _claim(**{field: value})


def test_report_validation():
    r = _claim().measured(2.0)
    with pytest.raises(ValueError, match="claims"):
        SeedReport(paper="p", claims=(), setup={}, wall_s=1.0)
    with pytest.raises(ValueError, match="repeats claim names"):
        SeedReport(paper="p", claims=(r, r), setup={}, wall_s=1.0)
    with pytest.raises(ValueError, match="JSON-serialisable"):
        SeedReport(paper="p", claims=(r,), setup={"x": object()}, wall_s=1.0)
    with pytest.raises(ValueError, match="JSON-serialisable"):
        SeedReport(paper="p", claims=(r,), setup={"x": math.nan}, wall_s=1.0)
    with pytest.raises(ValueError, match="wall_s"):
        SeedReport(paper="p", claims=(r,), setup={}, wall_s=-1.0)
    with pytest.raises(ValueError, match="claim"):
        ClaimResult(claim="mean-jct", measured_value=1.0)


def test_report_is_frozen_and_setup_is_a_copy():
    setup = {"rates": [1.0]}
    rep = SeedReport(paper="p", claims=(_claim().measured(2.0),), setup=setup, wall_s=1.0)
    setup["rates"].append(2.0)
    assert rep.to_dict()["setup"] == {"rates": [1.0]}
    with pytest.raises(TypeError):
        rep.setup["new"] = 1
    with pytest.raises(AttributeError):
        rep.paper = "q"
    assert rep.n_holding == 1


def test_claims_and_tables_as_data_frames(tmp_path):
    rep = _report()
    claims = rep.to_frame()
    assert list(claims.columns) == ["paper", *CLAIM_KEYS]
    assert claims["holds"].tolist() == [True, False, True]
    assert claims["measured_value"].tolist() == [3.7, 0.9, 1.0]
    sweep = rep.frame("sweep")
    assert sweep.shape == (2, 3) and sweep["mean_jct_s"].tolist() == [1.5, 2.5]
    with pytest.raises(ValueError, match=r"Unknown table of the fastserve report 'swep'.*'sweep'"):
        rep.frame("swep")
    (written,) = rep.write_tables(tmp_path / "out")
    assert written.endswith("fastserve_sweep.csv")
    assert (tmp_path / "out" / "fastserve_sweep.csv").read_text().splitlines() == [
        "policy,rate_per_s,mean_jct_s", "a,0.5,1.5", "a,1.0,2.5"]


@pytest.mark.parametrize(
    ("tables", "match"),
    [
        ({"a b": {"x": [1]}}, "table names of letters"),
        ({"t": {}}, "non-empty mapping"),
        ({"t": {"x": [1, 2], "y": [1]}}, "differ in length"),
        ({"t": {"x": [float("nan")]}}, "column 'x' of table 't' holds nan"),
        ({"t": {"x": [[1]]}}, "holds \\[1\\]"),
        ([1], "must be a mapping"),
    ],
)
def test_bad_tables_are_refused_naming_the_table_and_column(tables, match):
    c = _claim().measured(3.7)
    with pytest.raises(ValueError, match=match):
        SeedReport(paper="p", claims=(c,), tables=tables)
