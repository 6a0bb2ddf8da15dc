"""RL rollout on the serving engine: one iteration's samples dispatched to inference instances.

An RL iteration generates ``G`` samples for each of ``P`` prompts (a workload with ``group_id``,
e.g. :func:`schedlab.datasets.rollout.rollout_batch`) on ``N`` identical inference instances, all
released at once. A dispatch policy (:mod:`schedlab.contract.dispatch`) puts each sample on an
instance and fixes the order in which each instance admits its samples; every instance then runs
continuous batching on the serving engine (:func:`schedlab.sim.simulate`: the batch size, the KV
capacity and, when the KV overflows, preemption by recomputation, counted per sample). Decode
step times come from the cost model, from the batch and its contexts.

The batching policy of the instances is vLLM's FCFS scheduler (``"vllm"``, as veRL's rollout
workers run vLLM) by default; it admits in arrival order, and the simulator presents the samples
to it in the dispatch's order (the workload is permuted for the run and the result mapped back),
so "longest predicted first within an instance" is the dispatch's order, carried out as it is.

Metrics (:class:`RolloutResult`): the rollout's makespan, output tokens per second, the time
spent on the last 10% of samples (the *tail*, Seer's measure), each instance's idle time before
the makespan (StreamRL's skewness bubbles), and preemptions.

>>> from schedlab.datasets.rollout import rollout_batch
>>> w = rollout_batch(n_prompts=8, samples_per_prompt=4, seed=0, max_tokens=2048)
>>> c = RolloutCluster.homogeneous("llama-2-7b", "a100-80gb", n_instances=2)
>>> r = simulate_rollout(w, c, "round-robin")
>>> r.summary()["samples"], bool(r.makespan_s > r.tail_s() > 0)
(32, True)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np

from schedlab.contract.dispatch import Dispatch, DispatchView, InvalidDispatch, validate_dispatch
from schedlab.contract.placement import DecodeStepModel
from schedlab.errors import (
    check_array,
    check_fraction,
    check_instance,
    check_keyword_params,
    check_positive_int,
)
from schedlab.records import Workload
from schedlab.sim.cluster import Cluster, InstanceSpec
from schedlab.sim.disaggregated import fit_decode_step
from schedlab.sim.result import SimResult
from schedlab.sim.simulator import simulate

__all__ = ["RolloutCluster", "RolloutResult", "dispatch_view", "simulate_rollout"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutCluster:
    """``n_instances`` identical inference instances of one :class:`InstanceSpec`.

    >>> from schedlab.costmodel.base import ConstantIterationCost
    >>> c = RolloutCluster(instance=InstanceSpec(cost=ConstantIterationCost()), n_instances=4)
    >>> c.n_instances
    4
    """

    instance: InstanceSpec
    n_instances: int

    def __post_init__(self) -> None:
        check_instance(self.instance, InstanceSpec, "instance", "RolloutCluster")
        check_positive_int(self.n_instances, "n_instances", "RolloutCluster")

    @classmethod
    def homogeneous(cls, model: Any, gpu: Any, *, n_instances: int, tp: int = 1,
                    max_batch_size: int = 256, max_context_tokens: int | None = None,
                    **spec: Any) -> RolloutCluster:
        """Instances of ``model`` on ``tp`` GPUs of type ``gpu``, rollout-style: preemption by
        recomputation (vLLM's default, what veRL's workers do), whole prompts in one iteration
        (a token budget of 65,536 or the context limit, whichever is larger: vLLM without
        chunked prefill needs a budget of at least the model's length, since a preempted request
        prefills its prompt and its output again in one iteration), the roofline cost model
        built once and shared. ``spec`` overrides other :class:`InstanceSpec` fields."""
        budget = max(65_536, max_context_tokens or 0)
        base = InstanceSpec(model=model, gpu=gpu, tp=tp, max_batch_size=max_batch_size,
                            max_batch_tokens=spec.pop("max_batch_tokens", budget),
                            preemption=spec.pop("preemption", "recompute"),
                            max_context_tokens=max_context_tokens, **spec)
        return cls(instance=replace(base, cost=base.resolved_cost()), n_instances=n_instances)

    @property
    def cluster(self) -> Cluster:
        """The serving :class:`Cluster` the engine runs."""
        return Cluster(instances=(self.instance,) * self.n_instances)


def dispatch_view(workload: Workload, cluster: RolloutCluster, *,
                  predicted_output_tokens: np.ndarray | None = None,
                  history_tokens: np.ndarray | None = None,
                  decode_step: DecodeStepModel | None = None) -> DispatchView:
    """The :class:`DispatchView` a dispatch policy sees of ``workload`` on ``cluster``.

    ``predicted_output_tokens``: predicted lengths or rank scores (None: the true lengths, an
    oracle); ``history_tokens``: output lengths of earlier iterations; ``decode_step``: the
    per-token latency model (None: fitted to the instances' cost model)."""
    where = "dispatch_view"
    n = len(workload)
    if predicted_output_tokens is None:
        pred = workload.output_tokens.astype(np.float64)
    else:
        pred = check_array(predicted_output_tokens, "predicted_output_tokens", where,
                           dtype=np.float64, ndim=1, length=n)
    hist = (np.zeros(0) if history_tokens is None else
            check_array(history_tokens, "history_tokens", where, dtype=np.float64, ndim=1,
                        min_value=0.0))
    spec = cluster.instance
    cost = spec.resolved_cost()
    group = workload.group_id if workload.group_id is not None else np.arange(n)
    return DispatchView(
        request_id=_ro(np.arange(n, dtype=np.int64)), group_id=_ro(group.copy()),
        input_tokens=_ro(workload.input_tokens.copy()), output_tokens_pred=_ro(pred.copy()),
        n_instances=cluster.n_instances, max_batch_size=spec.max_batch_size,
        kv_capacity_tokens=spec.kv_capacity(cost),
        decode_step=decode_step if decode_step is not None else fit_decode_step(cost),
        history_tokens=_ro(hist.copy()),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RolloutResult:
    """One rollout iteration: the engine's per-sample result and the dispatch that made it.

    ``serving`` is the engine's :class:`SimResult`, one row per sample in the workload's order
    (its ``instance`` column says where each ran, last); ``dispatch`` the dispatch policy's
    answer (None for a divided rollout, :func:`~schedlab.sim.simulate_divided_rollout`, whose
    chunks are counted in ``extra``); ``group_id`` each sample's prompt.
    """

    serving: SimResult
    dispatch: Dispatch | None
    group_id: np.ndarray
    dispatch_name: str = ""
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def n_instances(self) -> int:
        return self.serving.n_instances

    @property
    def finish_s(self) -> np.ndarray:
        """Each sample's completion time (``nan`` for a rejected one)."""
        return np.where(self.serving.completed, self.serving.finish_s, np.nan)

    @property
    def makespan_s(self) -> float:
        """Time from the batch's release (t=0) to its last completion."""
        f = self.finish_s
        return float(np.nanmax(f)) if np.isfinite(f).any() else 0.0

    @property
    def output_tokens_per_s(self) -> float:
        """Generated tokens of the completed samples over the makespan."""
        m = self.makespan_s
        tokens = float(self.serving.output_tokens[self.serving.completed].sum())
        return tokens / m if m > 0 else 0.0

    def tail_s(self, fraction: float = 0.1) -> float:
        """Time spent on the last ``fraction`` of the samples: the makespan minus the time the
        first ``1 - fraction`` of them had completed (Seer's tail, the last 10% by default).

        >>> from schedlab.datasets.rollout import rollout_batch
        >>> from schedlab.costmodel.base import ConstantIterationCost
        >>> w = rollout_batch(n_prompts=10, samples_per_prompt=1, seed=1, max_tokens=512)
        >>> c = RolloutCluster(instance=InstanceSpec(cost=ConstantIterationCost()), n_instances=1)
        >>> r = simulate_rollout(w, c)
        >>> bool(0 < r.tail_s() < r.makespan_s)
        True
        """
        check_fraction(fraction, "fraction", "RolloutResult.tail_s")
        f = np.sort(self.finish_s[np.isfinite(self.finish_s)])
        if f.shape[0] == 0:
            return 0.0
        k = f.shape[0] - math.ceil(fraction * f.shape[0])  # completions before the tail
        return float(f[-1] - (f[k - 1] if k > 0 else 0.0))

    @property
    def instance_finish_s(self) -> np.ndarray:
        """When each instance completed its last sample (0 for an instance given none)."""
        out = np.zeros(self.n_instances)
        done = np.isfinite(self.finish_s)
        np.maximum.at(out, self.serving.instance[done], self.finish_s[done])
        return out

    @property
    def idle_s(self) -> np.ndarray:
        """Each instance's idle time before the makespan (it has nothing left to generate while
        others still do: StreamRL's skewness bubble)."""
        return self.makespan_s - self.instance_finish_s

    @property
    def preemptions(self) -> int:
        """Preemptions (by recomputation, with the default spec) over all samples."""
        return int(self.serving.preemptions.sum())

    def summary(self) -> dict[str, Any]:
        """Headline metrics.

        >>> from schedlab.datasets.rollout import rollout_batch
        >>> from schedlab.costmodel.base import ConstantIterationCost
        >>> w = rollout_batch(n_prompts=4, samples_per_prompt=2, seed=0, max_tokens=256)
        >>> c = RolloutCluster(instance=InstanceSpec(cost=ConstantIterationCost()), n_instances=2)
        >>> sorted(simulate_rollout(w, c).summary())[:3]
        ['completed', 'dispatch', 'est_makespan_s']
        """
        idle = self.idle_s
        return {
            "dispatch": self.dispatch_name,
            "samples": int(self.serving.request_id.shape[0]),
            "completed": int(self.serving.completed.sum()),
            "makespan_s": self.makespan_s,
            "output_tokens_per_s": self.output_tokens_per_s,
            "tail_s": self.tail_s(),
            "tail_share": self.tail_s() / self.makespan_s if self.makespan_s > 0 else 0.0,
            "idle_mean_s": float(idle.mean()),
            "idle_share": float(idle.mean() / self.makespan_s) if self.makespan_s > 0 else 0.0,
            "preemptions": self.preemptions,
            "long_instances": 0 if self.dispatch is None else self.dispatch.long_instances,
            "est_makespan_s": (math.nan if self.dispatch is None
                               else float(self.dispatch.est_makespan_s)),
            "wall_s": self.wall_s,
        }


def simulate_rollout(
    workload: Workload,
    cluster: RolloutCluster,
    dispatch: str | Callable[..., Dispatch] = "round-robin",
    *,
    dispatch_params: dict[str, Any] | None = None,
    policy: str | Callable[..., Any] = "vllm",
    policy_params: dict[str, Any] | None = None,
    predicted_output_tokens: np.ndarray | None = None,
    history_tokens: np.ndarray | None = None,
    closed_form: bool = True,
) -> RolloutResult:
    """Simulate one rollout iteration of ``workload`` (every sample released at t=0) on
    ``cluster`` with a ``dispatch`` policy (see the module docstring).

    Parameters
    ----------
    workload : the samples; ``group_id`` names each sample's prompt (none: one sample each).
        Arrival times are ignored: a rollout batch is released at once.
    dispatch : a registered dispatch policy (:data:`schedlab.policies.DISPATCHES`) or any
        callable ``dispatch(view: DispatchView, /, **dispatch_params) -> Dispatch``.
    policy, policy_params : the instances' batching policy (default vLLM's FCFS, which admits
        in the dispatch's order).
    predicted_output_tokens : what the dispatch sees as lengths or rank scores (None: the truth,
        an oracle such as StreamRL-Oracle). The truth only decides completion.
    history_tokens : output lengths of earlier iterations, shown to the dispatch.
    closed_form : as in :func:`~schedlab.sim.simulate`.
    """
    from schedlab.policies import get_dispatch

    wall0 = time.perf_counter()
    where = "simulate_rollout"
    check_instance(workload, Workload, "workload", where)
    check_instance(cluster, RolloutCluster, "cluster", where)
    fn = get_dispatch(dispatch)
    name = dispatch if isinstance(dispatch, str) else getattr(fn, "__name__", "?")
    params = dict(dispatch_params or {})
    check_keyword_params(fn, params, f"dispatch policy {name!r}")
    view = dispatch_view(workload, cluster, predicted_output_tokens=predicted_output_tokens,
                         history_tokens=history_tokens)
    d = fn(view, **params)
    if not isinstance(d, Dispatch):
        raise ValueError(f"Dispatch policy {name!r} must return a Dispatch. Got "
                         f"{type(d).__name__}.")
    try:
        validate_dispatch(view, d)
    except InvalidDispatch as exc:
        raise ValueError(f"Dispatch policy {name!r}: {exc}") from None
    # the engine admits in arrival order, ties by position: present the samples in the
    # dispatch's order, all at t=0, each routed to its instance
    perm = d.order
    run_w = _permuted(workload, perm)
    inst = d.instance[perm]
    inst.flags.writeable = False
    pred = None if predicted_output_tokens is None else view.output_tokens_pred[perm]
    res = simulate(run_w, cluster.cluster, policy, policy_params=policy_params,
                   router=_fixed_router(inst), predicted_output_tokens=pred,
                   closed_form=closed_form)
    inv = np.empty_like(perm)
    inv[perm] = np.arange(perm.shape[0])
    return RolloutResult(serving=_reordered(res, inv), dispatch=d, group_id=view.group_id,
                         dispatch_name=name, wall_s=time.perf_counter() - wall0)


def _fixed_router(instance: np.ndarray) -> Callable[..., np.ndarray]:
    def dispatched(view: Any, /) -> np.ndarray:
        """Each sample to the instance its dispatch chose."""
        return instance[view.request_id]

    return dispatched


def _permuted(w: Workload, perm: np.ndarray) -> Workload:
    """``w``'s requests in the order ``perm``, all released at t=0."""
    return Workload(
        arrival_s=np.zeros(perm.shape[0]), input_tokens=w.input_tokens[perm],
        output_tokens=w.output_tokens[perm],
        request_id=None if w.request_id is None else w.request_id[perm],
        group_id=None if w.group_id is None else w.group_id[perm],
        prefix_block_ids=None if w.prefix_block_ids is None else w.prefix_block_ids.take(perm),
        block_tokens=w.block_tokens, features={k: v[perm] for k, v in w.features.items()},
        name=w.name,
    )


def _reordered(res: SimResult, inv: np.ndarray) -> SimResult:
    """``res`` with its per-request columns put back in the workload's order."""
    n = inv.shape[0]
    changes: dict[str, Any] = {}
    for f in fields(res):
        v = getattr(res, f.name)
        if isinstance(v, np.ndarray) and v.ndim == 1 and v.shape[0] == n:
            changes[f.name] = v[inv]
    changes["extra"] = {k: (v[inv] if isinstance(v, np.ndarray) and v.shape[:1] == (n,) else v)
                        for k, v in res.extra.items()}
    return replace(res, **changes)


def _ro(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a
