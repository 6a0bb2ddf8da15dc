"""The divided-rollout optimum: Seer's chunked, migratable rollout schedule with KV capacity as a
CP-SAT model for small instances (Seer, arXiv 2511.14617 §3.2 "Divided Rollout"; rollout digest
§1.9(b)): :class:`ChunkedRolloutProblem`, :func:`chunks_of` (the chunk table),
:class:`ChunkedRolloutSchedule`, :func:`verify_chunked_rollout`, :func:`chunked_lower_bound`,
:func:`greedy_chunked_rollout` and :func:`solve_chunked_rollout_cpsat`.

Seer divides every response into chunks of at most ``chunk_size`` output tokens; after each chunk
the request goes back to a global buffer and its next chunk may run on any instance, its KV cache
moved through the global (Mooncake) pool. A chunk has a well-defined largest KV footprint, so a
scheduler can admit chunks without ever preempting. The optimum of that freedom, with the true
lengths known, is the "divided-rollout oracle" this module computes.

The model, a reconstruction [R] (the paper gives the mechanism, not a model):

- ``n`` requests, request ``r`` with prompt ``P_r`` tokens and true output length ``L_r >= 1``
  (optionally in groups, carried for the caller: the model does not constrain them); ``N``
  identical instances, each with ``K = kv_capacity_tokens`` of KV cache and at most
  ``B = max_batch_size`` requests decoding at once.
- Time runs in integer **slots** of ``slot_steps`` decode steps; a decode step takes ``step_s``
  seconds whatever the batch (the digest's pessimistic choice: fix the per-token latency at its
  value for ``B``; the batch-dependent speed is not modelled), so a slot is
  ``slot_s = slot_steps * step_s`` seconds and the makespan in seconds is ``slots * slot_s``.
- Request ``r`` is cut into ``ceil(L_r / chunk_tokens)`` chunks of ``chunk_tokens`` output tokens,
  the last shorter (``chunk_tokens=None``: one chunk, no division). Chunk ``c`` of ``t`` tokens
  lasts ``ceil(t / slot_steps)`` slots (rounded up: a chunk of ``chunk_tokens`` a multiple of
  ``slot_steps`` loses nothing) and holds, for its whole run, its largest KV: the prompt plus the
  tokens generated up to its end, ``P_r + min((c + 1) * chunk_tokens, L_r)`` (Seer's admission
  footprint ``kv_need``, digest §1.2).
- Every chunk runs on exactly one instance, without interruption; chunk ``c + 1`` starts no earlier
  than chunk ``c`` ends, plus ``migration_slots`` when it runs on another instance (moving the KV
  through the pool). Between its chunks a request holds no KV on any instance; reloading it on the
  same instance and the prefill of the prompt are free (Seer measures migration at under 0.1% of
  rollout time, digest §1.5, so ``migration_slots=0`` is the paper's setting).
- On every instance at every slot: the KV of the running chunks is at most ``K``, and at most ``B``
  chunks run. The makespan is the end of the last chunk; the objective minimises it.

Division can only help when ``migration_slots = 0`` and ``slot_steps`` divides ``chunk_tokens``:
running one request's chunks back to back on one instance takes the undivided request's slots
with a smaller KV footprint in all but the last chunk. A migration delay can make division worse.

The CP-SAT model (:func:`solve_chunked_rollout_cpsat`), in labelled stages:

1. **Chunks.** The table of :func:`chunks_of`: request, index, tokens, duration ``d_j`` and KV
   demand ``k_j``, request-major.
2. **Variables.** A start ``s_j`` per chunk, in ``[head_j, U - tail_j]`` (``head_j``: the slots of
   the request's earlier chunks; ``tail_j``: its own and later ones; ``U``: the greedy's makespan);
   with ``N > 1`` a presence literal ``x[j, m]`` and an optional interval ``[s_j, s_j + d_j)`` per
   instance, ``AddExactlyOne`` over the instances; a literal ``moved`` per pair of consecutive
   chunks when ``migration_slots > 0``.
3. **Constraints.** Precedence ``s_{j+1} >= s_j + d_j + migration_slots * moved``, with
   ``x[j, m] and not x[j+1, m] => moved``; per instance ``AddCumulative`` of the KV demands
   (capacity ``K``) and of the batch slots (demand 1, capacity ``B``; ``AddNoOverlap`` when
   ``B = 1``), each left out where it cannot bind; a redundant cumulative of each over all
   instances (capacity ``N K`` and ``N B``) to strengthen the search's bound; ``z >= s_last + d``.
   Symmetry: instances are labelled in the order of first use (a fixed chunk order: chunk ``j``
   may use instance ``m > 0`` only if an earlier chunk uses ``m - 1``), and of two identical
   requests (same prompt and length) the lower index starts first. Both keep one optimum of
   every class (the second moves whole requests, the first relabels instances; neither disturbs
   the other).
4. **Objective.** Minimise ``z`` in ``[lower bound, U]``, the greedy schedule (or the caller's)
   as the hint; a time-limited answer is never worse than the greedy.
5. **Bound.** The larger of CP-SAT's and :func:`chunked_lower_bound`'s; when the lower bound
   already meets the greedy, the greedy is returned as optimal without a search.

The digest expects this to be solvable for "up to ~200 chunks x 8 instances"; on the benchmark's
random batches a proof comes quickly for about a dozen requests on two or three instances and
the gap stays open well below that size (see ``benchmarks/bench_chunked_rollout.py``).

>>> p = ChunkedRolloutProblem(prompt_tokens=[0, 0], output_tokens=[4, 4], n_instances=1,
...     kv_capacity_tokens=7, max_batch_size=2, chunk_tokens=2, step_s=0.5)
>>> r = solve_chunked_rollout_cpsat(p, time_limit_s=5)
>>> r.status, r.stats["makespan_slots"], r.objective, verify_chunked_rollout(p, r.schedule).valid
('OPTIMAL', 6, 3.0, True)
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import (
    check_array,
    check_instance,
    check_nonneg_int,
    check_positive_float,
    check_positive_int,
)
from schedlab.solvers.iteration_verify import ScheduleInvalid
from schedlab.solvers.result import SolveResult, check_solve_arguments, run_cpsat

__all__ = [
    "ChunkedRolloutProblem",
    "ChunkTable",
    "chunks_of",
    "ChunkedRolloutSchedule",
    "ChunkedRolloutCheck",
    "verify_chunked_rollout",
    "chunked_lower_bound",
    "greedy_chunked_rollout",
    "solve_chunked_rollout_cpsat",
    "random_chunked_rollout_problem",
]

_WHERE = "ChunkedRolloutProblem"


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkedRolloutProblem:
    """One rollout batch to schedule in chunks (see the module docstring for the model).

    ``prompt_tokens`` (ints >= 0) and ``output_tokens`` (true lengths, ints >= 1), one per
    request; ``group_id`` (ints >= 0) or ``None``, carried, not constrained; ``n_instances``
    identical instances with ``kv_capacity_tokens`` of KV each, at least every request's
    ``prompt + output``, and ``max_batch_size`` concurrent requests; ``chunk_tokens`` output
    tokens per chunk (``None``: one chunk per request); a slot of ``slot_steps`` decode steps of
    ``step_s`` seconds each; ``migration_slots`` between two consecutive chunks of a request on
    different instances. Arrays are stored as read-only copies.

    >>> p = ChunkedRolloutProblem(prompt_tokens=[100, 100, 50], output_tokens=[900, 300, 40],
    ...     group_id=[0, 0, 1], n_instances=2, kv_capacity_tokens=2048, max_batch_size=2,
    ...     chunk_tokens=256, slot_steps=128, step_s=0.03)
    >>> p.n, p.n_chunks, round(p.slot_s, 2), p.output_tokens.flags.writeable
    (3, 7, 3.84, False)
    >>> ChunkedRolloutProblem(prompt_tokens=[100], output_tokens=[900], n_instances=1,
    ...     kv_capacity_tokens=512, max_batch_size=1, chunk_tokens=256, step_s=0.03)
    Traceback (most recent call last):
    ...
    ValueError: The 'kv_capacity_tokens' parameter of ChunkedRolloutProblem must hold every
    request's prompt and output (request 0 needs 1000 tokens). Got 512 instead.
    """

    prompt_tokens: np.ndarray
    output_tokens: np.ndarray
    n_instances: int
    kv_capacity_tokens: int
    max_batch_size: int
    chunk_tokens: int | None
    step_s: float
    slot_steps: int = 1
    migration_slots: int = 0
    group_id: np.ndarray | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        out = check_array(self.output_tokens, "output_tokens", _WHERE, dtype=np.int64,
                          integer=True, min_value=1)
        if out.size == 0:
            raise ValueError(f"The 'output_tokens' parameter of {_WHERE} must hold at least one "
                             "request. Got an empty array.")
        set_(self, "output_tokens", out)
        set_(self, "prompt_tokens", check_array(self.prompt_tokens, "prompt_tokens", _WHERE,
                                                dtype=np.int64, integer=True, min_value=0,
                                                length=out.size))
        set_(self, "n_instances", check_positive_int(self.n_instances, "n_instances", _WHERE))
        set_(self, "max_batch_size",
             check_positive_int(self.max_batch_size, "max_batch_size", _WHERE))
        if self.chunk_tokens is not None:
            set_(self, "chunk_tokens",
                 check_positive_int(self.chunk_tokens, "chunk_tokens", _WHERE))
        set_(self, "step_s", check_positive_float(self.step_s, "step_s", _WHERE))
        set_(self, "slot_steps", check_positive_int(self.slot_steps, "slot_steps", _WHERE))
        set_(self, "migration_slots",
             check_nonneg_int(self.migration_slots, "migration_slots", _WHERE))
        K = check_positive_int(self.kv_capacity_tokens, "kv_capacity_tokens", _WHERE)
        need = self.prompt_tokens + out
        r = int(np.argmax(need))
        if int(need[r]) > K:
            raise ValueError(f"The 'kv_capacity_tokens' parameter of {_WHERE} must hold every "
                             f"request's prompt and output (request {r} needs {int(need[r])} "
                             f"tokens). Got {self.kv_capacity_tokens!r} instead.")
        set_(self, "kv_capacity_tokens", K)
        if self.group_id is not None:
            set_(self, "group_id", check_array(self.group_id, "group_id", _WHERE, dtype=np.int64,
                                               integer=True, min_value=0, length=out.size))

    @property
    def n(self) -> int:
        """Requests in the batch."""
        return int(self.output_tokens.shape[0])

    @property
    def slot_s(self) -> float:
        """Seconds per slot, ``slot_steps * step_s``."""
        return self.slot_steps * self.step_s

    @property
    def n_chunks(self) -> int:
        """Chunks of all requests together."""
        if self.chunk_tokens is None:
            return self.n
        return int((-(-self.output_tokens // self.chunk_tokens)).sum())


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkTable:
    """The chunks of a :class:`ChunkedRolloutProblem`, request-major (chunk ``first[r] + c`` is
    chunk ``c`` of request ``r``): ``request``, ``index``, output ``tokens``,
    ``duration_slots`` and ``kv_tokens`` (the KV it holds while it runs: prompt plus the tokens
    generated up to its end), read-only int64 arrays; ``first`` has ``n + 1`` offsets.
    """

    request: np.ndarray
    index: np.ndarray
    tokens: np.ndarray
    duration_slots: np.ndarray
    kv_tokens: np.ndarray
    first: np.ndarray

    def __len__(self) -> int:
        return int(self.request.shape[0])

    def chunk_id(self, request: int, index: int) -> int:
        """Row of chunk ``index`` of ``request`` (no range check)."""
        return int(self.first[request]) + int(index)


def chunks_of(problem: ChunkedRolloutProblem) -> ChunkTable:
    """The chunk table of ``problem``: request ``r`` of ``L_r`` output tokens gives
    ``ceil(L_r / chunk_tokens)`` chunks of ``chunk_tokens`` tokens (the last shorter), chunk ``c``
    lasting ``ceil(tokens / slot_steps)`` slots and holding ``P_r + min((c + 1) * chunk_tokens,
    L_r)`` KV tokens (Seer's per-chunk footprint, digest §1.2).

    >>> p = ChunkedRolloutProblem(prompt_tokens=[100, 50], output_tokens=[700, 200],
    ...     n_instances=1, kv_capacity_tokens=1000, max_batch_size=2, chunk_tokens=256,
    ...     slot_steps=128, step_s=0.03)
    >>> t = chunks_of(p)
    >>> t.request.tolist(), t.index.tolist(), t.tokens.tolist()
    ([0, 0, 0, 1], [0, 1, 2, 0], [256, 256, 188, 200])
    >>> t.duration_slots.tolist(), t.kv_tokens.tolist(), t.first.tolist()
    ([2, 2, 2, 2], [356, 612, 800, 250], [0, 3, 4])
    """
    check_instance(problem, ChunkedRolloutProblem, "problem", "chunks_of")
    L, P = problem.output_tokens, problem.prompt_tokens
    C = int(L.max()) if problem.chunk_tokens is None else problem.chunk_tokens
    count = -(-L // C)
    first = np.concatenate(([0], np.cumsum(count))).astype(np.int64)
    request = np.repeat(np.arange(problem.n, dtype=np.int64), count)
    index = np.arange(int(first[-1]), dtype=np.int64) - first[request]
    done = np.minimum((index + 1) * C, L[request])
    tokens = done - index * C
    duration = -(-tokens // problem.slot_steps)
    kv = P[request] + done
    arrays = [request, index, tokens, duration, kv, first]
    for a in arrays:
        a.flags.writeable = False
    return ChunkTable(request=request, index=index, tokens=tokens, duration_slots=duration,
                      kv_tokens=kv, first=first)


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkedRolloutSchedule:
    """Where and when each chunk runs: one entry per chunk, in any order: its ``request``, its
    ``index`` within the request, its ``instance`` and its ``start`` slot; optionally the ``end``
    slot each entry claims (checked against the chunk's duration). Any integers are accepted
    here; :func:`verify_chunked_rollout` judges them.

    >>> s = ChunkedRolloutSchedule(request=[0, 0, 1], index=[0, 1, 0], instance=[0, 1, 1],
    ...                            start=[0, 2, 0])
    >>> len(s), s.start.tolist()
    (3, [0, 2, 0])
    """

    request: np.ndarray
    index: np.ndarray
    instance: np.ndarray
    start: np.ndarray
    end: np.ndarray | None = None

    def __post_init__(self) -> None:
        where = "ChunkedRolloutSchedule"
        set_ = object.__setattr__
        req = check_array(self.request, "request", where, dtype=np.int64, integer=True)
        set_(self, "request", req)
        for name in ("index", "instance", "start"):
            set_(self, name, check_array(getattr(self, name), name, where, dtype=np.int64,
                                         integer=True, length=req.size))
        if self.end is not None:
            set_(self, "end", check_array(self.end, "end", where, dtype=np.int64, integer=True,
                                          length=req.size))

    def __len__(self) -> int:
        return int(self.request.shape[0])


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkedRolloutCheck:
    """What :func:`verify_chunked_rollout` found: the violations (empty when ``valid``), the
    makespan of the entries as given (slots and seconds; entries outside the chunk table or on no
    instance do not count) and the number of ``migrations`` (consecutive chunks of a request on
    different instances).

    >>> p = ChunkedRolloutProblem(prompt_tokens=[0], output_tokens=[4], n_instances=2,
    ...     kv_capacity_tokens=4, max_batch_size=1, chunk_tokens=2, step_s=0.5)
    >>> c = verify_chunked_rollout(p, ChunkedRolloutSchedule(request=[0, 0], index=[0, 1],
    ...                                                      instance=[0, 1], start=[0, 2]))
    >>> c.valid, c.makespan_slots, c.makespan_s, c.migrations
    (True, 4, 2.0, 1)
    """

    violations: list[str]
    makespan_slots: int
    makespan_s: float
    migrations: int

    @property
    def valid(self) -> bool:
        """No violation."""
        return not self.violations

    def raise_if_invalid(self) -> ChunkedRolloutCheck:
        """Return ``self``, or raise :class:`~schedlab.solvers.ScheduleInvalid` listing the first
        violations."""
        if self.violations:
            lines = [f"  {v}" for v in self.violations[:10]]
            if len(self.violations) > 10:
                lines.append(f"  ... and {len(self.violations) - 10} more")
            raise ScheduleInvalid("Chunked rollout schedule breaks the problem's rules:\n"
                                  + "\n".join(lines))
        return self


def verify_chunked_rollout(problem: ChunkedRolloutProblem,
                           schedule: ChunkedRolloutSchedule) -> ChunkedRolloutCheck:
    """Check a chunked schedule against the problem's rules: every chunk of the table scheduled
    exactly once, on an instance in ``[0, N)``, from a slot >= 0 for its duration (and ``end``,
    where given, equal to start plus duration); each chunk after the previous one of its request
    ends, plus ``migration_slots`` when the instance changes; on every instance at every slot the
    running chunks' KV at most ``kv_capacity_tokens`` and their number at most
    ``max_batch_size``. A broken schedule is reported, never raised; a ``schedule`` that is not a
    :class:`ChunkedRolloutSchedule` raises ``ValueError``.

    >>> p = ChunkedRolloutProblem(prompt_tokens=[0, 0], output_tokens=[4, 2], n_instances=2,
    ...     kv_capacity_tokens=4, max_batch_size=1, chunk_tokens=2, step_s=1.0,
    ...     migration_slots=1)
    >>> bad = ChunkedRolloutSchedule(request=[0, 0, 1, 1], index=[0, 1, 0, 0],
    ...                              instance=[0, 1, 0, 0], start=[0, 2, 1, 5])
    >>> for v in verify_chunked_rollout(p, bad).violations: print(v)
    chunk (1, 0) is scheduled 2 times
    chunk (0, 1) starts at slot 2, before slot 3 (chunk (0, 0) ends at slot 2,
    plus 1 migration slot(s) from instance 0 to 1)
    instance 0 exceeds max_batch_size=1 during 1 slot(s), first at slot 1 (2 chunks)
    """
    where = "verify_chunked_rollout"
    check_instance(problem, ChunkedRolloutProblem, "problem", where)
    if not isinstance(schedule, ChunkedRolloutSchedule):
        raise ValueError(f"The 'schedule' parameter of {where} must be a ChunkedRolloutSchedule. "
                         f"Got {type(schedule).__name__} instead.")
    pr, t = problem, chunks_of(problem)
    N, mig = pr.n_instances, pr.migration_slots
    req, idx, inst, start = schedule.request, schedule.index, schedule.instance, schedule.start
    violations: list[str] = []

    # Entries: in the table, on an instance, from slot 0, for the chunk's duration.
    in_table = (req >= 0) & (req < pr.n)
    n_of = np.zeros(req.size, np.int64)
    n_of[in_table] = t.first[req[in_table] + 1] - t.first[req[in_table]]
    in_table &= (idx >= 0) & (idx < n_of)
    row = np.where(in_table, t.first[np.where(in_table, req, 0)] + idx, -1)
    dur = np.where(in_table, t.duration_slots[np.maximum(row, 0)], 0)
    for e in np.flatnonzero(~in_table).tolist():
        violations.append(f"entry {e}: chunk ({int(req[e])}, {int(idx[e])}) is not in the "
                          "problem's chunk table")
    placed = in_table & (inst >= 0) & (inst < N) & (start >= 0)
    for e in np.flatnonzero(in_table & ((inst < 0) | (inst >= N))).tolist():
        violations.append(f"chunk ({int(req[e])}, {int(idx[e])}) is on instance {int(inst[e])}, "
                          f"not in [0, {N})")
    for e in np.flatnonzero(in_table & (start < 0)).tolist():
        violations.append(f"chunk ({int(req[e])}, {int(idx[e])}) starts at slot "
                          f"{int(start[e])}, before slot 0")
    if schedule.end is not None:
        wrong = in_table & (schedule.end - start != dur)
        for e in np.flatnonzero(wrong).tolist():
            violations.append(f"chunk ({int(req[e])}, {int(idx[e])}) claims slots "
                              f"[{int(start[e])}, {int(schedule.end[e])}), not its "
                              f"{int(dur[e])} slot(s)")

    # Every chunk once.
    count = np.bincount(row[in_table], minlength=len(t))
    for j in np.flatnonzero(count == 0).tolist():
        violations.append(f"chunk ({int(t.request[j])}, {int(t.index[j])}) is not scheduled")
    for j in np.flatnonzero(count > 1).tolist():
        violations.append(f"chunk ({int(t.request[j])}, {int(t.index[j])}) is scheduled "
                          f"{int(count[j])} times")

    # Precedence and migration gaps, between chunks scheduled once on a valid instance.
    once = np.full(len(t), -1, np.int64)
    ok = placed & (count[np.maximum(row, 0)] == 1)
    once[row[ok]] = np.flatnonzero(ok)
    migrations = 0
    for j in range(len(t) - 1):
        a, b = int(once[j]), int(once[j + 1])
        if a < 0 or b < 0 or t.request[j] != t.request[j + 1]:
            continue
        end = int(start[a] + dur[a])
        moved = int(inst[a]) != int(inst[b])
        migrations += moved
        need = end + (mig if moved else 0)
        if int(start[b]) < need:
            r, c = int(t.request[j + 1]), int(t.index[j + 1])
            why = f"chunk ({r}, {c - 1}) ends at slot {end}"
            if moved and mig:
                why += f", plus {mig} migration slot(s) from instance {int(inst[a])} to " \
                       f"{int(inst[b])}"
            violations.append(f"chunk ({r}, {c}) starts at slot {int(start[b])}, before slot "
                              f"{need} ({why})")

    # Capacity of every instance at every slot, over the entries as listed.
    s_p, e_p, m_p = start[placed], (start + dur)[placed], inst[placed]
    kv_p = t.kv_tokens[row[placed]]
    for m in range(N):
        on = m_p == m
        for demand, cap, name, unit in ((kv_p[on], pr.kv_capacity_tokens, "kv_capacity_tokens",
                                         "tokens"),
                                        (np.ones(int(on.sum()), np.int64), pr.max_batch_size,
                                         "max_batch_size", "chunks")):
            over = _over_capacity(s_p[on], e_p[on], demand, cap)
            if over is not None:
                slots, first, level = over
                violations.append(f"instance {m} exceeds {name}={cap} during {slots} slot(s), "
                                  f"first at slot {first} ({level} {unit})")
    makespan = int(e_p.max()) if e_p.size else 0
    return ChunkedRolloutCheck(violations=violations, makespan_slots=makespan,
                               makespan_s=makespan * pr.slot_s, migrations=migrations)


def _over_capacity(start: np.ndarray, end: np.ndarray, demand: np.ndarray,
                   cap: int) -> tuple[int, int, int] | None:
    """``(slots over, first slot over, level there)`` of the step function of intervals
    ``[start, end)`` with ``demand``, or ``None`` if it never passes ``cap`` (event sweep: no
    array as long as the horizon)."""
    if start.size == 0:
        return None
    times = np.concatenate((start, end))
    delta = np.concatenate((demand, -demand))
    points, inv = np.unique(times, return_inverse=True)
    level = np.cumsum(np.bincount(inv.ravel(), weights=delta, minlength=points.size))
    level = np.rint(level).astype(np.int64)  # segment i: [points[i], points[i+1])
    over = np.flatnonzero(level[:-1] > cap)
    if over.size == 0:
        return None
    slots = int((points[over + 1] - points[over]).sum())
    return slots, int(points[over[0]]), int(level[over[0]])


def _lower_bound_slots(problem: ChunkedRolloutProblem, t: ChunkTable) -> int:
    """:func:`chunked_lower_bound` in slots."""
    d, N = t.duration_slots, problem.n_instances
    chain = int(np.add.reduceat(d, t.first[:-1]).max())
    batch = -(-int(d.sum()) // (N * problem.max_batch_size))
    kv = -(-int((d * t.kv_tokens).sum()) // (N * problem.kv_capacity_tokens))
    return max(chain, batch, kv)


def chunked_lower_bound(problem: ChunkedRolloutProblem) -> float:
    """A cheap lower bound on the optimal makespan, in seconds (slots times ``slot_s``), the
    largest of: the longest request's chain of chunk durations (its chunks run one after
    another); the total chunk-slots over the ``N * B`` batch slots; and the total KV-slots
    (duration times KV demand) over the ``N * K`` KV capacity, each rounded up to a whole slot.

    >>> p = ChunkedRolloutProblem(prompt_tokens=[0, 0], output_tokens=[4, 4], n_instances=1,
    ...     kv_capacity_tokens=7, max_batch_size=2, chunk_tokens=2, step_s=0.5)
    >>> chunked_lower_bound(p)   # KV-slots 2*(2*2 + 2*4) = 24 over 7 -> 4 slots of 0.5 s
    2.0
    """
    check_instance(problem, ChunkedRolloutProblem, "problem", "chunked_lower_bound")
    return _lower_bound_slots(problem, chunks_of(problem)) * problem.slot_s


def _greedy(problem: ChunkedRolloutProblem, t: ChunkTable) -> tuple[np.ndarray, np.ndarray]:
    """``(instance, start)`` per chunk row of the list-scheduling greedy."""
    pr = problem
    N, B, K, mig = pr.n_instances, pr.max_batch_size, pr.kv_capacity_tokens, pr.migration_slots
    d, kv, first = t.duration_slots.tolist(), t.kv_tokens.tolist(), t.first.tolist()
    left = np.add.reduceat(t.duration_slots, t.first[:-1]).tolist()  # slots of work left
    nxt = first[:-1].copy()  # next chunk row of each request
    prev_inst, prev_end = [-1] * pr.n, [0] * pr.n
    running: list[list[tuple[int, int]]] = [[] for _ in range(N)]  # (end, kv) per instance
    inst_out = np.full(len(t), -1, np.int64)
    start_out = np.full(len(t), -1, np.int64)
    todo, now = len(t), 0
    while todo:
        for m in range(N):
            running[m] = [x for x in running[m] if x[0] > now]
        ready = [r for r in range(pr.n) if nxt[r] < first[r + 1] and prev_end[r] <= now]
        ready.sort(key=lambda r: (-left[r], r))
        for r in ready:
            j = nxt[r]
            pm = prev_inst[r]
            allowed = [pm] if pm >= 0 and now < prev_end[r] + mig else range(N)
            best, key = -1, None
            for m in allowed:
                used = sum(k for _, k in running[m])
                if len(running[m]) >= B or used + kv[j] > K:
                    continue
                # stay put first, then the emptiest batch, then the most free KV, lowest index
                cand = (m != pm, len(running[m]), used, m)
                if key is None or cand < key:
                    best, key = m, cand
            if best < 0:
                continue
            inst_out[j], start_out[j] = best, now
            running[best].append((now + d[j], kv[j]))
            prev_inst[r], prev_end[r] = best, now + d[j]
            left[r] -= d[j]
            nxt[r] += 1
            todo -= 1
        events = [e for run in running for e, _ in run if e > now]
        events += [prev_end[r] + mig for r in range(pr.n)
                   if nxt[r] < first[r + 1] and prev_end[r] + mig > now]
        events += [prev_end[r] for r in range(pr.n)
                   if nxt[r] < first[r + 1] and prev_end[r] > now]
        if todo and not events:  # cannot happen: an idle instance takes any ready chunk
            raise RuntimeError("greedy_chunked_rollout made no progress")
        now = min(events) if events else now
    return inst_out, start_out


def _schedule(t: ChunkTable, instance: np.ndarray, start: np.ndarray) -> ChunkedRolloutSchedule:
    return ChunkedRolloutSchedule(request=t.request, index=t.index, instance=instance,
                                  start=start, end=start + t.duration_slots)


def greedy_chunked_rollout(problem: ChunkedRolloutProblem) -> ChunkedRolloutSchedule:
    """A list-scheduling greedy with the true lengths (an oracle heuristic, not a policy; the
    solver's hint and cap): from slot 0, at each event, the requests whose next chunk may start
    take it in order of most work left (longest-first, as Seer's oracle LFS), each on an instance
    where it fits now (batch and KV; the chunks running there only end later), preferring the
    instance of its previous chunk (no migration), then the fewest running chunks, the least KV
    used, the lowest index. A request whose migration delay has not passed may only stay.

    >>> p = ChunkedRolloutProblem(prompt_tokens=[0, 0], output_tokens=[4, 4], n_instances=1,
    ...     kv_capacity_tokens=7, max_batch_size=2, chunk_tokens=2, step_s=0.5)
    >>> s = greedy_chunked_rollout(p)
    >>> s.start.tolist(), verify_chunked_rollout(p, s).makespan_slots
    ([0, 2, 0, 4], 6)
    """
    check_instance(problem, ChunkedRolloutProblem, "problem", "greedy_chunked_rollout")
    t = chunks_of(problem)
    return _schedule(t, *_greedy(problem, t))


def _rows(t: ChunkTable, schedule: ChunkedRolloutSchedule) -> tuple[np.ndarray, np.ndarray]:
    """``(instance, start)`` per chunk row of a valid schedule."""
    row = t.first[schedule.request] + schedule.index
    inst, start = np.empty(len(t), np.int64), np.empty(len(t), np.int64)
    inst[row], start[row] = schedule.instance, schedule.start
    return inst, start


def _makespan(t: ChunkTable, start: np.ndarray) -> int:
    return int((start + t.duration_slots).max())


def _canonical(t: ChunkTable, same_prev: np.ndarray, order: np.ndarray, inst: np.ndarray,
               start: np.ndarray, n_instances: int) -> tuple[np.ndarray, np.ndarray]:
    """A valid schedule rewritten to meet the model's symmetry breaking (stage 3): identical
    requests (``same_prev[r]``: request ``r`` equals ``r - 1``) swapped so their first chunks
    start in index order, then instances relabelled by first use along ``order``."""
    inst, start = inst.copy(), start.copy()
    n = t.first.size - 1
    r = 0
    while r < n:  # runs of identical requests: same chunk count, reassign whole chains
        end = r + 1
        while end < n and same_prev[end]:
            end += 1
        if end - r > 1:
            members = list(range(r, end))
            rows = [np.arange(t.first[q], t.first[q + 1]) for q in members]
            by = sorted(members, key=lambda q: (int(start[t.first[q]]), q))
            chains = [(inst[rows[q - r]].copy(), start[rows[q - r]].copy()) for q in by]
            for q, (ci, cs) in zip(members, chains, strict=True):
                inst[rows[q - r]], start[rows[q - r]] = ci, cs
        r = end
    label = np.full(n_instances, -1, np.int64)
    nxt = 0
    for j in order.tolist():
        m = int(inst[j])
        if label[m] < 0:
            label[m] = nxt
            nxt += 1
    label[label < 0] = np.arange(nxt, n_instances)
    return label[inst], start


def solve_chunked_rollout_cpsat(
    problem: ChunkedRolloutProblem,
    *,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    hint: ChunkedRolloutSchedule | bool | None = None,
    seed: int = 0,
) -> SolveResult:
    """The minimum-makespan chunked schedule of ``problem`` with CP-SAT (model in the module
    docstring), within ``time_limit_s`` (the whole call) on ``num_workers`` threads.

    ``hint``: ``None`` or ``True`` starts from :func:`greedy_chunked_rollout`, ``False`` gives
    CP-SAT no hint (the greedy's makespan still caps the objective), a
    :class:`ChunkedRolloutSchedule` starts from that schedule (it must pass
    :func:`verify_chunked_rollout`). A solution always comes back: status ``OPTIMAL`` or
    ``FEASIBLE`` (the better of the hint and the greedy when CP-SAT found nothing better in
    time). ``objective`` is the makespan of ``schedule`` (a :class:`ChunkedRolloutSchedule` with
    ``end`` filled in) in seconds, ``bound`` a proven lower bound in seconds (never below
    :func:`chunked_lower_bound`), ``gap`` the relative difference. ``stats``: ``n_variables``,
    ``n_constraints``, ``branches``, ``solver_wall_s``, ``n_chunks``, ``makespan_slots``,
    ``bound_slots``, ``lower_bound_slots``, ``hint_makespan_slots`` and ``hint_makespan_s``
    (the greedy's), ``migrations``, ``slot_s`` and ``cpsat_status`` (``"not run"`` when the
    lower bound proved the start optimal).

    >>> p = random_chunked_rollout_problem(8, 2, seed=0)
    >>> r = solve_chunked_rollout_cpsat(p, time_limit_s=10)
    >>> r.status, r.bound <= r.objective <= r.stats["hint_makespan_s"]
    ('OPTIMAL', True)
    """
    t0 = time.perf_counter()
    where = "solve_chunked_rollout_cpsat"
    time_limit_s, num_workers = check_solve_arguments(
        where, problem, ChunkedRolloutProblem, time_limit_s, num_workers, hint,
        ChunkedRolloutSchedule, verify_chunked_rollout)
    from ortools.sat.python import cp_model

    pr, t = problem, chunks_of(problem)
    N, B, K, mig = pr.n_instances, pr.max_batch_size, pr.kv_capacity_tokens, pr.migration_slots
    J = len(t)
    d, kv, first = t.duration_slots, t.kv_tokens, t.first
    g_inst, g_start = _greedy(pr, t)
    g_slots = _makespan(t, g_start)
    starts = [(g_inst, g_start)]
    if isinstance(hint, ChunkedRolloutSchedule):
        starts.insert(0, _rows(t, hint))
    values = [_makespan(t, s) for _, s in starts]
    ub = min(values)
    best_inst, best_start = starts[int(np.argmin(values))]
    lb = _lower_bound_slots(pr, t)

    # Stage 1-2: chunk data, the fixed order of the symmetry breaking, variables.
    rid = t.request
    total = np.add.reduceat(d, first[:-1])
    head = np.cumsum(d) - d - np.repeat(np.cumsum(total) - total, np.diff(first))
    tail = np.repeat(total, np.diff(first)) - head
    order = np.lexsort((np.arange(J), -total[rid], head))  # by earliest start, longest first
    pos = np.empty(J, np.int64)
    pos[order] = np.arange(J)
    same_prev = np.zeros(pr.n, dtype=bool)
    same_prev[1:] = ((pr.output_tokens[1:] == pr.output_tokens[:-1])
                     & (pr.prompt_tokens[1:] == pr.prompt_tokens[:-1]))

    stats: dict[str, Any] = {
        "n_variables": 0, "n_constraints": 0, "branches": 0, "solver_wall_s": 0.0,
        "n_chunks": J, "lower_bound_slots": lb, "hint_makespan_slots": g_slots,
        "hint_makespan_s": g_slots * pr.slot_s, "slot_s": pr.slot_s, "cpsat_status": "not run",
    }
    bound_slots = lb
    if hint is False or lb < ub:
        m_ = cp_model.CpModel()
        s = [m_.new_int_var(int(head[j]), max(int(head[j]), ub - int(tail[j])), f"s{j}")
             for j in range(J)]
        z = m_.new_int_var(lb, max(lb, ub), "z")
        x: list[list[Any]] = []
        per_inst: list[list[tuple[Any, int]]] = [[] for _ in range(N)]  # (interval, kv)
        for j in range(J):
            if N == 1:
                x.append([])
                per_inst[0].append((m_.new_fixed_size_interval_var(s[j], int(d[j]), f"i{j}"),
                                    int(kv[j])))
                continue
            lits = [m_.new_bool_var(f"x{j}_{m}") for m in range(min(int(pos[j]) + 1, N))]
            m_.add_exactly_one(lits)
            x.append(lits)
            for m, lit in enumerate(lits):
                per_inst[m].append((m_.new_optional_fixed_size_interval_var(
                    s[j], int(d[j]), lit, f"i{j}_{m}"), int(kv[j])))
        # Stage 3: precedence with migration, capacities, makespan, symmetry.
        moved: dict[int, Any] = {}
        for j in range(J - 1):
            if rid[j] != rid[j + 1]:
                continue
            if mig > 0 and N > 1:
                mv = m_.new_bool_var(f"mv{j}")
                moved[j] = mv
                for m, lit in enumerate(x[j]):
                    nxt_on = [x[j + 1][m]] if m < len(x[j + 1]) else []
                    m_.add_bool_or([lit.Not(), *nxt_on, mv])
                m_.add(s[j + 1] >= s[j] + int(d[j]) + mig * mv)
            else:
                m_.add(s[j + 1] >= s[j] + int(d[j]))
        peak = np.maximum.reduceat(kv, first[:-1])  # one chunk per request runs at a time
        kv_binds = int(peak.sum()) > K
        batch_binds = pr.n > B
        for m in range(N):
            ivs = [iv for iv, _ in per_inst[m]]
            if kv_binds:
                m_.add_cumulative(ivs, [k for _, k in per_inst[m]], K)
            if batch_binds:
                if B == 1:
                    m_.add_no_overlap(ivs)
                else:
                    m_.add_cumulative(ivs, [1] * len(ivs), B)
        if N > 1 and (kv_binds or batch_binds):
            every = [m_.new_fixed_size_interval_var(s[j], int(d[j]), f"a{j}") for j in range(J)]
            if int(peak.sum()) > N * K:
                m_.add_cumulative(every, [int(k) for k in kv], N * K)
            if pr.n > N * B:
                m_.add_cumulative(every, [1] * J, N * B)
        for r in range(pr.n):
            last = int(first[r + 1]) - 1
            m_.add(z >= s[last] + int(d[last]))
        if N > 1:  # instance m > 0 only after an earlier chunk (in order) opened m - 1
            opened: list[Any] = [None] * N
            for j in order.tolist():
                for m in range(1, len(x[j])):
                    if opened[m - 1] is None:
                        m_.add(x[j][m] == 0)
                    else:
                        m_.add_implication(x[j][m], opened[m - 1])
                for m in range(min(len(x[j]), N - 1)):
                    if opened[m] is None:
                        opened[m] = x[j][m]
                    else:
                        o = m_.new_bool_var(f"o{j}_{m}")
                        m_.add_max_equality(o, [opened[m], x[j][m]])
                        opened[m] = o
        for r in range(1, pr.n):
            if same_prev[r]:
                m_.add(s[int(first[r - 1])] <= s[int(first[r])])
        # Stage 4: objective and hint.
        m_.minimize(z)
        if hint is not False:
            h_inst, h_start = _canonical(t, same_prev, order, *starts[0], N)
            for j in range(J):
                m_.add_hint(s[j], int(h_start[j]))
                for m, lit in enumerate(x[j]):
                    m_.add_hint(lit, int(h_inst[j]) == m)
            for j, mv in moved.items():
                m_.add_hint(mv, int(h_inst[j]) != int(h_inst[j + 1]))
            m_.add_hint(z, values[0])
        stats.update(n_variables=len(m_.proto.variables),
                     n_constraints=len(m_.proto.constraints))
        solver, code = run_cpsat(m_, time_left_s=time_limit_s - (time.perf_counter() - t0),
                                 num_workers=num_workers, seed=seed)
        stats.update(branches=int(solver.num_branches), solver_wall_s=float(solver.wall_time),
                     cpsat_status=solver.status_name(code))
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            c_inst = np.array([0 if N == 1 else
                               next(m for m, v in enumerate(x[j]) if solver.boolean_value(v))
                               for j in range(J)], dtype=np.int64)
            c_start = np.array([solver.value(v) for v in s], dtype=np.int64)
            c_slots = _makespan(t, c_start)
            if c_slots < ub:
                best_inst, best_start, ub = c_inst, c_start, c_slots
            bound_slots = max(bound_slots, math.ceil(solver.best_objective_bound - 1e-6))
            if code == cp_model.OPTIMAL:
                bound_slots = max(bound_slots, c_slots)
        elif code == cp_model.INFEASIBLE:  # nothing below the start: the start is optimal
            bound_slots = ub
    schedule = _schedule(t, best_inst, best_start)
    check = verify_chunked_rollout(pr, schedule)
    if not check.valid:  # a modelling error, never a user's
        raise RuntimeError(f"{where} built an invalid schedule: {check.violations[0]}")
    bound_slots = min(bound_slots, ub)
    status = "OPTIMAL" if bound_slots >= ub else "FEASIBLE"
    stats.update(makespan_slots=ub, bound_slots=bound_slots, migrations=check.migrations)
    return SolveResult(status=status, objective=ub * pr.slot_s, bound=bound_slots * pr.slot_s,
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)


def random_chunked_rollout_problem(
    n: int,
    n_instances: int,
    *,
    seed: int | np.random.Generator,
    groups: int | None = None,
    max_tokens: int = 4096,
    median_tokens: int | None = None,
    chunk_tokens: int | None = 1024,
    slot_steps: int = 256,
    max_batch_size: int = 2,
    kv_capacity_tokens: int | None = None,
    kv_slack: float = 1.2,
    migration_slots: int = 0,
    step_s: float = 0.03,
    prompt_median_tokens: int = 256,
) -> ChunkedRolloutProblem:
    """A random rollout batch of ``n`` requests for ``n_instances`` instances, small enough for
    the CP-SAT model: heavy-tailed output lengths (up to ``max_tokens``, median
    ``median_tokens``, by default a quarter of it: with the calibrated sixteenth the longest
    request's chain decides almost every small batch) and log-normal prompts (median
    ``prompt_median_tokens``, the same within a group) from
    :func:`schedlab.datasets.rollout_batch`; with ``groups``, that many prompts of ``n // groups``
    requests each (``n`` must be a multiple). Defaults [R]: chunks of 1,024 tokens in slots of
    256 decode steps of 30 ms (a 7B-class model's step at a full batch on one H800-class GPU),
    2 requests per instance, and KV capacity ``kv_slack`` times the largest request's prompt plus
    output unless ``kv_capacity_tokens`` is given, so a long request's last chunks crowd out the
    others.

    >>> p = random_chunked_rollout_problem(12, 3, seed=0, groups=3)
    >>> p.n, p.n_instances, int(p.output_tokens.max()) <= 4096, np.bincount(p.group_id).tolist()
    (12, 3, True, [4, 4, 4])
    """
    from schedlab.datasets import rollout_batch

    where = "random_chunked_rollout_problem"
    n = check_positive_int(n, "n", where)
    if groups is None:
        prompts, per = n, 1
    else:
        prompts = check_positive_int(groups, "groups", where)
        if n % prompts:
            raise ValueError(f"The 'groups' parameter of {where} must divide n={n}. "
                             f"Got {groups!r} instead.")
        per = n // prompts
    max_tokens = check_positive_int(max_tokens, "max_tokens", where)
    median = max(2, max_tokens // 4) if median_tokens is None else check_positive_int(
        median_tokens, "median_tokens", where)
    w = rollout_batch(prompts, per, seed=seed, max_tokens=max_tokens, median_tokens=median,
                      prompt_median_tokens=check_positive_int(
                          prompt_median_tokens, "prompt_median_tokens", where),
                      max_prompt_tokens=max(1, 4 * prompt_median_tokens))
    if kv_capacity_tokens is None:
        slack = check_positive_float(kv_slack, "kv_slack", where)
        if slack < 1:
            raise ValueError(f"The 'kv_slack' parameter of {where} must be a float in [1, inf). "
                             f"Got {kv_slack!r} instead.")
        kv_capacity_tokens = math.ceil(slack * int((w.input_tokens + w.output_tokens).max()))
    return ChunkedRolloutProblem(
        prompt_tokens=w.input_tokens, output_tokens=w.output_tokens,
        group_id=None if groups is None else w.group_id, n_instances=n_instances,
        kv_capacity_tokens=kv_capacity_tokens, max_batch_size=max_batch_size,
        chunk_tokens=chunk_tokens, slot_steps=slot_steps, step_s=step_s,
        migration_slots=migration_slots)
