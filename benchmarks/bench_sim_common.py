"""Shared pieces of the simulator benchmarks: the Vidur-comparison workload and a minimal
vectorised FCFS (to separate the simulator's own overhead from a policy's)."""

from __future__ import annotations

import numpy as np

from schedlab import Workload
from schedlab.policies.base import BatchDecision, QueueView


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
