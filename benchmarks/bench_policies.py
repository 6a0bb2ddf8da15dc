"""Per-decision cost of every registered batching policy (run by hand, not a test).

    python benchmarks/bench_policies.py [--sizes 32 1024 4096] [--repeat 5] [--policies fcfs vllm]
    python benchmarks/bench_policies.py --in-sim vidur azure [--policies fcfs vllm]

Synthetic (default): each policy answers the same realistic queue view (a third of the
requests decoding on the device, a few swapped to the host, the rest waiting; KV about 90% full;
256 batch slots; requests listed in arrival order as the simulator lists them) for queue lengths
``--sizes``. Prints microseconds per call (the policy's rule, numpy; the engine then forms the
batch in compiled code) and the ratio to a baseline measured in the same run: ``minimal``, the
cheapest plan (the queue in position order), which bounds how cheap a call can be.

In a simulation (``--in-sim``): the calls a policy really gets. Each policy runs a whole
simulation with every call timed (``time.perf_counter`` around it, about 0.1 us of its own);
prints the calls, the mean queue length, the mean microseconds per call, the policy's share of
the simulation's wall time and that wall time. ``vidur``: the 10,000-request workload of
``bench_sim.py vidur`` (Llama-2-7B on one A100; queues of ~20-40); ``azure``: the Azure 2023
conversation trace as ``schedlab simulate --trace azure-conv-2023`` runs it (one overloaded
instance; queues of ~1,000).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit
from pathlib import Path

import numpy as np

from schedlab.contract import KV_GPU, KV_HOST, Answer, Plan, QueueView
from schedlab.policies import REGISTRY


def minimal(view: QueueView, /) -> Plan:
    """Baseline: the queue in position order (no sorting, no state)."""
    return Plan(order=np.arange(view.n))


def realistic_view(n: int, seed: int = 0) -> QueueView:
    rng = np.random.default_rng(seed)
    inp = rng.integers(16, 2048, n)
    phase = rng.choice(3, n, p=[1 / 3, 0.05, 1 - 1 / 3 - 0.05])  # decoding, swapped, waiting
    gen = np.where(phase < 2, rng.integers(1, 400, n), 0)
    kv = np.where(phase < 2, inp + gen, 0)
    loc = np.select([phase == 0, phase == 1], [KV_GPU, KV_HOST], 0)
    used = int(kv[loc == KV_GPU].sum())
    arrival = np.sort(rng.random(n) * 100.0)
    return QueueView.from_columns(
        now_s=100.0,
        input_tokens=inp,
        arrival_s=arrival,
        output_tokens_pred=rng.integers(1, 800, n),
        prefilled_tokens=np.where(phase < 2, inp, 0),
        generated_tokens=gen,
        kv_tokens=kv,
        kv_location=loc,
        running=phase == 0,
        # the simulator stores the priorities a policy returns: only new arrivals show -1
        priority=np.where(arrival < 99.0, rng.integers(0, 8, n), -1),
        attained_s=rng.random(n) * 0.05,
        last_run_s=np.where(phase == 0, 99.98, arrival),
        est_prefill_s=inp * 2e-5,
        kv_capacity_tokens=int(used / 0.9) + 1,
        max_batch_size=256,
        max_batch_tokens=8192,
    )


def per_call_us(fn, view: QueueView, repeat: int) -> float:
    fn(view)
    number = max(20, 2000 // max(1, view.n // 64))
    return min(timeit.repeat(lambda: fn(view), number=number, repeat=repeat)) / number * 1e6


def timed_in_simulation(source: str, policy: str) -> dict:
    """Run ``source`` with ``policy`` timing every call (see the module docstring)."""
    from schedlab.costmodel import iteration_cost
    from schedlab.sim import Cluster, InstanceSpec, simulate

    if source == "vidur":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_sim_common import vidur_workload

        w = vidur_workload(10_000)
        cluster = InstanceSpec(cost=iteration_cost("llama-2-7b", "a100-80gb", 1))
    else:  # as `schedlab simulate --trace azure-conv-2023` with its defaults
        from schedlab.datasets import load

        w = load("azure-conv-2023")
        cluster = Cluster.homogeneous(
            "llama-2-7b", "a100-80gb", n_instances=1,
            max_batch_tokens=max(8192, int(w.input_tokens.max())),
        )
    fn = REGISTRY[policy]
    calls, queued, spent = [0], [0], [0.0]
    clock = time.perf_counter

    def timed(view: QueueView, /, **params) -> Answer:
        t0 = clock()
        d = fn(view, **params)
        spent[0] += clock() - t0
        calls[0] += 1
        queued[0] += view.n
        return d

    t0 = clock()
    simulate(w, cluster, timed)
    wall = clock() - t0
    return {"calls": calls[0], "mean_n": queued[0] / calls[0],
            "us_per_call": spent[0] / calls[0] * 1e6, "share": spent[0] / wall, "wall_s": wall}


def bench_in_simulation(sources: list[str], policies: list[str]) -> None:
    print(f"{'source':<8}{'policy':<16}{'calls':>8}{'mean n':>8}{'us/call':>9}{'share':>7}"
          f"{'sim s':>7}")
    for source in sources:
        for name in policies:
            r = timed_in_simulation(source, name)
            print(f"{source:<8}{name:<16}{r['calls']:>8}{r['mean_n']:>8.1f}"
                  f"{r['us_per_call']:>9.1f}{r['share']:>7.0%}{r['wall_s']:>7.2f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 1024, 4096])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--policies", nargs="+", default=list(REGISTRY), choices=list(REGISTRY))
    ap.add_argument("--in-sim", nargs="+", choices=["vidur", "azure"], default=None)
    args = ap.parse_args()
    if args.in_sim:
        bench_in_simulation(args.in_sim, args.policies)
        return
    print(f"{'policy':<16}" + "".join(f"{f'n={n} us':>14}{'x base':>8}" for n in args.sizes))
    views = [realistic_view(n) for n in args.sizes]
    base = [per_call_us(minimal, v, args.repeat) for v in views]
    print(f"{'minimal':<16}" + "".join(f"{b:>14.1f}{1.0:>8.1f}" for b in base))
    for name in args.policies:
        fn = REGISTRY[name]
        t = [per_call_us(fn, v, args.repeat) for v in views]
        cells = "".join(f"{x:>14.1f}{x / b:>8.1f}" for x, b in zip(t, base, strict=True))
        print(f"{name:<16}" + cells)


if __name__ == "__main__":
    main()
