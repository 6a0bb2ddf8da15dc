"""The dispatch optimum for an RL rollout batch (StreamRL skew-aware dispatch, arXiv 2504.15930;
rollout digest §2.8 "Dispatch optimum"; Seer digest §1.9a): :class:`RolloutDispatchProblem`,
:class:`RolloutDispatchSchedule`, :func:`verify_rollout_dispatch`, :func:`dispatch_lower_bound`,
:func:`lpt_dispatch` and :func:`solve_rollout_dispatch_cpsat`.

The model, a reconstruction [R] (the papers give a latency formula, not a dispatch model): a batch
of ``n`` rollout samples with true output lengths ``L_s`` (tokens, >= 1), optionally in groups
(the G samples of one prompt), is dispatched once to ``N`` identical inference instances, each
running continuous batching with at most ``B`` samples at a time. A decode step of batch ``b``
costs ``PTL(b) = a + c*b`` seconds (``a = ptl_base_s``, ``c = ptl_per_request_s``), so an
instance holding the set ``S`` spends ``a * steps + c * sum_S L`` seconds, where its number of
decode steps is at least ``max(max_S L, ceil(sum_S L / B))``. The surrogate takes exactly that
fluid bound::

    T_m = a * max(max_{s in S_m} L_s, sum_{S_m} L / B) + c * sum_{S_m} L      (0 when S_m is empty)
    makespan C = max_m T_m

With ``group_atomic`` every group goes to one instance, as StreamRL dispatches whole prompts.
With ``B = 1`` the problem is P||Cmax with processing times ``(a + c) * L_s``, where Graham's LPT
is within ``4/3 - 1/(3N)`` of the optimum (the bound StreamRL's in-instance LPT cites). The
surrogate ignores KV capacity, prefill and the rounding of the step count, so its optimum is a
bound-like yardstick for dispatch heuristics on the same record, not a simulated makespan.

The CP-SAT model (:func:`solve_rollout_dispatch_cpsat`), in labelled stages:

1. **Items.** Samples, or whole groups with ``group_atomic``; item ``i`` has token sum ``W_i``
   and longest sample ``H_i``, sorted by their own surrogate time, longest first.
2. **Integer time.** ``B * T_m = a * P_m + c*B * S_m`` with ``S_m = sum W_i x[i,m]`` and
   ``P_m = max(B * max H_i x[i,m], S_m)``, both integer token counts. The two weights become the
   integers ``wa = floor(a * K)`` and ``wc = floor(c * B * K)`` for a power of two ``K`` that
   puts the larger weight in ``[2**23, 2**24)``, lowered only if the horizon
   ``wa * P_max + wc * S_max`` would pass ``2**52``. One model unit is ``1 / (K * B)`` seconds
   (``stats["resolution_s"]``). Flooring makes the model's makespan a lower bound of the true
   one, so CP-SAT's bound, converted back and rounded down, is a valid bound in seconds; the
   reported objective is always :func:`dispatch_makespan` of the schedule, exactly. An
   ``OPTIMAL`` status means optimal at that resolution: flooring loses at most one unit per
   token of ``P_m + S_m``, so the true objective exceeds the true optimum by at most
   ``2**-22`` relative where ``a`` dominates, ``(B + 1) * 2**-23`` where ``c * B`` does.
3. **Constraints.** ``x[i,m]`` boolean, exactly one instance per item; ``P_m >= S_m``,
   ``P_m >= B * H_i * x[i,m]``; ``z >= wa * P_m + wc * S_m``; ``z`` at least the cheap bound.
   Identical instances: they are labelled in the order of their first item (item ``i`` may open
   instance ``m`` only if instance ``m-1`` holds an earlier item), and identical items (same
   ``W``, ``H``) take non-decreasing instance labels. Both keep one optimum of every class.
4. **Objective.** Minimise ``z``, at most the LPT greedy's value, with the LPT schedule as the
   hint; a time-limited answer is never worse than LPT.
5. **Bound.** The reported bound is the largest of CP-SAT's, the cheap one and a load-split
   bound (``_split_bound``: where many samples are long, every instance holding one pays its
   full length in steps plus its share of the per-request term). The split bound is kept out
   of the model, where it slowed the search; when it already meets the hint's value the hint
   is returned as optimal without a search.

>>> p = RolloutDispatchProblem(output_tokens=[900, 500, 400, 300, 200, 100], n_instances=2,
...                            max_batch_size=1, ptl_base_s=0.01, ptl_per_request_s=0.0)
>>> r = solve_rollout_dispatch_cpsat(p, time_limit_s=5)
>>> r.status, round(r.objective, 6), verify_rollout_dispatch(p, r.schedule).valid
('OPTIMAL', 12.0, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.errors import (
    check_array,
    check_instance,
    check_nonneg_float,
    check_positive_int,
)
from schedlab.solvers.iteration_verify import ScheduleInvalid
from schedlab.solvers.result import SolveResult, check_solve_arguments, run_cpsat

__all__ = [
    "RolloutDispatchProblem",
    "RolloutDispatchSchedule",
    "RolloutDispatchCheck",
    "instance_times",
    "dispatch_makespan",
    "verify_rollout_dispatch",
    "dispatch_lower_bound",
    "lpt_dispatch",
    "solve_rollout_dispatch_cpsat",
    "random_rollout_dispatch_problem",
]

_WHERE = "RolloutDispatchProblem"
#: Bits of resolution of the larger integer weight, and the largest model value (see stage 2).
_WEIGHT_BITS = 24
_HORIZON = 2**52


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutDispatchProblem:
    """One rollout batch to dispatch (see the module docstring for the surrogate).

    ``output_tokens``: true output length of each sample (int >= 1); ``group_id``: its group
    (prompt), int >= 0, or ``None``; ``n_instances`` identical instances, each batching at most
    ``max_batch_size`` samples; per-token latency ``ptl_base_s + ptl_per_request_s * batch``
    (both >= 0, not both 0); ``group_atomic``: every group on one instance (needs
    ``group_id``). Arrays are stored as read-only copies.

    >>> p = RolloutDispatchProblem(output_tokens=[300, 100, 100], group_id=[0, 0, 1],
    ...     n_instances=2, max_batch_size=8, ptl_base_s=0.02, ptl_per_request_s=1e-4,
    ...     group_atomic=True)
    >>> p.n, p.n_groups, p.output_tokens.flags.writeable
    (3, 2, False)
    >>> RolloutDispatchProblem(output_tokens=[0], n_instances=1, max_batch_size=1,
    ...                        ptl_base_s=1.0, ptl_per_request_s=0.0)
    Traceback (most recent call last):
    ...
    ValueError: The 'output_tokens' parameter of RolloutDispatchProblem must be >= 1; ...
    """

    output_tokens: np.ndarray
    n_instances: int
    max_batch_size: int
    ptl_base_s: float
    ptl_per_request_s: float
    group_id: np.ndarray | None = None
    group_atomic: bool = False

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        tokens = check_array(self.output_tokens, "output_tokens", _WHERE, dtype=np.int64,
                             integer=True, min_value=1)
        if tokens.size == 0:
            raise ValueError(f"The 'output_tokens' parameter of {_WHERE} must hold at least one "
                             "sample. Got an empty array.")
        set_(self, "output_tokens", tokens)
        set_(self, "n_instances", check_positive_int(self.n_instances, "n_instances", _WHERE))
        set_(self, "max_batch_size",
             check_positive_int(self.max_batch_size, "max_batch_size", _WHERE))
        a = check_nonneg_float(self.ptl_base_s, "ptl_base_s", _WHERE)
        c = check_nonneg_float(self.ptl_per_request_s, "ptl_per_request_s", _WHERE)
        if a == 0 and c == 0:
            raise ValueError(f"The 'ptl_base_s' and 'ptl_per_request_s' parameters of {_WHERE} "
                             "must not both be 0. Got 0.0 and 0.0 instead.")
        set_(self, "ptl_base_s", a)
        set_(self, "ptl_per_request_s", c)
        if self.group_id is not None:
            set_(self, "group_id", check_array(self.group_id, "group_id", _WHERE, dtype=np.int64,
                                               integer=True, min_value=0, length=tokens.size))
        if not isinstance(self.group_atomic, (bool, np.bool_)):
            raise ValueError(f"The 'group_atomic' parameter of {_WHERE} must be a bool. "
                             f"Got {self.group_atomic!r} instead.")
        set_(self, "group_atomic", bool(self.group_atomic))
        if self.group_atomic and self.group_id is None:
            raise ValueError(f"The 'group_atomic' parameter of {_WHERE} is True, which needs "
                             "'group_id'. Got group_id=None instead.")

    @property
    def n(self) -> int:
        """Samples in the batch."""
        return int(self.output_tokens.shape[0])

    @property
    def n_groups(self) -> int:
        """Distinct groups (each sample its own group without ``group_id``)."""
        return self.n if self.group_id is None else int(np.unique(self.group_id).size)

    def step_latency_s(self, batch: int) -> float:
        """``PTL(batch) = ptl_base_s + ptl_per_request_s * batch``.

        >>> RolloutDispatchProblem(output_tokens=[1], n_instances=1, max_batch_size=4,
        ...     ptl_base_s=0.02, ptl_per_request_s=0.001).step_latency_s(4)
        0.024
        """
        return self.ptl_base_s + self.ptl_per_request_s * batch


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutDispatchSchedule:
    """Where each sample goes: ``instance[s]`` in ``[0, n_instances)`` (-1: not dispatched).
    Any integers are accepted here; :func:`verify_rollout_dispatch` judges them.

    >>> s = RolloutDispatchSchedule(instance=[1, 0, 1])
    >>> s.instance.tolist(), [b.tolist() for b in s.batches(2)]
    ([1, 0, 1], [[1], [0, 2]])
    """

    instance: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "instance", check_array(
            self.instance, "instance", "RolloutDispatchSchedule", dtype=np.int64, integer=True))

    def batches(self, n_instances: int) -> list[np.ndarray]:
        """The samples of each instance, in index order (the form a dispatch policy returns)."""
        n_instances = check_positive_int(n_instances, "n_instances", "batches")
        return [np.flatnonzero(self.instance == m) for m in range(n_instances)]


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutDispatchCheck:
    """What :func:`verify_rollout_dispatch` found: the violations (empty when ``valid``) and the
    surrogate time of each instance and the makespan, in seconds, for the assignments as given
    (a sample on two instances counts on both; an out-of-range one on none).

    >>> p = RolloutDispatchProblem(output_tokens=[2, 2], n_instances=2, max_batch_size=1,
    ...                            ptl_base_s=1.0, ptl_per_request_s=0.0)
    >>> c = verify_rollout_dispatch(p, RolloutDispatchSchedule(instance=[0, 0]))
    >>> c.valid, c.makespan_s, c.instance_s.tolist()
    (True, 4.0, [4.0, 0.0])
    """

    violations: list[str]
    makespan_s: float
    instance_s: np.ndarray

    @property
    def valid(self) -> bool:
        """No violation."""
        return not self.violations

    def raise_if_invalid(self) -> RolloutDispatchCheck:
        """Return ``self``, or raise :class:`~schedlab.solvers.ScheduleInvalid` listing the
        violations.

        >>> p = RolloutDispatchProblem(output_tokens=[2], n_instances=1, max_batch_size=1,
        ...                            ptl_base_s=1.0, ptl_per_request_s=0.0)
        >>> verify_rollout_dispatch(p, RolloutDispatchSchedule(instance=[3])).raise_if_invalid()
        Traceback (most recent call last):
        ...
        schedlab.solvers.iteration_verify.ScheduleInvalid: Rollout dispatch breaks ...
        """
        if self.violations:
            raise ScheduleInvalid("Rollout dispatch breaks the problem's rules:\n" + "\n".join(
                f"  {v}" for v in self.violations[:10]))
        return self


def _times(problem: RolloutDispatchProblem, sums: np.ndarray, longest: np.ndarray) -> np.ndarray:
    """``T_m`` from each instance's token sum and longest sample (integer arrays)."""
    s = sums.astype(np.float64)
    steps = np.maximum(longest.astype(np.float64), s / problem.max_batch_size)
    return problem.ptl_base_s * steps + problem.ptl_per_request_s * s


def _loads(problem: RolloutDispatchProblem, samples: np.ndarray,
           instance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token sum and longest sample per instance of ``samples`` placed on ``instance``."""
    sums = np.zeros(problem.n_instances, dtype=np.int64)
    longest = np.zeros(problem.n_instances, dtype=np.int64)
    tokens = problem.output_tokens[samples]
    np.add.at(sums, instance, tokens)
    np.maximum.at(longest, instance, tokens)
    return sums, longest


def instance_times(problem: RolloutDispatchProblem,
                   instance: np.ndarray | Sequence[int] | RolloutDispatchSchedule) -> np.ndarray:
    """The surrogate time ``T_m`` (seconds) of every instance under a complete dispatch
    ``instance`` (one instance per sample, or a :class:`RolloutDispatchSchedule`).

    Raises ``ValueError`` for a wrong length or an instance outside ``[0, n_instances)``; use
    :func:`verify_rollout_dispatch` to judge a schedule that may be broken.

    >>> p = RolloutDispatchProblem(output_tokens=[4, 2, 2, 3], n_instances=2, max_batch_size=2,
    ...                            ptl_base_s=1.0, ptl_per_request_s=0.5)
    >>> instance_times(p, [0, 0, 0, 1]).tolist()   # 1*max(4, 8/2) + 0.5*8;  1*max(3, 3/2) + 0.5*3
    [8.0, 4.5]
    """
    where = "instance_times"
    check_instance(problem, RolloutDispatchProblem, "problem", where)
    if isinstance(instance, RolloutDispatchSchedule):
        instance = instance.instance
    inst = check_array(instance, "instance", where, dtype=np.int64, integer=True, min_value=0,
                       max_value=problem.n_instances - 1, length=problem.n)
    return _times(problem, *_loads(problem, np.arange(problem.n), inst))


def dispatch_makespan(problem: RolloutDispatchProblem,
                      instance: np.ndarray | Sequence[int] | RolloutDispatchSchedule) -> float:
    """The surrogate makespan ``max_m T_m`` in seconds (see :func:`instance_times`).

    >>> p = RolloutDispatchProblem(output_tokens=[4, 2, 2, 3], n_instances=2, max_batch_size=2,
    ...                            ptl_base_s=1.0, ptl_per_request_s=0.5)
    >>> dispatch_makespan(p, [0, 1, 1, 0])
    7.5
    """
    return float(instance_times(problem, instance).max())


def verify_rollout_dispatch(
    problem: RolloutDispatchProblem,
    schedule: RolloutDispatchSchedule | Sequence[Sequence[int] | np.ndarray],
) -> RolloutDispatchCheck:
    """Check a dispatch against the problem's rules: every sample on exactly one instance in
    ``[0, n_instances)``, and with ``group_atomic`` every group on one instance.

    ``schedule`` is a :class:`RolloutDispatchSchedule` (one entry per sample) or, as a dispatch
    policy returns it, a sequence of ``n_instances`` arrays of sample indices (one per instance),
    where a sample can also be missing or appear twice. A broken schedule is reported, never
    raised; a schedule of the wrong type or length raises ``ValueError``.

    >>> p = RolloutDispatchProblem(output_tokens=[3, 1, 1], group_id=[0, 0, 1], n_instances=2,
    ...     max_batch_size=1, ptl_base_s=1.0, ptl_per_request_s=0.0, group_atomic=True)
    >>> verify_rollout_dispatch(p, [[0, 1], [0]]).violations
    ['sample 2 is on no instance', 'sample 0 is listed 2 times, on instances [0, 1]',
     'group 0 is split across instances [0, 1]']
    >>> verify_rollout_dispatch(p, RolloutDispatchSchedule(instance=[0, 0, -1])).violations
    ['sample 2 is on no instance (instance -1 is not in [0, 2))']
    """
    where = "verify_rollout_dispatch"
    check_instance(problem, RolloutDispatchProblem, "problem", where)
    n, N = problem.n, problem.n_instances
    violations: list[str] = []
    if isinstance(schedule, RolloutDispatchSchedule):
        inst = schedule.instance
        if inst.shape != (n,):
            raise ValueError(f"The 'schedule' parameter of {where} must have one instance per "
                             f"sample ({n}). Got {inst.shape[0]} entries.")
        ok = (inst >= 0) & (inst < N)
        for s in np.flatnonzero(~ok).tolist():
            violations.append(f"sample {s} is on no instance (instance {int(inst[s])} is not "
                              f"in [0, {N}))")
        samples, placed = np.flatnonzero(ok), inst[ok]
    elif isinstance(schedule, Sequence) and not isinstance(schedule, (str, bytes)):
        if len(schedule) != N:
            raise ValueError(f"The 'schedule' parameter of {where} must list the samples of each "
                             f"of the {N} instances. Got {len(schedule)} lists.")
        parts = [check_array(b, f"schedule[{m}]", where, dtype=np.int64, integer=True)
                 for m, b in enumerate(schedule)]
        samples = np.concatenate(parts) if parts else np.zeros(0, np.int64)
        placed = np.repeat(np.arange(N, dtype=np.int64), [b.size for b in parts])
        ok = (samples >= 0) & (samples < n)
        for s, m in zip(samples[~ok].tolist(), placed[~ok].tolist(), strict=True):
            violations.append(f"instance {m} lists sample {s}, not in [0, {n})")
        samples, placed = samples[ok], placed[ok]
        count = np.bincount(samples, minlength=n)
        for s in np.flatnonzero(count == 0).tolist():
            violations.append(f"sample {s} is on no instance")
        for s in np.flatnonzero(count > 1).tolist():
            twice = sorted(placed[samples == s].tolist())
            violations.append(f"sample {s} is listed {int(count[s])} times, on instances {twice}")
    else:
        raise ValueError(f"The 'schedule' parameter of {where} must be a "
                         "RolloutDispatchSchedule or a sequence of per-instance sample arrays. "
                         f"Got {type(schedule).__name__} instead.")
    if problem.group_atomic and problem.group_id is not None:
        g = problem.group_id[samples]
        for gid in np.unique(g).tolist():
            on = np.unique(placed[g == gid])
            if on.size > 1:
                violations.append(f"group {gid} is split across instances {on.tolist()}")
    times = _times(problem, *_loads(problem, samples, placed))
    times.flags.writeable = False
    return RolloutDispatchCheck(violations=violations, makespan_s=float(times.max()),
                                instance_s=times)


def _items(problem: RolloutDispatchProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(item of each sample, token sum W, longest sample H)``: the units the dispatch moves,
    samples, or groups with ``group_atomic``."""
    if problem.group_atomic and problem.group_id is not None:
        _, item = np.unique(problem.group_id, return_inverse=True)
        item = item.astype(np.int64).ravel()
        k = int(item.max()) + 1
        w = np.zeros(k, np.int64)
        h = np.zeros(k, np.int64)
        np.add.at(w, item, problem.output_tokens)
        np.maximum.at(h, item, problem.output_tokens)
        return item, w, h
    t = problem.output_tokens
    return np.arange(problem.n, dtype=np.int64), t.copy(), t.copy()


def dispatch_lower_bound(problem: RolloutDispatchProblem) -> float:
    """The cheap lower bound on the optimal makespan, in seconds:
    ``max(max_i T(item i alone), (a * sum L / B + c * sum L) / N)``, an item being a sample
    (``T = (a + c) * L``) or, with ``group_atomic``, a whole group (its own surrogate time).

    Valid because ``T_m`` only grows when samples are added to an instance, so the instance
    holding an item takes at least that item's time alone; and ``T_m >= a * sum_m L / B + c *
    sum_m L``, whose sum over the instances is the total term, so the largest ``T_m`` is at least
    the mean.

    >>> p = RolloutDispatchProblem(output_tokens=[900, 500, 400, 300, 200], n_instances=2,
    ...                            max_batch_size=1, ptl_base_s=0.01, ptl_per_request_s=0.0)
    >>> round(dispatch_lower_bound(p), 6)   # (2300 tokens * 0.01 s) / 2
    11.5
    """
    check_instance(problem, RolloutDispatchProblem, "problem", "dispatch_lower_bound")
    _, w, h = _items(problem)
    item = float(_times(problem, w, h).max())
    total = float(w.sum())
    a, c, B = problem.ptl_base_s, problem.ptl_per_request_s, problem.max_batch_size
    return max(item, (a * total / B + c * total) / problem.n_instances)


def _lpt_items(problem: RolloutDispatchProblem, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """LPT over items: longest own surrogate time first, each to the instance whose time after
    adding it is least (lowest index on ties)."""
    N = problem.n_instances
    sums = np.zeros(N, np.int64)
    longest = np.zeros(N, np.int64)
    out = np.empty(w.size, np.int64)
    for i in _item_order(problem, w, h).tolist():
        after = _times(problem, sums + w[i], np.maximum(longest, h[i]))
        m = int(np.argmin(after))
        out[i] = m
        sums[m] += w[i]
        longest[m] = max(longest[m], h[i])
    return out


def _item_order(problem: RolloutDispatchProblem, w: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Items by own surrogate time, then token sum, then longest sample, all descending, then
    index: identical items end up adjacent."""
    own = _times(problem, w, h)
    return np.lexsort((np.arange(w.size), -h, -w, -own))


def lpt_dispatch(problem: RolloutDispatchProblem) -> RolloutDispatchSchedule:
    """Graham's longest-processing-time greedy on the surrogate: items (samples, or groups with
    ``group_atomic``) longest first, each to the instance whose time after adding it is least.
    The solver's starting point and hint, with full knowledge of the lengths (an oracle
    heuristic, not a policy); with ``max_batch_size=1`` it is classical LPT, within
    ``4/3 - 1/(3N)`` of the optimum.

    >>> p = RolloutDispatchProblem(output_tokens=[3, 3, 2, 2, 2], n_instances=2,
    ...                            max_batch_size=1, ptl_base_s=1.0, ptl_per_request_s=0.0)
    >>> s = lpt_dispatch(p)
    >>> s.instance.tolist(), dispatch_makespan(p, s)   # the optimum is 6: [3, 3] and [2, 2, 2]
    ([0, 1, 0, 1, 0], 7.0)
    """
    check_instance(problem, RolloutDispatchProblem, "problem", "lpt_dispatch")
    item, w, h = _items(problem)
    return RolloutDispatchSchedule(instance=_lpt_items(problem, w, h)[item])


def _canonical(item_instance: np.ndarray, order: np.ndarray, same_as_prev: np.ndarray,
               n_instances: int) -> np.ndarray:
    """Relabel an item -> instance map (positions in ``order``) to satisfy the model's symmetry
    breaking: instances numbered by their first item, identical items non-decreasing."""
    pos = item_instance[order]
    label = np.full(n_instances, -1, np.int64)
    nxt = 0
    for m in pos.tolist():
        if label[m] < 0:
            label[m] = nxt
            nxt += 1
    pos = label[pos]
    start = 0
    k = pos.size
    while start < k:  # sort each run of identical items
        end = start + 1
        while end < k and same_as_prev[end]:
            end += 1
        pos[start:end] = np.sort(pos[start:end])
        start = end
    return pos


def _scale(problem: RolloutDispatchProblem, w: np.ndarray,
           h: np.ndarray) -> tuple[int, int, int, float]:
    """``(wa, wc, exp, K * B)``: the integer weights, the exponent of ``K = 2**exp`` (module
    stage 2) and the model units per second."""
    a, c, B = problem.ptl_base_s, problem.ptl_per_request_s, problem.max_batch_size
    exp = min(_WEIGHT_BITS - math.frexp(max(a, c * B))[1], 1000)  # larger weight in [2**23, 2**24)
    s_max = int(w.sum())
    p_max = max(B * int(h.max()), s_max)
    while True:
        K = math.ldexp(1.0, exp)
        wa, wc = math.floor(a * K), math.floor(c * B * K)
        if wa * p_max + wc * s_max <= _HORIZON or max(wa, wc) <= 1:
            if max(wa, wc) == 0:
                raise ValueError("The 'ptl_base_s' and 'ptl_per_request_s' parameters of "
                                 "solve_rollout_dispatch_cpsat are too small to put on an "
                                 f"integer grid. Got {a!r} and {c!r}; scale the times up.")
            return wa, wc, exp, K * B
        exp -= 1


def _int_time(wa: int, wc: int, B: int, sums: np.ndarray, longest: np.ndarray) -> int:
    """The model's makespan (integer units) of instances with these sums and longest items."""
    return max((wa * max(B * int(hh), int(s)) + wc * int(s)
                for s, hh in zip(sums.tolist(), longest.tolist(), strict=True)), default=0)


def _split_bound(wa: int, wc: int, B: int, N: int, w: np.ndarray, h: np.ndarray) -> int:
    """A lower bound on the model's makespan (integer units) stronger than the cheap one when
    many items are long. For a threshold ``H``, let ``r`` instances hold the items whose longest
    sample is >= ``H`` (tokens ``W_H``), with ``W' >= W_H`` tokens in all: one of them takes at
    least ``wa*B*H + wc*W'/r`` and ``(wa + wc)*W'/r``, and one of the other ``N - r`` at least
    ``(wa + wc)*(S - W')/(N - r)``. The least of that over ``r`` and ``W'``, for the best ``H``,
    bounds every dispatch (rounded down with a 1e-9 margin for the float arithmetic)."""
    d = float(wa + wc)
    if d == 0:
        return 0
    S = float(w.sum())
    by_h = np.argsort(-h, kind="stable")
    hs, cum = h[by_h].astype(np.float64), np.cumsum(w[by_h]).astype(np.float64)
    last = np.flatnonzero(np.append(hs[1:] != hs[:-1], True))  # last item of each distinct H
    best = 0.0
    for i in last.tolist():
        H, W_H, K = hs[i], cum[i], i + 1
        A = wa * B * H
        r = np.arange(1, min(K, N) + 1, dtype=np.float64)
        rest = np.maximum(N - r, 1.0)  # r == N is handled below (no other instance)
        w1 = (d * S / rest - A) / (wc / r + d / rest)
        wst = np.clip(np.minimum(w1, S * r / N), W_H, S)
        v = np.maximum.reduce([A + wc * wst / r, d * wst / r,
                               np.where(r < N, d * (S - wst) / rest, 0.0)])
        v = np.where(r < N, v, np.maximum(A + wc * S / N, d * S / N))
        best = max(best, float(v.min()))
    return math.floor(best * (1 - 1e-9))


def solve_rollout_dispatch_cpsat(
    problem: RolloutDispatchProblem,
    *,
    time_limit_s: float = 10.0,
    num_workers: int = 2,
    hint: RolloutDispatchSchedule | bool | None = None,
    seed: int = 0,
) -> SolveResult:
    """The minimum-makespan dispatch of ``problem`` with CP-SAT (model in the module docstring)
    within ``time_limit_s`` (the whole call, model building included), on ``num_workers`` threads.

    ``hint``: ``None`` or ``True`` starts from :func:`lpt_dispatch`, ``False`` gives CP-SAT no
    hint (LPT's value still caps ``z``), a :class:`RolloutDispatchSchedule` starts from that
    schedule (it must pass :func:`verify_rollout_dispatch`). A solution always comes back:
    status ``OPTIMAL`` or ``FEASIBLE`` (the better of the hint and LPT when CP-SAT found
    nothing in time); ``objective`` is
    :func:`dispatch_makespan` of ``schedule`` (a :class:`RolloutDispatchSchedule`) in seconds,
    ``bound`` a proven lower bound on the true optimum (never below
    :func:`dispatch_lower_bound`'s integer twin), ``gap`` the relative difference. ``stats``:
    ``n_variables``, ``n_constraints``, ``branches``, ``solver_wall_s``, ``items``,
    ``resolution_s`` (one model unit), ``weight_exponent``, ``hint_makespan_s`` (LPT's),
    ``split_bound_s`` (module stage 5) and ``cpsat_status`` (``"not run"`` when a bound proved
    the start optimal).

    >>> p = random_rollout_dispatch_problem(24, 3, seed=0)
    >>> r = solve_rollout_dispatch_cpsat(p, time_limit_s=10)
    >>> r.status, r.bound <= r.objective <= r.stats["hint_makespan_s"]
    ('OPTIMAL', True)
    """
    t0 = time.perf_counter()
    where = "solve_rollout_dispatch_cpsat"
    time_limit_s, num_workers = check_solve_arguments(
        where, problem, RolloutDispatchProblem, time_limit_s, num_workers, hint,
        RolloutDispatchSchedule, verify_rollout_dispatch)
    from ortools.sat.python import cp_model

    pr = problem
    N, B = pr.n_instances, pr.max_batch_size
    item, w, h = _items(pr)
    k = int(w.size)
    order = _item_order(pr, w, h)
    wo, ho = w[order], h[order]
    same = np.zeros(k, dtype=bool)
    same[1:] = (wo[1:] == wo[:-1]) & (ho[1:] == ho[:-1])
    wa, wc, exp, units_per_s = _scale(pr, w, h)

    lpt_items = _lpt_items(pr, w, h)
    lpt = RolloutDispatchSchedule(instance=lpt_items[item])
    lpt_s = dispatch_makespan(pr, lpt)
    starts = [lpt_items]  # item -> instance; the first is the hint, the best sets z's top
    if isinstance(hint, RolloutDispatchSchedule):
        given = np.zeros(k, np.int64)
        given[item] = hint.instance
        starts.insert(0, given)
    start_pos = _canonical(starts[0], order, same, N)  # instance of the j-th item in order
    s_start, l_start = np.zeros(N, np.int64), np.zeros(N, np.int64)
    np.add.at(s_start, start_pos, wo)
    np.maximum.at(l_start, start_pos, ho)
    values = [_int_time(wa, wc, B, *_item_loads(N, st, w, h)) for st in starts]
    ub, best_start = min(values), starts[int(np.argmin(values))]
    s_tot = int(w.sum())
    lb = max(max(wa * max(B * int(hh), int(ww)) + wc * int(ww)
                 for ww, hh in zip(w.tolist(), h.tolist(), strict=True)),
             -(-(wa + wc) * s_tot // N))
    split = _split_bound(wa, wc, B, N, w, h)  # reported; not in the model (it slows the search)
    ub = max(ub, lb)

    # Variables: x[j][m] for the j-th item in order, on instances m <= j only (canonical labels).
    m_ = cp_model.CpModel()
    x = [[m_.new_bool_var(f"x{j}_{m}") for m in range(min(j + 1, N))] for j in range(k)]
    p_max = max(B * int(h.max()), s_tot)
    S = [m_.new_int_var(0, s_tot, f"S{m}") for m in range(N)]
    P = [m_.new_int_var(0, p_max, f"P{m}") for m in range(N)]
    z = m_.new_int_var(lb, ub, "z")
    # Constraints: one instance per item; per-instance load, longest item, time; symmetry.
    for j in range(k):
        m_.add_exactly_one(x[j])
    for m in range(N):
        on = [(j, x[j][m]) for j in range(m, k)]
        m_.add(S[m] == sum(int(wo[j]) * v for j, v in on))
        m_.add(P[m] >= S[m])
        for j, v in on:
            if B * int(ho[j]) > int(wo[j]):  # else implied by P >= S
                m_.add(P[m] >= B * int(ho[j]) * v)
        m_.add(z >= wa * P[m] + wc * S[m])
    # Instance m may take item j only if instance m-1 holds an earlier item; opened[m] is "some
    # item so far is on m" (instance 0 always holds item 0; the last instance opens nothing).
    opened: list[Any] = [None] * N
    for j in range(1, k):
        for m in range(2, min(j + 1, N)):
            m_.add_implication(x[j][m], opened[m - 1])
        for m in range(1, min(j, N - 2) + 1):
            if opened[m] is None:
                opened[m] = x[j][m]
            else:
                o = m_.new_bool_var(f"o{j}_{m}")
                m_.add_max_equality(o, [opened[m], x[j][m]])
                opened[m] = o
    for j in range(1, k):
        if same[j]:
            m_.add(sum(m * v for m, v in enumerate(x[j - 1]))
                   <= sum(m * v for m, v in enumerate(x[j])))
    # Objective, with the start schedule as the hint.
    m_.minimize(z)
    if hint is not False:
        for j in range(k):
            for m, v in enumerate(x[j]):
                m_.add_hint(v, int(start_pos[j]) == m)
        for m in range(N):
            m_.add_hint(S[m], int(s_start[m]))
            m_.add_hint(P[m], max(B * int(l_start[m]), int(s_start[m])))
        m_.add_hint(z, values[0])

    stats: dict[str, Any] = {
        "n_variables": len(m_.proto.variables), "n_constraints": len(m_.proto.constraints),
        "branches": 0, "solver_wall_s": 0.0, "items": k, "resolution_s": 1.0 / units_per_s,
        "weight_exponent": exp, "hint_makespan_s": lpt_s, "cpsat_status": "not run",
    }
    bound_units = max(lb, split)
    best_items, best_units = best_start, ub
    if hint is False or bound_units < ub:  # else the start is optimal already: no search
        solver, code = run_cpsat(m_, time_left_s=time_limit_s - (time.perf_counter() - t0),
                                 num_workers=num_workers, seed=seed)
        stats.update(branches=int(solver.num_branches), solver_wall_s=float(solver.wall_time),
                     cpsat_status=solver.status_name(code))
        if code in (cp_model.OPTIMAL, cp_model.FEASIBLE):
            pos = np.array([next(m for m, v in enumerate(x[j]) if solver.boolean_value(v))
                            for j in range(k)], dtype=np.int64)
            best_items = np.empty(k, np.int64)
            best_items[order] = pos
            best_units = _int_time(wa, wc, B, *_item_loads(N, best_items, w, h))
            bound_units = max(bound_units, math.floor(solver.best_objective_bound))
            if code == cp_model.OPTIMAL:
                bound_units = max(bound_units, best_units)
    schedule = RolloutDispatchSchedule(instance=best_items[item])
    objective = dispatch_makespan(pr, schedule)
    if lpt_s < objective:  # rounding of the weights can hide a hair's difference
        schedule, objective = lpt, lpt_s
    status = "OPTIMAL" if bound_units >= best_units else "FEASIBLE"
    bound = min(_down(bound_units / units_per_s), objective)
    stats["split_bound_s"] = _down(split / units_per_s)
    return SolveResult(status=status, objective=objective, bound=bound,
                       wall_s=time.perf_counter() - t0, schedule=schedule, stats=stats)


def _item_loads(n_instances: int, item_instance: np.ndarray, w: np.ndarray,
                h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Token sum and longest sample per instance of items placed on ``item_instance``."""
    sums, longest = np.zeros(n_instances, np.int64), np.zeros(n_instances, np.int64)
    np.add.at(sums, item_instance, w)
    np.maximum.at(longest, item_instance, h)
    return sums, longest


def _down(x: float) -> float:
    """``x`` rounded one float down (undoes a division's rounding up, keeping a bound valid)."""
    return math.nextafter(x, -math.inf) if x > 0 else x


def random_rollout_dispatch_problem(
    n: int,
    n_instances: int,
    *,
    seed: int | np.random.Generator,
    groups: int | None = None,
    max_batch_size: int = 32,
    max_tokens: int = 8192,
    ptl_base_s: float = 0.02,
    ptl_per_request_s: float = 2e-4,
    group_atomic: bool = False,
) -> RolloutDispatchProblem:
    """A random rollout batch of ``n`` samples for ``n_instances`` instances: heavy-tailed
    (log-normal, truncated at ``max_tokens``, ~5% truncated, the longest 10% holding about half
    the tokens) lengths from :func:`schedlab.datasets.rollout_batch`; with ``groups``, that many
    prompts of ``n // groups`` samples each (``n`` must be a multiple), their lengths correlated
    within a group. PTL defaults [R]: 20 ms per step plus 0.2 ms per batched sample, about a 7B
    model's decode on one H800-class GPU.

    >>> p = random_rollout_dispatch_problem(16, 2, seed=0, groups=4, group_atomic=True)
    >>> p.n, p.n_groups, int(p.output_tokens.min()) >= 64, p.group_atomic
    (16, 4, True, True)
    """
    from schedlab.datasets import rollout_batch

    where = "random_rollout_dispatch_problem"
    n = check_positive_int(n, "n", where)
    n_instances = check_positive_int(n_instances, "n_instances", where)
    if groups is None:
        prompts, per = n, 1
    else:
        prompts = check_positive_int(groups, "groups", where)
        if n % prompts:
            raise ValueError(f"The 'groups' parameter of {where} must divide n={n}. "
                             f"Got {groups!r} instead.")
        per = n // prompts
    w = rollout_batch(prompts, per, seed=seed, max_tokens=check_positive_int(
        max_tokens, "max_tokens", where))
    return RolloutDispatchProblem(
        output_tokens=w.output_tokens, group_id=None if groups is None else w.group_id,
        n_instances=n_instances, max_batch_size=max_batch_size, ptl_base_s=ptl_base_s,
        ptl_per_request_s=ptl_per_request_s, group_atomic=group_atomic)
