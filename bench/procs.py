"""Servers and load generators as child processes, each bounded in count and time.

Every server is started on a free loopback port in a fresh data directory,
is known by its PID, and is stopped by that PID: SIGTERM, then SIGKILL if it
has not exited within :data:`STOP_TIMEOUT`. Every load run (redis-benchmark,
``redis-cli --pipe``) has a request count and a wall-clock timeout; a run
that passes its timeout is killed and reported as failed, never waited on.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOOPBACK = "127.0.0.1"

#: How long a server may take to say it is ready. Generous, because a restart
#: with a million keys to replay is itself one of the things measured.
READY_TIMEOUT = 300.0
#: How long a server may take to exit after SIGTERM before it gets SIGKILL
#: (a graceful stop may write a checkpoint).
STOP_TIMEOUT = 60.0
#: Socket timeout of the bench's own small client (probes, INFO, PING).
CLIENT_TIMEOUT = 30.0

KVSERVER_READY = re.compile(r"ready to accept connections", re.I)
REDIS_READY = re.compile(r"ready to accept connections", re.I)

TOOLS = ("redis-server", "redis-cli", "redis-benchmark")


class BenchError(Exception):
    """A benchmark could not run (tool missing, server failed, run timed out)."""


# --- tools -----------------------------------------------------------------------


def ensure_redis_tools() -> dict[str, str]:
    """Install Debian's redis-server and redis-tools if missing; return tool -> path.

    Reuses scripts/install-redis-tools.sh (apt-get, needs root or sudo).
    Raises BenchError if they are still missing afterwards.
    """
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        script = REPO_ROOT / "scripts" / "install-redis-tools.sh"
        print(f"bench: {', '.join(missing)} missing; running {script.name}", flush=True)
        try:
            subprocess.run(["bash", str(script)], check=False, timeout=900)
        except subprocess.TimeoutExpired:
            raise BenchError("installing redis tools took more than 15 minutes") from None
    paths = {t: shutil.which(t) for t in TOOLS}
    still = [t for t, p in paths.items() if p is None]
    if still:
        raise BenchError(f"cannot run without {', '.join(still)} (install redis-server and "
                         "redis-tools, e.g. scripts/install-redis-tools.sh as root)")
    return paths  # type: ignore[return-value]


def tool_version(cmd: list[str]) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return out.strip().splitlines()[0] if out.strip() else "?"


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


# --- servers ---------------------------------------------------------------------


@dataclass
class ServerProcess:
    """One server child process. ``kind`` is ``kvserver``, ``redis`` or ``onesync``."""

    kind: str
    cmd: list[str]
    port: int
    dir: str
    ready_re: re.Pattern
    proc: subprocess.Popen | None = None
    started: float = 0.0
    ready_after: float = 0.0
    lines: list[tuple[float, str]] = field(default_factory=list)
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_timeout: float = READY_TIMEOUT) -> float:
        """Spawn, wait for the ready line; returns seconds from spawn to ready.

        Raises BenchError (with the log tail) if the server exits or is not
        ready in time; the process is killed in that case.
        """
        from .machine import LoadSampler
        LoadSampler.sample()
        env = dict(os.environ)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, cwd=str(REPO_ROOT), env=env,
                                     text=True, errors="replace", bufsize=1)
        self._reader = threading.Thread(target=self._read_output, daemon=True,
                                        name=f"bench-{self.kind}-{self.port}")
        self._reader.start()
        deadline = self.started + ready_timeout
        while not self._ready.wait(0.01):
            if self.proc.poll() is not None:
                self._reader.join(2)
                raise BenchError(f"{self.kind} exited with {self.proc.returncode} before it was "
                                 f"ready:\n{self.tail()}")
            if time.perf_counter() > deadline:
                self.kill()
                raise BenchError(f"{self.kind} not ready after {ready_timeout:.0f} s:\n{self.tail()}")
        return self.ready_after

    def _read_output(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            now = time.perf_counter()
            self.lines.append((now, line.rstrip("\n")))
            if not self._ready.is_set() and self.ready_re.search(line):
                self.ready_after = now - self.started
                self._ready.set()

    def tail(self, n: int = 15) -> str:
        return "\n".join(line for _t, line in self.lines[-n:])

    def log_text(self) -> str:
        return "\n".join(line for _t, line in self.lines)

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        with open(f"/proc/{self.pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        raise BenchError("no VmRSS in /proc status")

    def cpu_seconds(self) -> float:
        """User + system CPU time the server process (all its threads) has used."""
        with open(f"/proc/{self.pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3 of stat(5)); utime and stime are fields 14 and 15.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM by PID; SIGKILL if still running after ``timeout``. Returns the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                print(f"bench: {self.kind} pid {self.proc.pid} ignored SIGTERM for "
                      f"{timeout:.0f} s; killing it", file=sys.stderr, flush=True)
                self.kill()
        if self._reader is not None:
            self._reader.join(5)
        return self.proc.returncode if self.proc.returncode is not None else -9

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(30)


def kvserver_server(port: int, dirpath: str, policy: str, extra: list[str] | None = None,
                    python: list[str] | None = None) -> ServerProcess:
    """kvserver with ``--appendfsync policy`` (``python`` replaces the interpreter
    part of the command line, e.g. to run it under cProfile)."""
    cmd = (python or [sys.executable, "-m"]) + [
        "kvserver", "--port", str(port), "--bind", LOOPBACK, "--dir", dirpath,
        "--appendfsync", policy] + (extra or [])
    return ServerProcess("kvserver", cmd, port, dirpath, KVSERVER_READY)


def redis_persistence_args(policy: str) -> list[str]:
    """Redis flags matching a kvserver appendfsync policy.

    ``always``/``everysec``: the AOF with that fsync policy (kvserver's WAL
    is the same idea); ``no``: no persistence at all (kvserver still writes
    its WAL but never syncs it, which is the closest it gets).
    """
    if policy == "no":
        return ["--save", "", "--appendonly", "no"]
    return ["--save", "", "--appendonly", "yes", "--appendfsync", policy]


def redis_server(port: int, dirpath: str, policy: str,
                 extra: list[str] | None = None) -> ServerProcess:
    cmd = ["redis-server", "--port", str(port), "--bind", LOOPBACK, "--dir", dirpath,
           "--daemonize", "no", "--logfile", "", "--protected-mode", "no"]
    cmd += redis_persistence_args(policy) + (extra or [])
    return ServerProcess("redis", cmd, port, dirpath, REDIS_READY)


def wal_thread_server(port: int, dirpath: str, policy: str = "always") -> ServerProcess:
    """kvserver built with Server(sync_in_thread=True): see bench/wal_thread.py."""
    return ServerProcess(
        "kvserver-wal-thread",
        [sys.executable, "-m", "bench.wal_thread", "--port", str(port), "--bind", LOOPBACK,
         "--dir", dirpath, "--appendfsync", policy], port, dirpath, KVSERVER_READY)


def onesync_server(port: int, dirpath: str) -> ServerProcess:
    cmd = [sys.executable, "-m", "bench.onesync", "--port", str(port), "--dir", dirpath]
    return ServerProcess("onesync", cmd, port, dirpath, KVSERVER_READY)


def settle() -> None:
    """Flush dirty pages left by the previous run so they do not land in this run's fsyncs."""
    os.sync()


# --- redis-benchmark ---------------------------------------------------------------


@dataclass
class BenchRun:
    """One redis-benchmark result (its --csv line)."""

    test: str
    rps: float
    avg_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    seconds: float
    requests: int
    #: Server CPU (user + system, all threads) per request, in microseconds;
    #: filled in by the caller that knows the server's PID.
    cpu_us: float = float("nan")


def redis_benchmark(port: int, test: str, requests: int, clients: int = 50, pipeline: int = 1,
                    data_size: int = 3, random_keys: int = 0, timeout: float = 120.0,
                    command: tuple[str, ...] = ()) -> BenchRun:
    """Run one redis-benchmark test (or ``command``, one given request); raises BenchError
    on failure or timeout."""
    cmd = ["redis-benchmark", "-h", LOOPBACK, "-p", str(port), "-n", str(requests),
           "-c", str(clients), "-P", str(pipeline), "-d", str(data_size), "--csv"]
    if not command:
        cmd[3:3] = ["-t", test]
    if random_keys:
        cmd += ["-r", str(random_keys)]
    cmd += list(command)
    started = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError(f"redis-benchmark {test} -n {requests} -c {clients} -P {pipeline} "
                         f"passed its {timeout:.0f} s limit and was killed") from None
    seconds = time.perf_counter() - started
    rows = [r for r in csv.reader(io.StringIO(done.stdout)) if r]
    if done.returncode != 0 or len(rows) < 2:
        raise BenchError(f"redis-benchmark failed ({done.returncode}): "
                         f"{(done.stderr or done.stdout).strip()[-500:]}")
    if "Error from server" in done.stderr + done.stdout:
        # redis-benchmark prints an error reply and goes on (or stops); a row
        # whose server answers errors measures nothing.
        line = next(x for x in (done.stderr + done.stdout).splitlines() if "Error from server" in x)
        raise BenchError(f"redis-benchmark {test}: {line.strip()[:300]}")
    header = rows[0]
    # Some tests run a preparatory one first ("LPUSH (needed to benchmark
    # LRANGE)" before "LRANGE_100 (first 100 elements)"): take the test's own row.
    mine = [r for r in rows[1:] if r[0].split(" ")[0].lower() == test.lower()]
    values = dict(zip(header, mine[-1] if mine else rows[-1]))

    def f(name: str) -> float:
        try:
            return float(values.get(name, "nan"))
        except ValueError:
            return float("nan")
    return BenchRun(test=values.get("test", test), rps=f("rps"), avg_ms=f("avg_latency_ms"),
                    p50_ms=f("p50_latency_ms"), p99_ms=f("p99_latency_ms"),
                    max_ms=f("max_latency_ms"), seconds=seconds, requests=requests)


# --- bulk loading ------------------------------------------------------------------


def resp_command(*args: bytes) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def key16(i: int) -> bytes:
    """The i-th 16-byte key of the 1M-key data set."""
    return b"k:%014d" % i


def value16(i: int) -> bytes:
    return b"v:%014d" % i


def write_set_file(path: str, pairs) -> int:
    """Write ``SET key value`` requests as RESP into ``path``; returns the count."""
    count = 0
    with open(path, "wb") as f:
        chunk = []
        for key, value in pairs:
            chunk.append(b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n"
                         % (len(key), key, len(value), value))
            count += 1
            if len(chunk) >= 100_000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return count


def script_load(port: int, body: str, timeout: float = 30.0) -> str:
    """SCRIPT LOAD ``body`` with redis-cli; returns its SHA1. Raises BenchError."""
    try:
        done = subprocess.run(["redis-cli", "-h", LOOPBACK, "-p", str(port), "SCRIPT", "LOAD",
                               body], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise BenchError("redis-cli SCRIPT LOAD timed out") from None
    sha = done.stdout.strip()
    if done.returncode != 0 or len(sha) != 40:
        raise BenchError(f"SCRIPT LOAD failed: {(done.stdout + done.stderr).strip()[-400:]}")
    return sha


def pipe_load(port: int, path: str, expected: int, timeout: float = 600.0) -> float:
    """Send a RESP file with ``redis-cli --pipe``; returns seconds. Checks the reply count."""
    started = time.perf_counter()
    with open(path, "rb") as f:
        try:
            done = subprocess.run(["redis-cli", "-h", LOOPBACK, "-p", str(port), "--pipe"],
                                  stdin=f, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError(f"redis-cli --pipe of {expected} requests passed its "
                             f"{timeout:.0f} s limit and was killed") from None
    seconds = time.perf_counter() - started
    m = re.search(r"errors: (\d+), replies: (\d+)", done.stdout)
    if done.returncode != 0 or not m or int(m.group(1)) or int(m.group(2)) != expected:
        raise BenchError(f"redis-cli --pipe failed: {(done.stdout + done.stderr).strip()[-400:]}")
    return seconds


# --- a tiny blocking RESP2 client (probes, INFO, PING) --------------------------------


class ReplyError(Exception):
    pass


class MiniClient:
    """Just enough of a client to probe a server; independent of kvserver's own code."""

    def __init__(self, port: int, timeout: float = CLIENT_TIMEOUT) -> None:
        self.sock = socket.create_connection((LOOPBACK, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "MiniClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, *args: bytes | str | int):
        """Send one command and return its reply (ReplyError instances for errors)."""
        self.send_raw(resp_command(*[a if isinstance(a, bytes) else str(a).encode()
                                     for a in args]))
        return self.read_reply()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _line(self) -> bytes:
        while True:
            nl = self.buf.find(b"\r\n")
            if nl >= 0:
                line, self.buf = self.buf[:nl], self.buf[nl + 2:]
                return line
            self._fill()

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise BenchError("server closed the connection")
        self.buf += data

    def read_reply(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return ReplyError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            if size < 0:
                return None
            while len(self.buf) < size + 2:
                self._fill()
            data, self.buf = self.buf[:size], self.buf[size + 2:]
            return data
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.read_reply() for _ in range(count)]
        raise BenchError(f"unexpected reply line {line[:60]!r}")

    def info(self, section: str) -> dict[str, str]:
        text = self.call("INFO", section)
        if not isinstance(text, bytes):
            raise BenchError(f"INFO {section} failed: {text}")
        out = {}
        for line in text.decode().splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                out[k] = v.strip()
        return out


# --- data directories ------------------------------------------------------------------


class Workdir:
    """Fresh data directories under one temporary base, removed at the end."""

    def __init__(self, base: str | None = None, keep: bool = False) -> None:
        self.base = tempfile.mkdtemp(prefix="kvbench-", dir=base)
        self.keep = keep
        self._n = 0

    def fresh(self, label: str) -> str:
        self._n += 1
        path = os.path.join(self.base, f"{self._n:04d}-{label}")
        os.makedirs(path)
        return path

    def remove(self, path: str) -> None:
        if not self.keep:
            shutil.rmtree(path, ignore_errors=True)

    def cleanup(self) -> None:
        if not self.keep:
            shutil.rmtree(self.base, ignore_errors=True)
