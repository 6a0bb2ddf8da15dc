"""Policy views share the queue's storage instead of copying it: whatever a policy keeps of a
view (the view, a column, a slice of one, an array a compiled kernel returns from one, a column
returned in the decision) never changes afterwards, and the built-in policies keep nothing, so
they never cost a copy."""

from __future__ import annotations

import numpy as np
import pytest
from sim_toy_policies import toy_fcfs

from schedlab import Workload
from schedlab.contract import BatchDecision, QueueView
from schedlab.costmodel.base import ConstantIterationCost
from schedlab.jit import njit
from schedlab.policies import REGISTRY, get_policy
from schedlab.sim import InstanceSpec, simulate
from schedlab.sim.state import QueueColumns, RequestTable

COLUMNS = ("request_id", "arrival_s", "input_tokens", "output_tokens_pred", "prefilled_tokens",
           "generated_tokens", "kv_tokens", "kv_location", "running", "priority", "attained_s",
           "last_run_s", "est_prefill_s")


def _workload(n: int = 60, seed: int = 3) -> Workload:
    rng = np.random.default_rng(seed)
    return Workload(
        arrival_s=np.sort(rng.random(n)) * 2.0,
        input_tokens=rng.integers(5, 60, n),
        output_tokens=rng.integers(1, 30, n),
    )


def _spec() -> InstanceSpec:
    # tight KV: requests wait, complete and leave, so the storage moves under the kept views
    return InstanceSpec(cost=ConstantIterationCost(slot_s=0.01), kv_capacity_tokens=400,
                        max_batch_size=6)


@njit
def _tail(a):
    return a[1:]


def _keeper(kept: list) -> object:
    """toy_fcfs that keeps the view, a column, a slice, a kernel's slice and a derived view,
    with copies taken at the decision to compare against later."""

    def policy(view: QueueView, /) -> BatchDecision:
        copies = {c: getattr(view, c).copy() for c in COLUMNS}
        kept.append((
            copies,
            view,
            view.kv_tokens,
            view.generated_tokens[: max(view.n - 1, 0)],
            _tail(view.prefilled_tokens),
            view.attained_s.view(np.int64),
        ))
        return toy_fcfs(view)

    return policy


def test_kept_views_and_arrays_derived_from_them_never_change() -> None:
    kept: list = []
    res = simulate(_workload(), _spec(), _keeper(kept))
    assert (res.status == "completed").all() and len(kept) == res.decisions > 20
    for copies, view, kv, gen_head, prefilled_tail, attained_bits in kept:
        for c in COLUMNS:
            np.testing.assert_array_equal(getattr(view, c), copies[c], err_msg=c)
        np.testing.assert_array_equal(kv, copies["kv_tokens"])
        np.testing.assert_array_equal(gen_head, copies["generated_tokens"][: gen_head.shape[0]])
        np.testing.assert_array_equal(prefilled_tail, copies["prefilled_tokens"][1:])
        np.testing.assert_array_equal(attained_bits, copies["attained_s"].view(np.int64))


def test_keeping_views_does_not_change_the_schedule() -> None:
    w, spec = _workload(), _spec()
    plain = simulate(w, spec, toy_fcfs)
    keeping = simulate(w, spec, _keeper([]))
    np.testing.assert_array_equal(plain.finish_s, keeping.finish_s)
    np.testing.assert_array_equal(plain.first_token_s, keeping.first_token_s)


def _mlfq_like(copy: bool) -> object:
    """Returns the view's own priority column (or a copy of it) in the decision, and a new
    attained column: the engine writes the decision's columns while the view shares them."""

    def policy(view: QueueView, /) -> BatchDecision:
        d = toy_fcfs(view)
        prio = view.priority.copy() if copy else view.priority
        return BatchDecision(run=d.run, priority=prio, attained_s=view.attained_s * 0.5)

    return policy


def test_a_decision_holding_view_columns_gives_the_same_schedule_as_copies() -> None:
    w, spec = _workload(), _spec()
    a = simulate(w, spec, _mlfq_like(copy=False))
    b = simulate(w, spec, _mlfq_like(copy=True))
    np.testing.assert_array_equal(a.finish_s, b.finish_s)
    np.testing.assert_array_equal(a.first_token_s, b.first_token_s)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_built_in_policies_keep_nothing_of_the_view(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A policy that keeps part of a view costs a storage copy; ours never do."""
    detached: list[int] = []
    real = QueueColumns.detach

    def counting(self: QueueColumns) -> None:
        detached.append(self.n)
        real(self)

    monkeypatch.setattr(QueueColumns, "detach", counting)
    # check_static: a kept static plan is also asked at every decision point (more calls)
    policy, calls = get_policy(name), []

    def counted(view: QueueView, /) -> object:
        calls.append(view.n)
        return policy(view)

    simulate(_workload(120), _spec(), counted, check_static=True)
    assert len(calls) > 20 and detached == []
    # the counter does count: a keeping policy detaches at every decision
    keeping = simulate(_workload(), _spec(), _keeper([]))
    assert len(detached) == keeping.decisions


def test_view_columns_are_read_only_and_cannot_be_made_writeable() -> None:
    t = RequestTable.empty(np.zeros(3), np.array([4, 5, 6]), np.array([1, 2, 3]), np.ones(3))
    q = QueueColumns()
    q.append(np.arange(3), t, np.zeros(3))
    cols = q.snapshot()
    assert [c.shape[0] for c in cols] == [3] * len(COLUMNS)
    for c in cols:
        assert not c.flags.writeable
        with pytest.raises(ValueError):
            c.flags.writeable = True
    assert q.escaped()
    del cols, c
    assert not q.escaped()
