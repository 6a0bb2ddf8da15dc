"""Limits that hold and inputs that cannot slip through (issue 12): numbers past the bounds of
:mod:`schedlab.records`, broken files, malformed JSONL lines, duplicated columns, JSON strings
where a number belongs. Every failure is a :class:`DataFormatError` naming the file and, where
there is one, the line; ``on_error="skip"`` reports every skipped line."""

from __future__ import annotations

import gzip
import json
import zlib

import numpy as np
import pytest

from schedlab import datasets
from schedlab.errors import DataFormatError
from schedlab.records import MAX_TIME_S, MAX_TOKENS

HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"
ENGINES = ("auto", "pandas")


def row(sec: float, inp: object = 100, out: object = 10) -> str:
    return f"2023-11-16 18:{int(sec) // 60:02d}:{sec % 60:010.7f},{inp},{out}\n"


def mooncake(ts: object, i: object = 600, o: object = 5, h: object = "[0, 1]") -> str:
    return f'{{"timestamp": {ts}, "input_length": {i}, "output_length": {o}, "hash_ids": {h}}}\n'


def outcomes(path, **options):
    """``(error line, field, message)`` under on_error="raise" and the skipped lines under
    on_error="skip", for each CSV engine (one entry for JSONL)."""
    engines = ENGINES if str(path).endswith((".csv", ".csv.gz")) else ("auto",)
    out = []
    for engine in engines:
        with pytest.raises(DataFormatError) as info:
            datasets.load(path, engine=engine, **options)
        err = info.value
        assert err.path == str(path) and str(path) in str(err)
        report = datasets.load_with_report(path, engine=engine, on_error="skip", **options).report
        out.append((err.line, err.field, str(err), report.skipped_lines.tolist()))
    return out


def skipping(path, **options):
    """The workload of an on_error="skip" load (without the warning)."""
    return datasets.load_with_report(path, on_error="skip", **options).workload


# ---------------------------------------------------------------- 1. bounds of schedlab.records

HUGE_TOKENS = [2**31, 2**63, 2**64, 2**70, "1e19", "1e30", "9" * 19, "9" * 25]


@pytest.mark.parametrize("value", HUGE_TOKENS)
def test_token_counts_above_max_tokens_are_bad_rows_in_both_csv_engines(tmp_path, value):
    p = tmp_path / "t.csv"
    p.write_text(HEADER + row(0) + row(1, inp=value) + row(2))
    for line, field, message, skipped in outcomes(p):
        assert (line, field) == (3, "ContextTokens")
        assert f"is above the maximum {MAX_TOKENS}" in message and "-9.2" not in message
        assert skipped == [3]
    assert skipping(p).input_tokens.tolist() == [100, 100]


@pytest.mark.parametrize("value", HUGE_TOKENS)
def test_token_counts_above_max_tokens_are_bad_rows_in_jsonl(tmp_path, value):
    p = tmp_path / "t.jsonl"
    p.write_text(mooncake(0) + mooncake(1000, o=value) + mooncake(2000))
    [(line, field, message, skipped)] = outcomes(p)  # no OverflowError from pandas
    assert (line, field, skipped) == (2, "output_length", [2])
    assert f"is above the maximum {MAX_TOKENS}" in message


def test_a_number_past_float_range_is_a_bad_row(tmp_path):
    """pandas reads 400 digits among numbers as a Python int, which overflowed float conversion
    (found by the fuzz test)."""
    p = tmp_path / "t.csv"
    p.write_text(HEADER + row(0) + row(1, "1" * 400) + row(2))
    for line, field, message, skipped in outcomes(p):
        assert (line, field, skipped) == (3, "ContextTokens", [3])
        assert "not an integer: 1111" in message


def test_max_tokens_itself_loads(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER + row(0, MAX_TOKENS, MAX_TOKENS))
    for engine in ENGINES:
        assert datasets.load(p, engine=engine).input_tokens.tolist() == [MAX_TOKENS]
    j = tmp_path / "t.jsonl"
    j.write_text(mooncake(0, MAX_TOKENS, float(MAX_TOKENS)))
    assert datasets.load(j).output_tokens.tolist() == [MAX_TOKENS]


def test_arrivals_past_max_time_s_are_bad_rows(tmp_path):
    """Seconds after the first timestamp, after the unit conversion (ms here)."""
    limit_ms = int(MAX_TIME_S * 1000)
    p = tmp_path / "t.csv"
    p.write_text(f"ts,n\n0,5\n{limit_ms},6\n{limit_ms + 1},7\n{limit_ms},8\n")
    cols = {"arrival_s": "ts", "output_tokens": "n"}
    for line, field, message, skipped in outcomes(p, columns=cols, time_unit="ms"):
        assert (line, field, skipped) == (4, "ts", [4])
        assert "beyond the maximum 10000000000 s" in message
    w = skipping(p, columns=cols, time_unit="ms")
    assert w.arrival_s.tolist() == [0.0, MAX_TIME_S, MAX_TIME_S]
    j = tmp_path / "t.jsonl"
    j.write_text(mooncake(0) + mooncake(2**63) + mooncake("1e300") + mooncake(1000))
    [(line, field, message, skipped)] = outcomes(j)
    assert (line, field, skipped) == (2, "timestamp", [2, 3])
    assert "s after the first timestamp is beyond the maximum" in message


def test_date_times_far_apart_are_bad_rows_not_wrapped(tmp_path):
    """1678 and 2261 lie 583 years apart: int64 nanoseconds between them wrap around."""
    stamps = ["1678-01-01 00:00:00", "1990-01-01 00:00:00", "2261-06-01 00:00:00",
              "2000-01-01 00:00:00"]
    p = tmp_path / "t.csv"
    p.write_text(HEADER + "".join(f"{s},5,5\n" for s in stamps))
    for line, field, message, skipped in outcomes(p):
        assert (line, field) == (4, "TIMESTAMP") and "beyond the maximum" in message
        assert skipped == [4, 5]  # 2000 is 322 years after the first timestamp too


@pytest.mark.parametrize("stamp", ["1677-12-31 23:59:59", "2262-01-01 00:00:00",
                                   "2262-05-01 00:00:00.0000000", "9999-01-01 00:00:00"])
def test_date_times_outside_int64_nanoseconds_are_bad_rows(tmp_path, stamp):
    p = tmp_path / "t.csv"
    p.write_text(f"{HEADER}2023-01-01 00:00:00,5,5\n{stamp},6,6\n2023-01-01 00:00:01,7,7\n")
    for line, field, message, skipped in outcomes(p):
        assert (line, field, skipped) == (3, "TIMESTAMP", [3])
        assert "1678 to 2261" in message


def test_sorted_times_are_measured_from_the_earliest(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("ts,n\n100,1\n0,2\n10000000050,3\n10000000001,4\n")
    cols = {"arrival_s": "ts", "output_tokens": "n"}
    for engine in ENGINES:
        with pytest.raises(DataFormatError, match="after the earliest timestamp") as info:
            datasets.load(p, columns=cols, sort=True, engine=engine)
        assert (info.value.line, info.value.field) == (4, "ts")
        r = datasets.load_with_report(p, columns=cols, sort=True, on_error="skip", engine=engine)
        assert r.report.skipped_lines.tolist() == [4, 5]
        assert r.workload.output_tokens.tolist() == [2, 1]


def test_group_ids_and_block_ids_past_int64_are_bad_rows(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("ts,n,g\n0,5,1\n1,5,1e19\n2,5,9223372036854775808\n3,5,2\n")
    cols = {"arrival_s": "ts", "output_tokens": "n", "group_id": "g"}
    for line, field, message, skipped in outcomes(p, columns=cols):
        assert (line, field, skipped) == (3, "g", [3, 4])
        assert "is above the maximum 9223372036854775807" in message
    j = tmp_path / "t.jsonl"
    j.write_text(mooncake(0) + mooncake(1, h=f"[1, {2**64}]") + mooncake(2))
    [(line, field, message, skipped)] = outcomes(j)
    assert (line, field, skipped) == (2, "hash_ids", [2])


# ---------------------------------------------------------------- 2. files that cannot be read


def gz_bytes(text: str) -> bytes:
    return gzip.compress(text.encode(), mtime=0)


def lines_before_the_cut(data: bytes) -> int:
    """Complete lines a reader can decompress from a damaged .gz (what may load before the
    error)."""
    return zlib.decompressobj(wbits=31).decompress(data).count(b"\n")


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
def test_truncated_gzip_is_an_error_naming_the_damaged_line(tmp_path, kind):
    if kind == "csv":
        text = HEADER + "".join(row(s, 100 + s) for s in range(3000))
    else:
        text = "".join(mooncake(s * 10, h=f"[{s}, {s * 7}]") for s in range(3000))
    data = gz_bytes(text)
    cut = data[: len(data) // 2]
    p = tmp_path / f"t.{kind}.gz"
    p.write_bytes(cut)
    damaged = lines_before_the_cut(cut) + 1
    for engine in ENGINES:
        for on_error in ("raise", "skip"):  # never silently truncated
            with pytest.raises(DataFormatError, match=r"truncated \.gz file") as info:
                datasets.load(p, engine=engine, on_error=on_error)
            assert (info.value.path, info.value.line) == (str(p), damaged)
            assert f"cannot read the file past line {damaged - 1}" in str(info.value)


@pytest.mark.parametrize("kind", ["csv", "jsonl"])
@pytest.mark.parametrize(
    "damage", ["not gzip", "bad crc", "flipped byte", "zeroed block", "empty gz"]
)
def test_corrupt_gzip_is_an_error_naming_the_file(tmp_path, kind, damage):
    if kind == "csv":
        text = HEADER + "".join(row(s, 100 + s) for s in range(3000))
    else:
        text = "".join(mooncake(s * 10, h=f"[{s}, {s * 7}]") for s in range(3000))
    data = gz_bytes(text)
    half = len(data) // 2
    data = {
        "not gzip": text.encode(),
        "bad crc": data[:-8] + bytes(8),
        "flipped byte": data[:12] + bytes([data[12] ^ 0xFF]) + data[13:],
        "zeroed block": data[:half] + bytes(200) + data[half + 200 :],
        "empty gz": b"\x1f\x8b",
    }[damage]
    p = tmp_path / f"t.{kind}.gz"
    p.write_bytes(data)
    fmt = "azure" if kind == "csv" else "mooncake"
    for engine in ENGINES:
        for format in (fmt, None):
            with pytest.raises(DataFormatError) as info:
                skipping(p, format=format, engine=engine)
            assert info.value.path == str(p)
            if damage != "flipped byte":  # (that one may also garble the header first)
                assert "cannot read the file" in str(info.value) and info.value.line is not None


def test_deeply_nested_and_endless_json_are_bad_lines(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(mooncake(0) + "[" * 100_000 + "]" * 100_000 + "\n"
                 + mooncake(1, h="[" * 3000 + "]" * 3000) + '{"timestamp": ' + "7" * 5000 + "}\n"
                 + mooncake(2000))
    [(line, field, message, skipped)] = outcomes(p)  # no RecursionError, no ValueError
    assert (line, field, skipped) == (2, None, [2, 3, 4])
    assert "nested too deeply" in message


def test_bytes_that_are_not_utf8(tmp_path):
    p = tmp_path / "t.csv"
    p.write_bytes((HEADER + row(0)).encode() + b"2023-11-16 18:00:01,1\xff2,5\n" + row(2).encode())
    for line, field, message, skipped in outcomes(p):
        assert (line, field, skipped) == (3, "ContextTokens", [3])
        assert "not UTF-8 text" in message
    h = tmp_path / "h.csv"
    h.write_bytes(b"TIMESTAMP,ContextTokens,GeneratedTokens,\xff\n" + row(0).encode())
    with pytest.raises(DataFormatError, match="not UTF-8") as info:
        datasets.load(h)
    assert info.value.line == 1
    f = tmp_path / "f.csv"  # a text feature kept as read: bytes that are not UTF-8 are refused
    f.write_bytes(b"ts,n,who\n0,1,ann\n1,2,b\xe9a\n2,3,cy\n")
    cols = {"arrival_s": "ts", "output_tokens": "n", "feature.who": "who"}
    for line, field, message, skipped in outcomes(f, columns=cols):
        assert (line, field, skipped) == (3, "who", [3])
        assert "b'b\\xe9a'" in message
    j = tmp_path / "t.jsonl"
    j.write_bytes(mooncake(0).encode() + b'{"timestamp": 1, "x": "\xff"}\n' + mooncake(2).encode())
    [(line, field, message, skipped)] = outcomes(j)
    assert (line, field, skipped) == (2, None, [2]) and "not UTF-8" in message


def test_quotes_that_run_over_lines_name_the_line(tmp_path):
    """Rows are one per line: a quote left open makes the line numbers after it meaningless."""
    cases = {
        "never closed": HEADER + row(0) + row(1, '"12') + row(2) + row(3),
        "closed a line later": HEADER + row(0) + row(1, '"12') + '3",5\n' + row(3),
    }
    for text in cases.values():
        p = tmp_path / "t.csv"
        p.write_text(text)
        for engine in ENGINES:
            for on_error in ("raise", "skip"):
                with pytest.raises(DataFormatError, match="runs over several lines") as info:
                    datasets.load(p, engine=engine, on_error=on_error)
                assert info.value.line == 3
    p.write_text(HEADER + row(0) + row(1, '"12"') + row(2))  # a quoted field on its line is fine
    assert datasets.load(p).input_tokens.tolist() == [100, 12, 100]


# ---------------------------------------------------------------- 3. one JSON object per line


def test_jsonl_two_objects_on_a_line_and_an_object_over_two_lines(tmp_path):
    """Together they once fooled the one-call parse of a chunk: no error, and every later line
    numbered one too high (the -1 of line 2 was blamed on line 3)."""
    p = tmp_path / "t.jsonl"
    split = mooncake(3000, h="[12, 34]").split("12, ")
    p.write_text(
        mooncake(0)
        + mooncake(1000).rstrip("\n") + ", " + mooncake(2000, i=-1)  # line 2: two objects
        + split[0] + "12\n"  # lines 3 and 4: one object, its list split
        + split[1]
        + mooncake(4000)
        + mooncake(5000, o=-7)
    )
    [(line, field, message, skipped)] = outcomes(p)
    assert (line, field) == (2, None) and "more than one JSON value" in message
    assert skipped == [2, 3, 4, 6]
    r = datasets.load_with_report(p, on_error="skip")
    assert r.workload.arrival_s.tolist() == [0.0, 4.0]
    assert [(q.line, q.field) for q in r.report.problems][-1] == (6, "output_length")


def test_jsonl_lines_are_physical_lines(tmp_path):
    """Blank lines stay bad rows (like blank CSV lines), numbered by physical line; CRLF line
    ends and a last line without a line end are fine."""
    p = tmp_path / "t.jsonl"
    p.write_bytes(
        (mooncake(0) + "\n" + mooncake(1000) + "  \n").encode().replace(b"\n", b"\r\n")
        + mooncake(2000, o=0).rstrip("\n").encode()
    )
    [(line, _, message, skipped)] = outcomes(p)
    assert (line, message.split(": ")[-1], skipped) == (2, "empty line", [2, 4, 5])
    assert skipping(p).arrival_s.tolist() == [0.0, 1.0]


def test_jsonl_format_is_inferred_past_a_bad_first_line(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text("oops\n" + mooncake(0) + mooncake(1000))
    assert datasets.infer_format(p) == "mooncake"
    with pytest.raises(DataFormatError, match="not valid JSON") as info:
        datasets.load(p)
    assert info.value.line == 1
    r = datasets.load_with_report(p, on_error="skip")
    assert r.report.skipped_lines.tolist() == [1] and len(r.workload) == 2
    b = tmp_path / "b.jsonl"
    b.write_text("[1]\n\n")
    with pytest.raises(DataFormatError, match="not an object") as info:
        datasets.infer_format(b)
    assert info.value.line == 1


# ---------------------------------------------------------------- 4. smaller holes


def test_a_column_named_twice_is_refused(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens,ContextTokens\n"
                 + row(0).rstrip("\n") + ",7\n")
    for format, cols in (("azure", None), (None, None),
                         ("csv", {"arrival_s": "TIMESTAMP", "output_tokens": "GeneratedTokens"})):
        for engine in ENGINES:
            with pytest.raises(DataFormatError, match="names this column twice") as info:
                datasets.load(p, format=format, columns=cols, engine=engine, time_unit="datetime")
            assert (info.value.line, info.value.field) == (1, "ContextTokens")
    q = tmp_path / "q.csv"  # quoted names too; several empty names are told apart by pandas
    q.write_text('"a","b","a"\n1,2,3\n')
    with pytest.raises(DataFormatError, match="columns 1 and 3"):
        datasets.load(q, columns={"output_tokens": "b"})
    e = tmp_path / "e.csv"
    e.write_text("a,b,,\n1,2,,\n")
    assert datasets.load(e, columns={"output_tokens": "b"}).output_tokens.tolist() == [2]


@pytest.mark.parametrize(
    "value, shown",
    [('"600"', "'600' (a JSON string, not a number)"), ('"1e3"', "'1e3'"), ('" 12"', "' 12'"),
     ("\"'12'\"", "\"'12'\""), ("\"b'7'\"", "\"b'7'\""), ("true", "True"), ("false", "False"),
     ("[5]", "[5]"), ('{"n": 5}', "{'n': 5}")],
)
def test_a_json_token_count_must_be_a_number(tmp_path, value, shown):
    p = tmp_path / "t.jsonl"
    p.write_text(mooncake(0) + mooncake(1000, i=value) + mooncake(2000))
    [(line, field, message, skipped)] = outcomes(p)
    assert (line, field, skipped) == (2, "input_length", [2])
    assert f"not an integer: {shown}" in message


def test_json_numbers_and_csv_text_still_read(tmp_path):
    p = tmp_path / "t.jsonl"
    p.write_text(mooncake(0, i="600.0", o="1e3") + mooncake('"1000"'))
    with pytest.raises(DataFormatError, match="a JSON string, not a number") as info:
        datasets.load(p)
    assert (info.value.line, info.value.field) == (2, "timestamp")
    assert skipping(p).input_tokens.tolist() == [600]
    c = tmp_path / "t.csv"  # CSV fields are text: numbers written as text are numbers
    c.write_text(HEADER + row(0, "12.0", " 7") + row(1, "1e3", "+5"))
    for engine in ENGINES:
        w = datasets.load(c, engine=engine)
        assert w.input_tokens.tolist() == [12, 1000] and w.output_tokens.tolist() == [7, 5]
    for text in ("'12'", "b'7'", "true", "0x10"):
        c.write_text(HEADER + row(0) + row(1, text))
        for line, field, _, skipped in outcomes(c):
            assert (line, field, skipped) == (3, "ContextTokens", [3])


def test_a_byte_order_mark_is_skipped_in_jsonl_and_csv(tmp_path):
    bom = "\ufeff"
    j = tmp_path / "t.jsonl"
    j.write_text(bom + mooncake(0) + mooncake(1000), encoding="utf-8")
    assert datasets.infer_format(j) == "mooncake"
    assert datasets.load(j).arrival_s.tolist() == [0.0, 1.0]
    g = tmp_path / "t.jsonl.gz"
    g.write_bytes(gz_bytes(bom + mooncake(0) + mooncake(1000)))
    assert datasets.load(g).arrival_s.tolist() == [0.0, 1.0]
    c = tmp_path / "t.csv"
    c.write_text(bom + HEADER + row(0) + row(1), encoding="utf-8")
    for engine in ENGINES:
        assert datasets.load(c, engine=engine).input_tokens.tolist() == [100, 100]
    j.write_text(mooncake(0) + bom + mooncake(1000), encoding="utf-8")  # only before line 1
    with pytest.raises(DataFormatError) as info:
        datasets.load(j)
    assert info.value.line == 2


def test_empty_files_are_errors_whatever_the_format(tmp_path):
    for name, fmt in (("t.jsonl", "mooncake"), ("t.jsonl.gz", "mooncake"), ("t.csv", "azure")):
        p = tmp_path / name
        p.write_bytes(gz_bytes("") if name.endswith(".gz") else b"")
        for format in (fmt, None):
            for on_error in ("raise", "skip"):
                with pytest.raises(DataFormatError, match=r"no JSON records|CSV header") as info:
                    datasets.load(p, format=format, on_error=on_error)
                assert info.value.path == str(p)


def test_error_messages_stay_short(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text(HEADER + row(0) + row(1, "x" * 10_000))
    with pytest.raises(DataFormatError) as info:
        datasets.load(p)
    assert len(str(info.value)) < 200 + len(str(p))
    assert np.isfinite(skipping(p).arrival_s).all()
    assert json.loads(json.dumps(datasets.load_with_report(p, on_error="skip").report.to_dict()))
