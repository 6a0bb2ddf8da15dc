"""schedlab: scheduling policies for LLM serving, RL rollout and vector search.

The public face is kept short and light: heavy libraries (OR-Tools, LightGBM, matplotlib, pandas)
load on first use, so ``import schedlab`` stays fast.

>>> import schedlab
>>> w = schedlab.Workload(arrival_s=[0.0, 1.0], input_tokens=[8, 16], output_tokens=[4, 2])
>>> len(w)
2
"""

from schedlab._version import __version__
from schedlab.records import PrefixBlocks, Workload

__all__ = ["__version__", "Workload", "PrefixBlocks"]
