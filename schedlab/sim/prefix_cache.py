"""A distributed prefix cache: each node keeps KV blocks keyed by chained hash ids, within a
capacity, evicting the least recently used block first (Mooncake's DRAM pool, FAST'25 §3.2.1) or
the least frequently used (``eviction="lfu"``, ties to the least recent; v3 Table 1 compares
the two).

Block ``i`` of a request is named by a hash of block ``i-1``'s name and its own tokens (the
``hash_ids`` of the Mooncake traces, 512 tokens a block), so a block id stands for its whole
prefix: two requests sharing block ``i`` share every block before it. A node's match for a
request is the number of *leading* blocks of its chain the node holds.

Costs: a look-up walks the request's chain once (it stops at the first block no node holds),
intersecting the sets of nodes holding each block (a Python int's bits), so it is O(blocks of the
request x words of nodes), not O(cache); storing a chain on a node touches each of its blocks
once, and each eviction is O(1) (LRU) or O(log cache) (LFU).

Recency: a stored chain is touched leaf first and root last, so a block is never less recent (nor
less often used) than any of its descendants on that node, both policies evict leaves before
their parents, and every node's contents stay prefix-closed (the kvcache-ai blog's observation
that prefix LRU "starts from the leaf nodes of the radix tree"); a second tier (``ssd_tokens``)
takes what the first evicts, leaves first, and drops its least recent first, so the two together
stay prefix-closed too. Not modelled: pinning blocks in use by an ongoing request (a prefill reads
its prefix at its start).

>>> c = PrefixCache(n_nodes=2, capacity_tokens=3 * 512)
>>> c.store(0, [7, 8, 9])
>>> c.match_blocks([7, 8, 5]).tolist(), c.match_blocks([7, 8, 9, 4]).tolist()
([2, 0], [3, 0])
>>> c.store(0, [7, 1])            # block 9 is the least recent: evicted
>>> c.match_blocks([7, 8, 9]).tolist(), c.held_blocks(0)
([2, 0], 3)
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Any

import numpy as np

from schedlab.errors import check_nonneg_int, check_positive_int

__all__ = ["EVICTIONS", "PrefixCache", "check_hash_chain"]

#: Eviction policies of :class:`PrefixCache`.
EVICTIONS = ("lru", "lfu")


def check_hash_chain(blocks: Any, name: str = "hash_ids") -> list[int]:
    """``blocks`` as a list of ints, or ``ValueError`` naming ``name`` unless it is a
    one-dimensional sequence of non-negative integers.

    >>> check_hash_chain([3, -1])
    Traceback (most recent call last):
    ...
    ValueError: hash_ids must be a list of non-negative integers. Got -1 at position 1.
    """
    arr = np.asarray(blocks)
    if arr.ndim != 1 or (arr.shape[0] and arr.dtype.kind not in "iu"):
        raise ValueError(f"{name} must be a list of non-negative integers. Got {blocks!r}.")
    if arr.shape[0] and arr.min() < 0:
        i = int(np.flatnonzero(arr < 0)[0])
        raise ValueError(f"{name} must be a list of non-negative integers. Got {arr[i]} at "
                         f"position {i}.")
    return arr.tolist()


class PrefixCache:
    """Per-node LRU caches of prefix blocks (see the module docstring).

    Parameters
    ----------
    n_nodes : int >= 1
        Nodes holding a cache (Mooncake: the prefill instances).
    capacity_tokens : int >= block_tokens
        Cache size of each node in tokens (FAST'25 §5.3.1: about 3 M tokens of DRAM per node).
    block_tokens : int >= 1, default 512
        Tokens per block (the Mooncake traces' ``hash_ids`` blocks).
    eviction : {"lru", "lfu"}, default "lru"
        Which block goes when a node is full: the least recently used, or the least frequently
        used (uses counted since the block came in), ties to the least recent. An LFU eviction
        costs O(log cache) (a heap); LRU O(1).
    ssd_tokens : int >= 0, default 0
        A second, slower tier on each node (Mooncake's SSD): a block evicted from the first goes
        there (the least recent first out of it when it is full), still matches, and moves back
        to the first when used (:meth:`touch`, :meth:`store`); :meth:`on_ssd` counts a chain's
        blocks there. 0: no second tier.
    """

    __slots__ = ("_heap", "_holders", "_lfu", "_lru", "_ssd", "_stamp", "block_tokens",
                 "capacity_blocks", "eviction", "n_nodes", "ssd_blocks")

    def __init__(self, n_nodes: int, capacity_tokens: int, *, block_tokens: int = 512,
                 eviction: str = "lru", ssd_tokens: int = 0) -> None:
        where = "PrefixCache"
        self.n_nodes = check_positive_int(n_nodes, "n_nodes", where)
        self.block_tokens = check_positive_int(block_tokens, "block_tokens", where)
        cap = check_positive_int(capacity_tokens, "capacity_tokens", where)
        if cap < self.block_tokens:
            raise ValueError(f"The 'capacity_tokens' parameter of {where} must hold at least one "
                             f"block ({self.block_tokens} tokens). Got {capacity_tokens!r}.")
        self.capacity_blocks = cap // self.block_tokens
        # block id -> the nodes holding it, as the bits of a Python int (absent: none)
        self._holders: dict[int, int] = {}
        self._lru: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(self.n_nodes)]
        if eviction not in EVICTIONS:
            raise ValueError(f"The 'eviction' parameter of {where} must be one of {EVICTIONS}. "
                             f"Got {eviction!r}.")
        self.eviction = eviction
        # LFU: per node, each held block's (uses, last use) and a heap of such entries (an entry
        # whose pair is no longer the block's is stale and skipped)
        self._lfu: list[dict[int, tuple[int, int]]] = [{} for _ in range(self.n_nodes)]
        self._heap: list[list[tuple[int, int, int]]] = [[] for _ in range(self.n_nodes)]
        self._stamp = 0
        self.ssd_blocks = check_nonneg_int(ssd_tokens, "ssd_tokens", where) // self.block_tokens
        self._ssd: list[OrderedDict[int, None]] = [OrderedDict() for _ in range(self.n_nodes)]

    def match_blocks(self, blocks: Any, *, trusted: bool = False) -> np.ndarray:
        """The number of leading blocks of the chain ``blocks`` each node holds (length
        ``n_nodes``). ``trusted``: ``blocks`` is already a checked int64 array (the engine's
        workload columns), so it is not checked again."""
        holders = self._holders
        acc = -1  # every bit set
        prefix = []  # the nodes holding each leading block and all before it
        for b in blocks.tolist() if trusted else check_hash_chain(blocks):
            acc &= holders.get(b, 0)
            if not acc:
                break
            prefix.append(acc)
        counts = np.zeros(self.n_nodes, dtype=np.int64)
        if not prefix:
            return counts
        # prefix[k] holds the nodes matching k + 1 blocks; a node drops out once, at the first k
        # whose set lacks it, so each node is visited once
        prev = prefix[0]
        for k, held in enumerate(prefix):
            gone, prev = prev & ~held, held
            while gone:
                low = gone & -gone
                counts[low.bit_length() - 1] = k
                gone ^= low
        while prev:
            low = prev & -prev
            counts[low.bit_length() - 1] = len(prefix)
            prev ^= low
        return counts

    def store(self, node: int, blocks: Any, *, trusted: bool = False) -> None:
        """Put the chain ``blocks`` on ``node`` (after a prefill computed or received them),
        touching it leaf first, then evict the node's least recent blocks beyond capacity. A
        chain longer than the capacity keeps its leading blocks. ``trusted`` as in
        :meth:`match_blocks`."""
        if not 0 <= node < self.n_nodes:
            raise ValueError(f"node must be in [0, {self.n_nodes}). Got {node!r}.")
        chain = blocks.tolist() if trusted else check_hash_chain(blocks)
        self._bring(node, chain, add=True)

    def _bring(self, node: int, chain: list[int], *, add: bool) -> None:
        """Touch ``chain`` on ``node`` leaf first: blocks in the first tier become the most
        recent, blocks on SSD move back to it, and (``add``) blocks it lacks come in; then the
        first tier's overflow goes to SSD (or away) and SSD's overflow away."""
        lru, ssd = self._lru[node], self._ssd[node]
        holders = self._holders
        bit = 1 << node
        lfu = self.eviction == "lfu"
        for b in reversed(chain):
            if b in lru:
                lru.move_to_end(b)
            elif b in ssd:
                del ssd[b]
                lru[b] = None
            elif add:
                lru[b] = None
                holders[b] = holders.get(b, 0) | bit
            else:
                continue
            if lfu:
                self._use(node, b)
        cap = self.capacity_blocks
        while len(lru) > cap:
            old = lru.popitem(last=False)[0] if not lfu else self._victim(node)
            if self.ssd_blocks:
                ssd[old] = None
                if len(ssd) <= self.ssd_blocks:
                    continue
                old = ssd.popitem(last=False)[0]
            left = holders[old] & ~bit
            if left:
                holders[old] = left
            else:
                del holders[old]

    def _use(self, node: int, block: int) -> None:
        """LFU: one more use of ``block`` on ``node``, now."""
        self._stamp += 1
        uses = self._lfu[node].get(block, (0, 0))[0] + 1
        self._lfu[node][block] = (uses, self._stamp)
        heapq.heappush(self._heap[node], (uses, self._stamp, block))

    def _victim(self, node: int) -> int:
        """LFU: remove and return the block ``node`` evicts next (LRU pops its oldest inline)."""
        lru = self._lru[node]
        heap, state = self._heap[node], self._lfu[node]
        while True:
            uses, stamp, block = heapq.heappop(heap)
            if state.get(block) == (uses, stamp):
                del state[block], lru[block]
                if len(heap) > 4 * len(state) + 64:  # drop the stale entries now and then
                    heap[:] = [(u, t, b) for b, (u, t) in state.items()]
                    heapq.heapify(heap)
                return block

    def touch(self, node: int, blocks: Any, *, trusted: bool = False) -> None:
        """Mark the blocks of ``blocks`` that ``node`` holds as just used (a cache hit), leaf
        first; those on SSD move back to the first tier. ``trusted`` as in
        :meth:`match_blocks`."""
        self._bring(node, blocks.tolist() if trusted else check_hash_chain(blocks), add=False)

    def on_ssd(self, node: int, blocks: Any) -> int:
        """How many blocks of ``blocks`` ``node`` holds on its SSD tier."""
        ssd = self._ssd[node]
        return sum(1 for b in blocks.tolist() if b in ssd) if ssd else 0

    def held_blocks(self, node: int) -> int:
        """Blocks ``node`` holds in its first tier now."""
        return len(self._lru[node])

    def holds(self, node: int, block: int) -> bool:
        """Whether ``node`` holds ``block`` (in either tier)."""
        return block in self._lru[node] or block in self._ssd[node]
