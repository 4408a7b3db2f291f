"""Staging directories left by a killed training run are removed by the next write, and
never while another writer holds the folder."""

from __future__ import annotations

import fcntl
import os

import pytest

from artifact_helpers import small_estimator
from crampdx.model.artifact import write_artifact
from crampdx.model.loading import read_artifact
from crampdx.model.staging import StagingBusyError, staging_beside


@pytest.fixture(scope="module")
def estimator():
    return small_estimator()


def _killed_run_leftover(parent, name):
    """What a run killed during its save step leaves: a half-written staging directory."""
    leftover = parent / name
    leftover.mkdir()
    (leftover / "model.npz").write_bytes(b"half a model")
    return leftover


def test_the_next_write_removes_a_killed_runs_staging_directory(tmp_path, estimator):
    write_artifact(tmp_path / "model", estimator, {"note": "first"})
    _killed_run_leftover(tmp_path, ".model.staging-k1ll3d")
    _killed_run_leftover(tmp_path, ".model.retired-k1ll3d")
    other = _killed_run_leftover(tmp_path, ".other-model.staging-abc")  # another destination's: not ours to judge
    write_artifact(tmp_path / "model", estimator, {"note": "second"})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other-model.staging-abc", "model"]
    assert other.exists() and read_artifact(tmp_path / "model")[1]["note"] == "second"


def test_a_first_write_also_cleans_up(tmp_path, estimator):
    _killed_run_leftover(tmp_path, ".model.staging-k1ll3d")
    write_artifact(tmp_path / "model", estimator, {"note": "first"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_a_retired_copy_is_kept_when_it_is_the_only_copy_of_a_model(tmp_path):
    """Killed between moving the old model aside and moving the new one in: the old model
    lives only in the retired directory, which staging never deletes then."""
    retired = _killed_run_leftover(tmp_path, ".model.retired-k1ll3d")
    staging_leftover = _killed_run_leftover(tmp_path, ".model.staging-k1ll3d")
    with staging_beside(tmp_path / "model") as staging:
        assert staging.exists() and staging.name.startswith(".model.staging-")
    assert retired.exists() and not staging_leftover.exists() and not staging.exists()


def test_nothing_is_removed_while_another_writer_holds_the_folder(tmp_path):
    leftover = _killed_run_leftover(tmp_path, ".model.staging-busy")
    handle = os.open(tmp_path, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)  # another process in its save step
        with pytest.raises(StagingBusyError, match="another process"):
            with staging_beside(tmp_path / "model", timeout=0.3):
                pass
        assert leftover.exists()
    finally:
        os.close(handle)
    with staging_beside(tmp_path / "model", timeout=0.3):
        assert not leftover.exists()
