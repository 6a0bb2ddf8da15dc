"""One serving instance in the simulator: its queue, KV cache, policy calls and runs.

At each decision point the instance builds a :class:`~schedlab.policies.base.QueueView` of its
active requests (arrived, assigned here, not finished), calls the batching policy, checks the
:class:`~schedlab.policies.base.BatchDecision` (positions, batch size, token budget, KV capacity
after the moves: capacity is never exceeded), applies rejections and KV moves, and starts a *run*:

- one iteration (any batch with a prefill chunk or KV moves), or
- a stretch of decode-only iterations of an unchanged batch, costed in closed form with
  ``IterationCost.decode_steps_time_s`` and ended at the earliest of: the first completion in the
  batch, the moment the KV cache would overflow, the first iteration boundary at or after the
  policy's ``reconsider_at_s``, and (cut short by :meth:`InstanceRuntime.cut_at`) the first
  boundary at or after the next arrival to this instance. No Python loop per decode step.

When a run ends its effects are applied by one compiled kernel (:mod:`schedlab.sim.kernels`)
and the policy decides again, unless it declared that the batch holds (``hold_batch``).

Extension points: a prefill-only or decode-only role (Mooncake disaggregation) changes which
requests :meth:`InstanceRuntime.admit` accepts and adds a hand-off at completion of the prefill;
speculative decoding changes how many tokens a decode step yields (``generated += k`` per
step); each is a change inside :meth:`InstanceRuntime._finish_iteration` /
:meth:`InstanceRuntime._finish_decode` and their kernels, not a new engine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.errors import SimulationStalled
from schedlab.policies.base import KV_GPU, KV_HOST, KV_NONE, BatchDecision, QueueView
from schedlab.sim.cluster import InstanceSpec
from schedlab.sim.kernels import (
    batch_chunks,
    batch_decode_stats,
    count_unservable,
    finish_decode,
    finish_iteration,
    position_fault,
    split_completed,
    store_release,
)
from schedlab.sim.state import (
    COMPLETED,
    PREFILLED,
    REJECTED,
    TARGET,
    QueueColumns,
    RequestTable,
)

__all__ = ["InstanceRuntime", "IterationLog"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False
_RUN_NONE, _RUN_ITER, _RUN_DECODE, _RUN_MOVES = 0, 1, 2, 3
_STEPS = np.arange(1, 4097, dtype=np.int64)  # step counts 1..4096 (sliced, never written)
_STEPS.flags.writeable = False
_STEPS_F = _STEPS.astype(np.float64)
_STEPS_F.flags.writeable = False
#: Decode steps costed at first for a stretch (most stretches end early, at an arrival).
_HORIZON = 48


class IterationLog:
    """Every iteration individually (closed-form stretches expanded), as growing chunks."""

    __slots__ = ("counts", "end", "instance", "output", "prefill", "request", "start")

    def __init__(self) -> None:
        self.start: list[np.ndarray] = []
        self.end: list[np.ndarray] = []
        self.instance: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.request: list[np.ndarray] = []
        self.prefill: list[np.ndarray] = []
        self.output: list[np.ndarray] = []

    def add(
        self,
        inst: int,
        starts: np.ndarray,
        ends: np.ndarray,
        req: np.ndarray,
        prefill: np.ndarray,
        output: np.ndarray,
    ) -> None:
        """``len(starts)`` iterations, each running ``req`` with the same entries."""
        k = starts.shape[0]
        self.start.append(starts)
        self.end.append(ends)
        self.instance.append(np.full(k, inst, dtype=np.int64))
        self.counts.append(np.full(k, req.shape[0], dtype=np.int64))
        self.request.append(np.tile(req, k))
        self.prefill.append(np.tile(prefill, k))
        self.output.append(np.tile(output, k))

    def to_dict(self) -> dict[str, np.ndarray]:
        """Arrays ``start_s``, ``end_s``, ``instance``, ``offsets`` (CSR), ``request``,
        ``prefill_tokens``, ``output_token``, iterations sorted by (start, instance)."""

        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        start, end = cat(self.start, np.float64), cat(self.end, np.float64)
        inst, counts = cat(self.instance, np.int64), cat(self.counts, np.int64)
        req, pre = cat(self.request, np.int64), cat(self.prefill, np.int64)
        out = cat(self.output, bool)
        order = np.lexsort((inst, start))
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        lens = counts[order]
        new_off = np.zeros_like(offsets)
        np.cumsum(lens, out=new_off[1:])
        pos = np.repeat(offsets[:-1][order] - new_off[:-1], lens) + np.arange(new_off[-1])
        return {
            "start_s": start[order],
            "end_s": end[order],
            "instance": inst[order],
            "offsets": new_off,
            "request": req[pos],
            "prefill_tokens": pre[pos],
            "output_token": out[pos],
        }


class InstanceRuntime:
    """Mutable state and behaviour of one instance during one :func:`simulate` run.

    Positions in a decision are slots of :attr:`Q` (the instance's :class:`QueueColumns`);
    ``Q.rid`` maps them to workload indices, under which outcomes go to the global table.
    """

    def __init__(
        self,
        *,
        index: int,
        spec: InstanceSpec,
        cost: Any,
        table: RequestTable,
        est_prefill: np.ndarray,
        policy: Callable[..., BatchDecision],
        policy_name: str,
        policy_params: dict[str, Any],
        shared: dict[str, np.ndarray],
        reasons: dict[str, int],
        log: IterationLog | None,
        closed_form: bool,
        max_idle_decisions: int,
        track_load: bool,
    ) -> None:
        self.i = index
        self.spec = spec
        self.cost = cost
        # unchecked hot paths of the roofline cost model (same numbers; our own inputs are valid)
        self._iter_time = getattr(cost, "_iteration_time_unchecked", cost.iteration_time_s)
        self._dec_fast = getattr(cost, "_decode_steps_unchecked", None)
        self.T = table
        self.Q = QueueColumns()
        self.est_all = est_prefill
        self.policy = policy
        self.policy_name = policy_name
        self.params = policy_params
        self.shared = shared
        self.reasons = reasons
        self.log = log
        self.closed_form = closed_form
        self.max_idle = max_idle_decisions
        self.track = track_load  # keep the router's per-instance load columns up to date
        self.cap = spec.kv_capacity(cost)
        self.host_cap = int(spec.host_kv_capacity_tokens)
        self.gpu_used = 0
        self.host_used = 0
        self.token = 0
        self.kind = _RUN_NONE
        self.batch = _EMPTY  # slots of the current run
        self.chunks = _EMPTY
        self.t0 = 0.0
        self.t_end = math.inf
        self.ends = np.zeros(0)
        self.more = False
        self.dec_left = 0
        self.dec_kv = 0
        self.horizon = _HORIZON
        self.reconsider = math.inf
        self.decide_at = math.inf
        self.busy_s = 0.0
        self.iterations = 0
        self.decisions = 0
        self.prev_decision_iter = -1
        self.wake = True  # the current run stops at an arrival (BatchDecision.wake_on_arrival)
        self.hold = False  # the current batch runs again without a decision (hold_batch)
        self.hold_room = 0  # ... across completions until they released this much room
        self.hold_released = 0
        self.hold_free = 0  # ... and until the device has this much KV free
        self.arrived = False  # a request arrived during the current run
        self.completed = False  # a request of the batch completed in the run that just ended
        self.idle_decisions = 0

    # ------------------------------------------------------------------ arrivals
    @property
    def busy(self) -> bool:
        return self.kind != _RUN_NONE

    @property
    def n_active(self) -> int:
        return self.Q.n

    def admit(self, idx: np.ndarray, now: float) -> None:
        """Accept newly routed requests, rejecting at once those that can never be served."""
        T, spec = self.T, self.spec
        T.instance[idx] = self.i
        self.arrived = True
        max_prompt = spec.max_batch_tokens if spec.chunk_tokens == 0 else -1
        if count_unservable(idx, T.input, T.output, self.cap, max_prompt):
            inp = T.input[idx]
            too_big = inp + T.output[idx] > self.cap
            over_budget = inp > max_prompt if max_prompt >= 0 else np.zeros(idx.shape[0], bool)
            self._reject_new(idx[too_big], "prompt_exceeds_kv_capacity", now)
            self._reject_new(idx[over_budget & ~too_big], "prompt_exceeds_batch_token_budget", now)
            idx = idx[~(too_big | over_budget)]
        if idx.shape[0]:
            a = self.Q.n
            self.Q.append(idx, T, self.est_all)
            if self.track:
                self.shared["outstanding"][self.i] += self.Q.outstanding(slice(a, self.Q.n))
                self.shared["queue_length"][self.i] = self.Q.n

    def cut_at(self, t: float) -> float | None:
        """An arrival at ``t``: a closed-form decode stretch stops at the first iteration
        boundary at or after ``t`` (and the policy decides there); returns the new end time
        (the caller schedules it) or None when the run's end does not move."""
        if self.kind != _RUN_DECODE:
            return None
        self.more = False
        k = int(np.searchsorted(self.ends, t, side="left")) + 1
        if k >= self.ends.shape[0]:
            return None
        self.ends = self.ends[:k]
        self.t_end = float(self.ends[-1])
        self.token += 1
        return self.t_end

    # ------------------------------------------------------------------ bookkeeping
    def _code(self, reason: str) -> int:
        return self.reasons.setdefault(reason, len(self.reasons))

    def _reject_new(self, idx: np.ndarray, reason: str, now: float) -> None:
        if idx.shape[0]:
            self.T.status[idx] = REJECTED
            self.T.reject_code[idx] = self._code(reason)
            self.T.finish[idx] = now

    def _remove(self, gone: np.ndarray, *, ordered: bool = False) -> None:
        """Drop the slots ``gone`` (finished or rejected; ``ordered``: ascending) and free
        their KV."""
        Q = self.Q
        gpu, host, out = Q.remove(gone, self.track, ordered=ordered)
        self.gpu_used -= gpu
        self.host_used -= host
        if self.track:
            self.shared["outstanding"][self.i] -= out
            self.shared["queue_length"][self.i] = Q.n
            self.shared["kv_used"][self.i] = self.gpu_used

    def _fail(self, message: str) -> ValueError:
        return ValueError(f"Policy {self.policy_name!r} on instance {self.i}: {message}")

    # ------------------------------------------------------------------ decisions
    def view(self, now: float) -> QueueView:
        """The read-only :class:`QueueView` of the active requests at ``now``. Its columns share
        the queue's storage (:meth:`QueueColumns.snapshot`); :meth:`decide` detaches the queue
        from whatever the policy kept of them, so a view never changes."""
        Q, spec = self.Q, self.spec
        (rid, arrival, target, pred, prefilled, generated, kv, loc, running, priority, attained,
         last_run, est) = Q.snapshot()
        return QueueView(
            now_s=now,
            request_id=rid,
            arrival_s=arrival,
            input_tokens=target,
            output_tokens_pred=pred,
            prefilled_tokens=prefilled,
            generated_tokens=generated,
            kv_tokens=kv,
            kv_location=loc,
            running=running,
            priority=priority,
            attained_s=attained,
            last_run_s=last_run,
            est_prefill_s=est,
            kv_capacity_tokens=self.cap,
            kv_free_tokens=self.cap - self.gpu_used,
            max_batch_size=spec.max_batch_size,
            max_batch_tokens=spec.max_batch_tokens,
            chunk_tokens=spec.chunk_tokens,
            block_tokens=spec.block_tokens,
            host_kv_free_tokens=self.host_cap - self.host_used,
            host_kv_capacity_tokens=self.host_cap,
            iteration=self.iterations,
            previous_decision_iteration=self.prev_decision_iter,
        )

    def decide(self, now: float) -> float | None:
        """Ask the policy, apply its decision and start a run; returns the time of this
        instance's next event (run end or wake-up) or None when it idles until an arrival."""
        self.kind = _RUN_NONE
        self.decide_at = math.inf
        Q = self.Q
        n = Q.n
        if n == 0:
            return None
        d = self.policy(self.view(now), **self.params)
        if Q.escaped():  # the policy kept (or returned) part of the view: keep it unchanged
            Q.detach()
        self.prev_decision_iter = self.iterations
        if not isinstance(d, BatchDecision):
            raise self._fail(f"must return a BatchDecision. Got {type(d).__name__}.")
        self.decisions += 1
        self.wake = bool(d.wake_on_arrival)
        self.hold = bool(d.hold_batch)
        self.hold_room = int(d.hold_room_tokens)
        self.hold_released = 0
        self.hold_free = int(d.hold_free_tokens)
        if self.hold_room < 0 or self.hold_free < 0:
            raise self._fail(
                f"hold_room_tokens and hold_free_tokens must be >= 0. Got {self.hold_room} and "
                f"{self.hold_free}."
            )
        if self.hold_room > 0:
            release = self._column(d.hold_release_tokens, n, "hold_release_tokens", np.int64)
            if not store_release(Q.I, release):
                raise self._fail(f"hold_release_tokens must be >= 0. Got {release.tolist()[:10]}.")
        self.arrived = False
        Q.running[:n] = False
        self.batch = _EMPTY
        if d.priority is not None:
            Q.priority[:n] = self._column(d.priority, n, "priority", np.int64)
        if d.attained_s is not None:
            Q.attained[:n] = self._column(d.attained_s, n, "attained_s", np.float64)
        run = d.run
        has_moves = bool(
            d.swap_out.shape[0] or d.recompute.shape[0] or d.swap_in.shape[0] or d.reject.shape[0]
        )
        self._check_positions(d, n, has_moves)
        move_s = self._apply_moves(d, now) if has_moves else 0.0
        if d.reject.shape[0]:
            # removing slots renumbers the others: map the run onto the new slots
            keep = np.ones(n, dtype=bool)
            keep[d.reject] = False
            new_slot = np.cumsum(keep) - 1
            run = new_slot[run]
            self._reject_slots(d, now)
        reconsider = float(d.reconsider_at_s)
        if run.shape[0] == 0:
            self._count_idle(now, progressed=d.reject.shape[0] > 0)
            if move_s > 0:
                self.kind, self.t0, self.t_end = _RUN_MOVES, now, now + move_s
                return self.t_end
            if Q.n == 0 or math.isinf(reconsider):
                return None
            self.decide_at = max(reconsider, now)
            return self.decide_at
        self.idle_decisions = 0
        if self.host_used:
            host = run[Q.loc[run] == KV_HOST]
            if host.shape[0]:
                tok = int(np.add.reduce(Q.kv[host]))
                move_s += float(self.cost.swap_time_s(tok))
                self.gpu_used += tok
                self.host_used -= tok
                Q.loc[host] = KV_GPU
        return self._start(now, d, run, move_s, reconsider)

    def _check_positions(self, d: BatchDecision, n: int, has_moves: bool) -> None:
        names = ("run", "swap_out", "recompute", "swap_in", "reject")
        parts = (d.run, d.swap_out, d.recompute, d.swap_in, d.reject) if has_moves else (d.run,)
        for name, p in zip(names, parts, strict=False):  # parts: run alone without moves
            if p.ndim != 1:
                raise self._fail(
                    f"BatchDecision.{name} must be 1-D positions. Got shape {p.shape}."
                )
        fault = position_fault(np.concatenate(parts) if has_moves else d.run, n)
        if fault == 1:
            for name, p in zip(names, parts, strict=False):
                bad = p[(p < 0) | (p >= n)]
                if bad.shape[0]:
                    raise self._fail(
                        f"BatchDecision.{name} holds positions outside [0, {n}): "
                        f"{bad.tolist()[:10]}."
                    )
        if fault == 2:
            raise self._fail(
                "a position appears twice among run, swap_out, recompute, swap_in and reject: "
                f"run={d.run.tolist()[:10]}, swap_out={d.swap_out.tolist()[:10]}, "
                f"recompute={d.recompute.tolist()[:10]}, swap_in={d.swap_in.tolist()[:10]}, "
                f"reject={d.reject.tolist()[:10]}."
            )

    def _column(self, values: Any, n: int, name: str, dtype: Any) -> np.ndarray:
        a = np.asarray(values, dtype=dtype)
        if a.shape != (n,):
            raise self._fail(f"BatchDecision.{name} must have shape ({n},). Got {a.shape}.")
        return a

    def _count_idle(self, now: float, *, progressed: bool) -> None:
        self.idle_decisions = 0 if progressed else self.idle_decisions + 1
        if self.idle_decisions > self.max_idle:
            stuck = self.Q.rid[: min(self.Q.n, 10)].tolist()
            raise SimulationStalled(
                f"Instance {self.i} made {self.idle_decisions} decisions in a row without running "
                f"anything at t={now:.6g}s (policy {self.policy_name!r}); stuck requests "
                f"(workload indices, first 10 of {self.Q.n}): {stuck}."
            )

    def _reject_slots(self, d: BatchDecision, now: float) -> None:
        T, Q = self.T, self.Q
        rid = Q.rid[d.reject]
        T.status[rid] = REJECTED
        T.finish[rid] = now
        T.reject_code[rid] = [self._code(str(r)) for r in d.reject_reason]
        self._remove(d.reject)

    def _apply_moves(self, d: BatchDecision, now: float) -> float:
        T, Q, cost = self.T, self.Q, self.cost
        move_s = 0.0
        if d.swap_out.shape[0]:
            pos = d.swap_out
            if (Q.loc[pos] != KV_GPU).any():
                bad = pos[Q.loc[pos] != KV_GPU].tolist()
                raise self._fail(f"swap_out of positions {bad[:10]} whose KV is not on the device.")
            tok = int(Q.kv[pos].sum())
            if self.host_used + tok > self.host_cap:
                raise self._fail(
                    f"swap_out of {tok} KV tokens exceeds host swap space "
                    f"({self.host_cap - self.host_used} tokens free)."
                )
            self.gpu_used -= tok
            self.host_used += tok
            Q.loc[pos] = KV_HOST
            rid = Q.rid[pos]
            T.preemptions[rid] += 1
            T.swaps[rid] += 1
            move_s += float(cost.swap_time_s(tok))
        if d.recompute.shape[0]:
            pos = d.recompute
            if (Q.loc[pos] == KV_NONE).any():
                bad = pos[Q.loc[pos] == KV_NONE].tolist()
                raise self._fail(f"recompute of positions {bad[:10]} that hold no KV.")
            before = Q.outstanding(pos) if self.track else 0.0
            gpu = Q.loc[pos] == KV_GPU
            kv = Q.kv[pos]
            self.gpu_used -= int(kv[gpu].sum())
            self.host_used -= int(kv[~gpu].sum())
            rid = Q.rid[pos]
            gen = Q.generated[pos]
            Q.target[pos] = T.input[rid] + gen
            Q.gen_base[pos] = gen
            Q.prefilled[pos] = 0
            Q.kv[pos] = 0
            Q.loc[pos] = KV_NONE
            T.preemptions[rid] += 1
            if self.track:
                self.shared["outstanding"][self.i] += Q.outstanding(pos) - before
        if d.swap_in.shape[0]:
            pos = d.swap_in
            if (Q.loc[pos] != KV_HOST).any():
                bad = pos[Q.loc[pos] != KV_HOST].tolist()
                raise self._fail(f"swap_in of positions {bad[:10]} whose KV is not on the host.")
            tok = int(Q.kv[pos].sum())
            self.gpu_used += tok
            self.host_used -= tok
            Q.loc[pos] = KV_GPU
            move_s += float(cost.swap_time_s(tok))
        if self.gpu_used > self.cap:
            raise self._fail(
                f"after its KV moves the device holds {self.gpu_used} KV tokens, over the "
                f"capacity of {self.cap}."
            )
        return move_s

    # ------------------------------------------------------------------ runs
    def _start(
        self,
        now: float,
        d: BatchDecision | None,
        run: np.ndarray,
        move_s: float,
        reconsider: float,
        chunks: tuple | None = None,
    ) -> float:
        """Start running ``run`` (checked against the batch size, the token budget and KV);
        ``chunks`` is :func:`~schedlab.sim.kernels.batch_chunks` of ``run`` when the caller
        has it already."""
        Q, spec = self.Q, self.spec
        b = run.shape[0]
        self.reconsider = reconsider
        if b > spec.max_batch_size:
            raise self._fail(f"runs {b} requests, over max_batch_size={spec.max_batch_size}.")
        Q.running[run] = True
        self.batch = run
        if chunks is None:
            chunks = batch_chunks(Q.I, run, spec.chunk_tokens)
        c, pt, pc, tokens, added, dec_kv, fewest_left = chunks
        n_pref = pt.shape[0]
        n_dec = b - n_pref
        if n_pref == 0 and move_s == 0.0:
            if b > spec.max_batch_tokens:
                raise self._fail(f"runs {b} tokens, over max_batch_tokens={spec.max_batch_tokens}.")
            if self.gpu_used + b > self.cap:
                raise self._kv_error(b)
            return self._start_decode(now, b, dec_kv, fewest_left)
        if d is not None and d.prefill_chunk is not None:
            g = Q.I[:, run]
            rem = g[TARGET] - g[PREFILLED]
            is_pref = rem > 0
            c = np.asarray(d.prefill_chunk, dtype=np.int64)
            if c.shape != (b,):
                raise self._fail(f"prefill_chunk must have shape ({b},). Got {c.shape}.")
            c = np.where(is_pref, c, 0)
            limit = np.minimum(rem, spec.chunk_tokens) if spec.chunk_tokens else rem
            bad = is_pref & ((c < 1) | (c > limit) | ((spec.chunk_tokens == 0) & (c != rem)))
            if bad.any():
                raise self._fail(
                    f"prefill_chunk {c[bad].tolist()[:5]} outside [1, remaining prompt "
                    f"{limit[bad].tolist()[:5]}] (whole prompts when chunk_tokens=0)."
                )
            tokens = int(np.add.reduce(c)) + n_dec
            added = tokens + int(np.count_nonzero(is_pref & (c == rem)))
            pt = c[is_pref]
        if tokens > spec.max_batch_tokens:
            raise self._fail(
                f"runs {tokens} tokens, over max_batch_tokens={spec.max_batch_tokens}."
            )
        if self.gpu_used + added > self.cap:
            raise self._kv_error(added)
        dur = self._iter_time(pt, pc, n_dec, dec_kv)
        self.kind, self.chunks, self.t0 = _RUN_ITER, c, now
        if spec.overlap_swap:  # swap traffic on its own stream, alongside the compute
            self.t_end = now + max(float(dur), move_s)
        else:
            self.t_end = now + float(dur) + move_s
        return self.t_end

    def _kv_error(self, added: int) -> ValueError:
        return self._fail(
            f"the batch adds {added} KV tokens to the {self.gpu_used} held, over the device KV "
            f"capacity of {self.cap} tokens (preempt by swap_out or recompute, or run fewer)."
        )

    def _start_decode(self, now: float, b: int, kv: int, fewest_left: int) -> float:
        """Start a decode-only stretch of the ``b`` slots of :attr:`batch` (holding ``kv``
        tokens; the one closest to completion has ``fewest_left`` output tokens to go)."""
        k = min(fewest_left, (self.cap - self.gpu_used) // b)
        self.dec_left = 1 if not self.closed_form else k
        self.horizon = _HORIZON
        return self._plan_decode(now, kv)

    def _plan_decode(self, now: float, ctx: int) -> float:
        """Cost the next ``min(steps allowed, horizon)`` decode steps of the batch in closed
        form. A stretch longer than the horizon continues without a decision (see
        :meth:`advance`); the horizon grows 4x each time, so a stretch of N steps costs
        O(log N) calls, and a stretch cut short by an arrival costs few step times."""
        b = self.batch.shape[0]
        m = min(self.dec_left, self.horizon)
        if self._dec_fast is not None:
            steps = _STEPS_F[:m] if m <= _STEPS_F.shape[0] else np.arange(1.0, m + 1.0)
            ends = self._dec_fast(b, ctx, steps) + now
        else:
            steps = _STEPS[:m] if m <= _STEPS.shape[0] else np.arange(1, m + 1, dtype=np.int64)
            ends = np.asarray(self.cost.decode_steps_time_s(b, ctx, steps), dtype=np.float64) + now
        self.more = m < self.dec_left
        self.dec_kv = ctx + m * b  # the batch's KV after the m steps (where a longer one goes on)
        if self.reconsider < ends[-1] and m > 1:
            ends = ends[: int(np.searchsorted(ends, self.reconsider, side="left")) + 1]
            self.more = False
        self.kind, self.ends, self.t0 = _RUN_DECODE, ends, now
        self.t_end = float(ends[-1])
        return self.t_end

    def advance(self, now: float) -> float | None:
        """End the run at ``now``: apply it, then continue an unchanged decode stretch past its
        costing horizon, or ask the policy. Returns the time of the next event, as
        :meth:`decide`."""
        kind = self.kind
        more = kind == _RUN_DECODE and self.more
        self.completed = False
        self.finish(now)
        if more:
            self.horizon *= 4
            return self._plan_decode(now, self.dec_kv)
        b = self.batch.shape[0]
        if (
            self.hold
            and b
            and kind != _RUN_MOVES
            and now < self.reconsider
            and not (self.wake and self.arrived)
            and not (
                self.completed
                and self.Q.n > b
                and self.hold_released >= self.hold_room
                and self.cap - self.gpu_used >= self.hold_free
            )
        ):
            nxt = self._repeat(now)
            if nxt is not None:
                return nxt
        return self.decide(now)

    def _repeat(self, now: float) -> float | None:
        """Run the held batch again (``BatchDecision.hold_batch``) with default prefill chunks;
        None (the policy decides) when its next step would not fit the token budget or KV."""
        Q, spec, run = self.Q, self.spec, self.batch
        n_pref, kv, fewest_left = batch_decode_stats(Q.I, run)
        if not n_pref:  # decode only: straight to the closed-form stretch
            b = run.shape[0]
            if b > spec.max_batch_tokens or self.gpu_used + b > self.cap:
                return None
            return self._start_decode(now, b, kv, fewest_left)
        chunks = batch_chunks(Q.I, run, spec.chunk_tokens)
        tokens, grow = chunks[3], chunks[4]
        if tokens > spec.max_batch_tokens or self.gpu_used + grow > self.cap:
            return None
        self.kind = _RUN_NONE
        return self._start(now, None, run, 0.0, self.reconsider, chunks)

    def finish(self, now: float) -> None:
        """Apply the effects of the run ending at ``now``."""
        kind = self.kind
        if kind == _RUN_ITER:
            self._finish_iteration(now)
        elif kind == _RUN_DECODE:
            self._finish_decode(now)
        self.busy_s += now - self.t0
        if self.track:
            self.shared["kv_used"][self.i] = self.gpu_used

    def _finish_iteration(self, now: float) -> None:
        Q, pos, c = self.Q, self.batch, self.chunks
        self.iterations += 1
        emits, done, added, retired, n_done = finish_iteration(
            Q.I, Q.F, Q.loc, Q.rid, self.T.first_token, pos, c, self.t0, now, self.track
        )
        self.gpu_used += added
        if self.track:
            self.shared["outstanding"][self.i] -= retired
        if self.log is not None:
            self.log.add(self.i, np.array([self.t0]), np.array([now]), Q.rid[pos], c, emits)
        if n_done:
            self._complete(pos, done, n_done, now)

    def _finish_decode(self, now: float) -> None:
        Q, pos = self.Q, self.batch
        k = self.ends.shape[0]
        self.iterations += k
        self.dec_left -= k
        done, retired, n_done = finish_decode(Q.I, Q.F, pos, k, self.t0, now, self.track)
        self.gpu_used += k * pos.shape[0]
        if self.track:
            self.shared["outstanding"][self.i] -= retired
        if self.log is not None:
            starts = np.concatenate(([self.t0], self.ends[:-1]))
            b = pos.shape[0]
            self.log.add(
                self.i, starts, self.ends.copy(), Q.rid[pos], np.zeros(b, np.int64),
                np.ones(b, bool),
            )
        if n_done:
            self._complete(pos, done, n_done, now)

    def _complete(self, pos: np.ndarray, done: np.ndarray, n_done: int, now: float) -> None:
        """Complete the slots ``pos[done]`` (``n_done >= 1`` of them) of the batch that ran."""
        T = self.T
        fin, keep, released = split_completed(
            self.Q.I, pos, done, n_done, self.Q.rid, T.status, T.finish, now, COMPLETED
        )
        self.hold_released += released
        # the stretch does not continue (a completion ends it)
        self.more = False
        self.completed = True
        self._remove(fin, ordered=True)
        # a held batch goes on without the finished (slots renumbered past the removed)
        self.batch = keep if self.hold and keep.shape[0] else _EMPTY
