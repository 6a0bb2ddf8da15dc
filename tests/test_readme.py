"""The README's Python examples run as written (in order, sharing one namespace)."""

from __future__ import annotations

import re

import pytest
from conftest import ROOT

README = ROOT / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_python_examples() -> None:
    assert len(_python_blocks()) >= 4


def test_readme_python_examples_run(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(_python_blocks()):
        try:
            exec(compile(block, f"README.md python block {i}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"README python block {i} failed: {exc!r}\n{block}")


def test_quick_start_matches_ci() -> None:
    text = README.read_text(encoding="utf-8")
    quick = re.search(r"## Quick start.*?```bash\n(.*?)```", text, flags=re.S).group(1).split("\n")
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    *setup, test = [line for line in quick if line.strip()]
    for line in setup:
        for part in line.split(" && "):
            assert part.strip() in ci, f"CI does not run the quick start's {part!r}"
    assert test.strip() == "pytest" and "\npytest\n" in ci
