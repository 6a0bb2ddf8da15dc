"""Per-request simulation state as numpy columns (one row per workload request).

Token accounting (the invariant the engine keeps and the tests check):

- ``target``: prompt tokens to prefill; the prompt at first, and after a recomputation
  preemption the prompt plus every token generated so far (vLLM's recompute re-prefills them).
- ``prefilled``: tokens of ``target`` already in the KV cache.
- ``generated``: output tokens produced; the last prefill chunk produces one, each decode one.
- ``gen_base``: ``generated`` at the last recomputation (those tokens are part of ``target``).
- ``kv = prefilled + generated - gen_base`` tokens of KV, on the device or the host (``loc``).

Extension point: a distributed prefix cache (Mooncake) starts ``prefilled`` at the cached prefix;
requests spanning instances (LoongServe) would hold KV on several instances, which would become a
second, ragged table keyed by request.

>>> import numpy as np
>>> t = RequestTable.empty(np.array([0.0, 1.0]), np.array([5, 6]), np.array([2, 3]),
...                        np.array([2.0, 3.0]))
>>> t.target.tolist(), t.status.tolist()
([5, 6], [0, 0])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["COMPLETED", "PENDING", "REJECTED", "RequestTable"]

PENDING, COMPLETED, REJECTED = 0, 1, 2


@dataclass(slots=True)
class RequestTable:
    """Mutable columns of the engine (not part of the public API; see :class:`SimResult`)."""

    arrival: np.ndarray
    input: np.ndarray
    output: np.ndarray
    pred: np.ndarray
    target: np.ndarray
    prefilled: np.ndarray
    generated: np.ndarray
    gen_base: np.ndarray
    kv: np.ndarray
    loc: np.ndarray
    running: np.ndarray
    priority: np.ndarray
    attained: np.ndarray
    last_run: np.ndarray
    est_prefill: np.ndarray
    instance: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    status: np.ndarray
    reject_code: np.ndarray
    preemptions: np.ndarray
    swaps: np.ndarray

    @classmethod
    def empty(
        cls, arrival: np.ndarray, input_tokens: np.ndarray, output: np.ndarray, pred: np.ndarray
    ) -> RequestTable:
        n = arrival.shape[0]
        zi = lambda: np.zeros(n, dtype=np.int64)
        return cls(
            arrival=np.asarray(arrival, dtype=np.float64),
            input=np.asarray(input_tokens, dtype=np.int64),
            output=np.asarray(output, dtype=np.int64),
            pred=np.asarray(pred, dtype=np.float64),
            target=np.array(input_tokens, dtype=np.int64),
            prefilled=zi(),
            generated=zi(),
            gen_base=zi(),
            kv=zi(),
            loc=np.zeros(n, dtype=np.int8),
            running=np.zeros(n, dtype=bool),
            priority=np.full(n, -1, dtype=np.int64),
            attained=np.zeros(n),
            last_run=np.array(arrival, dtype=np.float64),
            est_prefill=np.zeros(n),
            instance=np.full(n, -1, dtype=np.int64),
            first_token=np.full(n, np.nan),
            finish=np.full(n, np.nan),
            status=np.zeros(n, dtype=np.int8),
            reject_code=np.full(n, -1, dtype=np.int32),
            preemptions=zi(),
            swaps=zi(),
        )

    def outstanding(self, idx: np.ndarray) -> float:
        """Prompt tokens left to prefill plus predicted output tokens left, summed over ``idx``."""
        left = self.pred[idx] - self.generated[idx]
        return float((self.target[idx] - self.prefilled[idx]).sum() + left[left > 0].sum())
