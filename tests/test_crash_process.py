"""``kill -9`` against a real kvserver process, then restart on the same directory.

Each client thread works on its own keys, so its acknowledged operations
pin down exactly what must be there after the crash: the keys of client c
must equal the effect of its first n operations, for some n between the
number acknowledged and the number sent. A reader's value must survive a
``kill -9`` right after the reply. Every run is bounded in time and seeded.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from conftest import spawn_kvserver
from kvserver.check import main as check_main
from kvserver.exitcodes import EXIT_DATA
from kvserver.fs import OSFileSystem
from kvserver.protocol import NEED_DATA, ReplyError, ReplyParser, encode_command
from kvserver.wal import (BATCH_HEADER_SIZE, VERSION, list_segments, scan_segment,
                          segment_version)

#: Checkpoint often, so kills also land in the middle of checkpoints.
SERVER_ARGS = ("--checkpoint-wal-size", "24kb")


class SyncClient:
    """A blocking RESP client on a raw socket (nothing sent that we did not ask for)."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.parser = ReplyParser()

    def send(self, *commands) -> None:
        self.sock.sendall(b"".join(encode_command(list(c)) for c in commands))

    def reply(self):
        while True:
            value = self.parser.next_reply()
            if value is not NEED_DATA:
                return value
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.parser.feed(data)

    def call(self, *args):
        self.send(args)
        return self.reply()

    def close(self) -> None:
        self.sock.close()


def client_op(c: int, i: int) -> tuple:
    """Client c's i-th operation, on its own keys only."""
    kind = (i * 7 + c * 3) % 5
    if kind in (0, 1):
        return ("INCR", f"n{c}")
    if kind == 2:
        return ("APPEND", f"a{c}", f"{i},")
    if kind == 3:
        return ("SET", f"s{c}", f"{i}")
    return ("DEL", f"s{c}")


def client_state(c: int, count: int) -> dict:
    """The keys of client c after its first ``count`` operations."""
    n, a, s = 0, b"", None
    for i in range(count):
        op = client_op(c, i)
        if op[0] == "INCR":
            n += 1
        elif op[0] == "APPEND":
            a += op[2].encode()
        elif op[0] == "SET":
            s = op[2].encode()
        else:
            s = None
    return {f"n{c}": b"%d" % n if n else None, f"a{c}": a or None, f"s{c}": s}


class Worker(threading.Thread):
    """Runs client c's operations, ``depth`` at a time, until the server dies or time runs out."""

    def __init__(self, port: int, c: int, depth: int, deadline: float) -> None:
        super().__init__(daemon=True, name=f"client-{c}")
        self.port, self.c, self.depth, self.deadline = port, c, depth, deadline
        self.sent = self.acked = 0
        self.error: str | None = None

    def run(self) -> None:
        try:
            client = SyncClient(self.port)
        except OSError:
            return
        try:
            while time.monotonic() < self.deadline:
                batch = [client_op(self.c, self.sent + j) for j in range(self.depth)]
                client.send(*batch)
                self.sent += len(batch)
                for _ in batch:
                    value = client.reply()
                    if isinstance(value, ReplyError):
                        self.error = str(value)
                        return
                    self.acked += 1
        except OSError:
            pass  # the kill: whatever was sent and not answered is in doubt
        finally:
            client.close()


def read_keys(port: int, keys: list[str]) -> dict:
    client = SyncClient(port)
    try:
        return dict(zip(keys, client.call("MGET", *keys)))
    finally:
        client.close()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill9_under_load_many_clients(kv_process, seed):
    rng = random.Random(seed)
    clients = 12
    server = kv_process(*SERVER_ARGS)
    deadline = time.monotonic() + 10            # a bound, never reached: the kill comes first
    workers = [Worker(server.port, c, depth=1 if c % 2 else 4, deadline=deadline)
               for c in range(clients)]
    for w in workers:
        w.start()
    time.sleep(rng.uniform(0.4, 1.2))
    server.kill9()
    for w in workers:
        w.join(15)
        assert not w.is_alive() and w.error is None, w.error
    assert sum(w.acked for w in workers) > 50, "the load never got going"
    # A directory left by kill -9 is clean or has a torn tail: check says 0.
    assert check_main([server.dir]) == 0

    restarted = kv_process(*SERVER_ARGS)
    got = read_keys(restarted.port, [f"{k}{c}" for c in range(clients) for k in "nas"])
    for w in workers:
        mine = {k: got[k] for k in (f"n{w.c}", f"a{w.c}", f"s{w.c}")}
        allowed = [n for n in range(w.acked, w.sent + 1) if client_state(w.c, n) == mine]
        assert allowed, (f"client {w.c}: acknowledged {w.acked} of {w.sent} operations, "
                         f"recovered {mine} matches no prefix from {w.acked} on")
    assert restarted.terminate() == 0


def test_reader_never_sees_value_lost_by_crash(kv_process):
    rng = random.Random(7)
    server = kv_process(*SERVER_ARGS)
    floor = 0
    for round_ in range(3):
        stop = threading.Event()

        def write_forever(port: int = server.port, start: int = floor + 1) -> None:
            # Pipelined SETs of ever larger numbers, 32 in flight.
            try:
                client = SyncClient(port)
                i = start
                while not stop.is_set():
                    client.send(*[("SET", "x", str(i + j)) for j in range(32)])
                    for _ in range(32):
                        client.reply()
                    i += 32
            except OSError:
                pass

        writer = threading.Thread(target=write_forever, daemon=True)
        writer.start()
        reader = SyncClient(server.port)
        until = time.monotonic() + rng.uniform(0.3, 0.8)
        seen = 0
        while True:
            value = reader.call("GET", "x")
            seen = int(value) if value is not None else 0
            if time.monotonic() >= until and seen > floor:
                server.kill9()                  # at once: this value was just shown to a client
                break
        stop.set()
        writer.join(15)
        reader.close()
        server = kv_process(*SERVER_ARGS)
        after = read_keys(server.port, ["x"])["x"]
        assert after is not None and int(after) >= seen, (round_, seen, after)
        floor = int(after)
    assert server.terminate() == 0


def test_corrupt_wal_refuses_to_start_and_names_the_damage(kv_process):
    """Damage in the middle of the log: the process exits EXIT_DATA (65) naming file, offset and LSN,
    and leaves the directory as it was (never starts empty over existing data)."""
    args = ("--checkpoint-on-shutdown", "no")      # keep everything in the WAL
    server = kv_process(*args)
    client = SyncClient(server.port)
    for i in range(20):
        assert client.call("SET", f"k{i}", "v" * 50) == "OK"
    client.close()
    assert server.terminate() == 0
    [(_first, path)] = list_segments(OSFileSystem(), server.dir)
    with open(path, "rb") as f:
        scan = scan_segment(f.read(), path)
    record = scan.records[9]                        # LSN 10 of 20
    with open(path, "r+b") as f:
        f.seek(record.offset + 30)
        byte = f.read(1)
        f.seek(record.offset + 30)
        f.write(bytes([byte[0] ^ 0x20]))
    before = {name: os.path.getsize(os.path.join(server.dir, name))
              for name in os.listdir(server.dir)}
    broken = spawn_kvserver(server.dir, *args, expect_ready=False)
    try:
        out, _ = broken.proc.communicate(timeout=30)
    finally:
        if broken.proc.poll() is None:
            broken.kill9()
    assert broken.proc.returncode == EXIT_DATA, out
    # The error names the batch the damage is in (each SET was its own batch).
    assert f"{path} at offset {record.offset - BATCH_HEADER_SIZE} (LSN 10)" in out, out
    assert {name: os.path.getsize(os.path.join(server.dir, name))
            for name in os.listdir(server.dir)} == before


def _dir_contents(path: str) -> dict:
    """Every file's bytes, except LOCK (each start takes it and writes its pid there)."""
    out = {}
    for name in sorted(os.listdir(path)):
        if name != "LOCK":
            with open(os.path.join(path, name), "rb") as f:
                out[name] = f.read()
    return out


@pytest.mark.parametrize("damage", ["delete-newest", "cut-newest-to-header", "delete-all-wal"])
def test_lost_wal_tail_refuses_to_start_and_check_agrees(kv_process, damage):
    """Issue 11 item 3, as reported: after kill -9, delete the newest segment (or
    every segment, or cut the newest to its header): the server must refuse,
    naming the file, leave the directory as it was, and ``kvserver check`` say so."""
    args = ("--checkpoint-wal-size", "4kb")         # a few checkpoints and segments
    server = kv_process(*args)
    client = SyncClient(server.port)
    for i in range(300):
        assert client.call("SET", f"k{i}", "v" * 40) == "OK"
    client.close()
    server.kill9()
    segments = list_segments(OSFileSystem(), server.dir)
    assert len(segments) >= 2
    newest = segments[-1][1]
    if damage == "delete-newest":
        os.unlink(newest)
        expect = f"{newest} at offset 0 (LSN {segments[-1][0]})"
    elif damage == "cut-newest-to-header":
        os.truncate(newest, 32)
        expect = f"{newest} at offset 32 (LSN {segments[-1][0]})"
    else:
        for _first, path in segments:
            os.unlink(path)
        expect = f"{segments[0][1]} at offset 0 (LSN {segments[0][0]})"
    before = _dir_contents(server.dir)
    broken = spawn_kvserver(server.dir, *args, expect_ready=False)
    try:
        out, _ = broken.proc.communicate(timeout=30)
    finally:
        if broken.proc.poll() is None:
            broken.kill9()
    assert broken.proc.returncode == EXIT_DATA, out
    assert expect in out, out
    assert _dir_contents(server.dir) == before
    assert check_main([server.dir]) == 1


FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


def test_directory_from_before_the_manifest_starts(kv_process, tmp_path):
    """A directory the previous kvserver wrote (tests/fixtures/v1-kill9: v1
    segments, no MANIFEST, an empty preallocated newest segment) starts, gets its
    MANIFEST (logged once), and from then on a lost tail refuses."""
    data_dir = str(tmp_path / "old")
    shutil.copytree(os.path.join(FIXTURES, "v1-kill9"), data_dir,
                    ignore=shutil.ignore_patterns("README.md"))
    with open(os.path.join(data_dir, "wal-00000000000000000033.log"), "ab") as f:
        f.write(bytes(1 << 20))                     # the preallocated zeros it had
    assert check_main([data_dir]) == 0
    server = kv_process(data_dir=data_dir)
    keys = [f"k{i}" for i in range(1, 31)] + ["n"]
    got = read_keys(server.port, keys)
    assert got == {**{f"k{i}": b"v%d" % i for i in range(2, 31)}, "k1": b"v1-x", "n": b"5"}
    assert sum("a directory made before kvserver kept a MANIFEST" in line
               for line in server.log) == 1
    client = SyncClient(server.port)
    assert client.call("SET", "after", "1") == "OK"
    client.close()
    assert server.terminate() == 0
    assert os.path.exists(os.path.join(data_dir, "MANIFEST"))
    # The empty v1 segment went; LSN 33 ("after") starts a new, current-format
    # segment of that name (an old-format segment is never appended to).
    with open(os.path.join(data_dir, "wal-00000000000000000033.log"), "rb") as f:
        assert segment_version(f.read()) == VERSION
    again = kv_process(data_dir=data_dir)
    assert read_keys(again.port, ["after", "k1"]) == {"after": b"1", "k1": b"v1-x"}
    assert not any("MANIFEST" in line for line in again.log)
    again.kill9()
    newest = list_segments(OSFileSystem(), data_dir)[-1][1]
    os.unlink(newest)
    broken = spawn_kvserver(data_dir, expect_ready=False)
    out, _ = broken.proc.communicate(timeout=30)
    assert broken.proc.returncode == EXIT_DATA and f"{newest} at offset 0" in out, out


STRACE = shutil.which("strace")


@pytest.mark.skipif(STRACE is None, reason="strace is not installed (.ci/run installs it)")
@pytest.mark.parametrize("syscall,when", [("fdatasync", 30), ("fdatasync", 70),
                                          ("pwrite64", 50)])
def test_injected_wal_error_under_load_stops_and_restart_has_every_ack(tmp_path, syscall, when):
    """Issue 11 item 2, as reported: ``strace -e inject=<syscall>:error=EIO:when=N``
    on a loaded server. The server must exit non-zero without writing another
    batch, and the restart must come up (no LSN gap) with every acknowledged write."""
    from conftest import ROOT, free_port

    data_dir = str(tmp_path / "data")
    port = free_port()
    # (-e trace=none would turn the injection off too.)
    cmd = [STRACE, "-f", "-qq", "-o", os.devnull, "-e", f"trace={syscall}",
           "-e", f"inject={syscall}:error=EIO:when={when}",
           sys.executable, "-m", "kvserver", *SERVER_ARGS, "--port", str(port),
           "--bind", "127.0.0.1", "--dir", data_dir]
    proc = subprocess.Popen(cmd, cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    server_pid = None
    try:
        head = []
        for line in proc.stdout:  # bounded: the server prints its pid, then "ready"
            head.append(line)
            if " pid " in line and "listening" in line:
                server_pid = int(line.split(" pid ")[1].split()[0])
            if "ready to accept connections" in line:
                break
        assert server_pid is not None and proc.poll() is None, "".join(head)
        rest: list[str] = []
        pump = threading.Thread(target=lambda: rest.extend(proc.stdout), daemon=True)
        pump.start()
        acked: dict[str, set[str]] = {}
        lock = threading.Lock()

        def load(c: int) -> None:
            try:
                client = SyncClient(port, timeout=20)
            except OSError:
                return
            try:
                for rnd in range(400):
                    keys = [f"c{c}.{rnd}.{j}" for j in range(4)]
                    client.send(*[("SET", k, "v") for k in keys])
                    for k in keys:
                        if client.reply() == "OK":
                            with lock:
                                acked.setdefault("keys", set()).add(k)
            except (OSError, ConnectionError):
                pass
            finally:
                client.close()

        threads = [threading.Thread(target=load, args=(c,)) for c in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        try:
            # A fail-stop may still be exiting (its clients saw the error
            # first): a SIGTERM then would race it (seen under load: -15).
            proc.wait(10 if "fail-stop" in "".join(rest) else 0.5)
        except subprocess.TimeoutExpired:
            # The one injected error hit something that is not fatal (a
            # checkpoint's sync): stop the server; the restart must still hold
            # everything. (SIGTERM to the server itself: strace only forwards.)
            os.kill(server_pid, signal.SIGTERM)
        proc.wait(60)
        pump.join(10)
        out = "".join(head + rest)
        if "fail-stop" in out:
            assert proc.returncode == 1, out[-2000:]
        else:  # the injected error hit a checkpoint (not fatal): say so
            assert "checkpoint at LSN" in out and "failed" in out, out[-2000:]
        keys = acked.get("keys", set())
        assert keys, "no write was acknowledged before the failure"
        # The restart (no injection) must accept its own directory and hold
        # every acknowledged write.
        again = spawn_kvserver(data_dir, port=free_port())
        try:
            got = read_keys(again.port, sorted(keys))
            missing = [k for k in keys if got.get(k) != b"v"]
            assert not missing, f"{len(missing)} of {len(keys)} acknowledged writes lost"
        finally:
            again.terminate()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        if server_pid is not None:
            try:
                os.kill(server_pid, signal.SIGKILL)
            except ProcessLookupError:
                pass



class UnitWorker:
    """Client c runs units (an EXEC, a script...) in a thread: unit i sets x{c},
    y{c} and pad{c} = str(i) * (1 + (i*37 + c) % 400) to i and INCRs n{c}, all in
    one unit, counting ``sent`` and ``acked`` (see kill9_keeps_units_whole).
    A subclass says how to send unit i (:meth:`send`) and whether its reply is
    right (:meth:`check`: None, or what was wrong)."""

    def __init__(self, port: int, c: int) -> None:
        self.port, self.c = port, c
        self.sent = self.acked = 0
        self.error = None
        self.thread = threading.Thread(target=self.run, daemon=True)

    def prepare(self, client: "SyncClient") -> None:
        """Once per connection, before the first unit."""

    def send(self, client: "SyncClient", i: int) -> None:
        raise NotImplementedError

    def check(self, client: "SyncClient", i: int) -> str | None:
        raise NotImplementedError

    def run(self) -> None:
        try:
            client = SyncClient(self.port)
        except OSError:
            return
        try:
            self.prepare(client)
            for i in range(1, 100000):
                self.send(client, i)
                self.sent = i
                self.error = self.check(client, i)
                if self.error is not None:
                    return
                self.acked = i
        except OSError:
            pass
        finally:
            client.close()


def kill9_keeps_units_whole(kv_process, worker, clients: int, min_acked: int) -> None:
    """kill -9 under ``clients`` workers (``worker(port, c)``: a thread that runs
    units writing x<c>, y<c> and n<c> = i and pad<c> = str(i) * (1 + (i*37 + c) % 400),
    counting ``sent`` and ``acked``), then restart: every acknowledged unit is
    kept and none is kept in part (EXEC and scripts share this check)."""
    server = kv_process(*SERVER_ARGS)
    workers = [worker(server.port, c) for c in range(clients)]
    for w in workers:
        w.thread.start()
    deadline = time.monotonic() + 10
    while sum(w.acked for w in workers) < min_acked and time.monotonic() < deadline:
        time.sleep(0.05)
    server.kill9()
    for w in workers:
        w.thread.join(15)
        assert not w.thread.is_alive() and w.error is None, w.error
    assert sum(w.acked for w in workers) >= min_acked, "the load never got going"
    restarted = kv_process(*SERVER_ARGS)
    keys = [f"{k}{c}" for c in range(clients) for k in ("x", "y", "n", "pad")]
    got = read_keys(restarted.port, keys)
    for w in workers:
        c = w.c
        n = int(got[f"n{c}"] or 0)
        assert w.acked <= n <= w.sent, (c, n, w.acked, w.sent)     # every acked unit kept
        if n:
            assert got[f"x{c}"] == got[f"y{c}"] == str(n).encode(), (c, n, got)
            assert got[f"pad{c}"] == (str(n) * (1 + (n * 37 + c) % 400)).encode()
        else:
            assert got[f"x{c}"] is None and got[f"y{c}"] is None and got[f"pad{c}"] is None
    assert restarted.terminate() == 0
