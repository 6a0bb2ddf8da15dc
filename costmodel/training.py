"""Training time of an RL (PPO) iteration on a number of GPUs: a FLOP count over an achieved
utilisation, the model the RL papers' stage-balancing needs (StreamRL §4.2 profiles it instead;
no formula is published, so this one is a reconstruction [recon]).

A token of a sample (prompt plus response) costs, per PPO iteration with the actor, the critic
and the reference model of one size and a rule-based reward (StreamRL's evaluation setup):

- forward passes for the old log-probabilities (actor), the reference log-probabilities and the
  values (critic): ``3 x 2 N`` FLOPs;
- one update of the actor and one of the critic, forward and backward: ``2 x 6 N`` FLOPs;

so ``flops_per_token = 18 N`` (``N`` the active parameters) by default, done at ``mfu`` of the
GPUs' dense peak (default 0.35 [recon]: large-model training commonly reaches 30-45%). Training
time is then ``flops / (gpus x peak x mfu)``, linear in tokens and in 1 / GPUs (StreamRL Fig. 2:
training scales nearly linearly with GPUs, unlike generation).

>>> t = TrainingCost.build("qwen2.5-7b", "h800")
>>> round(t.time_s(1024 * 5000, 16), 1)    # 1,024 samples of 5,000 tokens on 16 GPUs
126.7
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from schedlab.costmodel.hardware import get_accelerator
from schedlab.costmodel.models import get_model
from schedlab.errors import check_fraction, check_positive_float, check_positive_int

__all__ = ["PPO_FLOPS_PER_PARAM_TOKEN", "TrainingCost"]

#: FLOPs per active parameter and token of one PPO iteration (see the module docstring).
PPO_FLOPS_PER_PARAM_TOKEN = 18.0


@dataclass(frozen=True, slots=True, kw_only=True)
class TrainingCost:
    """Seconds to train on ``tokens`` tokens with ``gpus`` GPUs (see the module docstring).

    ``params`` is the model's active parameter count, ``peak_flops_per_s`` one GPU's dense peak
    (bf16), ``mfu`` the achieved share of it, ``flops_per_param_token`` the FLOPs per parameter
    and token (18 for PPO with critic and reference, 6 for plain supervised training).
    """

    params: float
    peak_flops_per_s: float
    mfu: float = 0.35
    flops_per_param_token: float = PPO_FLOPS_PER_PARAM_TOKEN

    def __post_init__(self) -> None:
        w = "TrainingCost"
        check_positive_float(self.params, "params", w)
        check_positive_float(self.peak_flops_per_s, "peak_flops_per_s", w)
        check_fraction(self.mfu, "mfu", w)
        check_positive_float(self.flops_per_param_token, "flops_per_param_token", w)

    @classmethod
    def build(cls, model: Any, gpu: Any, **kw: Any) -> TrainingCost:
        """From catalog names (or records) of the model and the GPU; ``kw`` sets ``mfu`` or
        ``flops_per_param_token``."""
        m, g = get_model(model), get_accelerator(gpu)
        return cls(params=float(m.active_params()), peak_flops_per_s=float(g.peak_flops()), **kw)

    def time_s(self, tokens: Any, gpus: int) -> Any:
        """Seconds to train on ``tokens`` tokens (a number or an array) on ``gpus`` GPUs."""
        check_positive_int(gpus, "gpus", "TrainingCost.time_s")
        t = np.asarray(tokens, dtype=np.float64)
        if (t < 0).any() or not np.isfinite(t).all():
            raise ValueError(f"The 'tokens' parameter of TrainingCost.time_s must be finite and "
                             f">= 0. Got {tokens!r}.")
        out = t * self.params * self.flops_per_param_token / (
            gpus * self.peak_flops_per_s * self.mfu)
        return float(out) if out.ndim == 0 else out
