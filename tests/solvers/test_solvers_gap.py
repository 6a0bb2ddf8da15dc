"""``schedlab gap``: the policy's exported schedule is valid, matches the simulator's JCT, and
the report is one JSON document."""

from __future__ import annotations

import json

import pytest

from schedlab.cli import main

pytestmark = pytest.mark.solver


def test_gap_json_parses_and_is_consistent(capsys):
    rc = main(["gap", "fcfs", "--n", "6", "--instances", "3", "--seed", "2", "--time-limit", "5",
               "--json"])
    out = capsys.readouterr().out
    assert rc == 0
    rep = json.loads(out)
    s, rows = rep["summary"], rep["rows"]
    assert s["policy"] == "fcfs" and s["n"] == 6 and s["n_instances"] == 3 and len(rows) == 3
    assert s["invalid_schedules"] == 0 and s["sim_verify_mismatches"] == 0
    for r in rows:
        assert r["violations"] == [] and r["rejected"] == 0
        assert r["policy_jct_slots"] == pytest.approx(r["sim_jct_slots"])
        assert r["bound_slots"] <= r["optimum_slots"] <= r["policy_jct_slots"]
        assert r["optimum_slots"] <= r["list_schedule_slots"]
        assert r["gap"] == pytest.approx(
            (r["policy_jct_slots"] - r["optimum_slots"]) / r["optimum_slots"]
        )
    assert 0 <= s["gap"]["median"] <= s["gap"]["p90"] <= s["gap"]["max"]


@pytest.mark.parametrize("policy", ["vllm", "sjf", "srpt", "mlfq", "skip-join-mlfq"])
def test_gap_other_policies_export_valid_schedules(policy):
    """Every issue-4 policy's simulated schedule obeys the problem's rules (the simulator is at
    least as strict) and its JCT equals the verifier's."""
    from schedlab.commands.gap import policy_gap

    rep = policy_gap(policy, n=6, instances=3, seed=4, time_limit_s=5)
    assert rep["summary"]["invalid_schedules"] == 0
    assert rep["summary"]["sim_verify_mismatches"] == 0
    assert all(r["gap"] >= 0 for r in rep["rows"])


def test_gap_text_report_and_errors(capsys):
    assert main(["gap", "srpt", "--n", "4", "--instances", "1", "--time-limit", "2"]) == 0
    out = capsys.readouterr().out
    assert "proven optimal" in out and "gap (policy - optimum) / optimum" in out
    assert main(["gap", "srtp", "--n", "4", "--instances", "1"]) == 1
    assert "Close matches: 'srpt'" in capsys.readouterr().err
    assert main(["gap", "fcfs", "--n", "0"]) == 1
    assert "'n' parameter of schedlab gap" in capsys.readouterr().err
