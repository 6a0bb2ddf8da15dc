"""Synthetic attention heads for block-sparse attention studies (MoBA): a long sequence made of
topical segments, and queries that look for one topic, nearby or far back.

No trained model's queries and keys ship with schedlab, so the gate studies of
:mod:`schedlab.seeds.moba` run on this generator [synthetic]: it has the structure that makes
block selection matter (attention concentrated on a few stretches of the context, not always
the most recent ones) and a knob for how concentrated (``signal``).

>>> h = topic_attention_head(4096, n_queries=16, seed=0)
>>> h.keys.shape, h.queries.shape, bool((h.positions < 4096).all())
((4096, 128), (16, 128), True)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from schedlab.datasets.arrivals import as_generator
from schedlab.errors import check_fraction, check_positive_float, check_positive_int

__all__ = ["AttentionHead", "topic_attention_head", "topic_decode_queries"]


class AttentionHead(NamedTuple):
    """One head's ``keys`` ``(n, d)``, ``queries`` ``(m, d)`` and the queries' token
    ``positions`` ``(m,)`` (ascending); ``topic`` is each token's topic and ``query_topic`` the
    topic each query looks for."""

    keys: np.ndarray
    queries: np.ndarray
    positions: np.ndarray
    topic: np.ndarray
    query_topic: np.ndarray


def topic_attention_head(n_tokens: int, *, head_dim: int = 128, n_queries: int = 256,
                         segment_tokens: int = 1024, topics: int = 64, signal: float = 0.5,
                         local: float = 0.5,
                         seed: int | np.random.Generator = 0) -> AttentionHead:
    """A head over ``n_tokens`` tokens cut into segments (geometric lengths, mean
    ``segment_tokens``), each on one of ``topics`` topics. A token's key is its topic's unit
    direction times ``signal * sqrt(head_dim)`` plus standard Gaussian noise; so is a query's,
    for the topic it looks for: with probability ``local`` its own segment's, otherwise the
    topic of a segment drawn uniformly among the earlier ones (a look-up far back). Queries sit
    at positions drawn uniformly in the last seven eighths of the sequence.

    With the scaled dot product, a matching key scores about ``signal**2 * sqrt(head_dim)``
    above the rest (2.8 at the defaults), so most of a query's attention falls on the tokens of
    its topic.

    >>> h = topic_attention_head(2048, n_queries=4, local=1.0, seed=1)
    >>> bool((h.query_topic == h.topic[h.positions]).all())   # every query looks nearby
    True
    """
    where = "topic_attention_head"
    n = check_positive_int(n_tokens, "n_tokens", where)
    d = check_positive_int(head_dim, "head_dim", where)
    m = check_positive_int(n_queries, "n_queries", where)
    seg = check_positive_int(segment_tokens, "segment_tokens", where)
    t = check_positive_int(topics, "topics", where)
    sig = check_positive_float(signal, "signal", where)
    loc = check_fraction(local, "local", where, open_low=False)
    rng = as_generator(seed, where)
    lengths = rng.geometric(1.0 / seg, size=n + 1)  # enough to cover n tokens whatever
    ends = np.cumsum(lengths)
    n_seg = int(np.searchsorted(ends, n)) + 1
    seg_topic = rng.integers(0, t, n_seg)
    seg_of = np.searchsorted(ends[:n_seg], np.arange(n), side="right")
    topic = seg_topic[seg_of]
    centres = rng.normal(size=(t, d))
    centres *= sig * np.sqrt(d) / np.linalg.norm(centres, axis=1, keepdims=True)
    keys = centres[topic] + rng.normal(size=(n, d))
    positions = np.sort(rng.integers(n // 8, n, m))
    own = seg_of[positions]
    far = seg_topic[(rng.random(m) * own).astype(np.int64)]  # an earlier segment (own if none)
    query_topic = np.where((rng.random(m) < loc) | (own == 0), topic[positions], far)
    queries = centres[query_topic] + rng.normal(size=(m, d))
    return AttentionHead(keys=keys, queries=queries, positions=positions, topic=topic,
                         query_topic=query_topic)


def topic_decode_queries(head: AttentionHead, steps: int, *, signal: float = 0.5,
                         persistence: float = 0.9, switch: float = 0.05,
                         seed: int | np.random.Generator = 0) -> np.ndarray:
    """``(steps, d)`` queries of successive decode steps over ``head``'s context [synthetic]:
    each looks for a topic of the context (its direction estimated as the mean key of the
    topic's tokens, scaled to ``signal * sqrt(d)``) plus noise that persists from step to step
    (an AR(1) process of unit variance with coefficient ``persistence``); with probability
    ``switch`` a step draws its topic anew (possibly the same) from those in the context.
    Successive steps then retrieve overlapping clusters, the temporal locality RetroInfer's GPU
    cache relies on.

    >>> h = topic_attention_head(2048, n_queries=1, seed=0)
    >>> topic_decode_queries(h, 5, seed=0).shape
    (5, 128)
    """
    where = "topic_decode_queries"
    t = check_positive_int(steps, "steps", where)
    sig = check_positive_float(signal, "signal", where)
    rho = check_fraction(persistence, "persistence", where, open_low=False)
    p = check_fraction(switch, "switch", where, open_low=False)
    rng = as_generator(seed, where)
    topics = np.unique(head.topic)
    d = head.keys.shape[1]
    sums = np.zeros((int(topics.max()) + 1, d))
    np.add.at(sums, head.topic, head.keys)
    centres = sums[topics]
    centres *= sig * np.sqrt(d) / np.maximum(np.linalg.norm(centres, axis=1, keepdims=True),
                                               1e-12)
    out = np.empty((t, d))
    current = int(rng.integers(topics.shape[0]))
    noise = rng.normal(size=d)
    for i in range(t):
        if i and rng.random() < p:
            current = int(rng.integers(topics.shape[0]))
        noise = rho * noise + np.sqrt(1.0 - rho * rho) * rng.normal(size=d)
        out[i] = centres[current] + noise
    return out
