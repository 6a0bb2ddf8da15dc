"""Errors and argument checks shared by every layer of schedlab.

All bad input at a public boundary raises :class:`ValueError` (or a subclass) whose message names
the parameter, the function, what was expected and what was received, in the style of scikit-learn::

    The 'token_budget' parameter of chunked_prefill must be an int in [1, inf). Got 0 instead.

Example
-------
>>> check_positive_int(4, "batch_size", "simulate")
4
>>> check_positive_int(0, "batch_size", "simulate")
Traceback (most recent call last):
...
ValueError: The 'batch_size' parameter of simulate must be an int in [1, inf). Got 0 instead.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Integral, Real
from typing import Any

import numpy as np

__all__ = [
    "SchedlabError",
    "SimulationStalled",
    "DataFormatError",
    "check_positive_int",
    "check_nonneg_int",
    "check_positive_float",
    "check_nonneg_float",
    "check_fraction",
    "check_array",
    "check_instance",
    "unknown_name_error",
]


class SchedlabError(Exception):
    """Base class of schedlab's own run-time errors (not input validation)."""


class SimulationStalled(SchedlabError, RuntimeError):
    """A simulation stopped making progress; the message names the stuck requests."""


class DataFormatError(ValueError):
    """A data file is malformed. The message names the file, the line and the field."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str):
        self.path, self.line, self.field = str(path), line, field
        where = f"{path}"
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


def _range_error(name: str, where: str, expected: str, value: object) -> ValueError:
    return ValueError(
        f"The {name!r} parameter of {where} must be {expected}. Got {value!r} instead."
    )


def _int_at_least(value: object, low: int, name: str, where: str) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Integral) or value < low:
        raise _range_error(name, where, f"an int in [{low}, inf)", value)
    return int(value)


def check_positive_int(value: object, name: str, where: str) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` unless it is an integer >= 1."""
    return _int_at_least(value, 1, name, where)


def check_nonneg_int(value: object, name: str, where: str) -> int:
    """Return ``value`` as an int, or raise ``ValueError`` unless it is an integer >= 0.

    >>> check_nonneg_int(True, "k", "f")
    Traceback (most recent call last):
    ...
    ValueError: The 'k' parameter of f must be an int in [0, inf). Got True instead.
    """
    return _int_at_least(value, 0, name, where)


def _real(value: object) -> float | None:
    if type(value) is float:  # the common case, without the slower abstract-class checks
        return None if math.isnan(value) else value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
        return None
    v = float(value)
    return None if math.isnan(v) else v


def _float_above(value: object, name: str, where: str, *, open_low: bool, allow_inf: bool) -> float:
    v = _real(value)
    if v is None or (v <= 0 if open_low else v < 0) or (math.isinf(v) and not allow_inf):
        low, high = "(0" if open_low else "[0", "inf]" if allow_inf else "inf)"
        raise _range_error(name, where, f"a float in {low}, {high}", value)
    return v


def check_positive_float(value: object, name: str, where: str, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it is a real number > 0.

    >>> check_positive_float(float("nan"), "rate_per_s", "poisson_arrivals")
    Traceback (most recent call last):
    ...
    ValueError: The 'rate_per_s' parameter of poisson_arrivals must be a float in (0, inf).
    Got nan instead.
    """
    return _float_above(value, name, where, open_low=True, allow_inf=allow_inf)


def check_nonneg_float(value: object, name: str, where: str, *, allow_inf: bool = False) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it is a real number >= 0."""
    return _float_above(value, name, where, open_low=False, allow_inf=allow_inf)


def check_fraction(value: object, name: str, where: str, *, open_low: bool = True) -> float:
    """Return ``value`` as a float, or raise ``ValueError`` unless it lies in (0, 1] (or [0, 1]).

    >>> check_fraction(0.0, "eff", "Efficiency", open_low=False)
    0.0
    """
    v = _real(value)
    if v is None or (v <= 0 if open_low else v < 0) or v > 1:
        raise _range_error(name, where, f"a float in {'(0' if open_low else '[0'}, 1]", value)
    return v


def check_array(
    values: object,
    name: str,
    where: str,
    *,
    dtype: type | np.dtype = np.float64,
    ndim: int = 1,
    min_value: float | None = None,
    integer: bool = False,
    allow_nan: bool = False,
    length: int | None = None,
    max_value: float | None = None,
) -> np.ndarray:
    """Convert ``values`` to a numpy array and check it, naming the first bad element.

    Returns a new read-only array of ``dtype``. Raises ``ValueError`` on NaN or infinity (unless
    ``allow_nan``), values below ``min_value`` or above ``max_value``, non-integers when
    ``integer``, or a wrong shape.

    >>> check_array([1, 2], "input_tokens", "Workload", dtype=np.int64, min_value=0).tolist()
    [1, 2]
    >>> check_array([1, -2], "input_tokens", "Workload", min_value=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'input_tokens' parameter of Workload must be >= 0; element 1 is -2.0.
    """
    if integer and isinstance(values, np.ndarray) and values.dtype.kind in "iu" and np.can_cast(
        values.dtype, dtype, "safe"
    ):
        # Fast path: an integer array needs no float round trip (finite and whole by type).
        return _check_integer_array(values, name, where, dtype, ndim, min_value, length,
                                    max_value)
    try:
        arr = np.asarray(values, dtype=np.float64 if integer else dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"The {name!r} parameter of {where} must be numeric. Got {type(values).__name__}: {exc}"
        ) from None
    _check_shape(arr, name, where, ndim, length)
    if arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if allow_nan:
            bad &= ~np.isnan(arr)
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            raise ValueError(
                f"The {name!r} parameter of {where} must be finite; "
                f"element {i} is {arr.ravel()[i].item()!r}."
            )
    _check_min(arr, name, where, min_value)
    _check_max(arr, name, where, max_value)
    if integer:
        frac = arr != np.round(arr)
        if frac.any():
            i = int(np.flatnonzero(frac.ravel())[0])
            raise ValueError(
                f"The {name!r} parameter of {where} must hold integers; "
                f"element {i} is {arr.ravel()[i].item()!r}."
            )
        if np.dtype(dtype).kind in "iu":
            info = np.iinfo(dtype)
            # float(max) + 1 is the exact power of two where the range ends (float(max) rounds up).
            outside = (arr < float(info.min)) | (arr >= float(info.max) + 1.0)
            if outside.any():
                i = int(np.flatnonzero(outside.ravel())[0])
                raise ValueError(
                    f"The {name!r} parameter of {where} must fit in {np.dtype(dtype).name}; "
                    f"element {i} is {arr.ravel()[i].item()!r}."
                )
        arr = arr.astype(dtype)
    else:
        arr = np.array(arr, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


def _check_shape(arr: np.ndarray, name: str, where: str, ndim: int, length: int | None) -> None:
    if arr.ndim != ndim:
        raise ValueError(
            f"The {name!r} parameter of {where} must be {ndim}-dimensional. Got shape {arr.shape}."
        )
    if length is not None and arr.shape[0] != length:
        raise ValueError(
            f"The {name!r} parameter of {where} must have length {length}. Got {arr.shape[0]}."
        )


def _check_min(arr: np.ndarray, name: str, where: str, min_value: float | None) -> None:
    if min_value is None:
        return
    below = arr < min_value
    if below.any():
        i = int(np.flatnonzero(below.ravel())[0])
        raise ValueError(
            f"The {name!r} parameter of {where} must be >= {min_value}; "
            f"element {i} is {arr.ravel()[i].item()!r}."
        )


def _check_max(arr: np.ndarray, name: str, where: str, max_value: float | None) -> None:
    if max_value is None:
        return
    above = arr > max_value
    if above.any():
        i = int(np.flatnonzero(above.ravel())[0])
        limit = (f"{max_value:,.0f}" if float(max_value).is_integer() and max_value < 1e15
                 else f"{max_value:g}")
        raise ValueError(
            f"The {name!r} parameter of {where} must be <= {limit}; "
            f"element {i} is {arr.ravel()[i].item()!r}."
        )


def _check_integer_array(
    values: np.ndarray,
    name: str,
    where: str,
    dtype: type | np.dtype,
    ndim: int,
    min_value: float | None,
    length: int | None,
    max_value: float | None = None,
) -> np.ndarray:
    """:func:`check_array` for an array whose integer dtype casts safely to ``dtype``."""
    _check_shape(values, name, where, ndim, length)
    if min_value is not None and np.any(values < min_value):
        # Report the bad element as the float path does, so the message does not hang on the dtype.
        _check_min(values.astype(np.float64), name, where, min_value)
    if max_value is not None and np.any(values > max_value):
        _check_max(values.astype(np.float64), name, where, max_value)
    arr = np.array(values, dtype=dtype, copy=True)
    arr.flags.writeable = False
    return arr


def check_instance(value: object, cls: type, name: str, where: str) -> None:
    """Raise ``ValueError`` unless ``value`` is an instance of ``cls``.

    >>> check_instance([1], dict, "config", "from_hf_config")
    Traceback (most recent call last):
    ...
    ValueError: The 'config' parameter of from_hf_config must be a dict. Got list instead.
    """
    if not isinstance(value, cls):
        article = "an" if cls.__name__[0] in "AEIOU" else "a"
        raise ValueError(
            f"The {name!r} parameter of {where} must be {article} {cls.__name__}. "
            f"Got {type(value).__name__} instead."
        )


def _close_matches(name: str, known: list[str]) -> str:
    """`` Close matches: 'a', 'b'.`` for the names of ``known`` close to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
    return " Close matches: " + ", ".join(repr(c) for c in close) + "." if close else ""


def unknown_name_error(kind: str, name: str, known: Iterable[str]) -> ValueError:
    """Build the ``ValueError`` for an unknown catalog or registry name, listing close matches.

    >>> str(unknown_name_error("GPU", "h10", ["h100-sxm", "a100-80gb"]))
    "Unknown GPU 'h10'. Close matches: 'h100-sxm'. Known: 'a100-80gb', 'h100-sxm'."
    """
    known = sorted(known)
    msg = f"Unknown {kind} {name!r}." + _close_matches(str(name).lower(), known)
    msg += " Known: " + ", ".join(repr(k) for k in known) + "."
    return ValueError(msg)


def check_keyword_params(fn: Callable[..., Any], params: Mapping[str, Any], what: str) -> None:
    """Raise ``ValueError`` naming ``what`` (e.g. ``"policy 'vllm'"``) when ``params`` holds a
    keyword ``fn`` does not take (``fn``'s first parameter, the view, is not a keyword); a
    function taking ``**kwargs``, or one whose signature cannot be read, takes anything.

    >>> def vllm(view, /, *, watermark=0.01): ...
    >>> check_keyword_params(vllm, {"watermrk": 0.1}, "policy 'vllm'")
    Traceback (most recent call last):
    ...
    ValueError: policy 'vllm' has no parameter 'watermrk'. Close matches: 'watermark'. Its ...
    """
    import inspect

    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return
    ps = list(sig.parameters.values())
    if any(p.kind is p.VAR_KEYWORD for p in ps):
        return
    known = [p.name for p in ps[1:] if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in params:
        if key not in known:
            raise ValueError(
                f"{what} has no parameter {key!r}." + _close_matches(str(key), known)
                + (" Its parameters: " + ", ".join(map(repr, known)) + "." if known
                   else " It takes no parameters.")
            )
