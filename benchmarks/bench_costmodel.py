"""Per-call cost of the roofline iteration model, the numbers the simulator's speed rests on.

Run by hand: ``python benchmarks/bench_costmodel.py``. Prints microseconds per call and ratios
against two baselines measured in the same run: :class:`ConstantIterationCost` (the cheapest
possible cost model: a constant) and, for N decode steps, the step-by-step loop that the closed
form replaces. Printed first: the two unchecked hot paths the simulator calls
(``fast_iteration_time_s`` once per prefill iteration, ``fast_decode_steps_time_s`` once per
decode stretch, typically 48 cumulative step times) with the inputs the simulator passes, and the
first call of each in this process: numba's start-up (about 0.3 s, once per process, shared by
every compiled kernel) plus compilation (about 0.9 s for both, once per machine) or loading the
compiled code from numba's disk cache (a few ms).
"""

from __future__ import annotations

import time
import timeit

import numpy as np

from schedlab.costmodel import ConstantIterationCost, iteration_cost

EMPTY = np.array([], dtype=np.int64)


def per_call_us(fn, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def _timings(cost, pt, pc, steps) -> tuple[float, ...]:
    return (
        per_call_us(lambda: cost.iteration_time_s(EMPTY, EMPTY, 32, 32_000), 20_000),
        per_call_us(lambda: cost.iteration_time_s(pt, pc, 32, 32_000), 20_000),
        per_call_us(lambda: cost.decode_steps_time_s(32, 32_000, 100), 20_000),
        per_call_us(lambda: cost.decode_steps_time_s(32, 32_000, steps), 20_000),
        per_call_us(lambda: sum(cost.iteration_time_s(EMPTY, EMPTY, 32, 32_000 + 32 * k)
                                for k in range(100)), 200),
    )


def main() -> None:
    hot_paths()  # first: its first calls are the process's first compiled calls
    const = ConstantIterationCost(slot_s=0.01)
    cases = [("llama-2-7b", "a100-80gb", 1), ("llama-3-70b", "h100-sxm", 4),
             ("mixtral-8x7b", "h100-sxm", 4)]
    base_iter = per_call_us(lambda: const.iteration_time_s(EMPTY, EMPTY, 32, 32_000), 50_000)
    base_steps = per_call_us(lambda: const.decode_steps_time_s(32, 32_000, 100), 50_000)
    print(f"baseline ConstantIterationCost: iteration {base_iter:.2f} us, "
          f"decode_steps {base_steps:.2f} us")
    print(f"{'model':<14}{'gpu':<11}{'tp':>3}{'build ms':>10}{'decode it':>11}{'mixed it':>10}"
          f"{'N=100 sum':>11}{'N[200] arr':>12}{'loop N=100':>12}{'loop/closed':>13}")
    pt, pc = np.array([512, 100, 37]), np.array([0, 300, 4000])
    steps = np.arange(1, 201)
    for model, gpu, tp in cases:
        t0 = time.perf_counter()
        cost = iteration_cost(model, gpu, tp)
        build_ms = (time.perf_counter() - t0) * 1e3
        dec, mix, n100, arr, loop = _timings(cost, pt, pc, steps)
        print(f"{model:<14}{gpu:<11}{tp:>3}{build_ms:>10.1f}{dec:>9.2f}us{mix:>8.2f}us"
              f"{n100:>9.2f}us{arr:>10.2f}us{loop:>10.1f}us{loop / n100:>12.0f}x")
    print(f"(decode iteration vs constant model: {dec / base_iter:.1f}x a constant's cost)")


def hot_paths() -> None:
    """Per-call microseconds of the simulator's unchecked hot paths, typical inputs."""
    one_pt, one_pc = np.array([512]), np.array([1024])
    pt, pc = np.array([512, 100, 37]), np.array([0, 300, 4000])
    steps48, steps4 = np.arange(1.0, 49.0), np.arange(1.0, 5.0)
    t0 = time.perf_counter()
    cost = iteration_cost("llama-2-7b", "a100-80gb")
    build_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    cost.fast_iteration_time_s(one_pt, one_pc, 32, 32_000)
    first_iter_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    cost.fast_decode_steps_time_s(32, 32_000, steps48)
    first_dec_ms = (time.perf_counter() - t0) * 1e3
    cases = [
        ("fast_iteration_time_s([512], [1024], 32, 32000)",
         lambda: cost.fast_iteration_time_s(one_pt, one_pc, 32, 32_000)),
        ("fast_iteration_time_s([512, 100, 37], ..., 32, 32000)",
         lambda: cost.fast_iteration_time_s(pt, pc, 32, 32_000)),
        ("fast_iteration_time_s([512], [1024], 0, 0)",
         lambda: cost.fast_iteration_time_s(one_pt, one_pc, 0, 0)),
        ("fast_decode_steps_time_s(32, 32000, 1..48)",
         lambda: cost.fast_decode_steps_time_s(32, 32_000, steps48)),
        ("fast_decode_steps_time_s(32, 32000, 1..4)",
         lambda: cost.fast_decode_steps_time_s(32, 32_000, steps4)),
        ("swap_time_s(1000)", lambda: cost.swap_time_s(1000)),
    ]
    print(f"simulator hot paths, llama-2-7b on a100-80gb (build {build_ms:.1f} ms; first call: "
          f"iteration {first_iter_ms:.1f} ms, decode steps {first_dec_ms:.1f} ms)")
    for label, fn in cases:
        print(f"  {label:<58}{per_call_us(fn, 50_000):>8.2f} us")
    print()


if __name__ == "__main__":
    main()
