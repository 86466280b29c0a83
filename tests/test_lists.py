"""The list type: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LINDEX LINSERT LSET LRANGE
LTRIM LREM LPOS LMOVE RPOPLPUSH LMPOP, and lists in the generic commands.

Differential first: the same requests go to kvserver and to the real
redis-server 7.0.15 and the raw replies must be identical, in RESP2 and
RESP3. Then what Redis cannot show: the WAL (kill -9, restart; LMOVE's two
effects in one record), the checkpoint codec (SAVE, restart), COPY's
independence, and a 100k-element list's LRANGE/LTRIM touching only what
they must.
"""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from kvserver.types import BY_KIND, BY_TYPE, codec_of
from kvserver.types.list import LIST, List
from test_differential import (same_reply_tests, I64_MAX, I64_MIN, Pair, RawClient,  # noqa: F401
                               ScanAll, kv_port, pair, redis_port, run_step)

CASES: dict[str, list] = {
    "push-pop": [
        "LPUSH l a b c", "RPUSH l d e", "LRANGE l 0 -1", "LLEN l", "LLEN nokey",
        "LPOP l", "RPOP l", "LPOP l 2", "RPOP l 5", "EXISTS l", "LPOP l", "RPOP l",
        "LPOP nokey", "RPOP nokey", "LPOP nokey 2", "RPOP nokey 0", "LPOP nokey x",
        "RPUSH l a b c", "LPOP l 0", "RPOP l 0", "LPOP l -1", "LPOP l x", "LPOP l 1.5",
        "LPOP l 1 2", "LPOP", "RPOP", "LPUSH l", "RPUSH", "LLEN", "LLEN l x",
        f"LPOP l {I64_MAX}", "EXISTS l", "TYPE l", ("RPUSH", "b", "", "\x00\xff"),
        "LRANGE b 0 -1", "TYPE b"],
    "pushx": [
        "LPUSHX l a", "RPUSHX l a", "EXISTS l", "RPUSH l x", "LPUSHX l a b", "RPUSHX l c d",
        "LRANGE l 0 -1", "LPUSHX l", "RPUSHX"],
    "lindex-lset": [
        "RPUSH l a b c d", "LINDEX l 0", "LINDEX l -1", "LINDEX l 3", "LINDEX l 4",
        "LINDEX l -4", "LINDEX l -5", "LINDEX l x", "LINDEX nokey x", "LINDEX nokey 0",
        f"LINDEX l {I64_MIN}", "LINDEX l 99999999999999999999", "LINDEX l", "LINDEX l 1 2",
        "LSET l 0 A", "LSET l -1 D", "LSET l 4 x", "LSET l -5 x", "LSET l x y",
        "LSET nokey 0 a", "LSET nokey x a", "LRANGE l 0 -1", "LSET l 0", "LSET l 0 a b"],
    "lrange-ltrim": [
        "RPUSH l 0 1 2 3 4 5 6 7 8 9", "LRANGE l 0 0", "LRANGE l -3 -1", "LRANGE l 5 2",
        "LRANGE l -100 100", "LRANGE l 10 20", "LRANGE l 8 -1", "LRANGE l -1 -3",
        "LRANGE l x 1", "LRANGE l 0 y", "LRANGE nokey 0 -1", "LRANGE nokey x 1",
        f"LRANGE l {I64_MIN} {I64_MAX}", "LRANGE l 0", "LRANGE l 0 1 2",
        "LTRIM l 1 -2", "LRANGE l 0 -1", "LTRIM l -3 100", "LRANGE l 0 -1",
        "LTRIM l 0 -1", "LTRIM nokey 0 1", "LTRIM l x 1", "LTRIM nokey x 1", "LTRIM l 0",
        "LTRIM l 2 1", "EXISTS l", "RPUSH l a b", "LTRIM l 5 10", "EXISTS l",
        "RPUSH l a b", "LTRIM l -1 -1", "LRANGE l 0 -1"],
    "linsert": [
        "RPUSH l a b c", "LINSERT l BEFORE b x", "LINSERT l after c y", "LINSERT l before a z",
        "LINSERT l AFTER nope w", "LINSERT nokey BEFORE a b", "LINSERT l middle a b",
        "LINSERT nokey middle a b", "LRANGE l 0 -1", "LINSERT l BEFORE a", "LINSERT l",
        "RPUSH d a a", "LINSERT d AFTER a b", "LRANGE d 0 -1"],
    "lrem": [
        "RPUSH l a b a c a b a", "LREM l 2 a", "LRANGE l 0 -1", "LREM l -1 a",
        "LRANGE l 0 -1", "LREM l 0 b", "LRANGE l 0 -1", "LREM l 0 nope", "LREM nokey 0 a",
        "LREM l x a", "LREM nokey x a", "LREM l 0 a", "LREM l 5 c", "EXISTS l",
        "RPUSH m a b a b", "LREM m -10 b", "LRANGE m 0 -1", "LREM l 1", "LREM l 1 a b"],
    "lpos": [
        "RPUSH l a b c a b c a", "LPOS l a", "LPOS l c", "LPOS l z", "LPOS nokey a",
        "LPOS nokey a COUNT 0", "LPOS nokey a RANK 0", "LPOS l a RANK 2", "LPOS l a RANK -1",
        "LPOS l a RANK -2", "LPOS l a RANK 4", "LPOS l a RANK -4", "LPOS l a COUNT 0",
        "LPOS l a COUNT 2", "LPOS l a COUNT 2 RANK -1", "LPOS l a COUNT 0 RANK 2",
        "LPOS l z COUNT 1", "LPOS l a MAXLEN 1", "LPOS l a MAXLEN 3 COUNT 0",
        "LPOS l a RANK -1 MAXLEN 1", "LPOS l a RANK -1 MAXLEN 2", "LPOS l c MAXLEN 2",
        "LPOS l a MAXLEN 0 COUNT 0", "LPOS l a RANK 0", "LPOS l a RANK x", "LPOS l a COUNT -1",
        "LPOS l a COUNT x", "LPOS l a MAXLEN -1", "LPOS l a MAXLEN x", "LPOS l a RANK",
        "LPOS l a FOO 1", "LPOS l a rank 1 count 1 maxlen 0", f"LPOS l a RANK {I64_MIN}",
        f"LPOS l b RANK {I64_MIN} MAXLEN 3", f"LPOS l zz RANK {I64_MIN}",
        f"LPOS l a RANK -{I64_MAX}", f"LPOS l a RANK {I64_MAX}", "LPOS l", "LPOS"],
    "lmove-rpoplpush": [
        "RPUSH s a b c", "LMOVE s d LEFT RIGHT", "LMOVE s d RIGHT LEFT", "LRANGE s 0 -1",
        "LRANGE d 0 -1", "RPOPLPUSH s d", "EXISTS s", "RPOPLPUSH s d", "LMOVE s d LEFT LEFT",
        "LRANGE d 0 -1", "LMOVE d d LEFT RIGHT", "LRANGE d 0 -1", "RPOPLPUSH d d",
        "LRANGE d 0 -1", "LMOVE d d up left", "LMOVE nokey d up left", "LMOVE d e left down",
        "RPUSH one x", "LMOVE one one left right", "LRANGE one 0 -1", "RPOPLPUSH one one",
        "LMOVE one two right right", "EXISTS one", "LRANGE two 0 -1", "LMOVE s d LEFT",
        "RPOPLPUSH s", "LMOVE s d left right x"],
    "lmpop": [
        "RPUSH a 1 2 3", "RPUSH b x y", "LMPOP 2 nokey a LEFT", "LMPOP 2 nokey a RIGHT COUNT 5",
        "EXISTS a", "LMPOP 2 a b left count 1", "LMPOP 1 b RIGHT", "LMPOP 1 b RIGHT",
        "LMPOP 2 a b LEFT", "LMPOP 0 a LEFT", "LMPOP -1 a LEFT", "LMPOP x a LEFT",
        "LMPOP 1 a MIDDLE", "LMPOP 2 a LEFT", "LMPOP 5 a b LEFT", "LMPOP 1 a LEFT COUNT 0",
        "LMPOP 1 a LEFT COUNT -1", "LMPOP 1 a LEFT COUNT x", "LMPOP 1 a LEFT COUNT",
        "LMPOP 1 a LEFT COUNT 1 COUNT 1", "LMPOP 1 a LEFT FOO", "LMPOP 1 a", "LMPOP 1",
        "RPUSH c 1", "LMPOP 1 c left COUNT 1 x", f"LMPOP {I64_MAX} a LEFT",
        "LMPOP 99999999999999999999 a LEFT", "COMMAND GETKEYS LMPOP 2 a b LEFT",
        "COMMAND GETKEYS LMPOP 1 a LEFT COUNT 2", "COMMAND GETKEYS LMPOP 2 a left",
        "COMMAND GETKEYS LMPOP 3 a left", "COMMAND GETKEYS LMPOP 0 a left",
        "COMMAND GETKEYS LMPOP x a left", "COMMAND GETKEYS LMOVE a b LEFT RIGHT",
        "COMMAND GETKEYS RPOPLPUSH a b"],
    "wrongtype": [
        "SET s v", "LPUSH s a", "RPUSH s a", "LPUSHX s a", "RPUSHX s a", "LPOP s", "RPOP s",
        "LPOP s 2", "LPOP s 0", "LPOP s x", "LLEN s", "LINDEX s 0", "LINDEX s x",
        "LINSERT s BEFORE a b", "LINSERT s middle a b", "LSET s 0 a", "LSET s x a",
        "LRANGE s 0 -1", "LRANGE s x 1", "LTRIM s 0 1", "LREM s 0 a", "LREM s x a",
        "LPOS s a", "LPOS s a RANK 0", "LMOVE s d LEFT LEFT", "RPOPLPUSH s d",
        "RPUSH l a", "LMOVE l s LEFT LEFT", "RPOPLPUSH l s", "LRANGE l 0 -1",
        "LMOVE nokey s LEFT LEFT", "LMPOP 2 nokey s LEFT", "LMPOP 2 l s LEFT",
        "RPUSH l a", "LMPOP 2 s l LEFT", "HSET h f v", "LPUSH h a", "GET l", "HGET l f",
        "APPEND l x", "INCR l", "SET l v", "TYPE l"],
    "big-list": [
        ("RPUSH", "big", *[f"e{i}" for i in range(600)]), "LLEN big", "LINDEX big 300",
        "LINDEX big -2", "LRANGE big 590 -1", "LRANGE big -602 1", "LSET big 400 X",
        "LINDEX big 400", "LPOS big e599", "LPOS big X RANK -1", "LTRIM big 100 -100",
        "LLEN big", "LINDEX big 0", ("RPUSH", "fat", "x" * 10000)],
    "generic-commands": [
        "RPUSH l a b", "TYPE l", "EXISTS l", "RENAME l l2", "LRANGE l2 0 -1", "TYPE l",
        "COPY l2 l3", "RPUSH l3 c", "LRANGE l2 0 -1", "LRANGE l3 0 -1", "COPY l2 l3",
        "COPY l2 l3 REPLACE", "LRANGE l3 0 -1", "MOVE l3 1", "EXISTS l3", "SELECT 1",
        "LRANGE l3 0 -1", "TYPE l3", "SELECT 0", "SET s v", "RENAME l2 s", "TYPE s",
        "LRANGE s 0 -1", "DEL s", "RPUSH a x", "SET b v", ScanAll(("TYPE", "list")),
        ScanAll(("TYPE", "LIST")), "EXPIRE a 100", "TTL a", "LPOP a", "TTL a", "EXISTS a", "FLUSHDB", "DBSIZE"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_table_covers_every_list_command(pair):
    sent = {(s if isinstance(s, str) else " ".join(s)).split()[0].lower()
            for steps in CASES.values() for s in steps if not isinstance(s, ScanAll)}
    # (The blocking pops have their own table, in tests/test_blocking.py;
    # SORT and SORT_RO, @list too as in Redis, theirs in tests/test_sort.py.)
    families = {e[0].decode() for e in pair.kv.call("COMMAND").value
                if b"@list" in {c.encode() for c in e[6]}
                and b"@blocking" not in {c.encode() for c in e[6]}} - {"sort", "sort_ro"}
    assert len(families) == 17
    assert families <= sent, families - sent


def test_resp3_shapes(pair):
    for c in (pair.kv, pair.redis):
        c.call("HELLO", "3")
        assert c.call("LPOP", "nokey").raw == b"_\r\n"
        assert c.call("LPOP", "nokey", "2").raw == b"_\r\n"
        assert c.call("LMPOP", "1", "nokey", "LEFT").raw == b"_\r\n"
        assert c.call("LPOS", "nokey", "a").raw == b"_\r\n"
        c.call("RPUSH", "l", "a", "b")
        assert c.call("LMPOP", "1", "l", "LEFT").raw == b"*2\r\n$1\r\nl\r\n*1\r\n$1\r\na\r\n"
        assert c.call("LPOS", "l", "b", "COUNT", "0").raw == b"*1\r\n:0\r\n"
        c.call("HELLO", "2")
        assert c.call("LPOP", "nokey", "2").raw == b"*-1\r\n"
        assert c.call("LPOP", "nokey").raw == b"$-1\r\n"
        assert c.call("LMPOP", "1", "nokey", "LEFT").raw == b"*-1\r\n"


_KEYS = [b"a", b"b", b"s"]
_key = st.sampled_from(_KEYS)
_elem = st.sampled_from([b"x", b"y", b"z", b""])
_idx = st.integers(-6, 6).map(lambda i: b"%d" % i)
_side = st.sampled_from([b"LEFT", b"RIGHT"])
_push = st.tuples(st.sampled_from([b"LPUSH", b"RPUSH", b"LPUSHX", b"RPUSHX"]), _key,
                  st.lists(_elem, min_size=1, max_size=6)).map(lambda t: [t[0], t[1], *t[2]])
_random_op = st.one_of(
    st.tuples(st.sampled_from([b"LPOP", b"RPOP"]), _key).map(list),
    st.tuples(st.sampled_from([b"LPOP", b"RPOP"]), _key, st.integers(0, 4).map(b"%d".__mod__)).map(list),
    st.tuples(st.just(b"LINDEX"), _key, _idx).map(list),
    st.tuples(st.just(b"LSET"), _key, _idx, _elem).map(list),
    st.tuples(st.sampled_from([b"LRANGE", b"LTRIM"]), _key, _idx, _idx).map(list),
    st.tuples(st.just(b"LREM"), _key, _idx, _elem).map(list),
    st.tuples(st.just(b"LINSERT"), _key, st.sampled_from([b"BEFORE", b"AFTER"]), _elem, _elem).map(list),
    st.tuples(st.just(b"LPOS"), _key, _elem, st.sampled_from([b"-2", b"-1", b"1", b"2"]),
              st.integers(0, 3).map(b"%d".__mod__), st.integers(0, 4).map(b"%d".__mod__))
    .map(lambda t: [t[0], t[1], t[2], b"RANK", t[3], b"COUNT", t[4], b"MAXLEN", t[5]]),
    st.tuples(st.just(b"LMOVE"), _key, _key, _side, _side).map(list),
    st.tuples(st.just(b"RPOPLPUSH"), _key, _key).map(list),
    st.tuples(st.just(b"LMPOP"), st.just(b"2"), _key, _key, _side, st.just(b"COUNT"),
              st.integers(1, 3).map(b"%d".__mod__)).map(list),
    st.tuples(st.just(b"SET"), st.just(b"s"), _elem).map(list),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(st.tuples(_push, _random_op), min_size=5, max_size=20)
       .map(lambda pairs: [op for two in pairs for op in two]), resp3=st.booleans())
def test_random_list_operations_match_redis(kv_port, redis_port, ops, resp3):
    p = Pair(kv_port, redis_port)
    try:
        p.reset()
        if resp3:
            p.both("HELLO 3")
        for argv in ops:
            p.same(argv)
            p.same((b"LRANGE", argv[1] if argv[1] != b"2" else argv[2], b"0", b"-1"))
        for k in _KEYS:
            p.same((b"TYPE", k))
    finally:
        p.close()


# --- what Redis cannot show ------------------------------------------------------

def _session():
    core = Core(Config(port=0))
    return Session(core)


def _wal_records(data_dir) -> list[list[list[bytes]]]:
    """Each WAL record's effects (argv lists), in order."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment
    fs = OSFileSystem()
    out = []
    for first, path in list_segments(fs, str(data_dir)):
        for record in scan_segment(fs.read(path), path, first).records:
            out.append([list(argv) for _, argv in record.effects])
    return out


def test_writes_log_their_deterministic_effect(kv_process, tmp_path):
    """Pops log the count actually popped; LMOVE is one record of two effects;
    no-op writes log nothing."""
    server = kv_process()
    c = RawClient(server.port)
    try:
        c.call("RPUSH", "l", "a", "b", "c")
        c.call("LPOP", "l", "100")
        c.call("RPUSH", "l", "a", "b", "c")
        c.call("RPOP", "l")
        c.call("LMOVE", "l", "m", "LEFT", "RIGHT")
        c.call("RPOPLPUSH", "l", "m")
        c.call("LMPOP", "2", "nokey", "m", "RIGHT", "COUNT", "10")
        c.call("LPUSHX", "nokey", "x")
        c.call("LREM", "nokey", "0", "x")
        c.call("RPUSH", "t", "1", "2", "3")
        c.call("LTRIM", "t", "0", "-1")
        c.call("LTRIM", "t", "1", "-1")
        c.call("LINSERT", "t", "BEFORE", "zz", "x")
        c.call("LSET", "t", "0", "X")
        c.call("LRANGE", "t", "0", "-1")
    finally:
        c.close()
    server.kill9()
    records = [r for r in _wal_records(tmp_path / "data") if r[0][0].upper()[:1] in (b"L", b"R")]
    assert records == [
        [[b"RPUSH", b"l", b"a", b"b", b"c"]],
        [[b"LPOP", b"l", b"3"]],
        [[b"RPUSH", b"l", b"a", b"b", b"c"]],
        [[b"RPOP", b"l", b"1"]],
        [[b"LPOP", b"l", b"1"], [b"RPUSH", b"m", b"a"]],
        [[b"RPOP", b"l", b"1"], [b"LPUSH", b"m", b"b"]],
        [[b"RPOP", b"m", b"2"]],
        [[b"RPUSH", b"t", b"1", b"2", b"3"]],
        [[b"LTRIM", b"t", b"1", b"-1"]],
        [[b"LSET", b"t", b"0", b"X"]],
    ]


LIST_SCRIPT = [
    ("RPUSH", "l", "a", "b", "c", "d", "e"), ("LPUSH", "l", "z"), ("LPOP", "l", "2"),
    ("RPOP", "l"), ("LSET", "l", "1", "B"), ("LINSERT", "l", "AFTER", "B", "b2"),
    ("RPUSH", "r", "x", "y", "x", "y", "x"), ("LREM", "r", "-2", "x"), ("LTRIM", "r", "0", "1"),
    ("LMOVE", "l", "m", "LEFT", "RIGHT"), ("RPOPLPUSH", "l", "m"), ("LMOVE", "m", "m", "LEFT", "RIGHT"),
    ("LMPOP", "2", "none", "l", "RIGHT", "COUNT", "1"), ("RPUSH", "gone", "x"), ("LPOP", "gone"),
    ("RPUSH", "big", *[f"e{i}" for i in range(700)]), ("LTRIM", "big", "10", "-10"),
    ("RPUSH", "t", "k"), ("PEXPIREAT", "t", "4102444800000"), ("RPUSH", "bin", "\x00", "\xff" * 100),
    ("COPY", "l", "lc"), ("RPUSH", "lc", "new"), ("RENAME", "lc", "lr"), ("MOVE", "lr", "2"),
]


def _state(port: int) -> list:
    c = RawClient(port)
    try:
        out = []
        for db in ("0", "2"):
            c.call("SELECT", db)
            for key in sorted(c.call("KEYS", "*").value):
                out.append((db, key, c.call("TYPE", key).raw, c.call("PEXPIRETIME", key).raw,
                            c.call("LRANGE", key, "0", "-1").raw))
        return out
    finally:
        c.close()


@pytest.mark.parametrize("how", ["kill9", "save-then-kill9"])
def test_lists_survive_restart(kv_process, redis_port, how):
    """kill -9 (WAL replay) and SAVE (the codec) keep every list, equal to
    what Redis holds after the same script."""
    server = kv_process()
    kv, redis = RawClient(server.port), RawClient(redis_port)
    try:
        redis.call("FLUSHALL")
        for argv in LIST_SCRIPT:
            assert kv.call(*argv).raw == redis.call(*argv).raw, argv
        if how != "kill9":
            assert kv.call("SAVE").raw == b"+OK\r\n"
            kv.call("RPUSH", "l", "after")
            redis.call("RPUSH", "l", "after")
    finally:
        kv.close()
        redis.close()
    before = _state(server.port)
    assert before == _state(redis_port)
    assert any(key == b"big" for _, key, *_ in before)
    server.kill9()
    again = kv_process()
    assert _state(again.port) == before


def test_codec_round_trip_and_registration():
    assert BY_KIND[3] is LIST and BY_TYPE[List] is LIST and LIST.name == "list"
    lst = List([b"a", b"", b"\x00" * 300])
    assert codec_of(lst) is LIST and LIST.encoding(lst) == "quicklist"
    back = LIST.decode(memoryview(LIST.encode(lst)))
    assert type(back) is List and back == lst and back.nbytes == lst.nbytes == 301
    assert LIST.size(lst) >= len(LIST.encode(lst))
    assert LIST.decode(LIST.encode(List())) == List()
    for bad in (b"", b"\x01\x00\x00\x00", LIST.encode(lst) + b"x", LIST.encode(lst)[:-1]):
        with pytest.raises((ValueError, IndexError, struct.error)):
            LIST.decode(memoryview(bad))


def test_nbytes_follows_every_change():
    from kvserver import commands
    s = _session()
    for argv in (["RPUSH", "l", "aa", "b", "aa", "ccc"], ["LPUSH", "l", "dddd"], ["LSET", "l", "0", "e"],
                 ["LINSERT", "l", "AFTER", "b", "ff"], ["LREM", "l", "0", "aa"], ["LTRIM", "l", "1", "-1"],
                 ["RPOP", "l"], ["LMOVE", "l", "l", "LEFT", "RIGHT"]):
        commands.execute(s, [a.encode() for a in argv])
        lst = s.db.data[b"l"]
        assert lst.nbytes == sum(map(len, lst)), argv


def test_copy_gives_an_independent_list():
    from kvserver import commands
    s = _session()
    commands.execute(s, [b"RPUSH", b"l", b"a"])
    commands.execute(s, [b"COPY", b"l", b"c"])
    assert s.db.data[b"l"] is not s.db.data[b"c"]
    commands.execute(s, [b"RPUSH", b"c", b"b"])
    commands.execute(s, [b"LSET", b"c", b"0", b"z"])
    assert list(s.db.data[b"l"]) == [b"a"]


def test_a_window_of_a_huge_list_stays_cheap():
    """LRANGE of a small window near either end, LINDEX, LPOS with MAXLEN and
    LTRIM of a 100k list: right answers, LTRIM in place (pops, not a rebuild),
    and 2,000 windows read from the tail keep this test quick (a walk from the
    head each time would be 200M steps)."""
    from kvserver import commands
    s = _session()
    n = 100_000
    commands.execute(s, [b"RPUSH", b"l", *[b"%d" % i for i in range(n)]])
    lst = s.db.data[b"l"]
    assert commands.execute(s, [b"LRANGE", b"l", b"-3", b"-1"]) == [b"99997", b"99998", b"99999"]
    assert commands.execute(s, [b"LRANGE", b"l", b"10", b"12"]) == [b"10", b"11", b"12"]
    assert commands.execute(s, [b"LINDEX", b"l", b"-1"]) == b"99999"
    commands.execute(s, [b"LTRIM", b"l", b"1", b"-2"])
    assert s.db.data[b"l"] is lst and len(lst) == n - 2  # trimmed in place
    assert commands.execute(s, [b"LPOS", b"l", b"99998", b"RANK", b"-1", b"MAXLEN", b"1"]) == n - 3
    for _ in range(2000):
        assert len(commands.execute(s, [b"LRANGE", b"l", b"-5", b"-3"])) == 3


def test_running_checkpoint_keeps_the_pre_image():
    """A list changed while a checkpoint runs: the snapshot gets the old list
    (a copy), once per key; a no-op write preserves nothing."""
    from kvserver import commands
    s = _session()
    preserved = []

    class Snap:
        def preserve(self, db, key):
            preserved.append((key, list(codec_of(db.data[key]).snapshot_copy(db.data[key]))))

    commands.execute(s, [b"RPUSH", b"l", b"a", b"b"])
    s.core.keyspace.set_snapshot(Snap())
    commands.execute(s, [b"LREM", b"l", b"0", b"zz"])  # no change
    commands.execute(s, [b"LINSERT", b"l", b"BEFORE", b"zz", b"x"])  # no change
    commands.execute(s, [b"LMOVE", b"l", b"l", b"LEFT", b"RIGHT"])
    s.core.keyspace.set_snapshot(None)
    assert preserved == [(b"l", [b"a", b"b"])]
    assert list(s.db.data[b"l"]) == [b"b", b"a"]


def test_modified_fires_only_for_real_changes():
    from kvserver import commands
    s = _session()
    seen = []
    s.core.keyspace.add_modified_listener(lambda db, key: seen.append(key))
    commands.execute(s, [b"RPUSH", b"l", b"a"])
    commands.execute(s, [b"SET", b"str", b"v"])
    seen.clear()
    for argv in ([b"LPUSHX", b"nokey", b"a"], [b"LREM", b"l", b"0", b"zz"],
                 [b"LTRIM", b"l", b"0", b"-1"], [b"LINSERT", b"l", b"AFTER", b"zz", b"b"],
                 [b"LMOVE", b"l", b"str", b"LEFT", b"LEFT"], [b"LMOVE", b"nokey", b"l", b"LEFT", b"LEFT"],
                 [b"LSET", b"l", b"5", b"x"], [b"LPOP", b"l", b"0"], [b"LMPOP", b"1", b"nokey", b"LEFT"]):
        try:
            commands.execute(s, argv)
        except Exception:
            pass
    assert seen == [] and list(s.db.data[b"l"]) == [b"a"]
    commands.execute(s, [b"LMOVE", b"l", b"m", b"LEFT", b"LEFT"])
    assert seen == [b"l", b"m"] and b"l" not in s.db.data
