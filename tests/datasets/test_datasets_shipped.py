"""The shipped traces: row counts, checksums and statistics against PROVENANCE.md, round trips."""

from __future__ import annotations

import re

import numpy as np
import pytest

from schedlab import datasets
from schedlab.datasets.catalog import DATA_DIR, SHIPPED, sha256_of, shipped_path
from schedlab.records import Workload

# Statistics published in ../shared/datasets/PROVENANCE.md (rounded as printed there).
PROVENANCE = {
    "mooncake-conversation": {
        "rows": 12031,
        "span": 3537,
        "rate": 3.40,
        "in_mean": 12035,
        "in_p50": 6909,
        "out_mean": 343,
        "out_p50": 350,
        "out_max": 2000,
        "reuse": 0.366,
    },
    "mooncake-synthetic": {
        "rows": 3993,
        "span": 1022,
        "rate": 3.91,
        "in_mean": 15325,
        "in_p50": 11587,
        "out_mean": 149,
        "out_p50": 69,
        "reuse": 0.640,
    },
    "azure-code-2023": {
        "rows": 8819,
        "span": 3436,
        "rate": 2.57,
        "in_mean": 2048,
        "in_p50": 1469,
        "in_max": 7437,
        "out_mean": 27.9,
        "out_p50": 13,
    },
    "azure-conv-2023": {
        "rows": 19366,
        "span": 3502,
        "rate": 5.53,
        "in_mean": 1155,
        "in_p50": 1020,
        "out_mean": 211,
        "out_p50": 129,
        "out_max": 1000,
    },
    # etalon's ShareGPT lengths: statistics from the research notes of issue 10 (no times)
    "sharegpt-lengths": {
        "rows": 30731,
        "in_mean": 2340,
        "in_p50": 1730,
        "in_max": 8141,
        "out_mean": 438.7,
        "out_p50": 415,
        "out_max": 1024,
    },
}


@pytest.fixture(scope="module")
def loaded() -> dict[str, Workload]:
    return {name: datasets.load(name) for name in SHIPPED}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_checksum_and_row_count(name, loaded):
    assert sha256_of(shipped_path(name)) == SHIPPED[name].sha256
    assert datasets.verify_checksum(name)
    assert len(loaded[name]) == SHIPPED[name].rows == PROVENANCE[name]["rows"]


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_statistics_match_provenance(name, loaded):
    p, w = PROVENANCE[name], loaded[name]
    d = datasets.describe(w)
    assert w.arrival_s[0] == 0.0
    if "span" in p:
        assert round(d["time_span_s"]) == p["span"]
        assert round(d["mean_rate_per_s"], 2) == p["rate"]
    else:  # length statistics only: a batch at 0 s
        assert d["time_span_s"] == 0.0 and d["mean_rate_per_s"] is None
    assert d["input_tokens"]["mean"] == pytest.approx(p["in_mean"], abs=0.6)
    assert d["input_tokens"]["p50"] == p["in_p50"]
    assert d["output_tokens"]["mean"] == pytest.approx(p["out_mean"], abs=0.6)
    assert d["output_tokens"]["p50"] == p["out_p50"]
    for key, col in (("in_max", "input_tokens"), ("out_max", "output_tokens")):
        if key in p:
            assert d[col]["max"] == p[key]
    if "reuse" in p:
        assert round(d["prefix_block_reuse"], 3) == p["reuse"]
        assert w.block_tokens == 512


def test_mooncake_blocks_cover_the_prompt(loaded):
    w = loaded["mooncake-conversation"]
    n_blocks = w.prefix_block_ids.counts()
    # hash_ids has one id per started 512-token block of the prompt
    assert np.array_equal(n_blocks, -(-w.input_tokens // 512))
    assert w.prefix_block_ids[0].tolist() == list(range(14))


def test_shipped_files_match_shared_provenance(shared_dir):
    """The checksums and row counts recorded in the package are PROVENANCE.md's."""
    text = (shared_dir / "datasets" / "PROVENANCE.md").read_text()
    rows = {
        m.group(1): (int(m.group(2).replace(",", "")), m.group(3))
        for m in re.finditer(r"\| (\S+) \| ([\d,]+) \| [\d,]+ \| ([0-9a-f]{64}) \|", text)
    }
    files = {
        "mooncake-conversation": "mooncake/conversation_trace.jsonl",
        "mooncake-synthetic": "mooncake/synthetic_trace.jsonl",
        "azure-code-2023": "azure_llm_2023/AzureLLMInferenceTrace_code.csv",
        "azure-conv-2023": "azure_llm_2023/AzureLLMInferenceTrace_conv.csv",
    }
    for name, rel in files.items():
        assert rows[rel] == (SHIPPED[name].rows, SHIPPED[name].sha256)


def test_sharegpt_lengths_are_the_etalon_file_and_keep_its_notice():
    import gzip

    raw = gzip.decompress(shipped_path("sharegpt-lengths").read_bytes())
    assert raw.startswith(b"num_prefill_tokens,num_decode_tokens,num_total_tokens,pd_ratio\n")
    w = datasets.load("sharegpt-lengths")
    cv = w.output_tokens.std() / w.output_tokens.mean()
    assert round(float(cv), 3) == 0.605
    notice = (DATA_DIR / "NOTICE.md").read_text()
    assert "Systems for AI Lab, Georgia Institute of Technology" in notice


def test_licences_and_attribution_ship():
    notice = (DATA_DIR / "NOTICE.md").read_text()
    for name, t in SHIPPED.items():
        assert name in notice and t.file in notice and t.sha256 in notice
    assert "Apache License" in (DATA_DIR / "LICENSE-Apache-2.0.txt").read_text()
    assert "creativecommons.org/licenses/by/4.0" in (DATA_DIR / "LICENSE-CC-BY-4.0.md").read_text()
    total = sum(p.stat().st_size for p in DATA_DIR.iterdir())
    assert total < 6_000_000


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_round_trip_pandas(name, loaded):
    w = loaded[name]
    w2 = Workload.from_pandas(w.to_pandas())
    for col in ("arrival_s", "input_tokens", "output_tokens", "request_id"):
        assert np.array_equal(getattr(w2, col), getattr(w, col))
    assert w2.name == w.name and w2.block_tokens == w.block_tokens
    if w.prefix_block_ids is not None:
        assert np.array_equal(w2.prefix_block_ids.ids, w.prefix_block_ids.ids)
        assert np.array_equal(w2.prefix_block_ids.offsets, w.prefix_block_ids.offsets)


def test_list_datasets():
    rows = datasets.list_datasets()
    assert [r["name"] for r in rows] == sorted(SHIPPED)
    for r in rows:
        assert r["rows"] == SHIPPED[r["name"]].rows
        assert r["licence"] in ("Apache-2.0", "CC-BY-4.0") and r["attribution"]
        if SHIPPED[r["name"]].format == "vidur":  # lengths only
            assert r["time_span_s"] == 0.0
        else:
            assert r["mean_rate_per_s"] > 0 and r["time_span_s"] > 0
        assert set(r["output_tokens"]) >= {"mean", "p50", "p90", "p99", "max"}


@pytest.mark.parametrize("engine", ["auto", "pandas"])
def test_time_window_shifts_to_start(engine):
    full = datasets.load("azure-conv-2023")
    r = datasets.load_with_report(
        "azure-conv-2023", start_s=600, end_s=1200, chunk_rows=1000, engine=engine
    )
    w = r.workload
    t = full.arrival_s
    inside = (t >= 600) & (t < 1200)
    assert len(w) == inside.sum()
    assert np.allclose(w.arrival_s, t[inside] - 600)
    assert np.array_equal(w.input_tokens, full.input_tokens[inside])
    # rows outside the window are counted; a read stops after the first chunk past end_s
    assert r.report.outside_window == (t < 600).sum() + (r.report.rows_read - (t < 1200).sum())
    if engine == "pandas":  # 1000-row chunks (the byte parser reads 8 MB blocks: one here)
        assert (t < 1200).sum() < r.report.rows_read <= (t < 1200).sum() + 1000


def test_unknown_name_suggests_close_matches():
    with pytest.raises(ValueError, match="azure-conv-2023"):
        datasets.load("azure-conv")


def test_plot_workload_leaves_the_callers_matplotlib_backend_alone(tmp_path):
    import matplotlib

    from schedlab.datasets.summary import plot_workload

    before = matplotlib.get_backend()
    matplotlib.use("svg")
    try:
        png = plot_workload(datasets.load("azure-code-2023").head(200), tmp_path / "w.png")
        assert matplotlib.get_backend() == "svg"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        matplotlib.use(before)
