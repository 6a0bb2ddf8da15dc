"""MoBA's gate and the block-selection baselines (serving.md §6.4): causality, the current block,
the count, reduction to dense attention, the exact online-softmax merge, the gate's shift
invariance, the registry and clear errors for bad input."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract.block_attention import (
    BlockSelection,
    BlockView,
    InvalidSelection,
    attend,
    attended_tokens,
    top_blocks,
    validate_selection,
)
from schedlab.policies import BLOCK_SELECTORS, get_block_selector
from schedlab.policies.moba import local_blocks, moba_gate, random_blocks
from schedlab.testing import block_views, check_block_selector

PROPS = settings(max_examples=150, deadline=None, database=None, derandomize=True)
TOP_K = st.integers(1, 8)


@pytest.mark.parametrize("name", sorted(BLOCK_SELECTORS))
@pytest.mark.parametrize("top_k", [1, 3, 8])
def test_every_selector_keeps_the_contract(name: str, top_k: int) -> None:
    check_block_selector(name, top_k=top_k, max_examples=40)


def test_check_block_selector_catches_a_selector_that_peeks_ahead() -> None:
    def peeks(view: BlockView, *, top_k: int) -> BlockSelection:
        s = moba_gate(view, top_k=top_k).selected.copy()
        s[:, -1] = True  # the last block, in the future of most queries
        return BlockSelection(selected=s, top_k=top_k)

    with pytest.raises(AssertionError, match="future block"):
        check_block_selector(peeks, max_examples=50)


def test_check_block_selector_catches_a_wrong_budget() -> None:
    def greedy(view: BlockView, *, top_k: int) -> BlockSelection:
        return moba_gate(view, top_k=top_k + 1)

    with pytest.raises(AssertionError, match="wrong budget"):
        check_block_selector(greedy, max_examples=10)


@PROPS
@given(block_views(), TOP_K)
def test_gate_causal_current_and_exact_count(view: BlockView, top_k: int) -> None:
    s = moba_gate(view, top_k=top_k)
    validate_selection(view, s)
    cur = view.current_block
    assert (s.selected[np.arange(view.n_queries), cur]).all()
    assert not (s.selected & (np.arange(view.n_blocks)[None, :] > cur[:, None])).any()
    assert s.counts.tolist() == np.minimum(top_k, cur + 1).tolist()


@PROPS
@given(block_views(), TOP_K)
def test_gate_is_the_top_k_of_mean_key_scores(view: BlockView, top_k: int) -> None:
    """The reference: per query, sort its past blocks by <q, mean key> (ties: lowest index)."""
    s = moba_gate(view, top_k=top_k)
    for i, (q, c) in enumerate(zip(view.queries, view.current_block, strict=True)):
        means = np.array([view.keys[j * view.block_tokens:(j + 1) * view.block_tokens].mean(0)
                          for j in range(c)])
        scores = means @ q if c else np.zeros(0)
        past = sorted(range(c), key=lambda j: (-scores[j], j))[: top_k - 1]
        assert s.blocks(i).tolist() == sorted([*past, int(c)])


@PROPS
@given(block_views(), TOP_K, st.floats(-5.0, 5.0))
def test_gate_ignores_a_constant_added_to_every_key(view: BlockView, top_k: int,
                                                    shift: float) -> None:
    """<q, mean(K + c)> = <q, mean K> + <q, c>: every score of a query moves by the same amount,
    so the top-k cannot change (§6.4 invariant 6)."""
    c = np.full(view.keys.shape[1], shift)
    shifted = BlockView(queries=view.queries, positions=view.positions, keys=view.keys + c,
                        block_tokens=view.block_tokens)
    a, b = moba_gate(view, top_k=top_k), moba_gate(shifted, top_k=top_k)
    # float ties may resolve differently after the shift; compare where scores are distinct
    scores = view.queries @ view.block_means.T
    distinct = np.array([np.unique(np.round(r, 9)).shape[0] == r.shape[0] for r in scores])
    assert (a.selected[distinct] == b.selected[distinct]).all()


@PROPS
@given(block_views())
def test_with_every_block_moba_is_dense_causal_attention(view: BlockView) -> None:
    """§6.4 invariant 4: top_k >= blocks gives full causal attention (the dense softmax is the
    oracle)."""
    s = moba_gate(view, top_k=view.n_blocks)
    vals = np.random.default_rng(1).normal(size=(view.n_tokens, 3))
    scores = view.queries @ view.keys.T / np.sqrt(view.keys.shape[1])
    scores[np.arange(view.n_tokens)[None, :] > view.positions[:, None]] = -np.inf
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    dense = (w / w.sum(axis=1, keepdims=True)) @ vals
    assert np.allclose(attend(view, vals, s), dense, rtol=1e-9, atol=1e-12)


@PROPS
@given(block_views(), TOP_K, st.sampled_from(sorted(BLOCK_SELECTORS)))
def test_online_softmax_merge_equals_one_softmax_over_the_union(view: BlockView, top_k: int,
                                                                name: str) -> None:
    """§6.4 invariant 5: weights over the attended tokens are >= 0 and sum to 1; merging the
    per-block partials by log-sum-exp is exact."""
    s = get_block_selector(name)(view, top_k=top_k)
    vals = np.random.default_rng(2).normal(size=(view.n_tokens, 2))
    mask = attended_tokens(view, s)
    scores = np.where(mask, view.queries @ view.keys.T / np.sqrt(view.keys.shape[1]), -np.inf)
    w = np.exp(scores - scores.max(axis=1, keepdims=True))
    w /= w.sum(axis=1, keepdims=True)
    assert (w >= 0).all() and np.allclose(w.sum(axis=1), 1.0)
    assert np.allclose(attend(view, vals, s), w @ vals, rtol=1e-9, atol=1e-12)


@PROPS
@given(block_views(), TOP_K)
def test_output_at_t_ignores_every_later_token(view: BlockView, top_k: int) -> None:
    """§6.4 invariant 1: changing the keys and values after the latest query changes neither the
    gate's choice nor any output (a later token's key moves only its own block's mean, and that
    block is in every query's future or is its current block)."""
    t = int(view.positions.max())
    rng = np.random.default_rng(3)
    keys = view.keys.copy()
    keys[t + 1:] = rng.normal(0, 5, keys[t + 1:].shape)
    vals = rng.normal(size=(view.n_tokens, 2))
    vals2 = vals.copy()
    vals2[t + 1:] += 7.0
    other = BlockView(queries=view.queries, positions=view.positions, keys=keys,
                      block_tokens=view.block_tokens)
    a, b = moba_gate(view, top_k=top_k), moba_gate(other, top_k=top_k)
    assert (a.selected == b.selected).all()
    assert np.allclose(attend(view, vals, a), attend(other, vals2, b), rtol=1e-12, atol=1e-12)


def test_local_and_random_baselines() -> None:
    v = BlockView.from_arrays(queries=np.zeros((1, 2)), keys=np.zeros((20, 2)), block_tokens=2)
    assert local_blocks(v, top_k=4).blocks(0).tolist() == [6, 7, 8, 9]
    a, b = random_blocks(v, top_k=4, seed=1), random_blocks(v, top_k=4, seed=1)
    assert (a.selected == b.selected).all() and a.counts.tolist() == [4]
    draws = {tuple(random_blocks(v, top_k=4, seed=s).blocks(0)) for s in range(20)}
    assert len(draws) > 5  # the seed matters


def test_registry_names_and_unknown_name() -> None:
    assert get_block_selector("moba") is moba_gate
    with pytest.raises(ValueError, match="Unknown block selector 'mobA'"):
        get_block_selector("mobA")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"queries": [[np.nan]], "keys": [[0.0]], "block_tokens": 1}, r"queries\[0\] must be finite"),
    ({"queries": [[0.0]], "keys": [[np.inf]], "block_tokens": 1}, r"keys\[0\] must be finite"),
    ({"queries": [[0.0]], "keys": [[0.0]], "block_tokens": 0}, "block_tokens must be an int"),
    ({"queries": [[0.0]], "keys": [[0.0]], "block_tokens": 1, "positions": [3]},
     r"positions\[0\] must be in \[0, 1\)"),
    ({"queries": [[0.0, 1.0]], "keys": [[0.0]], "block_tokens": 1}, "share head_dim"),
    ({"queries": [0.0], "keys": [[0.0]], "block_tokens": 1}, "two-dimensional"),
    ({"queries": np.zeros((0, 1)), "keys": np.zeros((0, 1)), "block_tokens": 1},
     "at least one row"),
    ({"queries": np.zeros((3, 1)), "keys": np.zeros((2, 1)), "block_tokens": 1},
     "3 queries but 2 keys"),
])
def test_bad_views_name_the_field(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BlockView.from_arrays(**kwargs)


def test_bad_parameters_and_selections() -> None:
    v = BlockView.from_arrays(queries=[[0.0]], keys=[[0.0]] * 4, block_tokens=2)
    for fn in (moba_gate, local_blocks, random_blocks):
        with pytest.raises(ValueError, match="'top_k' parameter"):
            fn(v, top_k=0)
    with pytest.raises(ValueError, match="'seed' parameter"):
        random_blocks(v, seed=-1)
    with pytest.raises(ValueError, match="bool array"):
        BlockSelection(selected=[[1, 0]], top_k=1)
    with pytest.raises(InvalidSelection, match="current block missing"):
        validate_selection(v, BlockSelection(selected=[[True, False]], top_k=2))
    with pytest.raises(InvalidSelection, match="over budget"):
        validate_selection(v, BlockSelection(selected=[[True, True]], top_k=1))
    with pytest.raises(InvalidSelection, match="wrong shape"):
        validate_selection(v, BlockSelection(selected=[[True]], top_k=1))
    with pytest.raises(ValueError, match="'score' parameter of top_blocks"):
        top_blocks(v, [[1.0]], 1)
    with pytest.raises(ValueError, match="'values' parameter of attend"):
        attend(v, np.zeros((3, 1)), moba_gate(v))


def test_pairs_per_query_follow_the_block_rule() -> None:
    """Every query at t in block c attends min(k - 1, c) whole blocks and t mod B + 1 tokens of
    its own (the count the cost model closes in form)."""
    for n, b, k in itertools.product((1, 7, 16), (1, 3, 4), (1, 2, 5)):
        v = BlockView.from_arrays(queries=np.zeros((n, 1)), keys=np.zeros((n, 1)),
                                  block_tokens=b)
        got = attended_tokens(v, moba_gate(v, top_k=k)).sum(axis=1)
        t = np.arange(n)
        assert got.tolist() == (np.minimum(k - 1, t // b) * b + t % b + 1).tolist()
