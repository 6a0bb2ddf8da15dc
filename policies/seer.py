"""Seer's rollout scheduling (Qin et al., "Seer: Online Context Learning for Fast Synchronous LLM
Reinforcement Learning", arXiv 2511.14617, OSDI'26), as pure functions on the divided-rollout
contract (:mod:`schedlab.contract.divided`).

- *Divided rollout* (§3.2): a group's requests are scheduled one by one, each a chunk at a time
  (:func:`chunk_budget`), re-dispatched after every chunk through the global KV pool; the
  instance (:func:`select_instance`) by cache affinity while the instances' in-flight counts
  are within 32 of each other, else the least loaded, pulling the KV when the best holder has
  more than 512 tokens more of it; only where the chunk's largest KV fits (memory-aware, so no
  preemption).
- *Context-aware scheduling* (§3.3, Appendix A.1 Algorithm 2): each group's first request is its
  probe and runs first, the least generated first; a group's length estimate
  (:func:`group_estimates`) starts at the generation limit and becomes its longest finished
  sibling; other requests go longest estimate first, with an ``epsilon`` chance of serving the
  group served least so far instead (anti-starvation).
- :func:`seer` composes them; with ``order="fifo"``, ``chunk_tokens=None`` or
  ``order="oracle"`` it is the paper's ablations and its Oracle longest-first baseline;
  :func:`group_round_robin_all` is veRL's one-shot group-level dispatch.

>>> import numpy as np
>>> from schedlab.contract.divided import DividedView
>>> v = DividedView.from_columns(input_tokens=[100] * 4, group_id=[0, 0, 1, 1],
...     max_tokens=[20000] * 4, n_instances=2)
>>> c = seer(v)
>>> c.request.tolist(), c.budget.tolist()     # the two probes first, then their siblings
([0, 2, 1, 3], [8192, 8192, 8192, 8192])
"""

from __future__ import annotations

import numpy as np

from schedlab.contract.divided import Chunks, DividedView
from schedlab.errors import check_fraction, check_nonneg_int, check_positive_int

__all__ = [
    "ORDERS",
    "PRIORS",
    "chunk_budget",
    "group_estimates",
    "group_round_robin_all",
    "scheduling_order",
    "seer",
    "select_instance",
]

#: Orders of the waiting requests: Seer's context-aware one, arrival (FIFO) order, and
#: longest predicted remaining first (the Oracle LFS baseline when predictions are the truth).
ORDERS = ("context-aware", "fifo", "oracle")
#: Where a group's length estimate starts before any sibling finishes: the generation limit
#: (the paper) or an offline predictor's length (an ablation the paper did not run).
PRIORS = ("max-tokens", "predictor")


def chunk_budget(view: DividedView, positions: np.ndarray, chunk_tokens: int | None
                 ) -> np.ndarray:
    """Seer's next chunk (Appendix A.1, line 16): ``min(chunk_size, max_tokens - generated)``;
    ``chunk_tokens=None`` is no chunking (the whole remaining limit).

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[1, 1], n_instances=1, max_tokens=[9000, 9000],
    ...                              generated_tokens=[0, 8192])
    >>> chunk_budget(v, np.array([0, 1]), 8192).tolist()
    [8192, 808]
    """
    left = view.max_tokens[positions] - view.generated_tokens[positions]
    return left if chunk_tokens is None else np.minimum(left, chunk_tokens)


def group_estimates(view: DividedView, *, prior: str = "max-tokens") -> np.ndarray:
    """Each group's length estimate ``L_hat`` (Seer §3.3): the longest finished request of the
    group once one has finished, before that the generation limit (``prior="max-tokens"``, the
    paper: every unfinished group may be long-tail) or its requests' longest predicted length
    (``prior="predictor"``, an offline predictor as the prior).

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[1] * 3, group_id=[0, 0, 1], n_instances=1,
    ...     max_tokens=[1000] * 3, generated_tokens=[300, 50, 0], done=[True, False, False])
    >>> group_estimates(v).tolist()
    [300.0, 1000.0]
    """
    if prior not in PRIORS:
        raise ValueError(f"The 'prior' parameter of group_estimates must be one of {PRIORS}. "
                         f"Got {prior!r}.")
    g = view.group_index
    n_groups = view.group_on_instance.shape[0]
    start = view.max_tokens if prior == "max-tokens" else view.output_tokens_pred
    est = np.full(n_groups, -np.inf)
    np.maximum.at(est, g, start.astype(np.float64))
    finished = np.full(n_groups, -np.inf)
    d = view.done
    np.maximum.at(finished, g[d], view.generated_tokens[d].astype(np.float64))
    return np.where(np.isfinite(finished), finished, est)


def scheduling_order(view: DividedView, *, order: str = "context-aware",
                     prior: str = "max-tokens") -> np.ndarray:
    """The waiting requests in the order they are offered an instance.

    ``"context-aware"`` (Algorithm 2): the waiting probes first, the least generated first; then
    the others by their group's estimate, largest first. ``"fifo"``: batch order. ``"oracle"``:
    the longest predicted remaining length first (longest-first with true lengths when the
    predictions are the truth). Ties go to the lower group rank, then the lower position, so the
    order is deterministic.

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[1] * 4, group_id=[0, 0, 1, 1],
    ...     n_instances=1, max_tokens=[1000] * 4, generated_tokens=[400, 0, 100, 0],
    ...     done=[True, False, False, False])
    >>> scheduling_order(v).tolist()    # probe 2 first; group 1's estimate (1000) beats 400
    [2, 3, 1]
    """
    if order not in ORDERS:
        raise ValueError(f"The 'order' parameter of scheduling_order must be one of {ORDERS}. "
                         f"Got {order!r}.")
    w = view.waiting
    if order == "fifo" or w.shape[0] == 0:
        return w
    g = view.group_index[w]
    if order == "oracle":
        left = view.output_tokens_pred[w] - view.generated_tokens[w]
        return w[np.lexsort((w, g, -left))]
    est = group_estimates(view, prior=prior)[g]
    probe = view.is_probe[w]
    # probes (key 0) by generated ascending; the rest (key 1) by estimate descending
    first = np.where(probe, view.generated_tokens[w].astype(np.float64), -est)
    return w[np.lexsort((w, g, first, ~probe))]


def select_instance(view: DividedView, position: int, kv_need: int, *, in_flight: np.ndarray,
                    kv_free: np.ndarray, slots_free: np.ndarray, imbalance_threshold: int = 32,
                    pull_gap_tokens: int = 512) -> tuple[int, int]:
    """Seer's instance choice for one chunk (§3.2, §4.5.3): among instances with a free batch
    slot and KV room for the chunk's largest KV (``kv_need``), the one holding most of the
    request's context (cache affinity, ties to the least loaded, then the lowest index) while
    the in-flight counts differ by at most ``imbalance_threshold``; otherwise the least loaded,
    pulling the KV from the best holder when it holds more than ``pull_gap_tokens`` more.
    Returns ``(instance, pull_from)``, ``(-1, -1)`` when no instance fits. ``in_flight``,
    ``kv_free`` and ``slots_free`` are the loads so far in this decision.

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[100], n_instances=2, generated_tokens=[900],
    ...                              last_instance=[0])
    >>> z, room = np.zeros(2, np.int64), np.full(2, 10**6)
    >>> select_instance(v, 0, 2000, in_flight=z, kv_free=room, slots_free=room)
    (0, -1)
    >>> select_instance(v, 0, 2000, in_flight=np.array([40, 0]), kv_free=room, slots_free=room)
    (1, 0)
    """
    ok = (kv_free >= kv_need) & (slots_free > 0)
    if not ok.any():
        return -1, -1
    hit = view.hit_tokens(position)
    cand = np.flatnonzero(ok)
    if int(in_flight.max() - in_flight.min()) <= imbalance_threshold:
        best = cand[np.lexsort((cand, in_flight[cand], -hit[cand]))[0]]
        return int(best), -1
    best = int(cand[np.lexsort((cand, in_flight[cand]))[0]])
    holder = int(np.argmax(hit))
    if hit[holder] - hit[best] > pull_gap_tokens and holder != best:
        return best, holder
    return best, -1


def seer(
    view: DividedView,
    /,
    *,
    chunk_tokens: int | None = 8192,
    order: str = "context-aware",
    prior: str = "max-tokens",
    imbalance_threshold: int = 32,
    pull_gap_tokens: int = 512,
    starvation_eps: float = 0.05,
    seed: int = 0,
) -> Chunks:
    """Seer's divided rollout with context-aware scheduling: offer the waiting requests an
    instance in :func:`scheduling_order`, each a chunk of :func:`chunk_budget`, on
    :func:`select_instance`; stop at the first that fits nowhere (the cycle ends, Algorithm 2:
    "no available instance"). With probability ``starvation_eps`` a pick serves instead the
    waiting request of the group served least so far (its requests' ``served_s`` summed).

    Parameters (paper defaults; [recon] where it gives none)
    ----------
    chunk_tokens : int or None, default 8192
        The chunk's output tokens [recon: the OSDI text gives no size; 8K per a write-up]; None
        for no chunking (request-level scheduling).
    order : {"context-aware", "fifo", "oracle"}, default "context-aware"
    prior : {"max-tokens", "predictor"}, default "max-tokens"
        The estimate before a group's first finish (:func:`group_estimates`).
    imbalance_threshold : int, default 32
        In-flight spread up to which cache affinity decides (§3.2).
    pull_gap_tokens : int, default 512
        The hit gap above which the KV is pulled rather than computed again (§3.2).
    starvation_eps : float in [0, 1], default 0.05
        The anti-starvation pick's probability [recon: the paper gives no rate]; 0 in tests.
    seed : int, default 0
        With the view's ``decision`` counter, seeds the ``numpy.random.Generator`` of the
        anti-starvation picks (no hidden state: the same view, the same answer).

    Invariants checked by the property tests: only waiting requests, each once; every budget
    within the request's limit and the chunk size; the chunks' largest KV fits their instances
    (memory-aware: no preemption); with ``starvation_eps=0`` probes precede other requests,
    fewer generated tokens first, and the others come in non-increasing estimate; the pull
    rule; purity and determinism.

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[100, 100], n_instances=1,
    ...     max_tokens=[20000, 20000], kv_capacity_tokens=[10000])
    >>> seer(v).request.tolist()     # one chunk (8,292 tokens of KV) fits, the second does not
    [0]
    """
    where = "seer"
    if chunk_tokens is not None:
        check_positive_int(chunk_tokens, "chunk_tokens", where)
    check_nonneg_int(imbalance_threshold, "imbalance_threshold", where)
    check_nonneg_int(pull_gap_tokens, "pull_gap_tokens", where)
    eps = check_fraction(starvation_eps, "starvation_eps", where, open_low=False)
    check_nonneg_int(seed, "seed", where)
    ranked = scheduling_order(view, order=order, prior=prior)
    if ranked.shape[0] == 0:
        return Chunks.none()
    budget = chunk_budget(view, ranked, chunk_tokens)
    need = view.context_tokens(ranked) + budget
    in_flight = view.in_flight_requests.copy()
    kv_free = view.kv_free_tokens.copy()
    slots = view.slots_free.copy()
    rng = np.random.default_rng([seed, view.decision]) if eps > 0 else None
    group_served = np.bincount(view.group_index, view.served_s,
                               minlength=view.group_on_instance.shape[0])
    taken = np.zeros(ranked.shape[0], dtype=bool)
    out: list[tuple[int, int, int, int]] = []
    head = 0
    while True:
        while head < ranked.shape[0] and taken[head]:
            head += 1
        if head == ranked.shape[0]:
            break
        j = head
        if rng is not None and rng.random() < eps:  # serve the least-served group instead
            left = np.flatnonzero(~taken)
            groups = view.group_index[ranked[left]]
            j = int(left[np.argmin(group_served[groups])])
        r = int(ranked[j])
        i, pull = select_instance(view, r, int(need[j]), in_flight=in_flight, kv_free=kv_free,
                                  slots_free=slots, imbalance_threshold=imbalance_threshold,
                                  pull_gap_tokens=pull_gap_tokens)
        if i < 0:
            break
        taken[j] = True
        out.append((r, i, int(budget[j]), pull))
        in_flight[i] += 1
        slots[i] -= 1
        kv_free[i] -= int(need[j])
    if not out:
        return Chunks.none()
    a = np.array(out, dtype=np.int64)
    return Chunks(request=a[:, 0], instance=a[:, 1], budget=a[:, 2], pull_from=a[:, 3])


def group_round_robin_all(view: DividedView, /) -> Chunks:
    """veRL's rollout as a divided-rollout scheduler: at the first call every request goes at
    once, whole (its entire limit), prompt ``j`` with all its samples to instance ``j mod N``;
    nothing is memory-aware, so an instance whose KV overflows preempts (by recomputation).

    Seer §2 (the group-level round-robin baseline). No parameters. Invariants (tests): each
    group on one instance; every request dispatched in one call with its whole limit.

    >>> from schedlab.contract.divided import DividedView
    >>> v = DividedView.from_columns(input_tokens=[1] * 3, group_id=[4, 4, 9], n_instances=2)
    >>> group_round_robin_all(v).instance.tolist()
    [0, 0, 1]
    """
    w = view.waiting
    if w.shape[0] == 0:
        return Chunks.none()
    return Chunks(request=w, instance=view.group_index[w] % view.n_instances,
                  budget=view.max_tokens[w] - view.generated_tokens[w])
