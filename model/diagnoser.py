"""The Diagnoser: a verified, loaded model that ranks the etiology classes of a case.

Probabilities are ``softmax(logits / T)``: the gradient-boosting model's raw multi-class
log-odds divided by one temperature fitted on held-out cases. Dividing by a scalar keeps the
ranking and keeps SHAP's additivity in log-odds space, so the explanation a clinician sees
adds up to the probability shown.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
from scipy.special import softmax

from model.artifact import ArtifactError, default_artifact_dir, read_artifact
from model.schema import Schema, load_schema

__all__ = ["Diagnoser"]


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
            other finding schema) and that ``crampdx train`` fixes it.
        """
        directory = Path(path) if path is not None else default_artifact_dir()
        schema = load_schema()
        estimator, manifest = read_artifact(directory, expected={"schema_sha256": schema.hash})
        if manifest.get("temperature") is None or not manifest.get("classes"):
            raise ArtifactError(f"The manifest at {directory} lacks the temperature or the classes; run `crampdx train` to rebuild the model.")
        return cls(estimator, manifest, path=directory, schema=schema)

    # -- batch prediction -----------------------------------------------------------------
    def scores(self, codes: np.ndarray) -> np.ndarray:
        """Calibrated log-odds (``logits / T``) for encoded cases, shape (n, n_classes)."""
        codes = np.asarray(codes, dtype=float)
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
