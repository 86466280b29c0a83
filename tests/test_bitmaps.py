"""Bitmap commands: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.

Most of this is differential: the same requests go to kvserver and to the
real redis-server (through test_differential's Pair), and the raw replies
must be identical, in RESP2 and in RESP3. The rest checks what Redis cannot
show: the chunked scans against a per-bit reference across chunk
boundaries, WRONGTYPE for a value of another type, -OOM at maxmemory, and
the WAL: every write replays (after a clean stop and after kill -9) to
byte-identical values with the same TTLs.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver.commands import bitmaps
from kvserver.config import Config
from kvserver.core import Core
from kvserver.errors import WRONGTYPE
from kvserver.protocol import ErrorReply
from kvserver.session import Session
from kvserver import commands
from test_differential import (same_reply_tests, FUTURE_MS, I64_MAX, I64_MIN, Pair, RawClient,  # noqa: F401
                               kv_port, pair, redis_port, run_step)

U64 = str((1 << 64) - 1)

CASES: dict[str, list] = {
    "setbit-getbit": [
        "SETBIT k 7 1", "GET k", "GETBIT k 7", "GETBIT k 6", "GETBIT k 100", "SETBIT k 7 1",
        "SETBIT k 7 0", "GET k", "STRLEN k", "SETBIT k 0 1", "SETBIT k 15 1", "GET k",
        "SETBIT k 100 1", "STRLEN k", "GETRANGE k 0 -1", "GETBIT missing 0",
        "GETBIT missing 4294967295", "SETBIT k 100 0", "GET k",
        # offsets: the last bit of a 512 MB string is 4294967295
        "SETBIT k 4294967296 1", "GETBIT k 4294967296", "SETBIT k -1 1", "GETBIT k -1",
        "SETBIT k abc 1", "SETBIT k 1.5 1", ("SETBIT", "k", "", "1"), "SETBIT k 01 1",
        "SETBIT k +1 1", f"SETBIT k {I64_MAX} 1", "SETBIT k 99999999999999999999 1",
        "GETBIT k abc", "GETBIT k #8", "SETBIT k #1 1",
        # values: only 0 and 1, checked after the offset
        "SETBIT k 1 2", "SETBIT k 1 -1", "SETBIT k 1 x", ("SETBIT", "k", "1", ""),
        "SETBIT k 1 01", "SETBIT k x 2", f"SETBIT k 1 {I64_MIN}",
        "SET s foobar", "SETBIT s 0 1", "GET s", "GETBIT s 1", "SETBIT s 47 0", "GET s",
        "SET n 12", "GETBIT n 2", "SETBIT n 2 0", "GET n",
        "SETBIT", "SETBIT k", "SETBIT k 1", "SETBIT k 1 1 1", "GETBIT k", "GETBIT k 1 2"],
    "setbit-keeps-ttl": [
        f"SET t abc PXAT {FUTURE_MS}", "SETBIT t 3 1", "PEXPIRETIME t", "SETBIT t 100 1",
        "PEXPIRETIME t", "GET t"],
    "bitcount": [
        "BITCOUNT missing", "BITCOUNT missing 0", "BITCOUNT missing a b c d e",
        "SET k foobar", "BITCOUNT k", "BITCOUNT k 0 0", "BITCOUNT k 1 1", "BITCOUNT k 1 -2",
        "BITCOUNT k -2 -1", "BITCOUNT k -1 -2", "BITCOUNT k 5 1", "BITCOUNT k 0 100",
        "BITCOUNT k -100 -50", "BITCOUNT k -100 100", "BITCOUNT k 100 200",
        "BITCOUNT k 5 30 BIT", "BITCOUNT k 5 30 bit", "BITCOUNT k 5 30 BYTE",
        "BITCOUNT k 1 1 BYTE", "BITCOUNT k 0 -1 BIT", "BITCOUNT k -10 -1 BIT",
        "BITCOUNT k 7 7 BIT", "BITCOUNT k 8 8 BIT", "BITCOUNT k 3 4 BIT", "BITCOUNT k 46 47 BIT",
        "BITCOUNT k 0 47 BIT", "BITCOUNT k 0 48 BIT", "BITCOUNT k 40 9999 BIT",
        "BITCOUNT k 9 2 BIT", "BITCOUNT k -3 -9 BIT",
        # argument checks come after the key lookup, and in Redis's order
        "BITCOUNT k 0", "BITCOUNT k 0 1 BIT x", "BITCOUNT k a 1", "BITCOUNT k 0 b",
        "BITCOUNT k 0 1 FOO", "BITCOUNT k -1 -2 FOO", "BITCOUNT k a 1 FOO",
        ("BITCOUNT", "k", "0", "1", "BIT\x00x"), ("BITCOUNT", "k", "0", "1", ""),
        f"BITCOUNT k {I64_MIN} {I64_MAX}", f"BITCOUNT k 0 {I64_MAX} BIT",
        f"BITCOUNT k {I64_MIN} -1 BIT", "BITCOUNT k 0 99999999999999999999",
        ("SET", "e", ""), "BITCOUNT e", "BITCOUNT e 0 0", "BITCOUNT e 0 -1 BIT",
        ("SET", "ones", b"\xff" * 10), "BITCOUNT ones", "BITCOUNT ones 1 78 BIT",
        "BITCOUNT"],
    "bitpos": [
        "BITPOS missing 1", "BITPOS missing 0", "BITPOS missing 2", "BITPOS missing x",
        "BITPOS missing 1 x", "BITPOS missing 0 1 2 BIT", "BITPOS missing 0 1 2 3 4",
        ("SET", "k", b"\xff\xf0\x00"), "BITPOS k 0", "BITPOS k 1", "BITPOS k 0 2", "BITPOS k 1 2",
        "BITPOS k 0 0 0", "BITPOS k 1 2 -1", "BITPOS k 1 -1", "BITPOS k 0 -3 -2",
        "BITPOS k 1 7 15 BIT", "BITPOS k 0 7 15 BIT", "BITPOS k 0 2 6 BIT", "BITPOS k 1 12 23 BIT",
        "BITPOS k 1 5 3 BIT", "BITPOS k 0 5 3", "BITPOS k 0 3 3", "BITPOS k 1 100",
        "BITPOS k 0 -100", "BITPOS k 1 0 -1 BYTE", "BITPOS k 1 0 -1 bit", "BITPOS k 0 0 -1 BIT",
        # all ones: with no end the string counts as zero-padded; with an end, -1
        ("SET", "ones", b"\xff\xff\xff"), "BITPOS ones 0", "BITPOS ones 0 1", "BITPOS ones 0 0 -1",
        "BITPOS ones 0 1 2", "BITPOS ones 0 0 23 BIT", "BITPOS ones 0 3 10 BIT", "BITPOS ones 1",
        "BITPOS ones 0 -1", "BITPOS ones 0 5", "BITPOS ones 0 5 6",
        ("SET", "zeros", b"\x00\x00\x00"), "BITPOS zeros 1", "BITPOS zeros 0", "BITPOS zeros 1 1",
        "BITPOS zeros 1 0 -1 BIT", "BITPOS zeros 0 9 9 BIT", "BITPOS zeros 0 17 100 BIT",
        ("SET", "e", ""), "BITPOS e 0", "BITPOS e 1", "BITPOS e 0 0", "BITPOS e 0 0 -1 BIT",
        ("SET", "one", b"\x00\x01"), "BITPOS one 1", "BITPOS one 1 15 15 BIT",
        "BITPOS one 1 8 14 BIT", "BITPOS one 0 15 15 BIT",
        # argument errors, in Redis's order: the bit, then (for an existing key) the range
        "BITPOS k 2", "BITPOS k -1", "BITPOS k 1.0", "BITPOS k x 0", "BITPOS k 1 x",
        "BITPOS k 1 0 x", "BITPOS k 1 0 1 FOO", "BITPOS k 1 x 1 FOO", "BITPOS k 1 0 x FOO",
        "BITPOS k 1 0 1 BIT x", "BITPOS k 1 0 1 2 3", f"BITPOS k 1 {I64_MIN} {I64_MAX}",
        f"BITPOS k 0 {I64_MIN} {I64_MAX} BIT", ("BITPOS", "k", "1", "0", "1", "byte\x00"),
        "BITPOS k", "BITPOS"],
    "bitop": [
        ("SET", "a", b"\x0f\xf0\xaa"), ("SET", "b", b"\xff\x00"), ("SET", "c", b"\x01"),
        "BITOP AND d a b", "GET d", "BITOP and d a b c", "GET d", "BITOP OR d a b c", "GET d",
        "BITOP XOR d a b c", "GET d", "BITOP NOT d a", "GET d", "BITOP not d c", "GET d",
        "BITOP AND d a missing", "GET d", "BITOP OR d missing a", "GET d", "BITOP XOR d a a",
        "GET d", "BITOP OR d d d", "GET d", "BITOP AND a a b", "GET a",
        # empty or missing sources only: dest is deleted, the reply is 0
        "SET d x", "BITOP OR d missing other", "EXISTS d", "BITOP AND d missing", "EXISTS d",
        ("SET", "e", ""), "SET d x", "BITOP XOR d e", "EXISTS d", "BITOP NOT d e", "EXISTS d",
        "BITOP NOT d missing", "EXISTS d",
        # errors: the operation first, then NOT's single source
        "BITOP FOO d a", "BITOP NOT d a b", "BITOP NOT d", "BITOP AND d", "BITOP", "BITOP AND",
        ("BITOP", "AND\x00x", "d", "a"), "GET d", ("BITOP", "", "d", "a"), "BITOP ANDX d a",
        "BITOP NOT d a b c"],
    "bitop-ttl": [
        f"SET d old PXAT {FUTURE_MS}", ("SET", "a", b"\x01\x02"), "BITOP OR d a", "PEXPIRETIME d",
        "GET d", f"PEXPIREAT d {FUTURE_MS}", "BITOP AND d missing", "EXISTS d"],
    "bitfield": [
        "BITFIELD k", "BITFIELD missing GET u8 0", "EXISTS missing",
        "BITFIELD k SET u8 0 255", "GET k", "BITFIELD k GET u8 0 GET i8 0 GET u4 0 GET i4 4",
        "BITFIELD k SET i8 8 -1 GET u16 0 INCRBY u2 100 1 GET u4 98", "GET k",
        "BITFIELD k SET u8 #3 66", "GET k", "BITFIELD k GET u8 #3 GET i4 #7",
        # overflow modes, signed and unsigned, SET and INCRBY
        "BITFIELD o INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1",
        "BITFIELD o INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1",
        "BITFIELD o INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1",
        "BITFIELD o INCRBY u2 100 1 OVERFLOW SAT INCRBY u2 102 1",
        "BITFIELD o OVERFLOW FAIL INCRBY u2 102 1", "BITFIELD o OVERFLOW fail incrby u2 102 -1",
        "BITFIELD o OVERFLOW WRAP INCRBY i8 0 100 INCRBY i8 0 100 INCRBY i8 0 -300",
        "BITFIELD o OVERFLOW SAT INCRBY i8 0 100 INCRBY i8 0 100 INCRBY i8 0 -300 INCRBY i8 0 -1",
        "BITFIELD o OVERFLOW FAIL INCRBY i8 0 -1 INCRBY i8 0 1 SET i8 0 200 SET i8 0 -129",
        "BITFIELD o OVERFLOW SAT SET i8 0 200 SET i8 0 -200 SET u8 0 300 SET u8 0 -1",
        "BITFIELD o OVERFLOW WRAP SET i8 0 200 SET i8 0 -200 SET u8 0 300 SET u8 0 -1",
        "BITFIELD o OVERFLOW SAT SET u8 0 -1 GET u8 0",
        f"BITFIELD o OVERFLOW SAT SET i8 0 {I64_MIN} SET i8 0 -9223372036854775681 "
        "SET i8 0 -9223372036854775680",
        f"BITFIELD o OVERFLOW WRAP SET i8 0 {I64_MIN} SET i8 0 {I64_MAX}",
        f"BITFIELD w SET i64 0 {I64_MAX} INCRBY i64 0 1 GET i64 0 GET u63 0 GET u63 1",
        f"BITFIELD w OVERFLOW SAT INCRBY i64 0 {I64_MAX} INCRBY i64 0 {I64_MIN} "
        f"INCRBY i64 0 {I64_MIN}",
        f"BITFIELD w OVERFLOW FAIL INCRBY i64 0 -1 INCRBY i64 0 {I64_MIN} SET i64 0 {I64_MIN}",
        f"BITFIELD w OVERFLOW WRAP INCRBY u63 0 {I64_MAX} INCRBY u63 3 {I64_MIN} "
        f"SET u63 1 {I64_MIN} SET u63 1 -1",
        f"BITFIELD w OVERFLOW SAT INCRBY u63 0 {I64_MAX} INCRBY u63 0 {I64_MIN} "
        f"SET u63 1 {I64_MIN} INCRBY u1 5 -2 INCRBY u1 5 3",
        "BITFIELD w OVERFLOW SAT INCRBY i1 0 1 INCRBY i1 0 -5 SET i1 0 1 GET i1 0 GET u1 0",
        "BITFIELD w OVERFLOW WRAP INCRBY i1 0 1 INCRBY i1 0 1 INCRBY i1 0 -3", "GET w",
        # unaligned fields that straddle bytes, and the 9-byte window of a 64-bit GET
        ("SET", "x", b"\x12\x34\x56\x78\x9a\xbc\xde\xf0\x11\x22"),
        "BITFIELD x GET i64 7 GET u63 9 GET i13 3 GET u5 75 GET i64 70 GET u1 79",
        "BITFIELD x SET i64 7 -2 SET u7 21 99 INCRBY i3 78 3", "GET x",
        # a FAIL that writes nothing still creates and pads the key, as in Redis
        "BITFIELD f OVERFLOW FAIL SET u8 16 999", "GET f", "STRLEN f",
        "BITFIELD f OVERFLOW FAIL INCRBY u8 40 -1", "STRLEN f",
        # # offsets: multiplied by the width, in C's int64 (it can wrap)
        "BITFIELD h GET u8 #2305843009213693953", "BITFIELD h GET i64 #144115188075855873",
        "BITFIELD h GET u8 #536870911", "BITFIELD h GET u8 #536870912", "BITFIELD h GET u8 #-1",
        ("BITFIELD", "h", "GET", "u8", "#"), "BITFIELD h GET u8 ##1", "BITFIELD h GET u8 #01",
        "BITFIELD h GET u8 4294967288", "BITFIELD h GET u8 4294967289",
        "BITFIELD h GET i64 4294967295",
        # types
        "BITFIELD t GET u64 0", "BITFIELD t GET i65 0", "BITFIELD t GET i0 0",
        "BITFIELD t GET u0 0", "BITFIELD t GET x8 0", "BITFIELD t GET U8 0", "BITFIELD t GET I8 0",
        ("BITFIELD", "t", "GET", "", "0"), "BITFIELD t GET i 0", "BITFIELD t GET i-1 0",
        "BITFIELD t GET i+8 0", "BITFIELD t GET i08 0", "BITFIELD t GET u63 0",
        ("BITFIELD", "t", "GET", "u8\x00junk", "0"), ("BITFIELD", "t", "GET", "u\x008", "0"),
        # syntax: missing arguments, unknown subcommands and overflow types, bad values
        "BITFIELD t GET", "BITFIELD t GET u8", "BITFIELD t SET u8 0", "BITFIELD t INCRBY u8 0",
        "BITFIELD t OVERFLOW", "BITFIELD t OVERFLOW FOO GET u8 0", "BITFIELD t FOO u8 0",
        "BITFIELD t SET u8 0 x", "BITFIELD t INCRBY u8 0 1.5", "BITFIELD t SET u8 0 " + U64,
        "BITFIELD t SET u8 x 1", "BITFIELD t SET i65 x y", "BITFIELD t GET u8 0 SET u8 0",
        ("BITFIELD", "t", "get\x00x", "u8", "0"), ("BITFIELD", "t", "OVERFLOW", "sat\x00",
                                                    "SET", "u8", "0", "300"),
        "BITFIELD t OVERFLOW SAT", "BITFIELD t OVERFLOW WRAP OVERFLOW FAIL", "EXISTS t",
        # an error anywhere means nothing ran
        "BITFIELD t SET u8 0 1 GET u64 0", "EXISTS t", "BITFIELD t SET u8 0 1 SET u8 0 x",
        "EXISTS t", "BITFIELD", "GET k"],
    "bitfield-ttl": [
        f"SET t abc PXAT {FUTURE_MS}", "BITFIELD t SET u8 0 65 INCRBY u8 100 1",
        "PEXPIRETIME t", "GET t"],
    "bitfield-ro": [
        "BITFIELD_RO missing GET u8 0 GET i4 4", ("SET", "k", b"\x05\xff"), "BITFIELD_RO k GET u8 0",
        "BITFIELD_RO k", "BITFIELD_RO k GET i16 0 GET u4 #3", "BITFIELD_RO k OVERFLOW SAT GET u8 0",
        "BITFIELD_RO k SET u8 0 1", "BITFIELD_RO k GET u8 0 INCRBY u8 0 1",
        "BITFIELD_RO k OVERFLOW FOO", "BITFIELD_RO k SET u64 0 1", "BITFIELD_RO k SET u8 0 x",
        "BITFIELD_RO k GET u8", "BITFIELD_RO k FOO", "GET k", "BITFIELD_RO"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_offset_limit_follows_proto_max_bulk_len(pair):
    """The last addressable bit is the last bit of a proto-max-bulk-len string."""
    try:
        pair.same("CONFIG SET proto-max-bulk-len 1mb")
        for step in ["SETBIT k 8388607 1", "STRLEN k", "SETBIT k 8388608 1", "GETBIT k 8388608",
                     "GETBIT k 8388607", "BITFIELD k GET u8 8388600", "BITFIELD k GET u8 8388608",
                     "BITFIELD k SET u8 8388607 1", "STRLEN k", "BITFIELD k GET u8 #1048575",
                     "BITFIELD k GET u8 #1048576", "BITCOUNT k", "BITPOS k 1",
                     "BITPOS k 1 -1", "BITPOS k 0 -1", "BITCOUNT k 8388600 -1 BIT"]:
            pair.same(step)
    finally:
        pair.same("CONFIG SET proto-max-bulk-len 512mb")


def test_wide_values_across_chunks(pair, monkeypatch):
    """Values longer than a scan chunk: counts, positions and BITOP over the joins."""
    # The chunk size is the server's (in this process); make the chunks small.
    monkeypatch.setattr(bitmaps, "CHUNK", 1000)
    rng = random.Random(7)
    wide = bytearray(5000)
    wide[2999] = 0x10
    ones = bytearray(b"\xff" * 4000)
    ones[3500] = 0xfe
    noise = bytes(rng.randrange(256) for _ in range(3000))
    for key, value in (("w", bytes(wide)), ("o", bytes(ones)), ("n", noise)):
        pair.same(("SET", key, value))
    steps = ["BITPOS w 1", "BITPOS w 1 1000", "BITPOS w 1 3000", "BITPOS w 0", "BITPOS o 0",
             "BITPOS o 0 3501", "BITPOS o 0 0 3499", "BITPOS o 1", "BITPOS o 0 8000 28007 BIT",
             "BITPOS o 0 8000 28008 BIT", "BITCOUNT n", "BITCOUNT n 999 2001",
             "BITCOUNT n 7999 16001 BIT", "BITOP AND d n o", "BITOP OR d n w o", "BITOP XOR d w n",
             "BITOP NOT d n", "BITCOUNT d", "GET d", "BITPOS d 0", "BITPOS d 1 1990"]
    for step in steps:
        pair.same(step)


# --- Random operations against redis-server --------------------------------------

KEYS = [b"a", b"b", b"c"]
key = st.sampled_from(KEYS)
small_offset = st.integers(0, 70).map(lambda n: b"%d" % n)
range_arg = st.integers(-12, 12).map(lambda n: b"%d" % n)
unit = st.sampled_from([[], [b"BIT"], [b"BYTE"]])
field_type = st.sampled_from([b"i1", b"u1", b"i5", b"u7", b"i8", b"u8", b"i13", b"u16", b"i32",
                              b"u33", b"i63", b"u63", b"i64"])
field_offset = st.one_of(small_offset, st.integers(0, 5).map(lambda n: b"#%d" % n))
field_value = st.one_of(st.integers(-300, 300), st.sampled_from([
    -(1 << 63), (1 << 63) - 1, -(1 << 62), 1 << 62, 1 << 32, -(1 << 32)])).map(lambda n: b"%d" % n)
field_op = st.one_of(
    st.tuples(st.just(b"GET"), field_type, field_offset),
    st.tuples(st.sampled_from([b"SET", b"INCRBY"]), field_type, field_offset, field_value),
    st.tuples(st.just(b"OVERFLOW"), st.sampled_from([b"WRAP", b"SAT", b"FAIL"])))
bitfield = st.tuples(st.sampled_from([b"BITFIELD", b"BITFIELD_RO"]), key,
                     st.lists(field_op, max_size=4)).map(
    lambda t: [t[0], t[1]] + [a for op in t[2] for a in op])

random_op = st.one_of(
    st.tuples(st.just(b"SETBIT"), key, small_offset, st.sampled_from([b"0", b"1"])).map(list),
    st.tuples(st.just(b"GETBIT"), key, small_offset).map(list),
    st.tuples(st.just(b"BITCOUNT"), key, st.one_of(
        st.just([]), st.tuples(range_arg, range_arg, unit).map(lambda t: [t[0], t[1]] + t[2])))
    .map(lambda t: [t[0], t[1]] + t[2]),
    st.tuples(st.just(b"BITPOS"), key, st.sampled_from([b"0", b"1"]), st.one_of(
        st.just([]), range_arg.map(lambda r: [r]),
        st.tuples(range_arg, range_arg, unit).map(lambda t: [t[0], t[1]] + t[2])))
    .map(lambda t: [t[0], t[1], t[2]] + t[3]),
    st.tuples(st.just(b"BITOP"), st.sampled_from([b"AND", b"OR", b"XOR"]), key,
              st.lists(key, min_size=1, max_size=3)).map(lambda t: [t[0], t[1], t[2]] + t[3]),
    st.tuples(st.just(b"BITOP"), st.just(b"NOT"), key, key).map(list),
    bitfield,
    st.tuples(st.just(b"GETRANGE"), key, range_arg, range_arg).map(list),
    st.tuples(st.just(b"SET"), key, st.binary(max_size=6)).map(list),
    st.tuples(st.just(b"DEL"), key).map(list),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(random_op, min_size=1, max_size=25), resp3=st.booleans())
def test_random_bit_operations_match_redis(kv_port, redis_port, ops, resp3):
    p = Pair(kv_port, redis_port)
    try:
        p.reset()
        if resp3:
            p.both("HELLO 3")
        for argv in ops:
            p.same(argv)
        for k in KEYS:
            p.same((b"GET", k))
    finally:
        p.close()


# --- The scans against a per-bit reference ----------------------------------------

def _bits(value: bytes) -> list[int]:
    return [(byte >> (7 - i)) & 1 for byte in value for i in range(8)]


def _reference_find(value: bytes, bit: int, lo: int, hi: int) -> int:
    bits = _bits(value)
    for pos in range(lo, hi + 1):
        if bits[pos] == bit:
            return pos
    return -1


def test_find_bit_and_popcount_match_a_per_bit_reference(monkeypatch):
    monkeypatch.setattr(bitmaps, "CHUNK", 7)  # many chunk joins in a short value
    rng = random.Random(12)
    for _ in range(300):
        size = rng.randrange(1, 40)
        fill = rng.choice([0, 0xFF, None])
        value = bytearray(size if fill is None else [fill] * size)
        for _ in range(rng.randrange(3)):
            value[rng.randrange(size)] = rng.randrange(256)
        value = bytes(value)
        lo = rng.randrange(size * 8)
        hi = rng.randrange(lo, size * 8)
        for bit in (0, 1):
            assert bitmaps.find_bit(value, bit, lo, hi) == _reference_find(value, bit, lo, hi), (
                value, bit, lo, hi)
        start = rng.randrange(size)
        stop = rng.randrange(start, size + 1)
        assert bitmaps.popcount(value, start, stop) == sum(_bits(value[start:stop]))


def test_bitop_matches_bytewise_reference(monkeypatch):
    monkeypatch.setattr(bitmaps, "CHUNK", 5)
    rng = random.Random(3)
    ops = {"and": lambda x, y: x & y, "or": lambda x, y: x | y, "xor": lambda x, y: x ^ y}
    for _ in range(200):
        sources = [bytes(rng.randrange(256) for _ in range(rng.randrange(0, 23)))
                   for _ in range(rng.randrange(1, 4))]
        size = max(len(v) for v in sources)
        if not size:
            continue
        padded = [v.ljust(size, b"\0") for v in sources]
        for name, f in ops.items():
            expect = bytearray(padded[0])
            for v in padded[1:]:
                expect = bytearray(f(x, y) for x, y in zip(expect, v))
            assert bitmaps.bitop(name, sources) == bytes(expect)
        if sources[0]:
            assert bitmaps.bitop("not", sources[:1]) == bytes((~x) & 0xFF for x in sources[0])


# --- What Redis cannot show: another value type, maxmemory ---------------------------

class _OtherType:
    """Stands in for a value of a type other than string (kvserver has none yet)."""


def _session() -> Session:
    return Session(Core(Config(port=0)))


@pytest.mark.parametrize("argv", [
    "SETBIT x 1 1", "GETBIT x 1", "BITCOUNT x", "BITCOUNT x 0 1", "BITPOS x 1", "BITPOS x 0 0 1",
    "BITOP AND d a x", "BITOP NOT d x", "BITFIELD x GET u8 0", "BITFIELD x SET u8 0 1",
    "BITFIELD_RO x GET u8 0"])
def test_wrongtype_for_values_of_another_type(argv):
    s = _session()
    s.db.store(b"x", _OtherType())
    s.db.store(b"a", b"\x01")
    reply = commands.execute(s, argv.encode().split())
    assert isinstance(reply, ErrorReply) and reply == WRONGTYPE, reply


def test_bitfield_ro_refuses_writes_before_the_type_check():
    s = _session()
    s.db.store(b"x", _OtherType())
    reply = commands.execute(s, b"BITFIELD_RO x SET u8 0 1".split())
    assert reply == "ERR BITFIELD_RO only supports the GET subcommand"


def test_writes_that_may_grow_are_refused_at_maxmemory(kv):
    oom = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
    c = RawClient(kv.port)
    try:
        assert c.call("SETBIT", "k", "3", "1").raw == b":0\r\n"
        assert c.call("CONFIG", "SET", "maxmemory", "1mb").raw == b"+OK\r\n"
        try:
            assert c.call("SETBIT", "k", "100", "1").raw == oom
            assert c.call("BITFIELD", "k", "GET", "u8", "0").raw == oom  # a write, as in Redis
            assert c.call("BITOP", "OR", "d", "k").raw == oom
            assert c.call("GETBIT", "k", "3").raw == b":1\r\n"
            assert c.call("BITFIELD_RO", "k", "GET", "u8", "0").raw == b"*1\r\n:16\r\n"
            assert c.call("BITCOUNT", "k").raw == b":1\r\n"
            assert c.call("BITPOS", "k", "1").raw == b":3\r\n"
        finally:
            assert c.call("CONFIG", "SET", "maxmemory", "0").raw == b"+OK\r\n"
        assert c.call("STRLEN", "k").raw == b":1\r\n"
    finally:
        c.close()


# --- The WAL: effects replay to identical values ---------------------------------------

#: Writes whose values and TTLs must survive a restart, built to cover each
#: logged form: SETBIT (growing, flipping, no-op), BITFIELD (with overflow,
#: #-offsets, a FAIL that only pads), BITOP (SET and DEL of dest), on keys
#: with and without TTLs.
WAL_SCRIPT = [
    ["SETBIT", "s", "7", "1"], ["SETBIT", "s", "1000", "1"], ["SETBIT", "s", "7", "0"],
    ["SETBIT", "s", "1000", "1"], ["SET", "t", "abc", "PXAT", str(FUTURE_MS)],
    ["SETBIT", "t", "100", "1"],
    ["BITFIELD", "f", "OVERFLOW", "SAT", "INCRBY", "u4", "#3", "20", "OVERFLOW", "WRAP",
     "INCRBY", "i7", "5", "-100", "SET", "i64", "64", "-5", "GET", "u8", "0"],
    ["BITFIELD", "f", "OVERFLOW", "FAIL", "INCRBY", "u8", "200", "-1"],
    ["BITFIELD", "t", "INCRBY", "u8", "0", "1"],
    ["BITFIELD", "g", "OVERFLOW", "FAIL", "SET", "u8", "80", "999"],
    ["bitfield", "f", "GET", "u8", "0"],
    ["BITOP", "XOR", "x", "s", "f", "t"], ["BITOP", "NOT", "n", "s"],
    ["SET", "gone", "v"], ["BITOP", "AND", "gone", "missing"],
    ["SET", "d", "v", "PXAT", str(FUTURE_MS)], ["BITOP", "OR", "d", "s"],
]
WAL_KEYS = ["s", "t", "f", "g", "x", "n", "gone", "d"]


def _state_of(port: int) -> list[bytes]:
    c = RawClient(port)
    try:
        return [c.call("GET", k).raw + c.call("PEXPIRETIME", k).raw for k in WAL_KEYS]
    finally:
        c.close()


@pytest.mark.parametrize("stop", ["sigterm", "kill9"])
def test_wal_replays_bit_writes_to_identical_values(kv_process, redis_port, tmp_path, stop):
    """Run the script, stop (cleanly or kill -9), restart: the same bytes and TTLs.

    The values are compared with Redis's too, so what replay rebuilds is the
    right thing, not only the same thing.
    """
    server = kv_process()
    kv, redis = RawClient(server.port), RawClient(redis_port)
    try:
        redis.call("FLUSHALL")
        for argv in WAL_SCRIPT:
            assert kv.call(*argv).raw == redis.call(*argv).raw, argv
    finally:
        kv.close()
        redis.close()
    before = _state_of(server.port)
    assert before == _state_of(redis_port)
    assert b"$-1" not in before[0] and before[6].startswith(b"$-1")  # s exists, gone does not
    if stop == "kill9":
        server.kill9()
    else:
        assert server.terminate() == 0
    again = kv_process()
    assert _state_of(again.port) == before


def test_renamed_bit_commands_log_their_real_names(kv_process, tmp_path):
    """rename-command changes what clients type, not what the WAL holds: replay knows real names."""
    conf = tmp_path / "kv.conf"
    conf.write_text("rename-command SETBIT sb\nrename-command BITFIELD bf\n")
    server = kv_process(str(conf))
    c = RawClient(server.port)
    try:
        assert c.call("sb", "k", "9", "1").raw == b":0\r\n"
        assert c.call("bf", "k", "INCRBY", "u8", "16", "7").raw == b"*1\r\n:7\r\n"
        assert c.call("SETBIT", "k", "1", "1").raw.startswith(b"-ERR unknown command")
        before = c.call("GET", "k").raw
    finally:
        c.close()
    assert before == b"$3\r\n\x00\x40\x07\r\n"
    server.kill9()
    again = kv_process(str(conf))
    c = RawClient(again.port)
    try:
        assert c.call("GET", "k").raw == before
    finally:
        c.close()
