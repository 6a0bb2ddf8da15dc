"""Hypothesis strategies for schedlab's records: workloads, instance queue views, router views,
placement views of disaggregated clusters, rollout and elastic views, attention heads cut into
blocks, device-mix problems, retrieval views and GPU-cache views.

Every view they produce is *consistent*, with the simulator's accounting: device-resident KV
never exceeds the capacity, ``kv_free_tokens`` is the capacity minus it, prefill progress never
exceeds ``input_tokens`` (which, after a recomputation, includes the output to prefill again), a
request holds ``prefilled + generated - (generated before its last recompute)`` tokens of KV,
running requests hold KV on the device, and ``est_prefill_s`` grows with the prompt (as a cost
model's batch-1 prefill time does).

>>> from hypothesis import given, settings
>>> @settings(max_examples=5, deadline=None, database=None)
... @given(queue_views(max_requests=6))
... def test(view):
...     assert view.kv_free_tokens >= 0
>>> test()
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from schedlab.contract import KV_GPU, KV_HOST, KV_NONE, QueueView, RouterView
from schedlab.contract.block_attention import BlockView
from schedlab.contract.dispatch import DispatchView
from schedlab.contract.divided import DividedView
from schedlab.contract.elastic import ElasticView
from schedlab.contract.placement import DecodeStepModel, PlacementView
from schedlab.contract.retrieval import CacheView, RetrievalView, WaveIndex
from schedlab.contract.serverless import Functions, SandboxView
from schedlab.records import Workload

__all__ = ["PHASES", "block_views", "cache_views", "device_mix_problems", "dispatch_views",
           "divided_views", "elastic_views", "placement_views", "queue_views", "retrieval_views",
           "router_views", "sandbox_views", "workloads"]

#: Request phases drawn by :func:`queue_views`.
PHASES = ("new", "prefilling", "decoding", "swapped", "recomputing", "re-prefilling")


@st.composite
def workloads(
    draw: st.DrawFn,
    *,
    min_requests: int = 1,
    max_requests: int = 30,
    max_input_tokens: int = 2048,
    max_output_tokens: int = 512,
    max_gap_s: float = 2.0,
) -> Workload:
    """A :class:`~schedlab.records.Workload` with sorted arrivals and positive lengths.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(workloads(max_requests=4))
    ... def test(w):
    ...     assert 1 <= len(w) <= 4 and (w.input_tokens >= 1).all()
    >>> test()
    """
    n = draw(st.integers(min_requests, max_requests))
    gaps = draw(st.lists(st.floats(0.0, max_gap_s), min_size=n, max_size=n))
    inp = draw(st.lists(st.integers(1, max_input_tokens), min_size=n, max_size=n))
    out = draw(st.lists(st.integers(1, max_output_tokens), min_size=n, max_size=n))
    return Workload(arrival_s=np.cumsum(gaps), input_tokens=np.array(inp),
                    output_tokens=np.array(out))


@st.composite
def _request(draw: st.DrawFn, *, chunked: bool, max_input: int, max_output: int) -> dict:
    inp = draw(st.integers(1, max_input))
    pred: float = draw(st.integers(1, max_output))
    if draw(st.booleans()):
        pred = draw(st.floats(1.0, float(max_output), allow_nan=False))
    phases = PHASES if chunked and inp > 1 else tuple(p for p in PHASES if "prefilling" not in p)
    phase = draw(st.sampled_from(phases))
    # the simulator's accounting: after a recomputation ``input_tokens`` is the prompt plus the
    # ``base`` tokens generated before it, and kv = prefilled + generated - base
    if phase in ("recomputing", "re-prefilling") and inp < 2:
        phase = "new"
    gen = 0 if phase in ("new", "prefilling") else draw(st.integers(1, max_output))
    if phase in ("decoding", "swapped"):
        base = draw(st.integers(0, min(gen - 1, inp - 1)))
        prefilled, kv = inp, inp + gen - base
    elif phase == "prefilling":
        prefilled = kv = draw(st.integers(1, inp - 1))
    elif phase == "re-prefilling":
        gen = min(gen, inp - 1)
        prefilled = kv = draw(st.integers(1, inp - 1))
    elif phase == "recomputing":
        gen = min(gen, inp - 1)
        prefilled = kv = 0
    else:
        prefilled = kv = 0
    loc = KV_HOST if phase == "swapped" else KV_GPU if kv > 0 else KV_NONE
    running = (
        phase in ("prefilling", "re-prefilling", "decoding") and kv > 0 and draw(st.booleans())
    )
    seen = phase != "new" or draw(st.booleans())
    return {
        "input_tokens": inp,
        "output_tokens_pred": pred,
        "prefilled_tokens": prefilled,
        "generated_tokens": gen,
        "kv_tokens": kv,
        "kv_location": loc,
        "running": running,
        "priority": draw(st.integers(0, 6)) if seen else -1,
        "attained_s": draw(st.floats(0.0, 0.5)) if seen else 0.0,
        "arrival_s": draw(st.floats(0.0, 10.0)),
        "age_frac": draw(st.floats(0.0, 1.0)),
    }


@st.composite
def queue_views(
    draw: st.DrawFn,
    *,
    min_requests: int = 0,
    max_requests: int = 24,
    max_input_tokens: int = 1024,
    max_output_tokens: int = 256,
    chunked: bool | None = None,
) -> QueueView:
    """A consistent :class:`~schedlab.contract.QueueView` of one instance.

    Requests are drawn in every phase (:data:`PHASES`): new, mid-prefill (only with chunked
    prefill), decoding on the device, swapped to the host, preempted by recomputation (KV
    dropped), or mid-way through the recomputing prefill (chunked only). The KV capacity is
    the device-resident KV plus a random slack (sometimes none), so views range from idle to
    full; the host swap space is the host-resident KV plus a random free part. ``chunked``
    forces chunked prefill on or off (random when None).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(queue_views(max_requests=5, chunked=False))
    ... def test(view):
    ...     assert (view.prefilled_tokens <= view.input_tokens).all() and view.chunk_tokens == 0
    >>> test()
    """
    use_chunks = draw(st.booleans()) if chunked is None else chunked
    n = draw(st.integers(min_requests, max_requests))
    reqs = [
        draw(_request(chunked=use_chunks, max_input=max_input_tokens, max_output=max_output_tokens))
        for _ in range(n)
    ]
    col = {k: np.array([r[k] for r in reqs]) for k in (reqs[0] if reqs else {})}
    now = 10.0 + draw(st.floats(0.0, 5.0))
    arrival = col.get("arrival_s", np.zeros(0))
    last_run = arrival + col.get("age_frac", np.zeros(0)) * (now - arrival)
    inp = col.get("input_tokens", np.zeros(0, dtype=np.int64))
    per_token = draw(st.floats(1e-6, 1e-4))
    fixed = draw(st.floats(0.0, 0.02))
    on_gpu = col.get("kv_location", np.zeros(0)) == KV_GPU
    used = int(col["kv_tokens"][on_gpu].sum()) if n else 0
    # from full (no slack) through tight to ample, so each limit gets to be the binding one
    slack = draw(
        st.one_of(st.just(0), st.integers(0, 4 * max_input_tokens), st.just(100 * max_input_tokens))
    )
    capacity = max(used + slack, 1)
    on_host = col.get("kv_location", np.zeros(0)) == KV_HOST
    host_used = int(col["kv_tokens"][on_host].sum()) if n else 0
    host_free = draw(st.one_of(st.just(2**62), st.integers(0, 4096)))
    ids = draw(st.permutations(range(n))) if n else []
    columns = {
        k: col[k]
        for k in (
            "output_tokens_pred",
            "prefilled_tokens",
            "generated_tokens",
            "kv_tokens",
            "kv_location",
            "running",
            "priority",
            "attained_s",
        )
        if n
    }
    return QueueView.from_columns(
        now_s=now,
        input_tokens=inp,
        kv_capacity_tokens=capacity,
        request_id=np.asarray(ids, dtype=np.int64) + draw(st.integers(0, 1000)),
        arrival_s=arrival,
        last_run_s=last_run,
        est_prefill_s=fixed + per_token * inp,
        max_batch_size=draw(st.one_of(st.integers(1, 4), st.integers(1, 32))),
        max_batch_tokens=draw(st.integers(64, 8192)),
        chunk_tokens=draw(st.integers(1, 512)) if use_chunks else 0,
        block_tokens=draw(st.sampled_from([1, 16])),
        host_kv_free_tokens=host_free,
        host_kv_capacity_tokens=host_free + host_used,
        **columns,
    )


def _ints(draw: st.DrawFn, lo: int, hi: int, size: int) -> np.ndarray:
    """``size`` drawn integers in ``[lo, hi]`` as an int64 array."""
    return np.array(draw(st.lists(st.integers(lo, hi), min_size=size, max_size=size)),
                    dtype=np.int64)


@st.composite
def router_views(draw: st.DrawFn, *, max_instances: int = 8, max_arrivals: int = 10) -> RouterView:
    """A consistent :class:`~schedlab.contract.RouterView`: KV used never above capacity.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(router_views())
    ... def test(view):
    ...     assert (view.kv_used_tokens <= view.kv_capacity_tokens).all()
    >>> test()
    """
    k = draw(st.integers(1, max_instances))
    m = draw(st.integers(1, max_arrivals))
    cap = np.array(draw(st.lists(st.integers(1, 10_000), min_size=k, max_size=k)))
    frac = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=k, max_size=k)))

    def ints(lo: int, hi: int, size: int) -> np.ndarray:
        return _ints(draw, lo, hi, size)

    def ro(a: np.ndarray) -> np.ndarray:
        a.flags.writeable = False
        return a

    return RouterView(
        now_s=draw(st.floats(0.0, 100.0)),
        request_id=ro(np.arange(m, dtype=np.int64)),
        input_tokens=ro(ints(1, 4096, m)),
        output_tokens_pred=ro(ints(1, 1024, m).astype(np.float64)),
        outstanding_tokens=ro(ints(0, 100_000, k)),
        kv_used_tokens=ro(np.floor(frac * cap).astype(np.int64)),
        kv_capacity_tokens=ro(cap),
        queue_length=ro(ints(0, 100, k)),
        round=draw(st.integers(0, 1000)),
        routed_so_far=draw(st.integers(0, 10_000)),
    )


@st.composite
def placement_views(
    draw: st.DrawFn, *, max_prefill: int = 6, max_decode: int = 4, max_pending: int = 12
) -> PlacementView:
    """A consistent :class:`~schedlab.contract.placement.PlacementView`: prefixes below the
    prompt with the best prefix and its holder derived from them, prefill estimates that shrink
    as the prefix grows (the best prefix's never above the local one's), no transfer time where
    nothing is missing, and decode batches, contexts and join times that agree.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(placement_views())
    ... def test(view):
    ...     assert (view.prefix_tokens <= view.best_prefix_tokens).all()
    >>> test()
    """
    p = draw(st.integers(1, max_prefill))
    d = draw(st.integers(1, max_decode))
    n = draw(st.integers(1, 64_000))
    now = draw(st.floats(0.0, 1000.0))

    def ints(lo: int, hi: int, size: int) -> np.ndarray:
        return _ints(draw, lo, hi, size)

    def floats(lo: float, hi: float, size: int) -> np.ndarray:
        return np.array(draw(st.lists(st.floats(lo, hi), min_size=size, max_size=size)),
                        dtype=np.float64)

    prefix = np.minimum(ints(0, 128, p) * 512, n - 1)
    best = int(prefix.max())
    per_token = draw(st.floats(1e-6, 1e-3))
    prefill = (n - prefix) * per_token
    transfer = (best - prefix) * draw(st.floats(0.0, 1e-3))
    batch = ints(0, 8, d)
    dec_inst = np.repeat(np.arange(d), batch)
    dec_ctx = ints(1, 64_000, dec_inst.shape[0])
    m = draw(st.integers(0, max_pending))
    inc_inst = ints(0, d - 1, m)
    return PlacementView.from_columns(
        now_s=now,
        input_tokens=n,
        output_tokens_pred=float(draw(st.integers(1, 4096))),
        request_id=draw(st.integers(0, 10**6)),
        prefix_tokens=prefix,
        queue_s=floats(0.0, 60.0, p),
        queued_requests=ints(0, 20, p),
        prefill_s=prefill,
        prefill_best_s=np.full(p, (n - best) * per_token),
        transfer_s=transfer,
        decode_batch=batch,
        decode_context_tokens=np.bincount(dec_inst, dec_ctx, minlength=d).astype(np.int64),
        decode_kv_free_tokens=ints(0, 200_000, d),
        decode_step=DecodeStepModel(base_s=draw(st.floats(0.005, 0.05)),
                                    per_request_s=draw(st.floats(0.0, 0.01)),
                                    per_context_token_s=draw(st.floats(0.0, 1e-6))),
        decoding_instance=dec_inst,
        decoding_since_s=now - floats(0.0, 100.0, dec_inst.shape[0]),
        decoding_context_tokens=dec_ctx,
        incoming_instance=inc_inst,
        incoming_join_s=now + floats(0.0, 60.0, m),
        incoming_context_tokens=ints(1, 64_000, m),
    )


@st.composite
def dispatch_views(draw: st.DrawFn, *, max_samples: int = 40, max_instances: int = 8
                   ) -> DispatchView:
    """A :class:`~schedlab.contract.dispatch.DispatchView` of a rollout batch: prompts of one to
    four samples (their ids shuffled), heavy-tailed predictions with ties, an optional history,
    batch sizes and KV room from tight to ample.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(dispatch_views())
    ... def test(view):
    ...     assert view.group_id.shape == view.output_tokens_pred.shape
    >>> test()
    """
    n = draw(st.integers(1, max_samples))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    group = np.repeat(np.arange(n), sizes)[:n]
    ids = np.array(draw(st.permutations(range(n))), dtype=np.int64)
    pred = np.array(draw(st.lists(st.sampled_from([1.0, 50.0, 300.0, 2000.0, 20000.0])
                                  | st.floats(1.0, 30000.0), min_size=n, max_size=n)))
    hist = np.array(draw(st.lists(st.floats(1.0, 30000.0), max_size=20)), dtype=np.float64)
    return DispatchView.from_columns(
        input_tokens=_ints(draw, 1, 4000, n),
        n_instances=draw(st.integers(1, max_instances)),
        group_id=ids[group],
        output_tokens_pred=pred,
        max_batch_size=draw(st.integers(1, 64)),
        kv_capacity_tokens=draw(st.integers(5000, 2_000_000)),
        decode_step=DecodeStepModel(base_s=draw(st.floats(1e-3, 0.05)),
                                    per_request_s=draw(st.floats(0.0, 1e-3)),
                                    per_context_token_s=draw(st.floats(0.0, 1e-7))),
        history_tokens=hist,
    )


@st.composite
def divided_views(draw: st.DrawFn, *, max_requests: int = 30, max_instances: int = 6
                  ) -> DividedView:
    """A consistent :class:`~schedlab.contract.divided.DividedView` of a divided rollout in
    progress: groups of one to four requests (the first of each its probe), some done (with the
    tokens they ended at), some in flight, the others waiting with what they generated so far;
    a request that generated something last ran somewhere; instances from idle to
    over-committed.

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(divided_views())
    ... def test(view):
    ...     assert not (view.done & view.in_flight).any()
    >>> test()
    """
    n = draw(st.integers(1, max_requests))
    k = draw(st.integers(1, max_instances))
    sizes = draw(st.lists(st.integers(1, 4), min_size=n, max_size=n))
    group = np.repeat(np.arange(n), sizes)[:n]
    limit = np.full(n, draw(st.sampled_from([256, 4096, 20000])), dtype=np.int64)
    state = _ints(draw, 0, 2, n)  # 0 waiting, 1 in flight, 2 done
    gen = np.minimum(_ints(draw, 0, 20000, n), limit)
    # a request that reached its limit has ended; one that ended generated something
    gen = np.where(state == 2, np.maximum(gen, 1), np.minimum(gen, limit - 1))
    last = np.where(gen > 0, _ints(draw, 0, k - 1, n), -1)
    n_groups = int(group.max()) + 1
    on = np.array(draw(st.lists(st.booleans(), min_size=n_groups * k, max_size=n_groups * k)),
                  dtype=bool).reshape(n_groups, k)
    on[group[last >= 0], last[last >= 0]] = True
    busy = _ints(draw, 0, 64, k)
    cap = np.full(k, draw(st.integers(10_000, 2_000_000)), dtype=np.int64)
    return DividedView.from_columns(
        input_tokens=_ints(draw, 1, 3000, n), n_instances=k, group_id=group, max_tokens=limit,
        output_tokens_pred=np.minimum(_ints(draw, 1, 30000, n), limit).astype(np.float64),
        generated_tokens=gen, done=state == 2, in_flight=state == 1, last_instance=last,
        served_s=np.array(draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n))),
        group_on_instance=on, in_flight_requests=busy,
        slots_free=np.maximum(draw(st.integers(1, 64)) - busy, 0),
        kv_free_tokens=cap - _ints(draw, 0, 1_500_000, k), kv_capacity_tokens=cap,
        decision=draw(st.integers(0, 1000)),
    )


@st.composite
def elastic_views(draw: st.DrawFn, *, max_instances: int = 6, max_waiting: int = 10,
                  max_running: int = 12) -> ElasticView:
    """A consistent :class:`~schedlab.contract.elastic.ElasticView` of an elastic cluster: some
    instances idle, the others split between up to three decode batches whose requests' KV lies
    on their batch's instances (each instance's used slots are the sum of its requests'), waiting
    requests from 1 to 300K tokens, and an analytic prefill model for every instance count; half
    the views ask for a back-fill (some instances prefilling, a finite window).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(elastic_views())
    ... def test(view):
    ...     assert (view.running_kv.sum(axis=0) == view.instance_used).all()
    >>> test()
    """
    n = draw(st.integers(1, max_instances))
    cap = draw(st.sampled_from([2_000, 50_000, 300_000]))
    batch = np.array(draw(st.lists(st.integers(-1, 2), min_size=n, max_size=n)), dtype=np.int64)
    r_batch: list[int] = []
    rows: list[np.ndarray] = []
    for b in np.unique(batch[batch >= 0]).tolist():
        inst = np.flatnonzero(batch == b)
        k = draw(st.integers(1, max(1, max_running // 3)))
        kv = np.zeros((k, n), dtype=np.int64)
        for i in inst.tolist():
            share = np.array(draw(st.lists(st.integers(0, cap // k), min_size=k, max_size=k)))
            kv[:, i] = share
        kv[:, inst[0]] = np.maximum(kv[:, inst[0]], 2)  # every request holds some KV
        kv[:, inst[0]] = np.minimum(kv[:, inst[0]], cap // k)
        r_batch += [b] * k
        rows.append(kv)
    running_kv = np.concatenate(rows) if rows else np.zeros((0, n), dtype=np.int64)
    context = running_kv.sum(axis=1)
    gen = np.array([draw(st.integers(1, int(c) - 1)) for c in context], dtype=np.int64)
    w = draw(st.integers(0, max_waiting))
    waiting = np.array(draw(st.lists(st.sampled_from([1, 10, 300, 4_000, 30_000, 120_000,
                                                      300_000]), min_size=w, max_size=w)),
                       dtype=np.int64)
    a, b_, c_ = (draw(st.floats(1e-3, 5e-2)), draw(st.floats(1e-6, 1e-4)),
                 draw(st.floats(1e-11, 1e-9)))
    return ElasticView.from_columns(
        kv_capacity_tokens=cap, instance_used=running_kv.sum(axis=0), instance_batch=batch,
        instance_node=np.arange(n) // 4,
        prefill_rows={k: (a * (1 + 0.1 * (k - 1)), b_ / k, c_ / k) for k in range(1, n + 1)},
        waiting_tokens=waiting,
        waiting_max_new_tokens=np.array(draw(st.lists(st.integers(1, 4000), min_size=w,
                                                      max_size=w)), dtype=np.int64),
        running_batch=np.array(r_batch, dtype=np.int64), running_input=context - gen,
        running_generated=gen,
        running_max_new_tokens=gen + np.array(draw(st.lists(st.integers(0, 4000),
                                                            min_size=len(r_batch),
                                                            max_size=len(r_batch))),
                                              dtype=np.int64),
        running_kv=running_kv, now_s=draw(st.floats(0.0, 1e4)),
        finished_output_mean=draw(st.floats(1.0, 4000.0)), ooe_rounds=draw(st.integers(0, 6)),
        **({"instance_prefilling": np.array(draw(st.lists(st.booleans(), min_size=n,
                                                          max_size=n))),
            "backfill_window_s": draw(st.floats(0.001, 100.0))} if draw(st.booleans()) else {}))


@st.composite
def block_views(draw: st.DrawFn, *, max_tokens: int = 96, max_dim: int = 8) -> BlockView:
    """One attention head cut into blocks: 1 to ``max_tokens`` keys of 1 to ``max_dim``
    dimensions (Gaussian, or clustered by block so that some blocks stand out), blocks of 1 to
    24 tokens, and 1 to 12 queries at positions anywhere in the sequence (repeats allowed).

    >>> from hypothesis import given, settings
    >>> @settings(max_examples=5, deadline=None, database=None)
    ... @given(block_views())
    ... def test(view):
    ...     assert (view.current_block < view.n_blocks).all()
    >>> test()
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n = draw(st.integers(1, max_tokens))
    d = draw(st.integers(1, max_dim))
    b = draw(st.integers(1, 24))
    keys = rng.normal(0.0, 1.0, (n, d))
    if draw(st.booleans()):  # each block around its own centre
        keys += rng.normal(0.0, 3.0, (-(-n // b), d)).repeat(b, axis=0)[:n]
    m = draw(st.integers(1, 12))
    return BlockView(queries=rng.normal(0.0, draw(st.floats(0.1, 3.0)), (m, d)),
                     positions=rng.integers(0, n, m), keys=keys, block_tokens=b)


@st.composite
def device_mix_problems(draw: st.DrawFn, *,
                        models: tuple[str, ...] = ("llama-3-8b", "llama-2-13b", "llama-3-70b",
                                                   "llama-33b")) -> Any:
    """A heterogeneous-decoding :class:`~schedlab.costmodel.attention_offload.DeviceMixProblem`:
    one of ``models``, a mean context of 64 to 65,536 tokens, no SLO or one of 20 ms to 1 s, up
    to 8 compute and 8 memory devices and 4 replicas, homogeneous mixes allowed or not.

    >>> from hypothesis import find
    >>> p = find(device_mix_problems(), lambda p: p.tbt_slo_s < 1 and p.max_memory > 2)
    >>> 0.02 <= p.tbt_slo_s < 1, p.max_memory
    (True, 3)
    """
    from schedlab.costmodel.attention_offload import DeviceMixProblem

    slo = draw(st.one_of(st.just(float("inf")), st.floats(0.02, 1.0)))
    return DeviceMixProblem(model=draw(st.sampled_from(models)),
                            context_tokens=float(draw(st.integers(64, 65_536))), tbt_slo_s=slo,
                            max_compute=draw(st.integers(1, 8)),
                            max_memory=draw(st.integers(1, 8)),
                            max_replicas=draw(st.integers(1, 4)),
                            homogeneous=draw(st.booleans()))


@st.composite
def retrieval_views(draw: st.DrawFn, *, max_tokens: int = 200, max_dim: int = 8) -> RetrievalView:
    """A decode step of one head over a random :class:`~schedlab.contract.retrieval.WaveIndex`:
    1 to ``max_tokens`` keys of 1 to ``max_dim`` dimensions, each in the steady zone or one of
    up to 40 clusters (some may be empty), and a query.

    >>> from hypothesis import find
    >>> find(retrieval_views(), lambda v: v.index.n_clusters > 3).index.n_clusters
    4
    """
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    n = draw(st.integers(1, max_tokens))
    d = draw(st.integers(1, max_dim))
    m = draw(st.integers(0, 40))
    keys = rng.normal(size=(n, d))
    of = rng.integers(-1, m, n) if m else np.full(n, -1)
    idx = WaveIndex.from_assignment(keys, rng.normal(size=(n, 2)), of, n_clusters=m)
    return RetrievalView(query=rng.normal(0.0, draw(st.floats(0.1, 3.0)), d), index=idx)


@st.composite
def cache_views(draw: st.DrawFn, *, max_capacity: int = 12) -> CacheView:
    """A consistent :class:`~schedlab.contract.retrieval.CacheView` after a decode step: a
    capacity, resident clusters (at most the capacity) used and admitted at earlier steps (the
    requested residents just now), the step's requests and its misses to admit.

    >>> from hypothesis import find
    >>> find(cache_views(), lambda v: v.must_evict > 1).must_evict
    2
    """
    cap = draw(st.integers(0, max_capacity))
    step = draw(st.integers(1, 50))
    pool = np.arange(3 * max_capacity + 3)
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    resident = rng.choice(pool, draw(st.integers(0, cap)), replace=False)
    admitted: np.ndarray = np.asarray(rng.integers(0, step, size=resident.shape[0]))
    last = np.maximum(admitted, rng.integers(0, step, size=resident.shape[0]))
    requested = rng.choice(pool, draw(st.integers(0, min(cap + 2, pool.shape[0]))),
                           replace=False)
    last = np.where(np.isin(resident, requested), step, last)
    return CacheView(step=step, capacity=cap, resident=resident, last_used=last,
                     admitted=admitted, requested=requested,
                     admitting=requested[~np.isin(requested, resident)][:cap])


@st.composite
def sandbox_views(draw: st.DrawFn, *, max_functions: int = 6) -> SandboxView:
    """A :class:`~schedlab.contract.serverless.SandboxView` of a miss: 1 to ``max_functions``
    functions of random sizes (touched pages within the image), idle instances of the others
    (none of the arriving function's: that would be a warm hit), clean sandboxes in the pool,
    the memory charged within the cap (or no cap) and starts under way.

    >>> from hypothesis import find
    >>> find(sandbox_views(), lambda v: v.idle_total == 0 and v.cap_mb < 1e9).idle_total
    0
    """
    k = draw(st.integers(1, max_functions))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    image = rng.uniform(10.0, 900.0, k).round(1)
    fns = Functions(names=tuple(f"f{i}" for i in range(k)), image_mb=image,
                    limit_mb=rng.choice([64.0, 128.0, 256.0, 768.0], k),
                    threads=rng.integers(1, 400, k), cpus=rng.integers(1, 3, k),
                    exec_s=rng.uniform(0.0, 2.0, k).round(3),
                    touched_mb=(image * rng.uniform(0.0, 1.0, k)).round(1),
                    ro_frac=rng.uniform(0.0, 1.0, k).round(2),
                    heap_mb=rng.uniform(0.0, 200.0, k).round(1) * draw(st.booleans()))
    f = draw(st.integers(0, k - 1))
    idle = rng.integers(0, 4, k) * draw(st.booleans())
    idle[f] = 0
    cap = draw(st.sampled_from([float("inf"), 4096.0, 65536.0]))
    used = float(rng.uniform(0.0, min(cap, 1e5)))
    return SandboxView(function=f, now_s=float(draw(st.floats(0.0, 1e4))), functions=fns,
                       idle=idle, pooled=draw(st.integers(0, 3)), memory_mb=round(used, 1),
                       cap_mb=cap, starting=draw(st.integers(0, 12)))
