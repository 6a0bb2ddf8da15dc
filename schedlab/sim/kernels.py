"""The simulator's per-event column updates as compiled kernels (:func:`schedlab.jit.njit`).

Each kernel is one state transition of an instance's :class:`~schedlab.sim.state.QueueColumns`
(``I``: int rows, ``F``: float rows, ``rid``, ``loc``, ``running``) over the slots of a batch,
done in one compiled loop instead of a few dozen numpy calls on short columns. They are the
compiled twin of the accounting in :mod:`schedlab.contract.accounting` (:func:`step_growth` is
its one rule of step and growth here; the tests check the effects against
:func:`~schedlab.contract.accounting.run_iteration`).

>>> import numpy as np
>>> from schedlab.sim.state import QueueColumns, RequestTable
>>> t = RequestTable.empty(np.zeros(2), np.array([5, 7]), np.array([2, 3]), np.array([2.0, 3.0]))
>>> q = QueueColumns()
>>> added = q.append(np.array([0, 1]), t, np.zeros(2))
>>> n_pref, dec_kv, fewest_left = start_batch(q.I, q.running, q.n, np.array([0, 1]))
>>> chunks, pt, pc = batch_chunks(q.I, np.array([0, 1]), n_pref, 4)
>>> chunks.tolist(), pc.tolist(), fewest_left   # chunking at 4: request 0's 4 < 5, 1's 4 < 7
([4, 4], [0, 0], 2)
"""

from __future__ import annotations

import math

import numpy as np

from schedlab.contract import KV_GPU
from schedlab.jit import njit
from schedlab.sim.state import (
    ATTAINED,
    COMPLETED,
    GENERATED,
    KV,
    LAST_RUN,
    LEFT,
    PRED,
    PREFILLED,
    TARGET,
)

__all__ = [
    "batch_chunks",
    "start_batch",
    "count_unservable",
    "finish_decode",
    "finish_iteration",
    "step_growth",
]


@njit
def default_chunk(rem, chunk_tokens):
    """The prompt tokens a request with ``rem`` left prefills by default: all of them, capped by
    ``chunk_tokens`` when chunking is on (0 in the decode phase)."""
    if rem <= 0:
        return 0
    return min(rem, chunk_tokens) if chunk_tokens > 0 else rem


@njit
def step_growth(rem, chunk):
    """``(step, growth)`` of running a request with ``rem`` prompt tokens left, prefilling
    ``chunk`` of them (0 in the decode phase): the step is the chunk or 1 decode token, the
    growth the step plus the first output token when the chunk completes the prefill."""
    if rem <= 0:
        return 1, 1
    return chunk, chunk + (1 if chunk >= rem else 0)


@njit
def start_batch(I, running, n, run):  # noqa: E741
    """Mark the slots ``run`` as the running ones (of the first ``n``) and return
    ``(prefilling, decode_kv, fewest_left)`` of them: how many are in their prefill phase, the
    KV held by the others, and the fewest output tokens left among all."""
    for s in range(n):
        running[s] = False
    n_pref = 0
    dec_kv = 0
    fewest_left = np.iinfo(np.int64).max
    for j in range(run.shape[0]):
        s = run[j]
        running[s] = True
        fewest_left = min(fewest_left, I[LEFT, s])
        if I[TARGET, s] > I[PREFILLED, s]:
            n_pref += 1
        else:
            dec_kv += I[KV, s]
    return n_pref, dec_kv, fewest_left


@njit
def batch_chunks(I, run, n_pref, chunk_tokens):  # noqa: E741
    """Default prefill chunks of a batch with ``n_pref`` members in their prefill phase: per
    slot the remaining prompt (capped by ``chunk_tokens`` when > 0) or 0 in the decode phase.
    Returns ``(chunks, prefill_tokens, prefill_context)``: every member's chunk, and the chunks
    of the prefilling members with their cached context (the cost model's inputs)."""
    b = run.shape[0]
    chunks = np.zeros(b, dtype=np.int64)
    pt = np.empty(n_pref, dtype=np.int64)
    pc = np.empty(n_pref, dtype=np.int64)
    p = 0
    for j in range(b):
        s = run[j]
        rem = I[TARGET, s] - I[PREFILLED, s]
        if rem > 0:
            c = default_chunk(rem, chunk_tokens)
            chunks[j] = c
            pt[p] = c
            pc[p] = I[PREFILLED, s]
            p += 1
    return chunks, pt, pc


@njit
def _completed(done_slots, n_done, rid, status, finish, now):
    """Mark the requests of the first ``n_done`` of ``done_slots`` completed at ``now``; returns
    those slots sorted."""
    fin = done_slots[:n_done].copy()
    for s in fin:
        status[rid[s]] = COMPLETED
        finish[rid[s]] = now
    fin.sort()
    return fin


@njit
def finish_iteration(I, F, loc, rid, first_token, status, finish, pos, chunks, t0, now,  # noqa: E741
                     track):
    """Apply one iteration of the slots ``pos`` that ran ``chunks`` prompt tokens each (0: a
    decode step): prefill progress, the token emitted by a completed prefill or a decode step,
    KV growth, first-token times, attained service, and the completion (status and finish time)
    of the requests that emitted their last token. Returns ``(finished, kv_added, retired)``:
    the completed slots (sorted), the device KV added, and (with ``track``) the prompt and
    predicted output tokens the batch retired."""
    b = pos.shape[0]
    done = np.empty(b, dtype=np.int64)
    n_done = 0
    added = 0
    retired = 0.0
    ran = now - t0
    for j in range(b):
        s = pos[j]
        c = chunks[j]
        pl = max(F[PRED, s] - I[GENERATED, s], 0.0)
        _, g = step_growth(I[TARGET, s] - I[PREFILLED, s], c)
        e = g - c  # the emitted output token
        I[PREFILLED, s] += c
        loc[s] = KV_GPU
        if e:
            r = rid[s]
            if math.isnan(first_token[r]):
                first_token[r] = now
        I[GENERATED, s] += e
        I[LEFT, s] -= e
        I[KV, s] += g
        added += g
        F[ATTAINED, s] += ran
        F[LAST_RUN, s] = now
        if track:
            retired += c + min(pl, 1.0 if e else 0.0)
        if I[LEFT, s] == 0:
            done[n_done] = s
            n_done += 1
    return _completed(done, n_done, rid, status, finish, now), added, retired


@njit
def finish_decode(I, F, rid, status, finish, pos, k, t0, now, track):  # noqa: E741
    """Apply ``k`` decode steps of the slots ``pos``, and the completion of the requests that
    emitted their last token. Returns ``(finished, retired)``: the completed slots (sorted) and
    (with ``track``) the predicted output tokens the batch retired."""
    b = pos.shape[0]
    done = np.empty(b, dtype=np.int64)
    n_done = 0
    retired = 0.0
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
            done[n_done] = s
            n_done += 1
    return _completed(done, n_done, rid, status, finish, now), retired


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
