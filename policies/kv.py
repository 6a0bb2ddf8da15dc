"""KV-cache and token-budget arithmetic shared by the batching policies (and their checks).

One place defines what running a request *now* costs, so every policy and
:func:`schedlab.testing.check_decision` count the same way (token-granular, no block rounding):

- :func:`step_tokens`: tokens the request processes in the next iteration, counted against
  ``max_batch_tokens``: its next prefill chunk (the remaining prompt, capped by ``chunk_tokens``
  when chunking is on), or 1 decode token. A request preempted by recomputation (no KV, some
  output generated) must prefill its prompt *and* its generated tokens again.
- :func:`kv_growth`: device KV tokens the request adds by running: the same number.
- :func:`kv_demand`: device KV tokens that must be free for it to run: the growth, plus its
  host-resident KV when it has to be swapped in first.

>>> import numpy as np
>>> from schedlab.policies.base import QueueView, KV_GPU, KV_HOST
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 50, 40], kv_capacity_tokens=1000,
...     prefilled_tokens=[0, 50, 40], generated_tokens=[0, 3, 5], kv_tokens=[0, 53, 45],
...     kv_location=[0, KV_GPU, KV_HOST])
>>> step_tokens(v).tolist(), kv_demand(v).tolist()
([100, 1, 1], [100, 1, 46])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from schedlab.policies.base import KV_GPU, KV_HOST, KV_NONE, QueueView

__all__ = [
    "RequestCosts",
    "footprint_tokens",
    "gpu_kv",
    "kv_demand",
    "kv_growth",
    "prefill_left",
    "request_costs",
    "step_tokens",
]


class RequestCosts(NamedTuple):
    """Per-request costs of running now, computed once per decision (:func:`request_costs`):
    ``step`` (:func:`step_tokens`), ``demand`` (:func:`kv_demand`), ``on_gpu`` (KV on the
    device) and ``gpu_kv`` (:func:`gpu_kv`)."""

    step: np.ndarray
    demand: np.ndarray
    on_gpu: np.ndarray
    gpu_kv: np.ndarray


def request_costs(view: QueueView) -> RequestCosts:
    """All of this module's per-request quantities in one vectorised pass (the policies' hot path).

    >>> from schedlab.policies.base import QueueView, KV_HOST
    >>> c = request_costs(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8],
    ...     kv_capacity_tokens=64, prefilled_tokens=[0, 8], generated_tokens=[0, 2],
    ...     kv_tokens=[0, 10], kv_location=[0, KV_HOST]))
    >>> c.step.tolist(), c.demand.tolist(), c.gpu_kv.tolist()
    ([8, 1], [8, 11], [0, 0])
    """
    loc = view.kv_location
    left = view.input_tokens - view.prefilled_tokens
    recomputing = (loc == KV_NONE) & (view.generated_tokens > 0)
    if recomputing.any():
        left = np.where(recomputing, view.input_tokens + view.generated_tokens, left)
    if view.chunk_tokens > 0:
        left = np.minimum(left, view.chunk_tokens)
    step = np.maximum(left, 1)
    on_gpu = loc == KV_GPU
    gkv = view.kv_tokens * on_gpu
    host = loc == KV_HOST
    demand = step + view.kv_tokens * host if host.any() else step
    return RequestCosts(step=step, demand=demand, on_gpu=on_gpu, gpu_kv=gkv)


def prefill_left(view: QueueView) -> np.ndarray:
    """Tokens still to prefill per request: the prompt not yet in KV, or, after preemption by
    recomputation (``kv_location == KV_NONE`` with output generated), prompt plus output.

    >>> from schedlab.policies.base import QueueView
    >>> prefill_left(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8], kv_capacity_tokens=64,
    ...     prefilled_tokens=[3, 8], generated_tokens=[0, 2])).tolist()
    [5, 10]
    """
    fresh = view.input_tokens - view.prefilled_tokens
    recomputing = (view.kv_location == KV_NONE) & (view.generated_tokens > 0)
    redo = view.input_tokens + view.generated_tokens
    return np.maximum(np.where(recomputing, redo, fresh), 0)


def step_tokens(view: QueueView) -> np.ndarray:
    """Tokens each request would process in the next iteration (see the module docstring).

    >>> from schedlab.policies.base import QueueView
    >>> step_tokens(QueueView.from_columns(now_s=0.0, input_tokens=[8, 30], kv_capacity_tokens=64,
    ...     chunk_tokens=16, prefilled_tokens=[8, 0], generated_tokens=[1, 0], kv_tokens=[9, 0],
    ...     kv_location=[1, 0])).tolist()
    [1, 16]
    """
    return request_costs(view).step


def kv_growth(view: QueueView) -> np.ndarray:
    """Device KV tokens each request adds by running in the next iteration (= :func:`step_tokens`).

    >>> from schedlab.policies.base import QueueView
    >>> kv_growth(QueueView.from_columns(now_s=0.0, input_tokens=[8], kv_capacity_tokens=64)).tolist()
    [8]
    """
    return step_tokens(view)


def gpu_kv(view: QueueView) -> np.ndarray:
    """KV tokens each request holds in device memory (0 when on the host or nowhere).

    >>> from schedlab.policies.base import QueueView, KV_GPU, KV_HOST
    >>> gpu_kv(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8], kv_capacity_tokens=64,
    ...     kv_tokens=[9, 9], kv_location=[KV_GPU, KV_HOST])).tolist()
    [9, 0]
    """
    return request_costs(view).gpu_kv


def kv_demand(view: QueueView) -> np.ndarray:
    """Free device KV tokens each request needs to run now: growth plus host KV to swap in.

    >>> from schedlab.policies.base import QueueView, KV_HOST
    >>> kv_demand(QueueView.from_columns(now_s=0.0, input_tokens=[8], kv_capacity_tokens=64,
    ...     prefilled_tokens=[8], generated_tokens=[2], kv_tokens=[10], kv_location=[KV_HOST])).tolist()
    [11]
    """
    return request_costs(view).demand


def footprint_tokens(view: QueueView) -> np.ndarray:
    """Predicted KV tokens a request holds when it finishes: prompt plus predicted output
    (never less than what it holds now plus its next step). Run-to-completion policies reserve it.

    >>> from schedlab.policies.base import QueueView
    >>> footprint_tokens(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8], kv_capacity_tokens=64,
    ...     output_tokens_pred=[4.2, 1], generated_tokens=[0, 5], prefilled_tokens=[8, 8],
    ...     kv_tokens=[0, 12], kv_location=[0, 1])).tolist()
    [13, 13]
    """
    pred = view.input_tokens + np.ceil(view.output_tokens_pred).astype(np.int64)
    return np.maximum(pred, view.kv_tokens + step_tokens(view))
