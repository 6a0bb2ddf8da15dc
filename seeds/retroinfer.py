"""RetroInfer (Chen et al., "RetroInfer: A Vector-Storage Approach for Scalable Long-Context LLM
Inference", arXiv 2505.02922; VLDB'26): decode throughput with the KV in host memory, a
clustered index and a GPU cache, against full attention.

- **Fig. 13a-c** (decode throughput against batch at 30K / 60K / 120K tokens, Llama-3-8B-1048K
  on one A100-80GB over PCIe 4.0, NIAH): each system's best tokens per second over batch sizes
  1, 2, 4, ... up to what fits (:mod:`schedlab.costmodel.retrieval_attention`); the PCIe
  efficiency is fitted on 30K (4.1x), 60K and 120K are predictions. The cache's hit rate is
  0.85, inside the paper's 0.79-0.94 (Fig. 14a).
- **Fig. 13d** (1M tokens): whether full attention fits at all, and RetroInfer's throughput at
  the batch that fits. The sparse baselines (MagicPIG, PQCache) are not modelled.
- **The GPU cache** (§5): LRU and FIFO against Belady's optimum
  (:func:`schedlab.solvers.solve_cache_replacement`) on the clusters RetroInfer's zones
  retrieve, step after step, on synthetic topical heads (:func:`schedlab.datasets.
  topic_attention_head`, :func:`~schedlab.datasets.topic_decode_queries`) [synthetic], at caches
  of 1, 3 (the code's default, 5.4% of the KV) and 5 times the retrieved clusters.

The default run studies the cache at 16K and 32K tokens over 300 decode steps; ``quick`` at 8K
over 100; ``full`` adds 64K.
"""

from __future__ import annotations

import dataclasses
import time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.seeds.contract import Claim, SeedReport

__all__ = ["CLAIMS", "PAPER", "run"]

PAPER = "retroinfer"
MODEL, GPU = "llama-3-8b", "a100-80gb"
#: Fig. 13's contexts and the paper's speedups over full attention (FlashInfer).
FIG13 = {30_000: 4.1, 60_000: 4.4, 120_000: 4.4}
FIT_CONTEXT = 30_000
#: Cache studies per mode: contexts, decode steps.
MODES: dict[str, tuple[tuple[int, ...], int]] = {
    "quick": ((8192,), 100),
    "default": ((16384, 32768), 300),
    "full": ((16384, 32768, 65536), 300),
}
MULTIPLIERS = (1, 3, 5)
SOURCE = "arXiv 2505.02922 (VLDB'26 text)"

CLAIMS = (
    Claim(name="decode-speedup-60k",
          metric="best decode tokens/s over batch, RetroInfer / full attention, at 60K tokens "
                 "(model fitted at 30K)",
          baseline="full attention (FlashInfer)", paper_value=4.4, unit="x",
          source=SOURCE + ", Fig. 13b"),
    Claim(name="decode-speedup-120k",
          metric="the same at 120K tokens",
          baseline="full attention (FlashInfer)", paper_value=4.4, unit="x",
          source=SOURCE + ", Fig. 13c; abstract ('up to 4.4x ... at 120K')"),
    Claim(name="full-attention-oom-1m",
          metric="requests of 1M tokens full attention fits on one A100-80GB",
          baseline="full attention (FlashInfer)", paper_value=None, unit="requests",
          direction="<", threshold=1.0,
          source=SOURCE + ", Fig. 13d (full attention, Quest and InfiniGen run out of memory)"),
    Claim(name="sparse-baselines-1m",
          metric="decode throughput at 1M tokens, RetroInfer / PQCache",
          baseline="PQCache (MagicPIG: 10.5x)", paper_value=12.2, unit="x",
          source=SOURCE + ", abstract and Fig. 13d ('up to 12.2x over sparse baselines')"),
    Claim(name="lru-beats-fifo",
          metric="GPU-cache hit rate, LRU / FIFO, at the code's cache of 3 x the retrieved "
                 "clusters, least over the studied contexts [synthetic heads]",
          baseline="FIFO replacement", paper_value=None, unit="x", direction=">=",
          threshold=1.0, source=SOURCE + " §5 (LRU, the best of the policies tried)"),
)


def _fig13(spec: Any, gpu: Any, params: Any) -> dict[str, list[Any]]:
    from schedlab.costmodel.retrieval_attention import (
        best_throughput,
        max_batch_full,
        max_batch_retroinfer,
    )

    out: dict[str, list[Any]] = {k: [] for k in (
        "context_tokens", "fitted", "paper_speedup", "full_batch", "full_tokens_per_s",
        "retro_batch", "retro_tokens_per_s", "retro_max_batch", "full_max_batch", "speedup")}
    for ctx in (*FIG13, 2 ** 20):
        full, fb = best_throughput(spec, gpu, ctx, retro=False)
        retro, rb = best_throughput(spec, gpu, ctx, retro=True, params=params)
        row = {"context_tokens": ctx, "fitted": ctx == FIT_CONTEXT,
               "paper_speedup": FIG13.get(ctx), "full_batch": fb,
               "full_tokens_per_s": round(full, 1), "retro_batch": rb,
               "retro_tokens_per_s": round(retro, 1),
               "retro_max_batch": max_batch_retroinfer(spec, gpu, ctx, params),
               "full_max_batch": max_batch_full(spec, gpu, ctx),
               "speedup": round(retro / full, 4) if full > 0 else None}
        for key, val in row.items():
            out[key].append(val)
    return out


def _hit_sensitivity(spec: Any, gpu: Any, params: Any) -> dict[str, list[Any]]:
    from schedlab.costmodel.retrieval_attention import best_throughput, retroinfer_step

    out: dict[str, list[Any]] = {k: [] for k in (
        "hit_rate", "retro_tokens_per_s", "batch", "linear_ms", "gpu_attention_ms", "pcie_ms",
        "overhead_ms")}
    for hit in (0.0, 0.79, 0.85, 0.94, 1.0):
        p = dataclasses.replace(params, hit_rate=hit)
        tps, b = best_throughput(spec, gpu, 120_000, retro=True, params=p)
        s = retroinfer_step(spec, gpu, batch=b, context_tokens=120_000, params=p)
        for key, val in (("hit_rate", hit), ("retro_tokens_per_s", round(tps, 1)), ("batch", b),
                         ("linear_ms", round(s.linear_s * 1e3, 2)),
                         ("gpu_attention_ms", round(s.gpu_s * 1e3, 2)),
                         ("pcie_ms", round(s.pcie_s * 1e3, 2)),
                         ("overhead_ms", round(s.overhead_s * 1e3, 2))):
            out[key].append(val)
    return out


def _cache_study(contexts: tuple[int, ...], steps: int, seed: int) -> dict[str, list[Any]]:
    from schedlab.contract.retrieval import RetrievalView
    from schedlab.datasets import topic_attention_head, topic_decode_queries
    from schedlab.policies.retroinfer import build_wave_index, retroinfer_zones
    from schedlab.sim import replay_cache
    from schedlab.solvers import solve_cache_replacement

    out: dict[str, list[Any]] = {k: [] for k in (
        "context_tokens", "clusters", "retrieved", "cache_clusters", "cache_multiplier",
        "lru_hit_rate", "fifo_hit_rate", "belady_hit_rate")}
    for ctx in contexts:
        head = topic_attention_head(ctx, n_queries=1, seed=seed)
        index = build_wave_index(head.keys, head.keys)
        queries = topic_decode_queries(head, steps, persistence=0.9, switch=0.02, seed=seed + 1)
        trace = [retroinfer_zones(RetrievalView(query=q, index=index)).retrieval
                 for q in queries]
        nprobe = max(r.shape[0] for r in trace)
        for mult in MULTIPLIERS:
            cap = mult * nprobe
            row = {"context_tokens": ctx, "clusters": index.n_clusters, "retrieved": nprobe,
                   "cache_clusters": cap, "cache_multiplier": mult,
                   "lru_hit_rate": round(replay_cache(trace, cap, "lru").hit_rate, 4),
                   "fifo_hit_rate": round(replay_cache(trace, cap, "fifo").hit_rate, 4),
                   "belady_hit_rate": round(
                       solve_cache_replacement(trace, cap).stats["hit_rate"], 4)}
            for key, val in row.items():
                out[key].append(val)
    return out


def run(*, quick: bool = False, full: bool = False, plot_dir: str | PathLike[str] | None = None,
        seed: int = 0) -> SeedReport:
    """Reproduce RetroInfer's Fig. 13 claims and study its GPU cache against Belady (see the
    module docstring): 5 to 10 s on one core; ``full=True`` adds a 64K-token cache study.
    ``plot_dir`` receives ``retroinfer_throughput.png``."""
    from schedlab.costmodel import get_accelerator, get_model
    from schedlab.costmodel.retrieval_attention import RetroInferParams, fit_pcie_efficiency

    if quick and full:
        raise ValueError("run(): pass at most one of quick=True or full=True.")
    start = time.perf_counter()
    mode = "full" if full else "quick" if quick else "default"
    spec, gpu = get_model(MODEL), get_accelerator(GPU)
    eff = fit_pcie_efficiency(spec, gpu, FIT_CONTEXT, FIG13[FIT_CONTEXT])
    params = RetroInferParams(pcie_efficiency=eff)
    fig13 = _fig13(spec, gpu, params)
    hits = _hit_sensitivity(spec, gpu, params)
    contexts, steps = MODES[mode]
    cache = _cache_study(contexts, steps, seed)

    def row(ctx: int) -> dict[str, Any]:
        i = fig13["context_tokens"].index(ctx)
        return {k: v[i] for k, v in fig13.items()}

    at = hits["hit_rate"].index(params.hit_rate)  # the default hit rate's row

    def speedup_note(r: dict[str, Any]) -> str:
        return (f"RetroInfer {r['retro_tokens_per_s']} tokens/s at batch {r['retro_batch']} "
                f"(fits {r['retro_max_batch']}), full attention {r['full_tokens_per_s']} at "
                f"batch {r['full_batch']} (fits {r['full_max_batch']}). PCIe efficiency "
                f"{eff} fitted so that 30K gives the paper's 4.1x; at 120K a step is "
                f"{hits['pcie_ms'][at]} ms of PCIe reads of the misses, "
                f"{hits['gpu_attention_ms'][at]} ms of GPU attention work, "
                f"{hits['linear_ms'][at]} ms of the other layers and {hits['overhead_ms'][at]} "
                "ms of fixed per-layer costs at hit rate 0.85.")

    r60, r120, r1m = row(60_000), row(120_000), row(2 ** 20)
    lru = np.array(cache["lru_hit_rate"])
    fifo = np.array(cache["fifo_hit_rate"])
    at3 = np.array(cache["cache_multiplier"]) == 3
    ratio = float((lru[at3] / fifo[at3]).min())
    claims = (
        CLAIMS[0].measured(r60["speedup"], note=speedup_note(r60)
                           + CLAIMS[0].factor_note(r60["speedup"])),
        CLAIMS[1].measured(r120["speedup"], note=speedup_note(r120)
                           + CLAIMS[1].factor_note(r120["speedup"])),
        CLAIMS[2].measured(float(r1m["full_max_batch"]), note=(
            "A 1M-token request's KV (128 KiB a token: 137 GB) is larger than what an A100-80GB "
            f"holds beside the weights; RetroInfer keeps it in host memory and decodes "
            f"{r1m['retro_max_batch']} such requests ({r1m['retro_tokens_per_s']} tokens/s at "
            f"batch {r1m['retro_batch']}; the paper runs batches 1-4 and its Fig. 13d axis "
            "tops out near 30 tokens/s).")),
        CLAIMS[3].measured(None, note=(
            "Not modelled: PQCache and MagicPIG need their own cost models (MagicPIG computes "
            "attention on the CPU over LSH samples, PQCache fetches product-quantised top-k "
            "tokens over PCIe without a cache), and neither paper's per-step budgets at 1M are "
            "recoverable here; full attention, the other baseline, does not fit at 1M (previous "
            "claim).")),
        CLAIMS[4].measured(round(ratio, 4), note=(
            "Hit rates at 3 x the retrieved clusters: "
            + ", ".join(f"{c // 1024}K tokens LRU {a:.3f}, FIFO {b:.3f}, Belady {o:.3f}"
                        for c, a, b, o in zip(np.array(cache["context_tokens"])[at3], lru[at3],
                                              fifo[at3],
                                              np.array(cache["belady_hit_rate"])[at3],
                                              strict=True))
            + f" over {steps} decode steps of synthetic topical heads (queries persist from "
            "step to step, switch topic with probability 0.02) [synthetic]; the paper's hit "
            "rates with its 5% cache are 0.79-0.94 across tasks.")),
    )
    setup = {"model": MODEL, "gpu": GPU, "host_link": params.host_link,
             "pcie_efficiency_fitted_at_30k": eff, "hit_rate": params.hit_rate,
             "cache_steps": steps, "cache_contexts": list(contexts), "mode": mode}
    if plot_dir is not None:
        setup["plots"] = _plot(fig13, plot_dir)
    return SeedReport(paper=PAPER, claims=claims, setup=setup,
                      tables={"fig13": fig13, "hit_rate": hits, "cache": cache},
                      wall_s=time.perf_counter() - start)


def _plot(fig13: dict[str, list[Any]], plot_dir: str | PathLike[str]) -> list[str]:
    from matplotlib.figure import Figure

    path = Path(plot_dir)
    path.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    labels = [f"{c // 1000}K" if c < 2 ** 20 else "1M" for c in fig13["context_tokens"]]
    x = np.arange(len(labels))
    ax.bar(x - 0.2, fig13["full_tokens_per_s"], width=0.4, label="full attention (model)")
    ax.bar(x + 0.2, fig13["retro_tokens_per_s"], width=0.4, label="RetroInfer (model)")
    for i, s in enumerate(fig13["paper_speedup"]):
        if s is not None:
            ax.annotate(f"paper {s}x", (x[i], fig13["retro_tokens_per_s"][i]), fontsize=8,
                        ha="center", va="bottom")
    ax.set_xticks(x, labels)
    ax.set_xlabel("context tokens")
    ax.set_ylabel("best decode tokens / s (Fig. 13)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = path / "retroinfer_throughput.png"
    fig.savefig(out, dpi=110)
    return [str(out)]
