"""Turn checked chunks of raw columns into one :class:`~schedlab.records.Workload`.

A :class:`ColumnSpec` says which source column feeds which workload field; the format readers
(:mod:`schedlab.datasets.csv_reader`, :mod:`schedlab.datasets.jsonl_reader`) feed chunks to an
:class:`Assembler`, which checks every column vectorised, applies the time window and keeps only
compact numpy columns, so memory stays bounded by the output, not by the file.

>>> import numpy as np, pandas as pd
>>> spec = ColumnSpec(arrival="t", time_unit="ms", input_tokens="i", output_tokens="o")
>>> a = Assembler("x.csv", "csv", spec)
>>> _ = a.feed(pd.DataFrame({"t": [1000, 1500], "i": [10, 20], "o": [1, 2]}), np.array([2, 3]))
>>> w, report = a.finish(name="x")
>>> w.arrival_s.tolist(), report.rows_loaded
([0.0, 0.5], 2)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np

from schedlab.datasets import rowcheck
from schedlab.datasets.report import LoadReport
from schedlab.records import MAX_TIME_S, PrefixBlocks, Workload

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TIME_UNITS", "Assembler", "ColumnSpec"]

#: Seconds per unit of a numeric timestamp column; ``"datetime"`` parses date-time text.
TIME_UNITS = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "datetime": 1e-9}


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnSpec:
    """Which source column feeds which :class:`Workload` field.

    ``arrival`` (timestamps in ``time_unit``) and ``input_tokens`` may be ``None`` when the source
    has no such column. ``features`` maps a feature name to ``(column, kind)`` with kind ``"int"``,
    ``"float"`` or ``"raw"`` (kept as read, missing values rejected).
    """

    output_tokens: str
    arrival: str | None = None
    time_unit: str = "s"
    input_tokens: str | None = None
    group_id: str | None = None
    features: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    prefix_blocks: str | None = None

    def __post_init__(self) -> None:
        if self.time_unit not in TIME_UNITS:
            raise ValueError(
                f"The 'time_unit' parameter of load must be one of {sorted(TIME_UNITS)}. "
                f"Got {self.time_unit!r} instead."
            )

    def source_columns(self) -> list[str]:
        """Every source column this spec reads, without repeats, in field order."""
        cols = [self.arrival, self.input_tokens, self.output_tokens, self.group_id]
        cols += [c for c, _ in self.features.values()] + [self.prefix_blocks]
        out: list[str] = []
        for c in cols:
            if c is not None and c not in out:
                out.append(c)
        return out


class Assembler:
    """Checks chunks against a :class:`ColumnSpec` and collects the good rows.

    ``typed``: the values come typed from JSON, where a count or a time must be a JSON number (the
    string ``"600"`` is a bad row); CSV fields are text, parsed as numbers. An arrival more than
    :data:`~schedlab.records.MAX_TIME_S` seconds after the first timestamp (with ``sort``: the
    earliest) is a bad row, as is a token count above :data:`~schedlab.records.MAX_TOKENS`.
    """

    def __init__(
        self,
        path: str,
        format_name: str,
        spec: ColumnSpec,
        *,
        on_error: str = "raise",
        zero_tokens: str = "error",
        start_s: float | None = None,
        end_s: float | None = None,
        sort: bool = False,
        default_input_tokens: int = 1,
        block_tokens: int = 512,
        typed: bool = False,
    ):
        self.path, self.format_name, self.spec = path, format_name, spec
        self.typed = typed
        self.zero_tokens, self.sort = zero_tokens, sort
        self.start_s, self.end_s = start_s, end_s
        self.default_input_tokens, self.block_tokens = default_input_tokens, block_tokens
        self.problems = rowcheck.Problems(path, skip=on_error == "skip")
        self.rows_read = 0
        self.outside_window = 0
        self._origin: float | int | None = None
        self._max_t = -np.inf
        self._cols: dict[str, list[np.ndarray]] = {}
        self._clipped: list[np.ndarray] = []
        self._block_ids: list[np.ndarray] = []
        self._block_counts: list[np.ndarray] = []

    # -------------------------------------------------------------- per chunk
    def _time(self, raw: pd.Series) -> tuple[np.ndarray, np.ndarray, rowcheck.Why]:
        """Seconds since the first timestamp of the file (float64); a time more than
        :data:`~schedlab.records.MAX_TIME_S` after it is a bad row."""
        if self.spec.time_unit == "datetime":
            vals, bad, why = rowcheck.datetime_ns_column(raw)
        else:
            vals, bad, why = rowcheck.number_column(raw, typed=self.typed)
        if self._origin is None and (~bad).any():
            self._origin = vals[int(np.argmax(~bad))]
        origin = self._origin if self._origin is not None else 0
        unit = TIME_UNITS[self.spec.time_unit]
        diff = vals - origin
        rel = diff.astype(np.float64) * unit
        if vals.dtype.kind == "i":  # int64 nanoseconds 584 years apart wrap: redo those in float
            wrapped = ((vals ^ origin) & (vals ^ diff)) < 0
            if wrapped.any():
                rel[wrapped] = (vals[wrapped].astype(np.float64) - float(origin)) * unit
        late = ~bad & (rel > MAX_TIME_S)
        if not late.any():
            return rel, bad, why

        def why_late(i: int) -> str:
            return why(i) if bad[i] else _too_late(rel[i], "the first timestamp")

        return rel, bad | late, why_late

    def feed(
        self,
        chunk: pd.DataFrame | Mapping[str, np.ndarray],
        lines: np.ndarray,
        *,
        bad_lines: Sequence[tuple[int, str]] = (),
        blocks: tuple[np.ndarray, np.ndarray, np.ndarray, rowcheck.Why] | None = None,
    ) -> bool:
        """Check one chunk (a DataFrame, or the byte parser's mapping of typed numpy columns;
        ``lines``: each row's 1-based file line) and keep its good rows.

        ``blocks`` is ``(ids, counts, bad_mask, why)`` of the prefix-block column when the format
        has one. Returns ``False`` once rows past ``end_s`` were seen in a time-sorted read, so the
        reader may stop early.
        """
        spec = self.spec
        rows = lines.shape[0]
        self.rows_read += rows + len(bad_lines)
        checks: list[tuple[str | None, np.ndarray, rowcheck.Why]] = []
        cols: dict[str, np.ndarray] = {}
        if spec.arrival is not None:
            t, tbad, twhy = self._time(chunk[spec.arrival])
            checks.append((spec.arrival, tbad, twhy))
        clip_masks = []
        for key, col in (
            ("input_tokens", spec.input_tokens),
            ("output_tokens", spec.output_tokens),
        ):
            if col is None:
                continue
            vals, bad, why = rowcheck.token_column(
                chunk[col], zero=self.zero_tokens, typed=self.typed
            )
            if self.zero_tokens == "clip":
                clip_masks.append(~bad & (vals == 0))
                vals = np.maximum(vals, 1)
            cols[key] = vals
            checks.append((col, bad, why))
        if spec.group_id is not None:
            vals, bad, why = rowcheck.int_column(
                chunk[spec.group_id], min_value=0, typed=self.typed
            )
            cols["group_id"] = vals
            checks.append((spec.group_id, bad, why))
        for fname, (col, kind) in spec.features.items():
            raw = chunk[col]
            if kind == "int":
                vals, bad, why = rowcheck.int_column(raw, min_value=0, typed=self.typed)
            elif kind == "float":
                vals, bad, why = rowcheck.number_column(raw, typed=self.typed)
            else:
                vals, bad, why = _raw_feature(raw)
            cols["feature." + fname] = vals
            checks.append((col, bad, why))
        if blocks is not None:
            checks.append((spec.prefix_blocks, blocks[2], blocks[3]))
        if spec.arrival is not None and not self.sort:
            others = np.zeros(rows, dtype=bool)
            for _, m, _ in checks:
                others |= m
            tm = np.where(others, -np.inf, t)
            before = np.maximum.accumulate(np.concatenate(([self._max_t], tm)))[:-1]
            ooo = ~others & (t < before)

            def why_order(i: int, before: np.ndarray = before, t: np.ndarray = t) -> str:
                return (
                    f"timestamp goes backwards: {_seconds(t[i])} s after the first row, before "
                    f"{_seconds(before[i])} s on an earlier line (pass sort=True, on the command "
                    "line --sort, to sort the requests)"
                )

            checks.append((spec.arrival, ooo, why_order))
        good = self.problems.add(lines, checks, bad_lines=list(bad_lines))
        if clip_masks:
            clipped = np.zeros(rows, dtype=bool)
            for m in clip_masks:
                clipped |= m
            self._clipped.append(lines[clipped & good])
        keep = good
        more = True
        if spec.arrival is not None:
            cols["arrival_rel"] = t
            if self.sort:  # finish() measures times from the earliest and names a late row's line
                cols["line"] = lines
            if good.any():
                self._max_t = max(self._max_t, float(t[good].max()))
            if not self.sort:
                inside = self._inside(t)
                self.outside_window += int((good & ~inside).sum())
                keep = good & inside
                more = self.end_s is None or self._max_t < self.end_s
        for k, v in cols.items():
            self._cols.setdefault(k, []).append(v[keep])
        if blocks is not None:
            ids, counts, _, _ = blocks
            offs = np.concatenate(([0], np.cumsum(counts)))
            rows = np.flatnonzero(keep)
            pb = PrefixBlocks(ids=ids, offsets=offs).take(rows)
            self._block_ids.append(pb.ids)
            self._block_counts.append(pb.counts())
        return more

    def _inside(self, t: np.ndarray) -> np.ndarray:
        inside = np.ones(t.size, dtype=bool)
        if self.start_s is not None:
            inside &= t >= self.start_s
        if self.end_s is not None:
            inside &= t < self.end_s
        return inside

    # -------------------------------------------------------------- result
    @overload
    def _col(self, key: str, *, required: Literal[True]) -> np.ndarray: ...

    @overload
    def _col(self, key: str, *, required: bool = False) -> np.ndarray | None: ...

    def _col(self, key: str, *, required: bool = False) -> np.ndarray | None:
        """One column, concatenated; its chunks are released (finish runs once). A required
        column of a file without rows is empty."""
        parts = self._cols.pop(key, None)
        if parts is None:
            return (
                np.zeros(0, dtype=np.float64 if key == "arrival_rel" else np.int64)
                if required
                else None
            )
        return np.concatenate(parts)

    def finish(self, *, name: str) -> tuple[Workload, LoadReport]:
        """The workload of every kept row and the report of the whole read."""
        spec = self.spec
        notes: list[str] = []
        out = self._cols.get("output_tokens")
        n = int(sum(p.size for p in out)) if out else 0
        features = {
            k[len("feature.") :]: self._col(k) for k in list(self._cols) if k.startswith("feature.")
        }
        inp = self._col("input_tokens", required=spec.input_tokens is not None)
        if inp is None:
            inp = np.full(n, self.default_input_tokens, dtype=np.int64)
            notes.append(
                f"the file has no prompt lengths: input_tokens set to {self.default_input_tokens} "
                "for every request (pass default_input_tokens=... to change it)"
            )
        columns: dict[str, Any] = {
            "input_tokens": inp,
            "output_tokens": self._col("output_tokens", required=True),
            "group_id": self._col("group_id"),
            "features": features,
        }
        if spec.prefix_blocks is not None:
            counts = np.concatenate([np.zeros(0, np.int64), *self._block_counts])
            offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
            columns["prefix_block_ids"] = PrefixBlocks(
                ids=np.concatenate([np.zeros(0, np.int64), *self._block_ids]), offsets=offsets
            )
        if spec.arrival is None:
            arrival = np.zeros(n)
            notes.append(
                "the file has no timestamps: every request arrives at 0 s (an offline batch); "
                "set arrivals with "
                "w.replace(arrival_s=poisson_arrivals(len(w), rate_per_s=..., seed=...))"
            )
            w = Workload(arrival_s=arrival, name=name, block_tokens=self.block_tokens, **columns)
        else:
            t = self._col("arrival_rel", required=True)
            if self.sort:
                lines = self._col("line", required=True)
                if t.size:
                    t = t - t.min()
                late = t > MAX_TIME_S
                if late.any():  # raises in raise mode

                    def why_late(i: int, t: np.ndarray = t) -> str:
                        return _too_late(t[i], "the earliest timestamp")

                    self.problems.add(lines, [(spec.arrival, late, why_late)])
                    columns = _take_columns(columns, ~late)
                    t = t[~late]
                inside = self._inside(t)
                self.outside_window += int((~inside).sum())
                columns = _take_columns(columns, inside)
                t = t[inside]
            arrival = t - (self.start_s or 0.0)
            maker = Workload.sorted_by_arrival if self.sort else Workload
            w = maker(arrival_s=arrival, name=name, block_tokens=self.block_tokens, **columns)
        report = LoadReport(
            path=self.path,
            format=self.format_name,
            rows_read=self.rows_read,
            rows_loaded=len(w),
            skipped_lines=self.problems.lines(),
            problems=self.problems.sorted_listed(),
            clipped_lines=np.concatenate(self._clipped) if self._clipped else np.zeros(0, np.int64),
            outside_window=self.outside_window,
            notes=tuple(notes),
        )
        return w, report


def _seconds(t: float) -> str:
    return f"{t:.6f}" if abs(t) < 1e12 else f"{t:.6g}"


def _too_late(t: float, since: str) -> str:
    return (
        f"arrival {_seconds(t)} s after {since} is beyond the maximum {MAX_TIME_S:.0f} s "
        "(schedlab.records.MAX_TIME_S)"
    )


def _raw_feature(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, rowcheck.Why]:
    """A text feature column kept as read: a missing value, or text with bytes that are not UTF-8
    (read with ``surrogateescape``; or a lone surrogate from JSON), is a bad row."""
    if isinstance(raw, np.ndarray):  # a typed chunk's column (JSONL integers): none missing
        return raw, np.zeros(raw.shape[0], dtype=bool), lambda i: "missing value"
    vals, missing = raw.to_numpy(), raw.isna().to_numpy()
    if vals.dtype == object:
        vals = vals.astype(str)
    bad = missing
    if vals.dtype.kind == "U" and vals.size:
        try:
            "\n".join(vals.tolist()).encode("utf-8")
        except UnicodeEncodeError:  # rare: find the rows, one by one
            bad = missing | np.fromiter((not _is_utf8(v) for v in vals.tolist()), bool, vals.size)

    def why(i: int) -> str:
        if missing[i]:
            return "missing value"
        try:  # the bytes of the file
            shown = repr(vals[i].encode("utf-8", "surrogateescape"))
        except UnicodeEncodeError:  # a lone surrogate written as a JSON escape
            shown = repr(vals[i])
        return f"not UTF-8 text: {shown if len(shown) <= 60 else shown[:55] + '[...]'}"

    return vals, bad, why


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _take_columns(columns: dict[str, Any], mask: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in columns.items():
        if v is None:
            out[k] = None
        elif k == "features":
            out[k] = {fk: fv[mask] for fk, fv in v.items()}
        elif isinstance(v, PrefixBlocks):
            out[k] = v.take(np.flatnonzero(mask))
        else:
            out[k] = v[mask]
    return out
