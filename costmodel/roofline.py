"""Roofline times with real-world corrections, and alpha-beta collectives.

A kernel takes::

    time = kernels * launch_overhead_s
         + max(flops / (peak_flops * eff_c), bytes / (hbm_bytes_per_s * eff_m))

where ``eff_m`` is the memory efficiency of the operator's kernel class and ``eff_c`` its compute
efficiency, which for GEMMs grows with the token dimension M of the problem::

    eff_c(M) = compute_eff * M / (M + rows_half)

(a tensor-core tile is 64 to 128 rows tall: a GEMM with few rows pays for whole tiles, and the
last wave of tiles leaves SMs idle). Attention keeps a constant ``eff_c``: its tiles pack query
heads as well as tokens, and a constant keeps decode cost monotone in the batch. The plain
roofline (all efficiencies 1, no launch) is 1.2x to 1.9x optimistic on GEMMs and more than 10x
on small kernels, whose time is launch and latency; see :class:`Efficiency` for the defaults and
where they come from.

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
from schedlab.errors import check_nonneg_float, check_positive_int

__all__ = [
    "LINK_ROLES",
    "Efficiency",
    "all_gather_time_s",
    "all_reduce_time_s",
    "kv_transfer_time_s",
    "op_is_compute_bound",
    "op_time_s",
    "roofline_time_s",
    "send_recv_time_s",
]

#: Roles an interconnect plays; each has a bandwidth efficiency in :class:`Efficiency`.
LINK_ROLES = ("scale_up", "host", "scale_out")


@dataclass(frozen=True, slots=True, kw_only=True)
class Efficiency:
    """The few transferable parameters that correct the plain roofline.

    Defaults (the uncalibrated model) are round numbers for each kernel class, chosen from what
    such kernels are known to reach on data-centre GPUs, not fitted to individual measurements:

    * GEMMs (cuBLAS, bf16): ~70% of dense tensor-core peak once they have a few hundred rows
      (``rows_half=16``: half of that at 16 rows), and ~80% of HBM bandwidth when streaming
      weights (small-batch decode). Attention (FlashAttention): 55% of peak, 80% of bandwidth.
    * Element-wise kernels as PyTorch runs them: a residual add streams at ~85% of HBM peak;
      SiLU-and-mul at ~50% (two strided reads); RMSNorm/LayerNorm at ~35% and rotary embedding
      at ~45% (fp32 math, a reduction or gather of rotary tables per element); an embedding
      gather (``index_select``) at ~15%. These three low values are what PyTorch's unfused
      kernels reach, which is also what the A100 profiles in ``../shared`` show.
    * ``launch_overhead_s``: per-kernel fixed cost; ``None`` takes the accelerator's
      ``kernel_launch_s`` (4 us in the catalog).
    * Collectives: a NCCL call costs ``collective_latency_s`` (20 us) beyond the link latency;
      a point-to-point ``p2p_latency_s`` (10 us). A copy reaches ``scale_up_efficiency`` (80% of
      NVLink/NVSwitch), ``host_efficiency`` (85% of PCIe: ~27 of 32 GB/s on PCIe 4 x16) and
      ``scale_out_efficiency`` (80% of an RDMA NIC's line rate); ring collectives reach
      ``ring_efficiency`` (75%) of that, so an NVLink all-reduce runs at 60% of the link (NCCL
      bus bandwidth ~180 of 300 GB/s per direction on A100).

    :func:`schedlab.costmodel.calibrate.calibrate` fits a new instance to measured kernels;
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
    norm_memory: float = 0.35
    rope_memory: float = 0.45
    act_memory: float = 0.50
    add_memory: float = 0.85
    gather_memory: float = 0.15
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
            if f.name.endswith(("_compute", "_memory", "_efficiency")):
                if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 < v <= 1:
                    raise ValueError(
                        f"The {f.name!r} parameter of Efficiency must be a float in (0, 1]. "
                        f"Got {v!r} instead."
                    )
            elif not (f.name == "launch_overhead_s" and v is None):
                check_nonneg_float(v, f.name, "Efficiency")

    def compute_efficiency(self, kind: str) -> float:
        """Peak compute efficiency of a kernel class (before the rows ramp); 1 for element-wise."""
        _check_kind(kind)
        return {"gemm": self.gemm_compute, "attention": self.attention_compute}.get(kind, 1.0)

    def memory_efficiency(self, kind: str) -> float:
        """HBM bandwidth efficiency of a kernel class."""
        _check_kind(kind)
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


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"The 'kind' parameter must be one of {KINDS}. Got {kind!r} instead.")


def _compute_eff(kind: str, rows: Any, efficiency: Efficiency) -> Any:
    ec = efficiency.compute_efficiency(kind)
    if kind == "gemm":
        rows = np.asarray(rows, dtype=np.float64)
        return ec * rows / (rows + efficiency.rows_half)
    return ec


def roofline_time_s(
    *,
    flops: Any,
    nbytes: Any,
    rows: Any,
    kind: str,
    gpu: Accelerator,
    efficiency: Efficiency,
    dtype: str = "bf16",
    kernels: int = 1,
) -> np.ndarray:
    """Seconds of a kernel of class ``kind``: corrected roofline plus launch overhead.

    Zero work (``flops == bytes == 0``) costs nothing, not even a launch.
    """
    f = np.asarray(flops, dtype=np.float64)
    b = np.asarray(nbytes, dtype=np.float64)
    ec = _compute_eff(kind, np.maximum(rows, 1e-9), efficiency)
    t = np.maximum(f / (gpu.peak_flops(dtype) * ec),
                   b / (gpu.hbm_bytes_per_s * efficiency.memory_efficiency(kind)))
    return np.where((f > 0) | (b > 0), t + kernels * efficiency.launch_s(gpu), 0.0)


def op_time_s(op: OpCost, gpu: Accelerator, efficiency: Efficiency | None = None,
              dtype: str = "bf16") -> np.ndarray:
    """Seconds of an :class:`~schedlab.costmodel.ops.OpCost` on ``gpu`` (same shape as its arrays).

    >>> from types import SimpleNamespace as S
    >>> from schedlab.costmodel.hardware import get_accelerator
    >>> from schedlab.costmodel.ops import residual_add
    >>> spec = S(hidden_size=4096, dtype_bytes=2)
    >>> t = op_time_s(residual_add(spec, 4096), get_accelerator("a100-80gb"))
    >>> round(float(t) * 1e6)  # 100.7 MB at 85% of 2.039 TB/s, plus a 4 us launch
    62
    """
    eff = Efficiency() if efficiency is None else efficiency
    return roofline_time_s(flops=op.flops, nbytes=op.bytes, rows=op.rows, kind=op.kind, gpu=gpu,
                           efficiency=eff, dtype=dtype, kernels=op.kernels)


def op_is_compute_bound(op: OpCost, gpu: Accelerator, efficiency: Efficiency | None = None,
                        dtype: str = "bf16") -> np.ndarray:
    """Whether the compute term of the (corrected) roofline exceeds the memory term."""
    eff = Efficiency() if efficiency is None else efficiency
    ec = _compute_eff(op.kind, np.maximum(op.rows, 1e-9), eff)
    return (op.flops / (gpu.peak_flops(dtype) * ec)
            > op.bytes / (gpu.hbm_bytes_per_s * eff.memory_efficiency(op.kind)))


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

