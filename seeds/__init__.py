"""Seed-paper reproductions: each paper's claims, paper vs. measured.

One module per seed paper (``fastserve.py``, ...) exposes ``PAPER`` (its name), ``CLAIMS``
(:class:`Claim` records: metric, baseline, the paper's number and where it says so) and
``run(*, quick=False, plot_dir=None, seed=0) -> SeedReport``, which reproduces the paper's
headline experiment on schedlab's cost models, datasets and simulator. :mod:`.registry` finds the
modules; ``schedlab reproduce [PAPER ... | --all] [--json]`` runs them. Nothing in schedlab imports
this package: it sits on top of everything else.

>>> from schedlab.seeds import Claim
>>> Claim(name="c", metric="m", baseline="b", paper_value=2.0, unit="x", source="s").holds(1.5)
True
"""

from schedlab.seeds.contract import Claim, ClaimResult, SeedReport

__all__ = ["Claim", "ClaimResult", "SeedReport"]
