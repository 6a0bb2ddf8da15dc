"""The policies' compiled kernels: the shared helpers against their numpy definitions, the
stable sort against numpy's, and the same decisions with numba's JIT turned off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.policies import REGISTRY
from schedlab.policies.base import KV_GPU, KV_HOST, KV_NONE, QueueView
from schedlab.policies.batching import infeasible, longest_prefix, stable_argsort
from schedlab.policies.fcfs import arrival_order, in_arrival_order, started
from schedlab.policies.kv import footprint_tokens, request_costs
from schedlab.testing import queue_views

PROPS = settings(max_examples=80, deadline=None, database=None, derandomize=True)


@PROPS
@given(
    st.one_of(
        st.lists(st.integers(-3, 3), max_size=200).map(lambda x: np.array(x, dtype=np.int64)),
        st.lists(st.floats(-1e3, 1e3), max_size=200).map(np.array),
        st.lists(st.integers(0, 50), max_size=200).map(lambda x: np.sort(np.array(x))),
        st.lists(st.integers(0, 50), max_size=200).map(lambda x: -np.sort(np.array(x))),
    )
)
def test_stable_argsort_is_numpys_stable_argsort(keys: np.ndarray) -> None:
    assert stable_argsort(keys).tolist() == np.argsort(keys, kind="stable").tolist()


@PROPS
@given(queue_views())
def test_request_costs_follow_the_accounting_of_the_kv_module(view: QueueView) -> None:
    c = request_costs(view)
    left = np.maximum(view.input_tokens - view.prefilled_tokens, 0)
    step = np.maximum(left, 1)
    if view.chunk_tokens > 0:
        step = np.minimum(step, view.chunk_tokens)
    growth = step + ((left > 0) & (left <= step))
    host = view.kv_location == KV_HOST
    assert c.step.tolist() == step.tolist()
    assert c.growth.tolist() == growth.tolist()
    assert c.demand.tolist() == (growth + view.kv_tokens * host).tolist()
    assert c.on_gpu.tolist() == (view.kv_location == KV_GPU).tolist()
    assert c.gpu_kv.tolist() == np.where(c.on_gpu, view.kv_tokens, 0).tolist()
    pred = view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64)
    assert footprint_tokens(view).tolist() == np.maximum(pred, view.kv_tokens + growth).tolist()
    bad, reasons = infeasible(view)
    too_big = view.kv_tokens + growth > view.kv_capacity_tokens
    over = step > view.max_batch_tokens
    assert bad.tolist() == np.flatnonzero(too_big | over).tolist()
    assert all(("KV tokens" in r) == bool(too_big[i]) for i, r in zip(bad, reasons, strict=True))


@PROPS
@given(queue_views())
def test_order_helpers_follow_their_definitions(view: QueueView) -> None:
    st_ = (
        (view.prefilled_tokens > 0)
        | (view.generated_tokens > 0)
        | (view.kv_location != KV_NONE)
        | view.running
    )
    assert started(view).tolist() == st_.tolist()
    by_arrival = np.lexsort((view.request_id, view.arrival_s))
    assert arrival_order(view).tolist() == by_arrival.tolist()
    assert in_arrival_order(view) == (by_arrival.tolist() == list(range(view.n)))
    some = np.flatnonzero(st_)[::-1].copy()
    assert arrival_order(view, some).tolist() == [p for p in by_arrival if st_[p]]


def _reference_longest_prefix(
    view: QueueView, order: np.ndarray, evictable: np.ndarray, reserve: int
) -> tuple[list[int], list[int], int]:
    """:func:`longest_prefix` as its docstring defines it, one candidate prefix at a time."""
    c = request_costs(view)
    free = view.kv_free_tokens
    ev_kv = c.gpu_kv * evictable
    k = 0
    for j in range(1, min(view.max_batch_size, order.shape[0]) + 1):
        head = order[:j]
        room = free + int(ev_kv[order[j:]].sum())
        need = int(c.demand[head].sum()) + (reserve if j > 1 else 0)
        if int(c.step[head].sum()) > view.max_batch_tokens or need > room:
            break
        k = j
    if k == 0:
        return [], [], free
    dem = int(c.demand[order[:k]].sum())
    deficit = dem + reserve - free
    evict: list[int] = []
    for p in order[k:][::-1]:
        if deficit <= 0:
            break
        if ev_kv[p] > 0:
            evict.append(int(p))
            deficit -= int(ev_kv[p])
            free += int(ev_kv[p])
    return order[:k].tolist(), evict, free - dem


@PROPS
@given(queue_views(), st.randoms(use_true_random=False), st.sampled_from([0, 16, 256]))
def test_longest_prefix_follows_its_definition(view: QueueView, rnd, reserve: int) -> None:
    order = np.array(rnd.sample(range(view.n), view.n), dtype=np.int64)
    evictable = np.array([rnd.random() < 0.7 for _ in range(view.n)], dtype=bool)
    r = longest_prefix(view, order, evictable=evictable, reserve_tokens=reserve)
    assert (r.batch.tolist(), r.evict.tolist(), r.free_after) == _reference_longest_prefix(
        view, order, evictable, reserve
    )


# Views built from a seeded generator, the same in this process and in a subprocess.
_VIEWS = textwrap.dedent(
    """
    import numpy as np
    from schedlab.policies.base import QueueView

    def views():
        rng = np.random.default_rng(7)
        out = []
        for n in (0, 1, 5, 12, 30, 30, 30):
            inp = rng.integers(8, 400, n)
            phase = rng.integers(0, 4, n)  # waiting, decoding, swapped, mid-prefill
            pre = np.select([phase == 0, phase == 3], [0, inp // 2], inp)
            gen = np.where((phase == 1) | (phase == 2), rng.integers(1, 50, n), 0)
            kv = pre + gen
            loc = np.select([phase == 2, phase == 0], [2, 0], 1)
            used = int(kv[loc == 1].sum())
            arrival = rng.random(n) * 10.0
            if n == 30 and len(out) % 2:
                arrival = np.sort(arrival)
            out.append(QueueView.from_columns(
                now_s=10.0, input_tokens=inp, arrival_s=arrival,
                output_tokens_pred=rng.integers(1, 80, n).astype(float),
                prefilled_tokens=pre, generated_tokens=gen, kv_tokens=kv, kv_location=loc,
                running=phase == 1, priority=np.where(phase == 0, -1, rng.integers(0, 4, n)),
                attained_s=rng.random(n) * 0.05, last_run_s=np.minimum(arrival + 1.0, 10.0),
                est_prefill_s=inp * 1e-4, kv_capacity_tokens=used + int(rng.integers(0, 2000)),
                max_batch_size=int(rng.integers(2, 40)),
                max_batch_tokens=int(rng.integers(64, 300)), chunk_tokens=int(rng.choice([0, 64])),
                host_kv_free_tokens=int(rng.integers(0, 400)),
                iteration=1000, previous_decision_iteration=990,
            ))
        return out

    def decisions():
        from schedlab.policies import REGISTRY
        rows = []
        for name in sorted(REGISTRY):
            for v in views():
                d = REGISTRY[name](v)
                rows.append([name] + [
                    None if getattr(d, f) is None else np.asarray(getattr(d, f)).tolist()
                    for f in ("run", "swap_out", "recompute", "swap_in", "reject", "priority",
                              "attained_s")
                ] + [list(d.reject_reason), d.reconsider_at_s, d.wake_on_arrival, d.hold_batch])
        return rows
    """
)


def test_decisions_are_the_same_with_the_jit_turned_off() -> None:
    scope: dict = {}
    exec(_VIEWS, scope)
    compiled = json.loads(json.dumps(scope["decisions"]()))
    assert any(row[5] for row in compiled), "the views should exercise rejection"
    code = _VIEWS + "\nimport json\nprint(json.dumps(decisions()))\n"
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env
    ).stdout
    assert json.loads(out) == compiled
    assert len(compiled) == len(REGISTRY) * 7
