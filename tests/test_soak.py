"""Soak: hundreds of clients at once against a real process, bounded in time.

Clients pipeline writes and read the acknowledgements, close abruptly in the
middle of a request (with a reset), send slowloris-style partial requests a
few bytes at a time, and send garbage. Afterwards the server answers PING,
its descriptor count (/proc/<pid>/fd) and memory are back near where they
started, and every write it acknowledged is there, also after a kill -9.
"""

from __future__ import annotations

import asyncio
import os
import random
import resource
import socket
import struct
import time

import pytest

#: Clients at once. Each costs a descriptor here and one in the server.
CLIENTS = 500
#: Waves of CLIENTS clients, one after another.
WAVES = 3
#: The whole storm stops by then, finished or not.
STORM_SECONDS = 12.0
#: "Back near baseline": a few descriptors of slack for what is closing, and
#: memory for the keys written plus what the allocator keeps.
FD_SLACK = 4
RSS_SLACK = 48 * 1024 * 1024

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc")


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def resp(*argv: bytes) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


async def read_replies(reader: asyncio.StreamReader, n: int) -> list[bytes]:
    """n simple/error/integer replies (one line each)."""
    return [await reader.readline() for _ in range(n)]


def abort(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (SO_LINGER 0), as a crashed client or a dropped NAT entry would."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def pipeliner(port: int, wid: int, acked: dict[bytes, bytes], rng: random.Random) -> None:
    for round_ in range(3):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        keys = [b"ack:%d:%d:%d" % (wid, round_, i) for i in range(rng.randint(1, 40))]
        writer.write(b"".join(resp(b"SET", k, k[::-1]) for k in keys))
        replies = await read_replies(reader, len(keys))
        for k, r in zip(keys, replies):
            if r == b"+OK\r\n":
                acked[k] = k[::-1]
        writer.close()


async def abrupt(port: int, wid: int, rng: random.Random) -> None:
    for _ in range(3):
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        whole = b"".join(resp(b"SET", b"maybe:%d:%d" % (wid, i), b"x" * 100) for i in range(20))
        writer.write(whole[: rng.randint(1, len(whole) - 1)])  # stop inside a request
        await writer.drain()
        await asyncio.sleep(rng.random() * 0.2)
        abort(writer)


async def slowloris(port: int, wid: int, rng: random.Random, deadline: float) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    request = resp(b"SET", b"slow:%d" % wid, b"y" * 50)
    cut = len(request) if rng.random() < 0.5 else rng.randint(1, len(request) - 1)
    for i in range(0, cut, 3):
        if time.monotonic() > deadline:
            break
        writer.write(request[i:min(i + 3, cut)])
        await asyncio.sleep(0.05)
    if cut == len(request) and time.monotonic() < deadline:
        assert await reader.readline() == b"+OK\r\n"
        writer.close()
    else:
        abort(writer)  # gives up mid-request


async def garbage(port: int, rng: random.Random) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"*1\r\n$4\r\nPING\r\n" + rng.choice([b"*x\r\n", b"*1\r\nX\r\n", b"*2\r\n$-7\r\n",
                                                       b"\"unbalanced\r\n"]) * 3)
    data = await reader.read()  # the server closes after the protocol error
    assert data.startswith(b"+PONG\r\n-ERR Protocol error"), data
    writer.close()


async def storm(port: int, acked: dict[bytes, bytes], wave: int) -> None:
    rng = random.Random(1234 + wave)
    deadline = time.monotonic() + STORM_SECONDS / WAVES
    tasks = []
    for wid in range(wave * CLIENTS, (wave + 1) * CLIENTS):
        kind = wid % 4
        if kind == 0:
            tasks.append(pipeliner(port, wid, acked, random.Random(wid)))
        elif kind == 1:
            tasks.append(abrupt(port, wid, random.Random(wid)))
        elif kind == 2:
            tasks.append(slowloris(port, wid, random.Random(wid), deadline))
        else:
            tasks.append(garbage(port, random.Random(wid)))
    rng.shuffle(tasks)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True),
                                     STORM_SECONDS / WAVES + 5)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors[:3]


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise AssertionError(what)
        time.sleep(0.05)
    return value


def check_acked(port: int, acked: dict[bytes, bytes]) -> None:
    keys = list(acked)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        for i in range(0, len(keys), 500):
            batch = keys[i:i + 500]
            s.sendall(resp(b"MGET", *batch))
            assert f.readline() == b"*%d\r\n" % len(batch)
            for k in batch:
                header = f.readline()
                assert header != b"$-1\r\n", f"acknowledged write lost: {k!r}"
                assert f.read(int(header[1:]) + 2)[:-2] == acked[k]


def test_soak_many_clients(kv_process) -> None:
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < CLIENTS * 2 + 100:
        pytest.skip(f"ulimit -n is {soft}; this test needs {CLIENTS * 2 + 100}")
    server = kv_process()
    pid = server.proc.pid
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
    time.sleep(0.2)
    base_fds, base_rss = fd_count(pid), rss(pid)

    acked: dict[bytes, bytes] = {}
    started = time.monotonic()
    peak = 0

    async def run() -> None:
        nonlocal peak
        sampling = True

        async def sample() -> None:
            nonlocal peak
            while sampling:
                peak = max(peak, fd_count(pid))
                await asyncio.sleep(0.02)
        sampler = asyncio.create_task(sample())
        for wave in range(WAVES):
            await storm(server.port, acked, wave)
        sampling = False
        await sampler
    asyncio.run(run())
    assert time.monotonic() - started < STORM_SECONDS + 5 * WAVES
    assert peak - base_fds > CLIENTS // 3, f"only {peak - base_fds} clients were open at once"
    assert len(acked) > 1000, "too few writes were acknowledged to mean anything"

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"PING\r\n")
        assert s.recv(100) == b"+PONG\r\n"
        # Every client the storm opened is gone (this one is the +1).
        wait_until(lambda: fd_count(pid) <= base_fds + 1 + FD_SLACK, 10,
                   f"descriptors did not come back: {fd_count(pid)} vs {base_fds}")
        s.sendall(b"INFO clients\r\n")
        time.sleep(0.1)
        assert b"connected_clients:1\r\n" in s.recv(65536)
    assert rss(pid) < base_rss + RSS_SLACK, (rss(pid), base_rss)
    check_acked(server.port, acked)

    # Acknowledged means durable: all of it survives kill -9.
    server.kill9()
    again = kv_process(data_dir=server.dir)
    check_acked(again.port, acked)
