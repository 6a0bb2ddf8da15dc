"""Validate the roofline against measured kernels, and fit its few transferable parameters.

:func:`validate` predicts every measured row of a profile (:mod:`schedlab.costmodel.profiling`)
and reports, per op and overall, the median and 90th percentile of the absolute percentage error
``|predicted - measured| / measured`` (fractions: 0.12 is 12%). ``overall`` pools every row of
every op; ``gemm`` pools the four GEMMs.

:func:`calibrate` fits the fields of :class:`~schedlab.costmodel.roofline.Efficiency` (kernel-class
efficiencies, the GEMM rows ramp, launch overhead, collective latencies, link efficiencies) by
robust least squares on ``log(predicted / measured)``, each op weighted equally whatever its row
count. These are properties of kernel classes and links, not of rows, so a calibration made on one
GPU is meant to carry over to another with that GPU's datasheet numbers. Parameters no measured
row depends on keep their defaults.

>>> from schedlab.costmodel.roofline import Efficiency
>>> ape(np.array([1.1, 0.5]), np.array([1.0, 1.0])).round(2).tolist()
[0.1, 0.5]
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.costmodel.hardware import Accelerator
from schedlab.costmodel.ops import KINDS
from schedlab.costmodel.profiling import GEMM_OPS, Profile, load_profile
from schedlab.costmodel.roofline import LINK_ROLES, Efficiency
from schedlab.progress import counter

__all__ = ["ValidationReport", "ape", "calibrate", "predict", "validate"]


def ape(predicted: np.ndarray, measured: np.ndarray) -> np.ndarray:
    """Absolute percentage error as a fraction."""
    return np.abs(predicted - measured) / measured


def _as_profile(profile: str | Path | Profile, gpu: str | Accelerator | None,
                scale_out_link: str | None = None) -> Profile:
    if isinstance(profile, Profile):
        return profile
    if gpu is None:
        raise ValueError("The 'gpu' parameter is required when 'profile' is a directory.")
    return load_profile(profile, gpu, scale_out_link=scale_out_link)


def _prepare(profile: Profile) -> list[tuple[str, np.ndarray, dict[str, np.ndarray]]]:
    """Row indices and columns of every kernel class and collective, computed once per profile."""
    groups = []
    for kind in (*KINDS, "all_reduce", "send_recv"):
        idx = np.flatnonzero(profile.kind == kind)
        if not idx.size:
            continue
        cols = {c: getattr(profile, c)[idx] for c in ("flops", "nbytes", "rows", "kernels",
                                                     "workers", "link_bytes_per_s",
                                                     "link_latency_s")}
        roles = profile.role[idx]
        cols.update({f"role:{r}": roles == r for r in LINK_ROLES})
        groups.append((kind, idx, cols))
    return groups


def _predict(groups: list, n_rows: int, gpu: Accelerator, eff: Efficiency,
             dtype: str = "bf16") -> np.ndarray:
    out = np.empty(n_rows)
    launch = eff.launch_s(gpu)
    peak, bw_hbm = gpu.peak_flops(dtype), gpu.hbm_bytes_per_s
    for kind, idx, c in groups:
        if kind in KINDS:
            ec = eff.compute_efficiency(kind)
            if kind == "gemm":
                ec = ec * c["rows"] / (c["rows"] + eff.rows_half)
            t = np.maximum(c["flops"] / (peak * ec),
                           c["nbytes"] / (bw_hbm * eff.memory_efficiency(kind)))
            out[idx] = t + c["kernels"] * launch
            continue
        link_eff = np.select([c[f"role:{r}"] for r in LINK_ROLES],
                             [eff.link_efficiency(r) for r in LINK_ROLES], np.nan)
        bw = c["link_bytes_per_s"] * link_eff
        n, b, lat = c["workers"], c["nbytes"], c["link_latency_s"]
        if kind == "all_reduce":
            out[idx] = (eff.collective_latency_s + 2 * (n - 1) * lat
                        + 2 * (n - 1) / n * b / (bw * eff.ring_efficiency))
        else:
            out[idx] = eff.p2p_latency_s + lat + b / bw
    return out


def predict(profile: Profile, efficiency: Efficiency | None = None,
            dtype: str = "bf16") -> np.ndarray:
    """Predicted seconds of every row of ``profile`` (same order)."""
    eff = Efficiency() if efficiency is None else efficiency
    return _predict(_prepare(profile), len(profile), profile.gpu, eff, dtype)


def _stats(errors: np.ndarray, predicted: np.ndarray, measured: np.ndarray) -> dict[str, Any]:
    return {
        "rows": int(errors.size),
        "median_ape": float(np.median(errors)),
        "p90_ape": float(np.quantile(errors, 0.9)),
        "median_ratio": float(np.median(predicted / measured)),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationReport:
    """Errors of the model on a profile: ``ops[name]``, ``gemm`` and ``overall`` each hold
    ``rows``, ``median_ape``, ``p90_ape`` (fractions) and ``median_ratio`` (predicted/measured)."""

    gpu: str
    overall: dict[str, Any]
    gemm: dict[str, Any]
    ops: dict[str, dict[str, Any]]
    files: tuple[str, ...]
    skipped_rows: int
    efficiency: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field (what ``costmodel validate --json`` prints)."""
        return dataclasses.asdict(self)

    def table(self) -> str:
        """A plain-text table, one line per op, then the GEMMs and the overall row."""
        lines = [f"{'op':<26}{'rows':>7}{'median APE':>12}{'p90 APE':>10}{'pred/meas':>11}"]
        items = [*self.ops.items(), ("GEMMs", self.gemm), ("overall", self.overall)]
        for name, s in items:
            if not s["rows"]:
                continue
            lines.append(f"{name:<26}{s['rows']:>7}{s['median_ape']:>11.1%}{s['p90_ape']:>10.1%}"
                         f"{s['median_ratio']:>11.2f}")
        return "\n".join(lines)


def validate(profile: str | Path | Profile, gpu: str | Accelerator | None = None,
             calibration: Efficiency | str | Path | None = None, *,
             scale_out_link: str | None = None) -> ValidationReport:
    """Compare predictions with the measured medians of every row of a profile.

    ``profile`` is a folder in Vidur's layout (then ``gpu`` picks its ``compute/<gpu>`` and
    ``network/<gpu>_*`` folders) or a loaded :class:`~schedlab.costmodel.profiling.Profile`;
    ``calibration`` an :class:`Efficiency`, a JSON file from :func:`calibrate`, or ``None``;
    ``scale_out_link`` the inter-node link (see :func:`~profiling.default_scale_out_link`).
    """
    prof = _as_profile(profile, gpu, scale_out_link)
    if isinstance(calibration, (str, Path)):
        eff = Efficiency.load(calibration)
    else:
        eff = Efficiency() if calibration is None else calibration
    pred = predict(prof, eff)
    err = ape(pred, prof.measured_s)
    per_op = {}
    for op in dict.fromkeys(prof.op.tolist()):
        m = prof.op == op
        per_op[op] = _stats(err[m], pred[m], prof.measured_s[m])
    g = np.isin(prof.op, GEMM_OPS)
    empty = {"rows": 0, "median_ape": float("nan"), "p90_ape": float("nan"),
             "median_ratio": float("nan")}
    return ValidationReport(
        gpu=prof.gpu.name,
        overall=_stats(err, pred, prof.measured_s),
        gemm=_stats(err[g], pred[g], prof.measured_s[g]) if g.any() else empty,
        ops=per_op,
        files=prof.files,
        skipped_rows=prof.skipped_rows,
        efficiency=eff.to_dict(),
    )


#: Fitted fields, their bounds, and which rows they touch (a kind, a link role, or ``None``: all).
_BOUNDS: dict[str, tuple[float, float]] = {
    "gemm_compute": (0.05, 1.0), "gemm_memory": (0.05, 1.0), "rows_half": (0.0, 512.0),
    "attention_compute": (0.05, 1.0), "attention_memory": (0.05, 1.0),
    "norm_memory": (0.02, 1.0), "rope_memory": (0.02, 1.0), "act_memory": (0.02, 1.0),
    "add_memory": (0.02, 1.0), "gather_memory": (0.02, 1.0),
    "launch_overhead_s": (0.0, 50e-6), "collective_latency_s": (0.0, 1e-3),
    "p2p_latency_s": (0.0, 1e-3), "scale_up_efficiency": (0.02, 1.0),
    "host_efficiency": (0.02, 1.0), "scale_out_efficiency": (0.02, 1.0),
    "ring_efficiency": (0.05, 1.0),
}


def _fitted_fields(prof: Profile) -> list[str]:
    kinds = set(prof.kind.tolist())
    roles = set(prof.role.tolist())
    fields = []
    for name in _BOUNDS:
        prefix = name.split("_")[0]
        if name in ("rows_half", "launch_overhead_s"):
            use = bool(kinds & set(KINDS))
        elif prefix in KINDS:
            use = prefix in kinds
        elif name in ("collective_latency_s", "ring_efficiency"):
            use = "all_reduce" in kinds
        elif name == "p2p_latency_s":
            use = "send_recv" in kinds
        else:
            use = name.removesuffix("_efficiency") in roles
        if use:
            fields.append(name)
    return fields


def _stratified(prof: Profile, max_rows_per_op: int) -> Profile:
    """At most ``max_rows_per_op`` rows of every op, evenly spaced in file order (deterministic)."""
    keep = np.zeros(len(prof), dtype=bool)
    for op in set(prof.op.tolist()):
        idx = np.flatnonzero(prof.op == op)
        step = max(1, -(-idx.size // max_rows_per_op))
        keep[idx[::step]] = True
    return prof.take(keep)


def calibrate(profile: str | Path | Profile, gpu: str | Accelerator | None = None, *,
              start: Efficiency | None = None, max_nfev: int = 200, max_rows_per_op: int = 2000,
              scale_out_link: str | None = None) -> Efficiency:
    """Fit :class:`Efficiency` to a profile (robust least squares on log ratios, ops weighted
    equally, on at most ``max_rows_per_op`` evenly spaced rows of each op). Returns the fitted
    instance; save it with :meth:`Efficiency.save`."""
    from scipy.optimize import least_squares

    prof = _as_profile(profile, gpu, scale_out_link)
    if len(prof) == 0:
        raise ValueError("calibrate: the profile has no measured rows.")
    prof = _stratified(prof, max_rows_per_op)
    base = Efficiency() if start is None else start
    if base.launch_overhead_s is None:
        base = dataclasses.replace(base, launch_overhead_s=prof.gpu.kernel_launch_s)
    names = _fitted_fields(prof)
    lo = np.array([_BOUNDS[n][0] for n in names])
    hi = np.array([_BOUNDS[n][1] for n in names])
    x0 = np.clip(np.array([float(getattr(base, n)) for n in names]), lo + 1e-9, hi - 1e-9)
    scale = np.maximum(np.abs(x0), (hi - lo) * 1e-3)
    counts = {op: int((prof.op == op).sum()) for op in set(prof.op.tolist())}
    weight = np.sqrt(1.0 / np.array([counts[o] for o in prof.op]))
    log_meas = np.log(prof.measured_s)
    groups = _prepare(prof)

    with counter(f"calibrate {prof.gpu.name}: model evaluations") as tick:

        def residuals(x: np.ndarray) -> np.ndarray:
            tick()
            eff = dataclasses.replace(base, **dict(zip(names, x.tolist(), strict=True)))
            return weight * (np.log(_predict(groups, len(prof), prof.gpu, eff)) - log_meas)

        fit = least_squares(residuals, x0, bounds=(lo, hi), x_scale=scale, loss="soft_l1",
                            f_scale=0.1 * float(weight.max()), max_nfev=max_nfev)
    return dataclasses.replace(base, **dict(zip(names, fit.x.tolist(), strict=True)))
