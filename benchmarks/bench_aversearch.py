"""The search-and-pricing speed figures of issue 18 (run by hand, not a test).

    python benchmarks/bench_aversearch.py [--n 32000] [--queries 1000] [--width 64]

On ``--n`` SIFT-like descriptors and their graph (built first, not timed here: see
``bench_anns_graph.py``), in one process:

- tracing ``--queries`` sequential beam searches (target: 1,000 under 10 s on 2 cores), against
  the baseline measured in the same run: the exact answer of the same queries by brute force
  (one matrix product per block);
- pricing one fork-join trace under the costs of 1..64 threads at once
  (:func:`schedlab.sim.anns.search_latencies_s`) and the work-span bound of one sequential trace
  for 1..64 threads (target: milliseconds);
- AverSearch's asynchronous search, which prices itself as it runs, per query at 4, 16 and 64
  threads, against the sequential trace of the same query.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=32_000)
    ap.add_argument("--queries", type=int, default=1_000)
    ap.add_argument("--width", type=int, default=64)
    a = ap.parse_args()

    from schedlab.costmodel.cpu import search_costs
    from schedlab.datasets import build_graph, exact_knn, image_descriptors
    from schedlab.policies.anns import beam_search, fork_join_search
    from schedlab.policies.aversearch import async_search
    from schedlab.sim.anns import search_latencies_s, sequential_bound_s

    v = image_descriptors(a.n, a.queries, seed=0)
    g = build_graph(v.base, degree=32)
    qs = v.queries[: a.queries]
    t = time.perf_counter()
    exact_knn(v.base, qs, 10)
    base = time.perf_counter() - t
    print(f"baseline: brute-force 10-NN of {len(qs):,} queries over {a.n:,}: {base:.2f} s")
    t = time.perf_counter()
    traces = [beam_search(g, v.base, q, beam_width=a.width) for q in qs]
    wall = time.perf_counter() - t
    print(f"{len(qs):,} sequential searches traced (L={a.width}): {wall:.2f} s "
          f"({wall / base:.1f}x the baseline; {np.mean([tr.work for tr in traces]):.0f} "
          f"distances each){'  < 10 s' if wall < 10 else ''}")

    threads = range(1, 65)
    costs = [search_costs("epyc-7763", dim=v.dim, degree=32, threads=t) for t in threads]
    fj = fork_join_search(g, v.base, qs[0], threads=16, beam_width=a.width)
    reps = 200
    t = time.perf_counter()
    for _ in range(reps):
        search_latencies_s(fj, costs, beam_width=a.width)
    per = (time.perf_counter() - t) / reps
    print(f"pricing one fork-join trace ({fj.rounds} rounds x 16 workers) for T = 1..64: "
          f"{per * 1e3:.3f} ms")
    t = time.perf_counter()
    for tt, c in zip(threads, costs, strict=True):
        sequential_bound_s(traces[0], c, tt)
    print(f"work-span bound of one sequential trace ({traces[0].work} distances) for "
          f"T = 1..64: {(time.perf_counter() - t) * 1e3:.1f} ms")

    n = min(100, len(qs))
    t = time.perf_counter()
    for q in qs[:n]:
        beam_search(g, v.base, q, beam_width=a.width)
    seq = (time.perf_counter() - t) / n
    for tt in (4, 16, 64):
        c = search_costs("epyc-7763", dim=v.dim, degree=32, threads=tt)
        t = time.perf_counter()
        for q in qs[:n]:
            async_search(g, v.base, q, threads=tt, costs=c, beam_width=a.width)
        per = (time.perf_counter() - t) / n
        print(f"asynchronous search at {tt} threads: {per * 1e3:.2f} ms per query "
              f"({per / seq:.1f}x the sequential trace's {seq * 1e3:.2f} ms)")


if __name__ == "__main__":
    main()
