"""Big values go in and out without being copied over and over (review item 8).

A 400 MB SET used to peak at 2 GB and a GET at 2.5 GB, with other clients
stalled for seconds. Now: the parser joins the reads of a big argument
once (tests/test_protocol.py checks that), the WAL record references the
value instead of copying it, and a big reply goes to the transport a slice
at a time, referencing the stored value. These tests check the shapes that
make that so (no timing): what the transport holds, what a record holds,
and that everything round-trips, with other clients served meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import socket

import pytest

from conftest import start_threaded, wait_for
from test_security import certs  # noqa: F401 - the fixture
from kvserver.config import Config
from kvserver.connection import STREAM_SLICE, STREAM_TURN_BYTES, Connection
from kvserver.core import Core
from kvserver.fs import OSFileSystem
from kvserver.protocol import (BIG_REPLY, NEED_DATA, ErrorReply, Parts, ReplyParser, bulk_parts,
                               encode, encode3, encode_command, join_replies)
from kvserver.recovery import recover
from kvserver.server import Server
from kvserver.wal import (BIG_ARG, WAL, decode_record, encode_batch, encode_effect,
                          list_segments, scan_segment)

VALUE = bytes(range(256)) * (64 * 1024 * 4)  # 64 MiB, CR and LF among its bytes


def _read_replies(sock: socket.socket, count: int) -> list:
    parser = ReplyParser()
    out = []
    while len(out) < count:
        chunk = sock.recv(1 << 20)
        assert chunk, "server closed the connection"
        parser.feed(chunk)
        while len(out) < count and (reply := parser.next_reply()) is not NEED_DATA:
            out.append(reply)
    return out


def _ask(sock: socket.socket, *argv) -> object:
    sock.sendall(encode_command(list(argv)))
    return _read_replies(sock, 1)[0]


def _streaming(kv):
    """Connections with a big reply still going out: [(queued bytes, transport buffer)]."""
    def look():
        conns = [c.link for c in kv.server.core.clients.values()]
        return [(c._stream_bytes, c.transport.get_write_buffer_size())
                for c in conns if c._stream is not None]
    return kv.call(look)


def test_a_64mb_value_round_trips_while_others_are_served(kv_config):
    kv = start_threaded(kv_config)
    try:
        big = socket.create_connection(("127.0.0.1", kv.port), timeout=30)
        big.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        assert _ask(big, b"SET", b"big", VALUE) == "OK"
        other = socket.create_connection(("127.0.0.1", kv.port), timeout=10)
        # A write and the big GET in one read: their replies are one chunk,
        # held until the SET is durable, then sent with the value in pieces.
        big.sendall(encode_command([b"SET", b"x", b"1"]) + encode_command([b"GET", b"big"]))
        # The client reads nothing yet: the server must not have queued
        # the value in the transport (one slice at a time, the rest waits).
        queued = wait_for(lambda: [s for s in _streaming(kv) if s[0]], "the reply to wait")
        for pending, transport_buffer in queued:
            assert transport_buffer <= 2 * STREAM_SLICE, transport_buffer
            assert pending >= len(VALUE) // 2
        # Everybody else is served meanwhile.
        assert _ask(other, b"PING") == "PONG"
        assert _ask(other, b"SET", b"y", b"2") == "OK"
        assert _ask(other, b"GET", b"x") == b"1"
        assert _ask(other, b"STRLEN", b"big") == len(VALUE)
        assert _read_replies(big, 2) == ["OK", VALUE]
        assert _ask(big, b"PING") == "PONG"  # in step after the big reply
        wait_for(lambda: not _streaming(kv), "the stream to end")
        big.close()
        other.close()
    finally:
        kv.stop()
    # The record with the value (or the checkpoint it triggered) brings it back.
    kv = start_threaded(kv_config)
    try:
        with socket.create_connection(("127.0.0.1", kv.port), timeout=30) as s:
            assert _ask(s, b"GET", b"big") == VALUE
            assert _ask(s, b"GET", b"y") == b"2"
    finally:
        kv.stop()


def test_quit_after_a_big_reply_closes_once_it_is_sent(kv_config):
    kv = start_threaded(kv_config)
    try:
        with socket.create_connection(("127.0.0.1", kv.port), timeout=30) as s:
            assert _ask(s, b"SET", b"big", VALUE[:BIG_REPLY * 3]) == "OK"
            s.sendall(encode_command([b"GET", b"big"]) + encode_command([b"QUIT"]))
            assert _read_replies(s, 2) == [VALUE[:BIG_REPLY * 3], "OK"]
            assert s.recv(10) == b""
    finally:
        kv.stop()


def test_big_replies_are_the_same_bytes_in_pieces():
    value = os.urandom(BIG_REPLY)
    parts = bulk_parts(value)
    assert parts.pieces[1] is value  # referenced, not copied
    assert bytes(parts) == encode(value) == encode3(value) and len(parts) == len(encode(value))
    small = [encode(ErrorReply("ERR x")), encode(5)]
    joined = join_replies(small + [parts] + small)
    assert type(joined) is Parts and value in joined.pieces
    assert bytes(joined) == b"".join(small) + encode(value) + b"".join(small)
    assert join_replies(small) == b"".join(small)


def test_big_wal_records_reference_their_arguments_and_replay(tmp_path):
    value = os.urandom(BIG_ARG + 1)
    record = encode_effect(0, [b"SET", b"k", value])
    assert type(record) is list and any(piece is value for piece in record)
    joined = b"".join(record)
    assert decode_record(joined, 0) == ([(0, [b"SET", b"k", value])], len(joined))
    mset = encode_effect(0, [b"MSET", b"a", value, b"b", b"small"])
    joined = b"".join(mset)
    assert type(mset) is list and decode_record(joined, 0) == (
        [(0, [b"MSET", b"a", value, b"b", b"small"])], len(joined))
    first = encode_batch(1, [encode_effect(0, [b"SET", b"s", b"1"])])
    batch = encode_batch(2, [record, mset])
    assert type(batch) is list and any(piece is value for piece in batch)
    fs = OSFileSystem()
    d = str(tmp_path / "data")
    os.makedirs(d)
    wal = WAL.create(fs, d, 77, 1)
    wal.write(first, 1)  # creates the segment; the big batch goes in by pieces
    wal.write(batch, 3)
    wal.sync()
    wal.close()
    [(first, path)] = list_segments(fs, d)
    assert [r.lsn for r in scan_segment(fs.read(path), path, first).records] == [1, 2, 3]
    core = Core(Config(dir=d))
    recover(fs, d, core)
    assert core.keyspace.dbs[0].data == {b"s": b"1", b"k": value, b"a": value, b"b": b"small"}


def test_big_replies_over_tls(kv_config, certs):
    from test_security import tls_client, tls_server
    server = tls_server(kv_config, certs)
    try:
        r = tls_client(server, certs)
        value = VALUE[:3 * 1024 * 1024 + 7]
        assert r.set("big", value) is True
        pipe = r.pipeline(transaction=False)
        for _ in range(3):
            pipe.get("big")
            pipe.incr("n")
        assert pipe.execute() == [value, 1, value, 2, value, 3]
        r.close()
    finally:
        server.stop()


class _Sink:
    """A transport whose socket takes everything at once: it never pushes back."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.reading = True

    def get_extra_info(self, name, default=None):
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 6379)}.get(name)

    def write(self, data) -> None:
        self.chunks.append(bytes(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def close(self) -> None:
        pass


@pytest.mark.asyncio
async def test_a_reply_going_out_holds_back_the_next_requests(tmp_path):
    # Fresh big replies (GETRANGE builds each anew): if the requests after
    # one kept running while it streams, their replies would pile up in
    # memory however fast the socket is. They wait until it is out.
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="no"))
    await server.start()
    try:
        value = VALUE[:8 * STREAM_TURN_BYTES]
        server.core.keyspace.dbs[0].store(b"big", value)
        conn = Connection(server)
        sink = _Sink()
        conn.connection_made(sink)  # type: ignore[arg-type]
        conn.data_received(b"GETRANGE big 0 -1\r\n" * 5 + b"PING\r\n")
        assert not sink.reading and conn._backlog and len(conn._backlog) == 5
        assert conn.output_pending() <= len(value)  # one reply queued, not five
        for _ in range(1000):
            if not conn._backlog and conn._stream is None:
                break
            assert conn.output_pending() <= len(value)
            await asyncio.sleep(0)
        data = b"".join(sink.chunks)
        assert data == encode(value) * 5 + b"+PONG\r\n" and sink.reading
        conn.connection_lost(None)
    finally:
        await server.stop()
