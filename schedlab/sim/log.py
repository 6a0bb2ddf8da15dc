"""The iteration log of a simulation (``simulate(..., record_iterations=True)``): every iteration
individually, closed-form decode stretches expanded, in the form the optimal baselines verify.

>>> import numpy as np
>>> log = IterationLog()
>>> log.add(0, np.array([0.0, 1.0]), np.array([1.0, 2.0]), np.array([3]), np.array([0]),
...         np.array([True]))
>>> d = log.to_dict()
>>> d["start_s"].tolist(), d["offsets"].tolist(), d["request"].tolist()
([0.0, 1.0], [0, 1, 2], [3, 3])
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["IterationLog"]


class IterationLog:
    """Every iteration individually (closed-form stretches expanded), as growing chunks."""

    __slots__ = ("counts", "end", "instance", "output", "prefill", "request", "start")

    def __init__(self) -> None:
        self.start: list[np.ndarray] = []
        self.end: list[np.ndarray] = []
        self.instance: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.request: list[np.ndarray] = []
        self.prefill: list[np.ndarray] = []
        self.output: list[np.ndarray] = []

    def add(
        self,
        inst: int,
        starts: np.ndarray,
        ends: np.ndarray,
        req: np.ndarray,
        prefill: np.ndarray,
        output: np.ndarray,
    ) -> None:
        """``len(starts)`` iterations, each running ``req`` with the same entries."""
        k = starts.shape[0]
        self.start.append(starts)
        self.end.append(ends)
        self.instance.append(np.full(k, inst, dtype=np.int64))
        self.counts.append(np.full(k, req.shape[0], dtype=np.int64))
        self.request.append(np.tile(req, k))
        self.prefill.append(np.tile(prefill, k))
        self.output.append(np.tile(output, k))

    def to_dict(self) -> dict[str, np.ndarray]:
        """Arrays ``start_s``, ``end_s``, ``instance``, ``offsets`` (CSR), ``request``,
        ``prefill_tokens``, ``output_token``, iterations sorted by (start, instance)."""

        def cat(parts: list[np.ndarray], dtype: Any) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

        start, end = cat(self.start, np.float64), cat(self.end, np.float64)
        inst, counts = cat(self.instance, np.int64), cat(self.counts, np.int64)
        req, pre = cat(self.request, np.int64), cat(self.prefill, np.int64)
        out = cat(self.output, bool)
        order = np.lexsort((inst, start))
        offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        lens = counts[order]
        new_off = np.zeros_like(offsets)
        np.cumsum(lens, out=new_off[1:])
        pos = np.repeat(offsets[:-1][order] - new_off[:-1], lens) + np.arange(new_off[-1])
        return {
            "start_s": start[order],
            "end_s": end[order],
            "instance": inst[order],
            "offsets": new_off,
            "request": req[pos],
            "prefill_tokens": pre[pos],
            "output_token": out[pos],
        }
