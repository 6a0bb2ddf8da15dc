"""How the engine turns a :class:`~schedlab.contract.answers.Plan` into a batch: the definition,
in numpy. The simulator runs a compiled twin (:mod:`schedlab.sim.forming`, tested equal on
generated views and plans).

:func:`form_batch` (every sum counts the accounting of :mod:`schedlab.contract.accounting`):

1. *Reject* every request that can never fit the instance
   (:func:`~schedlab.contract.accounting.infeasible`); the order keeps the others.
2. *Hold back*: the batch is drawn from the order with some requests moved to its back (held
   back), by the attempts listed below; the first attempt whose steps 3 and 4 form a non-empty
   batch is taken.
3. *Prefix*: walk the order; request ``i`` (0-based) joins while the batch holds fewer than
   ``max_batch_size`` requests (and none held back), the steps so far fit ``max_batch_tokens``,
   and the KV needed so far, ``demand[0..i] + R[i]``, is at most the free KV plus the device KV
   of the victims (the evictable requests) behind ``i``, where ``R[i]`` (not applied to the
   first request) is the attempt's reserve, plus ``watermark_tokens`` when ``i`` holds no KV,
   plus, when the plan has footprints and ``i`` has not started, what requests ``0..i`` still
   need beyond their next step to reach their footprints (``max(footprint, kv + growth) -
   gpu_kv - demand``, at least 0; a ``"predicted"`` footprint is ``input_tokens +
   ceil(output_tokens_pred)``). The first request that does not join ends the batch.
4. *Evict* from the back of the order: victims behind the batch until the free KV covers
   ``demand[batch] + R[last]``. With ``preempt="recompute"`` they lose their KV; with
   ``preempt="swap"`` they are swapped out while the host swap space takes them (from the back)
   and recomputed after that.

The attempts. With ``preempt="recompute"``: (a) the deferred requests (``plan.defer``) held
back, (b) nothing held back; every evictable request is a victim and the reserve is
``reserve_tokens``. With ``preempt="swap"`` (the authors' FastServe engine only swaps; it fails
where the host space runs out):

- (a) the deferred requests held back; the victims are only those the host swap space takes
  (from the back of the order, each while its KV fits what is left of it), and for a request
  that has started the reserve is a target rather than a need: ``demand[0..i] + R[i]`` must fit
  with every evictable request, and less the reserve with the victims (a full host shortens the
  reserve kept, never the running work; a request that has not started needs all of ``R[i]``
  from the victims);
- (b) as (a), with every request that has not started held back too: a new request never
  forces a recomputation;
- (c) as (b) with every evictable request a victim and no reserve: the victims the host cannot
  take are recomputed (nothing that has started could run otherwise);
- (d) and (e): (a) and (c) with nothing held back.

5. *Prefills alone* (``plan.prefills_alone``): when the batch holds a request whose next step
   is a prefill (or a prefill chunk), the batch's decoding requests leave it (they keep their
   KV); evictions and prefetches stay as formed.
6. *Prefetch*: when nothing was evicted, the first ``prefetch`` host-resident requests behind the
   batch (among those not held back) are swapped in, each while ``reserve_tokens`` plus one token
   per batch member stay free after it; one that does not fit is passed over.
7. *Timer*: the decision's ``reconsider_at_s`` is the plan's, or ``now_s`` plus the least
   ``quantum_left_s`` in the batch when that is earlier (the next representable time when that
   is not after ``now_s``).

>>> import numpy as np
>>> from schedlab.contract.answers import Plan
>>> from schedlab.contract.views import QueueView, KV_GPU
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[40, 40, 40], kv_capacity_tokens=100,
...     prefilled_tokens=[0, 0, 40], generated_tokens=[0, 0, 1], kv_tokens=[0, 0, 41],
...     kv_location=[0, 0, KV_GPU])
>>> d = form_batch(v, Plan(order=[0, 1, 2], evictable=True))
>>> d.run.tolist(), d.recompute.tolist()
([0, 1], [2])
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from schedlab.contract.accounting import RequestCosts, infeasible, request_costs, started
from schedlab.contract.answers import BatchDecision, Plan
from schedlab.contract.views import KV_HOST, KV_NONE, QueueView

__all__ = ["Formation", "form_batch", "formation"]


class Formation(NamedTuple):
    """A formed batch with what the engine learns from forming it: ``decision``; ``reached_end``,
    whether the walk took every request it could consider (nothing in the order stopped it:
    a request behind the order could still join); ``runnable``, how many requests of the
    effective order the batch could be drawn from."""

    decision: BatchDecision
    reached_end: bool
    runnable: int


def _per_position(value: bool | np.ndarray | None, n: int) -> np.ndarray:
    if value is None or value is False:
        return np.zeros(n, dtype=bool)
    if value is True:
        return np.ones(n, dtype=bool)
    return np.asarray(value, dtype=bool)


def _attempts(
    view: QueueView, plan: Plan, order: np.ndarray
) -> list[tuple[np.ndarray, bool, int]]:
    """The attempts of steps 2 and 4, as ``(held back, victims host-limited, reserve)`` with
    ``held back`` per position of ``order``; repeats of an earlier attempt are left out."""
    deferred = _per_position(plan.defer, view.n)[order]
    none = np.zeros(order.shape[0], dtype=bool)
    reserve = plan.reserve_tokens
    if plan.preempt != "swap":
        tries = [(deferred, False, reserve), (none, False, reserve)]
    else:
        held = deferred | ~started(view)[order]
        tries = [(deferred, True, reserve), (held, True, reserve), (held, False, 0),
                 (none, True, reserve), (none, False, 0)]
    out: list[tuple[np.ndarray, bool, int]] = []
    for t in tries:
        if not any(np.array_equal(t[0], u[0]) and t[1:] == u[1:] for u in out):
            out.append(t)
    return out


def _reserves(
    view: QueueView, plan: Plan, c: RequestCosts, order: np.ndarray, reserve: int
) -> np.ndarray:
    """``R[i]`` of the module docstring for each position of ``order`` (first one included)."""
    r = np.full(order.shape[0], reserve, dtype=np.int64)
    if plan.watermark_tokens:
        r += np.where(view.kv_location[order] == KV_NONE, plan.watermark_tokens, 0)
    if plan.footprint_tokens is not None:
        given = (view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64)
                 if isinstance(plan.footprint_tokens, str) else plan.footprint_tokens)
        foot = np.maximum(given, view.kv_tokens + c.growth)
        future = np.maximum(foot - c.gpu_kv, c.demand) - c.demand
        r += np.where(started(view)[order], 0, np.cumsum(future[order]))
    return r


def _host_limited(view: QueueView, order: np.ndarray, ev_kv: np.ndarray) -> np.ndarray:
    """``ev_kv`` keeping, from the back of ``order``, only what the host swap space takes."""
    out = np.zeros_like(ev_kv)
    room = view.host_kv_free_tokens
    for p in order[::-1]:
        if ev_kv[p] and ev_kv[p] <= room:
            out[p] = ev_kv[p]
            room -= int(ev_kv[p])
    return out


def _prefix(
    view: QueueView, order: np.ndarray, c: RequestCosts, ev_kv: np.ndarray, all_ev: np.ndarray,
    r: np.ndarray, reserve: int, limit: int,
) -> int:
    """How many requests of ``order`` join the batch (step 3): ``R`` must fit with the victims
    ``ev_kv`` (less the ``reserve`` for a request that has started) and with every evictable
    request ``all_ev``."""
    m = min(limit, order.shape[0])
    if m <= 0:
        return 0
    o = order[:m]
    tokens = np.cumsum(c.step[o])
    dem = np.cumsum(c.demand[o])
    later = np.arange(m) > 0
    need = dem + np.where(later, r[:m], 0)
    hard = need - np.where(later & started(view)[o], reserve, 0)
    free = view.kv_free_tokens
    behind = int(ev_kv[order].sum()) - np.cumsum(ev_kv[o])
    behind_all = int(all_ev[order].sum()) - np.cumsum(all_ev[o])
    ok = ((tokens <= view.max_batch_tokens) & (hard <= free + behind)
          & (need <= free + behind_all))
    return m if ok.all() else int(np.argmin(ok))


def formation(view: QueueView, plan: Plan) -> Formation:
    """:func:`form_batch` with what the engine learns from it (:class:`Formation`).

    >>> from schedlab.contract.answers import Plan
    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[40, 40, 40], kv_capacity_tokens=100)
    >>> f = formation(v, Plan(order=[2, 0, 1]))
    >>> f.decision.run.tolist(), f.reached_end
    ([2, 0], False)
    """
    c = request_costs(view)
    reject, reasons = infeasible(view, c)
    order = plan.order
    if reject.shape[0]:
        order = order[~np.isin(order, reject)]
    all_ev = np.where(_per_position(plan.evictable, view.n), c.gpu_kv, 0)
    k, r, cand, runnable = 0, np.zeros(0, dtype=np.int64), order, order.shape[0]
    for held, limited, reserve in _attempts(view, plan, order):
        cand = np.concatenate((order[~held], order[held]))
        runnable = int((~held).sum())
        ev_kv = _host_limited(view, cand, all_ev) if limited else all_ev
        r = _reserves(view, plan, c, cand, reserve)
        k = _prefix(view, cand, c, ev_kv, all_ev, r, reserve,
                    min(view.max_batch_size, runnable))
        if k:
            break
    order = cand
    reached_end = k == runnable
    batch = order[:k]
    dem = int(c.demand[batch].sum())
    free = view.kv_free_tokens
    evict = np.zeros(0, dtype=np.int64)
    if k and k < order.shape[0] and dem + r[k - 1] > free:
        behind = order[k:][::-1]
        behind = behind[ev_kv[behind] > 0]
        got = np.cumsum(ev_kv[behind])
        evict = behind[: int(np.searchsorted(got, dem + r[k - 1] - free)) + 1]
        free += int(ev_kv[evict].sum())
    swap_out, recompute = evict[:0], evict
    if plan.preempt == "swap":
        fits = np.cumsum(view.kv_tokens[evict]) <= view.host_kv_free_tokens
        swap_out, recompute = evict[fits], evict[~fits]
    if plan.prefills_alone:
        prefilling = ~view.prefill_done[batch]
        if prefilling.any():
            batch = batch[prefilling]
    swap_in = evict[:0]
    if plan.prefetch and not evict.shape[0]:
        room = free - dem - k - plan.reserve_tokens
        taken = []
        host = order[k:runnable][view.kv_location[order[k:runnable]] == KV_HOST]
        for p in host[: plan.prefetch]:
            if view.kv_tokens[p] <= room:
                taken.append(p)
                room -= int(view.kv_tokens[p])
        swap_in = np.array(taken, dtype=np.int64)
    wake = plan.reconsider_at_s
    if plan.quantum_left_s is not None and k:
        wake = min(wake, view.now_s + float(plan.quantum_left_s[batch].min()))
        if wake <= view.now_s:
            wake = math.nextafter(view.now_s, math.inf)
    decision = BatchDecision(
        run=batch, swap_out=swap_out, recompute=recompute, swap_in=swap_in, reject=reject,
        reject_reason=reasons, priority=plan.priority, attained_s=plan.attained_s,
        reconsider_at_s=wake,
    )
    return Formation(decision=decision, reached_end=bool(reached_end), runnable=runnable)


def form_batch(view: QueueView, plan: Plan) -> BatchDecision:
    """The :class:`~schedlab.contract.answers.BatchDecision` the engine carries out for ``plan``
    on ``view`` (the rule of the module docstring).

    >>> from schedlab.contract.answers import Plan
    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30, 30],
    ...     kv_capacity_tokens=100)
    >>> form_batch(v, Plan(order=[2, 0, 1], watermark_tokens=20)).run.tolist()
    [2, 0]
    """
    return formation(view, plan).decision
