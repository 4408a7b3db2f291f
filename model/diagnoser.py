"""The Diagnoser: a verified, loaded model that ranks the etiology classes of a case.

Probabilities are ``softmax(logits / T)``: the gradient-boosting model's raw multi-class
log-odds divided by one temperature fitted on held-out cases. Dividing by a scalar keeps the
ranking and keeps SHAP's additivity in log-odds space, so the explanation a clinician sees
adds up to the probability shown.

The Diagnoser holds the knowledge base it was trained under (checked by hash when it is
loaded): class names and ICD-10 codes, what to ask next and the atypical-case check all come
from it, never from a different knowledge base than the model learned.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import softmax

from crampdx import __version__
from crampdx.contract.case import Case, validate_case
from crampdx.contract.limits import whole_number
from crampdx.contract.schema import Interval
from crampdx.model.artifact import default_artifact_dir
from crampdx.model.assessment import Assessment, ModelIdentity
from crampdx.model.attribution import TreeAttribution
from crampdx.model.batch_forest import HeapForest
from crampdx.model.explain import ATYPICAL_PERCENTILE, atypicality, explanations, mean_over_rows, probabilities_of
from crampdx.model.forest import CompiledForest
from crampdx.model.loading import load_model
from crampdx.model.next_findings import next_best_findings
from crampdx.model.red_flags import RedFlag, red_flags
from crampdx.model.results import Atypicality, Cause, Explanation, NextFinding
from crampdx.synthetic.kb import KnowledgeBase
from crampdx.synthetic.load import load_knowledge
from crampdx.synthetic.predictive import draw_within_ranges
from crampdx.synthetic.typicality import evidence_percentile

__all__ = ["Diagnoser"]

# Until numba has started, up to this many cases are scored by the numpy walk of the compiled
# forest (all trees at once), larger batches in compiled code (model/batch_forest.py; by
# scikit-learn when too few to pay numba's start, or the trees are too deep for it). Once a
# server's warm-up (or a large batch, for more than FEW_ROWS rows) has started numba, batches go
# to the compiled code whatever their size.
SMALL_BATCH = 512
# A result known only as a range ("potassium low") is scored as the average over this many
# values drawn from the range under the knowledge base (stratified; the same case, the same draws).
RANGE_DRAWS = 32
CaseLike = Case | Mapping[str, Any]


def _ranges(case: Case) -> dict[str, tuple[float, float]]:
    return {fid: (value.low, value.high) for fid, value in case.intervals.items()}


class Diagnoser:
    """Ranks, explains and advises on leg-cramp cases with a trained artifact.

    Use :meth:`load` rather than the constructor.

    Parameters
    ----------
    estimator : sklearn.ensemble.HistGradientBoostingClassifier
    manifest : mapping
        The artifact's verified manifest (temperature, metrics, ...).
    knowledge : KnowledgeBase
        The knowledge base the model was trained under.
    path : pathlib.Path, optional

    Attributes
    ----------
    estimator_ : sklearn.ensemble.HistGradientBoostingClassifier
        The fitted model; inputs are ``Schema.encode`` arrays.
    temperature_ : float
        The calibration temperature T.
    class_ids_ : tuple of str
        Etiology class ids in the model's output order.
    manifest_ : dict
    knowledge_ : KnowledgeBase
    schema : Schema
    path_ : pathlib.Path or None
    """

    def __init__(self, estimator: Any, manifest: Mapping[str, Any], knowledge: KnowledgeBase, *, path: Path | None = None):
        self.estimator_ = estimator
        self.manifest_ = dict(manifest)
        self.knowledge_ = knowledge
        self.schema = knowledge.schema
        self.temperature_ = float(manifest["temperature"])
        # ids (and so names and ICD-10 codes) from the model's class positions in the knowledge base
        self.class_ids_ = tuple(knowledge.class_ids[int(code)] for code in estimator.classes_)
        self.path_ = path

    @classmethod
    def load(cls, path: str | Path | None = None, *, knowledge: KnowledgeBase | None = None) -> "Diagnoser":
        """Load and verify a trained artifact.

        Parameters
        ----------
        path : path, optional
            Artifact directory; default ``$CRAMPDX_MODEL`` or the per-user model directory.
        knowledge : KnowledgeBase, optional
            The knowledge base the model must have been trained under (the shipped one by
            default).

        Raises
        ------
        crampdx.model.ArtifactError
            One sentence saying what is wrong (missing, tampered, other library versions,
            another finding schema or knowledge base, a manifest that does not fit the
            model) and which ``crampdx train`` command fixes it.
        """
        directory = Path(path) if path is not None else default_artifact_dir()
        knowledge = knowledge if knowledge is not None else load_knowledge()
        estimator, manifest = load_model(directory, knowledge)
        return cls(estimator, manifest, knowledge, path=directory)

    @cached_property
    def identity(self) -> ModelIdentity:
        """Which model and knowledge this is (for every assessment it makes; kept: hashing the
        schema cost each request about a millisecond)."""
        return ModelIdentity(__version__, self.manifest_.get("created"), self.manifest_.get("model_sha256"),
                             self.schema.hash, self.knowledge_.sha256)

    # -- batch prediction -----------------------------------------------------------------
    @cached_property
    def forest_(self) -> CompiledForest:
        """The model's trees as flat arrays, walked in numpy: one case in a few tenths of a millisecond."""
        return CompiledForest(self.estimator_)

    @cached_property
    def batch_forest_(self) -> HeapForest | None:
        """The trees laid out for compiled code (None when too deep or too many: scikit-learn scores those)."""
        return HeapForest(self.forest_) if HeapForest.supports(self.forest_) else None

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """Calibrated log-odds (``logits / T``) for encoded cases, shape (n, n_classes)."""
        codes = np.asarray(codes, dtype=float)
        # compiled heaps once their loop is compiled (one case: a server's warm-up; more rows: the
        # warm-up or a large batch); until then the numpy walk for one case or a small batch
        if codes.ndim == 2 and HeapForest.worthwhile(len(codes)) and self.batch_forest_ is not None:
            return self.batch_forest_.decision_function(codes) / self.temperature_
        if codes.ndim == 2 and len(codes) <= SMALL_BATCH:
            return self.forest_.decision_function(codes) / self.temperature_
        # Column-major: scikit-learn walks the trees one at a time over all rows, so each tree
        # reads a few columns; row-major rows made every tree stream the whole batch through
        # the cache (bench/bench_cli.py: ~4x the rows per second, the same scores).
        return self.estimator_.decision_function(np.asfortranarray(codes)) / self.temperature_

    def predict_proba_codes(self, codes: np.ndarray, ranges: Mapping[int, Mapping[str, tuple]] | None = None) -> np.ndarray:
        """Probabilities for encoded cases, shape (n, n_classes), rows summing to 1.

        ``ranges`` (row -> {finding id -> Interval or (low, high)}, as ``CaseTable.ranges``) marks the
        results known only as a range; those rows are scored as the mean over values drawn
        from the ranges, as for one case.
        """
        scores = self.scores(codes)
        for row, entries in (ranges or {}).items():
            bounds = {fid: (v.low, v.high) if isinstance(v, Interval) else v for fid, v in entries.items()}
            draws = draw_within_ranges(np.asarray(codes)[row], bounds, self.knowledge_, n=RANGE_DRAWS)
            scores[row] = self.scores(draws).mean(axis=0)
        return softmax(scores, axis=1)

    def predict_proba(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Probability of each etiology class for a frame of cases.

        Parameters
        ----------
        cases : pandas.DataFrame
            Shaped like ``crampdx.synthetic.generate``'s output: finding columns (level ids
            for binary/categorical findings, numbers in the schema's unit, ``NaN`` where not
            assessed); the ``etiology`` column is optional and ignored; absent finding
            columns count as not assessed.

        Returns
        -------
        pandas.DataFrame
            One column per etiology id, rows summing to 1, indexed like ``cases``.

        Raises
        ------
        crampdx.contract.SchemaError
            Naming each column, level or value that does not fit the schema.
        """
        codes = self.schema.encode(cases)
        return pd.DataFrame(self.predict_proba_codes(codes), columns=list(self.class_ids_), index=cases.index)

    # -- one case --------------------------------------------------------------------------
    def case(self, case: CaseLike) -> Case:
        """Validate a mapping (or pass a :class:`Case` through)."""
        return validate_case(case, schema=self.schema)

    def _rows(self, case: Case) -> np.ndarray:
        """The rows the model scores for one case: its codes, or, when results are known only
        as a range, :data:`RANGE_DRAWS` copies with values drawn from those ranges."""
        return draw_within_ranges(case.codes(), _ranges(case), self.knowledge_, n=RANGE_DRAWS)

    def case_scores(self, case: CaseLike) -> np.ndarray:
        """Calibrated scores of one case, shape (n_classes,): for results known only as a
        range, the mean score over values drawn from the range (so the explanation, the mean
        of the draws' SHAP values, still adds up to the score)."""
        return self._rows_and_scores(self.case(case))[1]

    def _rows_and_scores(self, case: Case) -> tuple[np.ndarray, np.ndarray]:
        """The rows the model scores for one case (:meth:`_rows`) and their mean score."""
        rows = self._rows(case)
        return rows, mean_over_rows(self.scores(rows))

    def _causes(self, scores: np.ndarray, probabilities: np.ndarray | None = None) -> list[Cause]:
        probabilities = probabilities_of(scores) if probabilities is None else probabilities
        order = np.argsort(-probabilities, kind="stable").tolist()
        p, s = probabilities.tolist(), scores.tolist()  # Python floats, as float() of each entry
        return [Cause(*self._class_labels[i], p[i], s[i]) for i in order]

    @cached_property
    def _class_labels(self) -> tuple[tuple[str, str, str | None], ...]:
        """(id, name, ICD-10 code) of each class position."""
        return tuple((e.id, e.name, e.icd10) for e in map(self.knowledge_.class_of, self.class_ids_))

    def rank(self, case: CaseLike, top: int | None = None) -> list[Cause]:
        """The differential: causes sorted by probability (the full list sums to 1).

        Parameters
        ----------
        case : Case or mapping
            Validated with :func:`crampdx.contract.validate_case`; raises ``CaseError``
            naming every offending field.
        top : int, optional
            Keep only the ``top`` most probable causes.
        """
        causes = self._causes(self.case_scores(case))
        return causes[:top] if top is not None else causes

    @cached_property
    def attribution_(self) -> TreeAttribution:
        """The model's SHAP explainers (all classes, or one class's trees), thread-safe."""
        return TreeAttribution(self.estimator_)

    def shap_values(self, codes: np.ndarray, classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated SHAP values (n, n_findings, n_classes) and base values (n_classes,), or
        only for the class positions ``classes`` (the last axis in that order)."""
        values, base = self.attribution_.shap_values(codes, classes)
        return values / self.temperature_, base / self.temperature_

    def explain(self, case: CaseLike, cause_id: str) -> Explanation:
        """Why ``cause_id`` has its probability for this case, finding by finding.

        SHAP values of the gradient-boosting model in the same calibrated log-odds space as
        the probabilities shown: ``base_value + sum(contributions) + not_assessed == value``
        and the softmax of the values over causes gives the probabilities. Findings not
        entered appear only in the aggregate ``not_assessed``.

        Raises
        ------
        KeyError
            If ``cause_id`` is not one of the model's causes.
        """
        return self._explain(self.case(case), [cause_id])[0]

    def _explain(self, case: Case, cause_ids: Sequence[str], rows: np.ndarray | None = None,
                 scores: np.ndarray | None = None, probabilities: np.ndarray | None = None) -> list[Explanation]:
        """Explanations of ``cause_ids``; ``rows``, ``scores`` and ``probabilities`` (the case's
        :meth:`_rows`, their mean score and its softmax) when the caller has them already."""
        unknown = [c for c in cause_ids if c not in self.class_ids_]
        if unknown:
            raise KeyError(f"unknown cause {unknown[0]!r}; expected one of {', '.join(self.class_ids_)}")
        if rows is None or scores is None:
            rows, scores, probabilities = *self._rows_and_scores(case), None
        values, base = self.shap_values(rows, [self.class_ids_.index(c) for c in cause_ids])
        return explanations(case, scores, mean_over_rows(values), base, self.class_ids_, self.knowledge_, cause_ids,
                            probabilities)

    def red_flags(self, case: CaseLike) -> list[RedFlag]:
        """Alerts from the seed's clinical pitfalls, most severe first (rules, not the model)."""
        case = self.case(case)
        return red_flags(case, [c.id for c in self.rank(case)])

    def next_best_findings(self, case: CaseLike, k: int = 5) -> list[NextFinding]:
        """The unentered findings whose answers are expected to sharpen the differential most
        (see :mod:`crampdx.model.next_findings`)."""
        case = self.case(case)
        return next_best_findings(case, softmax(self.case_scores(case)), self.knowledge_, self.class_ids_, k)

    def atypical(self, case: CaseLike) -> Atypicality:
        """Whether this combination of findings is unusual for what the model knows.

        Compares log p(entered findings) under the knowledge base with generated cases that
        have the same findings assessed; below the 1st percentile it warns. A combination
        with probability zero under the knowledge base (log-evidence ``-inf``: no synthetic
        case can have it) gets its own message, since the model never saw anything like it.
        """
        case = self.case(case)
        return atypicality(*evidence_percentile(case.codes(), self.knowledge_, ranges=_ranges(case),
                                                settle_at=ATYPICAL_PERCENTILE))

    def assess(self, case: CaseLike, *, top: int | None = None, explain: int | Sequence[str] = 1,
               next_findings: int = 0, atypical: bool = True, not_used: Mapping[str, str] | None = None) -> Assessment:
        """Everything crampdx says about one case, from one ranking.

        Parameters
        ----------
        case : Case or mapping
        top : int, optional
            How many causes the assessment reports (all by default; the ranking is always
            computed over all of them).
        explain : int or sequence of str
            Explain the ``explain`` most probable causes, or these cause ids.
        next_findings : int
            How many findings to suggest asking or examining next (0: none, and
            ``next_findings`` is None).
        atypical : bool
            Whether to run the atypical-case check (``atypicality`` is None otherwise).
        not_used : mapping, optional
            Entries that failed validation, field -> message, carried into the record.

        Raises
        ------
        crampdx.contract.CaseError
            Naming every offending field.
        KeyError
            An unknown cause id in ``explain``.
        """
        top = None if top is None else whole_number(top, "top", least=1)
        next_findings = whole_number(next_findings, "next_findings", least=0)
        if isinstance(explain, str):
            explain = [explain]
        elif not isinstance(explain, Sequence):
            explain = whole_number(explain, "explain", least=0)
        case = self.case(case)
        rows, scores = self._rows_and_scores(case)
        differential = probabilities_of(scores)
        causes = self._causes(scores, differential)
        explain_ids = [c.id for c in causes[:explain]] if isinstance(explain, int) else list(dict.fromkeys(explain))
        return Assessment(
            case=case,
            causes=tuple(causes),
            red_flags=tuple(red_flags(case, [c.id for c in causes])),
            explanations=tuple(self._explain(case, explain_ids, rows, scores, differential)) if explain_ids else (),
            next_findings=(tuple(next_best_findings(case, differential, self.knowledge_, self.class_ids_, next_findings))
                           if next_findings else None),
            atypicality=self.atypical(case) if atypical else None,
            model=self.identity,
            top=top,
            not_used=dict(not_used or {}),
        )
