"""The set type: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SPOP SRANDMEMBER
SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN,
and sets in the generic commands.

Most of this is differential: the same requests go to kvserver and to the
real redis-server 7.0.15 and the raw replies must be identical, in RESP2 and
RESP3 (a set's order is the server's own, so multi-member replies compare as
sets). SPOP and SRANDMEMBER are random, so they are checked by properties.
The rest checks what Redis cannot show: the WAL (kill -9, restart, SPOP
logged as SREM), the checkpoint codec (SAVE, restart), COPY's independence,
SSCAN's bounded steps and a running checkpoint's pre-image.
"""

from __future__ import annotations

import random
import struct

import pytest

from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from kvserver.types import BY_KIND, BY_TYPE, codec_of
from kvserver.types.set import SET, Set
from test_differential import (same_reply_tests, I64_MAX, I64_MIN, Kind, Pair, RawClient, ScanAll,  # noqa: F401
                               Unordered, kv_port, pair, redis_port, run_step)

BIG = 600  # members: past set-max-intset-entries (512), so a hashtable in Redis
BIG_SADD = ("SADD", "big", *[str(i) for i in range(BIG)])
U = Unordered

CASES: dict[str, list] = {
    "sadd-srem-scard": [
        "SADD s a", "SADD s a b c", "SADD s c d d", U("SMEMBERS s"), "SCARD s", "SCARD nokey",
        ("SADD", "s", ""), ("SADD", "s", "bin\x00ary"), ("SISMEMBER", "s", "bin\x00ary"),
        "SREM s a", "SREM s a", "SREM s zz", "SREM nokey a", "SREM s b c zz c", U("SMEMBERS s"),
        "SMEMBERS nokey", "SADD s", "SADD", "SREM s", "SCARD", "SCARD s x", "SMEMBERS",
        "SMEMBERS s x", "TYPE s", "SREM s d '' bin\x00ary", "EXISTS s", "TYPE s",
        "SADD t x", "EXPIRE t 100", "SADD t y", "TTL t", "SREM t x y", "TTL t", "EXISTS t"],
    "sismember-smismember": [
        "SADD s a b 1", "SISMEMBER s a", "SISMEMBER s z", "SISMEMBER nokey a", "SISMEMBER s 1",
        "SISMEMBER s", "SISMEMBER s a b", "SMISMEMBER s a z 1", "SMISMEMBER nokey a b",
        "SMISMEMBER s", "SMISMEMBER s a"],
    "encodings": [
        "SADD i 1 2 3 -5", U("SMEMBERS i"), "SSCAN i 0", "SADD i 01",
        "SREM i 01", "SADD j 9223372036854775807",
        "SADD j 9223372036854775808", 
        "SADD k ' 1'", "SADD l -0", "SADD m +1",
        "SADD n a 1", 
        ("SADD", "big", *[str(i) for i in range(512)]), 
        "SADD big 512", "SREM big 512 511"],
    "spop-args": [
        "SADD s a", "SPOP nokey", "SPOP nokey 0", "SPOP nokey 3", "SPOP s 0", "SPOP s -1",
        "SPOP s x", "SPOP s 1.5", "SPOP s ''", "SPOP s 1 2", "SPOP nokey -1", "SPOP nokey x",
        f"SPOP s {I64_MIN}", "SPOP", "SPOP s", "EXISTS s", "SADD s a b", U("SPOP s 5"),
        "EXISTS s", "SADD s 1", "SPOP s 1", "SPOP s 1"],
    "srandmember-args": [
        "SADD s a b c", "SRANDMEMBER nokey", "SRANDMEMBER nokey 1", "SRANDMEMBER nokey -1",
        "SRANDMEMBER nokey 0", "SRANDMEMBER s 0", "SRANDMEMBER s x", "SRANDMEMBER s 1.5",
        "SRANDMEMBER s 1 2", "SRANDMEMBER nokey x", f"SRANDMEMBER s {I64_MIN}",
        "SRANDMEMBER s -9223372036854775807 x", "SRANDMEMBER", U("SRANDMEMBER s 3"),
        U("SRANDMEMBER s 10"), f"SADD one only", "SRANDMEMBER one", "SRANDMEMBER one -3",
        "SRANDMEMBER one 5", "SADD ints 3 1 2", "SRANDMEMBER ints 10", "SCARD s"],
    "smove": [
        "SADD a 1 2 x", "SADD b 3", "SMOVE a b 1", U("SMEMBERS a"), U("SMEMBERS b"),
        "SMOVE a b zz", "SMOVE nokey b 1", "SMOVE a newkey 2", "SMEMBERS newkey",
        "SMOVE a a x", "SMOVE a a zz", "SMOVE b a 3", "SMOVE b a 1", "EXISTS b",
        "SET str v", "SMOVE a str x", "SMOVE str a x", "SMOVE nokey str x", "SMOVE str str x",
        "SMOVE a", "SMOVE a b", "SMOVE a b c d", U("SMEMBERS a"), "SADD c x", "SMOVE c a x",
        "EXISTS c", U("SMEMBERS a")],
    "sinter-sunion-sdiff": [
        "SADD a 1 2 3 4 x", "SADD b 2 3 x y", "SADD c 3 x z", U("SINTER a b c"), U("SINTER a"),
        "SINTER a nokey", "SINTER nokey a", U("SUNION a b c"), U("SUNION a nokey"),
        "SUNION nokey", U("SDIFF a b"), U("SDIFF a b c"), U("SDIFF a nokey"), "SDIFF nokey a",
        U("SDIFF b a c"), "SDIFF a a", "SINTER", "SUNION", "SDIFF", U("SINTER a a"),
        "SET str v", "SINTER a str", "SINTER nokey str", "SUNION a str", "SDIFF a str",
        "SDIFF nokey str", "SINTER str"],
    "stores": [
        "SADD a 1 2 3 x", "SADD b 2 3 x y", "SINTERSTORE d a b", U("SMEMBERS d"),
        "SUNIONSTORE d a b", U("SMEMBERS d"), "SDIFFSTORE d a b",
        U("SMEMBERS d"), "SINTERSTORE d a nokey", "EXISTS d",
        "SDIFFSTORE d a a", "EXISTS d", "SUNIONSTORE d nokey", "SET d v", "EXPIRE d 100",
        "SUNIONSTORE d a", "TTL d", "TYPE d", "SINTERSTORE a a b", U("SMEMBERS a"),
        "SET str v", "SINTERSTORE d a str", "SUNIONSTORE d str", "SDIFFSTORE d str a",
        "SDIFFSTORE d nokey str", "TYPE d", "SINTERSTORE str a", "TYPE str", "SINTERSTORE d",
        "SUNIONSTORE", "SDIFFSTORE d", "SADD i 5 6", "SUNIONSTORE d i"],
    "sintercard": [
        "SADD a 1 2 3 4 x", "SADD b 2 3 x y", "SINTERCARD 2 a b", "SINTERCARD 1 a",
        "SINTERCARD 2 a nokey", "SINTERCARD 2 a b LIMIT 2", "SINTERCARD 2 a b LIMIT 0",
        "SINTERCARD 2 a b limit 100", "SINTERCARD 2 a b LIMIT 1 LIMIT 3",
        "SINTERCARD 0 a", "SINTERCARD -1 a", "SINTERCARD x a", "SINTERCARD 3 a b",
        "SINTERCARD 2 a b LIMIT -1", "SINTERCARD 2 a b LIMIT x", "SINTERCARD 2 a b LIMIT",
        "SINTERCARD 2 a b FOO 1", "SINTERCARD 1 a b", "SINTERCARD", "SINTERCARD 1",
        "SET str v", "SINTERCARD 2 a str", "SINTERCARD 2 nokey str", "SINTERCARD 1 str LIMIT x",
        f"SINTERCARD {I64_MAX} a", "SINTERCARD 99999999999999999999 a"],
    "sscan-small": [
        "SADD s a b c ab", Kind("SSCAN s 0"), Kind("SSCAN s 0 COUNT 1"), "SSCAN s 0 MATCH c*",
        Kind("SSCAN s 0 match ab count 2"), "SSCAN s 0 match ab count 100", "SSCAN s 0 MATCH zz*", "SSCAN nokey 0",
        "SSCAN nokey 0 COUNT 0", "SSCAN nokey 0 FOO", "SSCAN nokey x", "SSCAN s x",
        Kind("SSCAN s -1"), Kind("SSCAN s 7"), "SSCAN s 0 COUNT 0", "SSCAN s 0 COUNT -1", "SSCAN s 0 COUNT x",
        "SSCAN s 0 COUNT", "SSCAN s 0 MATCH", "SSCAN s 0 TYPE string", "SSCAN s 0 FOO bar",
        "SSCAN s", "SSCAN", "SADD i 10 3 -2 7", "SSCAN i 0", "SSCAN i 0 COUNT 1",
        "SSCAN i 0 MATCH 1*", "SSCAN i 5"],
    "wrongtype": [
        "SET str v", "SADD str a", "SREM str a", "SCARD str", "SISMEMBER str a",
        "SMISMEMBER str a", "SMEMBERS str", "SPOP str", "SPOP str 1", "SPOP str x",
        "SRANDMEMBER str", "SRANDMEMBER str 1", "SRANDMEMBER str x", "SSCAN str 0",
        "SSCAN str x", "SSCAN str 0 COUNT 0", "HSET h f v", "SADD h a", "SINTER h",
        "SADD s a", "GET s", "APPEND s x", "HSET s f v", "HGET s f", "INCR s", "STRLEN s",
        "MGET s str", "SET s v", "TYPE s"],
    "big-set": [
        BIG_SADD, "SCARD big", "SISMEMBER big 150", "SREM big 0 1", "SCARD big",
        U("SMEMBERS big"), "SADD other 5 7 9999", U("SINTER big other"),
        "SINTERCARD 2 big other", "SINTERCARD 2 big other LIMIT 1", U("SDIFF other big"),
        "SUNIONSTORE u big other", "SCARD u", "SPOP big 0"],
    "generic-commands": [
        "SADD s a b", "TYPE s", "EXISTS s", "RENAME s s2", U("SMEMBERS s2"), "TYPE s",
        "COPY s2 s3", "SADD s3 c", U("SMEMBERS s2"), U("SMEMBERS s3"), "COPY s2 s3",
        "COPY s2 s3 REPLACE", U("SMEMBERS s3"), "MOVE s3 1", "EXISTS s3", "SELECT 1",
        U("SMEMBERS s3"), "TYPE s3", "COPY s3 s2 DB 0", "SELECT 0", "SET x v",
        "RENAME s2 x", "TYPE x", "DEL x", "SADD a 1", "SET b v", "HSET c f v",
        ScanAll(("TYPE", "set")), ScanAll(("TYPE", "SET")), ScanAll(("TYPE", "string")),
        "EXPIRE a 100", "TTL a", "PERSIST a", "TTL a", "FLUSHDB", "DBSIZE"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_resp3_shapes(pair):
    """The RESP3 types themselves: sets (~) for SMEMBERS/SINTER/SUNION/SDIFF
    and SPOP with a count, arrays for SRANDMEMBER and SMISMEMBER, nulls."""
    for c in (pair.kv, pair.redis):
        c.call("HELLO", "3")
        c.call("SADD", "s", "a")
        for argv in (("SMEMBERS", "s"), ("SINTER", "s"), ("SUNION", "s"), ("SDIFF", "s")):
            assert c.call(*argv).raw == b"~1\r\n$1\r\na\r\n", argv
        for argv in (("SMEMBERS", "no"), ("SINTER", "s", "no"), ("SUNION", "no"),
                     ("SDIFF", "no"), ("SPOP", "no", "2"), ("SPOP", "s", "0")):
            assert c.call(*argv).raw == b"~0\r\n", argv
        assert c.call("SRANDMEMBER", "s", "-2").raw == b"*2\r\n$1\r\na\r\n$1\r\na\r\n"
        assert c.call("SRANDMEMBER", "s", "2").raw == b"*1\r\n$1\r\na\r\n"
        assert c.call("SRANDMEMBER", "no", "2").raw == b"*0\r\n"
        assert c.call("SRANDMEMBER", "no").raw == b"_\r\n"
        assert c.call("SPOP", "no").raw == b"_\r\n"
        assert c.call("SMISMEMBER", "s", "a", "b").raw == b"*2\r\n:1\r\n:0\r\n"
        assert c.call("SPOP", "s", "5").raw == b"~1\r\n$1\r\na\r\n"


def _check_random(c: RawClient, members: set[bytes]) -> None:
    n = len(members)
    for count in (1, 2, n - 1, n, n + 5):
        got = c.call("SRANDMEMBER", "s", str(count)).value
        assert len(got) == min(count, n) and len(set(got)) == len(got), got
        assert set(got) <= members
    for count in (1, 3, 2 * n, 500):
        got = c.call("SRANDMEMBER", "s", str(-count)).value
        assert len(got) == count and set(got) <= members
    assert c.call("SRANDMEMBER", "s").value in members
    seen = set(c.call("SRANDMEMBER", "s", str(-40 * n)).value)
    assert seen == members  # a biased picker would miss some
    assert c.call("SCARD", "s").value == n  # reads change nothing
    # SPOP removes what it returns, and nothing else.
    left = set(members)
    for count in (None, 1, 3, n):
        reply = c.call("SPOP", "s") if count is None else c.call("SPOP", "s", str(count))
        got = [reply.value] if count is None else reply.value
        assert len(got) == min(1 if count is None else count, len(left))
        assert set(got) <= left and len(set(got)) == len(got)
        left -= set(got)
        assert set(c.call("SMEMBERS", "s").value) == left
    assert not left and c.call("EXISTS", "s").value == 0


@pytest.mark.parametrize("size", [5, BIG])
def test_spop_and_srandmember_properties(pair, size):
    members = {b"m%d" % i for i in range(size)}
    for c in (pair.kv, pair.redis):  # the same properties hold on both
        c.call("SADD", "s", *members)
        _check_random(c, members)


def test_srandmember_refuses_an_unbounded_repeat_count(pair):
    """Redis streams any count; here a reply is built first, so it has a named bound."""
    from kvserver.commands.sets import MAX_RANDMEMBER_REPEATS
    pair.kv.call("SADD", "s", "a")
    reply = pair.kv.call("SRANDMEMBER", "s", str(-(MAX_RANDMEMBER_REPEATS + 1)))
    assert reply.raw.startswith(b"-ERR count is out of range")
    assert len(pair.kv.call("SRANDMEMBER", "s", str(-1000)).value) == 1000


def test_random_operations_match_a_model(pair):
    """Random set commands over a few keys: every reply equals Redis's (as
    sets where the order is the server's); SPOP/SRANDMEMBER by properties."""
    rng = random.Random(1414)
    keys = ["a", "b", "c", "d"]
    pool = [str(i) for i in range(12)] + ["x", "y", "z", ""]
    for _ in range(400):
        op = rng.choice(["SADD", "SREM", "SISMEMBER", "SMISMEMBER", "SCARD", "SMOVE",
                         "SINTER", "SUNION", "SDIFF", "SINTERSTORE", "SUNIONSTORE",
                         "SDIFFSTORE", "SINTERCARD", "SMEMBERS", "SPOP", "SRANDMEMBER"])
        k = rng.choice(keys)
        ms = rng.sample(pool, rng.randint(1, 4))
        some = rng.sample(keys, rng.randint(1, 3))
        if op in ("SADD", "SREM", "SMISMEMBER"):
            run_step(pair, (op, k, *ms))
        elif op == "SISMEMBER":
            run_step(pair, (op, k, ms[0]))
        elif op in ("SCARD",):
            run_step(pair, (op, k))
        elif op == "SMOVE":
            run_step(pair, (op, k, rng.choice(keys), ms[0]))
        elif op in ("SINTER", "SUNION", "SDIFF"):
            run_step(pair, Unordered((op, *some)))
        elif op.endswith("STORE"):
            run_step(pair, (op, rng.choice(keys), *some))
        elif op == "SINTERCARD":
            run_step(pair, (op, str(len(some)), *some, "LIMIT", str(rng.randint(0, 5))))
        elif op == "SMEMBERS":
            run_step(pair, Unordered((op, k)))
        elif op == "SPOP":
            # Pop the same members on both sides: pop on kv, then SREM them on Redis.
            got = pair.kv.call("SPOP", k, "2").value
            assert len(got) == min(2, pair.redis.call("SCARD", k).value)
            assert all(pair.redis.call("SISMEMBER", k, m).value == 1 for m in got)
            if got:
                pair.redis.call("SREM", k, *got)
        else:
            got = pair.kv.call("SRANDMEMBER", k, "-3").value
            assert all(pair.redis.call("SISMEMBER", k, m).value == 1 for m in got)
    for k in keys:
        run_step(pair, Unordered(("SMEMBERS", k)))


@pytest.mark.parametrize("resp", ["2", "3"])
def test_sscan_on_a_big_set_is_bounded_and_complete(pair, resp):
    for c in (pair.kv, pair.redis):
        c.call("HELLO", resp)
        c.call(*BIG_SADD)
        c.call("SADD", "big", "notanint")
        found = set()
        cursor, steps = b"0", 0
        while True:
            cursor, page = c.call("SSCAN", "big", cursor, "COUNT", "10").value
            assert len(page) <= 10 * 8 + 10  # bounded by COUNT (buckets, not the set)
            found.update(page)
            steps += 1
            if cursor == b"0":
                break
            assert steps < 1000
        assert steps > 2
        assert found == {b"%d" % i for i in range(BIG)} | {b"notanint"}
        cursor, page = c.call("SSCAN", "big", "0", "MATCH", "1?", "COUNT", "1000").value
        assert cursor == b"0" and set(page) == {b"%d" % i for i in range(10, 20)}


# --- what Redis cannot show ------------------------------------------------------

def _session():
    core = Core(Config(port=0))
    logged = []
    core.log = lambda s, argv: logged.append(list(argv))  # noqa: E731
    return Session(core), logged


def _wal_records(data_dir) -> list[list[list[bytes]]]:
    """Each WAL record's effects (one record = one execution unit)."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment
    fs = OSFileSystem()
    out = []
    for first, path in list_segments(fs, str(data_dir)):
        for record in scan_segment(fs.read(path), path, first).records:
            out.append([argv for _, argv in record.effects])
    return out


def test_writes_log_their_deterministic_effect(kv_process, tmp_path):
    """SPOP logs SREM of what it removed; SMOVE SREM+SADD in one record; the
    *STORE commands their resulting set; reads and no-ops log nothing
    (checked through the WAL of a real process)."""
    server = kv_process()
    c = RawClient(server.port)
    try:
        c.call("SADD", "s", "a", "b", "c", "d")
        c.call("SADD", "s", "a", "e")
        popped_one = c.call("SPOP", "s").value
        popped = c.call("SPOP", "s", "2").value
        c.call("SREM", "s", "nope")
        c.call("SRANDMEMBER", "s", "-5")
        c.call("SSCAN", "s", "0")
        left = sorted(c.call("SMEMBERS", "s").value)
        c.call("SADD", "t", "x")
        c.call("SMOVE", "s", "t", left[0])
        c.call("SMOVE", "s", "t", "nope")
        c.call("SUNIONSTORE", "u", "s", "t")
        c.call("SINTERSTORE", "u", "s", "nokey")
        c.call("SINTERSTORE", "u", "s", "nokey")
    finally:
        c.close()
    server.kill9()
    records = [r for r in _wal_records(tmp_path / "data") if r[0][0].upper().startswith((b"S", b"D"))]
    assert records[:3] == [[[b"SADD", b"s", b"a", b"b", b"c", b"d"]], [[b"SADD", b"s", b"e"]],
                           [[b"SREM", b"s", popped_one]]]
    assert records[3][0][:2] == [b"SREM", b"s"] and sorted(records[3][0][2:]) == sorted(popped)
    assert records[4] == [[b"SADD", b"t", b"x"]]
    assert records[5] == [[b"SREM", b"s", left[0]], [b"SADD", b"t", left[0]]]  # one unit
    assert records[6][0][:2] == [b"SADD", b"u"] and len(records[6]) == 1
    assert sorted(records[6][0][2:]) == sorted(set(left) | {b"x"})
    assert records[7] == [[b"DEL", b"u"]]
    assert len(records) == 8


SET_SCRIPT = [
    ("SADD", "s", "a", "b", "c", "1"), ("SREM", "s", "b"), ("SADD", "i", "3", "1", "2"),
    BIG_SADD, ("SREM", "big", "7"), ("SADD", "gone", "x"), ("SREM", "gone", "x"),
    ("SADD", "t", "k"), ("PEXPIREAT", "t", "4102444800000"),
    ("SADD", "bin", "\x00", "\xff" * 100), ("SMOVE", "s", "t", "a"),
    ("SUNIONSTORE", "u", "s", "t", "i"), ("SINTERSTORE", "v", "big", "i"),
    ("SDIFFSTORE", "w", "big", "i"), ("COPY", "s", "sc"), ("SADD", "sc", "z"),
    ("RENAME", "sc", "sr"), ("MOVE", "sr", "2"),
]


def _state(port: int) -> list:
    c = RawClient(port)
    try:
        out = []
        for db in ("0", "2"):
            c.call("SELECT", db)
            for key in sorted(c.call("KEYS", "*").value):
                is_set = c.call("TYPE", key).raw == b"+set\r\n"
                out.append((db, key, c.call("TYPE", key).raw, c.call("PEXPIRETIME", key).raw,
                            sorted(c.call("SMEMBERS", key).value) if is_set else None))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("how", ["kill9", "save-then-kill9", "save-then-sigterm"])
def test_sets_survive_restart(kv_process, redis_port, how):
    """kill -9 (WAL replay) and SAVE (the checkpoint codec) keep every set,
    and what comes back equals what Redis holds after the same script."""
    server = kv_process()
    kv, redis = RawClient(server.port), RawClient(redis_port)
    try:
        redis.call("FLUSHALL")
        for argv in SET_SCRIPT:
            assert kv.call(*argv).raw == redis.call(*argv).raw, argv
        kv_pop = kv.call("SPOP", "big", "5").value  # the same pop on Redis, by SREM
        assert redis.call("SREM", "big", *kv_pop).value == 5
        if how != "kill9":
            assert kv.call("SAVE").raw == b"+OK\r\n"
            kv.call("SADD", "s", "after-save")  # a WAL record past the checkpoint
            redis.call("SADD", "s", "after-save")
    finally:
        kv.close()
        redis.close()
    before = _state(server.port)
    assert before == _state(redis_port)
    if how == "save-then-sigterm":
        assert server.terminate() == 0
    else:
        server.kill9()
    again = kv_process()
    assert _state(again.port) == before


def test_codec_round_trip_and_registration():
    assert BY_KIND[4] is SET and BY_TYPE[Set] is SET and SET.name == "set"
    s = Set()
    for i in range(10):
        s.add_member(b"%d" % i)
    assert codec_of(s) is SET and SET.encoding(s) == "intset"
    back = SET.decode(memoryview(SET.encode(s)))
    assert type(back) is Set and back == s and back.nbytes == s.nbytes
    assert SET.size(s) >= len(SET.encode(s))
    s.add_member(b"\x00x")
    assert SET.encoding(s) == "hashtable"
    s.drop(b"\x00x")
    assert SET.encoding(s) == "hashtable"  # Redis never converts back
    assert SET.encoding(SET.decode(SET.encode(s))) == "intset"  # a load judges afresh
    assert SET.encoding(Set(b"%d" % i for i in range(513))) == "hashtable"
    assert SET.encoding(Set(b"%d" % i for i in range(512))) == "intset"
    for bad in (b"", b"\x01\x00\x00\x00", SET.encode(s) + b"x", SET.encode(s)[:-1],
                b"\x02\x00\x00\x00" + b"\x01\x00\x00\x00a" * 2):
        with pytest.raises((ValueError, IndexError, struct.error)):
            SET.decode(memoryview(bad))


def test_copy_gives_an_independent_set():
    s, _ = _session()
    from kvserver import commands
    commands.execute(s, [b"SADD", b"s", b"a"])
    commands.execute(s, [b"COPY", b"s", b"c"])
    assert s.db.data[b"s"] is not s.db.data[b"c"]
    commands.execute(s, [b"SADD", b"c", b"b"])
    commands.execute(s, [b"SREM", b"c", b"a"])
    assert s.db.data[b"s"] == {b"a"} and s.db.data[b"c"] == {b"b"}


def test_running_checkpoint_keeps_the_pre_image():
    s, _ = _session()
    from kvserver import commands
    preserved = []

    class Snap:
        def preserve(self, db, key):
            preserved.append((key, codec_of(db.data[key]).snapshot_copy(db.data[key])))

    commands.execute(s, [b"SADD", b"s", b"a"])
    s.core.keyspace.set_snapshot(Snap())
    commands.execute(s, [b"SADD", b"s", b"b"])
    commands.execute(s, [b"SREM", b"s", b"nope"])  # no change: no pre-image
    commands.execute(s, [b"SADD", b"s", b"a"])  # no change: no pre-image
    s.core.keyspace.set_snapshot(None)
    assert preserved == [(b"s", {b"a"})]
    assert s.db.data[b"s"] == {b"a", b"b"}


def test_modified_fires_only_for_real_changes():
    s, _ = _session()
    from kvserver import commands
    seen = []
    s.core.keyspace.add_modified_listener(lambda db, key: seen.append(key))
    commands.execute(s, [b"SADD", b"s", b"a"])
    assert seen == [b"s"]
    for argv in ([b"SADD", b"s", b"a"], [b"SREM", b"s", b"zz"], [b"SREM", b"nokey", b"a"],
                 [b"SMOVE", b"s", b"t", b"zz"], [b"SMOVE", b"s", b"s", b"a"],
                 [b"SPOP", b"nokey"], [b"SPOP", b"s", b"x"], [b"SINTERSTORE", b"d", b"nokey"]):
        commands.execute(s, argv)
    assert seen == [b"s"]  # refused or no-op writes signal nothing
    seen.clear()
    commands.execute(s, [b"SMOVE", b"s", b"t", b"a"])
    assert sorted(seen) == [b"s", b"t"] and b"s" not in s.db.data


def test_sinter_walks_the_smallest_set_and_sintercard_stops_at_its_limit():
    """No path is quadratic or walks a big set needlessly: count the
    membership probes made on the sets."""
    from kvserver.commands import sets as mod
    probes = []

    class Counting(Set):
        __slots__ = ()

        def __contains__(self, m):
            probes.append(m)
            return set.__contains__(self, m)

        def __iter__(self):
            probes.append(None)
            return set.__iter__(self)

    small = Counting(b"%d" % i for i in range(10))
    big = Counting(b"%d" % i for i in range(100_000))
    probes.clear()
    assert mod._inter([big, small]) == set(small)
    assert len(probes) <= 20  # walked the small set, probed the big one at most 10 times

    class S:
        pass

    sess = S()
    sess.core = type("C", (), {})()

    class KS:
        def read_counted(self, db, key, kind):
            return {b"big": big, b"small": small}[key]

    sess.core.keyspace = KS()
    sess.db = None
    probes.clear()
    assert mod.cmd_sintercard(sess, [b"SINTERCARD", b"2", b"big", b"small", b"LIMIT", b"3"]) == 3
    assert len(probes) <= 5
