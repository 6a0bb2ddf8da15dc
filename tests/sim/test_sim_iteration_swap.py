"""QueueView.iteration / previous_decision_iteration, the host swap space a view shows, and
InstanceSpec.overlap_swap."""

from __future__ import annotations

import numpy as np
import pytest
from sim_toy_policies import toy_swapper
from test_sim_core import affine_cost, workload

from schedlab import Workload
from schedlab.contract import BatchDecision
from schedlab.costmodel.base import ConstantIterationCost, FastPathsFromChecked
from schedlab.sim import InstanceSpec, simulate


@pytest.mark.parametrize("closed_form", [True, False])
def test_view_counts_iterations_including_closed_form_decode_steps(closed_form: bool) -> None:
    seen = []

    def periodic(view, /):
        seen.append((view.now_s, view.iteration, view.previous_decision_iteration))
        return BatchDecision(run=np.arange(view.n), reconsider_at_s=view.now_s + 10.5)

    w = Workload(arrival_s=[0.0], input_tokens=[4], output_tokens=[100])
    res = simulate(w, InstanceSpec(cost=ConstantIterationCost(slot_s=1.0)), periodic,
                   closed_form=closed_form)
    # one slot per iteration: the iteration count before a decision equals its time
    assert all(it == int(t) for t, it, _ in seen)
    assert seen[0][1:] == (0, -1)
    assert all(prev == seen[j][1] for j, (_, _, prev) in enumerate(seen[1:]))
    if closed_form:
        assert [it for _, it, _ in seen[:4]] == [0, 1, 12, 23]
    assert res.iterations == 100


def test_iteration_counter_matches_the_log_with_preemption() -> None:
    seen = []

    def spy(view, /):
        seen.append((view.now_s, view.iteration, view.previous_decision_iteration))
        return toy_swapper(view)

    w = workload(n=30, seed=1, rate=10.0, max_in=40)
    spec = InstanceSpec(cost=affine_cost(120), max_batch_size=4, max_batch_tokens=64)
    res = simulate(w, spec, spy, record_iterations=True)
    ends = res.iteration_log["end_s"]
    for t, it, _ in seen:
        assert it == int(np.count_nonzero(ends <= t + 1e-12))
    assert [p for _, _, p in seen[1:]] == [it for _, it, _ in seen[:-1]]


def test_view_shows_the_host_swap_space_size_and_what_is_free() -> None:
    seen = []

    def spy(view, /):
        seen.append((view.host_kv_capacity_tokens, view.host_kv_free_tokens,
                     int(view.kv_tokens[view.kv_location == 2].sum())))
        return toy_swapper(view)

    w = workload(n=30, seed=1, rate=10.0, max_in=40)
    spec = InstanceSpec(cost=affine_cost(120), max_batch_size=4, max_batch_tokens=64,
                        host_kv_capacity_tokens=5000)
    res = simulate(w, spec, spy)
    assert res.swaps.sum() > 0
    assert all(cap == 5000 and free + on_host == cap for cap, free, on_host in seen)
    assert any(on_host > 0 for _, _, on_host in seen)


def _swap_run(overlap: bool):
    w = workload(n=30, seed=1, rate=10.0, max_in=40)
    spec = InstanceSpec(cost=affine_cost(120), max_batch_size=4, max_batch_tokens=64,
                        overlap_swap=overlap)
    return simulate(w, spec, toy_swapper, record_iterations=True)


def test_overlap_swap_takes_max_of_compute_and_swap() -> None:
    serial, overlap = _swap_run(False), _swap_run(True)
    assert (serial.status == "completed").all() and (overlap.status == "completed").all()
    assert serial.swaps.sum() > 0
    # overlapping shortens the iterations that swap (the makespan is set by the arrivals here)
    assert overlap.busy_s < serial.busy_s
    assert overlap.summary()["makespan_s"] <= serial.summary()["makespan_s"]


class _SlowSwapCost(FastPathsFromChecked):
    """Every iteration one second; swapping costs 30 ms per token."""

    kv_capacity_tokens = 10_000
    kv_bytes_per_token = 1.0

    def iteration_time_s(self, prefill_tokens, prefill_context, decode_batch, decode_context_sum):
        return 1.0

    def decode_steps_time_s(self, batch_size, context_sum, n_steps):
        return np.asarray(n_steps, dtype=np.float64)

    def prefill_time_s(self, input_tokens):
        return np.ones(np.shape(input_tokens))

    def swap_time_s(self, tokens):
        return 0.03 * np.asarray(tokens, dtype=np.float64)


def test_overlap_swap_iteration_durations() -> None:
    """One request swapped out while another runs: serial = compute + swap, overlap = max."""

    def evict_first(view, /):
        if view.n == 2 and view.kv_location[0] == 1 and view.kv_location[1] == 0:
            return BatchDecision(run=np.array([1]), swap_out=np.array([0]))
        return BatchDecision(run=np.array([0]))  # a host-resident request is swapped in

    w = Workload(arrival_s=[0.0, 0.5], input_tokens=[100, 4], output_tokens=[3, 1])
    durations = {}
    for overlap in (False, True):
        spec = InstanceSpec(cost=_SlowSwapCost(), overlap_swap=overlap)
        res = simulate(w, spec, evict_first, record_iterations=True)
        log = res.iteration_log
        durations[overlap] = (log["end_s"] - log["start_s"]).tolist()
    # iteration 0 prefills request 0 (100 tokens -> 101 KV with its first token); at 1.0 the
    # policy swaps it out while request 1 prefills
    assert durations[False][:2] == pytest.approx([1.0, 1.0 + 0.03 * 101])  # compute + swap
    assert durations[True][:2] == pytest.approx([1.0, max(1.0, 0.03 * 101)])
    assert durations[True][1] < durations[False][1]
    # the swap-in of request 0 at its next run: compute + swap (101 tokens) again
    assert durations[False][2] == pytest.approx(1.0 + 0.03 * 101)
    assert durations[True][2] == pytest.approx(0.03 * 101)


def test_overlap_swap_runs_swap_out_and_swap_in_side_by_side() -> None:
    """A step that swaps one request out and another in: serial = compute + out + in, overlap =
    max(compute, out, in) (FastServe's two swap streams; PCIe is full duplex)."""

    def rotate(view, /):
        on_gpu = np.flatnonzero(view.kv_location == 1)
        on_host = np.flatnonzero(view.kv_location == 2)
        if view.n == 3 and on_host.shape[0] == 1 and on_gpu.shape[0] == 2:
            p = int(on_host[0])
            q = int(on_gpu[0])
            return BatchDecision(run=np.array([p]), swap_out=np.array([q]))
        if view.n == 3 and on_gpu.shape[0] == 3:
            return BatchDecision(run=np.array([2]), swap_out=np.array([0]))
        return BatchDecision(run=np.arange(view.n))

    w = Workload(arrival_s=[0.0, 0.0, 0.0], input_tokens=[100, 50, 4], output_tokens=[5, 5, 5])
    durations = {}
    for overlap in (False, True):
        spec = InstanceSpec(cost=_SlowSwapCost(), overlap_swap=overlap)
        log = simulate(w, spec, rotate, record_iterations=True).iteration_log
        durations[overlap] = (log["end_s"] - log["start_s"]).tolist()
    # iteration 0 prefills all three; iteration 1 swaps request 0 out (101 tokens); iteration 2
    # swaps request 1 out (51 tokens) and request 0 back in (101 tokens) to run it
    out_s, in_s = 0.03 * 51, 0.03 * 101
    assert durations[False][2] == pytest.approx(1.0 + out_s + in_s)
    assert durations[True][2] == pytest.approx(max(1.0, out_s, in_s))


def test_overlap_swap_is_validated() -> None:
    with pytest.raises(ValueError, match="overlap_swap"):
        InstanceSpec(cost=ConstantIterationCost(), overlap_swap="yes")
