"""Block selectors of block-sparse attention as pure functions: MoBA's gate and two baselines.

Seed paper: MoBA, Lu et al., "MoBA: Mixture of Block Attention for Long-Context LLMs" (arXiv
2502.13189, §2.2 Eq. 5-6 and Algorithm 1; authors' code MoonshotAI/MoBA, ``moba_naive.py``).

Every selector reads a :class:`~schedlab.contract.block_attention.BlockView` (one attention
head: queries, keys, block size) and answers a
:class:`~schedlab.contract.block_attention.BlockSelection` that keeps
:func:`~schedlab.contract.block_attention.validate_selection` (no future block, the current
block always, at most ``top_k``). The reference selection by true attention mass is the optimum
of :mod:`schedlab.solvers.block_selection`.

>>> import numpy as np
>>> from schedlab.contract.block_attention import BlockView
>>> keys = np.zeros((8, 2)); keys[:2, 0] = 5.0          # block 0 points along x
>>> v = BlockView.from_arrays(queries=[[1.0, 0.0]], keys=keys, block_tokens=2)
>>> moba_gate(v, top_k=2).blocks(0).tolist()            # the current block 3 and block 0
[0, 3]
>>> local_blocks(v, top_k=2).blocks(0).tolist()
[2, 3]
"""

from __future__ import annotations

import numpy as np

from schedlab.contract.block_attention import BlockSelection, BlockView, top_blocks
from schedlab.errors import check_nonneg_int, check_positive_int

__all__ = ["local_blocks", "moba_gate", "random_blocks"]


def moba_gate(view: BlockView, /, *, top_k: int = 3) -> BlockSelection:
    """MoBA's gate (§2.2): score every block by the query's inner product with the block's mean
    key, ``s_i = <q, mean(K[I_i])>`` (Eq. 5), and keep the ``top_k`` best (Eq. 6) among the
    blocks not after the query's own, the current block always one of them (its score is
    ``+inf``: "each token must be routed to its respective current block"; it counts toward
    ``top_k``, §3.1 footnote 3). A query in block ``c`` gets ``min(top_k, c + 1)`` blocks.

    Parameters
    ----------
    top_k : int >= 1, default 3
        Blocks per query, the current one included. The paper's settings: 3 with blocks of 512
        (scaling-law runs, Table 1) and of 2048 (hybrid training, §3.2); 12 with blocks of 4096
        (Llama-8B-1M-MoBA, §3.3). The block size is the view's ``block_tokens``.

    Ties go to the lowest block index [recon: the authors' code leaves them to
    ``torch.topk``]. Scores are exact (float64; the paper keeps the gate in fp32). With
    ``top_k=1`` a query attends its current block only, as ``moba_naive`` does (the authors'
    ``moba_efficient`` falls back to dense attention there).

    Invariants checked by the property tests: no block after the query's own, the current block
    always, exactly ``min(top_k, c + 1)`` blocks; adding a constant to every key of the sequence
    adds ``q . const`` to every score and leaves the choice unchanged; with ``top_k`` at least
    the number of blocks, every past block (dense causal attention); purity and determinism.

    >>> import numpy as np
    >>> from schedlab.contract.block_attention import BlockView
    >>> v = BlockView.from_arrays(queries=np.eye(3)[[0, 1, 2]], keys=np.eye(3).repeat(2, axis=0),
    ...                           block_tokens=2, positions=[5, 5, 5])
    >>> [moba_gate(v, top_k=2).blocks(i).tolist() for i in range(3)]
    [[0, 2], [1, 2], [0, 2]]
    """
    k = check_positive_int(top_k, "top_k", "moba_gate")
    return top_blocks(view, view.queries @ view.block_means.T, k)


def local_blocks(view: BlockView, /, *, top_k: int = 3) -> BlockSelection:
    """A sliding window of blocks: the current block and the ``top_k - 1`` before it (the
    local-attention baseline MoBA's gate is compared against; no key is read).

    >>> import numpy as np
    >>> from schedlab.contract.block_attention import BlockView
    >>> v = BlockView.from_arrays(queries=[[0.0]] * 2, keys=[[0.0]] * 10, block_tokens=2,
    ...                           positions=[1, 9])
    >>> [local_blocks(v, top_k=3).blocks(i).tolist() for i in range(2)]
    [[0], [2, 3, 4]]
    """
    k = check_positive_int(top_k, "top_k", "local_blocks")
    return top_blocks(view, np.broadcast_to(np.arange(view.n_blocks, dtype=np.float64),
                                         (view.n_queries, view.n_blocks)), k)


def random_blocks(view: BlockView, /, *, top_k: int = 3, seed: int = 0) -> BlockSelection:
    """The current block and ``top_k - 1`` past blocks drawn uniformly without replacement
    (a baseline). The draw comes from ``numpy.random.default_rng(seed)``, so the answer is a
    function of the view's shape, its positions and ``seed``.

    >>> import numpy as np
    >>> from schedlab.contract.block_attention import BlockView
    >>> v = BlockView.from_arrays(queries=[[0.0]], keys=[[0.0]] * 10, block_tokens=2)
    >>> random_blocks(v, top_k=3).counts.tolist()
    [3]
    """
    k = check_positive_int(top_k, "top_k", "random_blocks")
    rng = np.random.default_rng(check_nonneg_int(seed, "seed", "random_blocks"))
    return top_blocks(view, rng.random((view.n_queries, view.n_blocks)), k)
