"""Per-request simulation state as numpy columns (one row per workload request).

Token accounting (the invariant the engine keeps and the tests check):

- ``target``: prompt tokens to prefill; the prompt at first, and after a recomputation
  preemption the prompt plus every token generated so far (vLLM's recompute re-prefills them).
- ``prefilled``: tokens of ``target`` already in the KV cache.
- ``generated``: output tokens produced; the last prefill chunk produces one, each decode one.
- ``gen_base``: ``generated`` at the last recomputation (those tokens are part of ``target``).
- ``kv = prefilled + generated - gen_base`` tokens of KV, on the device or the host (``loc``).
- ``left = output - generated``: true output tokens still to produce (0 means completed).

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
    left: np.ndarray

    #: The int64 columns target, prefilled, generated, kv, priority, left as rows of one array (so a
    #: policy's view gathers them in one fancy-indexing call); the named columns are its rows.
    ints: np.ndarray | None = None
    #: The float columns arrival, pred, attained, last_run, est_prefill as rows of one array.
    floats: np.ndarray | None = None

    @classmethod
    def empty(
        cls, arrival: np.ndarray, input_tokens: np.ndarray, output: np.ndarray, pred: np.ndarray
    ) -> RequestTable:
        n = arrival.shape[0]
        zi = lambda: np.zeros(n, dtype=np.int64)
        ints = np.zeros((6, n), dtype=np.int64)
        ints[0] = input_tokens
        ints[4] = -1
        ints[5] = output
        floats = np.zeros((5, n), dtype=np.float64)
        floats[0] = arrival
        floats[1] = pred
        floats[3] = arrival
        return cls(
            arrival=floats[0],
            input=np.asarray(input_tokens, dtype=np.int64),
            output=np.asarray(output, dtype=np.int64),
            pred=floats[1],
            target=ints[0],
            prefilled=ints[1],
            generated=ints[2],
            gen_base=zi(),
            kv=ints[3],
            loc=np.zeros(n, dtype=np.int8),
            running=np.zeros(n, dtype=bool),
            priority=ints[4],
            attained=floats[2],
            last_run=floats[3],
            est_prefill=floats[4],
            instance=np.full(n, -1, dtype=np.int64),
            first_token=np.full(n, np.nan),
            finish=np.full(n, np.nan),
            status=np.zeros(n, dtype=np.int8),
            reject_code=np.full(n, -1, dtype=np.int32),
            preemptions=zi(),
            swaps=zi(),
            left=ints[5],
            ints=ints,
            floats=floats,
        )

    def outstanding(self, idx: np.ndarray) -> float:
        """Prompt tokens left to prefill plus predicted output tokens left, summed over ``idx``."""
        left = self.pred[idx] - self.generated[idx]
        return float((self.target[idx] - self.prefilled[idx]).sum() + left[left > 0].sum())
