"""``schedlab reproduce [PAPER ... | --all] [--quick | --full] [--json] [--plot-dir DIR]
[--report DIR [--profiles DIR]]``.

Runs seed-paper reproductions (:mod:`schedlab.seeds`) and prints the paper's numbers and ours side
by side. With no paper named it runs every seed (the same as ``--all``). Plots, and each sweep
behind them as a CSV file (``PAPER_TABLE.csv``), go to ``--plot-dir`` (default
``schedlab-out/``; ``--no-plot`` writes none; ``--quick`` runs to its ``quick/`` folder and
``--full`` to its ``full/`` folder, so a smoke run never overwrites a default run's files).
``--full`` runs the paper's scale where a seed's default run is smaller (Mooncake: the whole
traces). With ``--json`` stdout holds one JSON document: the seed's report for one paper, or
``{"seeds": [reports...], "wall_s": ...}`` for several or ``--all``. The exit code is 0 whenever
the reproductions ran, whether or not every claim holds; an unknown paper or a failing run is an
error (non-zero). ``--report DIR`` also writes ``DIR/index.html``, one self-contained page of
every claim, plot and table, a gap study, the cost-model validation against the measured kernels
of ``--profiles DIR`` (a folder in Vidur's layout) and speed figures
(:func:`schedlab.commands.report.write_report`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from schedlab.commands import add_quiet

__all__ = ["format_table", "format_value", "register", "run"]

DEFAULT_PLOT_DIR = "schedlab-out"


def register(subparsers: Any) -> None:
    """Add the ``reproduce`` subcommand to the CLI."""
    p = subparsers.add_parser(
        "reproduce",
        help="reproduce seed papers' headline claims: paper vs. measured",
        description=__doc__.split("\n\n", 1)[1],
    )
    p.add_argument(
        "papers", nargs="*", metavar="PAPER",
        help="seed papers to reproduce: {papers} (default: all of them)",
    )
    p.add_argument("--all", action="store_true", help="reproduce every seed paper")
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--quick", action="store_true",
        help="smoke-test sizes (tens of requests, a few rates): checks the pipeline, "
        "reproduces nothing; plots go to DIR/quick/",
    )
    size.add_argument(
        "--full", action="store_true",
        help="the paper's scale where a seed's default is smaller (mooncake: whole traces, "
        "about a minute); plots go to DIR/full/",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed of the workloads (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_quiet(p)
    plots = p.add_mutually_exclusive_group()
    plots.add_argument(
        "--plot-dir", default=DEFAULT_PLOT_DIR, metavar="DIR",
        help=f"where plots and sweep tables (CSV) are written (default: {DEFAULT_PLOT_DIR}/)",
    )
    plots.add_argument("--no-plot", action="store_true", help="write no plots and no CSV files")
    p.add_argument("--report", metavar="DIR",
                   help="also write DIR/index.html: one self-contained page of the claims, "
                   "plots and tables, a gap study, the cost-model validation and speed figures")
    p.add_argument("--profiles", metavar="DIR",
                   help="with --report: measured kernels in Vidur's layout to validate the cost "
                   "model against (e.g. ../shared/costmodel/vidur-profiling)")
    p.set_defaults(func=run)


def format_value(value: float | None, unit: str) -> str:
    """A claim's value with its unit (``-`` when there is none)."""
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:#.4g}x"
    return f"{value:#.4g} {unit}"


def format_table(reports: list[Any], csvs: dict[str, list[str]] | None = None) -> str:
    """Paper vs. measured for every claim of every report, as aligned plain text, then notes."""
    header = ("paper", "claim", "baseline", "paper value", "measured", "holds?", "source")
    rows, notes = [], []
    for rep in reports:
        for r in rep.claims:
            c = r.claim
            paper_val = format_value(c.paper_value, c.unit)
            verdict = f"{'yes' if r.holds else 'NO'} ({c.condition})"
            rows.append((rep.paper, c.name, c.baseline, paper_val,
                         format_value(r.measured_value, c.unit), verdict, c.source))
            if r.note:
                notes.append(f"  {rep.paper}/{c.name}: {c.metric}. {r.note}")
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(str(x).ljust(w) for x, w in zip(cells, widths, strict=True)).rstrip()

    out = [line(header), line(tuple("-" * w for w in widths))]
    out += [line(r) for r in rows]
    for rep in reports:
        plots = rep.setup.get("plots") or []
        tables = (csvs or {}).get(rep.paper) or []
        out.append(
            f"{rep.paper}: {rep.n_holding}/{len(rep.claims)} claims hold, wall {rep.wall_s:.1f} s"
            + (f", plots: {', '.join(plots)}" if plots else "")
            + (f", tables: {', '.join(tables)}" if tables else "")
        )
    if notes:
        out += ["", "notes:", *notes]
    return "\n".join(out)


def run(args: argparse.Namespace) -> int:
    """Run the ``reproduce`` subcommand; returns the exit code."""
    from schedlab.commands.outputs import output_dir
    from schedlab.errors import check_nonneg_int
    from schedlab.seeds.registry import get_seed, run_seed, seed_names

    check_nonneg_int(args.seed, "--seed", "schedlab reproduce")
    if args.all and args.papers:
        raise ValueError("give either PAPER names or --all, not both")
    names = list(dict.fromkeys(args.papers)) or seed_names()
    for name in names:
        get_seed(name)  # unknown names fail before anything runs
    report_dir = None
    if args.report is not None:
        if args.no_plot:
            raise ValueError("--report needs the plots: drop --no-plot")
        report_dir = output_dir(args.report, "--report")
    if args.profiles is not None and args.report is None:
        raise ValueError("--profiles is read only with --report DIR")
    if args.profiles is not None and not Path(args.profiles).is_dir():
        raise ValueError(f"--profiles {args.profiles!r}: no such folder")
    plot_dir = None
    if not args.no_plot:  # checked before the runs; a smoke run keeps its plots apart
        plot_dir = output_dir(args.plot_dir, "--plot-dir")
        if args.quick or args.full:
            plot_dir = plot_dir / ("quick" if args.quick else "full")
    start = time.perf_counter()
    reports, csvs = [], {}
    for name in names:
        if not (args.json or args.quiet):
            print(f"reproducing {name} ...", file=sys.stderr, flush=True)
        report = run_seed(name, quick=args.quick, full=args.full, plot_dir=plot_dir,
                          seed=args.seed)
        reports.append(report)
        if plot_dir is not None:
            csvs[name] = report.write_tables(plot_dir)
    wall_s = time.perf_counter() - start
    if report_dir is not None:
        from schedlab.commands.report import write_report

        if not (args.json or args.quiet):
            print("writing the report (gap study, cost-model validation, speed) ...",
                  file=sys.stderr, flush=True)
        page = write_report(report_dir, reports, profiles=args.profiles, seed=args.seed,
                            gap_size=(6, 2, 2.0) if args.quick else (8, 3, 5.0))
        if not (args.json or args.quiet):
            print(f"report: {page}", file=sys.stderr)
    if args.json:
        if len(reports) == 1 and args.papers:
            doc = reports[0].to_dict()
        else:
            doc = {"seeds": [r.to_dict() for r in reports], "wall_s": wall_s}
        print(json.dumps(doc, allow_nan=False))
    else:
        if args.quick:
            print("--quick: smoke-test sizes that check the pipeline; these numbers reproduce "
                  "nothing")
        print(format_table(reports, csvs))
        if len(reports) > 1:
            print(f"total wall {wall_s:.1f} s")
    return 0
