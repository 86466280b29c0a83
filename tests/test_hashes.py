"""The hash type: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS HVALS
HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN, and hashes in the generic commands.

Most of this is differential: the same requests go to kvserver and to the
real redis-server 7.0.15 and the raw replies must be identical, in RESP2 and
RESP3. HRANDFIELD is random, so it is checked by properties. The rest checks
what Redis cannot show: the WAL (kill -9, restart), the checkpoint codec
(SAVE, restart), what each write logs, COPY's independence, HSCAN's bounded
steps on a big hash and a running checkpoint's pre-image.
"""

from __future__ import annotations

import struct

import pytest

from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from kvserver.types import BY_KIND, BY_TYPE, codec_of
from kvserver.types.hash import HASH, Hash
from test_differential import (same_reply_tests, I64_MAX, I64_MIN, Pair, RawClient, ScanAll,  # noqa: F401
                               Unordered, kv_port, pair, redis_port, run_step)

BIG = 600  # fields: past hash-max-listpack-entries (512 in 7.0), so a hashtable in Redis
BIG_HSET = ("HSET", "big", *[x for i in range(BIG) for x in (f"f{i}", f"v{i}")])

CASES: dict[str, list] = {
    "hset-hget": [
        "HSET h a 1", "HSET h a 2 b 3", "HGET h a", "HGET h b", "HGET h zz", "HGET nokey a",
        "HSET h a 2", "HGETALL h", "HLEN h", "HLEN nokey", ("HSET", "h", "", ""), "HGET h ''",
        ("HGET", "h", ""), ("HSET", "h", "bin\x00ary", "\x00\xff"), ("HGET", "h", "bin\x00ary"),
        "HSET h", "HSET h a", "HSET h a 1 b", "HGET h", "HGET h a b", "HLEN", "HLEN h x",
        "HMSET h c 4 d 5", "HMSET h c", "HMSET h c 4 d", "HMGET h a c zz d", "HMGET nokey a b",
        "HMGET h", "HGETALL h", "HKEYS h", "HVALS h", "HKEYS nokey", "HVALS nokey",
        "HGETALL nokey", "HKEYS", "HVALS h x", "HGETALL h x", "TYPE h", "EXISTS h"],
    "hsetnx-hexists-hstrlen": [
        "HSETNX h a 1", "HSETNX h a 2", "HGET h a", "HSETNX h", "HSETNX h a 1 2",
        "HEXISTS h a", "HEXISTS h b", "HEXISTS nokey a", "HEXISTS h", "HSTRLEN h a",
        "HSTRLEN h zz", "HSTRLEN nokey a", "HSET h long 123456789", "HSTRLEN h long",
        "HSTRLEN h", "HSTRLEN h a b"],
    "hdel-deletes-the-key": [
        "HSET h a 1 b 2 c 3", "HDEL h a", "HDEL h a", "HDEL h zz", "HDEL nokey a",
        "HDEL h b b c", "EXISTS h", "TYPE h", "HLEN h", "HDEL h", "HSET h x 1",
        "EXPIRE h 100", "HSET h y 2", "TTL h", "HDEL h x y", "TTL h", "EXISTS h"],
    "hincrby": [
        "HINCRBY h n 5", "HINCRBY h n -7", "HGET h n", "HINCRBY h n x", "HINCRBY h n 1.5",
        "HINCRBY h n ''", "HSET h s abc", "HINCRBY h s 1", "HSET h sp ' 1'", "HINCRBY h sp 1",
        f"HSET h m {I64_MAX}", "HINCRBY h m 1", "HINCRBY h m 0", "HINCRBY h m -1",
        f"HSET h mn {I64_MIN}", "HINCRBY h mn -1", f"HINCRBY h new {I64_MIN}",
        "HINCRBY h new2 99999999999999999999", "HINCRBY h", "HINCRBY h n", "HINCRBY h n 1 2",
        "HSET h f 1.0", "HINCRBY h f 1", "HGETALL h"],
    "hincrbyfloat": [
        "HINCRBYFLOAT h f 1.5", "HINCRBYFLOAT h f 0.1", "HINCRBYFLOAT h f -1.6", "HGET h f",
        "HINCRBYFLOAT h f 5.0e3", "HINCRBYFLOAT h f 1e-5", "HINCRBYFLOAT h i 3",
        "HINCRBYFLOAT h f x", "HINCRBYFLOAT h f inf", "HINCRBYFLOAT h f -inf",
        "HINCRBYFLOAT h f nan", "HINCRBYFLOAT h f ''", "HSET h s abc", "HINCRBYFLOAT h s 1",
        "HSET h sp '1 '", "HINCRBYFLOAT h sp 1", "HSET h big 1e4932",
        "HINCRBYFLOAT h big 1e4932", "HINCRBYFLOAT h f 1e4933", "HSET h hex 0x10",
        "HINCRBYFLOAT h hex 1", "HINCRBYFLOAT h", "HINCRBYFLOAT h f", "HINCRBYFLOAT h f 1 2",
        "HGETALL h"],
    "wrongtype": [
        "SET s v", "HSET s a 1", "HMSET s a 1", "HSETNX s a 1", "HGET s a", "HMGET s a",
        "HDEL s a", "HEXISTS s a", "HLEN s", "HSTRLEN s a", "HKEYS s", "HVALS s", "HGETALL s",
        "HINCRBY s a 1", "HINCRBY s a x", "HINCRBYFLOAT s a 1", "HINCRBYFLOAT s a x",
        "HRANDFIELD s", "HRANDFIELD s 1", "HRANDFIELD s 1 WITHVALUES", "HRANDFIELD s x", "HRANDFIELD s 0", "HRANDFIELD s -1 WITHVALUES",
        "HSCAN s 0", "HSCAN s 0 COUNT 0", "HSCAN s x",
        "HSET h a 1", "GET h", "APPEND h x", "INCR h", "SETBIT h 1 1", "STRLEN h", "GETDEL h",
        "MGET h s", "SET h v", "TYPE h"],
    "hrandfield-args": [
        "HSET h a 1 b 2 c 3", "HRANDFIELD nokey", "HRANDFIELD nokey 1", "HRANDFIELD nokey -1",
        "HRANDFIELD nokey 1 WITHVALUES", "HRANDFIELD nokey 0", "HRANDFIELD h 0",
        "HRANDFIELD h 0 WITHVALUES", "HRANDFIELD h x", "HRANDFIELD h 1.5", "HRANDFIELD h 1 x",
        "HRANDFIELD h 1 WITHVALUES x", "HRANDFIELD nokey 1 x", "HRANDFIELD nokey x",
        f"HRANDFIELD h {I64_MIN}", f"HRANDFIELD h {I64_MAX} WITHVALUES",
        f"HRANDFIELD h -9223372036854775807 WITHVALUES", "HRANDFIELD h 4611686018427387904 WITHVALUES",
        "HRANDFIELD h 4611686018427387903 withvalues", "HRANDFIELD", "HRANDFIELD one 1 withvalues",
        Unordered("HRANDFIELD h 3"), Unordered("HRANDFIELD h 10"),
        "HRANDFIELD one", "HSET one only v", "HRANDFIELD one", "HRANDFIELD one 1 withvalues",
        "HRANDFIELD one -3", "HRANDFIELD one -2 WITHVALUES", "HRANDFIELD one 5 WITHVALUES"],
    "hscan-small": [
        "HSET h a 1 b 2 c 3 ab 4", "HSCAN h 0", "HSCAN h 0 COUNT 1", "HSCAN h 7",
        "HSCAN h 0 MATCH a*", "HSCAN h 0 match a* count 2", "HSCAN h 0 MATCH zz*",
        "HSCAN nokey 0", "HSCAN nokey 0 COUNT 0", "HSCAN nokey 0 FOO", "HSCAN nokey x",
        "HSCAN h x", "HSCAN h -1", "HSCAN h 0 COUNT 0", "HSCAN h 0 COUNT -1", "HSCAN h 0 COUNT x",
        "HSCAN h 0 COUNT", "HSCAN h 0 MATCH", "HSCAN h 0 TYPE string", "HSCAN h 0 FOO bar",
        "HSCAN h", "HSCAN", ("HSET", "h", "x" * 65, "v"), "HSCAN h 0 MATCH a"],
    "big-hash": [
        BIG_HSET, "HLEN big", "HGET big f150", "HSTRLEN big f199", "HDEL big f0 f1",
        "HLEN big", Unordered("HKEYS big"), Unordered("HVALS big"),
        "HMGET big f2 f3 f0", "HEXISTS big f100"],
    "generic-commands": [
        "HSET h a 1 b 2", "TYPE h", "EXISTS h", "RENAME h h2", "HGETALL h2", "TYPE h",
        "COPY h2 h3", "HSET h3 c 3", "HGETALL h2", "HGETALL h3", "COPY h2 h3",
        "COPY h2 h3 REPLACE", "HGETALL h3", "MOVE h3 1", "EXISTS h3", "SELECT 1",
        "HGETALL h3", "TYPE h3", "COPY h3 h2 DB 0", "SELECT 0", "SET s v", "RENAME h2 s",
        "TYPE s", "HGETALL s", "RENAMENX s h2", "DEL s", "EXISTS s", "HSET a x 1",
        "SET b v", ScanAll(("TYPE", "hash")), ScanAll(("TYPE", "string")),
        ScanAll(("TYPE", "HASH")), "EXPIRE a 100", "TTL a", "PERSIST a", "TTL a",
        "FLUSHDB", "DBSIZE"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_resp3_shapes(pair):
    """The RESP3 types themselves: HGETALL a map, HRANDFIELD WITHVALUES pairs."""
    for c in (pair.kv, pair.redis):
        c.call("HELLO", "3")
        c.call("HSET", "h", "a", "1")
        assert c.call("HGETALL", "h").raw == b"%1\r\n$1\r\na\r\n$1\r\n1\r\n"
        assert c.call("HGETALL", "nokey").raw == b"%0\r\n"
        assert c.call("HRANDFIELD", "h", "-2", "WITHVALUES").raw == \
            b"*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n"
        assert c.call("HRANDFIELD", "nokey").raw == b"_\r\n"
        assert c.call("HINCRBYFLOAT", "h", "a", "0.5").raw == b"$3\r\n1.5\r\n"


def _check_randfield(c: RawClient, fields: dict[bytes, bytes]) -> None:
    n = len(fields)
    for count in (1, 2, n - 1, n, n + 5):
        got = c.call("HRANDFIELD", "h", str(count)).value
        assert len(got) == min(count, n) and len(set(got)) == len(got), got
        assert set(got) <= set(fields)
        flat = c.call("HRANDFIELD", "h", str(count), "WITHVALUES").value
        pairs = list(zip(flat[::2], flat[1::2]))
        assert len(pairs) == min(count, n) and len({f for f, _ in pairs}) == len(pairs)
        assert all(fields[f] == v for f, v in pairs)
    for count in (1, 3, 2 * n, 500):
        got = c.call("HRANDFIELD", "h", str(-count)).value
        assert len(got) == count and set(got) <= set(fields)
        flat = c.call("HRANDFIELD", "h", str(-count), "WITHVALUES").value
        assert len(flat) == 2 * count
        assert all(fields[f] == v for f, v in zip(flat[::2], flat[1::2]))
    assert c.call("HRANDFIELD", "h").value in fields
    # Over many draws every field comes up (a biased picker would miss some).
    seen = set(c.call("HRANDFIELD", "h", str(-40 * n)).value)
    assert seen == set(fields)


@pytest.mark.parametrize("size", [5, BIG])
def test_hrandfield_properties(pair, size):
    fields = {b"f%d" % i: b"v%d" % i for i in range(size)}
    for c in (pair.kv, pair.redis):  # the same properties hold on both
        c.call("HSET", "h", *[x for kv in fields.items() for x in kv])
        _check_randfield(c, fields)


def test_hrandfield_refuses_an_unbounded_repeat_count(pair):
    """Redis streams any count; here a reply is built first, so it has a named bound."""
    from kvserver.commands.hashes import MAX_RANDFIELD_REPEATS
    pair.kv.call("HSET", "h", "a", "1")
    reply = pair.kv.call("HRANDFIELD", "h", str(-(MAX_RANDFIELD_REPEATS + 1)))
    assert reply.raw.startswith(b"-ERR count is out of range")


@pytest.mark.parametrize("resp", ["2", "3"])
def test_hscan_on_a_big_hash_is_bounded_and_complete(pair, resp):
    """A hashtable-encoded hash is scanned in COUNT-sized steps; a full
    iteration returns every field (and values), as Redis's."""
    for c in (pair.kv, pair.redis):
        c.call("HELLO", resp)
        c.call(*BIG_HSET)
        found = {}
        cursor, steps = b"0", 0
        while True:
            cursor, flat = c.call("HSCAN", "big", cursor, "COUNT", "10").value
            assert len(flat) // 2 <= 10 * 8 + 10  # bounded by COUNT (buckets, not the hash)
            found.update(zip(flat[::2], flat[1::2]))
            steps += 1
            if cursor == b"0":
                break
            assert steps < 1000
        assert steps > 2
        assert found == {b"f%d" % i: b"v%d" % i for i in range(BIG)}
        cursor, flat = c.call("HSCAN", "big", "0", "MATCH", "f1?", "COUNT", "1000").value
        assert cursor == b"0" and set(flat[::2]) == {b"f%d" % i for i in range(10, 20)}


def test_hscan_sees_every_field_present_throughout_while_the_hash_changes(kv):
    c = RawClient(kv.port)
    try:
        c.call(*BIG_HSET)
        found, cursor, i = set(), b"0", 0
        while True:
            cursor, flat = c.call("HSCAN", "big", cursor, "COUNT", "5").value
            found.update(flat[::2])
            # churn: add many new fields (the index grows) and delete others
            c.call("HSET", "big", *[x for j in range(50) for x in (f"n{i}-{j}", "x")])
            c.call("HDEL", "big", *[f"n{i - 1}-{j}" for j in range(50)])
            i += 1
            if cursor == b"0":
                break
            assert i < 5000
        assert {b"f%d" % i for i in range(BIG)} <= found
    finally:
        c.close()


# --- what Redis cannot show ------------------------------------------------------

def _session():
    core = Core(Config(port=0))
    logged = []
    core.log = lambda s, argv: logged.append(list(argv))  # noqa: E731
    return Session(core), logged


def test_writes_log_their_deterministic_effect(kv_process, tmp_path):
    """HINCRBYFLOAT logs HSET of the exact value; HRANDFIELD logs nothing; a
    no-op HDEL/HSETNX logs nothing (checked through the WAL of a real process)."""
    server = kv_process()
    c = RawClient(server.port)
    try:
        c.call("HSET", "h", "f", "0.1", "g", "x")
        c.call("HINCRBYFLOAT", "h", "f", "0.2")
        c.call("HINCRBY", "h", "i", "5")
        c.call("HSETNX", "h", "g", "y")
        c.call("HDEL", "h", "nope")
        c.call("HDEL", "h", "g", "g", "nope")
        c.call("HRANDFIELD", "h", "-5")
        c.call("HSCAN", "h", "0")
    finally:
        c.close()
    server.kill9()
    records = _wal_commands(tmp_path / "data")
    hash_records = [r for r in records if r[0].upper().startswith(b"H")]
    assert hash_records == [
        [b"HSET", b"h", b"f", b"0.1", b"g", b"x"],
        [b"HSET", b"h", b"f", b"0.3"],
        [b"HSET", b"h", b"i", b"5"],
        [b"HDEL", b"h", b"g"],
    ]


def _wal_commands(data_dir) -> list[list[bytes]]:
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment
    fs = OSFileSystem()
    out = []
    for first, path in list_segments(fs, str(data_dir)):
        for record in scan_segment(fs.read(path), path, first).records:
            out.extend(argv for _, argv in record.effects)
    return out


HASH_SCRIPT = [
    ("HSET", "h", "a", "1", "b", "2", "c", "3"), ("HDEL", "h", "b"),
    ("HINCRBY", "h", "n", "41"), ("HINCRBY", "h", "n", "1"),
    ("HINCRBYFLOAT", "h", "f", "10.5"), ("HINCRBYFLOAT", "h", "f", "0.1"),
    ("HSETNX", "h", "a", "x"), ("HSETNX", "h", "d", "4"), ("HMSET", "h", "e", "5"),
    BIG_HSET, ("HDEL", "big", "f7"), ("HSET", "gone", "x", "1"), ("HDEL", "gone", "x"),
    ("HSET", "t", "k", "v"), ("PEXPIREAT", "t", "4102444800000"),
    ("HSET", "bin", "\x00", "\xff" * 100), ("COPY", "h", "hc"), ("HSET", "hc", "z", "26"),
    ("RENAME", "hc", "hr"), ("MOVE", "hr", "2"),
]


def _state(port: int) -> list:
    c = RawClient(port)
    try:
        out = []
        for db in ("0", "2"):
            c.call("SELECT", db)
            for key in sorted(c.call("KEYS", "*").value):
                out.append((db, key, c.call("TYPE", key).raw, c.call("PEXPIRETIME", key).raw,
                            sorted(c.call("HGETALL", key).value)
                            if c.call("TYPE", key).raw == b"+hash\r\n" else None))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("how", ["kill9", "save-then-kill9", "save-then-sigterm"])
def test_hashes_survive_restart(kv_process, redis_port, how):
    """kill -9 (WAL replay) and SAVE (the checkpoint codec) keep every hash,
    and what comes back equals what Redis holds after the same script."""
    server = kv_process()
    kv, redis = RawClient(server.port), RawClient(redis_port)
    try:
        redis.call("FLUSHALL")
        for argv in HASH_SCRIPT:
            assert kv.call(*argv).raw == redis.call(*argv).raw, argv
        if how != "kill9":
            assert kv.call("SAVE").raw == b"+OK\r\n"
            kv.call("HSET", "h", "after", "save")  # a WAL record past the checkpoint
            redis.call("HSET", "h", "after", "save")
    finally:
        kv.close()
        redis.close()
    before = _state(server.port)
    assert before == _state(redis_port)
    assert ("0", b"big", b"+hash\r\n", b":-1\r\n") == before[0][:4]
    if how == "save-then-sigterm":
        assert server.terminate() == 0
    else:
        server.kill9()
    again = kv_process()
    assert _state(again.port) == before


def test_codec_round_trip_and_registration():
    assert BY_KIND[2] is HASH and BY_TYPE[Hash] is HASH
    h = Hash()
    for i in range(10):
        h.put(b"f%d" % i, b"\x00" * i)
    assert codec_of(h) is HASH and HASH.name == "hash"
    back = HASH.decode(memoryview(HASH.encode(h)))
    assert type(back) is Hash and back == h and back.nbytes == h.nbytes
    assert HASH.size(h) >= len(HASH.encode(h)) - 4
    assert HASH.encoding(h) == "listpack"
    h.put(b"long", b"x" * 65)
    assert HASH.encoding(h) == "hashtable"
    h.drop(b"long")
    assert HASH.encoding(h) == "hashtable"  # Redis never converts back
    assert HASH.encoding(HASH.decode(HASH.encode(h))) == "listpack"  # a load judges afresh
    big = Hash((b"%d" % i, b"") for i in range(513))
    assert HASH.encoding(big) == "hashtable"
    for bad in (b"", b"\x01\x00\x00\x00", HASH.encode(h) + b"x", HASH.encode(h)[:-1],
                b"\x02\x00\x00\x00" + b"\x01\x00\x00\x00a\x00\x00\x00\x00" * 2):
        with pytest.raises((ValueError, IndexError, struct.error)):
            HASH.decode(memoryview(bad))


def test_copy_gives_an_independent_hash():
    """COPY of a mutable kind copies (the generic fix in keys.py): changing
    the copy leaves the source alone, at the Python level too."""
    s, _ = _session()
    from kvserver import commands
    commands.execute(s, [b"HSET", b"h", b"a", b"1"])
    commands.execute(s, [b"COPY", b"h", b"c"])
    assert s.db.data[b"h"] is not s.db.data[b"c"]
    commands.execute(s, [b"HSET", b"c", b"b", b"2"])
    assert s.db.data[b"h"] == {b"a": b"1"}


def test_running_checkpoint_keeps_the_pre_image():
    """A hash changed while a checkpoint runs: the snapshot sees the old fields."""
    s, _ = _session()
    from kvserver import commands
    preserved = []

    class Snap:
        def preserve(self, db, key):
            preserved.append((key, codec_of(db.data[key]).snapshot_copy(db.data[key])))

    commands.execute(s, [b"HSET", b"h", b"a", b"1"])
    s.core.keyspace.set_snapshot(Snap())
    commands.execute(s, [b"HSET", b"h", b"b", b"2"])
    commands.execute(s, [b"HDEL", b"h", b"nope"])  # no change: no pre-image
    s.core.keyspace.set_snapshot(None)
    assert preserved == [(b"h", {b"a": b"1"})]
    assert s.db.data[b"h"] == {b"a": b"1", b"b": b"2"}


def test_modified_fires_only_for_real_changes():
    s, _ = _session()
    from kvserver import commands
    seen = []
    s.core.keyspace.add_modified_listener(lambda db, key: seen.append(key))
    commands.execute(s, [b"HSET", b"h", b"a", b"1"])
    assert seen == [b"h"]
    for argv in ([b"HSETNX", b"h", b"a", b"2"], [b"HDEL", b"h", b"zz"],
                 [b"HINCRBY", b"h", b"a", b"x"], [b"HDEL", b"nokey", b"a"]):
        try:
            commands.execute(s, argv)
        except Exception:
            pass
    assert seen == [b"h"]  # refused or no-op writes signal nothing
    commands.execute(s, [b"SET", b"str", b"abc"])
    for argv in ([b"HINCRBY", b"h", b"str", b"1"],):
        commands.execute(s, [b"HSET", b"h", b"str", b"abc"])
        seen.clear()
        try:
            commands.execute(s, argv)
        except Exception:
            pass
        assert seen == []
    seen.clear()
    commands.execute(s, [b"HDEL", b"h", b"a", b"str"])
    assert seen == [b"h"] and b"h" not in s.db.data


def test_hscan_index_shrinks_with_the_hash():
    """After a big hash loses most fields, an HSCAN step walks a table sized
    for what is left (not the old one of empty buckets), and still finds all."""
    s, _ = _session()
    from kvserver import commands
    commands.execute(s, [b"HSET", b"h", *[x for i in range(20000) for x in (b"f%d" % i, b"v")]])
    cursor, flat = commands.execute(s, [b"HSCAN", b"h", b"0", b"COUNT", b"5"])
    big_table = len(s.db.data[b"h"].scan.buckets)
    commands.execute(s, [b"HDEL", b"h", *[b"f%d" % i for i in range(10, 20000)]])
    found = set(flat[::2])
    for _ in range(100):
        cursor, flat = commands.execute(s, [b"HSCAN", b"h", cursor, b"COUNT", b"1"])
        found.update(flat[::2])
        if cursor == b"0":
            break
    assert len(s.db.data[b"h"].scan.buckets) < big_table // 100
    assert {b"f%d" % i for i in range(10)} <= found
