"""Keyspace notifications: the events of every command family, byte for byte as
redis-server 7.0.15 publishes them, the flag letters, expiry events, and the
durability rule (an event or message never leaves before the write is durable).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kvserver import notify
from kvserver.config import Config
from kvserver.connection import Connection
from kvserver.server import Server
from test_connection_inprocess import Recording
from test_differential import RawClient, encode_request, kv_port, redis_port  # noqa: F401


class Watcher:
    """On each server: a writer and a subscriber to every keyspace channel plus a marker.

    After each command the writer publishes a marker; the frames the
    subscriber got before the marker are that command's events.
    """

    def __init__(self, kv_port: int, redis_port: int, flags: str = "KEA") -> None:
        self.writers = {"kv": RawClient(kv_port), "redis": RawClient(redis_port)}
        self.subs = {"kv": RawClient(kv_port), "redis": RawClient(redis_port)}
        for name in ("kv", "redis"):
            w, s = self.writers[name], self.subs[name]
            assert w.call("FLUSHALL").raw == b"+OK\r\n"
            assert w.call("CONFIG", "SET", "notify-keyspace-events", flags).raw == b"+OK\r\n"
            s.call("PSUBSCRIBE", "__key*__:*")
            s.call("SUBSCRIBE", "marker")
        self.step = 0

    def events(self, name: str, argv) -> tuple[bytes, list[bytes]]:
        w, s = self.writers[name], self.subs[name]
        reply = w.call(*argv).raw
        self.step += 1
        marker = b"%d" % self.step
        w.call("PUBLISH", "marker", marker)
        frames = []
        while True:
            frame = s.read()
            if frame.value == [b"message", b"marker", marker]:
                return reply, frames
            frames.append(frame.raw)

    def same(self, *argv) -> list:
        argv = [a if isinstance(a, bytes) else str(a).encode() for a in argv]
        kv = self.events("kv", argv)
        self.step -= 1
        theirs = self.events("redis", argv)
        assert kv == theirs, f"{argv!r}\n  kvserver: {kv!r}\n  redis:    {theirs!r}"
        return kv[1]

    def close(self) -> None:
        for name in ("kv", "redis"):
            self.writers[name].call("CONFIG", "SET", "notify-keyspace-events", "")
            self.writers[name].call("FLUSHALL")
        for c in list(self.writers.values()) + list(self.subs.values()):
            c.close()


@pytest.fixture
def watcher(kv_port, redis_port):  # noqa: F811
    w = Watcher(kv_port, redis_port)
    yield w
    w.close()


@pytest.fixture
def watcher_new(kv_port, redis_port):  # noqa: F811
    w = Watcher(kv_port, redis_port, "KEAn")
    yield w
    w.close()


STRING_STEPS = [
    "SET s v", "SET s v EX 100", "SET s v KEEPTTL", "SET s w NX", "SET s w XX GET",
    "SETNX s x", "SETNX s2 x", "SETEX s3 100 v", "PSETEX s3 100000 v", "GETSET s3 z",
    "GETDEL s3", "GETDEL s3", "GETEX s EX 100", "GETEX s PERSIST", "GETEX s PERSIST",
    "MSET a 1 b 2", "MSETNX a 1 c 3", "MSETNX c 3 d 4", "INCR n", "DECR n", "INCRBY n 5",
    "DECRBY n 2", "INCRBYFLOAT f 1.5", "APPEND s more", "APPEND new tail", "SETRANGE s 2 XY",
    "SETRANGE s 1 ", "SETRANGE none 0 ", "SETBIT bits 7 1", "SETBIT bits 7 1", "SETBIT bits 3 0",
    "BITOP OR dest bits s", "BITOP AND dest nosuch1 nosuch2", "BITFIELD bf SET u8 0 200",
    "BITFIELD bf INCRBY u8 0 100 OVERFLOW FAIL", "BITFIELD bf GET u8 0",
    "BITFIELD bf OVERFLOW FAIL INCRBY u8 0 100", "GETEX s PX 100000", "INCR s",
]

KEY_STEPS = [
    "SET k1 v", "SET k2 v", "SET k3 v", "DEL k1 k2 nosuch", "UNLINK k3", "SET k v",
    "EXPIRE k 100", "PEXPIRE k 200000 GT", "PERSIST k", "PERSIST k", "EXPIRE nosuch 10",
    "RENAME k k2", "RENAMENX k2 k2", "SET k3 v", "RENAMENX k2 k3", "RENAME k2 k3",
    "COPY k3 k4", "COPY k3 k4", "COPY k3 k4 DB 1 REPLACE", "MOVE k4 2", "MOVE nosuch 2",
    "SET gone v", "EXPIRE gone -1", "PEXPIREAT k3 1",
]

HASH_STEPS = [
    "HSET h a 1 b 2", "HSET h a 1", "HMSET h c 3", "HSETNX h a 9", "HSETNX h z 9",
    "HINCRBY h n 5", "HINCRBYFLOAT h f 0.5", "HDEL h nosuch", "HDEL h a b",
    "HDEL h c z n f", "HDEL h a",
]

LIST_STEPS = [
    "LPUSH l a b c", "RPUSH l d", "LPUSHX nol x", "RPUSHX l e", "LPUSHX l f", "LPOP l",
    "RPOP l 2", "LINSERT l BEFORE b x", "LINSERT l BEFORE nosuch y", "LSET l 0 z",
    "LTRIM l 0 -1", "LTRIM l 0 1", "LREM l 0 nosuch", "LREM l 0 z", "RPUSH src 1 2",
    "LMOVE src dst LEFT RIGHT", "RPOPLPUSH src dst", "RPOPLPUSH src dst", "LMOVE dst dst LEFT LEFT",
    "LMPOP 2 nosuch dst RIGHT COUNT 5", "RPUSH t 1", "LTRIM t 1 0", "RPUSH u 1", "LPOP u 0",
]

SET_STEPS = [
    "SADD s a b c", "SADD s a", "SREM s nosuch", "SREM s a", "SADD one x", "SPOP one",
    "SADD two x", "SPOP two 5", "SADD p x", "SMOVE s p b", "SMOVE s p nosuch",
    "SMOVE p fresh x", "SMOVE s s c", "SADD q c d", "SINTERSTORE out s q",
    "SUNIONSTORE out s q", "SDIFFSTORE out s q", "SDIFFSTORE out s s", "SDIFFSTORE out s s",
    "SET str v", "SUNIONSTORE str s", "SREM s c",
]


@pytest.mark.parametrize("family,steps", [("strings", STRING_STEPS), ("keys", KEY_STEPS),
                                          ("hashes", HASH_STEPS), ("lists", LIST_STEPS),
                                          ("sets", SET_STEPS)])
def test_every_family_publishes_what_redis_publishes(watcher, family, steps):
    published = 0
    for step in steps:
        published += len(watcher.same(*step.split(" ")))
    assert published >= len(steps) // 2   # (the steps do publish: the test can fail)


@pytest.mark.parametrize("family,steps", [("strings", STRING_STEPS[:12] + ["MSET a 1 b 2 a 3",
                                                                         "MSETNX m1 1 m2 2"]),
                                          ("keys", KEY_STEPS),
                                          ("lists", LIST_STEPS[:17]), ("sets", SET_STEPS)])
def test_the_new_event_comes_where_redis_sends_it(watcher_new, family, steps):
    news = 0
    for step in steps:
        news += sum(b"$3\r\nnew\r\n" in f for f in watcher_new.same(*step.split(" ")))
    assert news


def test_flag_letters_select_classes_and_channels_as_redis(kv_port, redis_port):  # noqa: F811
    for flags in ("E$", "Kg", "Kl", "KEs", "Eh", "KExg", "AK"):
        w = Watcher(kv_port, redis_port, flags)
        try:
            for step in ("SET a 1", "DEL a", "LPUSH l x", "SADD s x", "HSET h f v",
                         "SET t v PX 1"):
                w.same(*step.split(" "))
        finally:
            w.close()


@pytest.mark.parametrize("flags", ["KEA", "AKE", "gsx$", "Ag$lshzxeKEtmdn", "", "KEn", "m",
                                   "lshzxetd$g", "Q", "KEA ", "E1"])
def test_config_set_and_get_of_the_flags_match_redis(kv_port, redis_port, flags):  # noqa: F811
    replies = []
    for port in (kv_port, redis_port):
        c = RawClient(port)
        got = [c.call("CONFIG", "SET", "notify-keyspace-events", flags).raw,
               c.call("CONFIG", "GET", "notify-keyspace-events").raw]
        c.call("CONFIG", "SET", "notify-keyspace-events", "")
        c.close()
        replies.append(got)
    assert replies[0] == replies[1]


def test_flags_round_trip_like_redis_keyspace_events_functions():
    assert notify.flags_from_string("KEA") == notify.ALL | notify.KEYSPACE | notify.KEYEVENT
    assert notify.flags_to_string(notify.flags_from_string("Kxg$")) == "g$xK"
    assert notify.flags_from_string("KEz?") is None
    assert notify.effective_flags(notify.flags_from_string("A")) == 0   # no channel: nothing sent


def test_the_config_file_sets_the_flags(tmp_path):
    from conftest import ThreadedServer
    server = ThreadedServer(Config(port=0, dir=str(tmp_path / "d"),
                                   notify_keyspace_events="Kl")).start()
    try:
        sub, w = RawClient(server.port), RawClient(server.port)
        assert w.call("CONFIG", "GET", "notify-keyspace-events").value == [
            b"notify-keyspace-events", b"lK"]
        sub.call("SUBSCRIBE", "__keyspace@0__:l")
        w.call("SET", "s", "v")
        w.call("RPUSH", "l", "x")
        assert sub.read().value == [b"message", b"__keyspace@0__:l", b"rpush"]
        sub.close()
        w.close()
    finally:
        server.stop()


def test_lazy_and_active_expiry_publish_expired(tmp_path):
    """In process, with the keyspace's clock in hand: a read finds the key
    expired (lazy), the cycle expires another (active); each is published."""
    from kvserver.core import Core
    now = [1_000_000]
    core = Core(Config(dir=str(tmp_path), notify_keyspace_events="Ex"), clock=lambda: now[0])
    heard = []
    core.keyspace_event = lambda kind, event, db, key: heard.append((kind, event, db, key))
    ks = core.keyspace
    for db, key in ((0, b"lazy"), (3, b"active")):
        ks.dbs[db].store(key, b"v")
        ks.dbs[db].set_expire(key, now[0] + 10)
    now[0] += 11
    assert ks.lookup(ks.dbs[0], b"lazy") is None
    assert heard == [(notify.EXPIRED, b"expired", 0, b"lazy")]
    assert ks.active_expire_cycle() == 1
    assert heard[1:] == [(notify.EXPIRED, b"expired", 3, b"active")]
    core.set_config(Config(dir=str(tmp_path), notify_keyspace_events="E$"))   # x not chosen
    ks.dbs[0].store(b"k", b"v")
    ks.dbs[0].set_expire(b"k", now[0] + 1)
    now[0] += 2
    assert ks.lookup(ks.dbs[0], b"k") is None and len(heard) == 2


def test_expired_events_match_redis(watcher):
    """SET with a 1 ms TTL, then a GET after it: the same frames over the two steps
    (lazy or active, whichever expires the key first, publishes the same)."""
    frames = {}
    for name in ("kv", "redis"):
        first = watcher.events(name, [b"SET", b"e", b"v", b"PX", b"1"])
        time.sleep(0.05)
        second = watcher.events(name, [b"GET", b"e"])
        frames[name] = (first[0], second[0], first[1] + second[1])
    assert frames["kv"] == frames["redis"]
    assert any(b"expired" in f for f in frames["kv"][2])


# --- the durability rule -----------------------------------------------------------

async def _until(predicate, turns: int = 200) -> None:
    for _ in range(turns):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


_SET_EVENT = b"*3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n"


@pytest.mark.asyncio
@pytest.mark.parametrize("requests,expected", [
    # A PUBLISH after a write: the message waits for that write's sync.
    (b"SET k v\r\nPUBLISH ch hi\r\n", _SET_EVENT + b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
    # A keyspace event: it waits for its own write (SET is on the fast lane).
    (b"SET k v\r\n", _SET_EVENT),
    # Inside EXEC (one unit, logged when it ends): the message waits for it.
    (b"MULTI\r\nSET k v\r\nPUBLISH ch hi\r\nEXEC\r\n",
     _SET_EVENT + b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$2\r\nhi\r\n"),
    # An event from a general-lane write (its own unit).
    (b"HSET h f v\r\n", b"*3\r\n$7\r\nmessage\r\n$19\r\n__keyevent@0__:hset\r\n$1\r\nh\r\n"),
])
async def test_messages_and_events_leave_only_once_the_write_is_durable(tmp_path, requests,
                                                                        expected):
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always",
                           notify_keyspace_events="E$h"))
    await server.start()
    try:
        writer = server.writer
        subscriber, publisher = Connection(server), Connection(server)
        sub_out, pub_out = Recording(), Recording()
        subscriber.connection_made(sub_out)  # type: ignore[arg-type]
        publisher.connection_made(pub_out)  # type: ignore[arg-type]
        # The first write of a new directory makes its first segment: let it.
        publisher.data_received(b"SET warm 1\r\n")
        await _until(lambda: pub_out.data == b"+OK\r\n")
        subscriber.data_received(b"SUBSCRIBE ch __keyevent@0__:set __keyevent@0__:hset\r\n")
        await _until(lambda: sub_out.data.endswith(b":3\r\n"))
        sub_out.data = b""
        durable_before = writer.durable_lsn
        publisher.data_received(requests)
        # Two clients: the commit waits for the next loop turn, and so does the message.
        assert writer.applied_lsn > durable_before == writer.durable_lsn
        assert sub_out.data == b""
        seen_at: list = []
        sub_out_write = sub_out.write
        sub_out.write = lambda data: (seen_at.append(writer.durable_lsn), sub_out_write(data))
        await _until(lambda: sub_out.data)
        assert sub_out.data == expected
        assert seen_at[0] >= writer.applied_lsn > durable_before
        subscriber.connection_lost(None)
        publisher.connection_lost(None)
    finally:
        await server.stop()


@pytest.mark.asyncio
async def test_a_publish_after_no_write_is_not_held(tmp_path):
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        subscriber, publisher = Connection(server), Connection(server)
        sub_out, pub_out = Recording(), Recording()
        subscriber.connection_made(sub_out)  # type: ignore[arg-type]
        publisher.connection_made(pub_out)  # type: ignore[arg-type]
        subscriber.data_received(b"SUBSCRIBE ch\r\n")
        await _until(lambda: sub_out.data.endswith(b":1\r\n"))
        sub_out.data = b""
        publisher.data_received(encode_request([b"PUBLISH", b"ch", b"now"]))
        await asyncio.sleep(0)   # (gathered for the rest of the turn, then written)
        assert sub_out.data == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\nnow\r\n"
        assert pub_out.data.endswith(b":1\r\n")
        subscriber.connection_lost(None)
        publisher.connection_lost(None)
    finally:
        await server.stop()


MISS_STEPS = [
    "GET x", "MGET x y", "HGET h f", "HGETALL h", "LRANGE l 0 -1", "SMEMBERS s", "EXISTS x",
    "TYPE x", "TTL x", "STRLEN x", "GETRANGE x 0 1", "LLEN l", "SCARD s", "SISMEMBER s m",
    "LINDEX l 0", "GETBIT b 1", "BITCOUNT b", "HMGET h a", "SRANDMEMBER s", "SINTER s t",
    "GETEX x", "GETDEL x", "COPY nothing z", "TOUCH x", "SET x v", "GET x", "EXISTS x",
]


def test_keymiss_events_match_redis(kv_port, redis_port):  # noqa: F811
    w = Watcher(kv_port, redis_port, "KEm")
    try:
        misses = sum(len(w.same(*step.split(" "))) for step in MISS_STEPS)
        assert misses >= 40
    finally:
        w.close()


@pytest.mark.asyncio
async def test_an_event_for_a_blocked_resp3_subscriber_still_waits_for_its_write(tmp_path):
    """A RESP3 subscriber waiting in BLPOP gets messages at once (as Redis), but still
    only once the write they reveal is durable."""
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always",
                           notify_keyspace_events="E$"))
    await server.start()
    try:
        writer = server.writer
        subscriber, publisher = Connection(server), Connection(server)
        sub_out, pub_out = Recording(), Recording()
        subscriber.connection_made(sub_out)  # type: ignore[arg-type]
        publisher.connection_made(pub_out)  # type: ignore[arg-type]
        publisher.data_received(b"SET warm 1\r\n")
        await _until(lambda: pub_out.data == b"+OK\r\n")
        subscriber.data_received(b"HELLO 3\r\nSUBSCRIBE __keyevent@0__:set\r\nBLPOP q 0\r\n")
        await _until(lambda: sub_out.data.endswith(b":1\r\n"))
        await _until(lambda: server.core.blocking is not None
                     and server.core.blocking.is_waiting(subscriber.client))
        sub_out.data = b""
        durable_before = writer.durable_lsn
        publisher.data_received(b"SET k v\r\n")
        assert writer.applied_lsn > durable_before == writer.durable_lsn
        seen_at: list = []
        sub_out_write = sub_out.write
        sub_out.write = lambda data: (seen_at.append(writer.durable_lsn), sub_out_write(data))
        await _until(lambda: sub_out.data)
        assert sub_out.data == b">3\r\n$7\r\nmessage\r\n$18\r\n__keyevent@0__:set\r\n$1\r\nk\r\n"
        assert seen_at[0] >= writer.applied_lsn > durable_before
        publisher.data_received(b"RPUSH q x\r\n")
        await _until(lambda: sub_out.data.endswith(b"$1\r\nq\r\n$1\r\nx\r\n"))
        subscriber.connection_lost(None)
        publisher.connection_lost(None)
    finally:
        await server.stop()


async def _del_peak(publisher, pub_out, keys) -> int:
    """tracemalloc's peak while one DEL of ``keys`` runs (after an MSET of them)."""
    import tracemalloc
    mset = [b"MSET"]
    for key in keys:
        mset += [key, b"v"]
    pub_out.data = b""
    publisher.data_received(encode_request(mset))
    await _until(lambda: pub_out.data == b"+OK\r\n")
    pub_out.data = b""
    tracemalloc.start()
    try:
        publisher.data_received(encode_request([b"DEL"] + keys))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    await _until(lambda: pub_out.data == b":%d\r\n" % len(keys))
    return peak


@pytest.mark.asyncio
async def test_events_of_one_unit_wait_within_the_pubsub_output_limit(tmp_path):
    """One DEL of 50k keys publishes 50k ``del`` events inside one unit; they wait for
    its record. They must wait within each subscriber's ``client-output-buffer-limit
    pubsub`` (over its hard limit the subscriber is dropped, as Redis drops it),
    not pile up (some 300 bytes each, per subscriber) without bound until the unit
    ends: a big command (or EXEC) times many pattern subscribers was gigabytes."""
    limits = (("normal", 0, 0, 0), ("replica", 0, 0, 0), ("pubsub", 256 * 1024, 0, 0))
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always",
                           notify_keyspace_events="Eg", client_output_buffer_limit=limits))
    await server.start()
    try:
        subscriber, publisher = Connection(server), Connection(server)
        sub_out, pub_out = Recording(), Recording()
        subscriber.connection_made(sub_out)  # type: ignore[arg-type]
        publisher.connection_made(pub_out)  # type: ignore[arg-type]
        baseline = await _del_peak(publisher, pub_out, [b"a:%06d" % i for i in range(50_000)])
        subscriber.data_received(b"PSUBSCRIBE *\r\n")
        await _until(lambda: sub_out.data.endswith(b":1\r\n"))
        peak = await _del_peak(publisher, pub_out, [b"b:%06d" % i for i in range(50_000)])
        assert peak - baseline < 2 * 1024 * 1024, (peak, baseline)
        await _until(lambda: sub_out.closed or subscriber._closed)   # over its limit: dropped
        subscriber.connection_lost(None)
        publisher.connection_lost(None)
    finally:
        await server.stop()
