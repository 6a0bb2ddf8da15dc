"""Checks of the CLI's output paths, made before any work starts, so a bad ``-o`` or
``--plot-dir`` fails in a second with one line instead of a traceback after the run.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> output_file(d / "fit.json", "-o/--output").name
'fit.json'
>>> output_file(d, "-o/--output")
Traceback (most recent call last):
...
ValueError: -o/--output ...: is a directory; give a file name
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["output_dir", "output_file"]


def _first_existing(path: Path) -> Path:
    for parent in (path, *path.parents):
        if parent.exists():
            return parent
    return Path(".")


def output_file(path: str | Path, option: str, *, suffix: str = "") -> Path:
    """``path`` as the file an option writes (``suffix`` added when it has none): not a directory,
    and in a folder that exists or can be made. Raises ``ValueError`` naming the option."""
    p = Path(path)
    if suffix and not p.suffix:
        p = p.with_suffix(suffix)
    if p.is_dir():
        raise ValueError(f"{option} {str(p)!r}: is a directory; give a file name")
    base = _first_existing(p.parent)
    if not base.is_dir():
        raise ValueError(f"{option} {str(p)!r}: {str(base)!r} is a file, not a folder")
    return p


def output_dir(path: str | Path, option: str) -> Path:
    """``path`` as the folder an option writes into: not a file, and makeable."""
    p = Path(path)
    base = _first_existing(p)
    if not base.is_dir():
        raise ValueError(f"{option} {str(p)!r}: {str(base)!r} is a file, not a folder")
    return p
