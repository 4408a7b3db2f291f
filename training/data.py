"""The user's own labelled cases for ``crampdx train --data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crampdx.contract.casefile import LABEL, read_case_table, resolve_case_table
from crampdx.contract.schema import Schema, SchemaError

__all__ = ["read_labelled_cases"]


def read_labelled_cases(path: str | Path, schema: Schema, class_ids: tuple[str, ...]) -> pd.DataFrame:
    """Read the user's labelled cases (CSV or parquet) and validate them against the schema.

    Columns and values are read as leniently as by ``crampdx predict``: finding ids or
    labels, level ids or labels, yes/no, true/false, 1/0 for binary findings
    (:mod:`crampdx.contract.casefile`); every column must be a finding or ``etiology``.

    Raises
    ------
    SchemaError
        One message naming each offending column and row (1-based data rows): unknown
        columns (with a suggestion when one is close), unknown levels, non-numbers,
        impossible values, missing or unknown ``etiology`` labels; or that the file holds
        no cases.
    """
    path = Path(path)
    frame = read_case_table(path, schema)
    problems = []
    if LABEL not in frame.columns:
        problems.append("missing column 'etiology' (the class id of each case)")
    else:
        labels = frame[LABEL].astype("object")
        unknown = ~labels.isin(class_ids)
        if unknown.any():
            rows = np.flatnonzero(unknown.to_numpy()) + 1
            seen = sorted({str(v) for v in labels[unknown]})[:5]
            problems.append(f"etiology, rows {', '.join(map(str, rows[:3]))}{' …' if len(rows) > 3 else ''}: unknown class {', '.join(map(repr, seen))}; see `crampdx knowledge`")
    table = None
    try:
        table = resolve_case_table(frame, schema, keep_other=False)
    except SchemaError as error:
        problems.append(str(error))
    if problems:
        raise SchemaError(f"{path.name}: " + "; ".join(problems))
    typed = schema.decode(table.codes, index=frame.index)
    typed[LABEL] = frame[LABEL]
    return typed
