"""Partial Rollout, the baseline Seer compares against (Seer, arXiv 2511.14617 §4.2, in the APRIL
setting): every iteration issues more groups than training needs (``over_issue`` times, 2x by
default), stops generating the moment the needed number of groups has completed, and carries the
cut responses over to the next iteration, where they resume (their KV recomputed) beside fresh
groups that fill the iteration back up to the issued count.

It runs on the divided-rollout driver (:func:`~schedlab.sim.simulate_divided_rollout` with
``stop_after_groups`` and ``generated_tokens``), so any rollout scheduler can drive it; the
paper's baseline is veRL-like group round robin. [recon] Which groups train is the first to
complete; a carried group keeps its place ahead of fresh ones.

What it costs is measured per iteration: the tokens generated in the iteration (fresh and
resumed) over its time, and the bias toward short responses: the mean output length of the
responses that completed against that of the pool they were drawn from (Seer: "Partial Rollout
biases toward short outputs").

>>> from schedlab.datasets.rollout import rollout_batch
>>> from schedlab.sim import RolloutCluster
>>> pool = rollout_batch(n_prompts=40, samples_per_prompt=4, seed=0, max_tokens=2048)
>>> c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=1)
>>> p = simulate_partial_rollout(pool, c, n_groups=4, iterations=3)
>>> p.table["iteration"].tolist(), bool((p.table["completed_groups"] >= 4).all())
([0, 1, 2], True)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from schedlab.errors import check_instance, check_positive_float, check_positive_int
from schedlab.records import Workload
from schedlab.sim.divided_rollout import simulate_divided_rollout
from schedlab.sim.rollout import RolloutCluster, RolloutResult

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PartialRolloutResult", "simulate_partial_rollout"]


@dataclass(frozen=True, slots=True)
class PartialRolloutResult:
    """Partial Rollout's iterations (:func:`simulate_partial_rollout`).

    ``table`` has one row per iteration: ``time_s``, ``issued_groups``, ``carried_requests``
    (resumed from the iteration before), ``completed_groups``, ``new_tokens`` (generated in the
    iteration, by completed and cut responses alike), ``tokens_per_s``, ``cut_requests``,
    ``completed_mean_tokens`` (mean output length of the responses that completed);
    ``pool_mean_tokens`` is the mean output length of the groups drawn; ``results`` holds each
    iteration's :class:`~schedlab.sim.RolloutResult`.
    """

    table: pd.DataFrame
    pool_mean_tokens: float
    results: tuple[RolloutResult, ...]

    @property
    def tokens_per_s(self) -> float:
        """Generated tokens per second over the iterations after the first (the first starts
        with nothing carried over; the whole run when there is one)."""
        t = self.table if len(self.table) == 1 else self.table.iloc[1:]
        return float(t["new_tokens"].sum() / t["time_s"].sum())

    @property
    def length_bias(self) -> float:
        """Mean output length of the responses completed after the first iteration over the
        pool's mean: below 1 when Partial Rollout favours short responses."""
        t = self.table if len(self.table) == 1 else self.table.iloc[1:]
        done = t["completed_mean_tokens"] * t["completed_requests"]
        return float(done.sum() / t["completed_requests"].sum() / self.pool_mean_tokens)


def simulate_partial_rollout(
    pool: Workload,
    cluster: RolloutCluster,
    *,
    n_groups: int,
    over_issue: float = 2.0,
    iterations: int = 3,
    scheduler: str | Callable[..., Any] = "group-round-robin",
    max_tokens: int | None = None,
    **kwargs: Any,
) -> PartialRolloutResult:
    """Run ``iterations`` Partial Rollout iterations (see the module docstring) that each need
    ``n_groups`` completed groups and issue ``ceil(over_issue * n_groups)``, drawing fresh groups
    from ``pool`` (a group-ordered batch, e.g. :func:`schedlab.datasets.rollout.rollout_batch`,
    with at least the groups the iterations draw) in order.

    ``scheduler``, ``max_tokens`` (default: the pool's longest response) and ``kwargs`` go to
    :func:`~schedlab.sim.simulate_divided_rollout`. Defaults: 2x over-issue (APRIL, Seer §4.2).
    """
    where = "simulate_partial_rollout"
    check_instance(pool, Workload, "pool", where)
    check_instance(cluster, RolloutCluster, "cluster", where)
    need = check_positive_int(n_groups, "n_groups", where)
    factor = check_positive_float(over_issue, "over_issue", where)
    if factor < 1.0:
        raise ValueError(f"The 'over_issue' parameter of {where} must be a float in [1, inf). "
                         f"Got {over_issue!r} instead.")
    n_iter = check_positive_int(iterations, "iterations", where)
    for key in ("stop_after_groups", "generated_tokens"):
        if key in kwargs:
            raise ValueError(f"{where} sets {key!r} itself; do not pass it.")
    if pool.group_id is None:
        raise ValueError(f"The 'pool' parameter of {where} must have a group_id column.")
    gid = pool.group_id
    starts = np.flatnonzero(np.r_[True, gid[1:] != gid[:-1]])
    if np.unique(gid).shape[0] != starts.shape[0]:
        raise ValueError(f"The 'pool' parameter of {where} must hold each group's requests "
                         "together (group-ordered).")
    bounds = np.r_[starts, gid.shape[0]]
    issued = math.ceil(factor * need)
    limit = int(pool.output_tokens.max()) if max_tokens is None else check_positive_int(
        max_tokens, "max_tokens", where)

    carried: dict[int, int] = {}  # pool index -> tokens generated before this iteration
    carried_groups: list[int] = []
    next_group = 0
    rows: list[dict[str, Any]] = []
    results = []
    for it in range(n_iter):
        fresh = issued - len(carried_groups)
        if next_group + fresh > starts.shape[0]:
            raise ValueError(f"The 'pool' parameter of {where} holds {starts.shape[0]} groups; "
                             f"iteration {it} needs {next_group + fresh} from it (draw a "
                             "larger pool).")
        new_groups = range(next_group, next_group + fresh)
        next_group += fresh
        # the cut requests of carried groups (their completed siblings stay done) and fresh ones
        idx = np.sort(np.concatenate(
            [np.fromiter(carried, dtype=np.int64, count=len(carried)),
             *(np.arange(bounds[g], bounds[g + 1]) for g in new_groups)]))
        w = pool.take(idx)
        gen0 = np.array([carried.get(int(i), 0) for i in idx], dtype=np.int64)
        r = simulate_divided_rollout(w, cluster, scheduler, max_tokens=limit,
                                     stop_after_groups=need, generated_tokens=gen0, **kwargs)
        results.append(r)
        ok = r.serving.completed
        cut = ~ok
        partial = r.extra["partial_tokens"]
        new = int((w.output_tokens[ok] - gen0[ok]).sum() + (partial[cut] - gen0[cut]).sum())
        t = r.makespan_s
        rows.append({
            "iteration": it, "time_s": t, "issued_groups": len(carried_groups) + fresh,
            "carried_requests": int((gen0 > 0).sum()),
            "completed_groups": _completed_groups(w.group_id, ok),
            "completed_requests": int(ok.sum()), "cut_requests": int(cut.sum()),
            "new_tokens": new, "tokens_per_s": new / t if t > 0 else 0.0,
            "completed_mean_tokens": float(w.output_tokens[ok].mean()) if ok.any() else 0.0,
        })
        # cut responses carry over with their groups; completed groups leave
        carried = {int(i): int(p) for i, p in zip(idx[cut], partial[cut], strict=True)}
        carried_groups = sorted({int(g) for g in np.searchsorted(starts, idx[cut], "right") - 1})
    import pandas as pd

    drawn = np.concatenate([np.arange(bounds[g], bounds[g + 1]) for g in range(next_group)])
    return PartialRolloutResult(table=pd.DataFrame(rows),
                                pool_mean_tokens=float(pool.output_tokens[drawn].mean()),
                                results=tuple(results))


def _completed_groups(group_id: np.ndarray | None, ok: np.ndarray) -> int:
    """Groups whose requests (in this iteration) all completed."""
    assert group_id is not None
    g, inv = np.unique(group_id, return_inverse=True)
    return int((np.bincount(inv, weights=~ok, minlength=g.shape[0]) == 0).sum())
