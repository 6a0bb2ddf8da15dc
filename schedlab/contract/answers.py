"""What a batching policy returns: a :class:`Plan` (what it wants; the engine forms the batch) or
a :class:`BatchDecision` (exactly what to run, for complete control).

A :class:`Plan` is an order of the queue, most urgent first, and a few rules the engine applies
to it (:func:`schedlab.contract.forming.form_batch`): the batch is the longest prefix of the order
that fits the batch size, the token budget and the KV cache, after evicting requests the plan
allows to be evicted from the back of the order; requests that can never fit the instance are
rejected with a reason. Because the engine forms the batch, it knows why the prefix stopped and
needs no hint from the policy about when to ask again; a plan that declares itself ``static`` is
kept and re-formed by the engine as the queue evolves (see :class:`Plan`).

A :class:`BatchDecision` names the batch, the KV moves and the rejections itself; the engine
checks it (:func:`schedlab.contract.validation.validate_decision`) and asks the policy again at
every decision point.

>>> import numpy as np
>>> p = Plan(order=np.array([1, 0]), evictable=True)
>>> p.order.tolist(), p.preempt, p.static
([1, 0], 'recompute', False)
>>> d = BatchDecision(run=np.array([1, 0]))
>>> d.run.tolist(), d.reconsider_at_s
([1, 0], inf)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeAlias

import numpy as np

from schedlab.contract.views import QueueView, RouterView

__all__ = [
    "PREDICTED",
    "PREEMPT_MODES",
    "Answer",
    "BatchDecision",
    "BatchingPolicy",
    "Plan",
    "Router",
]

#: How evicted requests lose their device KV: swapped to host memory, or dropped and prefilled
#: again when they next run.
PREEMPT_MODES = ("swap", "recompute")
#: ``Plan.footprint_tokens="predicted"``: each request's prompt plus its predicted output,
#: ``input_tokens + ceil(output_tokens_pred)``, as the engine reads them (for newcomers too).
PREDICTED = "predicted"

_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_I.flags.writeable = False


def _positions(value: Any, name: str) -> np.ndarray:
    """``value`` as int64 positions; a fraction, NaN or a boolean mask is refused (a cast would
    truncate 0.5 to 0 or read a mask as positions 0 and 1)."""
    if isinstance(value, np.ndarray) and value.dtype == np.int64:
        return value
    a = np.asarray(value)
    if a.size and a.dtype.kind not in "iu":
        if a.dtype.kind == "b":
            raise ValueError(f"{name} must hold positions, not a boolean mask "
                             "(np.flatnonzero(mask) gives the positions).")
        try:
            f = a.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name} must hold integer positions. Got dtype {a.dtype}.") from None
        bad = ~np.isfinite(f) | (f != np.round(f))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(f"{name} must hold integer positions; element {i} is "
                             f"{f.ravel()[i].item()!r}.")
    return a.astype(np.int64)


def _nonneg_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"Plan.{name} must be an int >= 0. Got {value!r}.")
    return int(value)


def _mask(value: Any, name: str) -> bool | np.ndarray:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    a = np.asarray(value)
    if a.size == 0:
        return a.astype(bool)
    if a.dtype != np.bool_:
        raise ValueError(
            f"Plan.{name} must be a bool or a boolean array (one per position). Got dtype "
            f"{a.dtype}."
        )
    return a


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """What a policy wants: an order of the queue and the rules the engine forms the batch by.

    The engine's rule (:func:`~schedlab.contract.forming.form_batch`, one compiled twin in the
    simulator): requests that can never fit the instance are rejected; then the batch is the
    longest prefix of ``order`` within ``max_batch_size``, ``max_batch_tokens`` and the KV cache,
    where a request fits when the KV the batch needs up to it (plus the reserves below) is at
    most the free KV plus the device KV of evictable requests *behind* it in the order; strict:
    the first request that does not fit ends the batch. Evictions then take evictable
    device-resident requests from the back of the order until the batch (and the reserve after
    it) fits.

    Fields:

    - ``order``: positions, most urgent first. Only these run or are evicted; positions left out
      wait.
    - ``evictable``: which requests may lose their device KV so that requests ahead of them fit:
      a boolean per position, or ``True`` / ``False`` for all / none.
    - ``footprint_tokens``: KV each request is expected to hold when it finishes: one int per
      position, or ``"predicted"`` (:data:`PREDICTED`: its prompt plus its predicted output,
      ``input_tokens + ceil(output_tokens_pred)``), or None. When given, a request that has not
      started joins the batch only while the free KV covers what it and every request ahead of
      it still need to reach their footprints (Orca reserves a request's maximum length at
      admission; FCFS here reserves the prompt plus the predicted output).
    - ``reserve_tokens``: free KV to keep after each request but the first (FastServe's proactive
      headroom; evictions keep it free after the batch too).
    - ``watermark_tokens``: free KV to keep after admitting a request that holds no KV, unless it
      is the first (vLLM's watermark).
    - ``defer``: requests that wait this round although they are in the order (a boolean per
      position, or None): the batch skips them without stopping, they are the first to give up
      device KV, and the deferral is lifted when nothing else could run (FastServe's prefill
      gate).
    - ``prefetch``: when nothing is evicted, swap in up to this many host-resident requests behind
      the batch, in order, each while ``reserve_tokens`` stay free after the batch's next
      iteration (FastServe's proactive swap-in).
    - ``preempt``: how evicted requests lose their KV: ``"recompute"`` or ``"swap"`` (to host
      memory while its space lasts, then recompute).
    - ``prefills_alone``: when the formed batch holds a request whose next step is a prefill
      (or a prefill chunk), only those run this iteration; the batch's decoding requests keep
      their KV and wait for the next one (vLLM's scheduler without chunked prefill: it does not
      schedule decodes while prefills are scheduled).
    - ``static``: the plan stays the policy's answer as the queue evolves. Asked again at any
      later point before its timer, the policy would return the same plan for the requests it
      ordered (same order, same per-request fields), with newcomers behind all of them in
      arrival order, as long as the engine carries out the batches it forms: running them,
      finishing requests and admitting arrivals. The engine then keeps the plan and re-forms the
      batch from it at every decision point, and asks the policy again only at its timer, after
      a formation that moved KV or rejected a request, and, unless the plan
      :attr:`covers_newcomers`, when the batch could reach requests that arrived after it. FCFS
      and vLLM orders are static whenever they are arrival order; SJF (a newcomer ranks by its
      length), SRPT (remaining work shrinks) and MLFQ (queues change) are not.
      :func:`schedlab.testing.check_policy` checks the claim (``check_static_plan``), and
      ``simulate(..., check_static=True)`` checks it on a whole run.
    - ``priority``, ``attained_s``: new values of the policy-owned columns (length ``n``), or None
      to leave them unchanged.
    - ``quantum_left_s``: service each request may still attain before the policy wants to
      decide again (one float per position, ``inf`` for none), or None: the engine asks again at
      the first iteration boundary at or after the earliest expiry among the requests it batches
      (MLFQ's quanta). A static plan has none (running changes what is left).
    - ``reconsider_at_s``: absolute time at which to ask the policy again even if nothing else
      happens; ``inf``: never.

    >>> import numpy as np
    >>> Plan(order=np.array([0, 1]), preempt="later")
    Traceback (most recent call last):
    ...
    ValueError: Plan.preempt must be one of ('swap', 'recompute'). Got 'later'.
    """

    order: np.ndarray
    evictable: bool | np.ndarray = False
    footprint_tokens: np.ndarray | str | None = None
    reserve_tokens: int = 0
    watermark_tokens: int = 0
    defer: np.ndarray | None = None
    prefetch: int = 0
    preempt: str = "recompute"
    prefills_alone: bool = False
    static: bool = False
    priority: np.ndarray | None = None
    attained_s: np.ndarray | None = None
    quantum_left_s: np.ndarray | None = None
    reconsider_at_s: float = math.inf

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "order", _positions(self.order, "Plan.order"))
        set_(self, "evictable", _mask(self.evictable, "evictable"))
        if self.defer is not None:
            set_(self, "defer", _mask(self.defer, "defer"))
        if isinstance(self.footprint_tokens, str):
            if self.footprint_tokens != PREDICTED:
                raise ValueError(f"Plan.footprint_tokens must be token counts, {PREDICTED!r} or "
                                 f"None. Got {self.footprint_tokens!r}.")
        elif self.footprint_tokens is not None:
            set_(self, "footprint_tokens", np.asarray(self.footprint_tokens, dtype=np.int64))
        for name in ("reserve_tokens", "watermark_tokens", "prefetch"):
            set_(self, name, _nonneg_int(getattr(self, name), name))
        if self.preempt not in PREEMPT_MODES:
            raise ValueError(
                f"Plan.preempt must be one of {PREEMPT_MODES}. Got {self.preempt!r}."
            )
        for name in ("prefills_alone", "static"):
            value = getattr(self, name)
            if not isinstance(value, (bool, np.bool_)):
                raise ValueError(f"Plan.{name} must be a bool. Got {value!r}.")
            set_(self, name, bool(value))
        if self.quantum_left_s is not None:
            set_(self, "quantum_left_s", np.asarray(self.quantum_left_s, dtype=np.float64))
            if self.static:
                raise ValueError("Plan.quantum_left_s cannot be given with static=True: running "
                                 "changes the quantum left, so the plan would not stay the same.")

    @property
    def covers_newcomers(self) -> bool:
        """Whether the plan's per-request rules are the same for every request (``evictable`` a
        bool, no ``defer`` mask, ``footprint_tokens`` None or ``"predicted"``), so that a static
        plan extends to newcomers: the engine puts them at the back of the order itself instead
        of asking the policy.

        >>> Plan(order=[0], evictable=True, footprint_tokens="predicted").covers_newcomers
        True
        >>> Plan(order=[0], footprint_tokens=[12]).covers_newcomers
        False
        """
        return (isinstance(self.evictable, bool) and self.defer is None
                and (self.footprint_tokens is None or isinstance(self.footprint_tokens, str)))


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchDecision:
    """Exactly what to do next: the next iteration's batch, KV moves and rejections.

    - ``run``: positions (into the view) of the requests to run next. A request in its prefill
      phase processes ``prefill_chunk[k]`` prompt tokens (``None``: its whole remaining prompt,
      capped by ``chunk_tokens`` when chunking is on; without chunking a prompt is prefilled
      whole); a request in its decode phase generates one token. A request whose KV is on the
      host is swapped in first (the simulator charges the swap time).
    - ``swap_out``: positions whose device KV moves to host memory (preemption by swapping).
    - ``recompute``: positions whose KV is dropped; their prompt and generated tokens are
      prefilled again when they next run (preemption by recomputation).
    - ``swap_in``: positions (not in ``run``) whose host KV is prefetched to the device.
    - ``reject``: positions to reject now, with one reason each in ``reject_reason``.
    - ``priority``, ``attained_s``, ``reconsider_at_s``: as in :class:`Plan`.

    The rules a decision must keep are :func:`~schedlab.contract.validation.validate_decision`'s.
    A policy that returns a decision is asked again at every decision point (an arrival, a
    completion, the end of an iteration that prefilled or moved KV, a KV limit, its timer).
    """

    run: np.ndarray
    prefill_chunk: np.ndarray | None = None
    swap_out: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    recompute: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    swap_in: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    reject: np.ndarray = field(default_factory=lambda: _EMPTY_I)
    reject_reason: tuple[str, ...] = ()
    priority: np.ndarray | None = None
    attained_s: np.ndarray | None = None
    reconsider_at_s: float = math.inf

    def __post_init__(self) -> None:
        for name in ("run", "swap_out", "recompute", "swap_in", "reject"):
            object.__setattr__(self, name, _positions(getattr(self, name), f"BatchDecision.{name}"))
        object.__setattr__(self, "reject_reason", tuple(self.reject_reason))
        if len(self.reject_reason) != self.reject.shape[0]:
            raise ValueError(
                "BatchDecision needs one reject_reason per rejected position: "
                f"{self.reject.shape[0]} rejected, {len(self.reject_reason)} reasons."
            )

    @property
    def moves(self) -> bool:
        """Whether the decision moves KV or rejects anything (beyond running its batch)."""
        return bool(self.swap_out.shape[0] or self.recompute.shape[0] or self.swap_in.shape[0]
                    or self.reject.shape[0])


#: What a batching policy may return.
Answer: TypeAlias = Plan | BatchDecision


class BatchingPolicy(Protocol):
    """A batching policy: ``(view, /, **params) -> Plan | BatchDecision``."""

    def __call__(self, view: QueueView, /, **params: Any) -> Answer: ...


class Router(Protocol):
    """A router: ``(view, /, **params) -> instance index per arriving request``."""

    def __call__(self, view: RouterView, /, **params: Any) -> np.ndarray: ...

