"""Long-context request mixes for LoongServe's experiments (Wu et al., SOSP'24, arXiv 2404.09526,
§7.1): ShareGPT, L-Eval, LV-Eval, their equal mix, and the Zipf resampling of Fig. 12.

- ``"sharegpt"``: prompt and output lengths resampled from the shipped ``sharegpt-lengths``
  (ShareGPT turns, Llama-2 tokenizer), kept as the paper's preprocessing keeps them: prompt and
  output at least 4 tokens, output under 1,000, total within the paper's range of 4 to 2.3K.
- ``"leval"`` [recon]: prompts log-uniform on the paper's 2.7K to 210.5K tokens, outputs
  log-uniform on 16 to 512 (L-Eval's instructions ask for answers and summaries; the dataset is
  not shipped here).
- ``"lveval"`` [recon]: prompts log-uniform on 15.1K to 497.3K, outputs log-uniform on 4 to 128
  (LV-Eval's short answers).
- ``"mixed"``: each request from one of the three with equal probability (the artifact's
  ``mixed1.ds``).

``zipf=alpha`` draws each request's target length from the density ``x^-alpha`` on [10, 200K)
and takes the Mixed-pool request whose prompt is nearest (the artifact's
``4-mix-dataset-zipf.py``; Fig. 12: alpha 1.0, 1.2, 1.4; (TP2)x4 cannot serve longer than 200K).
Arrivals are Poisson at ``rate`` requests per second.

>>> w = long_context_workload("mixed", 300, rate=0.5, seed=0)
>>> len(w), int(w.input_tokens.min()) >= 4, int(w.input_tokens.max()) <= 497_300
(300, True, True)
>>> z = long_context_workload("mixed", 2000, rate=5.0, seed=0, zipf=1.4)
>>> bool(np.median(z.input_tokens) < np.median(long_context_workload("mixed", 2000, rate=5.0,
...                                                                   seed=0).input_tokens))
True
"""

from __future__ import annotations

import numpy as np

from schedlab.datasets.arrivals import as_generator
from schedlab.errors import check_nonneg_float, check_positive_float, check_positive_int
from schedlab.records import Workload

__all__ = ["LONG_CONTEXT_DATASETS", "long_context_workload"]

#: Prompt ranges (tokens) and output ranges of the datasets (LoongServe §7.1; outputs [recon]).
LONG_CONTEXT_DATASETS = {
    "sharegpt": ((4, 2_300), (4, 999)),
    "leval": ((2_700, 210_500), (16, 512)),
    "lveval": ((15_100, 497_300), (4, 128)),
}
_KINDS = ("sharegpt", "leval", "lveval")
_ZIPF_MIN, _ZIPF_MAX = 10, 200_000
_ZIPF_POOL = 20_000


def _draw(kind: str, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    (p_lo, p_hi), (o_lo, o_hi) = LONG_CONTEXT_DATASETS[kind]
    if kind == "sharegpt":
        from schedlab.datasets.loading import load

        sg = load("sharegpt-lengths")
        keep = ((sg.input_tokens >= 4) & (sg.output_tokens >= 4) & (sg.output_tokens < 1000)
                & (sg.input_tokens + sg.output_tokens <= p_hi))
        idx = rng.choice(np.flatnonzero(keep), size=n)
        return sg.input_tokens[idx].astype(np.int64), sg.output_tokens[idx].astype(np.int64)
    inp = np.exp(rng.uniform(np.log(p_lo), np.log(p_hi), n)).round().astype(np.int64)
    out = np.exp(rng.uniform(np.log(o_lo), np.log(o_hi), n)).round().astype(np.int64)
    return inp, out


def long_context_workload(dataset: str, n: int, *, rate: float, seed: int | np.random.Generator,
                          zipf: float | None = None) -> Workload:
    """``n`` requests of ``dataset`` (``"sharegpt"``, ``"leval"``, ``"lveval"`` or
    ``"mixed"``; see the module docstring) arriving as a Poisson process at ``rate``
    requests/s; ``zipf``: resample a Mixed pool by ``1 / l^zipf`` (prompts under 200K)."""
    where = "long_context_workload"
    if dataset not in (*_KINDS, "mixed"):
        raise ValueError(f"The 'dataset' parameter of {where} must be one of "
                         f"{(*_KINDS, 'mixed')}. Got {dataset!r} instead.")
    n = check_positive_int(n, "n", where)
    lam = check_positive_float(rate, "rate", where)
    rng = as_generator(seed, where)
    if zipf is not None:
        alpha = check_nonneg_float(zipf, "zipf", where)
        inp, out = _mixed(_ZIPF_POOL, rng)
        ok = inp < _ZIPF_MAX
        order = np.argsort(inp[ok], kind="stable")
        inp, out = inp[ok][order], out[ok][order]
        target = _power_law(n, alpha, _ZIPF_MIN, _ZIPF_MAX, rng)
        idx = np.clip(np.searchsorted(inp, target), 1, inp.shape[0] - 1)
        idx -= (target - inp[idx - 1]) < (inp[idx] - target)  # the nearer neighbour
        inp, out = inp[idx], out[idx]
        name = f"zipf{alpha:g}"
    elif dataset == "mixed":
        inp, out = _mixed(n, rng)
        name = "mixed"
    else:
        inp, out = _draw(dataset, n, rng)
        name = dataset
    arrival = np.cumsum(rng.exponential(1.0 / lam, n))
    arrival -= arrival[0]
    return Workload(arrival_s=arrival, input_tokens=inp, output_tokens=out, name=name)


def _power_law(n: int, alpha: float, lo: float, hi: float,
               rng: np.random.Generator) -> np.ndarray:
    """``n`` draws from the density ``x^-alpha`` on ``[lo, hi)`` (inverse CDF)."""
    u = rng.uniform(0.0, 1.0, n)
    if abs(alpha - 1.0) < 1e-12:
        return lo * (hi / lo) ** u
    e = 1.0 - alpha
    return (lo ** e + u * (hi ** e - lo ** e)) ** (1.0 / e)


def _mixed(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    kind = rng.integers(0, 3, n)
    inp = np.empty(n, dtype=np.int64)
    out = np.empty(n, dtype=np.int64)
    for j, k in enumerate(_KINDS):
        m = kind == j
        inp[m], out[m] = _draw(k, int(m.sum()), rng)
    return inp, out
