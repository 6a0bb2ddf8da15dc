"""A slotted iteration schedule, whoever produced it: :class:`Schedule`.

One entry per (request, slot) in which the request ran, as columnar arrays: ``request``, ``slot``,
``prefill_tokens`` (prompt tokens processed; 0 for a decode step) and ``output_token`` (whether the
run produced an output token). The simulator's iteration log converts with
:meth:`Schedule.from_iteration_log` (plain arrays in, so solvers never import the simulator);
:func:`schedlab.solvers.iteration_verify.verify` checks a schedule against an
:class:`~schedlab.solvers.iteration_problem.IterationProblem`.

>>> s = Schedule.from_runs(n_requests=2, request=[0, 1, 0], slot=[0, 0, 1], input_tokens=[5, 3])
>>> s.prefill_tokens.tolist(), s.run_matrix().astype(int).tolist()
([5, 3, 0], [[1, 1], [1, 0]])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from schedlab.errors import check_array, check_positive_float, check_positive_int

__all__ = ["Schedule"]

_WHERE = "Schedule"


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """Runs of ``n_requests`` requests in integer slots, one entry per (request, slot), sorted by
    slot then request.

    Parameters
    ----------
    n_requests : number of requests of the problem the schedule is for.
    request, slot : request index in ``[0, n_requests)`` and slot (>= 0) of each entry.
    prefill_tokens : prompt tokens processed in the entry (0 for a decode step).
    output_token : whether the entry produced an output token.
    """

    n_requests: int
    request: np.ndarray
    slot: np.ndarray
    prefill_tokens: np.ndarray
    output_token: np.ndarray

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        n = check_positive_int(self.n_requests, "n_requests", _WHERE)
        req = check_array(
            self.request, "request", _WHERE, dtype=np.int64, integer=True, min_value=0
        )
        m = req.shape[0]
        if m and int(req.max()) >= n:
            i = int(np.argmax(req))
            raise ValueError(
                f"The 'request' parameter of {_WHERE} must hold indices < n_requests ({n}); "
                f"element {i} is {int(req[i])}."
            )
        slot = check_array(
            self.slot, "slot", _WHERE, dtype=np.int64, integer=True, min_value=0, length=m
        )
        pre = check_array(
            self.prefill_tokens, "prefill_tokens", _WHERE, dtype=np.int64, integer=True,
            min_value=0, length=m,
        )
        out = np.asarray(self.output_token)
        if out.shape != (m,) or out.dtype != bool:
            raise ValueError(
                f"The 'output_token' parameter of {_WHERE} must be a bool array of shape ({m},). "
                f"Got dtype {out.dtype}, shape {out.shape}."
            )
        order = np.lexsort((req, slot))
        cols = {"request": req, "slot": slot, "prefill_tokens": pre, "output_token": out}
        for name, arr in cols.items():
            a = np.array(arr[order], copy=True)
            a.flags.writeable = False
            set_(self, name, a)
        set_(self, "n_requests", n)

    @property
    def n_entries(self) -> int:
        """Number of (request, slot) entries."""
        return int(self.request.shape[0])

    @property
    def horizon(self) -> int:
        """One past the last slot used (0 for an empty schedule)."""
        return int(self.slot.max()) + 1 if self.n_entries else 0

    def run_matrix(self, horizon: int | None = None) -> np.ndarray:
        """Boolean ``(n_requests, horizon)`` matrix: ``True`` where the request runs."""
        t = self.horizon if horizon is None else int(horizon)
        m = np.zeros((self.n_requests, t), dtype=bool)
        keep = self.slot < t
        m[self.request[keep], self.slot[keep]] = True
        return m

    def completion_slot(self) -> np.ndarray:
        """Last slot each request runs in (``-1`` for a request that never runs)."""
        c = np.full(self.n_requests, -1, dtype=np.int64)
        np.maximum.at(c, self.request, self.slot)
        return c

    @classmethod
    def from_runs(
        cls,
        *,
        n_requests: int,
        request: np.ndarray | list[int],
        slot: np.ndarray | list[int],
        input_tokens: np.ndarray | list[int],
    ) -> Schedule:
        """Build a schedule from run entries alone: each request's earliest entry is the prefill of
        its whole prompt, later ones are decodes; every entry produces a token."""
        req = np.asarray(request, dtype=np.int64)
        sl = np.asarray(slot, dtype=np.int64)
        inp = np.asarray(input_tokens, dtype=np.int64)
        if req.shape != sl.shape:
            raise ValueError(
                f"The 'slot' parameter of Schedule.from_runs must have the shape of 'request' "
                f"{req.shape}. Got {sl.shape}."
            )
        if inp.shape != (int(n_requests),):
            raise ValueError(
                f"The 'input_tokens' parameter of Schedule.from_runs must have shape "
                f"({int(n_requests)},). Got {inp.shape}."
            )
        order = np.lexsort((sl, req))
        first = np.ones(req.size, dtype=bool)
        first[1:] = req[order][1:] != req[order][:-1]
        pre = np.zeros(req.size, dtype=np.int64)
        pre[order[first]] = inp[req[order[first]]]
        return cls(
            n_requests=n_requests,
            request=req,
            slot=sl,
            prefill_tokens=pre,
            output_token=np.ones(req.size, dtype=bool),
        )

    @classmethod
    def from_iteration_log(
        cls,
        log: Mapping[str, np.ndarray],
        n_requests: int,
        *,
        slot_s: float = 1.0,
        instance: int | None = None,
    ) -> Schedule:
        """Convert a simulator iteration log (plain arrays) into a slotted schedule.

        ``log`` holds per iteration ``start_s`` and ``instance`` and CSR ``offsets`` (length
        ``n_iterations + 1``), and per entry ``request`` (workload index), ``prefill_tokens`` and
        ``output_token``. Iteration ``i`` is slot ``start_s[i] / slot_s``, which must be an integer
        (iterations of a constant ``slot_s`` with integer arrivals). With several instances, pass
        ``instance`` to keep one; otherwise every iteration must be on a single instance. Raises
        ``ValueError`` when a start time is not on the slot grid, two iterations of the instance
        share a slot, or a request appears twice in one iteration.

        >>> log = {"start_s": np.array([0.0, 1.0]), "end_s": np.array([1.0, 2.0]),
        ...        "instance": np.array([0, 0]), "offsets": np.array([0, 2, 3]),
        ...        "request": np.array([0, 1, 0]), "prefill_tokens": np.array([5, 3, 0]),
        ...        "output_token": np.array([True, True, True])}
        >>> s = Schedule.from_iteration_log(log, 2)
        >>> s.slot.tolist(), s.request.tolist(), s.prefill_tokens.tolist()
        ([0, 0, 1], [0, 1, 0], [5, 3, 0])
        """
        where = "Schedule.from_iteration_log"
        missing = [
            k for k in ("start_s", "offsets", "request", "prefill_tokens", "output_token")
            if k not in log
        ]
        if missing:
            raise ValueError(
                f"The 'log' parameter of {where} must have keys {missing}. Got keys {sorted(log)}."
            )
        slot_s = check_positive_float(slot_s, "slot_s", where)
        start = check_array(log["start_s"], "log['start_s']", where, min_value=0.0)
        offsets = check_array(
            log["offsets"], "log['offsets']", where, dtype=np.int64, integer=True, min_value=0,
            length=start.shape[0] + 1,
        )
        req = np.asarray(log["request"], dtype=np.int64)
        if offsets[0] != 0 or offsets[-1] != req.shape[0] or np.any(np.diff(offsets) < 0):
            raise ValueError(
                f"The 'log' parameter of {where} must have CSR offsets starting at 0, "
                f"non-decreasing, ending at the number of entries ({req.shape[0]})."
            )
        inst = np.asarray(log.get("instance", np.zeros(start.shape[0], dtype=np.int64)))
        if instance is not None:
            keep_it = inst == int(instance)
        else:
            if np.unique(inst).size > 1:
                raise ValueError(
                    f"The 'log' parameter of {where} spans instances {np.unique(inst).tolist()}; "
                    "pass 'instance' to pick one."
                )
            keep_it = np.ones(start.shape[0], dtype=bool)
        slot_f = start / slot_s
        slot = np.rint(slot_f).astype(np.int64)
        off_grid = keep_it & (np.abs(slot_f - slot) > 1e-6)
        if off_grid.any():
            i = int(np.flatnonzero(off_grid)[0])
            raise ValueError(
                f"The 'log' parameter of {where} must have iterations starting on the slot grid "
                f"(multiples of slot_s={slot_s}); iteration {i} starts at {start[i]!r}."
            )
        kept_slots = slot[keep_it]
        if np.unique(kept_slots).size != kept_slots.size:
            vals, counts = np.unique(kept_slots, return_counts=True)
            raise ValueError(
                f"The 'log' parameter of {where} has two iterations in slot "
                f"{int(vals[counts > 1][0])} of one instance."
            )
        counts = np.diff(offsets)
        entry_iter = np.repeat(np.arange(start.shape[0]), counts)
        keep_e = keep_it[entry_iter]
        e_req = req[keep_e]
        e_slot = slot[entry_iter[keep_e]]
        key = e_slot * (int(n_requests) + 1) + e_req
        if np.unique(key).size != key.size:
            vals, cnt = np.unique(key, return_counts=True)
            dup = int(vals[cnt > 1][0])
            raise ValueError(
                f"The 'log' parameter of {where} has request {dup % (int(n_requests) + 1)} twice "
                f"in the iteration of slot {dup // (int(n_requests) + 1)}."
            )
        return cls(
            n_requests=n_requests,
            request=e_req,
            slot=e_slot,
            prefill_tokens=np.asarray(log["prefill_tokens"], dtype=np.int64)[keep_e],
            output_token=np.asarray(log["output_token"], dtype=bool)[keep_e],
        )
