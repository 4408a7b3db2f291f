"""Bounded input: every number, nesting depth, key, value, file and table beyond a limit is
refused with one short sentence at a bounded cost, and a property-based test drives
validate_case, the case-file readers and the JSON import with adversarial input: a result or
a UserFacingError, nothing else."""

from __future__ import annotations

import json
import math
import re
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import possible_case
from crampdx.cli.main import main
from crampdx.contract import (Case, CaseError, SchemaError, findings_from_json, load_schema, read_case_table,
                              resolve_case_table, validate_case, validate_what_is_valid)
from crampdx.contract import casechunks, casereading
from crampdx.contract.casejson import json_depth
from crampdx.contract.limits import (MAX_CASE_FIELDS, MAX_CASE_JSON_BYTES, MAX_HEADER_CHARS, MAX_JSON_DEPTH,
                                     MAX_TABLE_COLUMNS, MAX_VALUE_CHARS)
from crampdx.contract.values import QUALITATIVE_WORDS
from crampdx.errors import QUOTE_CHARS, UserFacingError, quote

SCHEMA = load_schema()
# hypothesis warns when a drawn example (a 300,000-character name) has a large repr: intended here
pytestmark = pytest.mark.filterwarnings("ignore:Generating overly large repr")
# A message quotes at most QUOTE_CHARS characters of a value; with the field name, the
# accepted levels and repr escapes, one problem stays well under this.
PROBLEM_CHARS = 2_000
MESSAGE_CHARS = 20_000


def refused(call, error=UserFacingError) -> str:
    with pytest.raises(error) as caught:
        call()
    message = str(caught.value)
    assert len(message) < MESSAGE_CHARS, len(message)
    return message


# ------------------------------------------------------------------------- quoting

def test_quote_shows_at_most_the_limit_and_the_full_length():
    assert quote("x" * 100_000_000) == repr("x" * QUOTE_CHARS + "…") + " (100,000,000 characters)"
    assert quote("Agee") == "'Agee'"
    assert quote(10 ** 5000) == "an integer of about 5,001 digits"  # str() of it raises ValueError
    assert quote(-(10 ** 400)) == "an integer of 401 digits"
    assert len(quote(list(range(1_000_000)))) <= QUOTE_CHARS + 1
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    assert quote(nested) == "[[[...]]]"  # repr() of it raises RecursionError

    class Hostile:
        def __repr__(self):
            raise RuntimeError("no")

    assert quote(Hostile()).startswith("<Hostile instance")


# ------------------------------------------------------------------ numbers and values

@pytest.mark.parametrize("finding", ["potassium", "age", "med_diuretic", "pedal_pulses"])
@pytest.mark.parametrize("number", [10 ** 400, -(10 ** 400), 10 ** 5000], ids=["1e400", "-1e400", "1e5000"])
def test_integers_beyond_the_float_range_are_refused_naming_the_finding(finding, number):
    message = refused(lambda: validate_case({finding: number}), CaseError)
    assert message.startswith(f"{finding}: ") and "digits" in message


def test_an_integer_that_fits_a_float_is_still_a_number():
    assert validate_case({"potassium": 3}).values["potassium"] == 3.0
    assert "outside the plausible range" in refused(lambda: validate_case({"potassium": 10 ** 300}), CaseError)


def test_booleans_are_answers_not_numbers():
    assert "True is not a number" in refused(lambda: validate_case({"potassium": True}), CaseError)
    assert validate_case({"med_diuretic": True}).values["med_diuretic"] == "present"


def test_a_100_mb_value_is_quoted_in_80_characters():
    huge = "9" * 100_000_000
    message = refused(lambda: validate_case({"potassium": huge, "sex": huge}), CaseError)
    assert "100,000,000 characters" in message and len(message) < 600


def test_a_value_longer_than_the_limit_is_refused_even_when_blank():
    assert "longer than" in refused(lambda: validate_case({"potassium": " " * (MAX_VALUE_CHARS + 1)}), CaseError)


@pytest.mark.parametrize("value", [[2.9], {"value": 2.9}, (1,), {1, 2}])
def test_a_container_is_not_one_value(value):
    assert "expected one value" in refused(lambda: validate_case({"potassium": value}), CaseError)
    assert "expected one value" in refused(lambda: validate_case({"sex": value}), CaseError)


def test_a_95_kb_key_is_named_by_80_characters_and_the_rest_still_counts():
    key = "k" * 95_000
    message = refused(lambda: validate_case({key: 1, "sodium": 128}), CaseError)
    assert "95,000 characters" in message and len(message) < 400
    case, problems = validate_what_is_valid({key: 1, "sodium": 128})
    assert dict(case.values) == {"sodium": 128.0}
    assert len(problems) == 1 and all(len(field) < 150 for field in problems)


def test_too_many_fields_are_refused_before_any_is_looked_at():
    mapping = {f"finding {i}": i for i in range(MAX_CASE_FIELDS * 50)}
    start = time.perf_counter()
    message = refused(lambda: validate_case(mapping), CaseError)
    assert time.perf_counter() - start < 0.5
    assert f"at most {MAX_CASE_FIELDS:,}" in message


def test_a_message_names_ten_problems_and_counts_the_rest():
    error = pytest.raises(CaseError, validate_case, {f"unknown {i}": 1 for i in range(50)}).value
    assert len(error.problems) == 50 and str(error).endswith("and 40 more problems")


# ------------------------------------------------------------------------- JSON

@pytest.mark.parametrize("text", ['{"potassium": 1' + "0" * 400 + "}", '{"potassium": 1' + "0" * 5000 + "}",
                                  '{"potassium": -1e400}', '{"potassium": 1.5e999}'], ids=["int400", "int5000", "-1e400", "1.5e999"])
def test_json_numbers_beyond_the_float_range_are_refused(text):
    assert "beyond the range of numbers" in refused(lambda: findings_from_json(text), SchemaError)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_without_its_non_standard_constants(constant):
    assert f"{constant} is not a number JSON allows" in refused(lambda: findings_from_json(f'{{"age": {constant}}}'))


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_deep_nesting_is_refused_by_a_linear_scan(depth):
    for text in ("[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth, "[" * depth):
        start = time.perf_counter()
        assert "nests deeper" in refused(lambda: findings_from_json(text), SchemaError)
        assert time.perf_counter() - start < 0.5


def test_nesting_up_to_the_limit_and_brackets_inside_strings_are_fine():
    inner = '{"x":' * (MAX_JSON_DEPTH - 2) + "1" + "}" * (MAX_JSON_DEPTH - 2)
    assert findings_from_json('{"findings": {"potassium": 2.9}, "more": ' + inner + "}") == {"potassium": 2.9}
    assert json_depth('{"a": "[[[[\\"[[[["}') == 1


def test_an_exported_assessment_is_far_inside_the_limits(tiny_diagnoser):
    assessment = tiny_diagnoser.assess({"potassium": 2.6, "sex": "female", "age": 70}, explain=3, next_findings=5)
    text = json.dumps(assessment.to_dict(), indent=2, ensure_ascii=False)
    assert json_depth(text) <= MAX_JSON_DEPTH // 2 and len(text.encode()) < MAX_CASE_JSON_BYTES // 10
    assert validate_case(findings_from_json(text)).values["potassium"] == 2.6


def test_a_file_over_the_size_limit_is_refused():
    assert "at most 1,000,000 bytes" in refused(lambda: findings_from_json(b" " * (MAX_CASE_JSON_BYTES + 1)))


def test_the_duplicate_key_check_is_linear_and_its_message_short():
    keys = [f"f{i}" for i in range(60_000)]
    text = "{" + ",".join(f'"{k}": 1' for k in keys + keys[:100]) + "}"
    assert len(text) < MAX_CASE_JSON_BYTES
    start = time.perf_counter()
    message = refused(lambda: findings_from_json(text), SchemaError)
    assert time.perf_counter() - start < 1.0
    assert message.startswith("'f0', 'f1', 'f2', 'f3', 'f4' and 95 more given twice")


def test_a_case_file_with_nothing_assessed_is_refused():
    assert "gives no finding" in refused(lambda: findings_from_json('{"potassium": null, "sex": "n/a"}'))
    assert findings_from_json('{"thyroid_symptoms": "none"}')  # "none" is an answer there


def test_invalid_utf8_is_one_sentence():
    assert "not UTF-8" in refused(lambda: findings_from_json(b'{"sex": "\xff"}'))


# ------------------------------------------------------------------- tables of cases

def write(tmp_path: Path, text: str, name: str = "cases.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def resolve(path: Path):
    return resolve_case_table(read_case_table(path), SCHEMA, keep_other=True)


def test_a_row_whose_finding_cells_are_all_empty_is_named_with_the_columns(tmp_path):
    path = write(tmp_path, "id,potassium,sex\na,2.9,female\nb,,\nc,n/a,not assessed\n")
    message = refused(lambda: resolve(path), SchemaError)
    assert "rows 2, 3: no finding given" in message and "'potassium', 'sex'" in message


def test_a_misaligned_row_is_not_ranked_by_the_prior(tmp_path):
    path = write(tmp_path, 'id,potassium,sex\na,2.9,female\n"b;3.1;male"\n')  # a row written with semicolons
    assert "row 2: no finding given" in refused(lambda: resolve(path), SchemaError)


def test_an_entirely_empty_row_is_named_as_empty(tmp_path):
    path = write(tmp_path, "potassium,sex\n2.9,female\n,\n3.1,male\n")
    assert "row 2 of the table is empty; delete it" in refused(lambda: resolve(path), SchemaError)


def test_rows_with_findings_are_read(tmp_path):
    table = resolve(write(tmp_path, "id,potassium,sex\na,2.9,\nb,,male\nc,low,\n"))
    assert len(table.findings) == 3 and table.ranges[2]["potassium"].text == "low"


def test_a_long_cell_and_a_long_column_name_are_quoted_briefly(tmp_path):
    path = write(tmp_path, f"potassium,sex\n{'9' * 50_000},female\n")
    message = refused(lambda: resolve(path), SchemaError)
    assert "50,000 characters" in message and len(message) < 600
    path = write(tmp_path, f"potassium,{'x' * 50_000}\n2.9,1\n")
    message = refused(lambda: resolve(path), SchemaError)
    assert "50,000 characters" in message and len(message) < 600


def test_a_header_longer_than_the_limit_is_refused(tmp_path):
    path = write(tmp_path, "potassium," + "x" * MAX_HEADER_CHARS + "\n2.9,1\n")
    assert "header row is longer" in refused(lambda: read_case_table(path), SchemaError)


def test_too_many_columns_are_refused(tmp_path):
    header = ",".join(["potassium", *(f"c{i}" for i in range(MAX_TABLE_COLUMNS))])
    path = write(tmp_path, header + "\n" + ",".join(["2.9"] + ["1"] * MAX_TABLE_COLUMNS) + "\n")
    assert f"at most {MAX_TABLE_COLUMNS:,}" in refused(lambda: read_case_table(path), SchemaError)


def test_too_many_rows_are_refused_before_the_file_is_read_in_full(tmp_path, monkeypatch):
    monkeypatch.setattr(casereading, "MAX_TABLE_ROWS", 5)  # where the file is read
    path = write(tmp_path, "potassium\n" + "2.9\n" * 50)
    assert "more than 5 cases; split it" in refused(lambda: read_case_table(path), SchemaError)


def test_a_parquet_file_with_too_many_rows_or_columns_is_refused_from_its_footer_unread(tmp_path, monkeypatch):
    path = tmp_path / "cases.parquet"
    pd.DataFrame({"potassium": [2.9] * 50, **{f"c{i}": [1] * 50 for i in range(9)}}).to_parquet(path)
    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("the file was read before its size was checked"))
    monkeypatch.setattr(casereading, "MAX_TABLE_ROWS", 5)
    assert "more than 5 cases; split it" in refused(lambda: read_case_table(path), SchemaError)
    monkeypatch.setattr(casereading, "MAX_TABLE_ROWS", 100)
    monkeypatch.setattr(casereading, "MAX_TABLE_COLUMNS", 4)
    assert "has 10 columns; a file of cases has at most 4" in refused(lambda: read_case_table(path), SchemaError)


def test_a_parquet_file_read_in_chunks_is_refused_from_its_footer_before_a_batch_is_decoded(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    path = tmp_path / "cases.parquet"
    pd.DataFrame({"potassium": [2.9] * 50}).to_parquet(path)
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda *a, **k: pytest.fail("a batch was decoded first"))
    monkeypatch.setattr(casereading, "MAX_TABLE_ROWS", 5)
    assert "more than 5 cases; split it" in refused(lambda: list(casechunks.read_case_chunks(path, rows=2)), SchemaError)


def test_a_file_read_in_chunks_is_refused_past_the_row_limit(tmp_path, monkeypatch):
    monkeypatch.setattr(casechunks, "MAX_TABLE_ROWS", 5)
    for path in [write(tmp_path, "potassium\n" + "2.9\n" * 50), tmp_path / "cases.parquet"]:
        if path.suffix == ".parquet":
            pd.DataFrame({"potassium": [2.9] * 50}).to_parquet(path)
        assert "more than 5 cases; split it" in refused(lambda: list(casechunks.read_case_chunks(path, rows=2)), SchemaError)



def _no_decoding(monkeypatch):
    """pandas' reader and pyarrow's batches replaced by failures: what is refused must be refused unread."""
    import pyarrow.parquet as pq

    monkeypatch.setattr(pd, "read_parquet", lambda *a, **k: pytest.fail("the file was read before its size was checked"))
    monkeypatch.setattr(pq.ParquetFile, "iter_batches", lambda *a, **k: pytest.fail("a batch was decoded first"))


def test_a_parquet_file_decoding_beyond_the_limit_is_refused_from_its_footer_unread(tmp_path, monkeypatch):
    """200,000 rows of ten columns of zeros: a few kB compressed, 16 MB decoded (the footer's
    uncompressed size says a few kB too); and 2,000 values of 1,000 characters, stored plain."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    zeros, text = tmp_path / "zeros.parquet", tmp_path / "text.parquet"
    pd.DataFrame({f"c{i}": [0.0] * 200_000 for i in range(10)}).to_parquet(zeros)
    pq.write_table(pa.table({"note": ["x" * 1_000] * 2_000}), text, use_dictionary=False, compression="zstd")
    assert zeros.stat().st_size < 100_000 and text.stat().st_size < 100_000
    _no_decoding(monkeypatch)
    monkeypatch.setattr(casereading, "MAX_TABLE_DECODED_BYTES", 1_000_000)
    expected = ("zeros.parquet decodes to 16,000,000 bytes, more than the 1,000,000 a file of cases may; "
                "split it into files of at most 12,500 rows")
    assert expected in refused(lambda: read_case_table(zeros), SchemaError)
    assert expected in refused(lambda: list(casechunks.read_case_chunks(zeros)), SchemaError)
    assert re.search(r"text\.parquet decodes to 2,0\d\d,\d{3} bytes, more than the 1,000,000 a file of cases may; "
                     r"split it into files of at most 99\d rows$", refused(lambda: read_case_table(text), SchemaError))


def test_a_parquet_file_of_the_longest_legitimate_rows_stays_far_inside_the_decoded_limit(tmp_path):
    """Every finding assessed with its longest level label (a number where it is one), the
    etiology and an id, stored as plain text: read, and the limit holds the most rows a file
    may hold of such cases, each with 1.5 kB of further carried columns."""
    import pyarrow.parquet as pq

    row = {f.id: 1.0 if f.is_numeric else max((level.label for level in f.levels), key=len) for f in SCHEMA}
    row.update(etiology="idiopathic_nocturnal", id="case-0000000001")
    path = tmp_path / "cases.parquet"
    pd.DataFrame([row] * 500).to_parquet(path, use_dictionary=False)
    assert len(read_case_table(path)) == 500
    per_row = casereading.parquet_decoded_bytes(pq.ParquetFile(path).metadata) / 500
    assert 2_000 < per_row and casereading.MAX_TABLE_ROWS * (per_row + 1_500) < casereading.MAX_TABLE_DECODED_BYTES


@pytest.mark.parametrize("index", ["stored range", "values", "named", "two levels"])
def test_a_stored_pandas_index_is_not_counted_among_the_columns(tmp_path, monkeypatch, index):
    """A frame written with its index (to_parquet(index=True), or an index other than 0..n-1)
    stores it as columns that pandas reads back as the index, not as columns of cases."""
    frame = pd.DataFrame({"potassium": [2.9, 3.1, 4.0], "sex": ["female", "male", "male"], "c1": [1] * 3, "c2": [2] * 3})
    if index == "values":
        frame.index = [10, 20, 30]
    elif index == "named":
        frame.index = pd.Index(["a", "b", "c"], name="case")
    elif index == "two levels":
        frame.index = pd.MultiIndex.from_tuples([("x", 1), ("x", 2), ("y", 1)], names=["site", "case"])
    path = tmp_path / "cases.parquet"
    frame.to_parquet(path, index=True)
    monkeypatch.setattr(casereading, "MAX_TABLE_COLUMNS", 4)
    assert list(read_case_table(path).columns) == list(frame.columns)
    assert [list(chunk.columns) for chunk in casechunks.read_case_chunks(path, rows=2)] == [list(frame.columns)] * 2
    frame.assign(c3=3).to_parquet(path, index=True)
    _no_decoding(monkeypatch)
    assert "has 5 columns; a file of cases has at most 4" in refused(lambda: read_case_table(path), SchemaError)


# ------------------------------------------------------------------ the command line

@pytest.mark.parametrize("content, expected", [
    ('{"potassium": 1' + "0" * 400 + "}", "beyond the range of numbers"),
    ("[" * 100_000, "nests deeper"),
    ('{"potassium": "' + "9" * 500_000 + '"}', "500,000 characters"),
    ('{"' + "k" * 95_000 + '": 1}', "95,000 characters"),
    ('{"potassium": null}', "gives no finding"),
], ids=["huge-integer", "deep", "long-value", "long-key", "nothing"])
def test_the_cli_prints_one_short_sentence_and_exits_2(tmp_path, capsys, content, expected):
    path = write(tmp_path, content, "case.json")
    assert main(["predict", str(path)]) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert err.count("\n") == 1 and len(err) < 800


def test_the_cli_refuses_a_csv_row_without_findings(tiny_model_dir, tmp_path, capsys):
    path = write(tmp_path, "id,potassium,sex\na,2.9,female\nb,,\n")
    assert main(["predict", str(path), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert "row 2: no finding given" in err and "'potassium', 'sex'" in err and err.count("\n") == 1


# ------------------------------------------------------------------------ the dashboard

def test_the_dashboard_import_gives_the_sentence():
    from crampdx.dashboard.state import parse_import

    for data in (b"[" * 100_000, b'{"potassium": 1' + b"0" * 5000 + b"}", b'{"sex": NaN}'):
        with pytest.raises(ValueError, match="^The case was not imported: ") as caught:
            parse_import(data)
        assert len(str(caught.value)) < 300


def test_a_deeply_nested_import_keeps_the_current_case(tiny_model_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("CRAMPDX_MODEL", str(tiny_model_dir))
    at = AppTest.from_file(str(Path(__file__).resolve().parents[1] / "app.py"), default_timeout=120)
    at.run().run()  # the first run draws the form only; the second (the browser's timer) the rest
    at.selectbox(key="example").set_value("hypocalcemia").run()
    for data in (b"[" * 100_000, b'{"potassium": 1' + b"0" * 400 + b"}", b'{"' + b"k" * 95_000 + b'": 1}'):
        at.file_uploader[0].set_value(("case.json", data, "application/json")).run()
        assert not at.exception
        errors = " ".join(str(e.value) for e in at.error)
        assert "The case was not imported" in errors and len(errors) < 600
        assert at.session_state["f:calcium"] == "7.3"  # nothing lost


# ----------------------------------------------------------- property-based: adversarial input

_IDS = list(SCHEMA.ids)
_LABELS = [f.label for f in SCHEMA]
_LEVELS = sorted({text for f in SCHEMA for level in f.levels for text in (level.id, level.label)})


def _near_miss(name: str) -> st.SearchStrategy[str]:
    return st.sampled_from([name.upper(), f"  {name} ", name[:-1], name + "s", name.replace("_", " ")])


names = st.one_of(
    st.sampled_from(_IDS), st.sampled_from(_LABELS), st.sampled_from(_IDS).flatmap(_near_miss),
    st.text(max_size=30), st.integers(150, 300_000).map(lambda n: "é" * n),
)
huge_integers = st.integers(300, 6_000).flatmap(lambda digits: st.sampled_from([10 ** digits, -(10 ** digits)]))
numeric_text = st.sampled_from(["2,9", "2.9", "12,000", "<3", ">1e400", "1e400", "-0", " 7 ", "1_000", "0x10", "∞",
                                "١٢", "≤ 2", "nan", "inf", "n/a", "none", "?", ""])
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), huge_integers, st.floats(), st.text(max_size=20), numeric_text,
    st.sampled_from(_LEVELS), st.sampled_from(sorted(QUALITATIVE_WORDS)), st.complex_numbers(),
    st.integers(MAX_VALUE_CHARS - 2, 200_000).map(lambda n: "1" * n),
)
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                      max_leaves=6)


def valid_text(finding) -> st.SearchStrategy[str]:
    """What a clinician may write for a finding: a number with a decimal point or comma, a
    result in words, a bound, a level id or label, yes/no."""
    if finding.is_numeric:
        low, high = finding.hard
        number = st.floats(low, high).map(lambda v: f"{v:.3f}")
        texts = [number, number.map(lambda t: t.replace(".", ","))]
        if finding.qualitative:  # results in words and bounds: only for findings that declare them
            texts += [st.sampled_from(sorted(finding.qualitative)),
                      st.floats(low, high, exclude_min=True, exclude_max=True).map(lambda v: f"<{v:.2f}")]
        return st.one_of(texts)
    if finding.kind == "binary":
        return st.sampled_from(["yes", "no", "present", "absent", "1", "0", "True", "false"])
    return st.sampled_from([text for level in finding.levels for text in (level.id, level.label)])


def valid_value(finding) -> st.SearchStrategy:
    if finding.is_numeric:
        return st.one_of(st.floats(*finding.hard), st.integers(int(finding.hard[0]) + 1, int(finding.hard[1])), valid_text(finding))
    return st.one_of(valid_text(finding), st.booleans()) if finding.kind == "binary" else valid_text(finding)


valid_mappings = st.lists(st.sampled_from(_IDS), unique=True, min_size=1, max_size=20).flatmap(
    lambda ids: st.fixed_dictionaries({fid: valid_value(SCHEMA[fid]) for fid in ids})).map(possible_case)
adversarial_mappings = st.dictionaries(names, values, max_size=12)
# mostly valid cases with one or two adversarial entries, so that both answers are explored
mappings = st.one_of(valid_mappings, adversarial_mappings,
                     st.tuples(valid_mappings, st.dictionaries(names, values, max_size=2)).map(lambda m: {**m[0], **m[1]}))


def _assert_user_facing(error: Exception) -> None:
    assert isinstance(error, UserFacingError), repr(error)[:300]
    assert len(str(error)) < MESSAGE_CHARS and "\n" not in str(error), str(error)[:300]
    for message in getattr(error, "problems", {}).values():
        assert len(message) < PROBLEM_CHARS, message[:300]


def _check_case(case: Case) -> None:
    for fid, value in case.values.items():
        finding = SCHEMA[fid]
        if finding.is_numeric and isinstance(value, float):
            assert finding.hard[0] <= value <= finding.hard[1]
        elif not finding.is_numeric:
            assert value in finding.level_ids


@settings(max_examples=300, deadline=None)
@given(mappings)
def test_validate_case_gives_a_case_or_a_case_error(mapping):
    try:
        _check_case(validate_case(mapping))
        valid = True
    except CaseError as error:
        _assert_user_facing(error)
        valid = False
    case, problems = validate_what_is_valid(mapping)  # the valid part: never raises for a mapping
    _check_case(case)
    assert (not problems) == valid


def _json_value(value) -> str:
    """JSON text of a drawn value, huge integers written out as literals (json.dumps refuses
    integers of more than 4,300 digits)."""
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > 10 ** 300:  # the drawn huge integers are powers of ten
            return ("-" if value < 0 else "") + "1" + "0" * round(math.log10(abs(value)))
        return str(value)
    if isinstance(value, float):
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(repr(value), repr(value))
    if isinstance(value, complex):
        return json.dumps(str(value))
    if isinstance(value, list):
        return "[" + ",".join(map(_json_value, value)) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_json_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


json_objects = st.one_of(mappings.map(lambda m: list(m.items())), st.lists(st.tuples(names, values), max_size=10)).map(
    lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{_json_value(v)}" for k, v in pairs) + "}")  # duplicates possible
json_texts = st.one_of(
    json_objects,
    json_objects.map(lambda text: '{"findings": ' + text + ', "format_version": 2}'),
    st.integers(1, 200_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.integers(1, 200_000).map(lambda depth: "[" * depth),
    st.text(max_size=40),
)
json_documents = st.one_of(json_texts.map(lambda text: text.encode("utf-8")), json_texts,
                           st.binary(max_size=40), json_texts.map(lambda text: text.encode("utf-8") + b"\xff\xfe"))


@settings(max_examples=300, deadline=None)
@given(json_documents)
def test_the_json_import_gives_findings_or_a_user_facing_error(data):
    try:
        document = findings_from_json(data)
    except UserFacingError as error:
        _assert_user_facing(error)
        return
    assert isinstance(document, dict) and document
    try:
        _check_case(validate_case(document))
    except CaseError as error:
        _assert_user_facing(error)


@settings(max_examples=100, deadline=None)
@given(json_documents)
def test_the_dashboard_import_gives_a_case_or_its_sentence(data):
    from crampdx.dashboard.state import parse_import

    try:
        _check_case(parse_import(data if isinstance(data, bytes) else data.encode("utf-8", "surrogatepass")))
    except ValueError as error:
        assert str(error).startswith("The case was not imported") and len(str(error)) < MESSAGE_CHARS


cells = st.one_of(scalars.map(lambda v: "" if v is None else str(v) if not isinstance(v, int) or abs(v) < 10 ** 300
                              else "9" * 400),
                  st.sampled_from(['"', '""', "a,b", "x;y", "\t", '"quoted, comma"']))


def _cell(text: str, sep: str) -> str:
    return f'"{text.replace(chr(34), chr(34) * 2)}"' if sep in text or '"' in text else text


@st.composite
def csv_texts(draw) -> str:
    """Mostly well-formed files (finding columns, values a clinician would write, some cells
    empty or adversarial), and some with random headers, ragged rows and stray quotes."""
    sep = draw(st.sampled_from([",", ";", "\t", "|"]))
    kind = draw(st.sampled_from(["clean", "dirty", "random"]))
    if kind != "random":
        findings = [SCHEMA[fid] for fid in draw(st.lists(st.sampled_from(_IDS), unique=True, min_size=1, max_size=5))]
        header = [draw(st.sampled_from([f.id, f.label])) for f in findings] + draw(st.sampled_from([[], ["id"]]))
        columns = [valid_text(f) for f in findings] + [st.text(max_size=5)] * (len(header) - len(findings))
        mixed = [st.one_of(column, st.just("")) if kind == "clean" else st.one_of(column, cells) for column in columns]
        rows = [[_cell(draw(column), sep) for column in mixed] for _ in range(draw(st.integers(1, 5)))]
    else:
        header = draw(st.lists(st.one_of(st.sampled_from(_IDS), st.sampled_from(_LABELS), st.text(max_size=10),
                                         st.just("id"), st.just("etiology")), min_size=1, max_size=6))
        rows = draw(st.lists(st.lists(cells, min_size=0, max_size=len(header) + 1), max_size=6))
    lines = [sep.join(_cell(name, sep) for name in header)] + [sep.join(row) for row in rows]
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\n\n", "\r\n"]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(csv_texts(), st.booleans())
def test_the_case_table_readers_give_a_table_or_a_schema_error(text, keep_other):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "cases.csv"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            table = resolve_case_table(read_case_table(path), SCHEMA, keep_other=keep_other)
        except SchemaError as error:
            _assert_user_facing(error)
            return
    assert table.codes.shape == (len(table.findings), len(SCHEMA))
    for row in range(len(table.findings)):  # every accepted row is a valid case with a finding in it
        case = table.case(row, SCHEMA)
        assert len(case) > 0
        _check_case(case)


def test_predict_refuses_a_huge_case_file_before_reading_it(tmp_path, capsys, monkeypatch):
    from crampdx.cli.main import main

    huge = tmp_path / "case.json"
    with huge.open("wb") as handle:  # sparse: 100 MB on disk costs nothing
        handle.truncate(100_000_000)
    read = []
    monkeypatch.setattr(Path, "read_bytes", lambda self: read.append(self) or b"")
    assert main(["predict", str(huge)]) == 2
    err = capsys.readouterr().err
    assert "100,000,000 bytes" in err and len(err.strip().splitlines()) == 1 and not read
