from __future__ import annotations

import pytest

from schedlab import __version__
from schedlab.cli import main


def test_version_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"schedlab {__version__}"


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: schedlab" in capsys.readouterr().out


def test_lazy_public_names_resolve_to_their_modules() -> None:
    import schedlab
    import schedlab.sim

    assert schedlab.simulate is schedlab.sim.simulate
    assert set(schedlab.__all__) >= {"Workload", "simulate", "iteration_cost", "check_policy"}
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        schedlab.nope  # noqa: B018
