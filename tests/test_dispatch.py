"""The one dispatcher (kvserver/dispatch.py): its mode table, replay with client checks
off, the one arity check, execution units around writes, deferred replies and their LSN.

Most tests drive a Dispatcher and a Client in process (no socket): the modes
that only later features enter (subscribed, MULTI) are set on the Client
directly, as the brief for the hooks asks. The real-socket comparison of
the fast and general lanes is tests/test_hotpath.py.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys

import pytest

from bench.hotpath import FakeTransport
from kvserver import commands, dispatch
from kvserver.client import MONITOR, MULTI, NORMAL, SUBSCRIBED, Client, Deferred
from kvserver.commands import COMMANDS, TABLE, arity_error
from kvserver.config import Config
from kvserver.connection import Connection
from kvserver.core import Core
from kvserver.dispatch import DONE, Dispatcher
from kvserver.protocol import OK, QUEUED, ErrorReply, encode_command
from kvserver.server import Server
from kvserver.session import Session

SUBSCRIBED_GET = ("ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / "
                  "QUIT / RESET are allowed in this context")


def _setup(**config) -> tuple[Core, Dispatcher, Client]:
    core = Core(Config(port=0, **config))
    return core, Dispatcher(core), Client(core)


def _run(dispatcher: Dispatcher, client: Client, *requests: list[bytes]) -> list:
    """Requests through Dispatcher.run, as a connection hands them over: their reply bytes."""
    out: list = []
    i, _size, outcome, _deferred = dispatcher.run(client, list(requests), 0, out, 0)
    assert outcome == DONE and i == len(requests)
    return out


# --- the mode table -----------------------------------------------------------------------


def test_subscribed_mode_refuses_other_commands_with_redis_error():
    core, dispatcher, client = _setup()
    client.mode = SUBSCRIBED
    reply = dispatcher.call(client, [b"GET", b"k"])
    assert type(reply) is ErrorReply and reply == SUBSCRIBED_GET
    assert core.command_stat("get").rejected == 1 and core.command_stat("get").calls == 0
    assert core.stats.errors == {"ERR": 1}
    assert dispatcher.call(client, [b"PING"]) == b"+PONG\r\n"
    assert dispatcher.call(client, [b"QUIT"]) is OK
    # Through run() too: the fast lane is closed outside NORMAL mode.
    client.close_after_reply = False
    assert _run(dispatcher, client, [b"GET", b"k"]) == [b"-" + SUBSCRIBED_GET.encode() + b"\r\n"]
    # A RESP3 client may mix replies and pushes: no limit (as Redis 7.0).
    client.resp = 3
    assert dispatcher.call(client, [b"GET", b"k"]) is None


def test_subscribed_mode_error_matches_redis(redis_server: int):
    with socket.create_connection(("127.0.0.1", redis_server), timeout=5) as sock:
        sock.sendall(encode_command([b"SUBSCRIBE", b"dispatch-test-channel"]))
        data = b""
        while data.count(b"\r\n") < 6:   # the subscribe confirmation
            data += sock.recv(4096)
        sock.sendall(encode_command([b"GET", b"k"]))
        data = b""
        while not data.endswith(b"\r\n"):
            data += sock.recv(4096)
    assert data == b"-" + SUBSCRIBED_GET.encode() + b"\r\n"


def test_every_mode_has_a_row_in_the_mode_table():
    from kvserver.client import BLOCKED, MODE_NAMES
    # BLOCKED has none on purpose: a blocked client's requests are not handed over.
    assert set(dispatch.MODE_ALLOWED) == set(MODE_NAMES) - {BLOCKED}
    for mode, allowed in dispatch.MODE_ALLOWED.items():
        assert allowed is None or "ping" in allowed


def test_multi_mode_queues_instead_of_running():
    core, dispatcher, client = _setup()
    client.mode = MULTI
    assert dispatcher.call(client, [b"SET", b"k", b"v"]) is QUEUED
    assert dispatcher.call(client, [b"GET", b"k"]) is QUEUED
    assert [argv for _cmd, argv in client.queued] == [[b"SET", b"k", b"v"], [b"GET", b"k"]]
    assert core.keyspace.dbs[0].data == {}
    # Checks come first: a wrong arity is refused, not queued (as Redis's processCommand).
    assert dispatcher.call(client, [b"SET", b"k"]).startswith("ERR wrong number")
    assert len(client.queued) == 2
    assert "multi=2" in client.client_info()
    # QUIT runs at once.
    assert dispatcher.call(client, [b"QUIT"]) is OK and client.close_after_reply


def test_read_only_replica_hook_refuses_writes():
    core, dispatcher, client = _setup()
    core.read_only_replica = True
    assert _run(dispatcher, client, [b"SET", b"k", b"v"], [b"GET", b"k"]) == [
        b"-READONLY You can't write against a read only replica.\r\n", b"$-1\r\n"]
    assert core.command_stat("set").rejected == 1


def test_monitor_mode_runs_commands_as_normal():
    core, dispatcher, client = _setup()
    client.mode = MONITOR
    assert dispatcher.call(client, [b"SET", b"k", b"v"]) is OK
    assert "flags=O" in client.client_info()


# --- replay: client checks off ----------------------------------------------------------


def test_replay_runs_a_record_when_a_password_is_set_and_loading():
    core = Core(Config(port=0, requirepass="secret"))
    core.loading = True
    core.over_maxmemory = True
    session = Session(core)
    assert not session.authenticated
    session.mode = SUBSCRIBED   # even a mode check would refuse it; replay has none
    assert commands.execute(session, [b"SET", b"k", b"v"]) is OK
    assert commands.execute(session, [b"INCRBY", b"n", b"5"]) == 5
    assert core.keyspace.dbs[0].data == {b"k": b"v", b"n": b"5"}
    # No stats, no slow log for replayed records.
    assert core.command_stats == {} and core.stats.total_commands == 0
    # A client on the same core is refused by the same checks replay skips.
    dispatcher = Dispatcher(core)
    assert dispatcher.call(Client(core), [b"GET", b"k"]).startswith("NOAUTH")


def test_replay_ignores_rename_command_and_the_fast_lane_table():
    core = Core(Config(port=0))
    renamed = Dispatcher(core, commands.renamed_table((("set", "put"),)))
    assert b"set" not in renamed.fast and b"put" in renamed.fast
    session = Session(core)
    assert commands.execute(session, [b"SET", b"k", b"v"]) is OK   # the real name
    assert dispatch.replay is commands.execute


def test_replay_opens_no_unit():
    # Replay logs nothing (the record is on disk already): no unit to group it in.
    core = Core(Config(port=0))
    opened: list = []
    core.begin_unit = lambda: opened.append(1)   # type: ignore[method-assign]
    assert commands.execute(Session(core), [b"MSET", b"k", b"v", b"j", b"w"]) is OK
    assert opened == [] and core.keyspace.dbs[0].data == {b"k": b"v", b"j": b"w"}


# --- one arity check ----------------------------------------------------------------------


def _wrong_argc(arity: int) -> int | None:
    """An argument count the arity refuses (None if there is none: -1 takes any)."""
    if arity > 0:
        return arity + 1
    return -arity - 1 if -arity - 1 >= 1 else None


def test_every_command_with_a_wrong_argc_gets_the_same_error_on_every_path():
    core, dispatcher, client = _setup()
    checked = 0
    for name, cmd in TABLE.items():
        argc = _wrong_argc(cmd.arity)
        if argc is None:
            continue
        argv = [name.upper().encode()] + [b"x"] * (argc - 1)
        want = f"ERR wrong number of arguments for '{name}' command"
        assert arity_error(cmd, argc) == want
        assert commands.execute(Session(core), argv) == want               # replay
        if name == "exec":
            # Redis's execCommandAbort: a refused EXEC says EXECABORT.
            want = ("EXECABORT Transaction discarded because of: wrong number of "
                    "arguments for 'exec' command")
        assert dispatcher.call(client, argv) == want                      # one request
        assert _run(dispatcher, client, argv) == [b"-%s\r\n" % want.encode()]  # a batch
        checked += 1
    assert checked > 40
    assert core.command_stat("get").rejected == 2   # counted as rejected_calls


def test_fast_lane_commands_with_a_wrong_argc_take_the_general_lane():
    core, dispatcher, client = _setup()
    assert set(dispatch.FAST_LANE) == {"get", "set", "incr"}
    for name in dispatch.FAST_LANE:
        assert COMMANDS[name.encode()].name == name
    out = _run(dispatcher, client, [b"GET"], [b"GET", b"a", b"b"], [b"INCR", b"a", b"b"],
               [b"SET", b"k"], [b"SET", b"k", b"v", b"NX"], [b"GET", b"k"])
    assert out == [b"-ERR wrong number of arguments for 'get' command\r\n"] * 2 + [
        b"-ERR wrong number of arguments for 'incr' command\r\n",
        b"-ERR wrong number of arguments for 'set' command\r\n", b"+OK\r\n", b"$1\r\nv\r\n"]


def test_subcommand_arity_uses_the_same_check():
    core, dispatcher, client = _setup()
    reply = dispatcher.call(client, [b"CLIENT", b"ID", b"extra"])
    assert reply == arity_error(TABLE["client"].subcommands["id"], 3)
    assert core.command_stat("client|id").rejected == 1


# --- execution units ----------------------------------------------------------------------


class Recorder:
    """A core's sinks and unit calls: every WAL record the core hands on, as the list
    of effects it holds (one record per closed unit, or per effect logged outside one)."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.records: list[list[list[bytes]]] = []
        self.begins = 0
        begin = core.begin_unit

        def counted_begin() -> None:
            self.begins += 1
            begin()
        core.begin_unit = counted_begin   # type: ignore[method-assign]
        core.log_sink = lambda db, argv: self.records.append([list(argv)])
        core.unit_sink = lambda effects: self.records.append([list(a) for _db, a in effects])


def test_general_lane_opens_a_unit_around_every_write_and_none_around_reads():
    core, dispatcher, client = _setup()
    rec = Recorder(core)
    writes = ([b"SET", b"k", b"v", b"EX", b"100"], [b"MSET", b"a", b"1", b"b", b"2"],
              [b"APPEND", b"a", b"x"], [b"DEL", b"a", b"b"], [b"FLUSHALL"])
    for argv in writes:
        dispatcher.call(client, argv)
    assert len(rec.records) == 5 and all(len(r) == 1 for r in rec.records)
    assert rec.begins == 5 and core.unit_depth == 0
    for argv in ([b"GET", b"k"], [b"EXISTS", b"k"], [b"DBSIZE"], [b"TTL", b"k"]):
        dispatcher.call(client, argv)
    assert rec.begins == 5 and len(rec.records) == 5


def test_a_write_that_raises_still_closes_its_unit(monkeypatch):
    core, dispatcher, client = _setup()

    def broken(s, argv):
        raise RuntimeError("boom")
    monkeypatch.setattr(COMMANDS[b"append"], "func", broken)
    reply = dispatcher.call(client, [b"APPEND", b"k", b"v"])
    assert reply.startswith("ERR internal error running 'append'")
    assert core.unit_depth == 0


def test_fast_lane_logs_one_effect_without_ttls_and_opens_a_unit_with_them():
    core, dispatcher, client = _setup()
    rec = Recorder(core)
    clock = [1_700_000_000_000]
    core.keyspace.clock = lambda: clock[0]
    # No TTL in the database: each fast-lane write logs exactly one effect,
    # which is a unit by itself (core.log outside a unit).
    assert _run(dispatcher, client, [b"SET", b"k", b"v"], [b"INCR", b"n"], [b"GET", b"k"]) == [
        b"+OK\r\n", b":1\r\n", b"$1\r\nv\r\n"]
    assert rec.records == [[[b"SET", b"k", b"v"]], [[b"INCRBY", b"n", b"1"]]]
    assert rec.begins == 0
    # With TTLs, lazy expiry may log a DEL first: both effects in one unit.
    dispatcher.call(client, [b"SET", b"k", b"v", b"PX", b"10"])
    dispatcher.call(client, [b"SET", b"n", b"1", b"PX", b"10"])
    rec.records.clear()
    clock[0] += 100
    assert _run(dispatcher, client, [b"SET", b"k", b"w"], [b"INCR", b"n"]) == [
        b"+OK\r\n", b":1\r\n"]
    # The lazy expiry's DEL and the write are one unit: one record each.
    assert rec.records == [[[b"DEL", b"k"], [b"SET", b"k", b"w"]],
                           [[b"DEL", b"n"], [b"INCRBY", b"n", b"1"]]]
    assert core.unit_depth == 0


# --- deferred replies carry their LSN -------------------------------------------------


class FakeWriter:
    """Just what a Connection asks of the writer, with LSNs the test moves by hand."""

    def __init__(self) -> None:
        self.applied_lsn = 0
        self.durable_lsn = 0
        self.holds_replies = True
        self.failed = None
        self.waiting: list = []

    def when_durable(self, lsn: int, callback) -> None:
        self.waiting.append((lsn, callback))

    def commit_now(self) -> None:
        pass

    def release(self) -> None:
        ready = [cb for lsn, cb in self.waiting if lsn <= self.durable_lsn]
        self.waiting = [(lsn, cb) for lsn, cb in self.waiting if lsn > self.durable_lsn]
        for callback in ready:
            callback(None)


class Recording(FakeTransport):
    def __init__(self) -> None:
        super().__init__()
        self.data = b""

    def write(self, data: bytes) -> None:
        super().write(data)
        self.data += data


@pytest.mark.asyncio
async def test_a_deferred_reply_waits_for_the_lsn_applied_when_it_resolved(tmp_path, monkeypatch):
    # A blocking pop tomorrow: the command answers later, after logging the
    # pop it served; its reply must not leave before that effect is durable.
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        future = asyncio.get_running_loop().create_future()
        monkeypatch.setattr(COMMANDS[b"save"], "func", lambda s, argv: future)
        conn = Connection(server)
        transport = Recording()
        conn.connection_made(transport)  # type: ignore[arg-type]
        writer = conn.writer = FakeWriter()
        conn.data_received(b"SAVE\r\nPING\r\n")
        assert conn.client.is_blocked() and transport.data == b""
        writer.applied_lsn = 7          # what it logged before answering
        future.set_result(OK)
        await asyncio.sleep(0)          # the future's callbacks
        assert transport.data == b""    # resolved, but LSN 7 is not durable yet
        assert not conn.client.is_blocked() and conn.client.mode == NORMAL
        writer.durable_lsn = 7
        writer.release()
        assert transport.data == b"+OK\r\n+PONG\r\n"
        conn.connection_lost(None)
    finally:
        await server.stop()


def test_deferred_starts_without_an_lsn():
    d = Deferred(None)
    assert d.lsn < 0 and not d.silent


# --- structure --------------------------------------------------------------------------


@pytest.mark.parametrize("code", [
    # client state and core know nothing of each other: no import circle.
    "import sys, kvserver.client, kvserver.session; assert 'kvserver.core' not in sys.modules",
    "import sys, kvserver.core; assert 'kvserver.session' not in sys.modules "
    "and 'kvserver.client' not in sys.modules",
    # The transport runs commands only through the dispatcher.
    "import kvserver.connection as c, inspect; src = inspect.getsource(c); "
    "assert 'commands.strings' not in src and 'hasattr' not in src",
])
def test_module_boundaries(code):
    subprocess.run([sys.executable, "-c", code], check=True)


def test_connection_owns_a_client_and_is_its_link(tmp_path):
    server = Server(Config(port=0, dir=str(tmp_path)))
    conn = Connection(server)
    assert isinstance(conn.client, Client) and conn.client.link is conn
    assert not isinstance(conn, Client) and conn.client.mode == NORMAL


def test_a_monitor_blocked_by_a_pause_stays_exempt_from_the_output_limit(tmp_path):
    # Monitors are replicas in Redis's client classes: the normal output
    # limit never drops them, not even while CLIENT PAUSE holds them (mode BLOCKED).
    from types import SimpleNamespace

    from kvserver.client import BLOCKED
    server = Server(Config(port=0, dir=str(tmp_path)))
    cfg = SimpleNamespace(normal_output_limits=(1, 0, 0),   # hard limit: 1 byte
                          output_limits=lambda cls: (1, 0, 0))
    monitor, other = Connection(server), Connection(server)
    for conn in (monitor, other):
        conn.connection_made(Recording())  # type: ignore[arg-type]
        conn._held_bytes = 1000
    server.core.monitors.add(monitor.client)
    monitor.client.mode = BLOCKED
    assert monitor._check_output_limit(0.0, cfg) is False
    assert other._check_output_limit(0.0, cfg) is True
