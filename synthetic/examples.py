"""Typical example cases, one per main cause of leg cramps (``synthetic/knowledge/examples.toml``).

Each example is data: an id, a display name, the etiology class it illustrates, a one-line
summary and findings in the schema's ids and levels. :func:`load_examples` validates every
example's findings with :func:`crampdx.contract.validate_case` and reports every problem at once,
naming the example and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Iterable, Mapping

from crampdx.contract.case import Case, CaseError, validate_case
from crampdx.contract.schema import Schema
from crampdx.contract.schema_file import load_schema, read_toml

__all__ = ["EXAMPLES_PATH", "Example", "ExampleError", "load_examples"]

EXAMPLES_PATH = Path(__file__).parent / "knowledge" / "examples.toml"
EXAMPLES_FORMAT_VERSION = 1


class ExampleError(ValueError):
    """An examples file does not fit the format or the finding schema."""


@dataclass(frozen=True)
class Example:
    """One example case: ``case`` is the validated form of ``findings``."""

    id: str
    name: str
    cause: str
    summary: str
    findings: Mapping[str, object]
    case: Case


def parse_examples(document: Mapping, *, schema: Schema | None = None, class_ids: Iterable[str] | None = None,
                   source: str = "examples") -> tuple[Example, ...]:
    """Validate a parsed examples document.

    Parameters
    ----------
    document : mapping
        The parsed TOML.
    schema : Schema, optional
        The shipped finding schema by default.
    class_ids : iterable of str, optional
        If given, every example's ``cause`` must be one of them.

    Raises
    ------
    ExampleError
        Listing every problem, each as ``examples.<id>.<field>: message``.
    """
    schema = schema or load_schema()
    if document.get("format_version") != EXAMPLES_FORMAT_VERSION:
        raise ExampleError(f"{source}: format_version must be {EXAMPLES_FORMAT_VERSION} (got {document.get('format_version')!r})")
    raw_examples = document.get("examples")
    if not isinstance(raw_examples, Mapping) or not raw_examples:
        raise ExampleError(f"{source}: no [examples.*] tables")
    known_causes = set(class_ids) if class_ids is not None else None
    problems: list[str] = []
    examples = []
    for eid, raw in raw_examples.items():
        where = f"examples.{eid}"
        if not (eid.isidentifier() and eid == eid.lower()):
            problems.append(f"{where}: id must be snake_case")
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be a table")
            continue
        for key in raw:
            if key not in ("name", "cause", "summary", "findings"):
                problems.append(f"{where}.{key}: unknown field")
        for key in ("name", "cause", "summary"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                problems.append(f"{where}.{key}: a non-empty string is required")
        if known_causes is not None and raw.get("cause") not in known_causes:
            problems.append(f"{where}.cause: {raw.get('cause')!r} is not a class of the knowledge base")
        findings = raw.get("findings")
        if not isinstance(findings, Mapping) or not findings:
            problems.append(f"{where}.findings: a table of findings is required")
            continue
        try:
            case = validate_case(findings, schema=schema)
        except CaseError as error:
            problems += [f"{where}.findings.{field}: {message}" for field, message in error.problems.items()]
            continue
        examples.append(Example(eid, str(raw.get("name", "")), str(raw.get("cause", "")), str(raw.get("summary", "")),
                                dict(findings), case))
    if problems:
        raise ExampleError(f"{source}: " + "; ".join(problems))
    return tuple(examples)


@cache
def _load_default() -> tuple[Example, ...]:
    return parse_examples(read_toml(EXAMPLES_PATH, ExampleError), source=EXAMPLES_PATH.name)


def load_examples(path: str | Path | None = None, *, schema: Schema | None = None,
                  class_ids: Iterable[str] | None = None) -> tuple[Example, ...]:
    """Load and validate the example cases (the shipped ones by default, cached).

    Raises
    ------
    ExampleError
        Naming every example and field that does not fit.
    """
    if path is None and schema is None and class_ids is None:
        return _load_default()
    path = Path(path) if path is not None else EXAMPLES_PATH
    return parse_examples(read_toml(path, ExampleError), schema=schema, class_ids=class_ids, source=path.name)
