"""Seer (Qin et al., arXiv 2511.14617, OSDI'26): divided rollout and context-aware scheduling for
synchronous RL, against veRL-like rollout.

The paper's headline experiment (§4.1, Table 3) on our cost model and the divided-rollout
simulator (:func:`schedlab.sim.simulate_divided_rollout`), with the RL group generator
(:func:`schedlab.datasets.rollout.rollout_batch`: heavy-tailed, group-correlated lengths, about
5% truncated at the limit):

- *Moonlight*-like: Moonlight-16B-A3B, 32 H800 (one GPU an instance [recon]), 400 prompts x 8
  samples, up to 65,536 tokens;
- *Qwen2-VL-72B*-like: Qwen2.5-72B as the stand-in (the catalog has no vision-language model),
  128 H800 in TP8 instances, 600 prompts x 16, up to 40,960;
- *Kimi-K2*-like: Kimi-K2 on 256 H800 as 64-GPU instances [recon: the paper runs DP32 + EP32,
  which our tensor-parallel instances do not model], 800 prompts x 8, up to 98,304.

The default keeps each instance's load (prompts per instance) and runs fewer instances; ``full``
runs the paper's counts. Systems: veRL-like group round robin (every request at once, whole, not
memory-aware), divided rollout alone (8K chunks, batch order), Seer (divided rollout with
context-aware scheduling), Seer with speculative decoding, Oracle longest-first (true lengths)
and StreamRL-Oracle (skew-aware dispatch with true lengths, one-shot). Speculative decoding runs
in the engine's steps (:class:`schedlab.sim.Speculation`) [recon]: each chunk, when dispatched,
drafts its class's length of the batch's budget and gains its expected tokens per verify step;
*grouped* (Seer) reads the group's suffix tree, whose acceptance rises with the siblings that
have started (``acceptance(n_ref)``), with MBA draft lengths (the gain/intent reading);
*vanilla* reads a request's own text (acceptance 0.35) with the batch's best draft length for
every request.
"""

from __future__ import annotations

import time
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.seeds.contract import Claim, ClaimResult, SeedReport

__all__ = ["CLAIMS", "PAPER", "WORKLOADS", "run"]

PAPER = "seer"
GPU = "h800"
#: model, tensor parallel per instance, GPUs, prompts, samples per prompt, max tokens (Table 3),
#: and the instances the default (not ``full``) mode runs, keeping prompts per instance.
WORKLOADS = {
    "moonlight": ("moonlight-16b-a3b", 1, 32, 400, 8, 65_536, 4),
    "qwen2-vl-72b": ("qwen2.5-72b", 8, 128, 600, 16, 40_960, 2),
    "kimi-k2": ("kimi-k2", 64, 256, 800, 8, 98_304, 1),
}
SYSTEMS = ("verl", "divided", "seer", "seer+vanilla-sd", "seer+sd", "oracle-lfs",
           "streamrl-oracle")
_V1 = "arXiv 2511.14617 v1 abstract (final version: +44% to +104%)"
CLAIMS = (
    Claim(name="throughput-vs-verl", metric="rollout throughput, Seer / veRL-like, least over "
          "the three workloads", baseline="veRL-like group round robin", paper_value=1.74,
          unit="x", source=_V1),
    Claim(name="tail-vs-verl", metric="tail time (last 10% of requests), Seer / veRL-like, "
          "most over the three workloads", baseline="veRL-like group round robin",
          paper_value=0.25, unit="x", source="arXiv 2511.14617 v1 abstract (-75% to -93%)",
          direction="<"),
    Claim(name="ablation-divided", metric="rollout throughput, divided rollout / veRL-like, "
          "best over the three workloads", baseline="veRL-like group round robin",
          paper_value=1.42, unit="x", source="arXiv 2511.14617 Table 4 (up to +42%)"),
    Claim(name="ablation-context-aware", metric="rollout throughput, Seer (context-aware) / "
          "divided rollout in batch order, best over the three workloads",
          baseline="divided rollout, batch order", paper_value=1.14, unit="x",
          source="arXiv 2511.14617 Table 4 (up to +14% more)"),
    Claim(name="ablation-grouped-sd", metric="rollout throughput with grouped speculative "
          "decoding / without, least over the three workloads",
          baseline="Seer without speculative decoding", paper_value=1.26, unit="x",
          source="arXiv 2511.14617 Table 4 (+26% to +48% more)"),
    Claim(name="grouped-vs-vanilla-sd", metric="rollout throughput, grouped / vanilla "
          "speculative decoding, best over the three workloads",
          baseline="Seer with vanilla speculative decoding", paper_value=1.3, unit="x",
          source="arXiv 2511.14617 §4.2 (up to 1.3x over the best vanilla SD)"),
    Claim(name="near-oracle", metric="rollout throughput, Seer / Oracle longest-first "
          "(Qwen2-VL-72B-like)", baseline="Oracle longest-first with true lengths",
          paper_value=0.96, unit="x", source="arXiv 2511.14617 §4.5.1 (96% of Oracle-LFS)",
          direction=">=", threshold=0.9),
    Claim(name="ahead-of-streamrl-oracle", metric="rollout throughput, Seer / StreamRL-Oracle, "
          "least over the three workloads", baseline="StreamRL-Oracle (skew-aware dispatch "
          "with true lengths)", paper_value=None, unit="x",
          source="arXiv 2511.14617 §4.2 (Seer ahead of StreamRL-Oracle)"),
    Claim(name="vs-partial-rollout", metric="rollout throughput, Seer / Partial Rollout "
          "(Qwen2-VL-72B-like)", baseline="Partial Rollout (APRIL: 2x groups issued, stop at "
          "the groups needed, cut responses carried over), veRL-like dispatch",
          paper_value=1.43, unit="x",
          source="arXiv 2511.14617 final version, §4 (vs Partial Rollout; rollout digest §1.6)"),
)
#: Partial Rollout's iterations per mode (the first, with nothing carried over, is not measured).
PARTIAL_ITERATIONS = {"quick": 2, "default": 3, "full": 3}


def _scale(name: str, mode: str) -> tuple[int, int]:
    """(instances, prompts) of a workload in a mode: the paper's in ``full``, otherwise the
    default's instances with the prompts per instance kept (a quarter of them in ``quick``)."""
    _, tp, gpus, prompts, _, _, small = WORKLOADS[name]
    k = gpus // tp
    if mode == "full":
        return k, prompts
    per = prompts / k
    p = max(1, round(per * small / (4 if mode == "quick" else 1)))
    return small, p


def run(*, quick: bool = False, full: bool = False, plot_dir: str | PathLike[str] | None = None,
        seed: int = 0) -> SeedReport:
    """Reproduce Seer's throughput, tail and ablation claims on the three workloads of Table 3
    (see the module docstring). The default keeps the paper's load per instance on fewer
    instances, and sweeps the chunk size on the Qwen2-VL-72B-like workload (about 20 s on two
    cores); ``full=True`` runs the paper's instance and prompt counts; ``quick=True`` a quarter
    of the default's prompts and no sweep. ``plot_dir`` receives
    ``seer_throughput.png``; ``seed`` seeds the batches."""
    from schedlab.datasets.rollout import rollout_batch
    from schedlab.progress import counter
    from schedlab.sim import RolloutCluster

    if quick and full:
        raise ValueError("run(): pass at most one of quick=True or full=True.")
    start = time.perf_counter()
    mode = "full" if full else "quick" if quick else "default"
    table: dict[str, list[Any]] = {k: [] for k in (
        "workload", "system", "instances", "requests", "makespan_s", "output_tokens_per_s",
        "tail_s", "preemptions", "chunks", "pulls", "wall_s")}
    results: dict[tuple[str, str], Any] = {}
    with counter("seer: runs", len(WORKLOADS) * len(SYSTEMS)) as step:
        for name, (model, tp, _, _, g, max_tokens, _) in WORKLOADS.items():
            k, prompts = _scale(name, mode)
            w = rollout_batch(n_prompts=prompts, samples_per_prompt=g, seed=seed,
                              max_tokens=max_tokens)
            c = RolloutCluster.homogeneous(model, GPU, tp=tp, n_instances=k,
                                           max_context_tokens=max_tokens + 16_384)
            for system in SYSTEMS:
                t0 = time.perf_counter()
                r = _run_system(system, w, c, max_tokens, seed)
                results[name, system] = r
                s = r.summary()
                for key, v in (("workload", name), ("system", system), ("instances", k),
                               ("requests", len(w)), ("makespan_s", round(s["makespan_s"], 2)),
                               ("output_tokens_per_s", round(s["output_tokens_per_s"], 1)),
                               ("tail_s", round(s["tail_s"], 2)),
                               ("preemptions", s["preemptions"]),
                               ("chunks", int(r.extra["chunks"].sum()) if "chunks" in r.extra
                                else len(w)),
                               ("pulls", int(r.extra["pulls"].sum()) if "pulls" in r.extra
                                else 0),
                               ("wall_s", round(time.perf_counter() - t0, 2))):
                    table[key].append(v)
                step()

    def thr(name: str, system: str) -> float:
        return float(results[name, system].output_tokens_per_s)

    def tail(name: str, system: str) -> float:
        return float(results[name, system].tail_s())

    names = list(WORKLOADS)
    claims: list[ClaimResult] = []
    over = {n: thr(n, "seer+sd") / thr(n, "verl") for n in names}
    plain = {n: thr(n, "seer") / thr(n, "verl") for n in names}
    pre = {n: results[n, "verl"].preemptions for n in names}
    claims.append(CLAIMS[0].measured(round(min(over.values()), 4), note=(
        "Seer with grouped speculative decoding, per workload "
        + ", ".join(f"{n} {v:.2f}x" for n, v in over.items()) + "; without it "
        + ", ".join(f"{n} {v:.2f}x" for n, v in plain.items()) + "; veRL-like preemptions "
        + ", ".join(f"{n} {p:,}" for n, p in pre.items())
        + " (the paper counts 13,686 in one Qwen2-VL-72B iteration)."
        + ("" if min(plain.values()) >= 1 else
           " Where Seer's scheduling alone trails, the instances are short of KV (the Kimi-K2 "
           f"stand-in's 64-GPU instance holds {_kv('kimi-k2'):,} tokens for all its "
           "requests): reserving each chunk's largest KV (memory-aware dispatch) keeps fewer "
           "requests decoding than vLLM's optimistic admission, whose recomputations cost less "
           "than the concurrency given up.")
        + CLAIMS[0].factor_note(min(over.values())))))
    tails = {n: tail(n, "seer+sd") / tail(n, "verl") for n in names}
    claims.append(CLAIMS[1].measured(round(max(tails.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.2f}x" for n, v in tails.items())
        + " of veRL-like's tail (the time after 90% of the requests completed).")))
    div = {n: thr(n, "divided") / thr(n, "verl") for n in names}
    claims.append(CLAIMS[2].measured(round(max(div.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.2f}x" for n, v in div.items())
        + ": 8K chunks dispatched where their largest KV fits, so no preemption.")))
    ctx = {n: thr(n, "seer") / thr(n, "divided") for n in names}
    claims.append(CLAIMS[3].measured(round(max(ctx.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.3f}x" for n, v in ctx.items())
        + ". Context-aware scheduling orders what waits; it pays where requests wait for "
        "memory, and its estimates start at the limit until a group's first request ends.")))
    sd = {n: thr(n, "seer+sd") / thr(n, "seer") for n in names}

    def per_step(n: str, system: str) -> float:
        return float(np.nanmean(results[n, system].extra["tokens_per_step"]))

    claims.append(CLAIMS[4].measured(round(min(sd.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.2f}x" for n, v in sd.items())
        + "; mean tokens per verify step " + ", ".join(
            f"{n} {per_step(n, 'seer+sd'):.2f}" for n in names)
        + ", mean acceptance of the last chunks " + ", ".join(
            f"{n} {np.mean(results[n, 'seer+sd'].extra['acceptance']):.2f}" for n in names)
        + ". Above the paper: the acceptance curve is a reconstruction whose late-rollout gain "
        "is steeper than the paper's anchor (+222% against +119%), every step gains the "
        "expected tokens (no variance), and the roofline's verify step stays memory-bound, "
        "nearly as cheap as a plain step, at these batches."
        + CLAIMS[4].factor_note(min(sd.values())))))
    gv = {n: thr(n, "seer+sd") / thr(n, "seer+vanilla-sd") for n in names}
    claims.append(CLAIMS[5].measured(round(max(gv.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.2f}x" for n, v in gv.items())
        + "; tokens per verify step, vanilla " + ", ".join(
            f"{n} {per_step(n, 'seer+vanilla-sd'):.2f}" for n in names)
        + " (acceptance 0.35 from a request's own text, the batch's best draft length), grouped "
        + ", ".join(f"{n} {per_step(n, 'seer+sd'):.2f}" for n in names) + ".")))
    q = "qwen2-vl-72b"
    claims.append(CLAIMS[6].measured(round(thr(q, "seer") / thr(q, "oracle-lfs"), 4), note=(
        f"Seer {thr(q, 'seer'):,.0f} tokens/s, Oracle longest-first {thr(q, 'oracle-lfs'):,.0f}; "
        f"tails {tail(q, 'seer'):.0f} s and {tail(q, 'oracle-lfs'):.0f} s. Holds at 90% or "
        "better ('within a few percent'). Seer's estimates learn a group's length only when "
        "its first request ends, and until then every group looks as long as the limit: the "
        "longest requests start later than the oracle starts them.")))
    srl = {n: thr(n, "seer+sd") / thr(n, "streamrl-oracle") for n in names}
    claims.append(CLAIMS[7].measured(round(min(srl.values()), 4), note=(
        "per workload " + ", ".join(f"{n} {v:.2f}x" for n, v in srl.items())
        + "; StreamRL-Oracle dispatches whole groups once, with true lengths, on vLLM's "
        "admission (preempting when the KV overflows).")))
    pr = _partial_rollout(mode, seed)
    bias = pr.length_bias
    claims.append(CLAIMS[8].measured(round(thr(q, "seer+sd") / pr.tokens_per_s, 4), note=(
        f"Seer with grouped SD {thr(q, 'seer+sd'):,.0f} tokens/s, without {thr(q, 'seer'):,.0f}; "
        f"veRL-like {thr(q, 'verl'):,.0f}; Partial Rollout {pr.tokens_per_s:,.0f} (tokens "
        "generated per second over iterations 1.."
        f"{len(pr.table) - 1}, cut responses' included: they resume in the next iteration). "
        f"Responses Partial Rollout completed average {bias:.2f}x the pool's length "
        f"({pr.pool_mean_tokens:,.0f} tokens): the bias toward short outputs the paper names. "
        "Over-issuing keeps twice the requests in flight, so its batches stay full where "
        "veRL-like waits on its tail.")))
    sweep = {} if quick else _chunk_sweep(seed)  # at the default's scale in both other modes
    plots = [] if plot_dir is None else _plot(table, plot_dir)
    setup = {
        "gpu": GPU, "mode": mode,
        "workloads": {n: {"model": m, "tp": tp, "instances": _scale(n, mode)[0],
                          "prompts": _scale(n, mode)[1], "samples_per_prompt": g,
                          "max_tokens": mx}
                      for n, (m, tp, _, _, g, mx, _) in WORKLOADS.items()},
        "chunk_tokens": 8192, "plots": plots,
    }
    return SeedReport(paper=PAPER, claims=tuple(claims), setup=setup,
                      tables={"throughput": table, "partial_rollout": _pr_table(pr),
                              **({"chunk_sweep": sweep} if sweep else {})},
                      wall_s=time.perf_counter() - start)


#: Chunk sizes of the sweep (None: no chunking, request-level scheduling).
CHUNK_SWEEP = (512, 2048, 8192, 16384, None)


def _chunk_sweep(seed: int) -> dict[str, list[Any]]:
    """Seer on the Qwen2-VL-72B-like workload at the default's scale with each chunk size of
    :data:`CHUNK_SWEEP`: throughput, chunks, scheduler decisions and tail."""
    from schedlab.datasets.rollout import rollout_batch
    from schedlab.sim import RolloutCluster, simulate_divided_rollout

    model, tp, _, _, g, max_tokens, _ = WORKLOADS["qwen2-vl-72b"]
    k, prompts = _scale("qwen2-vl-72b", "default")
    w = rollout_batch(n_prompts=prompts, samples_per_prompt=g, seed=seed, max_tokens=max_tokens)
    c = RolloutCluster.homogeneous(model, GPU, tp=tp, n_instances=k,
                                   max_context_tokens=max_tokens + 16_384)
    out: dict[str, list[Any]] = {"chunk_tokens": [], "output_tokens_per_s": [], "chunks": [],
                                 "decisions": [], "tail_s": []}
    for chunk in CHUNK_SWEEP:
        r = simulate_divided_rollout(w, c, "seer", max_tokens=max_tokens,
                                     scheduler_params={"chunk_tokens": chunk, "seed": seed})
        out["chunk_tokens"].append("unlimited" if chunk is None else str(chunk))
        out["output_tokens_per_s"].append(round(r.output_tokens_per_s, 1))
        out["chunks"].append(int(r.extra["chunks"].sum()))
        out["decisions"].append(int(r.extra["decisions"]))
        out["tail_s"].append(round(r.tail_s(), 2))
    return out


def _partial_rollout(mode: str, seed: int) -> Any:
    """Partial Rollout (:func:`schedlab.sim.simulate_partial_rollout`, veRL-like dispatch) on
    the Qwen2-VL-72B-like workload at the mode's scale, needing the workload's prompts as
    groups each iteration."""
    from schedlab.datasets.rollout import rollout_batch
    from schedlab.sim import RolloutCluster, simulate_partial_rollout

    model, tp, _, _, g, max_tokens, _ = WORKLOADS["qwen2-vl-72b"]
    k, prompts = _scale("qwen2-vl-72b", mode)
    n_iter = PARTIAL_ITERATIONS[mode]
    pool = rollout_batch(n_prompts=2 * prompts * n_iter, samples_per_prompt=g, seed=seed,
                         max_tokens=max_tokens)
    c = RolloutCluster.homogeneous(model, GPU, tp=tp, n_instances=k,
                                   max_context_tokens=max_tokens + 16_384)
    return simulate_partial_rollout(pool, c, n_groups=prompts, iterations=n_iter,
                                    max_tokens=max_tokens)


def _pr_table(pr: Any) -> dict[str, list[Any]]:
    t = pr.table
    return {c: [round(float(v), 1) if isinstance(v, float) else int(v) for v in t[c]]
            for c in ("iteration", "time_s", "carried_requests", "completed_groups",
                      "cut_requests", "new_tokens", "tokens_per_s", "completed_mean_tokens")}


def _kv(name: str) -> int:
    """The KV capacity (tokens) of one instance of a workload."""
    from schedlab.sim import InstanceSpec

    model, tp, *_ = WORKLOADS[name]
    spec = InstanceSpec(model=model, gpu=GPU, tp=tp)
    return spec.kv_capacity(spec.resolved_cost())


def _run_system(system: str, w: Any, c: Any, max_tokens: int, seed: int) -> Any:
    """One system's rollout of the batch ``w`` (groups of ``group``) on the cluster ``c``."""
    from schedlab.sim import Speculation, simulate_divided_rollout, simulate_rollout

    if system == "streamrl-oracle":  # one-shot, whole groups, true lengths
        return simulate_rollout(w, c, "skew-aware")
    spec = None
    if system == "seer+sd":  # the group's suffix tree, MBA draft lengths
        spec = Speculation()
    elif system == "seer+vanilla-sd":  # a request's own text, the batch's best draft length
        spec = Speculation(grouped=False, allocator="uniform")
    if spec is not None:
        system = "seer"
    scheduler, kw = {
        "verl": ("group-round-robin", {}),
        "divided": ("divided-fifo", {}),
        "seer": ("seer", {"scheduler_params": {"seed": seed}}),
        "oracle-lfs": ("oracle-lfs",
                       {"predicted_output_tokens": w.output_tokens.astype(np.float64)}),
    }[system]
    return simulate_divided_rollout(w, c, scheduler, max_tokens=max_tokens, speculation=spec,
                                    **kw)


def _plot(table: dict[str, list[Any]], plot_dir: str | PathLike[str]) -> list[str]:
    from matplotlib.figure import Figure

    path = Path(plot_dir)
    path.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    work = np.array(table["workload"])
    system = np.array(table["system"])
    names = list(WORKLOADS)
    for ax, key, label in ((axes[0], "output_tokens_per_s", "output tokens / s"),
                           (axes[1], "tail_s", "tail: last 10% of requests (s)")):
        for j, s in enumerate(SYSTEMS):
            vals = [float(np.array(table[key])[(work == n) & (system == s)][0]) for n in names]
            ax.bar(np.arange(len(names)) + j * 0.12, vals, width=0.12, label=s)
        ax.set_xticks(np.arange(len(names)) + 0.36, names)
        ax.set_ylabel(label)
    axes[0].legend(fontsize=8)
    fig.suptitle("Seer's workloads (arXiv 2511.14617 Table 3), our model")
    fig.tight_layout()
    out = path / "seer_throughput.png"
    fig.savefig(out, dpi=110)
    return [str(out)]
