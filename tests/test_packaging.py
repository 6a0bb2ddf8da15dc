"""Packaging a user meets first: the licence field setuptools keeps accepting, and the files the
quick start and the CLI write are ignored by git."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_licence_is_an_spdx_expression_not_the_deprecated_table() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r'^license = "Apache-2.0"$', text, flags=re.M)
    assert "license = {" not in text
    # the SPDX form needs setuptools >= 77 to build
    assert re.search(r'"setuptools>=(\d+)', text) and int(
        re.search(r'"setuptools>=(\d+)', text).group(1)) >= 77


def test_outputs_of_the_quick_start_and_the_cli_are_ignored_by_git() -> None:
    ignored = (ROOT / ".gitignore").read_text(encoding="utf-8").split()
    for path in ("schedlab-out/", "calibration.json", ".venv/"):
        assert path in ignored, path
