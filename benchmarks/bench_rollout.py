"""The rollout simulator's speed figure (issue 14; run by hand, not a test).

    python benchmarks/bench_rollout.py [--runs 3] [--prompts 1024] [--samples 16] [--instances 32]

One rollout iteration of 1,024 prompts x 16 samples (16,384 requests, lengths up to 20K tokens,
:func:`schedlab.datasets.rollout.rollout_batch`) on 32 Qwen2.5-7B instances (one H800 each), as
whole processes (imports, workload, cost model and simulation), median of ``--runs`` after a
warm-up. The baseline, measured in the same run, is the serving simulator on the same requests
(all released at t=0, round-robin router, vLLM batching): what ``simulate_rollout`` adds on top
of it is the dispatch view, the policy and the mapping back. Target: under 3 s per process.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

SETUP = """
import sys
from schedlab.datasets.rollout import rollout_batch
from schedlab.sim import RolloutCluster
p, g, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
w = rollout_batch(n_prompts=p, samples_per_prompt=g, seed=0, max_tokens=20480)
c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=n)
"""

RUNS = {
    "simulate (baseline)": SETUP + """
from schedlab.sim import simulate
simulate(w, c.cluster, "vllm", router="round-robin")
""",
    "rollout round-robin": SETUP + """
from schedlab.sim import simulate_rollout
simulate_rollout(w, c, "round-robin")
""",
    "rollout lpt": SETUP + """
from schedlab.sim import simulate_rollout
simulate_rollout(w, c, "lpt")
""",
    "rollout skew-aware": SETUP + """
from schedlab.sim import simulate_rollout
simulate_rollout(w, c, "skew-aware")
""",
}


def _process(code: str, *args: str) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--instances", type=int, default=32)
    args = ap.parse_args()
    argv = (str(args.prompts), str(args.samples), str(args.instances))
    n = args.prompts * args.samples
    print(f"one rollout iteration: {n:,} requests on {args.instances} instances, whole "
          f"processes, median of {args.runs}:")
    base = None
    for name, code in RUNS.items():
        _process(code, *argv)  # warm: compiled kernels on disk
        med = statistics.median(_process(code, *argv) for _ in range(args.runs))
        base = med if base is None else base
        print(f"  {name:22s} {med:6.2f} s   {med / base:5.2f}x the baseline   "
              f"{med / 3.0:5.2f}x the 3 s target")


if __name__ == "__main__":
    main()
