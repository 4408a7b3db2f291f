"""An artifact's evaluation figures as tables: the model against the exact posterior."""

from __future__ import annotations

from typing import Mapping

import pandas as pd

__all__ = ["AGREEMENT_METRICS", "PAIRED_METRICS", "model_versus_posterior"]

PAIRED_METRICS = (("top-1 accuracy", "top1_accuracy", "posterior_top1_accuracy"),
                  ("top-3 accuracy", "top3_accuracy", "posterior_top3_accuracy"),
                  ("log loss", "log_loss", "posterior_log_loss"))
AGREEMENT_METRICS = (("top-1 agreement with the exact posterior", "top1_agreement_with_posterior", "{:.1%}"),
                     ("top-1 accuracy, model / exact posterior", "top1_ratio_to_posterior", "{:.3f}"),
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
