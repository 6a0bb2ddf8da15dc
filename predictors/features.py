"""Feature matrices for output-length predictors, built from what a :class:`Workload` knows.

:func:`length_features` turns a workload into a float64 matrix ``X`` (one row per request) and
the list of its column names. It never reads ``output_tokens`` (the target), but it takes the
workload's own feature columns as they are: leave out, with ``columns``, any that is derived
from the output, such as the ``truncated`` flag of :func:`schedlab.datasets.rollout.rollout_batch`.

Columns, in this order (a column appears only where the workload has its source):

``input_tokens``
    the prompt length;
``log_input_tokens``
    ``log1p(input_tokens)`` (a linear model's friend; trees do not need it);
``group_size``, ``group_mean_input``, ``group_max_input``
    with ``group_id`` (RL rollout groups): how many requests share the request's group in this
    workload, and the mean and maximum prompt length of that group;
``feature.<key>``
    each of ``workload.features`` (the same names as :meth:`Workload.to_pandas`).

How a feature column becomes float64:

- bool, integer and float columns are cast (``True`` is 1.0); a NaN or an infinity raises
  ``ValueError`` naming the column;
- an object column whose every element is a real number (not a bool) is cast the same way;
- any other object, string or bytes column is *categorical*: each value ``v`` becomes the
  stable integer code ``zlib.crc32(str(v).encode("utf-8"))`` in ``[0, 2**32)`` (``bytes`` are
  decoded as UTF-8 first). The code depends on the value alone, not on the rows around it, so a
  model fitted on one workload reads the codes of another the same way, in every process (unlike
  Python's salted ``hash``). Codes are labels, not magnitudes: tree models split on them as
  values, which separates categories but orders them arbitrarily. Two values share a code only
  if their CRC-32s collide (about one pair in 2**32).

Example
-------
>>> from schedlab.records import Workload
>>> w = Workload(arrival_s=[0.0, 0.0, 1.0], input_tokens=[100, 300, 50],
...              output_tokens=[7, 9, 4], group_id=[0, 0, 1],
...              features={"task": ["math", "math", "code"]})
>>> X, names = length_features(w)
>>> names
['input_tokens', 'log_input_tokens', 'group_size', 'group_mean_input', 'group_max_input', \
'feature.task']
>>> X[:, [0, 2, 3, 4]].tolist()
[[100.0, 2.0, 200.0, 300.0], [300.0, 2.0, 200.0, 300.0], [50.0, 1.0, 50.0, 50.0]]
>>> bool(X[0, 5] == X[1, 5] != X[2, 5])
True
>>> length_features(w, columns=["input_tokens", "feature.task"])[1]
['input_tokens', 'feature.task']
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from numbers import Real

import numpy as np

from schedlab.errors import unknown_name_error
from schedlab.records import Workload

__all__ = ["length_features", "category_codes"]

_WHERE = "length_features"


def category_codes(values: Sequence[object] | np.ndarray) -> np.ndarray:
    """Stable float64 codes of categorical values: ``zlib.crc32`` of each value's ``str``.

    The code of a value is the same in every workload and every process (see the module
    docstring); ``bytes`` values are decoded as UTF-8 first, so ``b"a"`` and ``"a"`` agree.

    >>> category_codes(["math", "code", "math"]).tolist()
    [2837906509.0, 1997877400.0, 2837906509.0]
    """
    arr = np.asarray(values).ravel()
    if arr.dtype.kind == "U":
        texts = arr
    elif arr.dtype.kind == "S":
        texts = np.char.decode(arr, "utf-8", errors="replace")
    else:
        texts = np.array([_as_text(v) for v in arr], dtype=str)
    uniq, inverse = np.unique(texts, return_inverse=True)
    codes = np.array([zlib.crc32(str(u).encode("utf-8")) for u in uniq], dtype=np.float64)
    return codes[inverse.ravel()]


def _as_text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _numeric_column(key: str, values: np.ndarray) -> np.ndarray:
    col = values.astype(np.float64)
    bad = ~np.isfinite(col)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"The feature column {key!r} of {_WHERE} must be finite; "
            f"element {i} is {col[i].item()!r}."
        )
    return col


def _feature_column(key: str, values: np.ndarray) -> np.ndarray:
    kind = values.dtype.kind
    if kind in "biuf":
        return _numeric_column(key, values)
    if kind == "O" and all(
        isinstance(v, Real) and not isinstance(v, (bool, np.bool_)) for v in values
    ):
        return _numeric_column(key, values)
    if kind in "OUS":
        return category_codes(values)
    raise ValueError(
        f"The feature column {key!r} of {_WHERE} must be numeric, bool, string or object. "
        f"Got dtype {values.dtype}."
    )


def _group_stats(group_id: np.ndarray, inp: np.ndarray) -> dict[str, np.ndarray]:
    _, inv, counts = np.unique(group_id, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    gmax = np.zeros(counts.size)
    np.maximum.at(gmax, inv, inp)
    return {
        "group_size": counts[inv].astype(np.float64),
        "group_mean_input": (np.bincount(inv, inp) / counts)[inv],
        "group_max_input": gmax[inv],
    }


def length_features(
    workload: Workload, *, columns: Sequence[str] | None = None
) -> tuple[np.ndarray, list[str]]:
    """The float64 feature matrix of ``workload`` and its column names.

    Parameters
    ----------
    workload : the requests; see the module docstring for the columns built from it.
    columns : the names of the columns to keep, in this order (``None``: all available). An
        unknown name raises ``ValueError`` naming it and listing the known ones.

    Returns
    -------
    ``(X, names)``: ``X`` has shape ``(len(workload), len(names))``.

    >>> from schedlab.records import Workload
    >>> w = Workload(arrival_s=[0.0], input_tokens=[10], output_tokens=[1])
    >>> length_features(w, columns=["group_size"])
    Traceback (most recent call last):
    ...
    ValueError: Unknown feature column 'group_size'. Known: 'input_tokens', 'log_input_tokens'.
    """
    if not isinstance(workload, Workload):
        raise ValueError(
            f"The 'workload' parameter of {_WHERE} must be a Workload. "
            f"Got {type(workload).__name__} instead."
        )
    inp = workload.input_tokens.astype(np.float64)
    builders: dict[str, Callable[[], np.ndarray]] = {
        "input_tokens": lambda: inp,
        "log_input_tokens": lambda: np.log1p(inp),
    }
    stats: dict[str, np.ndarray] = {}
    if workload.group_id is not None:
        gid = workload.group_id

        def stat(name: str) -> Callable[[], np.ndarray]:
            def build() -> np.ndarray:
                if not stats:
                    stats.update(_group_stats(gid, inp))
                return stats[name]
            return build

        for name in ("group_size", "group_mean_input", "group_max_input"):
            builders[name] = stat(name)
    def feature(key: str, values: np.ndarray) -> Callable[[], np.ndarray]:
        return lambda: _feature_column(key, values)

    for key, values in workload.features.items():
        builders[f"feature.{key}"] = feature(key, values)
    if columns is None:
        names = list(builders)
    else:
        if isinstance(columns, str):
            raise ValueError(
                f"The 'columns' parameter of {_WHERE} must be a sequence of column names. "
                f"Got the string {columns!r}; use [{columns!r}]."
            )
        names = [str(c) for c in columns]
        for name in names:
            if name not in builders:
                raise unknown_name_error("feature column", name, builders)
    n = len(workload)
    X = np.empty((n, len(names)), dtype=np.float64)
    for j, name in enumerate(names):
        X[:, j] = builders[name]()
    return X, names
