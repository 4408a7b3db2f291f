"""CPU seconds of processes from /proc (Linux), and the dashboard (or another Streamlit
script) served on a free port, for bench/bench_dashboard_load.py and bench/bench_cold_start.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int | str) -> list[str]:
    """The fields of /proc/<pid>/stat after the command name (which may hold spaces)."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(int(_stat(entry.name)[1]), []).append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def clients_cpu(skip: set[int]) -> float:
    """CPU seconds of this process and its children (Playwright's driver, chromium) except the
    servers in ``skip``. A child that ended is no longer counted: take the difference of two
    readings while the browser is open."""
    total = sum(os.times()[:2])
    for pid in descendants(os.getpid()):
        if pid not in skip:
            try:
                total += cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                pass
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy (every process), from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


def settle(quiet: float = 0.25, window: float = 0.5, limit: float = 15.0) -> float:
    """Wait until the whole machine used less than ``quiet`` of its cores over ``window``
    seconds (what an earlier round left running, such as a browser closing its pages, has
    ended), at most ``limit`` seconds; returns the seconds waited."""
    start, cores = time.monotonic(), os.cpu_count() or 1
    while time.monotonic() - start < limit:
        busy = machine_busy()
        time.sleep(window)
        if (machine_busy() - busy) / (window * cores) < quiet:
            break
    return time.monotonic() - start


def package_view(checkout: Path) -> Path:
    """An earlier checkout (``git archive COMMIT | tar -x -C DIR``) as the editable install maps
    it: a folder holding ``crampdx/`` (the checkout's ``crampdx/`` with its sibling folders as
    subpackages) and the checkout's ``app.py`` and ``.streamlit/``. Served from this folder with
    it first on PYTHONPATH, its ``app.py`` imports the checkout's code, not this repository's."""
    view = Path(tempfile.mkdtemp(prefix="crampdx-before-"))
    (view / "crampdx").mkdir()
    for entry in (checkout / "crampdx").iterdir():
        (view / "crampdx" / entry.name).symlink_to(entry.resolve())
    for folder in checkout.iterdir():
        if folder.is_dir() and (folder / "__init__.py").exists() and folder.name != "crampdx":
            (view / "crampdx" / folder.name).symlink_to(folder.resolve())
    shutil.copy(checkout / "app.py", view / "app.py")  # a copy: the script's own folder goes on sys.path
    (view / ".streamlit").symlink_to((checkout / ".streamlit").resolve())
    return view


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(model: str, env: dict[str, str], script: str = "app.py", poll: float = 0.5, cwd: Path = ROOT):
    """`streamlit run app.py` (or ``script``) on a free localhost port with the config of
    ``cwd`` (the repository; ``env`` may override options, as STREAMLIT_* variables do), its
    health checked every ``poll`` seconds; yields (url, pid, log path)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="crampdx-bench-streamlit-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "streamlit", "run", script, "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=cwd, env={**os.environ, "CRAMPDX_MODEL": model, **env},
                               stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"streamlit did not start (exit {process.poll()}); log: {log.name}")
            time.sleep(poll)
        yield url, process.pid, log.name
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
