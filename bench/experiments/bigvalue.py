"""``python -m bench.experiments.bigvalue``: one huge value through SET and GET, and what it costs others.

Starts a fresh server process (kvserver, or redis-server for comparison),
then with redis-py: SET a value of ``--mb`` MiB, then GET it back. For each
command it reports the wall time, the server's peak RSS while it ran
(``VmHWM`` from ``/proc/PID/status``, reset before each command by writing
``5`` to ``/proc/PID/clear_refs``) and the worst latency another client saw
for a PING sent in a loop meanwhile (the stall a big value inflicts on
everybody else). Bounded: two commands and one server per run.

    python -m bench.experiments.bigvalue                      # kvserver, 400 MiB, appendfsync always
    python -m bench.experiments.bigvalue --server redis       # redis-server 7, AOF always, same value
    python -m bench.experiments.bigvalue --mb 64 --appendfsync no
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import multiprocessing
import time

import redis


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(kind: str, port: int, workdir: str, fsync: str) -> subprocess.Popen:
    if kind == "redis":
        argv = [shutil.which("redis-server") or "redis-server", "--port", str(port),
                "--bind", "127.0.0.1", "--dir", workdir, "--save", "",
                "--appendonly", "yes", "--appendfsync", fsync]
    else:
        argv = [sys.executable, "-m", "kvserver", "--port", str(port), "--bind", "127.0.0.1",
                "--dir", os.path.join(workdir, "data"), "--appendfsync", fsync]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            if redis.Redis(port=port, socket_timeout=1).ping():
                return proc
        except redis.RedisError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{kind} did not start")
        time.sleep(0.05)


def _reset_peak(pid: int) -> None:
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def _status_mb(pid: int, field: str) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def _peak_mb(pid: int) -> float:
    return _status_mb(pid, "VmHWM")


def _ping_loop(port: int, ready, stop, worst, count) -> None:
    client = redis.Redis(port=port, socket_timeout=300)
    client.ping()
    ready.set()
    while not stop.is_set():
        t0 = time.perf_counter()
        client.ping()
        worst.value = max(worst.value, time.perf_counter() - t0)
        count.value += 1
        time.sleep(0.001)


class _Pinger:
    """PINGs in a loop from another process (so the big client's GIL does not
    count) on its own connection; keeps the worst round trip."""

    def __init__(self, port: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.ready, self.stop = ctx.Event(), ctx.Event()
        self.worst_s, self.pings = ctx.Value("d", 0.0), ctx.Value("i", 0)
        self.proc = ctx.Process(target=_ping_loop, args=(port, self.ready, self.stop,
                                                         self.worst_s, self.pings), daemon=True)

    def start(self) -> None:
        self.proc.start()
        self.ready.wait(30)

    def join(self, timeout: float) -> None:
        self.stop.set()
        self.proc.join(timeout)

    @property
    def worst(self) -> float:
        return self.worst_s.value

    @property
    def count(self) -> int:
        return self.pings.value


def _measure(pid: int, port: int, what: str, fn) -> dict:
    before = _status_mb(pid, "VmRSS")
    _reset_peak(pid)
    pinger = _Pinger(port)
    pinger.start()
    time.sleep(0.05)
    t0 = time.perf_counter()
    result = fn()
    elapsed = time.perf_counter() - t0
    pinger.join(120)
    row = {"what": what, "seconds": elapsed, "peak_rss_mb": _peak_mb(pid), "rss_before_mb": before,
           "worst_ping_ms": pinger.worst * 1000, "pings": pinger.count}
    return row, result


def _idle(r: redis.Redis) -> None:
    """Wait (bounded) until no checkpoint/BGSAVE runs."""
    deadline = time.monotonic() + 300
    while r.info("persistence").get("rdb_bgsave_in_progress") and time.monotonic() < deadline:
        time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.experiments.bigvalue",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--server", choices=("kvserver", "redis"), default="kvserver")
    ap.add_argument("--mb", type=int, default=400, help="value size in MiB")
    ap.add_argument("--appendfsync", default="always", choices=("always", "everysec", "no"))
    args = ap.parse_args(argv)
    value = os.urandom(1024) * (args.mb * 1024)
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="bigvalue-") as workdir:
        proc = _start(args.server, port, workdir, args.appendfsync)
        try:
            r = redis.Redis(port=port, socket_timeout=300)
            r.ping()
            print(f"{args.server}, {args.mb} MiB value, appendfsync {args.appendfsync}; "
                  f"server RSS before: {_peak_mb(proc.pid):.0f} MB")
            rows = []
            row, _ = _measure(proc.pid, port, "SET", lambda: r.set("big", value))
            rows.append(row)
            # kvserver checkpoints once the WAL has grown past
            # checkpoint-wal-size (64 MB by default): a big SET starts one.
            # Wait for it (and measure it) so GET is measured on its own.
            row, _ = _measure(proc.pid, port, "checkpoint after SET", lambda: _idle(r))
            rows.append(row)
            row, got = _measure(proc.pid, port, "GET", lambda: r.get("big"))
            rows.append(row)
            if got != value:
                print("GET returned a different value!")
                return 1
            del got
            for row in rows:
                print(f"{row['what']}: {row['seconds']:.2f} s, peak RSS {row['peak_rss_mb']:.0f} MB"
                      f" (from {row['rss_before_mb']:.0f} MB),"
                      f" worst PING of another client {row['worst_ping_ms']:.0f} ms"
                      f" ({row['pings']} PINGs)")
        finally:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.wait(10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
