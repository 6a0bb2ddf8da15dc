"""Mooncake's Conductor as pure functions: prefill placement (random, load-balancing, cache-aware,
KV-cache-centric), decode placement (least predicted step time) and admission (late rejection,
early rejection, early rejection based on prediction), composed by :func:`mooncake`.

Seed paper: Mooncake, Qin et al., "Mooncake: A KVCache-centric Disaggregated Architecture for LLM
Serving" (arXiv 2407.00079 v3, §6-§7, Algorithm 1; FAST'25 "Trading More Storage for Less
Computation", §4, Algorithm 1). The authors' public code has no Algorithm 1 (its released
Conductor routes to the longest prefix match, round robin otherwise), so what the papers leave
open is reconstructed and marked [recon] below.

Every function reads a :class:`~schedlab.contract.placement.PlacementView` (the engine's
estimates for one arriving request) and returns a choice; ties go to the lowest index.

>>> from schedlab.contract.placement import DecodeStepModel, PlacementView
>>> v = PlacementView.from_columns(now_s=0.0, input_tokens=8192, prefix_tokens=[0, 4096, 0],
...     queue_s=[0.0, 3.0, 0.2], prefill_s=[1.0, 0.5, 1.0], prefill_best_s=[0.5, 0.5, 0.5],
...     transfer_s=[0.1, 0.0, 0.1], queued_requests=[2, 0, 1], decode_batch=[4, 2],
...     decode_step=DecodeStepModel(base_s=0.02, per_request_s=0.002))
>>> {rule: prefill_choice(v, rule).instance for rule in PREFILL_RULES}
{'kvcache-centric': 0, 'cache-aware': 0, 'load-balancing': 1, 'random': 2}
>>> p = mooncake(v)
>>> p.prefill, p.decode, p.transfer_from, p.transfer_tokens, round(p.ttft_est_s, 2)
(0, 1, 1, 4096, 0.6)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np

from schedlab.contract.placement import Placement, PlacementView
from schedlab.errors import (
    check_nonneg_int,
    check_positive_float,
    unknown_name_error,
)

__all__ = [
    "ADMISSIONS",
    "PREFILL_RULES",
    "PrefillChoice",
    "cache_aware_prefill",
    "decode_step_at",
    "kvcache_centric_prefill",
    "least_tbt_decode",
    "load_balancing_prefill",
    "mooncake",
    "prefill_choice",
    "random_prefill",
]


class PrefillChoice(NamedTuple):
    """A prefill instance, the TTFT estimated for it, and the prefix transfer it needs
    (``transfer_from=-1``, ``transfer_tokens=0``: compute with the local prefix)."""

    instance: int
    ttft_est_s: float
    transfer_from: int = -1
    transfer_tokens: int = 0


def _local(view: PlacementView, i: int) -> PrefillChoice:
    return PrefillChoice(i, float(view.queue_s[i] + view.prefill_s[i]))


def random_prefill(view: PlacementView, /, *, seed: int = 0) -> PrefillChoice:
    """A prefill instance drawn uniformly at random (the baseline of Mooncake v3 §6.2, Fig. 8).

    The draw comes from ``numpy.random.default_rng([seed, request_id])``: an explicit generator
    per request, so the choice is a pure function of the view and the seed. The TTFT estimate is
    the chosen instance's queue plus its prefill with the local prefix.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0] * 4,
    ...     decode_batch=[0])
    >>> random_prefill(v).instance == random_prefill(v).instance
    True
    """
    seed = check_nonneg_int(seed, "seed", "random_prefill")
    rng = np.random.default_rng([seed, view.request_id])
    return _local(view, int(rng.integers(view.n_prefill)))


def load_balancing_prefill(view: PlacementView, /) -> PrefillChoice:
    """The prefill instance with the fewest queued requests (v3 §6.1: conventional load is "the
    number of assigned requests"; Fig. 8's "load-balancing"). Prefix caches are ignored.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0, 0],
    ...     queued_requests=[3, 1], decode_batch=[0])
    >>> load_balancing_prefill(v).instance
    1
    """
    return _local(view, int(np.argmin(view.queued_requests)))


def cache_aware_prefill(view: PlacementView, /) -> PrefillChoice:
    """The prefill instance with the least queue time plus prefill time with its *local* prefix,
    never pulling a prefix from elsewhere (v3 §6.1 "cache-aware"; FAST'25 §4.2 "local cache
    aware"): :func:`kvcache_centric_prefill` with an infinite balance threshold.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=4096, prefix_tokens=[0, 2048],
    ...     queue_s=[0.0, 0.3], prefill_s=[1.0, 0.5], decode_batch=[0])
    >>> cache_aware_prefill(v)
    PrefillChoice(instance=1, ttft_est_s=0.8, transfer_from=-1, transfer_tokens=0)
    """
    return _local(view, int(np.argmin(view.queue_s + view.prefill_s)))


def kvcache_centric_prefill(
    view: PlacementView, /, *, balance_threshold: float = 2.0
) -> PrefillChoice:
    """Mooncake's KV-cache-centric prefill placement (Algorithm 1, v3 §6 / FAST'25 §4.1-4.2).

    For every prefill instance ``p`` with local prefix ``l`` and the pool's best prefix ``b``:

    - *cache-aware branch*, when ``b <= balance_threshold * l`` (the local prefix is good
      enough; with ``l = 0`` only when ``b = 0`` too): ``TTFT = queue + prefill(local)``;
    - *cache-balancing branch* otherwise: pull ``b - l`` tokens from the holder, ``TTFT =
      transfer + queue + prefill(best)``.

    The request goes to the instance with the least estimated TTFT (ties: lowest index); when
    that instance took the balancing branch the pulled prefix stays there (Algorithm 1 lines
    28-29, "hot-spot migration": popular prefixes replicate themselves).

    Parameters
    ----------
    balance_threshold : float >= 1, default 2.0
        ``kvcache_balancing_threshold``. The papers tune it by hand and give no value (v3
        footnote 1) [recon: 2.0]; ``math.inf`` gives :func:`cache_aware_prefill`. The branch test
        is FAST'25's (``b / l > threshold`` pulls), v3 pulls at equality too.

    Invariants checked by the property tests: the choice minimises the estimated TTFT over the
    pool; a transfer is chosen only where its branch was taken, moves exactly ``b - l`` tokens
    from the best holder, and never to the holder itself; more local prefix (a shorter prefill)
    or less queue never makes an instance's estimate worse.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=4096, prefix_tokens=[3072, 0],
    ...     queue_s=[5.0, 0.0], prefill_s=[0.3, 1.2], prefill_best_s=[0.3, 0.3],
    ...     transfer_s=[0.0, 0.2], decode_batch=[0])
    >>> kvcache_centric_prefill(v)   # the busy holder's prefix is pulled to the idle instance
    PrefillChoice(instance=1, ttft_est_s=0.5, transfer_from=0, transfer_tokens=3072)
    """
    thr = check_positive_float(balance_threshold, "balance_threshold", "kvcache_centric_prefill",
                               allow_inf=True)
    if thr < 1.0:
        raise ValueError("The 'balance_threshold' parameter of kvcache_centric_prefill must be a "
                         f"float in [1, inf]. Got {balance_threshold!r}.")
    local = view.prefix_tokens
    best = view.best_prefix_tokens
    pull = (local < best) & (best > thr * local) if thr < math.inf else np.zeros_like(local, bool)
    ttft = np.where(pull, view.transfer_s + view.queue_s + view.prefill_best_s,
                    view.queue_s + view.prefill_s)
    i = int(np.argmin(ttft))
    if pull[i]:
        return PrefillChoice(i, float(ttft[i]), view.best_holder, best - int(local[i]))
    return PrefillChoice(i, float(ttft[i]))


#: Prefill placement rules by name, in the order of Mooncake's Fig. 8.
PREFILL_RULES: Mapping[str, Callable[..., PrefillChoice]] = MappingProxyType({
    "kvcache-centric": kvcache_centric_prefill,
    "cache-aware": cache_aware_prefill,
    "load-balancing": load_balancing_prefill,
    "random": random_prefill,
})


def prefill_choice(view: PlacementView, rule: str, /, **params: Any) -> PrefillChoice:
    """The choice of the prefill rule registered as ``rule`` (:data:`PREFILL_RULES`).

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=10, prefix_tokens=[0],
    ...     decode_batch=[0])
    >>> prefill_choice(v, "cache-awar")
    Traceback (most recent call last):
    ...
    ValueError: Unknown prefill rule 'cache-awar'. Close matches: 'cache-aware'...
    """
    try:
        fn = PREFILL_RULES[rule]
    except (KeyError, TypeError):
        raise unknown_name_error("prefill rule", rule, PREFILL_RULES) from None
    return fn(view, **params)


def decode_step_at(
    view: PlacementView, at_s: float, *, decode_duration_s: float, join: int = -1
) -> np.ndarray:
    """Predicted decode step time of every decode instance at time ``at_s`` (Mooncake v3 §7.4,
    Fig. 10b, its system-level prediction): every request decodes for the same
    ``decode_duration_s`` after joining; requests decoding now leave at their join time plus
    that duration, requests on their way join at their expected prefill end; ``join`` (an
    instance index) adds the arriving request there at ``at_s``.

    >>> from schedlab.contract.placement import PlacementView, DecodeStepModel
    >>> v = PlacementView.from_columns(now_s=10.0, input_tokens=1000, prefix_tokens=[0],
    ...     decode_batch=[2], decode_context_tokens=[2000], decoding_since_s=[0.0, 9.0],
    ...     decode_step=DecodeStepModel(base_s=0.02, per_request_s=0.005))
    >>> decode_step_at(v, 12.0, decode_duration_s=5.0).tolist()   # the first left at 5 s
    [0.025]
    """
    d = view.n_decode
    t_d = decode_duration_s
    live = (view.decoding_since_s <= at_s) & (view.decoding_since_s + t_d > at_s)
    coming = (view.incoming_join_s <= at_s) & (view.incoming_join_s + t_d > at_s)
    batch = (np.bincount(view.decoding_instance[live], minlength=d)
             + np.bincount(view.incoming_instance[coming], minlength=d))
    ctx = (np.bincount(view.decoding_instance[live], view.decoding_context_tokens[live],
                       minlength=d)
           + np.bincount(view.incoming_instance[coming], view.incoming_context_tokens[coming],
                         minlength=d))
    if join >= 0:
        batch[join] += 1
        ctx[join] += view.input_tokens
    return np.asarray(view.decode_step.step_s(batch, ctx), dtype=np.float64)


def least_tbt_decode(view: PlacementView, /) -> tuple[int, float]:
    """The decode instance whose step time with the request is least, counting every request
    already placed on it (decoding now or on its way from prefill), among those with KV room
    for its prompt plus predicted output; ``(-1, inf)`` when none has room.

    Seed: Algorithm 1 line 24, ``d, TBT <- SelectDecodingInstance(D)``, "load-balancing
    decoding scheduling" (v3 §6, FAST'25 §4.1) [recon: the papers name no load metric]. Counting
    the requests on their way keeps a burst of arrivals (the conversation trace delivers up to
    28 at once) from all choosing the instance that is lightest now.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=100, prefix_tokens=[0],
    ...     decode_batch=[1, 5, 3], decode_kv_free_tokens=[50, 10**6, 10**6],
    ...     incoming_instance=[2, 2, 2], incoming_join_s=[1.0] * 3,
    ...     incoming_context_tokens=[10] * 3)
    >>> least_tbt_decode(v)   # 0 is lightest but has no room; 2 has three on their way
    (1, 0.03)
    """
    d = view.n_decode
    need = view.input_tokens + math.ceil(view.output_tokens_pred)
    batch = view.decode_batch + np.bincount(view.incoming_instance, minlength=d) + 1
    ctx = (view.decode_context_tokens + view.input_tokens
           + np.bincount(view.incoming_instance, view.incoming_context_tokens, minlength=d))
    step = view.decode_step.step_s(batch, ctx)
    step = np.where(view.decode_kv_free_tokens >= need, step, math.inf)
    i = int(np.argmin(step))
    return (i, float(step[i])) if math.isfinite(step[i]) else (-1, math.inf)


#: Admission policies (Mooncake v3 §7.2-7.4, Table 3), in the table's order.
ADMISSIONS = ("late", "early", "early-prediction")


def mooncake(
    view: PlacementView,
    /,
    *,
    prefill: str = "kvcache-centric",
    admission: str = "early-prediction",
    balance_threshold: float = 2.0,
    slo_ttft_s: float = 30.0,
    slo_tbt_s: float = 0.1,
    decode_duration_s: float = 34.3,
    recheck_at_handoff: bool = True,
    seed: int = 0,
) -> Placement:
    """Mooncake's Conductor: place an arriving request on a (prefill, decode) pair or reject it.

    Seed paper: Mooncake (arXiv 2407.00079 v3 §6-§7 and FAST'25 §4). Steps:

    1. *Prefill*: the rule ``prefill`` (:data:`PREFILL_RULES`) picks the instance and estimates
       the TTFT (Algorithm 1 lines 1-23).
    2. *Decode*: :func:`least_tbt_decode` (line 24); no decode instance with KV room rejects with
       ``"decode_kv"``.
    3. *Admission* (§7; the load is an estimate over its SLO, accepted while <= 1):

       - ``"late"`` (the baseline of Table 3): reject now only if the estimated TTFT exceeds
         ``slo_ttft_s`` (``"ttft_slo"``); the decode load is checked when the prefill ends
         (``handoff_tbt_slo_s``), so a request rejected then wastes its prefill.
       - ``"early"``: also reject now if the chosen decode instance's step time with the request
         exceeds ``slo_tbt_s`` (``"tbt_slo"``), Algorithm 1 line 25.
       - ``"early-prediction"`` (what Mooncake deploys, §7.4): instead of the decode load now,
         the mean over the decode pool of the step time predicted for when the request would
         reach decoding (``now + TTFT``, :func:`decode_step_at`, every request decoding for
         ``decode_duration_s``) must stay within ``slo_tbt_s`` (``"predicted_tbt_slo"``).

    4. *Hand-off*: with ``recheck_at_handoff`` the decode instance checks its load again when
       the prefill ends (v3 §3 step 4: "the local scheduler of the decoding instance double
       checks"), rejecting a request its step time would then push over ``slo_tbt_s``; the late
       baseline always does (it is its only decode check).

    Parameters (defaults: the papers' where they give one)
    ----------
    prefill : str, default "kvcache-centric"
        The prefill rule's registry name.
    admission : {"late", "early", "early-prediction"}, default "early-prediction"
    balance_threshold : float >= 1, default 2.0
        :func:`kvcache_centric_prefill`'s threshold (not published [recon]).
    slo_ttft_s, slo_tbt_s : float, defaults 30.0 and 0.1
        The SLOs of v3 §8.1.3 (TTFT 30 s, 0.1 s per token).
    decode_duration_s : float, default 34.3
        ``t_d``, the uniform decode duration of §7.4 (not published [recon]: the conversation
        trace's mean output of 343 tokens at the 100 ms TBT SLO).
    recheck_at_handoff : bool, default True
        Step 4 for the early policies too (False: their arrival check is the only one, so with
        exact estimates they waste no prefill).
    seed : int, default 0
        For ``prefill="random"``.

    Invariants checked by the property tests: an accepted request's estimates are within the
    SLOs its admission checks (``early``: TTFT and TBT now; ``early-prediction``: TTFT and the
    predicted mean decode step; ``late``: TTFT); the rejection reason names the first estimate
    that failed; the placement keeps :func:`~schedlab.contract.placement.validate_placement`;
    purity and determinism.

    >>> from schedlab.contract.placement import PlacementView
    >>> v = PlacementView.from_columns(now_s=0.0, input_tokens=4096, prefix_tokens=[0],
    ...     queue_s=[40.0], prefill_s=[1.0], decode_batch=[0])
    >>> mooncake(v).reason, mooncake(v, slo_ttft_s=60.0).reason
    ('ttft_slo', 'accepted')
    """
    where = "mooncake"
    if not isinstance(recheck_at_handoff, bool):
        raise ValueError("The 'recheck_at_handoff' parameter of mooncake must be a bool. "
                         f"Got {recheck_at_handoff!r}.")
    if admission not in ADMISSIONS:
        raise unknown_name_error("admission policy", admission, dict.fromkeys(ADMISSIONS))
    l_ttft = check_positive_float(slo_ttft_s, "slo_ttft_s", where)
    l_tbt = check_positive_float(slo_tbt_s, "slo_tbt_s", where)
    t_d = check_positive_float(decode_duration_s, "decode_duration_s", where)
    if prefill == "kvcache-centric":
        choice = kvcache_centric_prefill(view, balance_threshold=balance_threshold)
    elif prefill == "random":
        choice = random_prefill(view, seed=seed)
    else:
        choice = prefill_choice(view, prefill)
    d, tbt = least_tbt_decode(view)

    def reject(reason: str) -> Placement:
        return Placement(prefill=-1, decode=-1, ttft_est_s=choice.ttft_est_s,
                         tbt_est_s=tbt if math.isfinite(tbt) else 0.0, reject_reason=reason)

    if d < 0:
        return reject("decode_kv")
    if choice.ttft_est_s > l_ttft:
        return reject("ttft_slo")
    if admission == "early" and tbt > l_tbt:
        return reject("tbt_slo")
    if admission == "early-prediction":
        at = view.now_s + choice.ttft_est_s
        tbt = float(decode_step_at(view, at, decode_duration_s=t_d, join=d).mean())
        if tbt > l_tbt:
            return reject("predicted_tbt_slo")
    return Placement(prefill=choice.instance, decode=d, transfer_from=choice.transfer_from,
                     transfer_tokens=choice.transfer_tokens, ttft_est_s=choice.ttft_est_s,
                     tbt_est_s=tbt,
                     handoff_tbt_slo_s=(l_tbt if admission == "late" or recheck_at_handoff
                                        else math.inf))
