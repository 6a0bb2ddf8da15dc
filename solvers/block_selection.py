"""The optimum of block selection in block-sparse attention: the reference selection by true
attention mass (MoBA), and a verifier that scores any selection.

Seed paper: MoBA (arXiv 2502.13189). The problem record is the selectors' own
:class:`~schedlab.contract.block_attention.BlockView` with a budget ``top_k``: choose, for every
query, at most ``top_k`` blocks, its current block always and none after it
(:func:`~schedlab.contract.block_attention.validate_selection`), to capture as much of the
query's full causal attention as possible. The objective is the attention mass *missed*, summed
over the queries (minimised).

The optimum needs no search: the queries are independent and a block's mass does not depend on
the others chosen, so the current block plus the ``top_k - 1`` past blocks of largest mass is
optimal (an exchange argument), found by one sort per query. :func:`solve_block_selection`
returns it as a :class:`~schedlab.solvers.result.SolveResult` (status ``OPTIMAL``, bound equal
to the objective, gap 0); :func:`verify_block_selection` checks any selection against the rules
and gives its missed mass; :func:`selection_recall` compares a selection with the reference
block by block (the gate's recall).

>>> import numpy as np
>>> from schedlab.contract.block_attention import BlockView
>>> rng = np.random.default_rng(0)
>>> v = BlockView.from_arrays(queries=rng.normal(size=(64, 8)), keys=rng.normal(size=(64, 8)),
...                           block_tokens=8)
>>> best = solve_block_selection(v, top_k=3)
>>> best.status, best.gap
('OPTIMAL', 0.0)
>>> verify_block_selection(v, best.schedule, top_k=3).missed_mass == best.objective
True
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from schedlab.contract.block_attention import (
    BlockSelection,
    BlockView,
    InvalidSelection,
    attention_mass,
    top_blocks,
    validate_selection,
)
from schedlab.errors import check_instance, check_positive_int
from schedlab.solvers.result import SolveResult

__all__ = ["SelectionCheck", "selection_recall", "solve_block_selection",
           "verify_block_selection"]


@dataclass(frozen=True, slots=True)
class SelectionCheck:
    """What :func:`verify_block_selection` measured: the attention mass each query's selection
    captures (``captured``, in [0, 1]) and the mass missed in all (``missed_mass``, the
    objective)."""

    captured: np.ndarray
    missed_mass: float


def verify_block_selection(view: BlockView, selection: BlockSelection, *, top_k: int,
                           scale: float | None = None,
                           mass: np.ndarray | None = None) -> SelectionCheck:
    """Check ``selection`` against the problem (``view`` with a budget of ``top_k`` blocks a
    query) and the contract's rules (raises
    :class:`~schedlab.contract.block_attention.InvalidSelection` naming the one broken: a
    selection made under a larger budget than the problem's is over budget) and measure it: the
    share of each query's causal softmax attention (``q . k * scale``, default ``1/sqrt(d)``) on
    the selected blocks. ``mass`` reuses an
    :func:`~schedlab.contract.block_attention.attention_mass` already computed.

    >>> from schedlab.contract.block_attention import BlockView, BlockSelection
    >>> v = BlockView.from_arrays(queries=[[0.0]], keys=[[1.0]] * 4, block_tokens=2)
    >>> s = BlockSelection(selected=[[False, True]], top_k=1)
    >>> verify_block_selection(v, s, top_k=1).missed_mass
    0.5
    >>> verify_block_selection(v, BlockSelection(selected=[[True, True]], top_k=2), top_k=1)
    Traceback (most recent call last):
    ...
    schedlab.contract.block_attention.InvalidSelection: over budget: the selection was made \
under top_k=2, the problem allows 1
    """
    check_instance(view, BlockView, "view", "verify_block_selection")
    check_instance(selection, BlockSelection, "selection", "verify_block_selection")
    k = check_positive_int(top_k, "top_k", "verify_block_selection")
    if selection.top_k > k:
        raise InvalidSelection("over budget", f"the selection was made under "
                                              f"top_k={selection.top_k}, the problem allows {k}")
    validate_selection(view, selection)
    m = attention_mass(view, scale=scale) if mass is None else mass
    captured = np.minimum((m * selection.selected).sum(axis=1), 1.0)
    captured.flags.writeable = False
    return SelectionCheck(captured=captured, missed_mass=float((1.0 - captured).sum()))


def solve_block_selection(view: BlockView, *, top_k: int = 3,
                          scale: float | None = None) -> SolveResult:
    """The selection of at most ``top_k`` blocks per query (the current one always, none after
    it) that misses the least attention mass: per query, the current block and the ``top_k - 1``
    past blocks of largest mass (ties: the lowest index). Exact in ``O(m n)`` time; the masses
    are computed in chunks of queries, so memory stays bounded.

    ``stats``: ``mean_captured`` (the mean share of attention the optimum keeps) and
    ``method`` (``"sort"``).

    >>> from schedlab.contract.block_attention import BlockView
    >>> keys = [[0.0]] * 4 + [[3.0]] * 2
    >>> v = BlockView.from_arrays(queries=[[1.0]], keys=keys, block_tokens=2)
    >>> r = solve_block_selection(v, top_k=1)
    >>> r.schedule.blocks(0).tolist(), round(r.objective, 3)    # only its own block
    ([2], 0.091)
    """
    check_instance(view, BlockView, "view", "solve_block_selection")
    k = check_positive_int(top_k, "top_k", "solve_block_selection")
    start = time.perf_counter()
    mass = attention_mass(view, scale=scale)
    best = top_blocks(view, mass, k)
    check = verify_block_selection(view, best, top_k=k, mass=mass)
    return SolveResult(status="OPTIMAL", objective=check.missed_mass, bound=check.missed_mass,
                       wall_s=time.perf_counter() - start, schedule=best,
                       stats={"mean_captured": float(check.captured.mean())
                              if check.captured.shape[0] else 1.0, "method": "sort"})


def selection_recall(selection: BlockSelection, reference: BlockSelection) -> np.ndarray:
    """Per query, the share of ``reference``'s blocks that ``selection`` also chose (the
    current block, chosen by both, included).

    >>> a = BlockSelection(selected=[[True, True, False]], top_k=2)
    >>> b = BlockSelection(selected=[[False, True, True]], top_k=2)
    >>> selection_recall(a, b).tolist()
    [0.5]
    """
    check_instance(selection, BlockSelection, "selection", "selection_recall")
    check_instance(reference, BlockSelection, "reference", "selection_recall")
    s, r = selection.selected, reference.selected
    if s.shape != r.shape:
        raise ValueError(f"The 'selection' and 'reference' parameters of selection_recall must "
                         f"have the same shape. Got {s.shape} and {r.shape}.")
    counts = r.sum(axis=1)
    return (s & r).sum(axis=1) / np.maximum(counts, 1)

