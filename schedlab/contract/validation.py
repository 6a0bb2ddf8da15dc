"""The rules every answer of a batching policy must keep, written once: the simulator calls
:func:`validate_decision` on every :class:`~schedlab.contract.answers.BatchDecision` and
:func:`validate_plan` on every :class:`~schedlab.contract.answers.Plan` it is given, and
:func:`schedlab.testing.check_policy` calls the same functions.

A broken rule raises :class:`InvalidDecision`, a ``ValueError`` whose message starts with the
rule's name (``rule`` attribute) followed by the offending positions and numbers.

>>> import numpy as np
>>> from schedlab.contract.answers import BatchDecision
>>> from schedlab.contract.views import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[60, 60], kv_capacity_tokens=100)
>>> validate_decision(v, BatchDecision(run=[0]))
>>> validate_decision(v, BatchDecision(run=[0, 1]))
Traceback (most recent call last):
...
schedlab.contract.validation.InvalidDecision: KV capacity exceeded: free 100 + freed 0 - ...
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from schedlab.contract.accounting import batch_chunks, prefill_left, step_growth
from schedlab.contract.answers import BatchDecision, Plan
from schedlab.contract.views import KV_GPU, KV_HOST, KV_NONE, QueueView

__all__ = ["InvalidDecision", "validate_decision", "validate_plan"]

_POSITION_FIELDS = ("run", "swap_out", "recompute", "swap_in", "reject")


class InvalidDecision(ValueError):
    """A policy's answer breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def _positions(field: str, a: np.ndarray, n: int) -> None:
    if a.ndim != 1 or (a.shape[0] and a.dtype.kind not in "iu"):
        raise InvalidDecision("malformed answer", f"{field} must be 1-D integer positions. "
                              f"Got {a!r}")
    if a.shape[0] and (a.min() < 0 or a.max() >= n):
        bad = a[(a < 0) | (a >= n)]
        raise InvalidDecision("position out of range",
                              f"{field} holds {bad.tolist()[:10]} but the view has n={n}")


def _duplicates(field: str, a: np.ndarray, n: int) -> None:
    counts = np.bincount(a, minlength=n)
    if (counts > 1).any():
        raise InvalidDecision("duplicate positions",
                              f"{field} repeats {np.flatnonzero(counts > 1).tolist()[:10]}")


def _state_and_timer(view: QueueView, answer: Plan | BatchDecision) -> None:
    n = view.n
    for field, lo in (("priority", -1), ("attained_s", 0.0)):
        arr = getattr(answer, field)
        if arr is None:
            continue
        a = np.asarray(arr)
        if a.shape != (n,):
            raise InvalidDecision("malformed answer",
                                  f"{field} has shape {a.shape}, expected ({n},)")
        if field == "priority" and a.dtype.kind not in "iu":
            raise InvalidDecision("malformed answer", f"priority must be integers, got {a.dtype}")
        # NaN fails the first comparison, an infinity the second
        if n and not (a.min() >= lo and (field == "priority" or a.max() < math.inf)):
            raise InvalidDecision(f"invalid {field}",
                                  f"values must be finite and >= {lo}: {a.tolist()[:10]}")
    t = answer.reconsider_at_s
    if isinstance(t, bool) or not isinstance(t, (float, int, np.floating, np.integer)) or (
        math.isnan(t) or t <= view.now_s
    ):
        raise InvalidDecision("reconsider_at_s not in the future",
                              f"{t!r} <= now_s={view.now_s!r}")


def validate_plan(view: QueueView, plan: Any) -> None:
    """Check that ``plan`` is a well-formed :class:`~schedlab.contract.answers.Plan` for
    ``view``: ``order`` distinct positions in ``[0, n)``; ``evictable`` and ``defer`` a bool or
    one bool per position; ``footprint_tokens`` one int >= 0 per position (when an array);
    ``quantum_left_s``
    one float (not NaN) per position; state columns of
    length ``n`` (priorities integers >= -1, attained service finite and >= 0); a timer in the
    future. (Scalar fields are checked when the plan is built.)

    >>> from schedlab.contract.answers import Plan
    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[5, 5], kv_capacity_tokens=99)
    >>> validate_plan(v, Plan(order=[1, 1]))
    Traceback (most recent call last):
    ...
    schedlab.contract.validation.InvalidDecision: duplicate positions: order repeats [1]
    """
    if not isinstance(plan, Plan):
        raise InvalidDecision("malformed answer", f"expected a Plan, got {type(plan).__name__}")
    n = view.n
    _positions("order", plan.order, n)
    _duplicates("order", plan.order, n)
    for field in ("evictable", "defer"):
        mask = getattr(plan, field)
        if isinstance(mask, np.ndarray) and mask.shape != (n,):
            raise InvalidDecision("malformed answer",
                                  f"{field} has shape {mask.shape}, expected ({n},)")
    foot = plan.footprint_tokens
    if isinstance(foot, np.ndarray) and (foot.shape != (n,) or (foot < 0).any()):
        raise InvalidDecision("malformed answer",
                              f"footprint_tokens must be {n} ints >= 0, got {foot.tolist()[:10]}")
    q = plan.quantum_left_s
    if q is not None and (q.shape != (n,) or np.isnan(q).any()):
        raise InvalidDecision("malformed answer",
                              f"quantum_left_s must be {n} floats (inf: none), got "
                              f"{q.tolist()[:10]}")
    _state_and_timer(view, plan)


def validate_decision(view: QueueView, decision: Any) -> None:
    """Check that ``decision`` is a well-formed, feasible
    :class:`~schedlab.contract.answers.BatchDecision` for ``view``.

    Rules: positions in ``[0, n)``, distinct across ``run``, ``swap_out``, ``recompute``,
    ``swap_in`` and ``reject``; a non-empty reason per rejection; ``swap_out`` only of device
    KV, within the host swap space; ``swap_in`` only of host KV; ``recompute`` only of requests
    holding KV; ``prefill_chunk`` one per batch member, for a prefilling one in ``[1, remaining
    prompt]`` capped by ``chunk_tokens`` (the whole remaining prompt when chunking is off); the
    batch within ``max_batch_size`` and ``max_batch_tokens``; the device KV after the moves, the
    swap-in of host-resident batch members and the batch's growth within capacity; the state
    columns and the timer as in :func:`validate_plan`.

    >>> from schedlab.contract.answers import BatchDecision
    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10], kv_capacity_tokens=100)
    >>> validate_decision(v, BatchDecision(run=[0], swap_in=[0]))
    Traceback (most recent call last):
    ...
    schedlab.contract.validation.InvalidDecision: duplicate positions: run, swap_out, ...
    """
    if not isinstance(decision, BatchDecision):
        raise InvalidDecision("malformed answer",
                              f"expected a BatchDecision or a Plan, got {type(decision).__name__}")
    n = view.n
    run = decision.run
    loc, kv = view.kv_location, view.kv_tokens
    freed = host_in = 0
    if decision.moves:
        parts = [getattr(decision, f) for f in _POSITION_FIELDS]
        for field, a in zip(_POSITION_FIELDS, parts, strict=True):
            _positions(field, a, n)
        _duplicates(", ".join(_POSITION_FIELDS) + " together", np.concatenate(parts), n)
        if not all(isinstance(r, str) and r for r in decision.reject_reason):
            raise InvalidDecision("malformed answer",
                                  "each rejected position needs a non-empty reason string")
        out, rec, sin = parts[1:4]
        for field, pos, bad, where in (("swap_out", out, loc[out] != KV_GPU, "not on the device"),
                                       ("swap_in", sin, loc[sin] != KV_HOST, "not on the host"),
                                       ("recompute", rec, loc[rec] == KV_NONE, "holding none")):
            if bad.any():
                raise InvalidDecision(f"{field} of KV {where}",
                                      f"positions {pos[bad].tolist()[:10]}")
        swapped = int(kv[out].sum())
        if swapped > view.host_kv_free_tokens:
            raise InvalidDecision("host swap space exceeded",
                                  f"swapping out {swapped} tokens > "
                                  f"host_kv_free_tokens={view.host_kv_free_tokens}")
        freed = swapped + int(kv[rec][loc[rec] == KV_GPU].sum())
        host_in = int(kv[sin].sum())
    else:
        _positions("run", run, n)
        _duplicates("run", run, n)
    left = prefill_left(view, run)
    chunk = batch_chunks(view, decision)
    if decision.prefill_chunk is not None:
        given = np.asarray(decision.prefill_chunk)
        if given.shape != run.shape:
            raise InvalidDecision("malformed answer",
                                  f"prefill_chunk has shape {given.shape}, run {run.shape}")
        cap = np.minimum(left, view.chunk_tokens) if view.chunk_tokens > 0 else left
        low = 1 if view.chunk_tokens > 0 else cap
        bad = (left > 0) & ((given < low) | (given > cap))
        if bad.any():
            raise InvalidDecision(
                "prefill chunk out of range",
                f"positions {run[bad].tolist()[:10]} prefill {given[bad].tolist()[:10]} tokens, "
                f"allowed [1, {cap[bad].tolist()[:10]}] (the whole remaining prompt when "
                "chunk_tokens=0)",
            )
    if run.shape[0] > view.max_batch_size:
        raise InvalidDecision("batch too large",
                              f"{run.shape[0]} requests > max_batch_size={view.max_batch_size}")
    step, growth = step_growth(left, chunk)
    if int(step.sum()) > view.max_batch_tokens:
        raise InvalidDecision("token budget exceeded",
                              f"{int(step.sum())} tokens > max_batch_tokens="
                              f"{view.max_batch_tokens} (run={run.tolist()[:10]})")
    host_in += int(kv[run][loc[run] == KV_HOST].sum())
    free_after = view.kv_free_tokens + freed - host_in - int(growth.sum())
    if free_after < 0:
        raise InvalidDecision(
            "KV capacity exceeded",
            f"free {view.kv_free_tokens} + freed {freed} - swapped in {host_in} - batch growth "
            f"{int(growth.sum())} = {free_after} < 0 (run={run.tolist()[:10]}, "
            f"swap_out={decision.swap_out.tolist()[:10]}, "
            f"recompute={decision.recompute.tolist()[:10]}, "
            f"swap_in={decision.swap_in.tolist()[:10]})",
        )
    _state_and_timer(view, decision)

