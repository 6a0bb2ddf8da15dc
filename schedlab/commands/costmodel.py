"""``schedlab costmodel report|calibrate|validate``: the roofline cost model from the command line.

* ``report [--model M] [--gpu G] [--tp T] [--calibration FILE] [--plot FILE.png] [--json]``:
  prefill and decode costs across prompt lengths, batch sizes and context lengths, each marked
  compute- (C) or memory-bound (M); optionally a roofline plot.
* ``calibrate PROFILE_DIR --gpu G -o calibration.json [--json]``: fit the efficiency parameters to
  measured kernels in Vidur's layout and save them.
* ``validate PROFILE_DIR --gpu G [--calibration FILE] [--json]``: median and p90 absolute
  percentage error per op and overall (fractions in JSON: ``overall.median_ape``,
  ``ops.<op>.median_ape``, ...).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from schedlab.commands import add_quiet

__all__ = ["build_report", "format_report", "register"]

PROMPTS = (128, 512, 2048, 8192, 32768)
BATCHES = (1, 8, 32, 64, 128, 256, 512)
CONTEXTS = (256, 1024, 4096)


def register(subparsers: Any) -> None:
    """Add the ``costmodel`` subcommand and its three actions to the CLI."""
    p = subparsers.add_parser("costmodel", help="roofline cost model: report, calibrate, validate",
                              description=__doc__.split("\n\n", 1)[1],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)

    rep = sub.add_parser("report", help="prefill/decode cost table for a model on a GPU")
    rep.add_argument("--model", default="llama-2-7b", help="model: {models} (default llama-2-7b)")
    rep.add_argument("--gpu", default="a100-80gb", help="accelerator: {gpus} (default a100-80gb)")
    rep.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    rep.add_argument("--calibration", metavar="FILE", help="calibration JSON from `calibrate`")
    rep.add_argument("--plot", metavar="FILE.png", help="write a roofline plot (PNG)")
    rep.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    rep.set_defaults(func=_run_report)

    cal = sub.add_parser("calibrate", help="fit the efficiency parameters to measured kernels")
    cal.add_argument("profile_dir", metavar="PROFILE_DIR")
    cal.add_argument("--gpu", required=True, help="accelerator whose folders to read")
    cal.add_argument("-o", "--output", required=True, metavar="FILE", help="calibration JSON")
    cal.add_argument("--scale-out-link", metavar="LINK",
                     help="inter-node interconnect (default: a 200/400 Gb/s RDMA NIC per GPU)")
    cal.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_quiet(cal)
    cal.set_defaults(func=_run_calibrate)

    val = sub.add_parser("validate", help="error of the model against measured kernels")
    val.add_argument("profile_dir", metavar="PROFILE_DIR")
    val.add_argument("--gpu", required=True, help="accelerator whose folders to read")
    val.add_argument("--calibration", metavar="FILE", help="calibration JSON from `calibrate`")
    val.add_argument("--scale-out-link", metavar="LINK",
                     help="inter-node interconnect (default: a 200/400 Gb/s RDMA NIC per GPU)")
    val.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    val.set_defaults(func=_run_validate)


def build_report(model: str, gpu: str, tp: int = 1, calibration: str | None = None
                 ) -> dict[str, Any]:
    """The report's content as a JSON-ready dict (times in seconds).

    >>> r = build_report("llama-2-7b", "a100-80gb")
    >>> r["decode"][0]["batch_size"], r["decode"][0]["linear_bound"]
    (1, 'memory')
    """
    import numpy as np

    from schedlab.costmodel.iteration import RooflineIterationCost

    cost = RooflineIterationCost.build(model, gpu, tp, calibration=calibration)
    prompts = [p for p in PROMPTS if p <= cost.model.max_context] or [cost.model.max_context]
    prefill_s = cost.prefill_time_s(np.array(prompts))
    prefill = []
    for n, t in zip(prompts, prefill_s.tolist(), strict=True):
        linear_bound = _bound(cost, n)
        prefill.append({"prompt_tokens": n, "time_s": t, "tokens_per_s": n / t,
                        "linear_bound": linear_bound})
    decode = []
    for b in BATCHES:
        for ctx in CONTEXTS:
            if ctx > cost.model.max_context or b * ctx > cost.kv_capacity_tokens:
                continue
            parts = cost.decode_step_breakdown(b, b * ctx)
            step = parts["linear_s"] + parts["head_s"] + parts["attention_s"]
            decode.append({
                "batch_size": b, "context": ctx, "step_s": step, "tokens_per_s": b / step,
                "linear_s": parts["linear_s"], "attention_s": parts["attention_s"],
                "linear_bound": "compute" if parts["linear_compute_bound"] else "memory",
                "attention_bound": "compute" if parts["attention_compute_bound"] else "memory",
            })
    return {
        "model": cost.model.name, "gpu": cost.gpu.name, "tp": cost.tp,
        "peak_flops_per_s": cost.gpu.peak_flops(cost.dtype),
        "hbm_bytes_per_s": cost.gpu.hbm_bytes_per_s,
        "ridge_flops_per_byte": cost.gpu.peak_flops(cost.dtype) / cost.gpu.hbm_bytes_per_s,
        "weight_bytes": cost.model.weight_bytes(),
        "kv_bytes_per_token": cost.kv_bytes_per_token,
        "kv_capacity_tokens": cost.kv_capacity_tokens,
        "efficiency": cost.efficiency.to_dict(),
        "prefill": prefill,
        "decode": decode,
    }


def _bound(cost: Any, tokens: int) -> str:
    return "compute" if cost.linear_is_compute_bound(tokens) else "memory"


def format_report(r: dict[str, Any]) -> str:
    """The report as aligned plain text."""
    lines = [
        (f"{r['model']} on {r['tp']} x {r['gpu']}: "
        f"peak {r['peak_flops_per_s'] / 1e12:.0f} TFLOP/s, "
        f"HBM {r['hbm_bytes_per_s'] / 1e12:.2f} TB/s, ridge {r['ridge_flops_per_byte']:.0f} "
        "FLOP/byte"),
        (f"weights {r['weight_bytes'] / 1e9:.1f} GB, "
        f"KV {r['kv_bytes_per_token'] / 1024:.0f} KiB/token, "
        f"KV capacity {r['kv_capacity_tokens']:,} tokens"),
        "",
        "Prefill (batch 1, whole prompt); C/M = linear layers compute-/memory-bound",
        f"{'prompt':>8}{'time ms':>11}{'tokens/s':>12}  bound",
    ]
    for p in r["prefill"]:
        lines.append(f"{p['prompt_tokens']:>8}{p['time_s'] * 1e3:>11.2f}"
                     f"{p['tokens_per_s']:>12,.0f}  {p['linear_bound'][0].upper()}")
    lines += ["", "Decode step (every request at the given context); bound: linear/attention",
              (f"{'batch':>6}{'context':>9}{'step ms':>10}{'tokens/s':>11}{'linear ms':>11}"
              f"{'attn ms':>9}  bound")]
    for d in r["decode"]:
        lines.append(
            f"{d['batch_size']:>6}{d['context']:>9}{d['step_s'] * 1e3:>10.2f}"
            f"{d['tokens_per_s']:>11,.0f}{d['linear_s'] * 1e3:>11.2f}{d['attention_s'] * 1e3:>9.2f}"
            f"  {d['linear_bound'][0].upper()}/{d['attention_bound'][0].upper()}")
    return "\n".join(lines)


def _plot(r: dict[str, Any], path: str) -> None:
    import numpy as np
    from matplotlib.figure import Figure

    from schedlab.plotting import log_axis

    peak, bw = r["peak_flops_per_s"], r["hbm_bytes_per_s"]
    x = np.logspace(-1, 4, 200)
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.subplots()
    ax.plot(x, np.minimum(peak, bw * x) / 1e12, "k-", label="roofline (datasheet)")
    eff = r["efficiency"]
    ax.plot(x, np.minimum(peak * eff["gemm_compute"], bw * eff["gemm_memory"] * x) / 1e12,
            "k--", label="corrected (GEMM efficiencies)")
    # A dense layer's GEMMs at M tokens: intensity ~ M FLOP/byte at 2-byte weights.
    from schedlab.costmodel import ops
    from schedlab.costmodel.iteration import RooflineIterationCost
    from schedlab.costmodel.roofline import op_time_s

    cost = RooflineIterationCost.build(r["model"], r["gpu"], r["tp"],
                                       calibration=_eff_from(r["efficiency"]))
    tokens = np.array([1, 4, 16, 64, 256, 1024, 4096], dtype=float)
    gemms = [op for op in ops.layer_linear_ops(cost.model, tokens, cost.tp) if op.kind == "gemm"]
    # arrays over ``tokens`` (np.asarray only tells the type checker: sum's start value is 0)
    flops = np.asarray(sum(op.flops for op in gemms))
    nbytes = np.asarray(sum(op.bytes for op in gemms))
    t = np.asarray(sum(op_time_s(op, cost.gpu, cost.efficiency, cost.dtype) for op in gemms))
    ax.plot(flops / nbytes, flops / t / 1e12, "o-", label="one layer's GEMMs at M tokens")
    for m, xi, yi in zip(tokens, flops / nbytes, flops / t / 1e12, strict=True):
        ax.annotate(f"{int(m)}", (xi, yi), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.axvline(r["ridge_flops_per_byte"], color="grey", lw=0.8, ls=":")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel("arithmetic intensity (FLOP/byte)")
    ax.set_ylabel("TFLOP/s")
    ax.set_title(f"{r['model']} on {r['tp']} x {r['gpu']}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _eff_from(d: dict[str, Any]) -> Any:
    from schedlab.costmodel.roofline import Efficiency

    return Efficiency.from_dict(d)


def _run_report(args: argparse.Namespace) -> int:
    r = build_report(args.model, args.gpu, args.tp, args.calibration)
    if args.plot:
        _plot(r, args.plot)
        r["plot"] = args.plot
    if args.json:
        print(json.dumps(r))
    else:
        print(format_report(r))
        if args.plot:
            print(f"\nroofline plot written to {args.plot}")
    return 0


def _run_validate(args: argparse.Namespace) -> int:
    from schedlab.costmodel.calibration import validate

    report = validate(args.profile_dir, args.gpu, calibration=args.calibration,
                      scale_out_link=args.scale_out_link)
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        label = f"calibration {args.calibration}" if args.calibration else "default efficiencies"
        print(f"{report.gpu}, {label}: {report.overall['rows']} rows from {len(report.files)} "
              f"files ({report.skipped_rows} rows without a measurement)")
        print(report.table())
    return 0


def _run_calibrate(args: argparse.Namespace) -> int:
    from schedlab.commands.outputs import output_file
    from schedlab.costmodel.calibration import calibrate, validate
    from schedlab.costmodel.profiling import load_profile

    output_file(args.output, "-o/--output")  # before the fit, not after it
    profile = load_profile(args.profile_dir, args.gpu, scale_out_link=args.scale_out_link)
    before = validate(profile)
    eff = calibrate(profile)
    after = validate(profile, calibration=eff)
    eff.save(args.output, gpu=profile.gpu.name, profile_dir=str(args.profile_dir),
             rows=len(profile), median_ape_before=before.overall["median_ape"],
             median_ape_after=after.overall["median_ape"])
    result = {"output": args.output, "gpu": profile.gpu.name, "efficiency": eff.to_dict(),
              "before": before.overall, "after": after.overall}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"calibrated on {len(profile)} rows for {profile.gpu.name}: overall median APE "
              f"{before.overall['median_ape']:.1%} -> {after.overall['median_ape']:.1%}, "
              f"p90 {before.overall['p90_ape']:.1%} -> {after.overall['p90_ape']:.1%}")
        print(after.table())
        print(f"saved to {args.output}")
    return 0
