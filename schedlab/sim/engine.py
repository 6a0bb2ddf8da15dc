"""The event heap of the simulator, SimPy-style: ``(time, priority, sequence, target, token)``.

Events are ordered by time, then priority (lower first), then a sequence number that belongs to
one :class:`EventQueue` (so ties break identically on every run: the simulation is
deterministic). An event carries a ``target`` (an int naming who handles it, e.g. an instance
index) and a ``token`` (an int the target uses to ignore events it superseded: an instance that
re-plans its run bumps its token, and the stale event is dropped when popped).

Arrivals are not pushed here: they stream from the sorted workload and are merged in by the
driver (:func:`schedlab.sim.simulator.simulate`), ahead of heap events at the same time.

Extension points: new event kinds (a KV transfer finishing between a prefill and a decode
instance, a rollout group's re-dispatch, a distributed prefix-cache eviction) are new targets or
new priorities; the queue itself stays this small.

>>> q = EventQueue()
>>> q.push(2.0, PRIORITY_RUN_END, target=0, token=1)
>>> q.push(1.0, PRIORITY_RUN_END, target=1, token=1)
>>> q.push(1.0, PRIORITY_DECIDE, target=2, token=1)
>>> [q.pop()[3] for _ in range(3)]
[1, 2, 0]
"""

from __future__ import annotations

import heapq

__all__ = ["PRIORITY_ARRIVAL", "PRIORITY_DECIDE", "PRIORITY_RUN_END", "EventQueue"]

#: Arrivals at time t are handled before anything else at t (so a decision at t sees them).
PRIORITY_ARRIVAL = 0
#: An instance's run (one iteration or a closed-form stretch of decode steps) ends.
PRIORITY_RUN_END = 1
#: An idle instance decides (woken by an arrival or by the policy's ``reconsider_at_s``).
PRIORITY_DECIDE = 2


class EventQueue:
    """A heap of ``(time_s, priority, seq, target, token)`` with a private sequence counter."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, int, int, int]] = []
        self._seq = 0

    def push(self, time_s: float, priority: int, *, target: int, token: int) -> None:
        """Schedule an event."""
        self._seq += 1
        heapq.heappush(self._heap, (time_s, priority, self._seq, target, token))

    def pop(self) -> tuple[float, int, int, int, int]:
        """Remove and return the earliest event."""
        return heapq.heappop(self._heap)

    def peek_time(self) -> float:
        """Time of the earliest event, ``inf`` when empty."""
        return self._heap[0][0] if self._heap else float("inf")

    def __len__(self) -> int:
        return len(self._heap)
