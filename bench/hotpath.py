"""``python -m bench.hotpath``: server CPU per request on the hottest paths, in process.

No sockets and no client process: a real :class:`~kvserver.server.Server`
(started in a temporary directory, ``appendfsync no``) gets a
:class:`~kvserver.connection.Connection` with a fake transport, and the same
request bytes are handed to ``data_received`` over and over, as the event
loop would after a read. What is timed is exactly the server's work per read:
parse, run, encode, WAL record, write call. Not timed: the event loop, the
socket system calls, the writer's file writes (they run between rounds),
the cyclic GC (off while timing: these requests make no cycles, and its
pauses are only noise; measured the same with it on).

Rows: one request per read (a non-pipelined client) and 16 per read
(``redis-benchmark -P 16``), for GET (a hit), SET and INCR, and EXISTS
(a command the hot path does not take, for comparison). Reported as
microseconds of this thread's CPU time per request (``time.thread_time``:
time the OS gives other processes on a busy box does not count), best of
``--repeat`` rounds. Bounded: about ``--requests`` requests per round per
row (default 200,000), a few seconds per row.

    python -m bench.hotpath                 # every row
    python -m bench.hotpath --requests 50000 --repeat 3 get set
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import tempfile
import time

from kvserver.config import Config
from kvserver.connection import Connection
from kvserver.protocol import encode_command
from kvserver.server import Server

#: name -> (one request, the reply it gets after the first run)
REQUESTS = {
    "get": (encode_command([b"GET", b"key:000000000042"]), b"$3\r\nxxx\r\n"),
    "set": (encode_command([b"SET", b"key:000000000042", b"xxx"]), b"+OK\r\n"),
    "incr": (encode_command([b"INCR", b"counter:1"]), None),
    # Off the hot path, for comparison: the general path's cost.
    "exists": (encode_command([b"EXISTS", b"key:000000000042"]), b":1\r\n"),
}


class FakeTransport:
    """Just enough of asyncio.Transport for a Connection; replies are counted, not kept."""

    def __init__(self) -> None:
        self.written = 0
        self.last = b""

    def get_extra_info(self, name: str, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 6379)}.get(
            name, default)

    def write(self, data: bytes) -> None:
        self.written += len(data)
        self.last = data

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


def _round(conn: Connection, payload: bytes, reads: int) -> float:
    feed = conn.data_received
    gc.disable()
    try:
        started = time.thread_time()
        for _ in range(reads):
            feed(payload)
        return time.thread_time() - started
    finally:
        gc.enable()


async def run(names: list[str], requests: int, repeat: int, pipelines: list[int]) -> list[tuple]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="kv-hotpath-") as tmp:
        server = Server(Config(port=0, bind="127.0.0.1", dir=tmp, appendfsync="no"))
        await server.start()
        try:
            conn = Connection(server)
            transport = FakeTransport()
            conn.connection_made(transport)  # type: ignore[arg-type]
            conn.data_received(encode_command([b"SET", b"key:000000000042", b"xxx"]))
            for name in names:
                request, expect = REQUESTS[name]
                for depth in pipelines:
                    payload = request * depth
                    conn.data_received(payload)
                    if expect is not None:
                        assert transport.last == expect * depth, transport.last[:80]
                    reads = max(1, requests // depth)
                    best = float("inf")
                    for _ in range(repeat):
                        best = min(best, _round(conn, payload, reads))
                        await asyncio.sleep(0.05)  # let the writer drain the WAL records
                    rows.append((name, depth, best / (reads * depth) * 1e6))
        finally:
            await server.stop()
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.hotpath", description=__doc__.split("\n")[0])
    ap.add_argument("commands", nargs="*", metavar="COMMAND",
                    help=f"rows to run: {', '.join(REQUESTS)} (default: all)")
    ap.add_argument("--requests", type=int, default=200_000, help="requests per round per row")
    ap.add_argument("--repeat", type=int, default=5, help="rounds per row (best is kept)")
    ap.add_argument("--pipeline", type=int, nargs="+", default=[1, 16],
                    help="requests per read (default: 1 16)")
    args = ap.parse_args(argv)
    unknown = [c for c in args.commands if c not in REQUESTS]
    if unknown:
        ap.error(f"unknown command {unknown[0]!r}; choose from {', '.join(REQUESTS)}")
    logging.basicConfig(level=logging.WARNING)
    rows = asyncio.run(run(args.commands or list(REQUESTS), args.requests, args.repeat, args.pipeline))
    print(f"# kvserver hot path, in process, Python {sys.version.split()[0]}: "
          f"µs of server CPU per request (best of {args.repeat})")
    print(f"{'command':<8} {'per read':>8} {'µs/request':>11}")
    for name, depth, micros in rows:
        print(f"{name.upper():<8} {depth:>8} {micros:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
