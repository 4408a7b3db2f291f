"""External validation: the model and the exact posterior on labelled real cases.

A file of real cases (JSON Lines: one ``{"id", "gold", "case"}`` object per line; or CSV with
a ``gold`` column beside the finding columns) is read with the case contract, each case is
ranked by the model and by the knowledge base's exact posterior, and the figures a clinical
reader expects are reported for both side by side: top-1/3/5 accuracy with 95 % Wilson
confidence intervals, the mean reciprocal rank, the gold class's mean probability, per-class
figures and the cases ranked worst. Small files give wide intervals; the report says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.stats import binomtest

from crampdx.contract import Case, CaseError, load_schema, read_case_table, resolve_case_table, validate_case
from crampdx.contract.schema import SchemaError
from crampdx.model.diagnoser import Diagnoser
from crampdx.synthetic.posterior import case_posterior

__all__ = ["LabelledCase", "read_labelled_file", "validate_on"]

GOLD = "gold"
TOP_K = (1, 3, 5)


@dataclass(frozen=True)
class LabelledCase:
    """One real case: an id, its gold etiology class and the validated findings."""

    id: str
    gold: str
    case: Case


def read_labelled_file(path: str | Path, class_ids: tuple[str, ...]) -> list[LabelledCase]:
    """Read labelled cases (``.jsonl`` or ``.csv``), every problem named with its line or row.

    Raises
    ------
    SchemaError
        One message listing every line (or row) that is not a valid labelled case: not JSON,
        no ``gold``, a gold class the knowledge base does not have, or a case that does not
        validate (with the field and what is accepted).
    """
    path = Path(path)
    if not path.is_file():
        raise SchemaError(f"{path}: no such file; give a .jsonl or .csv file of labelled cases")
    if path.suffix.lower() == ".csv":
        return _read_csv(path, class_ids)
    if path.suffix.lower() not in (".jsonl", ".json"):
        raise SchemaError(f"{path}: use a .jsonl file (one {{\"id\", \"gold\", \"case\"}} object per line) or a .csv file")
    cases, problems = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(f"line {number}: not valid JSON ({error.msg})")
            continue
        if not isinstance(record, dict) or not isinstance(record.get("case"), dict):
            problems.append(f"line {number}: expected an object with \"gold\" and \"case\" (finding -> value)")
            continue
        gold = record.get(GOLD)
        if gold not in class_ids:
            problems.append(f"line {number}: gold {gold!r} is not a class; see `crampdx knowledge`")
            continue
        try:
            case = validate_case(record["case"])
        except CaseError as error:
            problems.append(f"line {number}: " + "; ".join(f"{k}: {v}" for k, v in error.problems.items()))
            continue
        cases.append(LabelledCase(str(record.get("id", number)), gold, case))
    return _checked(path, cases, problems)


def _read_csv(path: Path, class_ids: tuple[str, ...]) -> list[LabelledCase]:
    frame = read_case_table(path)
    if GOLD not in frame.columns:
        raise SchemaError(f"{path}: no '{GOLD}' column (the etiology class of each case)")
    schema = load_schema()
    table = resolve_case_table(frame.drop(columns=[GOLD]), schema, keep_other=True)
    ids = table.other["id"].astype(str) if "id" in table.other.columns else None
    problems, cases = [], []
    for row, gold in enumerate(frame[GOLD].astype(str)):
        if gold not in class_ids:
            problems.append(f"row {row + 1}: gold {gold!r} is not a class; see `crampdx knowledge`")
            continue
        cases.append(LabelledCase(ids.iloc[row] if ids is not None else str(row + 1), gold, table.case(row, schema)))
    return _checked(path, cases, problems)


def _checked(path: Path, cases: list[LabelledCase], problems: list[str]) -> list[LabelledCase]:
    if problems:
        shown = "; ".join(problems[:10]) + (f"; and {len(problems) - 10} more" if len(problems) > 10 else "")
        raise SchemaError(f"{path}: {shown}")
    if not cases:
        raise SchemaError(f"{path} holds no cases")
    return cases


def _wilson(successes: int, n: int) -> list[float]:
    interval = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def _summary(ranks: np.ndarray, gold_probability: np.ndarray) -> dict:
    n = len(ranks)
    out = {f"top{k}": {"value": float((ranks <= k).mean()), "ci95": _wilson(int((ranks <= k).sum()), n)} for k in TOP_K}
    out["mean_reciprocal_rank"] = float((1.0 / ranks).mean())
    out["gold_probability_mean"] = float(gold_probability.mean())
    return out


def validate_on(diagnoser: Diagnoser, cases: list[LabelledCase], *, worst: int = 10) -> dict:
    """The model and the exact posterior on labelled cases, side by side.

    Returns
    -------
    dict
        ``n``, ``model`` and ``posterior`` (top-1/3/5 with 95 % Wilson intervals, mean
        reciprocal rank, mean probability of the gold class), ``per_class`` and ``worst``
        (the cases whose gold class the model ranks lowest), and ``findings_median``.
    """
    kb = diagnoser.knowledge_
    class_ids = kb.class_ids
    model = np.zeros((len(cases), len(class_ids)))
    exact = np.zeros_like(model)
    order = [class_ids.index(c) for c in diagnoser.class_ids_]
    for i, item in enumerate(cases):
        scores = diagnoser.case_scores(item.case)
        model[i, order] = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
        exact[i] = case_posterior(item.case, kb)
    gold = np.array([class_ids.index(item.gold) for item in cases])
    rows = np.arange(len(cases))

    def ranks(proba: np.ndarray) -> np.ndarray:
        return 1 + (proba > proba[rows, gold][:, None]).sum(axis=1)

    model_rank, exact_rank = ranks(model), ranks(exact)
    per_class = {}
    for cid in sorted(set(item.gold for item in cases), key=class_ids.index):
        mine = gold == class_ids.index(cid)
        per_class[cid] = {"n": int(mine.sum()),
                          "top1_model": float((model_rank[mine] == 1).mean()), "top3_model": float((model_rank[mine] <= 3).mean()),
                          "top1_posterior": float((exact_rank[mine] == 1).mean()),
                          "top3_posterior": float((exact_rank[mine] <= 3).mean())}
    worst_rows = sorted(rows, key=lambda r: (-model_rank[r], model[r, gold[r]]))[:worst]
    return {
        "n": len(cases),
        "findings_median": float(np.median([len(item.case) for item in cases])),
        "model": _summary(model_rank, model[rows, gold]),
        "posterior": _summary(exact_rank, exact[rows, gold]),
        "per_class": per_class,
        "worst": [{"id": cases[r].id, "gold": cases[r].gold, "rank_model": int(model_rank[r]),
                   "rank_posterior": int(exact_rank[r]), "gold_probability_model": float(model[r, gold[r]]),
                   "top_model": diagnoser.class_ids_[int(np.argmax(model[r, order]))]} for r in worst_rows],
    }
