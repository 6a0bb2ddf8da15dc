from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.errors import check_positive_int, unknown_name_error
from schedlab.records import PrefixBlocks, Workload


def small_workload(**kw):
    base = dict(
        arrival_s=[0.0, 0.5, 0.5, 2.0], input_tokens=[10, 20, 30, 40], output_tokens=[1, 2, 3, 4]
    )
    base.update(kw)
    return Workload(**base)


def test_columns_are_read_only_copies():
    src = np.array([5, 6])
    w = Workload(arrival_s=[0, 1], input_tokens=src, output_tokens=[1, 1])
    src[0] = 99
    assert w.input_tokens.tolist() == [5, 6]
    with pytest.raises(ValueError, match="read-only"):
        w.arrival_s[0] = 3.0


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("input_tokens", [10, -1, 3, 4], "'input_tokens'.*>= 1; element 1"),
        ("output_tokens", [1, 2, 0, 4], "'output_tokens'.*>= 1; element 2"),
        ("input_tokens", [10, 2.5, 3, 4], "'input_tokens'.*integers; element 1"),
        ("arrival_s", [0.0, math.nan, 1.0, 2.0], "'arrival_s'.*finite; element 1"),
        ("arrival_s", [0.0, 2.0, 1.0, 3.0], "'arrival_s'.*non-decreasing; element 2"),
        ("output_tokens", [1, 2, 3], "'output_tokens'.*length 4"),
    ],
)
def test_bad_columns_name_field_and_element(field, value, message):
    with pytest.raises(ValueError, match=message):
        small_workload(**{field: value})


def test_duplicate_request_ids_rejected():
    with pytest.raises(ValueError, match="unique"):
        small_workload(request_id=[1, 1, 2, 3])


def test_sorted_by_arrival_sorts_every_column_stably():
    w = Workload.sorted_by_arrival(
        arrival_s=[2.0, 0.0, 1.0, 0.0],
        input_tokens=[1, 2, 3, 4],
        output_tokens=[5, 6, 7, 8],
        prefix_block_ids=[[1], [2, 3], [], [4]],
        features={"lang": np.array(["a", "b", "c", "d"])},
    )
    assert w.arrival_s.tolist() == [0.0, 0.0, 1.0, 2.0]
    assert w.input_tokens.tolist() == [2, 4, 3, 1]
    assert w.request_id.tolist() == [0, 1, 2, 3]
    assert [w.prefix_block_ids[i].tolist() for i in range(4)] == [[2, 3], [4], [], [1]]
    assert w.features["lang"].tolist() == ["b", "d", "c", "a"]


def test_take_keeps_all_columns():
    w = small_workload(group_id=[0, 0, 1, 1], slo_ttft_s=[1, 1, 2, 2],
                       prefix_block_ids=[[1, 2], [3], [], [4, 5, 6]])
    sub = w.take(np.array([3, 1]))
    assert sub.request_id.tolist() == [1, 3]
    assert sub.group_id.tolist() == [0, 1]
    assert sub.prefix_block_ids[1].tolist() == [4, 5, 6]
    assert w.head(2).input_tokens.tolist() == [10, 20]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(0, 1e6, allow_nan=False),
            st.integers(1, 10**6),
            st.integers(1, 10**5),
            st.lists(st.integers(0, 10**9), max_size=5),
        ),
        max_size=30,
    )
)
def test_pandas_round_trip(rows):
    rows = sorted(rows, key=lambda r: r[0])
    w = Workload(
        arrival_s=[r[0] for r in rows],
        input_tokens=[r[1] for r in rows],
        output_tokens=[r[2] for r in rows],
        prefix_block_ids=[r[3] for r in rows],
        group_id=[i // 2 for i in range(len(rows))],
        block_tokens=256,
        name="rt",
    )
    back = Workload.from_pandas(w.to_pandas())
    for col in ("arrival_s", "input_tokens", "output_tokens", "request_id", "group_id"):
        assert np.array_equal(getattr(back, col), getattr(w, col))
    assert np.array_equal(back.prefix_block_ids.ids, w.prefix_block_ids.ids)
    assert np.array_equal(back.prefix_block_ids.offsets, w.prefix_block_ids.offsets)
    assert back.block_tokens == 256 and back.name == "rt"


def test_prefix_blocks_must_be_csr():
    with pytest.raises(ValueError, match="CSR"):
        PrefixBlocks(ids=np.array([1, 2]), offsets=np.array([0, 3]))


def test_from_pandas_names_missing_columns():
    import pandas as pd

    with pytest.raises(ValueError, match="output_tokens"):
        Workload.from_pandas(pd.DataFrame({"arrival_s": [0.0], "input_tokens": [3]}))


def test_error_helpers():
    with pytest.raises(ValueError, match=r"'tp' parameter of build must be an int in \[1, inf\)"):
        check_positive_int(True, "tp", "build")
    err = unknown_name_error("model", "lama-2-7b", ["llama-2-7b", "opt-13b"])
    assert "Close matches: 'llama-2-7b'" in str(err)


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint16])
def test_integer_arrays_take_the_fast_path_with_the_same_errors(dtype):
    ok = np.array([10, 20, 30, 40], dtype=dtype)
    w = small_workload(input_tokens=ok)
    assert w.input_tokens.dtype == np.int64 and w.input_tokens.tolist() == [10, 20, 30, 40]
    assert not w.input_tokens.flags.writeable and not np.shares_memory(w.input_tokens, ok)
    bad = np.array([10, 0, 30, 40], dtype=dtype)
    for column in (bad, bad.astype(np.float64), bad.tolist()):
        with pytest.raises(ValueError, match=r"'input_tokens'.*>= 1; element 1 is 0\.0\.$"):
            small_workload(input_tokens=column)
    if np.dtype(dtype).kind == "i":
        with pytest.raises(ValueError, match=r"'output_tokens'.*>= 1; element 2 is -3\.0\.$"):
            small_workload(output_tokens=np.array([1, 2, -3, 4], dtype=dtype))
    with pytest.raises(ValueError, match=r"'input_tokens'.*length 4"):
        small_workload(input_tokens=ok[:3])


@pytest.mark.parametrize("value", [1e19, np.uint64(2**63 + 5)])
def test_token_counts_beyond_int64_are_rejected_not_wrapped(value):
    column = np.array([10, value, 30, 40], dtype=np.asarray(value).dtype)
    with pytest.raises(ValueError, match=r"'input_tokens'.*must be <= 2,147,483,647; element 1"):
        small_workload(input_tokens=column)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda w: w.head(-1), r"'n' parameter of Workload.head must be an int in \[0, inf\)"),
        (lambda w: w.head("2"), r"'n' parameter of Workload.head"),
        (lambda w: w.replace(arrival=[0.0] * 4), r"unknown fields \['arrival'\]"),
        (lambda w: w.replace(block_tokens=1.5), r"'block_tokens' parameter of Workload"),
        (lambda w: w.replace(block_tokens="a"), r"'block_tokens' parameter of Workload"),
        (lambda w: Workload.sorted_by_arrival(input_tokens=[1], output_tokens=[1]), "'arrival_s'"),
    ],
)
def test_bad_arguments_of_workload_methods_name_the_parameter(call, message):
    with pytest.raises(ValueError, match=message):
        call(small_workload())


def test_head_and_replace_keep_their_meaning():
    w = small_workload(block_tokens=np.int64(16))
    assert w.block_tokens == 16 and type(w.block_tokens) is int
    assert len(w.head(0)) == 0 and len(w.head(99)) == 4
    assert w.replace(name="x").name == "x" and w.name == "workload"


@pytest.mark.parametrize(
    ("field", "value", "shown"),
    [
        ("output_tokens", 10**18, "must be <= 2,147,483,647; element 0 is 1e+18"),
        ("input_tokens", 2**63, "must be <= 2,147,483,647"),
        ("output_tokens", 1e30, "must be <= 2,147,483,647; element 0 is 1e+30"),
        ("arrival_s", 1e300, "must be <= 10,000,000,000; element 0 is 1e+300"),
    ],
)
def test_counts_and_times_beyond_the_documented_bounds_are_refused(field, value, shown):
    from schedlab.records import MAX_TIME_S, MAX_TOKENS

    cols = {"arrival_s": [0.0], "input_tokens": [100], "output_tokens": [5]}
    cols[field] = [value]
    with pytest.raises(ValueError, match=re.escape(f"'{field}' parameter of Workload {shown}")):
        Workload(**cols)
    cols[field] = [MAX_TIME_S if field == "arrival_s" else MAX_TOKENS]  # the bounds themselves
    assert len(Workload(**cols)) == 1
    big = np.array([MAX_TOKENS + 1], dtype=np.int64)  # the integer fast path checks too
    with pytest.raises(ValueError, match="must be <= 2,147,483,647"):
        Workload(arrival_s=[0.0], input_tokens=big, output_tokens=[1])
