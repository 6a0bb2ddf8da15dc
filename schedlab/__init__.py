"""schedlab: scheduling policies for LLM serving, RL rollout and vector search.

The public face is a short, curated list of names. Everything but the records loads on first
use (PEP 562 module ``__getattr__``), so ``import schedlab`` stays fast and free of pandas,
OR-Tools, LightGBM and matplotlib.

>>> import schedlab
>>> w = schedlab.Workload(arrival_s=[0.0, 1.0], input_tokens=[8, 16], output_tokens=[4, 2])
>>> res = schedlab.simulate(w, schedlab.InstanceSpec(model="llama-2-7b", gpu="a100-80gb"), "fcfs")
>>> res.status.tolist()
['completed', 'completed']
"""

from __future__ import annotations

import importlib
from typing import Any

from schedlab._version import __version__
from schedlab.records import PrefixBlocks, Workload

#: Public names loaded on first use: name -> module that defines it.
_LAZY = {
    "simulate": "schedlab.sim",
    "simulate_disaggregated": "schedlab.sim",
    "DisaggregatedCluster": "schedlab.sim",
    "simulate_rollout": "schedlab.sim",
    "RolloutCluster": "schedlab.sim",
    "Cluster": "schedlab.sim",
    "InstanceSpec": "schedlab.sim",
    "SimResult": "schedlab.sim",
    "iteration_cost": "schedlab.costmodel",
    "get_policy": "schedlab.policies",
    "check_policy": "schedlab.testing",
    "sweep": "schedlab.sweeps",
}

__all__ = ["PrefixBlocks", "Workload", "__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'schedlab' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
