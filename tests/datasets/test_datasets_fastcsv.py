"""The byte parser for plain CSVs gives exactly what the pandas path gives, or steps aside."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedlab import datasets
from schedlab.datasets.fast_csv import Irregular, iter_fast_chunks
from schedlab.errors import DataFormatError

HEADER = ["TIMESTAMP", "ContextTokens", "GeneratedTokens"]
KINDS = {"TIMESTAMP": "datetime", "ContextTokens": "int", "GeneratedTokens": "int"}


def azure_text(
    times_ns, inp, out, *, digits: int, sep: str, final_newline: bool, eol: str = "\n"
) -> str:
    stamps = pd.to_datetime(np.asarray(times_ns, dtype=np.int64), unit="ns")
    lines = []
    for t, i, o in zip(stamps, inp, out, strict=True):
        s = t.strftime(f"%Y-%m-%d{sep}%H:%M:%S")
        if digits:
            s += "." + f"{t.microsecond * 1000 + t.nanosecond:09d}"[:digits]
        lines.append(f"{s},{i},{o}")
    return ",".join(HEADER) + eol + eol.join(lines) + (eol if final_newline else "")


@settings(max_examples=50, deadline=None)
@given(
    n=st.integers(1, 60),
    start=st.integers(0, 4_000_000_000 * 10**9),
    digits=st.integers(0, 9),
    sep=st.sampled_from([" ", "T"]),
    final_newline=st.booleans(),
    eol=st.sampled_from(["\n", "\r\n"]),
    block=st.integers(30, 400),
    seed=st.integers(0, 2**31),
)
def test_byte_parser_matches_pandas(
    tmp_path_factory, n, start, digits, sep, final_newline, eol, block, seed
):
    rng = np.random.default_rng(seed)
    step = 10 ** (9 - digits)
    times = (start + np.cumsum(rng.integers(0, 5 * 10**9, n))) // step * step
    inp, out = rng.integers(1, 10**7, n), rng.integers(1, 10**4, n)
    p = tmp_path_factory.mktemp("fast") / "t.csv"
    text = azure_text(times, inp, out, digits=digits, sep=sep, final_newline=final_newline, eol=eol)
    p.write_bytes(text.encode())
    chunks = list(iter_fast_chunks(p, HEADER, KINDS, block_bytes=block))
    frame = {k: np.concatenate([c[k] for c, _ in chunks]) for k in KINDS}
    lines = np.concatenate([ln for _, ln in chunks])
    assert lines.tolist() == list(range(2, n + 2))
    assert frame["TIMESTAMP"].view(np.int64).tolist() == times.tolist()
    assert frame["ContextTokens"].tolist() == inp.tolist()
    fast, slow = datasets.load(p), datasets.load(p, engine="pandas")
    for col in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(fast, col), getattr(slow, col))


@pytest.mark.parametrize(
    "line",
    [
        '"2023-11-16 18:00:01.0000000",5,5',  # quotes
        "2023-11-16 18:00:01.0000000,5,5,5",  # extra field
        "2023-11-16 18:00:01.00000000,5,5",  # width differs from the other rows
        "2023-02-30 18:00:01.0000000,5,5",  # no such day
        "2023-11-16 18:00:01.0000000Z,5,5",  # time-zone suffix
        "2023-11-16 18:00:01.0000000,-5,5",  # sign
        "2023-11-16 18:00:01.0000000,5.0,5",  # decimal point
        "",  # blank line
    ],
)
def test_irregular_lines_step_aside(tmp_path, line):
    text = ",".join(HEADER) + "\n2023-11-16 18:00:00.0000000,5,5\n" + line + "\n"
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(Irregular):
        list(iter_fast_chunks(p, HEADER, KINDS))
    # the loader re-reads with pandas: identical outcome to engine="pandas"
    outcomes = []
    for engine in ("auto", "pandas"):
        try:
            w = datasets.load(p, engine=engine, on_error="raise")
            outcomes.append(("ok", w.input_tokens.tolist()))
        except DataFormatError as exc:
            outcomes.append(("error", exc.line, exc.field))
    assert outcomes[0] == outcomes[1]


def test_errors_found_by_the_byte_parser_path_name_the_line(tmp_path):
    rows = [f"2023-11-16 18:00:{s:02d}.5000000,{s + 1},{0 if s == 40 else 3}" for s in range(50)]
    p = tmp_path / "t.csv"
    p.write_text(",".join(HEADER) + "\n" + "\n".join(rows))
    for engine in ("auto", "pandas"):
        with pytest.raises(DataFormatError) as info:
            datasets.load(p, engine=engine)
        assert (info.value.line, info.value.field) == (42, "GeneratedTokens")


@pytest.mark.parametrize("name", ["azure-code-2023", "azure-conv-2023"])
def test_shipped_azure_traces_take_the_byte_parser(name):
    """The real files (CRLF line ends, no final newline) are regular: no fallback needed."""
    path = datasets.shipped_path(name)
    assert path.read_bytes().split(b"\n", 1)[0].endswith(b"\r")
    rows = sum(len(ln) for _, ln in iter_fast_chunks(path, HEADER, KINDS, block_bytes=100_000))
    assert rows == datasets.SHIPPED[name].rows
    fast, slow = datasets.load(name), datasets.load(name, engine="pandas")
    for col in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(fast, col), getattr(slow, col))


def test_mixed_line_ends_step_aside(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes(
        b"TIMESTAMP,ContextTokens,GeneratedTokens\r\n"
        b"2023-11-16 18:00:00.0000000,5,5\n2023-11-16 18:00:01.0000000,6,6\r\n"
    )
    with pytest.raises(Irregular):
        list(iter_fast_chunks(p, HEADER, KINDS))
    assert datasets.load(p).input_tokens.tolist() == [5, 6]


def test_loading_a_shipped_azure_trace_does_not_import_pandas():
    """The byte parser's columns go straight to the checks: a plain CSV needs no pandas."""
    import subprocess
    import sys

    code = (
        "import sys; from schedlab.datasets import load; w = load('azure-conv-2023'); "
        "print(len(w), 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["19366", "False"]
