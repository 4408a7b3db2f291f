"""crampdx model package: the finding schema (the input contract) and, later, the Diagnoser.

Decision support for clinicians, trained on synthetic cases; not validated on patients.
"""

from model.schema import Finding, Level, Schema, SchemaError, load_schema

__all__ = ["Finding", "Level", "Schema", "SchemaError", "load_schema"]
