"""The optimal split of a draft-token budget between Seer's probe requests and the rest (rollout
digest §1.9(c)): :class:`DraftAllocation`, :func:`solve_draft_allocation`,
:func:`draft_objective` and :func:`greedy_loss`.

Seer's MBA rule (arXiv 2511.14617, §3.4.2, Algorithm 1; the heuristic is
:func:`schedlab.policies.speculation.mba_allocation`, which this module does not import) is a
greedy knapsack. Its exact version is a two-variable integer program::

    maximise    B_h * lam * A(g_h) + B_l * A(g_l)
    subject to  B_h * g_h + B_l * g_l <= Gamma,     g_h, g_l in {0, .., gamma_max}

with ``A(g) = sum_{k<=g} prod_{j<=k} beta_j`` the expected accepted draft tokens of a request
drafting ``g`` tokens (:func:`schedlab.costmodel.speculative.expected_tokens` minus the bonus
token), ``lam`` the probes' weight (Seer §4.1: 2) and ``Gamma = gamma_star * (B_h + B_l)`` the
budget of Algorithm 1. As in Algorithm 1, speculation is off (``(0, 0)``, objective 0) when
``Gamma < B_h + B_l`` or the batch is empty, so the optimum and the greedy answer the same
question. It is solved by enumerating the ``(gamma_max + 1)^2`` pairs (81 for the default
``gamma_max = 8``); no solver library is needed.

>>> r = solve_draft_allocation(1, 1, [1.0, 1.0, 0.5, 0.5], gamma_star=2, gamma_max=4, lam=1.0)
>>> r.g_high, r.g_low, r.objective    # 4 tokens: A(2) + A(2) = 2 + 2 beats A(3) + A(1) = 2.5 + 1
(2, 2, 4.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from schedlab.costmodel.speculative import check_position_acceptance, expected_tokens_curve
from schedlab.errors import check_nonneg_int, check_positive_float

__all__ = ["DraftAllocation", "solve_draft_allocation", "draft_objective", "greedy_loss"]

#: Relative tolerance under which two objectives tie (the tie then goes to fewer draft tokens).
_TIE = 1e-12


@dataclass(frozen=True, slots=True, kw_only=True)
class DraftAllocation:
    """Draft lengths of the probe (high-priority) and the other requests, and the objective
    ``B_h * lam * A(g_high) + B_l * A(g_low)`` (expected accepted draft tokens per step, the
    probes' weighted by ``lam``).

    >>> DraftAllocation(g_high=2, g_low=1, objective=3.5)
    DraftAllocation(g_high=2, g_low=1, objective=3.5)
    """

    g_high: int
    g_low: int
    objective: float


def _inputs(batch_high: object, batch_low: object, beta: object, gamma_star: object,
            gamma_max: object, lam: object, where: str
            ) -> tuple[int, int, np.ndarray, int, int, float]:
    b_h = check_nonneg_int(batch_high, "batch_high", where)
    b_l = check_nonneg_int(batch_low, "batch_low", where)
    g_star = check_nonneg_int(gamma_star, "gamma_star", where)
    g_max = check_nonneg_int(gamma_max, "gamma_max", where)
    weight = check_positive_float(lam, "lam", where)
    acc = check_position_acceptance(beta, g_max, where)
    accepted = expected_tokens_curve(acc, g_max) - 1.0     # A(0..gamma_max)
    return b_h, b_l, accepted, g_star * (b_h + b_l), g_max, weight


def solve_draft_allocation(
    batch_high: int,
    batch_low: int,
    beta: ArrayLike,
    *,
    gamma_star: int,
    gamma_max: int = 8,
    lam: float = 2.0,
) -> DraftAllocation:
    """The optimal draft lengths by enumeration (rollout digest §1.9(c); Seer arXiv 2511.14617,
    §3.4.2, Algorithm 1's problem).

    Maximises ``B_h * lam * A(g_h) + B_l * A(g_l)`` over ``g_h, g_l in 0..gamma_max`` with
    ``B_h * g_h + B_l * g_l <= gamma_star * (B_h + B_l)``; ``(0, 0)`` when that budget is below
    ``B_h + B_l`` (Algorithm 1's switch) or the batch is empty. Ties go to fewer draft tokens,
    then to the longer probe draft. Arguments as for
    :func:`schedlab.policies.speculation.mba_allocation` (``beta``: per-position acceptances
    ``beta_1..beta_gamma_max``).

    >>> solve_draft_allocation(2, 6, [0.9] * 8, gamma_star=2)
    DraftAllocation(g_high=8, g_low=0, objective=20.503...)
    >>> solve_draft_allocation(2, 6, [0.9] * 8, gamma_star=0).g_high
    0
    """
    where = "solve_draft_allocation"
    b_h, b_l, accepted, budget, g_max, weight = _inputs(
        batch_high, batch_low, beta, gamma_star, gamma_max, lam, where)
    if b_h + b_l == 0 or budget < b_h + b_l:
        return DraftAllocation(g_high=0, g_low=0, objective=0.0)
    g = np.arange(g_max + 1)
    gh, gl = np.meshgrid(g, g, indexing="ij")
    used = b_h * gh + b_l * gl
    value = b_h * weight * accepted[gh] + b_l * accepted[gl]
    value = np.where(used <= budget, value, -np.inf)
    best = float(value.max())
    ties = value >= best - _TIE * max(1.0, abs(best))
    # among ties: fewest draft tokens, then the longest probe draft
    keys = np.where(ties, used * (g_max + 1) + (g_max - gh), np.iinfo(np.int64).max)
    i, j = np.unravel_index(int(np.argmin(keys)), keys.shape)
    return DraftAllocation(g_high=int(i), g_low=int(j), objective=float(value[i, j]))


def draft_objective(batch_high: int, batch_low: int, beta: ArrayLike, g_high: int, g_low: int,
                    *, gamma_max: int = 8, lam: float = 2.0) -> float:
    """``B_h * lam * A(g_high) + B_l * A(g_low)``, the objective of any allocation (rollout
    digest §1.9(c); Seer arXiv 2511.14617, §3.4.2). Feasibility is not checked here (see
    :func:`greedy_loss`).

    >>> draft_objective(1, 1, [1.0, 1.0, 0.5, 0.5], 3, 1, gamma_max=4, lam=1.0)   # 2.5 + 1
    3.5
    """
    where = "draft_objective"
    b_h, b_l, accepted, _, g_max, weight = _inputs(
        batch_high, batch_low, beta, 0, gamma_max, lam, where)
    g_h, g_l = (_length(v, name, g_max, where) for v, name in ((g_high, "g_high"),
                                                                 (g_low, "g_low")))
    return float(b_h * weight * accepted[g_h] + b_l * accepted[g_l])


def _length(value: object, name: str, g_max: int, where: str) -> int:
    v = check_nonneg_int(value, name, where)
    if v > g_max:
        raise ValueError(f"The {name!r} parameter of {where} must be an int in [0, {g_max}] "
                         f"(gamma_max). Got {value!r} instead.")
    return v


def greedy_loss(
    batch_high: int,
    batch_low: int,
    beta: ArrayLike,
    greedy: tuple[int, int],
    *,
    gamma_star: int,
    gamma_max: int = 8,
    lam: float = 2.0,
) -> float:
    """What a heuristic's allocation ``greedy = (g_high, g_low)`` loses against the optimum:
    ``optimum - objective(greedy)`` in weighted expected accepted draft tokens per step, >= 0
    (rollout digest §1.9(c); Seer arXiv 2511.14617, Algorithm 1).

    Raises ``ValueError`` naming ``greedy`` when the allocation is out of range or over the
    budget ``gamma_star * (B_h + B_l)`` (or not ``(0, 0)`` when speculation is off).

    >>> greedy_loss(1, 1, [1.0, 1.0, 0.5, 0.5], (3, 1), gamma_star=2, gamma_max=4, lam=1.0)
    0.5
    >>> greedy_loss(1, 1, [1.0] * 4, (4, 1), gamma_star=2, gamma_max=4)
    Traceback (most recent call last):
    ...
    ValueError: The 'greedy' parameter of greedy_loss must use at most the budget
    gamma_star * (B_h + B_l) = 4 draft tokens. Got (4, 1), which uses 5.
    """
    where = "greedy_loss"
    if not isinstance(greedy, tuple) or len(greedy) != 2:
        raise ValueError(f"The 'greedy' parameter of {where} must be a pair (g_high, g_low). "
                         f"Got {greedy!r} instead.")
    b_h, b_l, accepted, budget, g_max, weight = _inputs(
        batch_high, batch_low, beta, gamma_star, gamma_max, lam, where)
    best = solve_draft_allocation(b_h, b_l, beta, gamma_star=gamma_star, gamma_max=g_max,
                                  lam=weight)
    g_h, g_l = (_length(v, "greedy", g_max, where) for v in greedy)
    enabled = b_h + b_l > 0 and budget >= b_h + b_l
    used = b_h * g_h + b_l * g_l
    if not enabled and (g_h, g_l) != (0, 0):
        raise ValueError(f"The 'greedy' parameter of {where} must be (0, 0) when speculation is "
                         f"off (budget {budget} < batch {b_h + b_l}). Got {greedy!r} instead.")
    if used > budget:
        raise ValueError(f"The 'greedy' parameter of {where} must use at most the budget "
                         f"gamma_star * (B_h + B_l) = {budget} draft tokens. Got {greedy!r}, "
                         f"which uses {used}.")
    return max(0.0, best.objective - float(b_h * weight * accepted[g_h] + b_l * accepted[g_l]))
