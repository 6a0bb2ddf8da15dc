"""The distributed prefix cache (serving.md §2.4, invariants 4 and 6): matches are prefixes of
the hash chain and agree with a plain model of per-node LRU lists; a node never holds more than
its capacity, evicts its least recently used block first and stays prefix-closed; bad input
gets a ValueError naming the field. On the shipped conversation trace, a 3M-token cache hits the
share of prompt tokens measured when the trace was studied."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.sim.prefix_cache import PrefixCache

PROPS = settings(max_examples=120, deadline=None, database=None, derandomize=True)


@st.composite
def chains(draw: st.DrawFn) -> list[list[int]]:
    """Hash chains of a small trie: the same (parent, step) always gets the same id, as chained
    hashes do."""
    ids: dict[tuple[int, int], int] = {}
    out = []
    for _ in range(draw(st.integers(1, 30))):
        parent, chain = -1, []
        for _ in range(draw(st.integers(0, 7))):
            key = (parent, draw(st.integers(0, 2)))
            parent = ids.setdefault(key, len(ids))
            chain.append(parent)
        out.append(chain)
    return out


class _Model:
    """Per-node LRU (or LFU, ties to the least recent) as plain lists, most recent last."""

    def __init__(self, n: int, cap: int, lfu: bool = False, ssd_cap: int = 0) -> None:
        self.lists: list[list[int]] = [[] for _ in range(n)]
        self.ssd: list[list[int]] = [[] for _ in range(n)]
        self.uses: list[dict[int, int]] = [{} for _ in range(n)]
        self.cap = cap
        self.lfu = lfu
        self.ssd_cap = ssd_cap

    def match(self, chain: list[int]) -> list[int]:
        out = []
        for held, ssd in zip(self.lists, self.ssd, strict=True):
            k = 0
            while k < len(chain) and (chain[k] in held or chain[k] in ssd):
                k += 1
            out.append(k)
        return out

    def store(self, node: int, chain: list[int]) -> None:
        held, uses, ssd = self.lists[node], self.uses[node], self.ssd[node]
        for b in reversed(chain):
            if b in held:
                held.remove(b)
            if b in ssd:
                ssd.remove(b)
            held.append(b)
            uses[b] = uses.get(b, 0) + 1
        while len(held) > self.cap:
            # the least used, the least recent among those (held is in recency order)
            victim = min(held, key=lambda b: uses[b]) if self.lfu else held[0]
            held.remove(victim)
            del uses[victim]
            if self.ssd_cap:
                ssd.append(victim)
                del ssd[: max(len(ssd) - self.ssd_cap, 0)]


@PROPS
@given(chains(), st.integers(1, 4), st.integers(1, 12), st.sampled_from(["lru", "lfu"]),
       st.integers(0, 6), st.data())
def test_matches_and_evictions_follow_the_policy(
    reqs: list[list[int]], n: int, cap: int, eviction: str, ssd: int, data: st.DataObject
) -> None:
    cache = PrefixCache(n_nodes=n, capacity_tokens=cap * 16, block_tokens=16, eviction=eviction,
                        ssd_tokens=ssd * 16)
    model = _Model(n, cap, lfu=eviction == "lfu", ssd_cap=ssd)
    parent = {b: (c[i - 1] if i else -1) for c in reqs for i, b in enumerate(c)}
    for chain in reqs:
        got = cache.match_blocks(chain).tolist()
        assert got == model.match(chain)
        assert all(g <= len(chain) for g in got)
        node = data.draw(st.integers(0, n - 1))
        cache.store(node, chain)
        model.store(node, chain)
        for i in range(n):
            held, on_ssd = model.lists[i], model.ssd[i]
            assert cache.held_blocks(i) == len(held) <= cap and len(on_ssd) <= ssd
            assert all(cache.holds(i, b) for b in held + on_ssd)
            assert cache.on_ssd(i, np.array(on_ssd + held, dtype=np.int64)) == len(on_ssd)
            # prefix-closed: a parent never goes before its child
            both = held + on_ssd
            assert all(parent[b] == -1 or parent[b] in both for b in both)


def test_more_than_64_nodes_use_several_words() -> None:
    cache = PrefixCache(n_nodes=130, capacity_tokens=512)
    cache.store(129, [5])
    cache.store(64, [5])
    hits = cache.match_blocks([5, 6])
    assert np.flatnonzero(hits).tolist() == [64, 129] and hits.shape == (130,)


def test_a_chain_longer_than_the_cache_keeps_its_leading_blocks() -> None:
    cache = PrefixCache(n_nodes=1, capacity_tokens=2 * 512)
    cache.store(0, [1, 2, 3, 4])
    assert cache.match_blocks([1, 2, 3, 4]).tolist() == [2]


def test_an_ssd_tier_keeps_what_the_first_evicts_and_gives_it_back() -> None:
    cache = PrefixCache(n_nodes=1, capacity_tokens=2 * 512, ssd_tokens=2 * 512)
    cache.store(0, [1, 2])
    cache.store(0, [7, 8])                   # 1, 2 move to SSD
    assert cache.match_blocks([1, 2]).tolist() == [2]
    assert cache.on_ssd(0, np.array([1, 2])) == 2
    cache.touch(0, [1, 2])                   # used: back to the first tier, 7, 8 to SSD
    assert cache.on_ssd(0, np.array([1, 2, 7, 8])) == 2 and cache.held_blocks(0) == 2
    cache.store(0, [5, 6])                   # 1, 2 to SSD, 7, 8 fall off it
    assert cache.match_blocks([7]).tolist() == [0] and cache.match_blocks([1, 2]).tolist() == [2]


def test_a_touch_protects_a_hit_prefix_from_eviction() -> None:
    cache = PrefixCache(n_nodes=1, capacity_tokens=3 * 512)
    cache.store(0, [1, 2])
    cache.store(0, [7])
    cache.touch(0, [1, 2])  # a hit: [7] is now the least recent
    cache.store(0, [8])
    assert cache.holds(0, 1) and cache.holds(0, 2) and not cache.holds(0, 7)


def test_lru_beats_lfu_on_the_conversation_trace() -> None:
    """v3 Table 1's direction (LRU 0.40 against LFU 0.35 at 10k blocks on the arXiv trace) on
    the shipped conversation trace, one pool of 10k blocks: 21.6% against 13.4% of prompt
    tokens."""
    from schedlab.datasets import load

    w = load("mooncake-conversation")
    rate = {}
    for eviction in ("lru", "lfu"):
        cache = PrefixCache(1, 10_000 * 512, eviction=eviction)
        hit = 0
        for r in range(len(w)):
            chain = w.prefix_block_ids[r]
            hit += min(int(cache.match_blocks(chain, trusted=True)[0]) * 512,
                       int(w.input_tokens[r]))
            cache.store(0, chain, trusted=True)
        rate[eviction] = hit / int(w.input_tokens.sum())
    assert rate["lru"] == pytest.approx(0.216, abs=0.003)
    assert rate["lfu"] == pytest.approx(0.134, abs=0.003)


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"n_nodes": 1, "capacity_tokens": 1024, "eviction": "fifo"}, "eviction"),
        ({"n_nodes": 2, "capacity_tokens": 100}, "capacity_tokens"),
        ({"n_nodes": 0, "capacity_tokens": 1024}, "n_nodes"),
        ({"n_nodes": 1, "capacity_tokens": 1024, "block_tokens": 0}, "block_tokens"),
        ({"n_nodes": 1, "capacity_tokens": 10.5}, "capacity_tokens"),
    ],
)
def test_bad_construction_names_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field):
        PrefixCache(**kwargs)


@pytest.mark.parametrize("chain", [[1, -2], [1.5, 2], "ab", [[1, 2]], [True, 1.0]])
def test_a_bad_hash_chain_is_refused(chain: object) -> None:
    cache = PrefixCache(n_nodes=1, capacity_tokens=1024)
    for call in (cache.match_blocks, lambda c: cache.store(0, c)):
        with pytest.raises(ValueError, match="hash_ids must be a list of non-negative integers"):
            call(chain)
    with pytest.raises(ValueError, match="node"):
        cache.store(1, [1])


@pytest.mark.shared
def test_conversation_trace_hit_rate_at_3m_tokens(shared_dir: Path) -> None:
    """One 3M-token LRU pool (FAST'25 §5.3.1's per-node DRAM) over the conversation trace hits
    13.8% of prompt tokens (37% of the 37.4% an unbounded cache reaches), the figure measured
    when the trace was studied for this issue; FAST'25 Fig. 9 reports 41% of the maximum."""
    cache = PrefixCache(n_nodes=1, capacity_tokens=3_000_000)
    hit = total = 0
    with (shared_dir / "datasets" / "mooncake" / "conversation_trace.jsonl").open() as f:
        for line in f:
            r = json.loads(line)
            blocks, n = r["hash_ids"], r["input_length"]
            k = int(cache.match_blocks(blocks)[0])
            hit += min(k * 512, n)
            total += n
            cache.store(0, blocks)
    assert hit / total == pytest.approx(0.138, abs=0.003)
