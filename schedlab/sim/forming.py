"""The engine's batch forming: the compiled twin of :func:`schedlab.contract.forming.form_batch`
on an instance's columns (tested equal to it on generated views and plans), and the remapping
of a kept plan's order when requests leave.

:func:`form` reads the plan's per-request fields from the queue's rows ``FOOT`` and ``FLAGS``
(:mod:`schedlab.sim.state`), so a plan the engine keeps follows its requests as slots move.

>>> import numpy as np
>>> remap_order(np.array([4, 0, 3, 2]), np.array([1, 3])).tolist()
[2, 0, 1]
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import KV_GPU, KV_HOST, KV_NONE
from schedlab.jit import njit
from schedlab.sim.kernels import default_chunk, step_growth
from schedlab.sim.state import DEFERRED, EVICTABLE, FLAGS, FOOT, GENERATED, KV, PREFILLED, TARGET

__all__ = ["form", "remap_order"]

#: Infeasibility codes, as :func:`schedlab.contract.accounting.infeasible_codes`.
_TOO_BIG, _OVER_BUDGET = 1, 2


@njit
def _columns(I, loc, running, order, chunk_tokens, reserve, watermark, use_foot):  # noqa: E741
    """Per position of ``order``: step, demand, evictable device KV and ``R`` (the reserve of
    :mod:`schedlab.contract.forming`)."""
    m = order.shape[0]
    step = np.empty(m, dtype=np.int64)
    demand = np.empty(m, dtype=np.int64)
    ev = np.empty(m, dtype=np.int64)
    r = np.empty(m, dtype=np.int64)
    future = 0
    for i in range(m):
        s = order[i]
        rem = I[TARGET, s] - I[PREFILLED, s]
        st, g = step_growth(rem, default_chunk(rem, chunk_tokens))
        kv = I[KV, s]
        on_gpu = loc[s] == KV_GPU
        gkv = kv if on_gpu else 0
        d = g + (kv if loc[s] == KV_HOST else 0)
        step[i] = st
        demand[i] = d
        ev[i] = gkv if (I[FLAGS, s] & EVICTABLE) else 0
        ri = reserve
        if watermark and loc[s] == KV_NONE:
            ri += watermark
        if use_foot:
            foot = max(I[FOOT, s], kv + g)
            future += max(foot - gkv, d) - d
            begun = (I[PREFILLED, s] > 0 or I[GENERATED, s] > 0 or loc[s] != KV_NONE
                     or running[s])
            if not begun:
                ri += future
        r[i] = ri
    return step, demand, ev, r


@njit
def _prefix(step, demand, ev, r, free, limit, max_batch_tokens):
    """How many positions join the batch (step 3 of the rule)."""
    m = min(limit, step.shape[0])
    total_ev = 0
    for i in range(step.shape[0]):
        total_ev += ev[i]
    tokens = 0
    dem = 0
    head_ev = 0
    for i in range(m):
        tokens += step[i]
        dem += demand[i]
        head_ev += ev[i]
        need = dem + r[i] if i > 0 else dem
        if tokens > max_batch_tokens or need > free + total_ev - head_ev:
            return i
    return max(m, 0)


@njit
def form(I, loc, running, n, order, kv_capacity, free, host_free, max_batch_size,  # noqa: E741
         max_batch_tokens, chunk_tokens, reserve, watermark, use_foot, prefetch, swap):
    """Form the batch of the plan whose order is ``order`` (slots) over the first ``n`` slots.

    Returns ``(run, swap_out, recompute, swap_in, reject, codes, reached_end)``: the batch, the
    moves, the infeasible slots with their codes, and whether the walk took every request it
    could draw from."""
    code = np.zeros(n, dtype=np.int8)
    n_rej = 0
    for s in range(n):
        rem = I[TARGET, s] - I[PREFILLED, s]
        st, g = step_growth(rem, default_chunk(rem, chunk_tokens))
        if I[KV, s] + g > kv_capacity:
            code[s] = _TOO_BIG
        elif st > max_batch_tokens:
            code[s] = _OVER_BUDGET
        if code[s]:
            n_rej += 1
    if n_rej:
        order = order[code[order] == 0]
    m = order.shape[0]
    n_def = 0
    for i in range(m):
        if I[FLAGS, order[i]] & DEFERRED:
            n_def += 1
    runnable = m
    k = 0
    if n_def:
        gated = np.empty(m, dtype=np.int64)
        a = 0
        b = m - n_def
        for i in range(m):
            s = order[i]
            if I[FLAGS, s] & DEFERRED:
                gated[b] = s
                b += 1
            else:
                gated[a] = s
                a += 1
        step, demand, ev, r = _columns(I, loc, running, gated, chunk_tokens, reserve, watermark,
                                       use_foot)
        k = _prefix(step, demand, ev, r, free, min(max_batch_size, m - n_def), max_batch_tokens)
        if k:
            order = gated
            runnable = m - n_def
    if k == 0:
        step, demand, ev, r = _columns(I, loc, running, order, chunk_tokens, reserve, watermark,
                                       use_foot)
        k = _prefix(step, demand, ev, r, free, max_batch_size, max_batch_tokens)
    dem = 0
    for i in range(k):
        dem += demand[i]
    evict = np.empty(0, dtype=np.int64)
    if k and k < m and dem + r[k - 1] > free:
        deficit = dem + r[k - 1] - free
        taken = np.empty(m - k, dtype=np.int64)
        j = 0
        got = 0
        for i in range(m - 1, k - 1, -1):
            if ev[i] > 0:
                taken[j] = order[i]
                j += 1
                got += ev[i]
                if got >= deficit:
                    break
        evict = taken[:j]
        free += got
    swap_out = evict[:0]
    recompute = evict
    if swap and evict.shape[0]:
        fits = np.empty(evict.shape[0], dtype=np.bool_)
        used = 0
        for i in range(evict.shape[0]):
            used += I[KV, evict[i]]
            fits[i] = used <= host_free
        swap_out, recompute = evict[fits], evict[~fits]
    swap_in = np.empty(0, dtype=np.int64)
    if prefetch and evict.shape[0] == 0:
        room = free - dem - k - reserve
        taken = np.empty(min(prefetch, runnable), dtype=np.int64)
        j = 0
        seen = 0
        for i in range(k, runnable):
            if seen >= prefetch:
                break
            s = order[i]
            if loc[s] == KV_HOST:
                seen += 1
                if I[KV, s] <= room:
                    taken[j] = s
                    j += 1
                    room -= I[KV, s]
        swap_in = taken[:j]
    reject = np.flatnonzero(code)
    return order[:k].copy(), swap_out, recompute, swap_in, reject, code[reject], k == runnable


@njit
def remap_order(order, gone):
    """``order`` (slots) without the slots ``gone`` (sorted, distinct) and renumbered as the
    slots are once those are removed (each later slot moves down by the removed ones before
    it)."""
    out = np.empty(order.shape[0], dtype=np.int64)
    j = 0
    for i in range(order.shape[0]):
        p = order[i]
        below = np.searchsorted(gone, p)
        if below < gone.shape[0] and gone[below] == p:
            continue
        out[j] = p - below
        j += 1
    return out[:j]
