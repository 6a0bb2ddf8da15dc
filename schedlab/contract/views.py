"""What a policy sees: read-only views of one instance's queue and of a cluster, and the KV
location codes.

A *batching policy* sees a :class:`QueueView` at each decision point of one instance; a *router*
sees a :class:`RouterView` when requests arrive. Everything in a view is read-only: the view is a
frozen dataclass and its arrays are read-only numpy arrays. Per-request columns of a
:class:`QueueView` all have length ``n`` (the requests that have arrived at this instance and are
not finished); a policy refers to a request by its *position* ``0..n-1`` in them. A policy keeps
no hidden state: per-request scheduling state it wants remembered (MLFQ's queue level and
attained service) lives in the ``priority`` and ``attained_s`` columns, which the simulator stores
and hands back; a policy changes them by returning new arrays (:mod:`schedlab.contract.answers`).

>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 20], kv_capacity_tokens=1000)
>>> v.n, v.waiting.tolist(), bool(v.input_tokens.flags.writeable)
(2, [True, True], False)
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["KV_GPU", "KV_HOST", "KV_NONE", "QueueView", "RouterView"]

#: ``kv_location`` codes: no KV anywhere (not started, or dropped for recomputation) ...
KV_NONE = 0
#: ... KV resident in device memory ...
KV_GPU = 1
#: ... KV swapped out to host memory.
KV_HOST = 2


def _ro(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    """Read-only snapshot of one instance's queue at a decision point.

    Per-request columns (length ``n``; position ``i`` is what decisions refer to):

    - ``request_id``: index of the request in the simulated workload.
    - ``arrival_s``: arrival time.
    - ``input_tokens``: tokens to prefill: the prompt, and after a preemption by recomputation
      the prompt plus the tokens generated before it (they are prefilled again).
    - ``output_tokens_pred``: predicted total output tokens (the true length for an oracle run,
      a predictor's output otherwise; never read the truth from anywhere else).
    - ``prefilled_tokens``: prompt tokens already in KV (chunked prefill progress; equals
      ``input_tokens`` once the prefill is done).
    - ``generated_tokens``: output tokens produced so far (the prefill produces the first).
    - ``kv_tokens``: tokens of KV this request holds (on device or host, see ``kv_location``).
    - ``kv_location``: :data:`KV_NONE`, :data:`KV_GPU` or :data:`KV_HOST`.
    - ``running``: the request ran in the previous iteration.
    - ``priority``: policy-owned int state, ``-1`` for a request no policy has seen yet.
    - ``attained_s``: policy-owned float state; the simulator adds each iteration's duration to it
      for every request that ran in that iteration.
    - ``last_run_s``: when the request last ran (its arrival time if it never ran).
    - ``est_prefill_s``: the cost model's batch-1 prefill time of the whole prompt.

    Instance-wide: ``now_s``, ``kv_capacity_tokens``, ``kv_free_tokens`` (device KV not held by any
    request), ``max_batch_size``, ``max_batch_tokens`` (token budget per iteration, prefill tokens
    plus one per decode), ``chunk_tokens`` (largest prefill chunk, or 0 when chunked prefill is
    off: a prompt is then prefilled whole in one iteration), ``block_tokens`` (KV page size),
    ``host_kv_free_tokens`` (room left in host swap space), ``host_kv_capacity_tokens`` (the
    size of host swap space), ``iteration`` (iterations this instance has run before this
    decision) and ``previous_decision_iteration`` (the value of
    ``iteration`` at the instance's previous policy call, ``-1`` at the first). The last two let
    a policy act "every K iterations" (FastServe's starvation check runs every 1000) without
    hidden state: it acts when a multiple of K lies in ``(previous_decision_iteration, iteration]``.
    """

    now_s: float
    request_id: np.ndarray
    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens_pred: np.ndarray
    prefilled_tokens: np.ndarray
    generated_tokens: np.ndarray
    kv_tokens: np.ndarray
    kv_location: np.ndarray
    running: np.ndarray
    priority: np.ndarray
    attained_s: np.ndarray
    last_run_s: np.ndarray
    est_prefill_s: np.ndarray
    kv_capacity_tokens: int
    kv_free_tokens: int
    max_batch_size: int = 256
    max_batch_tokens: int = 8192
    chunk_tokens: int = 0
    block_tokens: int = 16
    host_kv_free_tokens: int = 2**62
    host_kv_capacity_tokens: int = 2**62
    iteration: int = 0
    previous_decision_iteration: int = -1

    @property
    def n(self) -> int:
        """Number of requests in the view."""
        return int(self.request_id.shape[0])

    @property
    def prefill_done(self) -> np.ndarray:
        """Whether each request's whole prompt is in KV (it is in its decode phase)."""
        return self.prefilled_tokens >= self.input_tokens

    @property
    def waiting(self) -> np.ndarray:
        """Requests that did not run in the previous iteration."""
        return ~self.running

    @classmethod
    def from_columns(
        cls,
        *,
        now_s: float,
        input_tokens: Any,
        kv_capacity_tokens: int,
        **columns: Any,
    ) -> QueueView:
        """Build a view with sensible defaults for every column not given (handy in tests).

        Missing columns default to: ids ``0..n-1``, arrival 0, predicted output 1, nothing
        prefilled or generated, no KV, not running, priority -1, attained 0, last run at
        arrival, prefill estimate 0; ``kv_free_tokens`` defaults to the capacity minus the
        device-resident KV.
        """
        inp = np.asarray(input_tokens, dtype=np.int64)
        n = inp.shape[0]
        arrival = np.asarray(columns.pop("arrival_s", np.zeros(n)), dtype=np.float64)
        defaults: dict[str, tuple[Any, Any]] = {
            "request_id": (np.arange(n), np.int64),
            "arrival_s": (arrival, np.float64),
            "output_tokens_pred": (np.ones(n), np.float64),
            "prefilled_tokens": (np.zeros(n), np.int64),
            "generated_tokens": (np.zeros(n), np.int64),
            "kv_tokens": (np.zeros(n), np.int64),
            "kv_location": (np.zeros(n), np.int8),
            "running": (np.zeros(n, dtype=bool), bool),
            "priority": (np.full(n, -1), np.int64),
            "attained_s": (np.zeros(n), np.float64),
            "last_run_s": (arrival, np.float64),
            "est_prefill_s": (np.zeros(n), np.float64),
        }
        cols: dict[str, Any] = {k: _ro(columns.pop(k, v), dt) for k, (v, dt) in defaults.items()}
        kv_used = int(cols["kv_tokens"][cols["kv_location"] == KV_GPU].sum())
        free = columns.pop("kv_free_tokens", int(kv_capacity_tokens) - kv_used)
        return cls(
            now_s=float(now_s),
            input_tokens=_ro(inp, np.int64),
            kv_capacity_tokens=int(kv_capacity_tokens),
            kv_free_tokens=int(free),
            **cols,
            **columns,
        )

    def column_names(self) -> list[str]:
        """Names of the per-request columns."""
        return [f.name for f in fields(self) if isinstance(getattr(self, f.name), np.ndarray)]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouterView:
    """Read-only snapshot of a cluster when requests arrive, for a router.

    Per arriving request (length ``m``): ``request_id``, ``input_tokens``, ``output_tokens_pred``.
    Per instance (length ``k``): ``outstanding_tokens`` (prompt tokens not yet prefilled plus
    predicted output tokens not yet generated, over the requests assigned to the instance),
    ``kv_used_tokens``, ``kv_capacity_tokens``, ``queue_length`` (requests assigned and not
    finished). ``round`` counts the routing calls so far (so round robin needs no hidden state).
    """

    now_s: float
    request_id: np.ndarray
    input_tokens: np.ndarray
    output_tokens_pred: np.ndarray
    outstanding_tokens: np.ndarray
    kv_used_tokens: np.ndarray
    kv_capacity_tokens: np.ndarray
    queue_length: np.ndarray
    round: int = 0
    routed_so_far: int = 0

    @property
    def n_instances(self) -> int:
        """Number of instances in the cluster."""
        return int(self.outstanding_tokens.shape[0])
