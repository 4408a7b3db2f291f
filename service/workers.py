"""``crampdx serve --workers N`` on Linux: N processes, each accepting on its own socket.

uvicorn's own workers accept from one shared socket, and the process that wakes first takes
every connection waiting: 20 connections opened together were split 20/0 in 5 of 12 runs
(bench/bench_service.py), and a kept-alive connection stays where it landed, so one process
served everything while the other idled. Here the parent binds N sockets to the port with
``SO_REUSEPORT`` at once (a second service on the port then fails its own check, as before)
and hands socket i to worker i; the kernel spreads new connections across the sockets. The
parent replaces a worker that dies (its socket, still open in the parent, keeps the
connections waiting meanwhile) and one whose event loop has not ticked for ``hung_after``
seconds (stopped, deadlocked, stuck in a loop: the usual request takes milliseconds and the
slow ones run in a thread, so the loop ticks ten times a second while it serves), gives up when
workers keep dying at start, stops them all on
SIGINT or SIGTERM (and SIGHUP, unless it is ignored, as under ``nohup``), and stops with the
worker's code when a worker refuses to start (it prints why: a changed model, an unreadable
token). Elsewhere than Linux ``SO_REUSEPORT`` does not spread connections; ``crampdx serve``
uses uvicorn's workers there (:data:`AVAILABLE`).
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time

import uvicorn

__all__ = ["AVAILABLE", "HUNG_AFTER", "REFUSED", "listening_sockets", "serve_workers"]

AVAILABLE = sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")
REFUSED = 2  # a worker's exit code when it cannot serve what the parent verified (app_from_environment)
_STARTUP_FAILED = 3  # uvicorn's exit code when the app cannot be imported or started
_QUICK_DEATH = 30.0  # seconds: a worker dying this soon after its start counts towards giving up
_QUICK_DEATHS = 5  # ... this many times in a row, and the service stops
HUNG_AFTER = 60.0  # seconds without a tick of a worker's event loop: it is killed and replaced
_PAUSED = 2.0  # seconds between two of the supervisor's checks (every 0.2 s) that mean it was paused itself


def listening_sockets(host: str, port: int, n: int) -> list[socket.socket]:
    """``n`` sockets listening on ``host:port`` together (``SO_REUSEPORT``). Raises OSError when
    the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets = []
    try:
        for _ in range(n):
            sock = socket.socket(family, socket.SOCK_STREAM)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.bind((host, port))
            sock.listen(2048)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _stop_with_parent() -> None:
    """SIGTERM to this worker once its parent is gone (killed, say): no orphan keeps serving."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)


class _TickingServer(uvicorn.Server):
    """uvicorn's server, writing the time of each tick of its event loop (ten a second) where
    the parent reads it."""

    def __init__(self, config: uvicorn.Config, heartbeat) -> None:
        super().__init__(config)
        self.heartbeat = heartbeat

    async def on_tick(self, counter: int) -> bool:
        self.heartbeat.value = time.monotonic()
        return await super().on_tick(counter)


def _worker(app: str, options: dict, sock: socket.socket, heartbeat) -> None:
    """One worker process: uvicorn serving the app factory ``app`` on its own socket."""
    try:
        threading.Thread(target=_stop_with_parent, daemon=True).start()
        _TickingServer(uvicorn.Config(app, factory=True, **options), heartbeat).run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group: uvicorn has stopped
        pass


def serve_workers(app: str, sockets: list[socket.socket], options: dict, hung_after: float = HUNG_AFTER) -> int:
    """Run one process per socket, serving the app factory ``app`` (an import string) with the
    uvicorn ``options``; return the exit code once they have stopped. A worker whose event loop
    has ticked once and then not for ``hung_after`` seconds is killed and replaced."""
    context = multiprocessing.get_context("spawn")
    heartbeats = [context.Value("d", 0.0, lock=False) for _ in sockets]  # 0: not serving yet (loading the model)
    stopping: list = []

    def stop(signum, frame) -> None:
        if stopping:  # a second signal: no more waiting
            for process in processes:
                if process.pid is not None and process.is_alive():
                    process.kill()
        stopping.append(signum)

    def start(i: int) -> multiprocessing.Process:
        heartbeats[i].value = 0.0
        return context.Process(target=_worker, args=(app, options, sockets[i], heartbeats[i]))

    processes = [start(i) for i in range(len(sockets))]
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN else [])
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    started = [time.monotonic()] * len(sockets)
    quick_deaths = 0
    try:
        for process in processes:
            process.start()
        awake = checked = time.monotonic()  # awake: since when this supervisor has run without a pause
        while not stopping:
            time.sleep(0.2)
            now = time.monotonic()
            if now - checked > _PAUSED:
                awake = now
            checked = now
            for i, process in enumerate(processes):
                # silence counts from this supervisor's own resumption: after the whole service
                # was paused (Ctrl-Z, a frozen machine) the workers get their time to tick again
                silent = now - max(heartbeats[i].value, awake)
                if process.is_alive() and heartbeats[i].value and silent > hung_after and not stopping:
                    print(f"crampdx worker {process.pid} has not answered for {silent:.0f} s; stopping it", file=sys.stderr)
                    process.kill()
                    process.join()
                if process.is_alive() or stopping:
                    continue
                if process.exitcode in (REFUSED, _STARTUP_FAILED):  # it printed why; the others would fail alike
                    return REFUSED
                quick_deaths = quick_deaths + 1 if time.monotonic() - started[i] < _QUICK_DEATH else 1
                if quick_deaths >= _QUICK_DEATHS:
                    print(f"crampdx: {quick_deaths} workers stopped soon after starting (last exit code "
                          f"{process.exitcode}); see the log above, then start the service again", file=sys.stderr)
                    return 1
                print(f"crampdx worker {process.pid} stopped (exit code {process.exitcode}); starting another",
                      file=sys.stderr)
                processes[i], started[i] = start(i), time.monotonic()
                processes[i].start()
        return 0
    finally:
        running = [process for process in processes if process.pid is not None]
        for process in running:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests under way
        deadline = time.monotonic() + 20
        for process in running:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        for sock in sockets:
            sock.close()
