"""Servers for the client and kvcli tests: kvserver and (if installed) redis-server.

Every client test runs against each server named in ``KVCLIENT_TEST_SERVERS``
(comma separated; default both), so the bundled client is checked against
kvserver and against the real thing. Each server is a real process on a free
loopback port, stopped by its PID.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from clients import Client, ClientConnectionError, ServerError

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")
#: How long a server may take to answer its first PING.
STARTUP_TIMEOUT = 10.0


@dataclasses.dataclass
class ServerAddress:
    host: str
    port: int
    unix_socket: str | None
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(proc: subprocess.Popen, port: int, log: Path) -> None:
    """Poll with PING until the server answers (bounded by STARTUP_TIMEOUT)."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()}")
        try:
            with Client(port=port, timeout=1.0) as c:
                if c.ping():
                    return
        except (ClientConnectionError, ServerError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"server did not answer PING in {STARTUP_TIMEOUT}s")
        time.sleep(0.02)


def _launch(argv: list[str], cwd: Path, workdir: Path, port: int,
            sock: str) -> tuple[subprocess.Popen, ServerAddress]:
    """Start a server process logging to workdir/server.log; wait until it answers PING."""
    log = workdir / "server.log"
    with log.open("wb") as out:  # the child keeps its own descriptor
        proc = subprocess.Popen(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_ready(proc, port, log)
    except BaseException:
        stop_server(proc)
        raise
    return proc, ServerAddress("127.0.0.1", port, sock, proc.pid)


def start_redis_server(workdir: Path) -> tuple[subprocess.Popen, ServerAddress]:
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (looked for it on PATH)")
    port = free_port()
    sock = str(workdir / "redis.sock")
    return _launch([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                    "--appendonly", "no", "--dir", str(workdir), "--unixsocket", sock,
                    "--unixsocketperm", "700"], workdir, workdir, port, sock)


def start_kvserver(workdir: Path) -> tuple[subprocess.Popen, ServerAddress]:
    port = free_port()
    sock = str(workdir / "kv.sock")
    return _launch([sys.executable, "-m", "kvserver", "--port", str(port), "--bind", "127.0.0.1",
                    "--dir", str(workdir / "data"), "--unixsocket", sock],
                   ROOT, workdir, port, sock)


# Name -> launcher; every test runs once per entry selected by KVCLIENT_TEST_SERVERS
# (comma separated; default both).
SERVER_LAUNCHERS: dict[str, Callable[[Path], tuple[subprocess.Popen, ServerAddress]]] = {
    "redis-server": start_redis_server,
    "kvserver": start_kvserver,
}
SERVERS_UNDER_TEST = os.environ.get("KVCLIENT_TEST_SERVERS", "kvserver,redis-server").split(",")


def stop_server(proc: subprocess.Popen) -> None:
    """Stop the server by its PID: SIGTERM, then SIGKILL if it lingers."""
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@pytest.fixture(scope="module", params=SERVERS_UNDER_TEST)
def running_server(request, tmp_path_factory) -> Iterator[ServerAddress]:
    workdir = tmp_path_factory.mktemp(request.param.replace("-", "_"))
    proc, address = SERVER_LAUNCHERS[request.param](workdir)
    try:
        yield address
    finally:
        stop_server(proc)


@pytest.fixture
def server_address(running_server: ServerAddress) -> ServerAddress:
    """Where the server under test listens, emptied before each test."""
    with Client(running_server.host, running_server.port, timeout=5) as c:
        c.flushall()
    return running_server


