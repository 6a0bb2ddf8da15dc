"""Batch formation shared by the policies: the longest feasible prefix of a priority order, the
KV evictions it needs, proactive prefetch, and rejection of requests that can never run.

Each rule is one compiled kernel (``*_kernel``, :func:`schedlab.jit.njit`) on the view's columns,
which the public functions here wrap and the policies' own kernels call directly, so a decision
is one compiled call; the policies differ only in the order they pass and in which requests they
allow to be evicted.

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

from schedlab.jit import njit
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
    "stable_argsort",
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
    code = infeasible_kernel(view.kv_tokens, c.growth, c.step, view.kv_capacity_tokens,
                             view.max_batch_tokens)
    bad = np.flatnonzero(code)
    if not bad.shape[0]:
        return _EMPTY, ()
    reasons = tuple(
        f"needs {int(view.kv_tokens[i] + c.growth[i])} KV tokens, more than the instance "
        f"capacity of {view.kv_capacity_tokens}"
        if code[i] == TOO_BIG
        else f"needs {int(c.step[i])} tokens in one iteration, more than max_batch_tokens="
        f"{view.max_batch_tokens}"
        for i in bad
    )
    return bad, reasons


#: :func:`infeasible_kernel` codes: the request fits, ...
FEASIBLE = 0
#: ... its KV plus its next growth exceeds the device, ...
TOO_BIG = 1
#: ... its step exceeds the token budget (and its KV fits).
OVER_BUDGET = 2


@njit
def infeasible_kernel(
    kv_tokens: np.ndarray, growth: np.ndarray, step: np.ndarray, kv_capacity_tokens: int,
    max_batch_tokens: int,
) -> np.ndarray:
    """Compiled rule of :func:`infeasible`: one code per request (:data:`FEASIBLE`,
    :data:`TOO_BIG` or :data:`OVER_BUDGET`)."""
    n = kv_tokens.shape[0]
    code = np.zeros(n, dtype=np.int8)
    for i in range(n):
        if kv_tokens[i] + growth[i] > kv_capacity_tokens:
            code[i] = TOO_BIG
        elif step[i] > max_batch_tokens:
            code[i] = OVER_BUDGET
    return code


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
    order = np.asarray(order, dtype=np.int64)
    ev_kv = np.zeros_like(c.gpu_kv) if evictable is None else c.gpu_kv * evictable
    reserve = np.ascontiguousarray(
        np.broadcast_to(np.asarray(reserve_tokens, dtype=np.int64), order.shape)
    )
    k, evict, free_after = longest_prefix_kernel(
        order, c.step, c.demand, ev_kv, int(view.kv_free_tokens), view.max_batch_size,
        view.max_batch_tokens, reserve,
    )
    return PrefixResult(batch=order[:k], evict=evict, free_after=free_after)


@njit
def longest_prefix_kernel(
    order: np.ndarray,
    step: np.ndarray,
    demand: np.ndarray,
    evictable_kv: np.ndarray,
    free: int,
    max_batch_size: int,
    max_batch_tokens: int,
    reserve: np.ndarray,
) -> tuple[int, np.ndarray, int]:
    """Compiled rule of :func:`longest_prefix`: ``(k, evict, free_after)`` for the batch
    ``order[:k]``, with ``evictable_kv`` the device KV each position may give up (0 where not
    evictable) and ``reserve`` one value per order position."""
    n_order = order.shape[0]
    m = min(max(max_batch_size, 0), n_order)  # only these can join the batch
    if m == 0:
        return 0, np.empty(0, dtype=np.int64), free
    total_ev = 0
    for i in range(n_order):
        total_ev += evictable_kv[order[i]]
    tokens = 0
    dem = 0
    head_kv = 0
    k = m
    dem_k = 0  # KV demand of order[:k]
    for i in range(m):
        p = order[i]
        tokens += step[p]
        dem += demand[p]
        head_kv += evictable_kv[p]
        room = free + (total_ev - head_kv)  # evictable device KV strictly behind position i
        need = dem if i == 0 else dem + reserve[i]  # the reserve does not limit the head
        if tokens > max_batch_tokens or need > room:
            k = i
            break
        dem_k = dem
    if k == 0:
        return 0, np.empty(0, dtype=np.int64), free
    deficit = dem_k + reserve[k - 1] - free
    evict = np.empty(0, dtype=np.int64)
    if deficit > 0 and k < n_order:
        # evictable holders, back of the order first, until the deficit is covered
        taken = np.empty(n_order - k, dtype=np.int64)
        j = 0
        got = 0
        for i in range(n_order - 1, k - 1, -1):
            p = order[i]
            if evictable_kv[p] > 0:
                taken[j] = p
                j += 1
                got += evictable_kv[p]
                if got >= deficit:
                    break
        evict = taken[:j]
        free += got
    return k, evict, free - dem_k


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
    return split_preemptions_kernel(
        np.asarray(evict, dtype=np.int64), view.kv_tokens, view.host_kv_free_tokens,
        preempt == "swap",
    )


@njit
def split_preemptions_kernel(
    evict: np.ndarray, kv_tokens: np.ndarray, host_kv_free_tokens: int, swap: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled rule of :func:`split_preemptions` (``swap``: ``preempt == "swap"``)."""
    if evict.shape[0] == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    if not swap:
        return np.empty(0, dtype=np.int64), evict
    fits = np.empty(evict.shape[0], dtype=np.bool_)
    used = 0
    for i in range(evict.shape[0]):
        used += kv_tokens[evict[i]]
        fits[i] = used <= host_kv_free_tokens
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
    return prefetch_kernel(
        np.asarray(order, dtype=np.int64), view.kv_location, view.kv_tokens, free_tokens,
        reserve_tokens, limit,
    )


@njit
def prefetch_kernel(
    order: np.ndarray, kv_location: np.ndarray, kv_tokens: np.ndarray, free_tokens: int,
    reserve_tokens: int, limit: int,
) -> np.ndarray:
    """Compiled rule of :func:`prefetch`."""
    taken = np.empty(order.shape[0], dtype=np.int64)
    k = 0
    seen = 0
    room = free_tokens - reserve_tokens
    for i in range(order.shape[0]):
        if seen >= limit:
            break
        p = order[i]
        if kv_location[p] == KV_HOST:
            seen += 1
            if kv_tokens[p] <= room:
                taken[k] = p
                k += 1
                room -= kv_tokens[p]
    return taken[:k]


@njit
def stable_argsort(keys: np.ndarray) -> np.ndarray:
    """Indices that sort ``keys`` (no NaN) ascending, equal keys in index order: the same
    permutation as ``np.argsort(keys, kind="stable")``. A bottom-up merge sort over insertion-
    sorted runs that skips merging runs already in order (so a sorted input costs one pass); the
    policies' kernels sort with it because it compiles in a fraction of the time numba's
    generic ``np.argsort(kind="mergesort")`` takes.

    >>> stable_argsort(np.array([3.0, 1.0, 3.0, 0.5])).tolist()
    [3, 1, 0, 2]
    """
    n = keys.shape[0]
    src = np.arange(n)
    run = 16
    for lo in range(0, n, run):  # insertion sort of each run
        for i in range(lo + 1, min(lo + run, n)):
            x = src[i]
            j = i - 1
            while j >= lo and keys[src[j]] > keys[x]:
                src[j + 1] = src[j]
                j -= 1
            src[j + 1] = x
    dst = np.empty(n, dtype=np.int64)
    width = run
    while width < n:
        for lo in range(0, n, 2 * width):
            mid = min(lo + width, n)
            hi = min(lo + 2 * width, n)
            i, j = lo, mid
            if mid < hi and keys[src[mid - 1]] > keys[src[mid]]:  # else already in order
                for k in range(lo, hi):
                    # strict: of equal keys the left run's comes first
                    if j < hi and (i == mid or keys[src[j]] < keys[src[i]]):
                        dst[k] = src[j]
                        j += 1
                    else:
                        dst[k] = src[i]
                        i += 1
            else:
                for k in range(lo, hi):
                    dst[k] = src[k]
        src, dst = dst, src
        width *= 2
    return src


def decision_with_rejects(
    view: QueueView, decision_kwargs: dict, n_reject: int
) -> BatchDecision:
    """Build the :class:`BatchDecision`; when the policy's kernel counted ``n_reject`` infeasible
    requests, reject them with :func:`infeasible`'s reasons (worded only then).

    >>> import numpy as np
    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 500], kv_capacity_tokens=100)
    >>> decision_with_rejects(v, {"run": np.array([0])}, 1).reject.tolist()
    [1]
    """
    if n_reject:
        reject, reasons = infeasible(view)
        return BatchDecision(reject=reject, reject_reason=reasons, **decision_kwargs)
    return BatchDecision(**decision_kwargs)
