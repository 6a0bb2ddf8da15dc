"""Cost models: hardware and model catalogs, per-operator FLOPs and bytes, a roofline with
size-dependent efficiencies, closed-form iteration costs for the simulator, and calibration
against measured kernels.

>>> from schedlab.costmodel import iteration_cost
>>> cost = iteration_cost("llama-2-7b", "a100-80gb")
>>> cost.kv_bytes_per_token   # 2 (K, V) * 32 layers * 32 KV heads * 128 * 2 bytes
524288.0
"""

from schedlab.costmodel.base import ConstantIterationCost, IterationCost
from schedlab.costmodel.iteration import RooflineIterationCost, iteration_cost
from schedlab.costmodel.roofline import Efficiency

__all__ = [
    "ConstantIterationCost",
    "Efficiency",
    "IterationCost",
    "RooflineIterationCost",
    "iteration_cost",
]
