"""``schedlab reproduce --report DIR``: one self-contained HTML page of the reproductions.

:func:`write_report` writes ``DIR/index.html`` holding, with no file beside it (plots are PNG
inlined as data, tables are HTML):

- every seed's claims side by side: paper against measured, whether each holds, its source and
  the note that explains it, then the seed's plots and the tables behind them;
- the **gap study**: batching policies against the CP-SAT optimum on small random serving
  problems (:func:`schedlab.commands.gap.policy_gap`);
- the **cost-model validation** against measured kernels, before and after calibration, when a
  profile folder in Vidur's layout is given (``../shared/costmodel/vidur-profiling`` here);
- **speed figures measured while writing the page**: each reproduction's wall time and the
  simulator's throughput on 10,000 requests.

The page loads nothing from the network. A small script marks, once the page has loaded, how many
images decoded and how many tables it holds (``data-images-loaded`` and ``data-tables`` on
``<body>``), which the browser test reads.

>>> from schedlab.seeds.contract import Claim, SeedReport
>>> import tempfile
>>> c = Claim(name="c", metric="m", baseline="b", paper_value=2.0, unit="x", source="s")
>>> rep = SeedReport(paper="demo", claims=(c.measured(2.5, note="n"),), setup={}, wall_s=1.0,
...                  tables={"t": {"x": [1, 2]}})
>>> page = write_report(tempfile.mkdtemp(), [rep], gap=None, speed=False)
>>> page.name, "demo" in page.read_text()
('index.html', True)
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schedlab.commands.reproduce import format_value

__all__ = ["GAP_POLICIES", "write_report"]

#: Policies of the gap study, and its size: requests per problem, problems, CP-SAT seconds.
GAP_POLICIES = ("fcfs", "sjf", "srpt", "skip-join-mlfq")
GAP_SIZE = (8, 3, 5.0)

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1200px; color: #222; }
h1, h2, h3 { font-weight: 600; } table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 3px 7px; font-size: 13px; vertical-align: top; }
th { background: #f2f2f2; } td.no { color: #b00; font-weight: 600; } td.yes { color: #070; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; } .note { font-size: 12px; }
details { margin: 0.3em 0 1em; } summary { cursor: pointer; }
"""

_CHECK = """
window.addEventListener("load", function () {
  var ok = Array.prototype.filter.call(document.images, function (i) {
    return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-images-loaded", String(ok));
  document.body.setAttribute("data-tables", String(document.querySelectorAll("table").length));
});
"""


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]], classes: Any = None) -> str:
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = []
    for i, row in enumerate(rows):
        cls = classes[i] if classes is not None else [None] * len(row)
        cells = (f"<td class='{k}'>" if k else "<td>" for k in cls)
        body.append("<tr>" + "".join(f"{td}{_esc(v)}</td>"
                                     for td, v in zip(cells, row, strict=True)) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _image(path: str | Path) -> str:
    p = Path(path)
    if not p.is_file():
        return f"<p class='note'>plot {_esc(p.name)} was not written</p>"
    data = base64.b64encode(p.read_bytes()).decode("ascii")
    return f"<img alt='{_esc(p.name)}' src='data:image/png;base64,{data}'>"


def _seed_section(rep: Any, max_rows: int) -> str:
    rows: list[tuple[Any, ...]] = []
    classes: list[list[str | None]] = []
    for r in rep.claims:
        c = r.claim
        rows.append((c.name, c.metric, c.baseline, format_value(c.paper_value, c.unit),
                     format_value(r.measured_value, c.unit), "yes" if r.holds else "no",
                     c.source, r.note))
        classes.append([None, None, None, None, None, "yes" if r.holds else "no", None, "note"])
    out = [f"<h2 id='{_esc(rep.paper)}'>{_esc(rep.paper)}</h2>",
           f"<p>{rep.n_holding} of {len(rep.claims)} claims hold; wall {rep.wall_s:.1f} s; "
           f"mode {_esc(rep.setup.get('mode', 'default'))}.</p>",
           _table(("claim", "metric", "baseline", "paper", "measured", "holds", "source",
                   "note"), rows, classes)]
    out += [_image(p) for p in rep.setup.get("plots") or []]
    for name in rep.tables:
        frame = rep.frame(name)
        shown = frame.head(max_rows)
        more = (f" (first {max_rows} of {len(frame)} rows)" if len(frame) > max_rows else
                f" ({len(frame)} rows)")
        out.append(f"<details><summary>table {_esc(name)}{more}</summary>"
                   + shown.to_html(index=False, na_rep="", border=0) + "</details>")
    return "\n".join(out)


def _gap_section(policies: Sequence[str], size: tuple[int, int, float], seed: int) -> str:
    from schedlab.commands.gap import policy_gap

    n, instances, limit = size
    rows = []
    for policy in policies:
        s = policy_gap(policy, n=n, instances=instances, seed=seed, time_limit_s=limit,
                       num_workers=1)["summary"]
        rows.append((policy, s["n_instances"], s["proven_optimal"], _pct(s["gap"]["mean"]),
                     _pct(s["gap"]["max"]), f"{s['solve_wall_s']['mean']:.2f}"))
    return ("<h2 id='gap'>Gap study</h2>"
            f"<p>Total job completion time of each batching policy against the CP-SAT optimum "
            f"on {instances} random problems of {n} requests (CP-SAT limit {limit:g} s; when not "
            "proven optimal the best solution stands in, and the gap is understated).</p>"
            + _table(("policy", "problems", "proven optimal", "mean gap", "max gap",
                      "mean solve s"),
                     rows))


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _validation_section(profiles: str | Path | None) -> str:
    head = "<h2 id='costmodel'>Cost-model validation</h2>"
    if profiles is None or not Path(profiles).is_dir():
        return head + ("<p>No profile folder was given (<code>--profiles DIR</code>, a folder in "
                       "Vidur's layout such as <code>../shared/costmodel/vidur-profiling</code>)"
                       ": nothing to validate against.</p>")
    from schedlab.costmodel.calibration import calibrate, validate
    from schedlab.costmodel.profiling import load_profile

    prof = load_profile(profiles, "a100-80gb")
    before = validate(prof)
    after = validate(prof, calibration=calibrate(prof))
    rows = [(op, st["rows"], _pct(st["median_ape"]), _pct(after.ops[op]["median_ape"]))
            for op, st in before.ops.items()]
    rows.append(("all", before.overall["rows"], _pct(before.overall["median_ape"]),
                 _pct(after.overall["median_ape"])))
    return head + (f"<p>The roofline against {before.overall['rows']} measured A100 kernels "
                   f"({_esc(profiles)}): median absolute error per operator with the default "
                   "efficiencies and after calibrating on the same profile.</p>"
                   + _table(("operator", "rows", "median error", "after calibration"), rows))


def _speed_section(reports: Sequence[Any]) -> str:
    import numpy as np

    from schedlab.records import Workload
    from schedlab.sim import InstanceSpec, simulate

    rng = np.random.default_rng(0)
    n = 10_000
    total = rng.integers(256, 2049, n)
    w = Workload(arrival_s=np.cumsum(rng.exponential(0.25, n)), input_tokens=total * 4 // 5,
                 output_tokens=np.maximum(total // 5, 1))
    spec = InstanceSpec(model="llama-2-7b", gpu="a100-80gb")
    simulate(w, spec, "fcfs")  # compiled kernels loaded before the timed run
    t = time.perf_counter()
    simulate(w, spec, "fcfs")
    wall = time.perf_counter() - t
    rows = [(f"reproduce {r.paper} ({r.setup.get('mode', 'default')})", f"{r.wall_s:.1f} s")
            for r in reports]
    rows.append(("simulate 10,000 requests (Llama-2-7B on one A100, FCFS), in process",
                 f"{wall:.2f} s ({n / wall:,.0f} requests/s)"))
    return ("<h2 id='speed'>Speed, measured while writing this page</h2>"
            "<p>On this machine, in this process; the benchmarks in <code>benchmarks/</code> "
            "measure more, against baselines run beside them.</p>"
            + _table(("what", "wall"), rows))


def write_report(out_dir: str | Path, reports: Sequence[Any], *, gap: Sequence[str] | None =
                 GAP_POLICIES, gap_size: tuple[int, int, float] = GAP_SIZE,
                 profiles: str | Path | None = None, speed: bool = True, seed: int = 0,
                 max_rows: int = 200) -> Path:
    """Write ``out_dir/index.html`` for ``reports`` (:class:`~schedlab.seeds.contract.SeedReport`
    objects whose plots are already written) and return its path. ``gap`` names the policies of
    the gap study (``None``: none) at ``gap_size`` (requests, problems, CP-SAT seconds);
    ``profiles`` a Vidur-layout profile folder for the cost-model validation; ``speed`` adds
    the speed figures; ``max_rows`` caps each table shown."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary = _table(("paper", "claims", "hold", "wall s"), [
        (r.paper, len(r.claims), r.n_holding, f"{r.wall_s:.1f}") for r in reports])
    parts = ["<h1>schedlab: seed papers reproduced</h1>",
             f"<p>Written {time.strftime('%Y-%m-%d %H:%M')}. A claim <em>holds</em> when its "
             "direction is reproduced; the note says how far the value is from the paper's "
             "and why.</p>", summary]
    parts += [_seed_section(r, max_rows) for r in reports]
    if gap:
        parts.append(_gap_section(gap, gap_size, seed))
    parts.append(_validation_section(profiles))
    if speed:
        parts.append(_speed_section(reports))
    page = ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<title>schedlab reproductions</title>"
            f"<style>{_STYLE}</style><script>{_CHECK}</script></head><body>"
            + "\n".join(parts) + "</body></html>")
    path = out / "index.html"
    path.write_text(page, encoding="utf-8")
    return path
