"""Simulation state as numpy columns: a global per-request table of inputs and outcomes
(:class:`RequestTable`), and per instance the columns of its active requests in slot order
(:class:`QueueColumns`; slot ``i`` is position ``i`` of the policy's view, so a view is a few
slice copies and a decision's positions index the columns directly).

Token accounting (the invariant the engine keeps and the tests check):

- ``target``: prompt tokens to prefill; the prompt at first, and after a recomputation
  preemption the prompt plus every token generated so far (vLLM's recompute re-prefills them).
- ``prefilled``: tokens of ``target`` already in the KV cache.
- ``generated``: output tokens produced; the last prefill chunk produces one, each decode one.
- ``gen_base``: ``generated`` at the last recomputation (those tokens are part of ``target``).
- ``kv = prefilled + generated - gen_base`` tokens of KV, on the device or the host (``loc``).
- ``left = output - generated``: true output tokens still to produce (0 means completed).
- ``foot``, ``flags``: the per-request fields of the plan the instance forms its batches from
  (``Plan.footprint_tokens``; ``evictable`` and ``defer`` as the bits :data:`EVICTABLE` and
  :data:`DEFERRED`), kept here so that they follow the slots when requests leave.
- ``cached``: tokens of a waiting request's KV that an on-device prefix cache holds for it
  (vLLM's automatic prefix caching): shown as host-resident (``loc``) until it first runs, but
  not counted in the host swap space and moved to the device for free.

Extension point: a distributed prefix cache (Mooncake) starts ``prefilled`` at the cached prefix;
requests spanning instances (LoongServe) would hold KV on several instances, which would become a
second, ragged table keyed by request.

>>> import numpy as np
>>> t = RequestTable.empty(np.array([0.0, 1.0]), np.array([5, 6]), np.array([2, 3]),
...                        np.array([2.0, 3.0]))
>>> q = QueueColumns()
>>> q.append(np.array([1]), t, np.array([0.1, 0.2]))   # their outstanding tokens
9.0
>>> q.n, q.I[TARGET, :q.n].tolist(), q.I[LEFT, :q.n].tolist(), q.F[EST, :q.n].tolist()
(1, [6], [3], [0.2])
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract import KV_GPU, KV_HOST
from schedlab.jit import njit

__all__ = ["COMPLETED", "PENDING", "REJECTED", "QueueColumns", "RequestTable"]

#: Rows of :attr:`QueueColumns.I` (int64); the first five are shown to policies.
TARGET, PREFILLED, GENERATED, KV, PRIORITY, LEFT, GEN_BASE, FOOT, FLAGS, CACHED = range(10)
#: Bits of row ``FLAGS``: the plan lets the request be evicted, ... defers it.
EVICTABLE, DEFERRED = 1, 2
#: Rows of :attr:`QueueColumns.F` (float64), all shown to policies.
ARRIVAL, PRED, ATTAINED, LAST_RUN, EST = range(5)

PENDING, COMPLETED, REJECTED = 0, 1, 2

_REBIND_SLOTS = 64


@dataclass(slots=True)
class RequestTable:
    """Per workload request: the inputs (read-only) and the outcomes (written once)."""

    arrival: np.ndarray
    input: np.ndarray
    output: np.ndarray
    pred: np.ndarray
    instance: np.ndarray
    first_token: np.ndarray
    finish: np.ndarray
    status: np.ndarray
    reject_code: np.ndarray
    preemptions: np.ndarray
    swaps: np.ndarray

    @classmethod
    def empty(
        cls, arrival: np.ndarray, input_tokens: np.ndarray, output: np.ndarray, pred: np.ndarray
    ) -> RequestTable:
        n = arrival.shape[0]

        def read_only(a: np.ndarray, dtype: type) -> np.ndarray:
            out: np.ndarray = np.asarray(a, dtype=dtype).view()  # the caller keeps its flags
            out.flags.writeable = False
            return out

        return cls(
            arrival=read_only(arrival, np.float64),
            input=read_only(input_tokens, np.int64),
            output=read_only(output, np.int64),
            pred=read_only(pred, np.float64),
            instance=np.full(n, -1, dtype=np.int64),
            first_token=np.full(n, np.nan),
            finish=np.full(n, np.nan),
            status=np.zeros(n, dtype=np.int8),
            reject_code=np.full(n, -1, dtype=np.int32),
            preemptions=np.zeros(n, dtype=np.int64),
            swaps=np.zeros(n, dtype=np.int64),
        )


class QueueColumns:
    """The active requests of one instance, in slots ``0..n-1`` (arrival order).

    ``I`` and ``F`` hold the int and float columns as rows (see the row constants), ``rid`` the
    workload index of each slot, ``loc`` the KV location, ``running`` whether the slot ran in the
    previous iteration. They are views into larger storage that starts at an offset: removing
    slots (:meth:`remove`, which keeps the order) shifts whichever side of the removed slots is
    shorter, so completing the oldest requests of a long queue moves only the few before them
    and advances the offset. Storage doubles when full.

    Policy views share the storage instead of copying it (:meth:`snapshot`): they are slices of
    read-only twins of the storage (arrays over a read-only memoryview of it). Every array
    derived from those slices, by numpy or by a compiled kernel, keeps a reference to its twin
    (numpy sets a view's base to the first array up the chain whose own base is not an array:
    the twin, over its memoryview), so after the policy returns, :meth:`escaped` tells (by
    reference counts) whether anything still holds one; then :meth:`detach` moves the queue to
    fresh storage, and whatever the policy kept never changes. A policy that keeps nothing costs
    no copy at all (about 20 us a decision on a 1,000-request queue).
    """

    __slots__ = ("F", "I", "_F", "_I", "_anchor_refs", "_anchors", "_loc", "_published",
                 "_rid", "_running", "loc", "n", "rid", "running", "start")

    # named rows (1-D views, for the engine's rarer paths; kernels take I and F)
    target = property(lambda self: self.I[TARGET], doc="Row TARGET of I.")
    prefilled = property(lambda self: self.I[PREFILLED], doc="Row PREFILLED of I.")
    generated = property(lambda self: self.I[GENERATED], doc="Row GENERATED of I.")
    kv = property(lambda self: self.I[KV], doc="Row KV of I.")
    priority = property(lambda self: self.I[PRIORITY], doc="Row PRIORITY of I.")
    left = property(lambda self: self.I[LEFT], doc="Row LEFT of I.")
    gen_base = property(lambda self: self.I[GEN_BASE], doc="Row GEN_BASE of I.")
    foot = property(lambda self: self.I[FOOT], doc="Row FOOT of I.")
    flags = property(lambda self: self.I[FLAGS], doc="Row FLAGS of I.")
    cached = property(lambda self: self.I[CACHED], doc="Row CACHED of I.")
    arrival = property(lambda self: self.F[ARRIVAL], doc="Row ARRIVAL of F.")
    pred = property(lambda self: self.F[PRED], doc="Row PRED of F.")
    attained = property(lambda self: self.F[ATTAINED], doc="Row ATTAINED of F.")
    last_run = property(lambda self: self.F[LAST_RUN], doc="Row LAST_RUN of F.")
    est = property(lambda self: self.F[EST], doc="Row EST of F.")

    def __init__(self, capacity: int = 64) -> None:
        self._I = np.zeros((10, capacity), dtype=np.int64)
        self._F = np.zeros((5, capacity), dtype=np.float64)
        self._rid = np.zeros(capacity, dtype=np.int64)
        self._loc = np.zeros(capacity, dtype=np.int8)
        self._running = np.zeros(capacity, dtype=bool)
        self.n = 0
        self.start = 0
        self._rows()
        self._publish()

    def _rows(self) -> None:
        """The slot views from :attr:`start` on."""
        a = self.start
        self.I = self._I[:, a:]
        self.F = self._F[:, a:]
        self.rid = self._rid[a:]
        self.loc = self._loc[a:]
        self.running = self._running[a:]

    def _publish(self) -> None:
        """The read-only twins of the storage rows a view shows, in :class:`QueueView` column
        order, and the reference counts of their buffers with no view alive."""
        storage: tuple[Any, ...] = (self._I, self._F, self._rid, self._loc, self._running)
        twins = tuple(
            np.frombuffer(memoryview(a).toreadonly().cast("B"), a.dtype) for a in storage
        )
        ints = twins[0].reshape(self._I.shape)
        fl = twins[1].reshape(self._F.shape)
        self._published = (
            twins[2], fl[ARRIVAL], ints[TARGET], fl[PRED], ints[PREFILLED], ints[GENERATED],
            ints[KV], twins[3], twins[4], ints[PRIORITY], fl[ATTAINED], fl[LAST_RUN], fl[EST],
        )
        del ints, fl
        self._anchors = twins
        self._anchor_refs = _refcounts(twins)

    def snapshot(self) -> list[np.ndarray]:
        """The active slots' columns as a view shows them (read-only, sharing the storage), in
        :class:`QueueView` order: request_id, arrival_s, input_tokens, output_tokens_pred,
        prefilled_tokens, generated_tokens, kv_tokens, kv_location, running, priority,
        attained_s, last_run_s, est_prefill_s. Call :meth:`escaped` before changing anything."""
        a, b = self.start, self.start + self.n
        return [r[a:b] for r in self._published]

    def escaped(self) -> bool:
        """Whether an array sliced from a :meth:`snapshot` (or derived from one) is still
        alive; :meth:`detach` then keeps it from changing."""
        return _refcounts(self._anchors) != self._anchor_refs

    def detach(self) -> None:
        """Move the slots to fresh storage, leaving the old storage to the arrays that still
        hold it (it is never written again)."""
        self._make_room(self.n, fresh=True)

    def _make_room(self, need: int, *, fresh: bool = False) -> None:
        """Storage for ``need`` slots from the offset: move the slots to offset 0, into storage
        twice as large when they would fill more than half of it (into new storage in any case
        when ``fresh``)."""
        cap = self._rid.shape[0]
        while cap < 2 * need:
            cap *= 2
        fresh = fresh or cap != self._rid.shape[0]
        a, n = self.start, self.n
        for name in ("_I", "_F"):
            old = getattr(self, name)
            new = np.zeros((old.shape[0], cap), old.dtype) if fresh else old
            new[:, :n] = old[:, a : a + n]
            setattr(self, name, new)
        for name in ("_rid", "_loc", "_running"):
            old = getattr(self, name)
            new = np.zeros(cap, old.dtype) if fresh else old
            new[:n] = old[a : a + n]
            setattr(self, name, new)
        self.start = 0
        self._rows()
        if fresh:
            self._publish()

    def append(self, idx: np.ndarray, table: RequestTable, est_prefill: np.ndarray) -> float:
        """Add the workload requests ``idx`` (fresh: nothing prefilled, no KV); returns their
        :meth:`outstanding` tokens."""
        b = self.n + idx.shape[0]
        if b > self.rid.shape[0]:
            self._make_room(b)
        added = _append_slots(self.I, self.F, self.rid, self.loc, self.running, self.n, idx,
                              table.input, table.output, table.arrival, table.pred, est_prefill)
        self.n = b
        return added

    def remove(
        self, gone: np.ndarray, track: bool = False, *, ordered: bool = False
    ) -> tuple[int, int, float]:
        """Remove the slots ``gone`` (distinct; ``ordered``: already ascending), keeping the order
        of the others. Returns the device and host KV tokens they held and (with ``track``)
        their :meth:`outstanding`."""
        k = gone.shape[0]
        if k > 1 and not ordered:
            gone = np.sort(gone)
        # move the slots before them when there are far fewer of those than after (rebinding
        # the views costs about as much as moving a few dozen slots)
        front = k > 0 and int(gone[-1]) + _REBIND_SLOTS < self.n - int(gone[0])
        out = _remove_slots(
            self.I, self.F, self.rid, self.loc, self.running, self.n, gone, track, front
        )
        self.n -= k
        if front:
            self.start += k
            self._rows()
        return out

    def outstanding(self, pos: np.ndarray | slice) -> float:
        """Prompt tokens left to prefill plus predicted output tokens left, over ``pos``."""
        left = self.pred[pos] - self.generated[pos]
        return float((self.target[pos] - self.prefilled[pos]).sum() + left[left > 0].sum())


def _refcounts(arrays: tuple[np.ndarray, ...]) -> list[int]:
    return [sys.getrefcount(a) for a in arrays]


@njit
def _shift_left(a, n, gone):
    """Close the gaps of the sorted slots ``gone`` in ``a[:n]`` by moving the slots after them."""
    w = gone[0]
    g = 0
    for s in range(gone[0], n):
        if g < gone.shape[0] and gone[g] == s:
            g += 1
        else:
            a[w] = a[s]
            w += 1


@njit
def _shift_right(a, gone):
    """Close the gaps of the sorted slots ``gone`` by moving the slots before them (the first
    ``len(gone)`` slots are then free)."""
    w = gone[-1]
    g = gone.shape[0] - 1
    for s in range(gone[-1], -1, -1):
        if g >= 0 and gone[g] == s:
            g -= 1
        else:
            a[w] = a[s]
            w -= 1


@njit
def _shift(a, n, gone, front):
    if front:
        _shift_right(a, gone)
    else:
        _shift_left(a, n, gone)


@njit
def _remove_slots(I, F, rid, loc, running, n, gone, track, front):  # noqa: E741
    """Remove the slots ``gone`` (sorted, distinct) of the first ``n``, keeping the order of the
    others: the slots after them move left or (``front``) the slots before them move right, and
    the caller then starts the slots ``len(gone)`` later. Returns ``(gpu_freed, host_freed,
    outstanding)``: the device and host KV they held and (with ``track``) their prompt tokens
    left to prefill plus predicted output tokens left."""
    gpu = 0
    host = 0
    out = 0.0
    for j in range(gone.shape[0]):
        s = gone[j]
        if loc[s] == KV_GPU:
            gpu += I[KV, s]
        elif loc[s] == KV_HOST:
            host += I[KV, s] - I[CACHED, s]
        if track:
            out += I[TARGET, s] - I[PREFILLED, s] + max(F[PRED, s] - I[GENERATED, s], 0.0)
    if gone.shape[0] == 0:
        return gpu, host, out
    for r in range(I.shape[0]):
        _shift(I[r], n, gone, front)
    for r in range(F.shape[0]):
        _shift(F[r], n, gone, front)
    _shift(rid, n, gone, front)
    _shift(loc, n, gone, front)
    _shift(running, n, gone, front)
    return gpu, host, out


@njit
def _append_slots(I, F, rid, loc, running, n, idx, inp, out, arrival, pred, est):  # noqa: E741
    """Write the fresh workload requests ``idx`` into slots ``n..`` (storage already large
    enough): nothing prefilled or generated, no KV, priority -1, last run at arrival. Returns
    their prompt plus predicted output tokens (their outstanding tokens)."""
    added = 0.0
    for j in range(idx.shape[0]):
        s = n + j
        r = idx[j]
        for row in range(I.shape[0]):
            I[row, s] = 0
        I[TARGET, s] = inp[r]
        I[PRIORITY, s] = -1
        I[LEFT, s] = out[r]
        F[ARRIVAL, s] = arrival[r]
        F[PRED, s] = pred[r]
        F[ATTAINED, s] = 0.0
        F[LAST_RUN, s] = arrival[r]
        F[EST, s] = est[r]
        rid[s] = r
        loc[s] = 0
        running[s] = False
        added += inp[r] + max(pred[r], 0.0)
    return added

