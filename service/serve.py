"""``crampdx serve``: load and verify the model, then run the service with uvicorn.

The command line names this function as the handler of ``serve`` (it imports handlers by
name only when their subcommand runs), so the service stays a front end of its own.

With ``--workers N`` (N > 1) N processes serve one port, on Linux taking the connections the
parent accepts, dealt out evenly (:mod:`crampdx.service.workers`), and each building the
app with :func:`app_from_environment`: each loads and verifies the model itself (the
parent has verified it once already, so a bad model still stops the start in one sentence)
and re-reads the token file, which never travels through the environment.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import sys
from pathlib import Path

import uvicorn
from threadpoolctl import threadpool_limits

from crampdx import DISCLAIMER
from crampdx.errors import UserFacingError
from crampdx.model.diagnoser import Diagnoser
from crampdx.service.app import create_app
from crampdx.service.workers import AVAILABLE, HUNG_AFTER, REFUSED, listening_socket, serve_workers

__all__ = ["ServeError", "app_from_environment", "cmd_serve", "read_token"]

# How the parent tells its worker processes what to serve: model directory, token file, origins.
SERVE_CONFIG_ENV = "CRAMPDX_SERVE_CONFIG"


class ServeError(ValueError, UserFacingError):
    """The service cannot start as asked; the message says why and how to fix it."""


def read_token(path: str | Path) -> str:
    """The bearer token in ``path`` (its first line, surrounding spaces removed).

    Examples
    --------
    >>> import tempfile, os
    >>> folder = tempfile.mkdtemp(); path = os.path.join(folder, "token")
    >>> _ = open(path, "w").write("s3cret-token-value\\n")
    >>> read_token(path)
    's3cret-token-value'
    """
    if not Path(path).is_file():  # a FIFO would block the start, a directory cannot hold a token
        raise ServeError(f"--token-file {path}: not a regular file; give a text file holding the token")
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ServeError(f"--token-file {path}: could not be read ({getattr(error, 'strerror', None) or error}); "
                         "give a text file holding the token") from None
    token = text.strip().splitlines()[0].strip() if text.strip() else ""
    if len(token) < 16:
        raise ServeError(f"--token-file {path}: the token must be one line of at least 16 characters "
                         "(for example the output of `python -c 'import secrets; print(secrets.token_urlsafe())'`)")
    return token


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_port_free(host: str, port: int) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                             "choose another --port or stop what is using it") from None


def _listening_socket(host: str, port: int) -> socket.socket:
    """The socket the parent accepts on, bound before the model loads: a second service started
    on the port meanwhile fails its own check instead of sharing the port."""
    try:
        return listening_socket(host, port)
    except OSError as error:
        raise ServeError(f"cannot listen on {host}:{port} ({error.strerror or error}); "
                         "choose another --port or stop what is using it") from None


def _one_thread_per_request() -> None:
    """One BLAS and one OpenMP thread in this process: requests run side by side in processes
    (and the slow lane's thread), and a case is one row, so more threads save nothing while idle OpenBLAS
    workers spin after each call, taking the other core from the next request (measured: the
    atypical check cost several times the CPU per request)."""
    threadpool_limits(limits=1)


def app_from_environment():
    """The app of one worker process of ``crampdx serve --workers N`` (uvicorn's factory)."""
    _one_thread_per_request()
    config = json.loads(os.environ[SERVE_CONFIG_ENV])
    try:
        token = read_token(config["token_file"]) if config["token_file"] else None
        diagnoser = Diagnoser.load(config["model"])
    except UserFacingError as error:  # one sentence in the log, and this worker stops (no traceback loop)
        print(f"crampdx worker {os.getpid()}: {error}", file=sys.stderr)
        raise SystemExit(REFUSED) from None
    if diagnoser.identity.model_sha256 != config["model_sha256"]:
        # A worker that died is replaced: all must serve the model the parent verified at start.
        print(f"crampdx worker {os.getpid()}: the model in {config['model']} changed since `crampdx serve` started; "
              "restart the service to serve the new one", file=sys.stderr)
        raise SystemExit(REFUSED)
    return create_app(diagnoser, token=token, cors_origins=config["cors_origins"])


def cmd_serve(args: argparse.Namespace) -> int:
    token = read_token(args.token_file) if args.token_file else None
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise ServeError(f"--workers {workers}: give at least 1 process (one per core is the most that helps)")
    _check_port_free(args.host, args.port)
    listener = _listening_socket(args.host, args.port) if workers > 1 and AVAILABLE else None
    try:
        diagnoser = Diagnoser.load(args.model)  # ArtifactError: one sentence with the fix; nothing is served
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    if not _is_loopback(args.host) and token is None:
        print(f"warning: serving on {args.host} without --token-file: anyone who can reach this machine can use "
              "the service", file=sys.stderr)
    _one_thread_per_request()
    options = dict(host=args.host, port=args.port, log_level=args.log_level, access_log=False)
    print(f"crampdx service on http://{args.host}:{args.port} (routes at /docs"
          f"{f', {workers} worker processes' if workers > 1 else ''}). {DISCLAIMER}", file=sys.stderr)
    if workers == 1:
        uvicorn.run(create_app(diagnoser, token=token, cors_origins=args.cors_origin or ()), **options)
        return 0
    os.environ[SERVE_CONFIG_ENV] = json.dumps({
        "model": str(diagnoser.path_),
        "model_sha256": diagnoser.identity.model_sha256,
        "token_file": str(Path(args.token_file).resolve()) if args.token_file else None,
        "cors_origins": list(args.cors_origin or ())})
    del diagnoser  # each worker loads its own
    if listener is None:  # not Linux: no passing of connections between processes there
        uvicorn.run("crampdx.service.serve:app_from_environment", factory=True, workers=workers, **options)
        return 0
    return serve_workers("crampdx.service.serve:app_from_environment", listener, workers, options,
                         hung_after=getattr(args, "worker_timeout", None) or HUNG_AFTER)
