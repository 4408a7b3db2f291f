"""``crampdx serve --workers N``: N processes, each with its own listening socket on the port.

uvicorn's own workers accept from one shared socket, and the process that wakes first takes
every connection waiting: 20 connections opened together were split 20/0 in 5 of 12 runs
(bench/bench_service.py), and a kept-alive connection stays where it landed, so one process
served everything while the other idled. Here every worker binds the port itself with
``SO_REUSEPORT`` and the kernel spreads new connections across the workers' sockets
(Linux: only processes of the same user may join the port). The parent starts the workers,
restarts one that dies, stops them all on SIGINT, SIGTERM or SIGHUP, and stops with the
worker's code when a worker refuses to start (it prints why: a changed model, an unreadable
token, the port taken).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import sys
import time

import uvicorn

__all__ = ["REFUSED", "listening_socket", "serve_workers"]

REFUSED = 2  # a worker's exit code when it cannot serve what the parent verified (app_from_environment)
_RESTART_PAUSE = 1.0  # seconds between restarts of a worker that died


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` that other processes of this user may bind too (the
    kernel then spreads new connections across them)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _worker(app: str, options: dict) -> None:
    """One worker process: its own socket on the port, uvicorn serving the app factory ``app``."""
    try:
        sock = listening_socket(options["host"], options["port"])
    except OSError as error:
        print(f"crampdx worker: cannot listen on {options['host']}:{options['port']} ({error.strerror or error}); "
              "choose another --port or stop what is using it", file=sys.stderr)
        raise SystemExit(REFUSED) from None
    uvicorn.Server(uvicorn.Config(app, factory=True, **options)).run(sockets=[sock])


def serve_workers(app: str, workers: int, options: dict) -> int:
    """Run ``workers`` processes serving the app factory ``app`` (an import string) with the
    uvicorn ``options``; return the exit code once they have stopped."""
    context = multiprocessing.get_context("spawn")
    stopping = []

    def stop(signum, frame) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    processes = [context.Process(target=_worker, args=(app, options)) for _ in range(workers)]
    try:
        for process in processes:
            process.start()
        while not stopping:
            for i, process in enumerate(processes):
                if process.is_alive() or stopping:
                    continue
                if process.exitcode == REFUSED:  # it printed why; the others would refuse as well
                    stopping.append(None)
                    return REFUSED
                print(f"crampdx worker {process.pid} stopped (exit code {process.exitcode}); starting another",
                      file=sys.stderr)
                time.sleep(_RESTART_PAUSE)
                processes[i] = context.Process(target=_worker, args=(app, options))
                processes[i].start()
            time.sleep(0.2)
        return 0
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()  # SIGTERM: uvicorn finishes the requests under way
        for process in processes:
            process.join(timeout=20)
            if process.is_alive():
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
