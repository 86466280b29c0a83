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
    finally:
        await server.stop()
