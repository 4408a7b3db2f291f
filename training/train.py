"""The whole training run, stage by stage: generate, fit, calibrate, evaluate, save."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from crampdx.contract.schema import SchemaError
from crampdx.data import DEV_VIGNETTES
from crampdx.model.artifact import check_artifact_target, write_artifact
from crampdx.model.diagnoser import Diagnoser
from crampdx.synthetic import LABEL, generate, posterior_from_codes
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.training.data import read_labelled_cases
from crampdx.training.distill import over_classes
from crampdx.training.defaults import DEFAULT_CASES, DEFAULT_EVALUATION_CASES, DEFAULT_PRIOR_POWER
from crampdx.training.drawing import check_prior_power, drawing_knowledge
from crampdx.training.evaluate import evaluate, evaluation_seed, headline
from crampdx.training.external import read_labelled_file, validate_on
from crampdx.training.fit import Hyperparameters, fit_classifier, fit_temperature, reached_cap
from crampdx.training.model_card import write_model_card

__all__ = ["DEFAULT_CASES", "DEFAULT_EVALUATION_CASES", "TrainingRows", "WEAK_RATIO", "calibration_mask", "development_figures",
           "summary_table", "train", "training_rows", "training_targets", "weak_model_warning"]

CALIBRATION_FRACTION = 0.1
STAGES = ("generate", "fit", "calibrate", "evaluate", "save")


def train(
    out: str | Path,
    *,
    cases: int = DEFAULT_CASES,
    seed: int = 0,
    hyperparameters: Hyperparameters | None = None,
    data: str | Path | None = None,
    mix: bool = False,
    evaluation_cases: int = DEFAULT_EVALUATION_CASES,
    knowledge: KnowledgeBase | None = None,
    prior_power: float = DEFAULT_PRIOR_POWER,
    report: Callable[[str], None] = print,
) -> dict:
    """Train, calibrate, evaluate and save a model artifact.

    Parameters
    ----------
    out : path
        Artifact directory (replaced atomically).
    cases : int
        Number of synthetic training cases (ignored with ``data`` unless ``mix``).
    seed : int
        Seed of the synthetic cases, the calibration split and the estimator.
    hyperparameters : Hyperparameters, optional
        Overrides of the tuned defaults.
    data : path, optional
        The user's labelled cases (CSV or parquet with an ``etiology`` column).
    mix : bool
        With ``data``: add ``cases`` synthetic cases to the user's.
    evaluation_cases : int
        Fresh synthetic cases for the evaluation stage.
    knowledge : KnowledgeBase, optional
        The knowledge base to train under (the shipped one by default); the artifact
        records its hash.
    prior_power : float
        The synthetic training cases are drawn with each (cause, sub-profile) weight raised to
        this power (:mod:`crampdx.training.drawing`; 1: the generator's own mix); their
        targets and the evaluation cases are the generator's own.
    report : callable
        Receives progress lines.

    Returns
    -------
    dict
        The manifest written, including the evaluation figures.
    """
    hp = hyperparameters or Hyperparameters()
    check_artifact_target(out)  # a wrong destination fails now, not after the fit
    kb = knowledge if knowledge is not None else load_knowledge()
    check_prior_power(prior_power)  # before the cases are drawn, as the destination is checked
    started = time.perf_counter()
    timings = {}

    def stage(number: int, text: str) -> float:
        report(f"[{number}/{len(STAGES)}] {STAGES[number - 1]:<9} {text}")
        return time.perf_counter()

    t = stage(1, "cases")
    rows = training_rows(kb, cases=cases, seed=seed, data=data, mix=mix, prior_power=prior_power)
    codes, targets, calibration, synthetic, source = rows.codes, rows.targets, rows.calibration, rows.synthetic, rows.source
    timings["generate"] = time.perf_counter() - t
    report(f"          {len(codes):,} cases from {source}; {calibration.sum():,} held out for calibration")

    t = stage(2, "gradient boosting on soft targets (early stopping on validation cases)")
    estimator = fit_classifier(codes[~calibration], targets[~calibration], hp, seed, report)
    timings["fit"] = time.perf_counter() - t

    t = stage(3, "temperature on held-out cases")
    positions = estimator.classes_
    known, held_out = over_classes(targets[calibration], positions)
    temperature = fit_temperature(estimator.decision_function(codes[calibration][known]), held_out)
    timings["calibrate"] = time.perf_counter() - t
    report(f"          T = {temperature:.3f}")

    manifest = {
        "schema_sha256": kb.schema.hash,
        "schema": kb.schema.to_dict(),
        "knowledge_source": kb.source,
        "knowledge_sha256": kb.sha256,
        "seed": int(seed),
        "data_source": source,
        "synthetic_cases": int(synthetic.sum()),  # fitted to their exact posteriors; the others to their labels
        "prior_power": float(prior_power) if synthetic.any() else None,  # how the synthetic cases were drawn
        "sizes": {"training": int((~calibration).sum()), "calibration": int(calibration.sum())},
        "classes": [{"id": kb.classes[i].id, "name": kb.classes[i].name, "icd10": kb.classes[i].icd10} for i in positions],
        "temperature": temperature,
        "hyperparameters": asdict(hp),
        "n_iterations": int(estimator.n_iter_),
        "stopped_early": not reached_cap(estimator.n_iter_, hp.max_iter),
    }

    t = stage(4, f"{evaluation_cases:,} fresh synthetic cases against the exact posterior, and the sparse regimes")
    diagnoser = Diagnoser(estimator, manifest, kb)
    figures = evaluate(diagnoser, evaluation_cases, evaluation_seed(seed), regime_n=max(1000, evaluation_cases // 4))
    figures["development_vignettes"] = development_figures(diagnoser, report)
    timings["evaluate"] = time.perf_counter() - t
    manifest["metrics"] = {k: v for k, v in figures.items() if k != "calibration"}
    manifest["calibration"] = figures["calibration"]

    t = stage(5, str(out))
    timings["save"] = time.perf_counter() - t
    manifest["timings_seconds"] = {k: round(v, 2) for k, v in timings.items()}
    manifest["timings_seconds"]["total"] = round(time.perf_counter() - started, 2)
    write_artifact(out, estimator, manifest, extra_files=lambda staging: write_model_card(manifest, figures, staging))
    report(summary_table(manifest, figures))
    return manifest


def development_figures(diagnoser: Diagnoser, report: Callable[[str], None] = print) -> dict | None:
    """The model and the exact posterior on the shipped development vignettes, or None when
    they do not fit this knowledge base (a user's own schema or classes)."""
    try:
        cases = read_labelled_file(DEV_VIGNETTES, diagnoser.knowledge_.class_ids)
    except (SchemaError, OSError):
        return None
    figures = validate_on(diagnoser, cases)
    report(f"          development vignettes: top-1 {figures['model']['top1']['value']:.0%}, "
           f"top-3 {figures['model']['top3']['value']:.0%} (exact posterior {figures['posterior']['top3']['value']:.0%})")
    return figures


def training_targets(codes: np.ndarray, labels: np.ndarray, synthetic: np.ndarray, kb: KnowledgeBase) -> np.ndarray:
    """What each training case teaches, shape (n, n_classes): a synthetic case its exact
    posterior (its label is one draw from it), a labelled case its label.

    Examples
    --------
    >>> from crampdx.synthetic import load_knowledge
    >>> kb = load_knowledge()
    >>> codes = np.full((2, len(kb.schema)), np.nan)
    >>> targets = training_targets(codes, np.array([0, 3]), np.array([True, False]), kb)
    >>> targets.sum(axis=1).round(6).tolist(), int(targets[1].argmax()), float(targets[1].max())
    ([1.0, 1.0], 3, 1.0)
    """
    targets = np.eye(len(kb.classes))[labels]
    if synthetic.any():
        targets[synthetic] = posterior_from_codes(codes[synthetic], kb)
    return targets


def calibration_mask(n: int, seed: int) -> np.ndarray:
    """Which cases are held out for the temperature: a random 10 %.

    The stream is derived from ``seed`` but independent of the one ``synthetic.generate``
    uses with the same seed. (Reusing ``default_rng(seed)`` would replay the uniforms that
    chose each case's mixture component, so the held-out cases would all come from the
    first components — one class, a few age bands.)

    Examples
    --------
    >>> mask = calibration_mask(100_000, seed=0)
    >>> bool(0.09 < mask.mean() < 0.11), bool((mask == calibration_mask(100_000, seed=0)).all())
    (True, True)
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_CALIBRATION_STREAM,)))
    return rng.random(n) < CALIBRATION_FRACTION


_CALIBRATION_STREAM = 1


@dataclass(frozen=True)
class TrainingRows:
    """What the fit and the temperature are trained on: encoded cases, their targets (the exact
    posterior for a synthetic case, the label for a user's), which are held out for calibration."""

    codes: np.ndarray  # (n, n_findings), NaN where not assessed
    targets: np.ndarray  # (n, n_classes), rows summing to 1
    calibration: np.ndarray  # (n,) bool: held out for the temperature
    synthetic: np.ndarray  # (n,) bool: generated (fitted to its exact posterior)
    source: str  # where the cases come from, in words


def training_rows(kb: KnowledgeBase, *, cases: int = DEFAULT_CASES, seed: int = 0, data: str | Path | None = None,
                  mix: bool = False, prior_power: float = DEFAULT_PRIOR_POWER) -> TrainingRows:
    """The first stage of :func:`train`: the training cases encoded, their targets and the
    calibration split (for benchmarks and probes that fit what ``crampdx train`` fits). The
    synthetic cases are drawn from :func:`~crampdx.training.drawing.drawing_knowledge` with
    ``prior_power``; their targets are the exact posterior under ``kb``.

    Examples
    --------
    >>> rows = training_rows(load_knowledge(), cases=2000, seed=1)
    >>> rows.codes.shape[0] == rows.targets.shape[0] == 2000, bool(rows.synthetic.all())
    (True, True)
    >>> bool(np.allclose(rows.targets.sum(axis=1), 1.0)), bool(0.05 < rows.calibration.mean() < 0.15)
    (True, True)
    """
    frame, source, synthetic = _training_cases(kb, cases, seed, data, mix, prior_power)
    codes = kb.schema.encode(frame)
    labels = np.asarray([kb.class_ids.index(c) for c in frame[LABEL].astype(str)]) if data else frame[LABEL].cat.codes.to_numpy()
    if len(np.unique(labels)) < 3:
        raise SchemaError("training needs cases of at least three etiology classes")
    targets = training_targets(codes, labels, synthetic, kb)
    return TrainingRows(codes, targets, calibration_mask(len(labels), seed), synthetic, source)


def _training_cases(kb, cases: int, seed: int, data, mix: bool, prior_power: float) -> tuple[pd.DataFrame, str, np.ndarray]:
    """The training cases, where they come from, and which of them are synthetic."""
    drawn = "" if prior_power == 1.0 else f", each (cause, sub-profile) weight raised to the power {prior_power:g} to draw them"
    synthetic_source = f"{cases:,} synthetic cases (seed {seed}{drawn}) from {kb.source}"
    if data is None:
        return generate(cases, seed=seed, knowledge=drawing_knowledge(kb, prior_power)), synthetic_source, np.ones(cases, dtype=bool)
    labelled = read_labelled_cases(data, kb.schema, kb.class_ids)
    source = f"{len(labelled):,} labelled cases from {Path(data).name}"
    if not mix:
        return labelled, source, np.zeros(len(labelled), dtype=bool)
    generated = generate(cases, seed=seed, knowledge=drawing_knowledge(kb, prior_power))
    generated[LABEL] = generated[LABEL].astype(str)
    labelled[LABEL] = labelled[LABEL].astype(str)
    synthetic = np.r_[np.zeros(len(labelled), dtype=bool), np.ones(len(generated), dtype=bool)]
    return pd.concat([labelled, generated], ignore_index=True), f"{source} mixed with {synthetic_source}", synthetic


def summary_table(manifest: dict, figures: dict) -> str:
    rows = [
        ("iterations", f"{manifest['n_iterations']}"
                       + ("" if manifest["stopped_early"] else " (the --max-iter cap; not stopped early)")),
        ("temperature", f"{manifest['temperature']:.3f}"),
        *((name, f"{value:.4f}") for name, value in headline(figures).items()),
        *((f"time: {k}", f"{v:.1f} s") for k, v in manifest["timings_seconds"].items()),
    ]
    width = max(len(name) for name, _ in rows)
    lines = ["", "Summary", "-" * (width + 12)]
    lines += [f"{name:<{width}}  {value:>10}" for name, value in rows]
    return "\n".join(lines)


WEAK_RATIO = 0.95  # a model below this share of the exact posterior's top-1 accuracy is called weak


def weak_model_warning(manifest: dict | None) -> str | None:
    """A warning when the model's top-1 accuracy is well below the exact posterior's, with
    the likely reasons (too few cases, the iteration cap reached); None otherwise.

    Examples
    --------
    >>> weak_model_warning({"metrics": {"posterior": {"top1_ratio_to_posterior": 0.99}}}) is None
    True
    """
    if not manifest:
        return None
    posterior = manifest.get("metrics", {}).get("posterior", {})
    # The ratio expected under the posterior where the manifest has it: the one from sampled
    # labels moves by a few thousandths between sets of cases.
    ratio = posterior.get("expected_top1_ratio_to_posterior", posterior.get("top1_ratio_to_posterior"))
    if ratio is None or ratio >= WEAK_RATIO:
        return None
    reasons = []
    max_iter = manifest.get("hyperparameters", {}).get("max_iter")
    if max_iter is not None and manifest.get("n_iterations", 0) >= max_iter:
        reasons.append(f"it reached the --max-iter cap of {max_iter} iterations without early stopping "
                       "(raise --max-iter)")
    sizes = manifest.get("sizes", {})
    n_cases = sizes.get("training", 0) + sizes.get("calibration", 0)
    if n_cases < DEFAULT_CASES:
        labelled = "labelled" in str(manifest.get("data_source", ""))
        remedy = "add labelled cases or --mix synthetic ones" if labelled else "raise --cases"
        reasons.append(f"it learned from only {n_cases:,} cases (the default is {DEFAULT_CASES:,} synthetic cases; {remedy})")
    why = (f"likely because {' and '.join(reasons)}" if reasons
           else "try more cases, more iterations or the default hyperparameters")
    n_eval = manifest.get("metrics", {}).get("n")
    noisy = f" (measured on only {n_eval:,} evaluation cases, so the figure is rough)" if n_eval and n_eval < 5000 else ""
    return (f"Warning: this model is weak: its top-1 accuracy is {ratio:.0%} of the exact posterior's{noisy}, "
            f"below the {WEAK_RATIO:.0%} crampdx aims for; {why}. "
            "It was saved, but retrain it before relying on its rankings.")
