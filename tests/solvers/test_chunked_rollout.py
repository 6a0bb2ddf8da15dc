"""Seer's divided rollout with KV capacity (rollout digest §1.9(b)): the chunk table follows the
model; the CP-SAT optimum passes verify, lies between the lower bound and the greedy, equals an
exhaustive search on tiny batches; dividing never hurts without a migration delay and a delay
never helps; a binding KV capacity moves the optimum as worked out by hand; verify reports each
broken rule without raising, and bad input names its field."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.solvers import (
    ChunkedRolloutProblem,
    ChunkedRolloutSchedule,
    ChunkTable,
    ScheduleInvalid,
    chunked_lower_bound,
    chunks_of,
    greedy_chunked_rollout,
    random_chunked_rollout_problem,
    solve_chunked_rollout_cpsat,
    verify_chunked_rollout,
)

pytestmark = pytest.mark.solver


def _problem(**kw: object) -> ChunkedRolloutProblem:
    base: dict[str, object] = dict(prompt_tokens=[0, 0], output_tokens=[4, 4], n_instances=1,
                                   kv_capacity_tokens=7, max_batch_size=2, chunk_tokens=2,
                                   step_s=0.5)
    base.update(kw)
    return ChunkedRolloutProblem(**base)  # type: ignore[arg-type]


def _sched(rows: list[tuple[int, int, int, int]]) -> ChunkedRolloutSchedule:
    """A schedule from (request, index, instance, start) rows."""
    r, c, m, s = (list(col) for col in zip(*rows, strict=True))
    return ChunkedRolloutSchedule(request=r, index=c, instance=m, start=s)


def _optimum_slots(p: ChunkedRolloutProblem) -> int:
    r = solve_chunked_rollout_cpsat(p, time_limit_s=10, num_workers=2)
    assert r.status == "OPTIMAL" and verify_chunked_rollout(p, r.schedule).valid
    return int(r.stats["makespan_slots"])


def _brute_force(p: ChunkedRolloutProblem, horizon: int) -> int:
    """The least makespan (slots) by trying every instance and start of every chunk, request by
    request and chunk by chunk, below ``horizon`` (a known feasible makespan), with its own
    slot-by-slot capacity accounting (independent of the solver and of verify)."""
    t = chunks_of(p)
    N, B, K, mig = p.n_instances, p.max_batch_size, p.kv_capacity_tokens, p.migration_slots
    d, kv = t.duration_slots.tolist(), t.kv_tokens.tolist()
    req = t.request.tolist()
    J = len(t)
    tail = [0] * (J + 1)
    for j in range(J - 1, -1, -1):
        tail[j] = d[j] + (tail[j + 1] if j + 1 < J and req[j + 1] == req[j] else 0)
    kv_use = [[0] * horizon for _ in range(N)]
    count = [[0] * horizon for _ in range(N)]
    best = horizon

    def place(j: int, prev_m: int, prev_end: int, span: int) -> None:
        nonlocal best
        if j == J:
            best = min(best, span)
            return
        first = j == 0 or req[j] != req[j - 1]
        for m in range(N if j else 1):  # the first chunk on instance 0: instances are identical
            earliest = 0 if first else prev_end + (mig if m != prev_m else 0)
            for s in range(earliest, best - tail[j]):
                e = s + d[j]
                if any(count[m][u] + 1 > B or kv_use[m][u] + kv[j] > K for u in range(s, e)):
                    continue
                for u in range(s, e):
                    count[m][u] += 1
                    kv_use[m][u] += kv[j]
                place(j + 1, m, e, max(span, e))
                for u in range(s, e):
                    count[m][u] -= 1
                    kv_use[m][u] -= kv[j]

    place(0, -1, 0, 0)
    return best


# ---------------------------------------------------------------------------- the model


def test_chunk_table_follows_the_model() -> None:
    p = ChunkedRolloutProblem(prompt_tokens=[100, 50, 7], output_tokens=[700, 200, 1],
                              n_instances=2, kv_capacity_tokens=1000, max_batch_size=2,
                              chunk_tokens=300, slot_steps=128, step_s=0.03)
    t = chunks_of(p)
    assert isinstance(t, ChunkTable) and len(t) == p.n_chunks == 5
    assert t.request.tolist() == [0, 0, 0, 1, 2]
    assert t.index.tolist() == [0, 1, 2, 0, 0]
    assert t.tokens.tolist() == [300, 300, 100, 200, 1]
    # 300 tokens in slots of 128 steps take 3 slots (rounded up); 100 and 200 take 1 and 2
    assert t.duration_slots.tolist() == [3, 3, 1, 2, 1]
    assert t.kv_tokens.tolist() == [400, 700, 800, 250, 8]  # prompt + tokens up to the chunk end
    assert t.first.tolist() == [0, 3, 4, 5] and t.chunk_id(0, 2) == 2 and t.chunk_id(2, 0) == 4
    assert not t.kv_tokens.flags.writeable
    whole = chunks_of(ChunkedRolloutProblem(
        prompt_tokens=[100, 50, 7], output_tokens=[700, 200, 1], n_instances=2,
        kv_capacity_tokens=1000, max_batch_size=2, chunk_tokens=None, slot_steps=128,
        step_s=0.03))
    assert whole.tokens.tolist() == [700, 200, 1] and whole.duration_slots.tolist() == [6, 2, 1]
    assert whole.kv_tokens.tolist() == [800, 250, 8]
    assert p.slot_s == pytest.approx(128 * 0.03)


def test_problem_arrays_are_read_only_copies() -> None:
    out = np.array([4, 4])
    p = _problem(output_tokens=out, group_id=[3, 3])
    out[0] = 100
    assert p.output_tokens.tolist() == [4, 4] and p.output_tokens.dtype == np.int64
    assert not p.output_tokens.flags.writeable and not p.prompt_tokens.flags.writeable
    assert p.group_id is not None and not p.group_id.flags.writeable


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"output_tokens": [4, 0]}, "output_tokens"),
        ({"output_tokens": [4, 2.5]}, "output_tokens"),
        ({"output_tokens": []}, "output_tokens"),
        ({"prompt_tokens": [0, -1]}, "prompt_tokens"),
        ({"prompt_tokens": [0]}, "prompt_tokens"),
        ({"n_instances": 0}, "n_instances"),
        ({"kv_capacity_tokens": 3}, "kv_capacity_tokens"),  # a request needs 4
        ({"kv_capacity_tokens": 7.5}, "kv_capacity_tokens"),
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"chunk_tokens": 0}, "chunk_tokens"),
        ({"step_s": 0.0}, "step_s"),
        ({"step_s": float("inf")}, "step_s"),
        ({"slot_steps": True}, "slot_steps"),
        ({"migration_slots": -1}, "migration_slots"),
        ({"group_id": [0]}, "group_id"),
        ({"group_id": [0, -2]}, "group_id"),
    ],
)
def test_bad_problems_name_the_field(kw: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        _problem(**kw)


def test_bad_solver_and_generator_arguments_name_the_parameter() -> None:
    p = _problem()
    bad_hint = _sched([(0, 0, 0, 0), (0, 1, 0, 2), (1, 0, 0, 0)])  # request 1 half missing
    for kw, name in [({"time_limit_s": 0}, "time_limit_s"), ({"num_workers": 0}, "num_workers"),
                     ({"hint": [0, 1]}, "hint"), ({"hint": bad_hint}, "hint")]:
        with pytest.raises(ValueError, match=name):
            solve_chunked_rollout_cpsat(p, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="groups"):
        random_chunked_rollout_problem(10, 2, seed=0, groups=3)
    with pytest.raises(ValueError, match="kv_slack"):
        random_chunked_rollout_problem(10, 2, seed=0, kv_slack=0.5)
    with pytest.raises(ValueError, match="problem"):
        chunks_of("p")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start"):
        ChunkedRolloutSchedule(request=[0, 1], index=[0, 0], instance=[0, 0], start=[0])


# ---------------------------------------------------------------------------- verify


def test_verify_accepts_a_hand_made_schedule_and_counts_migrations() -> None:
    p = _problem(n_instances=2, migration_slots=1)
    # request 0 on instance 0 then 1 (one slot's gap); request 1 stays on instance 0
    s = _sched([(0, 0, 0, 0), (0, 1, 1, 3), (1, 0, 0, 0), (1, 1, 0, 2)])
    check = verify_chunked_rollout(p, s)
    assert check.valid and check.raise_if_invalid() is check
    assert (check.makespan_slots, check.makespan_s, check.migrations) == (5, 2.5, 1)


def test_verify_reports_missing_double_foreign_and_misplaced_chunks() -> None:
    p = _problem(n_instances=2, kv_capacity_tokens=100, max_batch_size=4)
    s = ChunkedRolloutSchedule(request=[0, 0, 0, 1, 2, 1], index=[0, 1, 1, 5, 0, 0],
                               instance=[0, 0, 0, 1, 0, 2], start=[0, 2, 2, 0, 0, -1],
                               end=[2, 4, 5, 1, 1, 1])
    check = verify_chunked_rollout(p, s)
    assert check.violations == [
        "entry 3: chunk (1, 5) is not in the problem's chunk table",
        "entry 4: chunk (2, 0) is not in the problem's chunk table",
        "chunk (1, 0) is on instance 2, not in [0, 2)",
        "chunk (1, 0) starts at slot -1, before slot 0",
        "chunk (0, 1) claims slots [2, 5), not its 2 slot(s)",
        "chunk (1, 1) is not scheduled",
        "chunk (0, 1) is scheduled 2 times",
    ]
    assert check.makespan_slots == 4  # entries that are in the table and on an instance
    with pytest.raises(ScheduleInvalid, match="breaks"):
        check.raise_if_invalid()


def test_verify_reports_precedence_and_migration_gaps() -> None:
    p = _problem(n_instances=2, migration_slots=2, kv_capacity_tokens=100)
    same = verify_chunked_rollout(p, _sched([(0, 0, 0, 0), (0, 1, 0, 1), (1, 0, 1, 0),
                                             (1, 1, 1, 2)]))
    assert same.violations == [
        "chunk (0, 1) starts at slot 1, before slot 2 (chunk (0, 0) ends at slot 2)"]
    moved = verify_chunked_rollout(p, _sched([(0, 0, 0, 0), (0, 1, 1, 3), (1, 0, 1, 0),
                                              (1, 1, 1, 5)]))
    assert moved.violations == [
        "chunk (0, 1) starts at slot 3, before slot 4 (chunk (0, 0) ends at slot 2, plus 2 "
        "migration slot(s) from instance 0 to 1)"]
    assert moved.migrations == 1


def test_verify_reports_kv_and_batch_over_capacity_without_raising() -> None:
    p = _problem()  # K = 7, B = 2, one instance
    # both second chunks (4 KV tokens each) overlap during slots 3: 8 > 7
    kv = verify_chunked_rollout(p, _sched([(0, 0, 0, 0), (0, 1, 0, 2), (1, 0, 0, 0),
                                           (1, 1, 0, 3)]))
    assert kv.violations == [
        "instance 0 exceeds kv_capacity_tokens=7 during 1 slot(s), first at slot 3 (8 tokens)"]
    assert kv.makespan_slots == 5
    q = _problem(max_batch_size=1, kv_capacity_tokens=100, output_tokens=[4, 4, 2],
                 prompt_tokens=[0, 0, 0])
    overlap = verify_chunked_rollout(q, _sched([(0, 0, 0, 0), (0, 1, 0, 2), (1, 0, 0, 1),
                                                (1, 1, 0, 4), (2, 0, 0, 4)]))
    assert overlap.violations == [
        "instance 0 exceeds max_batch_size=1 during 4 slot(s), first at slot 1 (2 chunks)"]


@pytest.mark.parametrize("bad", [[(0, 0, 0, 0)], {"request": [0]}, np.zeros((4, 4))])
def test_verify_raises_on_a_schedule_of_the_wrong_type(bad: object) -> None:
    with pytest.raises(ValueError, match="schedule"):
        verify_chunked_rollout(_problem(), bad)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------- the optimum


def test_a_binding_kv_capacity_moves_the_optimum_as_worked_out_by_hand() -> None:
    # Two requests of 4 tokens, no prompt, one instance with room for two, a slot per token.
    # K = 8: both run together, 4 slots. K = 7 undivided: one after the other, 8 slots.
    # K = 7 in chunks of 2 (KV 2 then 4): the first chunks share the instance, the second ones
    # (4 + 4 > 7) may not overlap and each starts at slot 2 or later: 6 slots.
    assert _optimum_slots(_problem(kv_capacity_tokens=8, chunk_tokens=None)) == 4
    assert _optimum_slots(_problem(kv_capacity_tokens=8)) == 4
    assert _optimum_slots(_problem(chunk_tokens=None)) == 8
    r = solve_chunked_rollout_cpsat(_problem(), time_limit_s=10)
    assert (r.status, r.stats["makespan_slots"], r.objective) == ("OPTIMAL", 6, 3.0)
    assert r.stats["lower_bound_slots"] == 4 and chunked_lower_bound(_problem()) == 2.0
    # a prompt of 3 tokens makes the chunks 5 and 7: even the first ones cannot pair with a
    # second chunk, and first + first (10) does not fit either: 8 slots, division or not
    assert _optimum_slots(_problem(prompt_tokens=[3, 3], kv_capacity_tokens=9)) == 8


def test_a_migration_delay_costs_what_an_exhaustive_search_says() -> None:
    # Three requests A, B, C of two one-slot chunks on two instances of one slot each: 6
    # chunk-slots fill both instances for 3 slots only as slot 0 {A, B}, slot 1 {A, C}, slot 2
    # {B, C} (up to renaming). A (slots 0, 1) and C (1, 2) each stay on one instance, which
    # leaves B the other instance at slot 0 and A's at slot 2: one move with a one-slot gap. So
    # a delay of 1 costs nothing and a delay of 2 a slot, as much as not dividing at all (three
    # jobs of 2 slots on 2 instances: 4).
    base = dict(prompt_tokens=[0, 0, 0], output_tokens=[2, 2, 2], n_instances=2,
                kv_capacity_tokens=100, max_batch_size=1, chunk_tokens=1, step_s=1.0)
    slots = []
    for mig in (0, 1, 2):
        p = ChunkedRolloutProblem(**{**base, "migration_slots": mig})  # type: ignore[arg-type]
        slots.append((_optimum_slots(p), _brute_force(p, 6)))
    assert slots == [(3, 3), (3, 3), (4, 4)]
    whole = ChunkedRolloutProblem(**{**base, "chunk_tokens": None})  # type: ignore[arg-type]
    assert _optimum_slots(whole) == _brute_force(whole, 6) == 4


@settings(max_examples=25, deadline=None)
@given(
    lengths=st.lists(st.integers(1, 4), min_size=1, max_size=3),
    prompts=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    n_instances=st.integers(1, 2),
    batch=st.integers(1, 2),
    chunk=st.sampled_from([1, 2, None]),
    kv_extra=st.integers(0, 4),
    mig=st.integers(0, 2),
)
def test_optimum_equals_exhaustive_search(lengths: list[int], prompts: list[int],
                                          n_instances: int, batch: int, chunk: int | None,
                                          kv_extra: int, mig: int) -> None:
    P = prompts[: len(lengths)]
    p = ChunkedRolloutProblem(
        prompt_tokens=P, output_tokens=lengths, n_instances=n_instances,
        kv_capacity_tokens=max(a + b for a, b in zip(P, lengths, strict=True)) + kv_extra,
        max_batch_size=batch, chunk_tokens=chunk, step_s=1.0, migration_slots=mig)
    r = solve_chunked_rollout_cpsat(p, time_limit_s=10, num_workers=1)
    assert r.status == "OPTIMAL" and verify_chunked_rollout(p, r.schedule).valid
    slots = r.stats["makespan_slots"]
    assert _brute_force(p, slots + 1) == slots
    assert chunked_lower_bound(p) <= r.bound == r.objective == slots * p.slot_s


@pytest.mark.parametrize(
    ("n", "N", "seed", "kw"),
    [(8, 2, 0, {}), (10, 2, 1, {}), (12, 2, 2, {"max_batch_size": 4, "kv_slack": 1.0}),
     (12, 3, 3, {"migration_slots": 1}), (9, 3, 4, {"groups": 3, "max_batch_size": 1}),
     (6, 1, 5, {"kv_slack": 1.0, "max_batch_size": 3})],
)
def test_optimum_is_valid_between_bound_and_greedy(n: int, N: int, seed: int, kw: dict) -> None:
    p = random_chunked_rollout_problem(n, N, seed=seed, **kw)
    r = solve_chunked_rollout_cpsat(p, time_limit_s=20)
    assert r.status == "OPTIMAL" and r.gap == 0.0
    check = verify_chunked_rollout(p, r.schedule)
    assert check.valid and check.makespan_s == r.objective
    assert check.makespan_slots == r.stats["makespan_slots"] == r.stats["bound_slots"]
    greedy = verify_chunked_rollout(p, greedy_chunked_rollout(p))
    assert greedy.valid and greedy.makespan_slots == r.stats["hint_makespan_slots"]
    assert chunked_lower_bound(p) <= r.bound <= r.objective <= greedy.makespan_s
    assert r.stats["n_chunks"] == p.n_chunks and r.stats["migrations"] == check.migrations
    assert {"n_variables", "n_constraints", "branches", "cpsat_status"} <= set(r.stats)


@pytest.mark.parametrize("seed", range(3))
def test_dividing_without_a_migration_delay_never_hurts(seed: int) -> None:
    # chunk_tokens (1024) is a multiple of slot_steps (256): a request's chunks back to back on
    # one instance take the undivided request's slots with no larger KV, so the undivided
    # optimum is a feasible divided schedule
    kw = dict(seed=seed, max_batch_size=3, kv_slack=1.0)
    divided = random_chunked_rollout_problem(8, 2, **kw)  # type: ignore[arg-type]
    whole = random_chunked_rollout_problem(8, 2, chunk_tokens=None, **kw)  # type: ignore[arg-type]
    assert np.array_equal(divided.output_tokens, whole.output_tokens)
    assert _optimum_slots(divided) <= _optimum_slots(whole)


@pytest.mark.parametrize("seed", range(2))
def test_a_migration_delay_never_helps(seed: int) -> None:
    slots = [_optimum_slots(random_chunked_rollout_problem(8, 2, seed=seed, migration_slots=m,
                                                           kv_slack=1.0))
             for m in (0, 1, 3)]
    assert slots == sorted(slots)


def test_greedy_is_valid_on_every_kind_of_problem() -> None:
    for seed, kw in enumerate([{}, {"migration_slots": 2}, {"max_batch_size": 1},
                               {"kv_slack": 1.0, "max_batch_size": 8}, {"chunk_tokens": None},
                               {"chunk_tokens": 300, "slot_steps": 128}]):
        for N in (1, 3):
            p = random_chunked_rollout_problem(12, N, seed=seed, **kw)
            check = verify_chunked_rollout(p, greedy_chunked_rollout(p))
            assert check.valid, check.violations
            assert check.makespan_s >= chunked_lower_bound(p)


def test_a_time_limited_solve_reports_a_valid_bound_and_gap() -> None:
    p = random_chunked_rollout_problem(32, 4, seed=0, slot_steps=128)
    r = solve_chunked_rollout_cpsat(p, time_limit_s=1.0, num_workers=2)
    assert r.status in ("OPTIMAL", "FEASIBLE") and r.wall_s < 5
    assert verify_chunked_rollout(p, r.schedule).valid
    assert chunked_lower_bound(p) <= r.bound <= r.objective <= r.stats["hint_makespan_s"]
    assert (r.status == "OPTIMAL") == (r.gap == 0.0)


def test_a_given_hint_or_none_reaches_the_same_optimum() -> None:
    p = random_chunked_rollout_problem(10, 2, seed=1, migration_slots=1)
    start = greedy_chunked_rollout(p)
    # the same schedule listed backwards with its instances swapped is a valid start too
    flipped = ChunkedRolloutSchedule(request=start.request[::-1], index=start.index[::-1],
                                     instance=1 - start.instance[::-1], start=start.start[::-1])
    results = [solve_chunked_rollout_cpsat(p, time_limit_s=10, hint=h)
               for h in (None, False, True, flipped)]
    assert all(r.status == "OPTIMAL" for r in results)
    assert len({r.stats["makespan_slots"] for r in results}) == 1


def test_a_lower_bound_that_meets_the_greedy_skips_the_search() -> None:
    # one long request decides the makespan: its chain of chunks is the bound
    p = ChunkedRolloutProblem(prompt_tokens=[10, 10, 10], output_tokens=[4096, 100, 100],
                              n_instances=2, kv_capacity_tokens=8192, max_batch_size=2,
                              chunk_tokens=1024, slot_steps=256, step_s=0.03)
    quick = solve_chunked_rollout_cpsat(p, time_limit_s=10)
    searched = solve_chunked_rollout_cpsat(p, time_limit_s=10, hint=False)
    assert quick.stats["cpsat_status"] == "not run" and quick.status == "OPTIMAL"
    assert searched.stats["cpsat_status"] == "OPTIMAL"
    assert quick.stats["makespan_slots"] == searched.stats["makespan_slots"] == 16


def test_random_problems_are_reproducible_and_grouped_on_request() -> None:
    p = random_chunked_rollout_problem(12, 3, seed=0, groups=3)
    again = random_chunked_rollout_problem(12, 3, seed=0, groups=3)
    assert np.array_equal(p.output_tokens, again.output_tokens)
    assert p.group_id is not None and np.bincount(p.group_id).tolist() == [4, 4, 4]
    for g in range(3):  # one prompt per group
        assert np.unique(p.prompt_tokens[p.group_id == g]).size == 1
    assert p.kv_capacity_tokens == int(np.ceil(1.2 * (p.prompt_tokens
                                                      + p.output_tokens).max()))
    assert int(p.output_tokens.max()) <= 4096 and p.chunk_tokens == 1024
    fixed = random_chunked_rollout_problem(4, 1, seed=0, kv_capacity_tokens=20000)
    assert fixed.kv_capacity_tokens == 20000 and fixed.group_id is None
