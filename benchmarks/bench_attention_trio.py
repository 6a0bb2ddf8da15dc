"""Speed of the memory-bound attention trio's pieces (issue 17: MoBA, Lamina, RetroInfer; run
by hand, not a test), each against a baseline measured in the same run.

    python benchmarks/bench_attention_trio.py [--repeat 5] [--tokens 131072] [--queries 256]

- *Cost model*: :func:`~schedlab.costmodel.block_sparse.moba_prefill_time_s` and the dense time
  over 100,000 context lengths in one vectorised call, against one call per length.
- *Pair count*: :func:`~schedlab.costmodel.block_sparse.moba_attended_pairs` in closed form
  against counting the contract's attended-token mask
  (:func:`~schedlab.contract.block_attention.attended_tokens`) at 16K tokens.
- *Gate and optimum*: MoBA's gate (:func:`~schedlab.policies.moba.moba_gate`) on ``--queries``
  queries of a ``--tokens``-token topical head (blocks of 4096, top-12), against the
  attention-mass optimum (:func:`~schedlab.solvers.solve_block_selection`) on the same view.
- *Device mix* (Lamina): :func:`~schedlab.solvers.solve_device_mix` on LLaMA3-70B at 8K tokens
  (every mix at its largest feasible batch) against pricing every batch of every mix.
- *GPU cache* (RetroInfer): :func:`~schedlab.sim.replay_cache` (LRU) and Belady's optimum
  (:func:`~schedlab.solvers.solve_cache_replacement`) on 2,000 steps of 150 retrieved clusters
  out of 8,192 (RetroInfer at 128K tokens), per step.

Medians of ``--repeat`` runs; ratios are baseline / measured.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np

from schedlab.contract.block_attention import BlockView, attended_tokens
from schedlab.costmodel import get_accelerator, get_model
from schedlab.costmodel.attention_offload import (
    DeviceMix,
    DeviceMixProblem,
    deployment,
    evaluate_mix,
)
from schedlab.costmodel.block_sparse import (
    full_prefill_time_s,
    moba_attended_pairs,
    moba_prefill_time_s,
)
from schedlab.datasets import topic_attention_head
from schedlab.policies.moba import moba_gate
from schedlab.sim import replay_cache
from schedlab.solvers import (
    mixes,
    solve_block_selection,
    solve_cache_replacement,
    solve_device_mix,
)


def _median(fn: Callable[[], object], repeat: int) -> float:
    walls = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        walls.append(time.perf_counter() - t)
    return statistics.median(walls)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--tokens", type=int, default=131072)
    ap.add_argument("--queries", type=int, default=256)
    args = ap.parse_args()
    spec, gpu = get_model("llama-3-8b"), get_accelerator("h800")
    n = np.linspace(8192, 10 * 2 ** 20, 100_000).astype(np.int64)

    def vectorised() -> None:
        full_prefill_time_s(spec, gpu, n, tp=32)
        moba_prefill_time_s(spec, gpu, n, block_tokens=4096, top_k=12, tp=32)

    def per_point() -> None:
        for x in n[:2000].tolist():
            full_prefill_time_s(spec, gpu, x, tp=32)
            moba_prefill_time_s(spec, gpu, x, block_tokens=4096, top_k=12, tp=32)

    vec = _median(vectorised, args.repeat) / n.shape[0]
    loop = _median(per_point, max(1, args.repeat // 2)) / 2000
    print(f"cost model: {vec * 1e9:.0f} ns per length vectorised, {loop * 1e6:.1f} us per "
          f"call one at a time ({loop / vec:.0f}x)")

    m = 16384
    v = BlockView.from_arrays(queries=np.zeros((m, 1)), keys=np.zeros((m, 1)), block_tokens=512)
    sel = moba_gate(v, top_k=3)
    closed = _median(lambda: moba_attended_pairs(m, 512, 3), args.repeat)
    mask = _median(lambda: attended_tokens(v, sel).sum(), max(1, args.repeat // 2))
    print(f"pair count at {m} tokens: closed form {closed * 1e6:.1f} us, mask "
          f"{mask * 1e3:.0f} ms ({mask / closed:,.0f}x)")

    h = topic_attention_head(args.tokens, n_queries=args.queries, seed=0)
    view = BlockView(queries=h.queries, positions=h.positions, keys=h.keys, block_tokens=4096)
    gate = _median(lambda: moba_gate(view, top_k=12), args.repeat)
    best = _median(lambda: solve_block_selection(view, top_k=12), max(1, args.repeat // 2))
    print(f"{args.queries} queries over {args.tokens:,} tokens (blocks of 4096, top-12): gate "
          f"{gate * 1e3:.2f} ms ({gate / args.queries * 1e6:.1f} us a query), optimum "
          f"{best * 1e3:.0f} ms ({best / gate:.0f}x the gate)")

    problem = DeviceMixProblem(model="llama-3-70b", context_tokens=8192, tbt_slo_s=0.06)
    solve_device_mix(problem)  # warm the iteration models' cache

    def every_batch() -> None:
        for a, b, r in mixes(problem):
            top = deployment(problem, a, b, r).max_batch(problem.context_tokens)
            for batch in range(1, top + 1):
                evaluate_mix(problem, DeviceMix(a, b, r, batch))

    closed = _median(lambda: solve_device_mix(problem), args.repeat)
    brute = _median(every_batch, 1)
    print(f"device mix (LLaMA3-70B, 8K, 60 ms): optimum {closed * 1e3:.0f} ms over "
          f"{len(mixes(problem))} mixes, every batch priced {brute:.1f} s ({brute / closed:.0f}x)")

    rng = np.random.default_rng(0)
    hot = rng.permutation(8192)
    trace = []
    window = hot[:150]
    for _ in range(2000):  # a drifting working set: a few clusters change each step
        swap = rng.integers(0, 150, 8)
        window = window.copy()
        window[swap] = hot[rng.integers(0, 8192, 8)]
        trace.append(np.unique(window))
    lru = _median(lambda: replay_cache(trace, 450, "lru"), max(1, args.repeat // 2))
    opt = _median(lambda: solve_cache_replacement(trace, 450), max(1, args.repeat // 2))
    print(f"GPU cache, 2,000 steps of ~150 clusters, capacity 450: LRU replay "
          f"{lru / 2000 * 1e6:.0f} us a step (hit rate {replay_cache(trace, 450).hit_rate:.3f}), "
          f"Belady {opt / 2000 * 1e6:.0f} us a step (hit rate "
          f"{solve_cache_replacement(trace, 450).stats['hit_rate']:.3f})")


if __name__ == "__main__":
    main()
