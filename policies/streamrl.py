"""StreamRL's policies (Zhong et al., "StreamRL: Scalable, Heterogeneous, and Elastic RL for LLMs
with Disaggregated Stream Generation", arXiv 2504.15930v1), as pure functions.

- :func:`skew_aware_dispatch` (§5.3, Eq. 2, Algorithm 2): the predicted-longest ``alpha`` of the
  prompts on a separate pool of "long-tail" instances, the pools' sizes chosen by the latency
  model, longest predicted first within each instance (LPT, §5.3 "scheduling order").
- :func:`pool_latency_s` (Eq. 2): ``PTL(BS) x L_avg x ceil(M / BS)``.
- :func:`dynamic_batches` (§4.1, dynamic-batch pipelining): the trainer takes every sample
  streamed so far as one batch whenever it is idle and enough have arrived.
- :func:`rl_pipeline` (§4.1, Fig. 5): iterations of generation and training, colocated or
  disaggregated, synchronous or one-step asynchronous, batched or streamed; the iteration time.
- :func:`balance_stages` and :func:`balance_cross_dc` (§4.2, Algorithm 1): the GPU split
  between generation and training; :func:`elastic_scale_up` (§4.2): add a generation unit.

What the paper leaves open and is reconstructed here is marked [recon] where it is used.

>>> from schedlab.contract.dispatch import DispatchView
>>> v = DispatchView.from_columns(input_tokens=[100] * 10, n_instances=4,
...     output_tokens_pred=[100.0] * 8 + [5000.0] * 2, max_batch_size=4)
>>> d = skew_aware_dispatch(v)
>>> d.long_instances, sorted(set(d.instance[8:].tolist()))   # the two long ones on the long pool
(1, [0])
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from schedlab.contract.dispatch import Dispatch, DispatchView
from schedlab.contract.placement import DecodeStepModel
from schedlab.errors import (
    check_array,
    check_fraction,
    check_nonneg_float,
    check_positive_int,
)
from schedlab.policies.rollout import groups_of, least_loaded

__all__ = [
    "COMBINES",
    "balance_cross_dc",
    "balance_stages",
    "dynamic_batches",
    "elastic_scale_up",
    "pool_latency_s",
    "rl_pipeline",
    "skew_aware_dispatch",
]

#: How Algorithm 2 adds up the two pools' latencies: ``"sum"`` as printed in the paper,
#: ``"max"`` (the pools run side by side, so the rollout ends with the slower) [recon variant].
COMBINES = ("sum", "max")


def pool_latency_s(step: DecodeStepModel, samples: int, length: float, instances: int, *,
                   max_batch_size: int, kv_capacity_tokens: int, prompt_tokens: float) -> float:
    """StreamRL Eq. 2 for one instance of a pool: ``PTL(BS) x L_avg x ceil(M / BS)``, with ``M``
    the pool's ``samples`` shared by ``instances`` (``ceil``), ``L_avg = length`` and
    ``BS = min(M, BS_max)``.

    [recon] ``BS_max`` is the batch size limit or what the KV holds at ``prompt_tokens +
    length`` tokens a sample, whichever is smaller; ``PTL(BS)`` is the decode step of ``BS``
    samples at their mean context over a generation (``prompt + length / 2`` each). An empty
    pool takes no time.

    >>> m = DecodeStepModel(base_s=0.008, per_request_s=1e-4)
    >>> round(pool_latency_s(m, 100, 1000.0, 2, max_batch_size=32, kv_capacity_tokens=10**9,
    ...                      prompt_tokens=0.0), 3)    # 50 samples: two rounds of 32 at 11.2 ms
    22.4
    """
    if samples <= 0:
        return 0.0
    m = math.ceil(samples / instances)
    fit = int(kv_capacity_tokens // max(prompt_tokens + length, 1.0))
    bs = max(1, min(m, max_batch_size, fit))
    ptl = float(step.step_s(bs, int(bs * (prompt_tokens + length / 2))))
    return ptl * length * math.ceil(m / bs)


def skew_aware_dispatch(
    view: DispatchView,
    /,
    *,
    alpha: float = 0.2,
    combine: str = "sum",
    long_quantile: float = 90.0,
    regular_quantile: float = 50.0,
    group_level: bool = True,
) -> Dispatch:
    """StreamRL's skewness-aware dispatching and scheduling (§5.3, Algorithm 2).

    1. Sort the prompts by predicted length, longest first (a prompt's score is its samples'
       mean prediction: only the order matters, so a ranker's scores serve as well as lengths);
       the first ``ceil(alpha x |P|)`` are long-tail, the rest regular.
    2. The pools' lengths are percentiles of the output-length distribution ``D``, not the
       predictions: ``L_long = P90(D)``, ``L_reg = P50(D)``. ``D`` is the view's
       ``history_tokens`` (recent generations); without history the predictions stand in for it.
    3. Try every split ``N_long + N_reg = N`` (``N_long`` from 1 to ``N - 1``) and keep the one
       whose combined latency (:func:`pool_latency_s`, Eq. 2) is least, ties to fewer long
       instances. Instances ``0..N_long-1`` form the long pool.
    4. [recon] Within each pool, prompts go, longest predicted first, to the instance with the
       least predicted tokens so far (the paper does not say how a pool is shared out).
    5. Each instance admits its samples longest predicted first, refilling with the longest
       waiting one as samples finish (LPT, §5.3 "scheduling order").

    Parameters (paper defaults)
    ----------
    alpha : float in (0, 1], default 0.2
        The long-tail share ("in practice k=20 works well", §5.3).
    combine : {"sum", "max"}, default "sum"
        Algorithm 2 adds the two pools' latencies (as printed); ``"max"`` takes the slower pool,
        what the makespan of two pools running side by side would be [recon variant].
    long_quantile, regular_quantile : float in [0, 100], defaults 90 and 50
        Percentiles of ``D`` for the long and the regular pool (Algorithm 2: P90, P50).
    group_level : bool, default True
        Dispatch whole prompts (every sample of a prompt on one instance, as StreamRL's ranker
        scores prompts); False ranks and places single samples.

    With one instance, or when ``ceil(alpha |P|)`` would take every prompt, no pool is set apart
    (``long_instances`` 0): all instances are regular and prompts are balanced as in step 4.
    ``est_makespan_s`` is the chosen split's combined latency.

    Invariants checked by the property tests: every sample dispatched once; every long-pool
    prompt's score at least every regular prompt's; ``|P_long| = ceil(alpha |P|)``; the split
    minimises the combined latency over all splits (brute force); within each instance the
    admission order is non-increasing in prediction; invariant to permuting the input when
    scores are distinct; pure and deterministic.

    >>> from schedlab.contract.dispatch import DispatchView
    >>> v = DispatchView.from_columns(input_tokens=[10] * 5, n_instances=2,
    ...     output_tokens_pred=[50.0, 900.0, 40.0, 30.0, 60.0], max_batch_size=2)
    >>> d = skew_aware_dispatch(v)
    >>> d.instance.tolist(), d.admission_order(1).tolist()
    ([1, 0, 1, 1, 1], [4, 0, 2, 3])
    """
    where = "skew_aware_dispatch"
    a = check_fraction(alpha, "alpha", where)
    if combine not in COMBINES:
        raise ValueError(f"The 'combine' parameter of {where} must be one of {COMBINES}. Got "
                         f"{combine!r}.")
    for name, q in (("long_quantile", long_quantile), ("regular_quantile", regular_quantile)):
        if check_nonneg_float(q, name, where) > 100.0:
            raise ValueError(f"The {name!r} parameter of {where} must be in [0, 100]. Got {q!r}.")
    if not isinstance(group_level, bool):
        raise ValueError(f"The 'group_level' parameter of {where} must be a bool. Got "
                         f"{group_level!r}.")
    pred = view.output_tokens_pred
    if group_level:
        first, g = groups_of(view)
        size = np.bincount(g, minlength=first.shape[0])
        score = np.bincount(g, weights=pred, minlength=first.shape[0]) / size
    else:
        g = np.arange(view.n)
        size = np.ones(view.n, dtype=np.int64)
        score = pred
    # longest first; equal scores by position, so the result does not depend on input order
    # when scores are distinct
    rank = np.argsort(-score, kind="stable")
    n_long = math.ceil(a * rank.shape[0])
    if view.n_instances == 1 or n_long == rank.shape[0]:
        n_long = 0  # nothing to set apart: one instance, or every prompt would be long-tail
    k = view.n_instances
    dist = view.history_tokens if view.history_tokens.shape[0] else pred
    l_long = float(np.percentile(dist, long_quantile))
    l_reg = float(np.percentile(dist, regular_quantile))
    long_samples = int(size[rank[:n_long]].sum())
    reg_samples = int(size.sum()) - long_samples
    prompt = float(view.input_tokens.mean()) if view.n else 0.0

    def latency(samples: int, length: float, instances: int) -> float:
        return pool_latency_s(view.decode_step, samples, length, instances,
                              max_batch_size=view.max_batch_size,
                              kv_capacity_tokens=view.kv_capacity_tokens, prompt_tokens=prompt)

    if n_long == 0:
        n_l, est = 0, latency(reg_samples, l_reg, k)
    else:
        best = (math.inf, 0)
        for n_l in range(1, k):
            parts = (latency(long_samples, l_long, n_l), latency(reg_samples, l_reg, k - n_l))
            total = sum(parts) if combine == "sum" else max(parts)
            if total < best[0]:
                best = (total, n_l)
        est, n_l = best
    where_item = np.empty(score.shape[0], dtype=np.int64)
    for items, first_inst, count in ((rank[:n_long], 0, n_l), (rank[n_long:], n_l, k - n_l)):
        if items.shape[0]:
            where_item[items] = first_inst + least_loaded(score[items] * size[items], count)
    return Dispatch(instance=where_item[g], order=np.argsort(-pred, kind="stable"),
                    long_instances=n_l, est_makespan_s=float(est))


def dynamic_batches(ready_s: Any, train_s: Any, *, min_batch: int = 1,
                    start_s: float = 0.0) -> dict[str, np.ndarray]:
    """StreamRL's dynamic-batch pipelining (§4.1, Fig. 5b): samples reach the trainer as they
    complete (``ready_s``); whenever the trainer is idle and at least ``min_batch`` samples wait
    (or the last ones have come), it takes every waiting sample as one batch; a batch takes the
    sum of its samples' ``train_s`` (training cost is linear in tokens [recon]).

    Returns ``batch`` (each sample's batch, in ``ready_s`` order of batches), ``start_s`` and
    ``end_s`` (per batch). The trainer never consumes a sample before it is ready, and the last
    batch ends at ``end_s[-1]``: the iteration's training end, before its one optimizer step.

    Parameters
    ----------
    ready_s : completion time of each sample (finite, >= 0).
    train_s : each sample's training time on the trainer's GPUs (>= 0).
    min_batch : int >= 1, default 1
        The least batch that "saturates the GPUs" (the paper does not quantify it [recon]).
    start_s : when the trainer becomes free for this iteration.

    >>> out = dynamic_batches([1.0, 2.0, 2.5, 9.0], [1.0, 1.0, 1.0, 1.0])
    >>> out["batch"].tolist(), out["start_s"].tolist(), out["end_s"].tolist()
    ([0, 1, 2, 3], [1.0, 2.0, 3.0, 9.0], [2.0, 3.0, 4.0, 10.0])
    >>> out = dynamic_batches([1.0, 2.0, 2.5, 9.0], [1.0, 1.0, 1.0, 1.0], min_batch=2)
    >>> out["batch"].tolist(), out["end_s"].tolist()
    ([0, 0, 1, 1], [4.0, 11.0])
    """
    where = "dynamic_batches"
    ready = check_array(ready_s, "ready_s", where, dtype=np.float64, ndim=1, min_value=0.0)
    cost = check_array(train_s, "train_s", where, dtype=np.float64, ndim=1,
                       length=ready.shape[0], min_value=0.0)
    check_positive_int(min_batch, "min_batch", where)
    t = check_nonneg_float(start_s, "start_s", where)
    order = np.argsort(ready, kind="stable")
    r, c = ready[order], np.cumsum(cost[order])
    n = r.shape[0]
    batch = np.empty(n, dtype=np.int64)
    starts: list[float] = []
    ends: list[float] = []
    i = 0
    while i < n:
        # the trainer waits for min_batch samples (or the rest), then takes all that are ready
        need = min(i + min_batch, n) - 1
        t = max(t, float(r[need]))
        j = int(np.searchsorted(r, t, side="right"))
        starts.append(t)
        t += float(c[j - 1] - (c[i - 1] if i else 0.0))
        ends.append(t)
        batch[order[i:j]] = len(starts) - 1
        i = j
    return {"batch": batch, "start_s": np.array(starts), "end_s": np.array(ends)}


def rl_pipeline(
    completion_s: Any,
    train_s: Any,
    *,
    iterations: int = 8,
    colocated: bool = False,
    stream: bool = True,
    staleness: int = 0,
    weight_s: float = 0.0,
    switch_s: float = 0.0,
    min_batch: int = 1,
) -> dict[str, Any]:
    """Iterations of RL: generation then training, in one of the pipelines of StreamRL Fig. 5.

    Every iteration generates a batch whose samples complete ``completion_s`` after the
    generation starts (one rollout's completion times, e.g. from
    :func:`schedlab.sim.simulate_rollout`) and trains on them for ``train_s`` each. Weight
    version ``v_k`` comes out of training iteration ``k - 1`` and reaches the generators
    ``weight_s`` later (``v_0`` at once).

    - ``colocated``: generation and training share the GPUs (veRL, ColocationRL): neither
      overlaps the other, and each switch costs ``switch_s`` (offload and reload) [recon].
    - otherwise disaggregated: generation of iteration ``k`` starts once the generators are free
      and hold ``v_{k - staleness}``: ``staleness=0`` is synchronous RL, ``1`` one-step
      asynchronous RL (StreamRL-Async), the weights of iteration ``k - 1`` arriving while
      iteration ``k`` trains.
    - ``stream``: samples reach the trainer as they complete and it trains in dynamic batches
      (:func:`dynamic_batches`, StreamRL's stream generation); otherwise it waits for the whole
      batch (the generation stage's end).

    Returns per iteration ``gen_start_s``, ``gen_end_s``, ``train_end_s``, ``version`` (the
    weights its generation used), and ``iteration_s``: the steady-state iteration time, the
    mean spacing of training ends over the second half of the iterations (the pipeline's
    warm-up left out).

    Invariants checked by the property tests: the trainer never takes a sample before it is
    generated; iteration ``k`` is generated with weights at most ``staleness`` versions old
    (``k - version <= staleness``); with ``staleness=0`` each iteration's optimizer step (its
    training end) comes before the next generation starts; colocated stages never overlap.

    >>> done, cost = [10.0, 20.0, 100.0], [5.0, 5.0, 5.0]
    >>> rl_pipeline(done, cost, colocated=True)["iteration_s"]     # 100 s generation + 15 s
    115.0
    >>> rl_pipeline(done, cost, stream=True)["iteration_s"]         # the last sample's 5 s
    105.0
    >>> rl_pipeline(done, cost, staleness=1)["iteration_s"]         # generation-bound
    100.0
    """
    where = "rl_pipeline"
    done = check_array(completion_s, "completion_s", where, dtype=np.float64, ndim=1,
                       min_value=0.0)
    cost = check_array(train_s, "train_s", where, dtype=np.float64, ndim=1,
                       length=done.shape[0], min_value=0.0)
    k_it = check_positive_int(iterations, "iterations", where)
    if staleness not in (0, 1):
        raise ValueError(f"The 'staleness' parameter of {where} must be 0 or 1. Got "
                         f"{staleness!r}.")
    for name, flag in (("colocated", colocated), ("stream", stream)):
        if not isinstance(flag, bool):
            raise ValueError(f"The {name!r} parameter of {where} must be a bool. Got {flag!r}.")
    w = check_nonneg_float(weight_s, "weight_s", where)
    sw = check_nonneg_float(switch_s, "switch_s", where)
    if colocated and staleness:
        raise ValueError(f"{where}: a colocated pipeline is synchronous (staleness=0).")
    g = float(done.max(initial=0.0))
    total = float(cost.sum())
    gen_start: list[float] = []
    gen_end: list[float] = []
    train_end: list[float] = []
    version: list[int] = []
    avail = [0.0]  # when each weight version reaches the generators
    for k in range(k_it):
        need = max(k - staleness, 0)
        start = max(gen_end[-1] if gen_end else 0.0, avail[need])
        if colocated and train_end:
            start = max(start, train_end[-1] + sw)
        gen_start.append(start)
        gen_end.append(start + g)
        version.append(need)
        free = train_end[-1] if train_end else 0.0
        if colocated:
            end = gen_end[-1] + sw + total
        elif stream:
            end = float(dynamic_batches(start + done, cost, min_batch=min_batch,
                                        start_s=free)["end_s"][-1]) if done.shape[0] else free
        else:
            end = max(free, gen_end[-1]) + total
        train_end.append(end)
        avail.append(end if colocated else end + w)
    half = k_it // 2
    ends = np.array(train_end)
    steady = (float(ends[-1] - ends[half - 1]) / (k_it - half) if half >= 1 and k_it > 1
              else float(ends[0]))
    return {"gen_start_s": np.array(gen_start), "gen_end_s": np.array(gen_end),
            "train_end_s": ends, "version": np.array(version, dtype=np.int64),
            "iteration_s": steady}


def balance_stages(gen_s: Mapping[int, float], train_s: Mapping[int, float], n_gpus: int
                   ) -> tuple[int, int, float]:
    """StreamRL Algorithm 1, single data centre: the split ``(x, y)`` of at most ``n_gpus`` GPUs
    between generation (``x``) and training (``y``) that minimises ``max(T_gen(x),
    T_train(y))``; ties to the smaller total, then to more generation GPUs.

    ``gen_s`` and ``train_s`` map a GPU count to the stage's (profiled or simulated) time: the
    candidates are their keys (multiples of an instance or a node). Returns ``(x, y, time)``.

    >>> balance_stages({8: 10.0, 16: 7.0, 24: 6.0}, {8: 12.0, 16: 6.0, 24: 4.0}, 32)
    (16, 16, 7.0)
    """
    check_positive_int(n_gpus, "n_gpus", "balance_stages")
    fits = [(max(float(tg), float(tt)), x + y, -x, x, y)
            for x, tg in gen_s.items() for y, tt in train_s.items() if x + y <= n_gpus]
    if not fits:
        raise ValueError(f"balance_stages: no split of the candidates fits in {n_gpus} GPUs "
                         f"(smallest: {min(gen_s, default=0)} + {min(train_s, default=0)}).")
    t, _, _, x, y = min(fits)
    return x, y, t


def balance_cross_dc(gen_s: Mapping[int, float], train_s: Mapping[int, float], m: int, n: int
                     ) -> tuple[int, int]:
    """StreamRL Algorithm 1, across two data centres (generation has ``m`` GPUs, training
    ``n``): at full allocation, the faster stage shrinks to the count whose time is closest to
    the slower stage's, freeing the rest. ``gen_s`` / ``train_s`` map GPU counts to times and
    must include ``m`` / ``n``. Returns ``(x, y)``.

    >>> balance_cross_dc({16: 6.5, 32: 5.0}, {8: 12.0, 16: 6.0}, 32, 16)   # 16 GPUs freed
    (16, 16)
    """
    if m not in gen_s or n not in train_s:
        raise ValueError(f"balance_cross_dc needs the times at full allocation: gen_s[{m}] and "
                         f"train_s[{n}].")
    t_gen, t_train = float(gen_s[m]), float(train_s[n])
    if t_gen < t_train:
        k = min((x for x in gen_s if x <= m), key=lambda x: (abs(gen_s[x] - t_train), x))
        return k, n
    k = min((y for y in train_s if y <= n), key=lambda y: (abs(train_s[y] - t_gen), y))
    return m, k


def elastic_scale_up(gen_s: float, train_s: float, saving_s: float) -> bool:
    """StreamRL's elastic rule (§4.2): add one generation unit when generation is slower than
    training by at least what the unit would save, ``T_gen - T_train >= delta'`` (so the unit
    does not overshoot: generation stays no faster than training). [recon] A unit that would
    save nothing (``saving_s == 0``) is never added; the paper does not consider the case.

    >>> elastic_scale_up(40.0, 30.0, 8.0), elastic_scale_up(40.0, 35.0, 8.0)
    (True, False)
    >>> elastic_scale_up(40.0, 30.0, 0.0)
    False
    """
    for name, v in (("gen_s", gen_s), ("train_s", train_s), ("saving_s", saving_s)):
        check_nonneg_float(v, name, "elastic_scale_up")
    return float(saving_s) > 0.0 and float(gen_s) - float(train_s) >= float(saving_s)
