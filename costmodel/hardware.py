"""Hardware catalog: accelerators, memory devices and interconnects, each number with its source.

Units are SI and spelled in field names: FLOP/s, bytes, bytes/s, seconds. Datasheets speak in
TFLOPS, TB/s and GB; :meth:`Accelerator.from_datasheet` converts those once. **GB means 1e9 bytes**
(and TB/s 1e12 bytes/s), as vendors state them. Beware: the physical HBM of an "80GB" A100 or
H100 is 80 GiB (85.9e9 bytes), so a capacity of 80e9 bytes is about 7% conservative; build an
:class:`Accelerator` with ``hbm_capacity_bytes=80 * 2**30`` where you want the physical figure.

Peak FLOP/s are **dense** (no 2:4 structured sparsity), as listed in the vendors' datasheets.
``price_per_hour`` is a parameter: the catalog's default is an indicative on-demand price of one GPU
for one hour at a GPU cloud in 2025 (rounded, in US dollars), not a quote; set yours with
:meth:`Accelerator.with_price` or :func:`dataclasses.replace`.

Lookups (:func:`get_accelerator`, :func:`get_memory_device`, :func:`get_interconnect`) ignore case,
treat ``_``, spaces and ``-`` alike, drop a leading ``nvidia-``/``amd-``, accept a few aliases
(``'A100'`` is the 80 GB SXM part that the Vidur A100 profiles were measured on; ``'H100'`` is the
SXM part) and return an instance passed to them unchanged, so APIs may take a name or an object.

>>> gpu = get_accelerator("A100")
>>> gpu.name, gpu.peak_flops("bf16") / 1e12, gpu.hbm_bytes_per_s / 1e12
('a100-80gb', 312.0, 2.039)
>>> get_interconnect(gpu.scale_up_link).bytes_per_s / 1e9
300.0
>>> get_accelerator("h100_SXM").with_price(2.0).price_per_hour
2.0
"""

from __future__ import annotations

import dataclasses
import re
import types
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from schedlab.errors import (
    check_nonneg_float,
    check_positive_float,
    check_positive_int,
    unknown_name_error,
)

__all__ = [
    "ACCELERATORS",
    "DEFAULT_KERNEL_LAUNCH_S",
    "DTYPES",
    "INTERCONNECTS",
    "MEMORY_DEVICES",
    "Accelerator",
    "Interconnect",
    "MemoryDevice",
    "canonical_name",
    "get_accelerator",
    "get_interconnect",
    "get_memory_device",
    "resolve_name",
]

#: Datatype keys of :attr:`Accelerator.peak_flops_per_s` (int8 is in OP/s).
DTYPES = ("fp32", "tf32", "fp16", "bf16", "fp8", "int8")

#: Default per-kernel launch overhead: about 3 us is the launch of a null kernel on recent NVIDIA
#: hardware and drivers (NVIDIA developer forums; a raw ``cuLaunchKernel`` measured 3.0-3.3 us on
#: GB200 in PyTorch's tritonbench), and the smallest element-wise kernels of the Vidur A100
#: profiles take 2-5 us. No public source gives a figure per generation, so every catalog part
#: takes this one; the roofline calibration may refit it.
DEFAULT_KERNEL_LAUNCH_S = 3e-6

_T = TypeVar("_T")


def canonical_name(name: str) -> str:
    """Normalised catalog key: lower case, ``_`` and spaces as ``-``, no ``nvidia-``/``amd-``.

    >>> canonical_name("NVIDIA A100_80GB")
    'a100-80gb'
    """
    key = re.sub(r"[\s_]+", "-", str(name).strip().lower())
    return re.sub(r"^(nvidia|amd)-", "", key)


def resolve_name(kind: str, name: object, table: Mapping[str, _T], aliases: Mapping[str, str],
                 cls: type[_T]) -> _T:
    """Look ``name`` up in ``table`` (keys canonical) after normalisation and ``aliases``.

    An instance of ``cls`` is returned unchanged; an unknown name raises the ``ValueError`` of
    :func:`schedlab.errors.unknown_name_error`, which lists close matches among the catalog names
    (aliases resolve but are not listed).

    >>> resolve_name("GPU", "A100_80GB", ACCELERATORS, {}, Accelerator).name
    'a100-80gb'
    """
    if isinstance(name, cls):
        return name
    if not isinstance(name, str):
        raise ValueError(
            f"The {kind} must be given by name (str) or as a {cls.__name__}. "
            f"Got {type(name).__name__}: {name!r}."
        )
    key = canonical_name(name)
    key = aliases.get(key, key)
    if key not in table:
        raise unknown_name_error(kind, name, table)
    return table[key]


def _check_text(value: object, name: str, where: str, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise ValueError(
            f"The {name!r} parameter of {where} must be a non-empty str. Got {value!r} instead."
        )
    return value


# --------------------------------------------------------------------------------------------
# Interconnects
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Interconnect:
    """A link between devices: bandwidth per direction per device, and one-way latency.

    ``bytes_per_s`` is what one device can send (and, at the same time, receive) over the link,
    i.e. half of the "bidirectional" figure vendors print for NVLink. ``latency_s`` is the link's
    small-message latency, order of magnitude (collective software overheads come on top and are
    calibrated in :mod:`schedlab.costmodel.roofline`).

    >>> link = Interconnect(name="my-link", bytes_per_s=25e9, latency_s=2e-6, source="test")
    >>> link.transfer_time_s(25e9)
    1.000002
    """

    name: str
    bytes_per_s: float
    latency_s: float
    source: str

    def __post_init__(self) -> None:
        where = "Interconnect"
        _check_text(self.name, "name", where)
        bandwidth = check_positive_float(self.bytes_per_s, "bytes_per_s", where)
        object.__setattr__(self, "bytes_per_s", bandwidth)
        latency = check_nonneg_float(self.latency_s, "latency_s", where)
        object.__setattr__(self, "latency_s", latency)
        _check_text(self.source, "source", where)

    def transfer_time_s(self, nbytes: float) -> float:
        """Alpha-beta time of one point-to-point transfer: ``latency_s + nbytes / bytes_per_s``."""
        nbytes = check_nonneg_float(nbytes, "nbytes", "Interconnect.transfer_time_s")
        return self.latency_s + nbytes / self.bytes_per_s


def _link(name: str, gb_per_s: float, latency_us: float, source: str) -> Interconnect:
    return Interconnect(name=name, bytes_per_s=gb_per_s * 1e9, latency_s=latency_us * 1e-6,
                        source=source)


_LAT_NOTE = (
    "latency: order-of-magnitude link latency (not a datasheet figure), "
    "refit by calibration"
)

INTERCONNECTS: Mapping[str, Interconnect] = types.MappingProxyType({
    link.name: link
    for link in (
        # NVLink: NVIDIA quotes total bidirectional bandwidth per GPU; per direction is half.
        _link("nvlink3", 300, 2.0,
              "NVIDIA A100 Tensor Core GPU datasheet: NVLink 600 GB/s (bidirectional, "
              "12 links x 50 GB/s) "
              f"-> 300 GB/s per direction; {_LAT_NOTE}"),
        _link("nvlink-a800", 200, 2.0,
              "NVIDIA A800 40GB/80GB datasheet: NVLink 400 GB/s (bidirectional, export-control "
              f"reduced) -> 200 GB/s per direction; {_LAT_NOTE}"),
        _link("nvlink4", 450, 2.0,
              "NVIDIA H100 Tensor Core GPU datasheet (SXM): NVLink 900 GB/s (bidirectional, "
              "18 links) "
              f"-> 450 GB/s per direction; {_LAT_NOTE}"),
        _link("nvlink-h800", 200, 2.0,
              "NVIDIA H800 SXM5 product brief: NVLink 400 GB/s (bidirectional, export-control "
              "reduced) "
              f"-> 200 GB/s per direction; {_LAT_NOTE}"),
        _link("nvlink5", 900, 2.0,
              "NVIDIA DGX B200 / Blackwell datasheet: fifth-generation NVLink 1.8 TB/s per GPU "
              f"(bidirectional) -> 900 GB/s per direction; {_LAT_NOTE}"),
        _link("nvswitch-a100", 300, 3.0,
              "NVIDIA DGX A100 system architecture whitepaper: 6 NVSwitches, every GPU at its full "
              f"600 GB/s bidirectional NVLink bandwidth -> 300 GB/s per direction; {_LAT_NOTE}"),
        _link("nvswitch-h100", 450, 3.0,
              "NVIDIA DGX H100 datasheet: 4 third-generation NVSwitches, 900 GB/s bidirectional "
              "per GPU "
              f"-> 450 GB/s per direction; {_LAT_NOTE}"),
        _link("infinity-fabric-mi300x", 448, 2.0,
              "AMD Instinct MI300X data sheet: 7 Infinity Fabric links, 896 GB/s peak aggregate "
              f"bidirectional per GPU -> 448 GB/s per direction; {_LAT_NOTE}"),
        _link("pcie4-x16", 32, 1.5,
              "PCI-SIG PCIe 4.0 base spec: 16 GT/s x16, 128b/130b -> 31.5 GB/s per direction "
              f"(about 32; NVIDIA datasheets: 64 GB/s bidirectional); {_LAT_NOTE}"),
        _link("pcie5-x16", 64, 1.5,
              "PCI-SIG PCIe 5.0 base spec: 32 GT/s x16, 128b/130b -> 63 GB/s per direction "
              f"(about 64; NVIDIA datasheets: 128 GB/s bidirectional); {_LAT_NOTE}"),
        _link("rdma-200g", 25, 3.0,
              "NVIDIA ConnectX-6 / InfiniBand HDR adapter datasheet: 200 Gb/s per port "
              f"= 25 GB/s per direction; {_LAT_NOTE}"),
        _link("rdma-400g", 50, 3.0,
              "NVIDIA ConnectX-7 / InfiniBand NDR adapter datasheet: 400 Gb/s per port "
              f"= 50 GB/s per direction; {_LAT_NOTE}"),
        _link("ethernet-100g", 12.5, 10.0,
              "IEEE 802.3 100 Gigabit Ethernet: 100 Gb/s = 12.5 GB/s per direction; latency: "
              "order of magnitude for a kernel TCP stack (not a datasheet figure)"),
    )
})

_LINK_ALIASES: Mapping[str, str] = types.MappingProxyType({
    "nvlink-3": "nvlink3", "nvlink-4": "nvlink4", "nvlink-5": "nvlink5",
    "nvswitch": "nvswitch-h100",
    "pcie4": "pcie4-x16", "pcie-4": "pcie4-x16", "pcie-gen4-x16": "pcie4-x16",
    "pcie5": "pcie5-x16", "pcie-5": "pcie5-x16", "pcie-gen5-x16": "pcie5-x16",
    "ib-hdr": "rdma-200g", "infiniband-hdr": "rdma-200g", "rdma-200gbps": "rdma-200g",
    "ib-ndr": "rdma-400g", "infiniband-ndr": "rdma-400g", "rdma-400gbps": "rdma-400g",
    "100gbe": "ethernet-100g", "ethernet-100gbps": "ethernet-100g",
})


def get_interconnect(name: str | Interconnect) -> Interconnect:
    """The catalog :class:`Interconnect` called ``name`` (an instance is returned unchanged).

    >>> get_interconnect("PCIe4_x16").bytes_per_s
    32000000000.0
    >>> get_interconnect("nvlnk4")
    Traceback (most recent call last):
    ...
    ValueError: Unknown interconnect 'nvlnk4'. Close matches: 'nvlink4', ...
    """
    return resolve_name("interconnect", name, INTERCONNECTS, _LINK_ALIASES, Interconnect)


# --------------------------------------------------------------------------------------------
# Memory devices
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryDevice:
    """A memory tier below HBM (host DRAM, CXL memory, SSD) that KV caches can spill to.

    Bandwidths are the device's own sustained sequential figures; the transfer to a GPU is also
    limited by the accelerator's ``host_link`` (take the minimum). ``price_per_hour`` is the
    indicative rental cost of the whole device for one hour (a parameter, like the GPUs').

    >>> dram = get_memory_device("ddr5")
    >>> dram.capacity_bytes / 1e9, dram.read_bytes_per_s / 1e9
    (1024.0, 307.2)
    """

    name: str
    capacity_bytes: float
    read_bytes_per_s: float
    write_bytes_per_s: float
    latency_s: float
    price_per_hour: float
    source: str

    def __post_init__(self) -> None:
        where = "MemoryDevice"
        _check_text(self.name, "name", where)
        for field in ("capacity_bytes", "read_bytes_per_s", "write_bytes_per_s"):
            value = check_positive_float(getattr(self, field), field, where)
            object.__setattr__(self, field, value)
        for field in ("latency_s", "price_per_hour"):
            object.__setattr__(self, field, check_nonneg_float(getattr(self, field), field, where))
        _check_text(self.source, "source", where)


MEMORY_DEVICES: Mapping[str, MemoryDevice] = types.MappingProxyType({
    dev.name: dev
    for dev in (
        MemoryDevice(
            name="ddr5-host", capacity_bytes=1024e9, read_bytes_per_s=307.2e9,
            write_bytes_per_s=307.2e9, latency_s=100e-9, price_per_hour=0.5,
            source="JEDEC JESD79-5 DDR5-4800: 38.4 GB/s per channel; one 8-channel server socket "
                   "(e.g. Intel Xeon 4th gen / AMD EPYC 9004 at 8 channels) = 307.2 GB/s; 1 TB "
                   "(16 x 64 GB RDIMMs); ~100 ns load-to-use latency; price indicative"),
        MemoryDevice(
            name="cxl-memory", capacity_bytes=512e9, read_bytes_per_s=64e9,
            write_bytes_per_s=64e9, latency_s=250e-9, price_per_hour=0.25,
            source="CXL 2.0 Type-3 expander on a PCIe 5.0 x16 link (e.g. Samsung CMM-D 512 GB): "
                   "link limit 64 GB/s per direction; latency ~170-250 ns (CXL Consortium / "
                   "Pond, ASPLOS'23); price indicative"),
        MemoryDevice(
            name="nvme-ssd", capacity_bytes=7.68e12, read_bytes_per_s=6.9e9,
            write_bytes_per_s=4.1e9, latency_s=80e-6, price_per_hour=0.05,
            source="Samsung PM9A3 7.68 TB U.2 PCIe 4.0 NVMe datasheet: 6,900 MB/s sequential read, "
                   "4,100 MB/s sequential write; ~80 us random-read latency; price indicative"),
    )
})

_MEMORY_ALIASES: Mapping[str, str] = types.MappingProxyType({
    "dram": "ddr5-host", "ddr5": "ddr5-host", "host-dram": "ddr5-host", "host": "ddr5-host",
    "cxl": "cxl-memory", "ssd": "nvme-ssd", "nvme": "nvme-ssd",
})


def get_memory_device(name: str | MemoryDevice) -> MemoryDevice:
    """The catalog :class:`MemoryDevice` called ``name`` (an instance is returned unchanged).

    >>> get_memory_device("SSD").name
    'nvme-ssd'
    """
    return resolve_name("memory device", name, MEMORY_DEVICES, _MEMORY_ALIASES, MemoryDevice)


# --------------------------------------------------------------------------------------------
# Accelerators
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Accelerator:
    """One accelerator: dense peak FLOP/s per dtype, HBM bandwidth and capacity, price, links.

    ``peak_flops_per_s`` maps dtypes among :data:`DTYPES` to **dense** FLOP/s (stored read-only).
    ``hbm_capacity_bytes`` is in bytes (see the module note on GB vs GiB). ``host_link`` names the
    :class:`Interconnect` used to swap KV to host memory, ``scale_up_link`` the GPU-to-GPU one
    (both must be catalog names; they are stored canonical). Instances are hashable.

    ``sm_count`` (streaming multiprocessors, or compute units on AMD parts), ``sm_clock_hz`` (the
    maximum boost clock) and ``l2_bytes`` (the last-level on-chip cache) set how fast the
    element-wise kernels run where the SMs, not HBM, limit them, and how much of their data stays
    in cache (:mod:`schedlab.costmodel.roofline`). They are optional for accelerators of your own:
    without them those kernels take the A100's balance of SM throughput to HBM bandwidth, and no
    cache residency.

    >>> gpu = Accelerator.from_datasheet(
    ...     name="toy", tflops={"bf16": 100}, hbm_tb_per_s=1.0, hbm_gb=16, price_per_hour=1.0,
    ...     host_link="pcie4", scale_up_link="PCIe4-x16", vendor="none", source="doctest")
    >>> gpu.peak_flops(), gpu.hbm_capacity_bytes, gpu.host_link
    (100000000000000.0, 16000000000.0, 'pcie4-x16')
    >>> gpu.peak_flops("fp8")
    Traceback (most recent call last):
    ...
    ValueError: The 'dtype' parameter of Accelerator.peak_flops must be one of ['bf16'] ...
    """

    name: str
    peak_flops_per_s: Mapping[str, float]
    hbm_bytes_per_s: float
    hbm_capacity_bytes: float
    price_per_hour: float
    kernel_launch_s: float = DEFAULT_KERNEL_LAUNCH_S
    host_link: str
    scale_up_link: str
    vendor: str
    source: str
    sm_count: int | None = None
    sm_clock_hz: float | None = None
    l2_bytes: float | None = None

    def __post_init__(self) -> None:
        where = "Accelerator"
        _check_text(self.name, "name", where)
        if not isinstance(self.peak_flops_per_s, Mapping) or not self.peak_flops_per_s:
            raise ValueError(
                f"The 'peak_flops_per_s' parameter of {where} must be a non-empty mapping from "
                f"dtypes in {list(DTYPES)} to FLOP/s. Got {self.peak_flops_per_s!r} instead."
            )
        peaks = {}
        for dtype, value in self.peak_flops_per_s.items():
            if dtype not in DTYPES:
                raise ValueError(
                    f"The 'peak_flops_per_s' parameter of {where} has an unknown dtype key "
                    f"{dtype!r}; expected keys among {list(DTYPES)}."
                )
            peaks[dtype] = check_positive_float(value, f"peak_flops_per_s[{dtype!r}]", where)
        object.__setattr__(self, "peak_flops_per_s", types.MappingProxyType(peaks))
        for field in ("hbm_bytes_per_s", "hbm_capacity_bytes"):
            value = check_positive_float(getattr(self, field), field, where)
            object.__setattr__(self, field, value)
        for field in ("price_per_hour", "kernel_launch_s"):
            object.__setattr__(self, field, check_nonneg_float(getattr(self, field), field, where))
        for field in ("host_link", "scale_up_link"):
            value = getattr(self, field)
            if not isinstance(value, str):
                raise ValueError(
                    f"The {field!r} parameter of {where} must be an interconnect name (str). "
                    f"Got {value!r} instead."
                )
            object.__setattr__(self, field, get_interconnect(value).name)
        _check_text(self.vendor, "vendor", where)
        _check_text(self.source, "source", where)
        if self.sm_count is not None:
            object.__setattr__(self, "sm_count", check_positive_int(self.sm_count, "sm_count",
                                                                    where))
        for field in ("sm_clock_hz", "l2_bytes"):
            if getattr(self, field) is not None:
                object.__setattr__(self, field,
                                   check_positive_float(getattr(self, field), field, where))

    def __hash__(self) -> int:
        return hash((self.name, tuple(sorted(self.peak_flops_per_s.items())), self.hbm_bytes_per_s,
                     self.hbm_capacity_bytes, self.price_per_hour, self.kernel_launch_s,
                     self.host_link, self.scale_up_link, self.sm_count, self.sm_clock_hz,
                     self.l2_bytes))

    def __reduce__(self) -> tuple:
        # The read-only peak table (a mappingproxy) cannot be pickled; rebuild from a plain dict
        # so accelerators travel to worker processes and survive copy.deepcopy.
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        fields["peak_flops_per_s"] = dict(self.peak_flops_per_s)
        return (_accelerator_from_fields, (fields,))

    def peak_flops(self, dtype: str = "bf16") -> float:
        """Dense peak FLOP/s for ``dtype``; ``ValueError`` listing the dtypes this part has.

        >>> get_accelerator("a100-80gb").peak_flops("tf32") / 1e12
        156.0
        """
        try:
            return self.peak_flops_per_s[dtype]
        except (KeyError, TypeError):
            raise ValueError(
                f"The 'dtype' parameter of Accelerator.peak_flops must be one of "
                f"{sorted(self.peak_flops_per_s)} for {self.name!r}. Got {dtype!r} instead."
            ) from None

    def sm_cycles_per_s(self) -> float | None:
        """SM clock cycles the whole chip runs per second (``sm_count * sm_clock_hz``), or
        ``None`` where the datasheet figures are not given.

        >>> round(get_accelerator("a100-80gb").sm_cycles_per_s() / 1e9, 1)
        152.3
        """
        if self.sm_count is None or self.sm_clock_hz is None:
            return None
        return self.sm_count * self.sm_clock_hz

    def ridge_point(self, dtype: str = "bf16") -> float:
        """Arithmetic intensity (FLOP per HBM byte) where the roofline turns compute-bound.

        >>> round(get_accelerator("a100-80gb").ridge_point(), 1)
        153.0
        """
        return self.peak_flops(dtype) / self.hbm_bytes_per_s

    def with_price(self, price_per_hour: float) -> Accelerator:
        """A copy with another price per GPU-hour (same as ``dataclasses.replace``).

        >>> get_accelerator("h100").with_price(1.5).price_per_hour
        1.5
        """
        return dataclasses.replace(self, price_per_hour=price_per_hour)

    @classmethod
    def from_datasheet(
        cls,
        *,
        name: str,
        tflops: Mapping[str, float],
        hbm_tb_per_s: float,
        hbm_gb: float,
        price_per_hour: float,
        host_link: str,
        scale_up_link: str,
        vendor: str,
        source: str,
        kernel_launch_us: float = DEFAULT_KERNEL_LAUNCH_S * 1e6,
        sms: int | None = None,
        boost_mhz: float | None = None,
        l2_mib: float | None = None,
    ) -> Accelerator:
        """Build from datasheet units: dense TFLOPS per dtype, HBM TB/s (1e12 B/s), HBM GB (1e9 B),
        the SM count, the boost clock in MHz and the L2 cache in MiB (cache sizes are binary: an
        "L2 of 40 MB" holds 40 * 2**20 bytes).

        >>> Accelerator.from_datasheet(name="x", tflops={"fp16": 1}, hbm_tb_per_s=0.5, hbm_gb=8,
        ...     price_per_hour=0, host_link="pcie5", scale_up_link="nvlink4", vendor="v",
        ...     source="s").hbm_bytes_per_s
        500000000000.0
        """
        where = "Accelerator.from_datasheet"
        if not isinstance(tflops, Mapping):
            raise ValueError(
                f"The 'tflops' parameter of {where} must be a mapping dtype -> dense TFLOPS. "
                f"Got {tflops!r} instead."
            )
        peaks = {
            k: check_positive_float(v, f"tflops[{k!r}]", where) * 1e12 for k, v in tflops.items()
        }
        return cls(
            name=name,
            peak_flops_per_s=peaks,
            hbm_bytes_per_s=check_positive_float(hbm_tb_per_s, "hbm_tb_per_s", where) * 1e12,
            hbm_capacity_bytes=check_positive_float(hbm_gb, "hbm_gb", where) * 1e9,
            price_per_hour=price_per_hour,
            kernel_launch_s=check_nonneg_float(kernel_launch_us, "kernel_launch_us", where) * 1e-6,
            host_link=host_link,
            scale_up_link=scale_up_link,
            vendor=vendor,
            source=source,
            sm_count=sms,
            sm_clock_hz=None if boost_mhz is None
            else check_positive_float(boost_mhz, "boost_mhz", where) * 1e6,
            l2_bytes=None if l2_mib is None else check_positive_float(l2_mib, "l2_mib", where)
            * 2**20,
        )


def _accelerator_from_fields(fields: dict) -> Accelerator:
    return Accelerator(**fields)


_PRICE_NOTE = "price: indicative 2025 on-demand USD per GPU-hour at GPU clouds, a parameter"


#: SM count, maximum boost clock (MHz), L2 / last-level cache (MiB) and where each comes from.
#: "[unconfirmed]" marks a figure no public page we found states for that exact part.
_CHIPS: dict[str, tuple[int, float, float, str]] = {
    "a100": (108, 1410, 40, "A100 whitepaper / deviceQuery of an A100-SXM4-80GB: 108 SMs, "
             "1,410 MHz boost, 40 MB L2"),
    "a800": (108, 1410, 40, "A800: the A100's GA100 configuration (108 SMs, 1,410 MHz, 40 MB L2), "
             "only NVLink cut"),
    "h100-sxm": (132, 1980, 50, "H100 whitepaper (SXM5): 132 SMs, 50 MB L2; 1,980 MHz max boost"),
    "h100-pcie": (114, 1755, 50, "H100 whitepaper (PCIe): 114 SMs, 1,755 MHz boost, 50 MB L2"),
    "h800": (132, 1980, 50, "H800 SXM: the H100 SXM5's GH100 configuration (132 SMs, 1,980 MHz, "
             "50 MB L2) [unconfirmed for the H800 itself]"),
    "h200": (132, 1980, 50, "H200: 132 SMs; the H100 SXM's 1,980 MHz and 50 MB L2 "
             "[clock and L2 unconfirmed]"),
    "h20": (78, 1980, 60, "H20: 78 SMs (as reported); 1,980 MHz and 60 MB L2 [unconfirmed]"),
    "a40": (84, 1740, 6, "A40 datasheet / GA102: 84 SMs, 1,740 MHz boost, 6 MB L2"),
    "l40s": (142, 2520, 96, "L40S: 142 SMs, 2,520 MHz boost; 96 MB L2 as measured on the L40 "
             "(same 142-SM AD102) [one spec table says 48 MB]"),
    "b200": (148, 1965, 126, "B200: 148 SMs (2 x 74), 126 MB L2 (Chips and Cheese); clock "
             "about the H100 SXM's [unconfirmed]"),
    "mi300x": (304, 2100, 256, "MI300X: 304 CUs, 2,100 MHz peak engine clock, 256 MB Infinity "
               "Cache as the last-level cache (ROCm GPU specifications)"),
}


def _gpu(name: str, tflops: dict[str, float], tb_s: float, gb: float, price: float, host: str,
         scale_up: str, vendor: str, source: str, chip: str) -> Accelerator:
    sms, mhz, l2_mib, chip_source = _CHIPS[chip]
    return Accelerator.from_datasheet(
        name=name, tflops=tflops, hbm_tb_per_s=tb_s, hbm_gb=gb, price_per_hour=price,
        host_link=host, scale_up_link=scale_up, vendor=vendor,
        source=f"{source}; {chip_source}; {_PRICE_NOTE}", sms=sms, boost_mhz=mhz, l2_mib=l2_mib,
    )


_A100_TFLOPS = {"fp32": 19.5, "tf32": 156, "fp16": 312, "bf16": 312, "int8": 624}
_H100_SXM_TFLOPS = {"fp32": 66.9, "tf32": 494.7, "fp16": 989.4, "bf16": 989.4, "fp8": 1978.9,
                    "int8": 1978.9}

ACCELERATORS: Mapping[str, Accelerator] = types.MappingProxyType({
    gpu.name: gpu
    for gpu in (
        _gpu("a100-40gb", _A100_TFLOPS, 1.555, 40, 1.29, "pcie4-x16", "nvlink3", "nvidia",
             "NVIDIA A100 Tensor Core GPU datasheet (SXM4 40GB): 19.5 fp32, 156 tf32, "
             "312 fp16/bf16, "
             "624 int8 dense TFLOPS; 40GB HBM2 at 1,555 GB/s; NVLink 600 GB/s; PCIe Gen4",
             chip="a100"),
        _gpu("a100-80gb", _A100_TFLOPS, 2.039, 80, 1.79, "pcie4-x16", "nvlink3", "nvidia",
             "NVIDIA A100 Tensor Core GPU datasheet (SXM4 80GB): 19.5 fp32, 156 tf32, "
             "312 fp16/bf16, "
             "624 int8 dense TFLOPS; 80GB HBM2e at 2,039 GB/s; NVLink 600 GB/s; PCIe Gen4",
             chip="a100"),
        _gpu("a800", _A100_TFLOPS, 2.039, 80, 1.79, "pcie4-x16", "nvlink-a800", "nvidia",
             "NVIDIA A800 SXM4 80GB datasheet: A100 compute (312 fp16/bf16 dense TFLOPS), "
             "80GB HBM2e "
             "at 2,039 GB/s, NVLink reduced to 400 GB/s bidirectional",
             chip="a800"),
        _gpu("h100-sxm", _H100_SXM_TFLOPS, 3.35, 80, 2.99, "pcie5-x16", "nvlink4", "nvidia",
             "NVIDIA H100 Tensor Core GPU Architecture whitepaper, SXM5 table: 66.9 fp32, 494.7 "
             "tf32, 989.4 fp16/bf16, 1,978.9 fp8/int8 dense TFLOPS (the datasheet prints the "
             "'with sparsity' figures 989/1,979/3,958); H100 datasheet (SXM): 80GB HBM3 at "
             "3.35 TB/s; NVLink 900 GB/s; PCIe Gen5",
             chip="h100-sxm"),
        _gpu("h100-pcie", {"fp32": 51.2, "tf32": 378, "fp16": 756, "bf16": 756, "fp8": 1513,
                           "int8": 1513},
             2.0, 80, 2.49, "pcie5-x16", "pcie5-x16", "nvidia",
             "NVIDIA H100 Tensor Core GPU datasheet (PCIe): 51 fp32, 378 tf32, 756 fp16/bf16, "
             "1,513 "
             "fp8/int8 dense TFLOPS; 80GB HBM2e at 2.0 TB/s; PCIe Gen5 (GPU-GPU over PCIe; the "
             "optional NVLink bridge is not assumed)",
             chip="h100-pcie"),
        _gpu("h800", _H100_SXM_TFLOPS, 3.35, 80, 2.99, "pcie5-x16", "nvlink-h800", "nvidia",
             "NVIDIA H800 SXM5 product brief: H100 SXM compute (989.4 fp16/bf16, 1,978.9 fp8 dense "
             "TFLOPS), 80GB HBM3 at 3.35 TB/s, NVLink reduced to 400 GB/s bidirectional",
             chip="h800"),
        _gpu("h200", _H100_SXM_TFLOPS, 4.8, 141, 3.79, "pcie5-x16", "nvlink4", "nvidia",
             "NVIDIA H200 Tensor Core GPU datasheet (SXM): H100 SXM compute (989 fp16/bf16, "
             "1,979 fp8 "
             "dense TFLOPS); 141GB HBM3e at 4.8 TB/s; NVLink 900 GB/s; PCIe Gen5",
             chip="h200"),
        _gpu("h20", {"fp32": 44, "tf32": 74, "fp16": 148, "bf16": 148, "fp8": 296, "int8": 296},
             4.0, 96, 1.29, "pcie5-x16", "nvlink4", "nvidia",
             "NVIDIA HGX H20 product brief (as reported, best knowledge, not a public datasheet): "
             "148 fp16/bf16, 296 fp8/int8 dense TFLOPS, 44 fp32, 74 tf32; 96GB HBM3 at 4.0 TB/s; "
             "NVLink 900 GB/s; PCIe Gen5",
             chip="h20"),
        _gpu("a40", {"fp32": 37.4, "tf32": 74.8, "fp16": 149.7, "bf16": 149.7, "int8": 299.3},
             0.696, 48, 0.69, "pcie4-x16", "pcie4-x16", "nvidia",
             "NVIDIA A40 datasheet: 37.4 fp32, 74.8 tf32, 149.7 fp16/bf16 (dense, fp32 "
             "accumulate), "
             "299.3 int8 dense TOPS; 48GB GDDR6 at 696 GB/s; PCIe Gen4 (optional 112.5 GB/s NVLink "
             "bridge between pairs not assumed)",
             chip="a40"),
        _gpu("l40s", {"fp32": 91.6, "tf32": 183, "fp16": 362.05, "bf16": 362.05, "fp8": 733,
                      "int8": 733},
             0.864, 48, 0.99, "pcie4-x16", "pcie4-x16", "nvidia",
             "NVIDIA L40S datasheet: 91.6 fp32, 183 tf32, 362.05 fp16/bf16, 733 fp8/int8 dense "
             "TFLOPS (sparsity figures halved); 48GB GDDR6 at 864 GB/s; PCIe Gen4, no NVLink",
             chip="l40s"),
        _gpu("b200", {"fp32": 80, "tf32": 1100, "fp16": 2250, "bf16": 2250, "fp8": 4500,
                      "int8": 4500},
             8.0, 180, 4.99, "pcie5-x16", "nvlink5", "nvidia",
             "NVIDIA DGX B200 / HGX B200 datasheet: per GPU 2.25 PFLOPS fp16/bf16 and 4.5 PFLOPS "
             "fp8 dense (sparsity figures halved), tf32 1.1 PFLOPS dense, fp32 80 TFLOPS; HBM3e "
             "8 TB/s; 180GB per GPU in DGX/HGX B200 (1,440GB per 8 GPUs; the 192GB figure is the "
             "chip's physical HBM from early announcements); NVLink 5 1.8 TB/s",
             chip="b200"),
        _gpu("mi300x", {"fp32": 163.4, "tf32": 653.7, "fp16": 1307.4, "bf16": 1307.4, "fp8": 2614.9,
                        "int8": 2614.9},
             5.3, 192, 2.49, "pcie5-x16", "infinity-fabric-mi300x", "amd",
             "AMD Instinct MI300X data sheet: 163.4 fp32 (matrix), 653.7 tf32, 1,307.4 fp16/bf16, "
             "2,614.9 fp8/int8 dense TFLOPS; 192GB HBM3 at 5.3 TB/s; Infinity Fabric 896 GB/s; "
             "PCIe Gen5",
             chip="mi300x"),
    )
})

_GPU_ALIASES: Mapping[str, str] = types.MappingProxyType({
    # 'A100' is the 80 GB SXM4 part: the Vidur A100 profiles (../shared) were measured on it.
    "a100": "a100-80gb", "a100-sxm": "a100-80gb", "a100-sxm4-80gb": "a100-80gb",
    "a100-80g": "a100-80gb", "a100-40g": "a100-40gb", "a100-sxm4-40gb": "a100-40gb",
    "a800-80gb": "a800", "a800-sxm4-80gb": "a800",
    "h100": "h100-sxm", "h100-sxm5": "h100-sxm", "h100-80gb-hbm3": "h100-sxm",
    "h100-sxm5-80gb": "h100-sxm", "h100-pcie-80gb": "h100-pcie", "h800-sxm": "h800",
    "h200-sxm": "h200", "h20-96gb": "h20", "l40s-48gb": "l40s", "a40-48gb": "a40",
    "instinct-mi300x": "mi300x", "mi300": "mi300x",
})


def get_accelerator(name: str | Accelerator) -> Accelerator:
    """The catalog :class:`Accelerator` called ``name`` (an instance is returned unchanged).

    >>> get_accelerator("NVIDIA H100 80GB HBM3").name
    'h100-sxm'
    >>> get_accelerator("h10")
    Traceback (most recent call last):
    ...
    ValueError: Unknown accelerator 'h10'. Close matches: ...
    """
    return resolve_name("accelerator", name, ACCELERATORS, _GPU_ALIASES, Accelerator)

