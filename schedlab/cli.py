"""The ``schedlab`` console script.

Each subcommand lives in its own module under :mod:`schedlab.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` (called with the parsed args,
returning an exit code). Heavy libraries are imported inside the command functions, so
``schedlab --help`` stays fast. Help is plain text (:func:`plain` strips the docstrings' reST)
and an option's help may name a catalog, ``{policies}``, ``{routers}``, ``{placements}``,
``{models}``, ``{gpus}``, ``{traces}``, ``{papers}`` or ``{formats}``, which is filled in only when
help is shown
(:func:`names`).

>>> plain("Runs :mod:`schedlab.seeds` (``--all``) through :func:`~schedlab.sim.simulate`.")
'Runs schedlab.seeds (--all) through simulate.'
>>> "fcfs" in names("policies")
True

Every subcommand that reports results takes ``--json`` and then prints exactly one JSON document
on stdout.
"""

from __future__ import annotations

import argparse
import importlib
import os
import re
import sys
from collections.abc import Sequence

from schedlab._version import __version__

_ROLE = re.compile(r":[a-z]+:`(~?)([^`]+)`")


def plain(text: str) -> str:
    """``text`` with Sphinx roles and double backquotes removed (``~`` keeps the last part)."""
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    return text.replace("``", "").replace("::\n", ":\n")


def names(kind: str) -> list[str]:
    """The names of one catalog: ``policies``, ``routers``, ``placements``, ``models``,
    ``gpus``, ``traces``, ``papers`` or ``formats``."""
    if kind in ("policies", "routers", "placements"):
        from schedlab.policies import PLACEMENTS, REGISTRY, ROUTERS

        return sorted({"policies": REGISTRY, "routers": ROUTERS, "placements": PLACEMENTS}[kind])
    if kind == "models":
        from schedlab.costmodel.models import MODELS

        return sorted(MODELS)
    if kind == "gpus":
        from schedlab.costmodel.hardware import ACCELERATORS

        return sorted(ACCELERATORS)
    if kind == "traces":
        from schedlab.datasets.catalog import SHIPPED

        return sorted(SHIPPED)
    if kind == "papers":
        from schedlab.seeds.registry import seed_names

        return seed_names()
    if kind == "formats":
        from schedlab.datasets.formats import FORMATS

        return sorted(FORMATS)
    raise ValueError(f"Unknown catalog {kind!r}")


_KINDS = ("policies", "routers", "placements", "models", "gpus", "traces", "papers", "formats")


class _Formatter(argparse.HelpFormatter):
    """Fills ``{policies}`` and the like in an option's help with the catalog's names."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = super()._get_help_string(action)
        if text:
            for kind in _KINDS:
                if "{" + kind + "}" in text:
                    text = text.replace("{" + kind + "}", ", ".join(names(kind)))
        return text


class Parser(argparse.ArgumentParser):
    """The CLI's parsers: catalog names in option help, descriptions as plain text."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        if isinstance(kwargs.get("description"), str):
            kwargs["description"] = plain(str(kwargs["description"]))
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]


#: Subcommand modules, in the order ``--help`` lists them.
COMMAND_MODULES = ("reproduce", "simulate", "gap", "costmodel", "datasets", "sweep")


def build_parser() -> argparse.ArgumentParser:
    """The ``schedlab`` argument parser with every subcommand of :mod:`schedlab.commands`.

    >>> args = build_parser().parse_args(["costmodel", "report", "--json"])
    >>> args.json, callable(args.func)
    (True, True)
    """
    parser = Parser(
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


#: Commands whose work always runs the compiled kernels (``simulate`` says so itself, only when
#: its trace is large enough to compile for).
_COMPILING = ("reproduce", "gap")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``schedlab`` script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    # a command with long work takes --quiet; without it: progress bars and the compile notice
    loud = getattr(args, "quiet", True) is False
    if loud and args.command in _COMPILING:
        from schedlab.jit import announce_first_compile

        announce_first_compile(f"schedlab {args.command}")
    bars = (loud and sys.stderr.isatty()
            and not (getattr(args, "json", False) and not sys.stdout.isatty()))
    try:
        from schedlab.progress import showing_progress

        with showing_progress(bars):
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
