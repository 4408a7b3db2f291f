"""Benchmark the dashboard server under 1, 5 and 20 concurrent sessions (issue 13, item 8).

`streamlit run app.py` serves the default model on a free localhost port; ONE headless
chromium (Debian's, driven by Playwright) opens N sessions, each in its own browser context.
Every session loads the same example case, opens the laboratory section, then repeatedly
types a potassium value never entered before (so every update is a new case: ranking,
explanation, next findings and the atypical check are all computed, no cache answers) and
presses Enter, pausing a clinician's "think time" between updates.

Two figures per N:

- the update's latency as the client sees it: from pressing Enter to the server's
  ``script_finished`` message for that session (read from the page's websocket, decoded with
  Streamlit's own protobuf), by when the page shows the new ranking, explanation, red flags,
  next findings and atypical warning. The browsers run on the same 2 cores as the server, so
  at 20 sessions this includes time the server waited for a core the browsers held;
- the server process's own CPU time (user + system, all its threads, from /proc/<pid>/stat)
  over the measured window divided by the updates completed in it: server CPU seconds per
  rerun, which the browsers do not inflate.

From the CPU per rerun ``s`` and an assumed pace of one update every T seconds per clinician
(--interval, default 10 s) it derives the sessions one core sustains with updates under 1 s:
``T * rho / s``, where ``rho = 1 - s / (1 s)`` is the utilisation at which an M/M/1 queue's
mean response time ``s / (1 - rho)`` reaches 1 s (the measured latencies say how the tail
behaves). A
Streamlit server is one Python process: the Python part of its work holds the GIL, so one
server process uses about one core; more cores need more server processes.

    python bench/bench_dashboard_load.py [--sessions 1 5 20] [--duration 40] [--think 2]

Needs /usr/bin/chromium (apt-get install -y chromium) and the default model (or $CRAMPDX_MODEL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from playwright.async_api import async_playwright
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

sys.path.insert(0, str(Path(__file__).parent))

from _timing import machine  # noqa: E402
from crampdx.model.artifact import default_artifact_dir  # noqa: E402
from crampdx.model.diagnoser import Diagnoser  # noqa: E402
from crampdx.synthetic.examples import load_examples  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]
EXAMPLE = "idiopathic_nocturnal"  # the example with the most findings (35)
POTASSIUM = re.compile(r"^Potassium \([^)]*\)$")  # the form's field, not its "ask next" twin
DONE = {ForwardMsg.FINISHED_SUCCESSFULLY, ForwardMsg.FINISHED_FRAGMENT_RUN_SUCCESSFULLY}
TIMEOUT = 180  # seconds for one run to finish, however loaded the machine is
TICK = os.sysconf("SC_CLK_TCK")
TARGET_S = 1.0


# --- CPU accounting from /proc -------------------------------------------------------------

def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def clients_cpu(skip: int) -> float:
    """CPU seconds of this benchmark and its children (Playwright's driver, chromium), without
    the server ``skip``. A process that ended meanwhile is no longer counted, so take the
    difference of two readings while the browser is open."""
    total = sum(os.times()[:2])
    for pid in descendants(os.getpid()):
        if pid != skip:
            try:
                total += cpu_seconds(pid)
            except (OSError, IndexError, ValueError):
                pass
    return total


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (every process), from /proc/stat."""
    user, nice, system, idle, iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / TICK


# --- the server ----------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve(model: str):
    port = free_port()
    log = tempfile.NamedTemporaryFile("w+", prefix="crampdx-bench-streamlit-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.port", str(port),
               "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=ROOT, env={**os.environ, "CRAMPDX_MODEL": model},
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
            time.sleep(0.5)
        yield url, process.pid, log.name
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- one session ---------------------------------------------------------------------------

class Session:
    """One browser context on the dashboard; knows when the server finished each of its runs."""

    def __init__(self, context, page):
        self.context, self.page = context, page
        self.finished: asyncio.Queue = asyncio.Queue()
        self.latencies: list[float] = []
        self.problems: list[str] = []
        page.on("websocket", lambda ws: ws.on("framereceived", self._frame))

    def _frame(self, payload) -> None:
        if isinstance(payload, (bytes, bytearray)):
            message = ForwardMsg.FromString(bytes(payload))
            if message.WhichOneof("type") == "script_finished":
                self.finished.put_nowait((time.perf_counter(), message.script_finished))

    def drain(self) -> None:
        while not self.finished.empty():
            self.finished.get_nowait()

    async def run_done(self) -> float:
        """When the next run of this session finished (a run cut short by a newer one is skipped)."""
        while True:
            at, status = await asyncio.wait_for(self.finished.get(), TIMEOUT)
            if status in DONE:
                return at
            if status == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                raise RuntimeError("the app did not compile")

    async def act(self, action) -> float:
        self.drain()
        start = time.perf_counter()
        await action
        return await self.run_done() - start

    async def open(self, url: str, example_name: str) -> None:
        await self.page.goto(url)
        await self.run_done()
        await self.page.get_by_role("combobox", name="Load an example case").wait_for()
        await asyncio.sleep(1)  # a second run on first load, if any, ends meanwhile
        await self.page.get_by_role("combobox", name="Load an example case").click()
        await self.act(self.page.get_by_role("option", name=example_name, exact=True).click())
        await self.act(self.page.get_by_role("tab", name="Laboratory").click())

    async def update(self, value: str) -> None:
        field = self.page.get_by_label(POTASSIUM)
        await field.fill(value)
        self.latencies.append(await self.act(field.press("Enter")))

    async def check(self, value: str) -> None:
        """The page after the last update shows all of the assessment, no error, no pending check."""
        page = self.page
        expected = [f"Read as: Potassium {float(value):.1f}", "Why this cause", "Ask or examine next"]
        for text in expected:
            if await page.get_by_text(text, exact=False).count() == 0:
                self.problems.append(f"missing {text!r}")
        chooser = await page.get_by_role("combobox", name="Explain a cause").input_value()
        if not chooser.startswith("1. "):
            self.problems.append(f"cause chooser shows {chooser!r}")
        if await page.locator('[data-testid="stVegaLiteChart"]').count() < 2:
            self.problems.append("ranking or explanation chart missing")
        if await page.get_by_text("Checking how typical", exact=False).count():
            self.problems.append("atypical check still pending after the run")
        if await page.locator('[data-testid="stException"]').count():
            self.problems.append("an exception is shown")


# --- one level of concurrency --------------------------------------------------------------

async def level(browser, url: str, server: int, n: int, args, values) -> dict:
    example = next(e for e in load_examples() if e.id == EXAMPLE).name
    sessions = []
    for _ in range(n):
        context = await browser.new_context(viewport={"width": 1400, "height": 1000})
        sessions.append(Session(context, await context.new_page()))
    await asyncio.gather(*(s.open(url, example) for s in sessions))
    await asyncio.sleep(2)  # idle: every setup run (and its atypical check) has ended

    idle_start, idle_cpu = time.perf_counter(), cpu_seconds(server)
    await asyncio.sleep(3)
    idle_rate = (cpu_seconds(server) - idle_cpu) / (time.perf_counter() - idle_start)

    rng = random.Random(n)
    start = time.perf_counter()
    deadline = start + args.duration
    server0, clients0, busy0 = cpu_seconds(server), clients_cpu(server), machine_busy()
    last: dict[int, str] = {}

    async def clinician(i: int, session: Session) -> None:
        await asyncio.sleep(rng.uniform(0, args.think))  # sessions do not start in step
        while time.perf_counter() < deadline:
            last[i] = next(values)
            await session.update(last[i])
            await asyncio.sleep(args.think * rng.uniform(0.5, 1.5))

    await asyncio.gather(*(clinician(i, s) for i, s in enumerate(sessions)))
    wall = time.perf_counter() - start
    server_cpu = cpu_seconds(server) - server0
    clients = clients_cpu(server) - clients0
    others = machine_busy() - busy0 - server_cpu - clients
    for i, session in enumerate(sessions):
        if i in last:
            await session.check(last[i])
        await session.context.close()
    latencies = sorted(x for s in sessions for x in s.latencies)
    updates = len(latencies)
    return {
        "n": n, "updates": updates, "wall": wall,
        "p50": statistics.median(latencies),
        "p95": statistics.quantiles(latencies, n=20, method="inclusive")[18] if updates > 1 else latencies[0],
        "max": latencies[-1],
        "under_target": sum(x < TARGET_S for x in latencies) / updates,
        "cpu_per_rerun": server_cpu / updates, "server_cores": server_cpu / wall,
        "client_cores": clients / wall, "other_cores": max(others, 0.0) / wall, "idle_rate": idle_rate,
        "problems": [p for s in sessions for p in s.problems],
    }


def potassium_values():
    """Potassium entries no session has typed before: every update is a new case."""
    k = 0
    while True:
        yield f"{3.0 + 0.001 * (k % 1500) + 0.0001 * (k // 1500):.4f}"
        k += 1


async def measure(url: str, server: int, args) -> list[dict]:
    values = potassium_values()
    results = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for n in args.sessions:
                result = await level(browser, url, server, n, args, values)
                results.append(result)
                print(f"  {n:>2} sessions: {result['updates']} updates in {result['wall']:.0f} s, "
                      f"latency p50 {result['p50']:.2f} s, p95 {result['p95']:.2f} s; "
                      f"server CPU {1000 * result['cpu_per_rerun']:.0f} ms per rerun", flush=True)
        finally:
            await browser.close()
    return results


def sustained(cpu_per_rerun: float, interval: float) -> float:
    """Sessions one core serves with updates under 1 s (mean response of an M/M/1 queue), one
    update every ``interval`` seconds per session; 0 if one rerun's CPU alone is too long."""
    rho = max(0.0, 1.0 - cpu_per_rerun / TARGET_S)
    return interval * rho / cpu_per_rerun


def report(results: list[dict], args) -> None:
    print()
    print("| sessions | updates | latency p50 | p95 | max | < 1 s | server CPU per rerun | server cores busy "
          "| browsers + driver cores | other processes' cores |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['n']} | {r['updates']} | {r['p50']:.2f} s | {r['p95']:.2f} s | {r['max']:.2f} s "
              f"| {100 * r['under_target']:.0f} % | {1000 * r['cpu_per_rerun']:.0f} ms | {r['server_cores']:.2f} "
              f"| {r['client_cores']:.2f} | {r['other_cores']:.2f} |")
    idle = max(r["idle_rate"] for r in results)
    print(f"\nserver CPU while idle (sessions open, nobody typing): at most {1000 * idle:.0f} ms per second")
    worst = max(r["cpu_per_rerun"] for r in results)
    print(f"assumption: each clinician makes one update every {args.interval:g} s; a core at utilisation rho keeps "
          "the mean update under 1 s while s / (1 - rho) <= 1 s (M/M/1), so sessions per core = "
          "T * (1 - s) / s, s = server CPU seconds per rerun")
    for r in results:
        print(f"  from the {r['n']}-session run (s = {1000 * r['cpu_per_rerun']:.0f} ms): "
              f"{sustained(r['cpu_per_rerun'], args.interval):.0f} sessions per core")
    print(f"sessions per core the server sustains with updates under 1 s (the largest s measured): "
          f"{sustained(worst, args.interval):.0f}; one server process is one core for its Python work (the GIL)")
    problems = [p for r in results for p in r["problems"]]
    print("every session's last page showed the ranking, explanation, next findings and the finished atypical check: "
          + ("yes" if not problems else f"NO: {sorted(set(problems))}"))
    if problems:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 5, 20], help="concurrent sessions, in turn")
    parser.add_argument("--duration", type=float, default=40, help="seconds of updates at each level")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds a session pauses between updates (uniform, ±50 %%)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="assumed seconds between one clinician's updates, for sessions per core")
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium)")
    model = os.environ.get("CRAMPDX_MODEL") or str(default_artifact_dir())
    Diagnoser.load(model)  # fails here, in one sentence, if there is no usable model
    print(f"machine: {machine()}; model: {model}")
    print(f"each session: example {EXAMPLE!r}, then a new potassium value every {args.think:g} s (±50 %) "
          f"for {args.duration:g} s")
    with serve(model) as (url, server, log):
        print(f"server pid {server} at {url} (log {log})", flush=True)
        results = asyncio.run(measure(url, server, args))
    report(results, args)


if __name__ == "__main__":
    main()
