"""The dispatcher's fast lane (GET, SET key value, INCR) against its general lane.

Each scenario runs on two servers started alike, through real sockets: one
with the fast lane on, the command functions in its table wrapped to count
calls (so a test knows the fast lane really ran: the general lane calls the
same functions unwrapped), and one with it off (``FAST_LANE`` empty: every
request goes through ``Dispatcher.call``). They must send the same bytes, count the
same stats, log the same WAL records in the same order, and fill the slow
log, feed monitors and show ``cmd=`` alike. Requests go one per send and all
in one send (one read: a batch), so the hot path's per-batch state checks
are exercised too. No test here asserts a timing.
"""

from __future__ import annotations

import re
import socket
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ThreadedServer, start_threaded, wait_for
from kvserver import dispatch
from kvserver.commands import COMMANDS, renamed_table
from kvserver.commands.strings import cmd_get, cmd_incr, cmd_set
from kvserver.core import Core
from kvserver.config import Config
from kvserver.numbers import parse_int
from kvserver.protocol import NEED_DATA, ReplyParser, encode_command

#: Both servers' keyspace clock (Unix ms), frozen so TTLs and PXAT records match.
CLOCK_START = 1_700_000_000_000
STATS = ("total_commands_processed", "total_error_replies", "keyspace_hits", "keyspace_misses",
         "expired_keys", "total_net_input_bytes", "total_net_output_bytes")


def cmd(*args: bytes | str | int) -> bytes:
    return encode_command(list(args))


@dataclass
class Node:
    """One server of a pair, with what the test watches on it."""

    server: ThreadedServer
    records: list = field(default_factory=list)   # (db, argv) in WAL order
    clock: list = field(default_factory=lambda: [CLOCK_START])

    @property
    def port(self) -> int:
        return self.server.port

    def watch(self) -> None:
        """Record WAL appends; freeze the clock; turn active expiry off (expiry is lazy only)."""
        core = self.server.server.core
        sink = core.log_sink
        unit_sink = core.unit_sink
        ks = core.keyspace

        def recording(db: int, argv: list) -> None:
            self.records.append((db, list(argv)))
            sink(db, argv)

        def recording_unit(effects: list) -> None:
            # A unit of several effects (a lazy expiry's DEL and the write):
            # one WAL record, its effects in order.
            self.records.extend((db, list(argv)) for db, argv in effects)
            unit_sink(effects)

        def install() -> None:
            core.log_sink = recording
            core.unit_sink = recording_unit
            ks.clock = lambda: self.clock[0]
            ks.active_expire_cycle = lambda max_keys=200: 0
        self.server.call(install)

    def advance(self, ms: int) -> None:
        self.clock[0] += ms

    def stats(self, password: str = "") -> dict[str, int]:
        auth = [cmd("AUTH", password)] if password else []
        text = split_replies(exchange(self.port, auth + [cmd("INFO", "stats")]))[-1].decode()
        fields = dict(line.split(":", 1) for line in text.split("\r\n") if ":" in line)
        return {name: int(fields[name]) for name in STATS}


@dataclass
class Pair:
    hot: Node
    general: Node
    calls: Counter

    @property
    def nodes(self) -> tuple[Node, Node]:
        return self.hot, self.general

    def both(self, requests: list[bytes], pipelined: bool = False, ignore: tuple = ()) -> bytes:
        """Run the requests on both servers; assert the same reply bytes; return them.

        ``ignore``: positions of replies that may differ (HELLO's shows the client id).
        """
        hot = split_replies(exchange(self.hot.port, requests, pipelined))
        general = split_replies(exchange(self.general.port, requests, pipelined))
        assert len(hot) == len(general) == len(requests)
        for i in ignore:
            hot[i] = general[i] = b""
        assert hot == general
        return b"".join(hot)

    def assert_same_effects(self, password: str = "") -> None:
        assert self.hot.records == self.general.records
        assert self.hot.stats(password) == self.general.stats(password)

    def advance(self, ms: int) -> None:
        for node in self.nodes:
            node.advance(ms)


def _counting(handler, calls: Counter):
    def counted(s, argv):
        calls[handler.__name__] += 1
        return handler(s, argv)
    return counted


def _count_fast_lane(server: ThreadedServer, calls: Counter) -> None:
    """Wrap the functions in the server's fast-lane table (only): counts fast-lane runs."""
    dispatcher = server.server.dispatcher
    dispatcher.fast = {name: (cmd, argc, stat, _counting(func, calls), write, real)
                       for name, (cmd, argc, stat, func, write, real) in dispatcher.fast.items()}


@pytest.fixture
def make_pair(kv_config, tmp_path, monkeypatch):
    """Factory: two servers with the same config changes, fast lane on and off."""
    started: list[ThreadedServer] = []
    original = dict(dispatch.FAST_LANE)

    def make(**changes) -> Pair:
        monkeypatch.setattr(dispatch, "FAST_LANE", {})
        general = start_threaded(kv_config, dir=str(tmp_path / f"general{len(started)}"), **changes)
        started.append(general)
        calls: Counter = Counter()
        monkeypatch.setattr(dispatch, "FAST_LANE", original)
        hot = start_threaded(kv_config, dir=str(tmp_path / f"hot{len(started)}"), **changes)
        started.append(hot)
        hot.call(_count_fast_lane, hot, calls)
        assert general.server.dispatcher.fast == {} and hot.server.dispatcher.fast
        pair = Pair(Node(hot), Node(general), calls)
        for node in pair.nodes:
            node.watch()
        return pair

    yield make
    for server in started:
        server.stop()


def read_replies(sock: socket.socket, count: int) -> bytes:
    """Read until ``count`` whole replies came; return their bytes."""
    parser = ReplyParser()
    data = b""
    got = 0
    while got < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        parser.feed(chunk)
        while got < count and parser.next_reply() is not NEED_DATA:
            got += 1
    return data


def split_replies(data: bytes) -> list[bytes]:
    """Whole replies' bytes, one by one."""
    parser = ReplyParser()
    parser.feed(data)
    out = []
    start = 0
    while parser.next_reply() is not NEED_DATA:
        out.append(data[start:parser._pos])
        start = parser._pos
    assert start == len(data)
    return out


def exchange(port: int, requests: list[bytes], pipelined: bool = False) -> bytes:
    """Send requests (one per send, or all in one) on a new connection; return the replies."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        if pipelined:
            sock.sendall(b"".join(requests))
            return read_replies(sock, len(requests))
        out = b""
        for request in requests:
            sock.sendall(request)
            out += read_replies(sock, 1)
        return out


def put_wrong_type(pair: Pair, key: bytes) -> None:
    """A value of another type (commands can make only strings so far)."""
    for node in pair.nodes:
        core = node.server.server.core
        node.server.call(lambda core=core: core.keyspace.dbs[0].data.__setitem__(key, [b"x"]))


# --- scenarios ------------------------------------------------------------------------------

STRING_SCRIPT = [
    cmd("GET", "missing"), cmd("SET", "k", "v"), cmd("GET", "k"), cmd("get", "k"),
    cmd("Get", "k"),                                   # mixed case: the general path
    cmd("INCR", "n"), cmd("INCR", "n"), cmd("incr", "n"), cmd("GET", "n"),
    cmd("INCR", "k"),                                  # not an integer
    cmd("SET", "z", "007"), cmd("INCR", "z"),          # leading zeros are not an integer
    cmd("SET", "neg", "-5"), cmd("INCR", "neg"),
    cmd("SET", "max", "9223372036854775807"), cmd("INCR", "max"), cmd("GET", "max"),
    cmd("SET", "big", "9" * 19), cmd("INCR", "big"),   # beyond int64
    cmd("GET"), cmd("GET", "a", "b"), cmd("INCR"), cmd("SET", "k"),  # arity
    cmd("SET", "k", "v2", "XX"), cmd("SET", "k", "v3", "GET"),       # options: general path
    cmd("GET", "wrong"), cmd("INCR", "wrong"), cmd("SET", "wrong", "now a string"),
    cmd("GET", "wrong"),
    cmd("NOSUCH", "x"),
    cmd("SELECT", "3"), cmd("SET", "k", "in db 3"), cmd("INCR", "n"), cmd("GET", "k"),
    cmd("SELECT", "0"), cmd("GET", "k"),
    cmd("SET", "bin", b"a\r\nb\x00"), cmd("GET", "bin"),
    cmd("SET", "large", "x" * 5000), cmd("GET", "large"),
]


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-per-send", "pipelined"])
def test_string_commands_agree(make_pair, pipelined):
    pair = make_pair()
    put_wrong_type(pair, b"wrong")
    replies = pair.both(STRING_SCRIPT, pipelined)
    assert b"-WRONGTYPE" in replies and b"-ERR value is not an integer" in replies
    assert b"-ERR increment or decrement would overflow" in replies
    assert pair.calls["cmd_get"] and pair.calls["cmd_set"] and pair.calls["cmd_incr"]
    pair.assert_same_effects()


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-per-send", "pipelined"])
def test_expiry_agrees_and_lazily_expired_keys_are_logged_as_del(make_pair, pipelined):
    pair = make_pair()
    pair.both([cmd("SET", "e1", "v", "PX", "1000"), cmd("SET", "e2", "5", "PX", "1000"),
               cmd("SET", "e3", "v", "PX", "1000"), cmd("SET", "t1", "v", "PX", "5000"),
               cmd("SET", "t2", "7", "PX", "5000")], pipelined)
    pair.advance(2000)  # e1..e3 are due; t1, t2 not yet
    calls = sum(pair.calls.values())
    replies = pair.both([cmd("GET", "e1"), cmd("INCR", "e2"), cmd("SET", "e3", "new"),
                         cmd("SET", "t1", "w"), cmd("PTTL", "t1"),   # a plain SET clears the TTL
                         cmd("INCR", "t2"), cmd("PTTL", "t2"),       # INCR keeps it
                         cmd("GET", "e3"), cmd("GET", "e2")], pipelined)
    assert replies == (b"$-1\r\n:1\r\n+OK\r\n+OK\r\n:-1\r\n:8\r\n:3000\r\n$3\r\nnew\r\n"
                       b"$1\r\n1\r\n")
    assert sum(pair.calls.values()) - calls == 7  # all but the PTTLs took the hot path
    for node in pair.nodes:
        logged = node.records[5:]
        assert logged[0] == (0, [b"DEL", b"e1"])
        assert logged[1:3] == [(0, [b"DEL", b"e2"]), (0, [b"INCRBY", b"e2", b"1"])]
        assert logged[3:5] == [(0, [b"DEL", b"e3"]), (0, [b"SET", b"e3", b"new"])]
    pair.assert_same_effects()


@pytest.mark.parametrize("pipelined", [False, True], ids=["one-per-send", "pipelined"])
def test_resp3_agrees(make_pair, pipelined):
    pair = make_pair()
    put_wrong_type(pair, b"wrong")
    script = [cmd("HELLO", "3"), cmd("GET", "missing"), cmd("SET", "k", "v"), cmd("GET", "k"),
              cmd("INCR", "n"), cmd("GET", "wrong"), cmd("INCR", "k"),
              cmd("HELLO", "2"), cmd("GET", "missing")]
    replies = pair.both(script, pipelined, ignore=(0, 7))
    assert replies == (b"_\r\n+OK\r\n$1\r\nv\r\n:1\r\n-WRONGTYPE Operation against a key holding "
                       b"the wrong kind of value\r\n-ERR value is not an integer or out of range"
                       b"\r\n$-1\r\n")
    assert pair.calls["cmd_get"] >= 4
    pair.assert_same_effects()


def test_noauth_then_auth_in_one_batch(make_pair):
    pair = make_pair(requirepass="s3cret")
    script = [cmd("GET", "k"), cmd("SET", "k", "v"), cmd("INCR", "n"),
              cmd("AUTH", "wrong"), cmd("GET", "k"),
              cmd("AUTH", "s3cret"), cmd("SET", "k", "v"), cmd("GET", "k"), cmd("INCR", "n")]
    for pipelined in (False, True):
        replies = pair.both(script, pipelined)
        assert replies.startswith(b"-NOAUTH Authentication required.\r\n" * 3)
        assert replies.endswith(b"+OK\r\n+OK\r\n$1\r\nv\r\n:%d\r\n" % (1 + pipelined))
    assert pair.calls["cmd_get"] == 2 and pair.calls["cmd_incr"] == 2
    pair.assert_same_effects(password="s3cret")


def test_loading_answers_loading_on_both_paths(make_pair):
    pair = make_pair()
    pair.both([cmd("SET", "k", "v")])
    for node in pair.nodes:
        core = node.server.server.core
        node.server.call(lambda core=core: setattr(core, "loading", True))
    script = [cmd("GET", "k"), cmd("SET", "k", "w"), cmd("INCR", "n"), cmd("ECHO", "hi")]
    for pipelined in (False, True):
        replies = pair.both(script, pipelined)
        assert replies.count(b"-LOADING Redis is loading the dataset in memory\r\n") == 3
    for node in pair.nodes:
        core = node.server.server.core
        node.server.call(lambda core=core: setattr(core, "loading", False))
    assert pair.both([cmd("GET", "k")]) == b"$1\r\nv\r\n"
    pair.assert_same_effects()


def test_oom_refuses_hot_writes_in_the_same_batch(make_pair):
    pair = make_pair()
    oom = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    script = [cmd("SET", "k", "v"), cmd("CONFIG", "SET", "maxmemory", "1"),
              cmd("SET", "k", "w"), cmd("INCR", "n"), cmd("GET", "k"),
              cmd("CONFIG", "SET", "maxmemory", "0"), cmd("SET", "k", "x"), cmd("INCR", "n")]
    for pipelined in (False, True):
        replies = pair.both(script, pipelined)
        assert replies == (b"+OK\r\n+OK\r\n" + oom * 2 + b"$1\r\nv\r\n+OK\r\n+OK\r\n"
                           b":%d\r\n" % (1 + pipelined))
    pair.assert_same_effects()


def test_rename_command_is_followed(make_pair):
    pair = make_pair(rename_commands=(("get", "fetch"), ("incr", "")))
    for node in pair.nodes:
        hot_names = set(node.server.server.dispatcher.fast)
        assert hot_names == (set() if node is pair.general else
                             {b"fetch", b"FETCH", b"set", b"SET"})
    script = [cmd("SET", "k", "v"), cmd("GET", "k"), cmd("FETCH", "k"), cmd("fetch", "k"),
              cmd("INCR", "n"), cmd("get", "k")]
    for pipelined in (False, True):
        replies = pair.both(script, pipelined)
        assert replies.count(b"-ERR unknown command") == 3
        assert replies.count(b"$1\r\nv\r\n") == 2
    assert pair.calls["cmd_get"] == 4 and pair.calls["cmd_incr"] == 0
    pair.assert_same_effects()


def test_slowlog_sees_every_hot_command(make_pair):
    pair = make_pair()
    put_wrong_type(pair, b"wrong")
    pair.both([cmd("CONFIG", "SET", "slowlog-log-slower-than", "0")])
    script = [cmd("SET", "k", "v" * 300), cmd("GET", "k"), cmd("INCR", "n"), cmd("GET", "wrong"),
              cmd("GET", "missing")]
    pair.both(script, pipelined=True)
    pair.both([cmd("CONFIG", "SET", "slowlog-log-slower-than", "-1")])
    pair.both(script, pipelined=True)  # the slow log is off: nothing more
    entries = {}
    for node in pair.nodes:
        got = exchange_value(node.port, cmd("SLOWLOG", "GET", "-1"))
        # id, time, duration and client address may differ; the rest may not.
        entries[node is pair.hot] = [(e[0], e[3], e[5]) for e in got]
    assert entries[True] == entries[False]
    args = [e[1] for e in reversed(entries[True])]
    assert args == [[b"CONFIG", b"SET", b"slowlog-log-slower-than", b"0"],
                    [b"SET", b"k", b"v" * 128 + b"... (172 more bytes)"], [b"GET", b"k"],
                    [b"INCR", b"n"], [b"GET", b"wrong"], [b"GET", b"missing"]]
    assert pair.calls["cmd_get"] == 6


def test_monitor_sees_every_command(make_pair):
    pair = make_pair()
    script = [cmd("SET", "k", "v"), cmd("GET", "k"), cmd("INCR", "n"), cmd("GET", "missing")]
    seen = {}
    for node in pair.nodes:
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as mon:
            mon.sendall(cmd("MONITOR"))
            assert read_replies(mon, 1) == b"+OK\r\n"
            for pipelined in (False, True):
                exchange(node.port, script, pipelined)
            lines = read_replies(mon, 2 * len(script)).split(b"\r\n")
        # Drop the time stamp and the client's address.
        seen[node is pair.hot] = [re.sub(rb"^\+[0-9.]+ \[(\d+) [^\]]*\]", rb"[\1]", line)
                                  for line in lines]
    assert seen[True] == seen[False]
    assert seen[True][:4] == [b'[0] "SET" "k" "v"', b'[0] "GET" "k"', b'[0] "INCR" "n"',
                              b'[0] "GET" "missing"']
    # Once the monitor is gone, the hot path is back.
    for node in pair.nodes:
        core = node.server.server.core
        wait_for(lambda: not node.server.call(lambda: len(core.monitors)), "the monitor to go")
    before = sum(pair.calls.values())
    pair.both(script)
    assert sum(pair.calls.values()) == before + 4


def test_client_list_shows_the_last_hot_command(make_pair):
    pair = make_pair()
    for node in pair.nodes:
        with socket.create_connection(("127.0.0.1", node.port), timeout=10) as sock:
            for request, name in ((cmd("INCR", "n"), b"incr"), (cmd("GET", "n"), b"get"),
                                  (cmd("SET", "k", "v"), b"set")):
                sock.sendall(cmd("CLIENT", "SETNAME", "watched") + request)
                read_replies(sock, 2)
                listing = exchange_value(node.port, cmd("CLIENT", "LIST"))
                line = next(x for x in listing.split(b"\n") if b"name=watched " in x)
                assert b" cmd=" + name + b" " in line
    assert pair.calls["cmd_get"] == 1


def exchange_value(port: int, request: bytes):
    data = exchange(port, [request])
    parser = ReplyParser()
    parser.feed(data)
    return parser.next_reply()


# --- a hot command that raises ------------------------------------------------------------


def _start_with_function(kv_config, monkeypatch, name: bytes, func) -> ThreadedServer:
    """A server whose command ``name`` runs ``func`` (in both lanes: they call the same one)."""
    monkeypatch.setattr(COMMANDS[name], "func", func)
    return start_threaded(kv_config)


def test_a_hot_read_that_raises_answers_an_error(kv_config, monkeypatch, caplog):
    calls: Counter = Counter()

    def broken_get(s, argv):
        raise RuntimeError("boom")
    server = _start_with_function(kv_config, monkeypatch, b"get", broken_get)
    try:
        server.call(_count_fast_lane, server, calls)
        before = Node(server).stats()["total_error_replies"]
        replies = exchange(server.port, [cmd("SET", "k", "v"), cmd("GET", "k"), cmd("GET", "k")],
                           pipelined=True)
        assert replies == b"+OK\r\n" + b"-ERR internal error running 'get': RuntimeError\r\n" * 2
        assert calls["broken_get"] == 2   # in the fast lane
        assert Node(server).stats()["total_error_replies"] == before + 2
        assert "internal error running get" in caplog.text
        assert exchange(server.port, [cmd("INCR", "n")]) == b":1\r\n"  # no fail-stop for a read
    finally:
        server.stop()


def test_a_hot_write_that_raises_fails_stop(kv_config, monkeypatch):
    """As for any write (tests/test_faults.py): memory may have changed without a
    record, so no further reply may leave and the server stops."""
    calls: Counter = Counter()

    def broken_incr(s, argv):
        s.db.store(argv[1], b"unlogged")
        raise RuntimeError("boom")
    server = _start_with_function(kv_config, monkeypatch, b"incr", broken_incr)
    server.call(_count_fast_lane, server, calls)
    replies = exchange(server.port, [cmd("SET", "n", "1")])
    assert replies == b"+OK\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(cmd("INCR", "n") + cmd("GET", "n"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    assert data.startswith(b"-ERR ") and data.count(b"\r\n") == 2  # both replies are errors
    assert b"internal error in write command 'incr'" in data and b"unlogged" not in data
    assert calls["broken_incr"] == 1   # in the fast lane
    server._thread.join(30)
    assert server.server.exit_code == 1
    monkeypatch.undo()
    again = start_threaded(kv_config)
    try:
        assert exchange(again.port, [cmd("GET", "n")]) == b"$1\r\n1\r\n"
    finally:
        again.stop()


# --- the table ------------------------------------------------------------------------------


def test_fast_lane_table_follows_the_servers_command_table():
    core = Core(Config(port=0))
    table = dispatch.fast_entries(COMMANDS, core)
    assert {name: entry[3] for name, entry in table.items()} == {
        b"get": cmd_get, b"GET": cmd_get, b"set": cmd_set, b"SET": cmd_set,
        b"incr": cmd_incr, b"INCR": cmd_incr}   # the command functions themselves
    assert table[b"SET"][0] is COMMANDS[b"set"] and table[b"SET"][1] == 3
    assert table[b"SET"][2] is core.command_stat("set") and table[b"SET"][4] is True
    assert table[b"GET"][4] is False
    renamed = dispatch.fast_entries(renamed_table((("get", "fetch"), ("set", ""))), core)
    assert set(renamed) == {b"fetch", b"FETCH", b"incr", b"INCR"}
    assert renamed[b"fetch"][0] is COMMANDS[b"get"]


# --- INCR's integer parsing -------------------------------------------------------------


def _string2ll_reference(data: bytes):
    """parse_int's rule, spelled out: a canonical signed decimal within int64."""
    if not re.fullmatch(rb"-?[1-9][0-9]*|0", data):
        return None
    value = int(data)
    return value if -(1 << 63) <= value < (1 << 63) else None


@given(st.one_of(st.binary(max_size=22),
                 st.integers(min_value=-(1 << 64), max_value=1 << 64).map(lambda n: b"%d" % n),
                 st.from_regex(rb"\A[0-9+\- _]{0,21}\Z")))
@settings(max_examples=500, deadline=None)
def test_parse_int_matches_string2ll(data):
    assert parse_int(data) == _string2ll_reference(data)


@pytest.mark.parametrize("data,value", [
    (b"0", 0), (b"00", None), (b"01", None), (b"-0", None), (b"+1", None), (b" 1", None),
    (b"1_000", None), (b"\xd9\xa1", None), (b"9" * 18, int("9" * 18)),
    (b"9223372036854775807", (1 << 63) - 1), (b"9223372036854775808", None),
    (b"-9223372036854775808", -(1 << 63)), (b"-9223372036854775809", None), (b"", None)])
def test_parse_int_edges(data, value):
    assert parse_int(data) == value
