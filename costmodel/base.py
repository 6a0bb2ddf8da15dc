"""The interface between the cost model and the simulator: :class:`IterationCost`.

The simulator never builds FLOP counts itself; it asks an ``IterationCost`` for the duration of
one iteration, of N consecutive decode steps (in closed form), of a batch-1 prefill, of a KV swap,
and for the KV capacity of an instance. Its two hot paths are the ``fast_*`` methods: the same
numbers as the checked methods, for inputs the simulator guarantees valid, without the checks.
The roofline model in :mod:`schedlab.costmodel.iteration` implements it for a (model, GPU,
tensor-parallel degree); :class:`ConstantIterationCost` gives every iteration the same duration,
which is what the slotted optimal-baseline problems in :mod:`schedlab.solvers` assume;
:class:`FastPathsFromChecked` gives a cost model of one's own the fast paths;
:class:`SequenceOverheadCost` adds a fixed cost per request per iteration to any of them.

>>> c = ConstantIterationCost(slot_s=0.5, kv_capacity_tokens=1000)
>>> c.decode_steps_time_s(batch_size=4, context_sum=100, n_steps=np.array([1, 3])).tolist()
[0.5, 1.5]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from schedlab.errors import check_nonneg_int, check_positive_float

__all__ = [
    "ConstantIterationCost", "CostWrapper", "FastPathsFromChecked", "IterationCost",
    "SequenceOverheadCost",
]


@runtime_checkable
class IterationCost(Protocol):
    """What the simulator needs from a cost model for one serving instance.

    Conventions: a *prefill chunk* processes ``prefill_tokens[i]`` new prompt tokens of request i
    whose first ``prefill_context[i]`` tokens are already in the KV cache (0 for a fresh prompt,
    the cached prefix or the previous chunks otherwise). A *decode* request generates one token
    while attending to its whole context (prompt plus tokens generated so far); the decode part
    of an iteration is described by the number of decode requests and the sum of their contexts.
    """

    # Read-only properties, so that frozen dataclasses and plain class attributes both conform.
    @property
    def kv_bytes_per_token(self) -> float:
        """KV-cache bytes per token of the whole instance (all its tensor-parallel devices
        together)."""
        ...

    @property
    def kv_capacity_tokens(self) -> int:
        """Tokens of KV the instance can hold (memory left after weights and activations)."""
        ...

    def iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        """Seconds for one iteration mixing prefill chunks and ``decode_batch`` decode tokens."""
        ...

    def decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray | int
    ) -> np.ndarray | float:
        """Total seconds of ``n_steps`` consecutive decode-only iterations of an unchanged batch.

        At the first step the contexts sum to ``context_sum``; each step adds one token to every
        request, so step k (0-based) has ``context_sum + k * batch_size``. Closed form, no loop over
        steps; vectorised over an array of ``n_steps`` (the result then has its shape).
        """
        ...

    def prefill_time_s(self, input_tokens: np.ndarray) -> np.ndarray:
        """Seconds of a batch-1 prefill of each whole prompt (vectorised)."""
        ...

    def swap_time_s(self, tokens: np.ndarray | int) -> np.ndarray | float:
        """Seconds to move the KV of ``tokens`` tokens between device and host memory."""
        ...

    def fast_iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        """:meth:`iteration_time_s` without argument checks, for valid inputs: 1-D int64 arrays
        of one length and ints >= 0 (the simulator's hot path)."""
        ...

    def fast_decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray
    ) -> np.ndarray:
        """:meth:`decode_steps_time_s` without argument checks, for ``batch_size >= 1``,
        ``context_sum >= 0`` and a 1-D float64 array of step counts >= 1 (the simulator's hot
        path)."""
        ...


class FastPathsFromChecked:
    """Mixin for a cost model of one's own: the ``fast_*`` methods of :class:`IterationCost`
    call the checked ones (correct, not faster).

    >>> class Flat(FastPathsFromChecked):
    ...     kv_capacity_tokens, kv_bytes_per_token = 100, 1.0
    ...     def iteration_time_s(self, pt, pc, b, ctx): return 0.5
    ...     def decode_steps_time_s(self, b, ctx, n): return np.asarray(n, dtype=float) * 0.5
    ...     def prefill_time_s(self, tokens): return np.full(np.shape(tokens), 0.5)
    ...     def swap_time_s(self, tokens): return 0.0
    >>> isinstance(Flat(), IterationCost), Flat().fast_decode_steps_time_s(2, 10, np.array([3.0]))
    (True, array([1.5]))
    """

    def fast_iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        return float(self.iteration_time_s(  # type: ignore[attr-defined]
            prefill_tokens, prefill_context, decode_batch, decode_context_sum))

    def fast_decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray
    ) -> np.ndarray:
        return np.asarray(self.decode_steps_time_s(  # type: ignore[attr-defined]
            batch_size, context_sum, n_steps), dtype=np.float64)


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstantIterationCost:
    """Every iteration, whatever its content, takes ``slot_s`` seconds; swaps are free.

    This is the slotted time model of the optimal-baseline problems (one iteration per slot).
    ``kv_bytes_per_token`` is 1 so KV bytes and KV tokens coincide.
    """

    slot_s: float = 1.0
    kv_capacity_tokens: int = 2**62
    kv_bytes_per_token: float = 1.0

    def __post_init__(self) -> None:
        check_positive_float(self.slot_s, "slot_s", "ConstantIterationCost")
        check_nonneg_int(self.kv_capacity_tokens, "kv_capacity_tokens", "ConstantIterationCost")

    def iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        return self.slot_s

    def decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray | int
    ) -> np.ndarray | float:
        return np.asarray(n_steps, dtype=np.float64) * self.slot_s if np.ndim(n_steps) else (
            float(n_steps) * self.slot_s
        )

    def prefill_time_s(self, input_tokens: np.ndarray) -> np.ndarray:
        return np.full(np.shape(input_tokens), self.slot_s, dtype=np.float64)

    def swap_time_s(self, tokens: np.ndarray | int) -> np.ndarray | float:
        return np.zeros(np.shape(tokens)) if np.ndim(tokens) else 0.0

    def fast_iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        return self.slot_s

    def fast_decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray
    ) -> np.ndarray:
        return n_steps * self.slot_s


@dataclass(frozen=True, slots=True, kw_only=True)
class CostWrapper:
    """An :class:`IterationCost` that forwards everything to ``cost``: the base of cost models
    that change some of another's answers (a subclass overrides only those).

    >>> CostWrapper(cost=ConstantIterationCost(slot_s=0.02)).fast_decode_steps_time_s(
    ...     1, 10, np.array([1.0, 2.0])).tolist()
    [0.02, 0.04]
    """

    cost: IterationCost

    def __post_init__(self) -> None:
        if not isinstance(self.cost, IterationCost):
            raise ValueError(f"The 'cost' parameter of {type(self).__name__} must implement "
                             f"IterationCost. Got {type(self.cost).__name__}.")

    @property
    def kv_bytes_per_token(self) -> float:
        return self.cost.kv_bytes_per_token

    @property
    def kv_capacity_tokens(self) -> int:
        return self.cost.kv_capacity_tokens

    def iteration_time_s(self, prefill_tokens: np.ndarray, prefill_context: np.ndarray,
                         decode_batch: int, decode_context_sum: int) -> float:
        return self.cost.iteration_time_s(prefill_tokens, prefill_context, decode_batch,
                                          decode_context_sum)

    def decode_steps_time_s(self, batch_size: int, context_sum: int,
                            n_steps: np.ndarray | int) -> np.ndarray | float:
        return self.cost.decode_steps_time_s(batch_size, context_sum, n_steps)

    def prefill_time_s(self, input_tokens: np.ndarray) -> np.ndarray:
        return self.cost.prefill_time_s(input_tokens)

    def swap_time_s(self, tokens: np.ndarray | int) -> np.ndarray | float:
        return self.cost.swap_time_s(tokens)

    def fast_iteration_time_s(self, prefill_tokens: np.ndarray, prefill_context: np.ndarray,
                              decode_batch: int, decode_context_sum: int) -> float:
        return self.cost.fast_iteration_time_s(prefill_tokens, prefill_context, decode_batch,
                                               decode_context_sum)

    def fast_decode_steps_time_s(self, batch_size: int, context_sum: int,
                                 n_steps: np.ndarray) -> np.ndarray:
        return self.cost.fast_decode_steps_time_s(batch_size, context_sum, n_steps)


@dataclass(frozen=True, slots=True, kw_only=True)
class SequenceOverheadCost(CostWrapper):
    """``cost`` plus ``per_sequence_s`` seconds per request in each iteration: the per-sequence
    work a roofline does not see (scheduling, sampling, detokenising and streaming each token,
    the bookkeeping of each request's KV blocks), which makes a large decode batch slower than
    its memory traffic alone. Everything else is ``cost``'s.

    >>> c = SequenceOverheadCost(cost=ConstantIterationCost(slot_s=0.02), per_sequence_s=0.005)
    >>> c.decode_steps_time_s(batch_size=4, context_sum=100, n_steps=np.array([1, 2])).tolist()
    [0.04, 0.08]
    """

    per_sequence_s: float

    def __post_init__(self) -> None:
        CostWrapper.__post_init__(self)
        check_positive_float(self.per_sequence_s, "per_sequence_s", "SequenceOverheadCost")

    def iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        return float(self.cost.iteration_time_s(prefill_tokens, prefill_context, decode_batch,
                                                decode_context_sum)) + self.per_sequence_s * (
            int(np.shape(prefill_tokens)[0]) + int(decode_batch))

    def decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray | int
    ) -> np.ndarray | float:
        base = self.cost.decode_steps_time_s(batch_size, context_sum, n_steps)
        return base + self.per_sequence_s * batch_size * np.asarray(n_steps, dtype=np.float64)

    def prefill_time_s(self, input_tokens: np.ndarray) -> np.ndarray:
        return np.asarray(self.cost.prefill_time_s(input_tokens)) + self.per_sequence_s

    def fast_iteration_time_s(
        self,
        prefill_tokens: np.ndarray,
        prefill_context: np.ndarray,
        decode_batch: int,
        decode_context_sum: int,
    ) -> float:
        return self.cost.fast_iteration_time_s(prefill_tokens, prefill_context, decode_batch,
                                               decode_context_sum) + self.per_sequence_s * (
            prefill_tokens.shape[0] + decode_batch)

    def fast_decode_steps_time_s(
        self, batch_size: int, context_sum: int, n_steps: np.ndarray
    ) -> np.ndarray:
        return (self.cost.fast_decode_steps_time_s(batch_size, context_sum, n_steps)
                + self.per_sequence_s * batch_size * n_steps)
