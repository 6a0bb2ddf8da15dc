"""The divided-rollout contract: a rollout scheduler that sends requests to instances a chunk at
a time, through a global KV pool (Seer, arXiv 2511.14617 §3.2-§3.3).

An RL rollout's requests wait in a global *request buffer*. Whenever the buffer or the instances
change (the batch is released, a chunk ends), the engine shows a scheduler a
:class:`DividedView` and the scheduler answers :class:`Chunks`: which waiting requests to run
now, on which instance, for how many more output tokens (the chunk's *budget*), and whether to
pull a request's KV from another instance first. A chunk ends when it has generated its budget or
the request ends; the request then returns to the buffer (its KV kept in the pool) until it is
dispatched again, possibly elsewhere. A scheduler that sends every request once with a budget of
its whole ``max_tokens`` is classic one-shot dispatch (veRL).

- :class:`DividedView`: the requests (group, prompt, tokens generated so far, done or in flight,
  the group's probe, where their KV was last), the groups' instances (where a sibling ran, so the
  shared prompt is cached there), and the instances' load and KV room.
- :class:`Chunks`: the answer; :func:`validate_chunks` its rules, called by the simulator and by
  :func:`schedlab.testing.check_divided` alike.

>>> import numpy as np
>>> v = DividedView.from_columns(input_tokens=[100, 100, 50], group_id=[0, 0, 1],
...     max_tokens=[1000, 1000, 1000], n_instances=2)
>>> c = Chunks(request=np.array([0, 2]), instance=np.array([1, 0]), budget=np.array([512, 512]))
>>> validate_chunks(v, c)
>>> v.kv_need_tokens(c).tolist()        # the chunks' largest KV: prompt + generated + budget
[612, 562]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract.dispatch import group_ranks

__all__ = ["Chunks", "DividedView", "InvalidChunks", "validate_chunks"]


def _col(a: Any, dtype: Any, name: str, n: int | None = None, ndim: int = 1) -> np.ndarray:
    arr = np.array(a, dtype=dtype, copy=True)
    if arr.ndim != ndim:
        raise ValueError(f"DividedView.{name} must be {ndim}-dimensional. Got shape {arr.shape}.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"DividedView.{name} has {arr.shape[0]} entries, expected {n}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class DividedView:
    """Read-only snapshot of a divided rollout when the scheduler is asked.

    Per request (length ``n``, in the batch's order): ``request_id``; ``group_id`` and
    ``group_index`` (its prompt, and the prompt's rank ``0..G-1`` by first appearance);
    ``input_tokens`` (the prompt); ``max_tokens`` (the generation limit, ``ori_max_tokens``);
    ``output_tokens_pred`` (a predictor's length, or the limit when there is none);
    ``generated_tokens`` so far; ``done`` (ended); ``in_flight`` (a chunk of it is running or on
    its way); ``is_probe`` (the group's speculative request, its first); ``last_instance`` (where
    its last chunk ran and its KV sits nearest, -1 before it ran); ``served_s`` (time its chunks
    have run so far).

    Per group (``G`` rows): ``group_on_instance[g, i]``, whether a request of group ``g`` has run
    on instance ``i`` (the group's prompt is cached there).

    Per instance (length ``k``): ``in_flight_requests``, ``slots_free`` (batch slots not taken by
    chunks in flight), ``kv_free_tokens`` (KV capacity less the largest KV of every chunk in
    flight; negative when over-committed), ``kv_capacity_tokens``.

    ``now_s`` and ``decision`` (how many times the scheduler was asked before: a counter for
    deriving a random generator without hidden state).
    """

    now_s: float
    decision: int
    request_id: np.ndarray
    group_id: np.ndarray
    group_index: np.ndarray
    input_tokens: np.ndarray
    max_tokens: np.ndarray
    output_tokens_pred: np.ndarray
    generated_tokens: np.ndarray
    done: np.ndarray
    in_flight: np.ndarray
    is_probe: np.ndarray
    last_instance: np.ndarray
    served_s: np.ndarray
    group_on_instance: np.ndarray
    in_flight_requests: np.ndarray
    slots_free: np.ndarray
    kv_free_tokens: np.ndarray
    kv_capacity_tokens: np.ndarray

    def __post_init__(self) -> None:
        n, k = self.n, self.n_instances
        for name in ("group_id", "group_index", "input_tokens", "max_tokens", "output_tokens_pred",
                     "generated_tokens", "done", "in_flight", "is_probe", "last_instance",
                     "served_s"):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f"DividedView.{name} has {getattr(self, name).shape[0]} entries, "
                                 f"expected {n}.")
        for name in ("slots_free", "kv_free_tokens", "kv_capacity_tokens"):
            if getattr(self, name).shape[0] != k:
                raise ValueError(f"DividedView.{name} has {getattr(self, name).shape[0]} entries, "
                                 f"expected {k}.")
        if self.group_on_instance.shape[1:] != (k,):
            raise ValueError(f"DividedView.group_on_instance must have {k} columns. Got shape "
                             f"{self.group_on_instance.shape}.")

    @property
    def n(self) -> int:
        """Number of requests."""
        return int(self.request_id.shape[0])

    @property
    def n_instances(self) -> int:
        """Number of instances ``k``."""
        return int(self.in_flight_requests.shape[0])

    @property
    def waiting(self) -> np.ndarray:
        """Positions of the requests in the buffer (not done, not in flight)."""
        return np.flatnonzero(~self.done & ~self.in_flight)

    def context_tokens(self, positions: Any = None) -> np.ndarray:
        """Prompt plus generated tokens of the requests at ``positions`` (all when None)."""
        if positions is None:
            return self.input_tokens + self.generated_tokens
        p = np.asarray(positions, dtype=np.int64)
        return self.input_tokens[p] + self.generated_tokens[p]

    def hit_tokens(self, position: int) -> np.ndarray:
        """Tokens of request ``position``'s context cached on each instance: all of it where its
        last chunk ran, the shared prompt where a sibling ran, else none [recon: Seer's cache
        affinity measures prefix hits; this is what an instance's cache holds under that
        model]."""
        r = int(position)
        hit = np.where(self.group_on_instance[self.group_index[r]], self.input_tokens[r], 0)
        last = int(self.last_instance[r])
        if last >= 0:
            hit[last] = self.input_tokens[r] + self.generated_tokens[r]
        return hit

    def kv_need_tokens(self, chunks: Chunks) -> np.ndarray:
        """The largest KV each chunk can reach: its context plus its budget."""
        return self.context_tokens(chunks.request) + chunks.budget

    @classmethod
    def from_columns(cls, *, input_tokens: Any, n_instances: int, **columns: Any) -> DividedView:
        """Build a view with defaults for everything not given (handy in tests): request ids
        ``0..n-1``, each request its own group, limits of 4,096 tokens, predictions equal to
        the limits, nothing generated, done or in flight, each group's first request its probe,
        nothing ran anywhere, batch slots 256 and KV room 10^9 per instance.

        >>> DividedView.from_columns(input_tokens=[5, 5], n_instances=3).waiting.tolist()
        [0, 1]
        """
        inp = _col(input_tokens, np.int64, "input_tokens")
        n, k = inp.shape[0], int(n_instances)
        gid = _col(columns.pop("group_id", np.arange(n)), np.int64, "group_id", n)
        first, gidx = group_ranks(gid)
        probe = np.zeros(n, dtype=bool)
        probe[first] = True
        mx = _col(columns.pop("max_tokens", np.full(n, 4096)), np.int64, "max_tokens", n)
        cap = _col(columns.pop("kv_capacity_tokens", np.full(k, 10**9)), np.int64,
                   "kv_capacity_tokens", k)
        inflight = _col(columns.pop("in_flight_requests", np.zeros(k)), np.int64,
                        "in_flight_requests", k)
        return cls(
            now_s=float(columns.pop("now_s", 0.0)),
            decision=int(columns.pop("decision", 0)),
            request_id=_col(columns.pop("request_id", np.arange(n)), np.int64, "request_id", n),
            group_id=gid, group_index=_col(gidx, np.int64, "group_index", n),
            input_tokens=inp, max_tokens=mx,
            output_tokens_pred=_col(columns.pop("output_tokens_pred", mx), np.float64,
                                    "output_tokens_pred", n),
            generated_tokens=_col(columns.pop("generated_tokens", np.zeros(n)), np.int64,
                                  "generated_tokens", n),
            done=_col(columns.pop("done", np.zeros(n)), bool, "done", n),
            in_flight=_col(columns.pop("in_flight", np.zeros(n)), bool, "in_flight", n),
            is_probe=_col(columns.pop("is_probe", probe), bool, "is_probe", n),
            last_instance=_col(columns.pop("last_instance", np.full(n, -1)), np.int64,
                               "last_instance", n),
            served_s=_col(columns.pop("served_s", np.zeros(n)), np.float64, "served_s", n),
            group_on_instance=_col(columns.pop("group_on_instance",
                                               np.zeros((first.shape[0], k))), bool,
                                   "group_on_instance", first.shape[0], ndim=2),
            in_flight_requests=inflight,
            slots_free=_col(columns.pop("slots_free", 256 - inflight), np.int64, "slots_free", k),
            kv_free_tokens=_col(columns.pop("kv_free_tokens", cap), np.int64, "kv_free_tokens",
                                k),
            kv_capacity_tokens=cap,
            **columns,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunks:
    """A scheduler's answer: run request ``request[j]`` (a buffer position) on
    ``instance[j]`` for at most ``budget[j]`` more output tokens, first pulling its KV from
    ``pull_from[j]`` (-1: no pull; its context's missing part is then computed again). Empty
    arrays: dispatch nothing now.

    >>> Chunks.none().request.shape
    (0,)
    """

    request: np.ndarray
    instance: np.ndarray
    budget: np.ndarray
    pull_from: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = np.asarray(self.request).shape[0] if np.ndim(self.request) == 1 else -1
        for name in ("request", "instance", "budget", "pull_from"):
            v = getattr(self, name)
            if v is None:
                v = np.full(max(m, 0), -1)
            a = np.array(v, copy=True)
            if a.ndim != 1 or a.shape[0] != m or (a.shape[0] and a.dtype.kind not in "iu"):
                raise ValueError(f"Chunks.{name} must be a one-dimensional integer array as long "
                                 f"as Chunks.request. Got dtype {a.dtype} and shape {a.shape}.")
            a = a.astype(np.int64)
            a.flags.writeable = False
            object.__setattr__(self, name, a)

    @classmethod
    def none(cls) -> Chunks:
        """Dispatch nothing now."""
        e = np.zeros(0, dtype=np.int64)
        return cls(request=e, instance=e, budget=e)


class InvalidChunks(ValueError):
    """An answer breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_chunks(view: DividedView, chunks: Chunks) -> None:
    """Check ``chunks`` against ``view``; raises :class:`InvalidChunks` naming the rule.

    Rules: each request at most once, in the buffer (not done, not in flight); instances in
    range; a budget from 1 to the request's tokens left under its limit; a pull from another
    instance than the chosen one. KV room is not a rule: a scheduler may over-commit an
    instance (as one-shot dispatch does), and the engine then preempts.

    >>> v = DividedView.from_columns(input_tokens=[10], n_instances=1, max_tokens=[100],
    ...                              generated_tokens=[90])
    >>> validate_chunks(v, Chunks(request=np.array([0]), instance=np.array([0]),
    ...                           budget=np.array([20])))
    Traceback (most recent call last):
    ...
    schedlab.contract.divided.InvalidChunks: budget out of range: request 0 has 10 tokens left ...
    """
    c = chunks
    assert c.pull_from is not None
    req = c.request
    if req.shape[0] == 0:
        return
    if ((req < 0) | (req >= view.n)).any():
        raise InvalidChunks("request out of range", f"requests must be in [0, {view.n})")
    if np.unique(req).shape[0] != req.shape[0]:
        raise InvalidChunks("request twice", "a request gets at most one chunk at a time")
    busy = req[view.done[req] | view.in_flight[req]]
    if busy.shape[0]:
        raise InvalidChunks("request not waiting",
                            f"request {int(busy[0])} is done or already in flight")
    k = view.n_instances
    bad = np.flatnonzero((c.instance < 0) | (c.instance >= k))
    if bad.shape[0]:
        raise InvalidChunks("instance out of range",
                            f"instance {int(c.instance[bad[0]])} not in [0, {k})")
    left = view.max_tokens[req] - view.generated_tokens[req]
    bad = np.flatnonzero((c.budget < 1) | (c.budget > left))
    if bad.shape[0]:
        j = int(bad[0])
        raise InvalidChunks("budget out of range",
                            f"request {int(req[j])} has {int(left[j])} tokens left under its "
                            f"limit, got a budget of {int(c.budget[j])}")
    pull = c.pull_from
    bad = np.flatnonzero((pull < -1) | (pull >= k) | (pull == c.instance))
    if bad.shape[0]:
        j = int(bad[0])
        raise InvalidChunks("malformed pull",
                            f"request {int(req[j])} pulls from {int(pull[j])} onto "
                            f"{int(c.instance[j])}")
