"""The policy and router registries: names or callables, helpful errors, read-only tables."""

from __future__ import annotations

import inspect

import pytest

from schedlab.policies import REGISTRY, ROUTERS, get_policy, get_router

ISSUE_POLICIES = {"fcfs", "vllm", "sjf", "srpt", "mlfq", "skip-join-mlfq"}
ISSUE_ROUTERS = {"round-robin", "least-tokens", "least-kv"}


def test_registry_holds_the_issue_names() -> None:
    assert ISSUE_POLICIES <= set(REGISTRY)
    assert ISSUE_ROUTERS <= set(ROUTERS)


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_get_policy_by_name(name: str) -> None:
    assert get_policy(name) is REGISTRY[name]


@pytest.mark.parametrize("name", sorted(ROUTERS))
def test_get_router_by_name(name: str) -> None:
    assert get_router(name) is ROUTERS[name]


def test_callables_pass_through() -> None:
    def mine(view):
        return None

    assert get_policy(mine) is mine
    assert get_router(mine) is mine


def test_unknown_name_lists_close_matches_and_known_names() -> None:
    with pytest.raises(ValueError, match="Unknown batching policy 'skip-join'") as err:
        get_policy("skip-join")
    msg = str(err.value)
    assert "Close matches: 'skip-join-mlfq'" in msg
    assert all(repr(n) in msg for n in REGISTRY)
    with pytest.raises(ValueError, match=r"Unknown router 'round_robin'.*'round-robin'"):
        get_router("round_robin")


def test_neither_name_nor_callable_is_rejected() -> None:
    with pytest.raises(ValueError, match="get_policy must be a registered name or a callable"):
        get_policy(42)
    with pytest.raises(ValueError, match="get_router must be a registered name or a callable"):
        get_router(None)


def test_tables_are_read_only() -> None:
    with pytest.raises(TypeError):
        REGISTRY["mine"] = print  # type: ignore[index]
    with pytest.raises(TypeError):
        ROUTERS["mine"] = print  # type: ignore[index]


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_policy_signature_is_view_then_keyword_only(name: str) -> None:
    params = list(inspect.signature(REGISTRY[name]).parameters.values())
    assert params[0].kind is inspect.Parameter.POSITIONAL_ONLY
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[1:])
    assert all(p.default is not inspect.Parameter.empty for p in params[1:])


@pytest.mark.parametrize("fn", sorted({**REGISTRY, **ROUTERS}.items()))
def test_docstrings_cite_paper_invariants_and_example(fn: tuple) -> None:
    name, f = fn
    doc = inspect.getdoc(f) or ""
    assert ">>>" in doc, name
    assert "Invariants" in doc, name
    if name in REGISTRY:
        assert any(tag in doc for tag in ("arXiv", "OSDI", "SOSP")), name
