"""The hypothesis strategies produce consistent records."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from schedlab.contract import KV_GPU, KV_HOST, KV_NONE, QueueView, RouterView
from schedlab.records import Workload
from schedlab.testing import queue_views, router_views, workloads

PROPS = settings(max_examples=80, deadline=None, database=None, derandomize=True)


@PROPS
@given(queue_views())
def test_queue_views_are_consistent(v: QueueView) -> None:
    gpu = v.kv_location == KV_GPU
    assert v.kv_free_tokens == v.kv_capacity_tokens - int(v.kv_tokens[gpu].sum()) >= 0
    assert (v.prefilled_tokens <= v.input_tokens).all()
    assert (v.prefilled_tokens >= 0).all() and (v.generated_tokens >= 0).all()
    # KV held = prefilled + output since the last (re)prefill, and never without a location
    assert (v.kv_tokens >= v.prefilled_tokens).all()
    assert ((v.kv_tokens > 0) == (v.kv_location != KV_NONE)).all()
    decoding = (v.prefilled_tokens == v.input_tokens) & (v.kv_location != KV_NONE)
    assert (v.kv_tokens[decoding] > v.input_tokens[decoding]).all()  # holds >= 1 output token
    assert gpu[v.running].all()
    assert (v.arrival_s <= v.last_run_s).all() and (v.last_run_s <= v.now_s).all()
    assert (v.priority >= -1).all() and (v.attained_s[v.priority < 0] == 0).all()
    order = np.argsort(v.input_tokens, kind="stable")
    assert (np.diff(v.est_prefill_s[order]) >= 0).all()
    assert np.unique(v.request_id).shape[0] == v.n
    if v.chunk_tokens == 0:
        assert not ((v.prefilled_tokens > 0) & (v.prefilled_tokens < v.input_tokens)).any()
    assert all(not a.flags.writeable for a in (getattr(v, c) for c in v.column_names()))


def test_queue_views_reach_every_phase_over_many_draws() -> None:
    seen: set[str] = set()

    @settings(max_examples=150, deadline=None, database=None, derandomize=True)
    @given(queue_views(chunked=True, min_requests=4))
    def collect(v: QueueView) -> None:
        left = v.input_tokens - v.prefilled_tokens
        loc = v.kv_location
        gen = v.generated_tokens
        if ((loc == KV_NONE) & (gen == 0)).any():
            seen.add("new")
        if ((loc == KV_GPU) & (left > 0) & (gen == 0)).any():
            seen.add("prefilling")
        if ((loc == KV_GPU) & (left == 0)).any():
            seen.add("decoding")
        if (loc == KV_HOST).any():
            seen.add("swapped")
        if ((loc == KV_NONE) & (gen > 0)).any():
            seen.add("recomputing")
        if ((loc == KV_GPU) & (left > 0) & (gen > 0)).any():
            seen.add("re-prefilling")
        if v.kv_free_tokens == 0 and v.n:
            seen.add("full")

    collect()
    assert seen == {
        "new",
        "prefilling",
        "decoding",
        "swapped",
        "recomputing",
        "re-prefilling",
        "full",
    }


@PROPS
@given(router_views())
def test_router_views_are_consistent(v: RouterView) -> None:
    k = v.n_instances
    assert v.kv_used_tokens.shape == v.kv_capacity_tokens.shape == v.queue_length.shape == (k,)
    assert (v.kv_used_tokens <= v.kv_capacity_tokens).all() and (v.kv_capacity_tokens > 0).all()
    assert v.input_tokens.shape == v.output_tokens_pred.shape == v.request_id.shape
    assert not v.outstanding_tokens.flags.writeable


@PROPS
@given(workloads(max_requests=12))
def test_workloads_are_valid(w: Workload) -> None:
    assert 1 <= len(w) <= 12
    assert (np.diff(w.arrival_s) >= 0).all()
    assert (w.input_tokens >= 1).all() and (w.output_tokens >= 1).all()
