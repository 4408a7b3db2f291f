"""The shared pieces of an assessment's renderings: how probabilities are shown, how a case file is read."""

from __future__ import annotations

import json

import pytest

from crampdx.contract import findings_from_json
from crampdx.render.format import percent


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


def test_a_byte_order_mark_is_accepted_and_a_finding_given_twice_is_not():
    assert findings_from_json(b"\xef\xbb\xbf" + b'{"potassium": 2.9}') == {"potassium": 2.9}
    with pytest.raises(ValueError, match="'potassium' given twice"):
        findings_from_json('{"potassium": 2.9, "potassium": 4.1}')


def test_the_markdown_report_keeps_entries_that_were_not_used_and_the_reasons_of_red_flags(tiny_diagnoser):
    from crampdx.render.markdown import assessment_markdown

    assessment = tiny_diagnoser.assess({"diabetes": "yes", "burning_feet": "yes"}, top=3,
                                       not_used={"potassium": "1.2 mmol/L is outside"})
    assert assessment.to_dict()["entries_not_used"] == {"potassium": "1.2 mmol/L is outside"}
    text = assessment_markdown(assessment)
    assert "Entered but not used" in text and "potassium: 1\\.2 mmol/L is outside" in text
    assert "*Because: diabetes, burning feet" in text
    assert "must not replace clinical judgement" in text


def test_the_markdown_report_shows_a_not_used_entry_literally(tiny_diagnoser):
    """A typed image link or link in a field or its message can never become live Markdown."""
    from crampdx.render.markdown import assessment_markdown

    assessment = tiny_diagnoser.assess({}, top=1, not_used={"![x](https://evil.example/p.png)": "[reload](https://evil.example)"})
    text = assessment_markdown(assessment)
    assert "![" not in text and "](https://evil" not in text and "evil\\.example" in text
