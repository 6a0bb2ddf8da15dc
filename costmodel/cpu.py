"""Processors (CPU sockets) and what a graph-ANNS step costs on them (AverSearch, arXiv
2504.20461; issue 18).

A graph search streams vectors from random addresses, so its throughput is set by memory:
AverSearch's *effective memory bandwidth* is ``PMB * (1 - RR)``, the physical bandwidth less the
share spent on redundant vertices. :class:`Processor` holds what a datasheet gives (cores, clock,
SIMD width, memory channels) and two figures that published measurements give (the idle DRAM
latency and one core's achievable bandwidth); :func:`search_costs` turns them into the per-step
seconds of :class:`~schedlab.contract.anns.SearchCosts`:

- a **distance** reads the vector's cache lines at the thread's share of the bandwidth,
  ``min(core bandwidth, socket bandwidth / active threads)``, or is bound by its FMAs, whichever
  is slower (the neighbours of one expansion are independent, so their reads stream);
- an **expansion** is a dependent chain: the neighbour list, then the first neighbour's vector,
  two DRAM latencies, plus a visited-set test per neighbour;
- a fork-join **round** costs a fork and a join, each a tree of ``ceil(log2 T)`` levels;
- a queue **insert** and a **merge** entry are cache resident;
- a **hand-off** between cores (a vertex to a calculator, its distance back) is one
  core-to-core cache-line transfer.

[recon] The latency is the idle one (queueing under load is not modelled) and the insert, merge
and synchronisation constants are typical figures, not fitted; they are parameters.

>>> cpu = get_processor("xeon-8380")
>>> c = search_costs(cpu, dim=128, degree=32, threads=8)
>>> round(c.distance_s * 1e9, 1), round(c.expansion_s * 1e9)   # 512 B at 12 GB/s; 2 latencies
(42.7, 232)
>>> loaded = search_costs(cpu, dim=128, degree=32, threads=8, active_threads=40)
>>> round(loaded.distance_s / c.distance_s, 2)               # 40 threads share 163.8 GB/s: 4.1 each
2.93
"""

from __future__ import annotations

import math
import types
from collections.abc import Mapping
from dataclasses import dataclass

from schedlab.contract.anns import SearchCosts
from schedlab.costmodel.hardware import _check_text, resolve_name
from schedlab.errors import check_positive_float, check_positive_int

__all__ = ["PROCESSORS", "Processor", "get_processor", "search_costs", "vector_bytes"]

_LINE = 64  # bytes per cache line


@dataclass(frozen=True, slots=True, kw_only=True)
class Processor:
    """One CPU socket: ``cores`` at ``ghz`` with ``flops_per_cycle`` FP32 per core (FMA counted
    as two), ``memory_bytes_per_s`` the sustained (STREAM-like) DRAM bandwidth of the socket,
    ``memory_latency_s`` the idle load-to-use DRAM latency, ``core_bytes_per_s`` what one core
    alone can stream, ``sync_level_s`` one level of a fork or join tree, ``insert_s`` one
    candidate's insertion in a sorted queue, ``merge_entry_s`` one entry of a queue merge,
    ``core_to_core_s`` one cache line written by a core and read by another."""

    name: str
    cores: int
    ghz: float
    flops_per_cycle: float
    memory_bytes_per_s: float
    memory_latency_s: float
    core_bytes_per_s: float
    sync_level_s: float = 0.25e-6
    insert_s: float = 10e-9
    merge_entry_s: float = 2e-9
    core_to_core_s: float = 60e-9
    source: str = ""

    def __post_init__(self) -> None:
        where = "Processor"
        _check_text(self.name, "name", where)
        object.__setattr__(self, "cores", check_positive_int(self.cores, "cores", where))
        for field in ("ghz", "flops_per_cycle", "memory_bytes_per_s", "memory_latency_s",
                      "core_bytes_per_s", "sync_level_s", "insert_s", "merge_entry_s",
                      "core_to_core_s"):
            object.__setattr__(self, field, check_positive_float(getattr(self, field), field,
                                                                 where))
        _check_text(self.source, "source", where, empty_ok=True)

    @property
    def flops_per_s(self) -> float:
        """One core's FP32 peak."""
        return self.flops_per_cycle * self.ghz * 1e9


_MEASURED = ("idle DRAM latency, single-core bandwidth and core-to-core latency are typical "
             "published measurements (Intel MLC / STREAM class), rounded: indicative, not this "
             "project's")

PROCESSORS: Mapping[str, Processor] = types.MappingProxyType({
    p.name: p for p in (
        Processor(name="xeon-8380", cores=40, ghz=2.3, flops_per_cycle=64,
                  memory_bytes_per_s=163.8e9, memory_latency_s=100e-9, core_bytes_per_s=12e9,
                  source="Intel Xeon Platinum 8380 (Ice Lake-SP) datasheet: 40 cores, 2.3 GHz "
                         "base, 2 AVX-512 FMA units; 8 channels DDR4-3200 = 204.8 GB/s peak, "
                         "80% sustained; " + _MEASURED),
        Processor(name="xeon-8480", cores=56, ghz=2.0, flops_per_cycle=64,
                  memory_bytes_per_s=245.8e9, memory_latency_s=110e-9, core_bytes_per_s=20e9,
                  core_to_core_s=70e-9,
                  source="Intel Xeon Platinum 8480+ (Sapphire Rapids) datasheet: 56 cores, "
                         "2.0 GHz base, 2 AVX-512 FMA units; 8 channels DDR5-4800 = 307.2 GB/s "
                         "peak, 80% sustained; " + _MEASURED),
        Processor(name="epyc-7763", cores=64, ghz=2.45, flops_per_cycle=32,
                  memory_bytes_per_s=163.8e9, memory_latency_s=110e-9, core_bytes_per_s=20e9,
                  core_to_core_s=100e-9,
                  source="AMD EPYC 7763 (Milan) datasheet: 64 cores, 2.45 GHz base, 2 256-bit "
                         "FMA units; 8 channels DDR4-3200 = 204.8 GB/s peak, 80% sustained; "
                         + _MEASURED),
    )
})

_ALIASES: Mapping[str, str] = types.MappingProxyType({
    "icelake": "xeon-8380", "ice-lake": "xeon-8380", "sapphire-rapids": "xeon-8480",
    "spr": "xeon-8480", "milan": "epyc-7763",
})


def get_processor(name: str | Processor) -> Processor:
    """The catalog :class:`Processor` called ``name`` (an instance is returned unchanged).

    >>> get_processor("Ice Lake").cores
    40
    """
    return resolve_name("processor", name, PROCESSORS, _ALIASES, Processor)


def vector_bytes(dim: int, dtype_bytes: int = 4) -> int:
    """The bytes a read of one ``dim``-dimensional vector moves: whole cache lines.

    >>> vector_bytes(128), vector_bytes(100)
    (512, 448)
    """
    return math.ceil(dim * dtype_bytes / _LINE) * _LINE


def search_costs(processor: str | Processor, *, dim: int, degree: int, threads: int = 1,
                 active_threads: int | None = None, dtype_bytes: int = 4) -> SearchCosts:
    """Per-step seconds of a graph search of ``dim``-dimensional vectors (``dtype_bytes`` each)
    on a graph of out-degree ``degree``, for a query on ``threads`` threads while
    ``active_threads`` (default ``threads``) threads of the socket stream vectors and share its
    memory bandwidth (see the module docstring)."""
    where = "search_costs"
    cpu = get_processor(processor)
    d = check_positive_int(dim, "dim", where)
    r = check_positive_int(degree, "degree", where)
    t = check_positive_int(threads, "threads", where)
    active = t if active_threads is None else check_positive_int(active_threads,
                                                                 "active_threads", where)
    if active > cpu.cores:
        raise ValueError(f"The 'active_threads' parameter of {where} must be at most the "
                         f"{cpu.cores} cores of {cpu.name}. Got {active}.")
    size = check_positive_int(dtype_bytes, "dtype_bytes", where)
    share = min(cpu.core_bytes_per_s, cpu.memory_bytes_per_s / active)
    distance = max(vector_bytes(d, size) / share, 2 * d / cpu.flops_per_s)
    expansion = 2 * cpu.memory_latency_s + r * 1e-9
    levels = math.ceil(math.log2(t)) if t > 1 else 0
    return SearchCosts(expansion_s=expansion, distance_s=distance, insert_s=cpu.insert_s,
                       barrier_s=2 * levels * cpu.sync_level_s, merge_entry_s=cpu.merge_entry_s,
                       handoff_s=cpu.core_to_core_s if t > 1 else 0.0, active_threads=active)
