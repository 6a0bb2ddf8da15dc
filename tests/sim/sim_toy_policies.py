"""Tiny policies for the simulator's own tests (not part of the package's policies)."""

from __future__ import annotations

import numpy as np

from schedlab.contract import KV_GPU, BatchDecision, QueueView


def toy_fcfs(view: QueueView, /) -> BatchDecision:
    """Arrival order; admit while batch size, token budget and KV (reserving each request's
    whole remaining footprint) fit; never preempts."""
    order = np.lexsort((view.request_id, view.arrival_s))
    rem_prompt = view.input_tokens - view.prefilled_tokens
    step = np.where(rem_prompt > 0, rem_prompt, 1)
    if view.chunk_tokens:
        step = np.where(rem_prompt > 0, np.minimum(rem_prompt, view.chunk_tokens), 1)
    need = view.input_tokens + view.output_tokens_pred.astype(np.int64) - view.kv_tokens
    started = view.kv_tokens > 0
    run, tokens, reserved = [], 0, 0
    for p in order.tolist():
        if len(run) == view.max_batch_size:
            break
        if tokens + step[p] > view.max_batch_tokens:
            break
        if reserved + need[p] > view.kv_free_tokens and not started[p]:
            break
        run.append(p)
        tokens += int(step[p])
        reserved += int(need[p])
    return BatchDecision(run=np.array(run, dtype=np.int64))


def toy_swapper(view: QueueView, /, *, recompute: bool = False) -> BatchDecision:
    """Shortest-remaining-first with preemption: runs up to two requests of least remaining
    predicted output whose KV (held plus this iteration's growth) fits the device alone; every
    other request holding device KV is swapped out (or dropped for recomputation). A request
    whose prompt plus output fits the device can always run alone, so nothing starves."""
    left = view.output_tokens_pred - view.generated_tokens
    order = np.lexsort((view.request_id, left))
    rem_prompt = view.input_tokens - view.prefilled_tokens
    step = np.where(rem_prompt > 0, rem_prompt, 1)
    growth = step + (rem_prompt > 0)
    run: list[int] = []
    tokens = 0
    for p in order.tolist():
        if len(run) == min(view.max_batch_size, 2) or tokens + step[p] > view.max_batch_tokens:
            break
        run.append(p)
        tokens += int(step[p])
    while len(run) > 1 and int((view.kv_tokens[run] + growth[run]).sum()) > view.kv_capacity_tokens:
        run.pop()
    chosen = np.zeros(view.n, dtype=bool)
    chosen[run] = True
    evict = np.flatnonzero((view.kv_location == KV_GPU) & ~chosen)
    if recompute:
        return BatchDecision(run=np.array(run, dtype=np.int64), recompute=evict)
    return BatchDecision(run=np.array(run, dtype=np.int64), swap_out=evict)


def idle_forever(view: QueueView, /) -> BatchDecision:
    """Never runs anything and asks for no wake-up."""
    return BatchDecision(run=np.zeros(0, dtype=np.int64))


def idle_now(view: QueueView, /) -> BatchDecision:
    """Never runs anything and asks to be woken the next instant (a livelock)."""
    return BatchDecision(run=np.zeros(0, dtype=np.int64),
                         reconsider_at_s=float(np.nextafter(view.now_s, np.inf)))


def greedy_all(view: QueueView, /) -> BatchDecision:
    """Runs every request, ignoring KV capacity (to test the capacity check)."""
    return BatchDecision(run=np.arange(view.n))


def reject_long(view: QueueView, /, *, limit: int = 100) -> BatchDecision:
    """Rejects prompts over ``limit`` tokens, runs the rest like toy_fcfs."""
    bad = np.flatnonzero(view.input_tokens > limit)
    base = toy_fcfs(view)
    run = base.run[~np.isin(base.run, bad)]
    return BatchDecision(run=run, reject=bad, reject_reason=("too_long",) * bad.shape[0])
