"""Property tests: random workloads and instance limits keep the simulator's invariants."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sim_toy_policies import toy_fcfs, toy_swapper
from test_sim_core import affine_cost, kv_trace_ok

from schedlab import Workload
from schedlab.sim import InstanceSpec, simulate


@st.composite
def cases(draw):
    n = draw(st.integers(1, 25))
    gaps = draw(st.lists(st.floats(0.0, 0.5), min_size=n, max_size=n))
    inp = draw(st.lists(st.integers(1, 80), min_size=n, max_size=n))
    out = draw(st.lists(st.integers(1, 40), min_size=n, max_size=n))
    w = Workload(arrival_s=np.cumsum(gaps), input_tokens=inp, output_tokens=out)
    spec = InstanceSpec(
        cost=affine_cost(draw(st.integers(60, 400))),
        max_batch_size=draw(st.integers(1, 6)),
        max_batch_tokens=draw(st.integers(40, 200)),
        chunk_tokens=draw(st.sampled_from([0, 7, 32])),
    )
    return w, spec


@settings(max_examples=50, deadline=None)
@given(cases())
def test_every_request_ends_and_closed_form_matches_stepping(case) -> None:
    w, spec = case
    fast = simulate(w, spec, toy_fcfs, record_iterations=True)
    assert set(fast.status) <= {"completed", "rejected"}
    assert ((fast.status == "rejected") == (fast.reject_reason != "")).all()
    kv_trace_ok(fast, [spec.kv_capacity(spec.cost)])
    slow = simulate(w, spec, toy_fcfs, closed_form=False)
    assert np.array_equal(fast.status, slow.status)
    np.testing.assert_allclose(fast.finish_s, slow.finish_s, rtol=1e-9, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(cases())
def test_preempting_policy_completes_what_fits(case) -> None:
    w, spec = case
    big = InstanceSpec(cost=spec.cost, max_batch_size=spec.max_batch_size,
                       max_batch_tokens=max(spec.max_batch_tokens, 200), chunk_tokens=0)
    res = simulate(w, big, toy_swapper)
    fits = (w.input_tokens + w.output_tokens) <= big.kv_capacity(big.cost)
    assert (res.status[fits] == "completed").all()
    assert (res.reject_reason[~fits] == "prompt_exceeds_kv_capacity").all()
