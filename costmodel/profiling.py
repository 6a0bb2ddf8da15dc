"""Read measured kernel timings in Vidur's profiling layout and map them onto our operators.

Layout (``PROFILE_DIR`` is any folder holding it):

* ``compute/<gpu>/**/mlp.csv``: one row per ``(num_tokens, num_tensor_parallel_workers)`` of a model
  shape (``n_head, n_kv_head, n_embd, n_expanded_embd, vocab_size, use_gated_mlp``); columns
  ``time_stats.<op>.median`` in milliseconds per layer, for the ops of :data:`COMPUTE_OPS`.
* ``network/<gpu>_dgx/`` (NVSwitch systems) and ``network/<gpu>_pairwise_nvlink/`` (NVLink pairs,
  PCIe between pairs): ``all_reduce.csv`` and ``send_recv.csv`` with ``time_stats.<op>.median``
  (ms), ``size`` (bytes), ``num_workers`` and ``devices_per_node``.

Each compute row becomes the :class:`~schedlab.costmodel.ops.OpCost` of its operator for that shape,
token count and tensor-parallel degree; each network row a collective over the link it crosses:
the accelerator's ``scale_up_link`` inside an NVSwitch node or an NVLink pair, its ``host_link``
(PCIe) for more than two devices of a pairwise-NVLink node, and ``scale_out_link`` (a NIC, by
one RDMA NIC per GPU, :func:`default_scale_out_link`) when ``num_workers > devices_per_node``.
Rows whose measured median is missing are counted in :attr:`Profile.skipped_rows`, never dropped
silently.

>>> import tempfile, os
>>> d = tempfile.mkdtemp()
>>> load_profile(d, "a100-80gb")
Traceback (most recent call last):
...
FileNotFoundError: no compute/<gpu>/**/mlp.csv or network/<gpu>_*/{all_reduce,send_recv}.csv
files for 'a100-80gb' under ...
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from schedlab.costmodel import ops
from schedlab.costmodel.hardware import Accelerator, get_accelerator, get_interconnect
from schedlab.costmodel.models import ModelSpec
from schedlab.errors import DataFormatError

__all__ = [
    "COMPUTE_OPS",
    "GEMM_OPS",
    "NETWORK_OPS",
    "Profile",
    "default_scale_out_link",
    "find_profile_files",
    "load_profile",
]

#: Measured compute ops and the function of :mod:`schedlab.costmodel.ops` that costs each.
COMPUTE_OPS = {
    "emb": lambda s, t, tp: ops.embedding(s, t, tp),
    "input_layernorm": lambda s, t, tp: ops.norm(s, t, "input_layernorm"),
    "attn_pre_proj": ops.qkv_proj,
    "attn_rope": ops.rope,
    "attn_post_proj": ops.o_proj,
    "post_attention_layernorm": lambda s, t, tp: ops.norm(s, t, "post_attention_layernorm"),
    "mlp_up_proj": ops.mlp_up,
    "mlp_act": ops.mlp_act,
    "mlp_down_proj": ops.mlp_down,
    "add": lambda s, t, tp: ops.residual_add(s, t),
}
#: The GEMMs among them.
GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
NETWORK_OPS = ("all_reduce", "send_recv")
_SHAPE = ("n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp",
          "num_tokens", "num_tensor_parallel_workers")
_NET = ("size", "num_workers", "devices_per_node")
_TOPOLOGIES = ("_dgx", "_pairwise_nvlink")


@dataclass(frozen=True, slots=True, kw_only=True)
class Profile:
    """Measured rows as columns. ``op`` names the measured op (:data:`COMPUTE_OPS` or
    :data:`NETWORK_OPS`); ``group`` the model folder (compute) or topology folder (network).

    Compute rows: ``kind``, ``flops``, ``nbytes``, ``rows``, ``kernels`` from the operator model.
    Network rows: ``kind`` is the collective, ``nbytes`` the message size, ``workers``,
    ``link_bytes_per_s``, ``link_latency_s`` and ``role`` (:data:`~roofline.LINK_ROLES`).
    """

    gpu: Accelerator
    op: np.ndarray
    group: np.ndarray
    kind: np.ndarray
    flops: np.ndarray
    nbytes: np.ndarray
    rows: np.ndarray
    kernels: np.ndarray
    workers: np.ndarray
    link_bytes_per_s: np.ndarray
    link_latency_s: np.ndarray
    role: np.ndarray
    measured_s: np.ndarray
    files: tuple[str, ...]
    skipped_rows: int

    @property
    def is_network(self) -> np.ndarray:
        """Boolean mask of the rows that are collectives (all-reduce, send/recv), not kernels."""
        return np.isin(self.op, NETWORK_OPS)

    def __len__(self) -> int:
        return int(self.op.shape[0])

    def take(self, mask: np.ndarray) -> Profile:
        """The rows where ``mask`` holds (e.g. one model's rows, for a held-out check)."""
        cols = {name: getattr(self, name)[mask] for name in _COLUMNS}
        return Profile(gpu=self.gpu, files=self.files, skipped_rows=self.skipped_rows, **cols)


_COLUMNS = ("op", "group", "kind", "flops", "nbytes", "rows", "kernels", "workers",
            "link_bytes_per_s", "link_latency_s", "role", "measured_s")


def _norm_name(name: str) -> str:
    return name.lower().replace("_", "-").replace(" ", "-")


def _matches_gpu(folder: str, gpu: Accelerator) -> bool:
    """Whether a profile folder name (``a100``, ``h100_sxm``) denotes ``gpu``."""
    try:
        if get_accelerator(folder).name == gpu.name:
            return True
    except ValueError:
        pass
    return gpu.name.startswith(_norm_name(folder))


def find_profile_files(profile_dir: str | Path, gpu: str | Accelerator
                       ) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The ``mlp.csv`` files and ``(csv, topology)`` network files for ``gpu`` under the folder."""
    root = Path(profile_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"profile directory {str(root)!r} does not exist")
    acc = get_accelerator(gpu)
    compute = []
    for folder in sorted(p for p in (root / "compute").glob("*") if p.is_dir()):
        if _matches_gpu(folder.name, acc):
            compute += sorted(folder.glob("**/mlp.csv"))
    network = []
    for folder in sorted(p for p in (root / "network").glob("*") if p.is_dir()):
        for topo in _TOPOLOGIES:
            if folder.name.endswith(topo) and _matches_gpu(folder.name[: -len(topo)], acc):
                network += [(folder / f"{op}.csv", topo) for op in NETWORK_OPS
                            if (folder / f"{op}.csv").is_file()]
    return compute, network


def _read_csv(path: Path, required: tuple[str, ...]) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise DataFormatError(str(path), 1, None, "empty file, expected a header") from None
        rows = list(reader)
    missing = [c for c in required if c not in header]
    if missing:
        raise DataFormatError(str(path), 1, missing[0], f"missing column(s) {missing}")
    return header, rows


def _column(path: Path, header: list[str], rows: list[list[str]], name: str, *,
            kind: str = "float") -> np.ndarray:
    j = header.index(name)
    out: list[bool | float] = []
    for i, row in enumerate(rows):
        text = row[j].strip() if j < len(row) else ""
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false", "1", "0"):
                    raise ValueError
                out.append(text.lower() in ("true", "1"))
            elif text == "" and kind == "float":
                out.append(np.nan)
            else:
                value = float(text)
                if kind == "int" and (value != int(value) or value < 1):
                    raise ValueError
                out.append(value)
        except ValueError:
            raise DataFormatError(str(path), i + 2, name,
                                  f"expected a {'positive int' if kind == 'int' else kind}, "
                                  f"got {text!r}") from None
    return np.asarray(out)


def _spec(path: Path, header: list[str], rows: list[list[str]]) -> tuple[ModelSpec, np.ndarray,
                                                                        np.ndarray]:
    shape = {c: _column(path, header, rows, c, kind="bool" if c == "use_gated_mlp" else "int")
             for c in _SHAPE}
    for c in _SHAPE[:6]:
        if np.unique(shape[c]).size != 1:
            raise DataFormatError(
                str(path), None, c, "the model shape must be the same on every row"
            )
    n_head, n_kv, n_embd = (int(shape[c][0]) for c in ("n_head", "n_kv_head", "n_embd"))
    if n_embd % n_head or n_head % n_kv:
        raise DataFormatError(str(path), 2, "n_head",
                              f"n_embd={n_embd}, n_head={n_head}, n_kv_head={n_kv} do not divide")
    spec = ModelSpec(
        name=path.parent.name, num_layers=1, hidden_size=n_embd, num_heads=n_head,
        num_kv_heads=n_kv, head_dim=n_embd // n_head, ffn_hidden=int(shape["n_expanded_embd"][0]),
        gated_mlp=bool(shape["use_gated_mlp"][0]), vocab_size=int(shape["vocab_size"][0]),
        max_context=int(max(shape["num_tokens"].max(), 1)), source=str(path),
    )
    return spec, shape["num_tokens"], shape["num_tensor_parallel_workers"].astype(np.int64)


def _compute_rows(path: Path) -> tuple[dict[str, list[Any]], int]:
    header, rows = _read_csv(path, _SHAPE)
    spec, tokens, tps = _spec(path, header, rows)
    out: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    skipped = 0
    present = [op for op in COMPUTE_OPS if f"time_stats.{op}.median" in header]
    if not present:
        raise DataFormatError(str(path), 1, "time_stats.<op>.median",
                              f"no measured op columns; expected some of {list(COMPUTE_OPS)}")
    for op in present:
        measured = _column(path, header, rows, f"time_stats.{op}.median") * 1e-3
        ok = np.isfinite(measured) & (measured > 0)
        skipped += int((~ok).sum())
        for tp in np.unique(tps[ok]):
            sel = ok & (tps == tp)
            cost = COMPUTE_OPS[op](spec, tokens[sel], int(tp))
            n = int(sel.sum())
            out["op"] += [op] * n
            out["group"] += [spec.name] * n
            out["kind"] += [cost.kind] * n
            out["flops"] += list(np.broadcast_to(cost.flops, (n,)))
            out["nbytes"] += list(np.broadcast_to(cost.bytes, (n,)))
            out["rows"] += list(np.broadcast_to(cost.rows, (n,)))
            out["kernels"] += [cost.kernels] * n
            out["workers"] += [int(tp)] * n
            out["link_bytes_per_s"] += [np.nan] * n
            out["link_latency_s"] += [np.nan] * n
            out["role"] += [""] * n
            out["measured_s"] += list(measured[sel])
    return out, skipped


def _network_rows(path: Path, topology: str, gpu: Accelerator, scale_out_link: str
                  ) -> tuple[dict[str, list[Any]], int]:
    op = path.stem
    col = f"time_stats.{op}.median"
    header, rows = _read_csv(path, (*_NET, col))
    size = _column(path, header, rows, "size")
    workers = _column(path, header, rows, "num_workers", kind="int").astype(np.int64)
    per_node = _column(path, header, rows, "devices_per_node", kind="int").astype(np.int64)
    measured = _column(path, header, rows, col) * 1e-3
    if np.any(size < 0) or np.any(~np.isfinite(size)):
        i = int(np.flatnonzero((size < 0) | ~np.isfinite(size))[0])
        raise DataFormatError(str(path), i + 2, "size", f"expected bytes >= 0, got {size[i]!r}")
    ok = np.isfinite(measured) & (measured > 0)
    links = {"scale_up": get_interconnect(gpu.scale_up_link),
             "host": get_interconnect(gpu.host_link),
             "scale_out": get_interconnect(scale_out_link)}
    role = np.where(workers > per_node, "scale_out",
                    np.where((topology == "_pairwise_nvlink") & (workers > 2), "host", "scale_up"))
    n = int(ok.sum())
    out: dict[str, list[Any]] = {
        "op": [op] * n,
        "group": [path.parent.name] * n,
        "kind": [op] * n,
        "flops": [0.0] * n,
        "nbytes": list(size[ok]),
        "rows": [np.nan] * n,
        "kernels": [1] * n,
        "workers": list(workers[ok]),
        "link_bytes_per_s": [links[r].bytes_per_s for r in role[ok]],
        "link_latency_s": [links[r].latency_s for r in role[ok]],
        "role": list(role[ok]),
        "measured_s": list(measured[ok]),
    }
    return out, int((~ok).sum())


def default_scale_out_link(gpu: str | Accelerator) -> str:
    """The NIC assumed between nodes: one RDMA NIC per GPU of the generation that matches the
    host PCIe (PCIe 4: 200 Gb/s ConnectX-6/HDR; PCIe 5: 400 Gb/s ConnectX-7/NDR).

    >>> default_scale_out_link("a100-80gb"), default_scale_out_link("h100-sxm")
    ('rdma-200g', 'rdma-400g')
    """
    host = get_interconnect(get_accelerator(gpu).host_link)
    return "rdma-400g" if host.bytes_per_s >= 60e9 else "rdma-200g"


def load_profile(profile_dir: str | Path, gpu: str | Accelerator, *,
                 scale_out_link: str | None = None) -> Profile:
    """Read every measured row for ``gpu`` under ``profile_dir`` into a :class:`Profile`.

    ``scale_out_link`` names the inter-node link (default :func:`default_scale_out_link`).

    Raises ``FileNotFoundError`` when the folder or its files are missing and
    :class:`~schedlab.errors.DataFormatError` (a ``ValueError``) naming file, line and field for a
    malformed CSV.
    """
    acc = get_accelerator(gpu)
    scale_out_link = get_interconnect(scale_out_link or default_scale_out_link(acc)).name
    compute, network = find_profile_files(profile_dir, acc)
    if not compute and not network:
        raise FileNotFoundError(
            f"no compute/<gpu>/**/mlp.csv or network/<gpu>_*/{{all_reduce,send_recv}}.csv files "
            f"for {acc.name!r} under {str(profile_dir)!r}"
        )
    cols: dict[str, list[Any]] = {c: [] for c in _COLUMNS}
    skipped = 0
    parts = [_compute_rows(p) for p in compute]
    parts += [_network_rows(p, topo, acc, scale_out_link) for p, topo in network]
    for part, sk in parts:
        skipped += sk
        for c in _COLUMNS:
            cols[c] += part[c]
    arrays = {c: np.asarray(v, dtype=object if c in ("op", "group", "kind", "role") else np.float64)
              for c, v in cols.items()}
    for c in ("op", "group", "kind", "role"):
        arrays[c] = arrays[c].astype(str)
    files = tuple(str(p) for p in compute) + tuple(str(p) for p, _ in network)
    return Profile(gpu=acc, files=files, skipped_rows=skipped, **arrays)
