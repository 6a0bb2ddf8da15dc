"""FastServe (Wu et al., arXiv 2305.05920; NSDI'26): skip-join MLFQ against FastServe-FCFS, vLLM
and Orca, as the authors' artifact measures them.

**The artifact's claims** (the headline): throughput at a per-token latency SLO. The NSDI'26
artifact (LLMServe/FastServe, ``benchmarks/artifact-evaluation/``) serves ShareGPT on OPT-13B with
batch 16 and 2,048 tokens per iteration, sweeps Poisson rates into overload with short runs
(20 to 400 requests per rate, the backend restarted for each), and plots, per rate, the mean
(Fig. 11) and 95th percentile (Fig. 12) over requests of the latency per output token (JCT /
output tokens), and the share of requests meeting a TTFT and a per-token SLO (Fig. 13). The
throughput at an SLO is where a curve first crosses it, interpolated linearly between rates (the
artifact's ``interp1d``). Its baselines are FastServe's own engine running FCFS (swap-only, no KV
reservation) and real vLLM (16 sequences, 2,048 tokens, model length 2,048, recompute
preemption). This module reruns that protocol on schedlab's cost model and simulator:
:func:`artifact_workloads`, :func:`sustained_rate`, :func:`run`.

**The v1 claims**: mean and tail JCT up to 5.1x and 6.4x better than Orca (the v1 abstract; a
FasterTransformer prototype). Their baseline is Orca reserving KV for the maximum sequence length
(``fcfs`` with ``reserve_max_tokens=2048``, the vLLM paper's "Orca (Max)"), exercised at the
batch sizes 64 and 128 of the artifact's Fig. 14 (its large-batch protocol: rates 1 to 4 req/s,
200 to 700 requests); next to each, the clairvoyant SRPT's factor on the same runs shows what any
policy could reach.

**Digest checks** (serving.md §1.3): skip-join MLFQ against plain MLFQ, and the SRPT oracle no
worse than MLFQ.

What is reconstructed, not read: the GPU (the artifact does not name it; A100-80GB here: the
KV cache then holds 54,698 OPT-13B tokens, more than 16 requests of 2,048 can use, so FCFS never
preempts, as FastServe-FCFS at batch 16); the ShareGPT sample (etalon's ShareGPT token counts,
Llama-2 tokenizer, filtered as the artifact filters, in place of the artifact's OPT-tokenized
first turns of ShareGPT_V3); the tail percentile of the v1 claim (p99 here).

>>> [c.name for c in CLAIMS][:2]
['throughput-at-mean-slo-vs-fcfs', 'throughput-at-mean-slo-vs-vllm']
>>> sustained_rate(np.array([1.0, 2.0, 3.0]), np.array([0.1, 0.2, 0.8]), 0.5)
2.5
"""

from __future__ import annotations

import inspect
import time
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.seeds.contract import Claim, ClaimResult, SeedReport, parallel_jobs

__all__ = [
    "CLAIMS",
    "PAPER",
    "Sweep",
    "artifact_lengths",
    "artifact_workloads",
    "run",
    "sustained_rate",
]

PAPER = "fastserve"

_REPO = "LLMServe/FastServe benchmarks/artifact-evaluation"
_FIG11 = (
    "NSDI'26 Fig. 11 (ShareGPT, OPT-13B, mean latency per output token; the figure's data in "
    f"{_REPO}/plot.ipynb): FastServe sustains 4.89 req/s at 0.3 s/token, "
)
_FIG12 = (
    "NSDI'26 Fig. 12 (ShareGPT, OPT-13B, P95 latency per output token; data in plot.ipynb): "
    "FastServe sustains 3.92 req/s at 0.3 s/token, "
)
_FIG13 = (
    f"artifact re-run Fig. 13 ({_REPO}/overall/fig13.pdf, ShareGPT, OPT-13B; the paper's own "
    "Fig. 13 data are not in the artifact): rate at 95% of requests within TTFT 3.1 s and "
    "0.3 s/token, FastServe 2.74 req/s, "
)
_V1 = "arXiv 2305.05920 v1 abstract (a FasterTransformer prototype against Orca)"
_DIGEST = "serving.md §1.3 'what to reproduce'"
_ORCA = "Orca (Max): fcfs reserving 2,048 tokens per request"

CLAIMS = (
    Claim(
        name="throughput-at-mean-slo-vs-fcfs",
        metric="highest Poisson rate whose mean latency per output token stays within 0.3 s "
        "(first crossing, linear between swept rates), skip-join MLFQ / FastServe-FCFS",
        baseline="FastServe-FCFS (fcfs)", paper_value=2.03, unit="x",
        source=_FIG11 + "FastServe-FCFS 2.41 (the artifact's re-run, overall/fig11_sharegpt.pdf: "
        "4.15 vs 2.26, 1.84x)",
    ),
    Claim(
        name="throughput-at-mean-slo-vs-vllm",
        metric="highest rate whose mean latency per output token stays within 0.3 s, skip-join "
        "MLFQ / vLLM",
        baseline="vLLM (vllm)", paper_value=2.13, unit="x",
        source=_FIG11 + "vLLM 2.30 (re-run: 4.15 vs 1.60, 2.59x)",
    ),
    Claim(
        name="throughput-at-p95-slo-vs-fcfs",
        metric="highest rate whose 95th-percentile latency per output token stays within 0.3 s, "
        "skip-join MLFQ / FastServe-FCFS",
        baseline="FastServe-FCFS (fcfs)", paper_value=1.96, unit="x",
        source=_FIG12 + "FastServe-FCFS 2.00 (re-run, overall/fig12.pdf: 2.79 vs 1.82, 1.53x)",
    ),
    Claim(
        name="throughput-at-p95-slo-vs-vllm",
        metric="highest rate whose 95th-percentile latency per output token stays within 0.3 s, "
        "skip-join MLFQ / vLLM",
        baseline="vLLM (vllm)", paper_value=2.09, unit="x",
        source=_FIG12 + "vLLM 1.87 (re-run: 2.79 vs 1.39, 2.01x)",
    ),
    Claim(
        name="goodput-at-slo-attainment-vs-fcfs",
        metric="highest rate at which 95% of requests meet TTFT <= 3.1 s and latency per output "
        "token <= 0.3 s, skip-join MLFQ / FastServe-FCFS",
        baseline="FastServe-FCFS (fcfs)", paper_value=1.72, unit="x",
        source=_FIG13 + "FastServe-FCFS 1.59",
    ),
    Claim(
        name="goodput-at-slo-attainment-vs-vllm",
        metric="highest rate at which 95% of requests meet TTFT <= 3.1 s and latency per output "
        "token <= 0.3 s, skip-join MLFQ / vLLM",
        baseline="vLLM (vllm)", paper_value=2.40, unit="x",
        source=_FIG13 + "vLLM 1.14",
    ),
    Claim(
        name="mean-jct-vs-orca-max",
        metric="mean JCT of Orca (Max) / mean JCT of skip-join MLFQ, max over batch sizes 64 and "
        "128 and the Fig. 14 rates",
        baseline=_ORCA, paper_value=5.1, unit="x", source=_V1,
    ),
    Claim(
        name="p99-jct-vs-orca-max",
        metric="p99 JCT of Orca (Max) / p99 JCT of skip-join MLFQ (the v1 abstract's 'tail JCT'; "
        "its percentile is not stated), max over batch sizes 64 and 128 and the Fig. 14 rates",
        baseline=_ORCA, paper_value=6.4, unit="x", source=_V1,
    ),
    Claim(
        name="skip-join-vs-plain-mlfq",
        metric="mean JCT of plain MLFQ / skip-join MLFQ, geometric mean over the loaded rates "
        "(FastServe-FCFS's mean latency per output token at least twice its lightest-load value)",
        baseline="plain MLFQ (mlfq)", paper_value=None, unit="x", source=_DIGEST,
    ),
    Claim(
        name="srpt-oracle-vs-mlfq",
        metric="mean JCT of plain MLFQ / SRPT with oracle lengths, min over the rate sweep",
        baseline="plain MLFQ (mlfq)", paper_value=None, unit="x", source=_DIGEST,
        direction=">=",
    ),
)

MODEL, GPU, DATASET = "opt-13b", "a100-80gb", "sharegpt-lengths"
#: The artifact's engine (``overall/*_sharegpt.sh``): 16 requests, 2,048 tokens, 16-token blocks.
ENGINE = {"max_batch_size": 16, "max_batch_tokens": 2048, "block_tokens": 16}
#: Host swap space: FastServe and FastServe-FCFS ``--swap-space 56`` (GiB); vLLM its default 4.
FASTSERVE_SWAP_GIB, VLLM_SWAP_GIB = 56.0, 4.0
#: The artifact's ShareGPT filter (``benchmark-serving.py``): prompt <= 1024, prompt + output <=
#: 2048, and not (prompt < 4 and output < 4).
MIN_TOKENS, MAX_PROMPT, MAX_CONTEXT = 4, 1024, 2048
#: Fig. 11-13 protocol: rates (req/s) and requests per rate (``overall_fastserve_sharegpt.sh``).
RATES = (0.1, 0.2, 0.5, 1.0, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 4.0, 4.5, 5.0, 5.5, 6.0, 10.0)
PROMPTS = (20, 50, 100, 200, 300, 350) + (400,) * 10
#: Fig. 14 protocol (``large_bs/``): batch sizes, rates and requests per rate.
LARGE_BATCHES = (64, 128)
LARGE_RATES = (1.0, 2.0, 2.5, 2.75, 3.0, 3.5, 3.75, 4.0)
LARGE_PROMPTS = (200, 400, 500, 550, 600, 650, 700, 700)
#: ``quick=True``: a smoke test of the pipeline (reproduces nothing).
QUICK_RATES, QUICK_PROMPTS = (0.5, 1.5, 2.5, 4.0), (60, 60, 60, 60)
QUICK_LARGE = ((64,), (2.0, 3.0), (100, 100))
#: The SLOs: 0.3 s per output token (Fig. 11-12); TTFT 3.1 s with 0.3 s/token at 95% (Fig. 13).
SLO_S_PER_TOKEN, SLO_TTFT_S, ATTAINMENT = 0.3, 3.1, 0.95
#: Orca (Max) reserves the model's maximum sequence length (OPT: 2,048 tokens).
ORCA_MAX_TOKENS = 2048
#: The FastServe engine's policies (FastServe = skip-join MLFQ) and vLLM's, in report order.
POLICIES = ("skip-join-mlfq", "mlfq", "fcfs", "vllm", "srpt")
#: A diagnostic run: skip-join MLFQ with an unlimited device KV cache (it never swaps).
NO_KV_LIMIT = "skip-join-mlfq-no-kv-limit"
LARGE_POLICIES = ("orca-max", "skip-join-mlfq", "srpt")

#: The paper's curves at ``RATES`` (FastServe-FCFS and vLLM were run up to 4 req/s): Fig. 11
#: (mean) and Fig. 12 (P95) latency per output token, in s, from the figure data in the
#: artifact's ``plot.ipynb`` (ShareGPT, OPT-13B); Fig. 13 (TTFT 3.1 s and 0.3 s/token) attainment
#: in %, read off the artifact re-run's ``overall/fig13.pdf`` (FastServe's point at 10 req/s is
#: off the plot). Each claim's paper value is these curves' first crossing of the SLO
#: (:func:`sustained_rate`), checked by the tests.
PAPER_CURVES: dict[str, dict[str, tuple[float, ...]]] = {
    "mean_norm_s": {
        "fastserve": (0.034, 0.033, 0.033, 0.039, 0.045, 0.043, 0.047, 0.048, 0.048, 0.063,
                      0.106, 0.187, 0.331, 0.671, 0.856, 1.425),
        "fcfs": (0.024, 0.029, 0.033, 0.038, 0.045, 0.052, 0.091, 0.130, 0.403, 0.849, 1.459),
        "vllm": (0.027, 0.027, 0.029, 0.031, 0.035, 0.058, 0.110, 0.245, 0.522, 0.972, 1.59),
    },
    "p95_norm_s": {
        "fastserve": (0.052, 0.056, 0.056, 0.0918, 0.1202, 0.0923, 0.1110, 0.1157, 0.1119,
                      0.1739, 0.3116, 0.518, 1.145, 3.56, 3.97, 6.42),
        "fcfs": (0.0587, 0.0598, 0.0623, 0.0869, 0.1221, 0.1355, 0.2969, 0.645, 1.735, 3.31,
                 5.88),
        "vllm": (0.0323, 0.0316, 0.0356, 0.0426, 0.0551, 0.1837, 0.418, 0.899, 2.20, 3.81,
                 6.52),
    },
    "attainment": {
        "fastserve": (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.9775, 0.92, 0.635, 0.47, 0.313,
                      0.43, 0.443),
        "fcfs": (1.0, 1.0, 1.0, 1.0, 1.0, 0.86, 0.698, 0.385, 0.233, 0.183, 0.113),
        "vllm": (1.0, 1.0, 1.0, 0.995, 0.83, 0.406, 0.243, 0.208, 0.188, 0.145, 0.0975),
    },
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Sweep:
    """Per-request metrics summarised per policy (rows, in ``policies`` order) and rate
    (columns)."""

    policies: tuple[str, ...]
    rates_per_s: np.ndarray
    requests: np.ndarray
    mean_norm_s: np.ndarray
    p95_norm_s: np.ndarray
    attainment: np.ndarray
    mean_jct_s: np.ndarray
    p99_jct_s: np.ndarray
    busy_s: np.ndarray
    swaps: np.ndarray
    recomputes: np.ndarray
    rejected: np.ndarray

    def of(self, policy: str, metric: str) -> np.ndarray:
        """One policy's ``metric`` at every rate."""
        return getattr(self, metric)[self.policies.index(policy)]

    def to_table(self, **constants: Any) -> dict[str, list[Any]]:
        """A tidy table: one row per policy and rate (``constants`` become leading columns)."""
        n_rates = self.rates_per_s.shape[0]
        rows = len(self.policies) * n_rates
        table: dict[str, list[Any]] = {k: [v] * rows for k, v in constants.items()}
        table["policy"] = [p for p in self.policies for _ in range(n_rates)]
        table["rate_per_s"] = [float(r) for _ in self.policies for r in self.rates_per_s]
        table["requests"] = [int(n) for _ in self.policies for n in self.requests]
        for column, metric in (("mean_latency_s_per_token", "mean_norm_s"),
                               ("p95_latency_s_per_token", "p95_norm_s"),
                               ("slo_attainment", "attainment"), ("mean_jct_s", "mean_jct_s"),
                               ("p99_jct_s", "p99_jct_s"), ("busy_s", "busy_s")):
            table[column] = _rounded(getattr(self, metric).ravel())
        for column, metric in (("swaps", "swaps"), ("recomputations", "recomputes"),
                               ("rejected", "rejected")):
            table[column] = getattr(self, metric).ravel().astype(int).tolist()
        return table


def _rounded(x: np.ndarray) -> list[float]:
    return [float(f"{v:.6g}") for v in x]


def sustained_rate(rates_per_s: np.ndarray, values: np.ndarray, limit: float,
                   *, at_least: bool = False) -> float:
    """The highest rate at which ``values`` (measured at increasing ``rates_per_s``) stay within
    ``limit`` (at most it, or at least it with ``at_least``): the first crossing, interpolated
    linearly between the two swept rates around it, as the artifact's ``interp1d``. A limit met
    at every rate gives the highest rate, one met at none the lowest.

    >>> sustained_rate(np.array([1.0, 2.0]), np.array([1.0, 0.5]), 0.95, at_least=True)
    1.1
    """
    v = np.asarray(values, dtype=np.float64)
    ok = v >= limit if at_least else v <= limit
    if not ok[0]:
        return float(rates_per_s[0])
    if ok.all():
        return float(rates_per_s[-1])
    k = int(np.argmin(ok))  # the first miss; k >= 1
    r0, r1, v0, v1 = rates_per_s[k - 1], rates_per_s[k], v[k - 1], v[k]
    frac = (limit - v0) / (v1 - v0) if v1 != v0 else 0.0
    return float(np.round(r0 + (r1 - r0) * frac, 12))


def artifact_lengths() -> tuple[np.ndarray, np.ndarray]:
    """(prompt, output) token counts of the shipped ShareGPT lengths that pass the artifact's
    filter: prompt at most ``MAX_PROMPT``, prompt plus output at most ``MAX_CONTEXT``, and not
    both under ``MIN_TOKENS``.

    >>> inp, out = artifact_lengths()
    >>> int(inp.max()) <= MAX_PROMPT, int((inp + out).max()) <= MAX_CONTEXT
    (True, True)
    """
    from schedlab.datasets import load

    w = load(DATASET)
    i, o = w.input_tokens, w.output_tokens
    keep = ~((i < MIN_TOKENS) & (o < MIN_TOKENS)) & (i <= MAX_PROMPT) & (i + o <= MAX_CONTEXT)
    return i[keep], o[keep]


def artifact_workloads(
    rates_per_s: tuple[float, ...], prompts: tuple[int, ...], rng: np.random.Generator
) -> list[Any]:
    """One workload per rate, as the artifact's client draws them: ``prompts[j]`` requests
    sampled without replacement from :func:`artifact_lengths`, Poisson arrivals at
    ``rates_per_s[j]``, the first at 0 s (``benchmark-serving.py``).

    >>> ws = artifact_workloads((1.0, 2.0), (5, 8), np.random.default_rng(0))
    >>> [len(w) for w in ws], float(ws[0].arrival_s[0])
    ([5, 8], 0.0)
    """
    from schedlab.datasets import poisson_arrivals
    from schedlab.records import Workload

    inp, out = artifact_lengths()
    workloads = []
    for rate, n in zip(rates_per_s, prompts, strict=True):
        pick = rng.choice(inp.shape[0], n, replace=False)
        arrival = poisson_arrivals(n, rate, seed=rng)
        workloads.append(Workload(arrival_s=arrival - arrival[0], input_tokens=inp[pick],
                                  output_tokens=out[pick]))
    return workloads


def _metrics(result: Any, workload: Any) -> tuple[float, ...]:
    done = np.asarray(result.completed)
    jct = np.asarray(result.jct_s)[done]
    norm = jct / workload.output_tokens[done]
    ttft = np.asarray(result.ttft_s)[done]
    met = (ttft <= SLO_TTFT_S) & (norm <= SLO_S_PER_TOKEN)
    swaps = float(result.swaps.sum())
    return (
        float(norm.mean()), float(np.percentile(norm, 95)), float(met.sum() / done.shape[0]),
        float(jct.mean()), float(np.percentile(jct, 99)), float(result.busy_s),
        swaps, float(result.preemptions.sum()) - swaps, float((~done).sum()),
    )


def _cell(workload: Any, cluster: Any, policy: str, params: dict[str, Any]) -> tuple[float, ...]:
    from schedlab.sim import simulate

    return _metrics(simulate(workload, cluster, policy, policy_params=params), workload)


def _sweep(workloads: list[Any], runs: tuple[tuple[str, Any, str, dict[str, Any]], ...],
           rates: tuple[float, ...], desc: str, jobs: int = 1) -> Sweep:
    """``runs``: (label, cluster, policy, params); every run serves every workload, on ``jobs``
    processes (the largest workloads first; the simulations are deterministic, so the result
    does not depend on ``jobs``)."""
    from schedlab.progress import progress

    cols = np.zeros((9, len(runs), len(workloads)))
    cells = sorted(((j, i) for j in range(len(workloads)) for i in range(len(runs))),
                   key=lambda c: -len(workloads[c[0]]))
    tasks = ((workloads[j], runs[i][1], runs[i][2], runs[i][3]) for j, i in cells)
    if jobs > 1:
        from joblib import Parallel, delayed

        results = Parallel(n_jobs=jobs, return_as="generator")(
            delayed(_cell)(*task) for task in tasks)
    else:
        results = (_cell(*task) for task in tasks)
    for (j, i), metrics in zip(cells, progress(results, desc=desc, total=len(cells)),
                               strict=True):
        cols[:, i, j] = metrics
    return Sweep(
        policies=tuple(r[0] for r in runs), rates_per_s=np.asarray(rates, dtype=np.float64),
        requests=np.array([len(w) for w in workloads]), mean_norm_s=cols[0], p95_norm_s=cols[1],
        attainment=cols[2], mean_jct_s=cols[3], p99_jct_s=cols[4], busy_s=cols[5],
        swaps=cols[6], recomputes=cols[7], rejected=cols[8],
    )


def _sig(value: float) -> float:
    """``value`` at the report's precision (4 significant digits)."""
    return float(f"{value:.4g}")


def _edge(rates: np.ndarray, rate: float) -> str:
    if rate >= rates[-1]:
        return f" (at least: met up to the highest swept rate, {rates[-1]:g} req/s)"
    if rate <= rates[0]:
        return f" (at most: missed already at the lowest swept rate, {rates[0]:g} req/s)"
    return ""


def paper_rate(metric: str, system: str) -> float:
    """The sustained rate the paper's curve of ``system`` (``fastserve``, ``fcfs`` or ``vllm``)
    gives at the claim's SLO (:data:`PAPER_CURVES`).

    >>> [round(paper_rate("mean_norm_s", system), 2) for system in ("fastserve", "fcfs")]
    [4.89, 2.41]
    """
    curve = np.asarray(PAPER_CURVES[metric][system])
    rates = np.asarray(RATES[: curve.shape[0]])
    at_least = metric == "attainment"
    return sustained_rate(rates, curve, ATTAINMENT if at_least else SLO_S_PER_TOKEN,
                          at_least=at_least)


_STATS = {"mean_norm_s": "the mean latency per output token",
          "p95_norm_s": "the P95 latency per output token",
          "attainment": "the share of requests within the SLO"}


def _at(sweep: Sweep, policy: str, metric: str, j: int) -> str:
    v = float(sweep.of(policy, metric)[j])
    return f"{v:.0%}" if metric == "attainment" else f"{v:.3g} s"


def _throughput_claim(claim: Claim, sweep: Sweep, baseline: str, metric: str, what: str,
                      cv: float) -> ClaimResult:
    rates = sweep.rates_per_s
    at_least = metric == "attainment"
    limit = ATTAINMENT if at_least else SLO_S_PER_TOKEN

    def rate(policy: str) -> float:
        return sustained_rate(rates, sweep.of(policy, metric), limit, at_least=at_least)

    ours, base, nokv, srpt = rate("skip-join-mlfq"), rate(baseline), rate(NO_KV_LIMIT), rate(
        "srpt")
    value = _sig(ours / base)
    name = "FastServe-FCFS" if baseline == "fcfs" else "vLLM"
    note = (
        f"At {what}: skip-join MLFQ sustains {ours:.3g} req/s{_edge(rates, ours)}, {name} "
        f"{base:.3g}{_edge(rates, base)} (the paper's curves: FastServe "
        f"{paper_rate(metric, 'fastserve'):.3g}, {name} {paper_rate(metric, baseline):.3g}). "
        f"On the same requests, skip-join MLFQ without a KV limit (never swapping) would sustain "
        f"{nokv:.3g}{_edge(rates, nokv)}, the clairvoyant SRPT {srpt:.3g}{_edge(rates, srpt)}."
        + claim.factor_note(value)
    )
    # the measured reason for the distance to the paper, at the swept rate nearest 3 req/s
    j = int(np.argmin(np.abs(rates - 3.0)))
    k = RATES.index(float(rates[j]))
    paper_fs = PAPER_CURVES[metric]["fastserve"][k]
    stat = _STATS[metric]
    if claim.paper_value is not None and value < claim.paper_value:
        note += (
            f" Below the paper's factor: at {rates[j]:g} req/s {stat} is "
            f"{_at(sweep, 'skip-join-mlfq', metric, j)} for skip-join MLFQ "
            f"({_at(sweep, NO_KV_LIMIT, metric, j)} without a KV limit), "
            f"{_at(sweep, 'srpt', metric, j)} for SRPT and "
            + (f"{paper_fs:.0%}" if at_least else f"{paper_fs:.3g} s")
            + " for the paper's FastServe: the paper's FastServe stays near the oracle past "
            f"FCFS's limit, ours does not, with or without swaps. MLFQ approximates "
            f"least-attained-service, and on these lengths (output CV {cv:.2f}, below 1) that "
            "order is far from shortest-first; the artifact's OPT-tokenized ShareGPT_V3 first "
            "turns could not be used. Swaps: "
            f"{sweep.of('skip-join-mlfq', 'swaps')[j] / sweep.requests[j]:.1f} per request at "
            f"{rates[j]:g} req/s."
        )
    if baseline == "vllm":
        fcfs = rate("fcfs")
        note += (
            f" vLLM's prefill-only iterations cost it {1 - base / fcfs:.1%} of FastServe-FCFS's "
            "rate here (the paper's curves: "
            f"{1 - paper_rate(metric, 'vllm') / paper_rate(metric, 'fcfs'):.1%}). Not modelled: "
            "the vLLM scripts gave vLLM only 400 KV blocks (--num-gpu-blocks-override 400) until "
            "2025-09-24, after the paper's figure data were committed, which makes it recompute "
            "under load."
        )
    return claim.measured(value, note=note)


def _jct_claim(claim: Claim, large: dict[int, Sweep], metric: str, orca_slots: int) -> ClaimResult:
    best, where, ceiling, ceiling_all = 0.0, "", 0.0, 0.0
    per = []
    for bs, sweep in large.items():
        orca = sweep.of("orca-max", metric)
        ratio = orca / sweep.of("skip-join-mlfq", metric)
        srpt = orca / sweep.of("srpt", metric)
        ceiling_all = max(ceiling_all, float(srpt.max()))
        per.append(f"batch {bs}: " + ", ".join(f"{r:.2f}" for r in ratio))
        k = int(np.argmax([_sig(float(r)) for r in ratio]))
        if ratio[k] > best:
            best, ceiling = float(ratio[k]), float(srpt[k])
            where = f"batch {bs} at {sweep.rates_per_s[k]:g} req/s"
    value = _sig(best)
    note = (
        f"Max at {where}; the clairvoyant SRPT's factor on the same run is {ceiling:.3g}x (its "
        f"best anywhere {ceiling_all:.3g}x): what any policy could reach here. Orca (Max) holds "
        f"at most {orca_slots} requests in the KV cache at either batch size. Per rate, "
        + "; ".join(per) + "."
        + claim.factor_note(value)
    )
    if claim.paper_value is not None and value < claim.paper_value / 2:
        note += (
            f" Miss of the paper's factor: even the oracle reaches only {ceiling_all:.3g}x on "
            "this setup, so no scheduler could; v1's workload (synthetic Gamma arrivals and Zipf "
            "lengths, per the artifact notebook's variable names) and its Orca setup are not "
            "published."
        )
    return claim.measured(value, note=note)


def _loaded(sweep: Sweep) -> np.ndarray:
    fcfs = sweep.of("fcfs", "mean_norm_s")
    return fcfs >= 2 * fcfs[0]


def _skip_join_claim(claim: Claim, sweep: Sweep, below_zero: float) -> ClaimResult:
    loaded = _loaded(sweep)
    if not loaded.any():
        return claim.measured(None, note="No swept rate loads FastServe-FCFS (its latency per "
                              "output token never doubles); extend the sweep.")
    ratio = sweep.of("mlfq", "mean_jct_s")[loaded] / sweep.of("skip-join-mlfq", "mean_jct_s")[
        loaded]
    geo = float(np.exp(np.log(ratio).mean()))
    return claim.measured(_sig(geo), note=(
        "per loaded rate: " + ", ".join(f"{v:.3f}" for v in ratio) + f". Skip-join starts "
        f"{below_zero:.0%} of these jobs below queue 0 (their batch-1 prefill exceeds 10 ms); "
        "plain MLFQ starts them in queue 0 and demotes them one queue per quantum from their "
        "first iteration on, so the two orders differ only over a job's first few iterations "
        f"and the mean JCTs stay within {np.abs(ratio - 1).max():.1%} of each other. In the "
        "artifact skip-join was a no-op: its profile put every prefill under 10 ms, so every "
        "job started in queue 0."
    ))


def _below_queue_zero(cost: Any, input_tokens: np.ndarray) -> float:
    """The share of ``input_tokens`` prompts skip-join starts below queue 0."""
    from schedlab.policies.mlfq import initial_queue

    return float((initial_queue(np.asarray(cost.prefill_time_s(input_tokens))) > 0).mean())


def _srpt_claim(claim: Claim, sweep: Sweep) -> ClaimResult:
    ratio = sweep.of("mlfq", "mean_jct_s") / sweep.of("srpt", "mean_jct_s")
    j = int(np.argmin([_sig(float(v)) for v in ratio]))
    return claim.measured(
        _sig(float(ratio[j])),
        note=f"min at {sweep.rates_per_s[j]:g} req/s; per rate: "
        + ", ".join(f"{v:.3f}" for v in ratio) + ".",
    )


def _policy_defaults() -> dict[str, dict[str, Any]]:
    from schedlab.policies import get_policy

    out = {}
    for name in POLICIES:
        sig = inspect.signature(get_policy(name))
        out[name] = {p.name: p.default for p in sig.parameters.values()
                     if p.kind is inspect.Parameter.KEYWORD_ONLY}
    out["orca-max"] = {"policy": "fcfs", "reserve_max_tokens": ORCA_MAX_TOKENS}
    return out


def _paper_lines(ax: Any, metric: str, scale: float) -> None:
    """The paper's curves (:data:`PAPER_CURVES`), dotted, beside ours."""
    for system, curve in PAPER_CURVES[metric].items():
        ax.plot(RATES[: len(curve)], scale * np.asarray(curve), linestyle=":", marker="x",
                markersize=3, color="black" if system == "fastserve" else "grey",
                label=f"paper: {system}")


def _plot(sweep: Sweep, large: dict[int, Sweep], plot_dir: str | PathLike[str]) -> list[str]:
    from matplotlib.figure import Figure  # a bare Figure: the caller's pyplot backend is untouched

    from schedlab.plotting import log_axis

    path = Path(plot_dir)
    path.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(15, 4.5))
    axes = fig.subplots(1, 3)
    for ax, metric, label in ((axes[0], "mean_norm_s", "mean latency per output token (s)"),
                              (axes[1], "p95_norm_s", "P95 latency per output token (s)")):
        for p in sweep.policies:
            ax.plot(sweep.rates_per_s, sweep.of(p, metric), marker="o", markersize=3, label=p)
        _paper_lines(ax, metric, 1.0)
        ax.axhline(SLO_S_PER_TOKEN, color="grey", linestyle="--", linewidth=1)
        log_axis(ax, "y")
        ax.set_ylabel(label)
    for p in sweep.policies:
        axes[2].plot(sweep.rates_per_s, 100 * sweep.of(p, "attainment"), marker="o",
                     markersize=3, label=p)
    _paper_lines(axes[2], "attainment", 100.0)
    axes[2].axhline(100 * ATTAINMENT, color="grey", linestyle="--", linewidth=1)
    axes[2].set_ylabel(f"% within TTFT {SLO_TTFT_S:g} s and {SLO_S_PER_TOKEN:g} s/token")
    for ax in axes:
        ax.set_xlabel("request rate (req/s)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"FastServe artifact protocol (Fig. 11-13): {MODEL} on one {GPU}, ShareGPT "
                 "lengths, batch 16")
    fig.tight_layout()
    first = path / "fastserve_slo_vs_rate.png"
    fig.savefig(first, dpi=110)
    fig = Figure(figsize=(5 * len(large), 4.5))
    axes = np.atleast_1d(fig.subplots(1, len(large)))
    for ax, (bs, s) in zip(axes, large.items(), strict=True):
        for p in s.policies:
            ax.plot(s.rates_per_s, s.of(p, "mean_jct_s"), marker="o", markersize=3, label=p)
        ax.set_title(f"batch {bs}")
        ax.set_xlabel("request rate (req/s)")
        ax.set_ylabel("mean JCT (s)")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("v1 claim: Orca (Max) against skip-join MLFQ and the SRPT oracle (Fig. 14 "
                 "protocol)")
    fig.tight_layout()
    second = path / "fastserve_jct_large_batch.png"
    fig.savefig(second, dpi=110)
    return [str(first), str(second)]


def run(
    *, quick: bool = False, plot_dir: str | PathLike[str] | None = None, seed: int = 0
) -> SeedReport:
    """Reproduce FastServe's artifact and v1 claims on schedlab's cost model and simulator.

    ``quick=True`` runs a smoke-test size (four rates of 60 requests, one large batch);
    ``plot_dir`` (None: no plot) receives ``fastserve_slo_vs_rate.png`` and
    ``fastserve_jct_large_batch.png``; ``seed`` seeds the request samples and arrivals (the same
    workloads serve every policy). The default run takes about 30 s on two cores (the
    simulations of a sweep run on two processes; the results do not depend on it).
    """
    from schedlab.sim import Cluster

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    rates, prompts = (QUICK_RATES, QUICK_PROMPTS) if quick else (RATES, PROMPTS)
    batches, large_rates, large_prompts = (QUICK_LARGE if quick
                                           else (LARGE_BATCHES, LARGE_RATES, LARGE_PROMPTS))
    cost = Cluster.homogeneous(model=MODEL, gpu=GPU, **ENGINE).instances[0].resolved_cost()
    kv_tokens = int(cost.kv_capacity_tokens)

    def engine(swap_gib: float, overlap: bool, **limits: Any) -> Any:
        return Cluster.homogeneous(model=MODEL, gpu=GPU, cost=cost, swap_space_gib=swap_gib,
                                   overlap_swap=overlap, **{**ENGINE, **limits})

    fastserve = engine(FASTSERVE_SWAP_GIB, True)  # proactive swapping on its own streams
    vllm = engine(VLLM_SWAP_GIB, False)
    unlimited = engine(FASTSERVE_SWAP_GIB, True, kv_capacity_tokens=2**40)
    runs: tuple[tuple[str, Any, str, dict[str, Any]], ...] = (
        *((p, vllm if p == "vllm" else fastserve, p, {}) for p in POLICIES),
        (NO_KV_LIMIT, unlimited, "skip-join-mlfq", {}),
    )
    jobs = parallel_jobs(quick)  # two cores: the runs in parallel
    sweep = _sweep(artifact_workloads(rates, prompts, rng), runs, rates,
                   "fastserve: SLO sweep (policy x rate)", jobs)
    large_workloads = artifact_workloads(large_rates, large_prompts, rng)
    large = {}
    for bs in batches:
        cluster = engine(FASTSERVE_SWAP_GIB, True, max_batch_size=bs)
        large_runs: tuple[tuple[str, Any, str, dict[str, Any]], ...] = (
            ("orca-max", cluster, "fcfs", {"reserve_max_tokens": ORCA_MAX_TOKENS}),
            ("skip-join-mlfq", cluster, "skip-join-mlfq", {}),
            ("srpt", cluster, "srpt", {}),
        )
        large[bs] = _sweep(large_workloads, large_runs, large_rates,
                           f"fastserve: batch {bs} (policy x rate)", jobs)

    by_name = {c.name: c for c in CLAIMS}
    inp, out = artifact_lengths()
    cv = float(np.std(out) / np.mean(out))
    slos = {  # claim name before "-vs-": (metric, the SLO in words)
        "throughput-at-mean-slo": ("mean_norm_s",
                                   f"a mean of {SLO_S_PER_TOKEN:g} s per output token"),
        "throughput-at-p95-slo": ("p95_norm_s", f"a P95 of {SLO_S_PER_TOKEN:g} s per output token"),
        "goodput-at-slo-attainment": ("attainment", f"{ATTAINMENT:.0%} of requests within TTFT "
                                      f"{SLO_TTFT_S:g} s and {SLO_S_PER_TOKEN:g} s per output "
                                      "token"),
    }
    results = [
        _throughput_claim(by_name[f"{name}-vs-{base}"], sweep, base, metric, what, cv)
        for name, (metric, what) in slos.items()
        for base in ("fcfs", "vllm")
    ] + [
        _jct_claim(by_name["mean-jct-vs-orca-max"], large, "mean_jct_s",
                   kv_tokens // ORCA_MAX_TOKENS),
        _jct_claim(by_name["p99-jct-vs-orca-max"], large, "p99_jct_s",
                   kv_tokens // ORCA_MAX_TOKENS),
        _skip_join_claim(by_name["skip-join-vs-plain-mlfq"], sweep,
                         _below_queue_zero(cost, inp)),
        _srpt_claim(by_name["srpt-oracle-vs-mlfq"], sweep),
    ]
    rejected = int(sweep.rejected.sum() + sum(s.rejected.sum() for s in large.values()))
    if rejected:
        caveat = f" {rejected} requests were rejected over the sweeps and left out of the metrics."
        results = [r.claim.measured(r.measured_value, note=r.note + caveat) for r in results]
    plots = [] if plot_dir is None else _plot(sweep, large, plot_dir)
    setup = {
        "model": MODEL,
        "gpu": GPU,
        "tp": 1,
        "kv_capacity_tokens": kv_tokens,
        "engines": {
            "fastserve": {**ENGINE, "swap_space_gib": FASTSERVE_SWAP_GIB,
                          "host_kv_capacity_tokens": fastserve.instances[0].host_kv_capacity(cost),
                          "overlap_swap": True,
                          "policies": [p for p in POLICIES if p != "vllm"]},
            "vllm": {**ENGINE, "swap_space_gib": VLLM_SWAP_GIB, "overlap_swap": False,
                     "policies": ["vllm"],
                     "note": "prefill-only iterations (no chunked prefill), recompute preemption"},
        },
        "dataset": DATASET,
        "length_filter": f"prompt <= {MAX_PROMPT}, prompt + output <= {MAX_CONTEXT}, not both "
        f"under {MIN_TOKENS} (the artifact's benchmark-serving.py)",
        "lengths": {
            "pool": int(inp.shape[0]),
            "input_tokens_mean": round(float(inp.mean()), 1),
            "output_tokens_mean": round(float(out.mean()), 1),
            "output_tokens_p99": round(float(np.percentile(out, 99)), 1),
            "output_tokens_cv": round(float(out.std() / out.mean()), 3),
        },
        "arrivals": "Poisson, the first at 0 s; every policy serves the same requests",
        "rates_per_s": list(rates),
        "requests_per_rate": list(prompts),
        "slo": {"s_per_token": SLO_S_PER_TOKEN, "ttft_s": SLO_TTFT_S, "attainment": ATTAINMENT},
        "policies": list(POLICIES),
        "policy_params": _policy_defaults(),
        "large_batch": {
            "batch_sizes": list(batches),
            "rates_per_s": list(large_rates),
            "requests_per_rate": list(large_prompts),
            "orca_max_tokens": ORCA_MAX_TOKENS,
        },
        "seed": seed,
        "quick": bool(quick),
        "plots": plots,
    }
    large_table: dict[str, list[Any]] = {}
    for bs, s in large.items():
        for k, v in s.to_table(batch_size=bs).items():
            large_table.setdefault(k, []).extend(v)
    tables = {"slo_vs_rate": sweep.to_table(), "jct_large_batch": large_table}
    return SeedReport(paper=PAPER, claims=tuple(results), setup=setup, tables=tables,
                      wall_s=time.perf_counter() - start)
