"""A Streamlit server on a free localhost port for the dashboard's browser tests."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]


@contextmanager
def serving(command: Callable[[int], list[str]], env: dict[str, str], log: Path):
    """Runs ``command(port)`` from the repository (its config) until it answers its health
    check; yields the URL, and stops the server afterwards."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with open(log, "w") as out:
        process = subprocess.Popen(command(port), cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(180):
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert process.poll() is None, log.read_text()[-3000:]
                time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def open_session(app):
    """A new session of an ``AppTest`` as a browser opens it: the first run draws the findings
    form only (``crampdx.dashboard.pacing``), the browser's timer then asks for the run that
    draws the results."""
    return app.run().run()
