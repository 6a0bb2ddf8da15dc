"""Invariant checks on a policy's decision, a router's choice, and a policy's purity.

Each check raises ``AssertionError`` with a readable message (the broken rule, the offending
positions and the numbers involved) and returns nothing when all holds. KV and token counts use
:mod:`schedlab.policies.kv`, the same arithmetic the policies use.

>>> import numpy as np
>>> from schedlab.policies.base import QueueView, BatchDecision
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[60, 60], kv_capacity_tokens=100)
>>> check_decision(v, BatchDecision(run=np.array([0])))
>>> check_decision(v, BatchDecision(run=np.array([0, 1])))
Traceback (most recent call last):
...
AssertionError: policy: KV capacity exceeded: ...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from schedlab.policies.base import KV_GPU, KV_HOST, BatchDecision, QueueView, RouterView
from schedlab.policies.kv import kv_growth, prefill_left, step_tokens

__all__ = [
    "check_arrival_invariance",
    "check_decision",
    "check_purity",
    "check_router_choice",
    "copy_view",
    "decision_differences",
    "describe_view",
]


def _fail(name: str, rule: str, detail: str) -> None:
    raise AssertionError(f"{name}: {rule}: {detail}")


def _positions(name: str, field: str, arr: Any, n: int) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim != 1 or (a.shape[0] and a.dtype.kind not in "iu"):
        _fail(name, "malformed decision", f"{field} must be a 1-d integer array, got {a!r}")
    bad = a[(a < 0) | (a >= n)]
    if bad.shape[0]:
        _fail(name, "position out of range", f"{field} holds {bad.tolist()} but the view has n={n}")
    uniq, counts = np.unique(a, return_counts=True)
    if (counts > 1).any():
        _fail(name, "duplicate positions", f"{field} repeats {uniq[counts > 1].tolist()}")
    return a.astype(np.int64)


def check_decision(view: QueueView, decision: BatchDecision, *, name: str = "policy") -> None:
    """Check that ``decision`` is well formed and feasible for ``view``.

    Rules: positions valid and unique within each field; ``run``, ``swap_out``, ``recompute``,
    ``swap_in`` and ``reject`` pairwise disjoint (except swap_out/recompute vs. reject is also
    forbidden); ``swap_out`` only device KV, ``swap_in`` only host KV, ``recompute`` only requests
    holding KV; the batch within ``max_batch_size`` and ``max_batch_tokens``; device KV after the
    decision's moves and the batch's growth within capacity (``kv_free_tokens`` plus what is
    freed minus what is swapped in or grows never negative); swap-outs within the host space;
    ``priority``/``attained_s`` of length n, priorities >= -1, attained finite and >= 0;
    ``reconsider_at_s`` later than ``now_s``; progress: a non-empty queue gets a non-empty batch,
    a rejection, a swap, or a finite wake-up time (dropping KV by recomputation alone takes no
    time, so a simulator would have nothing to wait for).

    >>> import numpy as np
    >>> from schedlab.policies.base import QueueView, BatchDecision
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[10], kv_capacity_tokens=100)
    >>> check_decision(v, BatchDecision(run=np.array([0, 0])))
    Traceback (most recent call last):
    ...
    AssertionError: policy: duplicate positions: run repeats [0]
    """
    if not isinstance(decision, BatchDecision):
        _fail(
            name, "malformed decision", f"expected a BatchDecision, got {type(decision).__name__}"
        )
    n = view.n
    sets = {
        f: _positions(name, f, getattr(decision, f), n)
        for f in ("run", "swap_out", "recompute", "swap_in", "reject")
    }
    keys = list(sets)
    for i, a in enumerate(keys):
        for b in keys[i + 1 :]:
            both = np.intersect1d(sets[a], sets[b])
            if both.shape[0]:
                _fail(
                    name, "conflicting moves", f"positions {both.tolist()} are in both {a} and {b}"
                )
    run, out, rec, sin = sets["run"], sets["swap_out"], sets["recompute"], sets["swap_in"]
    loc, kv = view.kv_location, view.kv_tokens
    if (loc[out] != KV_GPU).any():
        _fail(
            name,
            "swap_out of KV not on the device",
            f"positions {out[loc[out] != KV_GPU].tolist()}",
        )
    if (loc[sin] != KV_HOST).any():
        _fail(
            name, "swap_in of KV not on the host", f"positions {sin[loc[sin] != KV_HOST].tolist()}"
        )
    if (kv[rec] <= 0).any():
        _fail(
            name, "recompute of a request holding no KV", f"positions {rec[kv[rec] <= 0].tolist()}"
        )
    if len(decision.reject_reason) != sets["reject"].shape[0] or not all(
        isinstance(r, str) and r for r in decision.reject_reason
    ):
        _fail(name, "malformed decision", "each rejected position needs a non-empty reason string")

    step = step_tokens(view)[run]
    growth = kv_growth(view)[run]
    if decision.prefill_chunk is not None:
        chunk = np.asarray(decision.prefill_chunk)
        if chunk.shape != run.shape:
            _fail(
                name,
                "malformed decision",
                f"prefill_chunk has shape {chunk.shape}, run {run.shape}",
            )
        left = prefill_left(view)[run]
        cap = np.minimum(left, view.chunk_tokens) if view.chunk_tokens > 0 else left
        bad = (left > 0) & ((chunk < 1) | (chunk > cap))
        if bad.any():
            _fail(name, "prefill chunk out of range", f"positions {run[bad].tolist()}")
        step = np.where(left > 0, chunk, 1)
        growth = step + ((left > 0) & (chunk == left))
    if run.shape[0] > view.max_batch_size:
        _fail(
            name,
            "batch too large",
            f"{run.shape[0]} requests > max_batch_size={view.max_batch_size}",
        )
    if int(step.sum()) > view.max_batch_tokens:
        _fail(
            name,
            "token budget exceeded",
            f"{int(step.sum())} tokens > max_batch_tokens={view.max_batch_tokens} "
            f"(run={run.tolist()})",
        )
    freed = int(kv[out].sum()) + int(kv[rec][loc[rec] == KV_GPU].sum())
    host_in = int(kv[sin].sum()) + int(kv[run][loc[run] == KV_HOST].sum())
    need = host_in + int(growth.sum())
    free_after = view.kv_free_tokens + freed - need
    if free_after < 0:
        _fail(
            name,
            "KV capacity exceeded",
            f"free {view.kv_free_tokens} + freed {freed} - swapped in {host_in} - batch growth "
            f"{int(growth.sum())} = {free_after} < 0 (run={run.tolist()}, swap_out={out.tolist()}, "
            f"recompute={rec.tolist()}, swap_in={sin.tolist()})",
        )
    if int(kv[out].sum()) > view.host_kv_free_tokens:
        _fail(
            name,
            "host swap space exceeded",
            f"swapping out {int(kv[out].sum())} tokens > "
            f"host_kv_free_tokens={view.host_kv_free_tokens}",
        )
    for field, lo in (("priority", -1), ("attained_s", 0.0)):
        arr = getattr(decision, field)
        if arr is None:
            continue
        a = np.asarray(arr)
        if a.shape != (n,):
            _fail(name, "malformed decision", f"{field} has shape {a.shape}, expected ({n},)")
        if not np.isfinite(a).all() or (a < lo).any():
            _fail(name, f"invalid {field}", f"values must be finite and >= {lo}: {a.tolist()}")
    t = decision.reconsider_at_s
    if not isinstance(t, (float, int)) or math.isnan(t) or t <= view.now_s:
        _fail(name, "reconsider_at_s not in the future", f"{t!r} <= now_s={view.now_s!r}")
    for flag in ("wake_on_arrival", "hold_batch"):
        if not isinstance(getattr(decision, flag), (bool, np.bool_)):
            _fail(name, "malformed decision", f"{flag} must be a bool")
    for field in ("hold_room_tokens", "hold_free_tokens"):
        v = getattr(decision, field)
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            _fail(name, "malformed decision", f"{field} must be an int >= 0, got {v!r}")
    room = decision.hold_room_tokens
    if room:
        rel = np.asarray(decision.hold_release_tokens)
        if rel.shape != (n,) or (rel < 0).any():
            _fail(name, "malformed decision",
                  f"hold_release_tokens must be {n} ints >= 0, got {rel.tolist()[:10]}")
    acts = (run, sets["reject"], out, sin)
    if n and not any(a.shape[0] for a in acts) and math.isinf(t):
        _fail(
            name,
            "no progress",
            f"{n} requests queued but the decision runs, swaps and rejects nothing and asks for "
            f"no wake-up (recompute={rec.tolist()}: dropping KV alone takes no time, so nothing "
            "would happen until the next arrival)",
        )


def check_router_choice(view: RouterView, choice: Any, *, name: str = "router") -> None:
    """Check a router's output: one instance index in ``[0, k)`` per arriving request.

    >>> import numpy as np
    >>> from schedlab.policies.base import RouterView
    >>> z = np.zeros(2, dtype=np.int64)
    >>> v = RouterView(now_s=0.0, request_id=np.arange(1), input_tokens=np.ones(1, int),
    ...     output_tokens_pred=np.ones(1), outstanding_tokens=z, kv_used_tokens=z,
    ...     kv_capacity_tokens=z + 9, queue_length=z)
    >>> check_router_choice(v, np.array([2]))
    Traceback (most recent call last):
    ...
    AssertionError: router: instance out of range: [2] not in [0, 2)
    """
    a = np.asarray(choice)
    m = view.request_id.shape[0]
    if a.shape != (m,) or (m and a.dtype.kind not in "iu"):
        _fail(name, "malformed choice", f"expected {m} integer instance indices, got {a!r}")
    bad = a[(a < 0) | (a >= view.n_instances)]
    if bad.shape[0]:
        _fail(name, "instance out of range", f"{bad.tolist()} not in [0, {view.n_instances})")


def copy_view(view: Any) -> Any:
    """An equal view with fresh read-only copies of every array (a QueueView or RouterView).

    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[3], kv_capacity_tokens=9)
    >>> w = copy_view(v)
    >>> w.input_tokens is v.input_tokens, w.input_tokens.tolist(), w.input_tokens.flags.writeable
    (False, [3], False)
    """
    changes = {}
    for f in dataclasses.fields(view):
        val = getattr(view, f.name)
        if isinstance(val, np.ndarray):
            c = val.copy()
            c.flags.writeable = False
            changes[f.name] = c
    return dataclasses.replace(view, **changes)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if a is None or b is None:
            return False
        return np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
    return a == b


def decision_differences(a: Any, b: Any) -> list[str]:
    """Names of the fields in which two decisions (or router outputs) differ.

    >>> import numpy as np
    >>> from schedlab.policies.base import BatchDecision
    >>> decision_differences(BatchDecision(run=np.array([0])), BatchDecision(run=np.array([1])))
    ['run']
    """
    if not isinstance(a, BatchDecision) or not isinstance(b, BatchDecision):
        return [] if _same(np.asarray(a), np.asarray(b)) else ["choice"]
    return [
        f.name for f in dataclasses.fields(a) if not _same(getattr(a, f.name), getattr(b, f.name))
    ]


def check_purity(
    policy: Callable[..., Any], view: Any, *, name: str = "policy", **params: Any
) -> Any:
    """Call ``policy(view, **params)`` on ``view`` and on an equal copy; check that the inputs are
    unchanged (no mutation, even through writeable aliases) and the two outputs are equal
    (determinism, no hidden state). Returns the first output.

    >>> from schedlab.policies import get_policy
    >>> from schedlab.policies.base import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[3], kv_capacity_tokens=9)
    >>> check_purity(get_policy("fcfs"), v).run.tolist()
    [0]
    """
    before = copy_view(view)
    twin = copy_view(view)
    first = policy(view, **params)
    changed = [
        f.name
        for f in dataclasses.fields(view)
        if not _same(getattr(view, f.name), getattr(before, f.name))
    ]
    if changed:
        _fail(name, "input mutated", f"the policy changed the view's {changed}")
    second = policy(twin, **params)
    diff = decision_differences(first, second)
    if diff:
        _fail(name, "not deterministic", f"equal inputs gave different {diff}")
    return first


def with_newcomer(view: QueueView) -> QueueView | None:
    """``view`` plus one fresh request (1-token prompt, 1 predicted output token) arriving after
    every other at ``now_s`` or later, at position ``n``; None when such a request would not fit
    the instance at all (a simulator rejects it on arrival).

    >>> from schedlab.policies.base import QueueView
    >>> v = with_newcomer(QueueView.from_columns(now_s=2.0, input_tokens=[5], kv_capacity_tokens=9))
    >>> v.n, v.input_tokens.tolist(), v.arrival_s.tolist(), v.request_id.tolist()
    (2, [5, 1], [0.0, 2.0], [0, 1])
    """
    if view.kv_capacity_tokens < 2 or view.max_batch_tokens < 1:
        return None
    n = view.n
    t = max(float(view.now_s), float(view.arrival_s.max()) if n else 0.0)
    rid = int(view.request_id.max()) + 1 if n else 0
    new = {
        "request_id": rid, "arrival_s": t, "input_tokens": 1, "output_tokens_pred": 1.0,
        "prefilled_tokens": 0, "generated_tokens": 0, "kv_tokens": 0, "kv_location": 0,
        "running": False, "priority": -1, "attained_s": 0.0, "last_run_s": t,
        "est_prefill_s": 0.0,
    }
    cols = {}
    for key in view.column_names():
        old = getattr(view, key)
        a = np.append(old, np.array([new[key]], dtype=old.dtype))
        a.flags.writeable = False
        cols[key] = a
    return dataclasses.replace(view, **cols)


def check_arrival_invariance(
    policy: Callable[..., Any],
    view: QueueView,
    decision: BatchDecision,
    *,
    name: str = "policy",
    **params: Any,
) -> None:
    """A decision with ``wake_on_arrival=False`` claims a newcomer cannot change it: the policy
    on the view plus a fresh request (:func:`with_newcomer`) must return the same run and moves
    (the newcomer at position ``n`` neither runs nor displaces anyone).

    >>> import numpy as np
    >>> from schedlab.policies.base import BatchDecision, QueueView
    >>> def deaf(view):
    ...     return BatchDecision(run=np.arange(view.n), wake_on_arrival=False)
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[3], kv_capacity_tokens=9)
    >>> check_arrival_invariance(deaf, v, deaf(v))
    Traceback (most recent call last):
    ...
    AssertionError: policy: wake_on_arrival=False yet an arrival changes the decision: run ...
    """
    if decision.wake_on_arrival:
        return
    bigger = with_newcomer(view)
    if bigger is None:
        return
    other = policy(bigger, **params)
    for field in ("run", "swap_out", "recompute", "swap_in", "reject"):
        a, b = getattr(decision, field), getattr(other, field)
        if not np.array_equal(a, b):
            _fail(
                name,
                "wake_on_arrival=False yet an arrival changes the decision",
                f"{field} {np.asarray(a).tolist()} became {np.asarray(b).tolist()}",
            )


def describe_view(view: QueueView) -> str:
    """A compact, readable table of a queue view (for counterexamples).

    >>> from schedlab.policies.base import QueueView
    >>> text = describe_view(QueueView.from_columns(now_s=1.0, input_tokens=[5],
    ...     kv_capacity_tokens=9))
    >>> text.splitlines()[-1].split()[:4]
    ['0', '0', '0.000', '5']
    """
    head = ", ".join(
        f"{f.name}={getattr(view, f.name)!r}"
        for f in dataclasses.fields(view)
        if not isinstance(getattr(view, f.name), np.ndarray)
    )
    lines = [f"QueueView({head.replace('max_batch_tokens', chr(10) + '  max_batch_tokens', 1)})"]
    lines.append(
        "pos id arrival input pred prefilled generated kv loc run prio attained last_run "
        "est_prefill"
    )
    for i in range(view.n):
        lines.append(
            f"{i:3d} {int(view.request_id[i]):2d} {view.arrival_s[i]:7.3f} "
            f"{int(view.input_tokens[i]):5d} {float(view.output_tokens_pred[i]):4.1f} "
            f"{int(view.prefilled_tokens[i]):9d} {int(view.generated_tokens[i]):9d} "
            f"{int(view.kv_tokens[i]):2d} {int(view.kv_location[i]):3d} {int(view.running[i]):3d} "
            f"{int(view.priority[i]):4d} {float(view.attained_s[i]):8.3f} "
            f"{float(view.last_run_s[i]):8.3f} {float(view.est_prefill_s[i]):11.4f}"
        )
    return "\n".join(lines)
