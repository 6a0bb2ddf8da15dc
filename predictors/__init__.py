"""Output-length predictors: scikit-learn estimators, features and metrics.

Build features from a :class:`~schedlab.records.Workload` (:func:`length_features`), fit an
estimator (:class:`LengthRegressor`, :class:`LengthBucketClassifier`, :class:`LengthRanker`,
:class:`HistoryPercentile`, :class:`GroupContextEstimator`, :class:`NoisyOracle`, or any by
name with :func:`make_predictor`), and judge it (:func:`evaluate`: MAE, Kendall's tau, recall of
the longest ``alpha`` fraction). Policies take the predictions as plain arrays, never a model.
Importing this package loads scikit-learn's base classes; LightGBM loads on its first fit.

Example
-------
>>> import numpy as np
>>> from schedlab.datasets.rollout import rollout_batch
>>> from schedlab.predictors import NoisyOracle, evaluate, length_features, make_predictor
>>> w = rollout_batch(n_prompts=50, samples_per_prompt=4, seed=0)
>>> X, names = length_features(w)
>>> names[:3]
['input_tokens', 'log_input_tokens', 'group_size']
>>> p90 = make_predictor("history-percentile", q=90).fit(X, w.output_tokens).predict(X)
>>> bool(np.all(p90 == np.percentile(w.output_tokens, 90)))
True
>>> truth = w.output_tokens[:, None].astype(float)
>>> pred = NoisyOracle(sigma=0.0).fit(truth).predict(truth)
>>> r = evaluate(w.output_tokens, pred)
>>> r["kendall_tau"], r["top_alpha_recall"], r["mae"]
(1.0, 1.0, 0.0)
"""

from schedlab.predictors.estimators import (
    LIGHTGBM_MAX_QUERY_ROWS,
    PREDICTORS,
    GroupContextEstimator,
    HistoryPercentile,
    LengthBucketClassifier,
    LengthRanker,
    LengthRegressor,
    NoisyOracle,
    group_context_estimate,
    make_predictor,
)
from schedlab.predictors.features import category_codes, length_features
from schedlab.predictors.metrics import evaluate, kendall_tau, mae, top_alpha_recall, top_count

__all__ = [
    "length_features",
    "category_codes",
    "LengthRegressor",
    "LengthBucketClassifier",
    "LengthRanker",
    "HistoryPercentile",
    "GroupContextEstimator",
    "NoisyOracle",
    "group_context_estimate",
    "PREDICTORS",
    "make_predictor",
    "LIGHTGBM_MAX_QUERY_ROWS",
    "mae",
    "kendall_tau",
    "top_alpha_recall",
    "top_count",
    "evaluate",
]
