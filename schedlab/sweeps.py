"""Parameter sweeps: run a function (a simulation, a reproduction, a gap study) over a grid of
parameters, on local processes, a Ray cluster or a Dask cluster, and get one row per point.

>>> import schedlab
>>> def queue(rate, servers, seed):
...     return {"load": rate / servers, "seed_is_int": isinstance(seed, int)}
>>> df = schedlab.sweep(queue, {"rate": [1.0, 2.0], "servers": [1, 4]}, n_jobs=1)
>>> df.drop(columns=["seed", "wall_s"])
   rate  servers  load  seed_is_int error
0   1.0        1  1.00         True  None
1   1.0        4  0.25         True  None
2   2.0        1  2.00         True  None
3   2.0        4  0.50         True  None

**The grid** is a mapping ``name -> list of values`` (the Cartesian product, the first name
varying slowest, values in the order given) or a list of mappings (explicit points, each naming
the same parameters). Values are scalars: numbers, strings, booleans or ``None``. ``fixed``
holds constant keyword arguments (any objects; they are not columns of the frame).

**Seeds.** Each point gets its own seed, derived from the sweep's ``seed`` and the point's
parameters alone (:func:`point_seed`: numpy's ``SeedSequence`` keyed by a SHA-256 of the point's
canonical JSON), so a point gives the same result on any backend, with any number of workers,
in any grid that holds it. The seed is passed as the keyword ``seed`` to a function that names a
``seed`` parameter (a function taking only ``**kwargs`` does not get it) and recorded in the
``seed`` column. It lies in ``[0, 2**32)``, the range numpy's ``RandomState`` and so
scikit-learn's ``random_state`` accept. To repeat a point with several seeds, add a parameter
(``"rep": [0, 1, 2]``): each value gives the point another seed.

**The function** returns a flat mapping ``metric name -> scalar`` (a number, string, boolean or
``None``; numpy scalars are converted), or one scalar (column ``value``). Anything else (a
nested value, a list, a report object) fails that point with a message saying so. A metric may
not take the name of a parameter or of the columns ``seed``, ``wall_s`` and ``error``.

**The frame** has one row per point, in grid order: the parameters (in grid order), ``seed``,
the metrics (in the order first returned, over the points in grid order), ``wall_s`` (the
function's wall-clock seconds) and ``error`` (``None`` when the point ran;
``"ExceptionType: message"`` when the function raised, its metrics then missing). A failing point
never stops the others. Frames are identical across backends and worker counts but for
``wall_s``.

**Backends** (``backend=``): ``None`` or ``"local"`` runs on local processes through joblib
(loky), ``n_jobs`` of them (default: every core; ``n_jobs=1`` runs in this process, for a
debugger); ``"ray"`` runs each point as a Ray task (``pip install "schedlab[ray]"``; if Ray is not
initialised, :func:`ray.init` is called, which connects to ``RAY_ADDRESS`` when it is set and
otherwise starts Ray on this machine, and leaves it running for the next sweep); ``"dask"`` runs
through joblib's Dask backend on the ``distributed.Client`` you created first (``pip install
"schedlab[dask]"``). On Ray and Dask, and on local processes, the function must be importable by
the workers (a module of an installed package or on ``PYTHONPATH``), or defined in ``__main__`` or
a notebook (then it is pickled by value). ``n_jobs`` caps the points run at once there too
(default: as many as the cluster runs). schedlab imports Ray and Dask only inside the sweep.

**Output and resuming.** ``output=`` (a ``.csv`` or ``.parquet`` file; Parquet needs pyarrow)
receives the frame, rewritten as points finish (at most every few seconds, atomically), so a
sweep that is killed loses only the points still running. With ``resume=True`` (the default) an
existing output is read first: points with a row there that ran are not run again (their rows
are returned as read), failed and missing points run. A row matches a point by its seed and its
parameters, so an output written with another sweep seed matches nothing and is refused rather
than overwritten (as is one holding points outside the grid); pass ``resume=False`` to overwrite
it. Resuming trusts the file: after changing the function or ``fixed``, write a new output.

**Progress.** ``progress=None`` draws a bar over the finished points where
:mod:`schedlab.progress` bars are on (the ``schedlab`` command on a terminal, or inside
``showing_progress()``); ``True`` always draws one (on stderr), ``False`` never.

A point whose function raises is recorded; a failure of the machinery itself (a worker that
cannot import the function, a worker killed, Ctrl-C) stops the sweep after the points that
finished are written to ``output``, and a second call resumes from there.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import itertools
import json
import math
import os
import re
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from schedlab.errors import check_nonneg_int, check_positive_int, unknown_name_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["sweep", "run_sweep", "SweepRun", "point_seed", "load_function", "BACKENDS",
           "RESERVED_COLUMNS"]

#: The backends :func:`sweep` runs on (``None`` means ``"local"``).
BACKENDS = ("local", "ray", "dask")
#: Columns every sweep frame has besides the parameters and metrics.
RESERVED_COLUMNS = ("seed", "wall_s", "error")
#: The output formats, by suffix.
_FORMATS = (".csv", ".parquet")
#: The extra that installs each cluster backend's package.
_EXTRAS = {"ray": ("ray", "ray"), "dask": ("distributed", "dask")}
#: Seconds between two rewrites of the output while a sweep runs (at least ten times the time
#: the last rewrite took).
_WRITE_EVERY_S = 2.0

Scalar = None | bool | int | float | str
_WHERE = "sweep"


# --------------------------------------------------------------------------------------- seeds


def _canonical(params: Mapping[str, Scalar]) -> str:
    return json.dumps(dict(params), sort_keys=True, separators=(",", ":"), allow_nan=False)


def point_seed(seed: int, params: Mapping[str, Any]) -> int:
    """The seed a sweep with seed ``seed`` gives the point ``params``: an int in ``[0, 2**32)``.

    It depends on the sweep seed and on the parameters' names and values (their canonical JSON:
    key order does not matter, ``1`` and ``1.0`` differ), and on nothing else.

    >>> point_seed(0, {"rate": 2.0, "policy": "fcfs"}) == point_seed(0, {"policy": "fcfs",
    ...                                                                  "rate": 2.0})
    True
    >>> point_seed(0, {"rate": 2.0}) != point_seed(1, {"rate": 2.0})
    True
    """
    seed = check_nonneg_int(seed, "seed", "point_seed")
    digest = hashlib.sha256(_canonical(params).encode("utf-8")).digest()
    key = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 32, 4))
    ss = np.random.SeedSequence(entropy=seed, spawn_key=key)
    return int(ss.generate_state(1, np.uint32)[0])


# --------------------------------------------------------------------------- checking the input


def _scalar(value: Any) -> Scalar:
    """``value`` as a plain Python scalar, or raise ``TypeError``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value[()]
    if isinstance(value, np.generic) and value.dtype.kind in "biufU":
        return value.item()
    raise TypeError(type(value).__name__)


def _check_name(name: object, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"The {what!r} parameter of {_WHERE} needs names that are Python "
                         f"identifiers (they are keyword arguments). Got {name!r}.")
    if name in RESERVED_COLUMNS:
        hint = (" Each point's seed is derived from the sweep's seed= (see point_seed); to repeat "
                "a point, add a parameter such as 'rep': [0, 1, 2]." if name == "seed" else "")
        raise ValueError(f"The {what!r} parameter of {_WHERE} may not name {name!r}: it is a "
                         f"column of every sweep ({', '.join(RESERVED_COLUMNS)}).{hint}")
    return name


def _grid_value(name: str, value: Any) -> Scalar:
    try:
        v = _scalar(value)
    except TypeError:
        raise ValueError(f"The 'grid' parameter of {_WHERE}: {name!r} holds {value!r} "
                         f"({type(value).__name__}); grid values must be numbers, strings, "
                         "booleans or None.") from None
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"The 'grid' parameter of {_WHERE}: {name!r} holds {v!r}; grid values "
                         "must be finite.")
    return v


def _values(name: str, values: Any) -> list[Scalar]:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if isinstance(values, (str, bytes, Mapping)) or not isinstance(values, (Sequence, range)):
        raise ValueError(f"The 'grid' parameter of {_WHERE}: {name!r} must be a list of values. "
                         f"Got {type(values).__name__} {values!r:.80}.")
    if len(values) == 0:
        raise ValueError(f"The 'grid' parameter of {_WHERE}: {name!r} is an empty list.")
    return [_grid_value(name, v) for v in values]


def _points(grid: Any) -> tuple[list[str], list[dict[str, Scalar]]]:
    """The parameter names and the points of ``grid``, checked (see the module docstring)."""
    if isinstance(grid, Mapping):
        if not grid:
            raise ValueError(f"The 'grid' parameter of {_WHERE} is empty; give name -> list of "
                             "values.")
        names = [_check_name(k, "grid") for k in grid]
        axes = [_values(k, v) for k, v in grid.items()]
        points = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes)]
    elif isinstance(grid, Sequence) and not isinstance(grid, (str, bytes)):
        if len(grid) == 0:
            raise ValueError(f"The 'grid' parameter of {_WHERE} is an empty list of points.")
        first = grid[0]
        if not isinstance(first, Mapping) or not first:
            raise ValueError(f"The 'grid' parameter of {_WHERE}: point 0 must be a non-empty "
                             f"mapping of name -> value. Got {first!r:.80}.")
        names = [_check_name(k, "grid") for k in first]
        points = []
        for i, p in enumerate(grid):
            if not isinstance(p, Mapping) or set(p) != set(names):
                got = sorted(p) if isinstance(p, Mapping) else type(p).__name__
                raise ValueError(f"The 'grid' parameter of {_WHERE}: point {i} names {got}, "
                                 f"point 0 {sorted(names)}; every point must name the same "
                                 "parameters.")
            points.append({k: _grid_value(k, p[k]) for k in names})
    else:
        raise ValueError(f"The 'grid' parameter of {_WHERE} must be a mapping of name -> list of "
                         f"values, or a list of points (mappings). Got {type(grid).__name__}.")
    seen: dict[str, int] = {}
    for i, p in enumerate(points):
        key = _canonical(p)
        if key in seen:
            raise ValueError(f"The 'grid' parameter of {_WHERE} holds the point {p} twice "
                             f"(points {seen[key]} and {i}).")
        seen[key] = i
    return names, points


def _fixed(fixed: Mapping[str, Any] | None, names: list[str]) -> dict[str, Any]:
    if fixed is None:
        return {}
    if not isinstance(fixed, Mapping):
        raise ValueError(f"The 'fixed' parameter of {_WHERE} must be a mapping of name -> value. "
                         f"Got {type(fixed).__name__}.")
    for k in fixed:
        _check_name(k, "fixed")
        if k in names:
            raise ValueError(f"The 'fixed' parameter of {_WHERE} names {k!r}, which the grid "
                             "varies; give it in one of them.")
    return dict(fixed)


def _takes_seed(fn: Callable[..., Any], names: list[str], fixed: Mapping[str, Any]) -> bool:
    """Whether ``fn`` takes ``seed``; raise ``ValueError`` when the grid and ``fixed`` give a
    keyword ``fn`` does not take, or miss one it needs (when its signature can be read)."""
    try:
        ps = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    by_name = {p.name: p for p in ps if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    takes_seed = "seed" in by_name
    label = getattr(fn, "__qualname__", repr(fn))
    given = [*names, *fixed]
    if not any(p.kind is p.VAR_KEYWORD for p in ps):
        for k in given:
            if k not in by_name:
                known = [n for n in by_name if n != "seed"]
                raise ValueError(f"The {'grid' if k in names else 'fixed'!r} parameter of "
                                 f"{_WHERE} names {k!r}, which {label} does not take. Its "
                                 f"parameters: {', '.join(map(repr, known)) or 'none'}.")
    for p in ps:
        needed = p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        if needed and p.name not in given and not (p.name == "seed" and takes_seed):
            raise ValueError(f"{label}() needs the parameter {p.name!r}, which neither the "
                             f"grid nor fixed of {_WHERE} gives.")
    return takes_seed


def load_function(path: str) -> Callable[..., Any]:
    """The function that ``"package.module:attribute"`` names (the attribute may be dotted).

    >>> load_function("schedlab.sweeps:point_seed").__name__
    'point_seed'
    >>> load_function("schedlab.sweeps.point_seed")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: function 'schedlab.sweeps.point_seed' must be written 'module:attribute'...
    """
    if not isinstance(path, str) or path.count(":") != 1:
        raise ValueError(f"function {path!r} must be written 'module:attribute', e.g. "
                         "'schedlab.sweeps:point_seed'.")
    module_name, attr = path.split(":")
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"function {path!r}: cannot import module {module_name!r}: "
                         f"{exc}") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"function {path!r}: {module_name!r} has no attribute {attr!r}.")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"function {path!r} is a {type(obj).__name__}, not a function.")
    return obj


def _output(output: str | os.PathLike[str] | None) -> Path | None:
    if output is None:
        return None
    path = Path(output)
    suffix = path.suffix.lower()
    if suffix not in _FORMATS:
        raise ValueError(f"The 'output' parameter of {_WHERE} must be a .csv or .parquet file. "
                         f"Got {str(path)!r}.")
    if path.is_dir():
        raise ValueError(f"The 'output' parameter of {_WHERE}: {str(path)!r} is a directory; "
                         "give a file name.")
    if suffix == ".parquet" and importlib.util.find_spec("pyarrow") is None:
        raise ValueError(f"The 'output' parameter of {_WHERE}: writing {str(path)!r} needs "
                         "pyarrow (pip install pyarrow), or write a .csv file.")
    return path


# ------------------------------------------------------------------------------- running a point


def _metrics(result: Any, taken: frozenset[str]) -> dict[str, Scalar]:
    """The flat mapping of metrics a function returned, checked."""
    items = result.items() if isinstance(result, Mapping) else [("value", result)]
    out: dict[str, Scalar] = {}
    for name, value in items:
        if not isinstance(name, str) or not name:
            raise TypeError(f"metric names must be non-empty strings; got {name!r}")
        if name in taken:
            raise ValueError(f"metric {name!r} has the name of a parameter or of a sweep column "
                             f"({', '.join(RESERVED_COLUMNS)}); rename it")
        try:
            out[name] = _scalar(value)
        except TypeError:
            what = "the function returned" if name == "value" and not isinstance(
                result, Mapping) else f"metric {name!r} is"
            raise TypeError(f"{what} a {type(value).__name__}; a sweep function returns a flat "
                            "mapping of metric name -> number, string, boolean or None") from None
    return out


class _Outcome(NamedTuple):
    metrics: dict[str, Scalar] | None
    wall_s: float
    error: str | None


def _run_point(job: tuple[Callable[..., Any], dict[str, Any], bool, frozenset[str]],
               params: dict[str, Scalar], seed: int) -> _Outcome:
    """Run one point (in a worker): the metrics, or the error the function raised."""
    fn, fixed, takes_seed, taken = job
    kwargs = {**params, **fixed, **({"seed": seed} if takes_seed else {})}
    start = time.perf_counter()
    try:
        result = fn(**kwargs)
        wall_s = time.perf_counter() - start
        return _Outcome(_metrics(result, taken), wall_s, None)
    except Exception as exc:
        wall_s = time.perf_counter() - start
        text = str(exc)
        return _Outcome(None, wall_s, f"{type(exc).__name__}: {text}" if text
                        else type(exc).__name__)


def _indexed(i: int, job: Any, params: dict[str, Scalar], seed: int) -> tuple[int, _Outcome]:
    return i, _run_point(job, params, seed)


# ------------------------------------------------------------------------------------ backends


def _import_backend(backend: str) -> Any:
    module, extra = _EXTRAS[backend]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ValueError(f"backend={backend!r} needs {module}, which is not installed: pip "
                         f"install \"schedlab[{extra}]\" (from a checkout: pip install -e "
                         f"\".[{extra}]\").") from None


Todo = list[tuple[int, dict[str, Scalar], int]]
Results = Generator[tuple[int, _Outcome], None, None]


def _run_local(job: Any, todo: Todo, n_jobs: int | None) -> Results:
    k = min(n_jobs or os.cpu_count() or 1, len(todo))
    if k <= 1:
        for i, params, seed in todo:
            yield i, _run_point(job, params, seed)
        return
    from joblib import Parallel, delayed

    run = Parallel(n_jobs=k, backend="loky", return_as="generator_unordered")
    yield from run(delayed(_indexed)(i, job, params, seed) for i, params, seed in todo)


def _run_dask(job: Any, todo: Todo, n_jobs: int | None) -> Results:
    distributed = _import_backend("dask")
    try:
        distributed.default_client()
    except ValueError:
        raise ValueError("backend='dask' runs on a Dask cluster through the distributed.Client "
                         "you create first: `from distributed import Client; client = "
                         "Client(ADDRESS)` (or Client() for a cluster on this machine).") from None
    import joblib

    with joblib.parallel_config(backend="dask"):
        run = joblib.Parallel(n_jobs=n_jobs or -1, return_as="generator_unordered")
        yield from run(joblib.delayed(_indexed)(i, job, params, seed) for i, params, seed in todo)


def _run_ray(job: Any, todo: Todo, n_jobs: int | None) -> Results:
    # Each point is a Ray task: ray.util.joblib's backend returns nothing before the whole
    # batch is done (it supports no return_as="generator"), which would leave a killed sweep
    # nothing to resume from and the bar still until the end.
    ray = _import_backend("ray")
    if not ray.is_initialized():
        ray.init()
    remote = ray.remote(num_cpus=1)(_run_point)
    shared = ray.put(job)
    waiting = iter(todo)
    index: dict[Any, int] = {}
    limit = n_jobs or len(todo)

    def submit() -> None:
        for i, params, seed in waiting:
            index[remote.remote(shared, params, seed)] = i
            if len(index) >= limit:
                return

    submit()
    try:
        while index:
            done, _ = ray.wait(list(index), num_returns=1)
            for ref in done:
                yield index.pop(ref), ray.get(ref)
            submit()
    finally:
        for ref in index:
            ray.cancel(ref)


_RUNNERS = {"local": _run_local, "ray": _run_ray, "dask": _run_dask}


# ----------------------------------------------------------------------------- output and resume


_INT = re.compile(r"[+-]?[0-9]+")


def _cell(value: Any) -> str:
    """How a value is written to a CSV output (``None`` as an empty cell)."""
    return "" if value is None else str(value)


def _parse(text: str) -> Scalar:
    """A CSV cell back as the value :func:`_cell` wrote: ``None``, a bool, an int, a float or a
    string (a string that reads as a number comes back as the number)."""
    if text == "":
        return None
    if text in ("True", "False"):
        return text == "True"
    if _INT.fullmatch(text):
        return int(text)
    if "_" not in text:
        try:
            return float(text)
        except ValueError:
            pass
    return text


def _plain(value: Any) -> Any:
    """A value read from a Parquet output as a plain Python scalar (``None`` for nulls)."""
    import pandas as pd

    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _read(path: Path) -> list[dict[str, Any]]:
    """The rows of an output file as records of plain values (see :func:`_write`)."""
    import pandas as pd

    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path, dtype_backend="numpy_nullable")
        return [{k: _plain(v) for k, v in rec.items()} for rec in frame.to_dict("records")]
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return []
    return [{k: _parse(v) for k, v in rec.items()} for rec in frame.to_dict("records")]


def _same(want: Scalar, got: Any) -> bool:
    """Whether a value read back from an output file is the grid value ``want`` (numbers also
    by value, for a file that another program rewrote: ``1.50`` for ``1.5``)."""
    if _cell(want) == _cell(got):
        return True
    numbers = (int, float)
    return (isinstance(want, numbers) and isinstance(got, numbers)
            and not isinstance(want, bool) and not isinstance(got, bool)
            and float(want) == float(got))


def _resumed(path: Path, names: list[str], points: list[dict[str, Scalar]],
             seeds: list[int]) -> dict[int, dict[str, Any]]:
    """The rows of an earlier output, by point index (see the module docstring)."""
    records = _read(path)
    if not records:
        return {}
    missing = [c for c in (*names, *RESERVED_COLUMNS) if c not in records[0]]
    if missing:
        raise ValueError(f"The 'output' parameter of {_WHERE}: {str(path)!r} is not this sweep's "
                         f"output (it has no column {missing[0]!r}); pass resume=False to "
                         "overwrite it, or choose another file.")
    by_seed: dict[Any, list[int]] = {}
    for i, s in enumerate(seeds):
        by_seed.setdefault(s, []).append(i)
    metrics = [c for c in records[0] if c not in names and c not in RESERVED_COLUMNS]
    rows: dict[int, dict[str, Any]] = {}
    stray = 0
    for rec in records:
        match = [i for i in by_seed.get(rec["seed"], [])
                 if all(_same(points[i][k], rec[k]) for k in names)]
        if not match:
            stray += 1
            continue
        rows[match[0]] = {
            "metrics": {m: rec[m] for m in metrics},
            "wall_s": rec["wall_s"],
            "error": None if rec["error"] in (None, "") else str(rec["error"]),
        }
    if stray:
        raise ValueError(f"The 'output' parameter of {_WHERE}: {stray} row(s) of {str(path)!r} "
                         "match no point of this sweep (another grid, or another sweep seed); "
                         "pass resume=False to overwrite it, or choose another file.")
    return rows


def _records(names: list[str], points: list[dict[str, Scalar]], seeds: list[int],
             rows: Mapping[int, Mapping[str, Any]]) -> tuple[list[str], list[dict[str, Any]]]:
    """The columns and the records of the points that have a row, in grid order."""
    metric_names: dict[str, None] = {}
    records = []
    for i in sorted(rows):
        row = rows[i]
        metric_names.update(dict.fromkeys(row["metrics"]))
        records.append({**points[i], "seed": seeds[i], **row["metrics"],
                        "wall_s": row["wall_s"], "error": row["error"]})
    return [*names, "seed", *metric_names, "wall_s", "error"], records


def _frame(columns: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=columns)
    # None where the point ran, whatever pandas would infer (NaN beside strings, or floats)
    frame["error"] = pd.Series([r["error"] for r in records], index=frame.index, dtype=object)
    return frame


def _write(columns: list[str], records: list[dict[str, Any]], path: Path) -> None:
    """Write the records to ``path`` atomically (a killed sweep never leaves half a file).

    Each value is written as itself (an int stays an int beside a missing value, where a
    pandas column would turn it into a float), so a resumed frame equals a fresh one.
    """
    import pandas as pd

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if path.suffix.lower() == ".parquet":
            # object columns, missing cells None: pyarrow infers each column's type from them
            frame = pd.DataFrame({c: pd.Series([r.get(c) for r in records], dtype=object)
                                  for c in columns}, columns=columns)
            frame.to_parquet(tmp, index=False)
        else:
            cells = [[_cell(r.get(c)) for c in columns] for r in records]
            pd.DataFrame(cells, columns=columns, dtype=object).to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------- sweep


@dataclass(frozen=True)
class SweepRun:
    """What :func:`run_sweep` did: the frame, the points run now, those read back from the
    output (``resumed``), those whose function raised (``failed``), the wall time and the
    output file."""

    frame: pd.DataFrame
    ran: int
    resumed: int
    failed: int
    wall_s: float
    output: Path | None


def _label(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or "function")


def run_sweep(
    fn: Callable[..., Any] | str,
    grid: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    backend: str | None = None,
    n_jobs: int | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool | None = None,
) -> SweepRun:
    """:func:`sweep`, returning the frame with counts of the points run, resumed and failed."""
    if isinstance(fn, str):
        fn = load_function(fn)
    if not callable(fn):
        raise ValueError(f"The 'fn' parameter of {_WHERE} must be a function or "
                         f"'module:attribute'. Got {type(fn).__name__}.")
    names, points = _points(grid)
    const = _fixed(fixed, names)
    seed = check_nonneg_int(seed, "seed", _WHERE)
    name = "local" if backend is None else backend
    if name not in _RUNNERS:
        raise unknown_name_error("backend", str(name), BACKENDS)
    if n_jobs is not None:
        n_jobs = check_positive_int(n_jobs, "n_jobs", _WHERE)
    path = _output(output)
    takes_seed = _takes_seed(fn, names, const)
    if name != "local":
        _import_backend(name)  # a missing package fails before anything runs

    seeds = [point_seed(seed, p) for p in points]
    rows: dict[int, dict[str, Any]] = {}
    if path is not None and resume and path.exists():
        rows = _resumed(path, names, points, seeds)
    resumed = sum(r["error"] is None for r in rows.values())
    todo = [(i, points[i], seeds[i]) for i in range(len(points))
            if i not in rows or rows[i]["error"] is not None]
    job = (fn, const, takes_seed, frozenset([*names, *RESERVED_COLUMNS]))

    start = time.perf_counter()
    last_write, write_cost = start, 0.0
    bars: AbstractContextManager[None] = nullcontext()
    if progress is not None:
        from schedlab.progress import showing_progress

        bars = showing_progress(bool(progress))
    from schedlab.progress import counter

    results = _RUNNERS[name](job, todo, n_jobs)
    try:
        with bars, counter(f"sweep {_label(fn)}: points", total=len(todo)) as tick:
            for i, out in results if todo else ():
                rows[i] = {"metrics": out.metrics or {}, "wall_s": out.wall_s,
                           "error": out.error}
                tick()
                now = time.perf_counter()
                if path is not None and now - last_write >= max(_WRITE_EVERY_S, 10 * write_cost):
                    _write(*_records(names, points, seeds, rows), path)
                    last_write = time.perf_counter()
                    write_cost = last_write - now
    finally:  # what finished is kept, whatever stopped the sweep
        results.close()  # stops the workers' remaining points when the sweep stops early
        columns, records = _records(names, points, seeds, rows)
        if path is not None and (todo or not path.exists()):
            _write(columns, records, path)
    frame = _frame(columns, records)
    failed = int(frame["error"].notna().sum())
    return SweepRun(frame=frame, ran=len(todo), resumed=resumed, failed=failed,
                    wall_s=time.perf_counter() - start, output=path)


def sweep(
    fn: Callable[..., Any] | str,
    grid: Mapping[str, Any] | Sequence[Mapping[str, Any]],
    *,
    fixed: Mapping[str, Any] | None = None,
    seed: int = 0,
    backend: str | None = None,
    n_jobs: int | None = None,
    output: str | os.PathLike[str] | None = None,
    resume: bool = True,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Run ``fn`` at every point of ``grid`` and return one row per point (see the module
    docstring of :mod:`schedlab.sweeps` for every rule).

    Parameters
    ----------
    fn : the function (or ``"module:attribute"``), called as ``fn(**point, **fixed, seed=...)``
        (``seed`` only when it names a ``seed`` parameter); returns a flat mapping of metric
        name -> scalar, or one scalar.
    grid : ``{name: [values, ...]}`` (the Cartesian product, first name slowest) or a list of
        points ``[{name: value}, ...]``.
    fixed : constant keyword arguments, not columns of the frame.
    seed : the sweep's seed (each point's seed derives from it and the point's parameters).
    backend : ``None``/``"local"`` (local processes), ``"ray"`` or ``"dask"``.
    n_jobs : points run at once (local default: every core; 1 runs in this process).
    output : a ``.csv`` or ``.parquet`` file, rewritten as points finish.
    resume : read ``output`` first and run only the points it lacks or that failed there.
    progress : ``None`` as :mod:`schedlab.progress` says, ``True`` always a bar, ``False`` none.

    >>> def f(x):
    ...     if x == 2:
    ...         raise RuntimeError("no luck")
    ...     return x * x
    >>> sweep(f, {"x": [1, 2, 3]}, n_jobs=1)[["x", "value", "error"]]
       x  value                  error
    0  1    1.0                   None
    1  2    NaN  RuntimeError: no luck
    2  3    9.0                   None
    """
    return run_sweep(fn, grid, fixed=fixed, seed=seed, backend=backend, n_jobs=n_jobs,
                     output=output, resume=resume, progress=progress).frame

