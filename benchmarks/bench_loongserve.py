"""LoongServe's speed figures (issue 16; run by hand, not a test).

    python benchmarks/bench_loongserve.py [--runs 5] [--requests 1000] [--instances 8]

- *Batching DP* (:func:`schedlab.policies.loongserve.batch_prefills`, it runs at every
  scheduling round): ``--requests`` waiting requests of ShareGPT-like lengths (10 to 3,000
  tokens) on ``--instances`` instances with 100K to 410K free slots, the exact DP; best and
  median of ``--runs``; then the sizes the target is met at. The baseline measured in the same
  run is the DP as shipped (``pruned=True``, the authors' loop in Python) on 50 requests.
- *Replay* (``--replay``): 10,000 Mixed requests (:func:`schedlab.datasets.long_context_workload`)
  on four TP2 elastic instances (:func:`schedlab.sim.simulate_elastic`) as whole processes at
  0.1 / 0.2 / 0.3 / 0.5 requests/s (the cluster keeps up to about 0.2), median of ``--runs``;
  target under 10 s a process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np


def _time(fn, runs: int) -> tuple[float, float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--instances", type=int, default=8)
    ap.add_argument("--replay", action="store_true", help="also time whole replay processes")
    a = ap.parse_args()

    from schedlab.costmodel import iteration_cost
    from schedlab.costmodel.elastic import ElasticPrefillCost, fit_prefill_model
    from schedlab.policies.loongserve import batch_prefills

    t = time.perf_counter()
    fit = fit_prefill_model(ElasticPrefillCost(cost=iteration_cost("lwm-text-1m", "a800", tp=2)),
                            ks=tuple(range(1, a.instances + 1)))
    print(f"fit of the analytic model, k = 1..{a.instances}: {time.perf_counter() - t:.2f} s; "
          f"mean relative error {fit.mean_rel_error.round(3).tolist()}")
    model = fit.model
    rng = np.random.default_rng(0)
    free = rng.integers(100_000, 410_000, a.instances)
    small = rng.integers(10, 3_000, 50)
    best, med = _time(lambda: batch_prefills(small, free, model.time_s, pruned=True), a.runs)
    print(f"baseline: shipped (pruned) DP, 50 requests: {best * 1e3:.1f} ms (median "
          f"{med * 1e3:.1f})")
    for n in (50, 100, 200, 400, a.requests):
        lengths = rng.integers(10, 3_000, n)
        best, med = _time(lambda lengths=lengths: batch_prefills(lengths, free, model.time_s),
                          a.runs)
        print(f"exact DP, {n:5d} requests x {a.instances} instances: {best * 1e3:7.1f} ms "
              f"(median {med * 1e3:.1f}){'  < 50 ms' if best < 0.05 else ''}")


    if a.replay:
        for rate in (0.1, 0.2, 0.3, 0.5):
            walls = []
            for _ in range(a.runs):
                t = time.perf_counter()
                subprocess.run([sys.executable, "-c", REPLAY, str(rate)], check=True)
                walls.append(time.perf_counter() - t)
            print(f"replay, 10,000 Mixed requests at {rate} req/s: median "
                  f"{statistics.median(walls):.2f} s a process (best {min(walls):.2f})"
                  f"{'  < 10 s' if statistics.median(walls) < 10 else ''}")


REPLAY = """
import sys
from schedlab.datasets import long_context_workload
from schedlab.sim import ElasticCluster, simulate_elastic
w = long_context_workload("mixed", 10_000, rate=float(sys.argv[1]), seed=0)
simulate_elastic(w, ElasticCluster(n_instances=4, kv_capacity_tokens=210_000))
"""


if __name__ == "__main__":
    main()
