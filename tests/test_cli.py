"""The crampdx command line, called through main(argv)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from crampdx.synthetic import LABEL, generate
from crampdx.cli.main import main
from crampdx.training.defaults import DEFAULT_PRIOR_POWER


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
    potassium = schema["potassium"]
    assert f"Potassium [mmol/L; reference 3.5–5, plausible {potassium.hard[0]:g}–{potassium.hard[1]:g}]" in out
    assert "low, normal, high" in out
    assert main(["findings", "--section", "laboratory", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    assert [f["id"] for f in listing["findings"]] == [f.id for f in schema.in_section("laboratory")]


def test_a_misspelt_finding_gets_a_suggestion_even_without_a_model(tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"Agee": 70, "pedal pulse": "absent"}), encoding="utf-8")
    assert main(["predict", str(case), "--model", str(tmp_path / "no-model-here")]) == 2
    err = capsys.readouterr().err
    assert "Agee: unknown finding; did you mean 'age'?" in err
    assert "pedal pulse: unknown finding; did you mean 'pedal_pulses'?" in err and "Traceback" not in err


def test_knowledge_table_mentions_the_demoted_cause(capsys):
    assert main(["knowledge"]) == 0
    out = capsys.readouterr().out
    assert "Metabolic syndrome: demoted" in out and "not been validated on patients" in out


@pytest.mark.slow
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


@pytest.mark.slow
def test_train_on_labelled_data_mixed_with_synthetic_cases(tmp_path, capsys):
    generate(2000, seed=9).to_csv(tmp_path / "mine.csv", index=False)
    out = tmp_path / "m"
    assert main(["train", "--data", str(tmp_path / "mine.csv"), "--mix", "--cases", "3000", "--max-iter", "10",
                 "--evaluation-cases", "500", "--out", str(out), "--quiet"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["sizes"]["training"] + manifest["sizes"]["calibration"] == 5000
    assert "mine.csv" in manifest["data_source"] and "mixed" in manifest["data_source"]
    assert manifest["synthetic_cases"] == 3000  # the labelled 2,000 are fitted to their labels
    assert manifest["prior_power"] == DEFAULT_PRIOR_POWER  # how the 3,000 were drawn
    assert "exact posterior" in (out / "model_card.md").read_text()


@pytest.mark.slow
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
    (ex,) = report["explanations"]
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


def test_predict_on_a_small_file_of_cases_imports_neither_the_fhir_library_nor_numba(tiny_model_dir, tmp_path):
    """fhir.resources takes ~0.25 s to import: only ``crampdx predict --fhir`` loads it; numba
    (~0.3 s, and a compilation) only a batch large enough to pay for it."""
    cases = tmp_path / "cases.csv"
    pd.DataFrame({"potassium": [2.6], "med_diuretic": ["yes"]}).to_csv(cases, index=False)
    script = ("import sys\nfrom crampdx.cli.main import main\n"
              f"main(['predict', {str(cases)!r}, '--model', {str(tiny_model_dir)!r}, '--out', {str(tmp_path / 'out.csv')!r}])\n"
              "print('fhir.resources' in sys.modules, 'numba' in sys.modules)")
    answer = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True)
    assert answer.stdout.strip().splitlines()[-1] == "False False", answer.stdout
    assert (tmp_path / "out.csv").is_file()


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


# ------------------------------------------------------- user errors: one sentence, exit 2

def _one_sentence(err: str) -> str:
    assert "Traceback" not in err and "Error:" not in err
    return err


def test_predict_out_in_a_missing_folder_or_on_a_directory_is_one_sentence(tiny_model_dir, tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"potassium": 2.9}))
    generate(5, seed=63).to_csv(tmp_path / "cases.csv", index=False)
    missing = tmp_path / "missing" / "x.json"
    assert main(["predict", str(case), "--model", str(tiny_model_dir), "--out", str(missing)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert str(missing) in err and "does not exist" in err
    (tmp_path / "folder.json").mkdir()
    for file, out in ((case, tmp_path / "folder.json"), (tmp_path / "cases.csv", tmp_path / "folder.json")):
        assert main(["predict", str(file), "--model", str(tiny_model_dir), "--out", str(out)]) == 2
        err = _one_sentence(capsys.readouterr().err)
        assert f"--out {out} is a directory" in err
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "missing" / "r.csv")]) == 2
    assert "does not exist" in _one_sentence(capsys.readouterr().err)
    assert not (tmp_path / "missing").exists() and list((tmp_path / "folder.json").iterdir()) == []
    before = (tmp_path / "cases.csv").read_bytes()
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "cases.csv")]) == 2
    assert "is the case file itself" in _one_sentence(capsys.readouterr().err)
    assert (tmp_path / "cases.csv").read_bytes() == before


def test_evaluate_png_in_a_missing_folder_or_on_a_directory_is_one_sentence(tiny_model_dir, tmp_path, capsys):
    missing = tmp_path / "missing" / "c.png"
    assert main(["evaluate", "--model", str(tiny_model_dir), "--n", "200", "--png", str(missing)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert str(missing) in err and "does not exist" in err and capsys.readouterr().out == ""
    (tmp_path / "d.png").mkdir()
    assert main(["evaluate", "--model", str(tiny_model_dir), "--n", "200", "--png", str(tmp_path / "d.png")]) == 2
    assert "is a directory" in _one_sentence(capsys.readouterr().err)


def test_a_write_that_fails_is_one_sentence_and_keeps_the_previous_file(tiny_model_dir, tmp_path, capsys, monkeypatch):
    generate(5, seed=64).to_csv(tmp_path / "cases.csv", index=False)
    out = tmp_path / "ranked.csv"
    out.write_text("previous results\n")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--out", str(out)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert f"--out {out}: could not be written (No space left on device)" in err
    assert out.read_text() == "previous results\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cases.csv", "ranked.csv"]  # no temporary file left


@pytest.mark.parametrize("argv", [
    ["evaluate", "--n", "0"],
    ["train", "--evaluation-cases", "0"],
    ["train", "--cases", "-5"],
    ["predict", "case.json", "--top", "0"],
    ["predict", "case.json", "--top", "-3"],
])
def test_counts_must_be_positive_integers(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "must be a positive integer" in err and "reshape" not in err and "Traceback" not in err


@pytest.mark.parametrize("seconds", ["0.05", "0", "-1", "nan"])
def test_a_worker_timeout_below_a_second_is_refused(seconds, capsys):
    """A worker's event loop ticks every 0.1 s: a shorter timeout would kill healthy workers."""
    assert main(["serve", "--workers", "2", "--worker-timeout", seconds]) == 2
    err = capsys.readouterr().err
    assert "--worker-timeout" in err and "Traceback" not in err


def test_a_csv_without_cases_says_so(tiny_model_dir, tmp_path, capsys):
    generate(3, seed=65).head(0).to_csv(tmp_path / "x.csv", index=False)
    assert main(["predict", str(tmp_path / "x.csv"), "--model", str(tiny_model_dir)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert "x.csv holds no cases" in err and "reshape" not in err
    (tmp_path / "empty.csv").write_text("")
    assert main(["predict", str(tmp_path / "empty.csv"), "--model", str(tiny_model_dir)]) == 2
    assert "empty.csv holds no cases" in _one_sentence(capsys.readouterr().err)


def test_predict_a_directory_says_it_is_a_directory(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "dir.json").mkdir()
    assert main(["predict", str(tmp_path / "dir.json"), "--model", str(tiny_model_dir)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert "is a directory" in err and "no such file" not in err


# ---------------------------------------------------- CSV input as lenient as a JSON case

def test_predict_csv_accepts_labels_and_yes_no_and_carries_other_columns(tiny_model_dir, tiny_diagnoser, tmp_path, capsys):
    (tmp_path / "cases.csv").write_text(
        "id,Potassium,Leg weakness,med_diuretic,Pedal pulses,thyroid_symptoms,age,Sex\n"
        "007,2.6,yes,true,Absent,None,71,Female\n"
        "008,NA,no,0,normal,,45,male\n")
    out = tmp_path / "ranked.csv"
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--top", "25", "--out", str(out)]) == 0
    assert "id is not a finding; carried through" in capsys.readouterr().err
    ranked = pd.read_csv(out, dtype={"id": str})
    assert list(ranked["id"]) == ["007", "008"] and list(ranked.columns[:3]) == ["row", "id", "cause_1"]
    as_json = [
        {"potassium": 2.6, "weakness_reported": "yes", "med_diuretic": True, "pedal_pulses": "absent",
         "thyroid_symptoms": "none", "age": 71, "sex": "female"},
        {"weakness_reported": "no", "med_diuretic": 0, "pedal_pulses": "normal", "age": 45, "sex": "male"},
    ]
    for row, case in enumerate(as_json):
        expected = {c.id: c.probability for c in tiny_diagnoser.rank(case)}
        got = {ranked.loc[row, f"cause_{r}"]: ranked.loc[row, f"probability_{r}"] for r in range(1, 26)}
        assert got.keys() == expected.keys()
        assert all(abs(got[k] - expected[k]) < 1e-6 for k in expected)


@pytest.mark.parametrize("sep", [";", "\t"])
def test_predict_csv_with_semicolons_or_tabs_ranks_like_commas(tiny_model_dir, tmp_path, sep):
    """Spreadsheets in many locales write semicolons (and decimal commas): never one column
    read as nothing entered."""
    rows = [["id", "potassium", "med_diuretic", "age"], ["a", "2.6", "yes", "71"]]
    (tmp_path / "comma.csv").write_text("\n".join(",".join(r) for r in rows) + "\n")
    local = [r if i == 0 else [r[0], r[1].replace(".", ","), *r[2:]] for i, r in enumerate(rows)]
    (tmp_path / "other.csv").write_text("\n".join(sep.join(r) for r in local) + "\n")
    for name in ("comma", "other"):
        assert main(["predict", str(tmp_path / f"{name}.csv"), "--model", str(tiny_model_dir), "--top", "3",
                     "--out", str(tmp_path / f"{name}-ranked.csv")]) == 0
    comma, other = (pd.read_csv(tmp_path / f"{n}-ranked.csv") for n in ("comma", "other"))
    assert comma.loc[0, "cause_1"] == "hypokalemia"
    pd.testing.assert_frame_equal(comma, other)


def test_predict_csv_without_a_finding_column_is_an_error_not_a_prior_ranking(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "cases.csv").write_text("id|kalium|diuretic\n1|2.6|yes\n")
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert "no column is a finding" in err and "id|kalium|diuretic" in err


def test_predict_csv_with_semicolons_and_labels_holding_commas(tiny_model_dir, schema, tmp_path):
    labels = [f.label for f in schema if "," in f.label][:2]
    (tmp_path / "cases.csv").write_text("age;" + ";".join(labels) + "\n70;yes;no\n")
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir),
                 "--out", str(tmp_path / "ranked.csv")]) == 0


def test_predict_csv_refuses_a_pregnancy_its_row_rules_out(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "cases.csv").write_text("age,sex,pregnancy\n70,male,trimester_2\n30,female,trimester_2\n")
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert "pregnancy, row 1: not possible" in err and "row 2" not in err


def test_predict_csv_misspelt_or_bad_columns_get_suggestions_with_rows(tiny_model_dir, tmp_path, capsys):
    (tmp_path / "cases.csv").write_text("Agee,pedal pulse,weakness_reported,sodium,notes\n70,absent,maybe,20,x\n")
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir)]) == 2
    err = _one_sentence(capsys.readouterr().err)
    assert "Agee: unknown finding; did you mean 'age'?" in err
    assert "pedal pulse: unknown finding; did you mean 'pedal_pulses'?" in err
    assert "weakness_reported, row 1: 'maybe' is not a yes/no answer" in err
    assert "sodium, row 1: outside the plausible range" in err and "notes" not in err


# -------------------------------------------------------------------- wording, disclaimer

def test_explanation_is_called_a_score_not_log_odds(tiny_model_dir, tmp_path, capsys):
    case = tmp_path / "case.json"
    case.write_text(json.dumps({"potassium": 2.6}))
    assert main(["predict", str(case), "--model", str(tiny_model_dir), "--explain"]) == 0
    out = capsys.readouterr().out
    why = next(line for line in out.splitlines() if line.startswith("Why "))
    assert "(score; average case " in why and " → this case " in why
    assert "probabilities are the softmax of the causes' scores" in why and "log-odds" not in out


def test_batch_predictions_carry_the_disclaimer(tiny_model_dir, tmp_path, capsys):
    from crampdx import DISCLAIMER

    generate(4, seed=66).to_csv(tmp_path / "cases.csv", index=False)
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--json", "--top", "2"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["disclaimer"] == DISCLAIMER and len(document["cases"]) == 4
    assert {"row", "etiology", "cause_1", "probability_2"} <= set(document["cases"][0])
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "r.csv")]) == 0
    captured = capsys.readouterr()
    assert DISCLAIMER in captured.err and "r.csv" in captured.out
    assert main(["predict", str(tmp_path / "cases.csv"), "--model", str(tiny_model_dir), "--out", str(tmp_path / "r.json")]) == 0
    assert json.loads((tmp_path / "r.json").read_text())["disclaimer"] == DISCLAIMER


@pytest.mark.slow
def test_evaluate_says_where_the_confusion_matrix_went(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", "--model", str(tiny_model_dir), "--n", "300", "--json"]) == 0
    captured = capsys.readouterr()
    written = tmp_path / "confusion_matrix.png"
    assert json.loads(captured.out)["confusion_matrix_png"] == str(written.resolve())
    assert f"Confusion matrix saved to {written.resolve()}" in captured.err
    assert main(["evaluate", "--model", str(tiny_model_dir), "--n", "300"]) == 0
    assert f"saved to {written.resolve()} (replacing the file that was there)" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir()] == ["confusion_matrix.png"]


# --------------------------------------------------------------- training at the iteration cap

@pytest.mark.slow
def test_train_at_the_iteration_cap_says_so_and_warns_the_model_is_weak(tmp_path, capsys):
    out = tmp_path / "m"
    assert main(["train", "--cases", "2000", "--max-iter", "5", "--evaluation-cases", "500", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "reached the --max-iter cap of 5 iterations without early stopping" in captured.out
    assert "stopped after" not in captured.out
    assert "Warning: this model is weak" in captured.err and "--max-iter cap of 5" in captured.err
    assert "2,000 cases" in captured.err and "It was saved" in captured.err
    card = (out / "model_card.md").read_text()
    assert "reached the max_iter cap without early stopping" in card and "after early stopping" not in card
    assert json.loads((out / "manifest.json").read_text())["stopped_early"] is False


def test_no_weak_model_warning_for_a_model_close_to_the_posterior():
    from crampdx.training.train import weak_model_warning

    manifest = {"metrics": {"n": 20_000, "posterior": {"top1_ratio_to_posterior": 0.97}}, "n_iterations": 300,
                "hyperparameters": {"max_iter": 2000}, "sizes": {"training": 135_000, "calibration": 15_000}}
    assert weak_model_warning(manifest) is None
    manifest["metrics"]["posterior"]["top1_ratio_to_posterior"] = 0.9
    warning = weak_model_warning(manifest)
    assert "90% of the exact posterior's" in warning and "cap" not in warning and "rough" not in warning


def test_the_weak_model_warning_judges_the_expected_ratio_where_the_manifest_has_it():
    """The ratio from sampled labels moves by a few thousandths between sets of cases; the one
    expected under the posterior does not, so it decides when a manifest holds both."""
    from crampdx.training.train import weak_model_warning

    posterior = {"top1_ratio_to_posterior": 0.96, "expected_top1_ratio_to_posterior": 0.93}
    warning = weak_model_warning({"metrics": {"n": 20_000, "posterior": posterior}})
    assert warning is not None and "93% of the exact posterior's" in warning
    posterior.update(top1_ratio_to_posterior=0.93, expected_top1_ratio_to_posterior=0.96)
    assert weak_model_warning({"metrics": {"n": 20_000, "posterior": posterior}}) is None
