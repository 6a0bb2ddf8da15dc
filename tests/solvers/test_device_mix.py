"""The device-mix optimum (Lamina): it is the brute-force optimum over every batch too, no
sizer beats it, and it answers INFEASIBLE when nothing meets the SLO."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.costmodel.attention_offload import (
    DeviceMix,
    DeviceMixProblem,
    deployment,
    evaluate_mix,
)
from schedlab.policies import DEVICE_MIXERS, get_device_mixer
from schedlab.solvers import mixes, solve_device_mix, verify_device_mix
from schedlab.testing import check_device_mixer, device_mix_problems

PROPS = settings(max_examples=25, deadline=None, database=None, derandomize=True)


@settings(max_examples=8, deadline=None, database=None, derandomize=True)
@given(st.sampled_from(["llama-3-8b", "llama-33b"]), st.floats(256, 16384),
       st.sampled_from([math.inf, 0.05, 0.2]))
def test_optimum_equals_brute_force_over_every_batch(model: str, ctx: float, slo: float) -> None:
    p = DeviceMixProblem(model=model, context_tokens=ctx, tbt_slo_s=slo, max_compute=2,
                         max_memory=4, max_replicas=2)
    r = solve_device_mix(p)
    best = math.inf
    for a, b, rep in mixes(p):
        top = deployment(p, a, b, rep).max_batch(ctx)
        for batch in range(1, top + 1, max(1, top // 300)):  # every batch, or 300 spread out
            best = min(best, evaluate_mix(p, DeviceMix(a, b, rep, batch)).usd_per_million_tokens)
        if top >= 1:
            best = min(best, evaluate_mix(p, DeviceMix(a, b, rep, top)).usd_per_million_tokens)
    if math.isinf(best):
        assert r.status == "INFEASIBLE" and r.schedule is None
    else:
        assert r.status == "OPTIMAL" and r.gap == 0.0
        assert r.objective <= best * (1 + 1e-12)
        assert verify_device_mix(p, r.schedule).usd_per_million_tokens == r.objective


@PROPS
@given(device_mix_problems(), st.sampled_from(sorted(DEVICE_MIXERS)))
def test_no_sizer_beats_the_optimum(p: DeviceMixProblem, name: str) -> None:
    mix = get_device_mixer(name)(p)
    r = solve_device_mix(p)
    if mix.batch > 0:
        assert r.status == "OPTIMAL"
        assert verify_device_mix(p, mix).usd_per_million_tokens >= r.objective * (1 - 1e-12)
    if r.status == "OPTIMAL" and p.homogeneous:
        assert r.objective <= r.stats["best_homogeneous"]


def test_registered_sizers_keep_the_contract() -> None:
    for name in DEVICE_MIXERS:
        check_device_mixer(name, max_examples=30)


def test_infeasible_slo_and_table_5_choice() -> None:
    tight = DeviceMixProblem(model="llama-3-70b", context_tokens=4096, tbt_slo_s=0.001)
    r = solve_device_mix(tight)
    assert r.status == "INFEASIBLE" and r.objective is None
    assert get_device_mixer("lamina")(tight).batch == 0
    one = DeviceMixProblem(model="llama-3-70b", context_tokens=2000, max_replicas=1)
    assert get_device_mixer("lamina")(one) == DeviceMix(2, 4, 1, 263)
