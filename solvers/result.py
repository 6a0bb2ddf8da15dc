"""What every solve returns: :class:`SolveResult`.

A feasible answer that is not proven optimal is a normal result (status ``FEASIBLE``), not an
error; ``gap`` is ``(objective - bound) / objective``, 0 for a proven optimum.

>>> r = SolveResult(status="FEASIBLE", objective=50.0, bound=40.0, wall_s=0.1, schedule=None)
>>> r.gap, r.has_solution, r.proven_optimal
(0.2, True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from schedlab.errors import check_instance, check_positive_float, check_positive_int

__all__ = ["STATUSES", "SolveResult", "check_solve_arguments", "run_cpsat"]

#: Statuses a solve can end with.
STATUSES = ("OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN")


@dataclass(frozen=True, slots=True, kw_only=True)
class SolveResult:
    """Status, objective, best proven lower bound, relative gap, wall time and the schedule.

    ``objective`` is ``None`` when no solution was found (``INFEASIBLE`` or ``UNKNOWN``);
    ``schedule`` is the solver's solution in the family's schedule form (or ``None``);
    ``stats`` holds solver-specific counters (variables, constraints, branches).
    """

    status: str
    objective: float | None
    bound: float
    wall_s: float
    schedule: Any
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(
                f"The 'status' parameter of SolveResult must be one of {STATUSES}. "
                f"Got {self.status!r} instead."
            )
        if self.status in ("OPTIMAL", "FEASIBLE") and self.objective is None:
            raise ValueError(f"SolveResult with status {self.status} needs an objective.")

    @property
    def gap(self) -> float:
        """``(objective - bound) / objective``; ``inf`` without a solution, 0 when optimal."""
        if self.objective is None:
            return math.inf
        if self.status == "OPTIMAL":
            return 0.0
        if self.objective == 0:
            return 0.0 if self.bound >= 0 else math.inf
        return max(0.0, (self.objective - self.bound) / abs(self.objective))

    @property
    def has_solution(self) -> bool:
        """A schedule and objective are available."""
        return self.objective is not None

    @property
    def proven_optimal(self) -> bool:
        """The solver proved the objective optimal."""
        return self.status == "OPTIMAL"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (without the schedule)."""
        return {
            "status": self.status,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap if math.isfinite(self.gap) else None,
            "wall_s": self.wall_s,
            **{f"stats.{k}": v for k, v in self.stats.items()},
        }


def check_solve_arguments(
    where: str, problem: Any, problem_cls: type, time_limit_s: Any, num_workers: Any,
    hint: Any, schedule_cls: type, verify: Callable[[Any, Any], Any],
) -> tuple[float, int]:
    """The arguments every ``solve_*_cpsat`` takes, checked once: the problem's type, a positive
    time limit and worker count, and a hint that is None, a bool (use the built-in start or
    not) or a schedule that ``verify`` finds valid. Returns ``(time_limit_s, num_workers)``.

    >>> check_solve_arguments("solve", 1, int, 5, 2, None, str, lambda p, s: None)
    (5.0, 2)
    """
    check_instance(problem, problem_cls, "problem", where)
    limit = check_positive_float(time_limit_s, "time_limit_s", where)
    workers = check_positive_int(num_workers, "num_workers", where)
    if hint is not None and not isinstance(hint, (bool, schedule_cls)):
        raise ValueError(f"The 'hint' parameter of {where} must be None, a bool or a "
                         f"{schedule_cls.__name__}. Got {type(hint).__name__} instead.")
    if isinstance(hint, schedule_cls):
        check = verify(problem, hint)
        if not check.valid:
            raise ValueError(f"The 'hint' parameter of {where} must be a valid schedule. "
                             f"Got one with {check.violations[0]!r}.")
    return limit, workers


def run_cpsat(model: Any, *, time_left_s: float, num_workers: int, seed: int = 0,
              **parameters: Any) -> tuple[Any, Any]:
    """Solve a CP-SAT ``model`` with every solver's settings: the time left (at least a
    millisecond), ``num_workers`` and a fixed ``seed`` (a solve repeats), plus any further
    ``parameters`` of CP-SAT's ``SatParameters`` a model needs (for example
    ``use_overload_checker_in_cumulative=True``; a list for a repeated field, such as
    ``subsolvers=["max_lp"]``). Returns ``(solver, status code)``.

    >>> from ortools.sat.python import cp_model
    >>> m = cp_model.CpModel()
    >>> v = m.new_int_var(0, 3, "v")
    >>> m.maximize(v)
    >>> solver, code = run_cpsat(m, time_left_s=5, num_workers=1)
    >>> solver.status_name(code), solver.value(v)
    ('OPTIMAL', 3)
    """
    from ortools.sat.python import cp_model

    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = max(float(time_left_s), 1e-3)
    solver.parameters.num_workers = int(num_workers)
    solver.parameters.random_seed = int(seed)
    for name, value in parameters.items():
        if isinstance(value, (list, tuple)):  # a repeated field, such as ``subsolvers``
            getattr(solver.parameters, name).extend(value)
        else:
            setattr(solver.parameters, name, value)
    return solver, solver.solve(model)
