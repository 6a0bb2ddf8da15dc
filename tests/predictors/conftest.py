"""Predictor tests run their numeric libraries on one thread: OpenMP pools (LightGBM, scikit-learn's
histogram boosting) on a shared or oversubscribed machine (``pytest -n``) can be 100 times slower
than one thread on small data."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadpoolctl import threadpool_limits


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    with threadpool_limits(limits=1):
        yield
