"""Cost models: hardware and model catalogs, per-operator FLOPs and bytes, a roofline with
size-dependent efficiencies, closed-form iteration costs for the simulator, and calibration
against measured kernels.

>>> from schedlab.costmodel import iteration_cost
>>> cost = iteration_cost("llama-2-7b", "a100-80gb")
>>> cost.kv_bytes_per_token   # 2 (K, V) * 32 layers * 32 KV heads * 128 * 2 bytes
524288.0
"""

from schedlab.costmodel.base import ConstantIterationCost, IterationCost
from schedlab.costmodel.calibrate import ValidationReport, calibrate, validate
from schedlab.costmodel.hardware import (
    Accelerator,
    Interconnect,
    MemoryDevice,
    get_accelerator,
    get_interconnect,
    get_memory_device,
)
from schedlab.costmodel.iteration import RooflineIterationCost, iteration_cost
from schedlab.costmodel.models import ModelSpec, get_model
from schedlab.costmodel.profiling import Profile, load_profile
from schedlab.costmodel.roofline import Efficiency

__all__ = [
    "Accelerator",
    "ConstantIterationCost",
    "Efficiency",
    "Interconnect",
    "IterationCost",
    "MemoryDevice",
    "ModelSpec",
    "Profile",
    "RooflineIterationCost",
    "ValidationReport",
    "calibrate",
    "get_accelerator",
    "get_interconnect",
    "get_memory_device",
    "get_model",
    "iteration_cost",
    "load_profile",
    "validate",
]
