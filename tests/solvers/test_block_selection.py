"""The attention-mass optimum of block selection (MoBA digest §6.5): it is the optimum (brute
force), no selector beats it, its verifier rejects what the contract rejects, and recall."""

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
    attention_mass,
)
from schedlab.policies import BLOCK_SELECTORS, get_block_selector
from schedlab.solvers import selection_recall, solve_block_selection, verify_block_selection
from schedlab.testing import block_views

PROPS = settings(max_examples=100, deadline=None, database=None, derandomize=True)


@PROPS
@given(block_views(max_tokens=40), st.integers(1, 4))
def test_the_optimum_is_the_brute_force_minimum(view: BlockView, top_k: int) -> None:
    best = solve_block_selection(view, top_k=top_k)
    assert best.status == "OPTIMAL" and best.gap == 0.0 and best.bound == best.objective
    mass = attention_mass(view)
    brute = 0.0
    for i, c in enumerate(view.current_block):
        past = range(int(c))
        options = [mass[i, int(c)] + sum(mass[i, list(sub)])
                   for r in range(min(top_k - 1, int(c)) + 1)
                   for sub in itertools.combinations(past, r)]
        brute += 1.0 - max(options)
    assert best.objective == pytest.approx(brute, abs=1e-9)


@PROPS
@given(block_views(), st.integers(1, 6), st.sampled_from(sorted(BLOCK_SELECTORS)))
def test_no_selector_captures_more_than_the_optimum(view: BlockView, top_k: int,
                                                    name: str) -> None:
    best = solve_block_selection(view, top_k=top_k)
    got = verify_block_selection(view, get_block_selector(name)(view, top_k=top_k), top_k=top_k)
    assert got.missed_mass >= best.objective - 1e-9
    assert ((got.captured >= 0) & (got.captured <= 1)).all()
    rec = selection_recall(get_block_selector(name)(view, top_k=top_k), best.schedule)
    assert ((rec > 0) & (rec <= 1)).all()  # the current block is in both


def test_mass_rows_sum_to_one_and_every_block_captures_all() -> None:
    rng = np.random.default_rng(4)
    v = BlockView.from_arrays(queries=rng.normal(size=(30, 4)), keys=rng.normal(size=(30, 4)),
                              block_tokens=4)
    assert np.allclose(attention_mass(v).sum(axis=1), 1.0)
    r = solve_block_selection(v, top_k=v.n_blocks)
    assert r.objective == pytest.approx(0.0, abs=1e-12) and r.stats["mean_captured"] == 1.0
    assert (selection_recall(r.schedule, r.schedule) == 1.0).all()


def test_mass_in_query_chunks_matches_one_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    import schedlab.contract.block_attention as ba

    rng = np.random.default_rng(5)
    v = BlockView.from_arrays(queries=rng.normal(size=(50, 3)), keys=rng.normal(size=(50, 3)),
                              block_tokens=7)
    whole = attention_mass(v)
    monkeypatch.setattr(ba, "_CHUNK", 60)  # one query row at a time
    assert np.allclose(attention_mass(v), whole, rtol=1e-13, atol=0)


def test_verify_rejects_what_the_contract_rejects() -> None:
    v = BlockView.from_arrays(queries=[[1.0]], keys=[[0.0]] * 6, block_tokens=2, positions=[3])
    with pytest.raises(InvalidSelection, match="future block"):
        verify_block_selection(v, BlockSelection(selected=[[False, True, True]], top_k=3), top_k=3)
    with pytest.raises(InvalidSelection, match="over budget: the selection was made under top_k=3"):
        verify_block_selection(v, BlockSelection(selected=[[True, True, False]], top_k=3),
                               top_k=2)
    with pytest.raises(ValueError, match="'view' parameter"):
        solve_block_selection("not a view")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'top_k' parameter"):
        solve_block_selection(v, top_k=0)
    with pytest.raises(ValueError, match="same shape"):
        selection_recall(BlockSelection(selected=[[True]], top_k=1),
                         BlockSelection(selected=[[True, False]], top_k=1))
