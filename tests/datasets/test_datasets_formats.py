"""Length-statistics formats (from ../shared), user column mappings and format inference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schedlab import datasets
from schedlab.datasets.catalog import sha256_of
from schedlab.errors import DataFormatError
from schedlab.records import Workload

VIDUR = "length_stats/vidur_arxiv_summarization_stats_llama2_tokenizer_filtered_v2.csv"
PROXY = "length_stats/ssjf_lmsys_vicuna13b_predictions_warmup_multi_cls_1000K.csv"


@pytest.fixture(scope="module")
def vidur(shared_dir):
    return shared_dir / "datasets" / VIDUR


@pytest.fixture(scope="module")
def proxy(shared_dir):
    return shared_dir / "datasets" / PROXY


def test_vidur_length_stats(vidur):
    assert sha256_of(vidur) == "9d3580538d915ca75e4aaaa54590b42dbb17abc6d74c8913310cf07c232adcdc"
    assert datasets.infer_format(vidur) == "vidur"
    r = datasets.load_with_report(vidur)
    w = r.workload
    assert len(w) == 28257 and r.report.n_skipped == 0
    # PROVENANCE.md: prefill mean 2,588, p50 2,730, p99 3,934; decode mean 291, p50 167, p99 3,273
    assert round(w.input_tokens.mean()) == 2588 and np.median(w.input_tokens) == 2730
    assert round(w.output_tokens.mean()) == 291 and np.median(w.output_tokens) == 167
    assert np.quantile(w.output_tokens, 0.99) == pytest.approx(3273, abs=5)  # quantile method
    # no timestamps: an offline batch at t = 0, and the report says so
    assert not w.arrival_s.any() and any("no timestamps" in n for n in r.report.notes)
    with pytest.raises(ValueError, match="need timestamps"):
        datasets.load(vidur, end_s=10.0)


def test_proxy_predictions(proxy):
    assert sha256_of(proxy) == "ca8d48caa17ac906e66f4e36257b708eaae0207b281969c3282eaeb0621401fa"
    r = datasets.load_with_report(proxy, default_input_tokens=64)
    w = r.workload
    assert datasets.infer_format(proxy) == "proxy-predictions"
    assert len(w) == 85482 and w.output_tokens.max() == 511
    assert round(w.output_tokens.mean()) == 177 and np.median(w.output_tokens) == 140
    assert (w.input_tokens == 64).all()
    cls = w.features["predicted_class"]
    assert sorted(np.unique(cls).tolist()) == [0, 1, 2, 3, 4]
    # PROVENANCE.md: median true length per predicted class 19, 94, 221, 326, 376
    med = [np.median(w.output_tokens[cls == c]) for c in range(5)]
    assert med == [19, 94, 221, 326, 376]
    assert w.features["predictor_latency_s"].mean() == pytest.approx(0.0079, abs=2e-4)
    assert any("no prompt lengths" in n for n in r.report.notes)


def test_length_stats_feed_generators(vidur):
    """A timeless length file plus an arrival generator gives an online workload."""
    w = datasets.load(vidur)
    online = w.replace(arrival_s=datasets.poisson_arrivals(len(w), rate_per_s=4.0, seed=3))
    assert len(online) / online.duration_s == pytest.approx(4.0, rel=0.03)
    best = datasets.fit_lengths(w.input_tokens)[0]
    assert best.ks_statistic < 0.2 and best.n == len(w)


def test_user_csv_mapping(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("ts_ms,prompt,gen,tenant,prio\n0,10,1,a,2\n250,20,2,b,1\n1250,30,3,a,0\n")
    cols = {
        "arrival_s": "ts_ms",
        "input_tokens": "prompt",
        "output_tokens": "gen",
        "feature.tenant": "tenant",
        "group_id": "prio",
    }
    w = datasets.load(p, columns=cols, time_unit="ms")
    assert w.arrival_s.tolist() == [0.0, 0.25, 1.25]
    assert w.input_tokens.tolist() == [10, 20, 30] and w.group_id.tolist() == [2, 1, 0]
    assert w.features["tenant"].tolist() == ["a", "b", "a"]
    assert w.name == "mine"
    with pytest.raises(DataFormatError) as info:
        datasets.load(p, columns={**cols, "output_tokens": "missing"})
    assert (info.value.line, info.value.field) == (1, "missing")
    with pytest.raises(ValueError, match="'columns' parameter"):
        datasets.load(p, columns={"arrival": "ts_ms", "output_tokens": "gen"})
    with pytest.raises(ValueError, match="time_unit"):
        datasets.load(p, columns=cols, time_unit="hours")


def test_user_jsonl_mapping_with_blocks(tmp_path):
    p = tmp_path / "mine.jsonl"
    recs = [
        {"t": 1.0, "n_in": 1024, "n_out": 5, "blocks": [4, 5], "g": 0},
        {"t": 2.5, "n_in": 512, "n_out": 7, "blocks": [4], "g": 0},
    ]
    p.write_text("".join(json.dumps(r) + "\n" for r in recs))
    cols = {
        "arrival_s": "t",
        "input_tokens": "n_in",
        "output_tokens": "n_out",
        "prefix_block_ids": "blocks",
        "group_id": "g",
    }
    w = datasets.load(p, columns=cols, block_tokens=256)
    assert w.arrival_s.tolist() == [0.0, 1.5] and w.block_tokens == 256
    assert w.prefix_block_ids[0].tolist() == [4, 5] and w.prefix_block_ids[1].tolist() == [4]
    (tmp_path / "x.csv").write_text("t,n_in,n_out,blocks,g\n")
    with pytest.raises(ValueError, match="only for JSONL"):
        datasets.load(tmp_path / "x.csv", format="csv", columns=cols)


def test_datetime_mapping_and_seven_fraction_digits(tmp_path):
    p = tmp_path / "dt.csv"
    p.write_text("when,o\n2024-05-01 00:00:00.1234567,4\n2024-05-01 00:00:01.0000001,4\n")
    w = datasets.load(p, columns={"arrival_s": "when", "output_tokens": "o"}, time_unit="datetime")
    assert w.arrival_s[1] == pytest.approx(0.8765434, abs=1e-9)
    assert (w.input_tokens == 1).all()


def test_generic_format_needs_mapping(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="needs a 'columns' mapping"):
        datasets.load(p, format="csv")
    with pytest.raises(ValueError, match="cannot be inferred from its extension"):
        datasets.infer_format(tmp_path / "x.parquet")


def test_from_pandas_round_trip_of_a_loaded_file(proxy):
    w = datasets.load(proxy)
    w2 = Workload.from_pandas(w.to_pandas())
    assert np.array_equal(w2.output_tokens, w.output_tokens)
    assert np.array_equal(w2.features["predicted_class"], w.features["predicted_class"])


def test_plain_integer_jsonl_loads_without_pandas_and_the_same_as_through_it(monkeypatch):
    import subprocess
    import sys

    import numpy as np

    from schedlab.datasets import jsonl_reader

    code = ("import sys; from schedlab.datasets import load; w = load('mooncake-conversation'); "
            "print(len(w), 'pandas' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["12031", "False"]  # importing pandas was 0.4 s of a 2.5 s process
    typed = datasets.load("mooncake-synthetic")
    monkeypatch.setattr(jsonl_reader, "_int64", lambda values: None)  # force the pandas path
    framed = datasets.load("mooncake-synthetic")
    for col in ("arrival_s", "input_tokens", "output_tokens"):
        assert np.array_equal(getattr(typed, col), getattr(framed, col))
    assert np.array_equal(typed.prefix_block_ids.ids, framed.prefix_block_ids.ids)
