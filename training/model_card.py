"""The model card and the evaluation plots written into every artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from crampdx.render.evaluation import regime_markdown
from crampdx.render.validation import validation_markdown
from crampdx.training.evaluate import headline

__all__ = ["plot_calibration", "plot_confusion_matrix", "write_model_card"]

CONFUSION_PNG = "confusion_matrix.png"
CALIBRATION_PNG = "calibration.png"
MODEL_CARD = "model_card.md"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(figures: dict, path: Path) -> Path:
    """Row-normalised confusion matrix (true class by row) as a PNG."""
    from sklearn.metrics import ConfusionMatrixDisplay

    plt = _pyplot()
    matrix = np.asarray(figures["model"]["confusion_matrix"], dtype=float)
    normalised = matrix / np.clip(matrix.sum(axis=1, keepdims=True), 1, None)
    fig, ax = plt.subplots(figsize=(11, 10))
    ConfusionMatrixDisplay(normalised, display_labels=figures["class_ids"]).plot(
        ax=ax, cmap="Blues", colorbar=True, values_format=".2f", xticks_rotation=90, text_kw={"fontsize": 6})
    ax.set_title(f"Confusion matrix, row-normalised ({figures['n']:,} synthetic cases)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_calibration(figures: dict, path: Path) -> Path:
    """Reliability diagram of the top-class probability as a PNG."""
    plt = _pyplot()
    bins = figures["calibration"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", label="perfect calibration")
    ax.plot(bins["confidence"], bins["accuracy"], marker="o", label="model, from the sampled labels")
    title = f"Calibration (ECE {figures['model']['ece']:.3f}"
    if "expected_accuracy" in bins:  # the same bins, each case's hit replaced by its exact posterior probability
        ax.plot(bins["confidence"], bins["expected_accuracy"], marker=".",
                label="model, expected under the exact posterior")
        title += f"; {figures['posterior']['ece_against_posterior']:.3f} against the exact posterior"
    ax.set_xlabel("probability of the top-ranked cause")
    ax.set_ylabel("how often it was the true cause")
    ax.set_title(title + ")", fontsize=10)
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _table(rows: dict) -> str:
    lines = ["| figure | value |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in rows.items()]
    return "\n".join(lines)


def model_card(manifest: dict, figures: dict) -> str:
    """The model card (Markdown): intended use, data, metrics, calibration, limitations."""
    per_class = figures["model"]["per_class"]
    names = {c["id"]: c["name"] for c in manifest["classes"]}
    class_rows = "\n".join(
        f"| {names.get(cid, cid)} | {v['precision']:.3f} | {v['recall']:.3f} | {v['support']} |"
        for cid, v in per_class.items() if v["support"] > 0
    )
    hp = manifest["hyperparameters"]
    if manifest.get("stopped_early", manifest["n_iterations"] < hp["max_iter"]):
        iterations = f"{manifest['n_iterations']} iterations after early stopping"
    else:
        iterations = (f"{manifest['n_iterations']} iterations: it reached the max_iter cap without early stopping, "
                      "so more iterations would probably have helped")
    return f"""# Model card — crampdx

**Decision support for clinicians, trained on synthetic data. Not validated on patients.**

## Intended use
Helps a clinician work through the differential diagnosis of leg cramps: it ranks
{len(manifest['classes'])} etiology classes for the findings entered, explains each ranking
finding by finding, and flags red flags. It supports, and never replaces, clinical judgement.
It is not a diagnostic device and must not be used for patients without a clinician.

## Training data
- Source: {manifest['data_source']}.
- Synthetic cases are drawn from a declarative knowledge base
  (`{manifest['knowledge_source']}`, sha256 `{manifest['knowledge_sha256'][:12]}`) derived from
  one review article on the differential diagnosis of leg cramps. Numbers the article states
  cite its reference numbers; the rest are labelled *assumption* with a reason in the file.
- Assumptions of the generator: findings are independent given the class, its sub-profile,
  the age band and sex (apart from declared dependencies such as dialysis → eGFR); each
  finding is assessed at a rate that does not depend on the cause; priors are assumptions
  about a general-practice population.
- Sizes: {manifest['sizes']['training']:,} training cases (of which
  {int(manifest['sizes']['training'] * hp['validation_fraction']):,} for early stopping),
  {manifest['sizes']['calibration']:,} calibration cases, seed {manifest['seed']}.

## Model
scikit-learn `HistGradientBoostingClassifier` (learning rate {hp['learning_rate']}, max depth
{hp['max_depth']}, {hp['max_leaf_nodes']} leaves, {iterations}), categorical findings as numeric codes.
{_targets_text(manifest)} Probabilities are
`softmax(logits / T)` with one temperature T = {manifest['temperature']:.3f} fitted on the
calibration cases. SHAP explanations are in the same space: each cause's contributions add up to
its score (logits / T, not the log-odds of that cause), and the softmax of the causes' scores is
the probabilities shown.

## Evaluation
On {figures['n']:,} fresh synthetic cases (seed {figures['seed']}, disjoint from training), with
the exact posterior of the generator as the ceiling no model can beat on these cases:

{_table(headline(figures))}

**By regime** (how many findings a case holds): the generator's own mix (brief and full
workups), full workups of which 4, 8 or 12 findings are kept at random, and the mix without
age. Real presentations hold a handful of findings; these rows say how close the model stays
to the exact posterior there.

{regime_markdown(figures["regimes"]) if figures.get("regimes") else "(not evaluated)"}

**On real case descriptions: a small development set.** {_development_text(figures.get("development_vignettes"))}

Calibration: see `{CALIBRATION_PNG}`; confusion matrix: `{CONFUSION_PNG}`.

| class | precision | recall | cases |
|---|---|---|---|
{class_rows}

## Limitations
- Trained and evaluated on **synthetic cases only**; the figures above say how well the model
  learned the knowledge base, not how well it diagnoses patients. It has never been
  validated on patients.
- The knowledge base encodes one review article and many labelled assumptions; causes,
  findings and prevalences outside it are unknown to the model.
- Rare classes (juvenile idiopathic arthritis, metabolic myopathy) have few training cases.
- Findings not entered are treated as not assessed, never as absent.
"""


def _targets_text(manifest: dict) -> str:
    """How the training cases taught the model: soft targets for synthetic cases."""
    if not manifest["synthetic_cases"]:
        return "Fitted to each case's label."
    text = ("Each synthetic case is fitted to the generator's exact posterior over the causes, not to its one "
            "sampled label (knowledge distillation): the loss is the cross-entropy between that posterior and the "
            "model's probabilities; a labelled case of the user's counts for its label.")
    power = manifest.get("prior_power")
    if power is not None and power != 1.0:
        text += (f" Rare causes and sub-profiles were drawn more often than the generator draws them (each (cause, "
                 f"sub-profile) weight raised to the power {power:g}), but every target and every probability shown "
                 "keeps the knowledge base's own priors.")
    return text


def _development_text(figures: dict | None) -> str:
    if not figures:
        return "Not measured (the development vignettes do not fit this knowledge base)."
    return (f"{figures['n']} published vignettes (case reports, teaching cases, clinician-answered questions), mapped "
            f"into crampdx cases using only what each states (median {figures['findings_median']:.0f} findings). "
            "They were used while the knowledge base was revised, so the figures are optimistic; the set is small and "
            "unevenly sourced (2-4 per class), its 95 % intervals are wide, and other real vignettes are kept aside "
            "for an independent check (TRIPOD+AI: development data, not a validation).\n\n"
            + validation_markdown(figures, title=f"{figures['n']} development vignettes"))


def write_model_card(manifest: dict, figures: dict, directory: Path) -> None:
    """Write the model card and both plots into ``directory``."""
    plot_confusion_matrix(figures, directory / CONFUSION_PNG)
    plot_calibration(figures, directory / CALIBRATION_PNG)
    (directory / MODEL_CARD).write_text(model_card(manifest, figures), encoding="utf-8")
