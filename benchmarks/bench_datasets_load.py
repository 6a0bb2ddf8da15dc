"""Loader throughput on large generated files (run by hand, not a test).

    python benchmarks/bench_datasets_load.py [--rows 5000000] [--dir /tmp]

Writes an Azure-format CSV (TIMESTAMP with 7 fractional digits, ContextTokens, GeneratedTokens)
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
import tempfile
import time

import numpy as np


def write_azure_csv(path: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    gaps_ns = rng.exponential(1e8, n).astype(np.int64) // 100 * 100  # 10 req/s, 100 ns ticks
    t = np.datetime64("2024-05-10T00:00:00", "ns") + np.cumsum(gaps_ns).astype("timedelta64[ns]")
    with open(path, "w") as f:
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
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    args = ap.parse_args()
    import pandas as pd

    from schedlab import datasets

    csv = os.path.join(args.dir, f"bench_azure_{args.rows}.csv")
    jsonl = os.path.join(args.dir, f"bench_mooncake_{args.rows // 10}.jsonl")
    if not os.path.exists(csv):
        _, dt = timed(lambda: write_azure_csv(csv, args.rows))
        print(f"wrote {csv} ({os.path.getsize(csv) / 1e6:.0f} MB) in {dt:.1f} s")
    if not os.path.exists(jsonl):
        write_mooncake_jsonl(jsonl, args.rows // 10)

    def baseline():
        return sum(len(c) for c in pd.read_csv(csv, chunksize=1_000_000))

    n_base, t_base = timed(baseline)
    w, t_load = timed(lambda: datasets.load(csv))
    assert len(w) == n_base == args.rows
    span = w.duration_s
    win, t_win = timed(lambda: datasets.load(csv, start_s=0.0, end_s=span / 10))
    mj, t_json = timed(lambda: datasets.load(jsonl))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"rows: {args.rows:,}  (CPU count {os.cpu_count()}, load average {os.getloadavg()[0]:.2f})"
    )
    print(
        f"baseline pandas.read_csv (no checks):  {t_base:6.2f} s  {n_base / t_base / 1e6:5.2f} M rows/s"
    )
    print(
        f"datasets.load azure CSV (checked):     {t_load:6.2f} s  {len(w) / t_load / 1e6:5.2f} M rows/s"
        f"  ({t_load / t_base:.2f}x baseline time)"
    )
    print(
        f"datasets.load first 10% window:        {t_win:6.2f} s  ({len(win):,} rows kept, "
        f"{t_win / t_load:.2f}x full load time)"
    )
    print(
        f"datasets.load mooncake JSONL:          {t_json:6.2f} s  {len(mj) / t_json / 1e6:5.2f} M rows/s"
        f"  ({len(mj):,} rows)"
    )
    print(f"peak RSS: {rss:,.0f} MiB")


if __name__ == "__main__":
    main()
