"""RetroInfer's GPU cache (the wave buffer) replayed on an access trace: which retrieved
clusters hit, which come over PCIe, under a replacement policy.

Seed paper: RetroInfer (arXiv 2505.02922 §5; code ``wave_buffer_cpu.cpp``). Step ``t`` requests
the clusters ``trace[t]`` (in score order) and sees the cache as step ``t - 1`` left it:
resident ones hit and become most recent; the misses are read from host memory, then admitted in
score order up to the capacity, the policy (:data:`schedlab.policies.CACHE_POLICIES`, or any
callable on a :class:`~schedlab.contract.retrieval.CacheView`) choosing the victims, which the
contract's :func:`~schedlab.contract.retrieval.validate_eviction` checks. Belady's optimum on the
same trace is :func:`schedlab.solvers.solve_cache_replacement`.

>>> import numpy as np
>>> trace = [np.array([1, 2]), np.array([2, 3]), np.array([1, 2])]
>>> run = replay_cache(trace, capacity=2, policy="lru")
>>> run.hits.tolist(), run.misses.tolist()
([0, 1, 1], [2, 1, 1])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract.retrieval import (
    CacheView,
    InvalidEviction,
    access_trace,
    validate_eviction,
)
from schedlab.errors import check_nonneg_int

__all__ = ["CacheRun", "replay_cache"]


@dataclass(frozen=True, slots=True)
class CacheRun:
    """Hits and misses per step, and the resident set after each step (``resident[t]``)."""

    hits: np.ndarray
    misses: np.ndarray
    resident: tuple[np.ndarray, ...]

    @property
    def hit_rate(self) -> float:
        """Hits over requests (1 for an empty trace)."""
        total = int(self.hits.sum() + self.misses.sum())
        return float(self.hits.sum()) / total if total else 1.0


def replay_cache(trace: Sequence[Any], capacity: int,
                 policy: str | Callable[..., Any] = "lru") -> CacheRun:
    """Replay ``trace`` (one array of cluster ids per step) on a cache of ``capacity`` clusters
    under ``policy``; a policy that breaks the contract gets a ``ValueError`` naming the rule
    and the step."""
    from schedlab.policies import get_cache_policy

    steps = access_trace(trace, "replay_cache")
    cap = check_nonneg_int(capacity, "capacity", "replay_cache")
    evict = get_cache_policy(policy)
    resident = np.zeros(0, dtype=np.int64)
    last = np.zeros(0, dtype=np.int64)
    admitted = np.zeros(0, dtype=np.int64)
    hits = np.zeros(len(steps), dtype=np.int64)
    misses = np.zeros(len(steps), dtype=np.int64)
    after: list[np.ndarray] = []
    for t, req in enumerate(steps):
        hit = np.isin(req, resident)
        hits[t], misses[t] = int(hit.sum()), int((~hit).sum())
        last = np.where(np.isin(resident, req), t, last)
        incoming = req[~hit][:cap]
        view = CacheView(step=t, capacity=cap, resident=resident, last_used=last,
                         admitted=admitted, requested=req, admitting=incoming)
        victims = np.asarray(evict(view), dtype=np.int64)
        try:
            validate_eviction(view, victims)
        except InvalidEviction as exc:
            raise ValueError(f"Cache policy {getattr(evict, '__name__', evict)!r} at step {t}: "
                             f"{exc}") from None
        keep = ~np.isin(resident, victims)
        resident = np.concatenate([resident[keep], incoming])
        last = np.concatenate([last[keep], np.full(incoming.shape[0], t)])
        admitted = np.concatenate([admitted[keep], np.full(incoming.shape[0], t)])
        snap = np.sort(resident)
        snap.flags.writeable = False
        after.append(snap)
    return CacheRun(hits=hits, misses=misses, resident=tuple(after))
