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


def test_findings_lists_every_finding_with_what_it_accepts(capsys, schema):
    assert main(["findings"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {fid} " in out for fid in schema.ids)
    assert "Potassium [mmol/L; reference 3.5–5, plausible 1.5–9]" in out
    assert main(["findings", "--section", "laboratory", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in listing["findings"]] == [f.id for f in schema.in_section("laboratory")]


def test_a_misspelt_finding_gets_a_suggestion(tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"Agee": 70, "pedal pulse": "absent"}), encoding="utf-8")
    assert main(["predict", str(case)]) == 2
    err = capsys.readouterr().err
    assert "Agee: unknown finding; did you mean 'age'?" in err
    assert "pedal pulse: unknown finding; did you mean 'pedal_pulses'?" in err and "Traceback" not in err


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


# ---------------------------------------------------------------------------- predict

def test_predict_one_json_case_with_explanation(tiny_model_dir, tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"potassium": 2.6, "Leg weakness": "yes", "med_diuretic": True, "age": "71"}))
    assert main(["predict", str(case), "--model", str(tiny_model_dir), "--explain", "--json", "--top", "5"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert len(report["differential"]) == 5
    assert report["findings"]["weakness_reported"] == "present"
    ex = report["explanation"]
    assert ex["cause_id"] == report["differential"][0]["id"]
    total = ex["base_value"] + sum(c["contribution"] for c in ex["contributions"]) + ex["not_assessed"]
    assert abs(total - ex["value"]) < 1e-6
    assert "not been validated on patients" in report["disclaimer"]
    assert any(flag["id"] == "medication_review" for flag in report["red_flags"])


def test_predict_readable_output(tiny_model_dir, tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"findings": {"cramp_timing": "constant_rest_pain", "gangrene": "yes"}}))  # an exported case
    assert main(["predict", str(case), "--model", str(tiny_model_dir), "--explain"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("[URGENT] Possible critical limb ischemia")
    assert "Differential" in out and "Why " in out and "not assessed" in out and "Ask or examine next" in out


def test_predict_many_cases_from_csv(tiny_model_dir, tmp_path, capsys):
    generate(25, seed=61).to_csv(tmp_path / "cases.csv", index=False)
    out = tmp_path / "ranked.csv"
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--top", "3", "--out", str(out)]) == 0
    ranked = pd.read_csv(out)
    assert len(ranked) == 25 and list(ranked.columns[:2]) == ["row", "etiology"]
    assert {"cause_1", "probability_1", "cause_3", "probability_3"} <= set(ranked.columns)
    assert (ranked["probability_1"] >= ranked["probability_2"]).all()


def test_predict_bad_case_prints_the_case_error_without_traceback(tiny_model_dir, tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"potassium": 25, "pedal_pulses": "bounding"}))
    assert main(["predict", str(case), "--model", str(tiny_model_dir)]) == 2
    err = capsys.readouterr().err
    assert "potassium: 25 mmol/L is outside the plausible range" in err and "pedal_pulses: unknown level" in err
    assert "Traceback" not in err


def test_predict_bad_csv_names_row_and_column(tiny_model_dir, tmp_path, capsys):
    frame = generate(5, seed=62)
    frame.loc[3, "sodium"] = 20.0
    frame.to_csv(tmp_path / "cases.csv", index=False)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir)]) == 2
    assert "sodium, row 4" in capsys.readouterr().err


def test_predict_unreadable_json(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "case.json").write_text("{ potassium: 3")
    assert main(["predict", str(tmp_path / "case.json"), "--model", str(tiny_model_dir)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
