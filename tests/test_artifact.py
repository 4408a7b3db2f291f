"""Artifacts: what the manifest records, atomic writes, and refusal to load anything that
does not verify (before any unpickling)."""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import joblib
import numpy as np
import pytest
from sklearn.exceptions import InconsistentVersionWarning

import model.artifact as artifact
from model.artifact import ArtifactError, default_artifact_dir, library_versions, read_artifact, write_artifact
from model.diagnoser import Diagnoser
from synthetic import generate


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    """A private copy of the tiny artifact to damage."""
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if anything is unpickled."""
    def refuse(*args, **kwargs):
        raise AssertionError("joblib.load was called on an artifact that should have been refused")
    monkeypatch.setattr(artifact.joblib, "load", refuse)


def _edit_manifest(directory: Path, edit) -> None:
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def test_manifest_records_what_the_issue_lists(tiny_model_dir, kb):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert manifest["format_version"] == artifact.ARTIFACT_FORMAT_VERSION
    assert manifest["created"].endswith("+00:00")
    assert set(manifest["versions"]) == {"python", "scikit-learn", "shap", "numpy", "pandas", "joblib"}
    assert manifest["versions"] == library_versions()
    assert manifest["schema_sha256"] == kb.schema.hash
    assert [f["id"] for f in manifest["schema"]["findings"]] == list(kb.schema.ids)
    assert manifest["knowledge_sha256"] == kb.sha256
    assert manifest["seed"] == 3
    assert manifest["sizes"]["training"] + manifest["sizes"]["calibration"] == 8000
    assert "synthetic" in manifest["data_source"]
    assert [c["id"] for c in manifest["classes"]] == list(kb.class_ids)
    assert all(c["name"] and "icd10" in c for c in manifest["classes"])
    assert 0.05 < manifest["temperature"] < 20
    for key in ("top1_accuracy", "top3_accuracy", "log_loss", "brier", "ece"):
        assert key in manifest["metrics"]["model"]
    for key in ("posterior_top1_accuracy", "mean_kl_posterior_to_model", "top1_ratio_to_posterior"):
        assert key in manifest["metrics"]["posterior"]


def test_model_hash_in_manifest_is_the_file_hash(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert manifest["model_sha256"] == artifact._sha256(tiny_model_dir / "model.joblib")


def test_artifact_holds_model_card_and_plots(tiny_model_dir):
    card = (tiny_model_dir / "model_card.md").read_text()
    assert "Not validated on patients" in card and "synthetic" in card
    assert "exact posterior" in card
    for png in ("confusion_matrix.png", "calibration.png"):
        assert (tiny_model_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loader_refuses_a_tampered_model_without_unpickling(model_copy, no_unpickling):
    with open(model_copy / "model.joblib", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="does not match the hash") as error:
        Diagnoser.load(model_copy)
    assert "crampdx train" in str(error.value)


@pytest.mark.parametrize("library", ["scikit-learn", "numpy", "shap", "pandas", "joblib", "python"])
def test_loader_refuses_other_library_versions_without_unpickling(model_copy, no_unpickling, library):
    _edit_manifest(model_copy, lambda m: m["versions"].__setitem__(library, "0.0.1"))
    with pytest.raises(ArtifactError) as error:
        Diagnoser.load(model_copy)
    assert library in str(error.value) and "0.0.1" in str(error.value) and "crampdx train" in str(error.value)


def test_python_patch_release_does_not_count_as_a_mismatch(model_copy):
    major, minor, _ = library_versions()["python"].split(".")
    _edit_manifest(model_copy, lambda m: m["versions"].__setitem__("python", f"{major}.{minor}.999"))
    assert Diagnoser.load(model_copy).class_ids_


def test_inconsistent_version_warning_counts_as_a_mismatch(model_copy, monkeypatch):
    def warn_like_sklearn(path):
        warnings.warn(InconsistentVersionWarning(estimator_name="X", current_sklearn_version="9", original_sklearn_version="0.1"))
    monkeypatch.setattr(artifact.joblib, "load", warn_like_sklearn)
    with pytest.raises(ArtifactError, match="scikit-learn 0.1"):
        Diagnoser.load(model_copy)


def test_loader_refuses_another_finding_schema(model_copy, no_unpickling):
    _edit_manifest(model_copy, lambda m: m.__setitem__("schema_sha256", "0" * 64))
    with pytest.raises(ArtifactError, match="schema sha256.*crampdx train"):
        Diagnoser.load(model_copy)


def test_missing_model_says_to_train(tmp_path):
    with pytest.raises(ArtifactError, match="No trained model at .*crampdx train"):
        Diagnoser.load(tmp_path / "nothing-here")


def test_unreadable_manifest_is_one_clear_error(model_copy, no_unpickling):
    (model_copy / "manifest.json").write_text("{ not json")
    with pytest.raises(ArtifactError, match="unreadable.*crampdx train"):
        Diagnoser.load(model_copy)


def test_default_directory_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CRAMPDX_MODEL", str(tmp_path / "elsewhere"))
    assert default_artifact_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("CRAMPDX_MODEL")
    assert default_artifact_dir().parts[-3:] == ("model", "artifacts", "default")


def test_load_without_path_uses_the_environment(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("CRAMPDX_MODEL", str(tiny_model_dir))
    assert Diagnoser.load().path_ == tiny_model_dir


def test_interrupted_write_leaves_the_previous_artifact_loadable(tmp_path):
    target = tmp_path / "artifact"
    write_artifact(target, {"weights": [1, 2, 3]}, {"note": "first"})
    before = (target / "manifest.json").read_text()

    def crash(staging):
        assert any(staging.iterdir())  # crash half-way through the new artifact
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_artifact(target, {"weights": [9]}, {"note": "second"}, extra_files=crash)
    assert (target / "manifest.json").read_text() == before
    estimator, manifest = read_artifact(target)
    assert estimator == {"weights": [1, 2, 3]} and manifest["note"] == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]  # no staging left behind


def test_failed_swap_restores_the_previous_artifact(tmp_path, monkeypatch):
    target = tmp_path / "artifact"
    write_artifact(target, {"v": 1}, {"note": "first"})
    real_replace = os.replace
    calls = []

    def replace_failing_second_time(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old artifact moved aside, new one about to move in
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(artifact.os, "replace", replace_failing_second_time)
    with pytest.raises(OSError):
        write_artifact(target, {"v": 2}, {"note": "second"})
    monkeypatch.setattr(artifact.os, "replace", real_replace)
    assert read_artifact(target)[0] == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def test_rewrite_replaces_the_artifact(tmp_path):
    target = tmp_path / "artifact"
    write_artifact(target, {"v": 1}, {})
    write_artifact(target, {"v": 2}, {})
    assert read_artifact(target)[0] == {"v": 2}
