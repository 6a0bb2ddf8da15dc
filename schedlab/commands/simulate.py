"""``schedlab simulate``: replay a trace on a simulated cluster and print the summary metrics.

Example (shell)::

    schedlab simulate --trace azure-conv-2023 --model llama-2-7b --gpu a100-80gb --policy fcfs
    schedlab simulate --trace my.csv --model opt-13b --gpu a100-80gb --instances 4 \\
        --policy vllm --router least-tokens --rate 8 --limit 5000 --json
    schedlab simulate --trace mooncake-conversation --model llama-3-70b --gpu a800 --tp 8 \\
        --max-context-tokens 200000 --prefill-instances 8 --decode-instances 8 --policy fcfs \\
        --placement mooncake --placement-param admission=early

``--rate`` replays the trace at that mean rate through :func:`schedlab.datasets.replay` (the
order and the relative gaps are kept); ``--limit`` keeps the first N requests (before
rescaling). The trace is read by :func:`schedlab.datasets.load`, each of whose options has its
flag (``--format``, ``--columns arrival_s=ts,input_tokens=prompt,output_tokens=gen``, ``--sort``,
``--skip-bad``, ...). A request longer than the model's context window is rejected with that reason
(``--over-context truncate`` cuts it to fit instead); the summary counts rejections by reason.
The wall time printed covers loading, building and simulating.

``--prefill-instances P --decode-instances D`` simulates a disaggregated cluster instead
(:func:`schedlab.sim.simulate_disaggregated`): ``--policy`` batches the decode pool, the
placement policy (``--placement``, with ``--placement-param KEY=VALUE`` repeated) places each
request, and the summary adds Mooncake's TBT and effective request capacity.
``--prefix-cache-tokens`` gives colocated instances a prefix cache (vLLM's automatic prefix
caching); ``--max-context-tokens`` overrides the model's context window.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from typing import Any

import numpy as np

from schedlab.commands import add_quiet
from schedlab.commands.loader_options import add_loader_arguments, load_options
from schedlab.errors import check_positive_float, check_positive_int

__all__ = ["INTERPRET_UP_TO", "register", "run"]

#: Traces of at most this many requests run without the compiler (:func:`schedlab.jit.interpreted`).
INTERPRET_UP_TO = 100


def register(subparsers: Any) -> None:
    """Add the ``simulate`` subcommand to the CLI."""
    p = subparsers.add_parser(
        "simulate",
        help="replay a trace on a simulated cluster with a batching policy",
        description=__doc__.split("\n\n", 1)[0].split(": ", 1)[1],
    )
    p.add_argument("--trace", required=True, metavar="NAME_OR_PATH",
                   help="a trace file, or a shipped trace: {traces}")
    p.add_argument("--model", required=True, help="model: {models}")
    p.add_argument("--gpu", required=True, help="accelerator: {gpus}")
    p.add_argument("--instances", type=int, default=1, help="number of instances (default 1)")
    p.add_argument("--tp", type=int, default=1, help="tensor-parallel degree (default 1)")
    p.add_argument("--policy", required=True, help="batching policy: {policies}")
    p.add_argument("--router", default="round-robin",
                   help="router across instances: {routers} (default round-robin)")
    p.add_argument("--rate", type=float, default=None, metavar="REQ_PER_S",
                   help="rescale arrivals to this mean rate")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="first N requests only")
    p.add_argument("--chunk-tokens", type=int, default=0,
                   help="chunked-prefill chunk size (0 = whole prompts, default)")
    p.add_argument("--max-batch-size", type=int, default=256, help="requests per iteration")
    p.add_argument("--max-batch-tokens", type=int, default=None,
                   help="token budget per iteration (default: max(8192, longest prompt))")
    p.add_argument("--over-context", choices=("reject", "truncate"), default="reject",
                   help="a request longer than the model's context window: rejected with that "
                   "reason (default), or truncated to fit (prompt first, then output)")
    p.add_argument("--max-context-tokens", type=int, default=None, metavar="N",
                   help="the longest request the model serves (default: the model's context "
                   "window)")
    p.add_argument("--prefix-cache-tokens", type=int, default=0, metavar="N",
                   help="a prefix cache of N tokens on each colocated instance, keyed by the "
                   "trace's prefix blocks (default 0: off)")
    p.add_argument("--prefill-instances", type=int, default=None, metavar="P",
                   help="simulate a disaggregated cluster: P prefill instances ...")
    p.add_argument("--decode-instances", type=int, default=None, metavar="D",
                   help="... and D decode instances (then --instances is not used)")
    p.add_argument("--placement", default="mooncake",
                   help="placement policy of a disaggregated cluster: {placements} "
                   "(default mooncake)")
    p.add_argument("--placement-param", action="append", default=[], metavar="KEY=VALUE",
                   help="a parameter of the placement policy (repeatable), e.g. "
                   "prefill=cache-aware, admission=late, slo_tbt_s=0.2")
    p.add_argument("--seed", type=int, default=0, help="seed passed to policies taking 'rng'")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    add_quiet(p)
    add_loader_arguments(p)
    p.set_defaults(func=run)


def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def run(args: argparse.Namespace) -> int:
    """Run one simulation and print its summary; returns the exit code."""
    t0 = time.perf_counter()
    where = "schedlab simulate"
    instances = check_positive_int(args.instances, "instances", where)
    check_positive_int(args.tp, "tp", where)
    if args.rate is not None:
        check_positive_float(args.rate, "rate", where)
    if args.limit is not None:
        check_positive_int(args.limit, "limit", where)
    from schedlab.costmodel.models import get_model
    from schedlab.datasets import load_with_report, replay
    from schedlab.policies import get_policy, get_router
    from schedlab.sim import Cluster, simulate

    get_policy(args.policy)  # fail fast on unknown names, before loading the trace
    get_router(args.router)
    disaggregated = _pools(args)
    placement_params = _placement_params(args) if disaggregated else {}
    context = get_model(args.model).max_context
    if args.max_context_tokens is not None:
        context = check_positive_int(args.max_context_tokens, "max-context-tokens", where)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the summary counts the skipped rows
        loaded = load_with_report(args.trace, **load_options(args))
    w = loaded.workload
    if args.limit is not None:
        w = w.head(args.limit)
    if len(w) == 0:
        raise ValueError(f"--trace {args.trace!r} holds no requests"
                         + (f" (after --limit {args.limit})" if args.limit is not None else ""))
    truncated = 0
    if args.over_context == "truncate":
        w, truncated = _truncate(w, context)
    if args.rate is not None and w.duration_s > 0:
        w = replay(w, rate_per_s=args.rate)
    budget = args.max_batch_tokens
    if budget is None:
        budget = max(8192, int(w.input_tokens.max()) if len(w) else 1)
    if disaggregated:
        return _run_disaggregated(args, w, disaggregated, placement_params, context, truncated,
                                  loaded.report.n_skipped, t0)
    cluster = Cluster.homogeneous(
        args.model, args.gpu, n_instances=instances, tp=args.tp,
        max_batch_size=args.max_batch_size, max_batch_tokens=budget, chunk_tokens=args.chunk_tokens,
        max_context_tokens=context, prefix_cache_tokens=args.prefix_cache_tokens,
    )
    params: dict[str, Any] = {}
    policy = get_policy(args.policy)
    import inspect

    try:
        if "rng" in inspect.signature(policy).parameters:
            params["rng"] = np.random.default_rng(args.seed)
    except (TypeError, ValueError):
        pass
    from schedlab.jit import announce_first_compile, interpreted

    # A one-shot run this small finishes in plain Python before numba could even load its
    # cached kernels (0.06 s against 0.6 s for 100 requests; the results are the same).
    small = len(w) <= INTERPRET_UP_TO
    if not (small or args.quiet):
        announce_first_compile("schedlab simulate")
    with interpreted(small):
        res = simulate(w, cluster, args.policy, router=args.router, policy_params=params)
    summary = res.summary()
    summary.update(
        trace=args.trace, model=args.model, gpu=args.gpu, tp=args.tp, router=args.router,
        rate=args.rate, limit=args.limit, chunk_tokens=args.chunk_tokens,
        model_context_tokens=context, over_context=args.over_context, truncated=truncated,
        skipped_rows=loaded.report.n_skipped,
        simulate_wall_s=res.wall_s, total_wall_s=time.perf_counter() - t0,
    )
    if args.prefix_cache_tokens:
        summary["cached_token_share"] = float(res.extra["cached_tokens"].sum()
                                              / max(int(w.input_tokens.sum()), 1))
    return _print(args, summary)


def _pools(args: argparse.Namespace) -> tuple[int, int] | None:
    """(prefill, decode) instances of a disaggregated run, or None for a colocated one."""
    p, d = args.prefill_instances, args.decode_instances
    if p is None and d is None:
        return None
    if p is None or d is None:
        raise ValueError("a disaggregated cluster needs both --prefill-instances and "
                         "--decode-instances")
    where = "schedlab simulate"
    return (check_positive_int(p, "prefill-instances", where),
            check_positive_int(d, "decode-instances", where))


def _placement_params(args: argparse.Namespace) -> dict[str, Any]:
    """``--placement-param KEY=VALUE`` as keyword arguments: a VALUE that reads as a JSON
    number, boolean or null is one, anything else is a string."""
    from schedlab.policies import get_placement

    get_placement(args.placement)  # an unknown name fails before the trace is read
    out: dict[str, Any] = {}
    for item in args.placement_param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--placement-param must be KEY=VALUE. Got {item!r}.")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def _run_disaggregated(args: argparse.Namespace, w: Any, pools: tuple[int, int],
                       params: dict[str, Any], context: int, truncated: int, skipped: int,
                       t0: float) -> int:
    from schedlab.jit import announce_first_compile
    from schedlab.sim import DisaggregatedCluster, simulate_disaggregated

    cluster = DisaggregatedCluster.homogeneous(
        args.model, args.gpu, tp=args.tp, n_prefill=pools[0], n_decode=pools[1],
        max_context_tokens=context, decode_batch_size=args.max_batch_size)
    if not args.quiet:
        announce_first_compile("schedlab simulate")
    res = simulate_disaggregated(w, cluster, args.placement, placement_params=params,
                                 decode_policy=args.policy)
    summary = res.summary()
    e = res.extra
    summary.update(
        trace=args.trace, model=args.model, gpu=args.gpu, tp=args.tp,
        prefill_instances=pools[0], decode_instances=pools[1], placement=args.placement,
        placement_params=params, rate=args.rate, limit=args.limit,
        model_context_tokens=context, over_context=args.over_context, truncated=truncated,
        skipped_rows=skipped,
        cached_token_share=float(e["cached_tokens"].sum() / max(int(w.input_tokens.sum()), 1)),
        prefixes_pulled=int((e["transfer_tokens"] > 0).sum()),
        wasted_prefills=int(e["wasted_prefill"].sum()),
        effective_capacity={f"tbt_{int(1000 * x)}ms": v
                            for x, v in res.effective_capacity().items()},
        simulate_wall_s=res.wall_s, total_wall_s=time.perf_counter() - t0,
    )
    return _print(args, summary)


def _print(args: argparse.Namespace, summary: dict[str, Any]) -> int:
    if args.json:
        json.dump({k: _jsonable(v) for k, v in summary.items()}, sys.stdout)
        sys.stdout.write("\n")
        return 0
    width = max(len(k) for k in summary)
    for k, v in summary.items():
        if isinstance(v, dict):
            shown = ", ".join(f"{r}: {c:.4g}" if isinstance(c, float) else f"{r}: {c}"
                              for r, c in v.items()) or "-"
        elif v is None and k in ("slo_attainment", "goodput_rps"):
            shown = "no SLO"
        else:
            shown = f"{v:.6g}" if isinstance(v, float) else str(v)
        print(f"{k:<{width}}  {shown}")
    return 0


def _truncate(w: Any, context: int) -> tuple[Any, int]:
    """``w`` with every request cut to ``context`` tokens (the prompt keeps at most
    ``context - 1``, the output what is left), and how many were cut."""
    inp = np.minimum(w.input_tokens, context - 1)
    out = np.minimum(w.output_tokens, context - inp)
    cut = int(((inp != w.input_tokens) | (out != w.output_tokens)).sum())
    return (w.replace(input_tokens=inp, output_tokens=out) if cut else w), cut
