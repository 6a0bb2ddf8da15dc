"""Cost models: hardware and model catalogs, per-operator FLOPs and bytes, a roofline with
size-dependent efficiencies, closed-form iteration costs for the simulator, calibration
against measured kernels, the training time of an RL iteration (:class:`TrainingCost`), and CPU
sockets with the per-step costs of a graph-ANNS search (:mod:`schedlab.costmodel.cpu`).

>>> from schedlab.costmodel import iteration_cost
>>> cost = iteration_cost("llama-2-7b", "a100-80gb")
>>> cost.kv_bytes_per_token   # 2 (K, V) * 32 layers * 32 KV heads * 128 * 2 bytes
524288.0
"""

from typing import TYPE_CHECKING, Any

from schedlab.costmodel.base import ConstantIterationCost, IterationCost
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
from schedlab.costmodel.roofline import Efficiency
from schedlab.costmodel.speculative import (
    best_gamma,
    expected_tokens,
    sd_time_per_token,
    verify_step_s,
    verify_times_s,
)
from schedlab.costmodel.training import TrainingCost

if TYPE_CHECKING:
    from schedlab.costmodel.calibration import (
        ValidationReport,
        calibrate,
        cross_validate,
        validate,
    )
    from schedlab.costmodel.profiling import Profile, load_profile

#: Names loaded on first use: calibration and profiles are not needed to simulate.
_LAZY = {"ValidationReport": "calibration", "calibrate": "calibration", "validate": "calibration",
         "cross_validate": "calibration", "Profile": "profiling", "load_profile": "profiling"}

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
    "TrainingCost",
    "ValidationReport",
    "calibrate",
    "cross_validate",
    "get_accelerator",
    "get_interconnect",
    "get_memory_device",
    "get_model",
    "iteration_cost",
    "load_profile",
    "validate",
    "best_gamma",
    "expected_tokens",
    "sd_time_per_token",
    "verify_step_s",
    "verify_times_s",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"schedlab.costmodel.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'schedlab.costmodel' has no attribute {name!r}")
