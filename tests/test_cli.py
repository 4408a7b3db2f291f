"""The crampdx command line, called through main(argv)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from synthetic import LABEL, generate
from training.cli import main


def test_generate_writes_csv_and_parquet(tmp_path, capsys, schema):
    assert main(["generate", "--n", "60", "--seed", "4", "--out", str(tmp_path / "c.csv")]) == 0
    frame = pd.read_csv(tmp_path / "c.csv")
    assert len(frame) == 60 and list(frame.columns) == [*schema.ids, LABEL]
    assert main(["generate", "--n", "60", "--seed", "4", "--out", str(tmp_path / "c.parquet"), "--quiet"]) == 0
    parquet = pd.read_parquet(tmp_path / "c.parquet")
    np.testing.assert_allclose(schema.encode(frame), schema.encode(parquet), rtol=1e-12)
    assert list(frame[LABEL]) == list(parquet[LABEL].astype(str))


def test_generate_refuses_an_unknown_format_without_traceback(tmp_path, capsys):
    assert main(["generate", "--n", "5", "--out", str(tmp_path / "c.xlsx")]) == 2
    err = capsys.readouterr().err
    assert ".csv or .parquet" in err and "Traceback" not in err
    assert not (tmp_path / "c.xlsx").exists()


def test_knowledge_json_lists_every_class_with_provenance(capsys, kb):
    assert main(["knowledge", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [c["id"] for c in listing["classes"]] == list(kb.class_ids)
    assert all(c["prior"] > 0 and c["prior_src"] and c["name"] for c in listing["classes"])
    assert abs(sum(c["prior"] for c in listing["classes"]) - 1) < 1e-4


def test_knowledge_table_mentions_the_demoted_cause(capsys):
    assert main(["knowledge"]) == 0
    out = capsys.readouterr().out
    assert "Metabolic syndrome: demoted" in out and "not been validated on patients" in out


def test_evaluate_json_reports_model_and_posterior_figures(tiny_model_dir, tmp_path, capsys):
    png = tmp_path / "cm.png"
    assert main(["evaluate", "--model", str(tiny_model_dir), "--n", "1500", "--json", "--png", str(png)]) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["n"] == 1500 and figures["seed"] != 3
    assert {"top1_accuracy", "top3_accuracy", "log_loss", "brier", "ece", "per_class", "confusion_matrix"} <= set(figures["model"])
    assert {"posterior_top1_accuracy", "posterior_log_loss", "mean_kl_posterior_to_model",
            "top1_ratio_to_posterior", "top1_agreement_with_posterior"} <= set(figures["posterior"])
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_refuses_the_training_seed(tiny_model_dir, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tiny_model_dir), "--seed", "3", "--png", str(tmp_path / "x.png")]) == 2
    assert "training seed" in capsys.readouterr().err


def test_evaluate_without_a_model_says_to_train(tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "crampdx train" in err and "Traceback" not in err


def test_train_on_labelled_data_with_an_impossible_value_names_row_and_column(tmp_path, capsys):
    frame = generate(30, seed=8)
    frame.loc[4, "potassium"] = 15.0
    frame.to_csv(tmp_path / "mine.csv", index=False)
    assert main(["train", "--data", str(tmp_path / "mine.csv"), "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "potassium, row 5" in err and "Traceback" not in err
    assert not (tmp_path / "m").exists()


def test_train_on_labelled_data_mixed_with_synthetic_cases(tmp_path, capsys):
    generate(2000, seed=9).to_csv(tmp_path / "mine.csv", index=False)
    out = tmp_path / "m"
    assert main(["train", "--data", str(tmp_path / "mine.csv"), "--mix", "--cases", "3000", "--max-iter", "10",
                 "--evaluation-cases", "500", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sizes"]["training"] + manifest["sizes"]["calibration"] == 5000
    assert "mine.csv" in manifest["data_source"] and "mixed" in manifest["data_source"]


def test_train_reports_each_stage(tmp_path, capsys):
    assert main(["train", "--cases", "3000", "--max-iter", "10", "--evaluation-cases", "500", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    for stage in ("[1/5] generate", "[2/5] fit", "iteration", "[3/5] calibrate", "[4/5] evaluate", "[5/5] save", "Summary"):
        assert stage in out


def test_mix_without_data_is_refused(capsys):
    assert main(["train", "--mix"]) == 2
    assert "--data" in capsys.readouterr().err
