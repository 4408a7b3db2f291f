"""Artifacts: what the manifest records, atomic writes, and refusal to load anything that
does not verify (before the model file is parsed). Tampering and hostile files:
tests/test_artifact_tampering.py; staging leftovers: tests/test_staging.py."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

import crampdx
import crampdx.model.artifact as artifact
import crampdx.model.loading as loading
from artifact_helpers import assert_one_sentence, edit_manifest, small_estimator
from crampdx.model.artifact import ArtifactError, default_artifact_dir, library_versions, write_artifact
from crampdx.model.diagnoser import Diagnoser
from crampdx.model.loading import read_artifact
from crampdx.synthetic import KNOWLEDGE_DIR, load_knowledge


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    """A private copy of the tiny artifact to damage."""
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


@pytest.fixture
def no_unpickling(monkeypatch):
    """Fail the test if the model file is parsed at all (the refusal must come first)."""
    def refuse(*args, **kwargs):
        raise AssertionError("the model file was parsed for an artifact that should have been refused")
    monkeypatch.setattr(loading, "read_model_file", refuse)


@pytest.fixture(scope="module")
def estimator():
    return small_estimator()


_edit_manifest = edit_manifest


def _write(target, estimator, note, **kwargs):
    return write_artifact(target, estimator, {"note": note}, **kwargs)


def _note(target) -> str:
    return read_artifact(target)[1]["note"]


def test_manifest_records_what_the_issue_lists(tiny_model_dir, kb):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert manifest["format_version"] == artifact.ARTIFACT_FORMAT_VERSION
    assert manifest["created"].endswith("+00:00")
    assert set(manifest["versions"]) == {"python", "scikit-learn", "shap", "numpy", "pandas"}
    assert manifest["versions"] == library_versions()
    assert manifest["schema_sha256"] == kb.schema.hash
    assert [f["id"] for f in manifest["schema"]["findings"]] == list(kb.schema.ids)
    assert manifest["knowledge_sha256"] == kb.sha256
    assert manifest["seed"] == 3
    assert manifest["sizes"]["training"] + manifest["sizes"]["calibration"] == 8000
    assert "synthetic" in manifest["data_source"] and manifest["synthetic_cases"] == 8000
    assert [c["id"] for c in manifest["classes"]] == list(kb.class_ids)
    assert all(c["name"] and "icd10" in c for c in manifest["classes"])
    assert 0.05 < manifest["temperature"] < 20
    for key in ("top1_accuracy", "top3_accuracy", "log_loss", "brier", "ece"):
        assert key in manifest["metrics"]["model"]
    for key in ("posterior_top1_accuracy", "mean_kl_posterior_to_model", "top1_ratio_to_posterior"):
        assert key in manifest["metrics"]["posterior"]


def test_manifest_records_the_hash_of_every_other_file(tiny_model_dir):
    manifest = json.loads((tiny_model_dir / "manifest.json").read_text())
    assert manifest["model_sha256"] == artifact.sha256_of(tiny_model_dir / "model.npz")
    on_disk = {p.name for p in tiny_model_dir.iterdir()} - {"manifest.json"}
    assert set(manifest["files"]) == on_disk == {"model.npz", "model_card.md", "confusion_matrix.png", "calibration.png"}
    for name, digest in manifest["files"].items():
        assert digest == artifact.sha256_of(tiny_model_dir / name)


def test_artifact_holds_model_card_and_plots(tiny_model_dir):
    card = (tiny_model_dir / "model_card.md").read_text()
    assert "Not validated on patients" in card and "synthetic" in card
    assert "exact posterior" in card
    for png in ("confusion_matrix.png", "calibration.png"):
        assert (tiny_model_dir / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_loader_refuses_a_tampered_model_without_parsing_it(model_copy, no_unpickling):
    with open(model_copy / "model.npz", "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="does not match the hash") as error:
        Diagnoser.load(model_copy)
    assert_one_sentence(str(error.value))


@pytest.mark.parametrize("name", ["model_card.md", "calibration.png"])
def test_loader_refuses_a_changed_model_card_or_plot(model_copy, name, no_unpickling):
    with open(model_copy / name, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match=f"{name} is missing or does not match the hash"):
        Diagnoser.load(model_copy)


@pytest.mark.parametrize("library", ["scikit-learn", "numpy", "shap", "pandas", "python"])
def test_loader_refuses_other_library_versions_without_unpickling(model_copy, no_unpickling, library):
    _edit_manifest(model_copy, lambda m: m["versions"].__setitem__(library, "0.0.1"))
    with pytest.raises(ArtifactError) as error:
        Diagnoser.load(model_copy)
    assert library in str(error.value) and "0.0.1" in str(error.value) and "crampdx train" in str(error.value)


def test_python_patch_release_does_not_count_as_a_mismatch(model_copy, monkeypatch):
    running = library_versions()
    major, minor, _ = running["python"].split(".")
    monkeypatch.setattr(loading, "library_versions", lambda: {**running, "python": f"{major}.{minor}.999"})
    assert Diagnoser.load(model_copy).class_ids_
    monkeypatch.setattr(loading, "library_versions", lambda: {**running, "python": f"{major}.{int(minor) + 1}.0"})
    with pytest.raises(ArtifactError, match=r"python .* \(now"):
        Diagnoser.load(model_copy)


def test_loader_refuses_another_finding_schema(model_copy, no_unpickling):
    _edit_manifest(model_copy, lambda m: m.__setitem__("schema_sha256", "0" * 64))
    with pytest.raises(ArtifactError, match="another finding schema.*crampdx train"):
        Diagnoser.load(model_copy)


def test_loader_refuses_a_model_trained_under_another_knowledge_base(model_copy, tmp_path, no_unpickling):
    """One number changed in a copy of the knowledge base: the model no longer matches it."""
    edited = tmp_path / "knowledge"
    shutil.copytree(KNOWLEDGE_DIR, edited)
    class_file = edited / "classes" / "hypokalemia.toml"
    text = class_file.read_text(encoding="utf-8")
    changed = re.sub(r"prior = \{ value = ([0-9.]+)", lambda m: f"prior = {{ value = {float(m.group(1)) * 1.1:.4f}", text, count=1)
    assert changed != text
    class_file.write_text(changed, encoding="utf-8")
    other = load_knowledge(edited)
    assert other.sha256 != load_knowledge().sha256
    with pytest.raises(ArtifactError, match=r"trained under another knowledge base .*run `crampdx train --out .*` to retrain it"):
        Diagnoser.load(model_copy, knowledge=other)


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
    default = default_artifact_dir()
    assert default.parts[-3:] == ("crampdx", "models", "default")
    assert Path(crampdx.__file__).parent not in default.parents  # never inside the installed package


def test_load_without_path_uses_the_environment(monkeypatch, tiny_model_dir):
    monkeypatch.setenv("CRAMPDX_MODEL", str(tiny_model_dir))
    assert Diagnoser.load().path_ == tiny_model_dir


def test_interrupted_write_leaves_the_previous_artifact_loadable(tmp_path, estimator):
    target = tmp_path / "artifact"
    _write(target, estimator, "first")
    before = (target / "manifest.json").read_text()

    def crash(staging):
        assert any(staging.iterdir())  # crash half-way through the new artifact
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _write(target, estimator, "second", extra_files=crash)
    assert (target / "manifest.json").read_text() == before
    assert _note(target) == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]  # no staging left behind


def test_failed_swap_restores_the_previous_artifact(tmp_path, monkeypatch, estimator):
    target = tmp_path / "artifact"
    _write(target, estimator, "first")
    real_replace = os.replace
    calls = []

    def replace_failing_second_time(src, dst):
        calls.append((src, dst))
        if len(calls) == 2:  # old artifact moved aside, new one about to move in
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(artifact.os, "replace", replace_failing_second_time)
    with pytest.raises(ArtifactError, match="disk full"):
        _write(target, estimator, "second")
    monkeypatch.setattr(artifact.os, "replace", real_replace)
    assert _note(target) == "first"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def test_rewrite_replaces_the_artifact(tmp_path, estimator):
    target = tmp_path / "artifact"
    _write(target, estimator, "1")
    _write(target, small_estimator(max_iter=2), "2")
    estimator_read, manifest = read_artifact(target)
    assert manifest["note"] == "2" and estimator_read.n_iter_ == 2


# ------------------------------------------- writing never destroys anything but a model

TARGET_FIX = "choose an empty or new directory, or an existing crampdx model directory"


def _snapshot(root: Path) -> dict:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_write_refuses_a_directory_of_other_files_and_leaves_it_alone(tmp_path, estimator):
    target = tmp_path / "results"
    (target / "sub").mkdir(parents=True)
    (target / "notes.txt").write_text("a week of work")
    (target / "sub" / "data.csv").write_text("1,2\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ArtifactError) as error:
        _write(target, estimator, "1")
    message = str(error.value)
    assert str(target) in message and TARGET_FIX in message and "notes.txt" in message
    assert _snapshot(tmp_path) == before  # nothing replaced, nothing removed, no staging left


def test_write_refuses_a_file(tmp_path, estimator):
    target = tmp_path / "good.json"
    target.write_text('{"keep": true}')
    with pytest.raises(ArtifactError, match=f"good.json: it is an existing file.*{TARGET_FIX}"):
        _write(target, estimator, "1")
    assert target.read_text() == '{"keep": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.json"]


def test_write_refuses_a_model_directory_that_also_holds_other_files(tmp_path, estimator):
    target = tmp_path / "artifact"
    _write(target, estimator, "1")
    (target / "my_notes.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="my_notes.txt.*move them elsewhere"):
        _write(target, estimator, "2")
    assert (target / "my_notes.txt").read_text() == "keep me" and _note(target) == "1"


def test_write_refuses_a_path_below_a_file(tmp_path, estimator):
    (tmp_path / "good.json").write_text("{}")
    with pytest.raises(ArtifactError, match=f"is a file, not a folder; {TARGET_FIX}"):
        _write(tmp_path / "good.json" / "model", estimator, "1")
    assert (tmp_path / "good.json").read_text() == "{}"


def test_write_accepts_new_empty_and_earlier_model_directories(tmp_path, estimator):
    _write(tmp_path / "a" / "b" / "new", estimator, "1")
    (tmp_path / "empty").mkdir()
    _write(tmp_path / "empty", estimator, "1")
    assert _note(tmp_path / "a" / "b" / "new") == _note(tmp_path / "empty") == "1"


def test_a_model_with_card_and_plots_can_be_retrained_in_place(model_copy):
    estimator, manifest = read_artifact(model_copy)
    assert manifest["files"]["model_card.md"]
    (model_copy / ".DS_Store").write_bytes(b"")
    write_artifact(model_copy, estimator, {"note": "retrained"}, extra_files=lambda d: (d / "extra.csv").write_text("x\n"))
    assert read_artifact(model_copy)[1]["note"] == "retrained"
    assert set(json.loads((model_copy / "manifest.json").read_text())["files"]) == {"model.npz", "extra.csv"}
    write_artifact(model_copy, estimator, {})  # a file the manifest lists is the model's own


def test_a_damaged_model_directory_can_be_rebuilt(model_copy, estimator):
    (model_copy / "manifest.json").write_text("{ not json")
    _write(model_copy, estimator, "2")
    assert _note(model_copy) == "2"


def test_check_artifact_target_is_cheap_and_refuses_before_training(tmp_path):
    (tmp_path / "good.json").write_text("{}")
    with pytest.raises(ArtifactError, match=TARGET_FIX):
        artifact.check_artifact_target(tmp_path / "good.json")
    assert artifact.check_artifact_target(tmp_path / "new") == tmp_path / "new"
    assert "check_artifact_target" in artifact.__all__


def test_write_checks_again_just_before_replacing(tmp_path, estimator):
    target = tmp_path / "artifact"
    _write(target, estimator, "1")

    def someone_writes_meanwhile(staging):
        (target / "report.docx").write_text("draft")

    with pytest.raises(ArtifactError, match="report.docx"):
        _write(target, estimator, "2", extra_files=someone_writes_meanwhile)
    assert (target / "report.docx").read_text() == "draft" and _note(target) == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifact"]


def test_new_artifact_directory_has_normal_permissions(tmp_path, estimator):
    old = os.umask(0o022)
    try:
        _write(tmp_path / "artifact", estimator, "1")
    finally:
        os.umask(old)
    assert (tmp_path / "artifact").stat().st_mode & 0o777 == 0o755


def test_a_symbolic_link_to_a_model_is_followed_and_kept(tmp_path, estimator):
    _write(tmp_path / "v3", estimator, "3")
    (tmp_path / "current").symlink_to(tmp_path / "v3")
    _write(tmp_path / "current", estimator, "4")
    assert (tmp_path / "current").is_symlink() and _note(tmp_path / "v3") == "4"


def test_an_artifact_of_the_earlier_pickle_format_is_refused_unread_and_can_be_retrained(tmp_path, estimator,
                                                                                        no_unpickling):
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "model.joblib").write_bytes(b"\x80\x04not really a pickle")
    (legacy / "manifest.json").write_text(json.dumps({"format_version": 1, "files": ["model.joblib", "manifest.json"]}))
    with pytest.raises(ArtifactError, match=rf"earlier crampdx as a pickle .* `crampdx train --out {legacy}`") as error:
        Diagnoser.load(legacy)
    assert_one_sentence(str(error.value))
    _write(legacy, estimator, "retrained")  # the old model directory is accepted as a destination
    assert sorted(p.name for p in legacy.iterdir()) == ["manifest.json", "model.npz"]


def test_an_unknown_format_is_refused(model_copy, no_unpickling):
    _edit_manifest(model_copy, lambda m: m.__setitem__("format_version", 99))
    _expect_refusal(model_copy, "unknown artifact format")


def _expect_refusal(directory, match):
    with pytest.raises(ArtifactError, match=match) as error:
        Diagnoser.load(directory)
    assert f"crampdx train --out {directory}" in str(error.value)
    assert_one_sentence(str(error.value))


# --------------------------------------- the advice retrains the model that was asked for

def test_errors_for_a_model_elsewhere_name_its_directory(model_copy, no_unpickling):
    _edit_manifest(model_copy, lambda m: m["versions"].__setitem__("numpy", "0.0.1"))
    with pytest.raises(ArtifactError, match=f"crampdx train --out {model_copy}`"):
        Diagnoser.load(model_copy)


def test_errors_for_the_environment_model_name_its_directory(model_copy, monkeypatch, no_unpickling):
    monkeypatch.setenv("CRAMPDX_MODEL", str(model_copy))
    (model_copy / "manifest.json").write_text("{ not json")
    with pytest.raises(ArtifactError, match=f"crampdx train --out {model_copy}`"):
        Diagnoser.load()


def test_the_default_model_is_retrained_by_plain_crampdx_train(monkeypatch):
    monkeypatch.delenv("CRAMPDX_MODEL", raising=False)
    assert artifact.retrain_command(default_artifact_dir()) == "crampdx train"
    assert artifact.retrain_command("some dir") == "crampdx train --out 'some dir'"
    monkeypatch.setenv("CRAMPDX_MODEL", "/elsewhere")
    assert artifact.retrain_command("/elsewhere") == "crampdx train --out /elsewhere"
    builtin = Path(artifact.__file__).parent / "artifacts" / "default"
    assert artifact.retrain_command(builtin) == f"crampdx train --out {builtin}"
