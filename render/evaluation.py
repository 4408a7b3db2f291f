"""An artifact's evaluation figures as tables: the model against the exact posterior."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

__all__ = ["AGREEMENT_METRICS", "PAIRED_METRICS", "model_versus_posterior", "regime_markdown", "regime_table"]

PAIRED_METRICS = (("top-1 accuracy", "top1_accuracy", "posterior_top1_accuracy"),
                  ("top-3 accuracy", "top3_accuracy", "posterior_top3_accuracy"),
                  ("log loss", "log_loss", "posterior_log_loss"),
                  ("expected calibration error", "ece", "posterior_ece"))
# The figures expected under the posterior (free of the sampled labels' noise) are absent from
# manifests written before they existed; their rows are then left out.
AGREEMENT_METRICS = (("top-1 agreement with the exact posterior", "top1_agreement_with_posterior", "{:.1%}"),
                     ("top-1 accuracy, model / exact posterior", "top1_ratio_to_posterior", "{:.3f}"),
                     ("the same ratio, expected under the exact posterior (without the labels' noise)",
                      "expected_top1_ratio_to_posterior", "{:.3f}"),
                     ("calibration error against the exact posterior (without the labels' noise)",
                      "ece_against_posterior", "{:.4f}"),
                     ("mean KL(exact posterior ‖ model)", "mean_kl_posterior_to_model", "{:.3f} nats"))


def model_versus_posterior(manifest: Mapping) -> pd.DataFrame | None:
    """The artifact's evaluation figures side by side (columns ``figure``, ``model``,
    ``exact posterior``), or None when the manifest has none.

    Examples
    --------
    >>> metrics = {"model": {"top1_accuracy": 0.81}, "posterior": {"posterior_top1_accuracy": 0.82}}
    >>> model_versus_posterior({"metrics": metrics}).to_dict("records")
    [{'figure': 'top-1 accuracy', 'model': 0.81, 'exact posterior': 0.82}]
    """
    metrics = manifest.get("metrics") or {}
    model, exact = metrics.get("model") or {}, metrics.get("posterior") or {}
    rows = [(name, model[m], exact[p]) for name, m, p in PAIRED_METRICS if m in model and p in exact]
    return pd.DataFrame(rows, columns=["figure", "model", "exact posterior"]) if rows else None


def regime_table(regimes: Mapping) -> pd.DataFrame:
    """The model against the exact posterior per regime: one row per regime with the cases,
    the findings entered (mean), KL(posterior ‖ model) and top-1 / top-3 accuracy of both.

    Examples
    --------
    >>> row = {"n": 10, "findings_mean": 4.0, "kl_posterior_to_model": 0.02, "top1_model": 0.5,
    ...        "top1_posterior": 0.52, "top3_model": 0.8, "top3_posterior": 0.81}
    >>> list(regime_table({"4 findings": row}).columns)
    ['cases', 'cases n', 'findings entered', 'KL(posterior ‖ model)', 'top-1 model', 'top-1 posterior', 'top-3 model', 'top-3 posterior']
    """
    rows = [{"cases": name, "cases n": f["n"], "findings entered": f["findings_mean"],
             "KL(posterior ‖ model)": f["kl_posterior_to_model"], "top-1 model": f["top1_model"],
             "top-1 posterior": f["top1_posterior"], "top-3 model": f["top3_model"], "top-3 posterior": f["top3_posterior"]}
            for name, f in regimes.items()]
    return pd.DataFrame(rows)


def regime_markdown(regimes: Mapping) -> str:
    """:func:`regime_table` as a Markdown table (model card, README)."""
    lines = ["| cases | findings entered | KL(posterior ‖ model) | top-1 model / posterior | top-3 model / posterior |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} ({f['n']:,}) | {f['findings_mean']:.1f} | {f['kl_posterior_to_model']:.3f} | "
              f"{f['top1_model']:.1%} / {f['top1_posterior']:.1%} | {f['top3_model']:.1%} / {f['top3_posterior']:.1%} |"
              for name, f in regimes.items()]
    return "\n".join(lines)
