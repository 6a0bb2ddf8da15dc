"""scikit-learn's own estimator checks on every predictor, and its error contract."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from schedlab.predictors import (
    GroupContextEstimator,
    HistoryPercentile,
    LengthBucketClassifier,
    LengthRanker,
    LengthRegressor,
    NoisyOracle,
)

ESTIMATORS = [
    LengthRegressor(),
    LengthRegressor(backend="hist-gradient-boosting", max_iter=5),
    LengthRegressor(backend="linear", log_target=False),
    LengthBucketClassifier(),
    # edges inside the small targets sklearn's checks use, so that several buckets are learned
    LengthBucketClassifier(edges=(2, 3, 4), backend="hist-gradient-boosting", max_iter=5),
    LengthRanker(n_estimators=20),
    HistoryPercentile(),
    HistoryPercentile(q=50, by=0),
    GroupContextEstimator(),
    NoisyOracle(),
]

#: Checks NoisyOracle fails on purpose, with the reason.
NOISY_ORACLE_EXPECTED = {
    "check_methods_subset_invariance": (
        "the noise of row i is the i-th draw of the seeded generator: a subset of rows draws "
        "other noise (documented; predict once for the whole workload)"
    ),
    "check_methods_sample_order_invariance": (
        "the noise is positional (the i-th draw for row i), so reordering rows reorders noise"
    ),
    "check_positive_only_tag_during_fit": (
        "only the truth column must be >= 0 (it holds lengths); the check makes other columns "
        "negative and leaves the truth column positive"
    ),
}


def _expected_failed_checks(estimator: object) -> dict[str, str]:
    return NOISY_ORACLE_EXPECTED if isinstance(estimator, NoisyOracle) else {}


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check) -> None:
    check(estimator)


def _data(n: int = 60, p: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.uniform(1, 10, size=(n, p))
    return X, np.round(20 * X[:, 0] + rng.uniform(0, 5, n))


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_not_fitted_raises_sklearns_error(estimator) -> None:
    X, _ = _data()
    with pytest.raises(NotFittedError):
        clone(estimator).predict(X)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=repr)
def test_wrong_feature_count_raises_sklearns_error(estimator) -> None:
    X, y = _data()
    fitted = clone(estimator).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 2 features, but .* is expecting 3 features"):
        fitted.predict(X[:, :2])


@pytest.mark.parametrize("estimator", [e for e in ESTIMATORS if not isinstance(e, NoisyOracle)],
                         ids=repr)
@pytest.mark.parametrize("bad", [-1.0, np.nan])
def test_bad_lengths_name_y(estimator, bad) -> None:
    X, y = _data()
    y = y.copy()
    y[3] = bad
    with pytest.raises(ValueError, match=r"\by\b"):
        clone(estimator).fit(X, y)


def test_backend_params_survive_clone_and_set_params() -> None:
    r = LengthRegressor(n_estimators=7, num_leaves=5)
    assert r.get_params()["n_estimators"] == 7
    c = clone(r).set_params(num_leaves=9, log_target=False)
    assert c.get_params()["num_leaves"] == 9 and c.log_target is False
    assert r.get_params()["num_leaves"] == 5
    X, y = _data()
    assert c.fit(X, y).estimator_.get_params()["num_leaves"] == 9


def test_unknown_backend_or_backend_parameter_is_named() -> None:
    X, y = _data()
    with pytest.raises(ValueError, match=r"Unknown LengthRegressor backend 'lightgbn'.*'lightgbm'"):
        LengthRegressor(backend="lightgbn").fit(X, y)
    with pytest.raises(ValueError, match=r"hist-gradient-boosting.*max_itre"):
        LengthRegressor(backend="hist-gradient-boosting", max_itre=3).fit(X, y)
