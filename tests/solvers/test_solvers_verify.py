"""verify: one test per rule it enforces, plus acceptance of valid schedules."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.solvers import IterationProblem, Schedule, ScheduleInvalid, list_schedule, verify


def _p(**changes):
    kw = dict(
        arrival_slot=[0, 0, 1],
        input_tokens=[4, 2, 3],
        output_tokens=[2, 1, 2],
        max_batch_size=2,
        max_batch_tokens=8,
        kv_capacity_tokens=20,
    )
    kw.update(changes)
    return IterationProblem(**kw)


def _s(entries, n=3):
    """Schedule from (request, slot, prefill_tokens[, output_token]) tuples."""
    e = [(*x, True) if len(x) == 3 else x for x in entries]
    return Schedule(
        n_requests=n,
        request=[x[0] for x in e],
        slot=[x[1] for x in e],
        prefill_tokens=[x[2] for x in e],
        output_token=np.array([x[3] for x in e], dtype=bool),
    )


# a valid schedule of _p(): slot 0: 0 prefill + 1 prefill; slot 1: 0 decode + 2 prefill; slot 2: 2
VALID = [(0, 0, 4), (1, 0, 2), (0, 1, 0), (2, 1, 3), (2, 2, 0)]


def test_valid_schedule_accepted_with_objective():
    r = verify(_p(), _s(VALID))
    assert r.ok and r.violations == ()
    assert r.completion_slot.tolist() == [1, 0, 2]
    assert r.objective == 2 + 1 + 2
    assert r.raise_if_invalid() is r


def test_duplicate():
    r = verify(_p(), _s([*VALID, (2, 2, 0)]))
    assert "duplicate" in r.kinds()


def test_arrival():
    entries = [(0, 0, 4), (1, 0, 2), (2, 0, 3), (0, 1, 0), (2, 1, 0)]
    r = verify(_p(max_batch_size=3, max_batch_tokens=9), _s(entries))
    assert r.kinds() == {"arrival"}
    assert [(v.request, v.slot) for v in r.violations] == [(2, 0)]


def test_prefill_must_be_whole_prompt_first():
    chunked = [(0, 0, 2), (1, 0, 2), (0, 1, 0), (2, 1, 3), (2, 2, 0)]
    assert verify(_p(), _s(chunked)).kinds() == {"prefill"}


def test_prefill_first_run_must_produce_a_token():
    silent = [(0, 0, 4, False), (1, 0, 2), (0, 1, 0), (2, 1, 3), (2, 2, 0)]
    assert verify(_p(), _s(silent)).kinds() == {"prefill"}


def test_later_run_must_be_a_decode():
    recomputed = [(0, 0, 4), (1, 0, 2), (0, 1, 5), (2, 1, 3), (2, 2, 0)]
    assert verify(_p(max_batch_tokens=8), _s(recomputed)).kinds() == {"prefill"}


def test_output_count_missing_and_extra():
    missing = [x for x in VALID if x != (2, 2, 0)]
    r = verify(_p(), _s(missing))
    assert r.kinds() == {"output-count"} and r.objective is None
    extra = [*VALID, (1, 2, 0)]
    assert verify(_p(), _s(extra)).kinds() == {"output-count"}


def test_batch_size():
    entries = [(0, 0, 4), (1, 0, 2), (0, 1, 0), (2, 1, 3), (2, 2, 0)]
    r = verify(_p(max_batch_size=1), _s(entries))
    assert r.kinds() == {"batch-size"}
    assert sorted(v.slot for v in r.violations) == [0, 1]


def test_token_budget():
    # slot 1 processes 1 (decode) + 3 (prefill) = 4 tokens, slot 0 processes 6
    r = verify(_p(max_batch_tokens=5), _s(VALID))
    assert r.kinds() == {"token-budget"}
    assert [v.slot for v in r.violations] == [0]


def test_kv_capacity():
    # slot 0: (4+1) + (2+1) = 8; slot 1: (4+2) + (3+1) = 10; slot 2: 3+2 = 5
    assert verify(_p(kv_capacity_tokens=10), _s(VALID)).ok
    r = verify(_p(kv_capacity_tokens=9), _s(VALID))
    assert r.kinds() == {"kv-capacity"}
    assert [v.slot for v in r.violations] == [1]


def test_raise_if_invalid_lists_violations():
    with pytest.raises(ScheduleInvalid, match=r"\[batch-size\] slot 0 runs 2 requests"):
        verify(_p(max_batch_size=1), _s(VALID)).raise_if_invalid()


def test_verify_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="'schedule' parameter of verify must be for 3 requests"):
        verify(_p(), _s([(0, 0, 4)], n=2))
    with pytest.raises(ValueError, match="'problem' parameter of verify"):
        verify("p", _s(VALID))


@pytest.mark.parametrize("rule", ["fcfs", "srpt"])
def test_list_schedules_are_valid(rule):
    from schedlab.solvers import random_problem

    rng = np.random.default_rng(11)
    for _ in range(20):
        p = random_problem(int(rng.integers(1, 16)), rng, kv_capacity_tokens=60)
        r = verify(p, list_schedule(p, rule))
        assert r.ok, r.violations[:3]


def test_list_schedule_unknown_rule():
    with pytest.raises(ValueError, match="Close matches: 'srpt'"):
        list_schedule(_p(), "srtp")
