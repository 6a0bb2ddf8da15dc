"""Speed of MoBA's pieces (issue 17; run by hand, not a test), each against a baseline measured
in the same run.

    python benchmarks/bench_block_attention.py [--repeat 5] [--tokens 131072] [--queries 256]

- *Cost model*: :func:`~schedlab.costmodel.block_sparse.moba_prefill_time_s` and the dense time
  over 100,000 context lengths in one vectorised call, against one call per length.
- *Pair count*: :func:`~schedlab.costmodel.block_sparse.moba_attended_pairs` in closed form
  against counting the contract's attended-token mask
  (:func:`~schedlab.contract.block_attention.attended_tokens`) at 16K tokens.
- *Gate and optimum*: MoBA's gate (:func:`~schedlab.policies.moba.moba_gate`) on ``--queries``
  queries of a ``--tokens``-token topical head (blocks of 4096, top-12), against the
  attention-mass optimum (:func:`~schedlab.solvers.solve_block_selection`) on the same view.

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
from schedlab.costmodel.block_sparse import (
    full_prefill_time_s,
    moba_attended_pairs,
    moba_prefill_time_s,
)
from schedlab.datasets import topic_attention_head
from schedlab.policies.moba import moba_gate
from schedlab.solvers import solve_block_selection


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


if __name__ == "__main__":
    main()
