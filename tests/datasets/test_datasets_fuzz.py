"""Fuzzing the loaders with malformed lines made from valid ones (issue 12).

A file of valid rows (the Azure CSV, a user CSV read through ``columns=``, Mooncake JSONL) gets a
few damaged lines: a field dropped or duplicated, a value replaced by random text, a huge number,
a negative, a float, an empty cell, zero, a JSON string or boolean; a line truncated, split in
two or joined with the next; a NUL or bytes that are not UTF-8 inserted. Each damage knows
whether it makes its line(s) invalid. Then:

- ``on_error="raise"`` raises nothing but :class:`DataFormatError`, naming the file and the first
  invalid line (and loads the file when no damage made a line invalid);
- ``on_error="skip"`` reports exactly the invalid lines, and every other row loads with its
  original values, whichever CSV engine reads it and however many rows a chunk holds.

The first data row is left whole: it sets the origin of the times, and damage to it would move
every later time. A few hundred examples run by default; ``pytest -m slow`` runs many more.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedlab import datasets
from schedlab.errors import DataFormatError

FAST = settings(max_examples=150, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])
SLOW = settings(max_examples=2000, deadline=None, database=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow])

#: bytes that are not UTF-8 (a stray continuation byte, a lead byte without its continuation,
#: a byte never used, an encoded surrogate)
NOT_UTF8 = [b"\x80", b"\xc3", b"\xff", b"\xed\xa0\x80"]
#: random text that is no number and no missing-value marker (it holds a "q")
TEXT = st.builds(
    lambda a, b: a + "q" + b,
    st.text("abcdxyzQ019 ._:/+-", max_size=6),
    st.text("abcdxyz019 ._:/+-", max_size=6),
)
HUGE_INT = st.sampled_from(["2147483648", str(2**63), str(2**64), "9" * 25, "1" * 400])
HUGE_ANY = st.one_of(HUGE_INT, st.sampled_from(["1e19", "1e30", "1e400"]))
#: times past MAX_TIME_S (in ms), or past float range
HUGE_TIME = st.sampled_from(["1e19", str(2**63), str(2**64), "9" * 25, "1" * 400, "1e400"])
NEGATIVE = st.integers(1, 10**9).map(lambda k: f"-{k}")
FRACTION = st.integers(0, 10**6).map(lambda k: f"{k}.5")
#: rows per chunk of the pandas and JSONL readers: the line numbers must not depend on it
CHUNK_ROWS = st.sampled_from([1_000_000, 1, 2, 3])


SAME_AS_FLOAT = "<the value>.0"


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # "time", "datetime", "token", "int", "text", "blocks"


@dataclass(frozen=True)
class Line:
    data: bytes
    invalid: bool
    row: int | None  # index of the undamaged row it holds, if it holds one whole


# ---------------------------------------------------------------- values, valid and damaged


def bad_csv_value(kind: str) -> st.SearchStrategy[tuple[str, bool]]:
    """``(text, invalid)`` for a CSV field of ``kind``."""
    always = [TEXT, st.just("")]
    if kind == "datetime":
        options = [*always, HUGE_ANY, NEGATIVE]
    elif kind == "time":  # a valid smaller or larger time would move the order of later rows
        options = [*always, HUGE_TIME, NEGATIVE]
    elif kind == "token":
        options = [*always, HUGE_ANY, NEGATIVE, FRACTION, st.just("0")]
    elif kind == "int":
        options = [*always, st.sampled_from([str(2**63), "9" * 25, "1e19", "1e400"]), NEGATIVE,
                   FRACTION]
    else:  # text: any text is valid but an empty cell (a missing value)
        return st.one_of(TEXT.map(lambda t: (t, False)), st.just(("", True)))
    return st.one_of(*options).map(lambda t: (t, True))


def bad_json_value(kind: str) -> st.SearchStrategy[tuple[str, bool]]:
    """``(JSON text, invalid)`` for a Mooncake value of ``kind``."""
    common = [TEXT.map(json.dumps), st.sampled_from(["null", "true", "false", "{}"]),
              st.integers(1, 10**6).map(lambda k: f'"{k}"')]  # a number as a string
    if kind == "blocks":
        lists = st.sampled_from(["[1, -2]", "[1.5]", "[true]", f"[{2**64}]", '["7"]', "[[1]]",
                                 "[null]", "7", '"[1, 2]"'])
        return st.one_of(*common, lists).map(lambda t: (t, True))
    if kind == "token":
        huge = st.one_of(HUGE_INT, st.sampled_from(["1e19", "1e300", "1e400", "1" * 5000]))
    else:
        huge = st.one_of(HUGE_TIME, st.sampled_from(["1e300", "1" * 5000]))
    options = [*common, huge, NEGATIVE, st.just("[5]")]
    if kind == "token":
        options += [FRACTION, st.just("0")]
        valid = st.just((SAME_AS_FLOAT, False))  # the same count written as a float: 600.0
        return st.one_of(st.one_of(*options).map(lambda t: (t, True)), valid)
    return st.one_of(*options).map(lambda t: (t, True))


# ---------------------------------------------------------------- the three formats


@dataclass(frozen=True)
class Format:
    name: str
    fields: tuple[Field, ...]
    header: str | None
    options: dict
    time_unit: float  # seconds per unit of the first field

    def render(self, values: list[str]) -> bytes:
        if self.header is None:
            inner = ", ".join(f'"{f.name}": {v}' for f, v in zip(self.fields, values, strict=True))
            return ("{" + inner + "}").encode()
        return ",".join(values).encode()


AZURE = Format(
    "azure",
    (Field("TIMESTAMP", "datetime"), Field("ContextTokens", "token"),
     Field("GeneratedTokens", "token")),
    "TIMESTAMP,ContextTokens,GeneratedTokens",
    {},
    1.0,
)
USER = Format(
    "user",
    (Field("ts", "time"), Field("prompt", "token"), Field("gen", "token"),
     Field("tenant", "text"), Field("grp", "int")),
    "ts,prompt,gen,tenant,grp",
    {"columns": {"arrival_s": "ts", "input_tokens": "prompt", "output_tokens": "gen",
                 "feature.tenant": "tenant", "group_id": "grp"}, "time_unit": "ms"},
    1e-3,
)
MOONCAKE = Format(
    "mooncake",
    (Field("timestamp", "time"), Field("input_length", "token"), Field("output_length", "token"),
     Field("hash_ids", "blocks")),
    None,
    {},
    1e-3,
)


@st.composite
def valid_rows(draw, fmt: Format) -> list[list[str]]:
    """Rows of valid values (times non-decreasing), rendered as field texts."""
    n = draw(st.integers(3, 9))
    gaps = draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n))
    start = draw(st.integers(0, 10**6))
    times = np.cumsum([start, *gaps[1:]])
    rows = []
    for t in times:
        i, o = draw(st.integers(1, 10**6)), draw(st.integers(1, 10**4))
        if fmt is AZURE:
            stamp = np.datetime64("2023-11-16T18:00:00", "ns") + np.timedelta64(int(t), "ms")
            text = str(stamp.astype("datetime64[ns]")).replace("T", " ")[:27]
            rows.append([text, str(i), str(o)])
        elif fmt is USER:
            who = draw(st.sampled_from(["acme", "globex", "q-corp", "initech"]))
            rows.append([str(t), str(i), str(o), who, str(draw(st.integers(0, 1000)))])
        else:
            blocks = draw(st.lists(st.integers(0, 2**40), max_size=4))
            rows.append([str(t), str(i), str(o), json.dumps(blocks)])
    return rows


def times_of(fmt: Format, rows: list[list[str]]) -> np.ndarray:
    if fmt is AZURE:
        ns = np.array([np.datetime64(r[0].replace(" ", "T"), "ns") for r in rows]).view(np.int64)
        return (ns - ns[0]) * 1e-9
    t = np.array([float(r[0]) for r in rows])
    return (t - t[0]) * fmt.time_unit


# ---------------------------------------------------------------- damage


OPS = ("replace", "drop", "duplicate", "truncate", "split", "join", "insert")


@st.composite
def damaged(draw, fmt: Format) -> tuple[list[list[str]], list[Line]]:
    """Valid rows and the lines of the damaged file (the header not included)."""
    rows = draw(valid_rows(fmt))
    n = len(rows)
    targets = draw(st.sets(st.integers(1, n - 1), min_size=1, max_size=min(3, n - 1)))
    ops = {t: draw(st.sampled_from(OPS)) for t in sorted(targets)}
    lines: list[Line] = [Line(fmt.render(rows[0]), False, 0)]
    r = 1
    while r < n:
        op = ops.get(r)
        if op == "join" and (r + 1 >= n or r + 1 in ops):
            op = "replace"
        if op is None:
            lines.append(Line(fmt.render(rows[r]), False, r))
        elif op == "join":  # two rows on one line: too many fields, or two JSON values
            sep = b"" if draw(st.booleans()) else b", "
            lines.append(Line(fmt.render(rows[r]) + sep + fmt.render(rows[r + 1]), True, None))
            r += 1
        else:
            lines += draw(damage_one(fmt, rows[r], r, op))
        r += 1
    return rows, lines


@st.composite
def damage_one(draw, fmt: Format, values: list[str], r: int, op: str) -> list[Line]:
    k = draw(st.integers(0, len(fmt.fields) - 1))
    field = fmt.fields[k]
    text = fmt.render(values)
    jsonl = fmt.header is None
    if op == "replace":
        new, invalid = draw(bad_json_value(field.kind) if jsonl else bad_csv_value(field.kind))
        new = values[k] + ".0" if new == SAME_AS_FLOAT else new
        vals = list(values)
        vals[k] = new
        return [Line(fmt.render(vals), invalid, None if invalid else r)]
    if op == "drop":  # CSV: a field fewer, so the last is missing; JSONL: a key missing
        vals = values[:k] + values[k + 1 :]
        if jsonl:
            keep = [f for f in fmt.fields if f is not field]
            inner = ", ".join(f'"{f.name}": {v}' for f, v in zip(keep, vals, strict=True))
            return [Line(("{" + inner + "}").encode(), True, None)]
        return [Line(",".join(vals).encode(), True, None)]
    if op == "duplicate":  # CSV: a field too many; JSONL: the key again (the last one counts)
        if not jsonl:
            vals = values[: k + 1] + values[k:]
            return [Line(",".join(vals).encode(), True, None)]
        again, invalid = draw(st.one_of(
            st.just((values[k], False)), bad_json_value(field.kind)))
        again = values[k] + ".0" if again == SAME_AS_FLOAT else again
        extra = f', "{field.name}": {again}'.encode()
        return [Line(text[:-1] + extra + b"}", invalid, None if invalid else r)]
    if op == "insert":
        p = draw(st.integers(0, len(text)))
        junk = b"\x00" if draw(st.booleans()) else draw(st.sampled_from(NOT_UTF8))
        if jsonl:
            invalid = True
        else:  # the field the byte lands in; text keeps a NUL, refuses bytes not UTF-8
            kind = fmt.fields[text[:p].count(b",")].kind
            invalid = kind != "text" or junk != b"\x00"
        return [Line(text[:p] + junk + text[p:], invalid, None if invalid else r)]
    commas = [i for i, c in enumerate(text) if c == ord(",")]
    if op == "truncate":  # CSV: before the last comma (a field fewer); JSONL: before the "}"
        p = draw(st.integers(0, len(text) - 1 if jsonl else commas[-1]))
        return [Line(text[:p], True, None)]
    # split: CSV between the first and the last comma, so both parts lack a field
    p = draw(st.integers(1, len(text) - 1) if jsonl else st.integers(commas[0] + 1, commas[-1]))
    return [Line(text[:p], True, None), Line(text[p:], True, None)]


# ---------------------------------------------------------------- the check


def check(fmt: Format, rows: list[list[str]], lines: list[Line], chunk_rows: int) -> None:
    header = [] if fmt.header is None else [fmt.header.encode()]
    first = len(header) + 1  # file line of lines[0]
    invalid = [first + i for i, ln in enumerate(lines) if ln.invalid]
    kept = [ln.row for ln in lines if not ln.invalid]
    assert None not in kept
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / ("t.jsonl" if fmt.header is None else "t.csv")
        path.write_bytes(b"\n".join(header + [ln.data for ln in lines]) + b"\n")
        engines = ("auto",) if fmt.header is None else ("auto", "pandas")
        for engine in engines:
            options = {**fmt.options, "chunk_rows": chunk_rows, "engine": engine}
            try:
                datasets.load_with_report(path, **options)
            except DataFormatError as exc:
                assert invalid, f"no damage made a line invalid, yet: {exc}"
                assert (exc.path, exc.line) == (str(path), invalid[0]), str(exc)
            else:
                assert not invalid, f"line {invalid[0]} is invalid, yet it loaded"
            r = datasets.load_with_report(path, on_error="skip", **options)
            assert r.report.skipped_lines.tolist() == invalid, [p.message for p in
                                                                r.report.problems]
            w = r.workload
            assert w.input_tokens.tolist() == [int(rows[k][1]) for k in kept]
            assert w.output_tokens.tolist() == [int(rows[k][2]) for k in kept]
            expect = times_of(fmt, rows)[kept]
            np.testing.assert_allclose(w.arrival_s, expect - expect[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("fmt", [AZURE, USER, MOONCAKE], ids=lambda f: f.name)
def test_fuzzed_lines_fail_cleanly_and_are_all_reported(fmt):
    @FAST
    @given(damaged(fmt), CHUNK_ROWS)
    def run(case, chunk_rows):
        check(fmt, *case, chunk_rows)

    run()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", [AZURE, USER, MOONCAKE], ids=lambda f: f.name)
def test_fuzzed_lines_fail_cleanly_and_are_all_reported_at_length(fmt):
    @SLOW
    @given(damaged(fmt), CHUNK_ROWS)
    def run(case, chunk_rows):
        check(fmt, *case, chunk_rows)

    run()
