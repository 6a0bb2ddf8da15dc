"""The engine's compiled kernels against the contract's numpy definitions: batch forming
(:func:`schedlab.sim.forming.form` vs :func:`schedlab.contract.forming.formation`), the effects
of an iteration (:mod:`schedlab.sim.kernels` vs :func:`schedlab.contract.accounting.run_iteration`),
the remapping of a kept order, and whole simulations with numba's JIT turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract import BatchDecision, Plan, QueueView
from schedlab.contract.accounting import run_iteration
from schedlab.contract.forming import formation
from schedlab.sim.forming import FOOT_NONE, FOOT_PREDICTED, FOOT_ROW, form, remap_order, unpack
from schedlab.sim.kernels import batch_chunks, finish_iteration, start_batch
from schedlab.sim.state import (
    DEFERRED,
    EVICTABLE,
    FLAGS,
    FOOT,
    GENERATED,
    KV,
    LEFT,
    PRED,
    PREFILLED,
    PRIORITY,
    TARGET,
)
from schedlab.testing import queue_views

PROPS = settings(max_examples=150, deadline=None, database=None, derandomize=True)


def _columns(view: QueueView) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The view as an instance's int rows, KV locations and running flags (slot = position)."""
    rows = np.zeros((9, view.n), dtype=np.int64)
    rows[TARGET], rows[PREFILLED], rows[GENERATED] = (view.input_tokens, view.prefilled_tokens,
                                                      view.generated_tokens)
    rows[KV], rows[PRIORITY] = view.kv_tokens, view.priority
    rows[LEFT] = 10**6
    return rows, np.array(view.kv_location), np.array(view.running)


@st.composite
def plans(draw: st.DrawFn, view: QueueView) -> Plan:
    n = view.n
    order = np.array(draw(st.permutations(range(n))), dtype=np.int64)[: draw(st.integers(0, n))]
    mask = st.lists(st.booleans(), min_size=n, max_size=n).map(np.array)
    return Plan(
        order=order,
        evictable=draw(st.one_of(st.booleans(), mask)),
        footprint_tokens=draw(st.one_of(st.none(), st.just("predicted"), st.lists(
            st.integers(0, 3000), min_size=n, max_size=n).map(np.array))),
        reserve_tokens=draw(st.sampled_from([0, 0, 16, 256])),
        watermark_tokens=draw(st.sampled_from([0, 0, 10, 500])),
        defer=draw(st.one_of(st.none(), mask)),
        prefetch=draw(st.sampled_from([0, 0, 1, 4, 64])),
        preempt=draw(st.sampled_from(["swap", "recompute"])),
        prefills_alone=draw(st.booleans()),
    )


@PROPS
@given(st.data())
def test_compiled_forming_is_the_contract_rule(data: st.DataObject) -> None:
    view = data.draw(queue_views())
    plan = data.draw(plans(view))
    ref = formation(view, plan)
    rows, loc, running = _columns(view)
    rows[FLAGS] = (EVICTABLE * np.asarray(plan.evictable, dtype=np.int64)
                   + (0 if plan.defer is None else DEFERRED * plan.defer.astype(np.int64)))
    foot = plan.footprint_tokens
    mode = FOOT_NONE if foot is None else FOOT_PREDICTED if isinstance(foot, str) else FOOT_ROW
    if mode == FOOT_ROW:
        rows[FOOT] = foot
    floats = np.zeros((5, view.n))
    floats[PRED] = view.output_tokens_pred
    reached, _, run, swap_out, recompute, swap_in, reject = unpack(form(
        rows, floats, loc, running, view.n, plan.order, view.kv_capacity_tokens,
        view.kv_free_tokens, view.host_kv_free_tokens, view.max_batch_size, view.max_batch_tokens,
        view.chunk_tokens, plan.reserve_tokens, plan.watermark_tokens, mode, plan.prefetch,
        plan.preempt == "swap", plan.prefills_alone,
    ))
    d = ref.decision
    for name, got in (("run", run), ("swap_out", swap_out), ("recompute", recompute),
                      ("swap_in", swap_in), ("reject", reject)):
        assert getattr(d, name).tolist() == got.tolist(), name
    assert bool(reached) == ref.reached_end


@PROPS
@given(st.data())
def test_iteration_effects_are_the_contract_rule(data: st.DataObject) -> None:
    """The engine's per-iteration kernels change the queue as run_iteration defines."""
    view = data.draw(queue_views())
    plan = data.draw(plans(view))
    d = formation(view, plan).decision
    if d.moves:  # run_iteration covers moves too; the kernels here apply the batch only
        d = BatchDecision(run=d.run)
    ref = run_iteration(view, d, duration_s=0.25)
    rows, loc, _ = _columns(view)
    floats = np.zeros((5, view.n))
    floats[2] = view.attained_s
    rid = np.arange(view.n)
    first = np.full(view.n, np.nan)
    status, finish = np.zeros(view.n, np.int8), np.full(view.n, np.nan)
    running = np.zeros(view.n, dtype=bool)
    n_pref = start_batch(rows, running, view.n, d.run)[0]
    chunks = batch_chunks(rows, d.run, n_pref, view.chunk_tokens)[0]
    loc[d.run] = 1  # the engine swaps host-resident batch members in before the iteration
    finish_iteration(rows, floats, loc, rid, first, status, finish, d.run, chunks, 1.0, 1.25,
                     False)
    assert rows[PREFILLED].tolist() == ref.prefilled_tokens.tolist()
    assert rows[GENERATED].tolist() == ref.generated_tokens.tolist()
    assert rows[KV].tolist() == ref.kv_tokens.tolist()
    assert loc.tolist() == ref.kv_location.tolist()
    assert floats[2].tolist() == ref.attained_s.tolist()
    assert running.tolist() == ref.running.tolist()


@PROPS
@given(st.lists(st.integers(0, 40), unique=True, max_size=30),
       st.lists(st.integers(0, 40), unique=True, max_size=10))
def test_remap_order_drops_and_renumbers(order: list[int], gone: list[int]) -> None:
    g = np.array(sorted(gone), dtype=np.int64)
    got = remap_order(np.array(order, dtype=np.int64), g).tolist()
    assert got == [p - sum(x < p for x in gone) for p in order if p not in gone]


_RUNS = textwrap.dedent(
    """
    import numpy as np
    from schedlab import Workload
    from schedlab.policies import REGISTRY
    from schedlab.sim import InstanceSpec, simulate
    from schedlab.costmodel.base import ConstantIterationCost

    def runs():
        rng = np.random.default_rng(3)
        n = 60
        w = Workload(arrival_s=np.cumsum(rng.exponential(0.05, n)),
                     input_tokens=rng.integers(1, 300, n), output_tokens=rng.integers(1, 200, n))
        spec = InstanceSpec(cost=ConstantIterationCost(slot_s=0.01, kv_capacity_tokens=900),
                            max_batch_size=8, max_batch_tokens=512, chunk_tokens=128,
                            host_kv_capacity_tokens=800)
        out = []
        for name in sorted(REGISTRY):
            r = simulate(w, spec, name)
            out.append([name, r.finish_s.tolist(), r.preemptions.tolist(), r.decisions])
        return out
    """
)


def test_simulations_are_the_same_with_the_jit_turned_off() -> None:
    scope: dict = {}
    exec(_RUNS, scope)
    compiled = json.loads(json.dumps(scope["runs"]()))
    assert sum(sum(row[2]) for row in compiled) > 0, "the runs should exercise preemption"
    code = _RUNS + "\nimport json\nprint(json.dumps(runs()))\n"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert json.loads(out) == compiled
