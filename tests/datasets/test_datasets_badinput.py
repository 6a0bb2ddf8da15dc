"""Bad files fail with the file, the 1-based line (header = line 1) and the field; or, with
on_error="skip", the bad rows are left out and reported (count and lines), never silently."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

from schedlab import datasets
from schedlab.cli import main
from schedlab.datasets import SkippedRowsWarning
from schedlab.errors import DataFormatError

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def row(sec: float, inp: object = 100, out: object = 10) -> str:
    return f"2023-11-16 18:00:{sec:010.7f},{inp},{out}\n"


def write(tmp_path, text: str, name: str = "t.csv"):
    p = tmp_path / name
    p.write_text(text)
    return p


def good_rows(n: int, start: int = 0) -> list[str]:
    return [row(float(i)) for i in range(start, start + n)]


@pytest.mark.parametrize(
    "bad, field, message",
    [
        (row(5.0, 100, 10).rstrip("\n") + ",7\n", None, "expected 3 fields, saw 4"),
        ("\n", "TIMESTAMP", "missing value"),
        ("2023-11-16 18:00:05.0000000,100\n", "GeneratedTokens", "missing value"),
        (row(5.0, -4, 10), "ContextTokens", "negative token count -4"),
        (row(5.0, 100, 1.5), "GeneratedTokens", "not an integer: 1.5"),
        (row(5.0, "abc", 10), "ContextTokens", "not an integer: 'abc'"),
        (row(5.0, 100, 0), "GeneratedTokens", "token count 0"),
        ("yesterday,100,10\n", "TIMESTAMP", "cannot parse timestamp 'yesterday'"),
        (row(0.5), "TIMESTAMP", "timestamp goes backwards"),
    ],
)
def test_csv_errors_name_file_line_field(tmp_path, bad, field, message):
    # lines: 1 header, 2..6 good rows (times 0..4), 7 the bad row, 8.. more good rows
    lines = [HEADER, *good_rows(5), bad, *good_rows(3, start=6)]
    p = write(tmp_path, "".join(lines))
    for chunk_rows in (1_000_000, 2):  # same answer whatever the chunking
        with pytest.raises(DataFormatError) as info:
            datasets.load(p, chunk_rows=chunk_rows)
        err = info.value
        assert (err.path, err.line, err.field) == (str(p), 7, field)
        assert message in str(err) and str(p) in str(err) and "line 7" in str(err)
        assert isinstance(err, ValueError)


def test_skip_reports_count_and_lines(tmp_path):
    lines = [
        HEADER,
        *good_rows(3),
        row(3.0, -1, 5),
        "\n",
        *good_rows(2, start=4),
        row(6.0, 1, 2).rstrip("\n") + ",9\n",
        row(1.0),
        *good_rows(2, start=7),
    ]
    p = write(tmp_path, "".join(lines))
    # bad: line 5 (negative), 6 (blank), 9 (4 fields), 10 (time goes backwards)
    for chunk_rows in (1_000_000, 3):
        with pytest.warns(SkippedRowsWarning, match="4 bad rows skipped"):
            w = datasets.load(p, on_error="skip", chunk_rows=chunk_rows)
        assert len(w) == 7
        r = datasets.load_with_report(p, on_error="skip", chunk_rows=chunk_rows).report
        assert r.skipped_lines.tolist() == [5, 6, 9, 10]
        assert [(q.line, q.field) for q in r.problems] == [
            (5, "ContextTokens"),
            (6, "TIMESTAMP"),
            (9, None),
            (10, "TIMESTAMP"),
        ]
        assert r.rows_read == 11 and r.rows_loaded == 7 and r.n_skipped == 4
        assert np.allclose(w.arrival_s, [0, 1, 2, 4, 5, 7, 8])


def test_zero_tokens_clip_is_reported(tmp_path):
    p = write(tmp_path, HEADER + row(0.0, 100, 0) + row(1.0, 5, 3))
    with pytest.warns(SkippedRowsWarning, match="1 zero token counts read as 1"):
        w = datasets.load(p, zero_tokens="clip")
    assert w.output_tokens.tolist() == [1, 3]
    assert datasets.load_with_report(p, zero_tokens="clip").report.clipped_lines.tolist() == [2]


def test_sort_instead_of_error(tmp_path):
    p = write(tmp_path, HEADER + row(3.0, 30) + row(1.0, 10) + row(2.0, 20))
    with pytest.raises(DataFormatError, match="line 3"):
        datasets.load(p)
    w = datasets.load(p, sort=True)
    assert w.arrival_s.tolist() == [0.0, 1.0, 2.0]
    assert w.input_tokens.tolist() == [10, 20, 30]


def test_missing_column_names_header_line(tmp_path):
    p = write(tmp_path, "TIMESTAMP,ContextTokens,Generated\n" + row(0.0))
    with pytest.raises(DataFormatError) as info:
        datasets.load(p, format="azure")
    assert (info.value.line, info.value.field) == (1, "GeneratedTokens")
    with pytest.raises(DataFormatError, match="no known CSV format"):
        datasets.load(p)  # cannot infer either


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(FileNotFoundError):
        datasets.load(tmp_path / "nope.csv")
    p = write(tmp_path, HEADER + row(0.0))
    with pytest.raises(ValueError, match="Unknown format 'azur'"):
        datasets.load(p, format="azur")
    with pytest.raises(ValueError, match="on_error"):
        datasets.load(p, on_error="ignore")


def mooncake_line(ts: int, i: int = 600, o: int = 5, h: object = None) -> str:
    return (
        json.dumps(
            {
                "timestamp": ts,
                "input_length": i,
                "output_length": o,
                "hash_ids": [0, 1] if h is None else h,
            }
        )
        + "\n"
    )


@pytest.mark.parametrize(
    "bad, field, message",
    [
        ('{"timestamp": 5, "input_length": 3\n', None, "not valid JSON"),
        ("[1, 2, 3]\n", None, "not an object"),
        ('{"timestamp": 5, "output_length": 3, "hash_ids": []}\n', "input_length", "missing value"),
        (mooncake_line(5, i=-3), "input_length", "negative token count -3"),
        (mooncake_line(5, o="x"), "output_length", "not an integer: 'x'"),
        (mooncake_line(5, o=True), "output_length", "not an integer: True"),
        (mooncake_line(5, h=[1, -2]), "hash_ids", "list of non-negative integers"),
        (mooncake_line(5, h="abc"), "hash_ids", "list of non-negative integers"),
        (mooncake_line(1), "timestamp", "goes backwards"),
    ],
)
def test_jsonl_errors(tmp_path, bad, field, message):
    # JSONL has no header: line k is the k-th record; the bad record is line 4
    text = mooncake_line(0) + mooncake_line(2000) + mooncake_line(3000) + bad + mooncake_line(9000)
    p = write(tmp_path, text, "t.jsonl")
    with pytest.raises(DataFormatError) as info:
        datasets.load(p)
    assert (info.value.line, info.value.field) == (4, field)
    assert message in str(info.value)
    r = datasets.load_with_report(p, on_error="skip").report
    assert r.skipped_lines.tolist() == [4] and r.rows_loaded == 4


def test_gzip_jsonl(tmp_path):
    p = tmp_path / "t.jsonl.gz"
    with gzip.open(p, "wt") as f:
        f.write(mooncake_line(0) + mooncake_line(1500, h=[0, 7, 8]))
    w = datasets.load(p)
    assert w.arrival_s.tolist() == [0.0, 1.5]
    assert w.prefix_block_ids[1].tolist() == [0, 7, 8]


def test_cli_show_failure_exits_nonzero(tmp_path, capsys):
    p = write(tmp_path, HEADER + row(0.0) + row(1.0, -5))
    assert main(["datasets", "show", str(p)]) == 1
    err = capsys.readouterr().err
    assert "line 3" in err and "ContextTokens" in err and str(p) in err
    assert main(["datasets", "show", str(p), "--skip-bad", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == 1 and doc["load_report"]["skipped_lines"] == [3]


def test_cli_list_and_show_json(tmp_path, capsys):
    assert main(["datasets", "list", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {d["name"] for d in doc["datasets"]} == set(datasets.SHIPPED)
    png = tmp_path / "plot.png"
    assert main(["datasets", "show", "azure-code-2023", "--json", "--plot", str(png)]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rows"] == 8819 and png.stat().st_size > 10_000
    assert main(["datasets", "show", "mooncake-synthetic"]) == 0
    assert "64.0% of references repeat" in capsys.readouterr().out


def test_cli_list_as_text_covers_length_only_traces(capsys):
    assert main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in datasets.SHIPPED)
    assert "sharegpt-lengths" in out and "lengths only, no arrival times" in out
    assert main(["datasets", "show", "sharegpt-lengths"]) == 0


def test_sort_then_window_and_gzip_csv(tmp_path):
    text = HEADER + row(9.0, 90) + row(2.0, 20) + row(5.0, 50) + row(3.0, 30)
    p = tmp_path / "t.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write(text)
    for engine in ("auto", "pandas"):
        r = datasets.load_with_report(p, sort=True, start_s=1.0, end_s=5.0, engine=engine)
        # times from the earliest (2 s): 7, 0, 3, 1 -> window [1, 5) keeps 3 and 1, shifted by 1
        assert r.workload.input_tokens.tolist() == [30, 50]
        assert r.workload.arrival_s.tolist() == [0.0, 2.0]
        assert r.report.outside_window == 2


def test_header_only_csv_loads_empty_but_an_empty_file_is_an_error(tmp_path):
    """A header without rows is a well-formed file with no requests; a file without a single
    line holds no records whatever its format, given or inferred (issue 12)."""
    p = write(tmp_path, HEADER)
    for engine in ("auto", "pandas"):
        r = datasets.load_with_report(p, engine=engine)
        assert len(r.workload) == 0 and r.report.rows_read == 0
    j = write(tmp_path, "", "t.jsonl")
    for fmt in ("mooncake", None):  # the same error with the format given or inferred
        for on_error in ("raise", "skip"):
            with pytest.raises(DataFormatError, match="holds no JSON records") as info:
                datasets.load(j, format=fmt, on_error=on_error)
            assert info.value.path == str(j) and info.value.line is None
    with pytest.raises(DataFormatError, match="cannot read the CSV header"):
        datasets.load(write(tmp_path, "", "e.csv"), format="azure")
    with pytest.raises(DataFormatError, match="cannot read the CSV header"):
        datasets.load(tmp_path / "e.csv")


def test_summary_functions_name_a_bad_argument(tmp_path):
    from schedlab.datasets.summary import plot_workload

    with pytest.raises(ValueError, match="'workload' parameter of describe must be a Workload"):
        datasets.describe([1, 2])
    with pytest.raises(ValueError, match=r"'bins' parameter of plot_workload must be an int"):
        plot_workload(datasets.load("azure-code-2023").head(10), tmp_path / "p.png", bins=0)
