"""Accuracy of the roofline on measured kernels, and how it is meant to carry to other GPUs.

Run by hand: ``python benchmarks/bench_costmodel_transfer.py [PROFILE_DIR]`` (default
``../shared/costmodel/vidur-profiling``, the Vidur A100 profiles). Prints, each measured in this
run:

1. median absolute percentage error on the A100, per op, of this model uncalibrated and of the
   earlier one as the baseline (a fixed fraction of HBM bandwidth per element-wise kind, no
   cache, a 4 us launch: the same code with the chip figures removed and those fractions);
2. the calibrated model on the A100, and the fit's wall time;
3. leave one model out: calibrate on six models, validate on the seventh
   (:func:`schedlab.costmodel.cross_validate`);
4. transfer, on the A100 profile's shapes: the earlier model's time over this one's, per op and
   GPU, beside what issue 17 reports for the earlier model over the measured time on two GPUs
   whose profiles are kept out of ``../shared`` (an A40 and an H100);
5. the cost of the model: microseconds per vectorised call over 16,384 token counts, and the
   build time of an iteration cost (its tables), this model against the earlier one.
"""

from __future__ import annotations

import dataclasses
import sys
import time
import timeit

import numpy as np

from schedlab.costmodel import (
    calibrate,
    cross_validate,
    get_accelerator,
    iteration_cost,
    load_profile,
    validate,
)
from schedlab.costmodel.hardware import Accelerator
from schedlab.costmodel.roofline import REFERENCE_BYTES_PER_SM_CYCLE, Efficiency, roofline_time_s

EARLIER_FRACTIONS = {"norm": 0.35, "rope": 0.45, "act": 0.50, "gather": 0.15}
ISSUE = {("a40", "emb"): 3.3, ("a40", "input_layernorm"): 1.7, ("a40", "attn_rope"): 1.7,
         ("a40", "mlp_act"): 1.7, ("h100-sxm", "add"): 1.56, ("h100-sxm", "input_layernorm"): 1.34}
ELEMENTWISE_OPS = ("emb", "input_layernorm", "post_attention_layernorm", "attn_rope", "mlp_act",
                   "add")


def earlier(gpu: Accelerator) -> tuple[Accelerator, Efficiency]:
    """The earlier model: no chip figures (so SM cycles scale with HBM bandwidth), fractions of
    HBM bandwidth per kind, no cache residency, a 4 us launch."""
    bare = dataclasses.replace(gpu, sm_count=None, sm_clock_hz=None, l2_bytes=None,
                               kernel_launch_s=4e-6)
    per_cycle = {f"{k}_bytes_per_cycle": f * REFERENCE_BYTES_PER_SM_CYCLE
                 for k, f in EARLIER_FRACTIONS.items()}
    return bare, Efficiency(l2_share=0.0, **per_cycle)


def _row(name: str, report) -> str:
    ops = " ".join(f"{report.ops[o]['median_ape']:>6.1%}" if o in report.ops else f"{'-':>6}"
                   for o in ELEMENTWISE_OPS)
    return (f"{name:<30}{report.overall['median_ape']:>8.1%}{report.gemm['median_ape']:>7.1%}"
            f" {ops}")


def main(profile_dir: str) -> None:
    prof = load_profile(profile_dir, "a100-80gb")
    kernels = prof.take(~prof.is_network)
    print(f"{len(prof)} measured rows ({len(kernels)} kernels) of {prof.gpu.name}\n")
    print(f"{'median APE':<30}{'overall':>8}{'GEMMs':>7} " + " ".join(f"{o[:6]:>6}"
                                                                     for o in ELEMENTWISE_OPS))
    old_gpu, old_eff = earlier(prof.gpu)
    print(_row("earlier model (baseline)", validate(dataclasses.replace(prof, gpu=old_gpu),
                                                     calibration=old_eff)))
    print(_row("this model, uncalibrated", validate(prof)))
    t0 = time.perf_counter()
    fitted = calibrate(prof)
    fit_s = time.perf_counter() - t0
    print(_row(f"calibrated (fit {fit_s:.1f} s)", validate(prof, calibration=fitted)))

    print("\nleave one model out (kernels of the held-out model, calibrated on the others)")
    t0 = time.perf_counter()
    for name, report in cross_validate(prof).items():
        print(_row(f"  {name}", report))
    print(f"  ({time.perf_counter() - t0:.1f} s)")

    print("\ntransfer: earlier model / this model, median over the A100 profile's shapes "
          "[issue 17: earlier / measured]")
    for name in ("a40", "h100-sxm", "l40s", "h20", "b200", "mi300x"):
        gpu = get_accelerator(name)
        old_gpu, old_eff = earlier(gpu)
        cells = []
        for op in ELEMENTWISE_OPS:
            m = prof.op == op
            args = dict(flops=prof.flops[m], nbytes=prof.nbytes[m], rows=prof.rows[m],
                        kind=str(prof.kind[m][0]), kernels=prof.kernels[m])
            ratio = np.median(roofline_time_s(gpu=old_gpu, efficiency=old_eff, **args)
                              / roofline_time_s(gpu=gpu, efficiency=Efficiency(), **args))
            issue = ISSUE.get((name, op))
            cells.append(f"{op[:6]} {ratio:.2f}" + (f" [{issue}]" if issue else ""))
        print(f"  {name:<9}" + ", ".join(cells))

    tokens = np.arange(16384, dtype=np.float64)
    nbytes = tokens * 8192 * 2 * 2
    a100 = get_accelerator("a100-80gb")
    old_gpu, old_eff = earlier(a100)
    print("\ncost of the model (best of 5)")
    for label, gpu, eff in (("earlier (baseline)", old_gpu, old_eff),
                            ("this model", a100, Efficiency())):
        call = min(timeit.repeat(lambda g=gpu, e=eff: roofline_time_s(
            flops=0 * tokens, nbytes=nbytes, rows=tokens, kind="norm", gpu=g, efficiency=e),
            number=200, repeat=5)) / 200 * 1e6
        build = min(timeit.repeat(lambda g=gpu, e=eff: iteration_cost(
            "llama-3-70b", g, 4, calibration=e), number=3, repeat=5)) / 3 * 1e3
        print(f"  {label:<20} roofline_time_s over 16,384 rows {call:7.1f} us; "
              f"iteration_cost('llama-3-70b', tp=4) build {build:6.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "../shared/costmodel/vidur-profiling")
