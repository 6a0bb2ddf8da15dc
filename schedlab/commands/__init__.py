"""The subcommands of the ``schedlab`` script, one module each (see :mod:`schedlab.cli`)."""

from __future__ import annotations

import argparse

__all__ = ["add_quiet"]


def add_quiet(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` for a command with long work. Without it, progress bars are drawn on stderr
    when stderr is a terminal and ``--json`` output is not redirected, and the first run says
    that it compiles the kernels."""
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress bars or notices on stderr")

