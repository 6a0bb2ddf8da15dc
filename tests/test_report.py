"""``schedlab reproduce --report DIR`` (issue 20): one self-contained HTML page with every claim,
plot and table, the gap study, the cost-model validation and speed figures; a real browser
(headless Chromium, Debian's ``chromium``) decodes every plot and counts the tables."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from schedlab.cli import main
from schedlab.commands.report import write_report
from schedlab.seeds.contract import Claim, SeedReport

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT.parent / "shared" / "costmodel" / "vidur-profiling"


def _report(paper: str, plots: list[str]) -> SeedReport:
    c = Claim(name="speedup", metric="ours / theirs", baseline="b", paper_value=2.0, unit="x",
              source="s")
    d = Claim(name="slowdown", metric="theirs / ours", baseline="b", paper_value=2.0, unit="x",
              source="s")
    return SeedReport(paper=paper, claims=(c.measured(2.5, note="why <it> holds"),
                                           d.measured(0.5)), setup={"plots": plots},
                      wall_s=1.5, tables={"sweep": {"rate": [1.0, 2.0], "ok": [True, False]}})


def test_the_page_holds_claims_tables_and_escaped_notes(tmp_path):
    page = write_report(tmp_path / "r", [_report("alpha", []), _report("beta", [])], gap=None,
                        speed=False)
    text = page.read_text()
    assert text.count("<h2 id='alpha'>") == 1 and "<h2 id='beta'>" in text
    assert "why &lt;it&gt; holds" in text and "<it>" not in text  # notes are escaped
    assert "1 of 2 claims hold" in text and "table sweep (2 rows)" in text
    assert "No profile folder was given" in text and "http" not in text.split("<body>")[1]


def test_a_missing_plot_is_said_not_broken(tmp_path):
    text = write_report(tmp_path, [_report("alpha", [str(tmp_path / "gone.png")])], gap=None,
                        speed=False).read_text()
    assert "plot gone.png was not written" in text and "<img" not in text


@pytest.mark.parametrize("argv,message", [
    (["--profiles", "."], "--profiles is read only with --report"),
    (["--report", "R", "--no-plot"], "--report needs the plots"),
    (["--report", "R", "--profiles", "no-such-folder"], "no such folder"),
])
def test_bad_report_options(tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(["reproduce", "streamrl", "--quick", *argv]) == 1
    assert message in capsys.readouterr().err


def test_reproduce_writes_a_page_a_browser_renders(tmp_path):
    profiles = ["--profiles", str(PROFILES)] if PROFILES.is_dir() else []
    assert main(["reproduce", "streamrl", "--quick", "--quiet", "--plot-dir",
                 str(tmp_path / "plots"), "--report", str(tmp_path / "html"), *profiles]) == 0
    page = tmp_path / "html" / "index.html"
    text = page.read_text()
    plots = list((tmp_path / "plots" / "quick").glob("streamrl_*.png"))
    assert plots and text.count("<img") == len(plots)
    for section in ("id='streamrl'", "id='gap'", "id='costmodel'", "id='speed'"):
        assert section in text
    if profiles:
        assert "measured A100 kernels" in text
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("no chromium on this machine (Debian: apt-get install chromium)")
    dom = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu",
                          "--virtual-time-budget=5000", "--dump-dom", page.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    body = re.search(r"<body[^>]*>", dom).group(0)
    images = int(re.search(r'data-images-loaded="(\d+)"', body).group(1))
    tables = int(re.search(r'data-tables="(\d+)"', body).group(1))
    assert images == len(plots)  # every plot decoded in the browser
    assert tables >= 1 + 1 + 1 + 1  # summary, the seed's claims, the gap study, speed
