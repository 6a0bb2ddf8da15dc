"""Shared pieces of the simulator benchmarks: the Vidur-comparison workload, a user's FCFS written
as a plan (the README's ``my_fcfs``), and a minimal FCFS returning full decisions (to separate
the simulator's own overhead from a policy's)."""

from __future__ import annotations

import numpy as np

from schedlab import Workload
from schedlab.contract import BatchDecision, Plan, QueueView, started


def vidur_workload(n: int = 10_000, rate: float = 4.0, seed: int = 0) -> Workload:
    """Total length uniform in 256..2048 split 4:1 prompt:output, Poisson arrivals at ``rate``."""
    rng = np.random.default_rng(seed)
    total = rng.integers(256, 2049, n)
    prompt = (total * 4) // 5
    return Workload(
        arrival_s=np.cumsum(rng.exponential(1.0 / rate, n)),
        input_tokens=prompt,
        output_tokens=total - prompt,
        name=f"uniform-256-2048-poisson-{rate:g}",
    )


def user_fcfs(view: QueueView, /) -> Plan:
    """FCFS as a user writes it from the rule, in numpy (the README's ``my_fcfs``): admitted
    requests first, then waiting ones, by arrival; reserve prompt plus predicted output; static
    while the order is arrival order."""
    begun = started(view)
    by_arrival = np.lexsort((view.request_id, view.arrival_s))
    order = np.concatenate((by_arrival[begun[by_arrival]], by_arrival[~begun[by_arrival]]))
    return Plan(order=order, evictable=True,
                footprint_tokens="predicted",
                static=bool(np.array_equal(order, by_arrival)))


def minimal_fcfs(view: QueueView, /) -> BatchDecision:
    """Arrival order, admit the longest prefix whose remaining footprints (prompt plus predicted
    output, minus KV held) fit the free KV, the batch size and the token budget; no preemption
    (with oracle predictions nothing is ever preempted). About the cheapest sensible policy."""
    n = view.n
    rem = view.input_tokens - view.prefilled_tokens
    step = np.where(rem > 0, rem, 1)
    # KV each request still needs to finish (its predicted footprint minus what it holds)
    need = view.input_tokens + view.output_tokens_pred - view.kv_tokens
    order = np.argsort(view.arrival_s, kind="stable")
    ok = (
        (np.arange(1, n + 1) <= view.max_batch_size)
        & (np.cumsum(step[order]) <= view.max_batch_tokens)
        & (np.cumsum(need[order]) <= view.kv_free_tokens)
    )
    k = n if ok.all() else int(np.argmin(ok))
    return BatchDecision(run=order[:k])
