"""Benchmark the dashboard server under 1, 5 and 20 concurrent sessions (issue 13, item 8).

`streamlit run app.py` serves the default model on a free localhost port. N sessions each
load the same example case, open the laboratory section, then type one potassium value after
another, every one never entered before (so every update is a new case: ranking,
explanation, next findings and the atypical check are all computed, no cache answers),
pausing a clinician's "think time" between updates. The sessions are driven two ways
(bench/_dashboard_clients.py):

- browsers: ONE headless chromium (Debian's, via Playwright), one context per session, over
  Streamlit's websocket as a person's browser. The browsers share the machine's 2 cores with
  the server, so beyond a few sessions their latency measures the browsers as much as the
  server (the table shows the cores they took);
- light clients: Streamlit's agent API (HTTP, switched on for the benchmark's server only),
  which runs the same script for each session and answers once the run has ended: the
  server's latency under N sessions without browsers competing for the cores.

For each N and kind of client:

- the update's latency as the client sees it: from sending the change to the end of the run
  it started (the ``script_finished`` message on the websocket; the agent API's answer), by
  when the page holds the new ranking, explanation, red flags, next findings and atypical
  warning (each session's last page is checked);
- the server process's own CPU time (user + system, all its threads, /proc/<pid>/stat) over
  the measured window divided by the updates completed in it: server CPU seconds per rerun,
  which the clients do not inflate.

From the CPU per rerun ``s`` and an assumed pace of one update every T seconds per clinician
(--interval, default 10 s) it derives the sessions one core sustains with updates under 1 s:
``T * rho / s``, where ``rho = 1 - 3 s / (1 s)`` is the utilisation at which an M/M/1 queue's
95th percentile response ``3 s / (1 - rho)`` reaches 1 s. The last level checks it: that
many light-client sessions, each updating every T seconds. A
Streamlit server is one Python process whose Python work holds the GIL: it uses about one
core; more cores need more server processes.

--before also measures, interleaved, a server with Streamlit's defaults for the two options
.streamlit/config.toml sets for speed (as the dashboard was served before issue 13, item 8).

    python bench/bench_dashboard_load.py [--before] [--browsers 1 5] [--light 1 5 20] [--duration 20] [--interval 10]

Needs /usr/bin/chromium (apt-get install -y chromium) and the default model (or $CRAMPDX_MODEL).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
from playwright.async_api import async_playwright

sys.path.insert(0, str(Path(__file__).parent))

from _dashboard_clients import BrowserSession, LightSession  # noqa: E402
from _processes import clients_cpu, cpu_seconds, machine_busy, serve  # noqa: E402
from _timing import machine  # noqa: E402
from crampdx.model.artifact import default_artifact_dir  # noqa: E402
from crampdx.model.diagnoser import Diagnoser  # noqa: E402
from crampdx.synthetic.examples import load_examples  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-renderer-backgrounding", "--disable-background-timer-throttling",
                 "--disable-backgrounding-occluded-windows"]
EXAMPLE = "idiopathic_nocturnal"  # the example with the most findings (35)
TARGET_S = 1.0
SHIPPED = "shipped config"
AGENT_API = {"STREAMLIT_SERVER_ENABLE_AGENT_API": "true"}  # the benchmark's servers only
# Streamlit's defaults for the options .streamlit/config.toml sets for speed: a full garbage
# collection after every run, and a file watcher per session.
BEFORE = {"STREAMLIT_RUNNER_POST_SCRIPT_GC": "true", "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "auto"}


async def level(make_session, url: str, server: int, n: int, think: float, args, values, servers: set[int]) -> dict:
    """N sessions updating for ``args.duration`` seconds; latencies and CPU seconds."""
    example = next(e for e in load_examples() if e.id == EXAMPLE).name
    sessions = [await make_session() for _ in range(n)]
    opening = asyncio.Semaphore(4)  # 20 first loads at once would time out on 2 cores

    async def open_one(session) -> None:
        async with opening:
            await session.open(url, example)

    await asyncio.gather(*(open_one(s) for s in sessions))
    await asyncio.sleep(2)  # idle: every setup run (and its atypical check) has ended
    idle_start, idle_cpu = time.perf_counter(), cpu_seconds(server)
    await asyncio.sleep(3)
    idle_rate = (cpu_seconds(server) - idle_cpu) / (time.perf_counter() - idle_start)

    rng = random.Random(n)
    start = time.perf_counter()
    deadline = start + args.duration
    server0, clients0, busy0 = cpu_seconds(server), clients_cpu(servers), machine_busy()
    last: dict[int, str] = {}

    async def clinician(i: int, session) -> None:
        await asyncio.sleep(rng.uniform(0, think))  # sessions do not start in step
        while time.perf_counter() < deadline:
            last[i] = next(values)
            await session.update(last[i])
            await asyncio.sleep(think * rng.uniform(0.5, 1.5))

    await asyncio.gather(*(clinician(i, s) for i, s in enumerate(sessions)))
    wall = time.perf_counter() - start
    server_cpu = cpu_seconds(server) - server0
    clients = clients_cpu(servers) - clients0
    others = machine_busy() - busy0 - server_cpu - clients
    for i, session in enumerate(sessions):
        if i in last:
            await session.check(last[i])
        await session.close()
    latencies = sorted(x for s in sessions for x in s.latencies)
    updates = len(latencies)
    return {
        "n": n, "updates": updates, "wall": wall, "p50": statistics.median(latencies),
        "p95": statistics.quantiles(latencies, n=20, method="inclusive")[18] if updates > 1 else latencies[0],
        "max": latencies[-1], "under_target": sum(x < TARGET_S for x in latencies) / updates,
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


async def measure(servers: dict[str, tuple[str, int]], args) -> list[dict]:
    """Each kind of client and level of concurrency on each server in turn (interleaved, so
    that the servers see the same machine)."""
    values = potassium_values()
    pids = {pid for _, pid in servers.values()}
    results = []

    async def run(kind: str, levels: list[int], make_session, think: float = args.think) -> None:
        for n in levels:
            for name, (url, pid) in servers.items():
                result = {"server": name, "clients": kind, "think": think,
                          **await level(lambda: make_session(url), url, pid, n, think, args, values, pids)}
                results.append(result)
                print(f"  {name}, {n:>2} {kind}: {result['updates']} updates in {result['wall']:.0f} s, "
                      f"latency p50 {result['p50']:.2f} s, p95 {result['p95']:.2f} s; "
                      f"server CPU {1000 * result['cpu_per_rerun']:.0f} ms per rerun", flush=True)

    if args.browsers:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                await run("browsers", args.browsers, lambda url: BrowserSession.start(browser))
            finally:
                await browser.close()
    if args.light:
        # A connection per request: a kept-alive one the server closes when idle would fail mid-run.
        fresh = httpx.Limits(max_keepalive_connections=0)
        clients = {url: httpx.AsyncClient(base_url=url, limits=fresh) for url, _ in servers.values()}
        try:
            light = lambda url: LightSession.start(clients[url])  # noqa: E731
            await run("light clients", args.light, light)
            if args.light and args.capacity:  # as many sessions as derived, at the assumed pace
                worst = max(r["cpu_per_rerun"] for r in results if r["server"] == SHIPPED)
                await run("light clients", [int(sustained(worst, args.interval))], light, args.interval)
        finally:
            for client in clients.values():
                await client.aclose()
    return results


def sustained(cpu_per_rerun: float, interval: float) -> float:
    """Sessions one core serves with 95 % of updates under 1 s (an M/M/1 queue), one update
    every ``interval`` seconds per session; 0 if one rerun's CPU alone is too long."""
    rho = max(0.0, 1.0 - 3.0 * cpu_per_rerun / TARGET_S)
    return interval * rho / cpu_per_rerun


def report(results: list[dict], args) -> None:
    print()
    print("| server | clients | sessions | think | updates | latency p50 | p95 | max | < 1 s | server CPU per rerun "
          "| cores: server | clients | other processes |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['server']} | {r['clients']} | {r['n']} | {r['think']:g} s | {r['updates']} | {r['p50']:.2f} s | {r['p95']:.2f} s "
              f"| {r['max']:.2f} s | {100 * r['under_target']:.0f} % | {1000 * r['cpu_per_rerun']:.0f} ms "
              f"| {r['server_cores']:.2f} | {r['client_cores']:.2f} | {r['other_cores']:.2f} |")
    print(f"\nassumption: each clinician makes one update every T = {args.interval:g} s; a core at utilisation rho "
          "keeps 95 % of updates under 1 s while 3 s / (1 - rho) <= 1 s (M/M/1), so sessions per core = "
          "T * (1 - 3 s) / s, s = server CPU seconds per rerun (the largest measured at any level)")
    for name in dict.fromkeys(r["server"] for r in results):
        mine = [r for r in results if r["server"] == name]
        worst = max(r["cpu_per_rerun"] for r in mine)
        idle = max(r["idle_rate"] for r in mine)
        print(f"  {name}: s = {1000 * worst:.0f} ms -> {int(sustained(worst, args.interval))} sessions per core with "
              f"updates under 1 s; idle (sessions open, nobody typing): {1000 * idle:.0f} ms CPU per second")
    print("one server process uses about one core for its Python work (the GIL): more cores need more processes")
    problems = [p for r in results for p in r["problems"]]
    print("every session's last page showed the ranking, explanation, next findings and the finished atypical check: "
          + ("yes" if not problems else f"NO: {sorted(set(problems))}"))
    if problems:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browsers", type=int, nargs="*", default=[1, 5],
                        help="levels of concurrent browser sessions, in turn")
    parser.add_argument("--light", type=int, nargs="*", default=[1, 5, 20],
                        help="levels of concurrent light-client sessions, in turn")
    parser.add_argument("--duration", type=float, default=20, help="seconds of updates at each level")
    parser.add_argument("--think", type=float, default=2.0,
                        help="mean seconds a session pauses between updates (uniform, ±50 %%)")
    parser.add_argument("--interval", type=float, default=10.0,
                        help="assumed seconds between one clinician's updates, for sessions per core")
    parser.add_argument("--before", action="store_true",
                        help="also measure a server with Streamlit's defaults for the options the repository's config "
                             "sets for speed (as before issue 13, item 8), interleaved with the shipped one")
    parser.add_argument("--no-capacity", dest="capacity", action="store_false",
                        help="skip the last level: as many light clients as the derived sessions per core, "
                             "each updating every --interval seconds")
    args = parser.parse_args()
    if args.browsers and not Path(CHROMIUM).exists():
        raise SystemExit("needs Debian's chromium at /usr/bin/chromium (apt-get install -y chromium), "
                         "or --browsers with no level")
    model = os.environ.get("CRAMPDX_MODEL") or str(default_artifact_dir())
    Diagnoser.load(model)  # fails here, in one sentence, if there is no usable model
    print(f"machine: {machine()}; model: {model}")
    print(f"each session: example {EXAMPLE!r}, then a new potassium value every {args.think:g} s (±50 %) "
          f"for {args.duration:g} s")
    configs = {"before (Streamlit defaults)": BEFORE} if args.before else {}
    configs[SHIPPED] = {}
    with ExitStack() as stack:
        servers = {}
        for name, env in configs.items():
            url, pid, log = stack.enter_context(serve(model, {**AGENT_API, **env}))
            servers[name] = (url, pid)
            print(f"{name}: server pid {pid} at {url} (log {log})", flush=True)
        results = asyncio.run(measure(servers, args))
    print(f"machine at the end: {machine()}")
    report(results, args)


if __name__ == "__main__":
    main()
