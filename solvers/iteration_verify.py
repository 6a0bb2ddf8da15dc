"""Check any slotted schedule against an :class:`IterationProblem`: :func:`verify`.

The rules are exactly those of the CP-SAT model (:mod:`schedlab.solvers.iteration_cpsat`), one
violation kind each:

- ``duplicate``: a request runs twice in one slot.
- ``arrival``: a request runs before its arrival slot.
- ``prefill``: a request's first run is not the prefill of its whole prompt producing a token, or
  a later run processes prompt tokens (chunked or recomputed prefill) or produces no token.
- ``output-count``: a request does not run exactly ``output_tokens`` times.
- ``batch-size``: a slot runs more than ``max_batch_size`` requests.
- ``token-budget``: a slot processes more than ``max_batch_tokens`` tokens (prompt tokens plus one
  per decode).
- ``kv-capacity``: the running requests' KV (``input + k`` at their ``k``-th run) exceeds
  ``kv_capacity_tokens`` in a slot.

The objective (total JCT in slots) is computed for every schedule that serves every request.

>>> from schedlab.solvers.iteration_problem import IterationProblem
>>> from schedlab.solvers.iteration_schedule import Schedule
>>> p = IterationProblem(arrival_slot=[0, 1], input_tokens=[4, 2], output_tokens=[2, 1],
...                      max_batch_size=2, max_batch_tokens=8, kv_capacity_tokens=20)
>>> r = verify(p, Schedule.from_runs(n_requests=2, request=[0, 0, 1], slot=[0, 1, 1],
...                                  input_tokens=p.input_tokens))
>>> r.ok, r.objective, r.completion_slot.tolist()
(True, 3, [1, 1])
>>> bad = verify(p, Schedule.from_runs(n_requests=2, request=[0, 0, 1], slot=[0, 1, 0],
...                                    input_tokens=p.input_tokens))
>>> [v.kind for v in bad.violations]
['arrival']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schedlab.errors import check_instance
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run
from schedlab.solvers.iteration_schedule import Schedule

__all__ = ["ScheduleInvalid", "VerifyResult", "Violation", "verify"]

#: Every violation kind :func:`verify` can report.
VIOLATION_KINDS = (
    "duplicate", "arrival", "prefill", "output-count", "batch-size", "token-budget", "kv-capacity",
)


class ScheduleInvalid(ValueError):
    """A schedule breaks the problem's rules; the message lists the violations."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One broken rule: its ``kind`` (see :data:`VIOLATION_KINDS`), the slot and request it is
    about (``-1`` where not applicable) and a readable message."""

    kind: str
    slot: int
    request: int
    message: str


@dataclass(frozen=True, slots=True, kw_only=True)
class VerifyResult:
    """What :func:`verify` found: the violations, each request's completion slot (``-1`` if it
    never runs) and the total JCT in slots (``None`` unless every request completes)."""

    violations: tuple[Violation, ...]
    completion_slot: np.ndarray
    objective: int | None

    @property
    def ok(self) -> bool:
        """No violation."""
        return not self.violations

    def kinds(self) -> set[str]:
        """The distinct violation kinds found."""
        return {v.kind for v in self.violations}

    def raise_if_invalid(self, *, max_listed: int = 10) -> VerifyResult:
        """Return ``self``, or raise :class:`ScheduleInvalid` listing the first violations."""
        if self.violations:
            lines = [f"  [{v.kind}] {v.message}" for v in self.violations[:max_listed]]
            more = len(self.violations) - max_listed
            if more > 0:
                lines.append(f"  ... and {more} more")
            raise ScheduleInvalid(
                f"Schedule breaks {len(self.violations)} rule(s) of the problem:\n"
                + "\n".join(lines)
            )
        return self


def verify(problem: IterationProblem, schedule: Schedule) -> VerifyResult:
    """Check ``schedule`` against every rule of ``problem`` and compute its total JCT."""
    check_instance(problem, IterationProblem, "problem", "verify")
    check_instance(schedule, Schedule, "schedule", "verify")
    if schedule.n_requests != problem.n:
        raise ValueError(
            f"The 'schedule' parameter of verify must be for {problem.n} requests. "
            f"Got n_requests={schedule.n_requests}."
        )
    out: list[Violation] = []
    req, slot = schedule.request, schedule.slot
    pre, tok = schedule.prefill_tokens, schedule.output_token
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens

    # duplicate (entries are sorted by slot, then request)
    dup = np.flatnonzero((req[1:] == req[:-1]) & (slot[1:] == slot[:-1])) + 1
    for e in dup:
        out.append(Violation(kind="duplicate", slot=int(slot[e]), request=int(req[e]),
                             message=f"request {req[e]} runs twice in slot {slot[e]}"))

    # arrival
    for e in np.flatnonzero(slot < a[req]):
        out.append(Violation(kind="arrival", slot=int(slot[e]), request=int(req[e]),
                             message=f"request {req[e]} runs in slot {slot[e]} before its "
                             f"arrival slot {a[req[e]]}"))

    # run index k (1-based) of each entry within its request, in slot order
    by_req = np.lexsort((slot, req))
    r_sorted = req[by_req]
    first = np.ones(r_sorted.size, dtype=bool)
    first[1:] = r_sorted[1:] != r_sorted[:-1]
    starts = np.flatnonzero(first)
    run_index = np.empty(r_sorted.size, dtype=np.int64)
    group_len = np.diff(np.r_[starts, r_sorted.size])
    run_index[by_req] = np.arange(r_sorted.size) - np.repeat(starts, group_len) + 1
    is_first = run_index == 1

    # prefill
    bad_first = is_first & ((pre != inp[req]) | ~tok)
    for e in np.flatnonzero(bad_first):
        out.append(Violation(kind="prefill", slot=int(slot[e]), request=int(req[e]),
                             message=f"request {req[e]}'s first run (slot {slot[e]}) must prefill "
                             f"its whole prompt of {inp[req[e]]} tokens and produce a token; it "
                             f"prefills {pre[e]} tokens, output_token={bool(tok[e])}"))
    bad_later = ~is_first & ((pre != 0) | ~tok)
    for e in np.flatnonzero(bad_later):
        out.append(Violation(kind="prefill", slot=int(slot[e]), request=int(req[e]),
                             message=f"request {req[e]}'s run {run_index[e]} (slot {slot[e]}) must "
                             f"be a decode producing a token; it prefills {pre[e]} tokens, "
                             f"output_token={bool(tok[e])}"))

    # output-count
    runs = np.bincount(req, minlength=problem.n)
    for j in np.flatnonzero(runs != o):
        out.append(Violation(kind="output-count", slot=-1, request=int(j),
                             message=f"request {j} runs {runs[j]} times; it needs exactly "
                             f"{o[j]} (one prefill and {o[j] - 1} decodes)"))

    # per-slot capacities
    horizon = schedule.horizon
    if horizon:
        count = np.bincount(slot, minlength=horizon)
        tokens = np.bincount(slot, weights=np.where(pre > 0, pre, 1), minlength=horizon)
        kv = np.bincount(slot, weights=kv_tokens_at_run(inp[req], run_index), minlength=horizon)
        for t in np.flatnonzero(count > problem.max_batch_size):
            out.append(Violation(kind="batch-size", slot=int(t), request=-1,
                                 message=f"slot {t} runs {count[t]} requests > max_batch_size "
                                 f"{problem.max_batch_size}"))
        for t in np.flatnonzero(tokens > problem.max_batch_tokens):
            out.append(Violation(kind="token-budget", slot=int(t), request=-1,
                                 message=f"slot {t} processes {int(tokens[t])} tokens > "
                                 f"max_batch_tokens {problem.max_batch_tokens}"))
        for t in np.flatnonzero(kv > problem.kv_capacity_tokens):
            out.append(Violation(kind="kv-capacity", slot=int(t), request=-1,
                                 message=f"slot {t} needs {int(kv[t])} KV tokens > "
                                 f"kv_capacity_tokens {problem.kv_capacity_tokens}"))

    completion = schedule.completion_slot()
    completion.flags.writeable = False
    objective = int((completion + 1 - a).sum()) if np.all(runs == o) else None
    return VerifyResult(violations=tuple(out), completion_slot=completion, objective=objective)
