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
from schedlab.costmodel.roofline import (
    ELEMENTWISE_KINDS,
    L2_KINDS,
    LINK_ROLES,
    Efficiency,
    roofline_time_s,
    sm_cycles_per_s,
)
from schedlab.progress import counter

__all__ = ["ValidationReport", "ape", "calibrate", "cross_validate", "predict", "validate"]


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
    for kind, idx, c in groups:
        if kind in KINDS:
            out[idx] = roofline_time_s(flops=c["flops"], nbytes=c["nbytes"], rows=c["rows"],
                                       kind=kind, gpu=gpu, efficiency=eff, dtype=dtype,
                                       kernels=c["kernels"])
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
    "elementwise_memory": (0.05, 1.0), "norm_bytes_per_cycle": (0.1, 128.0),
    "rope_bytes_per_cycle": (0.1, 128.0), "act_bytes_per_cycle": (0.1, 128.0),
    "add_bytes_per_cycle": (0.1, 128.0), "gather_bytes_per_cycle": (0.1, 128.0),
    "l2_share": (0.0, 1.0), "l2_speedup": (1.0, 4.0),
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
        elif name == "elementwise_memory":
            use = bool(kinds & set(ELEMENTWISE_KINDS))
        elif name.startswith("l2_"):
            use = bool(kinds & set(L2_KINDS)) and prof.gpu.l2_bytes is not None
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
    # One GPU cannot tell an HBM-bound element-wise kernel from an SM-bound one: fit each kind's
    # rate as SM-bound (no cap, a smooth problem), then take the fastest kind as the HBM-bound one.
    capped = "elementwise_memory" in names
    if capped:
        names.remove("elementwise_memory")
        base = dataclasses.replace(base, elementwise_memory=1.0)
    lo = np.array([_BOUNDS[n][0] for n in names])
    hi = np.array([_BOUNDS[n][1] for n in names])
    x0 = np.clip(np.array([float(getattr(base, n)) for n in names]), lo + 1e-9, hi - 1e-9)
    if capped:  # SM limits below HBM bandwidth, so the uncapped rate is what the fit moves
        sm_bound = prof.gpu.hbm_bytes_per_s / sm_cycles_per_s(prof.gpu)
        per_cycle = np.array([n.endswith("_bytes_per_cycle") for n in names])
        hi[per_cycle] = np.minimum(hi[per_cycle], sm_bound)
        x0[per_cycle] = np.minimum(x0[per_cycle], 0.9 * hi[per_cycle])
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

        # the cache's share is a kink in the model: start from a few shares, keep the best fit
        starts = [x0]
        if "l2_share" in names:
            i = names.index("l2_share")
            for share in (0.25, 0.75):
                starts.append(x0.copy())
                starts[-1][i] = share
        fit = min((least_squares(residuals, x, bounds=(lo, hi), x_scale=scale, loss="soft_l1",
                                 f_scale=0.1 * float(weight.max()), max_nfev=max_nfev)
                   for x in starts), key=lambda f: f.cost)
    fitted = dataclasses.replace(base, **dict(zip(names, fit.x.tolist(), strict=True)))
    return _hbm_cap_from_fastest_kind(fitted, prof, start or Efficiency()) if capped else fitted


def _hbm_cap_from_fastest_kind(eff: Efficiency, prof: Profile, start: Efficiency) -> Efficiency:
    """Set ``elementwise_memory`` to the fastest measured element-wise kind's rate (as a fraction
    of HBM bandwidth) and leave that kind's SM limit above it: predictions on ``prof``'s GPU are
    unchanged, and on another GPU that kind stays HBM-bound where the others are SM-bound."""
    kinds = [k for k in ELEMENTWISE_KINDS if k in set(prof.kind.tolist())]
    cycles, bw = sm_cycles_per_s(prof.gpu), prof.gpu.hbm_bytes_per_s
    rates = {k: getattr(eff, f"{k}_bytes_per_cycle") * cycles for k in kinds}
    fastest = max(rates, key=rates.__getitem__)
    share = min(1.0, rates[fastest] / bw)
    top = max(getattr(start, f"{fastest}_bytes_per_cycle"), share * bw / cycles)
    return dataclasses.replace(eff, elementwise_memory=share, **{f"{fastest}_bytes_per_cycle": top})


def cross_validate(profile: str | Path | Profile, gpu: str | Accelerator | None = None, *,
                   groups: list[str] | None = None, max_nfev: int = 200,
                   max_rows_per_op: int = 2000) -> dict[str, ValidationReport]:
    """Leave one model out: for each model folder (``group``) of the kernels' rows, calibrate on
    every other model and validate on the one held out (its kernels only; the collectives have
    no model). Transfer to a shape the fit never saw, measured on one GPU: the protocol the
    README's cost-model section reports.

    ``groups`` picks the held-out models (default: every model folder of the profile).
    """
    prof = _as_profile(profile, gpu)
    kernels = ~prof.is_network
    names = list(dict.fromkeys(prof.group[kernels].tolist()))
    if groups is None:
        groups = names
    unknown = [g for g in groups if g not in names]
    if unknown:
        raise ValueError(f"The 'groups' parameter of cross_validate names {unknown}, which the "
                         f"profile does not hold; its models are {names}.")
    if len(names) < 2:
        raise ValueError("cross_validate needs a profile of at least two models.")
    out = {}
    for name in groups:
        held = prof.group == name
        fitted = calibrate(prof.take(~held), max_nfev=max_nfev, max_rows_per_op=max_rows_per_op)
        out[name] = validate(prof.take(held & kernels), calibration=fitted)
    return out
