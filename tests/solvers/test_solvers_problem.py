"""IterationProblem validation, random instances, workload export; Schedule and its
construction from a simulator iteration log."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.solvers import IterationProblem, Schedule, random_problem, verify


def _problem(**changes):
    kw = dict(
        arrival_slot=[0, 0, 1],
        input_tokens=[4, 2, 3],
        output_tokens=[3, 1, 2],
        max_batch_size=2,
        max_batch_tokens=8,
        kv_capacity_tokens=20,
    )
    kw.update(changes)
    return IterationProblem(**kw)


@pytest.mark.parametrize(
    "field, value",
    [
        ("arrival_slot", [0, 2, 1]),  # decreasing
        ("arrival_slot", [0, -1, 1]),
        ("arrival_slot", [0.5, 1, 1]),
        ("input_tokens", [4, 0, 3]),
        ("input_tokens", [4, 9, 3]),  # over max_batch_tokens: no chunking
        ("output_tokens", [3, 1]),  # wrong length
        ("output_tokens", [3, 0, 2]),
        ("max_batch_size", 0),
        ("max_batch_tokens", 1.5),
        ("kv_capacity_tokens", 6),  # request 0 needs 4 + 3 = 7 at its last run
    ],
)
def test_bad_problem_input_names_the_field(field, value):
    with pytest.raises(ValueError, match=f"'{field}' parameter of IterationProblem"):
        _problem(**{field: value})


def test_empty_problem_rejected():
    with pytest.raises(ValueError, match="arrival_slot"):
        _problem(arrival_slot=[], input_tokens=[], output_tokens=[])


def test_problem_arrays_are_read_only_copies():
    a = np.array([0, 0, 1])
    p = _problem(arrival_slot=a)
    a[0] = 5
    assert p.arrival_slot[0] == 0
    with pytest.raises(ValueError):
        p.input_tokens[0] = 1


def test_to_workload_matches_problem_and_limits():
    p = _problem()
    w = p.to_workload(slot_s=0.5)
    assert w.arrival_s.tolist() == [0.0, 0.0, 0.5]
    assert w.input_tokens.tolist() == [4, 2, 3]
    assert w.output_tokens.tolist() == [3, 1, 2]
    assert p.instance_limits() == {
        "max_batch_size": 2, "max_batch_tokens": 8, "kv_capacity_tokens": 20, "chunk_tokens": 0,
    }


def test_random_problem_is_valid_and_reproducible():
    a = random_problem(15, np.random.default_rng(5))
    b = random_problem(15, np.random.default_rng(5))
    assert a.n == 15
    assert np.array_equal(a.output_tokens, b.output_tokens)
    assert np.array_equal(a.arrival_slot, b.arrival_slot)
    with pytest.raises(ValueError, match="'rng' parameter of random_problem"):
        random_problem(5, 0)


def test_jct_deadlines():
    p = _problem()
    # sum o = 6; C_j <= a_j - 1 + 10 - (6 - o_j)
    assert p.jct_deadlines(10).tolist() == [6, 4, 6]


# ---------------------------------------------------------------- Schedule


def _log(starts, entries, instance=None):
    """Build a simulator-style iteration log from per-iteration lists of
    (request, prefill_tokens, output_token)."""
    counts = [len(e) for e in entries]
    offsets = np.zeros(len(entries) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    flat = [x for e in entries for x in e]
    return {
        "start_s": np.asarray(starts, dtype=float),
        "end_s": np.asarray(starts, dtype=float) + 1.0,
        "instance": np.zeros(len(starts), np.int64) if instance is None else np.asarray(instance),
        "offsets": offsets,
        "request": np.array([f[0] for f in flat], dtype=np.int64),
        "prefill_tokens": np.array([f[1] for f in flat], dtype=np.int64),
        "output_token": np.array([f[2] for f in flat], dtype=bool),
    }


def test_from_iteration_log_round_trip():
    p = _problem()
    log = _log(
        [0.0, 1.0, 2.0, 3.0],
        [
            [(0, 4, True), (1, 2, True)],
            [(0, 0, True), (2, 3, True)],
            [(0, 0, True), (2, 0, True)],
            [],
        ],
    )
    s = Schedule.from_iteration_log(log, p.n)
    assert s.slot.tolist() == [0, 0, 1, 1, 2, 2]
    assert s.request.tolist() == [0, 1, 0, 2, 0, 2]
    assert s.prefill_tokens.tolist() == [4, 2, 0, 3, 0, 0]
    r = verify(p, s)
    assert r.ok, r.violations
    assert r.completion_slot.tolist() == [2, 0, 2]
    assert r.objective == 3 + 1 + 2
    # the same schedule built from runs alone
    s2 = Schedule.from_runs(
        n_requests=3, request=s.request, slot=s.slot, input_tokens=p.input_tokens
    )
    assert np.array_equal(s2.prefill_tokens, s.prefill_tokens)
    assert s.run_matrix().astype(int).tolist() == [[1, 1, 1], [1, 0, 0], [0, 1, 1]]


def test_from_iteration_log_slot_length_and_instance_filter():
    log = _log(
        [0.0, 0.5, 0.5], [[(0, 4, True)], [(0, 0, True)], [(1, 2, True)]], instance=[0, 0, 1]
    )
    with pytest.raises(ValueError, match="pass 'instance'"):
        Schedule.from_iteration_log(log, 2, slot_s=0.5)
    s = Schedule.from_iteration_log(log, 2, slot_s=0.5, instance=0)
    assert s.slot.tolist() == [0, 1] and s.request.tolist() == [0, 0]


def test_from_iteration_log_rejects_off_grid_and_duplicates():
    with pytest.raises(ValueError, match="slot grid"):
        Schedule.from_iteration_log(_log([0.0, 1.5], [[(0, 4, True)], [(0, 0, True)]]), 1)
    with pytest.raises(ValueError, match="two iterations in slot 1"):
        Schedule.from_iteration_log(_log([1.0, 1.0], [[(0, 4, True)], [(0, 0, True)]]), 1)
    with pytest.raises(ValueError, match="request 0 twice"):
        Schedule.from_iteration_log(_log([0.0], [[(0, 4, True), (0, 0, True)]]), 1)
    with pytest.raises(ValueError, match="must have keys"):
        Schedule.from_iteration_log({"start_s": np.zeros(1)}, 1)


def test_schedule_validation():
    with pytest.raises(ValueError, match="'request' parameter of Schedule"):
        Schedule(n_requests=2, request=[0, 2], slot=[0, 0], prefill_tokens=[1, 1],
                 output_token=np.ones(2, bool))
    with pytest.raises(ValueError, match="'output_token' parameter of Schedule"):
        Schedule(n_requests=2, request=[0, 1], slot=[0, 0], prefill_tokens=[1, 1],
                 output_token=[1, 1])
    with pytest.raises(ValueError, match="'slot' parameter of Schedule"):
        Schedule(n_requests=2, request=[0, 1], slot=[0, -1], prefill_tokens=[1, 1],
                 output_token=np.ones(2, bool))
