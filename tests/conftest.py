"""Shared fixtures. ``shared_dir`` is ``../shared`` beside the checkout; tests that need it skip
cleanly where it is absent (a user's clone). Predictor tests run their numeric libraries on one
thread: OpenMP pools (LightGBM, scikit-learn's histogram boosting) on a shared or oversubscribed
machine (``pytest -n``) can be 100 times slower than one thread on small data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is not present beside the checkout")
    return SHARED


@pytest.fixture(autouse=True)
def _one_thread_for_predictors(request: pytest.FixtureRequest) -> Iterator[None]:
    if "predictors" not in Path(str(request.node.path)).parts:
        yield
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
