"""The offline iteration-scheduling problem on one serving instance, shared by heuristics and the
optimum: :class:`IterationProblem` and :func:`random_problem`.

Slotted model (one iteration per slot, as :class:`schedlab.costmodel.base.ConstantIterationCost`
with ``slot_s`` seconds per slot; FastServe digest, serving.md §1.5):

- Request ``j`` arrives at the start of integer slot ``a_j`` and may run in slots ``t >= a_j``.
- It runs in exactly ``o_j`` slots (``o_j`` = ``output_tokens``), at most once per slot. Its
  first run is the prefill of the whole prompt (``input_tokens``, never chunked: every prompt must
  fit the token budget) and produces the first output token; each later run is a decode step that
  produces one more token.
- Per slot: at most ``max_batch_size`` requests run, and the tokens they process (the whole prompt
  for a prefill, 1 for a decode) sum to at most ``max_batch_tokens``.
- KV cache: a request running its ``k``-th run (``k = 1`` is the prefill) needs
  ``kv_tokens_at_run(input, k) = input + k`` tokens of device KV (its context after that
  iteration: prompt plus tokens generated so far). The requests running in a slot must fit in
  ``kv_capacity_tokens`` together. Preemption between slots is allowed and moving KV to and from
  host memory is free (ConstantIterationCost's zero swap time, unlimited host memory), so only the
  requests *running* in a slot hold device KV in this model. This is a relaxation of any policy
  that keeps preempted KV resident, so the optimum is a lower bound for such policies too.
- Completion slot ``C_j`` is the last slot in which ``j`` runs; ``JCT_j = C_j + 1 - a_j`` slots.
  The objective is the total JCT.

Every single request must be schedulable alone (prompt within the token budget, final KV within
the capacity), which makes every instance feasible.

>>> p = IterationProblem(arrival_slot=[0, 0, 1], input_tokens=[4, 2, 3], output_tokens=[3, 1, 2],
...                      max_batch_size=2, max_batch_tokens=8, kv_capacity_tokens=20)
>>> p.n, p.min_jct().tolist(), p.trivial_bound()
(3, [3, 1, 2], 6)
>>> p.to_workload().arrival_s.tolist()
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from schedlab.errors import check_array, check_positive_float, check_positive_int
from schedlab.records import Workload

__all__ = ["IterationProblem", "kv_tokens_at_run", "random_problem"]

_WHERE = "IterationProblem"


@overload
def kv_tokens_at_run(input_tokens: int, k: int) -> int: ...


@overload
def kv_tokens_at_run(input_tokens: np.ndarray, k: np.ndarray | int) -> np.ndarray: ...


@overload
def kv_tokens_at_run(input_tokens: np.ndarray | int, k: np.ndarray) -> np.ndarray: ...


def kv_tokens_at_run(input_tokens: np.ndarray | int, k: np.ndarray | int) -> np.ndarray | int:
    """Device KV tokens a request needs during its ``k``-th run (``k = 1`` is the prefill).

    >>> kv_tokens_at_run(10, 1), kv_tokens_at_run(10, 4)
    (11, 14)
    """
    return input_tokens + k


@dataclass(frozen=True, slots=True, kw_only=True)
class IterationProblem:
    """A small offline iteration-scheduling instance (see the module docstring for the model).

    Parameters
    ----------
    arrival_slot : integer arrival slot of each request (>= 0, non-decreasing, so that request
        ``j`` is row ``j`` of :meth:`to_workload`).
    input_tokens : prompt length (integer >= 1, at most ``max_batch_tokens``).
    output_tokens : output tokens, i.e. runs needed (integer >= 1).
    max_batch_size : most requests in one iteration.
    max_batch_tokens : token budget per iteration (prefill tokens plus one per decode).
    kv_capacity_tokens : device KV capacity in tokens; each request's final KV
        (``input + output``) must fit.
    """

    arrival_slot: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    max_batch_size: int
    max_batch_tokens: int
    kv_capacity_tokens: int

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        a = check_array(
            self.arrival_slot, "arrival_slot", _WHERE, dtype=np.int64, integer=True, min_value=0
        )
        n = a.shape[0]
        if n == 0:
            raise ValueError(
                f"The 'arrival_slot' parameter of {_WHERE} must hold at least one request."
            )
        if np.any(np.diff(a) < 0):
            i = int(np.flatnonzero(np.diff(a) < 0)[0]) + 1
            raise ValueError(
                f"The 'arrival_slot' parameter of {_WHERE} must be non-decreasing; element {i} "
                f"({a[i]}) comes before element {i - 1} ({a[i - 1]})."
            )
        set_(self, "arrival_slot", a)
        for col in ("input_tokens", "output_tokens"):
            arr = check_array(
                getattr(self, col), col, _WHERE, dtype=np.int64, integer=True, min_value=1, length=n
            )
            set_(self, col, arr)
        for name in ("max_batch_size", "max_batch_tokens", "kv_capacity_tokens"):
            set_(self, name, check_positive_int(getattr(self, name), name, _WHERE))
        too_long = np.flatnonzero(self.input_tokens > self.max_batch_tokens)
        if too_long.size:
            i = int(too_long[0])
            raise ValueError(
                f"The 'input_tokens' parameter of {_WHERE} must be <= max_batch_tokens "
                f"({self.max_batch_tokens}): prompts are prefilled whole in one slot; "
                f"element {i} is {int(self.input_tokens[i])}."
            )
        final_kv = kv_tokens_at_run(self.input_tokens, self.output_tokens)
        too_big = np.flatnonzero(final_kv > self.kv_capacity_tokens)
        if too_big.size:
            i = int(too_big[0])
            raise ValueError(
                f"The 'kv_capacity_tokens' parameter of {_WHERE} must hold every request alone: "
                f"request {i} needs {int(final_kv[i])} tokens of KV at its last run. "
                f"Got {self.kv_capacity_tokens} instead."
            )

    @property
    def n(self) -> int:
        """Number of requests."""
        return int(self.arrival_slot.shape[0])

    def min_jct(self) -> np.ndarray:
        """Smallest possible JCT of each request alone: ``o_j`` slots (one run per slot)."""
        return self.output_tokens.copy()

    def trivial_bound(self) -> int:
        """Combinatorial lower bound on the total JCT: every request needs ``o_j`` slots."""
        return int(self.output_tokens.sum())

    def jct_deadlines(self, upper_bound: int) -> np.ndarray:
        """Latest completion slot of each request in any schedule of total JCT <= ``upper_bound``.

        Every other request ``k`` has JCT >= ``o_k``, so
        ``JCT_j <= upper_bound - sum_{k != j} o_k``,
        i.e. ``C_j <= a_j - 1 + upper_bound - sum_{k != j} o_k``.

        >>> p = IterationProblem(arrival_slot=[0, 2], input_tokens=[1, 1], output_tokens=[2, 3],
        ...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=8)
        >>> p.jct_deadlines(7).tolist()
        [3, 6]
        """
        ub = check_positive_int(upper_bound, "upper_bound", "IterationProblem.jct_deadlines")
        others = int(self.output_tokens.sum()) - self.output_tokens
        return self.arrival_slot - 1 + ub - others

    def instance_limits(self) -> dict[str, int]:
        """The per-instance limits a simulator needs to run a policy on this problem."""
        return {
            "max_batch_size": self.max_batch_size,
            "max_batch_tokens": self.max_batch_tokens,
            "kv_capacity_tokens": self.kv_capacity_tokens,
            "chunk_tokens": 0,
        }

    def to_workload(self, *, slot_s: float = 1.0, name: str = "iteration-problem") -> Workload:
        """The requests as a :class:`Workload` with ``arrival_s = arrival_slot * slot_s``
        (row ``j`` is request ``j``)."""
        slot_s = check_positive_float(slot_s, "slot_s", "IterationProblem.to_workload")
        return Workload(
            arrival_s=self.arrival_slot.astype(np.float64) * slot_s,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            name=name,
        )


def random_problem(
    n: int,
    rng: np.random.Generator,
    *,
    max_batch_size: int = 4,
    max_batch_tokens: int = 32,
    max_input_tokens: int = 24,
    max_output_tokens: int = 10,
    kv_capacity_tokens: int = 96,
    arrival_span_slots: int | None = None,
) -> IterationProblem:
    """A random small instance: uniform integer arrivals in ``[0, arrival_span_slots]`` (default
    ``n // 2``), prompts uniform in ``[1, max_input_tokens]``, outputs heavy-tailed (geometric,
    mean about 4) capped at ``max_output_tokens``.

    >>> p = random_problem(12, np.random.default_rng(0))
    >>> p.n, bool(np.all(np.diff(p.arrival_slot) >= 0))
    (12, True)
    """
    n = check_positive_int(n, "n", "random_problem")
    if not isinstance(rng, np.random.Generator):
        raise ValueError(
            "The 'rng' parameter of random_problem must be a numpy Generator. "
            f"Got {type(rng).__name__}."
        )
    span = n // 2 if arrival_span_slots is None else arrival_span_slots
    arrival = np.sort(rng.integers(0, span + 1, size=n))
    inp = rng.integers(1, max_input_tokens + 1, size=n)
    out = np.minimum(rng.geometric(0.25, size=n), max_output_tokens)
    return IterationProblem(
        arrival_slot=arrival,
        input_tokens=inp,
        output_tokens=out,
        max_batch_size=max_batch_size,
        max_batch_tokens=max_batch_tokens,
        kv_capacity_tokens=kv_capacity_tokens,
    )
