"""``schedlab sweep SPEC.toml [--backend local|ray|dask] [--n-jobs N] [--json] [--no-resume]``.

Runs a function over a parameter grid (:func:`schedlab.sweep`) as a TOML spec file says, and
writes one row per point (its parameters, seed, metrics, wall time and error) to the spec's
output, CSV or Parquet::

    function = "mysim:run_point"    # "module:attribute"; returns {metric: number, ...}
    output = "sweep.csv"            # relative to the spec's folder (default: SPEC.csv)
    seed = 0                        # the sweep's seed; each point's derives from it
    [grid]                          # the Cartesian product; or [[grid]] tables, one per point
    rate = [1.0, 2.0, 4.0]
    policy = ["fcfs", "srpt"]
    [fixed]                         # constant keyword arguments
    n_requests = 500

The function's module is looked up in the spec's folder, then the current folder, then the
installed packages (workers are given the same ``PYTHONPATH``). An existing output is resumed:
only its failed and missing points run (``--no-resume`` runs every point and overwrites it). A
point whose function raises is recorded in the ``error`` column and the others run; the exit code
is 0 whenever the sweep ran. ``--backend ray`` runs on the Ray cluster at ``RAY_ADDRESS``, or
starts Ray on this machine; ``--backend dask`` on the Dask scheduler at ``--scheduler`` (or
``DASK_SCHEDULER_ADDRESS``), or a Dask cluster it starts on this machine. With ``--json`` stdout
holds one JSON document: the counts and every row (NaN as null); anything the function prints
goes to stderr. A bad spec (a missing key, a function that cannot be imported, a grid that is not
lists) is reported in one line, exit code 1.

:func:`reproduce_point` sweeps the seed papers' reproductions: ``function =
"schedlab.commands.sweep:reproduce_point"`` with ``[grid] paper = ["streamrl", "seer"]`` and
``[fixed] quick = true``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from schedlab.commands import add_quiet

__all__ = ["SPEC_KEYS", "load_spec", "register", "reproduce_point", "run"]

#: The keys a spec file may hold.
SPEC_KEYS = ("function", "grid", "fixed", "seed", "output", "backend", "n_jobs")


def register(subparsers: Any) -> None:
    """Add the ``sweep`` subcommand to the CLI."""
    p = subparsers.add_parser(
        "sweep",
        help="run a function over a parameter grid (a TOML spec) on local processes, Ray or Dask",
        description=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", metavar="SPEC.toml", help="the sweep's spec file")
    p.add_argument("--backend", choices=("local", "ray", "dask"), default=None,
                   help="where the points run (default: the spec's backend, else local)")
    p.add_argument("--n-jobs", type=int, default=None, metavar="N",
                   help="points run at once (default: the spec's n_jobs, else every local core "
                   "or every cluster slot)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="the Dask scheduler for --backend dask (default: DASK_SCHEDULER_ADDRESS, "
                   "else a Dask cluster started on this machine)")
    p.add_argument("-o", "--output", default=None, metavar="FILE",
                   help="the output file, .csv or .parquet (default: the spec's output)")
    p.add_argument("--no-resume", action="store_true",
                   help="run every point and overwrite the output (default: resume from it)")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_quiet(p)
    p.set_defaults(func=run)


def reproduce_point(paper: str, *, quick: bool = False, full: bool = False,
                    seed: int = 0) -> dict[str, Any]:
    """One seed paper's reproduction (:func:`schedlab.seeds.registry.run_seed`) as flat sweep
    metrics: ``claims_holding``, ``claims``, and ``claims.NAME.measured`` and
    ``claims.NAME.holds`` for each claim (papers with other claims leave those columns empty).
    The point's seed is the reproduction's workload seed."""
    from schedlab.seeds.registry import run_seed

    report = run_seed(paper, quick=quick, full=full, seed=seed)
    out: dict[str, Any] = {"claims_holding": report.n_holding, "claims": len(report.claims)}
    for r in report.claims:
        out[f"claims.{r.claim.name}.measured"] = r.measured_value
        out[f"claims.{r.claim.name}.holds"] = r.holds
    return out


def _read_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError("reading a TOML spec on Python 3.10 needs tomli: pip install "
                             "tomli") from None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(f"{str(path)!r}: no such spec file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{str(path)!r}: cannot read the spec: {exc}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{str(path)!r}: not a valid TOML file: {exc}") from None


def load_spec(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The spec file at ``path``, checked: ``function`` (``"module:attribute"``, not imported
    here), ``grid``, ``fixed``, ``seed``, ``output`` (an absolute path; relative ones are taken
    from the spec's folder; default ``SPEC.csv``), ``backend`` and ``n_jobs``. Raises
    ``ValueError`` naming the file and the key.

    >>> import tempfile, pathlib
    >>> spec = pathlib.Path(tempfile.mkdtemp()) / "s.toml"
    >>> _ = spec.write_text('function = "m:f"\\n[grid]\\nx = [1, 2]\\n')
    >>> s = load_spec(spec)
    >>> s["grid"], s["seed"], s["output"].name
    ({'x': [1, 2]}, 0, 's.csv')
    >>> _ = spec.write_text('function = "m:f"\\nouput = "a.csv"\\n[grid]\\nx = [1]\\n')
    >>> load_spec(spec)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: '...s.toml': Unknown spec key 'ouput'. Close matches: 'output'. Known: ...
    """
    from schedlab.errors import check_nonneg_int, check_positive_int, unknown_name_error
    from schedlab.sweeps import BACKENDS, _fixed, _points

    path = Path(path)
    where = repr(str(path))
    raw = _read_toml(path)
    for key in raw:
        if key not in SPEC_KEYS:
            raise ValueError(f"{where}: {unknown_name_error('spec key', key, SPEC_KEYS)}")
    for key in ("function", "grid"):
        if key not in raw:
            raise ValueError(f"{where}: the spec has no {key!r} key ("
                             + ('function = "module:attribute"' if key == "function"
                                else "a [grid] table of lists, or [[grid]] points") + ")")
    spec: dict[str, Any] = {"function": raw["function"], "grid": raw["grid"]}
    if not isinstance(spec["function"], str):
        raise ValueError(f"{where}: 'function' must be a string \"module:attribute\". Got "
                         f"{spec['function']!r}.")
    try:
        names, _ = _points(spec["grid"])
        spec["fixed"] = _fixed(raw.get("fixed", {}), names)
        spec["seed"] = check_nonneg_int(raw.get("seed", 0), "seed", "the spec")
        n_jobs = raw.get("n_jobs")
        spec["n_jobs"] = None if n_jobs is None else check_positive_int(n_jobs, "n_jobs",
                                                                         "the spec")
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None
    backend = raw.get("backend")
    if backend is not None and backend not in BACKENDS:
        raise ValueError(f"{where}: {unknown_name_error('backend', str(backend), BACKENDS)}")
    spec["backend"] = backend
    output = raw.get("output", path.with_suffix(".csv").name)
    if not isinstance(output, str) or not output:
        raise ValueError(f"{where}: 'output' must be a file name, .csv or .parquet. Got "
                         f"{output!r}.")
    spec["output"] = (path.resolve().parent / output) if not Path(output).is_absolute() \
        else Path(output)
    return spec


@contextlib.contextmanager
def _import_path(folders: list[Path]) -> Iterator[None]:
    """``folders`` first on ``sys.path`` and on ``PYTHONPATH`` (for the workers started here)."""
    saved_path, saved_env = list(sys.path), os.environ.get("PYTHONPATH")
    extra = [str(f) for f in dict.fromkeys(f.resolve() for f in folders)]
    sys.path[:0] = [f for f in extra if f not in sys.path]
    os.environ["PYTHONPATH"] = os.pathsep.join([*extra, *([saved_env] if saved_env else [])])
    try:
        yield
    finally:
        sys.path[:] = saved_path
        if saved_env is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = saved_env


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    """What the function (or a worker) prints goes to stderr, so that stdout holds one JSON
    document."""
    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        fd = -1  # a captured stream (pytest): Python-level redirection only
    saved = os.dup(fd) if fd >= 0 else -1
    if saved >= 0:
        os.dup2(sys.stderr.fileno(), fd)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        if saved >= 0:
            os.dup2(saved, fd)
            os.close(saved)


@contextlib.contextmanager
def _dask_client(address: str | None, n_jobs: int | None) -> Iterator[None]:
    """A ``distributed.Client`` for the sweep: at ``address``, at ``DASK_SCHEDULER_ADDRESS``, or
    on a Dask cluster started here (closed afterwards)."""
    from schedlab.sweeps import _import_backend

    distributed = _import_backend("dask")
    if address or os.environ.get("DASK_SCHEDULER_ADDRESS"):
        try:
            client = distributed.Client(address) if address else distributed.Client()
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {address or os.environ['DASK_SCHEDULER_ADDRESS']!r}: "
                             f"cannot reach the Dask scheduler: {exc}") from None
        with client:
            yield
        return
    with distributed.LocalCluster(n_workers=n_jobs, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster):
        yield


@contextlib.contextmanager
def _ray_session() -> Iterator[None]:
    """Ray for the sweep: the cluster at ``RAY_ADDRESS``, or Ray started on this machine; shut
    down (disconnected) afterwards, so that no worker's output is printed after the report."""
    from schedlab.sweeps import _import_backend

    ray = _import_backend("ray")
    if ray.is_initialized():
        yield
        return
    ray.init()
    try:
        yield
    finally:
        ray.shutdown()


def _json_value(v: Any) -> Any:
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run(args: argparse.Namespace) -> int:
    """Run ``schedlab sweep``; returns the exit code."""
    from schedlab.errors import check_positive_int
    from schedlab.sweeps import _output, _points, _takes_seed, load_function, run_sweep

    spec_path = Path(args.spec)
    spec = load_spec(spec_path)
    backend = args.backend or spec["backend"] or "local"
    n_jobs = spec["n_jobs"] if args.n_jobs is None else check_positive_int(
        args.n_jobs, "--n-jobs", "schedlab sweep")
    if args.scheduler and backend != "dask":
        raise ValueError("--scheduler names a Dask scheduler: give it with --backend dask")
    output = Path(args.output) if args.output else spec["output"]
    with _import_path([spec_path.resolve().parent, Path.cwd()]):
        try:  # everything checked before any work starts
            fn = load_function(spec["function"])
            names, _ = _points(spec["grid"])
            _takes_seed(fn, names, spec["fixed"])
            _output(output)
        except ValueError as exc:
            raise ValueError(f"{str(spec_path)!r}: {exc}") from None
        cluster: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if backend == "dask":
            cluster = _dask_client(args.scheduler, n_jobs)
        elif backend == "ray":
            cluster = _ray_session()
        quiet = _stdout_to_stderr() if args.json else contextlib.nullcontext()
        with quiet, cluster:
            try:
                done = run_sweep(fn, spec["grid"], fixed=spec["fixed"], seed=spec["seed"],
                                 backend=backend, n_jobs=n_jobs, output=output,
                                 resume=not args.no_resume)
            except (ValueError, OSError):
                raise
            except Exception as exc:  # the machinery failed (the points' errors are recorded)
                first = (str(exc).strip().splitlines() or [""])[0]
                raise ValueError(
                    f"the sweep stopped: {type(exc).__name__}: {first}; the points that "
                    f"finished are in {str(output)!r}, and the same command resumes from "
                    "there") from None
    frame = done.frame
    if args.json:
        doc = {
            "function": spec["function"], "backend": backend, "seed": spec["seed"],
            "output": str(done.output), "points": len(frame), "ran": done.ran,
            "resumed": done.resumed, "failed": done.failed, "wall_s": done.wall_s,
            "columns": list(frame.columns),
            "rows": [{k: _json_value(v) for k, v in rec.items()}
                     for rec in frame.to_dict("records")],
        }
        print(json.dumps(doc, allow_nan=False))
        return 0
    import pandas as pd

    with pd.option_context("display.max_rows", 20, "display.max_columns", 12,
                           "display.width", 120):
        print(frame)
    print(f"{len(frame)} points: {done.ran} run, {done.resumed} resumed from the output, "
          f"{done.failed} failed; {done.wall_s:.1f} s on {backend}")
    print(f"written to {done.output}")
    return 0
