"""Speculative decoding inside a divided rollout's engine steps (Seer, arXiv 2511.14617 §3.4,
"Adaptive Grouped Speculative Decoding") [recon: the paper's mechanism on our engine].

:class:`Speculation` configures it for :func:`~schedlab.sim.simulate_divided_rollout`. Every
chunk, when dispatched, gets a draft length and an expected number of tokens per verify step:

1. its acceptance ``alpha_r = acceptance(n_ref)``
   (:func:`schedlab.costmodel.speculative.acceptance`), ``n_ref`` being the siblings whose text
   the group's suffix tree holds at that moment (those that have started; 0 with
   ``grouped=False``, vanilla suffix-tree drafting from a request's own text). So acceptance
   rises during a rollout as a group's requests start, chunk by chunk;
2. the instance's batch, with this chunk: ``gamma* = best_gamma(T(B, 0..gamma_max), alpha)``
   on the batch's mean acceptance and context, then the allocator (registered in
   :data:`schedlab.policies.DRAFT_ALLOCATORS`: Seer's MBA, Algorithm 1, by default) splits the
   budget ``gamma* B`` between the probes and the rest; the chunk drafts its class's length;
3. its tokens per step ``E_r = expected_tokens(beta(alpha_r), gamma_r)``, so the chunk of ``c``
   tokens runs ``ceil(c / E_r)`` verify steps in the engine [recon: the expected value, not a
   sampled acceptance].

A decode stretch of the engine is priced as ``T(B, {gamma_r})`` per step
(:func:`schedlab.costmodel.speculative.verify_batch_s`: every request's drafts verified at once,
plus the drafting time ``max gamma_r * draft_s``), on the batch's true KV: the engine counts a
step as one token per request, so the tokens the steps accepted beyond one are added back.
A chunk's draft length is fixed while it runs (another chunk joining the instance does not
re-split it); KV reservations stay in tokens (the chunk's largest KV), so nothing is preempted.

>>> from schedlab.datasets.rollout import rollout_batch
>>> from schedlab.sim import RolloutCluster, simulate_divided_rollout
>>> w = rollout_batch(n_prompts=8, samples_per_prompt=8, seed=0, max_tokens=8192)
>>> c = RolloutCluster.homogeneous("qwen2.5-7b", "h800", n_instances=1)
>>> plain = simulate_divided_rollout(w, c, "seer")
>>> sd = simulate_divided_rollout(w, c, "seer", speculation=Speculation())
>>> bool(sd.makespan_s < plain.makespan_s), bool(sd.extra["tokens_per_step"].max() > 1)
(True, True)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from schedlab.costmodel.base import IterationCost
from schedlab.costmodel.speculative import (
    ALPHA0,
    ALPHA_INF,
    KAPPA,
    acceptance,
    best_gamma,
    expected_tokens_curve,
    position_acceptance,
    verify_batch_s,
    verify_times_s,
)
from schedlab.errors import (
    check_fraction,
    check_keyword_params,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)

__all__ = ["Speculation"]

#: Per-request contexts are rounded to this many tokens when a batch's verify step or best draft
#: length is looked up (both move slowly with the context).
_CTX_GRAIN = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Speculation:
    """Speculative decoding for :func:`~schedlab.sim.simulate_divided_rollout` (see the module
    docstring). Defaults are Seer's (arXiv 2511.14617 §4.1) where it gives them: drafts of at
    most ``gamma_max = 8``, MBA with ``lam = 2``, a suffix-tree drafter (``draft_s = 0``).

    Parameters
    ----------
    grouped : True: the group's suffix tree (Seer); False: a request's own text (vanilla).
    allocator : a name of :data:`schedlab.policies.DRAFT_ALLOCATORS` (``"mba"``, ``"uniform"``)
        or a callable with their signature.
    allocator_params : keywords for the allocator; default for MBA ``lam=2`` with the reading
        ``benefit="gain", comparison="intent"`` [recon: as printed, with a constant per-position
        acceptance, MBA gives the probes one draft token and the rest the budget; see
        :func:`schedlab.policies.speculation.mba_allocation`].
    gamma_max : longest draft.
    alpha0, alpha_inf, kappa : the grouped acceptance curve
        (:func:`schedlab.costmodel.speculative.acceptance`) [recon].
    decay : per-position acceptance decay (:func:`position_acceptance`; 1: the standard model).
    draft_s : drafting seconds per draft position of a step (0: suffix tree; > 0: a draft model).
    """

    grouped: bool = True
    allocator: str | Callable[..., tuple[int, int]] = "mba"
    allocator_params: Mapping[str, Any] | None = None
    gamma_max: int = 8
    alpha0: float = ALPHA0
    alpha_inf: float = ALPHA_INF
    kappa: float = KAPPA
    decay: float = 1.0
    draft_s: float = 0.0
    _fn: Callable[..., tuple[int, int]] = field(init=False, repr=False, compare=False)
    _params: dict[str, Any] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        from schedlab.policies import get_draft_allocator

        w = "Speculation"
        if not isinstance(self.grouped, bool):
            raise ValueError(f"The 'grouped' parameter of {w} must be a bool. Got "
                             f"{self.grouped!r} instead.")
        check_positive_int(self.gamma_max, "gamma_max", w)
        check_fraction(self.alpha0, "alpha0", w, open_low=False)
        check_fraction(self.alpha_inf, "alpha_inf", w, open_low=False)
        check_positive_float(self.kappa, "kappa", w)
        check_fraction(self.decay, "decay", w, open_low=False)
        check_nonneg_float(self.draft_s, "draft_s", w)
        fn = get_draft_allocator(self.allocator)
        if self.allocator_params is not None:
            params = dict(self.allocator_params)
        elif self.allocator == "mba":
            params = {"lam": 2.0, "benefit": "gain", "comparison": "intent"}
        else:
            params = {}
        check_keyword_params(fn, params, f"draft allocator {self.allocator!r}")
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "_params", params)

    def alpha(self, n_ref: np.ndarray) -> np.ndarray:
        """Per-position acceptance of requests with ``n_ref`` siblings in their tree (0 for all
        when not ``grouped``)."""
        n = n_ref if self.grouped else np.zeros_like(n_ref)
        return acceptance(n.astype(np.float64), self.alpha0, self.alpha_inf, self.kappa)

    def allocate(self, batch_high: int, batch_low: int, alpha: float,
                 gamma_star: int) -> tuple[int, int]:
        """The allocator's draft lengths for the probes and the rest of a batch whose mean
        per-position acceptance is ``alpha``."""
        beta = position_acceptance(alpha, self.gamma_max, decay=self.decay)
        got = self._fn(batch_high, batch_low, beta, gamma_star=gamma_star,
                       gamma_max=self.gamma_max, **self._params)
        ok = (isinstance(got, tuple) and len(got) == 2
              and all(isinstance(g, (int, np.integer)) and 0 <= g <= self.gamma_max
                      for g in got))
        if not ok:
            raise ValueError(f"Draft allocator {self.allocator!r} must return two draft lengths "
                             f"in [0, gamma_max={self.gamma_max}]. Got {got!r} for "
                             f"batch_high={batch_high}, batch_low={batch_low}, "
                             f"gamma_star={gamma_star}.")
        return int(got[0]), int(got[1])


class Drafts:
    """The engine side of :class:`Speculation` for one divided rollout: each chunk's draft length
    and tokens per step, and the price of a decode stretch (given to each instance as its
    :attr:`~schedlab.sim.instance.InstanceRuntime.decode_time`)."""

    def __init__(self, spec: Speculation, cost: IterationCost, n: int) -> None:
        self.spec, self.cost = spec, cost
        self.gamma = np.zeros(n, dtype=np.int64)
        self.per_step = np.ones(n)  # expected tokens per verify step of the current chunk
        self.curves: dict[float, np.ndarray] = {}
        self.best: dict[tuple[int, int, float], int] = {}
        self.ratio: dict[tuple[int, int, int, int], float] = {}
        self.splits: dict[tuple[int, int, float, int], tuple[int, int]] = {}  # allocators are pure
        self.alphas: dict[int, float] = {}

    def alpha(self, n_ref: int) -> float:
        """:meth:`Speculation.alpha` of one request, memoised."""
        got = self.alphas.get(n_ref)
        if got is None:
            got = self.alphas[n_ref] = float(self.spec.alpha(np.array([n_ref]))[0])
        return got

    def assign(self, r: int, is_probe: bool, alpha_r: float, b_high: int, b_low: int,
               alpha_mean: float, context_tokens: int) -> float:
        """Give request ``r``'s new chunk its draft length (its class's share of the batch's
        budget) and return its expected tokens per verify step."""
        s = self.spec
        b = b_high + b_low
        grain = context_tokens // b // _CTX_GRAIN
        a = round(alpha_mean, 3)
        key = (b, grain, a)
        g_star = self.best.get(key)
        if g_star is None:
            t = verify_times_s(self.cost, b, b * (grain * _CTX_GRAIN + _CTX_GRAIN // 2),
                               s.gamma_max)
            g_star = self.best[key] = best_gamma(
                t, position_acceptance(a, s.gamma_max, decay=s.decay), draft_s=s.draft_s)
        split = self.splits.get((b_high, b_low, a, g_star))
        if split is None:
            split = self.splits[b_high, b_low, a, g_star] = s.allocate(b_high, b_low, a, g_star)
        g_h, g_l = split
        g = g_h if is_probe else g_l
        self.gamma[r] = g
        e = float(self._curve(alpha_r)[g])
        self.per_step[r] = e
        return e

    def _curve(self, alpha: float) -> np.ndarray:
        a = round(alpha, 4)
        got = self.curves.get(a)
        if got is None:
            s = self.spec
            got = self.curves[a] = expected_tokens_curve(
                position_acceptance(a, s.gamma_max, decay=s.decay), s.gamma_max)
        return got

    def decode_time(self, rids: np.ndarray, steps_done: np.ndarray, ctx: int,
                    steps: np.ndarray) -> np.ndarray:
        """End offsets of a decode stretch of the requests ``rids`` (``steps_done`` verify steps
        since each joined; the engine's ``ctx`` KV tokens count one token a step): plain steps
        on the true KV, times the batch's verify-step ratio ``(T(B, {gamma_r}) + D) / T(B, 0)``."""
        e = self.per_step[rids]
        true_ctx = ctx + int(((e - 1.0) * steps_done).sum())
        b = rids.shape[0]
        plain = self.cost.fast_decode_steps_time_s(b, true_ctx, steps)
        g = self.gamma[rids]
        n = int(g.sum())
        if n == 0:
            return plain
        grain = true_ctx // b // _CTX_GRAIN
        key = (b, n, int((g * g).sum()), grain)
        ratio = self.ratio.get(key)
        if ratio is None:
            kv = b * (grain * _CTX_GRAIN + _CTX_GRAIN // 2)
            t0 = verify_batch_s(self.cost, np.zeros(b, dtype=np.int64), kv)
            ratio = self.ratio[key] = ((verify_batch_s(self.cost, g, kv)
                                        + int(g.max()) * self.spec.draft_s) / t0)
        return plain * ratio

    @staticmethod
    def steps_for(tokens: int, per_step: float, first: bool) -> int:
        """Verify steps a chunk of ``tokens`` needs at ``per_step`` tokens a step (a request's
        first token comes from its prefill, one a step)."""
        if first:
            return 1 + math.ceil(max(tokens - 1, 0) / per_step)
        return math.ceil(tokens / per_step)
