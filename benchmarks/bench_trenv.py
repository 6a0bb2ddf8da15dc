"""Speed of TrEnv's serverless platform (issue 19; run by hand, not a test).

    python benchmarks/bench_trenv.py [--invocations 1000000] [--functions 1000]
                                     [--policies trenv reap faasd]

- *Scale*: each policy serves an Azure-like bursty trace
  (:func:`~schedlab.datasets.serverless.bursty_trace`, ``--invocations`` over ``--functions``
  functions in an hour, 64 GB cap, TrEnv with 70 prestarted sandboxes) in its own process, as a
  user would run it: wall time of the whole process (imports, trace, simulation, ``verify``),
  of the simulation alone, microseconds per invocation, and the process's peak RSS; the same at
  a tenth of the invocations shows memory growing linearly. The issue's target is under 60 s
  per process for 1,000,000 invocations over 1,000 functions.
- *Floor*: the same trace through a bare event loop in the same process (one heap push and pop
  per invocation, nothing decided): the simulator's cost over the least an event-driven replay
  in Python pays.
- *Optimum*: :func:`~schedlab.solvers.solve_reuse` (min-cost flow) on 100, 200 and 400
  invocations of the trace, against :func:`~schedlab.solvers.assign_sandboxes` (greedy reuse).
"""

from __future__ import annotations

import argparse
import heapq
import json
import resource
import subprocess
import sys
import time


def _one(policy: str, n: int, k: int) -> None:
    t0 = time.perf_counter()
    from schedlab.datasets.serverless import bursty_functions, bursty_trace
    from schedlab.sim import simulate_serverless

    trace = bursty_trace(n, k, duration_s=3600.0, seed=0)
    fns = bursty_functions(k)
    t1 = time.perf_counter()
    run = simulate_serverless(trace, fns, policy, cap_mb=65536.0,
                              prestart=70 if policy == "trenv" else 0)
    t2 = time.perf_counter()
    run.verify()
    heap: list[tuple[float, int]] = []
    t3 = time.perf_counter()
    for i, (t, f) in enumerate(zip(trace.arrival_s.tolist(), trace.function.tolist(),
                                   strict=True)):
        while heap and heap[0][0] <= t:
            heapq.heappop(heap)
        heapq.heappush(heap, (t + 0.1 * (f % 7 + 1), i))
    floor = time.perf_counter() - t3
    print(json.dumps({"policy": policy, "invocations": n, "process_s": time.perf_counter() - t0,
                      "simulate_s": t2 - t1, "floor_s": floor, "served": run.served,
                      "rejected": run.rejected, "creations": run.creations,
                      "repurposes": run.repurposes,
                      "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def _child(policy: str, n: int, k: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", policy, str(n), str(k)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--invocations", type=int, default=1_000_000)
    ap.add_argument("--functions", type=int, default=1000)
    ap.add_argument("--policies", nargs="+", default=["trenv", "reap", "faasd"])
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        _one(a.child[0], int(a.child[1]), int(a.child[2]))
        return
    print(f"{'policy':8} {'invocations':>11} {'process s':>9} {'sim s':>7} {'us/inv':>7} "
          f"{'x floor':>7} {'RSS MB':>7} {'rejected':>8} {'creations':>9} {'repurposes':>10}")
    for policy in a.policies:
        for n in (a.invocations // 10, a.invocations):
            r = _child(policy, n, a.functions)
            print(f"{policy:8} {n:>11,} {r['process_s']:9.1f} {r['simulate_s']:7.1f} "
                  f"{r['simulate_s'] / n * 1e6:7.1f} {r['simulate_s'] / r['floor_s']:7.1f} "
                  f"{r['rss_mb']:7.0f} {r['rejected']:8,} {r['creations']:9,} "
                  f"{r['repurposes']:10,}", flush=True)
    from schedlab.contract.serverless import Invocations
    from schedlab.datasets.serverless import bursty_trace, trenv_functions
    from schedlab.solvers import assign_sandboxes, solve_reuse

    fns = trenv_functions()
    full = bursty_trace(20_000, len(fns), duration_s=3600.0, seed=0)
    print(f"\n{'window':>6} {'min-cost flow s':>15} {'greedy s':>9} {'ratio':>7} {'arcs':>7}")
    for m in (100, 200, 400):
        tr = Invocations(arrival_s=full.arrival_s[:m], function=full.function[:m],
                         n_functions=len(fns))
        t = time.perf_counter()
        r = solve_reuse(tr, fns, max_invocations=m)
        flow = time.perf_counter() - t
        t = time.perf_counter()
        assign_sandboxes(tr.arrival_s, tr.arrival_s + fns.exec_s[tr.function])
        greedy = time.perf_counter() - t
        print(f"{m:>6} {flow:15.3f} {greedy:9.5f} {flow / greedy:7.0f} {r.stats['arcs']:>7}")


if __name__ == "__main__":
    main()
