"""Deciding an instance's next step: ask the policy, or re-form the batch from the plan it keeps.

At a decision point (an arrival that may matter, a completion, the end of an iteration that
prefilled or moved KV, a KV limit, a timer), a :class:`Decider` either

- *asks the policy* with a read-only :class:`~schedlab.contract.QueueView` of the queue (its
  columns share the queue's storage; if the policy keeps any part of it, the queue moves to fresh
  storage, so a kept view never changes), checks the answer with the contract's own
  :func:`~schedlab.contract.validate_plan` / :func:`~schedlab.contract.validate_decision`, and,
  for a :class:`~schedlab.contract.Plan`, forms the batch with the compiled
  :func:`~schedlab.sim.forming.form`; or
- *re-forms the batch from a static plan it keeps* (``Plan.static``), without asking: the plan's
  order follows its requests as they leave (:func:`~schedlab.sim.forming.remap_order`), and
  newcomers rank behind it: the decider appends them itself when the plan's per-request rules
  are the same for everyone (``Plan.covers_newcomers``). It asks again when the plan's timer
  comes, after a step that moved KV or rejected a request, and, for a plan that does not cover
  newcomers, when the batch could reach requests that arrived after it (the walk reached the
  end of the planned order with room to spare). Because the engine formed the batch, it knows
  why the prefix stopped: an arrival behind a prefix that stopped early cannot change the step,
  so it does not interrupt the run.

``check_static=True`` asks the policy at every decision point even while a plan is kept, and
raises when its answer forms a different step: the claim checked on a whole run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.contract import (
    BatchDecision,
    InvalidDecision,
    Plan,
    QueueView,
    form_batch,
    validate_decision,
    validate_plan,
)
from schedlab.contract.accounting import infeasible
from schedlab.sim.forming import FOOT_NONE, FOOT_PREDICTED, FOOT_ROW, form, remap_order, unpack
from schedlab.sim.instance import InstanceRuntime, Step
from schedlab.sim.state import DEFERRED, EVICTABLE

__all__ = ["Decider"]

_EMPTY = np.zeros(0, dtype=np.int64)


class _Kept:
    """A plan the decider forms batches from: its order (slots) and scalar rules (its
    per-request fields are in the queue's rows ``FOOT`` and ``FLAGS``)."""

    __slots__ = ("alone", "covers", "flags", "foot", "order", "prefetch", "reserve", "swap",
                 "timer", "watermark")

    def __init__(self, plan: Plan, order: np.ndarray) -> None:
        self.order = order
        self.reserve = plan.reserve_tokens
        self.watermark = plan.watermark_tokens
        self.prefetch = plan.prefetch
        self.swap = plan.preempt == "swap"
        self.alone = plan.prefills_alone
        foot = plan.footprint_tokens
        self.foot = FOOT_NONE if foot is None else FOOT_PREDICTED if isinstance(foot, str) else (
            FOOT_ROW)
        self.timer = plan.reconsider_at_s
        self.covers = plan.covers_newcomers
        self.flags = EVICTABLE if plan.evictable is True else 0  # a newcomer's, when covered


class Decider:
    """Decides the steps of one instance (see the module docstring); :attr:`calls` counts the
    policy calls."""

    def __init__(
        self,
        rt: InstanceRuntime,
        policy: Callable[..., Any],
        name: str,
        params: dict[str, Any],
        *,
        check_static: bool = False,
    ) -> None:
        self.rt = rt
        self.policy = policy
        self.name = name
        self.params = params
        self.check_static = check_static
        self.calls = 0
        self.prev_call_iteration = -1
        spec = rt.spec
        self.limits = (spec.max_batch_size, spec.max_batch_tokens, spec.chunk_tokens)
        self.kept: _Kept | None = None
        self.unplanned = 0  # requests that arrived after the kept plan (the last slots)
        self.open_end = True  # the last batch took its whole order with room to spare

    def _fail(self, message: str) -> ValueError:
        return ValueError(f"Policy {self.name!r} on instance {self.rt.i}: {message}")

    # ------------------------------------------------------------------ arrivals
    def arrived(self, m: int) -> None:
        """``m`` requests joined the queue (behind every other)."""
        self.unplanned += m

    def arrival_matters(self) -> bool:
        """Whether an arrival may change the step in progress: always, unless a kept plan's
        batch stopped before the end of its order or the batch is full."""
        return self.kept is None or self.open_end

    # ------------------------------------------------------------------ decisions
    def decide(self, now: float) -> float | None:
        """Decide and start the next step; returns the time of the instance's next event or
        None when it idles until an arrival."""
        rt = self.rt
        gone, rt.gone = rt.gone, _EMPTY
        if self.kept is not None and gone.shape[0]:
            self.kept.order = remap_order(self.kept.order, gone)
        rt.decide_at = math.inf
        if rt.Q.n == 0:
            return None
        step = self._from_kept(now) if self.kept is not None else None
        if step is None:
            step = self._ask(now)
        return rt.execute(step, now)

    def view(self, now: float) -> QueueView:
        """The read-only view of the active requests at ``now`` (sharing the queue's storage)."""
        rt = self.rt
        spec = rt.spec
        (rid, arrival, target, pred, prefilled, generated, kv, loc, running, priority, attained,
         last_run, est) = rt.Q.snapshot()
        return QueueView(
            now_s=now, request_id=rid, arrival_s=arrival, input_tokens=target,
            output_tokens_pred=pred, prefilled_tokens=prefilled, generated_tokens=generated,
            kv_tokens=kv, kv_location=loc, running=running, priority=priority,
            attained_s=attained, last_run_s=last_run, est_prefill_s=est,
            kv_capacity_tokens=rt.cap, kv_free_tokens=rt.cap - rt.gpu_used,
            max_batch_size=spec.max_batch_size, max_batch_tokens=spec.max_batch_tokens,
            chunk_tokens=spec.chunk_tokens, block_tokens=spec.block_tokens,
            host_kv_free_tokens=rt.host_cap - rt.host_used, host_kv_capacity_tokens=rt.host_cap,
            iteration=rt.iterations, previous_decision_iteration=self.prev_call_iteration,
        )

    def _call(self, now: float) -> tuple[Plan | BatchDecision, QueueView]:
        """Ask the policy; returns its checked answer and the view it was given."""
        view = self.view(now)
        answer = self.policy(view, **self.params)
        if not isinstance(answer, (Plan, BatchDecision)):
            raise self._fail(f"must return a Plan or a BatchDecision. Got {type(answer).__name__}.")
        try:
            if isinstance(answer, Plan):
                validate_plan(view, answer)
            else:
                validate_decision(view, answer)
        except InvalidDecision as exc:
            raise self._fail(str(exc)) from None
        return answer, view

    def _ask(self, now: float) -> Step:
        rt = self.rt
        Q = rt.Q
        answer, view = self._call(now)
        del view
        if Q.escaped():  # the policy kept (or returned) part of its view: keep it unchanged
            Q.detach()
        self.calls += 1
        self.prev_call_iteration = rt.iterations
        self.kept = None
        if isinstance(answer, BatchDecision):
            self.open_end = True
            d = answer
            return Step(d.run, None if d.prefill_chunk is None else
                        np.asarray(d.prefill_chunk, dtype=np.int64), d.swap_out, d.recompute,
                        d.swap_in, d.reject, d.reject_reason, d.priority, d.attained_s,
                        float(d.reconsider_at_s), d.moves)
        n = Q.n
        flags = Q.flags[:n]
        flags[:] = EVICTABLE * np.asarray(answer.evictable, dtype=np.int64)
        if answer.defer is not None:
            flags |= DEFERRED * np.asarray(answer.defer, dtype=np.int64)
        if isinstance(answer.footprint_tokens, np.ndarray):
            Q.foot[:n] = answer.footprint_tokens
        kept = _Kept(answer, np.ascontiguousarray(answer.order))
        step = self._form(now, kept, answer)
        if answer.static and not step.moves:
            self.kept = kept
            self.unplanned = 0
        return step

    def _from_kept(self, now: float) -> Step | None:
        """The step the kept plan forms, or None when the policy must be asked instead."""
        kept = self.kept
        assert kept is not None
        if now >= kept.timer:
            self.kept = None
            return None
        if self.unplanned and kept.covers:  # newcomers join the back of the order
            Q = self.rt.Q
            kept.order = np.concatenate((kept.order, np.arange(Q.n - self.unplanned, Q.n)))
            Q.flags[Q.n - self.unplanned : Q.n] = kept.flags
            self.unplanned = 0
        elif self.unplanned and self.open_end:  # newcomers could join: they need the policy
            self.kept = None
            return None
        step = self._form(now, kept, None)
        if self.open_end and self.unplanned:
            self.kept = None
            return None
        if step.moves:
            self.kept = None
        if self.check_static:
            self._check_static(now, step)
        return step

    def _form(self, now: float, kept: _Kept, plan: Plan | None) -> Step:
        """Form the batch of ``kept`` (``plan``: the fresh plan it came from, for its state
        columns and quanta)."""
        rt = self.rt
        Q = rt.Q
        max_size, max_tokens, chunk = self.limits
        reached, moves, run, swap_out, recompute, swap_in, reject = unpack(form(
            Q.I, Q.F, Q.loc, Q.running, Q.n, kept.order, rt.cap, rt.cap - rt.gpu_used,
            rt.host_cap - rt.host_used, max_size, max_tokens, chunk, kept.reserve,
            kept.watermark, kept.foot, kept.prefetch, kept.swap, kept.alone,
        ))
        self.open_end = reached and run.shape[0] < max_size
        reasons: tuple[str, ...] = ()
        if reject.shape[0]:
            bad, reasons = infeasible(self.view(now))
            if not np.array_equal(bad, reject):  # the compiled twin must agree with the rule
                raise AssertionError(f"engine rejects {reject.tolist()}, the rule {bad.tolist()}")
        if plan is None:
            return Step(run, None, swap_out, recompute, swap_in, reject, reasons, None, None,
                        kept.timer, moves)
        wake = kept.timer
        if plan.quantum_left_s is not None and run.shape[0]:
            wake = min(wake, now + float(plan.quantum_left_s[run].min()))
            if wake <= now:
                wake = math.nextafter(now, math.inf)
        return Step(run, None, swap_out, recompute, swap_in, reject, reasons, plan.priority,
                    plan.attained_s, wake, moves)

    def _check_static(self, now: float, step: Step) -> None:
        """``check_static``: the policy, asked now, must form the same step as the kept plan."""
        answer, view = self._call(now)
        fresh = form_batch(view, answer) if isinstance(answer, Plan) else answer
        del view, answer
        same = all(
            np.array_equal(getattr(fresh, f), x)
            for f, x in (("run", step.run), ("swap_out", step.swap_out),
                         ("recompute", step.recompute), ("swap_in", step.swap_in),
                         ("reject", step.reject))
        )
        if not same:
            raise self._fail(
                f"its plan claimed static=True, but asked again at t={now:.6g}s it forms "
                f"run={fresh.run.tolist()[:10]} where the kept plan forms "
                f"run={step.run.tolist()[:10]} (swap_out {fresh.swap_out.tolist()[:10]} vs "
                f"{step.swap_out.tolist()[:10]}, recompute {fresh.recompute.tolist()[:10]} vs "
                f"{step.recompute.tolist()[:10]})."
            )
        del fresh
        if self.rt.Q.escaped():  # as after any call: what the policy kept must not change
            self.rt.Q.detach()
