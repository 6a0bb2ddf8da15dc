"""check_policy catches a false wake_on_arrival=False claim; FCFS and vLLM's claims hold."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import strategies as st

from schedlab.policies.base import QueueView
from schedlab.policies.fcfs import fcfs
from schedlab.testing import check_policy


def deaf_fcfs(view, /):
    """FCFS, always claiming an arrival cannot change its decision (false when every waiting
    request was admitted: the newcomer would join too)."""
    return dataclasses.replace(fcfs(view), wake_on_arrival=False)


def test_false_claim_is_caught() -> None:
    # every waiting request fits, so a newcomer would be admitted too: the claim is false here
    # (a fixed view: a search's first 50 examples need not contain such a case)
    view = QueueView.from_columns(now_s=1.0, input_tokens=[10, 10], arrival_s=[0.0, 0.5],
                                  output_tokens_pred=[5, 5], kv_capacity_tokens=1000)
    with pytest.raises(AssertionError, match="wake_on_arrival=False"):
        check_policy(deaf_fcfs, views=st.just(view), max_examples=1, shrink=False)


@pytest.mark.parametrize("name", ["fcfs", "vllm"])
def test_fcfs_and_vllm_claims_hold(name: str) -> None:
    check_policy(name, max_examples=50, shrink=False)
