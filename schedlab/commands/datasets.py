"""``schedlab datasets list [--json]`` and ``schedlab datasets show NAME_OR_PATH [...]``.

``list`` prints every shipped trace with its licence, row count, time span, mean rate and length
statistics. ``show`` loads a shipped trace or any supported file (``--format`` when it cannot be
inferred, ``--columns FIELD=COLUMN,...`` for any other CSV or JSONL: every option of
:func:`~schedlab.datasets.load` has its flag), prints its summary (``--json``: one JSON document
on stdout) and with ``--plot FILE.png`` writes the length distributions and the arrival rate over
time. A failed load exits non-zero with the error (file, line and field).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from schedlab.commands.loader_options import add_loader_arguments, load_options

__all__ = ["register", "run_list", "run_show"]


def register(subparsers: Any) -> None:
    """Add the ``datasets`` subcommand (``list`` and ``show``) to the CLI."""
    p = subparsers.add_parser(
        "datasets",
        help="list the shipped traces; show a trace or a trace file",
        description=__doc__.split("\n\n", 1)[1],
    )
    sub = p.add_subparsers(dest="datasets_command", metavar="{list,show}")
    ls = sub.add_parser("list", help="shipped traces with licence and statistics")
    ls.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    ls.set_defaults(func=run_list)
    sh = sub.add_parser("show", help="summary (and plot) of a shipped trace or a file")
    sh.add_argument("target", metavar="NAME_OR_PATH", help="shipped dataset name or file path")
    add_loader_arguments(sh)
    sh.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    sh.add_argument("--plot", metavar="FILE.png", default=None, help="write a PNG summary plot")
    sh.set_defaults(func=run_show)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fmt_stats(s: dict) -> str:
    return " ".join(f"{k}={v:,.0f}" if k != "mean" else f"mean={v:,.1f}" for k, v in s.items())


def run_list(args: argparse.Namespace) -> int:
    """``schedlab datasets list``: the shipped traces with their size, span and lengths."""
    from schedlab.datasets import list_datasets

    rows = list_datasets()
    if args.json:
        print(json.dumps({"datasets": rows}, indent=2))
        return 0
    for d in rows:
        rate = d["mean_rate_per_s"]
        timing = (f"{d['time_span_s']:>7,.0f} s  {rate:5.2f} req/s" if rate is not None
                  else f"{'lengths only, no arrival times':<23}")
        print(f"{d['name']:<22} {d['rows']:>7,} rows  {timing}  {d['licence']:<10}  "
              f"{d['description']}")
        print(f"{'':<22} input:  {_fmt_stats(d['input_tokens'])}")
        print(f"{'':<22} output: {_fmt_stats(d['output_tokens'])}")
    print("Licences and attribution: schedlab/datasets/data/NOTICE.md")
    return 0


def run_show(args: argparse.Namespace) -> int:
    """``schedlab datasets show NAME_OR_PATH``: load one trace, print its summary, maybe plot it."""
    import warnings

    from schedlab.commands.outputs import output_file
    from schedlab.datasets import describe, load_with_report
    from schedlab.datasets.summary import plot_workload

    plot = output_file(args.plot, "--plot", suffix=".png") if args.plot else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the report below carries the same information
        result = load_with_report(args.target, **load_options(args))
    summary = describe(result.workload)
    summary["load_report"] = result.report.to_dict()
    if plot is not None:
        summary["plot"] = str(plot_workload(result.workload, plot))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    rate = summary["mean_rate_per_s"]
    print(
        f"{summary['name']}: {summary['rows']:,} requests over {summary['time_span_s']:,.1f} s"
        + (f" ({rate:.2f} req/s)" if rate else " (all at one time)")
    )
    print(f"  input tokens:  {_fmt_stats(summary['input_tokens'])}")
    print(f"  output tokens: {_fmt_stats(summary['output_tokens'])}")
    if "prefix_block_reuse" in summary:
        print(
            f"  prefix blocks: {summary['prefix_blocks_per_request']:.1f} per request, "
            f"{summary['prefix_block_reuse']:.1%} of references repeat an earlier block"
        )
    print(f"  {result.report.summary()}")
    for note in result.report.notes:
        print(f"  note: {note}")
    if args.plot:
        print(f"  plot: {summary['plot']}")
    if result.report.n_skipped:
        print(f"  skipped lines: {result.report.skipped_lines[:20].tolist()}", file=sys.stderr)
    return 0
