"""Routers: pure functions ``router(view: RouterView, /) -> instance index per arriving request``.

Ties always go to the lowest instance index, so routing is deterministic. Routers keep no hidden
state: round robin reads its position from the view's ``routed_so_far`` counter.

>>> import numpy as np
>>> from schedlab.contract import RouterView
>>> v = RouterView(now_s=0.0, request_id=np.arange(3), input_tokens=np.array([10, 20, 30]),
...     output_tokens_pred=np.array([5.0, 5.0, 5.0]), outstanding_tokens=np.array([100, 0]),
...     kv_used_tokens=np.array([10, 50]), kv_capacity_tokens=np.array([100, 100]),
...     queue_length=np.array([1, 0]), round=4, routed_so_far=5)
>>> round_robin(v).tolist(), least_tokens(v).tolist(), least_kv(v).tolist()
([1, 0, 1], [1, 1, 1], [0, 0, 0])
"""

from __future__ import annotations

import numpy as np

from schedlab.contract import RouterView

__all__ = ["least_kv", "least_tokens", "round_robin"]


def round_robin(view: RouterView, /) -> np.ndarray:
    """Round robin: the j-th request routed so far goes to instance ``j mod k``.

    Baseline router of the serving papers (e.g. vLLM's and Mooncake's multi-instance baselines).
    No parameters. Invariants (tests): every index in ``[0, k)``; consecutive calls continue the
    cycle through ``routed_so_far``; deterministic and pure.

    >>> import numpy as np
    >>> from schedlab.contract import RouterView
    >>> z = np.zeros(3, dtype=np.int64)
    >>> v = RouterView(now_s=0.0, request_id=np.arange(2), input_tokens=np.ones(2, int),
    ...     output_tokens_pred=np.ones(2), outstanding_tokens=z, kv_used_tokens=z,
    ...     kv_capacity_tokens=z + 10, queue_length=z, routed_so_far=2)
    >>> round_robin(v).tolist()
    [2, 0]
    """
    m = view.request_id.shape[0]
    return (view.routed_so_far + np.arange(m, dtype=np.int64)) % view.n_instances


def least_tokens(view: RouterView, /) -> np.ndarray:
    """Least outstanding tokens: each arriving request (in the view's order) goes to the instance
    with the fewest outstanding tokens, counting the requests routed before it in the same call
    (prompt plus predicted output each).

    No parameters. Invariants (tests): the chosen instance has the minimum load at the time of
    choice; ties to the lowest index; deterministic and pure.

    >>> import numpy as np
    >>> from schedlab.contract import RouterView
    >>> z = np.zeros(2, dtype=np.int64)
    >>> v = RouterView(now_s=0.0, request_id=np.arange(2), input_tokens=np.array([5, 5]),
    ...     output_tokens_pred=np.array([5.0, 5.0]), outstanding_tokens=np.array([3, 0]),
    ...     kv_used_tokens=z, kv_capacity_tokens=z + 10, queue_length=z)
    >>> least_tokens(v).tolist()
    [1, 0]
    """
    load = view.outstanding_tokens.astype(np.float64)
    add = view.input_tokens + np.asarray(view.output_tokens_pred, dtype=np.float64)
    return _greedy(load, add)


def least_kv(view: RouterView, /) -> np.ndarray:
    """Least KV usage: each arriving request goes to the instance with the smallest used fraction
    of its KV capacity, counting the prompts routed before it in the same call.

    No parameters. Invariants (tests): the chosen instance has the minimum usage fraction at the
    time of choice; ties to the lowest index; deterministic and pure.

    >>> import numpy as np
    >>> from schedlab.contract import RouterView
    >>> z = np.zeros(2, dtype=np.int64)
    >>> v = RouterView(now_s=0.0, request_id=np.arange(1), input_tokens=np.array([5]),
    ...     output_tokens_pred=np.array([5.0]), outstanding_tokens=z,
    ...     kv_used_tokens=np.array([50, 60]), kv_capacity_tokens=np.array([100, 200]),
    ...     queue_length=z)
    >>> least_kv(v).tolist()
    [1]
    """
    cap = np.maximum(view.kv_capacity_tokens.astype(np.float64), 1.0)
    return _greedy(view.kv_used_tokens / cap, view.input_tokens[:, None] / cap[None, :])


def _greedy(load: np.ndarray, add: np.ndarray) -> np.ndarray:
    """Assign requests one by one to the least-loaded instance; ``add`` is the load each request
    adds (per request, or per request and instance)."""
    load = np.array(load, dtype=np.float64)
    m = add.shape[0]
    out = np.empty(m, dtype=np.int64)
    per_instance = add.ndim == 2
    for j in range(m):
        i = int(np.argmin(load))
        out[j] = i
        load[i] += add[j, i] if per_instance else add[j]
    return out
