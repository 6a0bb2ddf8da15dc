"""schedlab and Vidur side by side, as whole processes on the same workload (run by hand).

    python benchmarks/bench_vidur_side_by_side.py --n 10000 [--runs 2] [--vidur-args "..."]
    python benchmarks/bench_vidur_side_by_side.py --startup     # schedlab start-up alone

The workload is ``../shared/bench/vidur/side_by_side.sh``'s: Llama-2-7B on one A100, vLLM
scheduling, batch cap 128, 4,096 tokens per batch, total length uniform in 256..2048 split 4:1
between prompt and output, Poisson arrivals at 4 req/s. schedlab reads it as a Mooncake-format
trace written here; Vidur draws its own requests from the same distributions (its synthetic
generator), with its plots and Chrome trace off, its fastest configuration. Vidur runs when it
is installed where ``setup.sh`` puts it (``$VIDUR_WORK``, default ``~/.cache/vidur-bench``);
otherwise schedlab's figures are printed alone. Each line is one JSON object: wall seconds and
peak memory of each whole process (``/proc``-free: ``resource.getrusage`` of the children), the
ratio of the fastest runs, the load average before the run.

``--startup`` times ``schedlab simulate`` on 10 requests (the issue's start-up figure) and on
200 (the smallest trace that loads the compiled kernels), ``--runs`` times each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SCHEDLAB = str(Path(sys.executable).with_name("schedlab"))
VIDUR_WORK = Path(os.environ.get("VIDUR_WORK", Path.home() / ".cache" / "vidur-bench"))


def write_workload(path: Path, n: int, qps: float = 4.0) -> None:
    """The side-by-side workload as a Mooncake JSONL trace (seed 0, as the shared script)."""
    rng = np.random.default_rng(0)
    t = np.cumsum(rng.exponential(1 / qps, n))
    total = rng.integers(256, 2049, n)
    with path.open("w") as f:
        for a, x in zip(t, total, strict=True):
            f.write(json.dumps({"timestamp": int(a * 1000), "input_length": int(x * 4 // 5),
                                "output_length": int(x - x * 4 // 5), "hash_ids": []}) + "\n")


def timed(cmd: list[str], **kwargs: object) -> tuple[float, float]:
    """Wall seconds and the peak resident MiB of the child process running ``cmd``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kwargs)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, (peak if peak > before else float("nan")) / 1024


def schedlab_cmd(trace: Path) -> list[str]:
    return [SCHEDLAB, "simulate", "--trace", str(trace), "--model", "llama-2-7b", "--gpu",
            "a100-80gb", "--policy", "vllm", "--max-batch-size", "128", "--max-batch-tokens",
            "4096", "--quiet", "--json"]


def vidur_cmd(n: int, out: Path, extra: str, qps: float = 4.0) -> list[str]:
    args = f"""--no-metrics_config_store_plots --no-metrics_config_enable_chrome_trace
      --replica_config_device a100 --replica_config_network_device a100_pairwise_nvlink
      --replica_config_model_name meta-llama/Llama-2-7b-hf --cluster_config_num_replicas 1
      --replica_config_tensor_parallel_size 1 --replica_config_num_pipeline_stages 1
      --request_generator_config_type synthetic
      --synthetic_request_generator_config_num_requests {n}
      --length_generator_config_type uniform
      --uniform_request_length_generator_config_min_tokens 256
      --uniform_request_length_generator_config_max_tokens 2048
      --uniform_request_length_generator_config_prefill_to_decode_ratio 4
      --interval_generator_config_type poisson --poisson_request_interval_generator_config_qps {qps}
      --replica_scheduler_config_type vllm --vllm_scheduler_config_batch_size_cap 128
      --vllm_scheduler_config_max_tokens_in_batch 4096
      --execution_time_predictor_config_type random_forrest
      --metrics_config_output_dir {out} --metrics_config_cache_dir {VIDUR_WORK / 'cache'} {extra}"""
    return [str(VIDUR_WORK / "venv" / "bin" / "python"), "-m", "vidur.main", *args.split()]


def vidur_commit() -> str | None:
    try:
        return subprocess.run(["git", "-C", str(VIDUR_WORK / "vidur"), "log", "-1", "--format=%h"],
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def side_by_side(n: int, runs: int, vidur_args: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "w.jsonl"
        write_workload(trace, n)
        load = os.getloadavg()[0]
        ours = [timed(schedlab_cmd(trace)) for _ in range(runs)]
        row: dict = {"n": n, "load_avg_1m": round(load, 2),
                     "schedlab_s": [round(w, 2) for w, _ in ours],
                     "schedlab_peak_mib": round(max(m for _, m in ours), 0)}
        if not (VIDUR_WORK / "venv" / "bin" / "python").exists():
            row["vidur"] = f"not installed in {VIDUR_WORK} (../shared/bench/vidur/setup.sh)"
            return row
        env = {**os.environ, "WANDB_MODE": "disabled"}
        theirs = [timed(vidur_cmd(n, Path(tmp) / f"v{i}", vidur_args), cwd=VIDUR_WORK / "vidur",
                        env=env) for i in range(runs)]
        row.update(vidur_commit=vidur_commit(), vidur_flags="plots and Chrome trace off, "
                   "random-forest predictor" + (f", {vidur_args}" if vidur_args else ""),
                   vidur_s=[round(w, 2) for w, _ in theirs],
                   vidur_peak_mib=round(max(m for _, m in theirs), 0),
                   ratio=round(min(w for w, _ in theirs) / min(w for w, _ in ours), 1))
        return row


def startup(runs: int) -> dict:
    row: dict = {"part": "startup", "load_avg_1m": round(os.getloadavg()[0], 2)}
    for n in (10, 200):
        cmd = [SCHEDLAB, "simulate", "--trace", "azure-code-2023", "--model", "llama-2-7b",
               "--gpu", "a100-80gb", "--policy", "fcfs", "--limit", str(n), "--quiet", "--json"]
        timed(cmd)  # warm the file cache
        walls = [timed(cmd)[0] for _ in range(runs)]
        row[f"simulate_{n}_requests_s"] = [round(w, 3) for w in walls]
    numpy_s = [timed([sys.executable, "-c", "import numpy"])[0] for _ in range(runs)]
    row["python_and_numpy_alone_s"] = [round(w, 3) for w in numpy_s]
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--vidur-args", default="", help="extra Vidur flags (e.g. its predictor grid)")
    ap.add_argument("--startup", action="store_true", help="time schedlab's start-up only")
    a = ap.parse_args()
    print(json.dumps(startup(a.runs) if a.startup else side_by_side(a.n, a.runs, a.vidur_args)))


if __name__ == "__main__":
    main()
