"""The block-sparse attention contract (MoBA): what a block selector sees of one attention head
(:class:`BlockView`), what it answers (:class:`BlockSelection`), the rules every selection keeps
(:func:`validate_selection`), and the attention a selection defines (:func:`attended_tokens`,
:func:`attend`, :func:`attention_mass`), written once for the gate, the oracle, the cost model's
counts and the tests alike.

The keys of a sequence of ``n`` tokens are cut into blocks of ``block_tokens`` (the last one
may be shorter). A query at position ``t`` lies in block ``t // block_tokens`` (its *current*
block). A selector answers, for every query, a set of blocks; the query then attends to the
tokens of those blocks that are not after it (causal attention inside the current block).

Rules (:func:`validate_selection`): no block after the query's own, the current block always,
at most ``top_k`` blocks.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> v = BlockView.from_arrays(queries=rng.normal(size=(6, 4)), keys=rng.normal(size=(6, 4)),
...                           block_tokens=2)
>>> v.n_blocks, v.current_block.tolist()
(3, [0, 0, 1, 1, 2, 2])
>>> s = BlockSelection(selected=v.current_block[:, None] == np.arange(3), top_k=1)
>>> validate_selection(v, s)
>>> attended_tokens(v, s).sum(axis=1).tolist()   # causal inside the current block
[1, 2, 1, 2, 1, 2]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "BlockSelection",
    "BlockView",
    "InvalidSelection",
    "attend",
    "attended_tokens",
    "attention_mass",
    "block_of",
    "top_blocks",
    "validate_selection",
]


def block_of(positions: Any, block_tokens: int) -> np.ndarray:
    """The block of each token position (``position // block_tokens``): the one rule of the
    partition, for the view, the gate, the oracle and the cost model.

    >>> block_of([0, 511, 512, 4095], 512).tolist()
    [0, 0, 1, 7]
    """
    return np.asarray(positions, dtype=np.int64) // int(block_tokens)


def _matrix(a: Any, name: str) -> np.ndarray:
    arr = np.array(a, dtype=np.float64, copy=True)
    if arr.ndim != 2 or arr.shape[1] < 1:
        raise ValueError(f"BlockView.{name} must be a two-dimensional array (rows, head_dim). "
                         f"Got shape {arr.shape}.")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"BlockView.{name}[{row}] must be finite. Got {arr[row]!r}.")
    arr.flags.writeable = False
    return arr


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockView:
    """Read-only snapshot of one attention head: its queries, its keys and their blocks.

    - ``queries``: ``(m, d)``, the queries to place;
    - ``positions``: ``(m,)`` token positions of the queries, each in ``[0, n)`` (the query at
      position ``t`` may attend keys ``0..t``);
    - ``keys``: ``(n, d)``, the keys of the whole sequence so far;
    - ``block_tokens``: the block size ``B``.

    Derived: ``block_means`` ``(n_blocks, d)``, each block's mean key (MoBA's parameter-free
    block representative; the last block's over the tokens it has).

    Bad input raises ``ValueError`` naming the field: a non-finite entry, a position out of
    range, a block size below 1, mismatched widths.
    """

    queries: np.ndarray
    positions: np.ndarray
    keys: np.ndarray
    block_tokens: int
    block_means: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        b = self.block_tokens
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or b < 1:
            raise ValueError(f"BlockView.block_tokens must be an int >= 1. Got {b!r}.")
        object.__setattr__(self, "block_tokens", int(b))
        q, k = _matrix(self.queries, "queries"), _matrix(self.keys, "keys")
        if k.shape[0] < 1:
            raise ValueError("BlockView.keys must have at least one row (a token to attend).")
        if q.shape[1] != k.shape[1]:
            raise ValueError(f"BlockView.queries have width {q.shape[1]} but keys {k.shape[1]}: "
                             f"a head's queries and keys share head_dim.")
        pos = np.array(self.positions, copy=True)
        if pos.shape != (q.shape[0],) or (pos.shape[0] and pos.dtype.kind not in "iu"):
            raise ValueError(f"BlockView.positions must be {q.shape[0]} integers (one per query). "
                             f"Got dtype {pos.dtype} and shape {pos.shape}.")
        pos = pos.astype(np.int64)
        bad = np.flatnonzero((pos < 0) | (pos >= k.shape[0]))
        if bad.shape[0]:
            j = int(bad[0])
            raise ValueError(f"BlockView.positions[{j}] must be in [0, {k.shape[0]}) (a key "
                             f"position). Got {int(pos[j])}.")
        pos.flags.writeable = False
        starts = np.arange(0, k.shape[0], b)  # blocks are contiguous
        sizes = np.diff(np.append(starts, k.shape[0]))
        means = np.add.reduceat(k, starts, axis=0) / sizes[:, None]
        means.flags.writeable = False
        for name, value in (("queries", q), ("keys", k), ("positions", pos),
                            ("block_means", means)):
            object.__setattr__(self, name, value)

    @property
    def n_queries(self) -> int:
        """Number of queries ``m``."""
        return int(self.queries.shape[0])

    @property
    def n_tokens(self) -> int:
        """Number of keys ``n``."""
        return int(self.keys.shape[0])

    @property
    def n_blocks(self) -> int:
        """Number of blocks, ``ceil(n / block_tokens)``."""
        return int(self.block_means.shape[0])

    @property
    def current_block(self) -> np.ndarray:
        """Each query's own block."""
        return block_of(self.positions, self.block_tokens)

    @classmethod
    def from_arrays(cls, *, queries: Any, keys: Any, block_tokens: int,
                    positions: Any = None) -> BlockView:
        """A view whose ``m`` queries are, by default, the last ``m`` tokens of the sequence
        (prefill: every token; decode: the newest one).

        >>> BlockView.from_arrays(queries=[[1.0]], keys=[[0.0]] * 5, block_tokens=2).positions
        array([4])
        """
        q = np.asarray(queries)
        n = np.asarray(keys).shape[0]
        m = q.shape[0] if q.ndim else 0
        if positions is None and m > n:
            raise ValueError(f"BlockView.from_arrays: {m} queries but {n} keys; without "
                             f"positions the queries are the last tokens, so m <= n.")
        pos = np.arange(n - m, n) if positions is None else positions
        return cls(queries=queries, positions=pos, keys=keys, block_tokens=block_tokens)


@dataclass(frozen=True, slots=True, kw_only=True)
class BlockSelection:
    """A selector's answer: ``selected[i, j]`` says query ``i`` attends block ``j``
    (``(m, n_blocks)`` booleans), chosen under a budget of ``top_k`` blocks per query.

    >>> BlockSelection(selected=[[True, False]], top_k=1).blocks(0).tolist()
    [0]
    """

    selected: np.ndarray
    top_k: int

    def __post_init__(self) -> None:
        s = np.array(self.selected, copy=True)
        if s.ndim != 2 or s.dtype != np.bool_:
            raise ValueError(f"BlockSelection.selected must be a two-dimensional bool array "
                             f"(queries, blocks). Got dtype {s.dtype} and shape {s.shape}.")
        s.flags.writeable = False
        object.__setattr__(self, "selected", s)
        k = self.top_k
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"BlockSelection.top_k must be an int >= 1. Got {k!r}.")
        object.__setattr__(self, "top_k", int(k))

    def blocks(self, query: int) -> np.ndarray:
        """The blocks query ``query`` attends, ascending."""
        return np.flatnonzero(self.selected[query])

    @property
    def counts(self) -> np.ndarray:
        """Blocks selected per query."""
        return self.selected.sum(axis=1)


class InvalidSelection(ValueError):
    """A selection breaks a rule of the contract; ``rule`` names it."""

    def __init__(self, rule: str, detail: str) -> None:
        self.rule = rule
        super().__init__(f"{rule}: {detail}")


def validate_selection(view: BlockView, selection: BlockSelection) -> None:
    """Check ``selection`` against ``view``; raises :class:`InvalidSelection` naming the rule.

    Rules: one row per query and one column per block; no block after the query's current block
    (causality: a query never sees a later token); the current block always (MoBA §2.2, its
    "shared expert"); at most ``top_k`` blocks per query.

    >>> v = BlockView.from_arrays(queries=[[1.0]], keys=[[0.0]] * 4, block_tokens=2,
    ...                           positions=[1])
    >>> validate_selection(v, BlockSelection(selected=[[True, True]], top_k=2))
    Traceback (most recent call last):
    ...
    schedlab.contract.block_attention.InvalidSelection: future block: query 0 (position 1, \
block 0) selects block 1
    """
    s = selection.selected
    if s.shape != (view.n_queries, view.n_blocks):
        raise InvalidSelection("wrong shape", f"selected has shape {s.shape}, expected "
                                              f"({view.n_queries}, {view.n_blocks})")
    cur = view.current_block
    future = np.arange(view.n_blocks)[None, :] > cur[:, None]
    bad = np.flatnonzero((s & future).any(axis=1))
    if bad.shape[0]:
        i = int(bad[0])
        j = int(np.flatnonzero(s[i] & future[i])[0])
        raise InvalidSelection("future block", f"query {i} (position {int(view.positions[i])}, "
                                               f"block {int(cur[i])}) selects block {j}")
    bad = np.flatnonzero(~s[np.arange(view.n_queries), cur])
    if bad.shape[0]:
        i = int(bad[0])
        raise InvalidSelection("current block missing",
                               f"query {i} (position {int(view.positions[i])}) does not select "
                               f"its own block {int(cur[i])}")
    counts = selection.counts
    bad = np.flatnonzero(counts > selection.top_k)
    if bad.shape[0]:
        i = int(bad[0])
        raise InvalidSelection("over budget", f"query {i} selects {int(counts[i])} blocks, "
                                              f"top_k is {selection.top_k}")


def top_blocks(view: BlockView, score: Any, top_k: int) -> BlockSelection:
    """The ``top_k`` best-scored blocks of each query (``score``: ``(m, n_blocks)``, larger is
    better) among its current and past blocks, the current block always one of them; ties go to
    the lowest block index. The one selection rule of MoBA's gate, the baselines and the
    attention-mass oracle.

    >>> v = BlockView.from_arrays(queries=[[0.0]], keys=[[0.0]] * 8, block_tokens=2,
    ...                           positions=[5])
    >>> top_blocks(v, [[0.9, 0.1, 0.5, 9.9]], 2).blocks(0).tolist()   # block 3 is the future
    [0, 2]
    """
    m, nb = view.n_queries, view.n_blocks
    sc = np.asarray(score, dtype=np.float64)
    if sc.shape != (m, nb):
        raise ValueError(f"The 'score' parameter of top_blocks must have shape ({m}, {nb}) (one "
                         f"per query and block). Got {sc.shape}.")
    cur = view.current_block
    future = np.arange(nb)[None, :] > cur[:, None]
    s = np.where(future, -np.inf, sc)
    s[np.arange(m), cur] = np.inf
    top = np.argsort(-s, axis=1, kind="stable")[:, : min(int(top_k), nb)]
    selected = np.zeros((m, nb), dtype=bool)
    np.put_along_axis(selected, top, True, axis=1)
    return BlockSelection(selected=selected & ~future, top_k=top_k)


def attended_tokens(view: BlockView, selection: BlockSelection) -> np.ndarray:
    """``(m, n)`` booleans: the keys each query attends (its selected blocks' tokens, none after
    it). The one definition of what a selection means, for :func:`attend`, the oracle's mass
    and the cost model's pair counts.
    """
    blocks = block_of(np.arange(view.n_tokens), view.block_tokens)
    causal = np.arange(view.n_tokens)[None, :] <= view.positions[:, None]
    return selection.selected[:, blocks] & causal


#: Scores held at once by :func:`attention_mass` (queries are taken in chunks).
_CHUNK = 1 << 22


def _scores(view: BlockView, scale: float | None, rows: slice = slice(None)) -> np.ndarray:
    d = view.queries.shape[1]
    return (view.queries[rows] @ view.keys.T) * (1.0 / np.sqrt(d) if scale is None else scale)


def attention_mass(view: BlockView, *, scale: float | None = None) -> np.ndarray:
    """``(m, n_blocks)``: the share of each query's full causal attention (softmax of
    ``q . k * scale`` over keys ``0..t``; ``scale`` defaults to ``1/sqrt(d)``) that falls in each
    block. Rows sum to 1. What the reference selection maximises.

    >>> v = BlockView.from_arrays(queries=[[0.0]], keys=[[1.0]] * 4, block_tokens=2)
    >>> attention_mass(v).tolist()
    [[0.5, 0.5]]
    """
    out = np.zeros((view.n_queries, view.n_blocks))
    starts = np.arange(0, view.n_tokens, view.block_tokens)  # blocks are contiguous
    rows = max(1, _CHUNK // max(view.n_tokens, 1))  # bounded memory: queries in chunks
    for lo in range(0, view.n_queries, rows):
        sl = slice(lo, lo + rows)
        s = _scores(view, scale, sl)
        s[np.arange(view.n_tokens)[None, :] > view.positions[sl, None]] = -np.inf
        p = np.exp(s - s.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        out[sl] = np.add.reduceat(p, starts, axis=1)
    return out


def attend(view: BlockView, values: Any, selection: BlockSelection, *,
           scale: float | None = None) -> np.ndarray:
    """The block-sparse attention output ``(m, d_v)`` (a numpy reference, not a fast kernel).

    As MoBA computes it (§2.3, Algorithm 1): each selected block gives a partial softmax
    (its own maximum, normaliser and weighted values, causal inside the current block), and the
    partials are merged by their log-sum-exp (online softmax). The merge is exact: the result
    equals one softmax over the union of the attended tokens.

    >>> v = BlockView.from_arrays(queries=[[0.0]], keys=[[1.0]] * 4, block_tokens=2)
    >>> everything = BlockSelection(selected=[[True, True]], top_k=2)
    >>> attend(v, [[1.0], [2.0], [3.0], [4.0]], everything).tolist()   # the mean: equal scores
    [[2.5]]
    """
    validate_selection(view, selection)
    val = np.asarray(values, dtype=np.float64)
    if val.ndim != 2 or val.shape[0] != view.n_tokens:
        raise ValueError(f"The 'values' parameter of attend must have shape ({view.n_tokens}, "
                         f"d_v) (one row per key). Got {val.shape}.")
    mask = attended_tokens(view, selection)
    s = _scores(view, scale)
    m = view.n_queries
    run_max = np.full(m, -np.inf)
    run_sum = np.zeros(m)
    acc = np.zeros((m, val.shape[1]))
    B = view.block_tokens
    for j in range(view.n_blocks):  # one partial softmax per block, merged online
        sl = slice(j * B, min((j + 1) * B, view.n_tokens))
        mj = mask[:, sl]
        rows = np.flatnonzero(mj.any(axis=1))
        if not rows.shape[0]:
            continue
        sj = np.where(mj[rows], s[rows, sl], -np.inf)
        bmax = sj.max(axis=1)
        w = np.exp(sj - bmax[:, None])
        new_max = np.maximum(run_max[rows], bmax)
        old = np.exp(run_max[rows] - new_max)
        new = np.exp(bmax - new_max)
        run_sum[rows] = run_sum[rows] * old + w.sum(axis=1) * new
        acc[rows] = acc[rows] * old[:, None] + (w @ val[sl]) * new[:, None]
        run_max[rows] = new_max
    return acc / run_sum[:, None]
