"""The serverless platform: the digest's invariants as property tests on random traces
(served once or rejected with a reason, e2e = queue + start + exec, one invocation per sandbox,
the cap, nothing leaked, shared pages once, creations against peak concurrency), the authors'
platform rules (oldest warm instance, LRU eviction, retries, VM back-off) and clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.serverless import Invocations, SandboxStart
from schedlab.costmodel.serverless import SandboxCosts, cost_tables
from schedlab.datasets.serverless import paper_workload, trenv_functions
from schedlab.policies import SANDBOX_POLICIES
from schedlab.sim import simulate_serverless
from schedlab.solvers import memory_floor, peak_concurrency

FNS = trenv_functions()
#: every cost zero but the runs: intervals are the trace's, whatever the path
FREE = SandboxCosts(**{f: 0.0 for f in (
    "netns_s", "netns_contention_s", "rootfs_s", "reconfig_s", "cleanse_s", "cgroup_s",
    "cgroup_per_cpu_s", "clone_cgroup_s", "criu_base_s", "criu_per_thread_s", "copy_base_s",
    "copy_s_per_mb", "init_s_per_mb", "attach_s", "cxl_s_per_mb", "rdma_fault_s",
    "vm_restore_s", "reap_fetch_s_per_mb", "faasnap_fault_s_per_mb", "vm_backoff_s")},
    max_starts=10_000, max_vm_starts=10_000)


@st.composite
def traces(draw: st.DrawFn) -> Invocations:
    n = draw(st.integers(1, 80))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    span = draw(st.sampled_from([0.5, 5.0, 60.0]))
    t = np.sort(rng.uniform(0.0, span, n))
    f = rng.integers(0, draw(st.integers(1, len(FNS))), n)
    return Invocations(arrival_s=t, function=f, n_functions=len(FNS))


@settings(max_examples=60, deadline=None)
@given(traces(), st.sampled_from(sorted(SANDBOX_POLICIES)),
       st.sampled_from([math.inf, 4096.0, 1500.0]), st.integers(0, 4))
def test_every_run_keeps_the_rules(trace, policy, cap, prestart) -> None:
    run = simulate_serverless(trace, FNS, policy, cap_mb=cap, prestart=prestart,
                              prestart_mb=256.0)
    run.verify()  # served once or rejected, terms >= 0, one per sandbox, cap
    served = run.path >= 0
    assert run.served + run.rejected == len(trace)
    assert all("memory cap" in r for r in run.rejections.values())
    np.testing.assert_allclose(run.e2e_s[served],
                               run.queue_s[served] + run.start_s[served] + run.exec_s[served])
    assert (run.charged_mb <= cap + 1e-6).all() and (run.memory_mb >= -1e-6).all()
    # creations plus the pool cover the peak concurrency of the run's own holds
    begin = trace.arrival_s[served] + run.queue_s[served]
    end = begin + run.start_s[served] + run.exec_s[served]
    assert run.creations + run.prestarted >= peak_concurrency(begin, end)
    assert np.unique(run.sandbox[served]).shape[0] <= run.creations + run.prestarted


@settings(max_examples=40, deadline=None)
@given(traces(), st.sampled_from(["faasd", "criu", "reap", "faasnap"]))
def test_nothing_is_leaked_when_instances_expire(trace, policy) -> None:
    run = simulate_serverless(trace, FNS, policy, keep_alive_s=0.0)
    assert run.memory_mb[-1] == pytest.approx(0.0, abs=1e-6)
    assert run.charged_mb[-1] == pytest.approx(0.0, abs=1e-6)
    assert run.expiries == run.creations  # every instance ended, none was reused idle


@settings(max_examples=40, deadline=None)
@given(traces())
def test_repurposing_needs_no_more_sandboxes_than_the_peak(trace) -> None:
    """Invariant 3 with free starts and no cap: TrEnv creates exactly the trace's peak
    concurrency (greedy reuse of any idle sandbox is optimal); per-function keep-alive at
    least as many."""
    t = simulate_serverless(trace, FNS, "trenv", costs=FREE)
    c = simulate_serverless(trace, FNS, "criu", costs=FREE, keep_alive_s=math.inf)
    peak = peak_concurrency(trace.arrival_s, trace.arrival_s + FNS.exec_s[trace.function])
    assert t.creations == peak <= c.creations
    assert (t.queue_s == 0).all() and (t.start_s == 0).all()


def test_expired_trenv_instances_are_cleansed_into_the_pool() -> None:
    """Invariants 1 and 6: an instance TrEnv releases leaves its sandbox in the pool, clean (no
    private page, no share, the pool's charge); the next miss repurposes it."""
    ir, js = FNS.index("IR"), FNS.index("JS")
    tr = Invocations(arrival_s=[0.0, 0.0, 10.0], function=[ir, js, js], n_functions=len(FNS))
    run = simulate_serverless(tr, FNS, "trenv", keep_alive_s=1.0, prestart_mb=256.0)
    c = SandboxCosts()
    assert run.path.tolist() == [2, 2, 1]  # two creates, then a repurpose of a pooled one
    assert run.expiries == run.cleanses == 3  # the third instance expires too, at the end
    assert run.memory_mb[-1] == pytest.approx(2 * c.sandbox_mb)
    at = int(np.searchsorted(run.timeline_s, 9.0, side="right")) - 1  # both in the pool
    assert run.memory_mb[at] == pytest.approx(2 * c.sandbox_mb)
    assert run.charged_mb[at] == pytest.approx(2 * 256.0)
    gone = simulate_serverless(tr, FNS, "criu", keep_alive_s=1.0)
    assert gone.cleanses == 0 and gone.memory_mb[-1] == pytest.approx(0.0, abs=1e-9)


def test_eviction_under_trenv_grows_the_pool_by_one() -> None:
    ir = FNS.index("IR")  # 768 MB limit, pool sandboxes charged 256 MB
    tr = Invocations(arrival_s=[0.0, 5.0], function=[ir, FNS.index("DH")],
                     n_functions=len(FNS))

    def create_only(view, /):
        return SandboxStart("create", "template", "cxl", math.inf, "pool")

    run = simulate_serverless(tr, FNS, create_only, cap_mb=800.0)
    assert run.evictions == 1 and run.cleanses == 1 and run.served == 2
    run.verify()


@settings(max_examples=40, deadline=None)
@given(traces(), st.sampled_from(["cxl", "rdma"]), st.integers(0, 3))
def test_trenv_memory_never_below_the_floor(trace, backend, prestart) -> None:
    """The memory floor at the run's own begins (one image per function, written pages and a
    sandbox per live invocation) bounds a TrEnv run at every moment."""
    run = simulate_serverless(trace, FNS, "trenv", backend=backend, prestart=prestart)
    t, floor = memory_floor(trace, FNS, begin_s=trace.arrival_s + run.queue_s)
    at = np.searchsorted(run.timeline_s, t, side="right") - 1
    assert (run.memory_mb[at] >= floor - 1e-6).all()


@pytest.mark.parametrize("policy", ["trenv", "criu", "reap"])
def test_fresh_allocations_are_private_under_every_restore(policy: str) -> None:
    import dataclasses

    ir = FNS.index("IR")
    heap = np.zeros(len(FNS))
    heap[ir] = 90.0
    big = dataclasses.replace(FNS, heap_mb=heap)
    tr = Invocations(arrival_s=np.arange(10) * 0.5, function=np.full(10, ir),
                     n_functions=len(FNS))
    kw = {"prestart": 10} if policy == "trenv" else {"keep_alive_s": 600.0}
    a = simulate_serverless(tr, FNS, policy, reuse=False, **kw)
    b = simulate_serverless(tr, big, policy, reuse=False, **kw)
    assert b.peak_memory_mb() == pytest.approx(a.peak_memory_mb() + 10 * 90.0)
    _, floor = memory_floor(tr, big)
    assert floor.max() == pytest.approx(memory_floor(tr, FNS)[1].max() + 90.0 * 1)


def test_shared_template_counted_once() -> None:
    js = FNS.index("JS")
    k = 12
    tr = Invocations(arrival_s=np.zeros(k), function=np.full(k, js), n_functions=len(FNS))
    run = simulate_serverless(tr, FNS, "trenv")
    tab = cost_tables(SandboxCosts(), FNS)
    private = tab.private_mb[("template", "cxl")][js]
    assert private <= FNS.touched_mb[js] + SandboxCosts().sandbox_mb  # invariant 5
    assert run.peak_memory_mb() == pytest.approx(FNS.image_mb[js] + k * private)
    criu = simulate_serverless(tr, FNS, "criu")
    assert criu.peak_memory_mb() == pytest.approx(k * tab.private_mb[("criu", "local")][js])


def test_warm_hit_takes_the_oldest_idle_instance() -> None:
    dh = FNS.index("DH")
    tr = Invocations(arrival_s=[0.0, 0.005, 5.0], function=[dh] * 3, n_functions=len(FNS))
    run = simulate_serverless(tr, FNS, "criu")
    assert run.path.tolist() == [2, 2, 0]  # two creates (overlapping), then warm
    assert run.sandbox[2] == run.sandbox[0]  # the one idle longest
    assert run.start_s[2] == 0.0 and run.exec_s[2] == FNS.exec_s[dh]


def test_cap_evicts_least_recently_used_then_retries_then_rejects() -> None:
    ir = FNS.index("IR")  # 768 MB limit
    tr = Invocations(arrival_s=[0.0, 0.0, 0.0], function=[ir] * 3, n_functions=len(FNS))
    run = simulate_serverless(tr, FNS, "criu", cap_mb=1600.0)
    assert run.served == 3 and run.rejected == 0
    assert run.queue_s[2] == pytest.approx(0.5) or run.queue_s[2] > 0.5  # after a retry
    never = simulate_serverless(tr, FNS, "criu", cap_mb=700.0)
    assert never.rejected == 3
    s = never.summary()
    assert s.loc["IR", "rejected"] == 3 and s.loc["IR", "served"] == 0
    assert "IR needs 768 MB" in never.rejections[0] and "4 attempts" in never.rejections[0]


def test_vm_starts_back_off_under_pressure() -> None:
    dh = FNS.index("DH")
    n = 60
    tr = Invocations(arrival_s=np.linspace(0, 0.5, n), function=np.full(n, dh),
                     n_functions=len(FNS))
    slow = simulate_serverless(tr, FNS, "reap", keep_alive_s=0.0)
    calm = simulate_serverless(tr, FNS, "reap", keep_alive_s=0.0,
                               costs=SandboxCosts(vm_backoff_s=0.0))
    assert slow.queue_s.max() > 2 * calm.queue_s.max() > 0


def test_w1_trenv_beats_reap_on_p99() -> None:
    w = paper_workload("w1", cycles=4)
    t = simulate_serverless(w.trace, w.functions, "trenv", cap_mb=w.cap_mb, prestart=70)
    r = simulate_serverless(w.trace, w.functions, "reap", cap_mb=w.cap_mb,
                            keep_alive_s=w.keep_alive_s)
    m = w.trace.arrival_s >= w.warmup_s
    assert np.quantile(t.e2e_s[m], 0.99) < np.quantile(r.e2e_s[m], 0.99)
    assert t.peak_memory_mb(w.warmup_s) < r.peak_memory_mb(w.warmup_s)
    s = t.summary(after_s=w.warmup_s)
    assert set(s.index) == set(w.functions.names) and (s["rejected"] == 0).all()


def test_a_policy_breaking_the_contract_is_named() -> None:
    def bad(view, /):
        return SandboxStart("repurpose", "template", "cxl")

    tr = Invocations(arrival_s=[0.0], function=[0], n_functions=len(FNS))
    with pytest.raises(ValueError, match=r"Sandbox policy 'bad' broke the contract.*no idle"):
        simulate_serverless(tr, FNS, bad)


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"cap_mb": 0.0}, "cap_mb"),
    ({"cap_mb": float("nan")}, "cap_mb"),
    ({"prestart": -1}, "prestart"),
    ({"prestart": 10, "cap_mb": 100.0}, "exceed the cap"),
    ({"policy": "nope"}, "Unknown sandbox policy"),
    ({"reuse": "no"}, "reuse"),
    ({"keep_alive_sec": 3.0}, r"sandbox policy 'criu' has no parameter 'keep_alive_sec'"),
])
def test_bad_arguments_are_named(kwargs: dict, match: str) -> None:
    tr = Invocations(arrival_s=[0.0], function=[0], n_functions=len(FNS))
    policy = kwargs.pop("policy", "criu")
    with pytest.raises(ValueError, match=match):
        simulate_serverless(tr, FNS, policy, **kwargs)


def test_trace_and_functions_must_agree() -> None:
    tr = Invocations(arrival_s=[0.0], function=[0], n_functions=3)
    with pytest.raises(ValueError, match="n_functions"):
        simulate_serverless(tr, FNS)
