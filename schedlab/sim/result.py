"""What :func:`~schedlab.sim.simulator.simulate` returns: :class:`SimResult`.

Per-request results are numpy columns; :attr:`SimResult.requests` builds a pandas DataFrame on
first use. :meth:`SimResult.summary` gives the headline metrics as a plain dict (JSON-ready).

>>> import numpy as np
>>> r = SimResult(
...     request_id=np.array([0, 1]), instance=np.array([0, 0]), arrival_s=np.array([0.0, 0.0]),
...     first_token_s=np.array([1.0, 2.0]), finish_s=np.array([3.0, 2.0]),
...     status=np.array(["completed", "completed"]), reject_reason=np.array(["", ""]),
...     input_tokens=np.array([4, 4]), output_tokens=np.array([3, 1]),
...     preemptions=np.array([0, 0]), swaps=np.array([0, 0]), n_instances=1, busy_s=3.0,
...     iterations=3, decisions=3, wall_s=0.01)
>>> s = r.summary(slo_ttft_s=1.5)
>>> s["jct_mean_s"], s["tpot_mean_s"], s["slo_attainment"], s["gpu_utilisation"]
(2.5, 1.0, 0.5, 1.0)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SimResult"]


def _stats(prefix: str, x: np.ndarray, unit: str = "s") -> dict[str, float]:
    x = x[~np.isnan(x)]
    if x.shape[0] == 0:
        return {f"{prefix}_{q}_{unit}": float("nan") for q in ("mean", "p50", "p90", "p99")}
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    return {
        f"{prefix}_mean_{unit}": float(x.mean()),
        f"{prefix}_p50_{unit}": float(p50),
        f"{prefix}_p90_{unit}": float(p90),
        f"{prefix}_p99_{unit}": float(p99),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class SimResult:
    """Per-request outcome columns (workload order) and run-wide counters.

    ``finish_s`` is the completion time, or the rejection time of a rejected request (whose
    ``reject_reason`` says why). ``ttft_s = first_token_s - arrival_s``;
    ``tpot_s = (finish_s - first_token_s) /
    (output_tokens - 1)`` (NaN for one-token outputs); ``jct_s = finish_s - arrival_s``; all NaN
    for rejected requests. ``iteration_log`` is set when ``record_iterations=True``: arrays
    ``start_s``, ``end_s``, ``instance``, CSR ``offsets`` and per entry ``request`` (workload
    index), ``prefill_tokens`` (0 for a decode) and ``output_token``. ``decisions`` counts the
    policy's calls (a static plan the engine keeps saves calls, not batches; ``iterations``
    counts the batches run).
    """

    request_id: np.ndarray
    instance: np.ndarray
    arrival_s: np.ndarray
    first_token_s: np.ndarray
    finish_s: np.ndarray
    status: np.ndarray
    reject_reason: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    preemptions: np.ndarray
    swaps: np.ndarray
    n_instances: int
    busy_s: float
    iterations: int
    decisions: int
    wall_s: float
    slo_ttft_col: np.ndarray | None = None
    slo_tpot_col: np.ndarray | None = None
    iteration_log: dict[str, np.ndarray] | None = None
    policy: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def completed(self) -> np.ndarray:
        """Boolean mask of completed requests."""
        return self.status == "completed"

    @property
    def ttft_s(self) -> np.ndarray:
        return np.where(self.completed, self.first_token_s - self.arrival_s, np.nan)

    @property
    def jct_s(self) -> np.ndarray:
        return np.where(self.completed, self.finish_s - self.arrival_s, np.nan)

    @property
    def tpot_s(self) -> np.ndarray:
        steps = self.output_tokens - 1
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (self.finish_s - self.first_token_s) / steps
        return np.where(self.completed & (steps > 0), t, np.nan)

    @property
    def requests(self) -> pd.DataFrame:
        """One row per request (built on each access; keep a reference if reused)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "request_id": self.request_id,
                "instance": self.instance,
                "arrival_s": self.arrival_s,
                "first_token_s": self.first_token_s,
                "finish_s": self.finish_s,
                "status": self.status,
                "reject_reason": self.reject_reason,
                "input_tokens": self.input_tokens,
                "output_tokens": self.output_tokens,
                "preemptions": self.preemptions,
                "swaps": self.swaps,
                "ttft_s": self.ttft_s,
                "tpot_s": self.tpot_s,
                "jct_s": self.jct_s,
            }
        )

    def summary(self, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None) -> dict:
        """Headline metrics as a dict of floats and ints.

        SLO targets: the arguments when given, else the workload's per-request ``slo_ttft_s`` /
        ``slo_tpot_s`` columns, else no target on that metric. A request meets its SLO when it
        completed and meets every target (a one-token output has no TPOT to miss).
        ``goodput_rps`` counts the requests meeting their SLO per second of makespan; with no
        target at all, ``slo_attainment`` and ``goodput_rps`` are None ("no SLO").
        ``rejected_by_reason`` counts the rejected requests by reason.
        """
        done = self.completed
        n = int(self.status.shape[0])
        ttft, tpot, jct = self.ttft_s, self.tpot_s, self.jct_s
        finish = self.finish_s[done]
        makespan = float(finish.max() - self.arrival_s.min()) if finish.shape[0] else 0.0
        ok = done.copy()
        t_ttft = slo_ttft_s if slo_ttft_s is not None else self.slo_ttft_col
        t_tpot = slo_tpot_s if slo_tpot_s is not None else self.slo_tpot_col
        if t_ttft is not None:
            ok &= ttft <= t_ttft
        if t_tpot is not None:
            ok &= np.isnan(tpot) | (tpot <= t_tpot)
        per = makespan if makespan > 0 else float("nan")
        with np.errstate(divide="ignore", invalid="ignore"):
            norm = jct / self.output_tokens
        rejected = self.status == "rejected"
        reasons, counts = np.unique(self.reject_reason[rejected], return_counts=True)
        out: dict[str, Any] = {
            "policy": self.policy,
            "requests": n,
            "completed": int(done.sum()),
            "rejected": int(rejected.sum()),
            "rejected_by_reason": {str(r): int(c) for r, c in zip(reasons, counts, strict=True)},
            "instances": self.n_instances,
        }
        out.update(_stats("ttft", ttft))
        out.update(_stats("tpot", tpot))
        out.update(_stats("jct", jct))
        out.update(_stats("normalized_latency", norm, "s_per_token"))
        if "tbt_s" in self.extra:
            out.update(_stats("tbt", np.asarray(self.extra["tbt_s"], dtype=np.float64)))
        out.update(
            {
                "slo_ttft_s": None if t_ttft is None or np.ndim(t_ttft) else float(t_ttft),
                "slo_tpot_s": None if t_tpot is None or np.ndim(t_tpot) else float(t_tpot),
                # no target at all: no attainment to report (None), not a vacuous 1.0
                "slo_attainment": (None if t_ttft is None and t_tpot is None
                                   else float(ok.sum() / n) if n else float("nan")),
                "goodput_rps": (None if t_ttft is None and t_tpot is None
                                else float(ok.sum() / per)),
                "throughput_rps": float(done.sum() / per),
                "throughput_output_tokens_per_s": float(self.output_tokens[done].sum() / per),
                "gpu_utilisation": float(self.busy_s / (per * self.n_instances)),
                "makespan_s": makespan,
                "preemptions": int(self.preemptions.sum()),
                "swaps": int(self.swaps.sum()),
                "iterations": self.iterations,
                "decisions": self.decisions,
                "wall_s": self.wall_s,
            }
        )
        return out

    def effective_capacity(
        self, slo_ttft_s: float = 30.0, tbt_thresholds_s: tuple[float, ...] = (0.1, 0.2, 0.3)
    ) -> dict[float, float]:
        """Mooncake's "effective request capacity" (FAST'25 §5.1): for each TBT threshold, the
        share of *all* requests that completed with TTFT <= ``slo_ttft_s`` and TBT (the mean of
        their slowest 10% of token gaps, ``extra["tbt_s"]``) within it; a one-token output has
        no gap to miss. Needs a run that recorded token gaps (``simulate(token_gaps=True)`` or
        :func:`~schedlab.sim.simulate_disaggregated`).

        >>> from schedlab import Workload
        >>> from schedlab.sim import InstanceSpec, simulate
        >>> w = Workload(arrival_s=[0.0, 0.0], input_tokens=[9, 9], output_tokens=[5, 1])
        >>> r = simulate(w, InstanceSpec(model="llama-2-7b", gpu="a100-80gb"), "fcfs",
        ...              token_gaps=True)
        >>> r.effective_capacity(tbt_thresholds_s=(0.001, 0.1))
        {0.001: 0.5, 0.1: 1.0}
        """
        if "tbt_s" not in self.extra:
            raise ValueError("effective_capacity needs token gaps: run simulate(..., "
                             "token_gaps=True) or simulate_disaggregated.")
        tbt = np.nan_to_num(np.asarray(self.extra["tbt_s"], dtype=np.float64), nan=0.0)
        ok = self.completed & (self.ttft_s <= slo_ttft_s)
        n = max(int(self.status.shape[0]), 1)
        return {float(x): float((ok & (tbt <= x)).sum() / n) for x in tbt_thresholds_s}

    def summary_frame(self, slo_ttft_s: float | None = None, slo_tpot_s: float | None = None,
                      **labels: Any) -> pd.DataFrame:
        """:meth:`summary` as a one-row DataFrame, ``labels`` (e.g. ``rate=2.0``) as its leading
        columns and ``rejected_by_reason`` spread over ``rejected:REASON`` columns, so the rows of
        a sweep stack with ``pandas.concat``.

        >>> import pandas as pd
        >>> from schedlab import Workload
        >>> from schedlab.sim import Cluster, simulate
        >>> w = Workload(arrival_s=[0.0, 0.1, 0.2], input_tokens=[90, 9, 40],
        ...              output_tokens=[30, 2, 5])
        >>> c = Cluster.homogeneous("llama-2-7b", "a100-80gb", max_batch_size=1)
        >>> df = pd.concat([simulate(w, c, p).summary_frame(rate=5.0) for p in ("fcfs", "srpt")])
        >>> print(df[["rate", "policy", "completed", "jct_mean_s"]].round(3).to_string(index=False))
         rate policy  completed  jct_mean_s
          5.0   fcfs          3       0.205
          5.0   srpt          3       0.137
        """
        import pandas as pd

        row: dict[str, Any] = dict(labels)
        for k, v in self.summary(slo_ttft_s, slo_tpot_s).items():
            if k == "rejected_by_reason":
                row.update({f"rejected:{reason}": n for reason, n in v.items()})
            else:
                row[k] = v
        return pd.DataFrame([row])
