"""Lower bounds on the optimal total JCT of an :class:`IterationProblem`.

- :meth:`IterationProblem.trivial_bound`: ``sum_j o_j`` (each request needs ``o_j`` slots).
- :func:`lp_bound`: the LP relaxation of the time-indexed model, solved with scipy's HiGHS.
  Variables in ``[0, 1]`` over each request's window (the same windows as the CP-SAT model,
  :func:`~schedlab.solvers.iteration_lagrangian.completion_windows`, which an optimal schedule
  respects); prefix sums of runs and prefills are chained variables, so the LP's size is linear
  in the windows (it was quadratic: 24 GB at 100 requests):
  ``x[j,t]`` runs, ``p[j,t]`` prefill slot, ``d[j,t]`` done by the end of slot t. Constraints:
  ``sum_t x = o_j``, ``sum_t p = 1``, ``p <= x``, ``x[j,t] <= sum_{s<=t} p[j,s]``,
  ``o_j d[j,t] <= sum_{s<=t} x[j,s]``, ``d`` non-decreasing and 1 at the window's end,
  ``x[j,t] + d[j,t-1] <= 1``; per slot the batch size, the token budget
  (``sum_j (input_j - 1) p + x``) and a linear KV under-estimate (a running request holds at
  least ``input_j + 1`` tokens). Objective ``sum_j (o_j + sum_t (1 - d[j,t]))``, the total JCT.

Any optimal schedule is feasible for the LP, so its value is a valid lower bound; rounded up,
since JCTs are integers. ``time_limit_s`` bounds the whole call (building the LP and HiGHS); a
bound not computed in time, or that HiGHS could not compute, is ``None``, never an exception.
So is the bound of an LP above ``max_variables`` (two million by default), which is counted
from the windows before anything is built: the LP grows with requests times horizon (about
220,000 variables at 100 requests, solved in 30-55 s; 1.8 million at 300; 20 million at 1,000,
where building it ran out of 24 GiB), and the Lagrangian bound is the one that scales. HiGHS
gets what is left of the time limit, but its presolve checks the clock rarely: at 300 requests a
10 s limit ended after 17.8 s (without presolve the limit holds, but no 100-request LP is solved
within 60 s, against 27-52 s with it).

>>> from schedlab.solvers.iteration_problem import IterationProblem
>>> p = IterationProblem(arrival_slot=[0, 0], input_tokens=[2, 2], output_tokens=[3, 1],
...                      max_batch_size=1, max_batch_tokens=4, kv_capacity_tokens=10)
>>> p.trivial_bound(), lp_bound(p)
(4, 5)
>>> lp_bound(p, time_limit_s=1e-9) is None   # out of time: no bound, no exception
True
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from schedlab.errors import check_instance, check_positive_float, check_positive_int
from schedlab.solvers.budget import Budget, OutOfTime
from schedlab.solvers.iteration_heuristics import best_list_schedule
from schedlab.solvers.iteration_lagrangian import completion_windows
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run

__all__ = ["MAX_LP_VARIABLES", "lp_bound", "lp_size"]


#: :func:`lp_bound`'s default cap on the LP's variables (building one takes about 1 GiB per
#: million variables in Python lists before HiGHS sees it).
MAX_LP_VARIABLES = 2_000_000


def lp_bound(problem: IterationProblem, upper_bound: int | None = None, *,
             time_limit_s: float | None = None,
             max_variables: int = MAX_LP_VARIABLES) -> int | None:
    """LP-relaxation lower bound on the optimal total JCT (see the module docstring), or
    ``None`` when it could not be computed within ``time_limit_s`` seconds of wall-clock time
    (default: no limit), the LP would have more than ``max_variables`` variables, or HiGHS
    failed.

    ``upper_bound`` is the total JCT of any feasible schedule (default: the better list
    schedule); it only sets the windows, so a looser one gives the same or a weaker bound.
    """
    check_instance(problem, IterationProblem, "problem", "lp_bound")
    if time_limit_s is not None:
        time_limit_s = check_positive_float(time_limit_s, "time_limit_s", "lp_bound")
    max_variables = check_positive_int(max_variables, "max_variables", "lp_bound")
    return lp_bound_within(problem, upper_bound, Budget(time_limit_s), max_variables)[0]


def lp_bound_within(problem: IterationProblem, upper_bound: int | None, budget: Budget,
                    max_variables: int = MAX_LP_VARIABLES) -> tuple[int | None, str]:
    """:func:`lp_bound` within ``budget``: the bound (or ``None``) and how it ended
    (``"optimal"``, ``"time limit"``, ``"too large: <its size>"`` or
    ``"failed: <HiGHS's message>"``)."""
    try:
        return _lp_bound(problem, upper_bound, budget, max_variables), "optimal"
    except OutOfTime:
        return None, "time limit"
    except _TooLarge as exc:
        return None, f"too large: {exc}"
    except _HighsFailed as exc:
        return None, f"failed: {exc}"


class _HighsFailed(RuntimeError):
    pass


class _TooLarge(RuntimeError):
    pass


def lp_size(problem: IterationProblem, upper_bound: int | None = None) -> int:
    """The number of variables of :func:`lp_bound`'s LP (``upper_bound`` as there), counted from
    the windows without building it: per request, runs, prefix sums of runs and of prefills
    over its window, and prefill and done variables where they can be 1.

    >>> import numpy as np
    >>> from schedlab.solvers.iteration_problem import random_problem
    >>> lp_size(random_problem(100, np.random.default_rng(0)))
    220619
    """
    check_instance(problem, IterationProblem, "problem", "lp_size")
    if upper_bound is None:
        upper_bound = best_list_schedule(problem)[1]
    return _n_variables(problem, completion_windows(problem, upper_bound))


def _n_variables(problem: IterationProblem, last: np.ndarray) -> int:
    """:func:`lp_size` for the windows ending at ``last``."""
    width = last - problem.arrival_slot + 1
    tail = np.maximum(width - problem.output_tokens + 1, 0)
    return int((3 * width + 2 * tail).sum())


def _lp_bound(problem: IterationProblem, upper_bound: int | None, budget: Budget,
              max_variables: int) -> int:
    from scipy.optimize import linprog

    if upper_bound is None:
        upper_bound = best_list_schedule(problem)[1]
    a, inp, o = problem.arrival_slot, problem.input_tokens, problem.output_tokens
    last = completion_windows(problem, upper_bound)
    size = _n_variables(problem, last)
    if size > max_variables:
        raise _TooLarge(f"{size:,} variables, above max_variables={max_variables:,}")
    n = problem.n

    # variable indices
    nv = 0
    X: list[dict[int, int]] = []
    P: list[dict[int, int]] = []
    D: list[dict[int, int]] = []
    R: list[dict[int, int]] = []  # runs so far, sum_{s<=t} x[j,s], in [0, o_j]
    Q: list[dict[int, int]] = []  # prefill started, sum_{s<=t} p[j,s]
    for j in range(n):
        budget.check("building the LP relaxation")
        slots = range(int(a[j]), int(last[j]) + 1)
        X.append({t: nv + i for i, t in enumerate(slots)})
        nv += len(X[j])
        pslots = [t for t in slots if t <= last[j] - o[j] + 1]
        P.append({t: nv + i for i, t in enumerate(pslots)})
        nv += len(P[j])
        dslots = [t for t in slots if t >= a[j] + o[j] - 1]
        D.append({t: nv + i for i, t in enumerate(dslots)})
        nv += len(D[j])
        R.append({t: nv + i for i, t in enumerate(slots)})
        nv += len(R[j])
        Q.append({t: nv + i for i, t in enumerate(slots)})
        nv += len(Q[j])

    assert nv == size, (nv, size)  # lp_size counts what is built here
    ub, eq = _Rows(), _Rows()
    ub_row, eq_row = ub.add, eq.add
    for j in range(n):
        budget.check("building the LP relaxation")
        eq_row([(c, 1.0) for c in X[j].values()], float(o[j]))
        eq_row([(c, 1.0) for c in P[j].values()], 1.0)
        eq_row([(D[j][int(last[j])], 1.0)], 1.0)
        prev_d: int | None = None
        for t, xc in X[j].items():
            # prefix sums as chained variables, so the LP stays linear in the window
            rc, qc = R[j][t], Q[j][t]
            eq_row([(rc, 1.0), (xc, -1.0)] + ([(R[j][t - 1], -1.0)] if t - 1 in R[j] else []),
                   0.0)
            q_terms = [(qc, 1.0)] + ([(Q[j][t - 1], -1.0)] if t - 1 in Q[j] else [])
            if t in P[j]:
                ub_row([(P[j][t], 1.0), (xc, -1.0)], 0.0)
                q_terms.append((P[j][t], -1.0))
            eq_row(q_terms, 0.0)
            ub_row([(xc, 1.0), (qc, -1.0)], 0.0)
            if prev_d is not None:
                ub_row([(xc, 1.0), (prev_d, 1.0)], 1.0)
            if t in D[j]:
                ub_row([(D[j][t], float(o[j])), (rc, -1.0)], 0.0)
                if prev_d is not None:
                    ub_row([(prev_d, 1.0), (D[j][t], -1.0)], 0.0)
                prev_d = D[j][t]

    for t in range(int(a.min()), int(last.max()) + 1):
        budget.check("building the LP relaxation")
        live = [j for j in range(n) if t in X[j]]
        ub_row([(X[j][t], 1.0) for j in live], float(problem.max_batch_size))
        tok = [(X[j][t], 1.0) for j in live]
        tok += [(P[j][t], float(inp[j] - 1)) for j in live if t in P[j]]
        ub_row(tok, float(problem.max_batch_tokens))
        kv = [(X[j][t], float(kv_tokens_at_run(int(inp[j]), 1))) for j in live]
        ub_row(kv, float(problem.kv_capacity_tokens))

    cost = np.zeros(nv)
    const = float(o.sum())
    for j in range(n):
        for c in D[j].values():
            cost[c] = -1.0
        const += len(D[j])
    a_ub, b_ub = ub.matrix(nv)
    a_eq, b_eq = eq.matrix(nv)
    budget.check("building the LP relaxation")
    options = {} if budget.seconds is None else {"time_limit": budget.left()}
    upper = np.ones(nv)
    for j in range(n):
        upper[list(R[j].values())] = float(o[j])
    res = linprog(cost, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=b_eq,
                  bounds=np.column_stack((np.zeros(nv), upper)), method="highs", options=options)
    if res.status == 1:  # iteration or time limit
        raise OutOfTime(f"HiGHS stopped: {res.message}")
    if res.status != 0:
        raise _HighsFailed(f"HiGHS could not solve the LP relaxation: {res.message}")
    return max(problem.trivial_bound(), math.ceil(const + res.fun - 1e-6))


class _Rows:
    """Sparse constraint rows ``sum_c v_c x_c (<= or ==) b`` gathered in COO form."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.rhs: list[float] = []

    def add(self, terms: list[tuple[int, float]], b: float) -> None:
        r = len(self.rhs)
        for c, v in terms:
            self.rows.append(r)
            self.cols.append(c)
            self.vals.append(v)
        self.rhs.append(b)

    def matrix(self, n_vars: int) -> tuple[Any, np.ndarray]:
        """The CSR matrix (one row per :meth:`add`) and the right-hand sides."""
        from scipy.sparse import coo_matrix

        shape = (len(self.rhs), n_vars)
        a = coo_matrix((self.vals, (self.rows, self.cols)), shape=shape).tocsr()
        return a, np.asarray(self.rhs, dtype=np.float64)
