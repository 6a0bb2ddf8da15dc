"""Solve times of the CP-SAT iteration-scheduling optimum and quality of the bounds.

Run by hand: ``python benchmarks/bench_solvers_cpsat.py [--sizes 8 12 16 20] [--instances 10]
[--time-limit 60] [--workers 2] [--no-baseline]``. For each size it solves random problems
(:func:`schedlab.solvers.random_problem`, seed 0) with :func:`solve_cpsat` and prints how many
were proven optimal, the median and p90 wall time, the mean final gap, and against baselines
measured in the same run:

- the plain run-indexed CP-SAT model, ``solve_cpsat(..., lagrangian=False)`` (no Lagrangian
  bound, no reduced-cost fixing, no decision models): its proofs, median time and gap
  (``--no-baseline`` skips it);
- the list schedules (FCFS, SRPT) and the incumbent CP-SAT starts from (the best list schedule
  after :func:`schedlab.solvers.local_search`): their mean excess over the best solution found;
- the Lagrangian bound, the LP relaxation (:func:`lp_bound`) and the trivial bound: their mean
  shortfall below the best solution found (0 where it meets a proven optimum).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from schedlab.solvers import (
    lagrangian_bound,
    list_schedule,
    lp_bound,
    random_problem,
    solve_cpsat,
    verify,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8, 12, 16, 20])
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-baseline", action="store_true")
    args = ap.parse_args()
    print(f"{'n':>3} {'optimal':>8} {'median_s':>9} {'p90_s':>7} {'gap%':>5} | "
          f"{'plain_opt':>9} {'plain_med_s':>11} {'plain_gap%':>10} | {'fcfs+%':>7} "
          f"{'srpt+%':>7} {'inc+%':>6} | {'lagr-%':>6} {'lp-%':>6} {'triv-%':>7} {'lagr_ms':>7}")
    for n in args.sizes:
        rng = np.random.default_rng(0)
        t_new, t_plain, opt_new, opt_plain = [], [], 0, 0
        gap_new, gap_plain, fcfs, srpt, inc, lagr, lp, triv, lagr_ms = ([] for _ in range(9))
        for _ in range(args.instances):
            p = random_problem(n, rng)
            r = solve_cpsat(p, time_limit_s=args.time_limit, num_workers=args.workers)
            t_new.append(r.wall_s)
            opt_new += r.status == "OPTIMAL"
            gap_new.append(r.gap)
            best = r.objective
            if not args.no_baseline:
                r0 = solve_cpsat(p, time_limit_s=args.time_limit, num_workers=args.workers,
                                 lagrangian=False)
                t_plain.append(r0.wall_s)
                opt_plain += r0.status == "OPTIMAL"
                gap_plain.append(r0.gap)
                best = min(best, r0.objective)
            fcfs.append(verify(p, list_schedule(p, "fcfs")).objective / best - 1)
            srpt.append(verify(p, list_schedule(p, "srpt")).objective / best - 1)
            inc.append(r.stats["incumbent_objective"] / best - 1)
            t0 = time.perf_counter()
            lagr.append(1 - lagrangian_bound(p).bound / best)
            lagr_ms.append((time.perf_counter() - t0) * 1e3)
            lp.append(1 - lp_bound(p) / best)
            triv.append(1 - p.trivial_bound() / best)
        th = np.asarray(t_new)
        plain = ("-", "-", "-") if args.no_baseline else (
            f"{opt_plain}/{args.instances}", f"{np.median(t_plain):.2f}",
            f"{100 * np.mean(gap_plain):.2f}")
        print(f"{n:>3} {opt_new:>4}/{args.instances:<3} {np.median(th):>9.2f} "
              f"{np.percentile(th, 90):>7.2f} {100 * np.mean(gap_new):>5.2f} | "
              f"{plain[0]:>9} {plain[1]:>11} {plain[2]:>10} | {100 * np.mean(fcfs):>7.1f} "
              f"{100 * np.mean(srpt):>7.1f} {100 * np.mean(inc):>6.2f} | "
              f"{100 * np.mean(lagr):>6.2f} "
              f"{100 * np.mean(lp):>6.2f} {100 * np.mean(triv):>7.1f} "
              f"{np.median(lagr_ms):>7.1f}", flush=True)


if __name__ == "__main__":
    main()
