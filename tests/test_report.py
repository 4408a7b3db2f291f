"""The shared pieces of a case report: how probabilities are shown, how a case file is read."""

from __future__ import annotations

import json

import pytest

from model.report import findings_from_json, percent


@pytest.mark.parametrize(("p", "shown"), [(1.0, ">99.9%"), (0.9996, ">99.9%"), (0.9994, "99.9%"), (0.5, "50.0%"),
                                          (0.0006, "0.1%"), (0.0004, "<0.1%"), (0.0, "<0.1%")])
def test_probabilities_never_show_as_certain(p, shown):
    assert percent(p) == shown


def test_a_case_file_is_an_object_of_findings_or_an_exported_report():
    assert findings_from_json('{"potassium": 2.9}') == {"potassium": 2.9}
    report = {"format_version": 1, "findings": {"sex": "female"}, "differential": []}
    assert findings_from_json(json.dumps(report).encode()) == {"sex": "female"}


@pytest.mark.parametrize(("data", "message"), [(b"{", "not valid JSON"), (b"\xff\xfe", "not valid JSON"),
                                               (b"[1, 2]", "JSON object"), (b"{}", "JSON object")])
def test_a_bad_case_file_says_what_is_wrong(data, message):
    with pytest.raises(ValueError, match=message):
        findings_from_json(data)
