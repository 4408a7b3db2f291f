"""The Diagnoser: a verified, loaded model that ranks the etiology classes of a case.

Probabilities are ``softmax(logits / T)``: the gradient-boosting model's raw multi-class
log-odds divided by one temperature fitted on held-out cases. Dividing by a scalar keeps the
ranking and keeps SHAP's additivity in log-odds space, so the explanation a clinician sees
adds up to the probability shown.
"""

from __future__ import annotations

import math
import numbers
import threading
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import softmax

from model.artifact import ArtifactError, default_artifact_dir, read_artifact, retrain_command
from model.case import Case, validate_case
from model.explanation import Atypicality, Cause, Contribution, Explanation, NextFinding
from model.forest import CompiledForest
from model.red_flags import RedFlag, red_flags
from model.schema import Schema, load_schema

__all__ = ["Diagnoser"]

ATYPICAL_PERCENTILE = 0.01
# Up to this many cases are scored by the compiled forest (all trees walked at once);
# larger batches by scikit-learn, which parallelises over cases.
SMALL_BATCH = 512
CaseLike = Case | Mapping[str, Any]


class Diagnoser:
    """Ranks, explains and advises on leg-cramp cases with a trained artifact.

    Use :meth:`load` rather than the constructor.

    Attributes
    ----------
    estimator_ : sklearn.ensemble.HistGradientBoostingClassifier
        The fitted model; inputs are ``Schema.encode`` arrays, classes are positions in
        ``class_ids_``.
    temperature_ : float
        The calibration temperature T.
    class_ids_ : tuple of str
        Etiology class ids in the model's output order.
    manifest_ : dict
        The artifact's manifest (versions, hashes, metrics, ...).
    path_ : pathlib.Path or None
        Where the artifact was loaded from.
    """

    def __init__(self, estimator: Any, manifest: Mapping[str, Any], *, path: Path | None = None, schema: Schema | None = None):
        self.estimator_ = estimator
        self.manifest_ = dict(manifest)
        self.temperature_ = float(manifest["temperature"])
        self.class_ids_ = tuple(c["id"] for c in manifest["classes"])
        self.class_info_ = {c["id"]: c for c in manifest["classes"]}
        self.schema = schema or load_schema()
        self.path_ = path
        # TreeExplainer.shap_values mutates the explainer: one lock for every thread
        # (dashboard sessions share one cached Diagnoser).
        self._shap_lock = threading.Lock()

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Diagnoser":
        """Load and verify a trained artifact.

        Parameters
        ----------
        path : path, optional
            Artifact directory; default ``$CRAMPDX_MODEL`` or ``model/artifacts/default``.

        Raises
        ------
        model.artifact.ArtifactError
            One sentence saying what is wrong (missing, tampered, other library versions,
            other finding schema, a manifest whose temperature or classes do not fit the
            model) and which ``crampdx train`` command fixes it.
        """
        import synthetic

        directory = Path(path) if path is not None else default_artifact_dir()
        schema = load_schema()
        estimator, manifest = read_artifact(directory, expected={"schema_sha256": schema.hash})
        # Only model.joblib is hashed: the manifest's own entries are checked against the
        # unpickled model and the knowledge base, since they decide what the output means.
        rebuild = f"run `{retrain_command(directory)}` to rebuild the model"
        temperature = manifest.get("temperature")
        if (not isinstance(temperature, numbers.Real) or isinstance(temperature, bool)
                or not math.isfinite(temperature) or temperature <= 0):
            raise ArtifactError(f"The manifest at {directory} has no valid temperature (a positive number is needed, "
                                f"it records {temperature!r}); {rebuild}.")
        classes = manifest.get("classes")
        if (not isinstance(classes, list) or not classes
                or not all(isinstance(c, dict) and isinstance(c.get("id"), str) and isinstance(c.get("name"), str) for c in classes)):
            raise ArtifactError(f"The manifest at {directory} lacks a valid list of classes; {rebuild}.")
        kb_ids = synthetic.load_knowledge().class_ids
        codes = np.asarray(getattr(estimator, "classes_", []))
        if codes.ndim != 1 or not len(codes) or not np.issubdtype(codes.dtype, np.integer) or codes.min() < 0 or codes.max() >= len(kb_ids):
            raise ArtifactError(f"The model at {directory} does not predict the etiology classes of the knowledge base; {rebuild}.")
        manifest_ids = [c["id"] for c in classes]
        if len(manifest_ids) != len(codes):
            raise ArtifactError(f"The manifest at {directory} lists {len(manifest_ids)} classes but the model predicts {len(codes)} "
                                f"(modified or damaged); {rebuild}.")
        if manifest_ids != [kb_ids[int(code)] for code in codes]:
            raise ArtifactError(f"The classes in the manifest at {directory} are not the model's classes of the knowledge base, "
                                f"in the model's order (modified or damaged, or the knowledge base changed); {rebuild}.")
        return cls(estimator, manifest, path=directory, schema=schema)

    # -- batch prediction -----------------------------------------------------------------
    @cached_property
    def forest_(self) -> CompiledForest:
        """The model's trees as flat arrays: one case scores in about a millisecond."""
        return CompiledForest(self.estimator_)

    def scores(self, codes: np.ndarray) -> np.ndarray:
        """Calibrated log-odds (``logits / T``) for encoded cases, shape (n, n_classes)."""
        codes = np.asarray(codes, dtype=float)
        if codes.ndim == 2 and len(codes) <= SMALL_BATCH:
            return self.forest_.decision_function(codes) / self.temperature_
        return self.estimator_.decision_function(codes) / self.temperature_

    def predict_proba_codes(self, codes: np.ndarray) -> np.ndarray:
        """Probabilities for encoded cases, shape (n, n_classes), rows summing to 1."""
        return softmax(self.scores(codes), axis=1)

    def predict_proba(self, cases: pd.DataFrame) -> pd.DataFrame:
        """Probability of each etiology class for a frame of cases.

        Parameters
        ----------
        cases : pandas.DataFrame
            Shaped like ``synthetic.generate``'s output: finding columns (level ids for
            binary/categorical findings, numbers in the schema's unit, ``NaN`` where not
            assessed); the ``etiology`` column is optional and ignored; absent finding
            columns count as not assessed.

        Returns
        -------
        pandas.DataFrame
            One column per etiology id, rows summing to 1, indexed like ``cases``.

        Raises
        ------
        model.SchemaError
            Naming each column, level or value that does not fit the schema.
        """
        codes = self.schema.encode(cases)
        return pd.DataFrame(self.predict_proba_codes(codes), columns=list(self.class_ids_), index=cases.index)

    # -- one case --------------------------------------------------------------------------
    def case(self, case: CaseLike) -> Case:
        """Validate a mapping (or pass a :class:`Case` through)."""
        return validate_case(case, schema=self.schema)

    def rank(self, case: CaseLike, top: int | None = None) -> list[Cause]:
        """The differential: causes sorted by probability (the full list sums to 1).

        Parameters
        ----------
        case : Case or mapping
            Validated with :func:`model.validate_case`; raises ``CaseError`` naming every
            offending field.
        top : int, optional
            Keep only the ``top`` most probable causes.
        """
        scores = self.scores(self.case(case).codes())[0]
        probabilities = softmax(scores)
        order = np.argsort(-probabilities, kind="stable")
        causes = [self._cause(i, probabilities[i], scores[i]) for i in order]
        return causes[:top] if top is not None else causes

    def _cause(self, index: int, probability: float, score: float) -> Cause:
        info = self.class_info_[self.class_ids_[index]]
        return Cause(info["id"], info["name"], info.get("icd10"), float(probability), float(score))

    @cached_property
    def explainer_(self):
        """shap's TreeExplainer on the model (path-dependent: no background data needed,
        and "not assessed" follows the trees' learned missing-value branches)."""
        import shap

        return shap.TreeExplainer(self.estimator_, feature_perturbation="tree_path_dependent", model_output="raw")

    def shap_values(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated SHAP values (n, n_findings, n_classes) and base values (n_classes,)."""
        with self._shap_lock:
            values = np.asarray(self.explainer_.shap_values(np.asarray(codes, dtype=float), check_additivity=False))
            base = np.asarray(self.explainer_.expected_value, dtype=float).reshape(-1)
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
        case = self.case(case)
        if cause_id not in self.class_ids_:
            raise KeyError(f"unknown cause {cause_id!r}; expected one of {', '.join(self.class_ids_)}")
        k = self.class_ids_.index(cause_id)
        codes = case.codes()
        scores = self.scores(codes)[0]
        values, base = self.shap_values(codes)
        per_finding = values[0, :, k]
        contributions = []
        not_assessed = 0.0
        for j, finding in enumerate(self.schema):
            if finding.id in case:
                contributions.append(Contribution(finding.id, finding.label, finding.section, case.describe(finding.id), float(per_finding[j])))
            else:
                not_assessed += float(per_finding[j])
        contributions.sort(key=lambda c: -abs(c.contribution))
        info = self.class_info_[cause_id]
        return Explanation(
            cause_id=cause_id, cause_name=info["name"], icd10=info.get("icd10"),
            probability=float(softmax(scores)[k]), value=float(scores[k]), base_value=float(base[k]),
            contributions=tuple(contributions), not_assessed=not_assessed,
            n_not_assessed=len(self.schema) - len(case))

    def red_flags(self, case: CaseLike) -> list[RedFlag]:
        """Alerts from the seed's clinical pitfalls, most severe first (rules, not the model)."""
        case = self.case(case)
        return red_flags(case, [c.id for c in self.rank(case)])

    def next_best_findings(self, case: CaseLike, k: int = 5) -> list[NextFinding]:
        """The unentered findings whose answers are expected to sharpen the differential most.

        For each finding not yet entered, every possible answer (levels; bins for numbers)
        is weighted by its exact predictive probability under the knowledge base given the
        case; the model ranks each hypothetical case (one batched prediction) and the gain
        is the expected drop in the entropy of the differential, in bits.
        """
        import synthetic
        from synthetic.predictive import answer_distributions

        case = self.case(case)
        codes = case.codes()
        kb = synthetic.load_knowledge()
        answer_sets = answer_distributions(codes, kb, [fid for fid in self.schema.ids if fid not in case])
        if not answer_sets:
            return []
        rows, owners = [], []
        for index, answers in enumerate(answer_sets):
            finding = self.schema[answers.finding_id]
            j = self.schema.position(finding.id)
            for value in answers.values:
                row = codes[0].copy()
                row[j] = value if finding.is_numeric else finding.code(value)
                rows.append(row)
                owners.append(index)
        current = self.predict_proba_codes(codes)[0]
        hypothetical = self.predict_proba_codes(np.vstack(rows))
        entropy = -(hypothetical * np.log2(np.clip(hypothetical, 1e-300, None))).sum(axis=1)
        current_entropy = -(current * np.log2(np.clip(current, 1e-300, None))).sum()
        changes = hypothetical.argmax(axis=1) != current.argmax()
        owners = np.asarray(owners)
        results = []
        for index, answers in enumerate(answer_sets):
            mine = owners == index
            weights = answers.probabilities
            finding = self.schema[answers.finding_id]
            results.append(NextFinding(
                finding.id, finding.label, finding.section,
                float(current_entropy - weights @ entropy[mine]), float(weights @ changes[mine]),
                tuple((label, float(p)) for label, p in zip(answers.labels, weights))))
        results.sort(key=lambda r: -r.expected_information_gain)
        return results[:k]

    def atypical(self, case: CaseLike) -> Atypicality:
        """Whether this combination of findings is unusual for what the model knows.

        Compares log p(entered findings) under the knowledge base with generated cases that
        have the same findings assessed; below the 1st percentile it warns. A combination
        with probability zero under the knowledge base (log-evidence ``-inf``: no synthetic
        case can have it) gets its own message, since the model never saw anything like it.
        """
        import synthetic
        from synthetic.predictive import evidence_percentile

        case = self.case(case)
        percentile, log_evidence = evidence_percentile(case.codes(), synthetic.load_knowledge())
        impossible = log_evidence == -math.inf
        unusual = impossible or percentile < ATYPICAL_PERCENTILE
        if impossible:
            message = ("This combination of findings is impossible under the knowledge base the model was trained from "
                       "(no synthetic case has it): the ranking is an extrapolation.")
        elif unusual:
            # rounded down, so it never claims more rarity than measured (never "100.0 %")
            share = ">99.9" if percentile < 0.001 else f"{math.floor(1000 * (1 - percentile) + 1e-9) / 10:.1f}"
            message = ("This combination of findings is unusual for what the model knows "
                       f"(rarer than {share} % of comparable synthetic cases): "
                       "interpret the ranking with extra caution.")
        else:
            message = None
        return Atypicality(unusual, percentile, log_evidence, message)
