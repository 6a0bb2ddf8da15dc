"""Toy sweep functions for tests/core/test_sweeps.py, in a module of their own so that worker
processes (loky, Dask, Ray) import them by name."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def toy(a: int, b: float, seed: int, label: str = "t") -> dict[str, object]:
    """Metrics of every kind, one drawn from the point's seed."""
    return {
        "total": a + b,
        "draw": float(np.random.default_rng(seed).random()),
        "big": a > 1,
        "tag": f"{label}{a}",
        "n": np.int64(a) * 10,
    }


def flaky(x: int, seed: int) -> dict[str, float]:
    """Fails at ``x == 2``."""
    if x == 2:
        raise RuntimeError(f"no luck at x={x}")
    return {"y": x * 1.5, "seed_mod": seed % 7}


def counted(x: int, calls_dir: str, fail_at: int = -1) -> dict[str, int]:
    """Leaves one file in ``calls_dir`` per call (a counter across processes); fails at
    ``x == fail_at``."""
    Path(calls_dir, f"{x}-{os.getpid()}-{os.urandom(4).hex()}").touch()
    if x == fail_at:
        raise ValueError("asked to fail")
    return {"y": x * 10}


def nested(x: int) -> dict[str, object]:
    """Returns a nested value (not a metric) at ``x == 1``."""
    return {"ok": x, "bad": [1, 2]} if x == 1 else {"ok": x, "bad": None}


def scalar(x: int) -> float:
    """Returns one scalar (column ``value``); takes no seed."""
    return x / 2


def chatty(x: int) -> dict[str, int]:
    """Prints (a function's output must not spoil ``schedlab sweep --json``)."""
    print(f"working on {x}")
    return {"y": x + 1}


def interrupted(x: int, stop_at: int) -> dict[str, int]:
    """Raises ``KeyboardInterrupt`` (as Ctrl-C would) at ``x == stop_at``."""
    if x == stop_at:
        raise KeyboardInterrupt
    return {"y": x}
