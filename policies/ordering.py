"""Orders the policies share: arrival order, and the check of a ``preempt`` parameter.

>>> from schedlab.contract import QueueView
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[1, 1, 1], arrival_s=[2.0, 1.0, 1.0],
...     request_id=[7, 9, 8], kv_capacity_tokens=9)
>>> arrival_order(v).tolist(), is_arrival_order(v, np.array([2, 1, 0]))
([2, 1, 0], True)
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import PREEMPT_MODES, QueueView

__all__ = ["arrival_order", "check_preempt", "is_arrival_order"]


def _sorted_by_arrival(arrival: np.ndarray, request_id: np.ndarray) -> bool:
    later, earlier = arrival[1:], arrival[:-1]
    if (later > earlier).all():
        return True
    if (later < earlier).any():
        return False
    tie = np.flatnonzero(later == earlier)
    return bool((request_id[tie + 1] > request_id[tie]).all())


def arrival_order(view: QueueView, positions: np.ndarray | None = None) -> np.ndarray:
    """``positions`` (all when None) sorted by arrival time, ties by request id.

    >>> from schedlab.contract import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[1, 1], arrival_s=[1.0, 1.0],
    ...     request_id=[4, 3], kv_capacity_tokens=9)
    >>> arrival_order(v).tolist()
    [1, 0]
    """
    in_order = _sorted_by_arrival(view.arrival_s, view.request_id)  # as the simulator lists them
    if positions is None:
        pos = np.arange(view.n)
        return pos if in_order else np.lexsort((view.request_id, view.arrival_s))
    pos = np.asarray(positions, dtype=np.int64)
    if in_order:
        return np.sort(pos)
    return pos[np.lexsort((view.request_id[pos], view.arrival_s[pos]))]


def is_arrival_order(view: QueueView, order: np.ndarray) -> bool:
    """Whether ``order`` lists its positions by arrival time, ties by request id.

    >>> from schedlab.contract import QueueView
    >>> v = QueueView.from_columns(now_s=0.0, input_tokens=[1, 1], kv_capacity_tokens=9)
    >>> is_arrival_order(v, np.array([1, 0]))
    False
    """
    pos = np.asarray(order, dtype=np.int64)
    return _sorted_by_arrival(view.arrival_s[pos], view.request_id[pos])


def check_preempt(preempt: str, where: str) -> str:
    """Validate a ``preempt`` parameter (``"swap"`` or ``"recompute"``).

    >>> check_preempt("swap", "vllm")
    'swap'
    """
    if preempt not in PREEMPT_MODES:
        raise ValueError(
            f"The 'preempt' parameter of {where} must be one of {PREEMPT_MODES}. "
            f"Got {preempt!r} instead."
        )
    return preempt
