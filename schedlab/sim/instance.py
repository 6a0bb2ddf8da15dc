"""One serving instance in the simulator: it runs what was decided.

An :class:`InstanceRuntime` holds the instance's queue (:class:`~schedlab.sim.state.QueueColumns`)
and KV counters, and carries out a :class:`Step` (decided by :mod:`schedlab.sim.deciding`):
rejections, KV moves, then a *run*:

- one iteration (any batch with a prefill chunk or KV moves), or
- a stretch of decode-only iterations of an unchanged batch, costed in closed form with the cost
  model's ``fast_decode_steps_time_s`` and ended at the earliest of: the first completion in the
  batch, the moment the KV cache would overflow, the first iteration boundary at or after the
  step's timer, and (cut short by :meth:`InstanceRuntime.cut_at`) the first boundary at or after
  an arrival that may change the decision. No Python loop per decode step.

When a run ends (:meth:`InstanceRuntime.end_run`) its effects are applied by one compiled kernel
(:mod:`schedlab.sim.kernels`); completed requests leave the queue. Nothing here chooses what runs
or checks a policy's answer: the decider does both before a step reaches the runtime.

Extension points: a prefill-only or decode-only role (Mooncake disaggregation) changes which
requests :meth:`InstanceRuntime.admit` accepts and adds a hand-off when a prefill completes;
speculative decoding in a divided rollout (:mod:`schedlab.sim.speculation`) prices decode
stretches through :attr:`InstanceRuntime.decode_time` and counts a chunk's budget in verify steps;
each is a change at one seam, not a new engine.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from schedlab.contract import KV_GPU, KV_HOST, KV_NONE
from schedlab.contract.placement import cached_prefix_tokens
from schedlab.errors import SimulationStalled
from schedlab.sim.cluster import InstanceSpec
from schedlab.sim.gaps import GapLog
from schedlab.sim.kernels import (
    batch_chunks,
    count_unservable,
    finish_decode,
    finish_iteration,
    start_batch,
)
from schedlab.sim.log import IterationLog
from schedlab.sim.prefix_cache import PrefixCache
from schedlab.sim.state import (
    CACHED,
    GEN_BASE,
    GENERATED,
    KV,
    LEFT,
    PREFILLED,
    REJECTED,
    TARGET,
    QueueColumns,
    RequestTable,
)

__all__ = ["InstanceRuntime", "Step"]

_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False
_RUN_NONE, _RUN_ITER, _RUN_DECODE, _RUN_MOVES = 0, 1, 2, 3
_STEPS_F = np.arange(1.0, 4097.0)  # step counts 1..4096 (sliced, never written)
_STEPS_F.flags.writeable = False
#: Decode steps costed at first for a stretch (most stretches end early, at an arrival).
_HORIZON = 48


class Step(NamedTuple):
    """A decided step, in slots of the instance's queue: the batch (``chunks``: prompt tokens
    per batch member, or None for the default chunks), the KV moves, the rejections with their
    reasons, new values of the policy-owned columns (or None), the time to decide again, and
    whether it moves or rejects anything."""

    run: np.ndarray
    chunks: np.ndarray | None
    swap_out: np.ndarray
    recompute: np.ndarray
    swap_in: np.ndarray
    reject: np.ndarray
    reasons: tuple[str, ...]
    priority: np.ndarray | None
    attained: np.ndarray | None
    wake: float
    moves: bool  # whether the step moves KV or rejects anything


class InstanceRuntime:
    """Mutable state of one instance during one :func:`~schedlab.sim.simulate` run, and the
    execution of the steps decided for it.

    Positions in a step are slots of :attr:`Q` (the instance's queue columns); ``Q.rid`` maps them
    to workload indices, under which outcomes go to the global :class:`RequestTable`.
    :attr:`gone` holds the slots removed by the last completion (sorted), for the decider.
    """

    def __init__(
        self,
        *,
        index: int,
        spec: InstanceSpec,
        cost: Any,
        table: RequestTable,
        est_prefill: np.ndarray,
        shared: dict[str, np.ndarray],
        reasons: dict[str, int],
        log: IterationLog | None,
        closed_form: bool,
        gaps: GapLog | None = None,
        max_idle_steps: int,
        track_load: bool,
        describe: str,
    ) -> None:
        self.i = index
        self.spec = spec
        self.cost = cost
        self.T = table
        self.Q = QueueColumns()
        self.est_all = est_prefill
        self.outstanding_load = shared["outstanding"]  # the router's per-instance load columns
        self.kv_load = shared["kv_used"]
        self.queue_load = shared["queue_length"]
        self.reasons = reasons
        self.log = log
        self.gaps = gaps  # token gaps, for Mooncake's TBT (None: not recorded)
        # a prefill-pool instance hands its requests to decoding when their prefill completes:
        # handoff(workload indices, now) (None: requests complete here)
        self.handoff: Any = None
        # prices a decode stretch instead of the cost model (speculative decoding in a divided
        # rollout): (request ids, decode steps each ran since it joined, KV tokens, steps) -> the
        # steps' end offsets in seconds
        self.decode_time: Any = None
        # the instance's own prefix cache (InstanceSpec.prefix_cache_tokens) and the workload's
        # prefix blocks it is keyed by (None: no cache)
        self.prefix_cache: PrefixCache | None = None
        self.blocks: Any = None
        self.cached_out: np.ndarray | None = None  # each request's cached prefix, for the result
        self.closed_form = closed_form
        self.max_idle = max_idle_steps
        self.track = track_load  # keep the router's per-instance load columns up to date
        self.describe = describe  # names the policy in errors
        self.cap = spec.kv_capacity(cost)
        self.host_cap = spec.host_kv_capacity(cost)
        context = spec.context_limit()  # requests longer than the model's window, once
        self.too_long = (None if context is None
                         else table.input + table.output > context)
        self.gpu_used = 0
        self.host_used = 0
        self.token = 0  # bumped when the instance's next event changes (stale events are dropped)
        self.kind = _RUN_NONE
        self.batch = _EMPTY  # slots of the current run
        self.chunks = _EMPTY
        self.t0 = 0.0
        self.t_end = math.inf
        self.ends = np.zeros(0)
        self.more = False  # the decode stretch goes on past its costing horizon
        self.dec_left = 0
        self.dec_kv = 0
        self.horizon = _HORIZON
        self.wake = math.inf  # the current step's timer
        self.decide_at = math.inf  # an idle instance's pending decision time
        self.gone = _EMPTY
        self.busy_s = 0.0
        self.iterations = 0
        self.idle_steps = 0

    @property
    def busy(self) -> bool:
        """Whether a run is in progress."""
        return self.kind != _RUN_NONE

    # ------------------------------------------------------------------ arrivals
    def admit(self, idx: np.ndarray, now: float) -> int:
        """Accept newly routed requests, rejecting at once those that can never be served;
        returns how many joined the queue."""
        T, spec = self.T, self.spec
        T.instance[idx] = self.i
        if self.too_long is not None:
            too_long = self.too_long[idx]
            if too_long.any():
                self._reject_new(idx[too_long], "exceeds_model_context", now)
                idx = idx[~too_long]
        max_prompt = spec.max_batch_tokens if spec.chunk_tokens == 0 else -1
        if count_unservable(idx, T.input, T.output, self.cap, max_prompt):
            inp = T.input[idx]
            too_big = inp + T.output[idx] > self.cap
            over_budget = inp > max_prompt if max_prompt >= 0 else np.zeros(idx.shape[0], bool)
            self._reject_new(idx[too_big], "prompt_exceeds_kv_capacity", now)
            self._reject_new(idx[over_budget & ~too_big], "prompt_exceeds_batch_token_budget", now)
            idx = idx[~(too_big | over_budget)]
        if idx.shape[0]:
            added = self.Q.append(idx, T, self.est_all)
            if self.track:
                self.outstanding_load[self.i] += added
                self.queue_load[self.i] = self.Q.n
        return int(idx.shape[0])

    def admit_cached(self, idx: np.ndarray, now: float, cached: np.ndarray, *,
                     on_device: bool = False) -> int:
        """:meth:`admit` requests whose first ``cached`` prompt tokens (one count per request) are
        in a prefix cache: their KV is shown host-resident until they first run. From a cache in
        host memory (Mooncake's DRAM) it then moves to the device (a swap-in, overlapped with
        the compute when the spec says ``overlap_swap``: Mooncake's layer-wise prefill takes
        max(load, compute)); from a cache on the device (``on_device``, vLLM's automatic prefix
        caching) it takes no host space and moves for free (``CACHED``)."""
        Q = self.Q
        n0 = Q.n
        m = self.admit(idx, now)
        if m and cached.any():
            c = cached if m == idx.shape[0] else cached[np.isin(idx, Q.rid[n0 : Q.n])]
            s = slice(n0, Q.n)
            Q.I[PREFILLED, s] = c
            Q.I[KV, s] = c
            Q.loc[s] = np.where(c > 0, KV_HOST, KV_NONE)
            if on_device:
                Q.I[CACHED, s] = c
            else:
                self.host_used += int(c.sum())
        return m

    def admit_with_prefix_cache(self, idx: np.ndarray, now: float) -> int:
        """:meth:`admit` with this instance's own prefix cache (``InstanceSpec.
        prefix_cache_tokens``): each request's longest cached prefix of whole blocks (never its
        last prompt token) is found on the device and counts as prefilled."""
        cache, blocks = self.prefix_cache, self.blocks
        assert cache is not None and blocks is not None
        inp = self.T.input
        B = cache.block_tokens
        cached = np.zeros(idx.shape[0], dtype=np.int64)
        for j, r in enumerate(idx.tolist()):
            chain = blocks[r]
            if chain.shape[0]:
                k = int(cache.match_blocks(chain, trusted=True)[0])
                cached[j] = cached_prefix_tokens(k, int(inp[r]), B)
                cache.touch(0, chain[:k], trusted=True)
        if self.cached_out is not None:
            self.cached_out[idx] = cached
        return self.admit_cached(idx, now, cached, on_device=True)

    def admit_resumed(self, idx: np.ndarray, now: float, generated: np.ndarray,
                      cached: np.ndarray, budget: np.ndarray) -> int:
        """:meth:`admit` requests resuming a divided rollout (Seer): ``generated`` output tokens
        are behind each (its context is the prompt plus them, as after a recomputation), the
        first ``cached`` tokens of that context come from a KV pool in host memory (moved to the
        device when the request first runs; all of it: the request decodes at once), and it
        stops after ``budget`` more tokens (its chunk, never past its true end). Returns how
        many joined."""
        Q = self.Q
        n0 = Q.n
        m = self.admit(idx, now)
        if m == 0:
            return 0
        if m < idx.shape[0]:
            keep = np.isin(idx, Q.rid[n0 : Q.n])
            generated, cached, budget = generated[keep], cached[keep], budget[keep]
            idx = idx[keep]
        s = slice(n0, Q.n)
        Q.I[TARGET, s] = self.T.input[idx] + generated
        Q.I[GENERATED, s] = generated
        Q.I[GEN_BASE, s] = generated
        Q.I[LEFT, s] = budget
        Q.I[PREFILLED, s] = cached
        Q.I[KV, s] = cached
        Q.loc[s] = np.where(cached > 0, KV_HOST, KV_NONE)
        self.host_used += int(cached.sum())
        return m

    def admit_prefilled(self, idx: np.ndarray, now: float) -> int:
        """Accept requests whose prefill ran elsewhere (a decode-pool instance): their prompt's
        KV and first output token arrive with them, on the device. Returns how many joined."""
        T, Q = self.T, self.Q
        T.instance[idx] = self.i
        n0 = Q.n
        Q.append(idx, T, self.est_all)
        s = slice(n0, Q.n)
        inp = T.input[idx]
        Q.I[PREFILLED, s] = inp
        Q.I[GENERATED, s] = 1
        Q.I[KV, s] = inp + 1
        Q.I[LEFT, s] = T.output[idx] - 1
        Q.loc[s] = KV_GPU
        self.gpu_used += int(inp.sum()) + idx.shape[0]
        return int(idx.shape[0])

    def kv_growth(self, t: float | None = None) -> int:
        """Device KV tokens the running work adds by its first iteration boundary at or after
        ``t`` (``None``: by the end of the whole run, a decode stretch's steps past its costing
        horizon included): what a request joining now must leave room for."""
        b = self.batch.shape[0]
        if self.kind == _RUN_DECODE:
            n = self.ends.shape[0]
            if t is None:  # the stretch's steps left: dec_left, of which ``ends`` are costed
                return (self.dec_left if self.more else n) * b
            return min(int(np.searchsorted(self.ends, t, side="left")) + 1, n) * b
        if self.kind == _RUN_ITER:
            pos, c = self.batch, self.chunks
            emits = (c == 0) | (c >= self.Q.I[TARGET, pos] - self.Q.I[PREFILLED, pos])
            return int(c.sum()) + int(emits.sum())
        return 0

    def cut_at(self, t: float) -> float | None:
        """An arrival at ``t`` that may change the decision: a closed-form decode stretch stops at
        the first iteration boundary at or after ``t``; returns the new end time (the caller
        schedules it) or None when the run's end does not move."""
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

    def generated_at(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Each queued request's output tokens by ``t`` (its ``GENERATED`` column plus the steps
        of the running decode stretch that ended by ``t``; a running iteration counts nothing
        until it ends): ``(request ids, tokens)``, for a run stopped at ``t`` (Partial
        Rollout)."""
        Q = self.Q
        gen = Q.I[GENERATED, : Q.n].copy()
        if self.kind == _RUN_DECODE and self.batch.shape[0]:
            gen[self.batch] += int(np.searchsorted(self.ends, t, side="right"))
        return Q.rid[: Q.n].copy(), gen

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
            self.outstanding_load[self.i] -= out
            self.queue_load[self.i] = Q.n
            self.kv_load[self.i] = self.gpu_used

    # ------------------------------------------------------------------ steps
    def execute(self, step: Step, now: float) -> float | None:
        """Carry out ``step`` (already checked): returns the time of this instance's next event
        (run end or wake-up) or None when it idles until an arrival."""
        Q = self.Q
        n = Q.n
        self.batch = _EMPTY
        if step.priority is not None:
            Q.priority[:n] = step.priority
        if step.attained is not None:
            Q.attained[:n] = step.attained
        run = step.run
        out_s, in_s = self._apply_moves(step) if step.moves else (0.0, 0.0)
        if step.reject.shape[0]:
            keep = np.ones(n, dtype=bool)
            keep[step.reject] = False
            run = (np.cumsum(keep) - 1)[run]  # removing slots renumbers the others
            self._reject_slots(step, now)
        if run.shape[0] == 0:
            Q.running[: Q.n] = False
            self._count_idle(now, progressed=step.reject.shape[0] > 0)
            if out_s > 0 or in_s > 0:
                move_s = max(out_s, in_s) if self.spec.overlap_swap else out_s + in_s
                self.kind, self.t0, self.t_end = _RUN_MOVES, now, now + move_s
                return self.t_end
            if Q.n == 0 or math.isinf(step.wake):
                return None
            self.decide_at = max(step.wake, now)
            return self.decide_at
        self.idle_steps = 0
        if self.host_used or self.prefix_cache is not None:
            host = run[Q.loc[run] == KV_HOST]
            if host.shape[0]:
                in_s += self._to_device(host)
        return self._start(now, run, step.chunks, out_s, in_s, step.wake)

    def _to_device(self, pos: np.ndarray) -> float:
        """Move the host-resident KV of ``pos`` to the device; returns the seconds the transfer
        takes (a prefix an on-device cache holds, ``CACHED``, moves for free)."""
        Q = self.Q
        tok = int(np.add.reduce(Q.kv[pos]))
        free = int(np.add.reduce(Q.I[CACHED, pos])) if self.prefix_cache is not None else 0
        self.gpu_used += tok
        self.host_used -= tok - free
        Q.loc[pos] = KV_GPU
        if free:
            Q.I[CACHED, pos] = 0
        return float(self.cost.swap_time_s(tok - free)) if tok > free else 0.0

    def _count_idle(self, now: float, *, progressed: bool) -> None:
        self.idle_steps = 0 if progressed else self.idle_steps + 1
        if self.idle_steps > self.max_idle:
            stuck = self.Q.rid[: min(self.Q.n, 10)].tolist()
            raise SimulationStalled(
                f"Instance {self.i} made {self.idle_steps} decisions in a row without running "
                f"anything at t={now:.6g}s ({self.describe}); stuck requests "
                f"(workload indices, first 10 of {self.Q.n}): {stuck}."
            )

    def _reject_slots(self, step: Step, now: float) -> None:
        T, Q = self.T, self.Q
        rid = Q.rid[step.reject]
        T.status[rid] = REJECTED
        T.finish[rid] = now
        T.reject_code[rid] = [self._code(r) for r in step.reasons]
        self._remove(step.reject)

    def _apply_moves(self, step: Step) -> tuple[float, float]:
        """Carry out the step's KV moves; returns the seconds of swap-out and of swap-in
        traffic."""
        T, Q, cost = self.T, self.Q, self.cost
        out_s = in_s = 0.0
        if step.swap_out.shape[0]:
            pos = step.swap_out
            tok = int(Q.kv[pos].sum())
            self.gpu_used -= tok
            self.host_used += tok
            Q.loc[pos] = KV_HOST
            rid = Q.rid[pos]
            T.preemptions[rid] += 1
            T.swaps[rid] += 1
            out_s = float(cost.swap_time_s(tok))
        if step.recompute.shape[0]:
            pos = step.recompute
            before = Q.outstanding(pos) if self.track else 0.0
            gpu = Q.loc[pos] == KV_GPU
            kv = Q.kv[pos]
            self.gpu_used -= int(kv[gpu].sum())
            self.host_used -= int((kv - Q.I[CACHED, pos])[~gpu].sum())
            Q.I[CACHED, pos] = 0
            rid = Q.rid[pos]
            gen = Q.generated[pos]
            Q.target[pos] = T.input[rid] + gen
            Q.gen_base[pos] = gen
            Q.prefilled[pos] = 0
            Q.kv[pos] = 0
            Q.loc[pos] = KV_NONE
            T.preemptions[rid] += 1
            if self.track:
                self.outstanding_load[self.i] += Q.outstanding(pos) - before
        if step.swap_in.shape[0]:
            in_s = self._to_device(step.swap_in)
        return out_s, in_s

    # ------------------------------------------------------------------ runs
    def _start(
        self, now: float, run: np.ndarray, given: np.ndarray | None, out_s: float, in_s: float,
        wake: float,
    ) -> float:
        """Start running the slots ``run`` (``given``: their prompt chunks, or None for the
        defaults) after ``out_s`` and ``in_s`` seconds of swap-out and swap-in traffic."""
        Q, spec = self.Q, self.spec
        self.wake = wake
        self.batch = run
        n_pref, dec_kv, fewest_left = start_batch(Q.I, Q.running, Q.n, run)
        b = run.shape[0]
        if n_pref == 0 and out_s == 0.0 and in_s == 0.0:
            return self._start_decode(now, b, dec_kv, fewest_left)
        c, pt, pc = batch_chunks(Q.I, run, n_pref, spec.chunk_tokens)
        if given is not None:
            g = Q.I[:, run]
            is_pref = g[TARGET] > g[PREFILLED]
            c = np.where(is_pref, given, 0)
            pt = c[is_pref]
        dur = self.cost.fast_iteration_time_s(pt, pc, b - n_pref, dec_kv)
        self.kind, self.chunks, self.t0 = _RUN_ITER, c, now
        if spec.overlap_swap:  # each direction on its own stream, alongside the compute
            self.t_end = now + max(float(dur), out_s, in_s)
        else:
            self.t_end = now + float(dur) + out_s + in_s
        return self.t_end

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
        :meth:`end_run`); the horizon grows 4x each time, so a stretch of N steps costs
        O(log N) calls, and a stretch cut short by an arrival costs few step times."""
        b = self.batch.shape[0]
        m = min(self.dec_left, self.horizon)
        steps = _STEPS_F[:m] if m <= _STEPS_F.shape[0] else np.arange(1.0, m + 1.0)
        if self.decode_time is None:
            ends = self.cost.fast_decode_steps_time_s(b, ctx, steps) + now
        else:
            pos, Q = self.batch, self.Q
            ends = self.decode_time(Q.rid[pos], Q.I[GENERATED, pos] - Q.I[GEN_BASE, pos], ctx,
                                    steps) + now
        self.more = m < self.dec_left
        self.dec_kv = ctx + m * b  # the batch's KV after the m steps (where a longer one goes on)
        if self.wake < ends[-1] and m > 1:
            ends = ends[: int(np.searchsorted(ends, self.wake, side="left")) + 1]
            self.more = False
        self.kind, self.ends, self.t0 = _RUN_DECODE, ends, now
        self.t_end = float(ends[-1])
        return self.t_end

    def end_run(self, now: float) -> float | None:
        """End the run at ``now`` and apply its effects. Returns the end of the next part of an
        unchanged decode stretch that goes on past its costing horizon, or None: a decision is
        due."""
        kind = self.kind
        more = kind == _RUN_DECODE and self.more
        self.gone = _EMPTY
        if kind == _RUN_ITER:
            self._finish_iteration(now)
        elif kind == _RUN_DECODE:
            self._finish_decode(now)
        self.busy_s += now - self.t0
        if self.track:
            self.kv_load[self.i] = self.gpu_used
        self.kind = _RUN_NONE
        if more and self.batch.shape[0]:
            self.horizon *= 4
            return self._plan_decode(now, self.dec_kv)
        return None

    def _finish_iteration(self, now: float) -> None:
        Q, T, pos, c = self.Q, self.T, self.batch, self.chunks
        self.iterations += 1
        fin, added, retired = finish_iteration(
            Q.I, Q.F, Q.loc, Q.rid, T.first_token, T.status, T.finish, pos, c, self.t0, now,
            self.track,
        )
        self.gpu_used += added
        if self.track:
            self.outstanding_load[self.i] -= retired
        if self.prefix_cache is not None:  # a completed prompt's blocks are cached
            done = pos[(c > 0) & (Q.I[PREFILLED, pos] >= Q.I[TARGET, pos])]
            for r in Q.rid[done].tolist():
                chain = self.blocks[r]
                if chain.shape[0]:
                    self.prefix_cache.store(0, chain, trusted=True)
        if self.log is not None or self.gaps is not None:
            # a prefill chunk emits a token when it completes the prompt
            emits = (c == 0) | (Q.I[PREFILLED, pos] >= Q.I[TARGET, pos])
            if self.log is not None:
                self.log.add(self.i, np.array([self.t0]), np.array([now]), Q.rid[pos], c, emits)
            if self.gaps is not None:
                self.gaps.tokens(Q.rid[pos[emits]], now)
        if fin.shape[0]:
            self._complete(fin, now)

    def _finish_decode(self, now: float) -> None:
        Q, T, pos = self.Q, self.T, self.batch
        k = self.ends.shape[0]
        self.iterations += k
        self.dec_left -= k
        fin, retired = finish_decode(Q.I, Q.F, Q.rid, T.status, T.finish, pos, k, self.t0, now,
                                     self.track)
        self.gpu_used += k * pos.shape[0]
        if self.track:
            self.outstanding_load[self.i] -= retired
        if self.gaps is not None:
            self.gaps.stretch(Q.rid[pos], self.ends)
        if self.log is not None:
            starts = np.concatenate(([self.t0], self.ends[:-1]))
            b = pos.shape[0]
            self.log.add(
                self.i, starts, self.ends.copy(), Q.rid[pos], np.zeros(b, np.int64),
                np.ones(b, bool),
            )
        if fin.shape[0]:
            self._complete(fin, now)

    def _complete(self, fin: np.ndarray, now: float) -> None:
        """The completed slots ``fin`` (sorted, marked completed by the kernel) leave the queue;
        a completion ends a decode stretch. On a prefill-pool instance they are handed to
        decoding instead."""
        if self.handoff is not None:
            self.handoff(self.Q.rid[fin], now)
        self.gone = fin
        self.more = False
        self.batch = _EMPTY
        self._remove(fin, ordered=True)
