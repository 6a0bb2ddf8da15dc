"""Admission and placement windows (serving.md §2.5a): the CP-SAT optimum and every admission
policy replayed on the same record keep the problem's rules (checked by one verify), the
optimum never rejects more than a heuristic, verify catches each broken rule, and bad input names
its field."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.policies.mooncake import ADMISSIONS
from schedlab.sim import replay_placement
from schedlab.solvers import (
    PlacementProblem,
    PlacementSchedule,
    solve_placement_cpsat,
    verify_placement,
)
from schedlab.solvers.placement_window import random_placement_problem

pytestmark = pytest.mark.solver


@pytest.mark.parametrize("seed", range(6))
def test_optimum_and_heuristics_are_valid_and_ordered(seed: int) -> None:
    p = random_placement_problem(14, np.random.default_rng(seed), load=3.0)
    opt = solve_placement_cpsat(p, time_limit_s=10)
    assert opt.status == "OPTIMAL" and opt.gap == 0.0
    check = verify_placement(p, opt.schedule)
    assert check.ok and check.rejected == opt.objective
    for adm in ADMISSIONS:
        s, wasted = replay_placement(p, admission=adm)
        c = verify_placement(p, s)
        assert c.ok, c.violations
        assert opt.objective <= s.rejected
        assert 0 <= wasted <= s.rejected


def test_a_time_limited_solve_reports_its_gap() -> None:
    p = random_placement_problem(40, np.random.default_rng(1), load=4.0)
    r = solve_placement_cpsat(p, time_limit_s=0.5)
    assert r.status in ("OPTIMAL", "FEASIBLE") and r.wall_s < 5
    assert verify_placement(p, r.schedule).ok
    assert r.bound <= r.objective and (r.status == "OPTIMAL") == (r.gap == 0.0)


def _problem(**kw: object) -> PlacementProblem:
    base = dict(arrival_ms=[0, 0], prefill_ms=[[100, 100], [100, 100]],
                pulled_ms=[[-1, 50], [-1, -1]], decode_ms=[1000, 1000],
                decode_demand_us=[6, 6], decode_budget_us=[10], kv_tokens=[5, 5],
                decode_kv_tokens=[100], slo_ttft_ms=150)
    base.update(kw)
    return PlacementProblem(**base)  # type: ignore[arg-type]


def _schedule(**kw: object) -> PlacementSchedule:
    base = dict(accepted=np.array([True, False]), prefill=np.array([0, -1]),
                pulled=np.array([False, False]), start_ms=np.array([0, 0]),
                decode=np.array([0, -1]))
    base.update({k: np.asarray(v) for k, v in kw.items()})
    return PlacementSchedule(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kw", "kind"),
    [
        ({"start_ms": [-1, 0]}, "arrival"),
        ({"start_ms": [60, 0]}, "ttft"),
        ({"pulled": [False, False], "accepted": [False, True], "prefill": [-1, 1],
          "decode": [-1, 0]}, None),
        ({"accepted": [False, True], "prefill": [-1, 0], "pulled": [False, True],
          "decode": [-1, 0]}, "no-prefix-to-pull"),
        ({"accepted": [True, True], "prefill": [0, 1], "decode": [0, 0]}, "decode-step"),
        ({"prefill": [5, -1]}, "malformed"),
    ],
)
def test_verify_names_each_broken_rule(kw: dict, kind: str | None) -> None:
    check = verify_placement(_problem(), _schedule(**kw))
    assert ({v.kind for v in check.violations} == {kind}) if kind else check.ok


def test_verify_checks_prefill_overlap() -> None:
    p = _problem(decode_budget_us=[100])
    s = _schedule(accepted=[True, True], prefill=[0, 0], start_ms=[0, 50], decode=[0, 0])
    assert {v.kind for v in verify_placement(p, s).violations} == {"prefill-overlap"}


def test_verify_checks_decode_kv() -> None:
    p = _problem(decode_budget_us=[100], decode_kv_tokens=[8])  # 5 + 5 tokens do not fit
    s = _schedule(accepted=[True, True], prefill=[0, 1], decode=[0, 0])
    assert {v.kind for v in verify_placement(p, s).violations} == {"decode-kv"}
    with pytest.raises(ValueError, match="decode-kv"):
        verify_placement(p, s).raise_if_invalid()


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"arrival_ms": [5, 0]}, "arrival_ms"),
        ({"prefill_ms": [[0, 100], [100, 100]]}, "prefill_ms"),
        ({"decode_ms": [1000]}, "decode_ms"),
        ({"kv_tokens": [5, -5]}, "kv_tokens"),
        ({"slo_ttft_ms": 0}, "slo_ttft_ms"),
        ({"pulled_ms": [[-2, 50], [-1, -1]]}, "pulled_ms"),
        ({"decode_ms": [1000.5, 1000]}, "decode_ms"),
    ],
)
def test_bad_problems_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _problem(**kw)
