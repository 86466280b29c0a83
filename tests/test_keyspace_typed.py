"""The typed keyspace: accessors, WRONGTYPE in one place, empty aggregates,
and the ``modified(db, key)`` signal fed by every write path."""

from __future__ import annotations

import pytest

from kvserver import commands
from kvserver.config import Config
from kvserver.core import Core
from kvserver.errors import WRONGTYPE, CommandError
from kvserver.keyspace import Keyspace
from kvserver.protocol import ErrorReply
from kvserver.session import Session
from kvserver.types import BY_KIND, BY_TYPE, STRING, Codec, codec_of, register, type_name

#: A list-valued kind for the aggregate rules (not registered: the tests
#: hand it to the accessors directly, as a future types/list.py would).
LISTISH = Codec(kind=200, name="listish", pytype=list, encoding=lambda v: "listpack",
                encode=lambda v: b"".join(v), decode=lambda b: [b], size=len,
                snapshot_copy=list)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def env():
    clock = Clock()
    core = Core(Config(port=0), clock=clock)
    session = Session(core)
    events: list[tuple[int, bytes | None]] = []
    core.keyspace.add_modified_listener(lambda db, key: events.append((db, key)))
    return session, events, clock


def run(session, *argv):
    reply = commands.execute(session, [a if isinstance(a, bytes) else a.encode() for a in argv])
    return reply


# --- registry and codecs --------------------------------------------------------

def test_string_codec_is_registered_by_kind_and_type():
    assert BY_KIND[1] is STRING and BY_TYPE[bytes] is STRING
    assert codec_of(b"x") is STRING
    assert type_name(b"x") == "string" and type_name(None) == "none"
    assert STRING.decode(memoryview(STRING.encode(b"abc"))) == b"abc"
    assert STRING.size(b"abcd") == 4 and STRING.snapshot_copy is None


@pytest.mark.parametrize("value,encoding", [
    (b"12", "int"), (b"-5", "int"), (b"0", "int"), (b"007", "embstr"), (b"+5", "embstr"),
    (b"9223372036854775808", "embstr"), (b"x" * 44, "embstr"), (b"x" * 45, "raw")])
def test_string_encoding_names(value, encoding):
    assert STRING.encoding(value) == encoding


def test_register_refuses_a_kind_byte_twice():
    with pytest.raises(ValueError):
        register(Codec(kind=1, name="dup", pytype=tuple, encoding=str, encode=bytes,
                       decode=bytes, size=len))
    with pytest.raises(ValueError):
        register(Codec(kind=255, name="end", pytype=frozenset, encoding=str, encode=bytes,
                       decode=bytes, size=len))
    assert tuple not in BY_TYPE and frozenset not in BY_TYPE


# --- typed accessors -----------------------------------------------------------

def test_accessors_raise_wrongtype_for_another_kind():
    ks = Keyspace(2)
    db = ks.dbs[0]
    db.store(b"l", [b"a"])
    db.store(b"s", b"v")
    for accessor in (ks.read, ks.read_counted, ks.write):
        with pytest.raises(CommandError) as err:
            accessor(db, b"l", STRING)
        assert err.value.message == WRONGTYPE
        assert accessor(db, b"s", STRING) == b"v"
        assert accessor(db, b"nope", STRING) is None
    with pytest.raises(CommandError):
        ks.mutate(db, b"s", LISTISH)
    assert ks.read(db, b"l", LISTISH) == [b"a"]


def test_string_commands_reply_wrongtype_through_the_accessor(env):
    session, _events, _clock = env
    session.db.store(b"agg", [b"x"])  # a non-string value, as a future type would store
    for argv in (("GET", "agg"), ("APPEND", "agg", "x"), ("INCR", "agg"), ("STRLEN", "agg"),
                 ("GETRANGE", "agg", "0", "1"), ("SETBIT", "agg", "1", "1"),
                 ("GETBIT", "agg", "1"), ("BITCOUNT", "agg"), ("GETDEL", "agg"),
                 ("SET", "agg", "v", "GET"), ("BITFIELD", "agg", "GET", "u8", "0")):
        reply = run(session, *argv)
        assert type(reply) is ErrorReply and str(reply) == WRONGTYPE, argv
    assert run(session, "MGET", "agg") == [None]  # MGET answers nil, as Redis does


def test_read_counted_counts_hits_and_misses():
    ks = Keyspace(1)
    db = ks.dbs[0]
    db.store(b"k", b"v")
    ks.read_counted(db, b"k")
    ks.read_counted(db, b"missing")
    assert (ks.keyspace_hits, ks.keyspace_misses) == (1, 1)


def test_mutate_creates_stores_and_deletes_the_empty_aggregate():
    ks = Keyspace(1)
    db = ks.dbs[0]
    events = []
    ks.add_modified_listener(lambda i, k: events.append(k))
    with ks.mutate(db, b"l", LISTISH) as value:
        value.append(b"a")
    assert db.data[b"l"] == [b"a"] and events == [b"l"]
    with ks.mutate(db, b"l", LISTISH) as value:
        value.append(b"b")
    assert db.data[b"l"] == [b"a", b"b"] and events == [b"l", b"l"]
    with ks.mutate(db, b"l", LISTISH) as value:
        value.clear()
    assert b"l" not in db.data and events == [b"l", b"l", b"l"]
    # A new aggregate left empty is never stored, and nothing changed.
    with ks.mutate(db, b"e", LISTISH):
        pass
    assert b"e" not in db.data and len(events) == 3
    with ks.mutate(db, b"e", LISTISH, create=False) as value:
        assert value is None
    assert b"e" not in db.data and len(events) == 3


def test_hook_slot_is_empty_when_nobody_listens():
    ks = Keyspace(3)
    assert all(db._hook is None for db in ks.dbs)
    listener = lambda i, k: None  # noqa: E731
    ks.add_modified_listener(listener)
    assert all(db._hook is not None for db in ks.dbs)
    ks.remove_modified_listener(listener)
    assert all(db._hook is None for db in ks.dbs)


# --- modified(db, key): every write path, exactly ------------------------------

@pytest.mark.parametrize("setup,argv,expected", [
    ([], ("SET", "k", "v"), [(0, b"k")]),
    ([], ("SET", "k", "v", "EX", "100"), [(0, b"k"), (0, b"k")]),
    ([("SET", "k", "v")], ("SET", "k", "w", "NX"), []),
    ([], ("MSET", "a", "1", "b", "2"), [(0, b"a"), (0, b"b")]),
    ([("SET", "k", "1")], ("INCR", "k"), [(0, b"k")]),
    ([("SET", "k", "1")], ("APPEND", "k", "x"), [(0, b"k")]),
    ([], ("SETBIT", "k", "7", "1"), [(0, b"k")]),
    ([("SET", "a", "1"), ("SET", "b", "2")], ("DEL", "a", "b", "c"), [(0, b"a"), (0, b"b")]),
    ([("SET", "a", "1")], ("UNLINK", "a"), [(0, b"a")]),
    ([("SET", "a", "1")], ("GETDEL", "a"), [(0, b"a")]),
    ([("SET", "a", "1")], ("EXPIRE", "a", "100"), [(0, b"a")]),
    ([("SET", "a", "1", "EX", "100")], ("PERSIST", "a"), [(0, b"a")]),
    ([("SET", "a", "1")], ("PERSIST", "a"), []),
    ([("SET", "a", "1")], ("RENAME", "a", "b"), [(0, b"a"), (0, b"b")]),
    ([("SET", "a", "1"), ("SET", "b", "2")], ("RENAME", "a", "b"),
     [(0, b"b"), (0, b"a"), (0, b"b")]),
    ([("SET", "a", "1")], ("COPY", "a", "b", "DB", "2"), [(2, b"b")]),
    ([("SET", "a", "1")], ("MOVE", "a", "3"), [(0, b"a"), (3, b"a")]),
    ([("SET", "a", "1")], ("FLUSHDB",), [(0, None)]),
    ([("SET", "a", "1")], ("SWAPDB", "0", "4"), [(0, None), (4, None)]),
    ([], ("GET", "k"), []),
    ([("SET", "a", "1")], ("BITOP", "NOT", "d", "a"), [(0, b"d")]),
])
def test_every_write_command_signals_modified(env, setup, argv, expected):
    session, events, _clock = env
    for step in setup:
        assert type(run(session, *step)) is not ErrorReply
    events.clear()
    assert type(run(session, *argv)) is not ErrorReply
    assert events == expected


def test_flushall_signals_every_database(env):
    session, events, _clock = env
    run(session, "FLUSHALL")
    assert events == [(i, None) for i in range(len(session.core.keyspace.dbs))]


def test_lazy_and_active_expiry_signal_modified(env):
    session, events, clock = env
    ks = session.core.keyspace
    run(session, "SET", "lazy", "1", "PX", "10")
    run(session, "SET", "active", "1", "PX", "10")
    events.clear()
    clock.now += 100
    assert run(session, "GET", "lazy") is None
    assert events == [(0, b"lazy")]
    assert ks.active_expire_cycle() == 1
    assert events == [(0, b"lazy"), (0, b"active")]
