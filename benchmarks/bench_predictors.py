"""Speed of the LightGBM length ranker (learned output-length predictors; run by hand, not a test).

    python benchmarks/bench_predictors.py [--runs 3] [--n 100000] [--n-jobs 1]

- *Fit*: :class:`schedlab.predictors.LengthRanker` (defaults: 100 boosting rounds, 10 relevance
  levels, random queries of 128 rows with every position in the NDCG) on ``n`` requests of
  RL rollout batches (``rollout_batch``, 4 samples per prompt) with the features of
  ``length_features`` plus an informative one: a noisy reading of the prompt's difficulty (its
  group's mean log length, error sd 0.5), as a prompt classifier would give. Target: under 30 s
  for 100,000 requests.
- *Predict*: scores of ``n`` held-out requests. Target: under 1 s for 100,000.

Each is timed ``--runs`` times in this process (median wall, perf_counter); the ratio is the
median over the target (below 1 meets it). The held-out Kendall tau and top-20% recall show the
model is not trivial (random: 0 and 0.2). Wall times on a shared machine are noisy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np

FIT_TARGET_S = 30.0
PREDICT_TARGET_S = 1.0


def rollout_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Features and true lengths of ``n`` rollout requests (see the module docstring)."""
    from schedlab.datasets.rollout import rollout_batch
    from schedlab.predictors import length_features

    prompts = -(-n // 4)
    w = rollout_batch(n_prompts=prompts, samples_per_prompt=4, seed=seed)
    X, _ = length_features(w, columns=["input_tokens", "log_input_tokens", "group_size",
                                       "group_mean_input", "group_max_input"])
    y = w.output_tokens.astype(np.float64)
    g = w.group_id
    assert g is not None
    noise = np.random.default_rng(seed + 1000).normal(0.0, 0.5, prompts)
    difficulty = (np.bincount(g, np.log(y)) / np.bincount(g) + noise)[g]
    return np.c_[X, difficulty][:n], y[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--n-jobs", type=int, default=1, help="LightGBM threads (default 1)")
    args = ap.parse_args()

    from schedlab.predictors import LengthRanker, kendall_tau, top_alpha_recall

    X, y = rollout_data(args.n, seed=0)
    Xt, yt = rollout_data(args.n, seed=1)
    fits, predicts = [], []
    for _ in range(args.runs):
        ranker = LengthRanker(n_jobs=args.n_jobs)
        t = time.perf_counter()
        ranker.fit(X, y)
        fits.append(time.perf_counter() - t)
        t = time.perf_counter()
        score = ranker.predict(Xt)
        predicts.append(time.perf_counter() - t)
    fit_s, pred_s = statistics.median(fits), statistics.median(predicts)
    print(f"machine: {os.cpu_count()} CPUs, LightGBM n_jobs={args.n_jobs}, {args.runs} runs, "
          f"n={args.n:,} ({ranker.n_queries_} queries)")
    print(f"fit      median {fit_s:7.3f} s  (runs {', '.join(f'{s:.2f}' for s in fits)})  "
          f"target {FIT_TARGET_S:g} s  ratio {fit_s / FIT_TARGET_S:.3f}")
    print(f"predict  median {pred_s:7.3f} s  (runs {', '.join(f'{s:.3f}' for s in predicts)})  "
          f"target {PREDICT_TARGET_S:g} s  ratio {pred_s / PREDICT_TARGET_S:.3f}")
    print(f"held-out quality: Kendall tau {kendall_tau(yt, score):.3f}, "
          f"top-20% recall {top_alpha_recall(yt, score, 0.2):.3f} (random 0.2; "
          f"the difficulty feature alone {top_alpha_recall(yt, Xt[:, -1], 0.2):.3f})")


if __name__ == "__main__":
    main()
