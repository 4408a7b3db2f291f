"""crampdx model package: the input contract (finding schema, case validation) and the
Diagnoser that ranks, explains and advises.

Decision support for clinicians, trained on synthetic cases; not validated on patients.
"""

from model.case import Case, CaseError, validate_case
from model.diagnoser import Diagnoser
from model.explanation import Atypicality, Cause, Contribution, Explanation, NextFinding
from model.red_flags import RedFlag
from model.schema import Finding, Level, Schema, SchemaError, load_schema

__all__ = [
    "Atypicality",
    "Case",
    "CaseError",
    "Cause",
    "Contribution",
    "Diagnoser",
    "Explanation",
    "Finding",
    "Level",
    "NextFinding",
    "RedFlag",
    "Schema",
    "SchemaError",
    "load_schema",
    "validate_case",
]
