"""``schedlab gap``: optimality gap of a batching policy on random small serving instances.

Example (shell)::

    schedlab gap srpt --n 12 --instances 20 --seed 0 --time-limit 10 --json

For each of ``--instances`` random problems of ``--n`` requests
(:func:`schedlab.solvers.random_problem`), the policy runs in the simulator on exactly the
problem's inputs (one instance, :class:`~schedlab.costmodel.base.ConstantIterationCost` of
``--slot-s`` seconds per iteration, the problem's batch size, token budget and KV capacity, whole
prompts, swap preemption), its iteration log becomes a slotted schedule that
:func:`schedlab.solvers.verify` checks, and CP-SAT solves the problem
(:func:`schedlab.solvers.solve_cpsat`). The gap of an instance is
``(policy total JCT - optimum) / optimum``; when CP-SAT does not prove optimality in time, the
best solution found stands in for the optimum (the gap is then understated) and
``gap_vs_bound`` (against the proven lower bound, overstated) brackets it.

``--slot-s`` matters only to policies that read time (MLFQ quanta, starvation limits); the
schedule of the others is the same for any slot length.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import time
from typing import Any

import numpy as np

from schedlab.commands import add_quiet
from schedlab.errors import check_positive_float, check_positive_int

__all__ = ["policy_gap", "register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``gap`` subcommand to the CLI."""
    p = subparsers.add_parser(
        "gap",
        help="optimality gap of a policy against CP-SAT on random small instances",
        description=__doc__.split("\n\n", 1)[0],
    )
    p.add_argument("policy", metavar="POLICY", help="batching policy: {policies}")
    p.add_argument("--n", type=int, default=12, help="requests per instance (default 12)")
    p.add_argument("--instances", type=int, default=20, help="random instances (default 20)")
    p.add_argument("--seed", type=int, default=0, help="seed of the instance generator")
    p.add_argument("--time-limit", type=float, default=10.0, metavar="SEC",
                   help="wall-clock limit of each exact solve in seconds: model, CP-SAT and bounds "
                   "(default 10)")
    p.add_argument("--workers", type=int, default=2, help="CP-SAT worker threads (default 2)")
    p.add_argument("--slot-s", type=float, default=0.02,
                   help="seconds per iteration slot in the simulator (default 0.02)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_quiet(p)
    p.set_defaults(func=run)


def _policy_params(policy: Any, seed: int) -> dict[str, Any]:
    try:
        if "rng" in inspect.signature(policy).parameters:
            return {"rng": np.random.default_rng(seed)}
    except (TypeError, ValueError):
        pass
    return {}


def _finite(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


def _dist(x: list[float]) -> dict[str, float | None]:
    if not x:
        return {"mean": None, "median": None, "p90": None, "max": None}
    a = np.asarray(x, dtype=np.float64)
    return {
        "mean": float(a.mean()),
        "median": float(np.median(a)),
        "p90": float(np.percentile(a, 90)),
        "max": float(a.max()),
    }


def policy_gap(
    policy: str,
    *,
    n: int = 12,
    instances: int = 20,
    seed: int = 0,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    slot_s: float = 0.02,
) -> dict[str, Any]:
    """Run the comparison and return the JSON-ready report (``summary`` and per-instance
    ``rows``; see the module docstring).

    >>> rep = policy_gap("srpt", n=4, instances=2, seed=1, time_limit_s=5)
    >>> s = rep["summary"]
    >>> s["n_instances"], s["invalid_schedules"], s["sim_verify_mismatches"]
    (2, 0, 0)
    >>> all(r["policy_jct_slots"] >= r["optimum_slots"] for r in rep["rows"])
    True
    """
    where = "schedlab gap"
    n = check_positive_int(n, "n", where)
    instances = check_positive_int(instances, "instances", where)
    time_limit_s = check_positive_float(time_limit_s, "time_limit_s", where)
    num_workers = check_positive_int(num_workers, "num_workers", where)
    slot_s = check_positive_float(slot_s, "slot_s", where)
    from schedlab.costmodel.base import ConstantIterationCost
    from schedlab.policies import get_policy
    from schedlab.progress import progress
    from schedlab.sim import InstanceSpec, simulate
    from schedlab.solvers import Schedule, random_problem, solve_cpsat, verify

    pol = get_policy(policy)
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    for i in progress(range(instances), desc=f"gap {policy}: instances (sim + CP-SAT)"):
        prob = random_problem(n, rng)
        spec = InstanceSpec(
            cost=ConstantIterationCost(slot_s=slot_s, kv_capacity_tokens=prob.kv_capacity_tokens),
            max_batch_size=prob.max_batch_size,
            max_batch_tokens=prob.max_batch_tokens,
            chunk_tokens=0,
            block_tokens=1,
            preemption="swap",
        )
        ts = time.perf_counter()
        sim = simulate(
            prob.to_workload(slot_s=slot_s), spec, pol,
            policy_params=_policy_params(pol, seed + i), record_iterations=True,
        )
        sim_wall = time.perf_counter() - ts
        rejected = int(np.count_nonzero(sim.status != "completed"))
        log = sim.iteration_log
        assert log is not None  # simulate keeps it when record_iterations=True
        sched = Schedule.from_iteration_log(log, prob.n, slot_s=slot_s)
        check = verify(prob, sched)
        sol = solve_cpsat(prob, time_limit_s=time_limit_s, num_workers=num_workers, seed=seed)
        obj = check.objective
        row: dict[str, Any] = {
            "instance": i,
            "n": prob.n,
            "policy_jct_slots": obj,
            "sim_jct_slots": _finite(float(np.sum(sim.finish_s - sim.arrival_s)) / slot_s)
            if rejected == 0 else None,
            "rejected": rejected,
            "violations": [f"[{v.kind}] {v.message}" for v in check.violations[:5]],
            "n_violations": len(check.violations),
            "optimum_slots": sol.objective,
            "status": sol.status,
            "bound_slots": sol.bound,
            "solver_gap": _finite(sol.gap),
            "solve_wall_s": sol.wall_s,
            "sim_wall_s": sim_wall,
            "list_schedule_slots": sol.stats["list_schedule_objective"],
        }
        if check.ok and obj is not None and sol.objective:
            row["gap"] = (obj - sol.objective) / sol.objective
            row["gap_vs_bound"] = (obj - sol.bound) / sol.bound if sol.bound > 0 else None
        else:
            row["gap"] = None
            row["gap_vs_bound"] = None
        rows.append(row)
    gaps = [r["gap"] for r in rows if r["gap"] is not None]
    upper = [r["gap_vs_bound"] for r in rows if r["gap_vs_bound"] is not None]
    solve_s = [r["solve_wall_s"] for r in rows]
    summary = {
        "policy": policy,
        "n": n,
        "n_instances": instances,
        "seed": seed,
        "time_limit_s": time_limit_s,
        "num_workers": num_workers,
        "slot_s": slot_s,
        "proven_optimal": sum(r["status"] == "OPTIMAL" for r in rows),
        "invalid_schedules": sum(r["n_violations"] > 0 or r["rejected"] > 0 for r in rows),
        # the simulator's own JCT and the verifier's agree on every valid schedule
        "sim_verify_mismatches": sum(
            r["sim_jct_slots"] is not None and r["policy_jct_slots"] is not None
            and abs(r["sim_jct_slots"] - r["policy_jct_slots"]) > 1e-6
            for r in rows
        ),
        "gap": _dist(gaps),
        "gap_vs_bound": _dist(upper),
        "policy_optimal_instances": sum(g == 0 for g in gaps),
        "solve_wall_s": _dist(solve_s),
        "wall_s": time.perf_counter() - t0,
    }
    return {"summary": summary, "rows": rows}


def _fmt(v: float | None, pct: bool = True) -> str:
    if v is None:
        return "-"
    return f"{100 * v:.1f}%" if pct else f"{v:.2f}"


def run(args: argparse.Namespace) -> int:
    """Run ``schedlab gap`` and print the report; returns the exit code."""
    rep = policy_gap(
        args.policy, n=args.n, instances=args.instances, seed=args.seed,
        time_limit_s=args.time_limit, num_workers=args.workers, slot_s=args.slot_s,
    )
    if args.json:
        print(json.dumps(rep))
        return 0
    s = rep["summary"]
    g, ub = s["gap"], s["gap_vs_bound"]
    print(f"policy {s['policy']}: {s['n_instances']} instances of {s['n']} requests "
          f"(seed {s['seed']}, CP-SAT {s['time_limit_s']:g} s x {s['num_workers']} workers)")
    print(f"  proven optimal: {s['proven_optimal']}/{s['n_instances']}, "
          f"policy optimal on {s['policy_optimal_instances']}, "
          f"invalid policy schedules: {s['invalid_schedules']}")
    print(f"  gap (policy - optimum) / optimum: mean {_fmt(g['mean'])}, "
          f"median {_fmt(g['median'])}, p90 {_fmt(g['p90'])}, max {_fmt(g['max'])}")
    print(f"  gap against the lower bound:      mean {_fmt(ub['mean'])}, max {_fmt(ub['max'])}")
    st = s["solve_wall_s"]
    print(f"  solve time: mean {_fmt(st['mean'], False)} s, max {_fmt(st['max'], False)} s; "
          f"total wall {s['wall_s']:.1f} s")
    print(f"  {'inst':>4} {'policy':>7} {'optimum':>8} {'status':>9} {'gap':>7} {'solve_s':>8}")
    for r in rep["rows"]:
        pol = "-" if r["policy_jct_slots"] is None else str(r["policy_jct_slots"])
        print(f"  {r['instance']:>4} {pol:>7} {r['optimum_slots']:>8g} {r['status']:>9} "
              f"{_fmt(r['gap']):>7} {r['solve_wall_s']:>8.2f}")
        for v in r["violations"]:
            print(f"       {v}")
    return 0
