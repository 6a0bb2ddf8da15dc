"""Summaries of workloads and of the shipped traces (``schedlab datasets list|show``).

>>> from schedlab.datasets import load
>>> d = describe(load("azure-conv-2023"))
>>> d["rows"], round(d["mean_rate_per_s"], 2), d["output_tokens"]["p50"]
(19366, 5.53, 129.0)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from schedlab.errors import check_instance, check_positive_int
from schedlab.records import Workload

__all__ = ["describe", "list_datasets", "plot_workload"]

_QUANTILES = {"p50": 0.5, "p90": 0.9, "p99": 0.99}


def _stats(x: np.ndarray) -> dict[str, float]:
    if x.size == 0:
        return {}
    out = {"mean": float(x.mean()), "min": float(x.min())}
    out.update({k: float(np.quantile(x, q)) for k, q in _QUANTILES.items()})
    out["max"] = float(x.max())
    return out



def describe(workload: Workload) -> dict:
    """Row count, time span (first to last arrival), mean rate (rows / span), length statistics,
    and for prefix blocks the fraction of block references that repeat an earlier block."""
    check_instance(workload, Workload, "workload", "describe")
    n = len(workload)
    span = workload.duration_s
    d: dict = {
        "name": workload.name,
        "rows": n,
        "time_span_s": span,
        "mean_rate_per_s": n / span if span > 0 else None,
        "input_tokens": _stats(workload.input_tokens),
        "output_tokens": _stats(workload.output_tokens),
    }
    if workload.group_id is not None:
        d["groups"] = int(np.unique(workload.group_id).size)
    pb = workload.prefix_block_ids
    if pb is not None and pb.ids.size:
        _, first = np.unique(pb.ids, return_index=True)
        d["prefix_blocks_per_request"] = float(pb.ids.size / n)
        d["prefix_block_reuse"] = float(1.0 - first.size / pb.ids.size)
    if workload.features:
        d["features"] = sorted(workload.features)
    return d


def list_datasets() -> list[dict]:
    """Every shipped trace with its provenance and :func:`describe` statistics.

    >>> [d["name"] for d in list_datasets()][-1]
    'sharegpt-lengths'
    """
    from schedlab.datasets.catalog import SHIPPED
    from schedlab.datasets.loading import load

    out = []
    for name in sorted(SHIPPED):
        t = SHIPPED[name]
        entry = {
            "name": name,
            "format": t.format,
            "file": t.file,
            "licence": t.licence,
            "licence_url": t.licence_url,
            "source": t.source,
            "attribution": t.attribution,
            "description": t.description,
            "sha256": t.sha256,
        }
        entry.update({k: v for k, v in describe(load(name)).items() if k != "name"})
        out.append(entry)
    return out


def plot_workload(workload: Workload, path: str | Path, *, bins: int = 60) -> Path:
    """Write a PNG with the input and output length distributions (log-spaced histograms) and the
    arrival rate over time (requests per second in ``bins`` windows). Draws on a bare
    :class:`matplotlib.figure.Figure` (Agg canvas, imported here only), so the caller's pyplot
    backend and figure list are left alone."""
    from matplotlib.figure import Figure

    from schedlab.plotting import log_axis

    check_instance(workload, Workload, "workload", "plot_workload")
    bins = check_positive_int(bins, "bins", "plot_workload")
    fig = Figure(figsize=(14, 3.8))
    axes = fig.subplots(1, 3)
    for ax, col in zip(axes[:2], ("input_tokens", "output_tokens"), strict=True):
        x = getattr(workload, col)
        edges = np.geomspace(max(1, x.min()), max(2, x.max()) + 1, bins)
        ax.hist(x, bins=edges, color="tab:blue")
        log_axis(ax, "x")
        ax.set_xlabel(f"{col.replace('_', ' ')}")
        ax.set_ylabel("requests")
        ax.set_title(f"{col.split('_')[0]} length (median {np.median(x):.0f})")
    ax = axes[2]
    span = workload.duration_s
    if span > 0:
        counts, edges = np.histogram(workload.arrival_s, bins=bins)
        ax.step(edges[:-1], counts / np.diff(edges), where="post")
        ax.set_xlabel("time (s)")
        ax.set_ylabel("arrivals per second")
        ax.set_title(f"arrival rate (mean {len(workload) / span:.2f}/s)")
    else:
        ax.text(0.5, 0.5, "no arrival times\n(all requests at t=0)", ha="center", va="center")
        ax.set_axis_off()
    fig.suptitle(f"{workload.name}: {len(workload)} requests")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=100)
    return path
