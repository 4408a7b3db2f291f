"""`crampdx serve` for real: uvicorn on a free localhost port, driven over HTTP; and the
service refusing to start, in one sentence, without a valid model."""

from __future__ import annotations

import inspect
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest
import uvicorn

from crampdx import DISCLAIMER
from crampdx.cli.main import main
from crampdx.service.requests import EXAMPLE_FINDINGS
from crampdx.service.serve import SERVE_CONFIG_ENV
from crampdx.service.workers import REFUSED, _WorkerServer, listening_socket, serve_workers

TOKEN = "served-token-of-enough-length"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(model_dir, tmp_path_factory, *extra: str):
    """Start `crampdx serve` with a token file on a free port; (base URL, process, token)."""
    token_file = tmp_path_factory.mktemp("token") / "token"
    token_file.write_text(TOKEN + "\n")
    port = _free_port()
    log = (tmp_path_factory.mktemp("log") / "serve.log").open("w+")  # a pipe nobody reads could block the server
    process = subprocess.Popen(
        [sys.executable, "-m", "crampdx.cli.main", "serve", "--model", str(model_dir), "--port", str(port),
         "--token-file", str(token_file), "--log-level", "warning", *extra],
        stdout=subprocess.DEVNULL, stderr=log, text=True, start_new_session=True)  # its own group: _stop reaches every worker
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            pytest.fail(f"crampdx serve exited: {log.read()[-2000:]}")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    else:
        process.kill()
        pytest.fail("crampdx serve did not become ready within 90 s")
    return base, process


def _stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
    try:  # whatever is left of its group (workers)
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tiny_model_dir, tmp_path_factory):
    base, process = _serve(tiny_model_dir, tmp_path_factory)
    yield base, process
    _stop(process)


def test_the_real_server_assesses_over_http(server, tiny_diagnoser):
    base, _ = server
    headers = {"Authorization": f"Bearer {TOKEN}"}
    response = httpx.post(f"{base}/v1/assess", json={"findings": EXAMPLE_FINDINGS, "top": 3}, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["id"] for c in body["differential"]] == [c.id for c in tiny_diagnoser.rank(EXAMPLE_FINDINGS, top=3)]
    assert response.headers["x-crampdx-disclaimer"] == DISCLAIMER
    assert httpx.post(f"{base}/v1/assess", json={"findings": {}}, timeout=30).status_code == 401
    bad = httpx.post(f"{base}/v1/assess", json={"findings": {"potassium": "lots"}}, headers=headers, timeout=30)
    assert bad.status_code == 422 and "potassium" in bad.json()["problems"]


def test_the_server_listens_on_localhost_only_by_default(server):
    base, process = server
    assert base.startswith("http://127.0.0.1:")
    address = _outward_address()
    if address is None:
        pytest.skip("this machine has no address other than loopback to try")
    port = int(base.rsplit(":", 1)[1])
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://{address}:{port}/healthz", timeout=2)


def _outward_address() -> str | None:
    """This machine's address on its default route (a UDP connect sends nothing)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: routed, never answered
            address = probe.getsockname()[0]
        except OSError:
            return None
    return None if address.startswith("127.") else address


def test_serve_refuses_to_start_without_a_valid_model(tmp_path, capsys):
    code = main(["serve", "--model", str(tmp_path / "no-model"), "--port", str(_free_port())])
    err = capsys.readouterr().err
    assert code == 2 and "crampdx train" in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_serve_refuses_a_short_token_and_a_busy_port(tiny_model_dir, tmp_path, capsys):
    short = tmp_path / "token"
    short.write_text("abc\n")
    assert main(["serve", "--model", str(tiny_model_dir), "--token-file", str(short)]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", "--model", str(tiny_model_dir), "--port", str(port)]) == 2
    assert f"127.0.0.1:{port}" in capsys.readouterr().err


def test_serve_refuses_a_port_out_of_range(capsys):
    assert main(["serve", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "1 to 65535" in err and "Traceback" not in err


def _workers(pid: int) -> list[int]:
    """The worker processes uvicorn spawned under ``pid`` (multiprocessing's resource tracker,
    also a child, is not one)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                if parent == pid and b"spawn_main" in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts the worker processes in /proc (Linux)")
def test_two_workers_each_load_the_model_and_serve_one_port(tiny_model_dir, tmp_path_factory, tiny_diagnoser):
    base, process = _serve(tiny_model_dir, tmp_path_factory, "--workers", "2")
    try:
        deadline = time.monotonic() + 60
        while len(_workers(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(_workers(process.pid)) == 2
        headers = {"Authorization": f"Bearer {TOKEN}"}
        expected = [c.id for c in tiny_diagnoser.rank(EXAMPLE_FINDINGS, top=3)]
        for _ in range(3):  # the token file was read by every worker: no request passes without it
            ok = httpx.post(f"{base}/v1/assess", json={"findings": EXAMPLE_FINDINGS, "top": 3}, headers=headers, timeout=60)
            assert ok.status_code == 200, ok.text
            assert [c["id"] for c in ok.json()["differential"]] == expected
            assert httpx.post(f"{base}/v1/assess", json={"findings": {}}, timeout=30).status_code == 401
        # a worker that dies is replaced
        before = set(_workers(process.pid))
        killed = min(before)
        os.kill(killed, signal.SIGKILL)
        while time.monotonic() < deadline + 60 and (killed in _workers(process.pid) or len(_workers(process.pid)) < 2):
            time.sleep(0.2)
        assert killed not in _workers(process.pid) and len(_workers(process.pid)) == 2
        replacement = next(pid for pid in _workers(process.pid) if pid not in before)
        _every_worker_serving(base, process, deadline + 120)  # the replacement takes connections too
        ok = httpx.post(f"{base}/v1/assess", json={"findings": EXAMPLE_FINDINGS, "top": 3}, headers=headers, timeout=60)
        assert ok.status_code == 200, ok.text
        assert replacement in _workers(process.pid)
    finally:
        _stop(process)


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().name
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def _server_side_sockets(port: int, state: str) -> set[int]:
    """Inodes of the TCP sockets on local ``port`` in ``state`` (0A listening, 01 established)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == state:
                found.add(int(fields[9]))
    return found


def _connections_per_worker(port: int, workers: list[int], expected: int, deadline: float) -> list[int]:
    """How many of the ``expected`` established connections to ``port`` each worker holds, once
    all are held (or at ``deadline``)."""
    held = []
    while time.monotonic() < deadline:
        established = _server_side_sockets(port, "01")
        held = [len(established & _socket_inodes(pid)) for pid in workers]
        if sum(held) == expected:
            break
        time.sleep(0.2)
    return held


def _peer_ports(port: int) -> dict[int, int]:
    """The client's port of each established TCP socket on local ``port``, by inode."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                found[int(fields[9])] = int(fields[2].rsplit(":", 1)[1], 16)
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the sockets in /proc (Linux)")
def test_connections_are_dealt_out_evenly(tiny_model_dir, tmp_path_factory):
    """The parent accepts and hands each connection to the worker with the fewest: 40 opened
    together split 20/20 (each worker on its own SO_REUSEPORT socket, the kernel's hash split
    20 connections 13/7 or worse about a quarter of the time); once one worker's connections
    have all closed, the next 10 all go to it."""
    base, process = _serve(tiny_model_dir, tmp_path_factory, "--workers", "2")
    port = int(base.rsplit(":", 1)[1])
    clients = []
    try:
        deadline = time.monotonic() + 120
        workers = sorted(_every_worker_serving(base, process, deadline))
        listening = _server_side_sockets(port, "0A")
        assert len(listening) == 1 and listening <= _socket_inodes(process.pid)  # the parent's
        assert not any(listening & _socket_inodes(pid) for pid in workers)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        assert _connections_per_worker(port, workers, 40, deadline) == [20, 20]
        # every connection the first worker holds closes: the next 10 all go to it
        ports = _peer_ports(port)
        first = {ports[inode] for inode in _socket_inodes(workers[0]) if inode in ports}
        for client in [c for c in clients if c.getsockname()[1] in first]:
            client.close()
            clients.remove(client)
        assert _connections_per_worker(port, workers, 20, deadline) == [0, 20]
        clients += [socket.create_connection(("127.0.0.1", port)) for _ in range(10)]
        assert _connections_per_worker(port, workers, 30, deadline) == [10, 20]
    finally:
        for client in clients:
            client.close()
        _stop(process)
    assert process.returncode == 0 and not _workers(process.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts the worker processes in /proc (Linux)")
def test_a_stalled_worker_gets_no_new_connections(tiny_model_dir, tmp_path_factory):
    """A worker whose loop has not ticked for a second (here stopped, well before the
    --worker-timeout) is passed over while the other serves: every new connection is answered."""
    base, process = _serve(tiny_model_dir, tmp_path_factory, "--workers", "2")
    stalled = None
    try:
        stalled = min(_every_worker_serving(base, process, time.monotonic() + 120))
        os.kill(stalled, signal.SIGSTOP)
        time.sleep(1.5)
        port = int(base.rsplit(":", 1)[1])
        clients = []
        try:  # six connections open together: fewest-connections alone would give the stopped worker some
            for _ in range(6):
                clients.append(socket.create_connection(("127.0.0.1", port), timeout=10))
                clients[-1].sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert all(client.recv(1024).startswith(b"HTTP/1.1 200") for client in clients)
        finally:
            for client in clients:
                client.close()
    finally:
        if stalled is not None:
            os.kill(stalled, signal.SIGCONT)
        _stop(process)


def test_a_worker_refusing_the_model_stops_the_service_with_its_code(tiny_model_dir, monkeypatch, capfd):
    """Workers check that they serve the model the parent verified; one that finds it changed
    stops, and the parent stops the others and exits with its code instead of restarting it."""
    monkeypatch.setenv(SERVE_CONFIG_ENV, json.dumps({"model": str(tiny_model_dir), "model_sha256": "0" * 64,
                                                     "token_file": None, "cors_origins": []}))
    options = dict(host="127.0.0.1", port=_free_port(), log_level="warning", access_log=False)
    listener = listening_socket(options["host"], options["port"])
    def give_up(signum, frame):  # a supervisor restarting the refusing worker would never return
        raise TimeoutError("serve_workers kept running after a worker refused")

    previous = signal.signal(signal.SIGALRM, give_up)
    signal.alarm(90)
    try:
        assert serve_workers("crampdx.service.serve:app_from_environment", listener, 2, options) == REFUSED
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    err = capfd.readouterr().err
    assert "changed since `crampdx serve` started" in err and "Traceback" not in err


def test_serve_refuses_no_workers(tiny_model_dir, capsys):
    assert main(["serve", "--model", str(tiny_model_dir), "--workers", "0", "--port", str(_free_port())]) == 2
    err = capsys.readouterr().err
    assert "--workers 0" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def _every_worker_serving(base: str, process, deadline: float) -> set[int]:
    """The two workers' pids once each has answered a connection opened here (so its event
    loop runs: it has loaded its model and ticks); the parent deals them out."""
    port = int(base.rsplit(":", 1)[1])
    clients, served = [], set()
    try:
        while len(served) < 2 and time.monotonic() < deadline:
            client = socket.create_connection(("127.0.0.1", port), timeout=60)
            clients.append(client)
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
            client.recv(1024)  # answered
            established = _server_side_sockets(port, "01")
            served |= {pid for pid in _workers(process.pid) if established & _socket_inodes(pid)}
    finally:
        for client in clients:
            client.close()
    assert len(served) == 2, served
    return served


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts the worker processes in /proc (Linux)")
def test_a_hung_worker_is_killed_and_replaced(tiny_model_dir, tmp_path_factory):
    """A worker whose event loop stops (here: SIGSTOP) is killed after --worker-timeout and
    replaced; the service answers again."""
    base, process = _serve(tiny_model_dir, tmp_path_factory, "--workers", "2", "--worker-timeout", "3")
    try:
        deadline = time.monotonic() + 120
        headers = {"Authorization": f"Bearer {TOKEN}"}
        before = _every_worker_serving(base, process, deadline)
        stopped = min(before)
        os.kill(stopped, signal.SIGSTOP)
        while time.monotonic() < deadline and (stopped in _workers(process.pid) or len(_workers(process.pid)) < 2):
            time.sleep(0.2)
        assert stopped not in _workers(process.pid) and len(_workers(process.pid)) == 2
        for _ in range(4):
            ok = httpx.post(f"{base}/v1/assess", json={"findings": EXAMPLE_FINDINGS, "top": 3}, headers=headers, timeout=60)
            assert ok.status_code == 200, ok.text
    finally:
        _stop(process)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts the worker processes in /proc (Linux)")
def test_a_paused_service_keeps_its_workers_when_it_resumes(tiny_model_dir, tmp_path_factory):
    """The whole service stopped for longer than --worker-timeout (Ctrl-Z, a frozen machine) and
    resumed: its supervisor gives the workers their time to tick again instead of killing them."""
    base, process = _serve(tiny_model_dir, tmp_path_factory, "--workers", "2", "--worker-timeout", "2")
    try:
        before = _every_worker_serving(base, process, time.monotonic() + 120)
        os.killpg(process.pid, signal.SIGSTOP)
        time.sleep(5)
        os.killpg(process.pid, signal.SIGCONT)
        time.sleep(4)
        assert set(_workers(process.pid)) == before
        assert httpx.get(f"{base}/healthz", timeout=30).status_code == 200
    finally:
        _stop(process)


async def _tiny_app(scope, receive, send):
    """Answers every HTTP request 200 and closes every WebSocket (403): a worker's app that
    starts at once (these tests are about the connections, not the model)."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.close"})
    elif scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})


def _until(predicate, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


@pytest.fixture
def worker():
    """A worker's server on the tiny app, run in a thread here: ``connect()`` opens a connection
    and hands its server side over the channel as the parent does (``hand``); ``closed`` is the
    count the parent deals by."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    heartbeat, closed = SimpleNamespace(value=0.0), SimpleNamespace(value=0)
    server = _WorkerServer(uvicorn.Config(_tiny_app, lifespan="off", log_level="warning"), theirs, heartbeat, closed)
    thread = threading.Thread(target=server.run, kwargs={"sockets": []}, daemon=True)
    thread.start()
    assert _until(lambda: heartbeat.value, 10)
    listener = socket.create_server(("127.0.0.1", 0))
    clients = []

    def hand(connection: socket.socket) -> None:
        with connection:
            socket.send_fds(ours, [b"c"], [connection.fileno()])

    def connect() -> socket.socket:
        clients.append(socket.create_connection(listener.getsockname(), timeout=5))
        hand(listener.accept()[0])
        return clients[-1]

    yield SimpleNamespace(connect=connect, hand=hand, closed=closed, listener=listener, channel=ours)
    server.should_exit = True
    thread.join(10)
    for sock in clients + [listener, ours, theirs]:
        sock.close()


def test_every_connection_handed_to_a_worker_counts_once_as_closed(worker):
    """The parent deals by handed minus closed: a connection that never counts as closed biases
    it against that worker forever. A WebSocket upgrade (anyone can ask for one; the app refuses
    it) hands the connection to another protocol, which did not count; a connection no transport
    could be made for (here a datagram socket) neither."""
    plain = worker.connect()
    plain.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert plain.recv(1024).startswith(b"HTTP/1.1 200")
    assert _until(lambda: worker.closed.value == 1)
    upgraded = worker.connect()
    upgraded.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    assert upgraded.recv(1024).startswith(b"HTTP/1.1 403")
    upgraded.close()
    assert _until(lambda: worker.closed.value == 2), worker.closed.value
    worker.hand(socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    assert _until(lambda: worker.closed.value == 3), worker.closed.value
    time.sleep(0.2)
    assert worker.closed.value == 3  # once each


def test_a_connection_a_worker_had_no_descriptor_for_counts_as_closed(worker):
    """A worker out of file descriptors receives the message without the descriptor (the kernel
    drops it, MSG_CTRUNC): that connection is closed and must count as such."""
    client = socket.create_connection(worker.listener.getsockname(), timeout=5)
    accepted, _ = worker.listener.accept()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lowest_free = os.open(os.devnull, os.O_RDONLY)
    os.close(lowest_free)
    resource.setrlimit(resource.RLIMIT_NOFILE, (lowest_free, hard))  # no new descriptor in this process
    try:
        socket.send_fds(worker.channel, [b"c"], [accepted.fileno()])  # closed here only after: no lower number frees up
        counted = _until(lambda: worker.closed.value == 1, 3)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    accepted.close()
    with client:
        assert client.recv(10) == b""  # dropped indeed
    assert counted, worker.closed.value


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _answered(client: socket.socket) -> bool:
    client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    return client.recv(1024).startswith(b"HTTP/1.1 200")


def _serve_workers(tmp_path, module_source: str, workers: int, options: str = ""):
    """serve_workers on ``make`` of a module with ``module_source``, in a process group of its
    own (not waited for): (port, process, log). ``options``: more keyword arguments, as text."""
    (tmp_path / "served_asgi.py").write_text(module_source)
    port = _free_port()
    code = ("import sys; from crampdx.service.workers import listening_socket, serve_workers; "
            f"sys.exit(serve_workers('served_asgi:make', listening_socket('127.0.0.1', {port}), {workers}, "
            f"{{'log_level': 'warning', 'lifespan': 'off'}}{options}))")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen([sys.executable, "-c", code], env=environment, stderr=log, start_new_session=True)
    return port, process, log


def _tiny_service(tmp_path):
    """serve_workers with two workers on the tiny app, in a process group of its own, once it
    answers: (port, process, log)."""
    port, process, log = _serve_workers(tmp_path, inspect.getsource(_tiny_app) + "\n\ndef make():\n    return _tiny_app\n", 2)

    def serving() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                return _answered(client)
        except OSError:
            return False

    if not _until(serving, 60):
        _stop(process)
        log.seek(0)
        pytest.fail(f"serve_workers did not answer: {log.read()[-2000:]}")
    return port, process, log


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc and sets another process's limits (Linux)")
def test_the_parent_out_of_descriptors_pauses_accepting_instead_of_spinning(tmp_path):
    """accept() failing with EMFILE leaves the connection queued and the listener readable: the
    select loop went round at 100 % CPU (1.0 s of CPU in 1 s, seen). It pauses instead, and
    serves the connection once descriptors are free again."""
    port, process, log = _tiny_service(tmp_path)
    try:
        # both workers started (the parent opens and closes descriptors while it hands a new
        # worker its channel), and the parent's descriptors settled: none is freed after the
        # limit is set, which would let accept() succeed (seen once in CI)
        _every_worker_serving(f"http://127.0.0.1:{port}", process, time.monotonic() + 60)
        open_fds, previous = None, set()
        while open_fds != previous:
            previous, open_fds = open_fds, {int(fd) for fd in os.listdir(f"/proc/{process.pid}/fd")}
            time.sleep(0.3)
        lowest_free = min(set(range(max(open_fds) + 2)) - open_fds)
        limits = resource.prlimit(process.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (lowest_free, limits[1]))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
            time.sleep(0.2)
            before = _cpu_seconds(process.pid)
            time.sleep(1.0)
            spent = _cpu_seconds(process.pid) - before
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, limits)
            assert _answered(client)
        assert spent < 0.3, f"{spent:.2f} s of CPU in 1 s while out of descriptors"
        log.seek(0)
        assert log.read().count("cannot accept a connection (Too many open files)") == 1
    finally:
        _stop(process)
    assert process.returncode == 0


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads the processes and sockets in /proc (Linux)")
def test_connections_waiting_for_a_dead_worker_go_to_another_and_its_replacement_starts_at_zero(tmp_path):
    """Connections handed to a worker that dies before taking them (here stopped, then killed)
    are answered by the other; the replacement counts from zero: four connections held open
    then split 2/2."""
    port, process, _ = _tiny_service(tmp_path)
    clients = []
    try:
        deadline = time.monotonic() + 60
        doomed = min(_every_worker_serving(f"http://127.0.0.1:{port}", process, deadline))
        time.sleep(0.3)  # the closes of those connections counted
        os.kill(doomed, signal.SIGSTOP)  # still fresh for a second: it gets its share, unread
        clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(4)]
        time.sleep(0.3)  # all accepted and handed
        os.kill(doomed, signal.SIGKILL)
        assert all(_answered(client) for client in clients)
        for client in clients:
            client.close()
        workers = sorted(_every_worker_serving(f"http://127.0.0.1:{port}", process, deadline))
        assert doomed not in workers
        time.sleep(0.3)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        assert _connections_per_worker(port, workers, 4, deadline) == [2, 2]
    finally:
        for client in clients:
            client.close()
        _stop(process)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="counts the worker processes in /proc (Linux)")
def test_a_worker_stuck_before_serving_is_replaced(tmp_path):
    """A worker that never starts serving (here its app factory never returns, as a model load
    stuck on a dead disk would) is killed ``start_after`` seconds after its start and replaced;
    without the rule it was never judged (it has no tick to be silent after)."""
    _, process, log = _serve_workers(tmp_path, "import time\n\ndef make():\n    time.sleep(3600)\n", 1,
                                     ", hung_after=60, start_after=2")
    try:
        def replaced() -> bool:
            log.seek(0)
            return "has not started serving for" in log.read() and len(_workers(process.pid)) == 1
        first = _until(lambda: _workers(process.pid), 30) and _workers(process.pid)[0]
        assert _until(replaced, 60), log.read()[-2000:]
        assert _until(lambda: _workers(process.pid) and _workers(process.pid)[0] != first, 10)
        assert process.poll() is None  # replaced, still serving (not counted a quick death)
    finally:
        _stop(process)
