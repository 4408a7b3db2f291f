"""Output paths (issue 13, item 5): only regular files are written; a FIFO, a device, a
socket or a symbolic link at the path is refused with one sentence and left as it is."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from crampdx.files import OutputPathError, check_output_path, write_atomically, write_text_atomically


def _never_called(tmp):
    raise AssertionError("the output was written although the path was refused")


def test_a_fifo_is_refused_and_kept(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputPathError, match=r"--out .*pipe is a FIFO \(named pipe\), not a regular file"):
        write_atomically(fifo, _never_called)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary file left


def test_a_device_is_refused():
    with pytest.raises(OutputPathError, match="/dev/null is a character device, not a regular file"):
        check_output_path("/dev/null", "--png")


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s"
    server = socket.socket(socket.AF_UNIX)
    try:
        server.bind(str(path))
        with pytest.raises(OutputPathError, match="is a socket"):
            check_output_path(path)
    finally:
        server.close()


def test_a_symbolic_link_is_refused_naming_the_real_path(tmp_path):
    real = tmp_path / "real.csv"
    real.write_text("keep")
    link = tmp_path / "link.csv"
    link.symlink_to(real)
    with pytest.raises(OutputPathError) as error:
        write_text_atomically("new", link)
    message = str(error.value)
    assert "is a symbolic link" in message and str(real) in message and "\n" not in message
    assert link.is_symlink() and real.read_text() == "keep"


def test_a_link_that_leads_nowhere_is_refused(tmp_path):
    link = tmp_path / "dangling.csv"
    link.symlink_to(tmp_path / "missing.csv")
    with pytest.raises(OutputPathError, match="symbolic link.*leads nowhere"):
        check_output_path(link)
    assert link.is_symlink() and not (tmp_path / "missing.csv").exists()


def test_a_fifo_that_appears_while_writing_is_not_replaced(tmp_path):
    out = tmp_path / "result.csv"

    def write_while_someone_makes_a_fifo(tmp):
        Path(tmp).write_text("data")
        os.mkfifo(out)

    with pytest.raises(OutputPathError, match="FIFO"):
        write_atomically(out, write_while_someone_makes_a_fifo)
    assert stat.S_ISFIFO(os.lstat(out).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.csv"]


def test_regular_files_new_or_existing_are_still_written(tmp_path):
    out = tmp_path / "result.csv"
    write_text_atomically("one", out)
    out.chmod(0o600)
    write_text_atomically("two", out)
    assert out.read_text() == "two" and stat.S_IMODE(out.stat().st_mode) == 0o600
