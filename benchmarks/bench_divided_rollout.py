"""The divided-rollout simulator's speed figures (issue 15; run by hand, not a test).

    python benchmarks/bench_divided_rollout.py [--runs 3] [--prompts 600] [--samples 16]
                                               [--instances 16]

One rollout iteration of Seer's Qwen2-VL-72B-like workload at the paper's scale (600 prompts x
16 samples, up to 40,960 tokens, :func:`schedlab.datasets.rollout.rollout_batch`) on 16 TP8
Qwen2.5-72B instances (H800), simulated in one process after a warm-up, best and median of
``--runs``. The baseline, measured in the same run, is the one-shot rollout simulator
(``simulate_rollout`` with group round robin: one dispatch, then the engine): what the divided
driver adds is a scheduler call whenever chunks end, each chunk's admission, and (with
``Speculation``) each chunk's draft length and the verify-step price of every decode stretch.
Prints seconds, milliseconds per request and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any


def _time(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    out = []
    result = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        out.append(time.perf_counter() - t)
    return min(out), statistics.median(out), result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--prompts", type=int, default=600)
    ap.add_argument("--samples", type=int, default=16)
    ap.add_argument("--instances", type=int, default=16)
    a = ap.parse_args()

    from schedlab.datasets.rollout import rollout_batch
    from schedlab.sim import (
        RolloutCluster,
        Speculation,
        simulate_divided_rollout,
        simulate_rollout,
    )

    mt = 40_960
    w = rollout_batch(n_prompts=a.prompts, samples_per_prompt=a.samples, seed=0, max_tokens=mt)
    c = RolloutCluster.homogeneous("qwen2.5-72b", "h800", tp=8, n_instances=a.instances,
                                   max_context_tokens=mt + 16_384)
    simulate_divided_rollout(w.head(64), c, "seer", max_tokens=mt,
                             speculation=Speculation())  # warm-up: compiled kernels, caches
    simulate_rollout(w.head(64), c, "round-robin")
    runs: dict[str, Callable[[], Any]] = {
        "one-shot group round robin (baseline)": lambda: simulate_rollout(w, c, "round-robin"),
        "divided: group-round-robin": lambda: simulate_divided_rollout(
            w, c, "group-round-robin", max_tokens=mt),
        "divided: seer (8K chunks)": lambda: simulate_divided_rollout(w, c, "seer",
                                                                      max_tokens=mt),
        "divided: seer + Speculation()": lambda: simulate_divided_rollout(
            w, c, "seer", max_tokens=mt, speculation=Speculation()),
        "divided: partial rollout stop": lambda: simulate_divided_rollout(
            w, c, "group-round-robin", max_tokens=mt, stop_after_groups=a.prompts // 2),
    }
    n = len(w)
    print(f"{n:,} requests, {a.instances} instances, best / median of {a.runs} runs")
    base = None
    for name, fn in runs.items():
        best, med, r = _time(fn, a.runs)
        base = base or best
        decisions = r.extra.get("decisions", "")
        print(f"{name:40s} {best:7.2f} s {med:7.2f} s  {1000 * best / n:6.3f} ms/request  "
              f"{best / base:5.2f}x  decisions {decisions}")


if __name__ == "__main__":
    main()
