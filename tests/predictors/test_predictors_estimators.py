"""What each predictor promises: rankers rank, oracles err as told, Seer's estimate is a maximum."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from schedlab.datasets.rollout import rollout_batch
from schedlab.predictors import (
    LIGHTGBM_MAX_QUERY_ROWS,
    PREDICTORS,
    GroupContextEstimator,
    HistoryPercentile,
    LengthBucketClassifier,
    LengthRanker,
    LengthRegressor,
    NoisyOracle,
    evaluate,
    group_context_estimate,
    kendall_tau,
    length_features,
    make_predictor,
    top_alpha_recall,
)


def _rollout(n_prompts: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A rollout batch's features plus an informative one: a noisy reading of the prompt's
    difficulty (its group's mean log length, error sd 0.5), as a prompt classifier would give."""
    w = rollout_batch(n_prompts=n_prompts, samples_per_prompt=4, seed=seed)
    X, _ = length_features(w, columns=["input_tokens", "log_input_tokens", "group_size"])
    y = w.output_tokens.astype(float)
    g = w.group_id
    assert g is not None
    rng = np.random.default_rng(seed + 100)
    difficulty = (np.bincount(g, np.log(y)) / np.bincount(g) + rng.normal(0, 0.5, n_prompts))[g]
    return np.c_[X, difficulty], y, g


@pytest.fixture(scope="module")
def rollout_data() -> dict[str, np.ndarray]:
    X, y, g = _rollout(1500, seed=0)
    Xt, yt, gt = _rollout(500, seed=1)
    return {"X": X, "y": y, "g": g, "Xt": Xt, "yt": yt, "gt": gt}


# --------------------------------------------------------------------------- ranker
def test_ranker_recalls_the_long_tail_well_above_random(rollout_data) -> None:
    d = rollout_data
    rk = LengthRanker(n_estimators=50).fit(d["X"], d["y"])
    score = rk.predict(d["Xt"])
    recall = top_alpha_recall(d["yt"], score, alpha=0.2)
    assert recall > 0.6  # random: 0.2; the informative feature alone: about 0.8
    assert kendall_tau(d["yt"], score) > 0.5
    # without the informative feature there is nothing to learn: prompts carry no signal here
    blind = LengthRanker(n_estimators=50).fit(d["X"][:, :3], d["y"])
    assert top_alpha_recall(d["yt"], blind.predict(d["Xt"][:, :3])) < 0.35


def test_ranker_query_ids_and_chunks(rollout_data) -> None:
    d = rollout_data
    batch = np.arange(d["y"].size) // 1000  # rollout batches of 1,000 requests as queries
    rk = LengthRanker(n_estimators=20, max_query_size=300).fit(d["X"], d["y"], group=batch)
    assert rk.n_queries_ == 6 * 4  # 6,000 rows: six batches of 1,000, each dealt into 4 chunks
    assert top_alpha_recall(d["yt"], rk.predict(d["Xt"])) > 0.6
    one = LengthRanker(n_estimators=20, max_query_size=300).fit(d["X"], d["y"])
    assert one.n_queries_ == 20  # ceil(6,000 / 300)


def test_ranker_group_must_be_per_row_ids(rollout_data) -> None:
    d = rollout_data
    with pytest.raises(ValueError, match=r"'group' parameter .* one query id per row .* not "
                                         "LightGBM's list of query sizes"):
        LengthRanker().fit(d["X"], d["y"], group=[3000, 3000])


def test_ranker_splits_queries_above_lightgbms_limit() -> None:
    rng = np.random.default_rng(0)
    n = LIGHTGBM_MAX_QUERY_ROWS + 2000
    X = rng.uniform(size=(n, 2))
    y = np.round(50 * np.exp(2 * X[:, 0]))
    rk = LengthRanker(n_estimators=3, max_query_size=LIGHTGBM_MAX_QUERY_ROWS,
                      lambdarank_truncation_level=8).fit(X, y)
    assert rk.n_queries_ == 2
    with pytest.raises(ValueError, match=r"'max_query_size' parameter of LengthRanker .* 10000"):
        LengthRanker(max_query_size=LIGHTGBM_MAX_QUERY_ROWS + 1).fit(X, y)


def test_ranker_parameters_are_checked() -> None:
    X, y = np.ones((4, 1)), np.arange(4.0)
    with pytest.raises(ValueError, match=r"'n_levels' parameter of LengthRanker"):
        LengthRanker(n_levels=1).fit(X, y)
    with pytest.raises(ValueError, match=r"'n_levels' .* <= 31 unless label_gain"):
        LengthRanker(n_levels=40).fit(X, y)
    LengthRanker(n_levels=40, label_gain=list(range(40)), n_estimators=2).fit(X, y)


def test_relevance_levels_are_query_quantiles() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(1, 50, 997).astype(float)
    q = rng.integers(0, 3, y.size)
    lev = LengthRanker(n_levels=5).relevance(y, group=q)
    for k in range(3):
        yk, lk = y[q == k], lev[q == k]
        assert lk.min() == 0 and lk.max() == 4
        order = np.argsort(yk)
        assert np.all(np.diff(lk[order]) >= 0)  # monotone in length
        for v in np.unique(yk):  # equal lengths share a level
            assert np.unique(lk[yk == v]).size == 1
        shorter = np.array([(yk < v).sum() for v in yk])
        assert np.array_equal(lk, 5 * shorter // yk.size)


# --------------------------------------------------------------------------- regressor, buckets
@pytest.mark.parametrize("backend", ["lightgbm", "hist-gradient-boosting", "linear"])
def test_regressor_learns_the_informative_feature(rollout_data, backend) -> None:
    d = rollout_data
    reg = LengthRegressor(backend=backend).fit(d["X"], d["y"])
    pred = reg.predict(d["Xt"])
    assert pred.min() >= 0
    r = evaluate(d["yt"], pred)
    assert r["kendall_tau"] > 0.5 and r["top_alpha_recall"] > 0.6
    # the log target predicts near the conditional median, below the heavy-tailed mean
    assert np.median(pred) < np.mean(d["yt"])


def test_regressor_without_log_target_and_clipping() -> None:
    X = np.arange(50.0)[:, None]
    reg = LengthRegressor(backend="linear", log_target=False).fit(X, 2 * X[:, 0])
    np.testing.assert_allclose(reg.predict([[10.0], [-30.0]]), [20.0, 0.0], atol=0.01)


def test_bucket_classifier(rollout_data) -> None:
    d = rollout_data
    edges = (1024, 2048, 4096)
    clf = LengthBucketClassifier(edges=edges).fit(d["X"], d["y"])
    true_bucket = clf.buckets(d["y"])
    assert clf.classes_.tolist() == [0, 1, 2, 3]
    for k in range(4):
        assert clf.bucket_median_[k] == np.median(d["y"][true_bucket == k])
    proba = clf.predict_proba(d["Xt"])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(clf.predict(d["Xt"]))) <= {0, 1, 2, 3}
    assert set(np.unique(clf.predict_length(d["Xt"]))) <= set(clf.bucket_median_)
    assert clf.score(d["Xt"], d["yt"]) > 0.4  # four buckets: 0.25 by chance at best-balanced
    assert kendall_tau(d["yt"], clf.predict(d["Xt"])) > 0.4


def test_bucket_classifier_edges_are_checked() -> None:
    for edges in [(), (10, 10), (20, 10), (0, 5), (1, np.nan)]:
        with pytest.raises(ValueError, match=r"'edges' parameter of LengthBucketClassifier"):
            LengthBucketClassifier(edges=edges).fit(np.ones((3, 1)), [1, 2, 3])


def test_bucket_classifier_with_one_bucket_predicts_it() -> None:
    clf = LengthBucketClassifier(edges=(100,)).fit(np.arange(6.0)[:, None], [1, 2, 3, 4, 5, 6])
    assert clf.predict([[0.0], [9.0]]).tolist() == [0, 0]
    assert clf.predict_length([[0.0]]).tolist() == [3.5]


# --------------------------------------------------------------------------- history
def test_history_percentile_streamrl_proxies() -> None:
    y = np.random.default_rng(0).lognormal(6, 1, 5000)
    X = np.zeros((y.size, 1))
    p90 = HistoryPercentile(q=90).fit(X, y).predict(X[:3])
    p50 = HistoryPercentile(q=50).fit(X, y).predict(X[:3])
    np.testing.assert_allclose(p90, np.percentile(y, 90))
    np.testing.assert_allclose(p50, np.median(y))


def test_history_percentile_by_key_matches_numpy_and_falls_back() -> None:
    rng = np.random.default_rng(1)
    key = rng.integers(0, 6, 3000).astype(float)
    y = rng.lognormal(4 + key / 2, 0.5)
    X = np.c_[rng.uniform(size=key.size), key]
    hp = HistoryPercentile(q=75, by=1, min_samples=1).fit(X, y)
    for k in range(6):
        assert hp.predict([[0.0, k]])[0] == pytest.approx(np.percentile(y[key == k], 75))
    assert hp.predict([[0.0, 99.0]])[0] == pytest.approx(np.percentile(y, 75))
    rare = HistoryPercentile(q=75, by=1, min_samples=10**6).fit(X, y)
    assert rare.predict([[0.0, 2.0]])[0] == pytest.approx(np.percentile(y, 75))


@pytest.mark.parametrize(("params", "name"), [({"q": 101}, "q"), ({"q": -1}, "q"),
                                              ({"by": 5}, "by"), ({"min_samples": 0},
                                                                  "min_samples")])
def test_history_percentile_parameters_are_named(params, name) -> None:
    with pytest.raises(ValueError, match=f"'{name}' parameter of HistoryPercentile"):
        HistoryPercentile(**params).fit(np.ones((3, 2)), [1, 2, 3])


# --------------------------------------------------------------------------- group context
def test_group_context_is_the_longest_finished_sibling() -> None:
    rng = np.random.default_rng(0)
    w = rollout_batch(n_prompts=40, samples_per_prompt=8, seed=2, max_tokens=8192)
    assert w.group_id is not None
    lengths = w.output_tokens.astype(float)
    done = np.zeros(len(w), bool)
    previous = np.full(len(w), 8192.0)
    for i in rng.permutation(len(w)):  # requests finish one by one, in random order
        done[i] = True
        est = group_context_estimate(w.group_id, done, np.where(done, lengths, np.nan), 8192)
        g = w.group_id == w.group_id[i]
        assert est[g][0] == lengths[g & done].max()
        assert est[g].min() >= lengths[g & done].max()
        untouched = ~g
        assert np.array_equal(est[untouched], previous[untouched])
        if done[g].sum() > 1:
            assert est[g][0] >= previous[g][0]  # grows once a sibling has finished
        previous = est
    assert np.array_equal(previous, np.maximum.reduceat(lengths, np.arange(0, len(w), 8))
                          .repeat(8))


def test_group_context_estimator_matches_the_function() -> None:
    gid = np.array([0, 0, 1, 1, 2, 3])
    done = np.array([True, False, True, True, False, True])
    lengths = np.array([50.0, 0.0, 70.0, 20.0, 0.0, 1000.0])
    want = group_context_estimate(gid, done, lengths, 4096)
    est = GroupContextEstimator(max_tokens=4096).fit(gid[done, None], lengths[done])
    np.testing.assert_array_equal(est.predict(gid[:, None]), want)
    half = GroupContextEstimator(max_tokens=4096).partial_fit(gid[:2, None][done[:2]],
                                                              lengths[:2][done[:2]])
    half.partial_fit(gid[2:, None][done[2:]], lengths[2:][done[2:]])
    np.testing.assert_array_equal(half.predict(gid[:, None]), want)


def test_group_context_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"'lengths' parameter .* finished .* element 1"):
        group_context_estimate([0, 0], [True, True], [5, np.nan], 100)
    with pytest.raises(ValueError, match=r"'lengths' parameter .* element 0 is -3"):
        group_context_estimate([0, 0], [True, False], [-3, 1], 100)
    with pytest.raises(ValueError, match=r"'finished' parameter .* bool array of shape"):
        group_context_estimate([0, 0], [1, 0], [5, 5], 100)
    with pytest.raises(ValueError, match=r"'max_tokens' parameter of group_context_estimate"):
        group_context_estimate([0, 0], [True, False], [5, 5], 0)
    with pytest.raises(ValueError, match=r"'y' parameter of GroupContextEstimator.fit .* <= 100"):
        GroupContextEstimator(max_tokens=100).fit([[0], [1]], [50, 200])


# --------------------------------------------------------------------------- noisy oracle
def test_noisy_oracle_sigma_zero_is_exact_and_noise_is_seeded() -> None:
    y = np.random.default_rng(0).lognormal(5, 1, 1000)
    X = np.c_[np.ones(y.size), y]
    exact = NoisyOracle(sigma=0.0, truth_column=1).fit(X).predict(X)
    assert np.array_equal(exact, y)
    a = NoisyOracle(sigma=0.3, truth_column=1, random_state=7).fit(X)
    b = NoisyOracle(sigma=0.3, truth_column=1, random_state=7).fit(X)
    assert np.array_equal(a.predict(X), b.predict(X)) and np.array_equal(a.predict(X),
                                                                         a.predict(X))
    c = NoisyOracle(sigma=0.3, truth_column=1, random_state=8).fit(X)
    assert not np.array_equal(a.predict(X), c.predict(X))


def test_noisy_oracle_error_grows_with_sigma_as_documented() -> None:
    # not seed 0: the oracle's own noise is seed 0, and the same draws would keep the order
    y = np.random.default_rng(123).lognormal(5, 1, 50_000)
    X = y[:, None]
    rel, tau, recall = [], [], []
    for sigma in (0.0, 0.1, 0.25, 0.5, 1.0, 2.0):
        pred = NoisyOracle(sigma=sigma).fit(X).predict(X)
        rel.append(np.mean(np.abs(pred / y - 1)))
        r = evaluate(y, pred)
        tau.append(r["kendall_tau"])
        recall.append(r["top_alpha_recall"])
        want = NoisyOracle.expected_relative_error(sigma)
        assert rel[-1] == pytest.approx(want, rel=0.05, abs=1e-12)
        assert np.median(np.log(pred / y) ** 2) ** 0.5 == pytest.approx(0.674 * sigma,
                                                                        rel=0.05, abs=1e-12)
    assert rel[0] == 0 and tau[0] == pytest.approx(1.0) and recall[0] == 1.0
    assert np.all(np.diff(rel) > 0) and np.all(np.diff(tau) < 0) and np.all(np.diff(recall) < 0)


def test_noisy_oracle_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"'sigma' parameter of NoisyOracle"):
        NoisyOracle(sigma=-0.1).fit([[1.0]])
    with pytest.raises(ValueError, match=r"'truth_column' parameter of NoisyOracle"):
        NoisyOracle(truth_column=2).fit([[1.0, 2.0]])
    with pytest.raises(ValueError, match=r"X\[:, 0\] \(the 'truth_column'\) .* row 1 is -5"):
        NoisyOracle().fit([[1.0], [-5.0]])
    fitted = NoisyOracle().fit([[1.0]])
    with pytest.raises(ValueError, match=r"Negative values in data passed to NoisyOracle.predict"):
        fitted.predict([[-1.0]])
    assert math.isclose(NoisyOracle.expected_relative_error(1.0),
                        math.exp(0.5) * math.erf(1 / math.sqrt(2)))


# --------------------------------------------------------------------------- registry
@pytest.mark.parametrize("name", sorted(PREDICTORS))
def test_make_predictor_by_name(name) -> None:
    est = make_predictor(name)
    assert type(est) is PREDICTORS[name]
    assert est.get_params() == PREDICTORS[name]().get_params()


def test_make_predictor_errors_list_close_matches() -> None:
    with pytest.raises(ValueError, match=r"Unknown predictor 'rankr'. Close matches: 'ranker'.*"
                                         "Known: 'bucket-classifier'"):
        make_predictor("rankr")
    with pytest.raises(ValueError, match=r"Unknown 'history-percentile' parameter 'qq'.*'q'"):
        make_predictor("history-percentile", qq=50)
    assert make_predictor("ranker", num_leaves=7).get_params()["num_leaves"] == 7
    with pytest.raises(TypeError):
        PREDICTORS["mine"] = LengthRanker  # type: ignore[index]


def test_importing_the_predictors_loads_no_lightgbm() -> None:
    code = "import sys, schedlab.predictors; print('lightgbm' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
