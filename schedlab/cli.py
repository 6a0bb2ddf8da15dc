"""The ``schedlab`` console script.

Each subcommand lives in its own module under :mod:`schedlab.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code). Heavy libraries are imported inside the command functions, so
``schedlab --help`` stays fast. Every subcommand that reports results takes ``--json`` and then
prints exactly one JSON document on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from schedlab._version import __version__

#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("reproduce", "simulate", "gap", "costmodel", "datasets")


def build_parser() -> argparse.ArgumentParser:
    """The ``schedlab`` argument parser with every subcommand of :mod:`schedlab.commands`.

    >>> args = build_parser().parse_args(["costmodel", "report", "--json"])
    >>> args.json, callable(args.func)
    (True, True)
    """
    parser = argparse.ArgumentParser(
        prog="schedlab",
        description="Scheduling policies, cost models, simulator and optimal baselines for LLM "
        "serving, RL rollout and vector search.",
    )
    parser.add_argument("--version", action="version", version=f"schedlab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"schedlab.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"schedlab.commands.{name}":
                continue  # command not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``schedlab`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:  # stdout closed early (``| head``): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, OSError) as exc:
        print(f"schedlab {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"schedlab {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
