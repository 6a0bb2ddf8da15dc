"""Certified lower bounds on the optimal total JCT at 100 and 1,000 requests (issue 20).

Run by hand: ``python benchmarks/bench_iteration_bounds.py [--sizes 100 1000] [--instances 3]
[--lp-time-limit 60]``. For each size it draws random problems
(:func:`schedlab.solvers.random_problem`, seed 0) and prints, per instance:

- :func:`solve_lagrangian`: the best list schedule (FCFS, SRPT or Lagrangian-guided) and the
  gap the bound certifies for it (the baseline), the best schedule after the local search over
  priority orders (:func:`schedlab.solvers.local_search`, with what is left of the time limit)
  and its certified gap, the Lagrangian bound, the subgradient iterations, how they stopped,
  the wall time of the bound and of the whole call;
- the baselines measured in the same run: the LP relaxation (:func:`lp_bound`, HiGHS, within
  ``--lp-time-limit`` seconds; when it gives no bound, why: ``time limit`` or ``too large``,
  above its two million variables) and the trivial bound (``sum o_j``), each as the gap it
  certifies for the same schedule.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from schedlab.solvers import random_problem, solve_lagrangian
from schedlab.solvers.budget import Budget
from schedlab.solvers.iteration_bounds import lp_bound_within


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--instances", type=int, default=3)
    ap.add_argument("--lp-time-limit", type=float, default=60.0)
    ap.add_argument("--time-limit", type=float, default=60.0)
    args = ap.parse_args()
    print(f"{'n':>5} {'i':>2} {'listed':>9} {'gap%':>6} {'searched':>9} {'gap%':>6} "
          f"{'bound':>9} {'iters':>6} {'stopped':>10} {'bound_s':>8} {'call_s':>7} | "
          f"{'lp_gap%':>10} {'lp_s':>6} | {'triv_gap%':>9}")
    for n in args.sizes:
        rng = np.random.default_rng(0)
        for i in range(args.instances):
            p = random_problem(n, rng)
            r = solve_lagrangian(p, time_limit_s=args.time_limit)
            t0 = time.perf_counter()
            lp, how = lp_bound_within(p, int(r.stats["list_schedule_objective"]),
                                      Budget(args.lp_time_limit))
            lp_s = time.perf_counter() - t0
            lp_gap = how.split(":")[0] if lp is None else f"{100 * (1 - lp / r.objective):.2f}"
            listed = r.stats["guided_objective"]
            print(f"{n:>5} {i:>2} {listed:>9.0f} {100 * (1 - r.bound / listed):>6.2f} "
                  f"{r.objective:>9.0f} {100 * r.gap:>6.2f} {r.bound:>9.0f} "
                  f"{r.stats['iterations']:>6} {r.stats['stopped']:>10} "
                  f"{r.stats['bound_wall_s']:>8.2f} {r.wall_s:>7.1f} | {lp_gap:>10} {lp_s:>6.1f} | "
                  f"{100 * (1 - p.trivial_bound() / r.objective):>9.1f}", flush=True)


if __name__ == "__main__":
    main()
