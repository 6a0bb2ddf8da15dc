"""Leaf records shared by every layer: the columnar :class:`Workload`.

Per-request data is columnar numpy (read-only arrays), never a list of objects. Units live in the
field names, SI base units (seconds, tokens, bytes).

Example
-------
>>> import numpy as np
>>> w = Workload(arrival_s=[0.0, 0.5, 1.0], input_tokens=[100, 20, 300], output_tokens=[10, 5, 1])
>>> len(w), int(w.input_tokens.sum()), w.request_id.tolist()
(3, 420, [0, 1, 2])
>>> w2 = Workload.from_pandas(w.to_pandas())
>>> bool(np.array_equal(w2.arrival_s, w.arrival_s))
True
>>> w.input_tokens[0] = 5
Traceback (most recent call last):
...
ValueError: assignment destination is read-only
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from schedlab.errors import check_array, check_nonneg_int, check_positive_int

if TYPE_CHECKING:  # pandas loads on first use only
    import pandas as pd

__all__ = ["MAX_TIME_S", "MAX_TOKENS", "Workload", "PrefixBlocks"]

_WHERE = "Workload"

#: The largest token count a request may have (prompt or output): 2**31 - 1, so that every sum
#: and KV-byte product the simulator forms stays far inside int64. Loaders, the Workload and the
#: simulator refuse larger counts with the field (and, for files, the line) named.
MAX_TOKENS = 2**31 - 1
#: The latest arrival time, in seconds (about 317 years: epoch timestamps fit). Beyond it float64
#: time cannot resolve a microsecond-scale iteration, so a request would "complete" in 0 s.
MAX_TIME_S = 1e10


def _readonly(a: np.ndarray) -> np.ndarray:
    a.flags.writeable = False
    return a


@dataclass(frozen=True, slots=True)
class PrefixBlocks:
    """Ragged per-request prefix block ids in CSR form (for prefix caching).

    Request ``i`` owns ``ids[offsets[i]:offsets[i + 1]]``. Block ids are opaque int64 keys: two
    requests that share an id can share that block's KV cache.

    >>> pb = PrefixBlocks.from_lists([[0, 1], [], [0, 2, 3]])
    >>> pb[2].tolist(), len(pb)
    ([0, 2, 3], 3)
    """

    ids: np.ndarray
    offsets: np.ndarray

    def __post_init__(self) -> None:
        ids = check_array(self.ids, "prefix_block_ids.ids", _WHERE, dtype=np.int64, integer=True)
        off = check_array(
            self.offsets, "prefix_block_ids.offsets", _WHERE,
            dtype=np.int64, integer=True, min_value=0,
        )
        if off.size == 0 or off[0] != 0 or off[-1] != ids.size or np.any(np.diff(off) < 0):
            raise ValueError(
                "The 'prefix_block_ids' parameter of Workload must be CSR: offsets start at 0, "
                f"never decrease and end at len(ids)={ids.size}. Got offsets {off[:5].tolist()}..."
            )
        object.__setattr__(self, "ids", ids)
        object.__setattr__(self, "offsets", off)

    @classmethod
    def from_lists(cls, lists: list[list[int]] | list[np.ndarray]) -> PrefixBlocks:
        """Build from one list of block ids per request."""
        lens = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
        offsets = np.zeros(len(lists) + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        ids = (
            np.concatenate([np.asarray(x, dtype=np.int64) for x in lists])
            if offsets[-1]
            else np.zeros(0, dtype=np.int64)
        )
        return cls(ids=ids, offsets=offsets)

    def __len__(self) -> int:
        return int(self.offsets.size - 1)

    def __getitem__(self, i: int) -> np.ndarray:
        return self.ids[self.offsets[i] : self.offsets[i + 1]]

    def counts(self) -> np.ndarray:
        """Number of blocks of each request."""
        return np.diff(self.offsets)

    def take(self, index: np.ndarray) -> PrefixBlocks:
        """The blocks of the requests at ``index`` (in that order)."""
        index = np.asarray(index, dtype=np.int64)
        starts, ends = self.offsets[index], self.offsets[index + 1]
        lens = ends - starts
        offsets = np.zeros(index.size + 1, dtype=np.int64)
        np.cumsum(lens, out=offsets[1:])
        if offsets[-1] == 0:
            return PrefixBlocks(ids=np.zeros(0, dtype=np.int64), offsets=offsets)
        pos = np.repeat(starts - offsets[:-1], lens) + np.arange(offsets[-1])
        return PrefixBlocks(ids=self.ids[pos], offsets=offsets)


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    """A set of requests as read-only numpy columns, sorted by arrival time.

    Parameters
    ----------
    arrival_s : arrival time of each request in seconds (finite, in [0, :data:`MAX_TIME_S`],
        non-decreasing).
    input_tokens : prompt length in tokens (integer in [1, :data:`MAX_TOKENS`]).
    output_tokens : tokens to generate (integer in [1, :data:`MAX_TOKENS`]; the first is
        produced by the prefill).
    request_id : unique int64 ids; default ``0..n-1``.
    group_id : optional RL rollout group of each request (int64, >= 0).
    prefix_block_ids : optional :class:`PrefixBlocks` (ragged block hashes for prefix caching).
    block_tokens : tokens per prefix block (Mooncake uses 512).
    slo_ttft_s, slo_tpot_s : optional per-request latency targets in seconds (> 0).
    features : free-form numeric or string columns for predictors, each of length n.
    name : a label for reports.
    """

    arrival_s: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    request_id: np.ndarray | None = None
    group_id: np.ndarray | None = None
    prefix_block_ids: PrefixBlocks | None = None
    block_tokens: int = 512
    slo_ttft_s: np.ndarray | None = None
    slo_tpot_s: np.ndarray | None = None
    features: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str = "workload"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        arrival = check_array(self.arrival_s, "arrival_s", _WHERE, min_value=0.0,
                              max_value=MAX_TIME_S)
        n = arrival.shape[0]
        if n and np.any(np.diff(arrival) < 0):
            i = int(np.flatnonzero(np.diff(arrival) < 0)[0]) + 1
            raise ValueError(
                f"The 'arrival_s' parameter of Workload must be non-decreasing; element {i} "
                f"({arrival[i]!r}) comes before element {i - 1} ({arrival[i - 1]!r}). "
                "Sort the requests first (Workload.sorted_by_arrival)."
            )
        set_(self, "arrival_s", arrival)
        for col in ("input_tokens", "output_tokens"):
            set_(
                self,
                col,
                check_array(
                    getattr(self, col), col, _WHERE,
                    dtype=np.int64, integer=True, min_value=1, length=n, max_value=MAX_TOKENS,
                ),
            )
        if self.request_id is None:
            set_(self, "request_id", _readonly(np.arange(n, dtype=np.int64)))
        else:
            rid = check_array(
                self.request_id, "request_id", _WHERE, dtype=np.int64, integer=True, length=n
            )
            if np.unique(rid).size != n:
                raise ValueError("The 'request_id' parameter of Workload must hold unique ids.")
            set_(self, "request_id", rid)
        if self.group_id is not None:
            set_(
                self,
                "group_id",
                check_array(
                    self.group_id, "group_id", _WHERE,
                    dtype=np.int64, integer=True, min_value=0, length=n,
                ),
            )
        for col in ("slo_ttft_s", "slo_tpot_s"):
            v = getattr(self, col)
            if v is not None:
                a = check_array(v, col, _WHERE, length=n)
                if np.any(a <= 0):
                    raise ValueError(f"The {col!r} parameter of Workload must be > 0.")
                set_(self, col, a)
        if self.prefix_block_ids is not None:
            pb = self.prefix_block_ids
            if not isinstance(pb, PrefixBlocks):
                pb = PrefixBlocks.from_lists(list(pb))
            if len(pb) != n:
                raise ValueError(
                    f"The 'prefix_block_ids' parameter of Workload must have {n} rows. "
                    f"Got {len(pb)}."
                )
            set_(self, "prefix_block_ids", pb)
        set_(self, "block_tokens", check_positive_int(self.block_tokens, "block_tokens", _WHERE))
        feats: dict[str, np.ndarray] = {}
        for key, val in dict(self.features).items():
            a = np.array(val, copy=True)
            if a.ndim != 1 or a.shape[0] != n:
                raise ValueError(
                    f"Feature column {key!r} of Workload must have shape ({n},). Got {a.shape}."
                )
            feats[str(key)] = _readonly(a)
        set_(self, "features", feats)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return int(self.arrival_s.shape[0])

    @property
    def total_tokens(self) -> np.ndarray:
        """``input_tokens + output_tokens`` per request."""
        return self.input_tokens + self.output_tokens

    @property
    def duration_s(self) -> float:
        """Time from the first to the last arrival (0 for fewer than two requests)."""
        return float(self.arrival_s[-1] - self.arrival_s[0]) if len(self) > 1 else 0.0

    def take(self, index: np.ndarray | slice) -> Workload:
        """The requests at ``index`` (an index array, boolean mask or slice), arrival order kept."""
        idx = np.arange(len(self))[index] if not isinstance(index, np.ndarray) else index
        idx = np.asarray(idx)
        if idx.dtype == bool:
            idx = np.flatnonzero(idx)
        idx = np.sort(idx.astype(np.int64))

        def opt(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return Workload(
            arrival_s=self.arrival_s[idx],
            input_tokens=self.input_tokens[idx],
            output_tokens=self.output_tokens[idx],
            request_id=opt(self.request_id),  # never None: __post_init__ fills it in
            group_id=opt(self.group_id),
            prefix_block_ids=(
                None if self.prefix_block_ids is None else self.prefix_block_ids.take(idx)
            ),
            block_tokens=self.block_tokens,
            slo_ttft_s=opt(self.slo_ttft_s),
            slo_tpot_s=opt(self.slo_tpot_s),
            features={k: v[idx] for k, v in self.features.items()},
            name=self.name,
        )

    def head(self, n: int) -> Workload:
        """The first ``n`` requests (all of them when ``n >= len(self)``).

        >>> w = Workload(arrival_s=[0.0, 1.0, 2.0], input_tokens=[5, 6, 7], output_tokens=[1, 1, 1])
        >>> w.head(2).input_tokens.tolist(), len(w.head(10))
        ([5, 6], 3)
        """
        return self.take(slice(0, check_nonneg_int(n, "n", "Workload.head")))

    def replace(self, **changes: Any) -> Workload:
        """A copy with some fields replaced (validated again).

        >>> w = Workload(arrival_s=[0.0, 1.0], input_tokens=[5, 6], output_tokens=[1, 1])
        >>> w.replace(name="half").name, w.replace(output_tokens=[2, 3]).output_tokens.tolist()
        ('half', [2, 3])
        """
        names = [f.name for f in fields(self)]
        unknown = sorted(set(changes) - set(names))
        if unknown:
            raise ValueError(
                f"Workload.replace got unknown fields {unknown}; the fields are {names}."
            )
        return Workload(**{k: changes.get(k, getattr(self, k)) for k in names})

    @classmethod
    def sorted_by_arrival(cls, **columns: Any) -> Workload:
        """Build a workload from unsorted columns, each sorted by ``arrival_s`` (stable).

        >>> w = Workload.sorted_by_arrival(arrival_s=[2.0, 0.0], input_tokens=[5, 6],
        ...                                output_tokens=[1, 2])
        >>> w.arrival_s.tolist(), w.input_tokens.tolist(), w.request_id.tolist()
        ([0.0, 2.0], [6, 5], [0, 1])
        """
        if "arrival_s" not in columns:
            raise ValueError("Workload.sorted_by_arrival needs an 'arrival_s' column to sort by.")
        arrival = check_array(columns["arrival_s"], "arrival_s", _WHERE, min_value=0.0)
        order = np.argsort(arrival, kind="stable")
        out: dict[str, Any] = {}
        for k, v in columns.items():
            if v is None or k in ("block_tokens", "name"):
                out[k] = v
            elif k == "prefix_block_ids":
                pb = v if isinstance(v, PrefixBlocks) else PrefixBlocks.from_lists(list(v))
                out[k] = pb.take(order)
            elif k == "features":
                out[k] = {fk: np.asarray(fv)[order] for fk, fv in dict(v).items()}
            else:
                out[k] = np.asarray(v)[order]
        return cls(**out)

    # ------------------------------------------------------------------ pandas
    def to_pandas(self) -> pd.DataFrame:
        """One row per request; prefix blocks as a column of int64 arrays."""
        import pandas as pd

        data: dict[str, Any] = {
            "request_id": self.request_id,
            "arrival_s": self.arrival_s,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        if self.group_id is not None:
            data["group_id"] = self.group_id
        if self.slo_ttft_s is not None:
            data["slo_ttft_s"] = self.slo_ttft_s
        if self.slo_tpot_s is not None:
            data["slo_tpot_s"] = self.slo_tpot_s
        if self.prefix_block_ids is not None:
            pb = self.prefix_block_ids
            data["prefix_block_ids"] = [pb[i] for i in range(len(pb))]
        for k, v in self.features.items():
            data[f"feature.{k}"] = v
        df = pd.DataFrame(data)
        df.attrs["name"] = self.name
        df.attrs["block_tokens"] = self.block_tokens
        return df

    @classmethod
    def from_pandas(cls, df: pd.DataFrame, *, name: str | None = None) -> Workload:
        """Inverse of :meth:`to_pandas`; columns ``feature.X`` become features."""
        missing = [c for c in ("arrival_s", "input_tokens", "output_tokens") if c not in df.columns]
        if missing:
            raise ValueError(
                f"Workload.from_pandas needs columns {missing}; the frame has {list(df.columns)}."
            )

        def col(c: str) -> np.ndarray | None:
            return df[c].to_numpy() if c in df.columns else None

        def required(c: str) -> np.ndarray:
            return df[c].to_numpy()  # present: checked above

        pb = None
        if "prefix_block_ids" in df.columns:
            pb = PrefixBlocks.from_lists(
                [np.asarray(x, dtype=np.int64) for x in df["prefix_block_ids"]]
            )
        return cls(
            arrival_s=required("arrival_s"),
            input_tokens=required("input_tokens"),
            output_tokens=required("output_tokens"),
            request_id=col("request_id"),
            group_id=col("group_id"),
            prefix_block_ids=pb,
            block_tokens=int(df.attrs.get("block_tokens", 512)),
            slo_ttft_s=col("slo_ttft_s"),
            slo_tpot_s=col("slo_tpot_s"),
            features={
                c[len("feature.") :]: df[c].to_numpy()
                for c in df.columns
                if c.startswith("feature.")
            },
            name=name or str(df.attrs.get("name", "workload")),
        )
