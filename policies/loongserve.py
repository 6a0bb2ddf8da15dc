"""LoongServe's global scheduler as pure functions (Wu et al., "LoongServe: Efficiently Serving
Long-Context Large Language Models with Elastic Sequence Parallelism", SOSP'24, arXiv
2404.09526, §5), on the elastic contract (:mod:`schedlab.contract.elastic`).

Four steps each time the scheduler runs (the cluster idles, or every ``max_wait_tokens`` = 10
decode iterations):

1. :func:`dispatch` (§5.1): which waiting requests to prefill now, scanning FCFS: a memory rule
   (the worst-case future KV of everything admitted must fit), a time cap on multi-request
   batches, and a gain/cost test for prefilling on instances that decode batches hold. The
   authors' code's form is the default; the paper's Eq. 1-2 is ``form="paper"``.
2. :func:`allocate` (§5.2): the instances the prefills get: consolidate decode batches onto fewer
   instances while the prefill's speed-up from one more instance beats moving its KV (Eq. 3-4),
   pause the decode batches with the most spare slots while slots are short, and pause any other
   decode batch whose instances gain the prefills more than the pause costs its requests.
3. :func:`batch_prefills` (§5.3, Eq. 5): requests by length (longest first) against instances
   (most free first), cut into contiguous batches on contiguous instance ranges by a dynamic
   programme minimising the sum of the requests' normalised input latency,
   ``sum_b T_b * sum_{r in b} 1/l_r``. Exact by default; ``pruned=True`` is the authors' C++
   loop with its two pruning rules, one of which contradicts the paper's Eq. 6 (so it may miss
   the optimum).
4. The scaling plan (§5.4): after a prefill the KV stays where the smaller decode group needs it
   (:func:`schedlab.contract.elastic.prefill_placement`), decode batches spread their requests
   over masters (:func:`schedlab.contract.elastic.decode_masters`) and take idle instances while
   each master would decode more than the compute-bound threshold (:func:`compute_scale_up`).

:func:`loongserve` chains steps 1-3 into an :class:`~schedlab.contract.elastic.ElasticPlan`.
Defaults are the paper's runs (the artifact's ``5-start-api-server.py``): ``max_prefill_time_s``
5 s, decode iteration 22 ms (in the view), ``max_num_ooe`` 4 (Mixed; 1 ShareGPT, 8 L-Eval and
LV-Eval, 64 Zipf), ``batch_max_tokens`` 500,000, ``running_max_requests`` 1,024, threshold 128.

>>> from schedlab.contract.elastic import ElasticView
>>> rows = {k: (0.005, 4e-5 / k, 8e-10 / k) for k in (1, 2, 3, 4)}
>>> v = ElasticView.from_columns(kv_capacity_tokens=200_000, instance_used=[0, 0, 0, 0],
...     prefill_rows=rows, waiting_tokens=[100_000, 2_000, 1_000])
>>> plan = loongserve(v)
>>> [(b.requests.tolist(), b.instances.tolist()) for b in plan.batches]
[([0], [0, 1]), ([1], [2]), ([2], [3])]
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from schedlab.contract.elastic import (
    ElasticPlan,
    ElasticView,
    PrefillBatch,
    compute_scale_up,
    striped_placement,
)
from schedlab.errors import check_array, check_nonneg_int, check_positive_float, check_positive_int

__all__ = ["FORMS", "allocate", "backfill", "batch_prefills", "compute_scale_up", "dispatch",
           "loongserve", "static_sp", "worst_case_kv"]

#: Dispatch forms: the authors' code (default) and the paper's Eq. 1-2 (an ablation).
FORMS = ("code", "paper")

PrefillTime = Callable[[int, ArrayLike, ArrayLike], ArrayLike]


# ------------------------------------------------------------------ step 1: dispatching
def worst_case_kv(current: ArrayLike, remaining: ArrayLike) -> int:
    """The most KV a set of requests can ever hold at once, each with ``current`` tokens and up
    to ``remaining`` more (LightLLM's and LoongServe's memory rule, ``_can_add_new_req``): with
    the requests sorted by ``remaining`` descending, ``max_k (remaining_k * k + sum_{j<=k}
    current_j)``: when the ``k``-th longest-to-go finishes, the ``k`` still running have grown by
    at most its remaining tokens each.

    >>> worst_case_kv([10, 10], [5, 1])   # max(5 * 1 + 10, 1 * 2 + 20)
    22
    """
    cur = np.asarray(current, dtype=np.int64).reshape(-1)
    rem = np.asarray(remaining, dtype=np.int64).reshape(-1)
    if cur.shape[0] == 0:
        return 0
    order = np.argsort(-rem, kind="stable")
    k = np.arange(1, cur.shape[0] + 1)
    return int((rem[order] * k + np.cumsum(cur[order])).max())


class _Peak:
    """:func:`worst_case_kv` of a set of requests, and of the set with one more request in
    ``O(log n)`` (a dispatch round asks it of every waiting request). With the set sorted by
    ``remaining`` descending and ``C_k`` its running sum of ``current``, a candidate ``(c, r)``
    lands after the ``p`` requests with ``remaining >= r``: the terms before it are unchanged,
    its own is ``r (p + 1) + C_p + c``, and each later one moves up a place and grows by ``c``."""

    def __init__(self, current: list[int], remaining: list[int]) -> None:
        self.cur, self.rem = list(current), list(remaining)
        self._build()

    def _build(self) -> None:
        cur, rem = np.array(self.cur, dtype=np.int64), np.array(self.rem, dtype=np.int64)
        order = np.argsort(-rem, kind="stable")
        r, c = rem[order], np.cumsum(cur[order])
        k = np.arange(1, r.shape[0] + 1)
        self.neg = (-r).tolist()  # ascending, for bisect
        self.csum = [0, *c.tolist()]
        self.pre = [0, *np.maximum.accumulate(r * k + c).tolist()]  # max of the first p terms
        moved = (r * (k + 1) + c)[::-1]  # each term one place later
        self.suf = [*np.maximum.accumulate(moved)[::-1].tolist(), -1]  # max over terms > p
        self.need = self.pre[-1]

    def need_with(self, c: int, r: int) -> int:
        p = bisect_right(self.neg, -r)
        best = max(self.pre[p], r * (p + 1) + self.csum[p] + c)
        return max(best, self.suf[p] + c) if p < len(self.neg) else best

    def add(self, c: int, r: int) -> None:
        self.cur.append(c)
        self.rem.append(r)
        self._build()

    def __len__(self) -> int:
        return len(self.cur)


def _estimates(view: ElasticView) -> tuple[float, float, int]:
    """``(est_wait_s, inv_dec, max_idle)`` of the code's dispatch round: how long decoding can
    wait (``max(10, avg_out - out, out / 10)`` iterations of ``decode_step_s``), ``sum 1/out``
    over the decoding requests, and the instances consolidation could free."""
    out = np.maximum(view.running_generated, 1).astype(np.float64)
    iters = 10.0
    if out.shape[0]:
        iters = max(10.0, float(np.maximum(view.finished_output_mean - out, 0.1 * out).max()))
    used = int(view.instance_used.sum())
    max_idle = view.n_instances - math.ceil(used / view.kv_capacity_tokens)
    return iters * view.decode_step_s, float((1.0 / out).sum()), max_idle


def dispatch(view: ElasticView, /, *, form: str = "code", max_prefill_time_s: float = 5.0,
             max_num_ooe: int = 4, batch_max_tokens: int = 500_000,
             running_max_requests: int = 1024) -> tuple[np.ndarray, bool]:
    """Step 1 (LoongServe §5.1): the waiting positions to prefill now, in FCFS order, and whether
    the round admitted one behind a request it skipped.

    Every admission needs the **memory rule**: the worst-case future KV (:func:`worst_case_kv`,
    each request reserving its ``max_new_tokens``) of the running, admitted and candidate
    requests within ``N * cap``, at most ``running_max_requests`` requests, and the round's new
    tokens within ``min(batch_max_tokens, free slots)``.

    ``form="code"`` (the authors' ``generate_new_req_list``): a request is admitted *cheaply*
    when prefilling on only the ``max_idle`` instances consolidation can free costs decoding no
    more than it can wait (``T(max_idle) - T(N) <= est_wait``, ``est_wait`` from
    :func:`_estimates`) and, past the first, its batch stays under ``max_prefill_time_s``;
    otherwise it becomes *undecided*, and the undecided run so far is admitted when preempting
    every decode request pays: ``T(N) * sum_dec 1/out <= est_wait * sum_undecided 1/l``. A
    request that fits neither is skipped while fewer than ``max_num_ooe`` consecutive rounds
    have admitted out of order; else the scan stops.

    ``form="paper"`` (Eq. 1-2, an ablation) [recon: the paper's ``AvgLat_d - min exec`` is read as
    ``est_wait``; its compute tipping point as ``max_prefill_time_s``]: admit FCFS while the
    memory rule holds and the batch on all instances stays under the cap; no skipping.

    >>> from schedlab.contract.elastic import ElasticView
    >>> v = ElasticView.from_columns(kv_capacity_tokens=1000, instance_used=[0, 0],
    ...     prefill_rows={1: (0.0, 1e-3, 0.0), 2: (0.0, 5e-4, 0.0)},
    ...     waiting_tokens=[900, 1500, 100], waiting_max_new_tokens=[50, 50, 50])
    >>> pos, ooe = dispatch(v)
    >>> pos.tolist(), ooe            # 1500 does not fit beside 900 (memory rule); 100 does
    ([0, 2], True)
    """
    if form not in FORMS:
        raise ValueError(f"The 'form' parameter of dispatch must be one of {FORMS}. Got "
                         f"{form!r} instead.")
    cap_t = check_positive_float(max_prefill_time_s, "max_prefill_time_s", "dispatch")
    ooe_limit = check_nonneg_int(max_num_ooe, "max_num_ooe", "dispatch")
    max_tokens = check_positive_int(batch_max_tokens, "batch_max_tokens", "dispatch")
    max_reqs = check_positive_int(running_max_requests, "running_max_requests", "dispatch")
    n, cap = view.n_instances, view.kv_capacity_tokens
    total = n * cap
    budget = min(max_tokens, total - int(view.instance_used.sum()))
    # (current, remaining) of each request for the memory rule
    run_cur = view.running_input + view.running_generated
    run_rem = np.maximum(view.running_max_new_tokens - view.running_generated - 1, 0)
    w_cur = (view.waiting_tokens + 1).tolist()
    w_rem = np.maximum(view.waiting_max_new_tokens - view.waiting_generated - 2, 0).tolist()
    peak = _Peak(run_cur.tolist(), run_rem.tolist())  # running, admitted and undecided

    def fits(j: int) -> bool:
        return len(peak) < max_reqs and peak.need_with(w_cur[j], w_rem[j]) <= total

    def take(j: int) -> None:
        peak.add(w_cur[j], w_rem[j])

    lengths = view.waiting_tokens
    admitted: list[int] = []
    if form == "paper":
        s = q = 0
        for j in range(lengths.shape[0]):
            lj = int(lengths[j])
            t = float(view.prefill_time_s(n, s + lj, q + lj * lj))
            if not fits(j) or s + lj > budget or (admitted and t > cap_t):
                break
            admitted.append(j)
            take(j)
            s, q = s + lj, q + lj * lj
        return np.array(admitted, dtype=np.int64), False

    est_wait, inv_dec, max_idle = _estimates(view)
    iso = max_idle * cap
    ooe_ok = view.ooe_rounds < ooe_limit
    undecided: list[int] = []
    can_run = 0  # the undecided prefix admitted so far
    s = q = 0  # tokens and squares admitted cheaply
    su = qu = 0.0  # and undecided
    inv_u = 0.0
    undecided_open = True
    skipped = False
    out_of_order = False
    need_break = False
    for j in range(lengths.shape[0]):
        lj = int(lengths[j])
        ok = fits(j) and s + su + lj <= budget
        if ok and (not undecided or ooe_ok) and s + lj <= iso:
            t_idle = float(view.prefill_time_s(max_idle, s + lj, q + lj * lj))
            slow = t_idle - float(view.prefill_time_s(n, s + lj, q + lj * lj))
            if slow <= est_wait and (not admitted or t_idle <= cap_t):
                admitted.append(j)
                take(j)
                out_of_order |= skipped
                s, q = s + lj, q + lj * lj
                need_break |= t_idle > cap_t
                continue
        if ok and undecided_open:
            undecided.append(j)
            take(j)
            su, qu, inv_u = su + lj, qu + lj * lj, inv_u + 1.0 / lj
            t_all = float(view.prefill_time_s(n, s + su, q + qu))
            if (t_all * inv_dec <= est_wait * inv_u
                    and (len(undecided) == 1 or t_all <= cap_t)):
                can_run = len(undecided)
                out_of_order |= skipped
            continue
        undecided_open = False
        if ooe_ok and not need_break:
            skipped = True
            continue
        break
    chosen = sorted(admitted + undecided[:can_run])
    return np.array(chosen, dtype=np.int64), out_of_order


# ------------------------------------------------------------------ step 2: allocation
def _t(view: ElasticView, k: int, s: float, q: float) -> float:
    """The prefill model on ``k`` instances (infinite on none)."""
    return math.inf if k <= 0 else float(view.prefill_time_s(k, s, q))


def allocate(view: ElasticView, /, requests: ArrayLike) -> tuple[np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    """Step 2 (LoongServe §5.2, the authors' ``_schedule_new_req_list_with_decoding``): for the
    waiting positions ``requests`` to prefill, ``(instances, paused, migrations)``: the
    instances their prefill may use, the decode batches paused for the round to lend theirs,
    and the consolidating KV migrations (``(source, target, tokens)`` rows).

    a. *Consolidation* (Eq. 3-4), when the decode batches hold more instances than their KV
       needs and the new tokens fit the freeable ones: empty the least-used decode instance into
       the fullest kept ones while the new tokens do not yet fit the idle instances, or while one
       more instance speeds the prefill by more than the move takes
       (``T(k) - T(k+1) >= tokens * kv_bytes / migration_bytes_per_s``).
    b. *Shortfall*: while the idle instances lack slots for the new tokens, pause the decode
       batch with the most spare slots.
    c. *Preemption*: pause any other decode batch ``b`` whose instances speed the prefill more
       than its requests lose: ``(T(k) - T(k + |b|)) * sum_new 1/l >= T(k + |b|) * |b|^2 /
       sum_b out``.

    [recon] Where the code lends idle instances to a decode batch that cannot grow (its step
    2d), the simulator scales the batch up instead.
    """
    req = check_array(requests, "requests", "allocate", dtype=np.int64, ndim=1, min_value=0,
                      integer=True)
    cap = view.kv_capacity_tokens
    ls = view.waiting_tokens[req].astype(np.float64)
    s_new, q_new, inv_new = float(ls.sum()), float((ls * ls).sum()), float((1.0 / ls).sum())
    used = view.instance_used.astype(np.int64).copy()
    batch_of = np.where(used > 0, view.instance_batch, -1)  # an instance without KV is free
    idle = batch_of < 0
    migrations: list[tuple[int, int, int]] = []
    _, _, max_idle = _estimates(view)
    busy = np.flatnonzero(~idle)
    need_inst = math.ceil(int(used.sum()) / cap)
    if need_inst < busy.shape[0] and s_new <= max_idle * cap:
        keep = list(busy[np.argsort(-used[busy], kind="stable")])
        dst = need_inst - 1
        while int(idle.sum()) < max_idle and len(keep) > need_inst:
            src = keep.pop()
            k_idle = int(idle.sum())
            move_s = used[src] * view.kv_bytes_per_token / view.migration_bytes_per_s
            if s_new <= k_idle * cap and (_t(view, k_idle, s_new, q_new)
                                          - _t(view, k_idle + 1, s_new, q_new) < move_s):
                break
            left = int(used[src])
            while left > 0 and dst >= 0:
                d = keep[dst]
                room = cap - int(used[d])
                if room <= 0:
                    dst -= 1
                    continue
                t = min(room, left)
                migrations.append((int(src), int(d), t))
                used[d] += t
                left -= t
            used[src] = left
            if left:  # pragma: no cover - the kept instances hold every token (need_inst)
                raise AssertionError("consolidation left tokens behind")
            batch_of[src] = -1
            idle[src] = True
    paused: list[int] = []
    spare = {b: int((cap - used[batch_of == b]).sum()) for b in np.unique(batch_of[~idle])}
    free_idle = int((cap - used[idle]).sum())
    while free_idle < s_new and spare:  # b. shortfall
        b = max(spare, key=lambda x: (spare[x], -x))
        paused.append(int(b))
        free_idle += int((cap - used[batch_of == b]).sum())
        del spare[b]
    k_av = int(idle.sum()) + int(np.isin(batch_of, paused).sum())
    out = np.maximum(view.running_generated, 1).astype(np.float64)
    for b in sorted(spare):  # c. per-batch preemption
        members = view.running_batch == b
        size = int(members.sum())
        k_b = int((batch_of == b).sum())
        gain = (_t(view, k_av, s_new, q_new) - _t(view, k_av + k_b, s_new, q_new)) * inv_new
        loss = _t(view, k_av + k_b, s_new, q_new) * size * size / max(out[members].sum(), 1.0)
        if gain >= loss:
            paused.append(int(b))
            k_av += k_b
    lend = idle | np.isin(batch_of, paused)
    return (np.flatnonzero(lend), np.array(sorted(paused), dtype=np.int64),
            np.array(migrations, dtype=np.int64).reshape(-1, 3))


# ------------------------------------------------------------------ step 3: batching
def batch_prefills(lengths: ArrayLike, instance_free: ArrayLike, prefill_time: PrefillTime, *,
                   instance_used: ArrayLike | None = None, instance_node: ArrayLike | None = None,
                   pruned: bool = False) -> list[tuple[np.ndarray, np.ndarray]]:
    """Step 3 (LoongServe §5.3, Eq. 5): cut requests of ``lengths`` into prefill batches on
    groups of instances (``instance_free`` slots each), minimising
    ``sum_b T(k_b, S_b, Q_b) * sum_{r in b} 1 / l_r`` (``prefill_time(k, S, Q)``: the analytic
    model), each batch's tokens within its instances' free slots.

    As in the authors' code: requests sorted by length, longest first; instances by used slots
    ascending (``instance_used``; default: free slots descending), then ``instance_node``; every
    instance up to the last batch's is used, batches take contiguous requests and contiguous
    instances, longest requests on the freest instances. The DP ``f[i][m]`` (first ``i``
    requests on the first ``m`` instances) is exact for this objective (checked against a brute
    force and CP-SAT in the tests); ``pruned=True`` runs the shipped C++ loop's pruning
    (``a <= a(i, m-1)``, ``c >= c(i-1, m)``), the second against the paper's Eq. 6, so it can
    miss the optimum (measured in the tests). Returns ``[(request indices, instance
    indices)]`` into the inputs; ``[]`` when nothing fits.

    >>> rows = {k: (0.01, 1e-4 / k, 1e-9 / k) for k in (1, 2, 3)}
    >>> t = lambda k, s, q: rows[k][0] + rows[k][1] * s + rows[k][2] * q
    >>> L = [100, 200_000, 80, 120]
    >>> [(r.tolist(), e.tolist()) for r, e in batch_prefills(L, [400_000] * 3, t)]
    [([1], [0]), ([0, 2, 3], [1, 2])]
    """
    ls = check_array(lengths, "lengths", "batch_prefills", dtype=np.int64, ndim=1, min_value=1,
                     integer=True)
    free = check_array(instance_free, "instance_free", "batch_prefills", dtype=np.int64, ndim=1,
                       min_value=0, integer=True)
    n, m_all = ls.shape[0], free.shape[0]
    if n == 0 or m_all == 0:
        return []
    used = -free if instance_used is None else np.asarray(instance_used, dtype=np.int64)
    node = np.zeros(m_all, dtype=np.int64) if instance_node is None else np.asarray(
        instance_node, dtype=np.int64)
    r_order = np.argsort(-ls, kind="stable")
    e_order = np.lexsort((node, used))
    lr = ls[r_order].astype(np.float64)
    fr = free[e_order]
    ps = np.concatenate(([0.0], np.cumsum(lr)))
    pq = np.concatenate(([0.0], np.cumsum(lr * lr)))
    pinv = np.concatenate(([0.0], np.cumsum(1.0 / lr)))
    pf = np.concatenate(([0], np.cumsum(fr)))
    if pruned:
        f, arg_a, arg_c = _dp_pruned(n, m_all, ps, pq, pinv, pf, prefill_time)
    elif n <= _SMALL:
        f, arg_a, arg_c = _dp_small(n, m_all, ps, pq, pinv, pf, prefill_time)
    else:
        f, arg_a, arg_c = _dp_exact(n, m_all, ps, pq, pinv, pf, prefill_time)
    best_m = int(np.argmin(f[n, 1:])) + 1
    if not np.isfinite(f[n, best_m]):
        return []
    out = []
    i, m = n, best_m
    while i > 0:
        a, c = int(arg_a[i, m]), int(arg_c[i, m])
        out.append((np.sort(r_order[i - a: i]), e_order[m - c: m].copy()))
        i, m = i - a, m - c
    return out[::-1]


#: Up to this many requests the DP evaluates every transition at once (:func:`_dp_small`);
#: beyond, the divide and conquer of :func:`_dp_exact` is faster.
_SMALL = 24


def _dp_small(n: int, m_all: int, ps: np.ndarray, pq: np.ndarray, pinv: np.ndarray,
              pf: np.ndarray, prefill_time: PrefillTime) -> tuple[np.ndarray, ...]:
    """``f[i][m]`` for a few requests: per ``(m, c)`` every ``(i, j)`` at once."""
    f = np.full((n + 1, m_all + 1), np.inf)
    f[0, 0] = 0.0
    arg_a = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    arg_c = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    below = np.tri(n + 1, k=-1, dtype=bool)  # j < i
    s = np.where(below, ps[:, None] - ps[None, :], 0.0)  # tokens of requests j..i-1
    q = np.where(below, pq[:, None] - pq[None, :], 0.0)
    inv = pinv[:, None] - pinv[None, :]
    w = [np.where(below, np.asarray(prefill_time(c, s, q), dtype=np.float64) * inv, np.inf)
         for c in range(1, m_all + 1)]
    rows = np.arange(n + 1)
    for m in range(1, m_all + 1):
        for c in range(1, m + 1):
            cand = np.where(s <= pf[m] - pf[m - c], w[c - 1] + f[None, :, m - c], np.inf)
            j = np.argmin(cand, axis=1)
            val = cand[rows, j]
            better = val < f[:, m]
            f[better, m] = val[better]
            arg_a[better, m] = rows[better] - j[better]
            arg_c[better, m] = c
    return f, arg_a, arg_c


def _dp_exact(n: int, m_all: int, ps: np.ndarray, pq: np.ndarray, pinv: np.ndarray,
              pf: np.ndarray, prefill_time: PrefillTime) -> tuple[np.ndarray, ...]:
    """``f[i][m]`` over all ``(a, c)`` in ``O(m^2 n log n)``.

    For fixed ``(m, c)`` the candidates of row ``i`` are ``M[i][j] = f[j][m-c] + w(j, i)``,
    ``w(j, i) = T(c, S, Q) * sum 1/l`` of requests ``j..i-1``, over the ``j`` whose batch fits
    (``j >= lo(i)``, ``lo`` non-decreasing) and ``j < i``. With ``B, C >= 0``, ``w`` obeys the
    quadrangle inequality ``w(a, c) + w(b, d) <= w(a, d) + w(b, c)`` (``a <= b <= c <= d``: the
    difference is ``-(B S_ab + C Q_ab) I_cd - (B S_cd + C Q_cd) I_ab``, and ``A I`` is additive),
    and the infeasible entries form staircases at two corners, so the leftmost best ``j`` of a
    row never decreases with ``i``: rows are solved by divide and conquer on that monotonicity,
    one level of every segment at a time (vectorised). The brute-force tests check exactness."""
    f = np.full((n + 1, m_all + 1), np.inf)
    f[0, 0] = 0.0
    arg_a = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    arg_c = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    rows = np.arange(n + 1)
    for m in range(1, m_all + 1):
        for c in range(1, m + 1):
            prev = f[:, m - c]
            finite = np.flatnonzero(np.isfinite(prev))
            if finite.shape[0] == 0:
                continue
            lo = np.searchsorted(ps, ps - (pf[m] - pf[m - c]), side="left")
            jmin = np.maximum(lo, finite[0])
            jmax = np.minimum(rows - 1, finite[-1])
            live = np.flatnonzero(jmin <= jmax)
            if live.shape[0] == 0:
                continue
            val, opt = _row_minima(live, jmin, jmax, prev, c, ps, pq, pinv, prefill_time)
            better = val < f[live, m]
            i = live[better]
            f[i, m] = val[better]
            arg_a[i, m] = i - opt[better]
            arg_c[i, m] = c
    return f, arg_a, arg_c


def _row_minima(live: np.ndarray, jmin: np.ndarray, jmax: np.ndarray, prev: np.ndarray, c: int,
                ps: np.ndarray, pq: np.ndarray, pinv: np.ndarray,
                prefill_time: PrefillTime) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and leftmost argmin over ``j in [jmin_i, jmax_i]`` of ``prev[j] + w(j, i)`` for
    the consecutive rows ``live``, by divide and conquer on the monotone argmin."""
    r0 = int(live[0])
    k = live.shape[0]
    val = np.empty(k)
    opt = np.empty(k, dtype=np.int64)
    seg = np.array([[0, k - 1, int(jmin[live[0]]), int(jmax[live[-1]])]], dtype=np.int64)
    while seg.shape[0]:
        lo_r, hi_r, wl, wh = seg.T
        mid = (lo_r + hi_r) // 2
        i = mid + r0
        start = np.maximum(wl, jmin[i])
        count = np.minimum(wh, jmax[i]) - start + 1
        offsets = np.concatenate(([0], np.cumsum(count)[:-1]))
        j = np.repeat(start - offsets, count) + np.arange(int(count.sum()))
        ii = np.repeat(i, count)
        s, q = ps[ii] - ps[j], pq[ii] - pq[j]
        cost = prev[j] + np.asarray(prefill_time(c, s, q), dtype=np.float64) * (pinv[ii]
                                                                                - pinv[j])
        best = np.minimum.reduceat(cost, offsets)
        hit = np.flatnonzero(cost == np.repeat(best, count))
        first = j[hit[np.searchsorted(hit, offsets)]]
        val[mid], opt[mid] = best, first
        left = lo_r < mid
        right = mid < hi_r
        seg = np.concatenate((
            np.column_stack((lo_r, mid - 1, wl, first))[left],
            np.column_stack((mid + 1, hi_r, first, wh))[right]))
    return val, opt


def _dp_pruned(n: int, m_all: int, ps: np.ndarray, pq: np.ndarray, pinv: np.ndarray,
               pf: np.ndarray, prefill_time: PrefillTime) -> tuple[np.ndarray, ...]:
    """The authors' loop (``longserve_c_scheduler/src/main.cpp``) with its pruning, as shipped."""
    f = np.full((n + 1, m_all + 1), np.inf)
    f[0, 0] = 0.0
    arg_a = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    arg_c = np.zeros((n + 1, m_all + 1), dtype=np.int64)
    for i in range(1, n + 1):
        for m in range(1, m_all + 1):
            a_max = int(arg_a[i, m - 1]) if arg_a[i, m - 1] else i
            c_min = int(arg_c[i - 1, m]) if arg_c[i - 1, m] else 1
            for a in range(1, a_max + 1):
                s, q = ps[i] - ps[i - a], pq[i] - pq[i - a]
                for c in range(m, c_min - 1, -1):
                    if s > pf[m] - pf[m - c]:
                        break
                    t = float(np.asarray(prefill_time(c, s, q)))
                    v = t * (pinv[i] - pinv[i - a]) + f[i - a, m - c]
                    if v < f[i, m]:
                        f[i, m], arg_a[i, m], arg_c[i, m] = v, a, c
    return f, arg_a, arg_c


# ------------------------------------------------------------------ the scheduler
def loongserve(view: ElasticView, /, *, form: str = "code", max_prefill_time_s: float = 5.0,
               max_num_ooe: int = 4, batch_max_tokens: int = 500_000,
               running_max_requests: int = 1024, pruned: bool = False) -> ElasticPlan:
    """LoongServe's scheduling round (§5): :func:`dispatch`, :func:`allocate`, then
    :func:`batch_prefills` on the instances allocated (their free slots after the migrations).
    The requests the batching cannot place wait for the next round. Parameters as in
    :func:`dispatch` and :func:`batch_prefills`.

    While a round's prefills run (``view.backfilling``) it back-fills instead
    (:func:`backfill`).

    Invariants (tests): a valid plan (:func:`~schedlab.contract.elastic.validate_elastic_plan`);
    admitted requests pass the memory rule; every batch fits its instances; a decode batch not
    paused keeps its instances; pure and deterministic.
    """
    if view.backfilling:
        return backfill(view, running_max_requests=running_max_requests, pruned=pruned)
    req, ooe = dispatch(view, form=form, max_prefill_time_s=max_prefill_time_s,
                        max_num_ooe=max_num_ooe, batch_max_tokens=batch_max_tokens,
                        running_max_requests=running_max_requests)
    if req.shape[0] == 0:
        return ElasticPlan()
    inst, paused, migrations = allocate(view, req)
    used = view.instance_used.copy()
    for src, dst, t in migrations.tolist():
        used[src] -= t
        used[dst] += t
    free = view.kv_capacity_tokens - used[inst]
    groups = batch_prefills(view.waiting_tokens[req], free, view.prefill_time_s,
                            instance_used=used[inst], instance_node=view.instance_node[inst],
                            pruned=pruned)
    if not groups:
        return ElasticPlan()
    batches = tuple(PrefillBatch(req[r], inst[e]) for r, e in groups)
    lent = set(np.concatenate([b.instances for b in batches]).tolist())
    needed = [b for b in paused.tolist() if lent & set(view.batch_instances(b).tolist())]
    return ElasticPlan(batches=batches, paused=np.array(needed, dtype=np.int64),
                       migrations=migrations, out_of_order=ooe)


def static_sp(view: ElasticView, /, *, running_max_requests: int = 1024) -> ElasticPlan:
    """LoongServe without elastic sequence parallelism (§7.4, Fig. 12; the authors'
    ``--use_fixed_sp``): every prefill runs over all the instances, its KV left striped evenly
    (``layout="striped"``), and the whole cluster is one decode batch (paused while a prefill
    runs). Admission is strict FCFS: the waiting requests in order while the worst-case future KV
    fits and each instance holds its stripe; the first that does not stops the scan.

    >>> from schedlab.contract.elastic import ElasticView
    >>> v = ElasticView.from_columns(kv_capacity_tokens=1000, instance_used=[0, 0],
    ...     prefill_rows={2: (0.0, 1e-3, 0.0)}, waiting_tokens=[900, 1500, 100],
    ...     waiting_max_new_tokens=[50, 50, 50])
    >>> plan = static_sp(v)
    >>> [(b.requests.tolist(), b.instances.tolist()) for b in plan.batches], plan.layout
    ([([0], [0, 1])], 'striped')
    """
    max_reqs = check_positive_int(running_max_requests, "running_max_requests", "static_sp")
    if view.backfilling:  # every prefill spans the whole cluster: nothing to back-fill
        return ElasticPlan()
    n, cap = view.n_instances, view.kv_capacity_tokens
    cur = (view.running_input + view.running_generated).tolist()
    rem = np.maximum(view.running_max_new_tokens - view.running_generated - 1, 0).tolist()
    stripe = view.instance_used.copy()
    admitted: list[int] = []
    for j in range(view.waiting_tokens.shape[0]):
        if len(cur) + 1 > max_reqs:
            break
        lj = int(view.waiting_tokens[j])
        c2 = [*cur, lj + 1]
        r2 = [*rem, max(int(view.waiting_max_new_tokens[j] - view.waiting_generated[j]) - 2, 0)]
        grown = stripe + striped_placement([lj], n)[0]
        if worst_case_kv(c2, r2) > n * cap or (grown > cap).any():
            break
        admitted.append(j)
        cur, rem, stripe = c2, r2, grown
    if not admitted:
        return ElasticPlan()
    return ElasticPlan(batches=(PrefillBatch(np.array(admitted), np.arange(n)),),
                       paused=view.batches,
                       layout="striped")


def backfill(view: ElasticView, /, *, running_max_requests: int = 1024,
             pruned: bool = False) -> ElasticPlan:
    """Back-fill idle instances during a round (the authors' ``generate_greedy_req_list``, not
    in the paper): scanning the waiting requests FCFS with unlimited skipping, admit each whose
    batch, prefilled on the idle instances, is predicted to end within
    ``view.backfill_window_s`` and keeps the memory rule; then batch them onto the idle
    instances (:func:`batch_prefills`).

    >>> from schedlab.contract.elastic import ElasticView
    >>> v = ElasticView.from_columns(kv_capacity_tokens=1000, instance_used=[0, 0],
    ...     prefill_rows={1: (0.0, 1e-3, 0.0), 2: (0.0, 5e-4, 0.0)}, waiting_tokens=[900, 100],
    ...     instance_prefilling=[True, False], backfill_window_s=0.5)
    >>> [(b.requests.tolist(), b.instances.tolist()) for b in backfill(v).batches]
    [([1], [1])]
    """
    max_reqs = check_positive_int(running_max_requests, "running_max_requests", "backfill")
    idle = view.idle_instances
    if idle.shape[0] == 0:
        return ElasticPlan()
    k, cap = int(idle.shape[0]), view.kv_capacity_tokens
    total = view.n_instances * cap
    peak = _Peak((view.running_input + view.running_generated).tolist(),
                 np.maximum(view.running_max_new_tokens - view.running_generated - 1,
                            0).tolist())
    w_rem = np.maximum(view.waiting_max_new_tokens - view.waiting_generated - 2, 0).tolist()
    a, b, c = view.prefill_rows[k]
    room = k * cap
    chosen: list[int] = []
    s = q = 0
    for j, lj in enumerate(view.waiting_tokens.tolist()):
        if len(peak) + 1 > max_reqs or s + lj > room:
            continue
        if peak.need_with(lj + 1, w_rem[j]) > total:
            continue
        if a + b * (s + lj) + c * (q + lj * lj) > view.backfill_window_s:
            continue
        chosen.append(j)
        peak.add(lj + 1, w_rem[j])
        s, q = s + lj, q + lj * lj
    if not chosen:
        return ElasticPlan()
    req = np.array(chosen, dtype=np.int64)
    groups = batch_prefills(view.waiting_tokens[req], cap - view.instance_used[idle],
                            view.prefill_time_s, instance_used=view.instance_used[idle],
                            instance_node=view.instance_node[idle], pruned=pruned)
    return ElasticPlan(batches=tuple(PrefillBatch(req[r], idle[e]) for r, e in groups),
                       out_of_order=chosen != list(range(len(chosen))))
