"""LoongServe (Wu et al., "LoongServe: Efficiently Serving Long-Context Large Language Models with
Elastic Sequence Parallelism", SOSP'24, arXiv 2404.09526): elastic sequence parallelism against
static parallelism, chunked prefill and prefill/decode disaggregation.

LWM-Text-1M (Llama-2-7B shape) on one node of 8 A800s, as in §7.1: LoongServe on four TP2 elastic
instances of 210,000 KV tokens each (:func:`schedlab.sim.simulate_elastic`, the scheduler
:func:`schedlab.policies.loongserve.loongserve` with the runs' settings, the out-of-order limit
per dataset); vLLM as one TP8 instance (900,000 tokens); chunked prefill (LightLLM SplitFuse) the
same with the dataset's oracle chunk (256 / 2,048 / 16,384 / 2,048 tokens); DistServe as one TP4
prefill and one TP4 decode instance (:func:`schedlab.sim.simulate_disaggregated`, no admission
control: a request that finds no KV is lost, as DistServe runs out of memory). Requests come from
:func:`schedlab.datasets.long_context_workload` (ShareGPT lengths shipped; L-Eval and LV-Eval
lengths reconstructed from the paper's ranges), Poisson arrivals, one sequence of gaps rescaled
per rate as in the artifact.

- **Fig. 10**: a system's throughput is the highest rate whose mean normalised per-token latency
  (end-to-end latency / (prompt + output), the artifact's metric) stays within the artifact's SLO
  (92 / 3.5 / 2.5 / 70 ms per token for ShareGPT / L-Eval / LV-Eval / Mixed), found by
  bisection on the rate; a run that loses requests misses it.
- **Fig. 12**: on Zipf-resampled Mixed lengths (alpha 1.0 / 1.2 / 1.4, under 200K), P90 goodput:
  the highest rate at which 90% of the requests have TTFT within ``max(25 x`` the analytic
  model's SP4 x TP2 prefill, 15 s) and TPOT within 50 ms; against static TP8 (one TP8
  instance), static TP2 + SP4 (``static-sp``: every prefill over the four instances, KV striped,
  one decode batch) and (TP2)x4 replicas behind round robin.
- **Fig. 13**: the same goodput on ShareGPT with and without elastic scale-up.
- **Fig. 15**: the analytic model's fit error
  (:func:`schedlab.costmodel.elastic.fit_prefill_model`).

The default runs 150 requests per rate point and 5 bisection steps; ``quick`` 60 and 4;
``full`` 1,000 and 8 (the paper's runs use thousands); ShareGPT points use 8 times as many,
Mixed twice, Zipf four times (short requests need more to load the GPUs).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.seeds.contract import Claim, ClaimResult, SeedReport, parallel_jobs

__all__ = ["CLAIMS", "PAPER", "SLOS", "run"]

PAPER = "loongserve"
MODEL, GPU = "lwm-text-1m", "a800"
#: The artifact's SLOs in ms per token: per-token, input, output (``ae-plot-fig-10-11-12.py``).
SLOS = {"sharegpt": (92.0, 20.0, 320.0), "leval": (3.5, 1.8, 320.0),
        "lveval": (2.5, 2.5, 365.0), "mixed": (70.0, 90.0, 360.0)}
#: SplitFuse's oracle chunk per dataset and LoongServe's out-of-order limit (the runs' settings).
CHUNKS = {"sharegpt": 256, "leval": 2048, "lveval": 16384, "mixed": 2048, "zipf": 512}
OOE = {"sharegpt": 1, "leval": 8, "lveval": 8, "mixed": 4, "zipf": 64}
#: Bisection ranges of the rate (requests/s), around the artifact's rate points.
RATES = {"sharegpt": (0.5, 400.0), "leval": (0.02, 20.0), "lveval": (0.005, 5.0),
         "mixed": (0.01, 20.0), "zipf": (0.05, 100.0)}
#: Requests a rate point, as a multiple of the mode's (short requests need more to load the GPUs).
SCALE_N = {"sharegpt": 8, "leval": 1, "lveval": 1, "mixed": 2, "zipf": 4}
FIG10_SYSTEMS = ("loongserve", "vllm", "chunked-prefill", "distserve")
FIG12_SYSTEMS = ("loongserve", "static-tp8", "static-tp2-sp4", "tp2x4")
ZIPF = (1.0, 1.2, 1.4)
MODES = {"quick": (60, 4), "default": (150, 5), "full": (1000, 8)}

CLAIMS = (
    Claim(name="vs-vllm", metric="throughput under the per-token SLO, LoongServe / vLLM (TP8), "
          "best of the four datasets", baseline="vLLM, TP8", paper_value=4.64, unit="x",
          source="arXiv 2404.09526 §7.2, Fig. 10 (up to 4.64x total throughput)"),
    Claim(name="vs-chunked-prefill", metric="throughput under the per-token SLO, LoongServe / "
          "chunked prefill (SplitFuse, oracle chunk), best of the four datasets",
          baseline="LightLLM SplitFuse, TP8", paper_value=3.85, unit="x",
          source="arXiv 2404.09526 abstract and Fig. 10 (up to 3.85x)"),
    Claim(name="vs-disaggregation", metric="throughput under the per-token SLO, LoongServe / "
          "DistServe (4 + 4 GPUs), best of ShareGPT and L-Eval", baseline="DistServe, TP4 + TP4",
          paper_value=5.81, unit="x",
          source="arXiv 2404.09526 abstract and Fig. 10 (up to 5.81x; OOM on the others)"),
    Claim(name="esp-ablation", metric="P90 goodput, LoongServe / the best static variant (TP8, "
          "TP2 + SP4, (TP2)x4), least over Zipf 1.0 / 1.2 / 1.4",
          baseline="the best of static TP8, TP2 + SP4 and (TP2)x4", paper_value=1.53,
          unit="x", source="arXiv 2404.09526 §7.4, Fig. 12 (2.33x / 1.98x / 1.53x)"),
    Claim(name="scale-up", metric="P90 goodput on ShareGPT, with / without elastic scale-up",
          baseline="LoongServe without elastic scale-up", paper_value=2.87, unit="x",
          source="arXiv 2404.09526 §7.4, Fig. 13a"),
    Claim(name="model-fit", metric="mean relative error of the analytic prefill model (Eq. 7) "
          "fitted to our roofline, worst of SP1..SP4 on TP2", baseline="the roofline it fits",
          paper_value=0.10, unit="fraction", direction="<", threshold=0.10,
          source="arXiv 2404.09526 §5.5, Fig. 15 (under 10%)"),
)


def run(*, quick: bool = False, full: bool = False, plot_dir: str | PathLike[str] | None = None,
        seed: int = 0) -> SeedReport:
    """Reproduce LoongServe's Fig. 10, 12, 13 and 15 claims (see the module docstring):
    about 25 s on two cores by default (the rate searches on two processes; the results do not
    depend on it), ``quick=True`` a smoke size, ``full=True`` 1,000
    requests per rate point. ``plot_dir`` receives ``loongserve_throughput.png``."""
    from schedlab.costmodel.elastic import fit_prefill_model
    from schedlab.progress import counter
    from schedlab.sim.elastic import ElasticCluster

    if quick and full:
        raise ValueError("run(): pass at most one of quick=True or full=True.")
    start = time.perf_counter()
    mode = "full" if full else "quick" if quick else "default"
    n, steps = MODES[mode]
    cluster = ElasticCluster(model=MODEL, gpu=GPU, tp=2, n_instances=4,
                             kv_capacity_tokens=210_000)
    rows = cluster.parts()["rows"]
    searches = ([("fig10", system, d, None, RATES[d]) for d in SLOS
                 for system in _fig10_systems(d)]
                + [("fig12", system, "zipf", alpha, RATES["zipf"]) for alpha in ZIPF
                   for system in FIG12_SYSTEMS]
                + [("fig13", system, "sharegpt", None, RATES["sharegpt"])
                   for system in ("loongserve", "loongserve-no-scale-up")])
    tasks = ((kind, system, d, alpha, bounds, n, seed, cluster, rows, steps)
             for kind, system, d, alpha, bounds in searches)
    jobs = parallel_jobs(quick)  # the searches on two processes
    if jobs > 1:
        from joblib import Parallel, delayed

        found = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_search)(*t) for t in tasks)
    else:
        found = (_search(*t) for t in tasks)
    fig10: dict[str, list[Any]] = {"dataset": [], "system": [], "rate": []}
    fig12: dict[str, list[Any]] = {"zipf": [], "system": [], "p90_goodput": []}
    scale: dict[str, float] = {}
    with counter("loongserve: rate searches", len(searches)) as tick:
        for (kind, system, d, alpha, _), value in zip(searches, found, strict=True):
            if kind == "fig10":
                fig10["dataset"].append(d)
                fig10["system"].append(system)
                fig10["rate"].append(round(value, 4))
            elif kind == "fig12":
                fig12["zipf"].append(alpha)
                fig12["system"].append(system)
                fig12["p90_goodput"].append(round(value, 4))
            else:
                scale[system] = value
            tick()
    fit = fit_prefill_model(cluster.parts()["esp"], ks=(1, 2, 3, 4))

    def rate(d: str, s: str) -> float:
        return next(r for dd, ss, r in zip(fig10["dataset"], fig10["system"], fig10["rate"],
                                           strict=True) if dd == d and ss == s)

    claims: list[ClaimResult] = []
    for claim, base, sets in ((CLAIMS[0], "vllm", tuple(SLOS)),
                              (CLAIMS[1], "chunked-prefill", tuple(SLOS)),
                              (CLAIMS[2], "distserve", ("sharegpt", "leval"))):
        ratios = {d: _ratio(rate(d, "loongserve"), rate(d, base)) for d in sets}
        best = max(ratios.values())
        capped = [d for d in sets if rate(d, "loongserve") >= RATES[d][1]]
        both = [d for d in capped if rate(d, base) >= RATES[d][1]]
        claims.append(claim.measured(round(best, 4), note=(
            "per dataset " + ", ".join(f"{d} {v:.2f}x" for d, v in ratios.items())
            + "; rates (req/s) LoongServe " + ", ".join(
                f"{d} {rate(d, 'loongserve'):.3g}" for d in sets)
            + f", {base} " + ", ".join(f"{d} {rate(d, base):.3g}" for d in sets)
            + f". {n} requests a rate point, {steps} bisection steps."
            + ("" if not capped else
               " LoongServe met the SLO at the top of the bisection range on "
               + ", ".join(capped) + " (so those ratios are lower bounds): its back-fill and "
               "out-of-order admission keep the short requests flowing past the long prefills, "
               "and the mean of latency / length, the paper's metric, stays low while long "
               "requests wait.")
            + ("" if not both else
               " On " + ", ".join(both) + " both met it at the top: the roofline decodes short "
               "requests faster than the SLO needs.")
            + claim.factor_note(best))))
    good = {(a, s): g for a, s, g in zip(fig12["zipf"], fig12["system"], fig12["p90_goodput"],
                                         strict=True)}
    abl = {a: _ratio(good[a, "loongserve"], max(good[a, s] for s in FIG12_SYSTEMS[1:]))
           for a in ZIPF}
    claims.append(CLAIMS[3].measured(round(min(abl.values()), 4), note=(
        "per alpha " + ", ".join(f"{a:g}: {v:.2f}x" for a, v in abl.items()) + "; goodput "
        "(req/s) " + "; ".join(f"alpha {a:g} " + ", ".join(f"{s} {good[a, s]:.3g}"
                                                          for s in FIG12_SYSTEMS)
                               for a in ZIPF) + "." + CLAIMS[3].factor_note(min(abl.values())))))
    up = _ratio(scale["loongserve"], scale["loongserve-no-scale-up"])
    claims.append(CLAIMS[4].measured(round(up, 4), note=(
        f"P90 goodput {scale['loongserve']:.3g} req/s with scale-up, "
        f"{scale['loongserve-no-scale-up']:.3g} without (one master per batch; a full batch "
        "pauses its newest request)." + CLAIMS[4].factor_note(up)
        + f" The rate search resolves {_resolution(RATES['sharegpt'], steps):.0%} steps (the "
        f"bisection's last interval), and at {n} requests a point the goodput rule is not "
        "monotone in the rate near the limit: a gain smaller than a step reads as 1x or as "
        "one step.")))
    worst = float(fit.mean_rel_error.max())
    claims.append(CLAIMS[5].measured(round(worst, 4), note=(
        "mean relative error per k " + ", ".join(f"{k}: {e:.1%}" for k, e in
                                                 zip(fit.model.degrees, fit.mean_rel_error,
                                                     strict=True))
        + f"; largest single error {float(fit.max_rel_error.max()):.0%} (small batches)")))
    plots = [] if plot_dir is None else _plot(fig10, plot_dir)
    setup = {"model": MODEL, "gpu": GPU, "mode": mode, "requests_per_rate": n,
             "bisection_steps": steps, "elastic": {"instances": 4, "tp": 2,
                                                   "kv_capacity_tokens": 210_000},
             "slos_ms_per_token": SLOS, "chunks": CHUNKS, "max_num_ooe": OOE, "seed": seed,
             "plots": plots}
    return SeedReport(paper=PAPER, claims=tuple(claims), setup=setup,
                      tables={"fig10_throughput": fig10, "fig12_goodput": fig12,
                              "fig13_scale_up": {"system": list(scale),
                                                 "p90_goodput": [round(v, 4)
                                                                 for v in scale.values()]}},
                      wall_s=time.perf_counter() - start)


def _search(kind: str, system: str, dataset: str, alpha: float | None,
            bounds: tuple[float, float], n: int, seed: int, cluster: Any,
            rows: dict[int, tuple[float, float, float]], steps: int) -> float:
    """One rate search of the report (``kind``: its figure): the highest rate at which
    ``system`` meets Fig. 10's per-token SLO or Fig. 12-13's goodput rule. A module function, so
    the searches can run in other processes; each is deterministic."""
    if kind == "fig10":
        ok = _per_token_ok(system, dataset, n, seed, cluster)
    else:
        ok = _goodput_ok(system, dataset, n, seed, cluster, rows, zipf=alpha)
    return _max_rate(ok, *bounds, steps)


def _fig10_systems(dataset: str) -> tuple[str, ...]:
    return FIG10_SYSTEMS if dataset in ("sharegpt", "leval") else FIG10_SYSTEMS[:3]


def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else math.inf


def _resolution(bounds: tuple[float, float], steps: int) -> float:
    """The relative width of the last interval of :func:`_max_rate`'s bisection (on log rate).

    >>> round(_resolution((0.5, 400.0), 5), 3)
    0.232
    """
    return (bounds[1] / bounds[0]) ** (0.5 ** steps) - 1


def _max_rate(ok: Callable[[float], bool], lo: float, hi: float, steps: int) -> float:
    """The highest rate in ``[lo, hi]`` that ``ok`` accepts, by bisection on the log of the rate
    (0 when even ``lo`` fails, ``hi`` when it passes)."""
    if not ok(lo):
        return 0.0
    if ok(hi):
        return hi
    for _ in range(steps):
        mid = math.sqrt(lo * hi)
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


def _workload(dataset: str, n: int, rate: float, seed: int, zipf: float | None) -> Any:
    from schedlab.datasets import long_context_workload

    if dataset == "zipf":
        return long_context_workload("mixed", n, rate=rate, seed=seed, zipf=zipf)
    return long_context_workload(dataset, n, rate=rate, seed=seed)


def _serve(system: str, w: Any, dataset: str, cluster: Any) -> Any:
    """One system's :class:`~schedlab.sim.SimResult` on ``w``."""
    from dataclasses import replace

    from schedlab.sim import (
        Cluster,
        DisaggregatedCluster,
        InstanceSpec,
        simulate,
        simulate_disaggregated,
    )
    from schedlab.sim.elastic import simulate_elastic

    if system in ("loongserve", "loongserve-no-scale-up"):
        c = cluster if system == "loongserve" else replace(cluster, scale_up=False)
        return simulate_elastic(w, c, "loongserve",
                                scheduler_params={"max_num_ooe": OOE[dataset]})
    if system == "static-tp2-sp4":
        return simulate_elastic(w, replace(cluster, scale_up=False), "static-sp")
    big: dict[str, Any] = dict(model=MODEL, gpu=GPU, max_batch_size=1024,
                               max_context_tokens=510_000, preemption="recompute")
    if system in ("vllm", "static-tp8"):
        spec = InstanceSpec(tp=8, max_batch_tokens=600_000, kv_capacity_tokens=900_000, **big)
        return simulate(w, Cluster(instances=(spec,)), "vllm")
    if system == "chunked-prefill":
        chunk = CHUNKS[dataset]
        spec = InstanceSpec(tp=8, max_batch_tokens=chunk + 1024, chunk_tokens=chunk,
                            kv_capacity_tokens=900_000, **big)  # a chunk plus the decodes
        return simulate(w, Cluster(instances=(spec,)), "vllm")
    if system == "tp2x4":
        spec = InstanceSpec(tp=2, max_batch_tokens=210_000, kv_capacity_tokens=210_000, **big)
        return simulate(w, Cluster(instances=(spec,) * 4), "vllm", router="round-robin")
    if system == "distserve":
        dc = DisaggregatedCluster.homogeneous(MODEL, GPU, tp=4, n_prefill=1, n_decode=1,
                                              max_context_tokens=510_000)
        return simulate_disaggregated(w, dc, placement_params={
            "admission": "late", "slo_ttft_s": 1e9, "slo_tbt_s": 1e9,
            "recheck_at_handoff": False})
    raise ValueError(f"unknown system {system!r}")  # pragma: no cover - internal names


def _per_token_ok(system: str, dataset: str, n: int, seed: int,
                  cluster: Any) -> Callable[[float], bool]:
    """Whether the system meets the dataset's per-token SLO at a rate (and serves every
    request)."""
    slo = SLOS[dataset][0] / 1e3

    def ok(rate: float) -> bool:
        w = _workload(dataset, n * SCALE_N[dataset], rate, seed, None)
        r = _serve(system, w, dataset, cluster)
        if not r.completed.all():
            return False
        e2e = r.finish_s - r.arrival_s
        return float(np.mean(e2e / (w.input_tokens + w.output_tokens))) <= slo

    return ok


def _goodput_ok(system: str, dataset: str, n: int, seed: int, cluster: Any,
                rows: dict[int, tuple[float, float, float]],
                zipf: float | None = None) -> Callable[[float], bool]:
    """Whether 90% of the requests meet TTFT <= max(25 x the model's SP4 TP2 prefill, 15 s)
    and TPOT <= 50 ms at a rate (Fig. 12's goodput, the artifact's rule)."""
    a, b, c = rows[4]

    def ok(rate: float) -> bool:
        w = _workload(dataset, n * SCALE_N["zipf" if zipf is not None else dataset], rate, seed,
                      zipf)
        r = _serve(system, w, "zipf" if zipf is not None else dataset, cluster)
        ls = w.input_tokens.astype(np.float64)
        ttft_slo = np.maximum(25 * (a + b * ls + c * ls * ls), 15.0)
        ttft = r.first_token_s - r.arrival_s
        tpot = (r.finish_s - r.first_token_s) / np.maximum(w.output_tokens - 1, 1)
        good = r.completed & (ttft <= ttft_slo) & (tpot <= 0.050)
        return float(good.mean()) >= 0.9

    return ok


def _plot(fig10: dict[str, list[Any]], plot_dir: str | PathLike[str]) -> list[str]:
    from matplotlib.figure import Figure

    path = Path(plot_dir)
    path.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(9, 3.5))
    axes = fig.subplots(1, len(SLOS))
    for ax, d in zip(axes, SLOS, strict=True):
        systems = [s for dd, s in zip(fig10["dataset"], fig10["system"], strict=True) if dd == d]
        rates = [r for dd, r in zip(fig10["dataset"], fig10["rate"], strict=True) if dd == d]
        ax.bar(range(len(systems)), rates)
        ax.set_xticks(range(len(systems)), systems, rotation=45, fontsize=7)
        ax.set_title(d)
    axes[0].set_ylabel("max rate within the SLO (req/s)")
    fig.suptitle("LoongServe Fig. 10 on our model: throughput under the per-token SLO")
    fig.tight_layout()
    out = path / "loongserve_throughput.png"
    fig.savefig(out, dpi=110)
    return [str(out)]
