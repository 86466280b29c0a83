"""The baseline for the group-commit benchmark: one write and one fdatasync per command.

    python -m bench.onesync --port P --dir D

A deliberately naive durable server built from kvserver's own parts (the
RESP parser, the command table, the keyspace, the WAL record and segment
encoding), minus the one thing being measured: every logged mutation is
written and synced on the spot, on the event loop thread, before the next
command runs and before its reply is queued. kvserver cannot be configured
to do this (group commit is not optional), so the bench carries this small
server instead. Its records are kvserver's WAL encoding (each its own batch).

Because the sync blocks the loop, nothing can be batched: N writes cost N
syncs whatever the number of clients, which is exactly the baseline wanted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import signal
import sys

from kvserver.commands import execute
from kvserver.config import Config
from kvserver.core import Core
from kvserver.protocol import RequestParser, encode
from kvserver.session import Session
from kvserver.wal import encode_batch, encode_effect, encode_segment_header, segment_name


class SyncEveryWrite:
    """A log sink that appends one record and fdatasyncs it before returning."""

    def __init__(self, dirpath: str) -> None:
        path = os.path.join(dirpath, segment_name(1))
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        os.write(self.fd, encode_segment_header(secrets.randbits(63) or 1, 1))
        os.fsync(self.fd)
        dfd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
        self.lsn = 0
        self.syncs = 0

    def __call__(self, db: int, argv: list) -> None:
        self.lsn += 1
        batch = encode_batch(self.lsn, [encode_effect(db, argv)])  # a batch of one
        data = memoryview(batch if type(batch) is bytes else b"".join(batch))
        while data:
            data = data[os.write(self.fd, data):]
        os.fdatasync(self.fd)
        self.syncs += 1


class OneSyncConnection(asyncio.Protocol):
    def __init__(self, core: Core) -> None:
        self.session = Session(core)
        self.parser = RequestParser()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        out = []
        while True:
            argv = self.parser.next_request()
            if argv is None:
                break
            # Runs the command; a mutation is written and synced inside this call.
            out.append(encode(execute(self.session, argv)))
        if out and self.transport is not None:
            self.transport.write(b"".join(out))


async def serve(port: int, dirpath: str) -> None:
    os.makedirs(dirpath, exist_ok=True)
    core = Core(Config(port=port, dir=dirpath, appendfsync="always"))
    core.log_sink = SyncEveryWrite(dirpath)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: OneSyncConnection(core), "127.0.0.1", port,
                                      reuse_address=True, backlog=511)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    print("onesync: ready to accept connections", flush=True)
    await stop.wait()
    server.close()
    print(f"onesync: {core.log_sink.syncs} syncs for {core.log_sink.lsn} records", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.onesync", description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", required=True)
    args = p.parse_args(argv)
    asyncio.run(serve(args.port, args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
