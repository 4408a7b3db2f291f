"""Many cases ranked at once: one row per case with its most probable causes."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from crampdx.model.assessment import ModelIdentity

__all__ = ["RESERVED_COLUMNS", "batch_document", "ranked_table"]

RESERVED_COLUMNS = ("row",)  # output columns that a carried-through column must not shadow


def ranked_table(proba: np.ndarray, class_ids: tuple[str, ...], top: int, *, label: pd.Series | None = None,
                 other: pd.DataFrame | None = None, first_row: int = 1) -> pd.DataFrame:
    """One row per case: ``row`` (1-based, from ``first_row`` for a chunk of a larger
    table), the label if given, carried columns, then ``cause_1, probability_1, …`` for the
    ``top`` most probable causes.

    Raises
    ------
    ValueError
        A carried column has the name of an output column.

    Examples
    --------
    >>> table = ranked_table(np.array([[0.2, 0.8]]), ("a", "b"), 1)
    >>> table.to_dict("records")
    [{'row': 1, 'cause_1': 'b', 'probability_1': 0.8}]
    """
    top = min(top, proba.shape[1])
    order = np.argsort(-proba, axis=1, kind="stable")[:, :top]
    ids = np.asarray(class_ids)
    out = pd.DataFrame({"row": np.arange(first_row, first_row + len(proba))})
    if label is not None:
        out["etiology"] = label.to_numpy()
    ranked = {}
    for r in range(top):
        ranked[f"cause_{r + 1}"] = ids[order[:, r]]
        ranked[f"probability_{r + 1}"] = np.take_along_axis(proba, order[:, [r]], axis=1)[:, 0].round(6)
    other = other if other is not None else pd.DataFrame(index=range(len(proba)))
    clashes = [str(c) for c in other.columns if str(c) in RESERVED_COLUMNS or str(c) in ranked]
    if clashes:
        raise ValueError(f"column {', '.join(map(repr, clashes))} would clash with an output column of the same name; "
                         "rename it")
    for column in other.columns:  # carried through unchanged (ids, sites, dates …)
        out[column] = other[column].to_numpy()
    for column, values in ranked.items():
        out[column] = values
    return out


def batch_document(table: pd.DataFrame, model: ModelIdentity, disclaimer: str) -> dict:
    """The JSON form of a ranked table: it carries the disclaimer and the model with the rankings."""
    return {"disclaimer": disclaimer, "model": model.to_dict(), "cases": json.loads(table.to_json(orient="records"))}
