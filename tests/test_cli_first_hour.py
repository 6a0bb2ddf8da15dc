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
