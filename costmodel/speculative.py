"""Speculative decoding on the iteration cost model: the verify step, expected tokens per step,
time per token, Seer's grouped acceptance and the best draft length.

Seer (Qin et al., "Seer: Online Context Learning for Fast Synchronous LLM Reinforcement
Learning", arXiv 2511.14617, §3.4 "Adaptive Grouped Speculative Decoding") prices speculation
with the standard model of Leviathan et al.:

* ``T(B, gamma)``: one verification step of a decode batch of ``B`` requests, each checking
  ``gamma`` draft tokens plus one (:func:`verify_step_s`; ``T(B, 0)`` is a plain decode step);
* ``E(gamma) = (1 - alpha^(gamma+1)) / (1 - alpha)``: tokens a request gains per step, the bonus
  token included, for a per-position acceptance ``alpha`` (:func:`expected_tokens`, which also
  takes a vector of per-position acceptances ``beta_1..beta_gamma``);
* ``T_SD(B, gamma) = (D(B, gamma) + T(B, gamma)) / E(gamma)``: seconds per generated token,
  ``D`` being the drafting time (:func:`sd_time_per_token`). Speculation helps only when it beats
  ``T(B, 0)``; :func:`best_gamma` returns the draft length that minimises it (0 when none beats a
  plain step).

Seer's drafter reads a suffix tree of the group's sibling responses synced asynchronously to every
instance, so ``D ~ 0`` on the critical path (§3.4); a draft model has ``D > 0``. The acceptance
rises with the number ``n_ref`` of siblings whose text is in the group's tree (:func:`acceptance`,
a [recon] form calibrated on the paper's anchors).

>>> from schedlab.costmodel import iteration_cost
>>> cost = iteration_cost("qwen2.5-72b", "h800", tp=8)
>>> t = verify_times_s(cost, 16, 16 * 20_000, gamma_max=8)   # T(16, 0..8) in seconds
>>> best_gamma(t, acceptance(15))        # every sibling of a group of 16 in the tree
5
>>> best_gamma(verify_times_s(cost, 1024, 1024 * 20_000), acceptance(15))   # compute-bound
2
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from schedlab.costmodel.base import CostWrapper, IterationCost, SequenceOverheadCost
from schedlab.costmodel.iteration import RooflineIterationCost
from schedlab.errors import (
    check_array,
    check_fraction,
    check_nonneg_float,
    check_nonneg_int,
    check_positive_float,
)

__all__ = [
    "ALPHA0",
    "SpeculativeDecodingCost",
    "ALPHA_INF",
    "KAPPA",
    "acceptance",
    "position_acceptance",
    "expected_tokens",
    "expected_tokens_curve",
    "sd_time_per_token",
    "verify_step_s",
    "verify_batch_s",
    "verify_times_s",
    "best_gamma",
    "check_position_acceptance",
]

#: Per-position acceptance of a request whose group tree holds no sibling's text (its own history
#: only) [recon, rollout digest §1.4].
ALPHA0 = 0.35
#: Per-position acceptance when many siblings' text is in the group tree [recon, digest §1.4].
ALPHA_INF = 0.65
#: Siblings over which the acceptance closes ``1 - 1/e`` of the gap from :data:`ALPHA0` to
#: :data:`ALPHA_INF`, chosen so that ``E(gamma=8)`` is 1.70 with one sibling in the tree (see
#: :func:`acceptance`) [recon].
KAPPA = 4.32

_EMPTY = np.zeros(0, dtype=np.int64)


# ------------------------------------------------------------------------------ acceptance
@overload
def acceptance(n_ref: float, alpha0: float = ..., alpha_inf: float = ...,
               kappa: float = ...) -> float: ...
@overload
def acceptance(n_ref: np.ndarray, alpha0: float = ..., alpha_inf: float = ...,
               kappa: float = ...) -> np.ndarray: ...
def acceptance(n_ref: float | np.ndarray, alpha0: float = ALPHA0, alpha_inf: float = ALPHA_INF,
               kappa: float = KAPPA) -> float | np.ndarray:
    """Seer's grouped per-position acceptance ``alpha(n_ref)`` [recon].

    ``alpha(n_ref) = alpha0 + (alpha_inf - alpha0) * (1 - exp(-n_ref / kappa))``, ``n_ref`` being
    the number of siblings (finished or in flight) whose text is in the group's compressed suffix
    tree. Seer (arXiv 2511.14617, §3.4, Table 2) measures acceptance at ``n_ref`` = 0, 1, 5, 15;
    the table's values were not in the text we had, so the form and the numbers are a
    reconstruction (rollout digest §1.4). A scalar ``n_ref`` gives a float, an array an array.

    Calibration [recon]: with the defaults ``alpha0 = 0.35``, ``alpha_inf = 0.65`` and
    ``kappa = 4.32``, ``E(gamma=8)`` (:func:`expected_tokens`) is 1.54 with no sibling in the
    tree, 1.70 with one, 2.24 with five, 2.73 with fifteen (every sibling of a group of 16) and
    tends to 2.80: the "about 1.7 to about 2.8" range a secondary summary quotes for Seer's mean
    acceptance length. The paper's own anchors are defined differently and one curve does not meet
    them all: grouped context adds **+0.22** to the mean acceptance length (bonus token included)
    over vanilla suffix-tree drafting, averaged over a rollout (here one sibling adds +0.16, two
    +0.32); and late in a rollout it gives up to **+119%** more accepted draft tokens than
    self-history only (here 15 siblings against none give +222% at ``gamma = 8``: the curve rises
    more than that anchor says).

    >>> round(acceptance(0), 3), round(acceptance(15), 3)
    (0.35, 0.641)
    >>> [round(expected_tokens(acceptance(n), 8), 2) for n in (0, 1, 5, 15)]
    [1.54, 1.7, 2.24, 2.73]
    >>> acceptance(-1)
    Traceback (most recent call last):
    ...
    ValueError: The 'n_ref' parameter of acceptance must be a float in [0, inf]. Got -1 instead.
    """
    a0 = check_fraction(alpha0, "alpha0", "acceptance", open_low=False)
    a_inf = check_fraction(alpha_inf, "alpha_inf", "acceptance", open_low=False)
    k = check_positive_float(kappa, "kappa", "acceptance")
    if np.ndim(n_ref) == 0:
        n = check_nonneg_float(n_ref, "n_ref", "acceptance", allow_inf=True)
        return a0 + (a_inf - a0) * -math.expm1(-n / k)
    arr = check_array(n_ref, "n_ref", "acceptance", ndim=np.ndim(n_ref), min_value=0.0)
    return a0 + (a_inf - a0) * -np.expm1(-arr / k)


def position_acceptance(alpha: float, gamma_max: int, *, decay: float = 1.0) -> np.ndarray:
    """Per-position acceptances ``beta_k = alpha * decay^(k-1)`` for ``k = 1..gamma_max``
    [recon].

    ``decay = 1`` is the standard model of Seer §3.4.1 (arXiv 2511.14617) and Leviathan et al.:
    every position is accepted with probability ``alpha`` given its predecessors. ``decay < 1``
    makes deep drafts less likely to hold, as suffix-tree drafts do. Seer's Algorithm 1 (MBA,
    :func:`schedlab.policies.speculation.mba_allocation`) reads such a vector ``beta``.

    >>> position_acceptance(0.5, 3, decay=0.5).tolist()
    [0.5, 0.25, 0.125]
    """
    a = check_fraction(alpha, "alpha", "position_acceptance", open_low=False)
    g = check_nonneg_int(gamma_max, "gamma_max", "position_acceptance")
    d = check_fraction(decay, "decay", "position_acceptance", open_low=False)
    return a * d ** np.arange(g, dtype=np.float64)


# ------------------------------------------------------------------------------ expected tokens
def _survival(acc: float | np.ndarray, gamma: int) -> np.ndarray:
    """``P(the first k drafts are all accepted)`` for ``k = 0..gamma``: ``[1, b1, b1*b2, ...]``."""
    if isinstance(acc, float):
        return acc ** np.arange(gamma + 1, dtype=np.float64)
    return np.concatenate(([1.0], np.cumprod(acc[:gamma])))


def _check_acceptance(acc: float | ArrayLike, gamma: int, where: str) -> float | np.ndarray:
    """A scalar ``alpha`` in [0, 1] as a float, or a vector ``beta`` of at least ``gamma`` entries
    in [0, 1] as a read-only array."""
    if np.ndim(acc) == 0:
        return check_fraction(acc, "acceptance", where, open_low=False)
    return check_position_acceptance(acc, gamma, where, name="acceptance")


def check_position_acceptance(beta: object, gamma: int, where: str, *,
                              name: str = "beta") -> np.ndarray:
    """Per-position acceptances ``beta_1..`` in [0, 1], at least ``gamma`` of them (one per draft
    position), as a read-only array; otherwise ``ValueError`` naming ``name`` of ``where``.

    >>> check_position_acceptance([0.5, 0.2], 3, "f")
    Traceback (most recent call last):
    ...
    ValueError: The 'beta' parameter of f must hold one acceptance per draft position (at least
    3). Got 2.
    """
    acc = check_array(beta, name, where, min_value=0.0, max_value=1.0)
    if acc.shape[0] < gamma:
        raise ValueError(f"The {name!r} parameter of {where} must hold one acceptance per draft "
                         f"position (at least {gamma}). Got {acc.shape[0]}.")
    return acc


def expected_tokens(acceptance: float | ArrayLike, gamma: int) -> float:
    """Expected tokens a request gains per verification step with ``gamma`` drafts, the bonus
    token included (Seer arXiv 2511.14617, §3.4.1; Leviathan et al.).

    ``acceptance`` is a per-position acceptance ``alpha`` in [0, 1], giving
    ``E = (1 - alpha^(gamma+1)) / (1 - alpha)`` (``gamma + 1`` at ``alpha = 1``; summed as
    ``sum_{k<=gamma} alpha^k``, exact near 1), or a vector ``beta_1..beta_n`` (``n >= gamma``) of
    per-position acceptances, giving ``E = 1 + sum_{k<=gamma} prod_{j<=k} beta_j``. Always in
    ``[1, gamma + 1]``.

    >>> round(expected_tokens(0.5, 2), 4), expected_tokens(1.0, 8), expected_tokens(0.7, 0)
    (1.75, 9.0, 1.0)
    >>> expected_tokens([0.8, 0.5, 0.1], 2)    # 1 + 0.8 + 0.8 * 0.5
    2.2
    """
    g = check_nonneg_int(gamma, "gamma", "expected_tokens")
    acc = _check_acceptance(acceptance, g, "expected_tokens")
    # a running sum: one more draft adds a term >= 0, so E never falls with gamma (numpy's
    # pairwise .sum() rounds sums of different lengths differently)
    return float(np.cumsum(_survival(acc, g))[-1])


def expected_tokens_curve(acceptance: float | ArrayLike, gamma_max: int) -> np.ndarray:
    """:func:`expected_tokens` for every ``gamma = 0..gamma_max`` at once (Seer arXiv 2511.14617,
    §3.4.1).

    >>> expected_tokens_curve(0.5, 3).tolist()
    [1.0, 1.5, 1.75, 1.875]
    """
    g = check_nonneg_int(gamma_max, "gamma_max", "expected_tokens_curve")
    acc = _check_acceptance(acceptance, g, "expected_tokens_curve")
    return np.cumsum(_survival(acc, g))


def sd_time_per_token(verify_s: float, draft_s: float, expected: float) -> float:
    """Seconds per generated token of speculative decoding, ``T_SD = (D + T) / E`` (Seer arXiv
    2511.14617, §3.4.1): ``verify_s`` is the verify step ``T(B, gamma)``, ``draft_s`` the drafting
    time ``D(B, gamma)`` of that step, ``expected`` the tokens per step ``E(gamma) >= 1``.

    >>> sd_time_per_token(0.030, 0.0, 2.0), sd_time_per_token(0.020, 0.0, 1.0)
    (0.015, 0.02)
    >>> sd_time_per_token(0.030, 0.0, 0.5)
    Traceback (most recent call last):
    ...
    ValueError: The 'expected' parameter of sd_time_per_token must be a float in [1, inf).
    Got 0.5 instead.
    """
    t = check_nonneg_float(verify_s, "verify_s", "sd_time_per_token")
    d = check_nonneg_float(draft_s, "draft_s", "sd_time_per_token")
    e = check_positive_float(expected, "expected", "sd_time_per_token")
    if e < 1.0:
        raise ValueError("The 'expected' parameter of sd_time_per_token must be a float in "
                         f"[1, inf). Got {expected!r} instead.")
    return (d + t) / e


# ------------------------------------------------------------------------------ verify step
def verify_step_s(cost: IterationCost, batch: int, gamma: int, context_tokens: int) -> float:
    """Seconds of one verification step ``T(B, gamma)`` (Seer arXiv 2511.14617, §3.4.1):
    ``batch`` requests each checking ``gamma`` draft tokens plus one, so ``batch * (gamma + 1)``
    query tokens, the requests' contexts summing to ``context_tokens`` KV tokens.

    ``gamma = 0`` is exactly a plain decode step of the batch,
    ``cost.fast_decode_steps_time_s(batch, context_tokens, [1.0])``. For ``gamma >= 1`` on a
    :class:`RooflineIterationCost` (priced from its closed-form terms, which live in this
    package), the step runs the decode step's kernels on ``n = B (gamma + 1)`` query tokens:

    * the token-linear layers and the LM head on ``n`` tokens (verification needs the logits of
      every position);
    * one attention kernel whose memory traffic is the decode kernel's (each request's KV is read
      once for all its ``gamma + 1`` queries; queries, outputs and the new tokens' KV move per
      query token) and whose FLOPs count every query against its own context (query
      ``j = 0..gamma`` of a request with context ``c`` attends to ``c + j`` tokens, so the FLOPs
      scale with ``(gamma+1) S + B gamma (gamma+1) / 2``); the kernel costs the larger of the two.

    So a memory-bound verify costs about one decode step and a compute-bound one grows with
    ``gamma``: the shape of Seer's offline-profiled ``T(B, gamma)``. For a
    :class:`SequenceOverheadCost` the step is its inner model's plus the per-request overhead; for
    any other :class:`IterationCost` [recon] it is one iteration of ``B (gamma + 1)`` decode
    tokens whose contexts sum to ``context_tokens`` (each request's KV counted once). Never less
    than the decode step; non-decreasing in ``gamma`` and in ``batch``; 0 for an empty batch.

    >>> from schedlab.costmodel import iteration_cost
    >>> cost = iteration_cost("llama-2-7b", "a100-80gb")
    >>> step = float(cost.fast_decode_steps_time_s(8, 8 * 2000, np.array([1.0]))[0])
    >>> verify_step_s(cost, 8, 0, 8 * 2000) == step
    True
    >>> round(verify_step_s(cost, 8, 4, 8 * 2000) / step, 2)   # memory-bound: nearly flat
    1.02
    """
    where = "verify_step_s"
    b = check_nonneg_int(batch, "batch", where)
    g = check_nonneg_int(gamma, "gamma", where)
    s = check_nonneg_int(context_tokens, "context_tokens", where)
    return _verify_step_s(cost, b, g, s)


def _verify_step_s(cost: IterationCost, b: int, g: int, s: int) -> float:
    return _verify_s(cost, b, b * (g + 1), b * g * (g + 1) / 2, s)


def _verify_s(cost: IterationCost, b: int, n: int, tri: float, s: int) -> float:
    """A verify step of ``b`` requests with ``n`` query tokens in all (``sum(gamma_r + 1)``),
    ``tri = sum(gamma_r (gamma_r + 1) / 2)``, contexts summing to ``s``."""
    if b == 0:
        return 0.0
    decode = float(cost.fast_decode_steps_time_s(b, s, np.array([1.0]))[0])
    if n == b:
        return decode
    if isinstance(cost, RooflineIterationCost):
        query_context = n * s / b + tri  # each request's context taken as the batch's mean
        compute = cost._dec_compute_per_ctx * query_context
        memory = cost._dec_mem_per_ctx * s + cost._dec_mem_per_req * n
        t = cost._linear_s(n) + cost._head_s(n) + cost._launch + max(compute, memory)
    elif isinstance(cost, SequenceOverheadCost):
        t = _verify_s(cost.cost, b, n, tri, s) + cost.per_sequence_s * b
    else:
        t = float(cost.fast_iteration_time_s(_EMPTY, _EMPTY, n, s))
    return max(decode, float(t))


def verify_batch_s(cost: IterationCost, gamma: ArrayLike, context_tokens: int) -> float:
    """Seconds of one verification step of a batch whose requests draft different lengths
    (Seer arXiv 2511.14617 §3.4.2: MBA gives the probes and the others different drafts):
    ``gamma[r]`` draft tokens for request ``r``, the contexts summing to ``context_tokens``.

    :func:`verify_step_s` with ``sum(gamma_r + 1)`` query tokens; the attention FLOPs count
    each query against its request's context, taken as the batch's mean [recon]. Equal to
    ``verify_step_s(cost, len(gamma), g, context_tokens)`` when every draft is ``g``.

    >>> from schedlab.costmodel import iteration_cost
    >>> cost = iteration_cost("qwen2.5-72b", "h800", tp=8)
    >>> verify_batch_s(cost, [3] * 16, 320_000) == verify_step_s(cost, 16, 3, 320_000)
    True
    >>> bool(verify_batch_s(cost, [0] * 16, 320_000) <= verify_batch_s(cost, [8, 0] * 8, 320_000))
    True
    """
    where = "verify_batch_s"
    g = check_array(gamma, "gamma", where, dtype=np.int64, ndim=1, min_value=0, integer=True)
    s = check_nonneg_int(context_tokens, "context_tokens", where)
    b = g.shape[0]
    return _verify_s(cost, b, int(g.sum()) + b, float((g * (g + 1)).sum() / 2), s)


def verify_times_s(cost: IterationCost, batch: int, context_tokens: int,
                   gamma_max: int = 8) -> np.ndarray:
    """``T(B, gamma)`` for ``gamma = 0..gamma_max`` (:func:`verify_step_s`): the profile Seer
    measures offline (arXiv 2511.14617, §3.4.1), for :func:`best_gamma`. Default ``gamma_max = 8``
    (Seer §4.1).

    >>> from schedlab.costmodel import ConstantIterationCost
    >>> verify_times_s(ConstantIterationCost(slot_s=0.02), 4, 4000, gamma_max=2).tolist()
    [0.02, 0.02, 0.02]
    """
    where = "verify_times_s"
    b = check_nonneg_int(batch, "batch", where)
    s = check_nonneg_int(context_tokens, "context_tokens", where)
    gm = check_nonneg_int(gamma_max, "gamma_max", where)
    return np.array([_verify_step_s(cost, b, g, s) for g in range(gm + 1)])


# ------------------------------------------------------------------------------ best draft length
def best_gamma(verify_s: ArrayLike, acceptance: float | ArrayLike, *,
               draft_s: float = 0.0) -> int:
    """The draft length ``gamma* = argmin_gamma T_SD(B, gamma)`` over ``gamma = 0..gamma_max``
    (Seer arXiv 2511.14617, §3.4.1 and Algorithm 1, line 1).

    ``verify_s`` holds ``T(B, gamma)`` for ``gamma = 0..gamma_max`` (:func:`verify_times_s`, or a
    measured profile); ``acceptance`` is ``alpha`` or the vector ``beta_1..beta_gamma_max``
    (:func:`expected_tokens`); ``draft_s`` is the drafting time per draft position,
    ``D(B, gamma) = gamma * draft_s`` (0 for Seer's suffix-tree drafter, a draft model's step
    otherwise). Speculation helps only where ``T_SD(B, gamma) < T(B, 0)``: the answer is 0 unless
    some ``gamma >= 1`` is strictly faster than a plain decode step, and ties go to the shorter
    draft, so ``T_SD(B, gamma*) <= T(B, 0)`` always.

    >>> best_gamma([0.020, 0.021, 0.022, 0.030], 0.6)     # flat verify: draft deep
    2
    >>> best_gamma([0.020, 0.040, 0.060, 0.080], 0.6)     # verify grows faster than E
    0
    """
    where = "best_gamma"
    t = check_array(verify_s, "verify_s", where, min_value=0.0)
    if t.shape[0] == 0:
        raise ValueError(f"The 'verify_s' parameter of {where} must hold T(B, 0..gamma_max), at "
                         "least one value. Got 0.")
    d = check_nonneg_float(draft_s, "draft_s", where)
    gm = t.shape[0] - 1
    e = np.cumsum(_survival(_check_acceptance(acceptance, gm, where), gm))
    per_token = (d * np.arange(gm + 1) + t) / e
    return int(np.argmin(per_token))


#: Contexts are rounded to this many tokens per request when a decode step's speed-up is looked
#: up (the speed-up moves slowly with the context; a run costs thousands of decode stretches).
_CTX_GRAIN = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class SpeculativeDecodingCost(CostWrapper):
    """``cost`` with speculative decoding in its decode steps, for the simulator [recon: a fluid
    approximation of Seer §3.4]: a decode step of ``B`` requests holding ``S`` KV tokens is
    costed at the time per generated token of the best draft length,
    ``T_SD(B, gamma*) = (D + T(B, gamma*)) / E(gamma*)`` (:func:`best_gamma` over
    ``0..gamma_max``, never slower than a plain step), so every request still gains one token a
    "step" but the steps run at speculation's pace. The acceptance is fixed for a run (e.g.
    :func:`acceptance` of the siblings a group's suffix tree holds, ``G - 1`` when all are in
    flight); the speed-up is looked up at each request's context rounded to 1,024 tokens.
    Iterations with prefills, prefills and swaps are ``cost``'s.

    >>> from schedlab.costmodel import iteration_cost
    >>> base = iteration_cost("qwen2.5-72b", "h800", tp=8)
    >>> sd = SpeculativeDecodingCost(cost=base, acceptance=acceptance(15))
    >>> steps = np.array([1.0])
    >>> plain = base.fast_decode_steps_time_s(16, 16 * 20_000, steps)[0]
    >>> round(float(plain / sd.fast_decode_steps_time_s(16, 16 * 20_000, steps)[0]), 2)
    2.2
    """

    acceptance: float
    gamma_max: int = 8
    draft_s: float = 0.0
    _ratios: dict[tuple[int, int], float] = field(default_factory=dict, compare=False,
                                                  repr=False)

    def __post_init__(self) -> None:
        CostWrapper.__post_init__(self)
        w = "SpeculativeDecodingCost"
        check_fraction(self.acceptance, "acceptance", w, open_low=False)
        check_nonneg_int(self.gamma_max, "gamma_max", w)
        check_nonneg_float(self.draft_s, "draft_s", w)

    def speedup(self, batch_size: int, context_sum: int) -> float:
        """``T(B, 0) / T_SD(B, gamma*)`` for a batch of ``batch_size`` holding ``context_sum``
        KV tokens (>= 1)."""
        b = max(int(batch_size), 1)
        grain = max(int(context_sum) // b // _CTX_GRAIN, 0)
        key = (b, grain)
        got = self._ratios.get(key)
        if got is None:
            ctx = b * (grain * _CTX_GRAIN + _CTX_GRAIN // 2)
            t = verify_times_s(self.cost, b, ctx, self.gamma_max)
            g = best_gamma(t, self.acceptance, draft_s=self.draft_s)
            per_token = sd_time_per_token(float(t[g]), g * self.draft_s,
                                          expected_tokens(self.acceptance, g))
            got = self._ratios[key] = float(t[0]) / per_token
        return got

    def decode_steps_time_s(self, batch_size: int, context_sum: int,
                            n_steps: np.ndarray | int) -> np.ndarray | float:
        return (self.cost.decode_steps_time_s(batch_size, context_sum, n_steps)
                / self.speedup(batch_size, context_sum))

    def fast_decode_steps_time_s(self, batch_size: int, context_sum: int,
                                 n_steps: np.ndarray) -> np.ndarray:
        return (self.cost.fast_decode_steps_time_s(batch_size, context_sum, n_steps)
                / self.speedup(batch_size, context_sum))
