"""The simulator's per-event column updates as compiled kernels (:func:`schedlab.jit.njit`).

Each kernel is one state transition of an instance's :class:`~schedlab.sim.state.QueueColumns`
(``I``: int rows, ``F``: float rows, ``rid``, ``loc``, ``running``) over the slots of a batch,
done in one compiled loop instead of a few dozen numpy calls on short columns. They implement
exactly the token accounting documented in :mod:`schedlab.sim.state`; the Python methods of
:class:`~schedlab.sim.instance.InstanceRuntime` decide which to call and keep every check.

>>> import numpy as np
>>> from schedlab.sim.state import QueueColumns, RequestTable
>>> t = RequestTable.empty(np.zeros(2), np.array([5, 7]), np.array([2, 3]), np.array([2.0, 3.0]))
>>> q = QueueColumns()
>>> q.append(np.array([0, 1]), t, np.zeros(2))
>>> chunks, pt, pc, tokens, grow, dec_kv, fewest_left = batch_chunks(q.I, np.array([0, 1]), 4)
>>> chunks.tolist(), tokens, grow   # chunking at 4: request 0's 4 < 5, request 1's 4 < 7
([4, 4], 8, 8)
"""

from __future__ import annotations

import math

import numpy as np

from schedlab.jit import njit
from schedlab.policies.base import KV_GPU
from schedlab.sim.state import (
    ATTAINED,
    GENERATED,
    KV,
    LAST_RUN,
    LEFT,
    PRED,
    PREFILLED,
    RELEASE,
    TARGET,
)

__all__ = [
    "batch_chunks",
    "batch_decode_stats",
    "count_unservable",
    "finish_decode",
    "finish_iteration",
    "position_fault",
    "split_completed",
    "store_release",
]


@njit
def batch_chunks(I, run, chunk_tokens):  # noqa: E741
    """Default prefill chunks of a batch: per slot the remaining prompt (capped by
    ``chunk_tokens`` when > 0) or 0 in the decode phase. Returns ``(chunks, prefill_tokens,
    prefill_context, tokens, kv_growth, decode_kv, fewest_left)``: the chunks of the
    prefilling slots and their cached context (the cost model's inputs), the iteration's tokens
    (chunks plus one per decode), the KV it adds (plus one first token per completed prefill),
    the KV held by the decoding slots, and the fewest output tokens left in the batch."""
    b = run.shape[0]
    chunks = np.zeros(b, dtype=np.int64)
    n_pref = 0
    for j in range(b):
        s = run[j]
        if I[TARGET, s] > I[PREFILLED, s]:
            n_pref += 1
    pt = np.empty(n_pref, dtype=np.int64)
    pc = np.empty(n_pref, dtype=np.int64)
    tokens = 0
    grow = 0
    dec_kv = 0
    fewest_left = np.iinfo(np.int64).max
    p = 0
    for j in range(b):
        s = run[j]
        fewest_left = min(fewest_left, I[LEFT, s])
        rem = I[TARGET, s] - I[PREFILLED, s]
        if rem > 0:
            c = min(rem, chunk_tokens) if chunk_tokens > 0 else rem
            chunks[j] = c
            pt[p] = c
            pc[p] = I[PREFILLED, s]
            p += 1
            tokens += c
            grow += c + (1 if c == rem else 0)
        else:
            tokens += 1
            grow += 1
            dec_kv += I[KV, s]
    return chunks, pt, pc, tokens, grow, dec_kv, fewest_left


@njit
def batch_decode_stats(I, run):  # noqa: E741
    """``(prefilling slots, KV held, fewest output tokens left)`` over the slots ``run``."""
    n_pref = 0
    kv = 0
    left = np.iinfo(np.int64).max
    for j in range(run.shape[0]):
        s = run[j]
        if I[TARGET, s] > I[PREFILLED, s]:
            n_pref += 1
        kv += I[KV, s]
        left = min(left, I[LEFT, s])
    return n_pref, kv, left


@njit
def finish_iteration(I, F, loc, rid, first_token, pos, chunks, t0, now, track):  # noqa: E741
    """Apply one iteration of the slots ``pos`` that ran ``chunks`` prompt tokens each (0: a
    decode step): prefill progress, the token emitted by a completed prefill or a decode step,
    KV growth, first-token times, attained service. Returns ``(emits, done, kv_added,
    retired, n_done)``: per slot whether it emitted a token and whether it completed, the
    device KV added, (with ``track``) the prompt and predicted output tokens it retired, and
    how many completed."""
    b = pos.shape[0]
    emits = np.zeros(b, dtype=np.bool_)
    done = np.zeros(b, dtype=np.bool_)
    added = 0
    retired = 0.0
    n_done = 0
    ran = now - t0
    for j in range(b):
        s = pos[j]
        c = chunks[j]
        pl = max(F[PRED, s] - I[GENERATED, s], 0.0)
        I[PREFILLED, s] += c
        e = c == 0
        if c > 0:
            loc[s] = KV_GPU
            if I[PREFILLED, s] >= I[TARGET, s]:
                e = True
                r = rid[s]
                if math.isnan(first_token[r]):
                    first_token[r] = now
        emits[j] = e
        if e:
            I[GENERATED, s] += 1
            I[LEFT, s] -= 1
        I[KV, s] += c + e
        added += c + e
        F[ATTAINED, s] += ran
        F[LAST_RUN, s] = now
        if track:
            retired += c + min(pl, 1.0 if e else 0.0)
        if I[LEFT, s] == 0:
            done[j] = True
            n_done += 1
    return emits, done, added, retired, n_done


@njit
def finish_decode(I, F, pos, k, t0, now, track):  # noqa: E741
    """Apply ``k`` decode steps of the slots ``pos``. Returns ``(done, retired, n_done)``: per
    slot whether it completed, (with ``track``) the predicted output tokens it retired, and how
    many completed."""
    b = pos.shape[0]
    done = np.zeros(b, dtype=np.bool_)
    retired = 0.0
    n_done = 0
    ran = now - t0
    for j in range(b):
        s = pos[j]
        if track:
            retired += min(max(F[PRED, s] - I[GENERATED, s], 0.0), float(k))
        I[GENERATED, s] += k
        I[LEFT, s] -= k
        I[KV, s] += k
        F[ATTAINED, s] += ran
        F[LAST_RUN, s] = now
        if I[LEFT, s] == 0:
            done[j] = True
            n_done += 1
    return done, retired, n_done


@njit
def count_unservable(idx, inp, out, kv_capacity, max_prompt):
    """How many of the workload requests ``idx`` can never be served: prompt plus output over
    the KV capacity, or (``max_prompt >= 0``: no chunked prefill) prompt over ``max_prompt``."""
    bad = 0
    for j in range(idx.shape[0]):
        r = idx[j]
        if inp[r] + out[r] > kv_capacity or (max_prompt >= 0 and inp[r] > max_prompt):
            bad += 1
    return bad


@njit
def position_fault(pos, n):
    """0 when ``pos`` holds distinct positions in ``[0, n)``; 1 when one is out of range; 2
    when one repeats."""
    seen = np.zeros(n, dtype=np.bool_)
    for j in range(pos.shape[0]):
        p = pos[j]
        if p < 0 or p >= n:
            return 1
        if seen[p]:
            return 2
        seen[p] = True
    return 0


@njit
def store_release(I, release):  # noqa: E741
    """Write ``release`` (a policy's ``hold_release_tokens``) into row ``RELEASE`` of the first
    ``len(release)`` slots; returns False, having stopped, at the first negative value."""
    for s in range(release.shape[0]):
        if release[s] < 0:
            return False
        I[RELEASE, s] = release[s]
    return True


@njit
def split_completed(I, pos, done, n_done, rid, status, finish, now, completed):  # noqa: E741
    """Mark the requests of the slots ``pos[done]`` (``n_done`` of them) ``completed`` at
    ``now`` in the table columns ``status`` and ``finish``. Returns ``(finished, kept,
    released)``: the finished slots sorted, the other slots of ``pos`` renumbered as they will
    be once the finished are removed, and the finished slots' total ``RELEASE``."""
    b = pos.shape[0]
    fin = np.empty(n_done, dtype=np.int64)
    keep = np.empty(b - n_done, dtype=np.int64)
    f = 0
    k = 0
    released = 0
    for j in range(b):
        s = pos[j]
        if done[j]:
            fin[f] = s
            f += 1
            released += I[RELEASE, s]
            status[rid[s]] = completed
            finish[rid[s]] = now
        else:
            keep[k] = s
            k += 1
    fin.sort()
    for j in range(keep.shape[0]):
        keep[j] -= np.searchsorted(fin, keep[j])
    return fin, keep, released
