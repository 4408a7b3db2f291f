"""FHIR R4B JSON -> parsed resources (``fhir.resources``), and the small helpers on them.

JSON is decoded with the standard library and every resource is parsed and validated by
``fhir.resources`` (R4B); nothing from the input is evaluated. Bundles, of any type and
nested, are opened into their resources. A file given to the command line is read whole or
refused (:func:`resources_from_json`); an EHR's records are read resource by resource, one
that is not valid R4B left out and said (:func:`readable_resources`).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.resource import Resource

from crampdx.errors import UserFacingError

__all__ = ["FhirError", "quote", "readable_resources", "reference_key", "reference_of", "resources_from_json"]

QUOTE_LIMIT = 40  # characters of anything from the input shown in a message


class FhirError(ValueError, UserFacingError):
    """The input is not FHIR R4B as crampdx reads it; the message is one sentence saying why."""


def quote(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """A value from the input, quoted and cut short: never a whole long value.

    Examples
    --------
    >>> quote("Potassium [Moles/volume] in Serum or Plasma, a long display name")
    "'Potassium [Moles/volume] in Serum or Pla…'"
    """
    text = " ".join(str(value).split())
    return repr(text if len(text) <= limit else text[:limit] + "…")


def reference_of(resource: Resource, position: int | None = None) -> str:
    """``Type/id`` of a resource, or ``Type (item n)`` when it has no id."""
    kind = resource.get_resource_type()
    if resource.id:
        return f"{kind}/{resource.id}"
    return f"{kind} (item {position + 1})" if position is not None else kind


def reference_key(reference: str | None) -> tuple[str | None, str] | None:
    """(type, id) a reference points at: ``Patient/p1``, an absolute URL ending so (a
    ``_history`` tail dropped), or ``urn:uuid:…`` (type unknown: matched against ids).

    Examples
    --------
    >>> reference_key("https://ehr.example/fhir/Patient/p1/_history/3"), reference_key("urn:uuid:9f2c")
    (('Patient', 'p1'), (None, '9f2c'))
    """
    if not reference or reference.startswith("#"):
        return None
    if reference.startswith(("urn:uuid:", "urn:oid:")):
        return None, reference.split(":", 2)[2]
    parts = reference.split("/_history/")[0].rstrip("/").split("/")
    return (parts[-2], parts[-1]) if len(parts) >= 2 else (None, parts[-1])


def _decode(data: Any) -> Any:
    if isinstance(data, (bytes, bytearray)):
        try:
            data = bytes(data).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise FhirError("the input is not UTF-8 text, so it is not FHIR JSON; give a FHIR R4B JSON file") from None
    if isinstance(data, str):
        try:
            return json.loads(data)
        except json.JSONDecodeError as error:
            raise FhirError(f"the input is not JSON ({error.msg} at line {error.lineno}, column {error.colno}); "
                            "give a FHIR R4B Bundle or resource as JSON") from None
    return data


def _name(raw: Any, where: str) -> str:
    """How a raw resource is named in a message: ``Observation/k1`` or where it stands."""
    if isinstance(raw, dict) and isinstance(raw.get("resourceType"), str):
        rid = raw.get("id")
        return f"{quote(raw['resourceType'])[1:-1]}/{quote(rid)[1:-1]}" if isinstance(rid, str) \
            else f"{quote(raw['resourceType'])[1:-1]} ({where})"
    return where


def _check_types(raw: Any, where: str) -> None:
    """Every resource (and every Bundle entry's) names an R4B resource type."""
    if not isinstance(raw, dict):
        raise FhirError(f"{where} is not a JSON object; a FHIR resource is an object with a resourceType")
    kind = raw.get("resourceType")
    if not isinstance(kind, str):
        raise FhirError(f"{where} has no resourceType, so it is not a FHIR resource")
    try:
        get_fhir_model_class(kind)
    except (KeyError, ValueError):
        raise FhirError(f"{where}: {quote(kind)} is not a FHIR R4B resource type") from None
    if kind == "Bundle" and isinstance(raw.get("entry"), list):
        for i, entry in enumerate(raw["entry"]):
            if isinstance(entry, dict) and "resource" in entry:
                _check_types(entry["resource"], f"entry {i + 1} of {_name(raw, where)}")


def _field_error(raw: dict, where: str, error: ValueError) -> FhirError:
    """The first problem pydantic found, named by the resource (inside Bundles) and the field."""
    errors = error.errors() if hasattr(error, "errors") else []
    if not errors:
        return FhirError(f"{_name(raw, where)} is not valid FHIR R4B ({quote(error, 80)}); correct or remove it")
    first = errors[0]
    loc, inner = list(first.get("loc", ())), raw
    while len(loc) >= 3 and loc[0] == "entry" and loc[2] == "resource" and isinstance(inner.get("entry"), list):
        index = loc[1]
        where, inner, loc = f"entry {index + 1} of {_name(inner, where)}", inner["entry"][index]["resource"], loc[3:]
    field = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in loc).replace(".[", "[") or "?"
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ").rstrip(".")
    more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
    return FhirError(f"{_name(inner, where)}, field {quote(field, 60)[1:-1]}: {quote(message, 80)[1:-1]}{more}; "
                     "correct the record or leave it out")


def _parse(raw: Any, where: str) -> Resource:
    _check_types(raw, where)
    try:
        return get_fhir_model_class(raw["resourceType"]).model_validate(raw)
    except ValueError as error:  # pydantic's ValidationError is a ValueError
        raise _field_error(raw, where, error) from None
    except (KeyError, TypeError):  # fhir.resources meets a nested resource of a type it does not know
        raise FhirError(f"{_name(raw, where)} holds a resource of a type that is not FHIR R4B (in a contained "
                        "resource or a Bundle entry); correct the record or leave it out") from None


def _opened(resource: Resource) -> Iterator[Resource]:
    """A resource, or a Bundle's resources (nested Bundles opened too)."""
    if resource.get_resource_type() != "Bundle":
        yield resource
        return
    for entry in resource.entry or ():
        if entry.resource is not None:
            yield from _opened(entry.resource)


def resources_from_json(data: Any) -> list[Resource]:
    """Parse FHIR R4B JSON into ``fhir.resources`` R4B resources, Bundles opened.

    Parameters
    ----------
    data : bytes, str, dict or list
        JSON text, or JSON already parsed: a Bundle (any type, e.g. a CDS Hooks searchset),
        one resource, or a list of resources and Bundles.

    Returns
    -------
    list of fhir.resources.R4B.resource.Resource
        Every resource in input order, Bundles replaced by their entries' resources;
        resources of types crampdx does not read are kept (``findings_from_fhir`` reports
        them as not used).

    Raises
    ------
    FhirError
        The input is not JSON, not a FHIR resource, or not valid R4B: one sentence naming
        the resource (type/id) and the field.

    Examples
    --------
    >>> bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
    ...     {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female"}}]}
    >>> [reference_of(r) for r in resources_from_json([bundle, {"resourceType": "Encounter", "id": "e1",
    ...                                                     "status": "finished", "class": {"code": "AMB"}}])]
    ['Patient/p1', 'Encounter/e1']
    >>> try:
    ...     resources_from_json('{"resourceType": "Observation", "id": "k1", "status": "final", "code": {},'
    ...                         ' "effectiveDateTime": "2024-13-45"}')
    ... except FhirError as error:
    ...     print(error)
    Observation/k1, field effectiveDateTime: DateTime value string does not match spec regex; correct the record or leave it out
    """
    data = _decode(data)
    if isinstance(data, dict):
        items, describe = [data], (lambda i: "the input")
    elif isinstance(data, list):
        items, describe = data, (lambda i: f"item {i + 1} of the list")
    else:
        raise FhirError(f"the input is a JSON {type(data).__name__}, not a FHIR resource or a list of them; "
                        "give a FHIR R4B Bundle or resource")
    resources: list[Resource] = []
    for i, raw in enumerate(items):
        resources.extend(_opened(_parse(raw, describe(i))))
    return resources


def readable_resources(data: Any) -> tuple[list[Resource], list[str]]:
    """Parse FHIR R4B JSON as :func:`resources_from_json` does, resource by resource: a
    Bundle's entry that is not a valid R4B resource is left out, with the sentence saying why,
    instead of refusing everything (an EHR's records: the others still count).

    Returns
    -------
    resources : list of fhir.resources.R4B.resource.Resource
    left_out : list of str
        One sentence per resource left out, naming it (type/id) and the field, or the Bundle entry
        that is not a JSON object.

    Raises
    ------
    FhirError
        The input as a whole is not JSON or not FHIR (no resource type at its top).

    Examples
    --------
    >>> bundle = {"resourceType": "Bundle", "type": "searchset", "entry": [
    ...     {"resource": {"resourceType": "Observation", "id": "k1", "status": "final", "code": {},
    ...                   "effectiveDateTime": "2024-13-45"}},
    ...     {"resource": {"resourceType": "Patient", "id": "p1", "gender": "female"}}]}
    >>> resources, left_out = readable_resources(bundle)
    >>> [reference_of(r) for r in resources], left_out
    (['Patient/p1'], ['Observation/k1, field effectiveDateTime: DateTime value string does not match spec regex; correct the record or leave it out'])
    """
    data = _decode(data)
    items = data if isinstance(data, list) else [data]
    if not isinstance(data, (dict, list)):
        raise FhirError(f"the input is a JSON {type(data).__name__}, not a FHIR resource or a list of them; "
                        "give a FHIR R4B Bundle or resource")
    resources: list[Resource] = []
    left_out: list[str] = []

    def read(raw: Any, where: str) -> None:
        if isinstance(raw, dict) and raw.get("resourceType") == "Bundle" and isinstance(raw.get("entry"), list):
            for i, entry in enumerate(raw["entry"]):
                if not isinstance(entry, dict):  # (an entry without a resource holds no record)
                    left_out.append(f"entry {i + 1} of {_name(raw, where)} is not a JSON object, so no record was read "
                                    "from it; correct the Bundle or leave the entry out")
                elif entry.get("resource") is not None:
                    read(entry["resource"], f"entry {i + 1} of {_name(raw, where)}")
            return
        try:
            resources.extend(_opened(_parse(raw, where)))
        except FhirError as error:
            left_out.append(str(error))

    for i, raw in enumerate(items):
        where = "the input" if isinstance(data, dict) else f"item {i + 1} of the list"
        if not (isinstance(raw, dict) and raw.get("resourceType") == "Bundle"):
            _check_types(raw, where)  # not an R4B resource at all: the whole input is refused
        read(raw, where)
    return resources, left_out
