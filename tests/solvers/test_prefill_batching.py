"""LoongServe's prefill batching judged on one problem record: the CP-SAT joint assignment
agrees with the brute force of every partition, the DP with the brute force of its contiguous
space, and the contiguous restriction costs little; bad input names its field."""

from __future__ import annotations

import numpy as np
import pytest

from schedlab.policies.loongserve import batch_prefills
from schedlab.solvers import (
    PrefillBatchingProblem,
    brute_force_prefill_batching,
    solve_prefill_batching_cpsat,
    verify_prefill_batching,
)

ROWS = {k: (0.005 * (1 + 0.05 * (k - 1)), 3.8e-5 / k, 7.7e-10 / k) for k in range(1, 6)}


def _problem(seed: int) -> PrefillBatchingProblem:
    r = np.random.default_rng(seed)
    n, m = int(r.integers(1, 6)), int(r.integers(1, 4))
    lengths = np.exp(r.uniform(np.log(10), np.log(200_000), n)).astype(np.int64) + 1
    return PrefillBatchingProblem(lengths=lengths, instance_free=r.integers(0, 250_000, m),
                                  prefill_rows={k: ROWS[k] for k in range(1, m + 1)})


@pytest.mark.solver
@pytest.mark.parametrize("seed", range(25))
def test_cpsat_finds_the_unrestricted_optimum_and_the_dp_is_never_better(seed):
    p = _problem(seed)
    _, best = brute_force_prefill_batching(p, contiguous=False)
    r = solve_prefill_batching_cpsat(p, time_limit_s=10)
    dp = batch_prefills(p.lengths, p.instance_free, p.prefill_time)
    if best == np.inf:
        assert r.status == "INFEASIBLE" and dp == []
        return
    assert r.status == "OPTIMAL"
    assert r.objective == pytest.approx(best, rel=1e-9)
    assert verify_prefill_batching(p, r.schedule).valid
    assert r.bound <= r.objective + 1e-12
    got = verify_prefill_batching(p, dp)
    assert got.valid and got.objective >= best * (1 - 1e-9)


def test_verify_reports_every_broken_rule():
    p = PrefillBatchingProblem(lengths=[5, 5, 5], instance_free=[6, 6],
                               prefill_rows={1: (0, 1, 0), 2: (0, 0.5, 0)})
    bad = verify_prefill_batching(p, [(np.array([0, 1]), np.array([0])),
                                      (np.array([1]), np.array([0]))])
    assert not bad.valid and np.isnan(bad.objective)
    text = " | ".join(bad.violations)
    assert "needs 10 slots" in text and "requests [1, 2]" in text and "instances [0]" in text


@pytest.mark.parametrize("kwargs,match", [
    ({"lengths": [0]}, "'lengths'"), ({"instance_free": [-1]}, "'instance_free'"),
    ({"prefill_rows": {2: (0, 1, 0)}}, "missing \\[1\\]"),
])
def test_bad_problems_name_the_field(kwargs, match):
    base = {"lengths": [5], "instance_free": [6], "prefill_rows": {1: (0, 1, 0)}}
    with pytest.raises(ValueError, match=match):
        PrefillBatchingProblem(**{**base, **kwargs})


def test_the_brute_force_refuses_what_it_cannot_enumerate():
    p = PrefillBatchingProblem(lengths=[5] * 8, instance_free=[100],
                               prefill_rows={1: (0, 1, 0)})
    with pytest.raises(ValueError, match="at most 7 requests"):
        brute_force_prefill_batching(p, contiguous=False)
    with pytest.raises(ValueError, match="at most 12"):
        solve_prefill_batching_cpsat(PrefillBatchingProblem(
            lengths=[5] * 13, instance_free=[100], prefill_rows={1: (0, 1, 0)}))
