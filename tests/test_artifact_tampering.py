"""Artifacts that cannot lie or run code (issue 13, item 4).

Two kinds of tampering. Edits by hand or damage (manifest.json changed, a byte flipped):
refused, since the manifest must equal the record inside the hashed model file. Rewrites by
someone who can write the model directory (model file and manifest changed together, every
hash recomputed): nothing runs, a malformed model ends in one sentence, an unfittable
temperature is refused, and class names and ICD-10 codes still come from the knowledge base.
"""

from __future__ import annotations

import io
import json
import os
import pathlib
import pickle
import shutil

import joblib
import numpy as np
import pytest

import crampdx.model.persistence as persistence
from artifact_helpers import (assert_one_sentence, edit_manifest, model_arrays, replace_model_file,
                              rewrite_consistently)
from crampdx.model.artifact import ArtifactError
from crampdx.model.diagnoser import Diagnoser

HYPOKALEMIA = {"potassium": 2.6, "weakness_reported": "yes", "med_diuretic": "yes", "age": 70, "sex": "female"}


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target


def _refusal(directory, match: str) -> str:
    with pytest.raises(ArtifactError, match=match) as error:
        Diagnoser.load(directory)
    message = str(error.value)
    assert_one_sentence(message)
    assert f"crampdx train --out {directory}" in message
    return message


# ------------------------------------------------------- manifest.json edited by hand

@pytest.mark.parametrize("factor", [10, 1e6, 1e-300])
def test_an_edited_temperature_is_refused_and_the_trained_one_stays_in_the_model_file(model_copy, tiny_diagnoser, factor):
    edit_manifest(model_copy, lambda m: m.__setitem__("temperature", m["temperature"] * factor))
    _refusal(model_copy, "differs from the record saved inside model.npz in 'temperature'")
    inside = json.loads(model_arrays(model_copy)["record"].tobytes())
    assert inside["temperature"] == tiny_diagnoser.temperature_
    assert json.loads((model_copy / "manifest.json").read_text())["temperature"] != tiny_diagnoser.temperature_


def test_undoing_the_edit_gives_the_same_outputs(model_copy, tiny_diagnoser):
    original = (model_copy / "manifest.json").read_text()
    edit_manifest(model_copy, lambda m: m.__setitem__("temperature", m["temperature"] * 10))
    _refusal(model_copy, "'temperature'")
    (model_copy / "manifest.json").write_text(original)
    reloaded = Diagnoser.load(model_copy)
    assert [(c.id, c.probability) for c in reloaded.rank(HYPOKALEMIA)] == \
        [(c.id, c.probability) for c in tiny_diagnoser.rank(HYPOKALEMIA)]


def test_swapped_names_and_icd10_codes_in_the_manifest_are_refused(model_copy):
    def swap(manifest):
        first, second = manifest["classes"][0], manifest["classes"][1]
        for key in ("name", "icd10"):
            first[key], second[key] = second[key], first[key]
    edit_manifest(model_copy, swap)
    _refusal(model_copy, "differs from the record .* in 'classes'")


@pytest.mark.parametrize("key, value", [("metrics", {"model": {"top1_accuracy": 0.999}}), ("created", "2000-01-01"),
                                        ("seed", 7), ("calibration", None)])
def test_any_other_edited_entry_is_refused(model_copy, key, value):
    edit_manifest(model_copy, lambda m: m.__setitem__(key, value))
    _refusal(model_copy, f"in '{key}'")


# ---------------------------------------------- rewritten consistently (hashes updated)

def test_names_and_icd10_codes_come_from_the_knowledge_base_even_if_the_record_says_otherwise(model_copy, kb):
    def swap(record):
        first, second = record["classes"][0], record["classes"][1]
        for key in ("name", "icd10"):
            first[key], second[key] = second[key], first[key]
    rewrite_consistently(model_copy, record_edit=swap)
    causes = Diagnoser.load(model_copy).rank(HYPOKALEMIA)
    assert causes[0].id == "hypokalemia"
    for cause in causes:
        assert (cause.name, cause.icd10) == (kb.class_of(cause.id).name, kb.class_of(cause.id).icd10)


def test_swapped_class_ids_in_the_record_are_refused(model_copy):
    def swap(record):
        record["classes"][0], record["classes"][1] = record["classes"][1], record["classes"][0]
    rewrite_consistently(model_copy, record_edit=swap)
    _refusal(model_copy, "classes the model .* records are not its classes of the knowledge base")


@pytest.mark.parametrize("temperature", [-1, 0, 0.01, 25.0, 1e6, 1e-300, float("inf"), float("nan"), "1.0", True, None])
def test_a_temperature_training_cannot_fit_is_refused(model_copy, temperature):
    rewrite_consistently(model_copy, record_edit=lambda r: r.__setitem__("temperature", temperature))
    _refusal(model_copy, "records no valid temperature")


def _set(name, value):
    return lambda arrays: arrays.__setitem__(name, value)


def _set_node(field, position, value):
    def edit(arrays):
        inner = np.flatnonzero(arrays["nodes"]["is_leaf"] == 0)
        arrays["nodes"][field][inner[position]] = value
    return edit


MALFORMED = {
    "a branch beyond its tree": (_set_node("left", 0, 10_000), "branches point outside the tree"),
    "a branch back to the root": (_set_node("right", 0, 0), "outside the tree or backwards"),
    "a finding beyond the schema": (_set_node("feature_idx", 0, 10_000), "uses a finding beyond"),
    "a negative finding": (_set_node("feature_idx", 0, -1), "uses a finding beyond"),
    "a value that is not finite": (_set_node("value", 0, np.nan), "not finite"),
    "a threshold that is not a number": (_set_node("num_threshold", 0, np.nan), "not a number"),
    "a wrong depth": (_set_node("depth", 0, 7), "depths"),
    "counts that do not add up": (_set_node("count", 0, 1), "counts do not add up"),
    "tree sizes that do not add up": (lambda a: a["tree_sizes"].__setitem__(0, a["tree_sizes"][0] + 1), "tree sizes"),
    "a class out of order": (lambda a: a.__setitem__("classes", a["classes"][::-1].copy()), "increasing order"),
    "a class beyond the knowledge base": (lambda a: a["classes"].__setitem__(-1, 99), "does not predict the etiology"),
    "other findings": (_set("n_features", np.array(200, dtype=np.int64)), "findings where the finding schema has"),
    "a baseline of another length": (lambda a: a.__setitem__("baseline", a["baseline"][:-1].copy()), "baseline"),
    "a float where integers belong": (lambda a: a.__setitem__("tree_sizes", a["tree_sizes"].astype(float)), "type float64"),
    "an array missing": (lambda a: a.pop("baseline"), "instead of"),
}


@pytest.mark.parametrize("what", MALFORMED)
def test_a_malformed_model_file_ends_in_one_sentence(model_copy, what):
    edit, match = MALFORMED[what]
    rewrite_consistently(model_copy, arrays_edit=edit)
    _refusal(model_copy, match)


def test_flipped_bytes_with_the_hash_updated_end_in_one_sentence_or_change_nothing(model_copy, tiny_diagnoser):
    """A byte in the archive's bookkeeping (the zip comment's length) may change nothing the
    model is made of; every other byte is refused."""
    content = (model_copy / "model.npz").read_bytes()
    expected = [(c.id, c.probability) for c in tiny_diagnoser.rank(HYPOKALEMIA)]
    refused = 0
    for position in [*range(0, 400, 37), *np.linspace(400, len(content) - 1, 25).astype(int)]:
        flipped = bytearray(content)
        flipped[position] ^= 0xFF
        replace_model_file(model_copy, bytes(flipped))
        try:
            diagnoser = Diagnoser.load(model_copy)
        except ArtifactError as error:  # nothing but ArtifactError, whatever the byte
            assert_one_sentence(str(error))
            refused += 1
        else:
            assert [(c.id, c.probability) for c in diagnoser.rank(HYPOKALEMIA)] == expected
    assert refused >= 30


# ------------------------------------------------------------ nothing is ever unpickled

class _WritesAFile:
    """Unpickling this writes a file: the code an attacker would run."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return pathlib.Path.write_text, (pathlib.Path(self.path), "code ran")


def test_a_pickle_in_place_of_the_model_file_is_never_loaded(model_copy, tmp_path):
    sentinel = tmp_path / "pwned"
    buffer = io.BytesIO()
    joblib.dump(_WritesAFile(sentinel), buffer)
    replace_model_file(model_copy, buffer.getvalue())
    _refusal(model_copy, "it is a pickle, which is never loaded")
    assert not sentinel.exists()


def test_an_object_array_inside_the_model_file_is_never_loaded(model_copy, tmp_path):
    sentinel = tmp_path / "pwned"
    payload = np.empty(1, dtype=object)
    payload[0] = _WritesAFile(sentinel)
    rewrite_consistently(model_copy, arrays_edit=_set("nodes", payload))
    _refusal(model_copy, "holds Python objects")
    assert not sentinel.exists()


def test_a_pickle_named_model_joblib_with_an_old_manifest_is_never_loaded(model_copy, tmp_path):
    sentinel = tmp_path / "pwned"
    joblib.dump(_WritesAFile(sentinel), model_copy / "model.joblib")
    edit_manifest(model_copy, lambda m: m.__setitem__("format_version", 1))
    _refusal(model_copy, "earlier crampdx as a pickle")
    assert not sentinel.exists()


def test_a_model_file_that_is_a_fifo_is_refused_without_blocking(model_copy):
    (model_copy / "model.npz").unlink()
    os.mkfifo(model_copy / "model.npz")  # reading it would wait forever for a writer
    _refusal(model_copy, "model.npz is missing or does not match the hash")


def test_loading_a_good_model_unpickles_nothing(model_copy, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("something was unpickled")
    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    assert Diagnoser.load(model_copy).rank(HYPOKALEMIA)[0].id == "hypokalemia"


def test_the_model_file_is_read_once(model_copy, monkeypatch):
    """Hashed and parsed from the same bytes: no window to swap the file in between."""
    reads = []
    real = persistence.read_model_file

    def spy(content, *args):
        reads.append(content)
        return real(content, *args)
    monkeypatch.setattr("crampdx.model.loading.read_model_file", spy)
    Diagnoser.load(model_copy)
    assert reads == [(model_copy / "model.npz").read_bytes()]
