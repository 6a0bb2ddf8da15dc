"""The processor catalog and the graph-search step costs (issue 18): every entry valid, the
share of bandwidth falls with the threads streaming, bytes follow the dimension in whole cache
lines, a fork-join round's synchronisation grows with log2 of the threads, and bad input named."""

from __future__ import annotations

import dataclasses

import pytest

from schedlab.costmodel.cpu import PROCESSORS, Processor, get_processor, search_costs


@pytest.mark.parametrize("name", sorted(PROCESSORS))
def test_catalog_entries_are_sourced_and_sane(name):
    p = PROCESSORS[name]
    assert p.source and p.cores >= 8 and 50e9 < p.memory_bytes_per_s < 1e12
    assert p.core_bytes_per_s < p.memory_bytes_per_s and 50e-9 <= p.memory_latency_s <= 200e-9
    assert get_processor(name) is p and get_processor(p) is p


def test_aliases_and_unknown_names():
    assert get_processor("Milan").name == "epyc-7763"
    with pytest.raises(ValueError, match="Unknown processor 'xeon-9999'"):
        get_processor("xeon-9999")


def test_bandwidth_share_dimension_and_synchronisation():
    cpu = get_processor("epyc-7763")
    alone = search_costs(cpu, dim=960, degree=32)
    busy = search_costs(cpu, dim=960, degree=32, active_threads=64)
    assert alone.distance_s == pytest.approx(3840 / cpu.core_bytes_per_s)
    assert busy.distance_s == pytest.approx(3840 * 64 / cpu.memory_bytes_per_s)
    # whole cache lines: 100 floats are 400 bytes, read as 7 lines
    assert search_costs(cpu, dim=100, degree=32).distance_s == pytest.approx(
        448 / cpu.core_bytes_per_s)
    syncs = [search_costs(cpu, dim=128, degree=32, threads=t).barrier_s for t in (1, 2, 8, 64)]
    assert syncs[0] == 0 and syncs[1:] == pytest.approx([2 * cpu.sync_level_s * k
                                                         for k in (1, 3, 6)])
    assert search_costs(cpu, dim=128, degree=32).handoff_s == 0  # one thread hands off nothing
    assert search_costs(cpu, dim=128, degree=32, threads=4).handoff_s == cpu.core_to_core_s
    # compute-bound when the memory is fast enough
    fast = dataclasses.replace(cpu, core_bytes_per_s=1e15, memory_bytes_per_s=1e16)
    assert search_costs(fast, dim=128, degree=32).distance_s == pytest.approx(
        256 / fast.flops_per_s)


@pytest.mark.parametrize("kwargs,match", [
    ({"dim": 0}, "'dim'"), ({"degree": -1}, "'degree'"), ({"threads": 0}, "'threads'"),
    ({"active_threads": 65}, "'active_threads'.*64 cores"), ({"dtype_bytes": 0}, "'dtype_bytes'"),
])
def test_bad_search_cost_arguments(kwargs, match):
    args = {"dim": 128, "degree": 32} | kwargs
    with pytest.raises(ValueError, match=match):
        search_costs("epyc-7763", **args)


@pytest.mark.parametrize("field,value", [("cores", 0), ("ghz", -1.0), ("memory_latency_s", 0.0),
                                         ("name", "")])
def test_bad_processor_fields(field, value):
    args = dataclasses.asdict(PROCESSORS["xeon-8380"]) | {field: value}
    with pytest.raises(ValueError, match=field):
        Processor(**args)
