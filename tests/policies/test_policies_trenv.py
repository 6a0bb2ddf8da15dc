"""TrEnv's sandbox policies: every registered one passes check_sandbox_policy, TrEnv repurposes
exactly when an idle sandbox exists, and the contract's rules catch the bad answers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from schedlab.contract.serverless import (
    Functions,
    InvalidStart,
    Invocations,
    SandboxStart,
    SandboxView,
    validate_start,
)
from schedlab.datasets.serverless import trenv_functions
from schedlab.policies import SANDBOX_POLICIES, get_sandbox_policy
from schedlab.policies.trenv import criu, reap, trenv
from schedlab.testing import check_sandbox_policy


@pytest.mark.parametrize("name", sorted(SANDBOX_POLICIES))
def test_every_registered_policy_keeps_the_contract(name: str) -> None:
    check_sandbox_policy(name, max_examples=60)


def test_check_catches_a_policy_that_repurposes_from_nothing() -> None:
    def greedy(view: SandboxView, /) -> SandboxStart:
        return SandboxStart("repurpose", "template", "cxl", math.inf)

    with pytest.raises(AssertionError, match="no idle sandbox"):
        check_sandbox_policy(greedy, max_examples=40, shrink=False)


def _view(idle: list[int], pooled: int = 0) -> SandboxView:
    fns = trenv_functions()
    return SandboxView(function=fns.index("JS"), now_s=1.0, functions=fns, idle=idle,
                       pooled=pooled, memory_mb=0.0, cap_mb=65536.0, starting=0)


def test_trenv_repurposes_iff_an_idle_sandbox_exists() -> None:
    assert trenv(_view([0] * 11)).path == "create"
    assert trenv(_view([0] * 11, pooled=1)).path == "repurpose"
    busy = [0] * 11
    busy[0] = 2
    start = trenv(_view(busy), backend="rdma")
    assert (start.path, start.restore, start.backend) == ("repurpose", "template", "rdma")
    assert math.isinf(start.keep_alive_s)


def test_baselines_create_with_their_restore_and_keep_alive() -> None:
    v = _view([1] * 9 + [0, 0])
    assert (criu(v).path, criu(v).restore) == ("create", "criu")
    assert reap(v, keep_alive_s=120.0).keep_alive_s == 120.0
    assert get_sandbox_policy("faasnap")(v).restore == "vm-prefetch"


@pytest.mark.parametrize(("start", "rule"), [
    (SandboxStart("repurpose", "vm-lazy"), "vm into sandbox"),
    (SandboxStart("create", "template", "local"), "backend"),
    (SandboxStart("create", "criu", "cxl"), "backend"),
    (SandboxStart("create", "cold", "local", float("nan")), "keep-alive"),
    (SandboxStart("create", "cold", "local", -1.0), "keep-alive"),
    (SandboxStart("warm", "cold"), "unknown path"),
    (SandboxStart("create", "zygote"), "unknown restore"),
])
def test_validate_start_names_the_rule(start: SandboxStart, rule: str) -> None:
    with pytest.raises(InvalidStart) as exc:
        validate_start(_view([1] * 11), start)
    assert exc.value.rule == rule


def test_unknown_policy_name_lists_close_matches() -> None:
    with pytest.raises(ValueError, match="Close matches: 'trenv'"):
        get_sandbox_policy("trenvv")


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"image_mb": [-1.0]}, "Functions.image_mb"),
    ({"ro_frac": [1.5]}, "Functions.ro_frac"),
    ({"threads": [2.5]}, "Functions.threads"),
    ({"exec_s": [float("nan")]}, "Functions.exec_s"),
    ({"touched_mb": [90.0]}, "Functions.touched_mb"),
    ({"names": ("a", "a")}, "Functions.names"),
])
def test_bad_functions_name_the_field(kwargs: dict, field: str) -> None:
    base = dict(names=("a",), image_mb=[50.0], limit_mb=[64.0], threads=[1], cpus=[1],
                exec_s=[0.1], touched_mb=[8.0], ro_frac=[0.5])
    if "names" in kwargs:
        base = {k: (v * 2 if isinstance(v, list) else v) for k, v in base.items()}
    base.update(kwargs)
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Functions(**base)


def test_bad_trace_names_the_field() -> None:
    with pytest.raises(ValueError, match=r"arrival_s must not decrease.*invocation 1"):
        Invocations(arrival_s=[1.0, 0.5], function=[0, 0], n_functions=1)
    with pytest.raises(ValueError, match=r"Invocations\.arrival_s\[0\]"):
        Invocations(arrival_s=[-1.0], function=[0], n_functions=1)
    with pytest.raises(ValueError, match="must hold numbers"):
        Invocations(arrival_s=np.array(["a"]), function=[0], n_functions=1)
