"""The rollout-dispatch contract: what a dispatch policy sees of an RL rollout batch, and what
it answers.

An RL iteration generates ``G`` samples for each of ``P`` prompts on ``N`` inference instances.
A *dispatch policy* (StreamRL's skewness-aware dispatch, veRL's group round robin, ...) is a pure
function ``dispatch(view: DispatchView, /, **params) -> Dispatch`` called once per batch: it puts
every sample on an instance and says in which order the instances admit them. The rollout
simulator (:func:`schedlab.sim.simulate_rollout`) then runs each instance's continuous batching
on the engine, admitting in that order.

- :class:`DispatchView`: the samples (prompt, group, predicted length or rank score), the
  instances (how many, batch size and KV room of each) and a decode-step model.
- :class:`Dispatch`: an instance per sample and the admission order; what the decision was made
  on (the long pool's size, the estimated makespan).
- :func:`validate_dispatch`: the rules every answer keeps, called by the simulator and by
  :func:`schedlab.testing.check_dispatch` alike.

>>> import numpy as np
>>> v = DispatchView.from_columns(input_tokens=[100, 100, 100, 100], n_instances=2,
...     output_tokens_pred=[10.0, 900.0, 20.0, 800.0])
>>> d = Dispatch(instance=np.array([0, 1, 0, 1]), order=np.array([1, 3, 0, 2]))
>>> validate_dispatch(v, d)
>>> d.admission_order(1).tolist()     # instance 1 admits sample 1, then sample 3
[1, 3]
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract.placement import DecodeStepModel

__all__ = ["Dispatch", "DispatchView", "InvalidDispatch", "group_ranks", "validate_dispatch"]


def group_ranks(group_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The prompts (groups) of a batch in order of first appearance: ``(first, rank)``, where
    ``first`` is each prompt's first sample (ascending) and ``rank`` maps every sample to its
    prompt's rank ``0..G-1``. The one rule the rollout contracts, policies and simulators use.

    >>> [a.tolist() for a in group_ranks(np.array([7, 3, 7]))]
    [[0, 1], [0, 1, 0]]
    """
    _, first, inverse = np.unique(group_id, return_index=True, return_inverse=True)
    by_first = np.argsort(first, kind="stable")
    rank = np.empty_like(first)
    rank[by_first] = np.arange(first.shape[0])
    return first[by_first], rank[inverse.ravel()]


def _col(a: Any, dtype: Any, name: str, n: int | None = None) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != 1:
        raise ValueError(f"DispatchView.{name} must be one-dimensional. Got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"DispatchView.{name} has {arr.shape[0]} entries, expected {n} (one "
                         f"per sample).")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        bad = int(np.flatnonzero(~np.isfinite(arr))[0])
        raise ValueError(f"DispatchView.{name}[{bad}] must be finite. Got {arr[bad]!r}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class DispatchView:
    """Read-only snapshot of a rollout batch when it is dispatched.

    Per sample (length ``n``): ``request_id``, ``group_id`` (its prompt: the ``G`` samples of a
    prompt share it), ``input_tokens`` (the prompt's length) and ``output_tokens_pred`` (a
    predicted output length, or any score that ranks samples by length: larger means longer).

    The instances: ``n_instances`` identical ones, each batching at most ``max_batch_size``
    samples in ``kv_capacity_tokens`` tokens of KV; ``decode_step`` predicts one decode
    iteration's time from the batch and its context (StreamRL's per-token latency ``PTL(BS)``,
    Fig. 6-right). ``history_tokens``: output lengths of earlier iterations (StreamRL's length
    proxies are percentiles of them), empty when there is no history.
    """

    request_id: np.ndarray
    group_id: np.ndarray
    input_tokens: np.ndarray
    output_tokens_pred: np.ndarray
    n_instances: int
    max_batch_size: int
    kv_capacity_tokens: int
    decode_step: DecodeStepModel
    history_tokens: np.ndarray

    def __post_init__(self) -> None:
        n = self.request_id.shape[0]
        for name in ("group_id", "input_tokens", "output_tokens_pred"):
            got = getattr(self, name).shape[0]
            if got != n:
                raise ValueError(f"DispatchView.{name} has {got} entries, expected {n}.")
        for name in ("n_instances", "max_batch_size", "kv_capacity_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"DispatchView.{name} must be an int >= 1. Got {v!r}.")

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.request_id.shape[0])

    @classmethod
    def from_columns(
        cls,
        *,
        input_tokens: Any,
        n_instances: int,
        **columns: Any,
    ) -> DispatchView:
        """Build a view with sensible defaults for everything not given (handy in tests).

        Defaults: request ids ``0..n-1``, each sample its own group, one predicted output token
        each, a batch size of 256, unlimited KV, a decode step of 30 ms, no history.

        >>> DispatchView.from_columns(input_tokens=[5, 5], n_instances=3).max_batch_size
        256
        """
        inp = _col(input_tokens, np.int64, "input_tokens")
        n = inp.shape[0]
        return cls(
            request_id=_col(columns.pop("request_id", np.arange(n)), np.int64, "request_id", n),
            group_id=_col(columns.pop("group_id", np.arange(n)), np.int64, "group_id", n),
            input_tokens=inp,
            output_tokens_pred=_col(columns.pop("output_tokens_pred", np.ones(n)), np.float64,
                                    "output_tokens_pred", n),
            n_instances=int(n_instances),
            max_batch_size=int(columns.pop("max_batch_size", 256)),
            kv_capacity_tokens=int(columns.pop("kv_capacity_tokens", 2**62)),
            decode_step=columns.pop("decode_step", DecodeStepModel(base_s=0.03)),
            history_tokens=_col(columns.pop("history_tokens", np.zeros(0)), np.float64,
                                "history_tokens"),
            **columns,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Dispatch:
    """A dispatch policy's answer for a rollout batch.

    - ``instance``: the instance of each sample (``n`` ints in ``[0, N)``).
    - ``order``: a permutation of the samples, the order in which instances admit them (each
      instance admits its own samples in the order they appear here, as slots free up).
    - ``long_instances``: how many instances the policy set apart for predicted-long samples
      (StreamRL's long pool, the instances ``0..long_instances-1``; 0 for none).
    - ``est_makespan_s``: the policy's estimate of the rollout's duration (``nan``: none).

    >>> Dispatch(instance=np.array([0, 0]), order=np.array([1, 0])).admission_order(0).tolist()
    [1, 0]
    """

    instance: np.ndarray
    order: np.ndarray
    long_instances: int = 0
    est_makespan_s: float = math.nan

    def __post_init__(self) -> None:
        for name in ("instance", "order"):
            a = np.array(getattr(self, name), copy=True)
            if a.ndim != 1 or (a.shape[0] and a.dtype.kind not in "iu"):
                raise ValueError(f"Dispatch.{name} must be a one-dimensional integer array. Got "
                                 f"dtype {a.dtype} and shape {a.shape}.")
            a = a.astype(np.int64)
            a.flags.writeable = False
            object.__setattr__(self, name, a)
        v = self.long_instances
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"Dispatch.long_instances must be an int >= 0. Got {v!r}.")

    def admission_order(self, instance: int) -> np.ndarray:
        """The samples of ``instance`` in the order it admits them."""
        return self.order[self.instance[self.order] == instance]


class InvalidDispatch(ValueError):
    """A dispatch breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_dispatch(view: DispatchView, dispatch: Dispatch) -> None:
    """Check ``dispatch`` against ``view``; raises :class:`InvalidDispatch` naming the rule.

    Rules: one instance per sample, each in ``[0, N)``; ``order`` lists every sample exactly
    once; ``long_instances`` at most ``N``; the makespan estimate is ``nan`` or finite >= 0.

    >>> v = DispatchView.from_columns(input_tokens=[1, 1], n_instances=2)
    >>> validate_dispatch(v, Dispatch(instance=np.array([0, 2]), order=np.array([0, 1])))
    Traceback (most recent call last):
    ...
    schedlab.contract.dispatch.InvalidDispatch: instance out of range: sample 1 is on ...
    """
    n, k = view.n, view.n_instances
    inst, order = dispatch.instance, dispatch.order
    if inst.shape[0] != n:
        raise InvalidDispatch("wrong length", f"instance has {inst.shape[0]} entries for {n} "
                                              f"samples")
    bad = np.flatnonzero((inst < 0) | (inst >= k))
    if bad.shape[0]:
        j = int(bad[0])
        raise InvalidDispatch("instance out of range",
                              f"sample {j} is on instance {int(inst[j])}, not in [0, {k})")
    if order.shape[0] != n or not np.array_equal(np.sort(order), np.arange(n)):
        raise InvalidDispatch("order is not a permutation",
                              f"order must list each of the {n} samples exactly once")
    if dispatch.long_instances > k:
        raise InvalidDispatch("long pool too large",
                              f"long_instances={dispatch.long_instances} > {k} instances")
    est = float(dispatch.est_makespan_s)
    if not (math.isnan(est) or 0.0 <= est < math.inf):
        raise InvalidDispatch("invalid estimate", f"est_makespan_s must be nan or finite and "
                                                  f">= 0, got {est!r}")
