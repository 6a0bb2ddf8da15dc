"""Cluster records for the simulator: :class:`InstanceSpec` and :class:`Cluster`.

An instance is one serving engine (a model on ``tp`` GPUs) with its batching limits, its KV cache
(capacity from the cost model unless given) and its preemption mode. A cluster is a tuple of
instances; the router spreads arriving requests over them.

Extension point: later disaggregated setups (Mooncake prefill and decode pools, LoongServe
elastic instances) add a ``role`` or pool field here and a KV-transfer link between instances;
the engine treats every instance alike and asks this record only for limits and costs.

>>> from schedlab.costmodel.base import ConstantIterationCost
>>> spec = InstanceSpec(cost=ConstantIterationCost(kv_capacity_tokens=4096), max_batch_size=8)
>>> c = Cluster.homogeneous(n_instances=2, cost=ConstantIterationCost(kv_capacity_tokens=4096))
>>> len(c), c.instances[1].max_batch_size, spec.resolved_cost().kv_capacity_tokens
(2, 256, 4096)
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from schedlab.costmodel.base import IterationCost
from schedlab.errors import check_nonneg_float, check_nonneg_int, check_positive_int

__all__ = ["Cluster", "InstanceSpec"]

_PREEMPTION = ("swap", "recompute")


@dataclass(frozen=True, slots=True, kw_only=True)
class InstanceSpec:
    """One serving instance.

    Parameters
    ----------
    model, gpu : catalog names (or spec records) of the model and the accelerator; used to build
        the cost model when ``cost`` is None.
    tp : tensor-parallel degree.
    max_batch_size : most requests in one iteration.
    max_batch_tokens : token budget of one iteration (prefill tokens plus one per decode).
    chunk_tokens : largest prefill chunk; 0 turns chunked prefill off (whole prompts).
    block_tokens : KV page size (shown to policies).
    preemption : ``'swap'`` (KV to host memory) or ``'recompute'`` (drop KV); informs policies
        that consult it; the engine executes whatever moves a policy returns.
    swap_space_gib : host memory reserved for swapped-out KV, in GiB per GPU (vLLM's
        ``--swap-space``, default 4 GiB per GPU); the instance's host KV capacity is
        ``swap_space_gib * tp * 2**30 / kv_bytes_per_token`` tokens (8,192 tokens for
        Llama-2-7B, 5,120 for OPT-13B).
    host_kv_capacity_tokens : the host KV capacity in tokens; None (the default) takes it from
        ``swap_space_gib``.
    overlap_swap : when True, the KV swap traffic of an iteration overlaps with its compute, as
        with FastServe's proactive swapping, whose swap-outs and swap-ins run on two streams of
        their own (PCIe is full duplex): the iteration takes ``max(compute, swap-out,
        swap-in)``, where swap-in counts the host-resident requests it runs too. False (the
        default) serialises them: ``compute + swap-out + swap-in``. A decision that only moves
        KV (no batch) takes ``max(swap-out, swap-in)`` or their sum.
    kv_capacity_tokens : device KV capacity; None takes the cost model's.
    max_context_tokens : the longest request (prompt plus output) the model serves; a longer one
        is rejected when it arrives (``exceeds_model_context``). None takes the catalog model's
        context window (``ModelSpec.max_context``: 4,096 for Llama-2-7B) when ``model`` is
        given, and no limit otherwise.
    cost : an :class:`~schedlab.costmodel.base.IterationCost`; None builds the roofline model of
        ``(model, gpu, tp)`` through :func:`schedlab.costmodel.iteration_cost`.
    prefix_cache_tokens : an automatic prefix cache on the device (vLLM's ``--enable-prefix-
        caching``) of this many tokens, LRU over the workload's prefix blocks
        (``Workload.prefix_block_ids``, blocks of ``prefix_block_tokens``, 512 as in the
        Mooncake traces); 0 (the default) turns it off. A request finds its longest cached
        prefix when it arrives (a prompt's blocks are cached once its prefill completes) and
        starts with it prefilled; the cached KV moves to its batch for free when it first runs,
        and counts in the KV cache from then on (a prefix shared by running requests counts
        once per request: an upper bound on the memory vLLM's shared blocks take). Used by
        :func:`~schedlab.sim.simulate`; a disaggregated cluster has its own distributed cache.
    """

    model: Any = None
    gpu: Any = None
    tp: int = 1
    max_batch_size: int = 256
    max_batch_tokens: int = 8192
    chunk_tokens: int = 0
    block_tokens: int = 16
    preemption: str = "swap"
    swap_space_gib: float = 4.0
    host_kv_capacity_tokens: int | None = None
    overlap_swap: bool = False
    kv_capacity_tokens: int | None = None
    max_context_tokens: int | None = None
    cost: IterationCost | None = None
    prefix_cache_tokens: int = 0
    prefix_block_tokens: int = 512

    def __post_init__(self) -> None:
        w = "InstanceSpec"
        check_positive_int(self.tp, "tp", w)
        check_positive_int(self.max_batch_size, "max_batch_size", w)
        check_positive_int(self.max_batch_tokens, "max_batch_tokens", w)
        check_nonneg_int(self.chunk_tokens, "chunk_tokens", w)
        check_positive_int(self.block_tokens, "block_tokens", w)
        check_nonneg_float(self.swap_space_gib, "swap_space_gib", w)
        if self.host_kv_capacity_tokens is not None:
            check_nonneg_int(self.host_kv_capacity_tokens, "host_kv_capacity_tokens", w)
        if not isinstance(self.overlap_swap, bool):
            raise ValueError(
                f"The 'overlap_swap' parameter of {w} must be a bool. "
                f"Got {type(self.overlap_swap).__name__}."
            )
        if self.kv_capacity_tokens is not None:
            check_positive_int(self.kv_capacity_tokens, "kv_capacity_tokens", w)
        if self.max_context_tokens is not None:
            check_positive_int(self.max_context_tokens, "max_context_tokens", w)
        check_nonneg_int(self.prefix_cache_tokens, "prefix_cache_tokens", w)
        check_positive_int(self.prefix_block_tokens, "prefix_block_tokens", w)
        if 0 < self.prefix_cache_tokens < self.prefix_block_tokens:
            raise ValueError(f"The 'prefix_cache_tokens' parameter of {w} must be 0 (off) or hold "
                             f"at least one block ({self.prefix_block_tokens} tokens). Got "
                             f"{self.prefix_cache_tokens!r}.")
        if self.preemption not in _PREEMPTION:
            raise ValueError(
                f"The 'preemption' parameter of {w} must be one of {_PREEMPTION}. "
                f"Got {self.preemption!r} instead."
            )
        if self.cost is None and (self.model is None or self.gpu is None):
            raise ValueError(
                f"{w} needs either 'cost' (an IterationCost) or both 'model' and 'gpu' to build "
                f"one. Got model={self.model!r}, gpu={self.gpu!r}, cost=None."
            )
        if self.cost is not None and not isinstance(self.cost, IterationCost):
            raise ValueError(
                f"The 'cost' parameter of {w} must implement IterationCost (iteration_time_s, "
                f"decode_steps_time_s, prefill_time_s, swap_time_s, fast_iteration_time_s, "
                f"fast_decode_steps_time_s, kv_capacity_tokens, kv_bytes_per_token; "
                f"costmodel.base.FastPathsFromChecked supplies the fast_* methods). "
                f"Got {type(self.cost).__name__}."
            )

    def resolved_cost(self) -> IterationCost:
        """The cost model: ``cost`` if given, else the roofline model of (model, gpu, tp)."""
        if self.cost is not None:
            return self.cost
        from schedlab.costmodel import iteration_cost

        return iteration_cost(self.model, self.gpu, self.tp)

    def kv_capacity(self, cost: IterationCost) -> int:
        """Device KV capacity in tokens (the override, else the cost model's)."""
        if self.kv_capacity_tokens is not None:
            return int(self.kv_capacity_tokens)
        return int(cost.kv_capacity_tokens)

    def context_limit(self) -> int | None:
        """The longest request served (``max_context_tokens``, else the model's window, else
        None: no limit).

        >>> InstanceSpec(model="llama-2-7b", gpu="a100-80gb").context_limit()
        4096
        """
        if self.max_context_tokens is not None:
            return int(self.max_context_tokens)
        if self.model is None:
            return None
        from schedlab.costmodel.models import get_model

        return int(get_model(self.model).max_context)

    def host_kv_capacity(self, cost: IterationCost) -> int:
        """Host swap space in tokens (the override, else ``swap_space_gib`` per GPU)."""
        if self.host_kv_capacity_tokens is not None:
            return int(self.host_kv_capacity_tokens)
        return int(self.swap_space_gib * self.tp * 2**30 // cost.kv_bytes_per_token)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cluster:
    """A tuple of :class:`InstanceSpec` (one or more)."""

    instances: tuple[InstanceSpec, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        inst = tuple(self.instances)
        if not inst:
            raise ValueError(
                "The 'instances' parameter of Cluster must hold at least one InstanceSpec."
            )
        for i, s in enumerate(inst):
            if not isinstance(s, InstanceSpec):
                raise ValueError(
                    f"The 'instances' parameter of Cluster must hold InstanceSpec records; "
                    f"element {i} is {type(s).__name__}."
                )
        object.__setattr__(self, "instances", inst)

    def __len__(self) -> int:
        return len(self.instances)

    @classmethod
    def homogeneous(
        cls, model: Any = None, gpu: Any = None, n_instances: int = 1, tp: int = 1, **spec: Any
    ) -> Cluster:
        """``n_instances`` identical instances; ``spec`` takes any :class:`InstanceSpec` field.

        The cost model is built once and shared by all instances.
        """
        check_positive_int(n_instances, "n_instances", "Cluster.homogeneous")
        one = InstanceSpec(model=model, gpu=gpu, tp=tp, **spec)
        if one.cost is None:
            one = replace(one, cost=one.resolved_cost())
        return cls(instances=(one,) * n_instances)
