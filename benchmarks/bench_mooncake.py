"""Mooncake's speed figures (issue 13; run by hand, not a test).

    python benchmarks/bench_mooncake.py [--runs 3] [--scale 100000 --nodes 64] [--lookups]

- *Replay*: ``mooncake-conversation`` (12,031 requests with their prefix blocks) as whole
  processes: the baseline is colocated vLLM on 16 instances (``simulate``), measured in the same
  run, then the disaggregated cluster (8 prefill + 8 decode instances, the distributed prefix
  cache, Mooncake's Conductor). Median wall per process and the ratio to the baseline.
- *Scale* (``--scale N``): ``N`` requests made by tiling ``mooncake-synthetic`` (each copy's
  block ids shifted, so prefixes repeat within a copy as in the trace) at ``nodes / 8`` times
  its rate, on ``nodes`` prefill plus ``nodes`` decode instances; wall, requests per second and
  peak RSS, also at ``N / 4`` to show memory grows linearly.
- *Look-ups* (``--lookups``): the time of a prefix-cache look-up per block of the request, with
  caches of 10k to 1M blocks: it does not grow with the cache.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import numpy as np

REPLAY = {
    "vllm (baseline)": """
from schedlab.datasets import load
from schedlab.sim import Cluster, InstanceSpec, simulate
from schedlab.costmodel import iteration_cost
w = load("mooncake-conversation")
spec = InstanceSpec(cost=iteration_cost("llama-3-70b", "a800", 8), max_context_tokens=200_000,
                    max_batch_tokens=200_000)
simulate(w, Cluster(instances=(spec,) * 16), "vllm", token_gaps=True)
""",
    "mooncake": """
from schedlab.datasets import load
from schedlab.sim import DisaggregatedCluster, simulate_disaggregated
w = load("mooncake-conversation")
c = DisaggregatedCluster.homogeneous("llama-3-70b", "a800", tp=8, n_prefill=8, n_decode=8,
                                     max_context_tokens=200_000)
simulate_disaggregated(w, c)
""",
}

SCALE = """
import resource, sys, time
import numpy as np
from schedlab import PrefixBlocks, Workload
from schedlab.datasets import load
from schedlab.sim import DisaggregatedCluster, simulate_disaggregated
n, nodes = int(sys.argv[1]), int(sys.argv[2])
w = load("mooncake-synthetic")
copies = -(-n // len(w))
span = float(w.arrival_s[-1]) + 1.0
ids, off = w.prefix_block_ids.ids, w.prefix_block_ids.offsets
top = int(ids.max()) + 1
arr = np.concatenate([w.arrival_s + k * span for k in range(copies)])[:n] * 8 / nodes
blocks = PrefixBlocks(ids=np.concatenate([ids + k * top for k in range(copies)]),
                      offsets=np.concatenate([[0]] + [off[1:] + k * off[-1]
                                                      for k in range(copies)])).take(np.arange(n))
big = Workload(arrival_s=arr, input_tokens=np.tile(w.input_tokens, copies)[:n],
               output_tokens=np.tile(w.output_tokens, copies)[:n], prefix_block_ids=blocks)
c = DisaggregatedCluster.homogeneous("llama-3-70b", "a800", tp=8, n_prefill=nodes,
                                     n_decode=nodes, max_context_tokens=200_000)
t = time.perf_counter()
r = simulate_disaggregated(big, c)
wall = time.perf_counter() - t
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"{wall:.1f} {rss:.0f} {r.summary()['completed']}")
"""


def _process(code: str, *args: str) -> tuple[float, str]:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True,
                         text=True).stdout
    return time.perf_counter() - t, out.strip()


def replay(runs: int) -> None:
    print(f"replay of mooncake-conversation, whole processes, median of {runs}:")
    base = None
    for name, code in REPLAY.items():
        _process(code)  # warm: compiled kernels and the dataset's cache
        med = statistics.median(_process(code)[0] for _ in range(runs))
        base = med if base is None else base
        print(f"  {name:16s} {med:6.2f} s   {med / base:5.2f}x the baseline")


def scale(n: int, nodes: int) -> None:
    print(f"scale: tiled mooncake-synthetic on {nodes} prefill + {nodes} decode instances")
    for m in (max(n // 4, 1), n):
        wall, out = _process(SCALE, str(m), str(nodes))
        sim_s, rss, done = out.split()
        print(f"  {m:>9,} requests: simulate {float(sim_s):7.1f} s ({m / float(sim_s):,.0f} "
              f"req/s), process {wall:6.1f} s, peak RSS {rss} MiB, completed {int(done):,}")


def lookups() -> None:
    from schedlab.sim.prefix_cache import PrefixCache

    print("prefix-cache look-up time per block of the request (32-block chains, 8 nodes):")
    rng = np.random.default_rng(0)
    for cap in (10_000, 100_000, 1_000_000):
        cache = PrefixCache(8, cap * 512)
        for k in range(cap // 32):  # fill: distinct chains of 32 blocks
            cache.store(k % 8, np.arange(k * 32, k * 32 + 32), trusted=True)
        chains = [np.arange(k * 32, k * 32 + 32) for k in rng.integers(0, cap // 32, 2000)]
        t = time.perf_counter()
        for c in chains:
            cache.match_blocks(c, trusted=True)
        per = (time.perf_counter() - t) / (2000 * 32)
        print(f"  cache of {cap:>9,} blocks: {per * 1e9:6.0f} ns per block")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--scale", type=int, default=0, help="requests of the scale run (0: skip)")
    ap.add_argument("--nodes", type=int, default=64)
    ap.add_argument("--lookups", action="store_true")
    ap.add_argument("--no-replay", action="store_true")
    args = ap.parse_args()
    if not args.no_replay:
        replay(args.runs)
    if args.scale:
        scale(args.scale, args.nodes)
    if args.lookups:
        lookups()


if __name__ == "__main__":
    main()
