"""Rollout dispatch: pure functions ``dispatch(view: DispatchView, /, **params) -> Dispatch``.

The baselines of the RL papers: veRL-like group round robin (each prompt's samples together,
prompts dealt to the instances in turn), random group placement, and greedy longest-processing-
time (LPT) balancing on predicted lengths. StreamRL's skewness-aware dispatch is in
:mod:`schedlab.policies.streamrl`.

>>> import numpy as np
>>> from schedlab.contract.dispatch import DispatchView
>>> v = DispatchView.from_columns(input_tokens=[8] * 4, n_instances=2, group_id=[0, 0, 1, 1],
...     output_tokens_pred=[10.0, 30.0, 400.0, 20.0])
>>> group_round_robin(v).instance.tolist(), lpt_dispatch(v, group_level=False).instance.tolist()
([0, 0, 1, 1], [1, 1, 0, 1])
"""

from __future__ import annotations

import numpy as np

from schedlab.contract.dispatch import Dispatch, DispatchView, group_ranks
from schedlab.errors import check_nonneg_int

__all__ = ["group_round_robin", "groups_of", "least_loaded", "lpt_dispatch", "random_dispatch"]


def groups_of(view: DispatchView) -> tuple[np.ndarray, np.ndarray]:
    """The prompts of a batch in order of first appearance: ``(first, index)``, where ``first``
    is each prompt's first sample and ``index`` maps every sample to its prompt's rank.

    >>> from schedlab.contract.dispatch import DispatchView
    >>> v = DispatchView.from_columns(input_tokens=[1, 1, 1], n_instances=1, group_id=[7, 3, 7])
    >>> [a.tolist() for a in groups_of(v)]
    [[0, 1], [0, 1, 0]]
    """
    return group_ranks(view.group_id)


def least_loaded(work: np.ndarray, instances: int) -> np.ndarray:
    """Greedy list scheduling: each item of ``work``, in the order given, goes to the instance
    with the least work so far (ties to the lowest index). Given longest first, this is
    Graham's LPT rule.

    >>> least_loaded(np.array([5.0, 4.0, 3.0, 3.0]), 2).tolist()
    [0, 1, 1, 0]
    """
    load = np.zeros(instances)
    out = np.empty(work.shape[0], dtype=np.int64)
    for j, w in enumerate(work.tolist()):
        i = int(np.argmin(load))
        out[j] = i
        load[i] += w
    return out


def group_round_robin(view: DispatchView, /) -> Dispatch:
    """veRL-like dispatch: the prompts, in batch order, go to the instances in turn, each with
    all of its samples; instances admit in batch order (FCFS).

    The baseline of StreamRL (arXiv 2504.15930, veRL's colocated synchronous rollout) and Seer
    (arXiv 2511.14617 §2: group-level round robin). No parameters. Invariants (tests): the
    samples of a prompt share an instance; prompt ``j`` is on instance ``j mod N``; the order is
    the batch order; pure and deterministic.

    >>> from schedlab.contract.dispatch import DispatchView
    >>> v = DispatchView.from_columns(input_tokens=[1] * 3, n_instances=2, group_id=[5, 5, 9])
    >>> group_round_robin(v).instance.tolist()
    [0, 0, 1]
    """
    _, g = groups_of(view)
    return Dispatch(instance=g % view.n_instances, order=np.arange(view.n, dtype=np.int64))


def random_dispatch(view: DispatchView, /, *, seed: int = 0) -> Dispatch:
    """Each prompt, with all its samples, on an instance drawn uniformly at random (StreamRL's
    random-dispatch baseline); instances admit in batch order (FCFS).

    Parameters
    ----------
    seed : int >= 0, default 0
        Seeds the ``numpy.random.Generator`` the draw comes from (the same seed, the same
        dispatch).

    Invariants (tests): the samples of a prompt share an instance; deterministic for a seed.

    >>> from schedlab.contract.dispatch import DispatchView
    >>> v = DispatchView.from_columns(input_tokens=[1] * 4, n_instances=3)
    >>> random_dispatch(v, seed=1).instance.tolist() == random_dispatch(v, seed=1).instance.tolist()
    True
    """
    check_nonneg_int(seed, "seed", "random_dispatch")
    first, g = groups_of(view)
    rng = np.random.default_rng(seed)
    per_group = np.asarray(rng.integers(0, view.n_instances, size=first.shape[0]))
    return Dispatch(instance=per_group[g], order=np.arange(view.n, dtype=np.int64))


def lpt_dispatch(view: DispatchView, /, *, group_level: bool = True) -> Dispatch:
    """Greedy longest-processing-time balancing: prompts (or single samples) in decreasing
    predicted length go, one by one, to the instance with the least predicted tokens so far;
    each instance admits its samples longest predicted first.

    Graham's LPT rule for identical machines (a ``4/3 - 1/(3N)`` approximation of the makespan
    when an instance's time is its total work), the in-instance order StreamRL uses (§4.2
    "longest first"), and the yardstick its skew-aware dispatch is compared with in our tests.
    A prompt's predicted work is the sum of its samples' predictions.

    Parameters
    ----------
    group_level : bool, default True
        Keep each prompt's samples on one instance (StreamRL and veRL dispatch whole groups);
        False balances single samples.

    Invariants (tests): the order is non-increasing in predicted length within every instance;
    each item went to an instance of least load at its turn (ties to the lowest index); pure.

    >>> from schedlab.contract.dispatch import DispatchView
    >>> v = DispatchView.from_columns(input_tokens=[1] * 3, n_instances=2,
    ...     output_tokens_pred=[5.0, 9.0, 4.0])
    >>> lpt_dispatch(v).instance.tolist()
    [1, 0, 1]
    """
    if not isinstance(group_level, bool):
        raise ValueError(f"The 'group_level' parameter of lpt_dispatch must be a bool. Got "
                         f"{group_level!r}.")
    pred = view.output_tokens_pred
    if group_level:
        first, g = groups_of(view)
        work = np.bincount(g, weights=pred, minlength=first.shape[0])
    else:
        g = np.arange(view.n)
        work = pred
    order = np.argsort(-work, kind="stable")
    where = np.empty(work.shape[0], dtype=np.int64)
    where[order] = least_loaded(work[order], view.n_instances)
    inst = where[g]
    return Dispatch(instance=inst, order=np.argsort(-pred, kind="stable"))
