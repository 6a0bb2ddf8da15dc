"""check_policy catches a false wake_on_arrival=False claim; FCFS and vLLM's claims hold."""

from __future__ import annotations

import dataclasses

import pytest

from schedlab.policies.fcfs import fcfs
from schedlab.testing import check_policy


def deaf_fcfs(view, /):
    """FCFS, always claiming an arrival cannot change its decision (false when every waiting
    request was admitted: the newcomer would join too)."""
    return dataclasses.replace(fcfs(view), wake_on_arrival=False)


def test_false_claim_is_caught() -> None:
    with pytest.raises(AssertionError, match="wake_on_arrival=False"):
        check_policy(deaf_fcfs, max_examples=50, shrink=False)


@pytest.mark.parametrize("name", ["fcfs", "vllm"])
def test_fcfs_and_vllm_claims_hold(name: str) -> None:
    check_policy(name, max_examples=50, shrink=False)
