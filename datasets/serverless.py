"""Serverless functions and invocation traces of TrEnv (SOSP'24): the paper's eleven functions,
its two synthetic workloads W1 and W2 as the authors generate them, an Azure-Functions-like
bursty generator at any scale, and a [recon] agent workload.

- **Functions** (:func:`trenv_functions`): images and threads from Table 2; memory limits and
  CPUs from the authors' deployment (``switch-container/utils`` ``stack.yml``: what faasd
  charges against its memory cap); IR's and JS's runs and touched pages derived from Fig. 14
  (see :mod:`schedlab.costmodel.serverless`). [recon] the other runs, touched pages and
  read-only shares (24-90% per §2.2), and pyaes (PA, in both workloads of the artifact but not
  in Table 2).
- **W1 / W2** (:func:`paper_workload`): the artifact's generator (``switch-container/
  faasd-testdriver``, branch ``huang``, ``gen_trace.py`` and ``workload-{1,2}.yml``): the
  functions burst one after another in a cycle (143 s, 160 s), each ``peak_times`` sub-bursts
  ``interval + 1`` s apart of ``c`` invocations (W1: ``min(|N(c, max(ceil(c/10), 1))|,
  1.1c)``), spread uniformly within their second; 12 cycles, the first 2 warm-up. Fig. 10's
  settings: W1 under a 64 GB cap with a 2-minute keep-alive, W2 under 32 GB with 3 minutes.
- **Azure-like** (:func:`bursty_trace`): Fig. 13's traces give counts per minute and the
  authors spread them within each minute. [recon] here: heavy-tailed function popularity
  (lognormal rates), a diurnal swell, and burst minutes whose invocations land in a few
  seconds; exactly ``n_invocations``, vectorised.
- **Agents** [recon] (:func:`agent_workload`, the extension of arXiv 2509.09525, whose body
  was not recoverable): the six agent apps of the authors' memory figure (TrEnv-X
  ``pics/memory.png``; the three whose E2B peak is 183 GB taken as the browser users) in
  1-vCPU / 2 GB VM sandboxes (the TrEnv-X default template); sessions that alternate an LLM
  call (lognormal, 4 s median) with a tool call in the sandbox. Browser sharing
  (:func:`agent_functions`) moves the browser's own pages (420 MB of each browser user's
  writes) into one shared copy, leaving each agent its tab (80 MB).

>>> w = paper_workload("w2")
>>> len(w.trace), w.cap_mb, w.keep_alive_s, w.warmup_s
(5400, 32768.0, 180.0, 320.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from schedlab.contract.serverless import Functions, Invocations
from schedlab.datasets.arrivals import as_generator
from schedlab.errors import (
    check_fraction,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)

__all__ = ["AGENT_TABLE", "FUNCTION_TABLE", "ServerlessWorkload", "agent_functions",
           "agent_workload", "bursty_functions", "bursty_trace", "paper_workload",
           "trenv_functions"]

#: name: (image MB, limit MB, threads, CPUs, run s, touched MB, read-only share).
FUNCTION_TABLE: dict[str, tuple[float, float, int, int, float, float, float]] = {
    "CH": (94.9, 300.0, 38, 1, 0.300, 30.0, 0.60),
    "PA": (50.0, 64.0, 14, 1, 0.400, 10.0, 0.70),
    "DH": (50.4, 64.0, 14, 1, 0.020, 16.0, 0.60),
    "IP": (67.1, 224.0, 15, 1, 0.250, 40.0, 0.50),
    "IR": (855.0, 768.0, 141, 2, 0.075, 57.0, 0.90),
    "VP": (324.0, 224.0, 204, 1, 1.000, 80.0, 0.50),
    "CR": (124.0, 84.0, 16, 1, 0.500, 12.0, 0.60),
    "IFR": (253.0, 560.0, 21, 1, 0.200, 60.0, 0.50),
    "JS": (94.9, 100.0, 14, 1, 0.090, 16.0, 0.80),
    "JJS": (111.0, 100.0, 21, 1, 0.050, 15.0, 0.70),
    "PR": (116.0, 280.0, 395, 1, 0.600, 40.0, 0.24),
}

#: The artifact's workloads: function -> (c, peak_times, interval s, last s), in cycle order.
_W1 = {"CH": (25, 1, 1, 10), "PA": (15, 2, 1, 15), "DH": (200, 1, 0, 4), "IP": (9, 3, 1, 15),
       "IR": (4, 3, 5, 20), "VP": (8, 3, 1, 20), "CR": (15, 2, 1, 12), "IFR": (15, 2, 1, 15),
       "JS": (20, 1, 0, 10), "JJS": (20, 1, 0, 10), "PR": (15, 2, 0, 12)}
_W2 = {"CH": (15, 1, 0, 10), "DH": (200, 1, 0, 4), "IP": (16, 2, 1, 13), "IR": (4, 2, 10, 30),
       "VP": (12, 3, 1, 23), "IFR": (20, 2, 0, 15), "CR": (16, 1, 0, 15), "PA": (14, 2, 0, 15),
       "JS": (25, 1, 0, 10), "JJS": (25, 1, 0, 10), "PR": (25, 1, 0, 15)}
#: name -> (generator table, noisy bursts, cap MB, baselines' keep-alive s): Fig. 10's settings.
_WORKLOADS = {"w1": (_W1, True, 64 * 1024.0, 120.0), "w2": (_W2, False, 32 * 1024.0, 180.0)}


def trenv_functions(names: tuple[str, ...] | None = None) -> Functions:
    """The paper's functions (all eleven, or ``names`` in that order) as a :class:`Functions`
    table."""
    names = tuple(FUNCTION_TABLE) if names is None else tuple(names)
    for n in names:
        if n not in FUNCTION_TABLE:
            raise ValueError(f"Unknown TrEnv function {n!r}. Known: {', '.join(FUNCTION_TABLE)}.")
    rows = np.array([FUNCTION_TABLE[n] for n in names], dtype=np.float64)
    return Functions(names=names, image_mb=rows[:, 0], limit_mb=rows[:, 1], threads=rows[:, 2],
                     cpus=rows[:, 3], exec_s=rows[:, 4], touched_mb=rows[:, 5],
                     ro_frac=rows[:, 6])


@dataclass(frozen=True, slots=True)
class ServerlessWorkload:
    """A workload with the platform settings the paper ran it under: ``functions``, ``trace``,
    the ``warmup_s`` whose invocations are not measured, the memory ``cap_mb`` and the
    baselines' ``keep_alive_s``."""

    name: str
    functions: Functions
    trace: Invocations
    warmup_s: float
    cap_mb: float
    keep_alive_s: float


def paper_workload(name: str, *, cycles: int = 12, warmup_cycles: int = 2,
                   seed: int | np.random.Generator = 0) -> ServerlessWorkload:
    """W1 or W2 (``name``: ``"w1"``, ``"w2"``) as the artifact generates it, ``cycles`` long
    with the first ``warmup_cycles`` as warm-up."""
    if name not in _WORKLOADS:
        raise ValueError(f"Unknown TrEnv workload {name!r}. Known: 'w1', 'w2'.")
    cycles = check_positive_int(cycles, "cycles", "paper_workload")
    if not isinstance(warmup_cycles, int) or not 0 <= warmup_cycles < cycles:
        raise ValueError(f"The 'warmup_cycles' parameter of paper_workload must be an int in "
                         f"[0, {cycles - 1}]. Got {warmup_cycles!r} instead.")
    table, noisy, cap, keep = _WORKLOADS[name]
    rng = as_generator(seed, "paper_workload")
    fns = trenv_functions(tuple(FUNCTION_TABLE))
    period = sum(v[3] for v in table.values())
    secs, funs = [], []
    for k in range(cycles):
        start = k * period
        for fname, (c, peaks, interval, last) in table.items():
            for j in range(peaks):
                if noisy:
                    n = int(min(abs(rng.normal(c, max(math.ceil(0.1 * c), 1))), 1.1 * c))
                else:
                    n = c
                secs.append(np.full(n, start + j * (interval + 1), dtype=np.float64))
                funs.append(np.full(n, fns.index(fname), dtype=np.int64))
            start += last
    t = np.concatenate(secs) + rng.random(sum(len(s) for s in secs))
    f = np.concatenate(funs)
    order = np.argsort(t, kind="stable")
    trace = Invocations(arrival_s=t[order], function=f[order], n_functions=len(fns))
    return ServerlessWorkload(name=name, functions=fns, trace=trace,
                              warmup_s=float(warmup_cycles * period), cap_mb=cap,
                              keep_alive_s=keep)


def bursty_functions(n_functions: int) -> Functions:
    """``n_functions`` functions with the profiles of the paper's eleven in turn (``f0000`` is
    CH's profile, ``f0001`` PA's, ...): a large catalogue of realistic sizes and runs."""
    n = check_positive_int(n_functions, "n_functions", "bursty_functions")
    rows = np.array(list(FUNCTION_TABLE.values()), dtype=np.float64)[np.arange(n) % 11]
    return Functions(names=tuple(f"f{i:04d}" for i in range(n)), image_mb=rows[:, 0],
                     limit_mb=rows[:, 1], threads=rows[:, 2], cpus=rows[:, 3],
                     exec_s=rows[:, 4], touched_mb=rows[:, 5], ro_frac=rows[:, 6])


def bursty_trace(n_invocations: int, n_functions: int, *, duration_s: float = 3600.0,
                 popularity_sigma: float = 2.0, burst_share: float = 0.05,
                 burst_factor: float = 20.0, burst_window_s: float = 3.0,
                 seed: int | np.random.Generator = 0) -> Invocations:
    """An Azure-Functions-like trace [recon] of exactly ``n_invocations`` over ``n_functions``
    in ``duration_s``: per function a lognormal rate (``popularity_sigma``), per minute a
    diurnal swell (one period over the trace, +-50%), and a ``burst_share`` of (function,
    minute) cells ``burst_factor`` times busier whose invocations land within
    ``burst_window_s``; the rest spread uniformly within their minute, as Fig. 13's authors
    spread the per-minute counts.

    >>> tr = bursty_trace(1000, 20, duration_s=600.0, seed=1)
    >>> len(tr), int(tr.function.max()) < 20, bool((tr.arrival_s < 600).all())
    (1000, True, True)
    """
    where = "bursty_trace"
    n = check_positive_int(n_invocations, "n_invocations", where)
    k = check_positive_int(n_functions, "n_functions", where)
    duration = check_positive_float(duration_s, "duration_s", where)
    sigma = check_nonneg_float(popularity_sigma, "popularity_sigma", where)
    share = check_fraction(burst_share, "burst_share", where, open_low=False)
    factor = check_positive_float(burst_factor, "burst_factor", where)
    window = check_positive_float(burst_window_s, "burst_window_s", where)
    rng = as_generator(seed, where)
    minutes = max(1, math.ceil(duration / 60.0))
    rate = rng.lognormal(0.0, sigma, k)
    swell = 1.0 + 0.5 * np.sin(2 * np.pi * (np.arange(minutes) + 0.5) / minutes)
    burst = rng.random((k, minutes)) < share
    weight = rate[:, None] * swell[None, :] * np.where(burst, factor, 1.0)
    counts = rng.multinomial(n, (weight / weight.sum()).ravel())
    cell = np.repeat(np.arange(k * minutes), counts)
    fn, minute = np.divmod(cell, minutes)
    span = np.minimum(60.0, duration - minute * 60.0)
    offset = rng.random(n)
    bursting = burst.ravel()[cell]
    at = rng.random(k * minutes)[cell] * np.maximum(span - window, 0.0)
    t = minute * 60.0 + np.where(bursting, at + offset * np.minimum(window, span), offset * span)
    order = np.argsort(t, kind="stable")
    return Invocations(arrival_s=t[order], function=fn[order], n_functions=k)


#: Agent apps [recon]: image MB, limit MB, threads, CPUs, tool call s, touched MB, read-only
#: share, browser (an agent running its own Chromium).
AGENT_TABLE: dict[str, tuple[float, float, int, int, float, float, float, bool]] = {
    "blackjack": (400.0, 2048.0, 8, 1, 0.8, 150.0, 0.5, False),
    "bug-fixer": (600.0, 2048.0, 12, 1, 2.5, 300.0, 0.5, False),
    "map-reduce": (500.0, 2048.0, 16, 1, 1.5, 250.0, 0.4, False),
    "shop-assistant": (1200.0, 2048.0, 40, 1, 2.0, 700.0, 0.3, True),
    "blog-summary": (1200.0, 2048.0, 40, 1, 3.0, 700.0, 0.3, True),
    "game-design": (1200.0, 2048.0, 40, 1, 2.5, 700.0, 0.3, True),
}
#: [recon] The browser's own written pages and one tab's, per browser-using agent (MB).
BROWSER_MB, TAB_MB = 420.0, 80.0


def agent_functions(*, browser_sharing: bool = False) -> Functions:
    """The agent apps as :class:`Functions`; with ``browser_sharing`` a browser user writes
    only its tab (``BROWSER_MB`` of its writes become read-only pages of the shared browser,
    held once with the template's image).

    >>> a, b = agent_functions(), agent_functions(browser_sharing=True)
    >>> i = a.index("game-design")
    >>> round(float(a.written_mb[i])), round(float(b.written_mb[i]))
    (490, 70)
    """
    rows = np.array([v[:7] for v in AGENT_TABLE.values()], dtype=np.float64)
    browser = np.array([v[7] for v in AGENT_TABLE.values()])
    ro = rows[:, 6].copy()
    if browser_sharing:
        written = rows[:, 5] * (1 - ro) - BROWSER_MB
        ro = np.where(browser, 1 - np.maximum(written, 0.0) / rows[:, 5], ro)
    return Functions(names=tuple(AGENT_TABLE), image_mb=rows[:, 0], limit_mb=rows[:, 1],
                     threads=rows[:, 2], cpus=rows[:, 3], exec_s=rows[:, 4],
                     touched_mb=rows[:, 5], ro_frac=ro)


def agent_workload(n_sessions: int = 2000, *, duration_s: float = 1800.0,
                   calls_per_session: tuple[int, int] = (4, 12), think_s: float = 4.0,
                   cap_mb: float = 128 * 1024.0, browser_sharing: bool = False,
                   seed: int | np.random.Generator = 0) -> ServerlessWorkload:
    """[recon] ``n_sessions`` agent sessions starting as a bursty trace over ``duration_s``
    (:func:`bursty_trace`, one app each), each making a uniform number of tool calls in
    ``calls_per_session`` separated by the previous call's local run and an LLM call of
    lognormal length (median ``think_s``, sigma 0.6), on a host of ``cap_mb`` (128 GB); a
    keep-alive of 10 minutes for the baseline.

    >>> w = agent_workload(100, duration_s=600.0, seed=1)
    >>> len(w.functions), len(w.trace) > 100
    (6, True)
    """
    where = "agent_workload"
    n = check_positive_int(n_sessions, "n_sessions", where)
    lo, hi = calls_per_session
    if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi):
        raise ValueError(f"The 'calls_per_session' parameter of {where} must be (low, high) "
                         f"ints with 1 <= low <= high. Got {calls_per_session!r} instead.")
    think = check_positive_float(think_s, "think_s", where)
    cap = check_positive_float(cap_mb, "cap_mb", where, allow_inf=True)
    rng = as_generator(seed, where)
    fns = agent_functions(browser_sharing=browser_sharing)
    sessions = bursty_trace(n, len(fns), duration_s=duration_s, popularity_sigma=0.5,
                            seed=rng)
    calls = rng.integers(lo, hi + 1, n)
    owner = np.repeat(np.arange(n), calls)
    f = sessions.function[owner]
    # a call follows the previous one's run (open loop: its local run) and an LLM call
    gaps = rng.lognormal(math.log(think), 0.6, owner.shape[0]) + np.roll(fns.exec_s[f], 1)
    first = np.concatenate([[0], np.cumsum(calls)[:-1]])
    gaps[first] = 0.0
    steps = np.cumsum(gaps)
    t = sessions.arrival_s[owner] + steps - steps[first][owner]
    order = np.argsort(t, kind="stable")
    trace = Invocations(arrival_s=t[order], function=f[order], n_functions=len(fns))
    return ServerlessWorkload(name="agents", functions=fns, trace=trace, warmup_s=0.0,
                              cap_mb=cap, keep_alive_s=600.0)
