"""The seed-reproduction contract: a paper's claims, what we measured, and the report.

Every seed module (one per seed paper, e.g. :mod:`schedlab.seeds.fastserve`) declares its claims as
:class:`Claim` records, reproduces the paper's headline experiment on schedlab's cost model and
simulator, and returns a :class:`SeedReport`. The report's JSON is the contract every seed follows::

    {"paper": "fastserve",
     "claims": [{"name": "...", "metric": "...", "baseline": "...", "paper_value": 5.1,
                 "measured_value": 3.7, "unit": "x", "source": "abstract v1", "holds": true,
                 "note": "..."}],
     "setup": {...},
     "tables": {"slo_vs_rate": {"policy": ["fcfs", ...], "rate_per_s": [0.5, ...], ...}},
     "wall_s": 12.3}

``holds`` says whether the *direction* of the claim is reproduced (for an improvement factor: the
measured factor is above 1), not whether the paper's number is matched. A miss is reported as a
miss, with the reason in ``note``. ``paper_value`` is ``null`` for a check the paper states
without a number; ``measured_value`` is ``null`` only when nothing could be measured (then
``holds`` is false). ``tables`` holds the data behind the figures as tidy tables (a column name
to equal-length lists of numbers, strings or booleans; one row per measured point):
:meth:`SeedReport.frame` gives one as a pandas DataFrame, :meth:`SeedReport.write_tables` writes
them as CSV (``schedlab reproduce`` does, beside the plots).

Example
-------
>>> c = Claim(name="mean-jct", metric="mean JCT, Orca / ours", baseline="orca",
...           paper_value=5.1, unit="x", source="arXiv 2305.05920 v1 abstract")
>>> r = c.measured(3.7, note="max over the rate sweep")
>>> r.holds, c.measured(0.8).holds
(True, False)
>>> rep = SeedReport(paper="demo", claims=(r,), setup={"n_requests": 10}, wall_s=0.5,
...                  tables={"sweep": {"rate_per_s": [1.0, 2.0], "mean_jct_s": [3.1, 9.4]}})
>>> list(rep.to_dict())
['paper', 'claims', 'setup', 'tables', 'wall_s']
>>> rep.to_frame()[["name", "measured_value", "holds"]]
       name  measured_value  holds
0  mean-jct             3.7   True
>>> rep.frame("sweep")
   rate_per_s  mean_jct_s
0         1.0         3.1
1         2.0         9.4
"""

from __future__ import annotations

import json
import math
import operator
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real
from os import PathLike
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from schedlab.errors import check_instance, unknown_name_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CLAIM_KEYS", "DIRECTIONS", "REPORT_KEYS", "Claim", "ClaimResult", "SeedReport",
           "parallel_jobs"]

#: How ``measured_value`` is compared with ``Claim.threshold`` for the claim to hold.
DIRECTIONS: Mapping[str, Callable[[float, float], bool]] = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
#: The keys of one claim in the JSON contract, in order.
CLAIM_KEYS = (
    "name", "metric", "baseline", "paper_value", "measured_value", "unit", "source", "holds",
    "note",
)
#: The keys of a report in the JSON contract, in order.
REPORT_KEYS = ("paper", "claims", "setup", "tables", "wall_s")


def parallel_jobs(quick: bool) -> int:
    """Processes a seed's default run spreads its independent simulations over: two where this
    process may use two cores or more (CPU affinity, not the machine's count), one for
    ``quick`` smoke runs (their tests run many at once).

    >>> parallel_jobs(True)
    1
    """
    if quick:
        return 1
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return min(2, cores)


def _check_text(value: object, name: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(
            f"The {name!r} parameter of {where} must be a non-empty str. Got {value!r} instead."
        )
    return value


def _as_float_or_none(value: object, name: str, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, Real):
        raise ValueError(
            f"The {name!r} parameter of {where} must be a real number or None. "
            f"Got {value!r} instead."
        )
    v = float(value)
    return None if math.isnan(v) else v


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One claim of a seed paper: what is measured, against what, and the paper's number.

    Parameters
    ----------
    name : short identifier, unique within the paper (``"mean-jct-vs-orca"``).
    metric : what the measured value is, in words (``"mean JCT, Orca / skip-join MLFQ"``).
    baseline : the system the paper compares against (``"Orca (fcfs)"``).
    paper_value : the paper's number, or ``None`` for a qualitative check.
    unit : unit of both values (``"x"`` for a ratio).
    source : where the paper states it (``"arXiv 2305.05920 v1 abstract"``).
    direction : one of ``">"``, ``">="``, ``"<"``, ``"<="``; the claim *holds* when
        ``measured_value <direction> threshold``.
    threshold : the value the direction is judged against (1.0: "better than the baseline").

    >>> Claim(name="c", metric="m", baseline="b", paper_value=2.0, unit="x", source="s",
    ...       direction="<=").holds(1.0)
    True
    """

    name: str
    metric: str
    baseline: str
    paper_value: float | None
    unit: str
    source: str
    direction: Literal[">", ">=", "<", "<="] = ">"
    threshold: float = 1.0

    def __post_init__(self) -> None:
        for f in ("name", "metric", "baseline", "unit", "source"):
            _check_text(getattr(self, f), f, "Claim")
        object.__setattr__(
            self, "paper_value", _as_float_or_none(self.paper_value, "paper_value", "Claim")
        )
        if self.direction not in DIRECTIONS:
            raise ValueError(
                f"The 'direction' parameter of Claim must be one of {sorted(DIRECTIONS)}. "
                f"Got {self.direction!r} instead."
            )
        t = _as_float_or_none(self.threshold, "threshold", "Claim")
        if t is None or not math.isfinite(t):
            raise ValueError(
                "The 'threshold' parameter of Claim must be a finite float. "
                f"Got {self.threshold!r} instead."
            )
        object.__setattr__(self, "threshold", t)

    @property
    def condition(self) -> str:
        """The holding condition in words, e.g. ``"> 1"``."""
        return f"{self.direction} {self.threshold:g}"

    def holds(self, measured_value: float | None) -> bool:
        """Whether ``measured_value`` reproduces the claim's direction (never for ``None``/NaN)."""
        v = _as_float_or_none(measured_value, "measured_value", "Claim.holds")
        return v is not None and bool(DIRECTIONS[self.direction](v, self.threshold))

    def factor_note(self, value: float, factor: float = 2.0) -> str:
        """Whether a measured ratio ``value`` is within ``factor`` of the paper's, as a sentence
        for a note (empty without a paper value or a positive ``value``).

        >>> Claim(name="c", metric="m", baseline="b", paper_value=5.1, unit="x",
        ...       source="s").factor_note(3.7)
        ' Paper 5.1x, measured 3.7x: within 2x (1.38x apart).'
        """
        if self.paper_value is None or not value > 0 or not math.isfinite(value):
            return ""
        off = max(self.paper_value / value, value / self.paper_value)
        within = "within" if off <= factor else "NOT within"
        return (f" Paper {self.paper_value:g}x, measured {value:.3g}x: {within} {factor:g}x "
                f"({off:.2f}x apart).")

    def measured(self, value: float | None, *, note: str = "") -> ClaimResult:
        """The :class:`ClaimResult` of this claim for a measured ``value``."""
        return ClaimResult(claim=self, measured_value=value, note=note)


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimResult:
    """A :class:`Claim` with the value we measured and a note (how it was measured, or why a miss).

    ``holds`` is derived from the claim's direction, never set by hand.
    """

    claim: Claim
    measured_value: float | None
    note: str = ""

    def __post_init__(self) -> None:
        check_instance(self.claim, Claim, "claim", "ClaimResult")
        object.__setattr__(
            self,
            "measured_value",
            _as_float_or_none(self.measured_value, "measured_value", "ClaimResult"),
        )
        if self.measured_value is not None and not math.isfinite(self.measured_value):
            raise ValueError(
                "The 'measured_value' parameter of ClaimResult must be finite or None (JSON has no "
                f"infinity); got {self.measured_value!r}. Report a bound and say so in the note."
            )
        if not isinstance(self.note, str):
            raise ValueError(
                f"The 'note' parameter of ClaimResult must be a str. Got {self.note!r} instead."
            )

    @property
    def holds(self) -> bool:
        """Whether the measured value reproduces the direction of the claim."""
        return self.claim.holds(self.measured_value)

    def to_dict(self) -> dict[str, Any]:
        """The claim's entry of the JSON contract (keys :data:`CLAIM_KEYS`, in order)."""
        c = self.claim
        return {
            "name": c.name,
            "metric": c.metric,
            "baseline": c.baseline,
            "paper_value": c.paper_value,
            "measured_value": self.measured_value,
            "unit": c.unit,
            "source": c.source,
            "holds": self.holds,
            "note": self.note,
        }


def _check_tables(tables: object) -> dict[str, dict[str, list[Any]]]:
    """``tables`` as plain dicts of lists, checked: names are identifiers-like strings, columns of
    one table have equal lengths, cells are finite numbers, strings, booleans or None."""
    where = "The 'tables' parameter of SeedReport"
    if not isinstance(tables, Mapping):
        raise ValueError(f"{where} must be a mapping of name -> table. "
                         f"Got {type(tables).__name__} instead.")
    out: dict[str, dict[str, list[Any]]] = {}
    for name, table in tables.items():
        if not isinstance(name, str) or not name or not name.replace("_", "").isalnum():
            raise ValueError(f"{where} needs table names of letters, digits and '_' (they name "
                             f"CSV files). Got {name!r}.")
        if not isinstance(table, Mapping) or not table:
            raise ValueError(f"{where}: table {name!r} must be a non-empty mapping of column -> "
                             f"values. Got {type(table).__name__}.")
        cols = {str(k): [v.item() if hasattr(v, "item") else v for v in vals]
                for k, vals in table.items()}
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{where}: the columns of table {name!r} differ in length: {lengths}")
        for k, vals in cols.items():
            bad = [v for v in vals if not (v is None or isinstance(v, (str, bool))
                                           or (isinstance(v, Real) and math.isfinite(v)))]
            if bad:
                raise ValueError(f"{where}: column {k!r} of table {name!r} holds {bad[0]!r}; "
                                 "cells must be finite numbers, strings, booleans or None.")
        out[name] = cols
    return out


@dataclass(frozen=True, slots=True, kw_only=True)
class SeedReport:
    """What a seed module's ``run()`` returns: the claims as measured, the setup, the data behind
    the figures, the wall time.

    ``setup`` is a JSON-serialisable mapping (model, GPU, dataset, sizes, rates, policies,
    parameters, seeds, files written). ``tables`` maps a name to a tidy table (column -> list of
    values, one row per measured point, e.g. policy x rate). ``wall_s`` is the wall-clock seconds
    of the run.
    """

    paper: str
    claims: tuple[ClaimResult, ...]
    setup: Mapping[str, Any] = field(default_factory=dict)
    tables: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    wall_s: float = 0.0

    def __post_init__(self) -> None:
        _check_text(self.paper, "paper", "SeedReport")
        claims = tuple(self.claims)
        if not claims or not all(isinstance(c, ClaimResult) for c in claims):
            raise ValueError(
                "The 'claims' parameter of SeedReport must be a non-empty sequence of ClaimResult. "
                f"Got {self.claims!r}."
            )
        names = [c.claim.name for c in claims]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"The 'claims' parameter of SeedReport repeats claim names {dup}.")
        object.__setattr__(self, "claims", claims)
        if not isinstance(self.setup, Mapping):
            raise ValueError(
                "The 'setup' parameter of SeedReport must be a mapping. "
                f"Got {type(self.setup).__name__} instead."
            )
        try:
            setup = json.loads(json.dumps(dict(self.setup), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"The 'setup' parameter of SeedReport must be JSON-serialisable: {exc}"
            ) from None
        object.__setattr__(self, "setup", MappingProxyType(setup))
        object.__setattr__(self, "tables", MappingProxyType(_check_tables(self.tables)))
        w = _as_float_or_none(self.wall_s, "wall_s", "SeedReport")
        if w is None or w < 0 or not math.isfinite(w):
            raise ValueError(
                "The 'wall_s' parameter of SeedReport must be a float in [0, inf). "
                f"Got {self.wall_s!r} instead."
            )
        object.__setattr__(self, "wall_s", w)

    @property
    def n_holding(self) -> int:
        """How many claims hold."""
        return sum(c.holds for c in self.claims)

    def to_dict(self) -> dict[str, Any]:
        """The JSON contract as plain Python objects (keys :data:`REPORT_KEYS`, in order)."""
        return {
            "paper": self.paper,
            "claims": [c.to_dict() for c in self.claims],
            "setup": json.loads(json.dumps(dict(self.setup))),  # a deep copy
            "tables": {name: {k: list(v) for k, v in t.items()} for name, t in self.tables.items()},
            "wall_s": self.wall_s,
        }

    def to_json(self, **kwargs: Any) -> str:
        """The report as one JSON document (strict: no NaN or infinity)."""
        return json.dumps(self.to_dict(), allow_nan=False, **kwargs)

    def to_frame(self) -> pd.DataFrame:
        """The claims as a DataFrame: one row per claim, columns :data:`CLAIM_KEYS` and
        ``paper``."""
        import pandas as pd

        rows = [{"paper": self.paper, **c.to_dict()} for c in self.claims]
        return pd.DataFrame(rows, columns=["paper", *CLAIM_KEYS])

    def frame(self, table: str) -> pd.DataFrame:
        """One of :attr:`tables` as a DataFrame (``ValueError`` naming the known tables)."""
        import pandas as pd

        if table not in self.tables:
            raise unknown_name_error(f"table of the {self.paper} report", table, self.tables)
        return pd.DataFrame({k: list(v) for k, v in self.tables[table].items()})

    def write_tables(self, directory: str | PathLike[str]) -> list[str]:
        """Write each table as ``DIRECTORY/<paper>_<table>.csv``; returns the paths written."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        written = []
        for name in self.tables:
            target = path / f"{self.paper}_{name}.csv"
            self.frame(name).to_csv(target, index=False)
            written.append(str(target))
        return written
