"""The placement contract of disaggregated serving (Mooncake's Conductor): what a placement policy
sees when a request arrives (:class:`PlacementView`), what it returns (:class:`Placement`), and the
rules every placement keeps (:func:`validate_placement`), written once for the simulator, the
checks and the optimum alike.

A disaggregated cluster has a *prefill pool* (``P`` instances, each with a local prefix cache of
KV blocks) and a *decode pool* (``D`` instances, continuous batching). A placement policy is asked
once per arriving request and either places it on a pair (prefill instance, decode instance),
optionally pulling a longer cached prefix from another prefill instance first, or rejects it
with a reason. The view carries the engine's estimates (queue time, prefill time with the local or
the best prefix, transfer time, the decode step-time model), so a policy is a few lines of numpy
over them and every policy, heuristic or optimal, reads the same numbers.

>>> import numpy as np
>>> v = PlacementView.from_columns(now_s=0.0, input_tokens=2048, prefix_tokens=[0, 1024],
...     queue_s=[0.0, 0.5], prefill_s=[0.4, 0.2], decode_batch=[3])
>>> v.n_prefill, v.n_decode, v.best_prefix_tokens, v.best_holder
(2, 1, 1024, 1)
>>> p = Placement(prefill=0, decode=0, ttft_est_s=0.4, tbt_est_s=0.03)
>>> validate_placement(v, p)
>>> p.accepted, p.reason
(True, 'accepted')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = [
    "REJECT_REASONS",
    "DecodeStepModel",
    "cached_prefix_tokens",
    "InvalidPlacement",
    "Placement",
    "PlacementView",
    "validate_placement",
]

#: Why a placement policy may reject a request: the estimated TTFT over its SLO (the prefill
#: load), the decode step time over the TBT SLO now (the decode load), the decode load predicted
#: for when the request would reach decoding, or no decode instance with room for its KV.
REJECT_REASONS = ("ttft_slo", "tbt_slo", "predicted_tbt_slo", "decode_kv")


def cached_prefix_tokens(matched_blocks: Any, input_tokens: int, block_tokens: int) -> Any:
    """Prompt tokens a cached prefix of ``matched_blocks`` whole blocks saves: all of them, but
    never the prompt's last token (its logits give the first output token, so a prefill computes
    at least one token), and never below 0. The one rule of a cache hit, for the engine, the
    estimates and the optimum.

    >>> cached_prefix_tokens(np.array([0, 2, 3]), 1100, 512).tolist()
    [0, 1024, 1099]
    """
    return np.minimum(np.asarray(matched_blocks, dtype=np.int64) * block_tokens,
                      max(int(input_tokens) - 1, 0))


def _ro(a: Any, dtype: Any, name: str) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"PlacementView.{name} must be one-dimensional. Got shape {arr.shape}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeStepModel:
    """Predicted time of one decode iteration of a batch of ``b`` requests holding ``ctx`` KV
    tokens in all: ``base_s + per_request_s * b + per_context_token_s * ctx`` (memory-bound
    decoding reads the weights once and every request's KV once). The engine fits it to its cost
    model; Mooncake's TBT model is not published (FAST'25 §4.1 names only its inputs).

    >>> DecodeStepModel(base_s=0.02, per_request_s=1e-4, per_context_token_s=1e-7).step_s(8, 10**5)
    0.0308
    """

    base_s: float
    per_request_s: float = 0.0
    per_context_token_s: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (
                0.0 <= float(v) < math.inf
            ):
                raise ValueError(f"DecodeStepModel.{f.name} must be a finite float >= 0. "
                                 f"Got {v!r}.")

    def step_s(self, batch: Any, context_tokens: Any) -> Any:
        """The step time for batch sizes and total context tokens (scalars or arrays); an empty
        batch (``batch == 0``) takes no time."""
        if isinstance(batch, (int, np.integer)) and isinstance(context_tokens,
                                                               (int, np.integer)):
            return (self.base_s + self.per_request_s * int(batch) + self.per_context_token_s
                    * int(context_tokens)) if batch > 0 else 0.0
        b = np.asarray(batch, dtype=np.float64)
        t = self.base_s + self.per_request_s * b + self.per_context_token_s * np.asarray(
            context_tokens, dtype=np.float64)
        out = np.where(b > 0, t, 0.0)
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementView:
    """Read-only snapshot of a disaggregated cluster when one request arrives.

    The request: ``request_id``, ``input_tokens``, ``output_tokens_pred``.

    Per prefill instance (length ``P``):

    - ``prefix_tokens``: tokens of the request's prompt held in the instance's prefix cache (a
      prefix of its hash chain, below ``input_tokens``).
    - ``queue_s``: estimated time until the instance could start this request (the predicted
      prefill time of the work queued on it, Mooncake's ``EstimatePrefillQueueTime``).
    - ``queued_requests``: requests assigned to it and not yet prefilled.
    - ``prefill_s``: estimated prefill time of this request with the local prefix.
    - ``prefill_best_s``: estimated prefill time with the best prefix of the pool.
    - ``transfer_s``: estimated time to pull ``best_prefix_tokens - prefix_tokens`` tokens of KV
      from ``best_holder`` (0 where nothing is missing).

    ``best_prefix_tokens`` is the longest prefix any prefill instance holds and ``best_holder``
    the lowest-indexed instance holding it (-1 when no instance holds any).

    Per decode instance (length ``D``): ``decode_batch`` (requests decoding now),
    ``decode_context_tokens`` (their KV tokens in all), ``decode_kv_free_tokens`` (KV room left,
    counting what requests already on their way reserve). ``decode_step`` predicts a decode
    iteration's time (:class:`DecodeStepModel`).

    Requests on their way to decoding (length ``L``, for predicting the decode load): each has an
    instance ``incoming_instance``, the time ``incoming_join_s`` it is expected to join its batch
    (its prefill's estimated end), and its context ``incoming_context_tokens``. Requests decoding
    now have joined at ``decoding_since_s`` (length ``sum(decode_batch)``, grouped by instance in
    ``decoding_instance``), with ``decoding_context_tokens``.
    """

    now_s: float
    request_id: int
    input_tokens: int
    output_tokens_pred: float
    prefix_tokens: np.ndarray
    queue_s: np.ndarray
    queued_requests: np.ndarray
    prefill_s: np.ndarray
    prefill_best_s: np.ndarray
    transfer_s: np.ndarray
    best_prefix_tokens: int
    best_holder: int
    decode_batch: np.ndarray
    decode_context_tokens: np.ndarray
    decode_kv_free_tokens: np.ndarray
    decode_step: DecodeStepModel
    decoding_instance: np.ndarray
    decoding_since_s: np.ndarray
    decoding_context_tokens: np.ndarray
    incoming_instance: np.ndarray
    incoming_join_s: np.ndarray
    incoming_context_tokens: np.ndarray

    def __post_init__(self) -> None:
        p, d = self.n_prefill, self.n_decode
        if p < 1 or d < 1:
            raise ValueError(f"A PlacementView needs at least one prefill and one decode instance. "
                             f"Got {p} and {d}.")
        for name, size in (("queue_s", p), ("queued_requests", p), ("prefill_s", p),
                           ("prefill_best_s", p), ("transfer_s", p),
                           ("decode_context_tokens", d), ("decode_kv_free_tokens", d),
                           ("decoding_since_s", self.decoding_instance.shape[0]),
                           ("decoding_context_tokens", self.decoding_instance.shape[0]),
                           ("incoming_join_s", self.incoming_instance.shape[0]),
                           ("incoming_context_tokens", self.incoming_instance.shape[0])):
            got = getattr(self, name).shape[0]
            if got != size:
                raise ValueError(f"PlacementView.{name} has {got} entries, expected {size}.")

    @property
    def n_prefill(self) -> int:
        """Number of prefill instances ``P``."""
        return int(self.prefix_tokens.shape[0])

    @property
    def n_decode(self) -> int:
        """Number of decode instances ``D``."""
        return int(self.decode_batch.shape[0])

    @classmethod
    def from_columns(
        cls,
        *,
        now_s: float,
        input_tokens: int,
        prefix_tokens: Any,
        decode_batch: Any,
        **columns: Any,
    ) -> PlacementView:
        """Build a view with sensible defaults for everything not given (handy in tests).

        Defaults: request id 0, one predicted output token; no queue; prefill times 0; the best
        prefix and its holder derived from ``prefix_tokens``; ``prefill_best_s`` equal to
        ``prefill_s`` where the instance holds the best prefix, else the smallest such value;
        no transfer time; no context on the decode instances, unlimited KV room; a decode step
        of 30 ms; each instance's decoding requests joined at ``now_s`` with equal shares of its
        context; nothing incoming.
        """
        pre = _ro(prefix_tokens, np.int64, "prefix_tokens")
        batch = _ro(decode_batch, np.int64, "decode_batch")
        p, d = pre.shape[0], batch.shape[0]
        best = int(pre.max(initial=0))
        holder = int(np.argmax(pre)) if best > 0 else -1
        prefill = _ro(columns.pop("prefill_s", np.zeros(p)), np.float64, "prefill_s")
        at_best = prefill[pre == best]
        dflt_best = np.full(p, float(at_best.min()) if at_best.shape[0] else 0.0)
        ctx = _ro(columns.pop("decode_context_tokens", np.zeros(d)), np.int64,
                  "decode_context_tokens")
        dec_inst = np.repeat(np.arange(d), np.maximum(batch, 0))
        share = np.where(batch > 0, ctx // np.maximum(batch, 1), 0)
        defaults: dict[str, tuple[Any, Any]] = {
            "queue_s": (np.zeros(p), np.float64),
            "queued_requests": (np.zeros(p), np.int64),
            "prefill_best_s": (dflt_best, np.float64),
            "transfer_s": (np.zeros(p), np.float64),
            "decode_kv_free_tokens": (np.full(d, 2**62), np.int64),
            "decoding_instance": (dec_inst, np.int64),
            "decoding_since_s": (np.full(dec_inst.shape[0], float(now_s)), np.float64),
            "decoding_context_tokens": (share[dec_inst], np.int64),
            "incoming_instance": (np.zeros(0), np.int64),
            "incoming_join_s": (np.zeros(0), np.float64),
            "incoming_context_tokens": (np.zeros(0), np.int64),
        }
        cols = {k: _ro(columns.pop(k, v), dt, k) for k, (v, dt) in defaults.items()}
        return cls(
            now_s=float(now_s),
            request_id=int(columns.pop("request_id", 0)),
            input_tokens=int(input_tokens),
            output_tokens_pred=float(columns.pop("output_tokens_pred", 1.0)),
            prefix_tokens=pre,
            prefill_s=prefill,
            best_prefix_tokens=int(columns.pop("best_prefix_tokens", best)),
            best_holder=int(columns.pop("best_holder", holder)),
            decode_batch=batch,
            decode_context_tokens=ctx,
            decode_step=columns.pop("decode_step", DecodeStepModel(base_s=0.03)),
            **cols,
            **columns,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """A placement policy's answer for one request.

    - ``prefill``, ``decode``: the chosen instances, or -1 for a rejected request.
    - ``transfer_from``, ``transfer_tokens``: pull this many tokens of the request's prefix from
      that prefill instance before prefilling (Mooncake's cache-balancing branch, which also
      replicates a hot prefix on the chosen instance); -1 and 0 to compute with the local prefix.
    - ``ttft_est_s``, ``tbt_est_s``: the estimates the decision was made on.
    - ``reject_reason``: None for an accepted request, else one of :data:`REJECT_REASONS`.
    - ``handoff_tbt_slo_s``: the decode instance checks its load again when the prefill ends
      (v3 §3 step 4): it rejects the request, wasting its prefill, if its step time with the
      request (by the view's ``decode_step`` model) would exceed this; ``inf``: no check (late
      rejection checks the decode load only there).

    >>> Placement(prefill=-1, decode=-1, reject_reason="ttft_slo").reason
    'ttft_slo'
    """

    prefill: int
    decode: int
    transfer_from: int = -1
    transfer_tokens: int = 0
    ttft_est_s: float = 0.0
    tbt_est_s: float = 0.0
    reject_reason: str | None = None
    handoff_tbt_slo_s: float = math.inf

    def __post_init__(self) -> None:
        for name in ("prefill", "decode", "transfer_from", "transfer_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise ValueError(f"Placement.{name} must be an int. Got {v!r}.")
            object.__setattr__(self, name, int(v))
        if self.reject_reason is not None and self.reject_reason not in REJECT_REASONS:
            raise ValueError(f"Placement.reject_reason must be None or one of {REJECT_REASONS}. "
                             f"Got {self.reject_reason!r}.")

    @property
    def accepted(self) -> bool:
        """Whether the request was placed."""
        return self.reject_reason is None

    @property
    def reason(self) -> str:
        """``'accepted'`` or the reject reason."""
        return self.reject_reason or "accepted"


class InvalidPlacement(ValueError):
    """A placement breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_placement(view: PlacementView, placement: Placement) -> None:
    """Check ``placement`` against ``view``; raises :class:`InvalidPlacement` naming the rule.

    Rules: a rejected request has no instances and no transfer; an accepted one has a prefill
    instance in ``[0, P)`` and a decode instance in ``[0, D)``; a transfer comes from an instance
    other than the chosen one that holds at least ``prefix_tokens[prefill] + transfer_tokens``
    tokens of the prompt (never more than the best prefix); estimates are finite and >= 0.

    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=600, prefix_tokens=[512, 0],
    ...     decode_batch=[0])
    >>> validate_placement(v, Placement(prefill=1, decode=0, transfer_from=0, transfer_tokens=600))
    Traceback (most recent call last):
    ...
    schedlab.contract.placement.InvalidPlacement: transfer exceeds the holder's prefix: ...
    """
    p = placement
    for name in ("ttft_est_s", "tbt_est_s"):
        v = getattr(p, name)
        if not (0.0 <= float(v) < math.inf):
            raise InvalidPlacement("invalid estimate", f"{name} must be finite and >= 0, got {v!r}")
    if not float(p.handoff_tbt_slo_s) > 0.0:
        raise InvalidPlacement("invalid estimate",
                               f"handoff_tbt_slo_s must be > 0, got {p.handoff_tbt_slo_s!r}")
    if not p.accepted:
        if (p.prefill, p.decode, p.transfer_from, p.transfer_tokens) != (-1, -1, -1, 0):
            raise InvalidPlacement(
                "rejected request placed",
                f"a rejection ({p.reject_reason}) must have prefill=decode=transfer_from=-1 and "
                f"no transfer, got {p.prefill}, {p.decode}, {p.transfer_from}, "
                f"{p.transfer_tokens}")
        return
    if not 0 <= p.prefill < view.n_prefill:
        raise InvalidPlacement("instance out of range",
                               f"prefill={p.prefill} not in [0, {view.n_prefill})")
    if not 0 <= p.decode < view.n_decode:
        raise InvalidPlacement("instance out of range",
                               f"decode={p.decode} not in [0, {view.n_decode})")
    if p.transfer_tokens == 0 and p.transfer_from == -1:
        return
    if p.transfer_tokens <= 0 or not 0 <= p.transfer_from < view.n_prefill or (
        p.transfer_from == p.prefill
    ):
        raise InvalidPlacement(
            "malformed transfer",
            f"transfer_from={p.transfer_from}, transfer_tokens={p.transfer_tokens}: a transfer "
            f"moves > 0 tokens from another prefill instance than {p.prefill}")
    need = int(view.prefix_tokens[p.prefill]) + p.transfer_tokens
    held = int(view.prefix_tokens[p.transfer_from])
    if need > held:
        raise InvalidPlacement(
            "transfer exceeds the holder's prefix",
            f"instance {p.transfer_from} holds {held} tokens of the prompt; instance "
            f"{p.prefill} holds {int(view.prefix_tokens[p.prefill])} and asks for "
            f"{p.transfer_tokens} more")
