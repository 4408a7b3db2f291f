"""The finding schema: the shipped file, validation, encoding and the contract hash."""

from __future__ import annotations

import copy
import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crampdx.contract import Schema, SchemaError, load_schema
from crampdx.contract.schema_file import parse_schema
from crampdx.synthetic import LABEL, generate

SECTIONS = {"history", "examination", "laboratory", "background"}
SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@pytest.fixture(scope="module")
def small_frame(kb):
    """A few thousand generated cases, with the knowledge base's missingness."""
    return generate(3000, seed=11, knowledge=kb)


# ------------------------------------------------------------------------ the shipped file

def test_shipped_schema_loads_with_110_to_130_findings(schema):
    assert isinstance(schema, Schema)
    assert 110 <= len(schema) <= 130  # what real cases state (issue: roughly 110-130)


def test_every_finding_is_in_one_of_the_four_sections(schema):
    assert set(schema.sections) == SECTIONS
    for finding in schema:
        assert finding.section in SECTIONS, finding.id
    for section in SECTIONS:
        assert schema.in_section(section), f"section {section} is empty"


def test_finding_ids_are_unique_snake_case(schema, schema_document):
    ids = schema.ids
    assert len(ids) == len(set(ids))
    assert list(ids) == list(schema_document["findings"])  # file order, nothing dropped
    for fid in ids:
        assert SNAKE_CASE.match(fid), fid


def test_level_ids_are_unique_snake_case_and_binary_levels_are_fixed(schema):
    for finding in schema:
        if finding.is_numeric:
            assert finding.levels == ()
            continue
        level_ids = finding.level_ids
        assert len(level_ids) >= 2, finding.id
        assert len(level_ids) == len(set(level_ids)), finding.id
        for lid in level_ids:
            assert SNAKE_CASE.match(lid), f"{finding.id}.{lid}"
        if finding.kind == "binary":
            assert level_ids == ("absent", "present"), finding.id


def test_numeric_findings_have_unit_and_reference_within_hard_range(schema):
    numerics = [f for f in schema if f.is_numeric]
    assert numerics
    for finding in numerics:
        assert isinstance(finding.unit, str) and finding.unit.strip(), finding.id
        (ref_lo, ref_hi), (hard_lo, hard_hi) = finding.reference, finding.hard
        assert ref_lo < ref_hi and hard_lo < hard_hi, finding.id
        assert hard_lo <= ref_lo and ref_hi <= hard_hi, finding.id


def test_background_findings_have_a_known_group(schema):
    for finding in schema.in_section("background"):
        assert finding.group in {"demographics", "comorbidities", "medications", "context"}, finding.id


def test_unknown_finding_lookup_raises_schema_error(schema):
    with pytest.raises(SchemaError, match="no_such_finding"):
        schema["no_such_finding"]
    assert "no_such_finding" not in schema
    assert "potassium" in schema


# ------------------------------------------------------------------- validating documents

def _mutate(document, edit):
    document = copy.deepcopy(document)
    edit(document)
    return document


@pytest.mark.parametrize(
    ("edit", "where"),
    [
        (lambda d: d["findings"]["potassium"].update(reference=[1.0, 10.0]), "findings.potassium.reference"),
        (lambda d: d["findings"]["potassium"].pop("unit"), "findings.potassium.unit"),
        (lambda d: d["findings"]["potassium"].update(hard=[9.0, 1.5]), "findings.potassium.hard"),
        (lambda d: d["findings"]["potassium"].pop("src"), "findings.potassium.src"),
        (lambda d: d["findings"]["sex"].update(section="social"), "findings.sex.section"),
        (lambda d: d["findings"]["sex"].update(kind="ordinal"), "findings.sex.kind"),
        (lambda d: d["findings"]["sex"].update(levels={"female": "female"}), "findings.sex.levels"),
        (lambda d: d["findings"]["urge_to_move"].update(levels={"no": "no", "yes": "yes"}), "findings.urge_to_move.levels"),
        (lambda d: d["findings"]["urge_to_move"].update(colour="red"), "findings.urge_to_move.colour"),
        (lambda d: d["findings"].update(BadId={"label": "x", "section": "history", "kind": "binary"}), "findings.BadId"),
        (lambda d: d["findings"]["age"].update(abnormal_outside_reference="no"), "findings.age.abnormal_outside_reference"),
    ],
    ids=["reference-outside-hard", "no-unit", "hard-reversed", "no-src", "bad-section",
         "bad-kind", "one-level", "binary-with-levels", "unknown-field", "not-snake-case", "flag-not-bool"],
)
def test_invalid_schema_document_names_finding_and_field(schema_document, edit, where):
    with pytest.raises(SchemaError, match=re.escape(where)):
        parse_schema(_mutate(schema_document, edit))


def test_invalid_schema_toml_raises_schema_error(tmp_path):
    path = tmp_path / "findings.toml"
    path.write_text("format_version = 1\n[sections\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid TOML"):
        load_schema(path)


def test_schema_file_round_trips_through_load_schema(tmp_path, schema):
    from crampdx.contract.schema_file import SCHEMA_PATH

    copy_path = tmp_path / "findings.toml"
    copy_path.write_bytes(SCHEMA_PATH.read_bytes())
    assert load_schema(copy_path).hash == schema.hash


# ------------------------------------------------------------------------------ encoding

def test_encode_then_decode_reproduces_a_generated_frame(schema, small_frame):
    codes = schema.encode(small_frame)
    assert codes.shape == (len(small_frame), len(schema))
    decoded = schema.decode(codes, index=small_frame.index)
    pd.testing.assert_frame_equal(decoded, small_frame.drop(columns=LABEL), check_exact=True)


def test_encode_uses_level_positions_and_nan_for_not_assessed(schema):
    frame = pd.DataFrame({
        "urge_to_move": ["absent", "present", None],
        "cramp_timing": ["exertional", None, "nocturnal_at_rest"],
        "potassium": [3.1, np.nan, 4.0],
    })
    codes = schema.encode(frame)
    timing = schema["cramp_timing"]
    expected = {
        "urge_to_move": [0.0, 1.0, np.nan],
        "cramp_timing": [timing.code("exertional"), np.nan, timing.code("nocturnal_at_rest")],
        "potassium": [3.1, np.nan, 4.0],
    }
    for fid, column in expected.items():
        np.testing.assert_array_equal(codes[:, schema.position(fid)], column)
    others = [j for j, fid in enumerate(schema.ids) if fid not in expected]
    assert np.isnan(codes[:, others]).all()  # absent columns count as not assessed


def test_encode_accepts_plain_strings_like_categoricals(schema, small_frame):
    as_text = small_frame.astype(object)
    np.testing.assert_array_equal(schema.encode(as_text), schema.encode(small_frame))


@st.composite
def _code_arrays(draw, schema):
    n = draw(st.integers(min_value=1, max_value=3))
    columns = []
    for finding in schema:
        if finding.is_numeric:
            lo, hi = finding.hard
            value = st.floats(min_value=lo, max_value=hi, allow_nan=False)
        else:
            value = st.integers(min_value=0, max_value=len(finding.levels) - 1).map(float)
        columns.append(draw(st.lists(st.one_of(st.just(np.nan), value), min_size=n, max_size=n)))
    return np.array(columns, dtype=float).T


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_decode_then_encode_is_the_identity_on_valid_codes(data):
    schema = load_schema()
    codes = data.draw(_code_arrays(schema))
    np.testing.assert_array_equal(schema.encode(schema.decode(codes)), codes)


def test_csv_round_trip_through_coerce(tmp_path, schema, small_frame):
    path = tmp_path / "cases.csv"
    small_frame.to_csv(path, index=False)
    read = pd.read_csv(path)
    coerced = schema.coerce(read)
    assert list(coerced.columns) == list(small_frame.columns)
    findings = list(schema.ids)
    pd.testing.assert_series_equal(coerced[findings].dtypes, small_frame[findings].dtypes)
    # same levels and missing values exactly; numbers to within the text round trip
    np.testing.assert_allclose(schema.encode(coerced), schema.encode(small_frame), rtol=1e-12, atol=0)
    # the label is not a finding: kept as read, same values
    assert list(coerced[LABEL].astype(str)) == list(small_frame[LABEL].astype(str))


def test_coerce_adds_missing_finding_columns_as_not_assessed(schema):
    coerced = schema.coerce(pd.DataFrame({"potassium": ["3.2", None]}))
    assert list(coerced.columns) == list(schema.ids)
    np.testing.assert_array_equal(coerced["potassium"].to_numpy(), [3.2, np.nan])
    assert coerced.drop(columns="potassium").isna().all().all()


@pytest.mark.parametrize(
    ("frame", "column", "what"),
    [
        (pd.DataFrame({"serum_unobtainium": [1.0]}), "serum_unobtainium", "unknown column"),
        (pd.DataFrame({"cramp_timing": ["after_lunch"]}), "cramp_timing", "after_lunch"),
        (pd.DataFrame({"urge_to_move": ["yes"]}), "urge_to_move", "yes"),
        (pd.DataFrame({"potassium": ["low"]}), "potassium", "not a number"),
        (pd.DataFrame({"potassium": [42.0]}), "potassium", "outside the plausible range"),
        (pd.DataFrame({"age": [-3.0]}), "age", "outside the plausible range"),
    ],
    ids=["unknown-column", "unknown-level", "unknown-binary-level", "not-a-number", "above-hard-range", "below-hard-range"],
)
@pytest.mark.filterwarnings("error")  # a deprecation on the way would become a raw pandas error
def test_encode_raises_schema_error_naming_the_column(schema, frame, column, what):
    with pytest.raises(SchemaError) as error:
        schema.encode(frame)
    assert column in str(error.value)
    assert what in str(error.value)


def test_encode_names_the_offending_rows(schema):
    frame = pd.DataFrame({"potassium": [4.0, 42.0, None, 0.5, 3.9, 12.0, 20.0, 30.0]})
    with pytest.raises(SchemaError) as error:
        schema.encode(frame)
    assert "potassium, rows 2, 4, 6 and 2 more" in str(error.value)


@pytest.mark.filterwarnings("error")
def test_encode_reports_every_problem_at_once(schema):
    frame = pd.DataFrame({"bogus": [1], "cramp_timing": ["after_lunch"], "potassium": [42.0]})
    with pytest.raises(SchemaError) as error:
        schema.encode(frame)
    message = str(error.value)
    for column in ("bogus", "cramp_timing", "potassium"):
        assert column in message


def test_encode_ignores_the_label_column_only(schema):
    frame = pd.DataFrame({"etiology": ["hypokalemia"], "potassium": [2.9]})
    assert schema.encode(frame)[0, schema.position("potassium")] == 2.9
    with pytest.raises(SchemaError, match="etiology"):
        schema.encode(frame, ignore=())


# ---------------------------------------------------------------------------------- hash

def test_hash_is_stable_for_an_unchanged_schema(schema, schema_document):
    assert parse_schema(copy.deepcopy(schema_document)).hash == schema.hash
    assert re.fullmatch(r"[0-9a-f]{64}", schema.hash)


def _reorder_levels(document):
    levels = document["findings"]["cramp_timing"]["levels"]
    document["findings"]["cramp_timing"]["levels"] = dict(reversed(list(levels.items())))


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d["findings"]["potassium"].update(hard=[1.5, 9.0]),
        lambda d: d["findings"]["potassium"].update(unit="mEq/L"),
        lambda d: d["findings"]["potassium"].update(label="Serum potassium"),
        lambda d: d["findings"]["cramp_timing"]["levels"].update(other="something else"),
        _reorder_levels,
        lambda d: d["findings"].pop("urge_to_move"),
        lambda d: d["findings"].update(new_sign={"label": "A new sign", "section": "examination", "kind": "binary"}),
        lambda d: d["findings"]["urge_to_move"].update(section="examination"),
    ],
    ids=["hard-range", "unit", "label", "added-level", "level-order", "removed-finding", "added-finding", "section"],
)
def test_hash_changes_when_the_contract_changes(schema, schema_document, edit):
    assert parse_schema(_mutate(schema_document, edit)).hash != schema.hash


def test_to_dict_describes_every_finding(schema):
    described = schema.to_dict()
    assert [f["id"] for f in described["findings"]] == list(schema.ids)
    assert described["format_version"] == schema.format_version
