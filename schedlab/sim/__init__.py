"""The discrete-event serving simulator.

- :mod:`schedlab.sim.cluster`: :class:`InstanceSpec`, :class:`Cluster` (what is simulated).
- :mod:`schedlab.sim.engine`: the deterministic event heap.
- :mod:`schedlab.sim.state`: per-request state columns and the token/KV accounting invariant.
- :mod:`schedlab.sim.deciding`: an instance's decisions: asking the policy (a view, the
  contract's checks) or re-forming the batch from the static plan it keeps.
- :mod:`schedlab.sim.forming`: the compiled twin of the contract's batch-forming rule.
- :mod:`schedlab.sim.instance`: one instance's runtime: it runs what was decided.
- :mod:`schedlab.sim.kernels`: the compiled per-event column updates (the accounting's twin).
- :mod:`schedlab.sim.simulator`: :func:`simulate`, the driver (arrivals, routing, events).
- :mod:`schedlab.sim.log`, :mod:`schedlab.sim.result`: the iteration log, :class:`SimResult`
  and its summary metrics; :mod:`schedlab.sim.gaps`: token gaps and Mooncake's TBT.
- :mod:`schedlab.sim.disaggregated`: prefill and decode pools with a placement policy
  (:func:`simulate_disaggregated`, :class:`DisaggregatedCluster`), over the distributed prefix
  cache of :mod:`schedlab.sim.prefix_cache`; :mod:`schedlab.sim.placement_window`: a placement
  policy on a window problem of :mod:`schedlab.solvers` (:func:`replay_placement`).
- :mod:`schedlab.sim.rollout`: an RL rollout batch dispatched to inference instances by a
  dispatch policy (:func:`simulate_rollout`, :class:`RolloutCluster`, :class:`RolloutResult`);
  :mod:`schedlab.sim.divided_rollout`: the same batch dispatched a chunk at a time through a
  global KV pool by a scheduler (Seer, :func:`simulate_divided_rollout`);
  :mod:`schedlab.sim.partial_rollout`: Partial Rollout's over-issued, cut and carried iterations
  on that driver (:func:`simulate_partial_rollout`); :mod:`schedlab.sim.chunked_replay`: such a
  scheduler on a chunked-rollout problem of :mod:`schedlab.solvers`, against its CP-SAT optimum
  (:func:`replay_chunked_rollout`, :func:`optimality_gaps`); :mod:`schedlab.sim.speculation`:
  speculative decoding in that driver's engine steps (:class:`Speculation`).
- :mod:`schedlab.sim.elastic`: elastic instances whose requests span several (LoongServe:
  sequence-parallel prefills, multi-master decoding; :func:`simulate_elastic`,
  :class:`ElasticCluster`).
- :mod:`schedlab.sim.anns`: graph-ANNS searches priced on a CPU socket, alone and under load
  (AverSearch against fork-join: :func:`schedlab.sim.anns.anns_table`).
- :mod:`schedlab.sim.wave_buffer`: RetroInfer's GPU cache of KV clusters replayed on an access
  trace under a replacement policy (:func:`replay_cache`).
- :mod:`schedlab.sim.serverless`: a serverless platform's sandboxes under a sandbox policy and
  a memory cap (TrEnv against faasd, CRIU, REAP+ and FaaSnap+: :func:`simulate_serverless`,
  :class:`ServerlessRun`).
"""

from schedlab.sim.chunked_replay import optimality_gaps, replay_chunked_rollout
from schedlab.sim.cluster import Cluster, InstanceSpec
from schedlab.sim.disaggregated import DisaggregatedCluster, simulate_disaggregated
from schedlab.sim.divided_rollout import simulate_divided_rollout
from schedlab.sim.elastic import ElasticCluster, simulate_elastic
from schedlab.sim.partial_rollout import PartialRolloutResult, simulate_partial_rollout
from schedlab.sim.placement_window import replay_placement
from schedlab.sim.result import SimResult
from schedlab.sim.rollout import RolloutCluster, RolloutResult, simulate_rollout
from schedlab.sim.serverless import ServerlessRun, simulate_serverless
from schedlab.sim.simulator import simulate
from schedlab.sim.speculation import Speculation
from schedlab.sim.wave_buffer import CacheRun, replay_cache

__all__ = ["CacheRun", "Cluster", "DisaggregatedCluster", "ElasticCluster", "InstanceSpec",
           "PartialRolloutResult", "RolloutCluster", "RolloutResult", "ServerlessRun", "SimResult",
           "Speculation", "optimality_gaps", "replay_cache", "replay_chunked_rollout",
           "replay_placement", "simulate", "simulate_serverless",
           "simulate_disaggregated", "simulate_divided_rollout", "simulate_elastic",
           "simulate_partial_rollout", "simulate_rollout"]
