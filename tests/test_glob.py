"""kvserver.glob: Redis's stringmatchlen, exactly, in bounded time.

Three references: a line-by-line port of Redis 7.0.15's recursive
``stringmatchlen_impl`` (with the reference binary's nesting limit) compared
on small inputs by hypothesis; a table of patterns sent as KEYS to kvserver
and to a real redis-server; and the pathological patterns of
CVE-2022-36021 / CVE-2024-31228, which must answer at once.
"""

from __future__ import annotations

import socket
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ThreadedServer
from kvserver.config import Config
from kvserver.glob import MAX_NESTING, compile_pattern, stringmatch

# --- the reference: Redis's recursive matcher, ported line by line ------------


def _c(b: int) -> int:
    """A byte as C's signed char (x86-64)."""
    return b - 256 if b >= 128 else b


def _tolower(c: int) -> int:
    return c + 32 if 65 <= c <= 90 else c


def redis_stringmatchlen(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """util.c's stringmatchlen_impl, a port of the C: ``p``/``s`` are indexes,
    reading at the end gives the NUL every sds string ends with."""
    P = pattern + b"\0"
    S = string + b"\0"
    skip = [False]

    def impl(p: int, plen: int, s: int, slen: int, nesting: int) -> bool:
        if nesting > MAX_NESTING:
            return False
        while plen and slen:
            c = P[p]
            if c == 42:  # *
                while plen and P[p + 1] == 42:
                    p += 1
                    plen -= 1
                if plen == 1:
                    return True
                while slen:
                    if impl(p + 1, plen - 1, s, slen, nesting + 1):
                        return True
                    if skip[0]:
                        return False
                    s += 1
                    slen -= 1
                skip[0] = True
                return False
            elif c == 63:  # ?
                s += 1
                slen -= 1
            elif c == 91:  # [
                p += 1
                plen -= 1
                negate = P[p] == 94
                if negate:
                    p += 1
                    plen -= 1
                match = False
                while True:
                    if P[p] == 92 and plen >= 2:
                        p += 1
                        plen -= 1
                        if P[p] == S[s]:
                            match = True
                    elif P[p] == 93:
                        break
                    elif plen == 0:
                        p -= 1
                        plen += 1
                        break
                    elif plen >= 3 and P[p + 1] == 45:
                        start, end, ch = _c(P[p]), _c(P[p + 2]), _c(S[s])
                        if start > end:
                            start, end = end, start
                        if nocase:
                            start, end, ch = _tolower(start), _tolower(end), _tolower(ch)
                        p += 2
                        plen -= 2
                        if start <= ch <= end:
                            match = True
                    else:
                        if not nocase:
                            if P[p] == S[s]:
                                match = True
                        elif _tolower(P[p]) == _tolower(S[s]):
                            match = True
                    p += 1
                    plen -= 1
                if negate:
                    match = not match
                if not match:
                    return False
                s += 1
                slen -= 1
            else:
                if c == 92 and plen >= 2:  # \x
                    p += 1
                    plen -= 1
                if not nocase:
                    if P[p] != S[s]:
                        return False
                elif _tolower(P[p]) != _tolower(S[s]):
                    return False
                s += 1
                slen -= 1
            p += 1
            plen -= 1
            if slen == 0:
                while P[p] == 42:
                    p += 1
                    plen -= 1
                break
        return plen == 0 and slen == 0

    return impl(0, len(pattern), 0, len(string), 0)


# --- a table, checked against the reference (and, below, against redis-server) ----

#: Patterns from Redis's keyspace tests and every corner of the class syntax.
PATTERNS = [
    b"*", b"**", b"***", b"?", b"??", b"*?", b"?*", b"*?*", b"", b"a", b"a*", b"*a", b"*a*",
    b"a*b", b"a*b*c", b"*a*b*", b"h?llo", b"h*llo", b"h[ae]llo", b"h[^e]llo", b"h[a-b]llo",
    b"h[b-a]llo", b"h\\*llo", b"h\\?llo", b"a\\[b", b"a\\\\b", b"a[", b"[", b"[a", b"[^",
    b"[^a]", b"[]", b"[^]", b"[]a]", b"[a-]", b"[-a]", b"[\\]]", b"[\\-]", b"[\\", b"x]y",
    b"a\\", b"\\", b"[a-c]", b"[!a]", b"[a-c]*", b"[^a-c]", b"a[b-]", b"a[\\", b"a[^",
    b"[a-c-]", b"[A-a]", b"[z-a]", b"[Z-a]", b"[a-\\]", b"[\\a-c]", b"[a-c\\]", b"[^\\]]",
    b"[\x00-\xff]", b"[\xfe-\xff]", b"[\x7f-\x80]", b"[\x80-\x7f]", b"[^\x00-\xff]",
    b"\xff*", b"*\x00*", b"[\x00]", b"\\\x00", b"[[]", b"[*]", b"[?]", b"\\*", b"*\\",
    b"[a]*[b]*[c]", b"*[^a]", b"?[", b"*[", b"**a**", b"a**", b"[\\\\]*",
]
#: Keys with the bytes these patterns care about (the empty key too).
KEYS = [b"", b"a", b"b", b"c", b"ab", b"abc", b"aXbXc", b"hello", b"hallo", b"hxllo",
        b"h*llo", b"h?llo", b"a[b", b"a\\b", b"[", b"]", b"-", b"^", b"\\", b"*", b"?",
        b"x]y", b"A", b"Z", b"_", b"\x00", b"\xff", b"\xfe", b"\x7f", b"\x80", b"a\x00b",
        b"\xffz", b"aaa", b"abab", b"ba", b"a\\", b"[a", b"aa]", b"zz"]


def test_table_matches_the_reference():
    for pattern in PATTERNS:
        for key in KEYS:
            for nocase in (False, True):
                assert stringmatch(pattern, key, nocase) == \
                    redis_stringmatchlen(pattern, key, nocase), (pattern, key, nocase)


def test_redis_quirks():
    # An empty string matches only the empty pattern: not even "*" (KEYS and
    # SCAN special-case the pattern "*" themselves).
    assert not stringmatch(b"*", b"") and not stringmatch(b"**", b"")
    assert stringmatch(b"", b"") and not stringmatch(b"", b"a")
    # Bytes compare as signed chars: \x00-\xff is the range -1..0.
    assert [b for b in range(256) if stringmatch(b"[\x00-\xff]", bytes([b]))] == [0, 255]
    # An unterminated class runs to the end; "a-]" is a range ending in "]".
    assert stringmatch(b"[ab", b"b") and stringmatch(b"[^", b"x") and not stringmatch(b"[", b"[")
    assert stringmatch(b"[a-]", b"_") and not stringmatch(b"[a-]", b"-")
    # nocase lowers letters and range ends, not a \x inside a class.
    assert stringmatch(b"GET*", b"getex", nocase=True)
    assert not stringmatch(b"[Z-a]", b"m", nocase=True)  # lowered: z..a is empty
    assert not stringmatch(b"[\\A]", b"a", nocase=True) and stringmatch(b"[A]", b"a", nocase=True)


SMALL_BYTES = st.sampled_from(b"ab*?[]^-\\A\x00\xff")
SMALL_TEXT = st.binary(max_size=0) | st.lists(SMALL_BYTES, max_size=9).map(bytes)


@settings(max_examples=3000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pattern=SMALL_TEXT, key=st.lists(st.sampled_from(b"ab-]\\A\xff"), max_size=8).map(bytes),
       nocase=st.booleans())
def test_same_as_redis_on_small_inputs(pattern, key, nocase):
    assert stringmatch(pattern, key, nocase) == redis_stringmatchlen(pattern, key, nocase)


@settings(max_examples=300, deadline=None)
@given(parts=st.lists(st.sampled_from([b"*", b"a", b"b", b"?", b"[ab]", b"[^a]"]), max_size=14),
       key=st.text(alphabet="ab", max_size=14))
def test_same_as_redis_with_many_stars(parts, key):
    pattern = b"".join(parts)
    assert stringmatch(pattern, key.encode()) == redis_stringmatchlen(pattern, key.encode())


def test_nesting_limit_matches_the_reference_binary():
    # redis-server 7.0.15 as packaged stops at a depth of 1000 star groups
    # (CVE-2024-31228): checked against the binary, see test_keys_like_redis.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for n in (999, 1000, 1001, 1002):
        key = b"a" * n
        for pattern in (b"*a" * 1000, b"*a" * 1001, b"*a" * 1000 + b"*", b"*a" * 1001 + b"*",
                        b"a*" * 1001, b"a*" * 1002, b"*" + b"a*" * 1000, b"*?" * n):
            assert stringmatch(pattern, key) == redis_stringmatchlen(pattern, key), \
                (len(pattern), n)


# --- bounded time --------------------------------------------------------------------

#: KEYS patterns that made the old regex matcher (and Redis before 7.0.9)
#: backtrack for minutes or hours; each must now answer at once.
PATHOLOGICAL = [
    (b"a" * 40, b"a*" * 20 + b"b"),                   # the report, CVE-2022-36021
    (b"a" * 40, b"*a" * 20 + b"*b"),
    (b"a" * 60, b"[a]*" * 30 + b"[b]"),
    (b"a" * 60, b"?*" * 30 + b"b"),
    (b"ab" * 30, b"*a*b" * 15 + b"*c"),
    (b"a" * 50000, b"*?" * 50000),                  # Redis's CVE-2024-31228 regression test
    (b"a" * 5000, b"*a" * 900 + b"b"),
]


def test_pathological_patterns_are_fast_and_right():
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    for key, pattern in PATHOLOGICAL:
        assert stringmatch(pattern, key) is False
        # Redis's own skipLongerMatches keeps the reference fast on these too.
        assert redis_stringmatchlen(pattern, key) is False


def _read_array(f) -> list[bytes]:
    head = f.readline()
    assert head.startswith(b"*"), head
    out = []
    for _ in range(int(head[1:])):
        size = int(f.readline()[1:])
        out.append(f.read(size + 2)[:-2])
    return out


def _keys(port: int, pattern: bytes, timeout: float = 20.0) -> set[bytes]:
    """KEYS over a plain socket; a server that hangs fails the test at ``timeout``."""
    request = b"*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n" % (len(pattern), pattern)
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        return set(_read_array(sock.makefile("rb")))


def _call(port: int, *argv: bytes) -> bytes:
    request = b"*%d\r\n" % len(argv) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in argv)
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        return sock.makefile("rb").readline()


@pytest.fixture
def kv(tmp_path):
    server = ThreadedServer(Config(port=0, bind="127.0.0.1", dir=str(tmp_path / "data"))).start()
    yield server
    server.stop()


def test_keys_and_scan_with_pathological_patterns_answer(kv):
    """The issue's KEYS hang: the server answers, and keeps answering."""
    for key, pattern in PATHOLOGICAL:
        assert _call(kv.port, b"SET", key, b"1") == b"+OK\r\n"
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 5000))
    keys = {key for key, _ in PATHOLOGICAL}
    for key, pattern in PATHOLOGICAL:
        assert _keys(kv.port, pattern) == {k for k in keys if redis_stringmatchlen(pattern, k)}
    with socket.create_connection(("127.0.0.1", kv.port), timeout=20) as sock:
        pattern = PATHOLOGICAL[0][1]
        sock.sendall(b"*6\r\n$4\r\nSCAN\r\n$1\r\n0\r\n$5\r\nMATCH\r\n$%d\r\n%s\r\n$5\r\nCOUNT\r\n"
                     b"$4\r\n1000\r\n" % (len(pattern), pattern))
        f = sock.makefile("rb")
        assert f.readline() == b"*2\r\n"
        assert f.readline() == b"$1\r\n" and f.readline() == b"0\r\n"  # one step: done
        assert set(_read_array(f)) == {k for k in keys if redis_stringmatchlen(pattern, k)}
    assert _call(kv.port, b"PING") == b"+PONG\r\n"


def test_command_list_filterby_pattern_is_bounded_and_nocase(kv):
    with socket.create_connection(("127.0.0.1", kv.port), timeout=20) as sock:
        f = sock.makefile("rb")
        for pattern, expect in ((b"G*E*T*" * 8 + b"x", []), (b"GETD?L", [b"getdel"])):
            sock.sendall(b"*5\r\n$7\r\nCOMMAND\r\n$4\r\nLIST\r\n$8\r\nFILTERBY\r\n"
                         b"$7\r\nPATTERN\r\n$%d\r\n%s\r\n" % (len(pattern), pattern))
            assert _read_array(f) == expect


# --- against the real redis-server -----------------------------------------------------

DIFF_PATTERNS = PATTERNS + [pattern for _, pattern in PATHOLOGICAL] + [
    b"*a" * 1000, b"*a" * 1001, b"*a" * 1000 + b"*", b"a*" * 1001, b"a*" * 1002]


def test_keys_like_redis(kv, redis_server):
    keys = KEYS + [key for key, _ in PATHOLOGICAL] + [b"a" * n for n in (1000, 1001, 1002)]
    for port in (kv.port, redis_server):
        assert _call(port, b"FLUSHALL") == b"+OK\r\n"
        for key in keys:
            assert _call(port, b"SET", key, b"1") == b"+OK\r\n"
    try:
        for pattern in DIFF_PATTERNS:
            assert _keys(kv.port, pattern) == _keys(redis_server, pattern), pattern
    finally:
        _call(redis_server, b"FLUSHALL")


def test_compiled_patterns_are_cached():
    assert compile_pattern(b"user:*") is compile_pattern(b"user:*")
    assert compile_pattern(b"x" * 100_000) is not compile_pattern(b"x" * 100_000)


def test_long_patterns_are_compiled_only_as_far_as_the_keys_reach(kv):
    """A pattern over CACHE_PATTERN_BYTES is cut off at the longest key's length
    (a megabyte of "?" would otherwise take seconds to compile); answers stay exact."""
    from kvserver.glob import CACHE_PATTERN_BYTES, matcher_for, tokenize
    assert tokenize(b"?" * 10**6, longest=10) is None
    assert tokenize(b"*a" * 1001 + b"*", longest=None) is None  # the nesting limit, early
    n = CACHE_PATTERN_BYTES + 5
    key = b"k" * n
    assert _call(kv.port, b"SET", key, b"1") == b"+OK\r\n"
    assert _call(kv.port, b"SET", b"short", b"1") == b"+OK\r\n"
    for pattern, expected in ((b"?" * n, {key}), (b"?" * (n + 1), set()),
                              (b"k" * (n - 1) + b"*", {key}), (b"[k]" * n, {key}),
                              (b"*" + b"?" * (n - 1), {key}), (b"?" * 10**6, set())):
        assert _keys(kv.port, pattern) == expected, len(pattern)
        assert {k for k in (key, b"short") if matcher_for(pattern, [key, b"short"])(k)} == expected


NOCASE_PATTERNS = [b"GET*", b"g?T", b"[A-Z]et", b"[Z-a]*", b"[\\G]et", b"[\\g]et", b"*SET*",
                   b"[^S]ET", b"[a-F]*", b"h*", b"*", b"[G][E][T]", b"x*", b"C*|*"]


def _command_list(port: int, pattern: bytes) -> set[bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(b"*5\r\n$7\r\nCOMMAND\r\n$4\r\nLIST\r\n$8\r\nFILTERBY\r\n$7\r\nPATTERN\r\n"
                     b"$%d\r\n%s\r\n" % (len(pattern), pattern))
        return set(_read_array(sock.makefile("rb")))


def test_command_list_nocase_like_redis(kv, redis_server):
    """COMMAND LIST FILTERBY PATTERN matches without case, as Redis's does
    (compared on the commands both servers have; Redis lists subcommands too)."""
    ours = _command_list(kv.port, b"*")
    for pattern in NOCASE_PATTERNS:
        theirs = _command_list(redis_server, pattern)
        assert _command_list(kv.port, pattern) == theirs & ours, pattern
