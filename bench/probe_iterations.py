"""Probe how close the model gets to the exact posterior as boosting goes on (one long fit).

Fits the default soft-target model without early stopping for ``--iterations`` iterations and,
every ``--every`` iterations, refits the temperature on the calibration cases and reports KL
(posterior || model), the top-1 ratio to the posterior, top-1 agreement and ECE on the 20,000
evaluation cases `crampdx train` uses. The README's top-1 probes of 2026-12-04 (morning) came
from it (then a scratch copy, on 40,000 cases from the generator's own mix), as in:

    python bench/probe_iterations.py --cases 40000 --iterations 700 --prior-power 1
    python bench/probe_iterations.py --iterations 600
    python bench/probe_iterations.py --iterations 500 --min-samples-leaf 20

The training cases are the ones `crampdx train` fits (``training_rows``); ``--prior-power``
draws them with each (cause, sub-profile) weight raised to that power (default: `crampdx
train`'s; 1 the generator's own mix; the targets stay the exact posterior). The ratio is
printed as from the labels and as expected under the exact posterior (less noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from scipy.special import softmax

sys.path.insert(0, str(Path(__file__).parent))

from _timing import machine  # noqa: E402
from crampdx.synthetic import LABEL, generate, posterior_from_codes  # noqa: E402
from crampdx.synthetic.load import load_knowledge  # noqa: E402
from crampdx.training.defaults import DEFAULT_CASES, DEFAULT_EVALUATION_CASES, DEFAULT_PRIOR_POWER  # noqa: E402
from crampdx.training.distill import over_classes  # noqa: E402
from crampdx.training.evaluate import evaluation_seed  # noqa: E402
from crampdx.training.fit import Hyperparameters, fit_classifier, fit_temperature  # noqa: E402
from crampdx.training.metrics import expected_calibration_error, posterior_comparison  # noqa: E402
from crampdx.training.train import training_rows  # noqa: E402

SEED = 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES)
    parser.add_argument("--iterations", type=int, default=500)
    parser.add_argument("--every", type=int, default=50)
    parser.add_argument("--learning-rate", type=float, default=Hyperparameters.learning_rate)
    parser.add_argument("--min-samples-leaf", type=int, default=Hyperparameters.min_samples_leaf)
    parser.add_argument("--prior-power", type=float, default=DEFAULT_PRIOR_POWER)
    args = parser.parse_args()
    print(machine())
    kb = load_knowledge()
    rows = training_rows(kb, cases=args.cases, seed=SEED, prior_power=args.prior_power)
    codes, targets, calibration = rows.codes, rows.targets, rows.calibration
    hp = Hyperparameters(max_iter=args.iterations, n_iter_no_change=args.iterations,
                         learning_rate=args.learning_rate, min_samples_leaf=args.min_samples_leaf)
    start = time.perf_counter()
    estimator = fit_classifier(codes[~calibration], targets[~calibration], hp, SEED, report=lambda line: None)
    seconds = time.perf_counter() - start
    print(f"{args.cases:,} cases, learning rate {args.learning_rate}, {args.min_samples_leaf} per leaf, prior power "
          f"{args.prior_power}: fit {seconds:.1f} s for {estimator.n_iter_} iterations")
    evaluation = generate(DEFAULT_EVALUATION_CASES, seed=evaluation_seed(SEED), knowledge=kb)
    eval_codes, eval_labels = kb.schema.encode(evaluation), evaluation[LABEL].cat.codes.to_numpy()
    exact = posterior_from_codes(eval_codes, kb)
    known, held_out = over_classes(targets[calibration], estimator.classes_)
    stages = zip(estimator.staged_decision_function(codes[calibration][known]),
                 estimator.staged_decision_function(eval_codes))
    for iteration, (calibration_scores, eval_scores) in enumerate(stages, start=1):
        if iteration % args.every and iteration != estimator.n_iter_:
            continue
        temperature = fit_temperature(calibration_scores, held_out)
        proba = np.zeros((len(eval_codes), len(kb.classes)))
        proba[:, estimator.classes_] = softmax(eval_scores / temperature, axis=1)
        figures = posterior_comparison(eval_labels, proba, exact)
        print(f"  iteration {iteration:4d}  T {temperature:.3f}  KL {figures['mean_kl_posterior_to_model']:.4f}  "
              f"top-1 ratio {figures['top1_ratio_to_posterior']:.4f} (expected {figures['expected_top1_ratio_to_posterior']:.4f})  agreement {figures['top1_agreement_with_posterior']:.4f}  "
              f"ECE {expected_calibration_error(eval_labels, proba):.4f}", flush=True)


if __name__ == "__main__":
    main()
