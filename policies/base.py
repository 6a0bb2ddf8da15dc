"""The contract between the simulator and a policy: what a policy sees and what it returns.

A *batching policy* is a pure function ``policy(view: QueueView, /, **params) -> BatchDecision``
called by the simulator at every decision point of one instance (an arrival, a completion, the end
of an iteration that changed the batch, or the time the policy asked to be woken at). A *router*
is a pure function ``router(view: RouterView, /, **params) -> np.ndarray`` giving an instance per
arriving request.

Everything a policy sees is read-only: the view is a frozen dataclass and its arrays are read-only
numpy arrays, all of the same length ``n`` (the requests that have arrived at this instance and are
not finished). A policy keeps no hidden state: per-request scheduling state it wants remembered
(MLFQ's queue level and attained service, say) lives in the ``priority`` and ``attained_s`` columns,
which the simulator stores and hands back; a policy changes them by returning new arrays.

Example
-------
>>> import numpy as np
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 20], kv_capacity_tokens=1000)
>>> v.n, v.waiting.tolist(), bool(v.input_tokens.flags.writeable)
(2, [True, True], False)
>>> d = BatchDecision(run=np.array([1, 0]))
>>> d.run.tolist(), d.reconsider_at_s
([1, 0], inf)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

import numpy as np

__all__ = [
    "KV_GPU",
    "KV_HOST",
    "KV_NONE",
    "BatchDecision",
    "BatchingPolicy",
    "QueueView",
    "Router",
    "RouterView",
]

#: ``kv_location`` codes: no KV anywhere (not started, or dropped for recomputation) ...
KV_NONE = 0
#: ... KV resident in device memory ...
KV_GPU = 1
#: ... KV swapped out to host memory.
KV_HOST = 2

_EMPTY_I = np.zeros(0, dtype=np.int64)


def _ro(a: Any, dtype: Any) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueView:
    """Read-only snapshot of one instance's queue at a decision point.

    Per-request columns (length ``n``; position ``i`` is what decisions refer to):

    - ``request_id``: index of the request in the simulated workload.
    - ``arrival_s``, ``input_tokens``: known at arrival.
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
    size of host swap space), ``iteration`` (iterations this
    instance has run before this decision) and ``previous_decision_iteration`` (the value of
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

    def tokens_needed(self) -> np.ndarray:
        """Tokens each request would process if scheduled now whole: its remaining prompt
        (capped by ``chunk_tokens`` when chunking) or 1 decode token."""
        rem = self.input_tokens - self.prefilled_tokens
        if self.chunk_tokens > 0:
            rem = np.minimum(rem, self.chunk_tokens)
        return np.where(rem > 0, rem, 1)

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
        cols = {k: _ro(columns.pop(k, v), dt) for k, (v, dt) in defaults.items()}
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
class BatchDecision:
    """What a batching policy returns: the next iteration's batch and KV moves.

    - ``run``: positions (into the view) of the requests to run next, in priority order. A
      request in its prefill phase processes ``prefill_chunk[k]`` prompt tokens (``None`` means
      its whole remaining prompt, capped by ``chunk_tokens`` when chunking is on); a request in
      its decode phase generates one token. A request whose KV is on the host is swapped in
      first (the simulator charges the swap time).
    - ``swap_out``: positions whose device KV moves to host memory (preemption by swapping).
    - ``recompute``: positions whose KV is dropped; their prompt and generated tokens are
      prefilled again when they next run (preemption by recomputation).
    - ``swap_in``: positions (not in ``run``) whose host KV is prefetched to the device.
    - ``priority``, ``attained_s``: new values of the policy-owned columns (length ``n``), or
      ``None`` to leave them unchanged.
    - ``reconsider_at_s``: absolute time at which the policy wants to decide again even if no
      request arrives or finishes (MLFQ: when a running request's quantum runs out); ``inf``
      means only at arrivals and completions. The simulator may run many identical decode
      iterations in one closed-form step until then.
    - ``reject``: positions to reject now (admission control), with one reason each in
      ``reject_reason``.
    - ``wake_on_arrival``: whether an arrival to this instance while the decided run is in
      progress should stop a decode stretch at the next iteration boundary and ask the policy
      again (True, the default). A policy returns False when it knows a newcomer cannot change
      its decision (strict FCFS with a waiting request already blocked: the newcomer queues
      behind it); the run then continues through arrivals, which join the queue. An idle
      instance always decides at an arrival.
    - ``hold_batch``: when True, after this run ends the same requests run again (their next
      prefill chunk, capped by ``chunk_tokens`` when chunking, or a decode step) without asking
      the policy; requests that complete leave the batch. The hold ends (the policy decides)
      when a request of the batch completes while a request outside the batch is queued, when
      the KV cache or the token budget cannot take the next step, at the first iteration
      boundary at or after ``reconsider_at_s``, or (with ``wake_on_arrival``) after an arrival.
      A policy returns True only when its decision at each of those iteration boundaries would
      be exactly the remaining batch with no KV moves, rejections or column updates (FCFS
      run-to-completion when nothing waits, or when the waiting head is blocked by KV or batch
      size: admitted requests only grow their KV, so it stays blocked). False (the default)
      asks the policy after every run that is not a closed-form decode stretch.
    - ``hold_room_tokens``, ``hold_release_tokens``: with ``hold_batch``, a completion while
      requests wait outside the batch ends the hold only once the requests completed since the
      decision have released, in total, at least ``hold_room_tokens``, counting
      ``hold_release_tokens[i]`` (one int >= 0 per position) for request ``i``. A policy whose
      admission needs room that only completions create declares how much is missing and an
      upper bound on what each completion adds (FCFS run-to-completion: the room is the KV
      capacity minus the admitted requests' footprints, so a completion adds at most the
      footprint it had at the decision). ``hold_room_tokens=0`` (the default) ends the hold at
      every such completion.
    - ``hold_free_tokens``: with ``hold_batch``, such a completion also needs the device's free
      KV (``kv_free_tokens`` as the next view would show it) to be at least
      ``hold_free_tokens`` to end the hold. A policy whose blocked request needs that much free
      KV declares it (vLLM: the blocked request's KV demand plus the watermark; the running
      requests keep growing, so this is tighter than the released room). 0 (the default)
      places no such condition.

    These fields only save policy calls: a policy that declares them truthfully gets the same
    schedule.
    """

    run: np.ndarray
    prefill_chunk: np.ndarray | None = None
    swap_out: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    recompute: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    swap_in: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    priority: np.ndarray | None = None
    attained_s: np.ndarray | None = None
    reconsider_at_s: float = math.inf
    reject: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    reject_reason: tuple[str, ...] = ()
    wake_on_arrival: bool = True
    hold_batch: bool = False
    hold_room_tokens: int = 0
    hold_release_tokens: np.ndarray | None = None
    hold_free_tokens: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "run", np.asarray(self.run, dtype=np.int64))
        for name in ("swap_out", "recompute", "swap_in", "reject"):
            object.__setattr__(self, name, np.asarray(getattr(self, name), dtype=np.int64))
        if len(self.reject_reason) != self.reject.shape[0]:
            raise ValueError(
                "BatchDecision needs one reject_reason per rejected position: "
                f"{self.reject.shape[0]} rejected, {len(self.reject_reason)} reasons."
            )
        if self.hold_room_tokens > 0:
            if self.hold_release_tokens is None:
                raise ValueError(
                    "BatchDecision.hold_room_tokens > 0 needs hold_release_tokens (one int >= 0 "
                    "per position: what each request's completion can release)."
                )
            object.__setattr__(
                self, "hold_release_tokens", np.asarray(self.hold_release_tokens, dtype=np.int64)
            )


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
        return int(self.outstanding_tokens.shape[0])


class BatchingPolicy(Protocol):
    """A batching policy: ``(view, /, **params) -> BatchDecision``."""

    def __call__(self, view: QueueView, /, **params: Any) -> BatchDecision: ...


class Router(Protocol):
    """A router: ``(view, /, **params) -> instance index per arriving request``."""

    def __call__(self, view: RouterView, /, **params: Any) -> np.ndarray: ...


PolicyLike = str | Callable[..., BatchDecision]
