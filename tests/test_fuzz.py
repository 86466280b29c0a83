"""Hostile and broken input, generated: random and mutated RESP/inline bytes,
split at random points, into the parser and into a live server.

The properties: the parser raises nothing but ProtocolError and gives the
same answer however the bytes are split; the server never raises out of a
handler (nothing is logged at ERROR), closes a connection right after its
protocol error reply, answers every other client, including one in the middle
of a pipeline, and leaves the data it did not get valid commands for alone.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ThreadedServer
from kvserver.config import from_args
from kvserver.protocol import RequestParser
from test_protocol import _run, feed_three_ways

#: Examples per live-server run; raise it for a longer hunt (KV_FUZZ_EXAMPLES=5000).
LIVE_EXAMPLES = int(os.environ.get("KV_FUZZ_EXAMPLES", "150"))

# --- generators -------------------------------------------------------------------------------

#: Commands the fuzzer builds valid requests from: enough to reach reads,
#: writes, errors and arity checks, none that reach outside the "fz" keys.
_NAMES = [b"GET", b"SET", b"DEL", b"INCR", b"APPEND", b"EXISTS", b"PING", b"ECHO", b"MGET",
          b"STRLEN", b"TTL", b"EXPIRE", b"GETRANGE", b"SETRANGE", b"TYPE", b"NOSUCHCMD"]
_INTERESTING = [b"\r\n", b"\r", b"\n", b"*", b"$", b"-1", b"0", b"9999999999", b"-", b"\"",
                b"'", b"\\x", b"\\", b" ", b"\x00", b"*-1\r\n", b"$-1\r\n", b"*0\r\n",
                b"*2147483648\r\n", b"$536870913\r\n", b"+", b"\xff"]

_arg = st.one_of(st.sampled_from([b"fz:a", b"fz:b", b"fz:n", b"1", b"-1", b"10", b""]),
                 st.binary(max_size=12).map(lambda b: b"fz:" + b))
_argv = st.tuples(st.sampled_from(_NAMES), st.lists(_arg, max_size=4)).map(
    lambda t: [t[0], *t[1]])


def _resp(argv: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)


def _inline(argv: list[bytes]) -> bytes:
    return b" ".join(b'"' + a.hex().encode() + b'"' if not a.isalnum() else a
                     for a in argv) + b"\r\n"


_valid = st.lists(st.tuples(_argv, st.booleans()), min_size=1, max_size=6).map(
    lambda reqs: b"".join(_inline(a) if inline else _resp(a) for a, inline in reqs))


@st.composite
def _mutated(draw) -> bytes:
    data = bytearray(draw(_valid))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif op == "insert":
            data[pos:pos] = draw(st.sampled_from(_INTERESTING) | st.binary(min_size=1, max_size=4))
        elif op == "delete" and data:
            del data[pos:pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos:pos + draw(st.integers(1, 16))]
    return bytes(data)


#: Random bytes, mostly-valid requests with a few mutations, and junk with a valid prefix.
hostile = st.one_of(st.binary(max_size=300), _mutated(),
                    st.tuples(_valid, st.binary(max_size=60)).map(lambda t: t[0] + t[1]))


def _splits(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)]) if b > a]


# --- the parser -------------------------------------------------------------------------------

@settings(max_examples=400, deadline=None)
@given(hostile, st.lists(st.integers(0, 10_000), max_size=8))
def test_parser_survives_hostile_bytes_split_anywhere(data: bytes, cuts: list[int]) -> None:
    # Whole, one byte at a time, and split at random points: all agree, and
    # nothing but ProtocolError comes out. (Not feed_three_ways: its trailing
    # request check assumes the data ends on a request boundary.)
    items, error, _ = _run(RequestParser, [data])
    for chunks in ([data[i:i + 1] for i in range(len(data))], _splits(data, cuts)):
        split_items, split_error, _ = _run(RequestParser, chunks)
        assert split_items == items
        assert (split_error and split_error.reason) == (error and error.reason)
    assert all(isinstance(argv, list) and argv and all(type(a) is bytes for a in argv)
               for argv in items)


@settings(max_examples=200, deadline=None)
@given(st.lists(_argv, min_size=1, max_size=8), st.lists(st.integers(0, 10_000), max_size=8))
def test_valid_requests_split_anywhere_round_trip(requests, cuts) -> None:
    data = b"".join(_resp(a) for a in requests)
    assert feed_three_ways(data) == requests
    items, error, _ = _run(RequestParser, _splits(data, cuts))
    assert error is None and items == requests


# --- a live server ------------------------------------------------------------------------------

SENTINELS = {f"keep:{i}".encode(): f"value {i}".encode() for i in range(20)}
#: Dangerous commands are disabled, so no mutation can reach them.
_DISABLED = ["flushall", "flushdb", "shutdown", "config", "swapdb", "monitor", "save",
             "bgsave", "bgrewriteaof", "client", "move", "copy", "select", "rename", "renamenx"]


class _ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    args = []
    for name in _DISABLED:
        args += ["--rename-command", name, ""]
    config = replace(from_args(args), port=0, bind="127.0.0.1",
                     dir=str(tmp_path_factory.mktemp("fuzz") / "data"))
    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    server = ThreadedServer(config).start()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
        s.sendall(b"".join(_resp([b"SET", k, v]) for k, v in SENTINELS.items()))
        _read_exactly(s, 5 * len(SENTINELS))
    server.errors = errors  # type: ignore[attr-defined]
    yield server
    logging.getLogger().removeHandler(errors)
    server.stop()


def _read_exactly(s: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def _read_to_eof(s: socket.socket, timeout: float) -> bytes:
    s.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                return data
            data += chunk
    except ConnectionResetError:
        return data
    raise AssertionError(f"the server did not close a half-closed connection; got {data[-200:]!r}")


class _Bystander:
    """A well-behaved client kept in the middle of a pipeline while the fuzzer runs."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.n = 0

    def start(self) -> None:
        self.n += 1
        # One whole request and half of the next: the server holds a partial request for us.
        self.sock.sendall(_resp([b"SET", b"by:k", b"%d" % self.n]) + b"*2\r\n$3\r\nGET\r\n$4\r\nby")

    def finish(self) -> None:
        self.sock.sendall(b":k\r\n")
        want = b"+OK\r\n" + b"$%d\r\n%d\r\n" % (len(b"%d" % self.n), self.n)
        assert _read_exactly(self.sock, len(want)) == want


@settings(max_examples=LIVE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(hostile, st.lists(st.integers(0, 10_000), max_size=6))
def test_live_server_survives_hostile_bytes(fuzz_server, data: bytes, cuts: list[int]) -> None:
    # A new bystander per example, so a failing example (and hypothesis's
    # replays of it) cannot leave a half request behind for the next one.
    bystander = _Bystander(fuzz_server.port)
    bystander.start()
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=5) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            for piece in _splits(data, cuts):
                s.sendall(piece)
            s.shutdown(socket.SHUT_WR)  # EOF: the server must finish up and close
        except OSError:
            pass  # closed after a protocol error while we were still sending (EPIPE,
            # ECONNRESET, or ENOTCONN from shutdown)
        reply = _read_to_eof(s, 5.0)
    marker = reply.find(b"-ERR Protocol error")
    if marker >= 0:
        # The protocol error is the last thing sent: the connection closed after it.
        assert reply.endswith(b"\r\n") and reply.count(b"\r\n", marker) == 1, reply[marker:]
    bystander.finish()
    bystander.sock.close()
    assert not fuzz_server.errors.records, fuzz_server.errors.records[0].getMessage()


def test_after_fuzzing_data_and_service_are_intact(fuzz_server) -> None:
    with socket.create_connection(("127.0.0.1", fuzz_server.port), timeout=5) as s:
        s.sendall(_resp([b"PING"]) + _resp([b"MGET", *SENTINELS]))
        expected = b"+PONG\r\n*%d\r\n" % len(SENTINELS) + b"".join(
            b"$%d\r\n%s\r\n" % (len(v), v) for v in SENTINELS.values())
        assert _read_exactly(s, len(expected)) == expected
    deadline = time.monotonic() + 5
    while fuzz_server.call(lambda: len(fuzz_server.server.core.clients)) != 0:
        assert time.monotonic() < deadline, "connections were left open"
        time.sleep(0.02)
    assert not fuzz_server.errors.records
