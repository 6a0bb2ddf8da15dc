"""The options of :func:`schedlab.datasets.load` as command-line flags, shared by every command
that reads a trace (``simulate``, ``datasets show``), so an error's advice can always be followed
from the shell.

``--columns`` takes the Python mapping as ``FIELD=COLUMN`` pairs separated by commas:

>>> parse_columns("arrival_s=ts, input_tokens=prompt,output_tokens=gen,feature.user=u")
{'arrival_s': 'ts', 'input_tokens': 'prompt', 'output_tokens': 'gen', 'feature.user': 'u'}
>>> parse_columns("arrival_s")
Traceback (most recent call last):
...
ValueError: --columns 'arrival_s': expected FIELD=COLUMN pairs separated by commas, e.g. ...
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["add_loader_arguments", "load_options", "parse_columns"]

_EXAMPLE = "arrival_s=ts,input_tokens=prompt,output_tokens=gen"


def parse_columns(text: str) -> dict[str, str]:
    """The ``columns`` mapping of :func:`~schedlab.datasets.load` from ``FIELD=COLUMN,...``."""
    pairs: dict[str, str] = {}
    for item in text.split(","):
        field, sep, column = item.partition("=")
        field, column = field.strip(), column.strip()
        if not sep or not field or not column:
            raise ValueError(f"--columns {text!r}: expected FIELD=COLUMN pairs separated by "
                             f"commas, e.g. {_EXAMPLE}")
        if field in pairs:
            raise ValueError(f"--columns {text!r}: the field {field!r} is given twice")
        pairs[field] = column
    return pairs


def add_loader_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--format``, ``--columns``, ``--time-unit``, ``--start-s``, ``--end-s``, ``--sort``,
    ``--skip-bad``, ``--zero-tokens``, ``--default-input-tokens`` and ``--block-tokens``."""
    g = parser.add_argument_group("reading the trace (the options of schedlab.datasets.load)")
    g.add_argument("--format", default=None,
                   help="file format: {formats} (default: inferred from the extension and header)")
    g.add_argument("--columns", default=None, metavar="FIELD=COLUMN,...",
                   help="for --format csv or jsonl: which column holds each field, e.g. "
                   f"{_EXAMPLE}; fields: arrival_s, input_tokens, output_tokens (required), "
                   "group_id, prefix_block_ids (JSONL), feature.NAME")
    g.add_argument("--time-unit", default="s", choices=("s", "ms", "us", "ns", "datetime"),
                   help="what the arrival_s column holds (with --columns; default s)")
    g.add_argument("--start-s", type=float, default=None,
                   help="keep requests from this time (s since the first timestamp)")
    g.add_argument("--end-s", type=float, default=None, help="keep requests before this time (s)")
    g.add_argument("--sort", action="store_true",
                   help="sort the requests by time instead of rejecting a timestamp that goes "
                   "backwards")
    g.add_argument("--skip-bad", action="store_true",
                   help="leave bad rows out (counted, with their lines) instead of failing")
    g.add_argument("--zero-tokens", choices=("error", "clip"), default="error",
                   help="a 0-token count: a bad row (default) or read as 1")
    g.add_argument("--default-input-tokens", type=int, default=1, metavar="N",
                   help="prompt length for formats without one (proxy-predictions; default 1)")
    g.add_argument("--block-tokens", type=int, default=None, metavar="N",
                   help="tokens per prefix block (default: the format's, Mooncake 512)")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of :func:`~schedlab.datasets.load_with_report` the flags ask for."""
    return dict(
        format=args.format,
        columns=parse_columns(args.columns) if args.columns is not None else None,
        time_unit=args.time_unit,
        start_s=args.start_s,
        end_s=args.end_s,
        sort=args.sort,
        on_error="skip" if args.skip_bad else "raise",
        zero_tokens=args.zero_tokens,
        default_input_tokens=args.default_input_tokens,
        block_tokens=args.block_tokens,
    )
