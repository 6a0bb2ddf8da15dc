"""Reference simulations whose schedules must not change when the engine or a policy is
rewritten without meaning to change a rule (run by hand, like the other benchmarks).

    python benchmarks/reference_runs.py record OUT.npz     # before the change
    python benchmarks/reference_runs.py compare OUT.npz    # after it: bit for bit, per run
    python benchmarks/reference_runs.py record OUT.npz --stepped --ask-every-time

Each run stores, per request, the instance, status, reject reason, first-token and finish times,
preemptions and swaps, and per run the iteration count and busy time. ``compare`` prints one
line per run (``identical`` or the fields that differ, with the largest difference) and exits 1
when any run differs. Policy calls (``decisions``) are printed beside, not compared: saving calls
is the point of most engine changes.

The runs cover every registered batching policy on real and synthetic traces: default and
chunked prefill, swap and recompute preemption, a small KV cache (preemption storms), a small
host swap space (FastServe's prefill gate), mispredicted output lengths, several instances with
each router, and the FastServe reproduction's engine (batch 16, overlapped swaps).

``--stepped`` runs every decode iteration on its own (``closed_form=False``), so the times do not
depend on where the engine splits closed-form decode stretches (different splits round
differently, by about 1e-14 s). ``--ask-every-time`` asks the policy at every decision point:
plans lose ``static`` (and decisions of the engine before plans lose their ``hold_*`` and
``wake_on_arrival`` declarations), which tells a rule change from an engine shortcut.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

FIELDS = ("instance", "status", "reject_reason", "first_token_s", "finish_s", "preemptions",
          "swaps")


def _every_time(name: str) -> Callable[..., Any]:
    """The registered policy ``name``, asked at every decision point."""
    from schedlab.policies import get_policy

    policy = get_policy(name)
    fields = {"static": False, "wake_on_arrival": True, "hold_batch": False,
              "hold_room_tokens": 0, "hold_free_tokens": 0}

    def every_time(view: Any, /, **params: Any) -> Any:
        answer = policy(view, **params)
        own = {f.name for f in dataclasses.fields(answer)}
        return dataclasses.replace(answer, **{k: v for k, v in fields.items() if k in own})

    return every_time


def _runs(stepped: bool, every_time: bool) -> Iterator[tuple[str, Callable[[], Any]]]:
    from schedlab import Workload, datasets
    from schedlab.costmodel import iteration_cost
    from schedlab.sim import Cluster, InstanceSpec
    from schedlab.sim import simulate as _simulate

    def simulate(w: Any, cluster: Any, policy: str, **kw: Any) -> Any:
        return _simulate(w, cluster, _every_time(policy) if every_time else policy,
                         closed_form=not stepped, **kw)

    conv = datasets.load("azure-conv-2023")
    code = datasets.load("azure-code-2023")
    azure = conv.head(1500)
    cost7 = iteration_cost("llama-2-7b", "a100-80gb")
    base = InstanceSpec(cost=cost7)
    rng = np.random.default_rng(7)
    misp = np.maximum(azure.output_tokens * rng.lognormal(0.0, 1.0, len(azure)), 1.0)
    fast = datasets.replay(code.head(800), rate_per_s=6.0)
    policies = ("fcfs", "vllm", "sjf", "srpt", "mlfq", "skip-join-mlfq")

    for p in policies:
        yield f"azure1500/{p}", lambda p=p: simulate(azure, base, p)
    for p in policies:
        spec = InstanceSpec(cost=cost7, chunk_tokens=512, max_batch_size=64)
        yield f"code800-chunk512/{p}", lambda p=p, s=spec: simulate(fast, s, p)
    small = InstanceSpec(cost=cost7, kv_capacity_tokens=20_000, max_batch_size=64)
    for p in policies:
        yield f"azure1500-kv20k/{p}", lambda p=p: simulate(azure, small, p)
    yield "azure1500-kv20k/vllm-swap", lambda: simulate(
        azure, small, "vllm", policy_params={"preempt": "swap"})
    gate = InstanceSpec(cost=cost7, kv_capacity_tokens=20_000, host_kv_capacity_tokens=20_000,
                        max_batch_size=64, chunk_tokens=256)
    for p in ("skip-join-mlfq", "srpt", "vllm"):
        yield f"azure1500-kv20k-host20k-chunk256/{p}", lambda p=p: simulate(
            azure, gate, p, policy_params={"preempt": "swap"} if p == "vllm" else None)
    for p in ("fcfs", "sjf", "vllm", "srpt"):
        yield f"azure1500-mispredicted/{p}", lambda p=p: simulate(
            azure, small, p, predicted_output_tokens=misp)
    tight = InstanceSpec(cost=cost7, kv_capacity_tokens=4_000, max_batch_tokens=2048)
    for p in ("fcfs", "vllm", "sjf", "srpt"):
        yield f"azure1500-kv4k-budget2k/{p}", lambda p=p: simulate(azure, tight, p)
    four = Cluster.homogeneous(cost=cost7, n_instances=4, max_batch_size=48)
    busy = datasets.replay(conv.head(3000), rate_per_s=20.0)
    for r in ("round-robin", "least-tokens", "least-kv"):
        for p in ("fcfs", "vllm", "skip-join-mlfq"):
            yield f"conv3000x4-{r}/{p}", lambda p=p, r=r: simulate(busy, four, p, router=r)
    opt = Cluster.homogeneous(model="opt-13b", gpu="a100-80gb", max_batch_size=16,
                              max_batch_tokens=2048, block_tokens=16, overlap_swap=True,
                              host_kv_capacity_tokens=40_000)
    keep = (conv.input_tokens + conv.output_tokens <= 2048) & (conv.input_tokens <= 1024)
    fs = Workload(arrival_s=np.arange(int(keep.sum()))[:600] * 0.4,
                  input_tokens=conv.input_tokens[keep][:600],
                  output_tokens=conv.output_tokens[keep][:600])
    for p in policies:
        yield f"fastserve-engine600/{p}", lambda p=p: simulate(fs, opt, p)


def _record(res: Any) -> dict[str, np.ndarray]:
    out = {f: np.asarray(getattr(res, f)) for f in FIELDS}
    out["iterations"] = np.array(res.iterations)
    out["busy_s"] = np.array(res.busy_s)
    return out


def _diff(a: np.ndarray, b: np.ndarray) -> str | None:
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    if a.dtype.kind == "f":
        same = (a == b) | (np.isnan(a) & np.isnan(b))
        if same.all():
            return None
        d = np.nanmax(np.abs(a - b))
        return f"{int((~same).sum())} differ (max |d| {d:.3g})"
    ne = a != b
    return f"{int(ne.sum())} differ" if ne.any() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("mode", choices=["record", "compare"])
    ap.add_argument("path")
    ap.add_argument("--only", default="", help="substring of the run names to keep")
    ap.add_argument("--stepped", action="store_true", help="closed_form=False")
    ap.add_argument("--ask-every-time", action="store_true",
                    help="ask the policy at every decision point")
    a = ap.parse_args()
    ref = dict(np.load(a.path, allow_pickle=False)) if a.mode == "compare" else {}
    store: dict[str, np.ndarray] = {}
    bad = 0
    for name, run in _runs(a.stepped, a.ask_every_time):
        if a.only not in name:
            continue
        t0 = time.perf_counter()
        res = run()
        wall = time.perf_counter() - t0
        rec = _record(res)
        if a.mode == "record":
            store.update({f"{name}:{k}": v for k, v in rec.items()})
            print(f"{name:48s} recorded   decisions={res.decisions:6d} {wall:6.2f}s", flush=True)
            continue
        diffs = []
        for k, v in rec.items():
            key = f"{name}:{k}"
            if key not in ref:
                diffs.append(f"{k}: not recorded")
                continue
            d = _diff(v, ref[key])
            if d:
                diffs.append(f"{k}: {d}")
        bad += bool(diffs)
        verdict = "identical" if not diffs else "DIFFERS " + "; ".join(diffs)
        print(f"{name:48s} {verdict}  decisions={res.decisions:6d} {wall:6.2f}s", flush=True)
    if a.mode == "record":
        np.savez_compressed(a.path, **store)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
