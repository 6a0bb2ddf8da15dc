"""Real traces built in, loaders that say what is wrong, and workload generators.

Loading (pandas is imported on first use, not at ``import schedlab.datasets``):

- :func:`load` / :func:`load_with_report`: a shipped trace by name or a file in any supported
  format (Mooncake JSONL, Azure LLM CSV, Vidur length statistics, SSJF proxy-model predictions, any
  CSV/JSONL with a column mapping) as a :class:`~schedlab.records.Workload`.
- :func:`list_datasets`, :func:`describe`, :data:`SHIPPED`: what ships, with row counts, time
  span, mean rate and length statistics.

Generating (every generator takes ``seed``: an int or a ``numpy.random.Generator``):

- arrivals: :func:`poisson_arrivals`, :func:`gamma_arrivals`, :func:`replay`,
  :func:`rescale_arrivals`;
- lengths: :func:`resample_lengths`, :func:`fit_lengths` (log-normal, gamma, Weibull, log-logistic
  ranked by the Kolmogorov-Smirnov statistic), :func:`synthetic_workload`;
- RL rollouts: :func:`rollout_batch` (P prompts x G samples, heavy tail, within-group correlation).
- Long-context mixes (LoongServe): :func:`long_context_workload` (ShareGPT, L-Eval, LV-Eval,
  Mixed, Zipf).
- Vectors for graph ANNS (AverSearch): :func:`digits_vectors`, :func:`image_descriptors`,
  :func:`clustered_vectors` (:class:`VectorSet`, :func:`exact_knn`) and the proximity graph
  :func:`build_graph` (:class:`Graph`).
- Attention heads for block-sparse and retrieval attention (MoBA, RetroInfer):
  :func:`topic_attention_head` (:class:`AttentionHead`) and :func:`topic_decode_queries`
  [synthetic].
- Serverless functions and invocations (TrEnv): :func:`trenv_functions`,
  :func:`paper_workload` (W1, W2 as the authors generate them), :func:`bursty_trace` and
  :func:`bursty_functions` (Azure-like, any scale), :func:`agent_workload` [recon]
  (:class:`ServerlessWorkload`).

>>> from schedlab import datasets
>>> w = datasets.load("azure-code-2023")
>>> len(w), w.name
(8819, 'azure-code-2023')
>>> b = datasets.rollout_batch(n_prompts=4, samples_per_prompt=8, seed=0)
>>> len(b), sorted(set(b.group_id.tolist()))
(32, [0, 1, 2, 3])
"""

from schedlab.datasets.arrivals import (
    gamma_arrivals,
    poisson_arrivals,
    replay,
    rescale_arrivals,
)
from schedlab.datasets.attention_heads import (
    AttentionHead,
    topic_attention_head,
    topic_decode_queries,
)
from schedlab.datasets.catalog import SHIPPED, shipped_path, verify_checksum
from schedlab.datasets.formats import FORMATS
from schedlab.datasets.lengths import LengthFit, fit_lengths, resample_lengths, synthetic_workload
from schedlab.datasets.loading import infer_format, load, load_with_report
from schedlab.datasets.long_context import LONG_CONTEXT_DATASETS, long_context_workload
from schedlab.datasets.report import LoadReport, LoadResult, RowProblem, SkippedRowsWarning
from schedlab.datasets.rollout import rollout_batch
from schedlab.datasets.serverless import (
    ServerlessWorkload,
    agent_workload,
    bursty_functions,
    bursty_trace,
    paper_workload,
    trenv_functions,
)
from schedlab.datasets.summary import describe, list_datasets
from schedlab.datasets.vector_graph import Graph, build_graph
from schedlab.datasets.vectors import (
    VectorSet,
    clustered_vectors,
    digits_vectors,
    exact_knn,
    image_descriptors,
)

__all__ = [
    "AttentionHead",
    "topic_attention_head",
    "topic_decode_queries",
    "FORMATS",
    "Graph",
    "LONG_CONTEXT_DATASETS",
    "SHIPPED",
    "LengthFit",
    "LoadReport",
    "LoadResult",
    "RowProblem",
    "SkippedRowsWarning",
    "VectorSet",
    "build_graph",
    "clustered_vectors",
    "describe",
    "digits_vectors",
    "exact_knn",
    "fit_lengths",
    "gamma_arrivals",
    "image_descriptors",
    "infer_format",
    "list_datasets",
    "load",
    "load_with_report",
    "long_context_workload",
    "poisson_arrivals",
    "replay",
    "resample_lengths",
    "rescale_arrivals",
    "rollout_batch",
    "shipped_path",
    "synthetic_workload",
    "verify_checksum",
    "ServerlessWorkload",
    "agent_workload",
    "bursty_functions",
    "bursty_trace",
    "paper_workload",
    "trenv_functions",
]
