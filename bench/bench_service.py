"""Benchmark the explanation service: 20 concurrent clients, then open-loop arrivals.

Starts ``crampdx serve`` (uvicorn, the default model) once per ``--workers`` value, each on
a free localhost port, and, run after run, interleaves (so that the shared machine's load
falls on all alike):

* closed loop: ``--clients`` concurrent connections, each posting one of 2,000 different
  generated cases after the other to ``POST /v1/assess`` (no next best findings) for
  ``--seconds``, with the default options (atypical-case check included) and without the
  atypical check, against each server. The clients are wrk (``apt-get install wrk``; one
  thread, a Lua script cycling through the bodies): a load generator in C takes a few
  percent of a core, where Python clients took one of the machine's two cores for
  themselves (httpx: ~5 ms of client CPU per request, more than the server's). Reported:
  throughput, p50/p95 latency, errors (connection errors, timeouts and non-2xx answers),
  the server's own CPU milliseconds per request (all its processes, from /proc: the
  figure least disturbed by other work on the machine), and how the connections were split
  between the server's processes (``ss``; kept alive, so the split made at the start holds
  for the run, and an uneven one leaves one process with more than its share);
* open loop (``--rates``): requests arriving at random (Poisson) at each rate in turn
  whatever the answers, latency counted from each request's arrival time (httpx); reported
  per rate, and the largest rate whose p95 stays within the target.

Target (issue 11): 0 errors and p95 <= 50 ms at 20 concurrent clients on this 2-core machine.

    python bench/bench_service.py [--clients 20] [--seconds 10] [--runs 3] [--workers 1 2] [--rates 10 20 40]
                                  [--before DIR [--before-workers N] [--before-model MODEL]]

``--before DIR`` also serves an earlier checkout of the repository (``git archive COMMIT |
tar -x -C DIR``) with ``--before-workers`` processes (default 1), measured in the same runs, so
before and after meet the same load; ``--before-model`` gives it another model (a model trained
with other settings, to see what its trees cost).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

import crampdx.synthetic as synthetic  # noqa: E402
from _processes import cpu_seconds, descendants, package_view  # noqa: E402
from _timing import machine  # noqa: E402

TARGET_MS = 50.0
# seconds between two closed-loop runs: the previous run's last requests finish and its
# connections are closed on the server's side before the next run opens its own
_SETTLE = 1.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cases(n: int) -> list[dict]:
    frame = synthetic.generate(n, seed=2026).drop(columns=synthetic.LABEL)
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in row.dropna().items()} for _, row in frame.iterrows()]


def _body(case: dict, atypical: bool) -> dict:
    return {"findings": case, "top": 10, "explain": 1, "next_findings": 0, "atypical": atypical}


def _start_server(model: str | None, workers: int, before: Path | None = None) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    command = [sys.executable, "-m", "crampdx.cli.main", "serve", "--port", str(port), "--log-level", "warning"]
    command += ["--workers", str(workers)]
    if model:
        command += ["--model", model]
    view = package_view(before) if before is not None else None
    env = dict(os.environ, PYTHONPATH=str(view)) if view is not None else None
    log = open(os.devnull, "w") if os.environ.get("CRAMPDX_BENCH_QUIET") else None  # None: the server logs here
    # run from the view: `python -m` puts the working directory first, and this repository's
    # crampdx/ there would hand every subpackage back to the current code
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, text=True, env=env, cwd=view)
    return process, f"http://127.0.0.1:{port}"


def _wait_ready(process: subprocess.Popen, base: str, workers: int) -> None:
    """Until /readyz answers 200 several times in a row (every worker has warmed up)."""
    deadline, in_a_row = time.monotonic() + 180, 0
    while time.monotonic() < deadline and in_a_row < 4 * workers:
        if process.poll() is not None:
            sys.exit("crampdx serve exited (its log is above)")
        try:
            in_a_row = in_a_row + 1 if httpx.get(f"{base}/readyz", timeout=2).status_code == 200 else 0
        except httpx.TransportError:
            in_a_row = 0
        time.sleep(0.1 if in_a_row else 0.3)
    if in_a_row < 4 * workers:
        process.kill()
        sys.exit("crampdx serve did not become ready within 180 s")


def _server_cpu(process: subprocess.Popen) -> float:
    total = 0.0
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            total += cpu_seconds(pid)
        except OSError:  # a process that just ended
            continue
    return total


async def _post(http: httpx.AsyncClient, body: dict) -> bool:
    try:
        return (await http.post("/v1/assess", json=body)).status_code == 200
    except httpx.HTTPError:
        return False


_WRK_SCRIPT = """
local requests, index = {}, 0
function init(args)
  for line in io.lines(args[1]) do
    requests[#requests + 1] = wrk.format("POST", "/v1/assess", {["Content-Type"] = "application/json"}, line)
  end
end
function request()
  index = index % #requests + 1
  return requests[index]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "seconds": %.6f, "p50_ms": %.3f, "p95_ms": %.3f, "errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3, latency:percentile(95) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout))
end
"""


def _wrk_files(cases: list[dict], folder: Path) -> dict[bool, tuple[Path, Path]]:
    """The Lua script and, with and without the atypical check, one request body per line."""
    script = folder / "assess.lua"
    script.write_text(_WRK_SCRIPT, encoding="utf-8")
    files = {}
    for atypical in (True, False):
        bodies = folder / f"bodies-{'atypical' if atypical else 'plain'}.jsonl"
        bodies.write_text("".join(json.dumps(_body(case, atypical)) + "\n" for case in cases), encoding="utf-8")
        files[atypical] = (script, bodies)
    return files


def _closed_loop(base: str, files: tuple[Path, Path], clients: int, seconds: float) -> dict:
    """wrk's figures, and how its connections were split between the server's processes
    (they are kept alive, so the split made at the start holds for the run)."""
    script, bodies = files
    command = ["wrk", "-t1", f"-c{clients}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), base, "--", str(bodies)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as wrk:
        time.sleep(seconds / 2)
        split = _connections_by_process(int(base.rsplit(":", 1)[1]))
        output, _ = wrk.communicate()
    if wrk.returncode:
        sys.exit(f"wrk failed (exit {wrk.returncode})")
    return {**json.loads(output.strip().splitlines()[-1]), "split": split}


def _connections_by_process(port: int) -> str:
    """Established connections to ``port`` per server process, largest first (``ss``), e.g. "12/8"."""
    try:
        listing = subprocess.run(["ss", "-tnpH", "state", "established", f"( sport = :{port} )"],
                                 capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    counts = Counter(re.findall(r"pid=(\d+)", listing))
    return "/".join(str(n) for n in sorted(counts.values(), reverse=True)) or "?"


async def _open_loop(base: str, cases: list[dict], rate: float, seconds: float, seed: int):
    """Poisson arrivals at ``rate`` per second; each latency from its arrival time."""
    arrivals = np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate, size=int(rate * seconds * 2) + 10))
    arrivals = arrivals[arrivals < seconds]
    latencies: list[float] = []
    errors = 0
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=100)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as http:
        await asyncio.gather(*(_post(http, _body(case, True)) for case in cases[:10]))
        began = time.perf_counter()

        async def one(i: int, at: float) -> None:
            nonlocal errors
            await asyncio.sleep(max(0.0, began + at - time.perf_counter()))
            ok = await _post(http, _body(cases[i % len(cases)], True))
            latencies.append(time.perf_counter() - began - at)
            errors += not ok

        await asyncio.gather(*(one(i, at) for i, at in enumerate(arrivals)))
    return latencies, errors


def _row(latencies: list[float], errors: int, elapsed: float, cpu: float) -> dict:
    ms = 1000 * np.asarray(latencies)
    return {"n": len(latencies), "rate": len(latencies) / elapsed, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "errors": errors, "cpu_ms": 1000 * cpu / max(1, len(latencies))}


def _wrk_row(result: dict, cpu: float) -> dict:
    n = result["requests"]
    return {"n": n, "rate": n / result["seconds"], "p50": result["p50_ms"], "p95": result["p95_ms"],
            "errors": result["errors"], "cpu_ms": 1000 * cpu / max(1, n), "split": result["split"]}


def _label(server: str) -> str:
    return f"before, {server.split(':')[1]} worker(s)" if server.startswith("before") else f"{server} worker(s)"


def _show(label: str, r: dict) -> str:
    split = f", connections per process {r['split']}" if "split" in r else ""
    return (f"{label}: {r['n']:,} requests, {r['rate']:.0f}/s, p50 {r['p50']:.1f} ms, p95 {r['p95']:.1f} ms, "
            f"errors {r['errors']}, server CPU {r['cpu_ms']:.1f} ms/request{split}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="one server per value, compared")
    parser.add_argument("--rates", type=float, nargs="*", default=[],
                        help="open-loop arrival rates (requests/s) to try, default request, after the closed loop")
    parser.add_argument("--model", default=os.environ.get("CRAMPDX_MODEL"))
    parser.add_argument("--before", type=Path, help="an earlier checkout to serve and measure alongside")
    parser.add_argument("--before-workers", type=int, default=1, help="processes serving the earlier checkout")
    parser.add_argument("--before-model", help="the model the earlier checkout serves (default: --model)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("the closed loop needs wrk, a load generator in C: install it with `apt-get install wrk`")
    print(f"machine: {machine()}")
    cases = _cases(2000)
    folder = Path(tempfile.mkdtemp(prefix="crampdx-bench-"))
    wrk_files = _wrk_files(cases, folder)
    servers = {str(w): _start_server(args.model, w) for w in args.workers}
    if args.before:
        servers[f"before:{args.before_workers}"] = _start_server(args.before_model or args.model,
                                                                      args.before_workers, args.before)
    results: dict[tuple[str, bool], list[dict]] = {}
    open_rows: dict[tuple[str, float], dict] = {}
    try:
        for w, (process, base) in servers.items():
            _wait_ready(process, base, int(w.rsplit(":", 1)[-1]))
        for run in range(1, args.runs + 1):
            for w, (process, base) in servers.items():
                for atypical in (True, False):
                    time.sleep(_SETTLE)
                    cpu = _server_cpu(process)
                    result = _closed_loop(base, wrk_files[atypical], args.clients, args.seconds)
                    row = _wrk_row(result, _server_cpu(process) - cpu)
                    results.setdefault((w, atypical), []).append(row)
                    print(_show(f"run {run}, {_label(w)}, atypical {'on ' if atypical else 'off'}", row), flush=True)
        for rate in args.rates:
            for w, (process, base) in servers.items():
                cpu = _server_cpu(process)
                latencies, errors = asyncio.run(_open_loop(base, cases, rate, args.seconds, seed=int(rate * 100)))
                open_rows[w, rate] = _row(latencies, errors, args.seconds, _server_cpu(process) - cpu)
                print(_show(f"open loop {rate:g}/s offered, {_label(w)}, atypical on", open_rows[w, rate]), flush=True)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(folder, ignore_errors=True)
    ok = True
    for (w, atypical), rows in results.items():
        median = {key: statistics.median(r[key] for r in rows) for key in ("rate", "p50", "p95", "cpu_ms")}
        errors = sum(r["errors"] for r in rows)
        print(f"median of {args.runs} runs at {args.clients} clients, {_label(w)}, atypical {'on ' if atypical else 'off'}: "
              f"{median['rate']:.0f} requests/s, p50 {median['p50']:.1f} ms, p95 {median['p95']:.1f} ms "
              f"(target <= {TARGET_MS:g}), errors {errors} (target 0), server CPU {median['cpu_ms']:.1f} ms/request"
              f"; connections per process, run by run: {', '.join(r['split'] for r in rows)}")
        ok &= errors == 0
    ok &= any(statistics.median(r["p95"] for r in results[w, True]) <= TARGET_MS for w in servers if (w, True) in results)
    for w in servers:
        met = [rate for rate in args.rates if open_rows[w, rate]["p95"] <= TARGET_MS and open_rows[w, rate]["errors"] == 0]
        if args.rates:
            print(f"open loop, {_label(w)}: largest offered rate tried with p95 <= {TARGET_MS:g} ms: "
                  f"{f'{max(met):g}/s' if met else f'none (lowest tried {min(args.rates):g}/s)'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
