"""The CLI as a new user meets it, through the real entry point in a subprocess: output paths
checked before the work, one line per error and no traceback, Ctrl-C, smoke runs kept apart."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SCHEDLAB = str(Path(sys.executable).with_name("schedlab"))


def _run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCHEDLAB, *args], capture_output=True, text=True, timeout=timeout)


def _one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("schedlab "), proc.stderr
    for needle in needles:
        assert needle in lines[0]


def test_calibrate_refuses_a_directory_as_output_before_fitting(tmp_path: Path) -> None:
    start = time.perf_counter()
    proc = _run("costmodel", "calibrate", str(tmp_path / "no-profiles"), "--gpu", "a100-80gb",
                "-o", str(tmp_path))
    _one_line_error(proc, "-o/--output", "is a directory")
    assert time.perf_counter() - start < 30  # no fit ran (the fit alone takes ~12 s)


def test_reproduce_refuses_a_file_as_plot_dir_before_running(tmp_path: Path) -> None:
    taken = tmp_path / "plots"
    taken.write_text("not a folder")
    proc = _run("reproduce", "fastserve", "--quick", "--plot-dir", str(taken))
    _one_line_error(proc, "--plot-dir", "is a file, not a folder")
    assert "reproducing" not in proc.stderr


def test_quick_runs_plot_apart_and_say_they_are_smoke_runs(tmp_path: Path) -> None:
    proc = _run("reproduce", "fastserve", "--quick", "--plot-dir", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "--quick: smoke-test sizes" in proc.stdout
    pngs = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png"))
    assert pngs and all(p.startswith("quick/") for p in pngs)


def test_plot_without_a_suffix_writes_and_reports_the_png(tmp_path: Path) -> None:
    proc = _run("datasets", "show", "azure-code-2023", "--plot", str(tmp_path / "myplot"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "myplot.png").is_file()
    assert f"plot: {tmp_path / 'myplot.png'}" in proc.stdout


@pytest.mark.skipif(os.name != "posix", reason="SIGINT delivery")
def test_ctrl_c_exits_130_with_one_line(tmp_path: Path) -> None:
    proc = subprocess.Popen([SCHEDLAB, "reproduce", "fastserve", "--no-plot"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    # wait until the run has started (its first line on stderr), then interrupt it mid-sweep
    assert "reproducing fastserve" in proc.stderr.readline()
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert "Traceback" not in err and "interrupted" in err


def test_unknown_router_fails_even_with_one_instance() -> None:
    proc = _run("simulate", "--trace", "azure-code-2023", "--model", "llama-2-7b", "--gpu",
                "a100-80gb", "--policy", "fcfs", "--router", "nosuch", "--limit", "5")
    _one_line_error(proc, "Unknown router 'nosuch'", "round-robin")


def test_a_header_only_trace_is_an_error_not_nan_metrics(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n")
    proc = _run("simulate", "--trace", str(empty), "--model", "llama-2-7b", "--gpu", "a100-80gb",
                "--policy", "fcfs")
    _one_line_error(proc, "holds no requests")


def test_requests_beyond_the_context_window_are_rejected_and_counted_or_truncated() -> None:
    import json

    base = ("simulate", "--trace", "mooncake-conversation", "--model", "llama-2-7b", "--gpu",
            "a100-80gb", "--policy", "fcfs", "--limit", "200")
    proc = _run(*base)
    assert proc.returncode == 0, proc.stderr
    assert "exceeds_model_context: 141" in proc.stdout  # 141 of 200 exceed 4,096 tokens
    assert "no SLO" in proc.stdout  # no target given: no vacuous 100% attainment
    doc = json.loads(_run(*base, "--json").stdout)
    assert doc["completed"] == 59 and doc["rejected_by_reason"] == {"exceeds_model_context": 141}
    assert doc["slo_attainment"] is None and doc["model_context_tokens"] == 4096
    doc = json.loads(_run(*base, "--over-context", "truncate", "--json").stdout)
    assert doc["completed"] == 200 and doc["rejected"] == 0 and doc["truncated"] == 141


def test_a_directory_as_trace_is_called_a_directory(tmp_path: Path) -> None:
    proc = _run("simulate", "--trace", str(tmp_path), "--model", "llama-2-7b", "--gpu",
                "a100-80gb", "--policy", "fcfs")
    _one_line_error(proc, "is a directory", "give a trace file")


@pytest.mark.parametrize("command", [("simulate",), ("reproduce",), ("gap",), ("datasets",),
                                     ("datasets", "show"), ("costmodel",),
                                     ("costmodel", "report")])
def test_help_is_plain_text(command: tuple[str, ...]) -> None:
    proc = _run(*command, "--help")
    assert proc.returncode == 0
    for markup in ("``", ":mod:", ":func:", ":class:", ":meth:"):
        assert markup not in proc.stdout, (command, markup)


def test_help_lists_the_names_a_user_can_give() -> None:
    text = " ".join(_run("simulate", "--help").stdout.split())
    for name in ("skip-join-mlfq", "least-tokens", "llama-2-7b", "a100-80gb", "sharegpt-lengths"):
        assert name in text.replace("- ", "-"), name  # argparse may wrap inside a name
    assert "fastserve" in _run("reproduce", "--help").stdout


# Options of load a shell user never needs: parser tuning (chunk_rows, engine) and the label.
_NOT_FLAGS = {"name_or_path", "chunk_rows", "engine", "name"}


@pytest.mark.parametrize("command", [("simulate",), ("datasets", "show")])
def test_every_load_option_a_user_needs_is_a_flag(command: tuple[str, ...]) -> None:
    import inspect

    from schedlab.datasets import load_with_report

    wanted = set(inspect.signature(load_with_report).parameters) - _NOT_FLAGS
    wanted = {"--skip-bad" if p == "on_error" else "--" + p.replace("_", "-") for p in wanted}
    shown = _run(*command, "--help").stdout
    assert not [flag for flag in sorted(wanted) if flag not in shown]


def test_the_loaders_advice_can_be_followed_from_the_shell(tmp_path: Path) -> None:
    trace = tmp_path / "mine.csv"
    trace.write_text("ts,prompt,gen\n0.5,100,20\n0.2,50,10\n1.0,300,40\n")
    advice = _run("datasets", "show", str(trace))
    _one_line_error(advice, "--format csv --columns arrival_s=...,input_tokens=...")
    assert "}}" not in advice.stderr
    cols = "arrival_s=ts,input_tokens=prompt,output_tokens=gen"
    disorder = _run("datasets", "show", str(trace), "--format", "csv", "--columns", cols)
    _one_line_error(disorder, "line 3", "--sort")
    shown = _run("datasets", "show", str(trace), "--columns", cols, "--sort", "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"rows": 3' in shown.stdout
    sim = _run("simulate", "--trace", str(trace), "--columns", cols, "--sort", "--model",
               "llama-2-7b", "--gpu", "a100-80gb", "--policy", "fcfs", "--json")
    assert sim.returncode == 0, sim.stderr
    assert '"completed": 3' in sim.stdout


def test_a_malformed_columns_flag_is_one_line_naming_it(tmp_path: Path) -> None:
    proc = _run("datasets", "show", "azure-code-2023", "--columns", "arrival_s")
    _one_line_error(proc, "--columns 'arrival_s'", "FIELD=COLUMN")


def _run_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """Run with stderr on a pseudo-terminal (as in an interactive shell) and stdout on a pipe;
    returns the exit code, stdout and what the terminal showed."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # 40 x 160
    proc = subprocess.Popen([SCHEDLAB, *args], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = bytearray()
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(master)
    out = proc.stdout.read().decode() if proc.stdout else ""
    return proc.wait(timeout=120), out, shown.decode(errors="replace")


def test_long_work_draws_progress_bars_on_a_terminal() -> None:
    rc, _, shown = _run_on_a_terminal("reproduce", "fastserve", "--quick", "--no-plot")
    assert rc == 0
    assert "fastserve: SLO sweep (policy x rate)" in shown and "%|" in shown
    rc, _, shown = _run_on_a_terminal("gap", "srpt", "--n", "4", "--instances", "2",
                                      "--time-limit", "2")
    assert rc == 0 and "gap srpt: instances" in shown


@pytest.mark.parametrize("flags", [("--quiet",), ("--json",)])
def test_no_bars_with_quiet_or_with_json_to_a_pipe(flags: tuple[str, ...]) -> None:
    rc, out, shown = _run_on_a_terminal("reproduce", "fastserve", "--quick", "--no-plot", *flags)
    assert rc == 0 and "%|" not in shown
    if "--quiet" in flags:
        assert shown.strip() == "" and "claims hold" in out


def test_no_bars_when_stderr_is_not_a_terminal() -> None:
    proc = _run("reproduce", "fastserve", "--quick", "--no-plot")
    assert proc.returncode == 0 and "%|" not in proc.stderr


def test_the_first_run_says_it_compiles(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from schedlab import jit
    from schedlab.cli import main

    argv = ["simulate", "--trace", "azure-code-2023", "--model", "llama-2-7b", "--gpu",
            "a100-80gb", "--policy", "fcfs", "--limit", "150", "--json"]
    for compiles, said in ((True, True), (False, False)):
        monkeypatch.setattr(jit, "first_run_compiles", lambda compiles=compiles: compiles)
        assert main(argv) == 0
        assert ("compiling the simulator's kernels" in capsys.readouterr().err) is said
    monkeypatch.setattr(jit, "first_run_compiles", lambda: True)
    assert main([*argv, "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    # a trace small enough to run without the compiler compiles nothing, so says nothing
    assert main([*argv[:-3], "--limit", "20", "--json"]) == 0
    assert capsys.readouterr().err == ""


def test_a_tiny_simulation_never_loads_the_compiler_and_gives_the_same_answer() -> None:
    code = ("import sys, json, io, contextlib\n"
            "from schedlab.cli import main\n"
            "out = io.StringIO()\n"
            "argv = ['simulate', '--trace', 'azure-code-2023', '--model', 'llama-2-7b', '--gpu', "
            "'a100-80gb', '--policy', 'vllm', '--limit', '60', '--json']\n"
            "with contextlib.redirect_stdout(out):\n"
            "    main(argv)\n"
            "tiny = json.loads(out.getvalue())\n"
            "print('numba' in sys.modules)\n"
            "from schedlab.datasets import load\n"
            "from schedlab.sim import Cluster, simulate\n"
            "w = load('azure-code-2023').head(60)\n"
            "r = simulate(w, Cluster.homogeneous('llama-2-7b', 'a100-80gb', max_batch_tokens=8192),"
            " 'vllm')\n"
            "print('numba' in sys.modules, r.summary()['jct_mean_s'] == tiny['jct_mean_s'])\n")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_DISABLE_JIT"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=120, check=True).stdout.split()
    assert out == ["False", "True", "True"]


def test_first_run_compiles_reads_the_kernel_cache(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from schedlab.jit import _STAMP_FILE, first_run_compiles, folder_stamp

    pkg = tmp_path / "fake_kernels"
    (pkg / "__pycache__").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert first_run_compiles(("fake_kernels",)) is True  # nothing cached
    (pkg / "__pycache__" / "k.f-1.py311.nbi").write_bytes(b"")
    (pkg / "__pycache__" / _STAMP_FILE).write_text(folder_stamp(pkg))
    assert first_run_compiles(("fake_kernels",)) is False
    (pkg / "more.py").write_text("x = 1\n")  # a changed source folder recompiles
    assert first_run_compiles(("fake_kernels",)) is True
