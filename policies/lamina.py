"""Device-mix sizing for heterogeneous decoding as pure functions: Lamina's rule and the
homogeneous baseline's.

Seed paper: Lamina (arXiv 2405.01814 v2, §4.3 and §6.1). Each sizer reads a
:class:`~schedlab.costmodel.attention_offload.DeviceMixProblem` (the model, the mean context,
the time-between-tokens SLO, the device limits) and answers a
:class:`~schedlab.costmodel.attention_offload.DeviceMix` (compute devices, memory devices,
replicas, batch) that :func:`~schedlab.costmodel.attention_offload.evaluate_mix` prices; the
optimum over every mix is :func:`schedlab.solvers.solve_device_mix`.

>>> from schedlab.costmodel.attention_offload import DeviceMixProblem
>>> p = DeviceMixProblem(model="llama-3-70b", context_tokens=2000)
>>> lamina_mix(p)                  # Table 5's DOP (2, 4) for LLaMA3-70B
DeviceMix(n_compute=2, n_memory=4, replicas=1, batch=263)
>>> homogeneous_mix(p)             # vLLM needs 4 H100s for the weights and some KV
DeviceMix(n_compute=4, n_memory=0, replicas=1, batch=217)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from schedlab.errors import check_positive_int

if TYPE_CHECKING:  # the cost model loads the iteration model: only when a sizer runs
    from schedlab.costmodel.attention_offload import DeviceMix, DeviceMixProblem

__all__ = ["homogeneous_mix", "lamina_mix"]


def _smallest_compute(problem: DeviceMixProblem, replicas: int, memory: int) -> int:
    """The fewest compute devices (a multiple of ``replicas``) on which the model runs."""
    from schedlab.costmodel.attention_offload import deployment

    for a in range(replicas, problem.max_compute + 1, replicas):
        try:
            deployment(problem, a, memory, replicas)
        except ValueError:
            continue
        return a
    return 0


def lamina_mix(problem: DeviceMixProblem, /, *, replicas: int = 1) -> DeviceMix:
    """Lamina's sizing: the fewest compute devices that hold ``replicas`` copies of the weights
    (``replicas + 1`` batches in flight, §4.3; one replica and two batches in the paper's
    evaluation, Table 5) and meet the SLO with some pool, then the memory pool its profiling
    finds best: the pool size with the most tokens per dollar at the largest batch the pool's KV
    and the SLO allow (fewer devices on a tie). Pool sizes divide the model's KV heads (the KV
    is split by head, §5).

    [recon] The paper states the pipeline's balance rule (``t_a = t_m / (n - 1)``, §4.3) and
    picks the DOP "by profiling" (§6.1, Fig. 11); with the batch limited by the pool's KV,
    ``t_a`` hardly moves with the pool size, so the balance alone does not pick a pool: the
    profiled throughput per dollar does.

    Parameters
    ----------
    replicas : int >= 1, default 1
        Model replicas.

    Answers ``batch=0`` when no mix within the limits runs the model or meets the SLO.
    Invariants checked by the property tests: the answer is within the problem's limits, and
    feasible whenever its batch is not 0; never better than the optimum; purity and
    determinism.
    """
    from schedlab.costmodel.attention_offload import (
        DeviceMix,
        deployment,
        evaluate_mix,
        largest_batch,
        memory_pools,
    )

    r = check_positive_int(replicas, "replicas", "lamina_mix")
    pools = memory_pools(problem)
    first = _smallest_compute(problem, r, pools[0]) if r <= problem.max_replicas else 0
    if first == 0:
        return DeviceMix(0, 0, r, 0)
    for a in range(first, problem.max_compute + 1, r):  # more compute only to meet the SLO
        best: tuple[float, DeviceMix] | None = None
        for b in pools:
            try:
                batch = largest_batch(problem, deployment(problem, a, b, r))
            except ValueError:  # the replicas' tensor parallelism does not split the heads
                break
            if batch < 1:
                continue
            mix = DeviceMix(a, b, r, batch)
            cost = evaluate_mix(problem, mix).usd_per_million_tokens
            if best is None or cost < best[0]:
                best = (cost, mix)
        if best is not None:
            return best[1]
    return DeviceMix(first, pools[0], r, 0)


def homogeneous_mix(problem: DeviceMixProblem, /) -> DeviceMix:
    """The homogeneous baseline's sizing (vLLM, Lamina's Table 5): the fewest compute devices
    that hold the weights with room for KV, tensor parallel over all of them, at the largest
    batch their KV and the SLO allow (``batch=0`` when none, or when the problem allows no
    homogeneous mix).

    Invariants checked by the property tests: as :func:`lamina_mix`.
    """
    from schedlab.costmodel.attention_offload import DeviceMix, deployment, largest_batch

    a = _smallest_compute(problem, 1, 0) if problem.homogeneous else 0
    if a == 0:
        return DeviceMix(0, 0, 1, 0)
    return DeviceMix(a, 0, 1, largest_batch(problem, deployment(problem, a, 0, 1)))
