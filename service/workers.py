"""``crampdx serve --workers N`` on Linux: N processes, one socket, connections dealt out evenly.

With uvicorn's workers on one shared socket, the first awake took every waiting connection
(20/0 in 5 of 12 runs of bench/bench_service.py); with a ``SO_REUSEPORT`` socket each, the
kernel's hash split 20 connections 13/7 or worse a quarter of the time. A kept-alive connection
stays where it landed, and the process with more sets the latency. Here the parent accepts every connection
itself and hands it (its file descriptor, over a Unix socket pair) to the ready worker with
the fewest open connections: 20 connections opened together split 10/10. A worker counts the
connections it has closed where the parent reads them; a worker not ready yet (loading its
model) or whose event loop has not ticked for a second gets none while another can take it.

The parent also replaces a worker that dies (connections handed to it but not yet taken go to
the others), one whose event loop has not ticked for ``hung_after`` seconds (stopped,
deadlocked, stuck in a loop: the usual request takes milliseconds and the slow ones run in a
thread, so the loop ticks ten times a second while it serves) and one that has not started
serving ``start_after`` seconds after its start (stuck loading its model), gives up when workers keep
dying at start, stops them all on SIGINT or SIGTERM (and SIGHUP, unless it is ignored, as
under ``nohup``), and stops with the worker's code when a worker refuses to start (it prints
why: a changed model, an unreadable token). Elsewhere than Linux ``crampdx serve`` uses
uvicorn's workers (:data:`AVAILABLE`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
import socket
import sys
import threading
import time

import uvicorn

__all__ = ["AVAILABLE", "HUNG_AFTER", "REFUSED", "START_AFTER", "ConnectionDealer", "listening_socket", "serve_workers"]

AVAILABLE = sys.platform.startswith("linux") and hasattr(socket, "send_fds")
REFUSED = 2  # a worker's exit code when it cannot serve what the parent verified (app_from_environment)
_STARTUP_FAILED = 3  # uvicorn's exit code when the app cannot be imported or started
_QUICK_DEATH = 30.0  # seconds: a worker dying this soon after its start counts towards giving up
_QUICK_DEATHS = 5  # ... this many times in a row, and the service stops
HUNG_AFTER = 60.0  # seconds without a tick of a worker's event loop: it is killed and replaced
START_AFTER = 300.0  # seconds for a worker to load its model and start serving (~10 s here), or the same
_PAUSED = 2.0  # seconds between two of the supervisor's checks (every 0.2 s) that mean it was paused itself
_CHECK_EVERY = 0.2  # seconds between the supervisor's checks of its workers
_FRESH = 1.0  # seconds: a worker whose loop ticked this recently takes new connections first
_ACCEPT_PAUSE = 0.1  # seconds at least without accepting once this process has no file descriptor left


def listening_socket(host: str, port: int) -> socket.socket:
    """The service's socket, listening on ``host:port``. Raises OSError when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def _counting(protocol_class: type, closed, ws_protocol_class: type | None = None) -> type:
    """``protocol_class`` adding one to ``closed`` when its connection is lost; an HTTP protocol
    upgrading a connection to a WebSocket (the transport then reports to the new protocol only)
    hands it to ``ws_protocol_class``, which should count too."""

    class Counted(protocol_class):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            if ws_protocol_class is not None:
                self.ws_protocol_class = ws_protocol_class

        def connection_lost(self, exc) -> None:
            closed.value += 1
            super().connection_lost(exc)

    return Counted


def _stop_with_parent() -> None:
    """SIGTERM to this worker once its parent is gone (killed, say): no orphan keeps serving."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        multiprocessing.connection.wait([parent.sentinel])
        os.kill(os.getpid(), signal.SIGTERM)


class _WorkerServer(uvicorn.Server):
    """uvicorn's server taking its connections from the parent over ``channel`` (one file
    descriptor a message) instead of a listening socket, writing the time of each tick of its
    event loop (ten a second) to ``heartbeat`` and the number of connections it has closed to
    ``closed``, where the parent reads them."""

    def __init__(self, config: uvicorn.Config, channel: socket.socket, heartbeat, closed) -> None:
        super().__init__(config)
        self.channel, self.heartbeat, self.closed = channel, heartbeat, closed
        self.connecting: set[asyncio.Task] = set()  # referenced until done

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=[])  # no listening socket of its own
        if not self.started:
            return
        # every connection handed here counts once as closed, or the parent deals to this worker
        # as if it were still open forever (a WebSocket upgrade, open to anyone, did not count)
        ws = self.config.ws_protocol_class
        counted = _counting(self.config.http_protocol_class, self.closed, ws and _counting(ws, self.closed))
        self.protocol = lambda: counted(config=self.config, server_state=self.server_state,
                                        app_state=self.lifespan.state)
        self.channel.setblocking(False)
        asyncio.get_running_loop().add_reader(self.channel.fileno(), self._take_connections)

    def _take_connections(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                message, fds, _, _ = socket.recv_fds(self.channel, 1, 16)
            except (BlockingIOError, InterruptedError):
                return
            if not message and not fds:  # the parent closed its end: it is gone
                loop.remove_reader(self.channel.fileno())
                self.should_exit = True
                return
            if not fds:  # no descriptor left here to take it (MSG_CTRUNC): the kernel closed it
                logging.getLogger("uvicorn.error").warning("a connection was dropped: %s", os.strerror(errno.EMFILE))
                self.closed.value += 1
            for fd in fds:
                task = loop.create_task(self._connect(socket.socket(fileno=fd)))
                self.connecting.add(task)
                task.add_done_callback(self.connecting.discard)

    async def _connect(self, connection: socket.socket) -> None:
        try:
            connection.setblocking(False)
            await asyncio.get_running_loop().connect_accepted_socket(self.protocol, connection)
        except Exception:  # the client left before it was served, or no transport was made for it
            connection.close()
            self.closed.value += 1

    async def on_tick(self, counter: int) -> bool:
        self.heartbeat.value = time.monotonic()
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        if self.started:
            asyncio.get_running_loop().remove_reader(self.channel.fileno())
        await super().shutdown(sockets=sockets)


def _worker(app: str, options: dict, channel: socket.socket, heartbeat, closed) -> None:
    """One worker process: uvicorn serving the app factory ``app`` on the connections the parent
    sends over ``channel``."""
    try:
        threading.Thread(target=_stop_with_parent, daemon=True).start()
        _WorkerServer(uvicorn.Config(app, factory=True, **options), channel, heartbeat, closed).run(sockets=[])
    except KeyboardInterrupt:  # Ctrl-C reached the whole process group: uvicorn has stopped
        pass


class ConnectionDealer:
    """The parent's side of the workers' channels: which worker takes the next connection.

    Parameters
    ----------
    n : int
        The number of workers.
    context : multiprocessing context
        Makes the values shared with the workers: ``heartbeats`` (the time of each worker's
        last tick, 0 until it serves) and ``closed`` (the connections each has closed).

    Examples
    --------
    >>> import multiprocessing
    >>> dealer = ConnectionDealer(2, multiprocessing.get_context("spawn"))
    >>> dealer.heartbeats[0].value = dealer.heartbeats[1].value = time.monotonic()
    >>> dealer.serving([True, True])
    [0, 1]
    >>> connections = [socket.socketpair()[0] for _ in range(3)]
    >>> [dealer.hand(connection, [0, 1]) for connection in connections], dealer.handed
    ([True, True, True], [2, 1])
    >>> len(dealer.reset(0))  # worker 0 died before taking its two: they are handed again
    2
    >>> dealer.close()
    """

    def __init__(self, n: int, context) -> None:
        pairs = [socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET) for _ in range(n)]
        self.ends = [ours for ours, _ in pairs]
        self.worker_ends = [theirs for _, theirs in pairs]
        for end in self.ends:
            end.setblocking(False)
        self.heartbeats = [context.Value("d", 0.0, lock=False) for _ in range(n)]  # 0: not serving yet
        self.closed = [context.Value("q", 0, lock=False) for _ in range(n)]
        self.handed = [0] * n

    def reset(self, i: int) -> list[socket.socket]:
        """Worker ``i`` starts afresh; the connections handed to it that it never took (they wait
        in its channel, unread) are returned, to be handed to another."""
        self.heartbeats[i].value, self.closed[i].value, self.handed[i] = 0.0, 0, 0
        waiting = []
        self.worker_ends[i].setblocking(False)
        while True:
            try:
                _, fds, _, _ = socket.recv_fds(self.worker_ends[i], 1, 16)
            except (BlockingIOError, InterruptedError):
                break
            waiting += [socket.socket(fileno=fd) for fd in fds]
        self.worker_ends[i].setblocking(True)
        return waiting

    def serving(self, alive: list[bool]) -> list[int]:
        """The workers that take new connections: those whose loop ticked within the last second,
        or if none did, any that has started serving."""
        now = time.monotonic()
        started = [i for i, up in enumerate(alive) if up and self.heartbeats[i].value]
        return [i for i in started if now - self.heartbeats[i].value < _FRESH] or started

    def hand(self, connection: socket.socket, candidates: list[int]) -> bool:
        """Send ``connection`` to the candidate with the fewest open connections; False when none
        would take it. The parent's copy is closed either way."""
        with connection:
            for i in sorted(candidates, key=lambda i: self.handed[i] - self.closed[i].value):
                try:
                    socket.send_fds(self.ends[i], [b"c"], [connection.fileno()])
                except OSError:  # its channel is full or gone: the next one
                    continue
                self.handed[i] += 1
                return True
        return False

    def close(self) -> None:
        for end in self.ends + self.worker_ends:
            end.close()


def _accept(listener: socket.socket, dealer: ConnectionDealer, candidates: list[int], paused_until: float) -> float:
    """Hand the connections waiting on ``listener`` (64 at most, each to the worker with the fewest
    at that moment); return the time before which not to accept again: later than now when this
    process has no file descriptor left (the listener stays readable: no busy loop meanwhile)."""
    for _ in range(64):
        try:
            connection, _ = listener.accept()
        except ConnectionAbortedError:  # the client left before it was accepted
            continue
        except (BlockingIOError, InterruptedError):  # none waiting
            break
        except OSError as error:  # EMFILE, ENFILE, ENOBUFS: retried in a moment
            if not paused_until:  # once a spell, not every pause
                print(f"crampdx: cannot accept a connection ({error.strerror}); retrying", file=sys.stderr)
            return time.monotonic() + _ACCEPT_PAUSE
        dealer.hand(connection, candidates)
    return 0.0


def serve_workers(app: str, listener: socket.socket, workers: int, options: dict, hung_after: float = HUNG_AFTER,
                  start_after: float = START_AFTER) -> int:
    """Run ``workers`` processes serving the app factory ``app`` (an import string) with the uvicorn
    ``options`` on the connections accepted from ``listener``; return the exit code once they have
    stopped. A worker silent ``hung_after`` s after a tick, or ``start_after`` s after its start, is replaced."""
    context = multiprocessing.get_context("spawn")
    dealer = ConnectionDealer(workers, context)
    stopping: list = []

    def stop(signum, frame) -> None:
        if stopping:  # a second signal: no more waiting
            for process in processes:
                if process.pid is not None and process.is_alive():
                    process.kill()
        stopping.append(signum)

    def start(i: int) -> multiprocessing.Process:
        return context.Process(target=_worker, args=(app, options, dealer.worker_ends[i], dealer.heartbeats[i],
                                                     dealer.closed[i]))

    processes = [start(i) for i in range(workers)]
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if signal.getsignal(signal.SIGHUP) != signal.SIG_IGN else [])
    previous = {sig: signal.signal(sig, stop) for sig in signals}
    started = [time.monotonic()] * workers
    quick_deaths = 0
    waiting: list[socket.socket] = []  # connections taken back from a worker that died, to hand again
    try:
        for process in processes:
            process.start()
        awake = checked = time.monotonic()  # awake: since when this supervisor has run without a pause
        paused_until = 0.0  # no accepting before then: this process had no file descriptor left
        while not stopping:
            candidates = dealer.serving([process.is_alive() for process in processes])
            while waiting and candidates:
                dealer.hand(waiting.pop(), candidates)
            # no worker serving, or no descriptor left: connections wait in the listening socket's queue
            now = time.monotonic()
            accepting = bool(candidates) and now >= paused_until  # a pause ends at a check: 0.1 to 0.3 s
            ready, _, _ = select.select([listener] if accepting else [], [], [], max(0.0, checked + _CHECK_EVERY - now))
            if ready and not stopping:  # once stopping, the connections go no more to workers that stop
                paused_until = _accept(listener, dealer, candidates, paused_until)
            now = time.monotonic()
            if now - checked < _CHECK_EVERY:
                continue
            if now - checked > _PAUSED:
                awake = now
            checked = now
            for i, process in enumerate(processes):
                heartbeat = dealer.heartbeats[i].value
                # silence counts from this supervisor's own resumption: after the whole service
                # was paused (Ctrl-Z, a frozen machine) the workers get their time to tick again
                silent, waited = now - max(heartbeat, awake), now - max(started[i], awake)
                if process.is_alive() and not stopping and (silent > hung_after if heartbeat else waited > start_after):
                    print(f"crampdx worker {process.pid} has not {'answered' if heartbeat else 'started serving'} for "
                          f"{silent if heartbeat else waited:.0f} s; stopping it", file=sys.stderr)
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
                waiting += dealer.reset(i)
                processes[i], started[i] = start(i), time.monotonic()
                processes[i].start()
        return 0
    finally:
        listener.close()  # no new connections while the workers finish
        for connection in waiting:
            connection.close()
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
        dealer.close()
