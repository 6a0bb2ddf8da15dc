"""One entry point for every trace: :func:`load` (a :class:`Workload`) and :func:`load_with_report`.

>>> w = load("azure-code-2023")
>>> len(w), float(w.arrival_s[0]), round(w.duration_s)
(8819, 0.0, 3436)
>>> w = load("mooncake-conversation", start_s=60, end_s=120)
>>> bool(w.arrival_s.min() >= 0 and w.arrival_s.max() < 60), w.prefix_block_ids is not None
(True, True)
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path

from schedlab.datasets.assemble import Assembler, ColumnSpec
from schedlab.datasets.catalog import SHIPPED, shipped_path
from schedlab.datasets.csv_reader import iter_csv_chunks, read_header
from schedlab.datasets.fast_csv import Irregular, iter_fast_chunks
from schedlab.datasets.formats import FORMATS, match_columns, user_spec
from schedlab.datasets.jsonl_reader import first_record, iter_jsonl_chunks
from schedlab.datasets.report import LoadResult, SkippedRowsWarning
from schedlab.errors import (
    DataFormatError,
    check_nonneg_float,
    check_positive_int,
    unknown_name_error,
)
from schedlab.records import Workload

__all__ = ["infer_format", "load", "load_with_report"]

_WHERE = "load"


def _kind_of(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    if name.endswith((".jsonl", ".ndjson", ".json")):
        return "jsonl"
    if name.endswith((".csv", ".txt")):
        return "csv"
    return None


def infer_format(path: str | Path) -> str:
    """The format of a file from its extension and its header (CSV) or first record (JSONL).

    >>> from schedlab.datasets.catalog import shipped_path
    >>> [infer_format(shipped_path(n)) for n in ("mooncake-synthetic", "azure-conv-2023")]
    ['mooncake', 'azure']
    """
    path = Path(path)
    kind = _kind_of(path)
    if kind is None:
        raise ValueError(
            f"The format of {str(path)!r} cannot be inferred from its extension (expected .csv, "
            f".jsonl, .json, optionally .gz). Pass format= one of {sorted(FORMATS)}."
        )
    cols = read_header(path) if kind == "csv" else list(first_record(path))
    found = match_columns(cols)
    if found is None or FORMATS[found].kind != kind:
        raise DataFormatError(
            str(path),
            1,
            None,
            f"no known {kind.upper()} format matches the columns {cols}; known formats: "
            + "; ".join(f"{f.name}: {f.description}" for f in FORMATS.values() if f.spec)
            + f". For other files pass format={kind!r} and columns={{'arrival_s': ..., "
            "'input_tokens': ..., 'output_tokens': ...} (on the command line: "
            f"--format {kind} --columns arrival_s=...,input_tokens=...,output_tokens=...).",
        )
    return found


def _byte_parser_kinds(spec: ColumnSpec) -> dict[str, str] | None:
    """Column kinds for the byte parser, or ``None`` when the spec needs more than integers and
    date-times (features, prefix blocks)."""
    if spec.features or spec.prefix_blocks is not None:
        return None
    kinds: dict[str, str] = {}
    if spec.arrival is not None:
        kinds[spec.arrival] = "datetime" if spec.time_unit == "datetime" else "int"
    for col in (spec.input_tokens, spec.output_tokens, spec.group_id):
        if col is not None:
            kinds.setdefault(col, "int")
    return kinds


def load_with_report(
    name_or_path: str | Path,
    format: str | None = None,
    *,
    columns: Mapping[str, str] | None = None,
    time_unit: str = "s",
    start_s: float | None = None,
    end_s: float | None = None,
    sort: bool = False,
    on_error: str = "raise",
    zero_tokens: str = "error",
    default_input_tokens: int = 1,
    block_tokens: int | None = None,
    chunk_rows: int = 1_000_000,
    name: str | None = None,
    engine: str = "auto",
) -> LoadResult:
    """Like :func:`load`, but also returns the :class:`~schedlab.datasets.report.LoadReport`.

    >>> r = load_with_report("azure-conv-2023", end_s=600)
    >>> r.report.rows_loaded == len(r.workload), r.report.n_skipped, r.report.outside_window > 0
    (True, 0, True)
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(
            f"The 'on_error' parameter of load must be 'raise' or 'skip'. Got {on_error!r} instead."
        )
    if engine not in ("auto", "pandas"):
        raise ValueError(
            f"The 'engine' parameter of load must be 'auto' or 'pandas'. Got {engine!r} instead."
        )
    if zero_tokens not in ("error", "clip"):
        raise ValueError(
            "The 'zero_tokens' parameter of load must be 'error' or 'clip'. "
            f"Got {zero_tokens!r} instead."
        )
    for value, pname in ((start_s, "start_s"), (end_s, "end_s")):
        if value is not None:
            check_nonneg_float(value, pname, _WHERE)
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ValueError(
            f"The 'end_s' parameter of load must be greater than start_s={start_s}. "
            f"Got {end_s} instead."
        )
    check_positive_int(chunk_rows, "chunk_rows", _WHERE)
    check_positive_int(default_input_tokens, "default_input_tokens", _WHERE)

    key = str(name_or_path)
    if key in SHIPPED and not Path(key).exists():
        path = shipped_path(key)
        format = format or SHIPPED[key].format
        label = name or key
    else:
        path = Path(name_or_path)
        if path.is_dir():
            raise ValueError(f"{str(path)!r} is a directory; give a trace file (or a shipped "
                             f"trace name: {', '.join(sorted(SHIPPED))})")
        if not path.is_file():
            if "/" not in key and "." not in key:  # meant as a dataset name, not a path
                err = unknown_name_error("dataset", key, SHIPPED)
                raise ValueError(f"{err} No file of that name exists either.")
            raise FileNotFoundError(f"No such data file: {str(path)!r}")
        label = name or path.name.split(".")[0]
        if format is None:
            format = (_kind_of(path) or "csv") if columns is not None else infer_format(path)
    if format not in FORMATS:
        raise unknown_name_error("format", format, FORMATS)
    fmt = FORMATS[format]
    if columns is not None:
        spec: ColumnSpec = user_spec(columns, time_unit=time_unit, kind=fmt.kind)
    elif fmt.spec is None:
        raise ValueError(
            f"The {format!r} format of load needs a 'columns' mapping, e.g. "
            "columns={'arrival_s': 'ts', 'input_tokens': 'prompt', 'output_tokens': 'gen'} "
            "(on the command line: --columns arrival_s=ts,input_tokens=prompt,output_tokens=gen)."
        )
    else:
        spec = fmt.spec
    if spec.arrival is None and (start_s is not None or end_s is not None or sort):
        raise ValueError(
            f"The start_s/end_s/sort parameters of load need timestamps, but the {format!r} "
            f"data in {str(path)!r} has none."
        )

    def assembler() -> Assembler:
        return Assembler(
            str(path),
            format,
            spec,
            on_error=on_error,
            zero_tokens=zero_tokens,
            start_s=start_s,
            end_s=end_s,
            sort=sort,
            default_input_tokens=default_input_tokens,
            block_tokens=block_tokens if block_tokens is not None else fmt.block_tokens,
            typed=fmt.kind == "jsonl",
        )

    asm = assembler()
    needed = spec.source_columns()
    if fmt.kind == "csv":
        header = read_header(path)
        for col in needed:
            if col not in header:
                raise DataFormatError(str(path), 1, col, f"missing column; the header has {header}")
        kinds = _byte_parser_kinds(spec) if engine == "auto" else None
        done = False
        if kinds is not None:
            try:
                for chunk, lines in iter_fast_chunks(path, header, kinds):
                    if not asm.feed(chunk, lines):
                        break
                done = True
            except Irregular:  # not plain: re-read with pandas, which words every problem
                asm = assembler()
        if not done:
            text = (
                (spec.arrival,) if spec.time_unit == "datetime" and spec.arrival is not None else ()
            )
            for chunk, lines, bad in iter_csv_chunks(
                path, needed, chunk_rows=chunk_rows, text_columns=text
            ):
                if not asm.feed(chunk, lines, bad_lines=bad):
                    break
    else:
        keys = [c for c in needed if c != spec.prefix_blocks]
        for chunk, lines, bad, blocks in iter_jsonl_chunks(
            path, keys, list_key=spec.prefix_blocks, chunk_rows=min(chunk_rows, 200_000)
        ):
            if not asm.feed(chunk, lines, bad_lines=bad, blocks=blocks):
                break
    workload, report = asm.finish(name=label)
    return LoadResult(workload=workload, report=report)


def load(
    name_or_path: str | Path,
    format: str | None = None,
    **options: object,
) -> Workload:
    """Load a shipped trace by name, or a trace file in any supported format, as a Workload.

    Parameters
    ----------
    name_or_path : a shipped name (:data:`~schedlab.datasets.catalog.SHIPPED`) or a file path
        (``.csv``/``.jsonl``, optionally ``.gz``).
    format : ``mooncake``, ``azure``, ``vidur``, ``proxy-predictions``, ``csv`` or ``jsonl``
        (see :mod:`schedlab.datasets.formats`); inferred from the extension and header if omitted.
    columns : for ``csv``/``jsonl``, a mapping of workload field -> source column
        (``arrival_s``, ``input_tokens``, ``output_tokens``, ``group_id``, ``feature.NAME``,
        ``prefix_block_ids``); ``time_unit`` (``s``, ``ms``, ``us``, ``ns``, ``datetime``) says
        what the arrival column holds.
    start_s, end_s : keep only requests with ``start_s <= t < end_s``, ``t`` in seconds since the
        first timestamp of the file; the returned ``arrival_s`` is ``t - start_s``. A time-sorted
        file is not read past ``end_s``.
    sort : sort the requests by time instead of rejecting a timestamp that goes backwards
        (times are then measured from the earliest one).
    on_error : ``"raise"`` (default) raises :class:`~schedlab.errors.DataFormatError` naming the
        file, 1-based line (header = line 1) and field of the first bad row; ``"skip"`` leaves bad
        rows out, warns (:class:`~schedlab.datasets.report.SkippedRowsWarning`) with their count and
        lines; :func:`load_with_report` returns them all.
    zero_tokens : ``"error"`` (default: a 0-token count is a bad row) or ``"clip"`` (read 0 as 1;
        the report lists those lines).
    default_input_tokens : prompt length given to every request of a format without prompt
        lengths (``proxy-predictions``); default 1.
    block_tokens : tokens per prefix block (Mooncake: 512).
    chunk_rows : rows parsed at a time by the pandas path (bounds the parser's memory).
    engine : ``"auto"`` (default) parses plain numeric CSVs (integers and fixed-layout date-times,
        e.g. the Azure traces) with a vectorised byte parser (:mod:`schedlab.datasets.fast_csv`,
        8 MB blocks) and falls back to pandas' C parser for anything else or any irregular
        line; ``"pandas"`` always uses pandas. Both give the same workload and the same errors.
    name : label of the workload (default: the dataset name or the file stem).

    Files without timestamps (``vidur``, ``proxy-predictions``) load as an offline batch: every
    request arrives at 0 s; attach arrivals with a generator from
    :mod:`schedlab.datasets.arrivals`.

    Bad rows (raised, or skipped and reported, by ``on_error``): a token count that is not an
    integer in ``[1, MAX_TOKENS]`` (:data:`schedlab.records.MAX_TOKENS` = 2**31 - 1; in JSONL it
    must be a JSON number, ``600`` or ``600.0``, not ``"600"`` or ``true``), an arrival more than
    :data:`~schedlab.records.MAX_TIME_S` (1e10) seconds after the first timestamp (after the unit
    conversion; with ``sort``, after the earliest), a date-time outside the years 1678 to 2261,
    a JSONL line that is not exactly one JSON object (blank lines included), bytes that are not
    UTF-8 in a field read. A file that cannot be read as a whole raises
    :class:`~schedlab.errors.DataFormatError` naming the file (and the line) whatever
    ``on_error``: a truncated or corrupt ``.gz`` (the rows before the damage are not returned), an
    empty file, a CSV header naming a column twice, a quoted CSV field running over several lines.

    >>> w = load("mooncake-synthetic")
    >>> len(w), w.block_tokens, int(w.prefix_block_ids.counts().sum()) > len(w)
    (3993, 512, True)
    """
    result = load_with_report(name_or_path, format, **options)  # type: ignore[arg-type]
    r = result.report
    if r.n_skipped or r.clipped_lines.size:
        warnings.warn(r.summary(), SkippedRowsWarning, stacklevel=2)
    return result.workload
