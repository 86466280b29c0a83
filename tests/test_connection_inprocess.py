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
        # The first batch of a new directory creates its first segment (in
        # the writer task, off the loop, as after every rotation): let it.
        conn.data_received(b"SET w 0\r\n")
        for _ in range(100):
            if transport.data == b"+OK\r\n":
                break
            await asyncio.sleep(0.01)
        transport.data = b""
        syncs = writer.syncs
        conn.data_received(b"SET a 1\r\nSET b 2\r\nGET a\r\n")
        assert transport.data == b"+OK\r\n+OK\r\n$1\r\n1\r\n"
        assert writer.durable_lsn == writer.applied_lsn == 3 and writer.syncs == syncs + 1

        other = Connection(server)
        other.connection_made(Recording())  # type: ignore[arg-type]
        conn.data_received(b"SET c 3\r\n")
        assert transport.data.endswith(b"$1\r\n1\r\n")   # held: not durable yet
        assert writer.durable_lsn == 3 < writer.applied_lsn == 4
        for _ in range(100):
            if transport.data.endswith(b"+OK\r\n"):
                break
            await asyncio.sleep(0.01)
        assert writer.durable_lsn == 4 and transport.data.endswith(b"$1\r\n1\r\n+OK\r\n")
        other.connection_lost(None)
        conn.connection_lost(None)
    finally:
        await server.stop()


async def _turns(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.asyncio
async def test_switching_to_always_syncs_what_everysec_wrote(tmp_path):
    """After CONFIG SET appendfsync always, replies wait for records that
    everysec wrote but did not sync yet; nothing else would sync them if no
    further write came (found in review: the replies hung until one did)."""
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="everysec"))
    await server.start()
    try:
        conn = Connection(server)
        transport = Recording()
        conn.connection_made(transport)  # type: ignore[arg-type]
        writer = server.writer
        # The first batch creates the first segment, synced whatever the
        # policy (the writer task does it, off the loop): let it.
        conn.data_received(b"SET w 0\r\n")
        for _ in range(100):
            if writer.durable_lsn == 1:
                break
            await asyncio.sleep(0.01)
        transport.data = b""
        conn.data_received(b"SET a 1\r\n")
        await _turns()
        assert transport.data == b"+OK\r\n" and writer.written_lsn > writer.durable_lsn
        conn.data_received(b"CONFIG SET appendfsync always\r\nGET a\r\n")
        await _turns()
        assert transport.data == b"+OK\r\n+OK\r\n$1\r\n1\r\n"
        assert writer.durable_lsn == writer.written_lsn == 2
        conn.connection_lost(None)
    finally:
        await server.stop()


@pytest.mark.asyncio
@pytest.mark.parametrize("policy", ["everysec", "no"])
@pytest.mark.parametrize("late_turns", [0, 1])
async def test_a_write_answered_during_shutdown_reaches_the_wal(tmp_path, policy, late_turns):
    """Connections still run commands while the writer closes; under
    everysec/no their replies go at once, so their records must be written
    before the WAL closes (found in review: the last turn's were dropped)."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment

    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync=policy))
    await server.start()
    conn = Connection(server)
    transport = Recording()
    conn.connection_made(transport)  # type: ignore[arg-type]
    writer = server.writer
    stopping = asyncio.ensure_future(server.stop(save=False))
    sent = False
    for _ in range(1000):  # a turn after the writer task ended, before the WAL closes
        await asyncio.sleep(0)
        if not sent and writer._task.done() and not writer.wal.closed:
            if late_turns:
                late_turns -= 1
                continue
            conn.data_received(b"SET late 1\r\n")
            sent = True
        if stopping.done():
            break
    await stopping
    assert sent and transport.data == b"+OK\r\n"
    fs = OSFileSystem()
    lsns = [r.lsn for first, path in list_segments(fs, str(tmp_path))
            for r in scan_segment(fs.read(path), path, first).records]
    assert lsns == [1]


@pytest.mark.asyncio
async def test_a_reply_after_a_suppressed_one_still_waits_for_its_write(tmp_path):
    """CLIENT REPLY OFF drops the SET's reply, not its durability: the GET
    after CLIENT REPLY ON shows the value only once the SET is synced."""
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        writer = server.writer
        other = Connection(server)  # a second client: commits wait for the next loop turn
        other.connection_made(Recording())  # type: ignore[arg-type]
        conn = Connection(server)
        transport = Recording()
        conn.connection_made(transport)  # type: ignore[arg-type]
        conn.data_received(b"CLIENT REPLY OFF\r\nSET a 1\r\nCLIENT REPLY ON\r\nGET a\r\n"
                           b"CLIENT REPLY SKIP\r\nSET b 2\r\nGET b\r\n")
        assert transport.data == b""                   # held: the SETs are not durable yet
        assert writer.durable_lsn < writer.applied_lsn == 2
        for _ in range(100):
            if transport.data:
                break
            await asyncio.sleep(0.01)
        assert writer.durable_lsn == 2
        assert transport.data == b"+OK\r\n$1\r\n1\r\n$1\r\n2\r\n"
        conn.connection_lost(None)
        other.connection_lost(None)
    finally:
        await server.stop()
