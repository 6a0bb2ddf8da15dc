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
from schedlab.sim.state import (
    DEFERRED,
    EVICTABLE,
    FLAGS,
    FOOT,
    GENERATED,
    KV,
    PRED,
    PREFILLED,
    TARGET,
)

__all__ = ["FOOT_NONE", "FOOT_PREDICTED", "FOOT_ROW", "form", "remap_order", "unpack"]

#: Infeasibility codes, as :func:`schedlab.contract.accounting.infeasible_codes`.
_TOO_BIG, _OVER_BUDGET = 1, 2
#: :func:`form`'s ``foot_mode``: no footprints, row ``FOOT``, or prompt plus predicted output.
FOOT_NONE, FOOT_ROW, FOOT_PREDICTED = 0, 1, 2


@njit
def _walk(I, F, loc, running, order, limit, free, max_batch_tokens, chunk_tokens,  # noqa: E741
          reserve, watermark, foot_mode, host_room):
    """Step 3 of the rule on ``order``: returns ``(k, demand, r_last, ev)``: how many positions
    join, their KV demand, ``R`` of the last one, and the evictable device KV per position (with
    ``host_room >= 0``, only what that much host space takes, from the back; for a request
    that has started, the reserve is then checked against every evictable request and the rest
    of ``R`` against those). The costs of positions behind the stop are never computed."""
    m = order.shape[0]
    ev = np.empty(m, dtype=np.int64)
    total_ev = 0
    total_all = 0
    for i in range(m - 1, -1, -1):
        s = order[i]
        kv = I[KV, s] if (loc[s] == KV_GPU and I[FLAGS, s] & EVICTABLE) else 0
        total_all += kv
        if host_room >= 0 and kv > host_room - total_ev:
            kv = 0
        ev[i] = kv
        total_ev += kv
    tokens = 0
    dem = 0
    head_ev = 0
    head_all = 0
    future = 0
    dem_k = 0
    r_last = 0
    for i in range(min(limit, m)):
        s = order[i]
        rem = I[TARGET, s] - I[PREFILLED, s]
        st, g = step_growth(rem, default_chunk(rem, chunk_tokens))
        kv = I[KV, s]
        d = g + (kv if loc[s] == KV_HOST else 0)
        ri = reserve
        if watermark and loc[s] == KV_NONE:
            ri += watermark
        begun = _begun(I, loc, running, s)
        if foot_mode:
            given = I[FOOT, s] if foot_mode == FOOT_ROW else I[TARGET, s] + np.int64(
                np.ceil(F[PRED, s]))
            foot = max(given, kv + g)
            future += max(foot - (kv if loc[s] == KV_GPU else 0), d) - d
            if not begun:
                ri += future
        tokens += st
        dem += d
        head_ev += ev[i]
        head_all += I[KV, s] if (loc[s] == KV_GPU and I[FLAGS, s] & EVICTABLE) else 0
        need = dem + ri if i > 0 else dem
        hard = need - reserve if (i > 0 and begun) else need
        if (tokens > max_batch_tokens or hard > free + total_ev - head_ev
                or need > free + total_all - head_all):
            return i, dem_k, r_last, ev
        dem_k = dem
        r_last = ri
    return min(limit, m), dem_k, r_last, ev


@njit
def _begun(I, loc, running, s):  # noqa: E741
    """Whether slot ``s`` has started (:func:`schedlab.contract.accounting.started`)."""
    return I[PREFILLED, s] > 0 or I[GENERATED, s] > 0 or loc[s] != KV_NONE or running[s]


@njit
def _hold_back(order, mask):
    """``order`` with the positions where ``mask`` is set moved to its back (stably), and how
    many are left in front."""
    m = order.shape[0]
    out = np.empty(m, dtype=np.int64)
    a = 0
    for i in range(m):
        if not mask[i]:
            out[a] = order[i]
            a += 1
    b = a
    for i in range(m):
        if mask[i]:
            out[b] = order[i]
            b += 1
    return out, a


@njit
def form(I, F, loc, running, n, order, kv_capacity, free, host_free,  # noqa: E741
         max_batch_size, max_batch_tokens, chunk_tokens, reserve, watermark, foot_mode, prefetch,
         swap, prefills_alone):
    """Form the batch of the plan whose order is ``order`` (slots) over the first ``n`` slots;
    ``foot_mode`` says where footprints come from (:data:`FOOT_NONE`, :data:`FOOT_ROW`: row
    ``FOOT``, :data:`FOOT_PREDICTED`: prompt plus predicted output).

    Returns one int64 array (returning one array instead of six saves most of the call's cost):
    a header ``[reached_end, k, swap_out, recompute, swap_in, reject]`` (whether the walk took
    every request it could draw from, then the length of each part) followed by the parts: the
    batch, the swap-outs, the recomputations, the swap-ins and the infeasible slots
    (:func:`unpack`)."""
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
    deferred = np.zeros(m if (n_def or swap) else 0, dtype=np.bool_)
    if n_def:
        for i in range(m):
            deferred[i] = I[FLAGS, order[i]] & DEFERRED != 0
    held = deferred
    n_new = 0
    if swap:  # attempts (b) and (c) also hold back the requests that have not started
        held = np.empty(m, dtype=np.bool_)
        for i in range(m):
            held[i] = deferred[i] or not _begun(I, loc, running, order[i])
            n_new += held[i] and not deferred[i]
    # the attempts of the rule: (held back: 0 deferred, 1 deferred or not started, 2 nothing;
    # victims limited to what the host takes; reserve kept)
    k = 0
    cand = order
    runnable = m
    for t in range(5 if swap else 2):
        if swap:
            which = (0, 1, 1, 2, 2)[t]
            limited = keep = t != 2 and t != 4
        else:
            which = 2 * t
            limited, keep = False, True
        if which == 1 and limited and n_new == 0:
            continue  # the same as an earlier attempt
        if which == 2 and n_def == 0 and (limited or not swap or n_new == 0):
            continue
        if which == 2 or n_def + (n_new if which == 1 else 0) == 0:
            cand = order  # nothing held back
            runnable = m
        else:
            cand, runnable = _hold_back(order, deferred if which == 0 else held)
        k, dem, r_last, ev = _walk(I, F, loc, running, cand, min(max_batch_size, runnable),
                                   free, max_batch_tokens, chunk_tokens,
                                   reserve if keep else 0, watermark, foot_mode,
                                   host_free if limited else -1)
        if k:
            break
    order = cand
    evict = np.empty(0, dtype=np.int64)
    if k and k < m and dem + r_last > free:
        deficit = dem + r_last - free
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
    batch = order[:k]
    if prefills_alone:
        n_pre = 0
        for i in range(k):
            if I[PREFILLED, batch[i]] < I[TARGET, batch[i]]:
                n_pre += 1
        if 0 < n_pre < k:
            pre = np.empty(n_pre, dtype=np.int64)
            j = 0
            for i in range(k):
                if I[PREFILLED, batch[i]] < I[TARGET, batch[i]]:
                    pre[j] = batch[i]
                    j += 1
            batch = pre
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
    reject = np.flatnonzero(code) if n_rej else np.empty(0, dtype=np.int64)
    parts = (batch, swap_out, recompute, swap_in, reject)
    out = np.empty(HEADER + batch.shape[0] + evict.shape[0] + swap_in.shape[0] + n_rej,
                   dtype=np.int64)
    out[0] = k == runnable
    j = HEADER
    for i in range(5):
        a = parts[i]
        out[1 + i] = a.shape[0]
        out[j : j + a.shape[0]] = a
        j += a.shape[0]
    return out


#: Length of :func:`form`'s header.
HEADER = 6
_EMPTY = np.zeros(0, dtype=np.int64)
_EMPTY.flags.writeable = False


def unpack(out: np.ndarray) -> tuple[bool, bool, np.ndarray, np.ndarray, np.ndarray,
                                     np.ndarray, np.ndarray]:
    """:func:`form`'s result as ``(reached_end, moves, run, swap_out, recompute, swap_in,
    reject)`` (``moves``: whether anything is evicted, swapped in or rejected)."""
    head = out[:HEADER].tolist()
    j = HEADER + head[1]
    run = out[HEADER:j]
    if j == out.shape[0]:  # the common case: a batch and nothing else
        return bool(head[0]), False, run, _EMPTY, _EMPTY, _EMPTY, _EMPTY
    parts = []
    for size in head[2:]:
        parts.append(out[j : j + size])
        j += size
    return bool(head[0]), True, run, parts[0], parts[1], parts[2], parts[3]


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
