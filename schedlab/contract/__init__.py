"""The batching contract between the simulator and the policies, below both of them.

- :mod:`~schedlab.contract.views`: what a policy sees (:class:`QueueView`, :class:`RouterView`,
  the KV location codes);
- :mod:`~schedlab.contract.answers`: what it returns (:class:`Plan`: an order and the rules the
  engine forms the batch by; :class:`BatchDecision`: exactly what to run);
- :mod:`~schedlab.contract.accounting`: the one definition of token and KV accounting;
- :mod:`~schedlab.contract.forming`: how the engine forms a batch from a plan
  (:func:`form_batch`);
- :mod:`~schedlab.contract.validation`: the rules every answer keeps (:func:`validate_plan`,
  :func:`validate_decision`), called by the simulator and by ``check_policy`` alike.

It imports nothing of schedlab's but itself (numpy only), and every layer that speaks to a
policy (``policies``, ``sim``, ``testing``) imports it.

>>> import numpy as np
>>> from schedlab.contract import Plan, QueueView, form_batch
>>> v = QueueView.from_columns(now_s=0.0, input_tokens=[30, 30, 30], kv_capacity_tokens=70)
>>> form_batch(v, Plan(order=np.argsort(-v.input_tokens, kind="stable"))).run.tolist()
[0, 1]
"""

from schedlab.contract.accounting import RequestCosts, request_costs, started
from schedlab.contract.answers import (
    PREDICTED,
    PREEMPT_MODES,
    Answer,
    BatchDecision,
    BatchingPolicy,
    Plan,
    Router,
)
from schedlab.contract.forming import form_batch
from schedlab.contract.validation import InvalidDecision, validate_decision, validate_plan
from schedlab.contract.views import KV_GPU, KV_HOST, KV_NONE, QueueView, RouterView

__all__ = [
    "KV_GPU",
    "KV_HOST",
    "KV_NONE",
    "PREDICTED",
    "PREEMPT_MODES",
    "Answer",
    "BatchDecision",
    "BatchingPolicy",
    "InvalidDecision",
    "Plan",
    "QueueView",
    "RequestCosts",
    "Router",
    "RouterView",
    "form_batch",
    "request_costs",
    "started",
    "validate_decision",
    "validate_plan",
]
