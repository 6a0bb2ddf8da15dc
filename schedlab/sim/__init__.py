"""The discrete-event serving simulator.

- :mod:`schedlab.sim.cluster`: :class:`InstanceSpec`, :class:`Cluster` (what is simulated).
- :mod:`schedlab.sim.engine`: the deterministic event heap.
- :mod:`schedlab.sim.state`: per-request state columns and the token/KV accounting invariant.
- :mod:`schedlab.sim.instance`: one instance: views, policy calls, checks, runs.
- :mod:`schedlab.sim.simulator`: :func:`simulate`, the driver (arrivals, routing, events).
- :mod:`schedlab.sim.result`: :class:`SimResult` and its summary metrics.
"""

from schedlab.sim.cluster import Cluster, InstanceSpec
from schedlab.sim.result import SimResult
from schedlab.sim.simulator import simulate

__all__ = ["Cluster", "InstanceSpec", "SimResult", "simulate"]
