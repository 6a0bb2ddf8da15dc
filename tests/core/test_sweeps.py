"""schedlab.sweep and ``schedlab sweep``: grid order, per-point seeds, failures, resuming, bad
input, and identical frames on the local, Ray and Dask backends."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sweep_toys
from pandas.testing import assert_frame_equal
from sweep_toys import chatty, counted, flaky, interrupted, nested, scalar, toy

import schedlab
from schedlab.cli import main
from schedlab.sweeps import point_seed, run_sweep, sweep

HERE = Path(__file__).resolve().parent
GRID = {"a": [1, 2, 3], "b": [0.5, 1.5]}


def _calls(folder: Path) -> list[int]:
    return sorted(int(p.name.split("-")[0]) for p in folder.iterdir())


def _same(left: pd.DataFrame, right: pd.DataFrame) -> None:
    assert_frame_equal(left.drop(columns="wall_s"), right.drop(columns="wall_s"))


def _file_holds(path: Path, frame: pd.DataFrame) -> None:
    """The CSV file at ``path`` holds ``frame`` (as pandas reads it back: types loosely)."""
    read = pd.read_csv(path)
    assert_frame_equal(read.drop(columns=["wall_s", "error"]),
                       frame.drop(columns=["wall_s", "error"]), check_dtype=False)
    assert read["error"].isna().tolist() == frame["error"].isna().tolist()


# ------------------------------------------------------------------------------- grid and frame


def test_cartesian_product_in_grid_order_with_the_columns_in_order() -> None:
    df = sweep(toy, {"b": [2.5, 0.5], "a": [3, 1, 2]}, fixed={"label": "q"}, n_jobs=1)
    assert list(zip(df["b"], df["a"], strict=True)) == [
        (2.5, 3), (2.5, 1), (2.5, 2), (0.5, 3), (0.5, 1), (0.5, 2)]
    assert list(df.columns) == ["b", "a", "seed", "total", "draw", "big", "tag", "n", "wall_s",
                                "error"]
    assert df["tag"].tolist() == ["q3", "q1", "q2"] * 2
    assert df["n"].dtype == "int64" and df["big"].dtype == bool  # numpy scalars made plain
    assert df["error"].isna().all() and (df["wall_s"] >= 0).all()
    assert schedlab.sweep is sweep


def test_explicit_points_keep_their_order_and_a_scalar_is_the_value_column() -> None:
    df = sweep(scalar, [{"x": 3}, {"x": 1}, {"x": 2}], n_jobs=1)
    assert df["x"].tolist() == [3, 1, 2] and df["value"].tolist() == [1.5, 0.5, 1.0]
    assert list(df.columns) == ["x", "seed", "value", "wall_s", "error"]


# ------------------------------------------------------------------------------------- seeds


def test_each_point_has_its_own_reproducible_seed() -> None:
    one = sweep(toy, GRID, n_jobs=1, seed=7)
    two = sweep(toy, GRID, n_jobs=2, seed=7)
    _same(one, two)  # the same seeds and draws on one worker or two
    assert one["seed"].nunique() == len(one) and one["draw"].nunique() == len(one)
    assert all(0 <= s < 2**32 for s in one["seed"])
    assert one["seed"].tolist() == [point_seed(7, {"a": a, "b": b}) for a in GRID["a"]
                                    for b in GRID["b"]]
    other = sweep(toy, GRID, n_jobs=1, seed=8)
    assert not set(other["seed"]) & set(one["seed"])
    # a point's seed and result do not depend on the other points or on the grid's order
    alone = sweep(toy, [{"b": 1.5, "a": 2}], n_jobs=1, seed=7)
    row = one[(one["a"] == 2) & (one["b"] == 1.5)]
    assert alone["seed"].item() == row["seed"].item()
    assert alone["draw"].item() == row["draw"].item()
    flipped = sweep(toy, {"b": GRID["b"], "a": GRID["a"][::-1]}, n_jobs=1, seed=7)
    assert sorted(flipped["seed"]) == sorted(one["seed"])


def test_the_seed_goes_only_to_a_function_naming_it() -> None:
    def kwargs_only(**kw):
        return {"keys": ",".join(sorted(kw))}

    df = sweep(kwargs_only, {"x": [1]}, fixed={"y": 2}, n_jobs=1)
    assert df["keys"].tolist() == ["x,y"]
    assert sweep(scalar, {"x": [4]}, n_jobs=1)["value"].tolist() == [2.0]


# ----------------------------------------------------------------------------------- failures


def test_a_failing_point_is_recorded_and_the_others_run() -> None:
    df = sweep(flaky, {"x": [1, 2, 3]}, n_jobs=2)
    assert df["x"].tolist() == [1, 2, 3]
    assert df["error"].tolist() == [None, "RuntimeError: no luck at x=2", None]
    assert df["y"].tolist()[0::2] == [1.5, 4.5] and pd.isna(df["y"][1])


def test_results_that_are_not_flat_scalars_fail_their_point() -> None:
    df = sweep(nested, {"x": [0, 1]}, n_jobs=1)
    assert df["error"][0] is None
    assert df["error"][1].startswith("TypeError: metric 'bad' is a list; a sweep function")

    def clash(x):
        return {"x": 1} if x else {"wall_s": 2}

    errors = sweep(clash, {"x": [0, 1]}, n_jobs=1)["error"].tolist()
    assert all("has the name of a parameter or of a sweep column" in e for e in errors)


# ------------------------------------------------------------------------------------- resume


def test_resume_runs_only_the_failed_and_missing_points(tmp_path: Path) -> None:
    calls, out = tmp_path / "calls", tmp_path / "sub" / "sweep.csv"
    calls.mkdir()
    grid = {"x": [0, 1, 2, 3]}
    first = run_sweep(counted, grid, fixed={"calls_dir": str(calls), "fail_at": 2},
                      n_jobs=2, output=out)
    assert (first.ran, first.resumed, first.failed) == (4, 0, 1)
    assert _calls(calls) == [0, 1, 2, 3]
    assert pd.read_csv(out)["error"].notna().tolist() == [False, False, True, False]

    again = run_sweep(counted, grid, fixed={"calls_dir": str(calls)}, n_jobs=2, output=out)
    assert (again.ran, again.resumed, again.failed) == (1, 3, 0)
    assert _calls(calls) == [0, 1, 2, 2, 3]  # only the failed point ran again

    pd.read_csv(out).drop(index=1).to_csv(out, index=False)  # a point lost from the file
    third = sweep(counted, grid, fixed={"calls_dir": str(calls)}, n_jobs=1, output=out)
    assert _calls(calls) == [0, 1, 1, 2, 2, 3]
    fresh = sweep(counted, grid, fixed={"calls_dir": str(tmp_path)}, n_jobs=1)
    _same(third, fresh)  # read back from the file, the frame is the one a fresh run gives
    _file_holds(out, fresh)

    sweep(counted, grid, fixed={"calls_dir": str(calls)}, n_jobs=1, output=out, resume=False)
    assert len(_calls(calls)) == 10


def test_a_stopped_sweep_keeps_what_finished_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "sweep.csv"
    with pytest.raises(KeyboardInterrupt):
        sweep(interrupted, {"x": [0, 1, 2, 3]}, fixed={"stop_at": 2}, n_jobs=1, output=out)
    assert pd.read_csv(out)["x"].tolist() == [0, 1]
    done = run_sweep(interrupted, {"x": [0, 1, 2, 3]}, fixed={"stop_at": -1}, n_jobs=1,
                     output=out)
    assert (done.ran, done.resumed) == (2, 2) and done.frame["y"].tolist() == [0, 1, 2, 3]


def test_resume_refuses_an_output_of_another_sweep(tmp_path: Path) -> None:
    out = tmp_path / "sweep.csv"
    sweep(scalar, {"x": [1, 2]}, n_jobs=1, output=out)
    with pytest.raises(ValueError, match=r"1 row\(s\) of .* match no point of this sweep"):
        sweep(scalar, {"x": [1]}, n_jobs=1, output=out)
    with pytest.raises(ValueError, match="another sweep seed"):
        sweep(scalar, {"x": [1, 2]}, n_jobs=1, output=out, seed=1)
    with pytest.raises(ValueError, match=r"is not this sweep's output .*has no column 'y'"):
        sweep(lambda y: y, {"y": [1]}, n_jobs=1, output=out)
    assert len(sweep(scalar, {"x": [1]}, n_jobs=1, output=out, resume=False)) == 1


# ---------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "grid, kwargs, message",
    [
        ({}, {}, "'grid' parameter of sweep is empty"),
        ([], {}, "'grid' parameter of sweep is an empty list of points"),
        ({"x": 3}, {}, "'x' must be a list of values. Got int"),
        ({"x": "abc"}, {}, "'x' must be a list of values. Got str"),
        ({"x": []}, {}, "'x' is an empty list"),
        ({"x": [[1, 2]]}, {}, r"'x' holds \[1, 2\] \(list\); grid values must be numbers"),
        ({"x": [float("nan")]}, {}, "'x' holds nan; grid values must be finite"),
        ({"1x": [1]}, {}, "names that are Python identifiers.*Got '1x'"),
        ({"seed": [1]}, {}, "may not name 'seed'.*'rep': \\[0, 1, 2\\]"),
        ({"x": [1, 1]}, {}, r"holds the point \{'x': 1\} twice \(points 0 and 1\)"),
        ([{"x": 1}, {"y": 2}], {}, r"point 1 names \['y'\], point 0 \['x'\]"),
        ({"x": [1]}, {"fixed": {"x": 2}}, "'fixed' parameter of sweep names 'x', which the grid"),
        ({"x": [1]}, {"fixed": {"z": 2}}, "names 'z', which scalar does not take. Its param"),
        ({"y": [1]}, {}, "names 'y', which scalar does not take"),
        ({"x": [1]}, {"backend": "spark"}, "Unknown backend 'spark'. Known: 'dask', 'local'"),
        ({"x": [1]}, {"n_jobs": 0}, "'n_jobs' parameter of sweep must be an int in \\[1"),
        ({"x": [1]}, {"seed": -1}, "'seed' parameter of sweep must be an int in \\[0"),
        ({"x": [1]}, {"output": "out.txt"}, "'output' parameter of sweep must be a .csv or"),
    ],
)
def test_bad_input_names_the_field(grid, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        sweep(scalar, grid, **{"n_jobs": 1, **kwargs})


def test_a_missing_required_parameter_is_named() -> None:
    with pytest.raises(ValueError, match=r"counted\(\) needs the parameter 'calls_dir', "
                       "which neither the grid nor fixed of sweep gives"):
        sweep(counted, {"x": [1]}, n_jobs=1)
    with pytest.raises(ValueError, match="cannot import module 'no_such_module'"):
        sweep("no_such_module:f", {"x": [1]})


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None, reason="pyarrow installed")
def test_parquet_without_pyarrow_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"needs pyarrow \(pip install pyarrow\), or write a "
                       r"\.csv file"):
        sweep(scalar, {"x": [1]}, output=tmp_path / "s.parquet")


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is None, reason="pyarrow not installed")
def test_parquet_output_resumes(tmp_path: Path) -> None:  # pragma: no cover - needs pyarrow
    out = tmp_path / "s.parquet"
    first = sweep(flaky, {"x": [1, 2, 3]}, n_jobs=1, output=out)
    again = run_sweep(flaky, {"x": [1, 2, 3]}, n_jobs=1, output=out)
    assert again.ran == 1
    _same(first, again.frame)


def test_a_missing_backend_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ValueError, match=r"needs ray.*pip install -e \"\.\[ray\]\""):
        sweep(scalar, {"x": [1]}, backend="ray")


def test_dask_without_a_client_says_to_make_one() -> None:
    distributed = pytest.importorskip("distributed")
    try:
        distributed.default_client()
        pytest.skip("a Dask client is already running")
    except ValueError:
        pass
    with pytest.raises(ValueError, match=r"distributed\.Client you create first"):
        sweep(scalar, {"x": [1]}, backend="dask")


def test_importing_sweeps_loads_no_cluster_library() -> None:
    code = ("import sys, schedlab, schedlab.sweeps; schedlab.sweep; print(','.join(m for m in "
            "('ray', 'dask', 'distributed', 'joblib', 'pandas') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    sweep(scalar, {"x": [1, 2]}, n_jobs=1)
    assert capsys.readouterr().err == ""
    sweep(scalar, {"x": [1, 2]}, n_jobs=1, progress=True)
    assert "sweep scalar: points" in capsys.readouterr().err


# ----------------------------------------------------------------------------------- backends


@pytest.fixture(scope="module")
def local_ray():
    """Ray on this machine, bound to 127.0.0.1, its workers able to import sweep_toys."""
    ray = pytest.importorskip("ray")
    if ray.is_initialized():
        yield ray
        return
    saved = {k: os.environ.get(k) for k in ("PYTHONPATH", "RAY_AUTH_MODE")}
    os.environ["PYTHONPATH"] = os.pathsep.join([str(HERE), *filter(None, [saved["PYTHONPATH"]])])
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no token written to the home folder
    try:
        ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
                 object_store_memory=100 * 2**20, log_to_driver=False)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    yield ray
    ray.shutdown()


def test_local_ray_and_dask_give_identical_frames(local_ray) -> None:
    distributed = pytest.importorskip("distributed")
    grid = {"a": [1, 2], "b": [0.5, 1.5, 2.5]}
    local = sweep(toy, grid, n_jobs=1, seed=3)
    failing = sweep(flaky, {"x": [1, 2, 3]}, n_jobs=1, seed=3)
    _same(sweep(toy, grid, n_jobs=2, seed=3), local)
    _same(sweep(toy, grid, backend="ray", seed=3), local)
    _same(sweep(toy, grid, backend="ray", n_jobs=1, seed=3), local)
    _same(sweep(flaky, {"x": [1, 2, 3]}, backend="ray", seed=3), failing)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster):
        _same(sweep(toy, grid, backend="dask", seed=3), local)
        _same(sweep(flaky, {"x": [1, 2, 3]}, backend="dask", seed=3), failing)


# ---------------------------------------------------------------------------- command line


def _spec(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "spec.toml"
    path.write_text(body, encoding="utf-8")
    return path


SPEC = """
function = "sweep_toys:toy"
output = "out/sweep.csv"
seed = 5
[grid]
a = [1, 2]
b = [0.5]
[fixed]
label = "s"
"""


def test_cli_runs_a_spec_and_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, SPEC)
    assert main(["sweep", str(spec), "--json", "--n-jobs", "1"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (doc["points"], doc["ran"], doc["resumed"], doc["failed"]) == (2, 2, 0, 0)
    assert doc["output"] == str(tmp_path / "out" / "sweep.csv")
    expected = sweep(toy, {"a": [1, 2], "b": [0.5]}, fixed={"label": "s"}, seed=5, n_jobs=1)
    _same(pd.DataFrame(doc["rows"], columns=doc["columns"]), expected)
    _file_holds(tmp_path / "out" / "sweep.csv", expected)

    assert main(["sweep", str(spec), "-q"]) == 0
    text = capsys.readouterr().out
    assert "2 points: 0 run, 2 resumed from the output, 0 failed" in text
    assert f"written to {tmp_path / 'out' / 'sweep.csv'}" in text


def test_cli_json_stays_one_document_when_the_function_prints(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spec = _spec(tmp_path, 'function = "sweep_toys:chatty"\n[grid]\nx = [1, 2]\n')
    assert main(["sweep", str(spec), "--json", "--n-jobs", "1", "--no-resume"]) == 0
    out = capsys.readouterr()
    assert [r["y"] for r in json.loads(out.out)["rows"]] == [2, 3]
    assert "working on 1" in out.err
    assert chatty(0) == {"y": 1}


@pytest.mark.parametrize(
    "body, message",
    [
        ('function = "sweep_toys:toy"\n', "the spec has no 'grid' key"),
        ("[grid]\nx = [1]\n", "the spec has no 'function' key"),
        ('function = "sweep_toys:toy"\n[grid]\na = 1\n', "'a' must be a list of values"),
        ('function = "sweep_toys.toy"\n[grid]\na = [1]\n', "must be written 'module:attribute'"),
        ('function = "sweep_toys:nope"\n[grid]\na = [1]\n', "has no attribute 'nope'"),
        ('function = "sweep_toys:toy"\nouput = "x.csv"\n[grid]\na = [1]\n',
         "Unknown spec key 'ouput'. Close matches: 'output'"),
        ('function = "sweep_toys:toy"\n[grid]\na = [1]\nb = [1]\nc = [1]\n',
         "names 'c', which toy does not take"),
        ('function = "sweep_toys:toy"\noutput = "x.txt"\n[grid]\na = [1]\nb = [1]\n',
         "must be a .csv or .parquet file"),
        ("function = \n", "not a valid TOML file"),
    ],
)
def test_cli_bad_spec_is_one_line_exit_1(tmp_path: Path, capsys, body: str, message: str) -> None:
    spec = _spec(tmp_path, body)
    assert main(["sweep", str(spec)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("schedlab sweep: error: ")
    assert message in err and str(spec) in err


def test_cli_from_the_shell_without_a_traceback(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get(
        "PYTHONPATH", "")])}
    missing = subprocess.run([sys.executable, "-m", "schedlab.cli", "sweep",
                              str(tmp_path / "none.toml")], capture_output=True, text=True,
                             env=env)
    assert missing.returncode == 1 and "Traceback" not in missing.stderr
    assert missing.stderr.strip().endswith("none.toml': no such spec file")
    usage = subprocess.run([sys.executable, "-m", "schedlab.cli", "sweep", "x.toml",
                            "--backend", "spark"], capture_output=True, text=True, env=env)
    assert usage.returncode == 2 and "invalid choice: 'spark'" in usage.stderr


def test_reproduce_point_flattens_a_seed_report(monkeypatch: pytest.MonkeyPatch) -> None:
    from schedlab.commands.sweep import reproduce_point
    from schedlab.seeds import registry
    from schedlab.seeds.contract import Claim, SeedReport

    claim = Claim(name="speedup", metric="m", baseline="b", paper_value=2.0, unit="x",
                  source="s")
    seen = {}

    def fake_run_seed(name, *, quick, full, seed):
        seen.update(name=name, quick=quick, full=full, seed=seed)
        return SeedReport(paper=name, claims=(claim.measured(1.5),))

    monkeypatch.setattr(registry, "run_seed", fake_run_seed)
    df = sweep(reproduce_point, {"paper": ["fastserve"]}, fixed={"quick": True}, n_jobs=1)
    assert seen == {"name": "fastserve", "quick": True, "full": False,
                    "seed": int(df["seed"][0])}
    assert df[["claims_holding", "claims", "claims.speedup.measured",
               "claims.speedup.holds"]].iloc[0].tolist() == [1, 1, 1.5, True]


@pytest.mark.slow
def test_reproduce_point_runs_a_quick_reproduction() -> None:
    df = sweep("schedlab.commands.sweep:reproduce_point", {"paper": ["fastserve"]},
               fixed={"quick": True}, n_jobs=1)
    assert df["error"][0] is None and df["claims"][0] >= 1


def test_toys_module_is_importable_by_name() -> None:
    assert sweep_toys.__file__ == str(HERE / "sweep_toys.py")
