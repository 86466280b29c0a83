"""LCS: replies identical to Redis 7.0.15's, from a different algorithm.

Redis fills a uint32 table and walks it back; kvserver keeps each table row
as a bit vector (see kvserver.commands.strings). The walk's decisions (which
string to step back on a tie, where a match range starts and ends) decide
the LCS string and the IDX ranges, so they are checked three ways: against
the real redis-server (fixed cases and random strings, RESP2 and RESP3),
and, for many more random strings, in-process against a line-by-line Python
transcription of Redis's table and walk.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kvserver import commands
from kvserver.commands.strings import lcs_matches
from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from test_differential import (same_reply_tests, I64_MAX, I64_MIN, Pair, kv_port, pair, redis_port,  # noqa: F401
                               run_step)

CASES: dict[str, list] = {
    "lcs-docs": [
        "SET key1 ohmytext", "SET key2 mynewtext", "LCS key1 key2", "LCS key1 key2 LEN",
        "LCS key1 key2 IDX", "LCS key1 key2 IDX MINMATCHLEN 4",
        "LCS key1 key2 IDX MINMATCHLEN 4 WITHMATCHLEN", "LCS key1 key2 IDX WITHMATCHLEN",
        "LCS key2 key1 IDX WITHMATCHLEN", "LCS key2 key1", "LCS key1 key1 IDX WITHMATCHLEN"],
    "lcs-shapes": [
        "LCS missing other", "LCS missing other LEN", "LCS missing other IDX WITHMATCHLEN",
        "SET a abcde", "LCS a missing", "LCS missing a IDX", "LCS a a", "LCS a a LEN",
        ("SET", "e", ""), "LCS e a", "LCS a e IDX", "LCS e e LEN",
        "SET x aaaa", "SET y aa", "LCS x y IDX WITHMATCHLEN", "LCS y x IDX WITHMATCHLEN",
        "SET p abab", "SET q baba", "LCS p q", "LCS q p", "LCS p q IDX WITHMATCHLEN",
        "LCS q p IDX WITHMATCHLEN", "SET u xyz", "LCS u a", "LCS u a IDX", "LCS u a LEN",
        ("SET", "b1", b"\x00\xff\x00\x01\xfe"), ("SET", "b2", b"\xff\x00\x01\x00"),
        "LCS b1 b2", "LCS b1 b2 IDX WITHMATCHLEN", "LCS b2 b1 IDX",
        "SET g1 ACCGGTCGAGTGCGCGGAAGCCGGCCGAA", "SET g2 GTCGTTCGGAATGCCGTTGCTCTGTAAA",
        "LCS g1 g2", "LCS g1 g2 IDX WITHMATCHLEN", "LCS g2 g1 IDX MINMATCHLEN 2 WITHMATCHLEN",
        "LCS g1 g2 LEN"],
    "lcs-options": [
        "SET key1 ohmytext", "SET key2 mynewtext",
        "LCS key1 key2 len", "LCS key1 key2 idx withmatchlen minmatchlen 2",
        "LCS key1 key2 IDX IDX", "LCS key1 key2 LEN LEN", "LCS key1 key2 WITHMATCHLEN",
        "LCS key1 key2 LEN WITHMATCHLEN", "LCS key1 key2 MINMATCHLEN 3",
        "LCS key1 key2 IDX MINMATCHLEN 2 MINMATCHLEN 5", "LCS key1 key2 IDX MINMATCHLEN -5",
        f"LCS key1 key2 IDX MINMATCHLEN {I64_MAX}", f"LCS key1 key2 IDX MINMATCHLEN {I64_MIN}",
        "LCS key1 key2 IDX MINMATCHLEN 0",
        # errors: syntax and numbers while parsing, then LEN with IDX
        "LCS key1 key2 LEN IDX", "LCS key1 key2 IDX LEN", "LCS key1 key2 FOO",
        "LCS key1 key2 MINMATCHLEN", "LCS key1 key2 IDX MINMATCHLEN x",
        "LCS key1 key2 MINMATCHLEN 1.5", "LCS key1 key2 MINMATCHLEN 99999999999999999999",
        "LCS key1 key2 LEN IDX FOO", "LCS key1 key2 FOO LEN IDX", "LCS key1 key2 LEN IDX MINMATCHLEN x",
        ("LCS", "key1", "key2", "LEN\x00x"), ("LCS", "key1", "key2", ""),
        "LCS missing other FOO", "LCS missing other LEN IDX",
        "LCS", "LCS key1"],
}


test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_table_limit_is_redis_s(pair):
    """Redis refuses when (len1+1)*(len2+1) uint32 cells exceed proto-max-bulk-len; so do we."""
    try:
        pair.same("CONFIG SET proto-max-bulk-len 1mb")  # 262,144 cells
        rng = random.Random(5)
        a = bytes(rng.choice(b"ACGT") for _ in range(512))
        pair.same(("SET", "a", a[:511]))
        pair.same(("SET", "b", a[1:]))  # 511 bytes too: 512 * 512 cells, exactly the limit
        pair.same(("SET", "c", a))
        pair.same(("SET", "tiny", "x"))
        for step in ["LCS a b LEN", "LCS a b", "LCS a b IDX WITHMATCHLEN MINMATCHLEN 3",
                     "LCS a c", "LCS c a LEN", "LCS c a IDX", "LCS c tiny", "LCS a c FOO",
                     "LCS a c LEN IDX"]:
            pair.same(step)
    finally:
        pair.same("CONFIG SET proto-max-bulk-len 512mb")


text = st.one_of(st.binary(max_size=12), st.text(alphabet="ab", max_size=16).map(str.encode),
                 st.text(alphabet="abc", max_size=16).map(str.encode))
options = st.one_of(
    st.just([]), st.just([b"LEN"]),
    st.tuples(st.integers(-1, 4), st.booleans()).map(
        lambda t: [b"IDX", b"MINMATCHLEN", b"%d" % t[0]] + ([b"WITHMATCHLEN"] if t[1] else [])))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=text, b=text, opts=options, resp3=st.booleans())
def test_random_strings_match_redis(kv_port, redis_port, a, b, opts, resp3):
    p = Pair(kv_port, redis_port)
    try:
        if resp3:
            p.both("HELLO 3")
        p.same(("SET", "a", a))
        p.same(("SET", "b", b))
        p.same([b"LCS", b"a", b"b"] + opts)
        p.same([b"LCS", b"b", b"a"] + opts)
    finally:
        p.close()


# --- In-process: against a transcription of Redis's table walk ---------------------

def redis_lcs(a: bytes, b: bytes, min_len: int, with_len: bool) -> tuple[bytes, list]:
    """Redis 7.0.15's lcsCommand, step for step: the full table, then the walk back."""
    alen, blen = len(a), len(b)
    table = [[0] * (blen + 1) for _ in range(alen + 1)]
    for i in range(1, alen + 1):
        for j in range(1, blen + 1):
            if a[i - 1] == b[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    idx = table[alen][blen]
    result = bytearray(idx)
    ranges = []
    a_start, a_end, b_start, b_end = alen, 0, 0, 0
    i, j = alen, blen
    while i > 0 and j > 0:
        emit = False
        if a[i - 1] == b[j - 1]:
            result[idx - 1] = a[i - 1]
            if a_start == alen:
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                emit = True
            if a_start == 0 or b_start == 0:
                emit = True
            idx -= 1
            i -= 1
            j -= 1
        else:
            if table[i - 1][j] > table[i][j - 1]:
                i -= 1
            else:
                j -= 1
            if a_start != alen:
                emit = True
        length = a_end - a_start + 1
        if emit:
            if min_len == 0 or length >= min_len:
                item = [[a_start, a_end], [b_start, b_end]]
                if with_len:
                    item.append(length)
                ranges.append(item)
            a_start = alen
    return bytes(result), ranges


def test_walk_matches_redis_table_walk_on_many_strings():
    rng = random.Random(2024)
    alphabets = [b"a", b"ab", b"abc", b"ACGT", bytes(range(256))]
    for _ in range(3000):
        alphabet = rng.choice(alphabets)
        a = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 25)))
        b = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 25)))
        min_len, with_len = rng.choice([0, 0, 1, 2, 3]), rng.random() < 0.5
        assert lcs_matches(a, b, min_len, with_len) == redis_lcs(a, b, min_len, with_len), (
            a, b, min_len, with_len)


def test_long_skewed_strings_match_the_transcription():
    """Long runs along one string (the walk skips them in one step) in both orientations."""
    rng = random.Random(9)
    for _ in range(20):
        short = bytes(rng.choice(b"ab") for _ in range(rng.randrange(1, 6)))
        long = bytes(rng.choice(b"abbbbbbbbbbbbbbbbbbc") for _ in range(rng.randrange(50, 400)))
        for a, b in ((short, long), (long, short)):
            assert lcs_matches(a, b, 0, True) == redis_lcs(a, b, 0, True), (a, b)


class _OtherType:
    """Stands in for a value of a type other than string (kvserver has none yet)."""


@pytest.mark.parametrize("argv", ["LCS x s", "LCS s x", "LCS x missing LEN", "LCS x s FOO"])
def test_keys_of_another_type_get_redis_s_error(argv):
    s = Session(Core(Config(port=0)))
    s.db.store(b"x", _OtherType())
    s.db.store(b"s", b"abc")
    reply = commands.execute(s, argv.encode().split())
    assert reply == "ERR The specified keys must contain string values"
