"""The input contract: the finding schema, one patient's case, and files of cases.

The bottom layer of crampdx: it imports no other crampdx package.
"""

from crampdx.contract.case import Case, CaseError, describe_value, validate_case, validate_what_is_valid
from crampdx.contract.casejson import findings_from_json
from crampdx.contract.schema import Finding, Level, Schema, SchemaError
from crampdx.contract.schema_file import load_schema, parse_schema

__all__ = [
    "Case",
    "CaseError",
    "CaseTable",
    "Finding",
    "Level",
    "Schema",
    "SchemaError",
    "describe_value",
    "findings_from_json",
    "load_schema",
    "parse_schema",
    "read_case_table",
    "resolve_case_table",
    "validate_case",
    "validate_what_is_valid",
]

# Files of cases need pandas, which the dashboard's first page (one case) does without: their
# names are looked up here on first use instead of imported with the package.
_CASE_FILES = {"CaseTable", "read_case_table", "resolve_case_table"}


def __getattr__(name: str):
    if name in _CASE_FILES:
        from crampdx.contract import casefile

        return getattr(casefile, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
