"""Token and KV accounting: the one definition of what running a request costs and does.

The simulator's compiled kernels (:mod:`schedlab.sim.kernels`, :mod:`schedlab.sim.forming`) are
twins of these numpy functions and are tested against them; policies, the batch-forming rule and
the checks call these. Token-granular, no block rounding:

- A request is in its *prefill phase* while ``prefilled_tokens < input_tokens``;
  :func:`prefill_left` is the difference. After a preemption by recomputation ``input_tokens`` is
  the prompt plus the tokens generated so far (they are prefilled again) and
  ``prefilled_tokens`` restarts at 0.
- *step*: tokens processed in the next iteration, counted against ``max_batch_tokens``: the next
  prefill chunk (capped by ``chunk_tokens`` when chunking is on), or 1 decode token.
- *growth*: device KV added by running: the chunk, plus 1 when the chunk completes the prefill
  (the first output token is emitted and its KV kept), or 1 per decode step.
- *demand*: free device KV needed to run now: the growth, plus the request's host-resident KV
  when it must be swapped in first.
- A request *holds* ``prefilled + generated - (generated before its last recomputation)`` tokens
  of KV, on the device or the host (``kv_location``).

:func:`run_iteration` applies a decision and one iteration of its batch to a view: the same
effects the simulator applies (tested against it).

>>> import numpy as np
>>> from schedlab.contract.views import QueueView, KV_GPU, KV_HOST
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 50, 40], kv_capacity_tokens=1000,
...     prefilled_tokens=[0, 50, 40], generated_tokens=[0, 3, 5], kv_tokens=[0, 53, 45],
...     kv_location=[0, KV_GPU, KV_HOST])
>>> c = request_costs(v)
>>> c.step.tolist(), c.growth.tolist(), c.demand.tolist(), c.gpu_kv.tolist()
([100, 1, 1], [101, 1, 1], [101, 1, 46], [0, 53, 0])
"""

from __future__ import annotations

import dataclasses
from typing import Any, NamedTuple

import numpy as np

from schedlab.contract.answers import BatchDecision
from schedlab.contract.views import KV_GPU, KV_HOST, KV_NONE, QueueView

__all__ = [
    "OVER_BUDGET",
    "TOO_BIG",
    "RequestCosts",
    "batch_chunks",
    "infeasible",
    "infeasible_codes",
    "prefill_left",
    "remove",
    "request_costs",
    "run_iteration",
    "started",
    "step_growth",
]

#: :func:`infeasible_codes`: the request's KV plus its next growth exceeds the device, ...
TOO_BIG = 1
#: ... or its step exceeds the token budget (and its KV fits).
OVER_BUDGET = 2

_EMPTY = np.zeros(0, dtype=np.int64)


class RequestCosts(NamedTuple):
    """Per-request costs of running now (:func:`request_costs`): ``step``, ``growth``,
    ``demand`` (see the module docstring) and ``gpu_kv`` (KV held on the device)."""

    step: np.ndarray
    growth: np.ndarray
    demand: np.ndarray
    gpu_kv: np.ndarray


def prefill_left(view: QueueView, positions: np.ndarray | None = None) -> np.ndarray:
    """Tokens still to prefill per request (0 in the decode phase), for ``positions`` (all
    when None).

    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[8, 10], kv_capacity_tokens=64,
    ...     prefilled_tokens=[3, 10], generated_tokens=[0, 2], kv_tokens=[3, 12],
    ...     kv_location=[1, 1])
    >>> prefill_left(v).tolist(), prefill_left(v, np.array([1])).tolist()
    ([5, 0], [0])
    """
    if positions is None:
        return np.maximum(view.input_tokens - view.prefilled_tokens, 0)
    return np.maximum(view.input_tokens[positions] - view.prefilled_tokens[positions], 0)


def step_growth(left: np.ndarray, chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The step and the KV growth of running requests with ``left`` prompt tokens to prefill,
    prefilling ``chunk`` of them (0 in the decode phase): the step is the chunk, or 1 decode
    token; the growth is the step, plus the first output token when the chunk completes the
    prefill.

    >>> s, g = step_growth(np.array([10, 10, 0]), np.array([4, 10, 0]))
    >>> s.tolist(), g.tolist()
    ([4, 10, 1], [4, 11, 1])
    """
    prefilling = left > 0
    step = np.where(prefilling, chunk, 1)
    return step, step + (prefilling & (chunk >= left))


def request_costs(view: QueueView) -> RequestCosts:
    """Step, growth, demand and device KV of every request (see the module docstring).

    >>> from schedlab.contract.views import QueueView
    >>> c = request_costs(QueueView.from_columns(now_s=0.0, input_tokens=[8, 30],
    ...     kv_capacity_tokens=64, chunk_tokens=16))
    >>> c.step.tolist(), c.growth.tolist()
    ([8, 16], [9, 16])
    """
    left = prefill_left(view)
    step, growth = step_growth(left, _default_chunks(left, view.chunk_tokens))
    on_gpu = view.kv_location == KV_GPU
    gpu = np.where(on_gpu, view.kv_tokens, 0)
    demand = growth + np.where(view.kv_location == KV_HOST, view.kv_tokens, 0)
    return RequestCosts(step=step, growth=growth, demand=demand, gpu_kv=gpu)


def started(view: QueueView) -> np.ndarray:
    """Requests that have begun service: some prompt or output processed, KV held, or running.

    >>> from schedlab.contract.views import QueueView
    >>> started(QueueView.from_columns(now_s=0.0, input_tokens=[4, 4], kv_capacity_tokens=9,
    ...     prefilled_tokens=[0, 2])).tolist()
    [False, True]
    """
    return (
        (view.prefilled_tokens > 0) | (view.generated_tokens > 0)
        | (view.kv_location != KV_NONE) | view.running
    )


def infeasible_codes(view: QueueView, costs: RequestCosts | None = None) -> np.ndarray:
    """Per request 0 when it can run on this instance, else :data:`TOO_BIG` (the KV it holds
    plus its next growth exceeds the device) or :data:`OVER_BUDGET` (its step exceeds the
    per-iteration token budget).

    >>> from schedlab.contract.views import QueueView
    >>> infeasible_codes(QueueView.from_columns(now_s=0.0, input_tokens=[10, 500, 90],
    ...     kv_capacity_tokens=100, max_batch_tokens=64)).tolist()
    [0, 1, 2]
    """
    c = request_costs(view) if costs is None else costs
    too_big = view.kv_tokens + c.growth > view.kv_capacity_tokens
    over = c.step > view.max_batch_tokens
    return np.where(too_big, TOO_BIG, np.where(over, OVER_BUDGET, 0)).astype(np.int8)


def infeasible(
    view: QueueView, costs: RequestCosts | None = None
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Positions that can never run on this instance (:func:`infeasible_codes`), with a reason
    each. The engine rejects them so a simulation cannot stall on them.

    >>> from schedlab.contract.views import QueueView
    >>> infeasible(QueueView.from_columns(now_s=0.0, input_tokens=[10, 500],
    ...     kv_capacity_tokens=100))
    (array([1]), ('needs 501 KV tokens, more than the instance capacity of 100',))
    """
    c = request_costs(view) if costs is None else costs
    code = infeasible_codes(view, c)
    bad = np.flatnonzero(code)
    reasons = tuple(
        f"needs {int(view.kv_tokens[i] + c.growth[i])} KV tokens, more than the instance "
        f"capacity of {view.kv_capacity_tokens}"
        if code[i] == TOO_BIG
        else f"needs {int(c.step[i])} tokens in one iteration, more than max_batch_tokens="
        f"{view.max_batch_tokens}"
        for i in bad
    )
    return bad, reasons


def _default_chunks(left: np.ndarray, chunk_tokens: int) -> np.ndarray:
    return np.minimum(left, chunk_tokens) if chunk_tokens > 0 else left


def batch_chunks(view: QueueView, decision: BatchDecision) -> np.ndarray:
    """Prompt tokens each request of ``decision.run`` prefills in the iteration (0 for a
    decode step): ``prefill_chunk`` where given, else the whole remaining prompt, capped by
    ``chunk_tokens`` when chunking is on.

    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[8, 30, 5], kv_capacity_tokens=99,
    ...     chunk_tokens=16, prefilled_tokens=[0, 0, 5], generated_tokens=[0, 0, 1],
    ...     kv_tokens=[0, 0, 6], kv_location=[0, 0, 1])
    >>> batch_chunks(v, BatchDecision(run=[0, 1, 2])).tolist()
    [8, 16, 0]
    """
    left = prefill_left(view, decision.run)
    if decision.prefill_chunk is not None:
        return np.where(left > 0, np.asarray(decision.prefill_chunk, dtype=np.int64), 0)
    return _default_chunks(left, view.chunk_tokens)


def _replace(view: QueueView, keep: np.ndarray | None = None, **cols: np.ndarray) -> QueueView:
    """``view`` with new columns (read-only copies) and, with ``keep``, only those positions."""
    new: dict[str, Any] = {}
    for name in view.column_names():
        a = np.array(cols.get(name, getattr(view, name)))
        if keep is not None:
            a = a[keep]
        a.flags.writeable = False
        new[name] = a
    return dataclasses.replace(view, **new)


def _free(view: QueueView, loc: np.ndarray, kv: np.ndarray) -> dict[str, Any]:
    gpu = int(kv[loc == KV_GPU].sum())
    host = int(kv[loc == KV_HOST].sum())
    old_host = int(view.kv_tokens[view.kv_location == KV_HOST].sum())
    return {
        "kv_free_tokens": view.kv_capacity_tokens - gpu,
        "host_kv_free_tokens": view.host_kv_free_tokens + old_host - host,
    }


def remove(view: QueueView, positions: np.ndarray) -> QueueView:
    """The view after the requests at ``positions`` leave the instance (they completed, or were
    rejected), freeing their KV; the others keep their order.

    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[4, 6], kv_capacity_tokens=20,
    ...     prefilled_tokens=[4, 6], generated_tokens=[1, 1], kv_tokens=[5, 7],
    ...     kv_location=[1, 1])
    >>> w = remove(v, np.array([0]))
    >>> w.input_tokens.tolist(), w.kv_free_tokens
    ([6], 13)
    """
    keep = np.ones(view.n, dtype=bool)
    keep[np.asarray(positions, dtype=np.int64)] = False
    out = _replace(view, keep)
    return dataclasses.replace(out, **_free(view, out.kv_location, out.kv_tokens))


def run_iteration(view: QueueView, decision: BatchDecision, *, duration_s: float) -> QueueView:
    """The view after ``decision`` is carried out and its batch runs one iteration that takes
    ``duration_s``: state columns replaced, rejections removed, KV moved (a swap-out to the host,
    a recomputation drops the KV and makes the prompt plus the generated tokens the prompt to
    prefill again, a swap-in to the device), host-resident batch members swapped in, then each
    batch member prefills its chunk (:func:`batch_chunks`) or decodes: ``prefilled_tokens``
    grows by the chunk; a decode step, or a chunk that completes the prefill, emits one output
    token; the KV grows by the chunk plus the emitted token and is on the device. Batch members
    are ``running`` (no one else), their ``attained_s`` grows by ``duration_s`` and their
    ``last_run_s`` becomes the iteration's end; ``now_s`` moves to it and ``iteration`` counts
    it. Completions are not applied: the view does not know the true lengths (see
    :func:`remove`).

    >>> from schedlab.contract.views import QueueView
    >>> v = QueueView.from_columns(now_s=1.0, input_tokens=[8, 4], kv_capacity_tokens=64)
    >>> w = run_iteration(v, BatchDecision(run=[0]), duration_s=0.5)
    >>> w.prefilled_tokens.tolist(), w.generated_tokens.tolist(), w.kv_tokens.tolist()
    ([8, 0], [1, 0], [9, 0])
    >>> w.now_s, w.kv_free_tokens, w.running.tolist()
    (1.5, 55, [True, False])
    """
    n = view.n
    inp = view.input_tokens.copy()
    pre = view.prefilled_tokens.copy()
    gen = view.generated_tokens.copy()
    kv = view.kv_tokens.copy()
    loc = view.kv_location.copy()
    loc[decision.swap_out] = KV_HOST
    rec = decision.recompute
    # the prompt is what the request prefilled before its generated tokens were counted as KV
    prompt = inp[rec] - (pre[rec] + gen[rec] - kv[rec])
    inp[rec] = prompt + gen[rec]
    pre[rec] = 0
    kv[rec] = 0
    loc[rec] = KV_NONE
    loc[decision.swap_in] = KV_GPU
    run = decision.run
    chunk = batch_chunks(view, decision)
    _, growth = step_growth(prefill_left(view, run), chunk)
    loc[run] = KV_GPU
    pre[run] += chunk
    gen[run] += growth - chunk  # the emitted token
    kv[run] += growth
    end = view.now_s + float(duration_s)
    running = np.zeros(n, dtype=bool)
    running[run] = True
    attained = (np.asarray(view.attained_s) if decision.attained_s is None
                else np.asarray(decision.attained_s, dtype=np.float64)).copy()
    attained[run] += float(duration_s)
    last_run = view.last_run_s.copy()
    last_run[run] = end
    priority = view.priority if decision.priority is None else decision.priority
    keep = np.ones(n, dtype=bool)
    keep[decision.reject] = False
    cols = {
        "input_tokens": inp, "prefilled_tokens": pre, "generated_tokens": gen, "kv_tokens": kv,
        "kv_location": loc, "running": running, "attained_s": attained, "last_run_s": last_run,
        "priority": np.asarray(priority, dtype=np.int64),
    }
    out = _replace(view, keep if decision.reject.shape[0] else None, **cols)
    return dataclasses.replace(
        out, now_s=end, iteration=view.iteration + 1,
        previous_decision_iteration=view.iteration,
        **_free(view, out.kv_location, out.kv_tokens),
    )
