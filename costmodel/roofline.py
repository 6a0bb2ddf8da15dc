"""Roofline times with real-world corrections, and alpha-beta collectives.

A kernel takes::

    time = kernels * launch_overhead_s + max(flops / (peak_flops * eff_c), memory_time)

GEMMs and attention stream their bytes at a fraction of HBM bandwidth,
``memory_time = bytes / (hbm_bytes_per_s * eff_m)``, and their compute efficiency ``eff_c`` grows
with the token dimension M of a GEMM::

    eff_c(M) = compute_eff * M / (M + rows_half)

(a tensor-core tile is 64 to 128 rows tall: a GEMM with few rows pays for whole tiles, and the
last wave of tiles leaves SMs idle). Attention keeps a constant ``eff_c``: its tiles pack query
heads as well as tokens, and a constant keeps decode cost monotone in the batch.

**Element-wise kernels** (norms, rotary embedding, the activation, the residual add, the embedding
gather) are limited either by HBM or by the SMs that issue their loads, math and stores, whichever
is slower, from datasheet figures only::

    rate = min(elementwise_memory * hbm_bytes_per_s, bytes_per_cycle[kind] * sm_count * clock)

``bytes_per_cycle`` is a property of the kernel (how many bytes one SM moves per clock cycle:
PyTorch's and vLLM's unfused kernels with scalar loads and fp32 math move a few); it was read off
the A100 profiles and carries to another GPU through its SM count and clock, not through its HBM
bandwidth. A kernel whose data was just written by the previous one and fits in the last-level
cache runs ``l2_speedup`` times faster on the part that is resident (``l2_share`` of the L2)::

    memory_time = (bytes - resident) / rate + resident / (l2_speedup * rate),
    resident = min(bytes, l2_share * l2_bytes)      (kinds in L2_KINDS: norms and the add)

The plain roofline (all efficiencies 1, no launch) is 1.2x to 1.9x optimistic on GEMMs and more
than 10x on small kernels, whose time is launch and latency; see :class:`Efficiency` for the
defaults and where they come from.

Collectives follow the alpha-beta model over an :class:`~schedlab.costmodel.hardware.Interconnect`
of per-direction bandwidth ``bw`` and latency ``lat``, with ``n`` devices:

* ring all-reduce: ``collective_latency_s + 2(n-1) lat + 2(n-1)/n * bytes / (bw * eff * ring)``;
* all-gather (``bytes`` is the gathered output): ``collective_latency_s + (n-1) lat
  + (n-1)/n * bytes / (bw * eff * ring)``;
* point-to-point send/recv: ``p2p_latency_s + lat + bytes / (bw * eff)``.

``eff`` is the copy efficiency of the link's role (scale-up NVLink/NVSwitch, host PCIe, scale-out
NIC): what one DMA stream reaches. ``ring`` (``ring_efficiency``) is the further loss of a ring
collective, whose every step synchronises neighbours and reduces on the GPU.

>>> from schedlab.costmodel.hardware import get_accelerator, get_interconnect
>>> gpu, eff = get_accelerator("a100-80gb"), Efficiency()
>>> t = roofline_time_s(flops=2 * 4096**3, nbytes=3 * 2 * 4096**2, rows=4096, kind="gemm",
...                     gpu=gpu, efficiency=eff)
>>> 1.2 < float(t) / (2 * 4096**3 / gpu.peak_flops()) < 1.9
True
>>> link = get_interconnect("nvswitch-a100")
>>> big, small = (all_reduce_time_s(b, 8, link, efficiency=eff) for b in (2**20, 2**10))
>>> big > small
True
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.costmodel.hardware import Accelerator, Interconnect
from schedlab.costmodel.ops import KINDS, OpCost
from schedlab.errors import (
    check_fraction,
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
)

__all__ = [
    "ELEMENTWISE_KINDS",
    "L2_KINDS",
    "LINK_ROLES",
    "REFERENCE_BYTES_PER_SM_CYCLE",
    "Efficiency",
    "all_gather_time_s",
    "all_reduce_time_s",
    "elementwise_rate",
    "kv_transfer_time_s",
    "memory_time_s",
    "op_is_compute_bound",
    "op_time_s",
    "roofline_time_s",
    "send_recv_time_s",
    "sm_cycles_per_s",
]

#: Roles an interconnect plays; each has a bandwidth efficiency in :class:`Efficiency`.
LINK_ROLES = ("scale_up", "host", "scale_out")
#: Kernel classes limited by HBM or by their SMs' issue rate (see the module notes).
ELEMENTWISE_KINDS = ("norm", "rope", "act", "add", "gather")
#: Element-wise classes whose data, just written by the kernel before them, may still be in the
#: last-level cache: in the A100 profiles the norms and the residual add run up to 1.3x faster
#: than HBM allows while their bytes fit in about half of the 40 MB L2; the rotary embedding, the
#: activation and the gather (from a table in HBM) show no such step.
L2_KINDS = ("norm", "add")
#: HBM bytes per SM cycle of the A100 80 GB (2.039e12 / (108 * 1.41e9)): the balance assumed
#: for an accelerator whose SM count or clock is not given.
REFERENCE_BYTES_PER_SM_CYCLE = 2.039e12 / (108 * 1.41e9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """The few transferable parameters that correct the plain roofline.

    Defaults (the uncalibrated model) are round numbers for each kernel class, chosen from what
    such kernels are known to reach on data-centre GPUs and from the A100 profiles, not fitted to
    individual measurements:

    * GEMMs (cuBLAS, bf16): ~70% of dense tensor-core peak once they have a few hundred rows
      (``rows_half=16``: half of that at 16 rows), and ~80% of HBM bandwidth when streaming
      weights (small-batch decode). Attention (FlashAttention): 55% of peak, 80% of bandwidth.
    * Element-wise kernels stream at most ``elementwise_memory`` (85%) of HBM bandwidth, as a
      residual add does; the others are limited by their SMs first. ``<kind>_bytes_per_cycle`` is
      how many bytes one SM moves per clock cycle: RMSNorm 4 (a block reduction, then a second
      pass, fp32 math), rotary embedding 6 (a gather of the cos/sin tables per element), SiLU-and-
      mul 6.5, the embedding gather 2 (``index_select``'s per-element index arithmetic) and the
      add 32 (any value above 12 fits the A100, where the add is HBM-bound; 32 keeps it so on
      every catalog GPU). On the A100 (152 G SM cycles/s) the first four are about 30%, 45%, 49%
      and 15% of HBM bandwidth; on an A40, whose 84 SMs run at 1.74 GHz in front of 696 GB/s of
      GDDR6, the same kernels reach 84-85% of its bandwidth, except the gather (42%).
    * ``l2_share`` (0.5) of the last-level cache holds the data of the :data:`L2_KINDS` kernels,
      read ``l2_speedup`` (1.5x) faster than from HBM.
    * ``launch_overhead_s``: per-kernel fixed cost; ``None`` takes the accelerator's
      ``kernel_launch_s`` (3 us in the catalog).
    * Collectives: a NCCL call costs ``collective_latency_s`` (20 us) beyond the link latency;
      a point-to-point ``p2p_latency_s`` (10 us). A copy reaches ``scale_up_efficiency`` (80% of
      NVLink/NVSwitch), ``host_efficiency`` (85% of PCIe: ~27 of 32 GB/s on PCIe 4 x16) and
      ``scale_out_efficiency`` (80% of an RDMA NIC's line rate); ring collectives reach
      ``ring_efficiency`` (75%) of that, so an NVLink all-reduce runs at 60% of the link (NCCL
      bus bandwidth ~180 of 300 GB/s per direction on A100).

    :func:`schedlab.costmodel.calibration.calibrate` fits a new instance to measured kernels;
    :meth:`save` and :meth:`load` keep it as JSON.

    >>> Efficiency().memory_efficiency("add")
    0.85
    >>> Efficiency(gemm_compute=1.5)
    Traceback (most recent call last):
    ...
    ValueError: The 'gemm_compute' parameter of Efficiency must be a float in (0, 1].
    Got 1.5 instead.
    """

    gemm_compute: float = 0.70
    gemm_memory: float = 0.80
    rows_half: float = 16.0
    attention_compute: float = 0.55
    attention_memory: float = 0.80
    elementwise_memory: float = 0.85
    norm_bytes_per_cycle: float = 4.0
    rope_bytes_per_cycle: float = 6.0
    act_bytes_per_cycle: float = 6.5
    add_bytes_per_cycle: float = 32.0
    gather_bytes_per_cycle: float = 2.0
    l2_share: float = 0.5
    l2_speedup: float = 1.5
    launch_overhead_s: float | None = None
    collective_latency_s: float = 20e-6
    p2p_latency_s: float = 10e-6
    scale_up_efficiency: float = 0.80
    host_efficiency: float = 0.85
    scale_out_efficiency: float = 0.80
    ring_efficiency: float = 0.75

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name.endswith(("_compute", "_memory", "_efficiency")) or f.name == "l2_share":
                check_fraction(v, f.name, "Efficiency", open_low=f.name != "l2_share")
            elif f.name.endswith("_bytes_per_cycle"):
                check_positive_float(v, f.name, "Efficiency")
            elif f.name == "l2_speedup":
                if check_positive_float(v, f.name, "Efficiency") < 1:
                    raise ValueError("The 'l2_speedup' parameter of Efficiency must be a finite "
                                     f"float >= 1. Got {v!r} instead.")
            elif not (f.name == "launch_overhead_s" and v is None):
                check_nonneg_float(v, f.name, "Efficiency")

    def compute_efficiency(self, kind: str) -> float:
        """Peak compute efficiency of a kernel class (before the rows ramp); 1 for element-wise."""
        _check_kind(kind)
        return {"gemm": self.gemm_compute, "attention": self.attention_compute}.get(kind, 1.0)

    def memory_efficiency(self, kind: str) -> float:
        """HBM bandwidth efficiency of a kernel class (for the element-wise classes, the most
        they reach when their SMs do not limit them first: :func:`elementwise_rate`)."""
        _check_kind(kind)
        if kind in ELEMENTWISE_KINDS:
            return self.elementwise_memory
        return getattr(self, f"{kind}_memory")

    def link_efficiency(self, role: str) -> float:
        """Bandwidth efficiency of an interconnect role (one of :data:`LINK_ROLES`)."""
        if role not in LINK_ROLES:
            raise ValueError(
                f"The 'role' parameter of Efficiency.link_efficiency must be one of {LINK_ROLES}. "
                f"Got {role!r} instead."
            )
        return getattr(self, f"{role}_efficiency")

    def launch_s(self, gpu: Accelerator) -> float:
        """Per-kernel launch overhead on ``gpu``."""
        return gpu.kernel_launch_s if self.launch_overhead_s is None else self.launch_overhead_s

    def to_dict(self) -> dict[str, Any]:
        """The parameters as a plain dict (JSON-ready)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: str = "Efficiency.from_dict") -> Efficiency:
        """Build from :meth:`to_dict` output; unknown keys raise ``ValueError`` (none dropped)."""
        if not isinstance(data, dict):
            raise ValueError(f"{source}: expected a JSON object of Efficiency parameters.")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        retired = [k for k in unknown if k in _RETIRED]
        if retired:
            raise ValueError(
                f"{source}: {retired} are per-kind fractions of HBM bandwidth from an older model "
                f"of the element-wise kernels (now SM-limited rates, '<kind>_bytes_per_cycle'); "
                f"calibrate again to get the new parameters."
            )
        if unknown:
            raise ValueError(f"{source}: unknown Efficiency parameters {unknown}; known: "
                             f"{sorted(known)}.")
        return cls(**data)

    def save(self, path: str | Path, **metadata: Any) -> None:
        """Write ``{"efficiency": {...}, **metadata}`` as JSON to ``path``."""
        Path(path).write_text(json.dumps({"efficiency": self.to_dict(), **metadata}, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> Efficiency:
        """Read a file written by :meth:`save`.

        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "cal.json")
        >>> Efficiency(gemm_compute=0.6).save(p, gpu="a100-80gb")
        >>> Efficiency.load(p).gemm_compute
        0.6
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {str(path)!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        if not isinstance(data, dict) or "efficiency" not in data:
            raise ValueError(f"{path}: expected a JSON object with an 'efficiency' key.")
        return cls.from_dict(data["efficiency"], source=str(path))


#: Fields of earlier calibration files that the element-wise model no longer has.
_RETIRED = ("norm_memory", "rope_memory", "act_memory", "add_memory", "gather_memory")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"The 'kind' parameter must be one of {KINDS}. Got {kind!r} instead.")


def _compute_eff(kind: str, rows: Any, efficiency: Efficiency) -> Any:
    ec = efficiency.compute_efficiency(kind)
    if kind == "gemm":
        rows = np.asarray(rows, dtype=np.float64)
        return ec * rows / (rows + efficiency.rows_half)
    return ec


def sm_cycles_per_s(gpu: Accelerator) -> float:
    """SM cycles per second of ``gpu`` (:meth:`Accelerator.sm_cycles_per_s`); where its datasheet
    figures are missing, those of an A100 with ``gpu``'s HBM bandwidth.

    >>> from schedlab.costmodel.hardware import get_accelerator
    >>> round(sm_cycles_per_s(get_accelerator("h100-sxm")) / 1e9)
    261
    """
    cycles = gpu.sm_cycles_per_s()
    return gpu.hbm_bytes_per_s / REFERENCE_BYTES_PER_SM_CYCLE if cycles is None else cycles


def elementwise_rate(kind: str, gpu: Accelerator, efficiency: Efficiency) -> float:
    """Bytes per second an element-wise kernel of class ``kind`` streams on ``gpu`` outside the
    cache: the slower of HBM (``elementwise_memory`` of its bandwidth) and its SMs
    (``<kind>_bytes_per_cycle * sm_count * clock``; without those figures, the A100's balance
    :data:`REFERENCE_BYTES_PER_SM_CYCLE`).

    >>> from schedlab.costmodel.hardware import get_accelerator
    >>> eff = Efficiency()
    >>> [round(elementwise_rate("norm", get_accelerator(g), eff) / 1e9) for g in ("a100", "a40")]
    [609, 585]
    """
    if kind not in ELEMENTWISE_KINDS:
        raise ValueError(f"The 'kind' parameter of elementwise_rate must be one of "
                         f"{ELEMENTWISE_KINDS}. Got {kind!r} instead.")
    return min(efficiency.elementwise_memory * gpu.hbm_bytes_per_s,
               getattr(efficiency, f"{kind}_bytes_per_cycle") * sm_cycles_per_s(gpu))


def memory_time_s(nbytes: Any, kind: str, gpu: Accelerator, efficiency: Efficiency) -> np.ndarray:
    """Seconds a kernel of class ``kind`` spends moving ``nbytes``: at a fraction of HBM bandwidth
    for GEMMs and attention; at :func:`elementwise_rate` for the element-wise classes, faster on
    the part resident in the last-level cache for :data:`L2_KINDS` (see the module notes).

    >>> from schedlab.costmodel.hardware import get_accelerator
    >>> a100, eff = get_accelerator("a100-80gb"), Efficiency()
    >>> small, big = memory_time_s([1e6, 1e9], "add", a100, eff)
    >>> bool(small < 1e6 / elementwise_rate("add", a100, eff))   # cache-resident: faster
    True
    """
    b = np.asarray(nbytes, dtype=np.float64)
    if kind not in ELEMENTWISE_KINDS:
        return b / (gpu.hbm_bytes_per_s * efficiency.memory_efficiency(kind))
    rate = elementwise_rate(kind, gpu, efficiency)
    if kind not in L2_KINDS or gpu.l2_bytes is None:
        return b / rate
    resident = np.minimum(b, efficiency.l2_share * gpu.l2_bytes)
    return (b - resident) / rate + resident / (efficiency.l2_speedup * rate)


def roofline_time_s(
    *,
    flops: Any,
    nbytes: Any,
    rows: Any,
    kind: str,
    gpu: Accelerator,
    efficiency: Efficiency,
    dtype: str = "bf16",
    kernels: Any = 1,
) -> np.ndarray:
    """Seconds of a kernel of class ``kind``: corrected roofline plus launch overhead.

    Zero work (``flops == bytes == 0``) costs nothing, not even a launch.
    """
    _check_kind(kind)
    f = np.asarray(flops, dtype=np.float64)
    b = np.asarray(nbytes, dtype=np.float64)
    ec = _compute_eff(kind, np.maximum(rows, 1e-9), efficiency)
    t = np.maximum(f / (gpu.peak_flops(dtype) * ec), memory_time_s(b, kind, gpu, efficiency))
    return np.where((f > 0) | (b > 0), t + kernels * efficiency.launch_s(gpu), 0.0)


def op_time_s(op: OpCost, gpu: Accelerator, efficiency: Efficiency | None = None,
              dtype: str = "bf16") -> np.ndarray:
    """Seconds of an :class:`~schedlab.costmodel.ops.OpCost` on ``gpu`` (same shape as its arrays).

    >>> from types import SimpleNamespace as S
    >>> from schedlab.costmodel.hardware import get_accelerator
    >>> from schedlab.costmodel.ops import residual_add
    >>> spec = S(hidden_size=4096, dtype_bytes=2)
    >>> t = op_time_s(residual_add(spec, 4096), get_accelerator("a100-80gb"))
    >>> round(float(t) * 1e6)  # 100.7 MB at 85% of 2.039 TB/s (21 MB 1.5x faster from L2) + 3 us
    57
    """
    eff = Efficiency() if efficiency is None else efficiency
    return roofline_time_s(flops=op.flops, nbytes=op.bytes, rows=op.rows, kind=op.kind, gpu=gpu,
                           efficiency=eff, dtype=dtype, kernels=op.kernels)


def op_is_compute_bound(op: OpCost, gpu: Accelerator, efficiency: Efficiency | None = None,
                        dtype: str = "bf16") -> np.ndarray:
    """Whether the compute term of the (corrected) roofline exceeds the memory term."""
    eff = Efficiency() if efficiency is None else efficiency
    ec = _compute_eff(op.kind, np.maximum(op.rows, 1e-9), eff)
    return op.flops / (gpu.peak_flops(dtype) * ec) > memory_time_s(op.bytes, op.kind, gpu, eff)


def _link_args(nbytes: Any, n: int, where: str) -> tuple[np.ndarray, int]:
    n = check_positive_int(n, "n", where)
    b = np.asarray(nbytes, dtype=np.float64)
    if np.any(~np.isfinite(b)) or np.any(b < 0):
        raise ValueError(f"The 'nbytes' parameter of {where} must be finite and >= 0.")
    return b, n


def _scalar(x: np.ndarray) -> Any:
    return float(x) if np.ndim(x) == 0 else x


def all_reduce_time_s(nbytes: Any, n: int, link: Interconnect, *, efficiency: Efficiency,
                      role: str = "scale_up") -> Any:
    """Ring all-reduce of ``nbytes`` over ``n`` devices (0 when ``n == 1``)."""
    b, n = _link_args(nbytes, n, "all_reduce_time_s")
    if n == 1:
        return _scalar(np.zeros_like(b))
    bw = link.bytes_per_s * efficiency.link_efficiency(role) * efficiency.ring_efficiency
    t = (efficiency.collective_latency_s + 2 * (n - 1) * link.latency_s
         + 2.0 * (n - 1) / n * b / bw)
    return _scalar(t)


def all_gather_time_s(nbytes: Any, n: int, link: Interconnect, *, efficiency: Efficiency,
                      role: str = "scale_up") -> Any:
    """Ring all-gather producing ``nbytes`` on every device, over ``n`` devices."""
    b, n = _link_args(nbytes, n, "all_gather_time_s")
    if n == 1:
        return _scalar(np.zeros_like(b))
    bw = link.bytes_per_s * efficiency.link_efficiency(role) * efficiency.ring_efficiency
    t = efficiency.collective_latency_s + (n - 1) * link.latency_s + (n - 1) / n * b / bw
    return _scalar(t)


def send_recv_time_s(nbytes: Any, link: Interconnect, *, efficiency: Efficiency,
                     role: str = "scale_up") -> Any:
    """Point-to-point transfer of ``nbytes`` between two devices."""
    b, _ = _link_args(nbytes, 1, "send_recv_time_s")
    bw = link.bytes_per_s * efficiency.link_efficiency(role)
    return _scalar(efficiency.p2p_latency_s + link.latency_s + b / bw)


def kv_transfer_time_s(nbytes: Any, link: Interconnect, *, efficiency: Efficiency,
                       role: str = "host") -> Any:
    """KV migration or swap of ``nbytes`` over ``link`` (0 for nothing to move).

    >>> from schedlab.costmodel.hardware import get_interconnect
    >>> kv_transfer_time_s(0, get_interconnect("pcie4-x16"), efficiency=Efficiency())
    0.0
    """
    b, _ = _link_args(nbytes, 1, "kv_transfer_time_s")
    bw = link.bytes_per_s * efficiency.link_efficiency(role)
    return _scalar(np.where(b > 0, link.latency_s + b / bw, 0.0))

