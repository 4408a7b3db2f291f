"""The inference layer: verified artifacts, the compiled forest and the Diagnoser, whose
one result type is the :class:`Assessment`.

Imports only :mod:`crampdx.contract` and :mod:`crampdx.synthetic` below it. Decision support
for clinicians, trained on synthetic cases; not validated on patients.
"""

from crampdx.model.artifact import ArtifactError, default_artifact_dir
from crampdx.model.assessment import Assessment, ModelIdentity
from crampdx.model.diagnoser import Diagnoser
from crampdx.model.red_flags import RedFlag
from crampdx.model.results import Atypicality, Cause, Contribution, Explanation, NextFinding, WaterfallStep

__all__ = [
    "ArtifactError",
    "Assessment",
    "Atypicality",
    "Cause",
    "Contribution",
    "Diagnoser",
    "Explanation",
    "ModelIdentity",
    "NextFinding",
    "RedFlag",
    "WaterfallStep",
    "default_artifact_dir",
]
