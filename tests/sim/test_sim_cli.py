"""``schedlab simulate`` from the shell: JSON output, bad input, rescaling."""

from __future__ import annotations

import json

import numpy as np
import pytest

from schedlab.cli import main


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["simulate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_summary_on_a_shipped_trace(capsys) -> None:
    code, out, _ = _run(
        capsys, "--trace", "azure-conv-2023", "--model", "llama-2-7b", "--gpu", "a100-80gb",
        "--policy", "fcfs", "--limit", "200", "--rate", "2", "--json",
    )
    assert code == 0
    doc = json.loads(out)
    assert doc["requests"] == 200 and doc["completed"] + doc["rejected"] == 200
    assert doc["jct_mean_s"] > 0 and doc["total_wall_s"] >= doc["simulate_wall_s"] > 0
    assert doc["rate"] == 2.0


def test_two_instances_text_output(capsys) -> None:
    code, out, _ = _run(
        capsys, "--trace", "azure-conv-2023", "--model", "llama-2-7b", "--gpu", "a100-80gb",
        "--policy", "fcfs", "--limit", "100", "--instances", "2", "--router", "round-robin",
    )
    assert code == 0 and "jct_p99_s" in out and "instances" in out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--rate", "-1"], "'rate'"),
        (["--limit", "0"], "'limit'"),
        (["--instances", "0"], "'instances'"),
        (["--policy", "fcfz"], "fcfs"),
    ],
)
def test_bad_arguments_fail_with_a_message(capsys, extra, message) -> None:
    argv = ["--trace", "azure-conv-2023", "--model", "llama-2-7b", "--gpu", "a100-80gb",
            "--policy", "fcfs", "--limit", "10", *extra]
    code, out, err = _run(capsys, *argv)
    assert code == 1 and message in err and out == ""


def test_rate_rescaling_keeps_order_and_hits_the_rate() -> None:
    # --rate replays the trace through schedlab.datasets.replay (mean rate n / span)
    from schedlab import Workload
    from schedlab.datasets import replay, rescale_arrivals

    a = np.cumsum(np.random.default_rng(0).exponential(0.3, 1000))
    w = Workload(arrival_s=a, input_tokens=np.ones(1000), output_tokens=np.ones(1000))
    b = replay(w, rate_per_s=5.0).arrival_s
    assert b[0] == 0 and np.all(np.diff(b) >= 0)
    assert len(b) / b[-1] == pytest.approx(5.0)
    with pytest.raises(ValueError, match="'rate_per_s'"):
        rescale_arrivals(a, rate_per_s=-1.0)


MOONCAKE = ["--trace", "mooncake-conversation", "--model", "llama-3-70b", "--gpu", "a800",
            "--tp", "8", "--max-context-tokens", "200000", "--policy", "fcfs", "--limit", "300"]


def test_a_disaggregated_run_from_the_shell(capsys) -> None:
    code, out, _ = _run(capsys, *MOONCAKE, "--prefill-instances", "4", "--decode-instances", "4",
                        "--placement-param", "admission=late", "--placement-param",
                        "slo_tbt_s=0.2", "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["requests"] == 300 and doc["completed"] + doc["rejected"] == 300
    assert (doc["prefill_instances"], doc["decode_instances"]) == (4, 4)
    assert doc["placement_params"] == {"admission": "late", "slo_tbt_s": 0.2}
    assert set(doc["effective_capacity"]) == {"tbt_100ms", "tbt_200ms", "tbt_300ms"}
    assert 0 < doc["cached_token_share"] < 1 and doc["tbt_mean_s"] > 0


def test_colocated_prefix_caching_from_the_shell(capsys) -> None:
    code, out, _ = _run(capsys, *MOONCAKE, "--prefix-cache-tokens", "1000000", "--json")
    assert code == 0 and json.loads(out)["cached_token_share"] > 0


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--prefill-instances", "2"], "both --prefill-instances and --decode-instances"),
        (["--prefill-instances", "0", "--decode-instances", "1"], "'prefill-instances'"),
        (["--prefill-instances", "1", "--decode-instances", "1", "--placement", "moon"],
         "Unknown placement policy 'moon'"),
        (["--prefill-instances", "1", "--decode-instances", "1", "--placement-param", "x"],
         "KEY=VALUE"),
        (["--prefill-instances", "1", "--decode-instances", "1", "--placement-param",
          "admission=eager"], "Unknown admission policy 'eager'"),
        (["--max-context-tokens", "0"], "'max-context-tokens'"),
    ],
)
def test_bad_disaggregated_arguments_fail_with_a_message(capsys, extra, message) -> None:
    code, out, err = _run(capsys, *MOONCAKE, *extra)
    assert code == 1 and message in err and out == "" and "Traceback" not in err


def test_prefix_caching_needs_prefix_blocks(capsys) -> None:
    code, out, err = _run(capsys, "--trace", "azure-conv-2023", "--model", "llama-2-7b", "--gpu",
                          "a100-80gb", "--policy", "vllm", "--limit", "10",
                          "--prefix-cache-tokens", "10000")
    assert code == 1 and "no prefix_block_ids" in err and "Traceback" not in err and out == ""
