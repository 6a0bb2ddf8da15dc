"""Routers: round robin continues its cycle across calls; least-tokens and least-KV send each
request to the instance that is least loaded at the time of choice, ties to the lowest index."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings

from schedlab.contract import RouterView
from schedlab.policies.routers import least_kv, least_tokens, round_robin
from schedlab.testing import router_views

PROPS = settings(max_examples=60, deadline=None, database=None, derandomize=True)


def _view(**kw: object) -> RouterView:
    k = len(kw.get("outstanding_tokens", [0, 0, 0]))  # type: ignore[arg-type]
    m = len(kw.get("input_tokens", [1]))  # type: ignore[arg-type]
    base = {
        "now_s": 0.0,
        "request_id": np.arange(m),
        "input_tokens": np.ones(m, dtype=np.int64),
        "output_tokens_pred": np.ones(m),
        "outstanding_tokens": np.zeros(k, dtype=np.int64),
        "kv_used_tokens": np.zeros(k, dtype=np.int64),
        "kv_capacity_tokens": np.full(k, 100),
        "queue_length": np.zeros(k, dtype=np.int64),
    }
    base.update({key: np.asarray(v) if isinstance(v, list) else v for key, v in kw.items()})
    return RouterView(**base)  # type: ignore[arg-type]


@PROPS
@given(router_views())
def test_round_robin_continues_the_cycle(view: RouterView) -> None:
    out = round_robin(view)
    start = view.routed_so_far % view.n_instances
    expected = (start + np.arange(view.request_id.shape[0])) % view.n_instances
    assert out.tolist() == expected.tolist()


@PROPS
@given(router_views())
def test_least_tokens_picks_the_least_loaded_instance_at_each_choice(view: RouterView) -> None:
    out = least_tokens(view)
    load = view.outstanding_tokens.astype(float)
    for j, i in enumerate(out.tolist()):
        assert load[i] == load.min() and i == int(np.flatnonzero(load == load.min())[0])
        load[i] += view.input_tokens[j] + view.output_tokens_pred[j]


@PROPS
@given(router_views())
def test_least_kv_picks_the_least_used_fraction_at_each_choice(view: RouterView) -> None:
    out = least_kv(view)
    frac = view.kv_used_tokens / view.kv_capacity_tokens
    for j, i in enumerate(out.tolist()):
        assert frac[i] == frac.min() and i == int(np.flatnonzero(frac == frac.min())[0])
        frac[i] += view.input_tokens[j] / view.kv_capacity_tokens[i]


def test_ties_go_to_the_lowest_index() -> None:
    v = _view(input_tokens=[5, 5, 5], outstanding_tokens=[7, 7, 7])
    assert least_tokens(v).tolist() == [0, 1, 2]
    assert least_kv(v).tolist() == [0, 1, 2]
    assert round_robin(v).tolist() == [0, 1, 2]


def test_least_kv_uses_the_fraction_not_the_count() -> None:
    v = _view(kv_used_tokens=[50, 90, 10], kv_capacity_tokens=[100, 1000, 10])
    assert least_kv(v).tolist() == [1]  # 9% used beats 50% and 100%
