"""Batch work in chunks (issue 12, item 4): `crampdx predict` reads, validates, ranks and
writes a case file a chunk at a time, with the same result and the file's row numbers in
errors; `crampdx generate --out` writes the cases `generate` draws."""

from __future__ import annotations

import importlib

import numpy as np
import pandas as pd
import pytest

from crampdx.cli.main import main
from crampdx.contract.casechunks import read_case_chunks, renumber_rows
from crampdx.synthetic import generate

casechunks = importlib.import_module("crampdx.contract.casechunks")


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(casechunks, "CHUNK_ROWS", 7)
    monkeypatch.setattr(casechunks.read_case_chunks, "__defaults__", (None, 7))


def test_predict_in_chunks_ranks_like_the_whole_table(tiny_model_dir, tiny_diagnoser, tmp_path, small_chunks):
    cases = generate(30, seed=4, knowledge=tiny_diagnoser.knowledge_)
    cases.insert(0, "patient", [f"p{i:03d}" for i in range(30)])
    cases.to_csv(tmp_path / "cases.csv", index=False)
    assert len(list(read_case_chunks(tmp_path / "cases.csv", tiny_diagnoser.schema))) == 5
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--top", "3",
                 "--out", str(tmp_path / "ranked.csv")]) == 0
    ranked = pd.read_csv(tmp_path / "ranked.csv", dtype={"patient": str})
    assert ranked["row"].tolist() == list(range(1, 31))
    assert ranked["patient"].tolist() == cases["patient"].tolist()
    proba = tiny_diagnoser.predict_proba(cases.drop(columns="patient"))
    expected = proba.to_numpy().argmax(axis=1)
    assert ranked["cause_1"].tolist() == [proba.columns[k] for k in expected]
    np.testing.assert_allclose(ranked["probability_1"], proba.to_numpy().max(axis=1), atol=1e-6)


def test_an_error_in_a_later_chunk_names_the_files_rows(tiny_model_dir, tiny_diagnoser, tmp_path, capsys, small_chunks):
    cases = generate(20, seed=4, knowledge=tiny_diagnoser.knowledge_)
    numeric = next(f.id for f in tiny_diagnoser.schema if f.is_numeric and f.id != "age")
    cases[numeric] = cases[numeric].astype(object)
    cases.loc[[15, 17], numeric] = "lots"  # rows 16 and 18 of the file: the third chunk's rows 2 and 4
    cases.to_csv(tmp_path / "cases.csv", index=False)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "ranked.csv")]) == 2
    err = capsys.readouterr().err
    assert f"{numeric}, rows 16, 18:" in err and "Traceback" not in err
    assert not (tmp_path / "ranked.csv").exists()


def test_every_chunks_errors_are_named_and_a_parquet_output_closes_quietly(tiny_model_dir, tiny_diagnoser, tmp_path,
                                                                          capsys, small_chunks):
    """Problems in two chunks are named in one sentence (nothing lost against a small file), and
    the parquet writer of the abandoned output is closed without an 'Exception ignored'."""
    import gc

    cases = generate(24, seed=4, knowledge=tiny_diagnoser.knowledge_)
    numeric = next(f.id for f in tiny_diagnoser.schema if f.is_numeric and f.id != "age")
    cases[numeric] = cases[numeric].astype(object)
    cases.loc[[8, 22], numeric] = "lots"  # rows 9 (second chunk) and 23 (fourth chunk)
    cases.to_csv(tmp_path / "cases.csv", index=False)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "ranked.parquet")]) == 2
    gc.collect()
    err = capsys.readouterr().err
    assert f"{numeric}, row 9:" in err and f"{numeric}, row 23:" in err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert not (tmp_path / "ranked.parquet").exists()


def test_a_label_empty_in_the_first_chunk_still_fits_a_parquet_output(tiny_model_dir, tiny_diagnoser, tmp_path,
                                                                      small_chunks):
    cases = generate(20, seed=4, knowledge=tiny_diagnoser.knowledge_)
    labels = cases["etiology"].astype(object)
    labels[:10] = None  # blank throughout the first chunk, filled later
    cases["etiology"] = labels
    cases.to_csv(tmp_path / "cases.csv", index=False)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "ranked.parquet")]) == 0
    ranked = pd.read_parquet(tmp_path / "ranked.parquet")
    assert ranked["etiology"].isna().sum() == 10 and ranked["etiology"][10:].tolist() == labels[10:].tolist()


def test_renumbering_leaves_quoted_values_alone():
    assert renumber_rows("a, row 2: 'row 2' and \"rows 1, 2\"; b, rows 1, 3 and 5 more", 10) == \
        "a, row 12: 'row 2' and \"rows 1, 2\"; b, rows 11, 13 and 5 more"


def test_generate_out_writes_the_generated_cases(tmp_path, kb, monkeypatch):
    monkeypatch.setattr(importlib.import_module("crampdx.synthetic.generate"), "_CHUNK", 40)
    for name in ("cases.csv", "cases.parquet"):
        assert main(["generate", "--n", "100", "--seed", "5", "--out", str(tmp_path / name), "--quiet"]) == 0
    expected = generate(100, seed=5, knowledge=kb)
    written = pd.read_parquet(tmp_path / "cases.parquet")
    pd.testing.assert_frame_equal(written, expected)
    as_text = pd.read_csv(tmp_path / "cases.csv")
    assert list(as_text.columns) == list(expected.columns)
    findings = list(kb.schema.ids)
    pd.testing.assert_frame_equal(kb.schema.coerce(as_text)[findings], expected[findings])
    assert as_text["etiology"].tolist() == expected["etiology"].astype(str).tolist()
