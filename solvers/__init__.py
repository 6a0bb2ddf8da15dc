"""Optimal baselines: one problem record per decision family, shared by heuristics and the
optimum, an exact solver with a time limit, lower bounds and a verifier.

Offline iteration scheduling on one serving instance (FastServe digest §1.5):
:class:`IterationProblem`, :class:`Schedule`, :func:`verify`, :func:`solve_cpsat` (CP-SAT,
OR-Tools loaded on first use), :func:`lagrangian_bound` and :func:`solve_lagrangian` (a
certified bound and gap at thousands of requests), :func:`lp_bound` (scipy HiGHS; its size
before building, :func:`lp_size`),
:func:`list_schedule`, :func:`local_search` (swaps in a list schedule's priority order), and
:class:`SolveResult` (status, objective, bound, gap, wall time, schedule).

Admission and placement of a window of requests in a disaggregated cluster (Mooncake digest
§2.5a): :class:`PlacementProblem`, :class:`PlacementSchedule`, :func:`verify_placement`,
:func:`solve_placement_cpsat` (fewest rejections); :func:`schedlab.sim.replay_placement` runs a
placement policy on the same record.

Dispatch of an RL rollout batch to identical instances (StreamRL skew-aware dispatch, rollout
digest §2.8): :class:`RolloutDispatchProblem`, :class:`RolloutDispatchSchedule`,
:func:`verify_rollout_dispatch`, :func:`dispatch_lower_bound`, :func:`lpt_dispatch` and
:func:`solve_rollout_dispatch_cpsat` (minimum makespan under a fluid continuous-batching
surrogate).

Draft lengths of Seer's probe requests and the rest (rollout digest §1.9(c)): the exact split of
a draft-token budget by enumeration, :func:`solve_draft_allocation` (a :class:`DraftAllocation`),
:func:`draft_objective`, and :func:`greedy_loss` to judge a heuristic's answer.

Seer's divided rollout with KV capacity (rollout digest §1.9(b)): :class:`ChunkedRolloutProblem`,
:func:`chunks_of`, :class:`ChunkedRolloutSchedule`, :func:`verify_chunked_rollout`,
:func:`chunked_lower_bound`, :func:`greedy_chunked_rollout` and
:func:`solve_chunked_rollout_cpsat` (minimum makespan of chunks on instances, with migration).

LoongServe's prefill batching (§5.3): :class:`PrefillBatchingProblem`,
:func:`verify_prefill_batching`, :func:`brute_force_prefill_batching` and
:func:`solve_prefill_batching_cpsat` (the joint batch and instance assignment).

The expansion DAG of a sequential graph search on T workers (AverSearch, issue 18):
:class:`ExpansionDag`, :class:`DagSchedule`, :func:`verify_dag_schedule`,
:func:`work_span_bound`, :func:`dag_list_schedule` (the module's ``list_schedule``) and
:func:`solve_dag_schedule_cpsat` (minimum makespan, P|prec|Cmax).

Block selection in block-sparse attention (MoBA digest §6.5): the reference selection by true
attention mass, :func:`solve_block_selection` (exact by one sort per query),
:func:`verify_block_selection` (the rules and the missed mass of any selection, a
:class:`SelectionCheck`) and :func:`selection_recall`.

Heterogeneous decoding's device mix (Lamina): :func:`solve_device_mix` (the cheapest tokens
over every mix of compute and memory devices, replicas and batch, exact by enumeration),
:func:`verify_device_mix` and :func:`mixes`.

RetroInfer's GPU cache of KV clusters: :func:`solve_cache_replacement` (Belady's MIN, the fewest
misses on an access trace) and :func:`verify_cache_schedule` (any schedule's misses, checked).

Serverless sandboxes (TrEnv, digest §2.8): :func:`peak_concurrency` and
:func:`assign_sandboxes` (the fewest sandboxes, by greedy reuse), :func:`solve_reuse` (the
cheapest reuse schedule by min-cost flow, a :class:`ReuseSchedule`; :func:`verify_reuse`),
:func:`latency_floor`, :func:`memory_floor` (one shared image per function plus written pages),
and :func:`verify_serverless_run` (the rules any run keeps).

>>> import numpy as np
>>> from schedlab.solvers import random_problem, solve_cpsat, verify
>>> p = random_problem(6, np.random.default_rng(3))
>>> r = solve_cpsat(p, time_limit_s=5)
>>> r.status, verify(p, r.schedule).objective == r.objective
('OPTIMAL', True)
"""

from schedlab.solvers.block_selection import (
    SelectionCheck,
    selection_recall,
    solve_block_selection,
    verify_block_selection,
)
from schedlab.solvers.cache_replacement import solve_cache_replacement, verify_cache_schedule
from schedlab.solvers.chunked_rollout import (
    ChunkedRolloutCheck,
    ChunkedRolloutProblem,
    ChunkedRolloutSchedule,
    ChunkTable,
    chunked_lower_bound,
    chunks_of,
    greedy_chunked_rollout,
    random_chunked_rollout_problem,
    solve_chunked_rollout_cpsat,
    verify_chunked_rollout,
)
from schedlab.solvers.device_mix import mixes, solve_device_mix, verify_device_mix
from schedlab.solvers.draft_allocation import (
    DraftAllocation,
    draft_objective,
    greedy_loss,
    solve_draft_allocation,
)
from schedlab.solvers.expansion_dag import (
    DagSchedule,
    DagScheduleCheck,
    ExpansionDag,
    solve_dag_schedule_cpsat,
    verify_dag_schedule,
    work_span_bound,
)
from schedlab.solvers.expansion_dag import list_schedule as dag_list_schedule
from schedlab.solvers.iteration_bounds import lp_bound, lp_size
from schedlab.solvers.iteration_cpsat import solve_cpsat
from schedlab.solvers.iteration_heuristics import best_list_schedule, list_schedule, local_search
from schedlab.solvers.iteration_lagrangian import (
    LagrangianBound,
    completion_windows,
    lagrangian_bound,
    prefill_cuts,
    run_costs,
    solve_lagrangian,
)
from schedlab.solvers.iteration_problem import IterationProblem, kv_tokens_at_run, random_problem
from schedlab.solvers.iteration_schedule import Schedule
from schedlab.solvers.iteration_verify import ScheduleInvalid, VerifyResult, Violation, verify
from schedlab.solvers.placement_window import (
    PlacementCheck,
    PlacementProblem,
    PlacementSchedule,
    solve_placement_cpsat,
    verify_placement,
)
from schedlab.solvers.prefill_batching import (
    PrefillBatchingCheck,
    PrefillBatchingProblem,
    brute_force_prefill_batching,
    solve_prefill_batching_cpsat,
    verify_prefill_batching,
)
from schedlab.solvers.result import SolveResult
from schedlab.solvers.rollout_dispatch import (
    RolloutDispatchCheck,
    RolloutDispatchProblem,
    RolloutDispatchSchedule,
    dispatch_lower_bound,
    dispatch_makespan,
    instance_times,
    lpt_dispatch,
    random_rollout_dispatch_problem,
    solve_rollout_dispatch_cpsat,
    verify_rollout_dispatch,
)
from schedlab.solvers.sandboxes import (
    InvalidRun,
    ReuseSchedule,
    assign_sandboxes,
    latency_floor,
    memory_floor,
    peak_concurrency,
    solve_reuse,
    verify_reuse,
    verify_serverless_run,
)

__all__ = [
    "solve_cache_replacement",
    "verify_cache_schedule",
    "mixes",
    "solve_device_mix",
    "verify_device_mix",
    "SelectionCheck",
    "selection_recall",
    "solve_block_selection",
    "verify_block_selection",
    "IterationProblem",
    "PlacementCheck",
    "PlacementProblem",
    "PlacementSchedule",
    "Schedule",
    "ScheduleInvalid",
    "SolveResult",
    "VerifyResult",
    "Violation",
    "best_list_schedule",
    "kv_tokens_at_run",
    "list_schedule",
    "local_search",
    "lp_bound",
    "lp_size",
    "LagrangianBound",
    "completion_windows",
    "lagrangian_bound",
    "prefill_cuts",
    "run_costs",
    "solve_lagrangian",
    "random_problem",
    "solve_cpsat",
    "solve_placement_cpsat",
    "verify",
    "verify_placement",
    "RolloutDispatchCheck",
    "RolloutDispatchProblem",
    "RolloutDispatchSchedule",
    "dispatch_lower_bound",
    "dispatch_makespan",
    "instance_times",
    "lpt_dispatch",
    "random_rollout_dispatch_problem",
    "solve_rollout_dispatch_cpsat",
    "verify_rollout_dispatch",
    "DraftAllocation",
    "draft_objective",
    "greedy_loss",
    "solve_draft_allocation",
    "ChunkedRolloutProblem",
    "ChunkTable",
    "chunks_of",
    "ChunkedRolloutSchedule",
    "ChunkedRolloutCheck",
    "verify_chunked_rollout",
    "chunked_lower_bound",
    "greedy_chunked_rollout",
    "solve_chunked_rollout_cpsat",
    "random_chunked_rollout_problem",
    "PrefillBatchingCheck",
    "PrefillBatchingProblem",
    "brute_force_prefill_batching",
    "solve_prefill_batching_cpsat",
    "verify_prefill_batching",
    "ExpansionDag",
    "DagSchedule",
    "DagScheduleCheck",
    "verify_dag_schedule",
    "work_span_bound",
    "dag_list_schedule",
    "solve_dag_schedule_cpsat",
    "InvalidRun",
    "ReuseSchedule",
    "assign_sandboxes",
    "latency_floor",
    "memory_floor",
    "peak_concurrency",
    "solve_reuse",
    "verify_reuse",
    "verify_serverless_run",
]
