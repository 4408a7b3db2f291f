"""The dashboard's session state: the entered findings and what changes them.

Every finding's input has the key ``f:<finding id>``; an "ask or examine next" input has
``ask:<finding id>``. The functions that change entries are widget callbacks (they run
before the widgets are drawn). On the first page's path: it imports the contract only
(loading an example case, which needs the knowledge layer, is in
:mod:`crampdx.dashboard.differential`).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from crampdx.contract import Case, CaseError, findings_from_json, load_schema, validate_case
from crampdx.contract.limits import MAX_CASE_JSON_BYTES
from crampdx.contract.schema import Interval
from crampdx.errors import UserFacingError

__all__ = ["ASK_NEXT", "FINDING", "MAX_IMPORT_BYTES", "NA", "SCHEMA", "adopt", "as_entry", "clear_all", "default_of", "entered",
           "import_case", "keep_entries", "load_again", "load_case", "parse_import"]

SCHEMA = load_schema()
NA = "not_assessed"  # the first option of every finding: nothing entered
FINDING = "f:"
ASK_NEXT = "ask:"
MAX_IMPORT_BYTES = MAX_CASE_JSON_BYTES  # the contract's bound on a case file, checked by findings_from_json


def default_of(finding) -> Any:
    return "" if finding.is_numeric else NA


def as_entry(finding, value: Any) -> Any:
    """A validated value as its input holds it: measurements as text ("2.9", "low", "<3")."""
    if not finding.is_numeric or value is None:
        return default_of(finding) if value is None else value
    return value if isinstance(value, str) else value.text if isinstance(value, Interval) else f"{value:g}"


def entered() -> dict[str, Any]:
    """What the inputs hold: finding id -> value, only the findings that were assessed."""
    values = {}
    for finding in SCHEMA:
        value = st.session_state.get(FINDING + finding.id)
        if isinstance(value, str):
            value = value.strip()
        if value is not None and value not in (NA, ""):
            values[finding.id] = value
    return values


def set_findings(values: dict[str, Any]) -> None:
    """Replace every input's value (callbacks only: before the widgets are drawn)."""
    for finding in SCHEMA:
        st.session_state[FINDING + finding.id] = as_entry(finding, values.get(finding.id))


def clear_all() -> None:
    set_findings({})
    st.session_state["example"] = ""
    st.session_state.pop("import_message", None)
    st.session_state.pop("loaded", None)


def load_case(values: dict[str, Any], name: str) -> None:
    """Replace the entries with a loaded case, remembered so that it can be loaded again."""
    set_findings(values)
    st.session_state["loaded"] = (name, {fid: as_entry(SCHEMA[fid], v) for fid, v in values.items()})


def load_again() -> None:
    name, values = st.session_state["loaded"]
    set_findings(values)


def parse_import(data: bytes) -> Case:
    """A case from an uploaded JSON file: a finding -> value object or a crampdx assessment.

    Raises
    ------
    ValueError
        One clear sentence (every bound of the contract's: size, depth, numbers, lengths);
        the caller keeps the current findings.
    """
    try:
        document = findings_from_json(data)
    except (ValueError, UserFacingError) as error:
        raise ValueError(f"The case was not imported: {error}.") from None
    try:
        return validate_case(document, schema=SCHEMA)
    except CaseError as error:
        shown = list(error.problems.items())[:4]
        more = f" and {len(error.problems) - 4} more" if len(error.problems) > 4 else ""
        details = "; ".join(f"{name}: {message}" for name, message in shown)
        raise ValueError(f"The case was not imported, nothing was changed: {details}{more}.") from None


def import_case() -> None:
    upload = st.session_state.get("import_file")
    if upload is None:
        return
    try:
        case = parse_import(upload.getvalue())
    except (ValueError, UserFacingError) as error:  # the one sentence; the entered findings stay as they are
        st.session_state["import_message"] = ("error", str(error))
        return
    load_case(dict(case.values), upload.name)
    st.session_state["example"] = ""
    st.session_state["import_message"] = ("success", f"Imported {len(case)} findings from {upload.name}.")


def adopt(finding_id: str) -> None:
    """An answer given under "ask or examine next" becomes the finding's entry."""
    finding = SCHEMA[finding_id]
    st.session_state[FINDING + finding_id] = st.session_state.get(ASK_NEXT + finding_id, default_of(finding))
    st.session_state[ASK_NEXT + finding_id] = default_of(finding)


def keep_entries() -> None:
    """Keep the entries while another page is shown (Streamlit drops the state of widgets
    that are not drawn; re-assigning it marks it as the app's own)."""
    for key in [FINDING + finding.id for finding in SCHEMA] + ["example", "section"]:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]
