"""KV-cache and token-budget arithmetic shared by the batching policies (and their checks).

One place defines what running a request *now* costs, so every policy and
:func:`schedlab.testing.check_decision` count the same way as the simulator (token-granular,
no block rounding). The accounting (that of :mod:`schedlab.sim`):

- A request is in its *prefill phase* while ``prefilled_tokens < input_tokens``;
  :func:`prefill_left` is the difference. After a preemption by recomputation the view's
  ``input_tokens`` is the prompt plus the tokens generated so far (they are prefilled again)
  and ``prefilled_tokens`` restarts at 0, as the simulator reports it.
- :func:`step_tokens`: tokens processed in the next iteration, counted against
  ``max_batch_tokens``: the next prefill chunk (capped by ``chunk_tokens`` when chunking is
  on), or 1 decode token.
- :func:`kv_growth`: device KV tokens added by running: the chunk, plus 1 when the chunk
  completes the prefill (the first output token is emitted and its KV kept), or 1 per decode.
- :func:`kv_demand`: free device KV needed to run now: the growth, plus the request's
  host-resident KV when it must be swapped in first.

>>> import numpy as np
>>> from schedlab.policies.base import QueueView, KV_GPU, KV_HOST
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[100, 50, 40], kv_capacity_tokens=1000,
...     prefilled_tokens=[0, 50, 40], generated_tokens=[0, 3, 5], kv_tokens=[0, 53, 45],
...     kv_location=[0, KV_GPU, KV_HOST])
>>> step_tokens(v).tolist(), kv_growth(v).tolist(), kv_demand(v).tolist()
([100, 1, 1], [101, 1, 1], [101, 1, 46])
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from schedlab.jit import njit
from schedlab.policies.base import KV_GPU, KV_HOST, QueueView

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
    ``step`` (:func:`step_tokens`), ``growth`` (:func:`kv_growth`), ``demand``
    (:func:`kv_demand`), ``on_gpu`` (KV on the device) and ``gpu_kv`` (:func:`gpu_kv`)."""

    step: np.ndarray
    growth: np.ndarray
    demand: np.ndarray
    on_gpu: np.ndarray
    gpu_kv: np.ndarray


def prefill_left(view: QueueView) -> np.ndarray:
    """Tokens still to prefill per request (0 in the decode phase; see the module docstring).

    >>> from schedlab.policies.base import QueueView, KV_GPU
    >>> prefill_left(QueueView.from_columns(now_s=0.0, input_tokens=[8, 10, 8],
    ...     kv_capacity_tokens=64, prefilled_tokens=[3, 0, 8], generated_tokens=[0, 2, 2],
    ...     kv_tokens=[3, 0, 10], kv_location=[KV_GPU, 0, KV_GPU])).tolist()
    [5, 10, 0]
    """
    return np.maximum(view.input_tokens - view.prefilled_tokens, 0)


def request_costs(view: QueueView) -> RequestCosts:
    """All of this module's per-request quantities in one compiled pass (:func:`costs_kernel`).

    >>> from schedlab.policies.base import QueueView, KV_HOST
    >>> c = request_costs(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8],
    ...     kv_capacity_tokens=64, prefilled_tokens=[0, 8], generated_tokens=[0, 2],
    ...     kv_tokens=[0, 10], kv_location=[0, KV_HOST]))
    >>> c.step.tolist(), c.growth.tolist(), c.demand.tolist(), c.gpu_kv.tolist()
    ([8, 1], [9, 1], [9, 11], [0, 0])
    """
    step, growth, demand, on_gpu, gkv = costs_kernel(
        view.input_tokens, view.prefilled_tokens, view.kv_tokens, view.kv_location,
        view.chunk_tokens,
    )
    return RequestCosts(step=step, growth=growth, demand=demand, on_gpu=on_gpu, gpu_kv=gkv)


@njit
def costs_kernel(
    input_tokens: np.ndarray,
    prefilled_tokens: np.ndarray,
    kv_tokens: np.ndarray,
    kv_location: np.ndarray,
    chunk_tokens: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Compiled body of :func:`request_costs` on the view's columns, for the policies' kernels:
    ``(step, growth, demand, on_gpu, gpu_kv)``."""
    n = input_tokens.shape[0]
    step = np.empty(n, dtype=np.int64)
    growth = np.empty(n, dtype=np.int64)
    demand = np.empty(n, dtype=np.int64)
    on_gpu = np.empty(n, dtype=np.bool_)
    gkv = np.empty(n, dtype=np.int64)
    for i in range(n):
        left = max(input_tokens[i] - prefilled_tokens[i], 0)
        s = max(left, 1)
        if chunk_tokens > 0:
            s = min(s, chunk_tokens)
        # a step that takes the rest of the prompt also emits the first output token (its KV)
        g = s + 1 if 0 < left <= s else s
        loc = kv_location[i]
        step[i] = s
        growth[i] = g
        on_gpu[i] = loc == KV_GPU
        gkv[i] = kv_tokens[i] if loc == KV_GPU else 0
        demand[i] = g + kv_tokens[i] if loc == KV_HOST else g
    return step, growth, demand, on_gpu, gkv


@njit
def footprint_kernel(
    input_tokens: np.ndarray, output_tokens_pred: np.ndarray, kv_tokens: np.ndarray,
    growth: np.ndarray,
) -> np.ndarray:
    """Compiled body of :func:`footprint_tokens` (``growth`` from :func:`costs_kernel`)."""
    n = input_tokens.shape[0]
    foot = np.empty(n, dtype=np.int64)
    for i in range(n):
        pred = input_tokens[i] + np.int64(np.ceil(output_tokens_pred[i]))
        foot[i] = max(pred, kv_tokens[i] + growth[i])
    return foot


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
    """Device KV tokens each request adds by running in the next iteration.

    >>> from schedlab.policies.base import QueueView
    >>> kv_growth(QueueView.from_columns(now_s=0.0, input_tokens=[8, 30], kv_capacity_tokens=64,
    ...     chunk_tokens=16)).tolist()
    [9, 16]
    """
    return request_costs(view).growth


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
    ...     prefilled_tokens=[8], generated_tokens=[2], kv_tokens=[10],
    ...     kv_location=[KV_HOST])).tolist()
    [11]
    """
    return request_costs(view).demand


def footprint_tokens(view: QueueView) -> np.ndarray:
    """Predicted KV tokens a request holds when it finishes: prompt plus predicted output
    (never less than what it holds now plus its next growth). Run-to-completion policies
    reserve it.

    >>> from schedlab.policies.base import QueueView
    >>> footprint_tokens(QueueView.from_columns(now_s=0.0, input_tokens=[8, 8],
    ...     kv_capacity_tokens=64,
    ...     output_tokens_pred=[4.2, 1], generated_tokens=[0, 5], prefilled_tokens=[0, 8],
    ...     kv_tokens=[0, 13], kv_location=[0, 1])).tolist()
    [13, 14]
    """
    c = request_costs(view)
    return footprint_kernel(view.input_tokens, view.output_tokens_pred, view.kv_tokens, c.growth)
