"""Solve times and gaps of the rollout-dispatch optimum (StreamRL skew-aware dispatch, rollout
digest §2.8), and how far LPT and the cheap bound lie from it.

Run by hand: ``python benchmarks/bench_rollout_dispatch.py [--sizes 20 50 200 1000]
[--instances-per-size 4 8 32] [--problems 3] [--time-limit 10] [--workers 2] [--batch 32]
[--groups-of G] [--atomic]``. For each (n samples, N instances) it solves random batches
(:func:`schedlab.solvers.random_rollout_dispatch_problem`, seeds 0, 1, ...) and prints how many
were proven optimal, the median and worst wall time and gap, LPT's mean excess over CP-SAT's
answer, and the cheap bound's mean shortfall below CP-SAT's bound.
"""

from __future__ import annotations

import argparse

import numpy as np

from schedlab.solvers import (
    dispatch_lower_bound,
    random_rollout_dispatch_problem,
    solve_rollout_dispatch_cpsat,
    verify_rollout_dispatch,
)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[20, 50, 200, 1000])
    ap.add_argument("--instances-per-size", type=int, nargs="+", default=[4, 8, 32],
                    dest="instances")
    ap.add_argument("--problems", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="max_batch_size B")
    ap.add_argument("--groups-of", type=int, default=None, help="samples per prompt")
    ap.add_argument("--atomic", action="store_true", help="dispatch whole groups")
    args = ap.parse_args()
    if args.groups_of is not None and any(n % args.groups_of for n in args.sizes):
        ap.error(f"every size must be a multiple of --groups-of {args.groups_of}")
    print(f"B={args.batch} groups_of={args.groups_of} atomic={args.atomic} "
          f"limit={args.time_limit}s workers={args.workers}")
    print(f"{'n':>5} {'N':>3} {'optimal':>8} {'med_s':>6} {'max_s':>6} {'med_gap%':>8} "
          f"{'max_gap%':>8} {'lpt+%':>6} {'cheap-%':>7} {'vars':>6}")
    for n in args.sizes:
        for N in args.instances:
            walls, gaps, lpt, cheap, n_opt, nvars = [], [], [], [], 0, 0
            for seed in range(args.problems):
                groups = None if args.groups_of is None else n // args.groups_of
                p = random_rollout_dispatch_problem(n, N, seed=seed, max_batch_size=args.batch,
                                                    groups=groups, group_atomic=args.atomic)
                r = solve_rollout_dispatch_cpsat(p, time_limit_s=args.time_limit,
                                                 num_workers=args.workers)
                assert verify_rollout_dispatch(p, r.schedule).valid
                walls.append(r.wall_s)
                gaps.append(r.gap)
                n_opt += r.status == "OPTIMAL"
                lpt.append(r.stats["hint_makespan_s"] / r.objective - 1)
                cheap.append(max(0.0, 1 - dispatch_lower_bound(p) / r.bound))
                nvars = r.stats["n_variables"]
            print(f"{n:>5} {N:>3} {n_opt:>4}/{args.problems:<3} {np.median(walls):>6.2f} "
                  f"{max(walls):>6.2f} {100 * np.median(gaps):>8.2f} {100 * max(gaps):>8.2f} "
                  f"{100 * np.mean(lpt):>6.2f} {100 * np.mean(cheap):>7.2f} {nvars:>6}",
                  flush=True)


if __name__ == "__main__":
    main()
