"""The pub/sub fan-out benchmark: one publisher, 50 subscribers, messages/s delivered.

Per run: a fresh server (kvserver at ``appendfsync always``, Redis with its
``always`` flags, as the rows), a child process holding the 50 subscriber
connections (one channel; it counts the bytes each socket receives and
knows the size of one message frame), and the publisher in this process
sending PUBLISH pipelined PIPELINE at a time and reading the replies. The
figure is (publishes x subscribers) / seconds from the first PUBLISH sent to
the last frame received by the last subscriber. Rounds alternate Redis and
kvserver, and the ratio is taken within each round, as for the rows.
"""

from __future__ import annotations

import multiprocessing
import selectors
import socket
import statistics
import time
from typing import Callable

from .procs import (LOOPBACK, BenchError, Workdir, free_port, kvserver_server, redis_server,
                    settle)

Log = Callable[[str], None]

SUBSCRIBERS = 50
CHANNEL = b"bench"
PAYLOAD = b"p" * 16
#: PUBLISH requests per pipelined batch (the publisher reads the replies between batches).
PIPELINE = 100
#: Publishes per run (each delivered to every subscriber).
MESSAGES = 20_000
QUICK_MESSAGES = 4_000
RUN_TIMEOUT = 120.0


def _command(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


FRAME = (b"*3\r\n$7\r\nmessage\r\n" + b"$%d\r\n%s\r\n" % (len(CHANNEL), CHANNEL)
         + b"$%d\r\n%s\r\n" % (len(PAYLOAD), PAYLOAD))
CONFIRM = b"*3\r\n$9\r\nsubscribe\r\n$%d\r\n%s\r\n:1\r\n" % (len(CHANNEL), CHANNEL)


def _subscribers(port: int, expect: int, conn) -> None:
    """The child: SUBSCRIBERS connections; reports 'ready', then the time the last byte came."""
    try:
        socks = []
        for _ in range(SUBSCRIBERS):
            s = socket.create_connection((LOOPBACK, port), timeout=RUN_TIMEOUT)
            s.sendall(_command(b"SUBSCRIBE", CHANNEL))
            got = b""
            while len(got) < len(CONFIRM):
                got += s.recv(len(CONFIRM) - len(got))
            if got != CONFIRM:
                raise BenchError(f"unexpected SUBSCRIBE reply {got!r}")
            s.setblocking(False)
            socks.append(s)
        conn.send("ready")
        want = expect * len(FRAME)
        left = {s: want for s in socks}
        sel = selectors.DefaultSelector()
        for s in socks:
            sel.register(s, selectors.EVENT_READ)
        deadline = time.monotonic() + RUN_TIMEOUT
        while left:
            if time.monotonic() > deadline:
                raise BenchError(f"subscribers still wait for {sum(left.values())} bytes")
            for key, _ in sel.select(1.0):
                s = key.fileobj
                data = s.recv(1 << 20)
                if not data:
                    raise BenchError("a subscriber was disconnected")
                left[s] -= len(data)
                if left[s] <= 0:
                    sel.unregister(s)
                    del left[s]
        conn.send(("done", time.monotonic()))
        for s in socks:
            s.close()
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        conn.send(("error", f"{type(exc).__name__}: {exc}"))


def run_once(kind: str, workdir: Workdir, messages: int) -> float:
    """Messages delivered per second for one fresh ``kind`` server. Raises BenchError."""
    port = free_port()
    d = workdir.fresh(f"pubsub-{kind}")
    server = (kvserver_server(port, d, "always") if kind == "kvserver"
              else redis_server(port, d, "always"))
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_subscribers, args=(port, messages, child), daemon=True)
    try:
        server.start()
        settle()
        proc.start()
        if not parent.poll(RUN_TIMEOUT) or parent.recv() != "ready":
            raise BenchError("subscribers did not connect")
        pub = socket.create_connection((LOOPBACK, port), timeout=RUN_TIMEOUT)
        pub.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        batch = _command(b"PUBLISH", CHANNEL, PAYLOAD) * PIPELINE
        reply = b":%d\r\n" % SUBSCRIBERS
        started = time.monotonic()
        for _ in range(messages // PIPELINE):
            pub.sendall(batch)
            got = b""
            while len(got) < len(reply) * PIPELINE:
                chunk = pub.recv(65536)
                if not chunk:
                    raise BenchError("the publisher was disconnected")
                got += chunk
            if got != reply * PIPELINE:
                raise BenchError(f"unexpected PUBLISH replies {got[:40]!r}")
        pub.close()
        if not parent.poll(RUN_TIMEOUT):
            raise BenchError("subscribers did not finish")
        result = parent.recv()
        if result[0] != "done":
            raise BenchError(str(result[1]))
        return messages // PIPELINE * PIPELINE * SUBSCRIBERS / (result[1] - started)
    finally:
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        server.stop()
        workdir.remove(d)


def fanout(workdir: Workdir, rounds: int, quick: bool, log: Log) -> dict:
    """Rounds of (Redis, kvserver) runs; medians and per-round ratios."""
    messages = QUICK_MESSAGES if quick else MESSAGES
    out: dict = {"subscribers": SUBSCRIBERS, "messages": messages, "pipeline": PIPELINE,
                 "kvserver": [], "redis": [], "ratios": [], "errors": []}
    for rnd in range(1, rounds + 1):
        pair = {}
        for kind in ("redis", "kvserver"):
            try:
                rate = run_once(kind, workdir, messages)
            except BenchError as exc:
                out["errors"].append(f"round {rnd} {kind}: {exc}")
                log(f"  [round {rnd}/{rounds}] pubsub {kind:<8} FAILED: {exc}")
                continue
            pair[kind] = rate
            out[kind].append(rate)
            log(f"  [round {rnd}/{rounds}] pubsub {kind:<8} {rate:>12,.0f} messages/s delivered "
                f"({messages:,} PUBLISH x {SUBSCRIBERS} subscribers)")
        if len(pair) == 2:
            out["ratios"].append(pair["kvserver"] / pair["redis"])
    for kind in ("kvserver", "redis"):
        out[f"{kind}_median"] = statistics.median(out[kind]) if out[kind] else None
    return out
