"""The graph-building speed figure of issue 18 (run by hand, not a test).

    python benchmarks/bench_anns_graph.py [--n 32000] [--degree 32]

``--n`` SIFT-like 128-d descriptors of the bundled photographs
(:func:`schedlab.datasets.vectors.image_descriptors`), then the proximity graph
(:func:`schedlab.datasets.vector_graph.build_graph`: exact neighbours blockwise, robust pruning,
reverse edges, connectivity), in one process. The baseline measured in the same run is the exact
k-nearest-neighbour step alone (one matrix product a block), the floor of this construction.
Also prints recall@10 of a plain beam search on 200 held-out queries at three beam widths.
Target: the graph for 32,000 vectors under 60 s on 2 cores.
"""

from __future__ import annotations

import argparse
import heapq
import time

import numpy as np


def _beam(g, x, q, width, k):
    pool = [(float(((x[g.entry] - q) ** 2).sum()), g.entry)]
    seen, done = {g.entry}, set()
    while True:
        best = next(((d, v) for d, v in sorted(pool) if v not in done), None)
        if best is None:
            return [v for _, v in sorted(pool)[:k]]
        done.add(best[1])
        for u in g.neighbours(best[1]).tolist():
            if u not in seen:
                seen.add(u)
                pool.append((float(((x[u] - q) ** 2).sum()), u))
        pool = heapq.nsmallest(width, pool)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32_000)
    ap.add_argument("--degree", type=int, default=32)
    a = ap.parse_args()

    from schedlab.datasets.vector_graph import build_graph
    from schedlab.datasets.vectors import exact_knn, image_descriptors

    t = time.perf_counter()
    v = image_descriptors(a.n, 1_000, seed=0)
    print(f"{a.n:,} descriptors: {time.perf_counter() - t:.1f} s")
    t = time.perf_counter()
    exact_knn(v.base, v.base, 2 * a.degree, exclude_self=True)
    base = time.perf_counter() - t
    print(f"baseline: exact {2 * a.degree}-NN of every vector: {base:.1f} s")
    t = time.perf_counter()
    g = build_graph(v.base, degree=a.degree)
    wall = time.perf_counter() - t
    print(f"graph (R={a.degree}, alpha={g.alpha}): {wall:.1f} s ({wall / base:.1f}x the "
          f"baseline){'  < 60 s' if wall < 60 else ''}; mean out-degree "
          f"{g.out_degree.mean():.1f}, all reachable from the medoid: {bool(g.reachable().all())}")
    truth = v.ground_truth(10)
    for width in (32, 64, 128):
        hits = [len(set(_beam(g, v.base, q, width, 10)) & set(t.tolist()))
                for q, t in zip(v.queries[:200], truth[:200], strict=True)]
        print(f"beam width {width}: recall@10 {np.mean(hits) / 10:.3f}")


if __name__ == "__main__":
    main()
