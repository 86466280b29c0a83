"""Connection behaviour that needs control over loop turns: driven in process.

A real Server in a temporary directory; the Connection gets a fake transport
and its reads are handed to ``data_received`` directly, so two reads can
arrive before the writer's commit runs (which a socket test cannot arrange
deterministically).
"""

import asyncio

import pytest

from bench.hotpath import FakeTransport
from kvserver.config import Config
from kvserver.connection import Connection
from kvserver.server import Server


class Recording(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.data = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        super().write(data)
        self.data += data

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@pytest.mark.asyncio
async def test_nothing_runs_after_quit_while_its_reply_waits_for_the_sync(tmp_path):
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        other = Connection(server)  # a second client: commits wait for the next loop turn
        other.connection_made(Recording())  # type: ignore[arg-type]
        conn = Connection(server)
        transport = Recording()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"SET a 1\r\nQUIT\r\n")
        assert transport.data == b""                 # held until the SET is durable
        conn.data_received(b"SET b 2\r\n")           # arrives before the commit: ignored
        for _ in range(100):
            if transport.closed:
                break
            await asyncio.sleep(0.01)
        assert transport.data == b"+OK\r\n+OK\r\n" and transport.closed
        assert server.core.keyspace.dbs[0].data == {b"a": b"1"}
        conn.connection_lost(None)
        other.connection_lost(None)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_a_lone_client_is_committed_in_the_same_turn_and_never_held(tmp_path):
    """With one client nothing else can join its batch: the read's records are
    committed (written and synced) before its replies go out, in the same
    data_received call; with two clients they wait for the next loop turn."""
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        writer = server.writer
        conn = Connection(server)
        transport = Recording()
        conn.connection_made(transport)  # type: ignore[arg-type]
        syncs = writer.syncs
        conn.data_received(b"SET a 1\r\nSET b 2\r\nGET a\r\n")
        assert transport.data == b"+OK\r\n+OK\r\n$1\r\n1\r\n"
        assert writer.durable_lsn == writer.applied_lsn == 2 and writer.syncs == syncs + 1

        other = Connection(server)
        other.connection_made(Recording())  # type: ignore[arg-type]
        conn.data_received(b"SET c 3\r\n")
        assert transport.data.endswith(b"$1\r\n1\r\n")   # held: not durable yet
        assert writer.durable_lsn == 2 < writer.applied_lsn == 3
        for _ in range(100):
            if transport.data.endswith(b"+OK\r\n"):
                break
            await asyncio.sleep(0.01)
        assert writer.durable_lsn == 3 and transport.data.endswith(b"$1\r\n1\r\n+OK\r\n")
        other.connection_lost(None)
        conn.connection_lost(None)
    finally:
        await server.stop()
