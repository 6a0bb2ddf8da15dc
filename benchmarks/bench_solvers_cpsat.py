"""Solve times of the CP-SAT iteration-scheduling optimum and quality of the bounds.

Run by hand: ``python benchmarks/bench_solvers_cpsat.py [--sizes 8 12 16 20] [--instances 10]
[--time-limit 10] [--workers 2]``. For each size it solves random problems
(:func:`schedlab.solvers.random_problem`, seed 0) and prints the median and p90 wall time, how
many solves were proven optimal, and ratios against baselines measured in the same run:

- the same CP-SAT model without the list-schedule hint (``hint=False``): time ratio;
- the list schedules (FCFS, SRPT): their mean excess over the optimum;
- the LP relaxation (:func:`lp_bound`) and the trivial bound: their mean shortfall.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from schedlab.solvers import list_schedule, lp_bound, random_problem, solve_cpsat, verify


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 20])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    print(f"{'n':>3} {'median_s':>9} {'p90_s':>7} {'optimal':>8} {'nohint_x':>9} "
          f"{'fcfs+%':>7} {'srpt+%':>7} {'lp-%':>6} {'triv-%':>7} {'lp_ms':>6}")
    for n in args.sizes:
        rng = np.random.default_rng(0)
        t_hint, t_nohint, n_opt, fcfs, srpt, lp, triv, lp_ms = [], [], 0, [], [], [], [], []
        for _ in range(args.instances):
            p = random_problem(n, rng)
            r = solve_cpsat(p, time_limit_s=args.time_limit, num_workers=args.workers)
            r0 = solve_cpsat(p, time_limit_s=args.time_limit, num_workers=args.workers, hint=False)
            t_hint.append(r.wall_s)
            t_nohint.append(r0.wall_s)
            n_opt += r.status == "OPTIMAL"
            best = min(r.objective, r0.objective)
            fcfs.append(verify(p, list_schedule(p, "fcfs")).objective / best - 1)
            srpt.append(verify(p, list_schedule(p, "srpt")).objective / best - 1)
            t0 = time.perf_counter()
            lp.append(1 - lp_bound(p) / best)
            lp_ms.append((time.perf_counter() - t0) * 1e3)
            triv.append(1 - p.trivial_bound() / best)
        th = np.asarray(t_hint)
        print(f"{n:>3} {np.median(th):>9.2f} {np.percentile(th, 90):>7.2f} "
              f"{n_opt:>4}/{args.instances:<3} {np.median(t_nohint) / np.median(th):>9.2f} "
              f"{100 * np.mean(fcfs):>7.1f} {100 * np.mean(srpt):>7.1f} {100 * np.mean(lp):>6.1f} "
              f"{100 * np.mean(triv):>7.1f} {np.median(lp_ms):>6.1f}")


if __name__ == "__main__":
    main()
