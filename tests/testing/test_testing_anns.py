"""check_ann_search (issue 18): our three searches pass it, and each rule catches a search that
breaks it."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from schedlab.policies.anns import beam_search
from schedlab.policies.aversearch import async_search
from schedlab.testing import check_ann_search


@pytest.mark.parametrize("name", ["sequential", "fork-join", "aversearch"])
def test_the_registered_searches_pass(name):
    check_ann_search(name, max_examples=25)


def _sequential(graph, base, query, *, threads, costs=None, beam_width=64, k=10):
    return beam_search(graph, base, query, beam_width=beam_width, k=k)


def _reversed(graph, base, query, **kw):
    s = _sequential(graph, base, query, **kw)
    return dataclasses.replace(s, ids=s.ids[::-1], distances=s.distances[::-1])


def _twice(graph, base, query, **kw):
    s = _sequential(graph, base, query, **kw)
    return dataclasses.replace(s, computed=np.append(s.computed, s.computed[-1]))


def _impure(graph, base, query, **kw):
    query += 1.0
    return _sequential(graph, base, query, **kw)


def _wider(graph, base, query, *, threads, costs=None, beam_width=64, k=10):
    # a valid search, but not the sequential one at one thread: its beam is wider
    return beam_search(graph, base, query, beam_width=beam_width + 8, k=k)


def _async_at_two(graph, base, query, *, threads, costs, beam_width=64, k=10):
    tr = async_search(graph, base, query, threads=threads, costs=costs, beam_width=beam_width,
                      k=k)
    return dataclasses.replace(tr, maintainer_busy_s=threads * tr.latency_s * 2)


def _not_a_trace(graph, base, query, **kw):
    return _sequential(graph, base, query, **kw).ids


@pytest.mark.parametrize("search,rule", [
    (_reversed, "results"), (_twice, "duplicate computation"), (_impure, "not pure"),
    (_wider, "one thread"), (_not_a_trace, "malformed answer"), (_async_at_two, "busy time"),
])
def test_each_rule_catches_its_breach(search, rule):
    with pytest.raises(AssertionError, match=f"check_ann_search: {rule}"):
        check_ann_search(search, max_examples=40, threads=(1, 4))


def test_a_search_that_does_not_promise_the_sequential_search_at_one_thread():
    check_ann_search(_wider, max_examples=15, threads=(1,), sequential_at_one=False)


@pytest.mark.parametrize("kwargs,match", [({"max_examples": 0}, "'max_examples'"),
                                          ({"threads": ()}, "'threads'"),
                                          ({"threads": (0,)}, "'threads'")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        check_ann_search("aversearch", **kwargs)
