"""A divided-rollout scheduler replayed on a chunked-rollout problem: every registered scheduler
gives a schedule that passes the problem's own verify, never below its lower bound nor the CP-SAT
optimum; the longest-first oracle meets the optimum where Hu's level rule is optimal; the view
keeps the driver's accounting; migration delays and one-shot queues are honoured; stalls,
invalid answers and bad arguments raise clearly."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from schedlab.contract.divided import Chunks, DividedView
from schedlab.errors import SimulationStalled
from schedlab.policies import ROLLOUT_SCHEDULERS, get_rollout_scheduler
from schedlab.sim import optimality_gaps, replay_chunked_rollout
from schedlab.solvers import (
    ChunkedRolloutProblem,
    ChunkedRolloutSchedule,
    chunked_lower_bound,
    chunks_of,
    random_chunked_rollout_problem,
    solve_chunked_rollout_cpsat,
    verify_chunked_rollout,
)

#: The registry's presets take ``**params`` and keep their own chunk size unless told.
PRESETS = ("divided-fifo", "oracle-lfs")


def _random(seed: int) -> ChunkedRolloutProblem:
    """A varied random problem whose KV holds every prompt plus the longest output (so a
    scheduler reserving ``prompt + max_tokens`` can always place a request)."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([3, 4, 6, 8, 12]))
    p = random_chunked_rollout_problem(
        n, int(rng.integers(1, 4)), seed=seed,
        groups=int(rng.choice([g for g in (1, 2, 3, 4) if n % g == 0])),
        chunk_tokens=[None, 512, 1024, 2048][seed % 4],
        slot_steps=int(rng.choice([128, 256, 300])), max_batch_size=int(rng.integers(1, 4)),
        migration_slots=int(rng.integers(0, 3)), kv_slack=float(rng.uniform(1.0, 1.6)))
    need = int(p.prompt_tokens.max() + p.output_tokens.max())
    return dataclasses.replace(p, kv_capacity_tokens=max(p.kv_capacity_tokens, need))


def _params(name: str, p: ChunkedRolloutProblem) -> dict[str, Any]:
    return {"chunk_tokens": p.chunk_tokens} if name in PRESETS else {}


def _problem(**kw: Any) -> ChunkedRolloutProblem:
    base: dict[str, Any] = dict(prompt_tokens=[0, 0, 0], output_tokens=[2, 2, 2], n_instances=1,
                                kv_capacity_tokens=100, max_batch_size=1, chunk_tokens=1,
                                step_s=1.0)
    base.update(kw)
    return ChunkedRolloutProblem(**base)


@pytest.mark.parametrize("name", sorted(ROLLOUT_SCHEDULERS))
def test_every_registered_scheduler_gives_a_verified_schedule(name):
    for seed in range(150):
        p = _random(seed)
        pred = p.output_tokens if seed % 2 else None
        s = replay_chunked_rollout(p, name, scheduler_params=_params(name, p),
                                   predicted_output_tokens=pred)
        check = verify_chunked_rollout(p, s)
        assert check.valid, (seed, check.violations)
        assert check.makespan_s >= chunked_lower_bound(p) - 1e-9
        if name in ("request-level", "group-round-robin"):  # whole requests, back to back
            assert check.migrations == 0
            for r in range(p.n):
                on = s.request == r
                order = np.argsort(s.index[on])
                assert np.array_equal(s.start[on][order][1:], s.end[on][order][:-1])


def _replay_logging(p: ChunkedRolloutProblem, name: str,
                    params: dict[str, Any]) -> tuple[ChunkedRolloutSchedule,
                                                     list[tuple[int, int, int]]]:
    """The replay of registered ``name`` and its dispatches: (slot, request, table row of the
    dispatch's first chunk)."""
    fn = get_rollout_scheduler(name)
    first = chunks_of(p).first
    unit = p.chunk_tokens or int(p.output_tokens.max())
    sent: list[tuple[int, int, int]] = []

    def spy(view: DividedView, /, **kw: Any) -> Chunks:
        c = fn(view, **kw)
        slot = round(view.now_s / p.slot_s)
        sent.extend((slot, r, int(first[r] + view.generated_tokens[r] // unit))
                    for r in c.request.tolist())
        return c

    return replay_chunked_rollout(p, spy, scheduler_params=params), sent


@pytest.mark.parametrize("name", ["seer", *PRESETS, "request-level"])
def test_a_memory_aware_scheduler_never_makes_a_chunk_wait(name):
    """Seer's dispatch checks the KV and batch room the view shows, so every chunk starts at
    its decision's slot, plus the migration delay when it moved."""
    for seed in range(40):
        p = _random(seed)
        chunked = {} if name == "request-level" else {"chunk_tokens": p.chunk_tokens}
        s, sent = _replay_logging(p, name, chunked)
        first = chunks_of(p).first
        for slot, r, row in sent:
            moved = row > first[r] and s.instance[row] != s.instance[row - 1]
            assert s.start[row] == slot + (p.migration_slots if moved else 0), (seed, r, row)


def test_the_replay_is_deterministic_and_leaves_the_problem_alone():
    p = _random(7)
    before = p.output_tokens.copy()
    a, b = (replay_chunked_rollout(p, "seer") for _ in range(2))
    assert np.array_equal(a.start, b.start) and np.array_equal(a.instance, b.instance)
    assert np.array_equal(p.output_tokens, before)


def test_seer_is_given_the_problems_chunk_size_and_a_preset_keeps_its_own():
    seer = get_rollout_scheduler("seer")
    seen: list[Any] = []

    def declared(view: DividedView, /, *, chunk_tokens: int | None = 8192) -> Chunks:
        seen.append(chunk_tokens)
        return seer(view, chunk_tokens=chunk_tokens)

    def forwarding(view: DividedView, /, **params: Any) -> Chunks:
        seen.append(dict(params))
        return seer(view, chunk_tokens=None)

    p = random_chunked_rollout_problem(4, 2, seed=3, chunk_tokens=512)
    replay_chunked_rollout(p, declared)
    assert set(seen) == {512}
    seen.clear()
    replay_chunked_rollout(p, declared, scheduler_params={"chunk_tokens": 1024})
    assert set(seen) == {1024}
    seen.clear()
    replay_chunked_rollout(p, forwarding)
    assert all(s == {} for s in seen)
    # request-level keeps its whole requests: one chunk of the table after another, in place
    s = replay_chunked_rollout(p, "request-level")
    assert verify_chunked_rollout(p, s).migrations == 0


def test_a_budget_that_ends_inside_a_chunk_of_the_table_is_refused():
    p = _problem(output_tokens=[4, 4, 4], chunk_tokens=2)
    with pytest.raises(ValueError, match=r"'divided-fifo'.*inside chunk 1.*chunk_tokens=2"):
        replay_chunked_rollout(p, "divided-fifo", scheduler_params={"chunk_tokens": 3})
    # a multiple of the table's chunk covers whole chunks, back to back on one instance
    s = replay_chunked_rollout(p, "divided-fifo", scheduler_params={"chunk_tokens": 4})
    assert verify_chunked_rollout(p, s).makespan_slots == 12


def test_the_view_keeps_the_drivers_accounting():
    p = ChunkedRolloutProblem(prompt_tokens=[10, 10, 30], output_tokens=[4, 6, 3],
                              group_id=[5, 5, 9], n_instances=2, kv_capacity_tokens=50,
                              max_batch_size=2, chunk_tokens=2, step_s=0.5)
    views: list[DividedView] = []

    def spy(view: DividedView, /) -> Chunks:  # request 1 takes two chunks of the table at once
        views.append(view)
        w = view.waiting
        left = view.max_tokens[w] - view.generated_tokens[w]
        return Chunks(request=w, instance=w % 2, budget=np.minimum(np.where(w == 1, 4, 2), left))

    s = replay_chunked_rollout(p, spy)
    assert s.start.tolist() == [0, 2, 0, 2, 4, 0, 2]
    assert s.instance.tolist() == [0, 0, 1, 1, 1, 0, 0]
    assert [v.decision for v in views] == [0, 1, 2] and [v.now_s for v in views] == [0, 1, 2]
    v0, v1, v2 = views
    assert v0.max_tokens.tolist() == [6, 6, 6] and v0.output_tokens_pred.tolist() == [6, 6, 6]
    assert v0.group_index.tolist() == [0, 0, 1] and v0.is_probe.tolist() == [True, False, True]
    assert v0.kv_free_tokens.tolist() == [50, 50] and v0.slots_free.tolist() == [2, 2]
    # slot 2: requests 0 and 2 ended their first chunk; request 1 runs on instance 1 and holds
    # its dispatch's footprint, the prompt and the 4 tokens it will have
    assert v1.in_flight.tolist() == [False, True, False]
    assert v1.in_flight_requests.tolist() == [0, 1] and v1.slots_free.tolist() == [2, 1]
    assert v1.kv_free_tokens.tolist() == [50, 50 - 14]
    assert v1.generated_tokens.tolist() == [2, 0, 2] and v1.last_instance.tolist() == [0, -1, 0]
    assert v1.served_s.tolist() == [1.0, 0.0, 1.0]
    assert v1.group_on_instance.tolist() == [[True, True], [True, False]]
    # slot 4: request 2 ended at slot 3 (its last token) without a decision: nothing waited
    assert v2.done.tolist() == [True, False, True] and v2.generated_tokens.tolist() == [4, 4, 3]
    assert v2.served_s.tolist() == [2.0, 2.0, 1.5] and v2.last_instance.tolist() == [0, 1, 0]


def test_a_move_waits_migration_slots_and_staying_does_not():
    p = _problem(prompt_tokens=[0], output_tokens=[3], n_instances=2, kv_capacity_tokens=3,
                 migration_slots=2)

    def alternate(view: DividedView, /) -> Chunks:
        return Chunks(request=np.array([0]), instance=np.array([view.generated_tokens[0] % 2]),
                      budget=np.array([1]))

    s = replay_chunked_rollout(p, alternate)
    assert s.start.tolist() == [0, 3, 6] and s.instance.tolist() == [0, 1, 0]
    assert verify_chunked_rollout(p, s).migrations == 2
    stay = replay_chunked_rollout(p, "divided-fifo", scheduler_params={"chunk_tokens": 1})
    assert stay.start.tolist() == [0, 1, 2]


def test_a_one_shot_dispatch_queues_first_come_first_served():
    p = _problem(prompt_tokens=[0, 0, 0, 0], output_tokens=[2, 1, 3, 1], group_id=[0, 0, 0, 1],
                 n_instances=2, kv_capacity_tokens=4, max_batch_size=2, chunk_tokens=None)
    s = replay_chunked_rollout(p, "group-round-robin")
    # group 0 on instance 0: requests 0 and 1 start (a batch of 2); 2 waits for a batch slot,
    # then for KV (3 tokens beside request 0's 2) until request 0 ends; group 1 on instance 1
    assert s.instance.tolist() == [0, 0, 0, 1] and s.start.tolist() == [0, 0, 2, 0]
    assert verify_chunked_rollout(p, s).valid


def test_oracle_lfs_meets_the_chain_bound_where_fifo_does_not():
    # two machines, unit chunks: chains of 1, 1, 1, 1 and 4 chunks. Longest first runs the long
    # chain from slot 0 (4 slots, the chain bound: optimal); batch order leaves it for last.
    p = _problem(prompt_tokens=[0] * 5, output_tokens=[1, 1, 1, 1, 4], n_instances=2,
                 kv_capacity_tokens=100, max_batch_size=1, chunk_tokens=1)
    lfs = replay_chunked_rollout(p, "oracle-lfs", predicted_output_tokens=p.output_tokens,
                                 scheduler_params={"chunk_tokens": 1, "starvation_eps": 0.0})
    fifo = replay_chunked_rollout(p, "divided-fifo", scheduler_params={"chunk_tokens": 1})
    assert verify_chunked_rollout(p, lfs).makespan_s == chunked_lower_bound(p) == 4.0
    assert verify_chunked_rollout(p, fifo).makespan_s == 6.0


@pytest.mark.solver
@pytest.mark.parametrize("seed", range(6))
def test_oracle_lfs_is_hus_level_rule_and_optimal_on_unit_chains(seed):
    """Unit-slot chunks, no binding KV, no migration: ``N * B`` identical machines and chains of
    unit jobs, where highest level first (Hu 1961; here the longest remaining first) is
    optimal."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 9))
    p = ChunkedRolloutProblem(prompt_tokens=rng.integers(0, 50, n),
                              output_tokens=rng.integers(1, 7, n) * 100 - rng.integers(0, 50, n),
                              n_instances=2, kv_capacity_tokens=10**6,
                              max_batch_size=int(rng.integers(1, 3)), chunk_tokens=100,
                              slot_steps=100, step_s=0.03)
    lfs = replay_chunked_rollout(p, "oracle-lfs", predicted_output_tokens=p.output_tokens,
                                 scheduler_params={"chunk_tokens": 100, "starvation_eps": 0.0})
    best = solve_chunked_rollout_cpsat(p, time_limit_s=5)
    assert best.status == "OPTIMAL"
    assert verify_chunked_rollout(p, lfs).makespan_s == pytest.approx(best.objective)


@pytest.mark.solver
@pytest.mark.parametrize("seed", range(3))
def test_no_scheduler_beats_the_optimum(seed):
    p = random_chunked_rollout_problem(6, 2, seed=seed, groups=2, kv_slack=1.5,
                                       migration_slots=seed % 2)
    g = optimality_gaps(p, {name: _params(name, p) for name in ROLLOUT_SCHEDULERS},
                        predicted_output_tokens=p.output_tokens, time_limit_s=5)
    assert g["scheduler"].tolist() == list(ROLLOUT_SCHEDULERS)
    assert (g["status"] == "OPTIMAL").all()
    assert (g["makespan_s"] >= g["optimum_s"] - 1e-9).all()
    assert (g["makespan_s"] >= g["bound_s"] - 1e-9).all()
    assert np.allclose(g["gap"], g["gap_to_bound"]) and (g["gap"] >= -1e-12).all()
    assert (g["solve_s"] > 0).all()


@pytest.mark.solver
def test_optimality_gaps_takes_one_scheduler_or_several():
    p = random_chunked_rollout_problem(4, 2, seed=0)
    assert optimality_gaps(p, "seer", time_limit_s=5)["scheduler"].tolist() == ["seer"]

    def mine(view: DividedView, /) -> Chunks:
        return get_rollout_scheduler("seer")(view, chunk_tokens=p.chunk_tokens)

    g = optimality_gaps(p, ["request-level", mine], time_limit_s=5)
    assert g["scheduler"].tolist() == ["request-level", "mine"]
    assert (g["gap_to_bound"] >= g["gap"] - 1e-12).all()


def test_a_scheduler_that_dispatches_nothing_stalls():
    def idle(view: DividedView, /) -> Chunks:
        return Chunks.none()

    with pytest.raises(SimulationStalled, match=r"'idle' dispatched nothing at slot 0"):
        replay_chunked_rollout(_problem(), idle)


def test_a_limit_the_kv_cannot_hold_stalls_a_reserving_scheduler_and_says_why():
    p = ChunkedRolloutProblem(prompt_tokens=[500, 0], output_tokens=[10, 400], n_instances=1,
                              kv_capacity_tokens=800, max_batch_size=2, chunk_tokens=None,
                              step_s=1.0)
    with pytest.raises(SimulationStalled, match=r"Request 0's prompt plus max_tokens \(900"):
        replay_chunked_rollout(p, "request-level")
    s = replay_chunked_rollout(p, "request-level", max_tokens=[10, 400])  # per-request limits
    assert verify_chunked_rollout(p, s).valid


@pytest.mark.parametrize("answer,match", [
    (lambda v: "nothing", r"'bad' must return Chunks\. Got str"),
    (lambda v: Chunks(request=np.array([0, 0]), instance=np.array([0, 0]),
                      budget=np.array([1, 1])), r"'bad': request twice"),
    (lambda v: Chunks(request=np.array([0]), instance=np.array([3]), budget=np.array([1])),
     r"'bad': instance out of range"),
    (lambda v: Chunks(request=np.array([0]), instance=np.array([0]), budget=np.array([9])),
     r"'bad': budget out of range"),
])
def test_an_invalid_answer_raises_naming_the_scheduler(answer, match):
    def bad(view: DividedView, /) -> Any:
        return answer(view)

    with pytest.raises(ValueError, match=match):
        replay_chunked_rollout(_problem(), bad)


@pytest.mark.parametrize("kwargs,match", [
    ({"problem": "p"}, r"'problem' parameter of replay_chunked_rollout must be a "
                       r"ChunkedRolloutProblem"),
    ({"scheduler": "seeer"}, r"Unknown rollout scheduler 'seeer'\. Close matches: 'seer'"),
    ({"scheduler_params": [("seed", 1)]}, r"'scheduler_params' parameter of "
                                          r"replay_chunked_rollout must be a mapping"),
    ({"scheduler_params": {"chunk_size": 2}}, r"rollout scheduler 'seer' has no parameter "
                                              r"'chunk_size'"),
    ({"max_tokens": 0}, r"'max_tokens' parameter of replay_chunked_rollout must be an int"),
    ({"max_tokens": 1}, r"'max_tokens' parameter .* request 0 has 2 output tokens"),
    ({"max_tokens": [2, 2]}, r"'max_tokens'"),
    ({"predicted_output_tokens": [1.0, -1.0, 1.0]}, r"'predicted_output_tokens'"),
    ({"predicted_output_tokens": [1.0]}, r"'predicted_output_tokens'"),
])
def test_bad_arguments_raise_naming_the_field(kwargs, match):
    args: dict[str, Any] = {"problem": _problem(), "scheduler": "seer", **kwargs}
    with pytest.raises(ValueError, match=match):
        replay_chunked_rollout(args.pop("problem"), args.pop("scheduler"), **args)
    if "problem" in kwargs:
        with pytest.raises(ValueError, match=r"'problem' parameter of optimality_gaps"):
            optimality_gaps(kwargs["problem"])
