"""Per-decision cost of every registered batching policy (run by hand, not a test).

    python benchmarks/bench_policies.py [--sizes 16 256 4096] [--repeat 5]

Each policy decides on the same realistic queue view (a third of the requests decoding on the
device, a few swapped to the host, the rest waiting; KV about 90% full; 256 batch slots; requests
listed in arrival order as the simulator lists them) for queue lengths ``--sizes``. Prints
microseconds per call and the ratio to a baseline measured in the same run: ``minimal``, the
cheapest sensible policy (one cumulative sum: run positions in order while KV and the token
budget allow), which bounds how cheap a decision can be with numpy on this machine.
"""

from __future__ import annotations

import argparse
import timeit

import numpy as np

from schedlab.policies import REGISTRY
from schedlab.policies.base import KV_GPU, KV_HOST, BatchDecision, QueueView


def minimal(view: QueueView, /) -> BatchDecision:
    """Baseline: positions in order while KV and token budget allow (no sorting, no state)."""
    step = np.maximum(view.input_tokens - view.prefilled_tokens, 1)
    ok = (np.cumsum(step) <= view.max_batch_tokens) & (np.cumsum(step) <= view.kv_free_tokens)
    k = int(np.argmin(ok)) if not ok.all() else view.n
    return BatchDecision(run=np.arange(min(k, view.max_batch_size)))


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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[16, 256, 4096])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    print(f"{'policy':<16}" + "".join(f"{f'n={n} us':>14}{'x base':>8}" for n in args.sizes))
    views = [realistic_view(n) for n in args.sizes]
    base = [per_call_us(minimal, v, args.repeat) for v in views]
    print(f"{'minimal':<16}" + "".join(f"{b:>14.1f}{1.0:>8.1f}" for b in base))
    for name, fn in REGISTRY.items():
        t = [per_call_us(fn, v, args.repeat) for v in views]
        cells = "".join(f"{x:>14.1f}{x / b:>8.1f}" for x, b in zip(t, base, strict=True))
        print(f"{name:<16}" + cells)


if __name__ == "__main__":
    main()
