"""Benchmark the grouped root histograms against scikit-learn's own, side by side in one run.

On the default training cases (the rows `crampdx train` fits, binned as
scikit-learn bins them) with the gradients and Hessians of a real first iteration:

* one tree's root histograms: scikit-learn's ``HistogramBuilder`` (its threads) against
  :func:`crampdx.training.histograms.root_histograms`, alternately, median of ``--runs`` x 20;
* a soft-target fit of ``--iterations`` iterations (25 trees each) with scikit-learn's builder
  and with the grouped roots, alternately, median of ``--runs``; both fits' probabilities are
  compared (the same trees: they agree to ~1e-15).

    python bench/bench_histograms.py [--runs 3] [--iterations 40]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
from sklearn.ensemble._hist_gradient_boosting.histogram import HistogramBuilder

sys.path.insert(0, str(Path(__file__).parent))

from _timing import machine  # noqa: E402
from crampdx.synthetic.load import load_knowledge  # noqa: E402
from crampdx.training.defaults import DEFAULT_CASES  # noqa: E402
from crampdx.training.distill import SoftTargetLoss, fit_soft_targets  # noqa: E402
from crampdx.training.fit import Hyperparameters  # noqa: E402
from crampdx.training.histograms import BinGroups, grouped_root_histograms, root_histograms  # noqa: E402
from crampdx.training.train import training_rows  # noqa: E402


def _training_rows():
    rows = training_rows(load_knowledge(), cases=DEFAULT_CASES, seed=0)  # what `crampdx train` fits
    return rows.codes[~rows.calibration], rows.targets[~rows.calibration]


def _first_gradients(targets: np.ndarray, k: int = 0):
    """Class k's gradients and Hessians at the first iteration (the model at the class priors)."""
    prior = targets.mean(axis=0)
    gradients = np.empty(targets.shape, dtype=np.float32, order="F")
    hessians = np.empty_like(gradients)
    SoftTargetLoss(targets, targets[:1]).gradient_hessian(np.zeros(len(targets)), np.tile(np.log(prior), (len(targets), 1)),
                                                          None, gradients, hessians)
    return np.ascontiguousarray(gradients[:, k]), np.ascontiguousarray(hessians[:, k])


def _median_ms(function, repeats: int = 20) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def _fit(X, targets, iterations: int, grouped: bool):
    rng = np.random.default_rng(0)
    validation = rng.random(len(X)) < 0.1
    estimator = Hyperparameters(max_iter=iterations, n_iter_no_change=iterations).estimator(0)
    estimator.set_params(verbose=0)
    start = time.perf_counter()
    with grouped_root_histograms() if grouped else contextlib.nullcontext():
        fit_soft_targets(estimator, X[~validation], targets[~validation], X[validation], targets[validation])
    return time.perf_counter() - start, estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--iterations", type=int, default=40)
    args = parser.parse_args()
    print(machine())
    X, targets = _training_rows()
    binned = np.asfortranarray(_BinMapper(n_bins=256, random_state=0).fit_transform(X))
    gradients, hessians = _first_gradients(targets)
    stock = HistogramBuilder(binned, 256, gradients, hessians, False, 2)
    every_row = np.arange(len(binned), dtype=np.uint32)
    groups = BinGroups.of(binned, 256)
    root_histograms(groups, gradients, hessians)  # compiles the loop
    print(f"{len(binned):,} rows x {binned.shape[1]} findings; {len(groups.rows) / binned.size:.0%} of the "
          "row x finding entries outside each finding's most frequent bin")
    stock_ms, grouped_ms = [], []
    for _ in range(args.runs):
        stock_ms.append(_median_ms(lambda: stock.compute_histograms_brute(every_row, None)))
        grouped_ms.append(_median_ms(lambda: root_histograms(groups, gradients, hessians)))
    print(f"root histograms of one tree, median: scikit-learn {np.median(stock_ms):.2f} ms, grouped "
          f"{np.median(grouped_ms):.2f} ms, ratio {np.median(stock_ms) / np.median(grouped_ms):.2f}x")
    fits = {False: [], True: []}
    for _ in range(args.runs):
        for grouped in (False, True):
            fits[grouped].append(_fit(X, targets, args.iterations, grouped))
    stock_s, grouped_s = (float(np.median([s for s, _ in fits[g]])) for g in (False, True))
    gap = np.abs(fits[False][0][1].predict_proba(X[:5000]) - fits[True][0][1].predict_proba(X[:5000])).max()
    print(f"fit of {args.iterations} iterations x 25 trees, median of {args.runs}: scikit-learn {stock_s:.1f} s, "
          f"grouped roots {grouped_s:.1f} s, ratio {stock_s / grouped_s:.2f}x; largest probability difference {gap:.1e}")


if __name__ == "__main__":
    main()
