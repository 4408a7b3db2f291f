"""One case read from JSON text, at a bounded cost whatever the text holds.

The text is refused, with one sentence, when it is larger than
:data:`~crampdx.contract.limits.MAX_CASE_JSON_BYTES`, nested deeper than
:data:`~crampdx.contract.limits.MAX_JSON_DEPTH` (checked in one linear pass before parsing,
so that 100,000 opening brackets cost a scan and never a RecursionError), holds a number
beyond the range of floats or NaN/Infinity (not JSON), or gives a key twice (checked with
one set per object: linear).
"""

from __future__ import annotations

import json
import math
import re

from crampdx.contract.limits import MAX_CASE_JSON_BYTES, MAX_JSON_DEPTH, MAX_NUMBER
from crampdx.contract.schema import SchemaError
from crampdx.contract.values import is_not_assessed
from crampdx.errors import clip, quote

__all__ = ["findings_from_json", "json_depth", "strict_json"]

_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"')  # a JSON string (unrolled: linear, no backtracking)
_DIGITS = len(str(int(MAX_NUMBER)))  # 309: an integer with more digits cannot be a float
_SHOWN_DUPLICATES = 5


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep the brackets of a JSON text nest, counted up to ``limit + 1`` (one linear
    pass over the text outside its strings; malformed text is left for the parser).

    Examples
    --------
    >>> json_depth('{"findings": {"potassium": "[[["}}')
    2
    >>> json_depth("[" * 100_000)
    21
    """
    outside = _STRING.sub("", text)
    deepest = depth = 0
    for bracket in re.findall(r"[\[\]{}]", outside):
        depth += 1 if bracket in "[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def findings_from_json(data: str | bytes) -> dict:
    """The findings of a case file: a JSON object of finding -> value, or an assessment
    exported by crampdx (its ``findings``). Values are validated later, by ``validate_case``.

    Raises
    ------
    SchemaError
        One sentence (it is a ValueError): larger than 1 MB, not UTF-8 JSON, nested too deep,
        a number beyond the range of floats or NaN, a key given twice, not an object of
        findings, or no finding given (every value null or "not assessed": ranking it would
        show only the prior).

    Examples
    --------
    >>> findings_from_json('{"potassium": 2.9, "Leg weakness": "yes"}')
    {'potassium': 2.9, 'Leg weakness': 'yes'}
    >>> try:
    ...     findings_from_json('{"age": 70, "age": 71}')
    ... except ValueError as error:
    ...     print(error)
    'age' given twice; keep one value for each finding
    """
    if len(data) > MAX_CASE_JSON_BYTES:
        raise SchemaError(f"the case file has {len(data):,} {'bytes' if isinstance(data, bytes) else 'characters'}; "
                          f"a case is at most {MAX_CASE_JSON_BYTES:,} bytes of JSON")
    document = strict_json(data)
    if isinstance(document, dict) and isinstance(document.get("findings"), dict):
        document = document["findings"]
    if not isinstance(document, dict) or not document:
        raise SchemaError("expected a JSON object of finding -> value, or an assessment exported by crampdx")
    if all(is_not_assessed(value) for value in document.values()):
        raise SchemaError("the case gives no finding: every value is null or not assessed; enter at least one "
                          "finding, as ranking nothing would show only how common each cause is")
    return document


def strict_json(data: str | bytes) -> object:
    """JSON read strictly: UTF-8, nesting checked in one pass before parsing, no NaN or
    Infinity, no number beyond the float range, no key given twice (any document shape;
    used for case files and for the service's request bodies).

    Examples
    --------
    >>> strict_json(b'{"k": [1, 2.5]}')
    {'k': [1, 2.5]}
    >>> try:
    ...     strict_json('{"potassium": NaN}')
    ... except ValueError as error:
    ...     print(error)
    NaN is not a number JSON allows; write null for a finding not assessed, or leave it out
    """
    try:
        text = data.decode("utf-8-sig") if isinstance(data, bytes) else data  # a byte-order mark is harmless
    except UnicodeDecodeError as error:
        raise SchemaError(f"not valid JSON: not UTF-8 text ({clip(str(error))}); save the file as UTF-8") from None
    # no deeper than it has opening brackets: a usual body (a few) needs no scan
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and json_depth(text) > MAX_JSON_DEPTH:
        raise SchemaError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels; a case is an object of "
                          "finding -> value (or an assessment exported by crampdx)")
    try:
        document = json.loads(text, object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant,
                              parse_int=_integer, parse_float=_float)
    except json.JSONDecodeError as error:
        raise SchemaError(f"not valid JSON ({clip(str(error))})") from None
    except RecursionError:  # not reached after json_depth; kept so that no input can end in a traceback
        raise SchemaError(f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    return document


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    document = dict(pairs)
    if len(document) == len(pairs):
        return document
    seen: set[str] = set()
    twice: dict[str, None] = {}  # in file order
    for key, _ in pairs:  # linear: a large file with many keys must not take minutes
        if key in seen:
            twice[key] = None
        seen.add(key)
    shown = ", ".join(quote(key) for key in list(twice)[:_SHOWN_DUPLICATES])
    more = f" and {len(twice) - _SHOWN_DUPLICATES:,} more" if len(twice) > _SHOWN_DUPLICATES else ""
    raise SchemaError(f"{shown}{more} given twice; keep one value for each finding")


def _no_constant(name: str):
    raise SchemaError(f"{name} is not a number JSON allows; write null for a finding not assessed, or leave it out")


def _beyond(text: str) -> SchemaError:
    return SchemaError(f"the number {quote(text)} is beyond the range of numbers (±{MAX_NUMBER:.1e}); "
                       "correct the value or its unit")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > _DIGITS:  # int() itself refuses more than 4,300 digits with a ValueError
        raise _beyond(text)
    value = int(text)
    if abs(value) > MAX_NUMBER:
        raise _beyond(text)
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _beyond(text)
    return value
