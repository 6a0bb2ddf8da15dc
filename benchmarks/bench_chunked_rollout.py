"""Solve times and gaps of the divided-rollout optimum (Seer's chunked, migratable schedule with
KV capacity, rollout digest §1.9(b)), how far the greedy and the cheap bound lie from it, and
what dividing gains over whole requests.

Run by hand: ``python benchmarks/bench_chunked_rollout.py [--sizes 8x2 12x2 12x3 16x2 24x3
32x4] [--problems 3] [--time-limit 10] [--workers 2] [--batch 2] [--kv-slack 1.2]
[--chunk 1024] [--slot-steps 256] [--migration 0] [--whole]``. For each ``n x N`` (requests x
instances) it solves random batches (:func:`schedlab.solvers.random_chunked_rollout_problem`,
seeds 0, 1, ...) and prints the mean number of chunks, how many were proven optimal, the median
and worst wall time and gap, the greedy's mean excess over CP-SAT's answer, the cheap bound's
mean shortfall below CP-SAT's bound and the model's size; with ``--whole`` also the same batches
undivided (``chunk_tokens=None``): how many of those were proven and the mean ratio of their
makespan to the divided one (above 1: dividing helps).
"""

from __future__ import annotations

import argparse

import numpy as np

from schedlab.solvers import (
    chunked_lower_bound,
    random_chunked_rollout_problem,
    solve_chunked_rollout_cpsat,
    verify_chunked_rollout,
)


def _size(text: str) -> tuple[int, int]:
    n, _, N = text.partition("x")
    return int(n), int(N)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    ap.add_argument("--sizes", type=_size, nargs="+",
                    default=[_size(s) for s in ("8x2", "12x2", "12x3", "16x2", "24x3", "32x4")])
    ap.add_argument("--problems", type=int, default=3)
    ap.add_argument("--time-limit", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2, help="max_batch_size B")
    ap.add_argument("--kv-slack", type=float, default=1.2,
                    help="KV capacity over the largest request's prompt + output")
    ap.add_argument("--chunk", type=int, default=1024, help="chunk_tokens")
    ap.add_argument("--slot-steps", type=int, default=256)
    ap.add_argument("--migration", type=int, default=0, help="migration_slots")
    ap.add_argument("--whole", action="store_true", help="also solve the undivided batches")
    args = ap.parse_args()
    print(f"B={args.batch} kv_slack={args.kv_slack} chunk={args.chunk} "
          f"slot_steps={args.slot_steps} migration={args.migration} "
          f"limit={args.time_limit}s workers={args.workers}")
    head = (f"{'n':>4} {'N':>3} {'chunks':>6} {'optimal':>8} {'med_s':>6} {'max_s':>6} "
            f"{'med_gap%':>8} {'max_gap%':>8} {'greedy+%':>8} {'cheap-%':>7} {'vars':>6}")
    if args.whole:
        head += f" {'whole_opt':>9} {'whole/div':>9}"
    print(head)
    for n, N in args.sizes:
        walls, gaps, greedy, cheap, chunks, ratio = [], [], [], [], [], []
        n_opt = whole_opt = nvars = 0
        for seed in range(args.problems):
            kw = dict(seed=seed, max_batch_size=args.batch, kv_slack=args.kv_slack,
                      slot_steps=args.slot_steps, migration_slots=args.migration)
            p = random_chunked_rollout_problem(n, N, chunk_tokens=args.chunk,
                                               **kw)  # type: ignore[arg-type]
            r = solve_chunked_rollout_cpsat(p, time_limit_s=args.time_limit,
                                            num_workers=args.workers)
            assert verify_chunked_rollout(p, r.schedule).valid
            walls.append(r.wall_s)
            gaps.append(r.gap)
            n_opt += r.status == "OPTIMAL"
            greedy.append(r.stats["hint_makespan_s"] / r.objective - 1)
            cheap.append(max(0.0, 1 - chunked_lower_bound(p) / r.bound))
            chunks.append(p.n_chunks)
            nvars = max(nvars, r.stats["n_variables"])
            if args.whole:
                w = random_chunked_rollout_problem(n, N, chunk_tokens=None,
                                                   **kw)  # type: ignore[arg-type]
                rw = solve_chunked_rollout_cpsat(w, time_limit_s=args.time_limit,
                                                 num_workers=args.workers)
                whole_opt += rw.status == "OPTIMAL"
                ratio.append(rw.objective / r.objective)
        line = (f"{n:>4} {N:>3} {np.mean(chunks):>6.1f} {n_opt:>4}/{args.problems:<3} "
                f"{np.median(walls):>6.2f} {max(walls):>6.2f} {100 * np.median(gaps):>8.2f} "
                f"{100 * max(gaps):>8.2f} {100 * np.mean(greedy):>8.2f} "
                f"{100 * np.mean(cheap):>7.2f} {nvars:>6}")
        if args.whole:
            line += f" {whole_opt:>5}/{args.problems:<3} {np.mean(ratio):>9.3f}"
        print(line, flush=True)


if __name__ == "__main__":
    main()
