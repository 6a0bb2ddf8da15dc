"""QueueColumns keeps slot order through appends and removals from either side (the removal
moves the shorter side and advances the start offset)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab.contract import KV_GPU, KV_HOST
from schedlab.sim.state import KV, TARGET, QueueColumns, RequestTable


def _table(n: int) -> RequestTable:
    rng = np.random.default_rng(n)
    return RequestTable.empty(
        np.sort(rng.random(n)), rng.integers(1, 50, n), rng.integers(1, 20, n), rng.random(n) * 9
    )


def _snapshot(q: QueueColumns) -> dict[str, np.ndarray]:
    n = q.n
    return {"I": q.I[:, :n].copy(), "F": q.F[:, :n].copy(), "rid": q.rid[:n].copy(),
            "loc": q.loc[:n].copy(), "running": q.running[:n].copy()}


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(1, 300),
    data=st.data(),
)
def test_remove_keeps_order_and_counts_kv(n: int, data: st.DataObject) -> None:
    t = _table(400)
    q = QueueColumns(capacity=8)
    first = data.draw(st.integers(0, 100))  # some removed before: a nonzero start offset
    q.append(np.arange(first + n), t, np.zeros(400))
    q.remove(np.arange(first))
    assert q.n == n
    q.kv[:n] = np.arange(n) + 1
    q.loc[:n] = np.arange(n) % 3
    q.running[:n] = np.arange(n) % 2 == 0
    gone = np.array(sorted(data.draw(st.sets(st.integers(0, n - 1), max_size=n))), np.int64)
    before = _snapshot(q)
    expect_gpu = int(before["I"][KV, gone][before["loc"][gone] == KV_GPU].sum())
    expect_host = int(before["I"][KV, gone][before["loc"][gone] == KV_HOST].sum())
    expect_out = q.outstanding(gone) if gone.shape[0] else 0.0
    shuffled = np.array(data.draw(st.permutations(gone.tolist())), dtype=np.int64)
    gpu, host, out = q.remove(shuffled, track=True)
    after = _snapshot(q)
    assert (gpu, host) == (expect_gpu, expect_host)
    assert out == pytest.approx(expect_out, rel=1e-12)  # summed in another order
    assert q.n == n - gone.shape[0]
    for name, a in before.items():
        np.testing.assert_array_equal(after[name], np.delete(a, gone, axis=-1), err_msg=name)
    # appending after a removal still writes fresh slots at the end
    q.append(np.array([399]), t, np.zeros(400))
    assert q.rid[q.n - 1] == 399 and q.I[TARGET, q.n - 1] == t.input[399]


def test_removing_the_oldest_of_a_long_queue_advances_the_start() -> None:
    t = _table(400)
    q = QueueColumns()
    q.append(np.arange(300), t, np.zeros(400))
    q.remove(np.array([3, 0]))
    assert q.start == 2 and q.n == 298
    assert q.rid[:4].tolist() == [1, 2, 4, 5]
    q.remove(np.array([297]))  # at the back: the slots after it move instead
    assert q.start == 2 and q.rid[q.n - 1] == 298
