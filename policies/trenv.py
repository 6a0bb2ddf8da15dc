"""Sandbox policies of serverless platforms (TrEnv, SOSP'24 §4 and §6.1) as pure functions
``policy(view: SandboxView, /, **params) -> SandboxStart``, asked when an invocation finds no
idle instance of its own function (a warm hit needs no decision: every system reuses the
oldest idle instance of the function, §6.1 and the authors' faasd).

- :func:`faasd`, :func:`criu`, :func:`reap`, :func:`faasnap`: the paper's baselines. Each
  creates a sandbox and brings the function up by its restore (a cold start; a CRIU image
  copied; REAP+'s and FaaSnap+'s Firecracker snapshots, §6.1), then keeps the instance warm
  for ``keep_alive_s`` (§6.1: 10 minutes; the artifact runs Fig. 10's W1 with 2 and W2 with 3).
- :func:`trenv`: repurpose the least recently used idle sandbox of any function when there
  is one (§4: cleanse, reconfigure the rootfs, clone into the cgroup, attach the function's
  mm-template over ``backend`` ``"cxl"`` or ``"rdma"``), else create one; no keep-alive limit
  (the authors' faasd runs TrEnv without its TTL collector: idle sandboxes are the pool); an
  instance whose keep-alive ends, or that the cap evicts, is cleansed into the pool (B1).
- :func:`repurpose_criu`: the ablation of Fig. 13 and 14 ("+Cgroup"): TrEnv's sandbox
  repurposing with CRIU's copy instead of the template.

Invariants the tests check (``check_sandbox_policy``, ``tests/policies/test_policies_trenv.py``):
each answer keeps :func:`~schedlab.contract.serverless.validate_start`; TrEnv repurposes
whenever an idle sandbox exists and creates only when none does; answers depend on the view
alone.

>>> from schedlab.contract.serverless import SandboxView
>>> from schedlab.datasets.serverless import trenv_functions
>>> fns = trenv_functions()
>>> v = SandboxView(function=fns.index("IR"), now_s=10.0, functions=fns, idle=[0] * 10 + [3],
...                 pooled=0, memory_mb=900.0, cap_mb=65536.0, starting=0)
>>> trenv(v).path, trenv(v).restore, criu(v).path
('repurpose', 'template', 'create')
"""

from __future__ import annotations

import math

from schedlab.contract.serverless import SandboxStart, SandboxView

__all__ = ["criu", "faasd", "faasnap", "reap", "repurpose_criu", "trenv"]


def faasd(view: SandboxView, /, *, keep_alive_s: float = 600.0) -> SandboxStart:
    """faasd's cold start (TrEnv §6.1 baseline): a new sandbox, the function started and
    initialised; warm for ``keep_alive_s`` (10 minutes)."""
    return SandboxStart("create", "cold", "local", keep_alive_s,
                        reason="no warm instance: cold start")


def criu(view: SandboxView, /, *, keep_alive_s: float = 600.0) -> SandboxStart:
    """CRIU (TrEnv §6.1 baseline): a new sandbox, the processes restored by copying their
    image; warm for ``keep_alive_s`` (10 minutes)."""
    return SandboxStart("create", "criu", "local", keep_alive_s,
                        reason="no warm instance: CRIU restore into a new sandbox")


def reap(view: SandboxView, /, *, keep_alive_s: float = 600.0) -> SandboxStart:
    """REAP+ (TrEnv §6.1 baseline): a Firecracker snapshot whose recorded working set is
    fetched before the run; warm for ``keep_alive_s`` (10 minutes)."""
    return SandboxStart("create", "vm-lazy", "local", keep_alive_s,
                        reason="no warm instance: VM snapshot, working set fetched")


def faasnap(view: SandboxView, /, *, keep_alive_s: float = 600.0) -> SandboxStart:
    """FaaSnap+ (TrEnv §6.1 baseline): a Firecracker snapshot prefetched while it runs; warm
    for ``keep_alive_s`` (10 minutes)."""
    return SandboxStart("create", "vm-prefetch", "local", keep_alive_s,
                        reason="no warm instance: VM snapshot, pages prefetched during the run")


def trenv(view: SandboxView, /, *, backend: str = "cxl",
          keep_alive_s: float = math.inf) -> SandboxStart:
    """TrEnv (SOSP'24 §4): repurpose the least recently used idle sandbox of any function
    (B1-B4: cleanse, reconfigure, clone into the cgroup, attach the mm-template on
    ``backend``), or create a sandbox when none is idle; instances stay until repurposed or
    evicted (``keep_alive_s``: no limit, as the authors run it)."""
    if view.idle_total > 0:
        return SandboxStart("repurpose", "template", backend, keep_alive_s, "pool",
                            f"{view.idle_total} idle sandbox(es): repurpose the oldest")
    return SandboxStart("create", "template", backend, keep_alive_s, "pool",
                        "no idle sandbox: create one, attach the template")


def repurpose_criu(view: SandboxView, /, *, keep_alive_s: float = math.inf) -> SandboxStart:
    """TrEnv's sandbox repurposing with CRIU's copy-based restore instead of the mm-template
    (the "+Cgroup" step of Fig. 14, "Cgroup" of Fig. 13)."""
    if view.idle_total > 0:
        return SandboxStart("repurpose", "criu", "local", keep_alive_s, "pool",
                            f"{view.idle_total} idle sandbox(es): repurpose, CRIU copy")
    return SandboxStart("create", "criu", "local", keep_alive_s, "pool",
                        "no idle sandbox: create one, CRIU copy")
