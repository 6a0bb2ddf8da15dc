"""Feature matrices from workloads: columns, group statistics, category codes, selection."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from schedlab.datasets.rollout import rollout_batch
from schedlab.predictors import category_codes, length_features
from schedlab.records import Workload


def _workload(**features: object) -> Workload:
    return Workload(arrival_s=[0.0, 0.0, 1.0, 2.0], input_tokens=[100, 300, 50, 8],
                    output_tokens=[7, 9, 4, 1], features=features)


def test_plain_workload_has_input_columns_only() -> None:
    X, names = length_features(_workload())
    assert names == ["input_tokens", "log_input_tokens"]
    assert X.dtype == np.float64 and X.shape == (4, 2)
    assert X[:, 0].tolist() == [100, 300, 50, 8]
    np.testing.assert_allclose(X[:, 1], np.log1p([100, 300, 50, 8]))


def test_group_statistics_of_a_rollout_batch() -> None:
    w = rollout_batch(n_prompts=30, samples_per_prompt=4, seed=0)
    X, names = length_features(w)
    assert names == ["input_tokens", "log_input_tokens", "group_size", "group_mean_input",
                     "group_max_input", "feature.truncated"]
    col = dict(zip(names, X.T, strict=True))
    assert (col["group_size"] == 4).all()
    assert (col["group_mean_input"] == w.input_tokens).all()  # one prompt per group
    assert set(np.unique(col["feature.truncated"])) <= {0.0, 1.0}


def test_group_statistics_with_uneven_groups() -> None:
    w = Workload(arrival_s=np.zeros(5), input_tokens=[10, 20, 30, 5, 7], output_tokens=[1] * 5,
                 group_id=[4, 4, 4, 9, 2])
    X, _ = length_features(w, columns=["group_size", "group_mean_input", "group_max_input"])
    assert X.tolist() == [[3, 20, 30], [3, 20, 30], [3, 20, 30], [1, 5, 5], [1, 7, 7]]


def test_numeric_bool_and_string_feature_columns() -> None:
    w = _workload(prio=np.array([2, 1, 0, 1]), flag=np.array([True, False, True, False]),
                  task=np.array(["math", "code", "math", "chat"]),
                  tenant=np.array(["a", None, 3, "a"], dtype=object),
                  mixed=np.array([1, 2.5, 3, 4], dtype=object))
    X, names = length_features(w)
    col = dict(zip(names, X.T, strict=True))
    assert col["feature.prio"].tolist() == [2, 1, 0, 1]
    assert col["feature.flag"].tolist() == [1, 0, 1, 0]
    assert col["feature.mixed"].tolist() == [1, 2.5, 3, 4]
    task = col["feature.task"]
    assert task[0] == task[2] and len(set(task)) == 3
    assert (task == category_codes(["math", "code", "math", "chat"])).all()
    tenant = col["feature.tenant"]
    assert tenant[0] == tenant[3] and tenant[1] == category_codes(["None"])[0]


def test_category_codes_do_not_depend_on_the_other_rows_or_the_process() -> None:
    a = category_codes(["math", "code"])
    b = category_codes(["zeta", "code", "alpha", "math"])
    assert a[0] == b[3] and a[1] == b[1]
    assert category_codes([b"math"])[0] == a[0]  # bytes decode as UTF-8
    code = "from schedlab.predictors import category_codes; print(category_codes(['math'])[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert float(out.stdout) == a[0]  # unlike hash(), not salted per process


def test_columns_select_and_order() -> None:
    w = _workload(task=np.array(["a", "b", "a", "b"]))
    X, names = length_features(w, columns=["feature.task", "input_tokens"])
    assert names == ["feature.task", "input_tokens"] and X[:, 1].tolist() == [100, 300, 50, 8]
    assert length_features(w, columns=[])[0].shape == (4, 0)


def test_unknown_column_is_named_with_the_known_ones() -> None:
    w = _workload(task=np.array(["a", "b", "a", "b"]))
    with pytest.raises(ValueError, match=r"Unknown feature column 'feature\.tsak'\. Close "
                                         r"matches: 'feature\.task'.*Known: .*'input_tokens'"):
        length_features(w, columns=["feature.tsak"])
    with pytest.raises(ValueError, match=r"'columns' parameter .* sequence"):
        length_features(w, columns="input_tokens")  # type: ignore[arg-type]


def test_bad_feature_values_are_named() -> None:
    with pytest.raises(ValueError, match=r"feature column 'x' .* finite; element 1 is nan"):
        length_features(_workload(x=np.array([1.0, np.nan, 2.0, 3.0])))
    with pytest.raises(ValueError, match=r"feature column 'when' .* dtype datetime64"):
        length_features(_workload(when=np.array(["2024-01-01"] * 4, dtype="datetime64[D]")))
    with pytest.raises(ValueError, match=r"'workload' parameter of length_features"):
        length_features({"input_tokens": [1]})  # type: ignore[arg-type]


def test_features_never_use_the_target() -> None:
    w = _workload()
    X1, _ = length_features(w)
    X2, _ = length_features(w.replace(output_tokens=[1000, 1, 50, 3]))
    assert np.array_equal(X1, X2)
