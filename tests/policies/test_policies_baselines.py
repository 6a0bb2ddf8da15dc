"""FCFS, vLLM, SJF and SRPT: the ordering and preemption rules their docstrings promise."""

from __future__ import annotations

import dataclasses

import numpy as np
from hypothesis import given, settings

from schedlab.contract import KV_GPU, KV_HOST, BatchDecision, QueueView, form_batch, started
from schedlab.contract.accounting import infeasible, request_costs
from schedlab.policies.fcfs import fcfs
from schedlab.policies.ordering import arrival_order
from schedlab.policies.sjf import remaining_pred, sjf, srpt
from schedlab.policies.vllm import vllm
from schedlab.testing import queue_views

PROPS = settings(max_examples=60, deadline=None, database=None, derandomize=True)


def decide(policy, view: QueueView, **params) -> BatchDecision:
    """The batch the engine forms from the policy's plan."""
    return form_batch(view, policy(view, **params))


def _key_order(view: QueueView, positions: np.ndarray, key: np.ndarray) -> list[int]:
    return positions[
        np.lexsort((view.request_id[positions], view.arrival_s[positions], key[positions]))
    ].tolist()


def _ok(view: QueueView) -> np.ndarray:
    keep = np.ones(view.n, dtype=bool)
    keep[infeasible(view)[0]] = False
    return keep


@PROPS
@given(queue_views())
def test_run_to_completion_batches_admitted_then_a_prefix_of_the_waiting(view: QueueView) -> None:
    ok = _ok(view)
    admitted = arrival_order(view, np.flatnonzero(started(view) & ok)).tolist()
    waiting = np.flatnonzero(~started(view) & ok)
    for policy, key in ((fcfs, view.arrival_s), (sjf, view.output_tokens_pred)):
        d = decide(policy, view)
        run = d.run.tolist()
        old = [p for p in run if p in admitted]
        new = run[len(old) :]
        assert old == admitted[: len(old)]  # admitted requests in arrival order, first
        assert new == _key_order(view, waiting, key)[: len(new)]
        if new:  # new requests join only when every admitted one runs and none is preempted
            assert len(old) == len(admitted) and d.recompute.shape[0] == 0
        assert d.swap_out.shape[0] == 0 and d.swap_in.shape[0] == 0


@PROPS
@given(queue_views())
def test_run_to_completion_preempts_only_when_predictions_are_exceeded(view: QueueView) -> None:
    c = request_costs(view)
    ok = _ok(view)
    admitted = np.flatnonzero(started(view) & ok)
    foot = np.maximum(
        view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64),
        view.kv_tokens + c.growth,
    )
    reserved = int(np.maximum(foot[admitted] - c.gpu_kv[admitted], c.demand[admitted]).sum())
    for policy in (fcfs, sjf):
        d = decide(policy, view)
        if reserved <= view.kv_free_tokens:  # every admitted request's reservation holds
            assert d.recompute.shape[0] == 0
        if d.recompute.shape[0]:  # the latest-arrived admitted requests go first
            order = arrival_order(view, admitted).tolist()
            k = sum(1 for p in d.run.tolist() if p in order)
            pos = [order.index(p) for p in d.recompute.tolist()]
            assert min(pos) >= k
            behind = [p for p in order[min(pos) :] if view.kv_location[p] == KV_GPU]
            assert set(behind) == set(d.recompute.tolist())


@PROPS
@given(queue_views())
def test_vllm_preempts_the_latest_arrivals_and_admits_nothing_new_meanwhile(
    view: QueueView,
) -> None:
    d = decide(vllm, view)
    evicted = np.concatenate([d.swap_out, d.recompute])
    assert (view.kv_location[evicted] == KV_GPU).all()
    run = d.run
    key = list(zip(view.arrival_s.tolist(), view.request_id.tolist(), strict=True))
    gpu_run = [p for p in run.tolist() if view.kv_location[p] == KV_GPU]
    if evicted.shape[0]:
        assert min(key[e] for e in evicted) > max((key[p] for p in gpu_run), default=(-1, -1))
        assert all(view.kv_location[p] == KV_GPU for p in run.tolist())
    # queue order: device-resident (running), then swapped, then waiting; each by arrival
    group = np.where(view.kv_location == KV_GPU, 0, np.where(view.kv_location == KV_HOST, 1, 2))
    ok = _ok(view)
    full = np.lexsort((view.request_id, view.arrival_s, group))
    full = full[ok[full]].tolist()
    if not run.shape[0]:
        return
    formed = full[: max(full.index(p) for p in run.tolist()) + 1]
    prefilling = [p for p in formed if not view.prefill_done[p]]
    if view.chunk_tokens == 0 and prefilling:  # decodes wait while prefills run
        assert run.tolist() == prefilling
    else:
        assert run.tolist() == formed


def test_vllm_recomputes_by_default_and_swaps_on_request() -> None:
    v = QueueView.from_columns(
        now_s=1.0,
        input_tokens=[40, 40],
        arrival_s=[0.0, 0.1],
        prefilled_tokens=[40, 40],
        generated_tokens=[10, 10],
        kv_tokens=[50, 50],
        kv_location=[KV_GPU, KV_GPU],
        running=[True, True],
        kv_capacity_tokens=100,
    )
    d = decide(vllm, v)
    assert d.run.tolist() == [0] and d.recompute.tolist() == [1] and d.swap_out.tolist() == []
    d = decide(vllm, v, preempt="swap")
    assert d.swap_out.tolist() == [1] and d.recompute.tolist() == []


def test_vllm_watermark_holds_back_new_requests() -> None:
    v = QueueView.from_columns(
        now_s=1.0,
        input_tokens=[40, 30],
        arrival_s=[0.0, 0.1],
        prefilled_tokens=[40, 0],
        generated_tokens=[10, 0],
        kv_tokens=[50, 0],
        kv_location=[KV_GPU, 0],
        running=[True, False],
        kv_capacity_tokens=100,
    )
    # 1 + 31 tokens fit in 50 free with the 1% watermark (1 token): request 1 is admitted, and
    # its prefill runs alone (request 0 keeps its KV and decodes next iteration)
    d = decide(vllm, v)
    assert d.run.tolist() == [1] and d.swap_out.shape[0] == d.recompute.shape[0] == 0
    assert decide(vllm, v, watermark=0.2).run.tolist() == [0]  # 18 free after < 20 watermark


def test_vllm_mixes_decodes_and_prefill_chunks_only_with_chunked_prefill() -> None:
    v = QueueView.from_columns(
        now_s=1.0, input_tokens=[40, 30, 20], arrival_s=[0.0, 0.1, 0.2],
        prefilled_tokens=[40, 0, 0], generated_tokens=[10, 0, 0], kv_tokens=[50, 0, 0],
        kv_location=[KV_GPU, 0, 0], running=[True, False, False], kv_capacity_tokens=1000,
    )
    assert vllm(v).prefills_alone and decide(vllm, v).run.tolist() == [1, 2]
    chunked = dataclasses.replace(v, chunk_tokens=512)
    assert not vllm(chunked).prefills_alone
    assert decide(vllm, chunked).run.tolist() == [0, 1, 2]


@PROPS
@given(queue_views())
def test_srpt_runs_a_prefix_of_shortest_remaining_and_evicts_only_longer_work(
    view: QueueView,
) -> None:
    d = decide(srpt, view)
    rem = remaining_pred(view)
    order = _key_order(view, np.flatnonzero(_ok(view)), rem)
    k = d.run.shape[0]
    if d.run.tolist() != order[:k]:
        # host space short of the victims: requests that have not started wait, and the batch
        # is a prefix of the started ones (a new request never forces a recomputation)
        begun = started(view)
        assert d.run.tolist() == [p for p in order if begun[p]][:k]
    evicted = np.concatenate([d.swap_out, d.recompute]).tolist()
    if evicted and d.run.shape[0]:
        assert min(order.index(e) for e in evicted) >= d.run.shape[0]
        assert min(rem[evicted]) >= max(rem[d.run])


def test_sjf_admits_the_shortest_first_and_never_preempts() -> None:
    v = QueueView.from_columns(
        now_s=1.0,
        input_tokens=[10, 10, 10],
        arrival_s=[0.0, 0.5, 0.6],
        output_tokens_pred=[100, 50, 5],
        prefilled_tokens=[10, 0, 0],
        generated_tokens=[90, 0, 0],
        kv_tokens=[100, 0, 0],
        kv_location=[KV_GPU, 0, 0],
        running=[True, False, False],
        kv_capacity_tokens=140,
    )
    # request 0 (started, 10 more predicted) keeps running; 15 tokens of room -> request 2 joins
    assert decide(sjf, v).run.tolist() == [0, 2]
    assert decide(fcfs, v).run.tolist() == [0]  # FCFS would need 60 tokens for request 1 first
    assert decide(srpt, v).run.tolist() == [2, 0, 1]


def test_orca_max_reserves_the_maximum_sequence_length_per_request() -> None:
    # 3 waiting requests of 10-token prompts, 100 tokens of KV: with the predicted footprints
    # (10 + 5 each) all three are admitted; reserving 40 tokens each (Orca (Max)) admits two
    v = QueueView.from_columns(now_s=0.0, input_tokens=[10, 10, 10], output_tokens_pred=[5, 5, 5],
                               kv_capacity_tokens=100)
    assert decide(fcfs, v).run.tolist() == [0, 1, 2]
    assert decide(fcfs, v, reserve_max_tokens=40).run.tolist() == [0, 1]
