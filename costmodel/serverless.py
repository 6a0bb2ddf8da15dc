"""Costs of serverless sandboxes (TrEnv, SOSP'24): the time to start an instance of a function
by each path and restore of :mod:`schedlab.contract.serverless`, its run on local or remote
memory, and the memory it holds; the one place these rules are written, used by the policies,
the simulator, the optimum and the seed.

The components are TrEnv's Table 1 (network namespace 80 ms and more, growing with
concurrent starts: 15 at once take about 400 ms; rootfs, cgroup, the process state CRIU
restores in 3-15 ms), §4 (an over-mount reconfiguration under 1 ms, ``CLONE_INTO_CGROUP``
in 100-300 µs, a CXL access 641 ns, an RDMA fault 6 µs per 4 KB page), and Fig. 14's
step-by-step end-to-end times of image recognition (IR) and JSON serde (JS), which the
per-megabyte rates are fitted on:

========  ======  ======  ===========  =========  =======  =====
function  faasd   CRIU    +Reconfig    +Cgroup    T-RDMA   T-CXL
========  ======  ======  ===========  =========  =======  =====
IR (ms)   1846    626     410          361        180      117
JS (ms)   489     399     179          166        123      109
========  ======  ======  ===========  =========  =======  =====

- [fit] network plus rootfs 217 ms (what "+Reconfig" saves, 216 ms IR, 220 ms JS, less the
  0.8 ms reconfiguration); the cgroup 13 ms plus 36 ms per CPU beyond the first (what
  "+Cgroup" saves: 13 ms JS on 1 CPU, 49 ms IR on 2);
- [fit] CRIU's process state 4.9 ms + 79 µs per thread (T-CXL starts in 8 ms JS, 14 threads,
  and 18 ms IR, 141 threads); its memory copy 44 ms + 0.263 ms per MB of image (what remains
  of "+Cgroup" after the start and the run);
- [fit] a cold start's initialisation 1.76 ms per MB of image (1.76 IR, 1.78 JS);
- [derived] a template run touches, on first access, 57 MB (IR) and 16 MB (JS): the RDMA
  penalty (+88, +25 ms) at 6 µs per page; CXL costs 0.44 ms per touched MB (+24, +11 ms);
- [recon] the VM snapshot restores of REAP+ and FaaSnap+: 30 ms to restore the VM; REAP+
  fetches the recorded working set at 1 ms per MB before the run, FaaSnap+ faults it in
  during the run at 3 ms per MB (its IR line, about 280 ms on Fig. 14); a guest holds 64 MB
  of its own (kernel, VMM, page cache of the function's files: Fig. 11b's "each guest keeps
  its own page cache").

The platform's limits are the authors' faasd's (``switch-container/faasd``, branch
``switch``): at most 10 sandboxes start at once (``max_starts``), 6 VMs (``max_vm_starts``),
and a VM start worker under pressure pauses after each start, ``vm_backoff_s`` doubling per
stage up to ``reap_backoff_stages`` (3.2 s) or ``faasnap_backoff_stages`` (0.8 s).

Memory (what Fig. 11a measures): a cold or CRIU instance holds its whole image; a VM its
touched pages plus its guest; a template instance only the pages it writes (CXL) or every page
it touched (RDMA faults copy them locally), while the template's image is held once per
function on the pool as long as an instance of it lives (shared, invariant 5); every instance
also holds what its run allocates afresh (``Functions.heap_mb``, zero unless given).

>>> from schedlab.costmodel.serverless import SandboxCosts, step_breakdown
>>> from schedlab.datasets.serverless import trenv_functions
>>> steps = step_breakdown(SandboxCosts(), trenv_functions(), "IR")
>>> {k: round(v * 1e3) for k, v in steps.items()}
{'faasd': 1846, 'CRIU': 626, '+Reconfig': 410, '+Cgroup': 361, 'T-RDMA': 181, 'T-CXL': 118}
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.contract.serverless import BACKENDS, PATHS, RESTORES, Functions
from schedlab.costmodel.hardware import (
    Interconnect,
    MemoryDevice,
    get_interconnect,
    get_memory_device,
)
from schedlab.errors import check_nonneg_float, check_nonneg_int, check_positive_int

__all__ = ["PAGE_MB", "CostTables", "SandboxCosts", "cost_tables", "step_breakdown"]

#: One 4 KB page in MB.
PAGE_MB = 4.0 / 1024.0
#: The testbed's CXL access latency (§6.1: 641.1 ns) and local DRAM's.
_TESTBED_CXL_S, _DRAM_LATENCY_S = 641.1e-9, 100e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxCosts:
    """Per-component start costs (seconds), rates and memory of sandboxes; the defaults are
    the paper's (see the module docstring for each one's source)."""

    netns_s: float = 0.080
    netns_contention_s: float = 0.0229
    rootfs_s: float = 0.137
    reconfig_s: float = 0.0008
    cleanse_s: float = 0.002
    cgroup_s: float = 0.013
    cgroup_per_cpu_s: float = 0.036
    clone_cgroup_s: float = 0.0002
    criu_base_s: float = 0.0049
    criu_per_thread_s: float = 0.0000787
    copy_base_s: float = 0.044
    copy_s_per_mb: float = 0.000263
    init_s_per_mb: float = 0.00176
    attach_s: float = 0.001
    cxl_s_per_mb: float = 0.00044
    rdma_fault_s: float = 6e-6
    vm_restore_s: float = 0.030
    reap_fetch_s_per_mb: float = 0.001
    faasnap_fault_s_per_mb: float = 0.003
    vm_guest_mb: float = 64.0
    sandbox_mb: float = 2.0
    vm_backoff_s: float = 0.1
    max_starts: int = 10
    max_vm_starts: int = 6
    reap_backoff_stages: int = 5
    faasnap_backoff_stages: int = 3

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name.startswith("max_"):
                check_positive_int(getattr(self, f.name), f.name, "SandboxCosts")
            elif f.name.endswith("_stages"):
                check_nonneg_int(getattr(self, f.name), f.name, "SandboxCosts")
            else:
                check_nonneg_float(getattr(self, f.name), f.name, "SandboxCosts")

    @classmethod
    def with_devices(cls, cxl: str | MemoryDevice = "cxl-memory",
                     rdma: str | Interconnect = "rdma-200g", **overrides: Any) -> SandboxCosts:
        """The paper's costs with the template pool on catalog devices [recon]: CXL's cost per
        touched MB scaled by the device's latency above local DRAM's 100 ns (the fitted 0.44 ms
        per MB belongs to the testbed's 641 ns), and an RDMA fault as a round trip of the link
        plus a 4 KB page at its bandwidth (the testbed's soft-RoCE measured 6 us).

        >>> c = SandboxCosts.with_devices("cxl", "rdma-400g")
        >>> round(c.cxl_s_per_mb * 1e3, 3), round(c.rdma_fault_s * 1e6, 2)
        (0.122, 6.08)
        """
        dev = get_memory_device(cxl) if isinstance(cxl, str) else cxl
        link = get_interconnect(rdma) if isinstance(rdma, str) else rdma
        base = cls()
        extra = max(dev.latency_s - _DRAM_LATENCY_S, 0.0)
        return dataclasses.replace(
            base, cxl_s_per_mb=base.cxl_s_per_mb * extra / (_TESTBED_CXL_S - _DRAM_LATENCY_S),
            rdma_fault_s=2 * link.latency_s + 4096 / link.bytes_per_s, **overrides)

    def netns_at(self, starting: int) -> float:
        """The network namespace's setup with ``starting`` other starts under way (Table 1: 80
        ms alone, about 400 ms for 15 at once)."""
        return self.netns_s + self.netns_contention_s * starting


@dataclass(frozen=True, slots=True)
class CostTables:
    """Per-function arrays of every (path, restore, backend) the contract allows, for the
    simulator's lookups: ``start_s[(path, restore, backend)]`` (without the network's
    contention, added per start by :meth:`SandboxCosts.netns_at`), the first run after a
    start ``exec_s[(restore, backend)]`` and the runs of a warm instance ``warm_exec_s``
    (faults and prefetches are paid once; CXL is read on every run),
    ``private_mb[(restore, backend)]`` and ``shared_mb[(restore, backend)]``."""

    start_s: dict[tuple[str, str, str], np.ndarray]
    exec_s: dict[tuple[str, str], np.ndarray]
    warm_exec_s: dict[tuple[str, str], np.ndarray]
    private_mb: dict[tuple[str, str], np.ndarray]
    shared_mb: dict[tuple[str, str], np.ndarray]


def _combos() -> list[tuple[str, str]]:
    return [(r, b) for r in RESTORES for b in BACKENDS if (r == "template") == (b != "local")]


def cost_tables(costs: SandboxCosts, functions: Functions) -> CostTables:
    """Every per-function cost and memory figure of ``functions`` under ``costs``: the one
    definition of a start's, a run's and an instance's memory.

    >>> from schedlab.datasets.serverless import trenv_functions
    >>> fns = trenv_functions()
    >>> t = cost_tables(SandboxCosts(), fns)
    >>> round(float(t.start_s[("repurpose", "template", "cxl")][fns.index("JS")]) * 1e3, 1)
    10.0
    >>> round(float(t.private_mb[("template", "cxl")][fns.index("JS")]), 1)   # 2 MB sandbox
    5.2
    """
    c = costs
    image, touched = functions.image_mb, functions.touched_mb
    criu_other = c.criu_base_s + c.criu_per_thread_s * functions.threads
    restore = {
        "cold": c.init_s_per_mb * image,
        "criu": criu_other + c.copy_base_s + c.copy_s_per_mb * image,
        "vm-lazy": c.vm_restore_s + c.reap_fetch_s_per_mb * touched,
        "vm-prefetch": np.full(len(functions), c.vm_restore_s),
        "template": criu_other + c.attach_s,
    }
    create = c.netns_s + c.rootfs_s + c.cgroup_s + c.cgroup_per_cpu_s * (functions.cpus - 1)
    repurpose = c.cleanse_s + c.reconfig_s + c.clone_cgroup_s
    start: dict[tuple[str, str, str], np.ndarray] = {}
    exec_: dict[tuple[str, str], np.ndarray] = {}
    warm: dict[tuple[str, str], np.ndarray] = {}
    private: dict[tuple[str, str], np.ndarray] = {}
    shared: dict[tuple[str, str], np.ndarray] = {}
    zero = np.zeros(len(functions))
    for r, b in _combos():
        for p in PATHS:
            if p == "repurpose" and r.startswith("vm-"):
                continue
            sandbox = create if p == "create" else repurpose
            if r.startswith("vm-"):  # the authors gave REAP+/FaaSnap+ a network pool (§6.1)
                sandbox = create - c.netns_s
            start[(p, r, b)] = _ro(sandbox + restore[r])
        run = functions.exec_s.astype(np.float64)
        if r == "vm-prefetch":
            run = run + c.faasnap_fault_s_per_mb * touched
        elif b == "cxl":
            run = run + c.cxl_s_per_mb * touched
        elif b == "rdma":
            run = run + c.rdma_fault_s * touched / PAGE_MB
        exec_[(r, b)] = _ro(run)
        warm[(r, b)] = _ro(functions.exec_s + (c.cxl_s_per_mb * touched if b == "cxl" else 0.0))
        heap = functions.heap_mb
        if r in ("cold", "criu"):
            private[(r, b)], shared[(r, b)] = _ro(image + heap + c.sandbox_mb), _ro(zero)
        elif r.startswith("vm-"):
            private[(r, b)], shared[(r, b)] = _ro(touched + heap + c.vm_guest_mb), _ro(image)
        else:
            mine = functions.written_mb if b == "cxl" else touched
            private[(r, b)], shared[(r, b)] = _ro(mine + heap + c.sandbox_mb), _ro(image)
    return CostTables(start_s=start, exec_s=exec_, warm_exec_s=warm, private_mb=private,
                      shared_mb=shared)


def _ro(a: np.ndarray) -> np.ndarray:
    out = np.array(a, dtype=np.float64)
    out.flags.writeable = False
    return out


def step_breakdown(costs: SandboxCosts, functions: Functions, name: str) -> dict[str, float]:
    """Fig. 14's steps for one function alone (no concurrent start): the end-to-end seconds of
    a faasd cold start, a CRIU restore, CRIU into a reconfigured sandbox ("+Reconfig": a new
    cgroup still made), with the cgroup joined at clone ("+Cgroup"), and TrEnv's template on
    RDMA and on CXL. Each step's saving is one component of :class:`SandboxCosts`."""
    f = functions.index(name)
    t = cost_tables(costs, functions)
    run = float(functions.exec_s[f])
    cgroup_made = costs.cgroup_s + costs.cgroup_per_cpu_s * (float(functions.cpus[f]) - 1)
    criu_in_pool = float(t.start_s[("repurpose", "criu", "local")][f]) - costs.cleanse_s
    return {
        "faasd": float(t.start_s[("create", "cold", "local")][f]) + run,
        "CRIU": float(t.start_s[("create", "criu", "local")][f]) + run,
        "+Reconfig": criu_in_pool - costs.clone_cgroup_s + cgroup_made + run,
        "+Cgroup": criu_in_pool + run,
        "T-RDMA": float(t.start_s[("repurpose", "template", "rdma")][f]) - costs.cleanse_s
        + float(t.exec_s[("template", "rdma")][f]),
        "T-CXL": float(t.start_s[("repurpose", "template", "cxl")][f]) - costs.cleanse_s
        + float(t.exec_s[("template", "cxl")][f]),
    }
