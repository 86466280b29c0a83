"""Shared fixtures: real kvserver instances (in a thread or as a process) and a real redis-server.

Everything listens on 127.0.0.1 with a port the OS picked, in a temporary
data directory, and is stopped by the fixture that started it (processes by
PID). Nothing here sleeps to wait for readiness: in-process servers signal
an event, processes print "ready to accept connections".
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kvserver.config import Config  # noqa: E402
from kvserver.server import Server  # noqa: E402

REDIS_SERVER = shutil.which("redis-server")
REDIS_CLI = shutil.which("redis-cli")
REDIS_BENCHMARK = shutil.which("redis-benchmark")
#: Upper bound for any server to come up; a start that takes longer is a failure.
START_TIMEOUT = 30.0


def wait_for(predicate, what: str = "the condition", timeout: float = 20.0,
             interval: float = 0.02):
    """Wait (bounded) for something only another thread or process can make true.

    Returns the predicate's first truthy value; raises AssertionError naming
    ``what`` on timeout.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ThreadedServer:
    """A kvserver running its own event loop in a background thread."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.server: Server | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kvserver-test", daemon=True)

    def _run(self) -> None:
        async def main() -> None:
            self.loop = asyncio.get_running_loop()
            self.server = Server(self.config)
            try:
                await self.server.start()
            except BaseException as exc:
                self._error = exc
                self._ready.set()
                return
            self._ready.set()
            await self.server.wait_stopped()
        asyncio.run(main())

    def start(self) -> "ThreadedServer":
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT):
            raise TimeoutError("kvserver did not start")
        if self._error is not None:
            raise self._error
        return self

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.port

    def call(self, fn, *args):
        """Run fn(*args) on the server's loop and return its result."""
        assert self.loop is not None
        done = threading.Event()
        box: list = []

        def run() -> None:
            try:
                box.append(fn(*args))
            finally:
                done.set()
        self.loop.call_soon_threadsafe(run)
        done.wait(10)
        return box[0] if box else None

    def stop(self, save: bool = False) -> None:
        if self.loop is not None and self.server is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(self.server.request_shutdown, save)
        self._thread.join(30)


@pytest.fixture
def kv_config(tmp_path):
    """A Config for a test server: port 0, fresh data dir, fast checkpoints off."""
    return Config(port=0, bind="127.0.0.1", dir=str(tmp_path / "data"))


@pytest.fixture
def kv(kv_config):
    """A running kvserver (in a thread). Yields the ThreadedServer; use .port."""
    server = ThreadedServer(kv_config).start()
    yield server
    server.stop()


def start_threaded(config: Config, **changes) -> ThreadedServer:
    return ThreadedServer(replace(config, **changes)).start()


@dataclass
class KVProcess:
    """A kvserver running as a real process."""

    proc: subprocess.Popen
    port: int
    dir: str
    log: list[str]

    def kill9(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
        return self.proc.wait(timeout)


def spawn_kvserver(data_dir: str, *args: str, port: int | None = None,
                   expect_ready: bool = True, timeout: float = START_TIMEOUT) -> KVProcess:
    """Start ``python -m kvserver`` and wait for its "ready to accept connections" line."""
    port = port or free_port()
    # A config file must come first (as with redis-server); our flags go last
    # so port, bind and dir always win.
    cmd = [sys.executable, "-m", "kvserver", *args, "--port", str(port), "--bind", "127.0.0.1",
           "--dir", data_dir]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    lines: list[str] = []
    handle = KVProcess(proc, port, data_dir, lines)
    if not expect_ready:
        return handle
    deadline = time.monotonic() + timeout
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if "ready to accept connections" in line:
                ready.set()
        ready.set()  # EOF: the process ended
    threading.Thread(target=pump, daemon=True).start()
    ready.wait(max(0.0, deadline - time.monotonic()))
    if proc.poll() is not None or not any("ready to accept" in x for x in lines):
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
        raise RuntimeError("kvserver did not start:\n" + "\n".join(lines))
    return handle


@pytest.fixture
def kv_process(tmp_path):
    """Factory for kvserver processes; every one started is killed (by PID) at teardown."""
    started: list[KVProcess] = []

    def start(*args: str, data_dir: str | None = None, **kw) -> KVProcess:
        p = spawn_kvserver(data_dir or str(tmp_path / "data"), *args, **kw)
        started.append(p)
        return p
    yield start
    for p in started:
        if p.proc.poll() is None:
            p.kill9()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server (persistence off) for differential tests; skips if not installed."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + START_TIMEOUT
    while True:  # redis-server has no readiness signal on stdout we can rely on
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("redis-server did not start")
        time.sleep(0.05)
    yield port
    os.kill(proc.pid, signal.SIGTERM)
    proc.wait(10)


def raw_exchange(port: int, payload: bytes, timeout: float = 5.0, until_close: bool = False,
                 expect: int | None = None) -> bytes:
    """Send raw bytes, return what comes back (until ``expect`` bytes, close, or timeout)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(payload)
        data = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if expect is not None and len(data) >= expect:
                break
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
            if expect is None and not until_close and data.endswith(b"\r\n"):
                break
        return data
