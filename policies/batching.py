"""Batch formation shared by the policies: the longest feasible prefix of a priority order, the
KV evictions it needs, proactive prefetch, and rejection of requests that can never run.

Everything is vectorised over the view's columns; the policies differ only in the order they
pass and in which requests they allow to be evicted.

>>> import numpy as np
>>> from schedlab.policies.base import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[40, 40, 40], kv_capacity_tokens=100)
>>> r = longest_prefix(v, np.array([2, 0, 1]))
>>> r.batch.tolist(), r.evict.tolist()
([2, 0], [])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.policies.base import KV_HOST, BatchDecision, QueueView
from schedlab.policies.kv import RequestCosts, request_costs

__all__ = [
    "PREEMPT_MODES",
    "PrefixResult",
    "check_preempt",
    "infeasible",
    "longest_prefix",
    "prefetch",
    "split_preemptions",
]

PREEMPT_MODES = ("swap", "recompute")

_EMPTY = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True, slots=True, kw_only=True)
class PrefixResult:
    """``batch``: positions to run (a prefix of the order); ``evict``: device-resident positions
    (outside the batch) whose KV must leave the device; ``free_after``: device KV tokens left free
    once the evictions are done and the batch has grown."""

    batch: np.ndarray
    evict: np.ndarray
    free_after: int


def check_preempt(preempt: str, where: str) -> str:
    """Validate a ``preempt`` parameter (``"swap"`` or ``"recompute"``).

    >>> check_preempt("swap", "vllm")
    'swap'
    """
    if preempt not in PREEMPT_MODES:
        raise ValueError(
            f"The 'preempt' parameter of {where} must be one of {PREEMPT_MODES}. "
            f"Got {preempt!r} instead."
        )
    return preempt


def infeasible(
    view: QueueView, costs: RequestCosts | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Positions that can never run on this instance, with a reason each: the KV a request holds
    plus its next growth (:func:`~schedlab.policies.kv.kv_growth`) exceeds the whole device, or
    (without chunked prefill) its step exceeds the per-iteration token budget. Policies reject
    them so the simulation cannot stall on them. ``costs`` saves recomputing
    :func:`~schedlab.policies.kv.request_costs`.

    >>> from schedlab.policies.base import QueueView
    >>> infeasible(QueueView.from_columns(now_s=0.0, input_tokens=[10, 500],
    ...     kv_capacity_tokens=100))
    (array([1]), ('needs 501 KV tokens, more than the instance capacity of 100',))
    """
    c = request_costs(view) if costs is None else costs
    step = c.step
    total = view.kv_tokens + c.growth
    too_big = total > view.kv_capacity_tokens
    over_budget = step > view.max_batch_tokens
    bad_mask = too_big | over_budget
    if not bad_mask.any():
        return _EMPTY, ()
    bad = np.flatnonzero(bad_mask)
    reasons = tuple(
        f"needs {int(total[i])} KV tokens, more than the instance capacity of "
        f"{view.kv_capacity_tokens}"
        if too_big[i]
        else f"needs {int(step[i])} tokens in one iteration, more than max_batch_tokens="
        f"{view.max_batch_tokens}"
        for i in bad
    )
    return bad, reasons


def longest_prefix(
    view: QueueView,
    order: np.ndarray,
    *,
    costs: RequestCosts | None = None,
    evictable: np.ndarray | None = None,
    reserve_tokens: int | np.ndarray = 0,
) -> PrefixResult:
    """The longest prefix of ``order`` that fits, and the evictions it needs.

    A prefix fits when its size is at most ``max_batch_size``, its tokens (``step``) at most
    ``max_batch_tokens``, and its KV demand (``demand``, see :mod:`schedlab.policies.kv`) plus
    ``reserve_tokens`` at most the free device KV plus the device KV of the *evictable* requests
    after it in the order (``evictable`` is a boolean mask over all positions; default: none).
    ``reserve_tokens`` (a scalar or one value per order position) does not limit the first
    request, so the head of the order runs whenever it fits on its own. Evictions take evictable
    device-resident requests from the *back* of the order until the batch's demand plus the
    reserve is covered (or, when only the head runs, until nothing evictable is left behind it).
    Strict: a request that does not fit ends the batch; nothing behind it is considered.

    >>> import numpy as np
    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[40, 40, 40], kv_capacity_tokens=100,
    ...     prefilled_tokens=[0, 0, 40], generated_tokens=[0, 0, 1], kv_tokens=[0, 0, 41],
    ...     kv_location=[0, 0, KV_GPU])
    >>> r = longest_prefix(v, np.array([0, 1, 2]), evictable=np.ones(3, bool))
    >>> r.batch.tolist(), r.evict.tolist(), r.free_after
    ([0, 1], [2], 18)
    """
    c = request_costs(view) if costs is None else costs
    free = int(view.kv_free_tokens)
    head = order[: view.max_batch_size]  # only these can join the batch
    m = head.shape[0]
    if m == 0:
        return PrefixResult(batch=_EMPTY, evict=_EMPTY, free_after=free)
    dem = c.demand[head].cumsum()
    ok = c.step[head].cumsum() <= view.max_batch_tokens
    if evictable is None:
        ev_kv = None
        room = free
    else:
        ev_kv = c.gpu_kv * evictable
        head_kv = ev_kv[head]
        # evictable device KV strictly behind each position of the order
        room = free + (int(ev_kv[order].sum()) - head_kv.cumsum())
    if isinstance(reserve_tokens, (int, np.integer)) and reserve_tokens == 0:
        reserve = None
        ok &= dem <= room
    else:
        reserve = np.broadcast_to(np.asarray(reserve_tokens, dtype=np.int64), order.shape)[:m]
        kv_ok = dem + reserve <= room
        kv_ok[0] = dem[0] <= (room if evictable is None else room[0])
        ok &= kv_ok
    k = m if ok.all() else int(ok.argmin())
    if k == 0:
        return PrefixResult(batch=_EMPTY, evict=_EMPTY, free_after=free)
    reserve_last = 0 if reserve is None else int(reserve[k - 1])
    deficit = int(dem[k - 1]) + reserve_last - free
    evict = _EMPTY
    if deficit > 0 and ev_kv is not None and k < order.shape[0]:
        behind = order[k:]
        cand = behind[ev_kv[behind] > 0][::-1]  # evictable holders, back of the order first
        if cand.shape[0]:
            cum = ev_kv[cand].cumsum()
            j = min(int(np.searchsorted(cum, deficit)) + 1, cand.shape[0])
            evict = cand[:j]
            free += int(cum[j - 1])
    return PrefixResult(batch=order[:k], evict=evict, free_after=free - int(dem[k - 1]))


def split_preemptions(
    view: QueueView, evict: np.ndarray, preempt: str
) -> tuple[np.ndarray, np.ndarray]:
    """Split evicted positions into ``(swap_out, recompute)``. With ``preempt="swap"`` requests
    are swapped out while host swap space lasts (in the given order) and recomputed after that.

    >>> import numpy as np
    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[8, 8], kv_capacity_tokens=64,
    ...     kv_tokens=[9, 9], kv_location=[KV_GPU, KV_GPU], host_kv_free_tokens=10)
    >>> [a.tolist() for a in split_preemptions(v, np.array([1, 0]), "swap")]
    [[1], [0]]
    """
    if evict.shape[0] == 0:
        return _EMPTY, _EMPTY
    if preempt == "recompute":
        return _EMPTY, evict
    fits = view.kv_tokens[evict].cumsum() <= view.host_kv_free_tokens
    return evict[fits], evict[~fits]


def prefetch(
    view: QueueView,
    order: np.ndarray,
    *,
    free_tokens: int,
    reserve_tokens: int,
    limit: int,
) -> np.ndarray:
    """Host-resident requests of ``order`` to swap in ahead of time: the first ``limit`` of them
    in order, each taken while the device keeps ``reserve_tokens`` free after it (FastServe's
    proactive swap-in; requests that do not fit are passed over, as in the authors' code).

    >>> import numpy as np
    >>> from schedlab.policies.base import QueueView, KV_HOST
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[8, 8, 8], kv_capacity_tokens=100,
    ...     kv_tokens=[30, 50, 10], kv_location=[KV_HOST] * 3)
    >>> prefetch(v, np.array([0, 1, 2]), free_tokens=60, reserve_tokens=5, limit=3).tolist()
    [0, 2]
    """
    host = order[view.kv_location[order] == KV_HOST][:limit]
    taken = []
    room = free_tokens - reserve_tokens
    for i, kv in zip(host.tolist(), view.kv_tokens[host].tolist(), strict=True):
        if kv <= room:
            taken.append(i)
            room -= kv
    return np.asarray(taken, dtype=np.int64)


def decision_with_rejects(
    decision_kwargs: dict, reject: np.ndarray, reasons: tuple[str, ...]
) -> BatchDecision:
    """Build the :class:`BatchDecision`, adding the rejected positions (helper of the policies).

    >>> import numpy as np
    >>> decision_with_rejects({"run": np.array([0])}, np.array([1]), ("too big",)).reject.tolist()
    [1]
    """
    return BatchDecision(reject=reject, reject_reason=reasons, **decision_kwargs)
