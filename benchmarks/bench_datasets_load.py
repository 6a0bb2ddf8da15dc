"""Loader throughput on large generated files (run by hand, not a test).

    python benchmarks/bench_datasets_load.py [--rows 5000000] [--dir /tmp]

Writes an Azure-format CSV (TIMESTAMP with 7 fractional digits, ContextTokens, GeneratedTokens,
CRLF line ends like the published files)
and a Mooncake-format JSONL, then times:

- baseline: ``pandas.read_csv`` of the same CSV (chunked, no checks, no timestamp parsing);
- ``schedlab.datasets.load`` (chunked, every row checked, timestamps parsed, Workload built);
- a 10% time window, which stops reading after the window;
- the Mooncake JSONL loader (per-line ``json.loads``) on ``rows // 10`` records.

It prints rows/s and ratios against the baseline measured in the same run, and the peak RSS.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np


def write_azure_csv(path: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    gaps_ns = rng.exponential(1e8, n).astype(np.int64) // 100 * 100  # 10 req/s, 100 ns ticks
    t = np.datetime64("2024-05-10T00:00:00", "ns") + np.cumsum(gaps_ns).astype("timedelta64[ns]")
    with open(path, "w", newline="\r\n") as f:  # CRLF line ends, like the Azure files
        f.write("TIMESTAMP,ContextTokens,GeneratedTokens\n")
        for lo in range(0, n, 1_000_000):
            hi = min(n, lo + 1_000_000)
            ts = np.char.replace(np.datetime_as_string(t[lo:hi], unit="ns"), "T", " ")
            ts = np.char.ljust(ts, 27).astype("U27")  # 7 fractional digits, like Azure
            ci = rng.integers(1, 8000, hi - lo).astype(str)
            go = rng.integers(1, 1000, hi - lo).astype(str)
            f.write(
                "\n".join(np.char.add(np.char.add(np.char.add(ts, ","), np.char.add(ci, ",")), go))
            )
            f.write("\n")


def write_mooncake_jsonl(path: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    ts = np.cumsum(rng.integers(0, 300, n))
    inp = rng.integers(1, 20000, n)
    with open(path, "w") as f:
        for i in range(n):
            k = -(-int(inp[i]) // 512)
            ids = ",".join(str(x) for x in range(i * 3, i * 3 + k))
            f.write(
                f'{{"timestamp": {ts[i]}, "input_length": {inp[i]}, "output_length": 100, '
                f'"hash_ids": [{ids}]}}\n'
            )


def timed(fn):
    """Result, wall seconds and CPU seconds of this process (fairer on a shared machine)."""
    w0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - w0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    import pandas as pd

    from schedlab import datasets

    csv = os.path.join(args.dir, f"bench_azure_crlf_{args.rows}.csv")
    jsonl = os.path.join(args.dir, f"bench_mooncake_{args.rows // 10}.jsonl")
    if not os.path.exists(csv):
        _, dt, _ = timed(lambda: write_azure_csv(csv, args.rows))
        print(f"wrote {csv} ({os.path.getsize(csv) / 1e6:.0f} MB) in {dt:.1f} s")
    if not os.path.exists(jsonl):
        write_mooncake_jsonl(jsonl, args.rows // 10)

    def baseline():
        return sum(len(c) for c in pd.read_csv(csv, chunksize=1_000_000))

    n_base, t_base, c_base = timed(baseline)
    w, t_load, c_load = timed(lambda: datasets.load(csv))
    assert len(w) == n_base == args.rows
    w_pd, t_pd, c_pd = timed(lambda: datasets.load(csv, engine="pandas"))
    assert np.array_equal(w_pd.arrival_s, w.arrival_s)
    del w_pd
    win, t_win, c_win = timed(lambda: datasets.load(csv, start_s=0.0, end_s=w.duration_s / 10))
    mj, t_json, c_json = timed(lambda: datasets.load(jsonl))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    n = args.rows
    print(f"rows: {n:,}  (CPUs {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})")
    print(
        f"{'':44}{'wall s':>8}{'M rows/s':>10}{'CPU s':>8}{'M rows/CPU-s':>14}{'vs baseline':>13}"
    )

    def line(label, rows, wall, cpu):
        ratio = (rows / cpu) / (n_base / c_base)
        print(
            f"{label:44}{wall:8.2f}{rows / wall / 1e6:10.2f}{cpu:8.2f}{rows / cpu / 1e6:14.2f}"
            f"{ratio:12.2f}x"
        )

    line("baseline pandas.read_csv (no checks, no dates)", n_base, t_base, c_base)
    line("datasets.load azure CSV, engine='auto'", len(w), t_load, c_load)
    line("datasets.load azure CSV, engine='pandas'", n, t_pd, c_pd)
    line(f"first 10% time window ({len(win):,} rows kept)", len(win), t_win, c_win)
    line(f"datasets.load mooncake JSONL ({len(mj):,} rows)", len(mj), t_json, c_json)
    print("('vs baseline' = rows per CPU second relative to the baseline's; > 1 is faster)")
    print(f"peak RSS of this process (all runs above): {rss:,.0f} MiB")
    for engine in ("auto", "pandas"):
        code = (  # VmHWM: this process's own peak (ru_maxrss would include the parent's)
            "from schedlab import datasets; "
            f"w = datasets.load({csv!r}, engine={engine!r}); "
            "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM')][0]; "
            "print(int(hwm.split()[1]) // 1024)"
        )
        run = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        peak = run.stdout
        print(
            f"peak RSS of a fresh process loading it, engine={engine!r}: {int(peak):,} MiB "
            f"(the Workload's 4 int64/float64 columns: {4 * 8 * n / 2**20:,.0f} MiB)"
        )


if __name__ == "__main__":
    main()
