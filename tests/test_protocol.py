"""Tests for kvserver.protocol: request parsing, reply encoding, reply parsing.

Every parser case goes through :func:`feed_three_ways` (the h11 habit): the
bytes are fed whole, one byte at a time, and whole followed by the first bytes
of another request, and all three must agree.
"""

from __future__ import annotations

import functools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvserver import protocol
from kvserver.errors import ProtocolError, ReplyError
from kvserver.protocol import (
    MAX_BULK_LEN,
    MAX_INLINE_SIZE,
    MAX_MULTIBULK_LEN,
    NEED_DATA,
    NO_REPLY,
    NULL_ARRAY,
    OK,
    PONG,
    QUEUED,
    ErrorReply,
    Raw,
    ReplyParser,
    RequestParser,
    Simple,
    encode,
    encode3,
    encode_command,
    format_double,
    split_args,
)

# --- The one feeding helper -------------------------------------------------

# Tails: the first bytes of a following request, the bytes that finish it, and
# what it parses to. After the case's own bytes, the tail must not come out
# early, and must come out intact once finished.
REQUEST_TAILS = [
    (b"*2\r\n$3\r\nGET\r\n$5\r\nke", b"y:1\r\n", [b"GET", b"key:1"]),
    (b"GET ke", b"y:2\r\n", [b"GET", b"key:2"]),
]
#: For cases whose meaning depends on no newline having arrived yet.
INLINE_TAIL = [REQUEST_TAILS[1]]
REPLY_TAILS = [
    (b"*2\r\n$3\r\nfoo\r\n:1", b"2\r\n", [b"foo", 12]),
    (b"$5\r\nhel", b"lo\r\n", b"hello"),
]

_NOTHING = object()


def _pull(parser):
    if isinstance(parser, RequestParser):
        request = parser.next_request()
        return _NOTHING if request is None else request
    reply = parser.next_reply()
    return _NOTHING if reply is NEED_DATA else reply


def _run(make, chunks):
    """Feed ``chunks`` one by one, pulling everything after each.

    Returns (items, ProtocolError or None, parser).
    """
    parser = make()
    items = []
    try:
        for chunk in chunks:
            parser.feed(chunk)
            while (item := _pull(parser)) is not _NOTHING:
                items.append(item)
    except ProtocolError as exc:
        return items, exc, parser
    return items, None, parser


def tagged(value):
    """A strictly comparable view: types count (True is not 1), errors by message."""
    if isinstance(value, ReplyError):
        return ("ReplyError", value.message)
    name = type(value).__name__
    if isinstance(value, (list, tuple)):
        return (name, [tagged(v) for v in value])
    if isinstance(value, dict):
        return (name, [(tagged(k), tagged(v)) for k, v in value.items()])
    if isinstance(value, float):
        return (name, repr(value))  # so nan equals nan and -0.0 differs from 0.0
    if value is None:
        return (name,)
    return (name, value)


def feed_three_ways(data: bytes, *, parser=RequestParser, tails=None, **limits):
    """Parse ``data`` whole, one byte at a time, and whole plus a partial tail.

    Asserts all three give the same items (argv lists, or replies for
    ``parser=ReplyParser``) and, with a tail, that the tail is neither returned
    early nor damaged. Returns the items. If the bytes are malformed, all three
    must fail with the same reason after the same items; the ProtocolError is
    then raised with those items as ``parsed_before``.
    """
    make = functools.partial(parser, **limits)
    if tails is None:
        tails = REPLY_TAILS if parser is ReplyParser else REQUEST_TAILS

    items, error, _ = _run(make, [data])
    byte_items, byte_error, _ = _run(make, [data[i:i + 1] for i in range(len(data))])
    assert tagged(byte_items) == tagged(items), "one byte at a time differs from whole"
    assert (byte_error and byte_error.reason) == (error and error.reason)

    for partial, rest, tail_item in tails:
        tail_items, tail_error, p = _run(make, [data + partial])
        assert tagged(tail_items) == tagged(items), f"trailing {partial!r} changed the result"
        assert (tail_error and tail_error.reason) == (error and error.reason)
        if error is None:
            p.feed(rest)
            assert tagged(_pull(p)) == tagged(tail_item), "trailing request was damaged"
            assert _pull(p) is _NOTHING

    if error is not None:
        error.parsed_before = items
        raise error
    return items


def protocol_error(data: bytes, **kwargs) -> tuple[list, str]:
    """(requests parsed before the error, the error line the server replies with)."""
    with pytest.raises(ProtocolError) as info:
        feed_three_ways(data, **kwargs)
    return info.value.parsed_before, info.value.reply_message


def test_helper_notices_a_parser_that_disagrees_with_itself():
    # The helper is the backbone of this file, so check it can fail: a parser
    # that drops its buffer between feeds gives a different byte-by-byte result.
    class Forgetful(RequestParser):
        __slots__ = ()

        def feed(self, data):
            self._buf = b""
            self._pos = 0
            super().feed(data)

    with pytest.raises(AssertionError):
        feed_three_ways(b"PING\r\n", parser=Forgetful)


# --- Multibulk requests -----------------------------------------------------


def test_multibulk_request():
    assert feed_three_ways(b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n") == [
        [b"SET", b"key", b"value"]
    ]


def test_pipelined_multibulk_requests():
    data = encode_command([b"SET", b"a", b"1"]) + encode_command([b"GET", b"a"]) * 2
    assert feed_three_ways(data) == [[b"SET", b"a", b"1"], [b"GET", b"a"], [b"GET", b"a"]]


def test_pipelined_mix_of_multibulk_and_inline():
    data = b"PING\r\n*2\r\n$4\r\nECHO\r\n$2\r\nhi\r\nGET k\n"
    assert feed_three_ways(data) == [[b"PING"], [b"ECHO", b"hi"], [b"GET", b"k"]]


def test_bulk_args_are_binary_safe():
    data = b"*3\r\n$3\r\nSET\r\n$4\r\na\r\nb\r\n$5\r\n\x00\r\n\x00\xff\r\n"
    assert feed_three_ways(data) == [[b"SET", b"a\r\nb", b"\x00\r\n\x00\xff"]]


def test_bulk_arg_that_looks_like_a_request():
    data = encode_command([b"ECHO", b"*1\r\n$4\r\nPING\r\n"])
    assert feed_three_ways(data) == [[b"ECHO", b"*1\r\n$4\r\nPING\r\n"]]


def test_empty_bulk_arg():
    assert feed_three_ways(b"*2\r\n$4\r\nECHO\r\n$0\r\n\r\n") == [[b"ECHO", b""]]


def test_empty_multibulk_is_skipped():
    assert feed_three_ways(b"*0\r\n*0\r\n*1\r\n$4\r\nPING\r\n*0\r\n") == [[b"PING"]]


def test_negative_multibulk_count_is_skipped_like_redis():
    assert feed_three_ways(b"*-1\r\n*1\r\n$4\r\nPING\r\n") == [[b"PING"]]


def test_multibulk_count_at_the_limit_is_accepted():
    parser = RequestParser()
    parser.feed(b"*%d\r\n$1\r\nx\r\n" % MAX_MULTIBULK_LEN)
    assert parser.next_request() is None  # waiting for the other arguments


def test_large_bulk_in_small_chunks():
    value = bytes(range(256)) * 4096  # 1 MiB, with every byte value, CR and LF among them
    data = encode_command([b"SET", b"big", value])
    parser = RequestParser()
    chunks = [data[i:i + 4096] for i in range(0, len(data), 4096)]
    for chunk in chunks[:-1]:
        parser.feed(chunk)
        assert parser.next_request() is None
    parser.feed(chunks[-1])
    assert parser.next_request() == [b"SET", b"big", value]
    assert parser.next_request() is None
    assert parser.buffered == 0


def _feed_in_reads(parser, data: bytes, size: int) -> list:
    out = []
    for i in range(0, len(data), size):
        parser.feed(data[i:i + size])
        while batch := parser.take_requests():
            out.extend(batch)
    return out


@pytest.mark.parametrize("read", [1000, 65536, 65537])
def test_big_bulk_collected_across_reads_with_requests_around_it(read):
    value = bytes(range(256)) * 1024 + b"\r\n"  # past _BIG_ARG, CR/LF inside and at the end
    data = (encode_command([b"GET", b"a"]) + encode_command([b"SET", b"big", value])
            + encode_command([b"GET", b"big"]))
    parser = RequestParser()
    assert _feed_in_reads(parser, data, read) == [[b"GET", b"a"], [b"SET", b"big", value],
                                                 [b"GET", b"big"]]
    assert parser.buffered == 0
    # A value that ends exactly where a read ends, its CRLF in the next read.
    head = encode_command([b"SET", b"big", value])[:-2]
    parser.feed(head[:100])
    assert parser.take_requests() == []
    parser.feed(head[100:])
    assert parser.take_requests() == [] and parser.buffered == len(value)
    parser.feed(b"\r")
    assert parser.take_requests() == []
    parser.feed(b"\nPING\r\n")
    assert parser.take_requests() == [[b"SET", b"big", value], [b"PING"]]


def test_big_bulk_not_followed_by_crlf():
    data = b"*2\r\n$4\r\nECHO\r\n$40000\r\n" + b"v" * 40000 + b"xx"
    parser = RequestParser()
    with pytest.raises(ProtocolError, match="expected CRLF after bulk string"):
        _feed_in_reads(parser, data, 4096)


def test_big_bulk_counts_toward_the_query_buffer_limit():
    parser = RequestParser(max_query_buffer=100_000)
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$200000\r\n")
    parser.take_requests()
    parser.feed(b"v" * 60_000)
    assert parser.take_requests() == [] and parser.buffered == 60_000
    with pytest.raises(ProtocolError, match="query buffer limit exceeded"):
        parser.feed(b"v" * 50_000)


def test_big_bulk_is_copied_once():
    # The value arrives in many reads; the parser keeps those reads and joins
    # them once: new memory is about one value, not a grown buffer plus a copy.
    import tracemalloc
    value = b"\x07" * (4 * 1024 * 1024)
    data = encode_command([b"SET", b"big", value])
    reads = [data[i:i + 65536] for i in range(0, len(data), 65536)]
    parser = RequestParser()
    tracemalloc.start()
    try:
        out = []
        for chunk in reads:
            parser.feed(chunk)
            out.extend(parser.take_requests())
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert out == [[b"SET", b"big", value]]
    assert peak < 1.3 * len(value), peak


def test_bytearray_fed_is_not_kept():
    # feed() keeps the bytes of a big value as they came: a caller's
    # mutable buffer must be copied, or changing it would change the value.
    parser = RequestParser()
    parser.feed(b"*2\r\n$4\r\nECHO\r\n$40000\r\n")
    parser.take_requests()
    chunk = bytearray(b"a" * 40000)
    parser.feed(chunk)
    chunk[:] = b"b" * 40000
    parser.feed(b"\r\n")
    assert parser.take_requests() == [[b"ECHO", b"a" * 40000]]


def test_buffered_counts_unparsed_bytes_only():
    parser = RequestParser()
    parser.feed(b"PING\r\nGET k")
    assert parser.buffered == 11
    assert parser.next_request() == [b"PING"]
    assert parser.buffered == 5
    assert parser.next_request() is None
    parser.feed(b"ey\r\n")
    assert parser.next_request() == [b"GET", b"key"]
    assert parser.buffered == 0


# --- Inline requests --------------------------------------------------------


def test_inline_request():
    assert feed_three_ways(b"SET a 1\r\n") == [[b"SET", b"a", b"1"]]


def test_inline_request_with_lf_only():
    assert feed_three_ways(b"SET a 1\nGET a\n") == [[b"SET", b"a", b"1"], [b"GET", b"a"]]


def test_inline_request_with_runs_of_spaces_and_tabs():
    assert feed_three_ways(b"  SET \t a\t\t  1  \r\n") == [[b"SET", b"a", b"1"]]


def test_empty_inline_lines_are_skipped():
    assert feed_three_ways(b"\r\n\n   \r\n\t\nPING\r\n\r\n") == [[b"PING"]]


def test_inline_double_quotes_keep_spaces():
    assert feed_three_ways(b'SET k "a b"\r\n') == [[b"SET", b"k", b"a b"]]


def test_inline_hex_escape():
    assert feed_three_ways(b'SET k "\\x41\\x00\\xfF"\r\n') == [[b"SET", b"k", b"A\x00\xff"]]


def test_inline_backslash_escapes():
    assert feed_three_ways(b'ECHO "a\\nb\\r\\t\\b\\a\\"\\\\\\q"\r\n') == [
        [b"ECHO", b"a\nb\r\t\b\a\"\\q"]
    ]


def test_inline_single_quotes_only_unescape_quote():
    assert feed_three_ways(b"ECHO 'it\\'s \\n \"x\"'\r\n") == [[b"ECHO", b"it's \\n \"x\""]]


def test_inline_empty_quoted_args():
    assert feed_three_ways(b"SET \"\" ''\r\n") == [[b"SET", b"", b""]]


def test_inline_unbalanced_quotes():
    for line in (b'SET k "abc\r\n', b"SET k 'abc\r\n", b'SET k "abc\\"\r\n'):
        assert protocol_error(line) == ([], "ERR Protocol error: unbalanced quotes in request")


def test_inline_closing_quote_must_be_followed_by_space():
    for line in (b'SET k "a"b\r\n', b"SET k 'a'b\r\n"):
        assert protocol_error(line) == ([], "ERR Protocol error: unbalanced quotes in request")


def test_inline_requests_before_unbalanced_quotes_still_run():
    assert protocol_error(b"PING\r\nSET k \"v\r\n") == (
        [[b"PING"]], "ERR Protocol error: unbalanced quotes in request")


# --- split_args -------------------------------------------------------------


@pytest.mark.parametrize("line, args", [
    (b"", []),
    (b"   \t ", []),
    (b"a", [b"a"]),
    (b"set  key\tvalue", [b"set", b"key", b"value"]),
    (b'"a b" c', [b"a b", b"c"]),
    (b'a"b c"', [b"ab c"]),  # a quote may open mid-word, as in Redis
    (b"'a b'\t'c'", [b"a b", b"c"]),
    (b'"\\x41\\x4a"', [b"AJ"]),
    (b'"\\x4"', [b"x4"]),  # not two hex digits: \x is just an escaped x
    (b'"\\xzz"', [b"xzz"]),
    (b'"\\n\\r\\t\\b\\a"', [b"\n\r\t\b\a"]),
    (b'"\\z\\""', [b'z"']),
    (b"'a\\'b'", [b"a'b"]),
    (b"'a\\nb'", [b"a\\nb"]),
    (b"'a\"b'", [b'a"b']),
    (b'"a\'b"', [b"a'b"]),
    (b'"" x', [b"", b"x"]),
    (b'"a"\t"b"', [b"a", b"b"]),
    (b"a\rb\nc", [b"a", b"b", b"c"]),
    (b"caf\xc3\xa9 \xff", [b"caf\xc3\xa9", b"\xff"]),
    # Redis ends an unquoted word only at space, tab, CR, LF (and NUL);
    # \v and \f are skipped between words but kept inside one.
    (b"\v a\vb \f", [b"a\vb"]),
])
def test_split_args(line, args):
    assert split_args(line) == args


@pytest.mark.parametrize("line", [
    b'"abc', b"'abc", b'"abc\\"', b"'abc\\'", b'"a"b', b"'a'b", b'"a""b"', b'"\\',
])
def test_split_args_unbalanced(line):
    assert split_args(line) is None


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=30), min_size=1, max_size=8))
def test_split_args_reads_back_fully_escaped_words(words):
    line = b" ".join(b'"' + b"".join(b"\\x%02x" % c for c in w) + b'"' for w in words)
    assert split_args(line) == words


# --- Protocol errors --------------------------------------------------------


def test_multibulk_count_not_a_number():
    assert protocol_error(b"*x\r\n") == ([], "ERR Protocol error: invalid multibulk length")


@pytest.mark.parametrize("header", [
    b"*\r\n", b"*1x\r\n", b"*+1\r\n", b"* 1\r\n", b"*1 \r\n", b"*1_0\r\n", b"*01\r\n", b"*-0\r\n",
])
def test_multibulk_count_must_be_plain_digits(header):
    # Redis's string2ll: an optional minus, then digits; Python's int() is laxer.
    assert protocol_error(header) == ([], "ERR Protocol error: invalid multibulk length")


def test_multibulk_count_over_the_limit():
    assert protocol_error(b"*%d\r\n" % (MAX_MULTIBULK_LEN + 1)) == (
        [], "ERR Protocol error: invalid multibulk length")


def test_multibulk_arg_not_a_bulk():
    assert protocol_error(b"*1\r\nx\r\n") == ([], "ERR Protocol error: expected '$', got 'x'")


def test_multibulk_arg_not_a_bulk_never_puts_newlines_in_the_reply():
    # Redis turns CR and LF into spaces in error replies; a raw one would end the line.
    for data in (b"*1\r\n\r\n", b"*1\r\n\n"):
        _, message = protocol_error(data)
        assert message == "ERR Protocol error: expected '$', got ' '"


@pytest.mark.parametrize("header", [
    b"$-1", b"$-5", b"$x", b"$", b"$1x", b"$+1", b"$ 1", b"$1_0", b"$01", b"$-0",
])
def test_invalid_bulk_length(header):
    assert protocol_error(b"*1\r\n" + header + b"\r\na\r\n") == (
        [], "ERR Protocol error: invalid bulk length")


#: Header digits for every length/count field: far past Python's 4300-digit
#: int() limit, past int64 both ways, signs, spaces, leading zeros.
ABSURD_NUMBERS = [b"9" * 5000, b"1" * 4301, b"-" + b"9" * 5000, b"9" * 20, b"-" + b"9" * 19,
                  b"9223372036854775808", b"-9223372036854775809", b"0" * 5000 + b"1",
                  b"+5", b" 5", b"5 ", b"5\t", b"--5", b"5-", b"0x5", b"\xd9\xa5"]


@pytest.mark.parametrize("digits", ABSURD_NUMBERS, ids=lambda d: repr(d[:24]))
def test_absurd_multibulk_counts_are_invalid_multibulk_length(digits):
    data = encode_command([b"PING"]) + b"*" + digits + b"\r\n$4\r\nPING\r\n"
    expected = ([[b"PING"]], "ERR Protocol error: invalid multibulk length")
    assert _one_by_one(data) == expected
    assert _batched(data) == expected  # take_requests' fast stages hand it over
    assert _batched_reads([data[:7], data[7:]]) == expected


@pytest.mark.parametrize("digits", ABSURD_NUMBERS, ids=lambda d: repr(d[:24]))
def test_absurd_bulk_lengths_are_invalid_bulk_length(digits):
    data = encode_command([b"PING"]) + b"*2\r\n$3\r\nGET\r\n$" + digits + b"\r\nk\r\n"
    expected = ([[b"PING"]], "ERR Protocol error: invalid bulk length")
    assert _one_by_one(data) == expected
    # The second stage used to call int() on any run of digits: ValueError
    # past 4300 of them instead of the protocol error.
    assert _batched(data) == expected
    assert _batched_reads([data[:20], data[20:]]) == expected


def test_a_multibulk_count_below_int64_is_an_error_not_an_empty_request():
    # string2ll refuses what does not fit a long long; only then is <= 0 skipped.
    assert protocol_error(b"*-9223372036854775809\r\n") == (
        [], "ERR Protocol error: invalid multibulk length")
    assert feed_three_ways(b"*-9223372036854775808\r\nPING\r\n") == [[b"PING"]]


def test_bulk_length_over_max_bulk_len():
    assert feed_three_ways(b"*1\r\n$10\r\n0123456789\r\n", max_bulk_len=10) == [[b"0123456789"]]
    assert protocol_error(b"*1\r\n$11\r\n0123456789a\r\n", max_bulk_len=10) == (
        [], "ERR Protocol error: invalid bulk length")


def test_default_max_bulk_len_is_redis_proto_max_bulk_len():
    assert MAX_BULK_LEN == 512 * 1024 * 1024
    assert protocol_error(b"*1\r\n$%d\r\n" % (MAX_BULK_LEN + 1)) == (
        [], "ERR Protocol error: invalid bulk length")
    parser = RequestParser()
    parser.feed(b"*1\r\n$%d\r\n" % MAX_BULK_LEN)
    assert parser.next_request() is None


def test_bulk_data_not_followed_by_crlf():
    assert protocol_error(b"*1\r\n$1\r\nabc\r\n") == (
        [], "ERR Protocol error: expected CRLF after bulk string")


@pytest.fixture
def small_inline_limit(monkeypatch):
    """A 256-byte line limit, so cases past it stay quick when fed one byte at a time."""
    monkeypatch.setattr(protocol, "MAX_INLINE_SIZE", 256)
    return 256


def test_too_big_inline_request(small_inline_limit):
    data = b"PING\r\n" + b"x" * (small_inline_limit + 1)
    assert protocol_error(data, tails=INLINE_TAIL) == (
        [[b"PING"]], "ERR Protocol error: too big inline request")


def test_too_big_mbulk_count_string(small_inline_limit):
    data = b"PING\r\n*" + b"1" * small_inline_limit
    assert protocol_error(data, tails=INLINE_TAIL) == (
        [[b"PING"]], "ERR Protocol error: too big mbulk count string")


def test_too_big_bulk_count_string(small_inline_limit):
    data = b"*1\r\n$4\r\nPING\r\n*1\r\n$" + b"1" * small_inline_limit
    assert protocol_error(data, tails=INLINE_TAIL) == (
        [[b"PING"]], "ERR Protocol error: too big bulk count string")


@pytest.mark.parametrize("start, reason", [
    (b"", "too big inline request"),
    (b"*", "too big mbulk count string"),
    (b"*1\r\n$", "too big bulk count string"),
])
def test_line_limit_is_64_kib_without_a_newline(start, reason):
    assert MAX_INLINE_SIZE == 64 * 1024  # Redis's PROTO_INLINE_MAX_SIZE
    parser = RequestParser()
    parser.feed(start + b"1" * (MAX_INLINE_SIZE - len(start.rpartition(b"\n")[2])))
    assert parser.next_request() is None
    parser.feed(b"1")
    with pytest.raises(ProtocolError) as info:
        parser.next_request()
    assert info.value.reason == reason


def test_long_inline_request_is_fine_when_its_newline_arrives_with_it():
    # Like Redis, the cap applies only while no newline has been seen: what
    # arrives in one read with its newline is parsed, however long.
    arg = b"v" * (MAX_INLINE_SIZE * 2)
    parser = RequestParser()
    parser.feed(b"ECHO " + arg + b"\r\n")
    assert parser.next_request() == [b"ECHO", arg]


def test_query_buffer_limit_exceeded():
    data = b"*1\r\n$200\r\n" + b"v" * 120
    assert protocol_error(data, max_query_buffer=100) == (
        [], "ERR Protocol error: query buffer limit exceeded")


def test_query_buffer_limit_counts_only_unparsed_bytes():
    parser = RequestParser(max_query_buffer=100)
    request = encode_command([b"SET", b"k", b"v" * 60])
    for _ in range(3):
        parser.feed(request)
        assert parser.next_request() == [b"SET", b"k", b"v" * 60]
    parser.feed(request)
    with pytest.raises(ProtocolError) as info:
        parser.feed(b"x" * 30)
    assert info.value.reply_message == "ERR Protocol error: query buffer limit exceeded"


def test_requests_before_a_bad_multibulk_run_first():
    data = b"PING\r\n*1\r\n$4\r\nECHO\r\n*x\r\n"
    assert protocol_error(data) == (
        [[b"PING"], [b"ECHO"]], "ERR Protocol error: invalid multibulk length")


def test_requests_before_a_bad_bulk_run_first():
    data = encode_command([b"GET", b"a"]) + b"*2\r\n$3\r\nGET\r\n$-3\r\n"
    assert protocol_error(data) == ([[b"GET", b"a"]], "ERR Protocol error: invalid bulk length")


# --- encode_command ---------------------------------------------------------


def test_encode_command_mixed_argument_types():
    assert encode_command([b"SET", "k\u00e9", 10, 1.5, bytearray(b"x"), memoryview(b"y")]) == (
        b"*6\r\n$3\r\nSET\r\n$3\r\nk\xc3\xa9\r\n$2\r\n10\r\n$3\r\n1.5\r\n$1\r\nx\r\n$1\r\ny\r\n")


@pytest.mark.parametrize("bad", [True, None, object(), [b"x"]])
def test_encode_command_rejects_other_types(bad):
    with pytest.raises(TypeError):
        encode_command([b"ECHO", bad])


# --- Reply encoding ---------------------------------------------------------


@pytest.mark.parametrize("value, resp2, resp3", [
    (b"abc", b"$3\r\nabc\r\n", b"$3\r\nabc\r\n"),
    (b"", b"$0\r\n\r\n", b"$0\r\n\r\n"),
    (b"a\r\nb", b"$4\r\na\r\nb\r\n", b"$4\r\na\r\nb\r\n"),
    ("h\u00e9", b"$3\r\nh\xc3\xa9\r\n", b"$3\r\nh\xc3\xa9\r\n"),
    (bytearray(b"ba"), b"$2\r\nba\r\n", b"$2\r\nba\r\n"),
    (memoryview(b"mv"), b"$2\r\nmv\r\n", b"$2\r\nmv\r\n"),
    (Simple("OK"), b"+OK\r\n", b"+OK\r\n"),
    (ErrorReply("ERR bad thing"), b"-ERR bad thing\r\n", b"-ERR bad thing\r\n"),
    (0, b":0\r\n", b":0\r\n"),
    (42, b":42\r\n", b":42\r\n"),
    (-7, b":-7\r\n", b":-7\r\n"),
    (2**63 - 1, b":9223372036854775807\r\n", b":9223372036854775807\r\n"),
    (True, b":1\r\n", b"#t\r\n"),
    (False, b":0\r\n", b"#f\r\n"),
    (1.5, b"$3\r\n1.5\r\n", b",1.5\r\n"),
    (2.0, b"$1\r\n2\r\n", b",2\r\n"),
    (float("inf"), b"$3\r\ninf\r\n", b",inf\r\n"),
    (float("-inf"), b"$4\r\n-inf\r\n", b",-inf\r\n"),
    (float("nan"), b"$3\r\nnan\r\n", b",nan\r\n"),
    (None, b"$-1\r\n", b"_\r\n"),
    (NULL_ARRAY, b"*-1\r\n", b"_\r\n"),
    ([], b"*0\r\n", b"*0\r\n"),
    ([b"a", 1], b"*2\r\n$1\r\na\r\n:1\r\n", b"*2\r\n$1\r\na\r\n:1\r\n"),
    ((b"t", None), b"*2\r\n$1\r\nt\r\n$-1\r\n", b"*2\r\n$1\r\nt\r\n_\r\n"),
    ({}, b"*0\r\n", b"%0\r\n"),
    ({b"k": b"v", b"n": 1},
     b"*4\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n",
     b"%2\r\n$1\r\nk\r\n$1\r\nv\r\n$1\r\nn\r\n:1\r\n"),
    ({b"x"}, b"*1\r\n$1\r\nx\r\n", b"~1\r\n$1\r\nx\r\n"),
    (frozenset([7]), b"*1\r\n:7\r\n", b"~1\r\n:7\r\n"),
    (set(), b"*0\r\n", b"~0\r\n"),
    (Raw(b"+OK\r\n"), b"+OK\r\n", b"+OK\r\n"),
    (Raw(b"*1\r\n:1\r\n"), b"*1\r\n:1\r\n", b"*1\r\n:1\r\n"),
    ([[b"a", None], {b"k": True}, NULL_ARRAY, [1.5, Simple("s")]],
     b"*4\r\n*2\r\n$1\r\na\r\n$-1\r\n*2\r\n$1\r\nk\r\n:1\r\n*-1\r\n*2\r\n$3\r\n1.5\r\n+s\r\n",
     b"*4\r\n*2\r\n$1\r\na\r\n_\r\n%1\r\n$1\r\nk\r\n#t\r\n_\r\n*2\r\n,1.5\r\n+s\r\n"),
    ({b"m": {b"n": [False]}},
     b"*2\r\n$1\r\nm\r\n*2\r\n$1\r\nn\r\n*1\r\n:0\r\n",
     b"%1\r\n$1\r\nm\r\n%1\r\n$1\r\nn\r\n*1\r\n#f\r\n"),
], ids=repr)
def test_encode(value, resp2, resp3):
    assert encode(value) == resp2
    assert encode3(value) == resp3


def test_encode_set_with_several_members():
    members = {b"a", b"b", b"c"}
    head2, rest2 = encode(members).split(b"\r\n", 1)
    head3, rest3 = encode3(members).split(b"\r\n", 1)
    assert (head2, head3) == (b"*3", b"~3")
    assert rest2 == rest3
    assert sorted(rest2.split(b"\r\n")[1:-1:2]) == [b"a", b"b", b"c"]


def test_reply_constants():
    assert (OK, PONG, QUEUED, NO_REPLY) == (b"+OK\r\n", b"+PONG\r\n", b"+QUEUED\r\n", b"")
    for constant in (OK, PONG, QUEUED, NO_REPLY):
        assert encode(constant) == encode3(constant) == constant


@pytest.mark.parametrize("bad", [object(), 1j, Exception("x")])
def test_encode_rejects_other_types(bad):
    with pytest.raises(TypeError):
        encode(bad)
    with pytest.raises(TypeError):
        encode3(bad)


@pytest.mark.parametrize("value, text", [
    (0.0, b"0"),
    (-0.0, b"-0"),  # %.17g keeps the sign, as Redis does
    (3.0, b"3"),
    (-2.0, b"-2"),
    (1.5, b"1.5"),
    (-0.25, b"-0.25"),
    (0.1, b"0.10000000000000001"),  # %.17g, as Redis 7.0 prints doubles
    (2.0**53, b"9007199254740992"),
    (1e16, b"10000000000000000"),
    (1e17, b"1e+17"),
    (1.1, b"1.1000000000000001"),
    (1.5e-10, b"1.5e-10"),
    (float("inf"), b"inf"),
    (float("-inf"), b"-inf"),
    (float("nan"), b"nan"),
])
def test_format_double(value, text):
    assert format_double(value) == text


# --- Reply parsing ----------------------------------------------------------


@pytest.mark.parametrize("data, value", [
    (b"+OK\r\n", "OK"),
    (b"+\r\n", ""),
    (b"$5\r\nhello\r\n", b"hello"),
    (b"$4\r\na\r\nb\r\n", b"a\r\nb"),
    (b"$0\r\n\r\n", b""),
    (b"$-1\r\n", None),
    (b":42\r\n", 42),
    (b":-9223372036854775808\r\n", -(2**63)),
    (b"*-1\r\n", None),
    (b"*0\r\n", []),
    (b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n+x\r\n", [1, b"a", ["x"]]),
    (b"*2\r\n$-1\r\n*-1\r\n", [None, None]),
    (b"_\r\n", None),
    (b",1.5\r\n", 1.5),
    (b",-0.25\r\n", -0.25),
    (b",inf\r\n", float("inf")),
    (b",-inf\r\n", float("-inf")),
    (b",nan\r\n", float("nan")),
    (b"#t\r\n", True),
    (b"#f\r\n", False),
    (b"(3492890328409238509324850943850943825024385\r\n",
     3492890328409238509324850943850943825024385),
    (b"=15\r\ntxt:Some string\r\n", b"Some string"),
    (b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n", {"first": 1, b"second": False}),
    (b"%1\r\n*2\r\n:1\r\n:2\r\n+pair\r\n", {(1, 2): "pair"}),
    (b"~2\r\n$1\r\na\r\n:2\r\n", [b"a", 2]),
    (b">3\r\n$7\r\nmessage\r\n$3\r\nch1\r\n$5\r\nhello\r\n", [b"message", b"ch1", b"hello"]),
    (b"|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.1923\r\n$1\r\nb\r\n,0.0012\r\n"
     b"*2\r\n:2039123\r\n:9543892\r\n", [2039123, 9543892]),
    (b"*2\r\n|1\r\n+ttl\r\n:3600\r\n$1\r\nv\r\n:7\r\n", [b"v", 7]),
], ids=repr)
def test_reply_parser(data, value):
    assert tagged(feed_three_ways(data, parser=ReplyParser)) == tagged([value])


def test_reply_parser_pipeline():
    data = b"+OK\r\n:1\r\n$-1\r\n-ERR no\r\n*1\r\n$1\r\nx\r\n"
    replies = feed_three_ways(data, parser=ReplyParser)
    assert tagged(replies) == tagged(["OK", 1, None, ReplyError("ERR no"), [b"x"]])


def test_error_replies_come_back_as_reply_error():
    data = (b"-ERR unknown command 'FOO'\r\n"
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
            b"!21\r\nSYNTAX invalid syntax\r\n"
            b"*2\r\n-NOSCRIPT x\r\n:1\r\n")
    first, second, blob, array = feed_three_ways(data, parser=ReplyParser)
    assert isinstance(first, ReplyError)
    assert (first.prefix, first.message) == ("ERR", "ERR unknown command 'FOO'")
    assert isinstance(second, ReplyError)
    assert second.prefix == "WRONGTYPE"
    assert isinstance(blob, ReplyError)
    assert (blob.prefix, blob.message) == ("SYNTAX", "SYNTAX invalid syntax")
    assert isinstance(array[0], ReplyError) and array[0].prefix == "NOSCRIPT"
    assert array[1] == 1


@pytest.mark.parametrize("data", [
    b"+OK\r\n",
    b"$5\r\nhello\r\n",
    b"*3\r\n:1\r\n$1\r\na\r\n*1\r\n+x\r\n",
    b"%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n#f\r\n",
    b"|1\r\n+a\r\n:1\r\n*1\r\n,1.5\r\n",
    b"=8\r\ntxt:abcd\r\n",
])
def test_reply_parser_needs_data_for_every_proper_prefix(data):
    for cut in range(len(data)):
        parser = ReplyParser()
        parser.feed(data[:cut])
        assert parser.next_reply() is NEED_DATA, data[:cut]
        parser.feed(data[cut:])
        assert parser.next_reply() is not NEED_DATA
        assert parser.next_reply() is NEED_DATA


@pytest.mark.parametrize("data", [b"?what\r\n", b"*1\r\n?x\r\n", b"\x00\r\n"])
def test_reply_parser_unknown_type_byte(data):
    with pytest.raises(ProtocolError):
        feed_three_ways(data, parser=ReplyParser)


@pytest.mark.parametrize("data", [b":abc\r\n", b"$x\r\n", b"*1x\r\n", b",one\r\n"])
def test_reply_parser_garbage_is_a_protocol_error(data):
    parser = ReplyParser()
    parser.feed(data)
    with pytest.raises(ProtocolError):
        parser.next_reply()


@pytest.mark.parametrize("data", [
    b"$" + b"9" * 5000 + b"\r\n",           # past int()'s 4300 digits
    b"*" + b"1" * 4400 + b"\r\n",
    b":" + b"1" * 4400 + b"\r\n",
    b"*1\r\n" * 5000 + b":1\r\n",           # nested past the recursion limit
    b"%1\r\n*1\r\n*0\r\n:1\r\n",           # an array of arrays as a map key
    b"%1\r\n%1\r\n:1\r\n:2\r\n:3\r\n",      # a map as a map key
    b"|1\r\n*1\r\n*0\r\n:1\r\n:2\r\n",      # an attribute with such a key
    b",\xff\r\n",
    b"*2\r\n$-5\r\n:x\r\n",
], ids=lambda d: repr(d[:20]))
def test_reply_parser_survives_a_hostile_server(data):
    # Nothing but a reply or a ProtocolError, whatever the server sends.
    parser = ReplyParser()
    parser.feed(data)
    try:
        value = parser.next_reply()
    except ProtocolError:
        return
    assert value is not NEED_DATA


def test_reply_parser_map_keys_of_any_shape():
    parser = ReplyParser()
    parser.feed(b"%1\r\n*2\r\n*1\r\n:1\r\n%1\r\n+a\r\n:2\r\n+v\r\n")
    assert parser.next_reply() == {((1,), (("a", 2),)): "v"}


def test_reply_parser_nesting_limit():
    ok = b"*1\r\n" * protocol.MAX_REPLY_DEPTH + b":1\r\n"
    parser = ReplyParser()
    parser.feed(ok)
    value = parser.next_reply()
    for _ in range(protocol.MAX_REPLY_DEPTH):
        value = value[0]
    assert value == 1
    parser.feed(b"*1\r\n" + ok)
    with pytest.raises(ProtocolError, match="nested"):
        parser.next_reply()


@given(st.binary(max_size=60))
@settings(max_examples=400, deadline=None)
def test_reply_parser_raises_only_protocol_errors(data):
    parser = ReplyParser()
    parser.feed(data)
    try:
        while parser.next_reply() is not NEED_DATA:
            pass
    except ProtocolError:
        pass


def test_need_data_repr():
    assert repr(NEED_DATA) == "NEED_DATA"
    assert repr(NULL_ARRAY) == "NULL_ARRAY"


# --- Round trips (hypothesis) -----------------------------------------------


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    edges = [0, *sorted(cuts), len(data)]
    return [data[a:b] for a, b in zip(edges, edges[1:])]


_argvs = st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=20), min_size=1, max_size=5)


@settings(max_examples=200, deadline=None)
@given(_argvs, st.data())
def test_encode_command_round_trips_through_request_parser(argvs, data):
    wire = b"".join(encode_command(argv) for argv in argvs)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=12))
    items, error, parser = _run(RequestParser, _split(wire, cuts))
    assert error is None
    assert items == argvs
    assert parser.buffered == 0


_line_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n"),
                     max_size=12)
_scalars = st.one_of(
    st.binary(max_size=16),
    st.integers(-(2**63), 2**63 - 1),
    st.none(),
    st.booleans(),
    st.floats(),
    _line_text.map(Simple),
    _line_text.map(ErrorReply),
    st.just(NULL_ARRAY),
    st.frozensets(st.binary(max_size=6), max_size=4),
)
_replies = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(st.binary(max_size=8), children, max_size=4),
    ),
    max_leaves=25,
)


def resp2_view(value):
    """What a RESP2 reply parser gives back for ``value``."""
    t = type(value)
    if t is Simple:
        return str(value)
    if t is ErrorReply:
        return ReplyError(str(value))
    if t is bool:
        return int(value)
    if t is float:
        return format_double(value)
    if value is NULL_ARRAY:
        return None
    if t is frozenset:
        return list(value)
    if t is list or t is tuple:
        return [resp2_view(v) for v in value]
    if t is dict:
        return [resp2_view(x) for pair in value.items() for x in pair]
    return value


def resp3_view(value):
    """What a RESP3 reply parser gives back for ``value``."""
    t = type(value)
    if t is Simple:
        return str(value)
    if t is ErrorReply:
        return ReplyError(str(value))
    if value is NULL_ARRAY:
        return None
    if t is frozenset:
        return list(value)
    if t is list or t is tuple:
        return [resp3_view(v) for v in value]
    if t is dict:
        return {k: resp3_view(v) for k, v in value.items()}
    return value


@settings(max_examples=200, deadline=None)
@given(st.lists(_replies, min_size=1, max_size=3), st.data())
def test_replies_round_trip_resp2(values, data):
    wire = b"".join(encode(v) for v in values)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=8))
    items, error, _ = _run(ReplyParser, _split(wire, cuts))
    assert error is None
    assert tagged(items) == tagged([resp2_view(v) for v in values])


@settings(max_examples=200, deadline=None)
@given(st.lists(_replies, min_size=1, max_size=3), st.data())
def test_replies_round_trip_resp3(values, data):
    wire = b"".join(encode3(v) for v in values)
    cuts = data.draw(st.lists(st.integers(0, len(wire)), max_size=8))
    items, error, _ = _run(ReplyParser, _split(wire, cuts))
    assert error is None
    assert tagged(items) == tagged([resp3_view(v) for v in values])


def test_round_trip_views_are_not_vacuous():
    # tagged() must tell apart what the views convert, or the properties above prove nothing.
    assert tagged(True) != tagged(1)
    assert tagged(Simple("x")) != tagged("x")
    assert tagged(ReplyError("ERR a")) != tagged(ReplyError("ERR b"))
    assert tagged({b"k": 1}) != tagged([b"k", 1])
    assert tagged(-0.0) != tagged(0.0)
    assert tagged(float("nan")) == tagged(float("nan"))
    assert math.isnan(float(format_double(float("nan"))))


# --- take_requests: the batch form the server uses ------------------------------------


def _one_by_one(data: bytes, **limits) -> tuple[list, str | None]:
    p = RequestParser(**limits)
    p.feed(data)
    out = []
    try:
        while (argv := p.next_request()) is not None:
            out.append(argv)
    except ProtocolError as exc:
        return out, exc.reply_message
    return out, None


def _batched(data: bytes, split: int | None = None) -> tuple[list, str | None]:
    return _batched_reads([data] if split is None else [data[:split], data[split:]])


@pytest.mark.parametrize("data", [
    b"*1\r\n$4\r\nPING\r\n" * 3 + b"GET a\r\n" + b"*2\r\n$3\r\nGET\r\n$1\r\nb\r\n",
    b"*0\r\n*1\r\n$4\r\nPING\r\n\r\n*-1\r\n*1\r\n$0\r\n\r\n",
    b"*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$01\r\nb\r\n",        # error after a good one
    b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n*x\r\n",             # error after two
    b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\nb\r\n*1\r\n$4\r\nPING\r\n",  # CRLF in a value
    b"*1\r\n$4\r\nPI",                                            # partial
])
def test_take_requests_matches_next_request(data):
    expected = _one_by_one(data)
    assert _batched(data) == expected
    for split in range(len(data) + 1):
        assert _batched(data, split) == expected


def test_take_requests_raises_a_pending_error_only_after_the_good_requests():
    p = RequestParser()
    p.feed(b"*1\r\n$4\r\nPING\r\n*1\r\n$x\r\n")
    assert p.take_requests() == [[b"PING"]]
    with pytest.raises(ProtocolError, match="invalid bulk length"):
        p.take_requests()


@given(st.lists(st.lists(st.binary(max_size=20), min_size=1, max_size=6), min_size=1,
                max_size=8), st.integers(min_value=0, max_value=400))
@settings(max_examples=200, deadline=None)
def test_take_requests_round_trips_random_pipelines(commands, split):
    data = b"".join(encode_command(c) for c in commands)
    assert _batched(data, min(split, len(data))) == (commands, None)


# --- take_requests' first stage (one split per read) and its hand-over to the others ----


def _batched_reads(chunks: list[bytes], parser: RequestParser | None = None) -> tuple[list, str | None]:
    p = parser or RequestParser()
    out = []
    try:
        for chunk in chunks:
            p.feed(chunk)
            while batch := p.take_requests():
                out.extend(batch)
    except ProtocolError as exc:
        return out, exc.reply_message
    return out, None


SMALL = encode_command([b"SET", b"k", b"v"]) + encode_command([b"GET", b"k"])


@pytest.mark.parametrize("size", [0, 1, 1022, 1023, 1024, 1025, 5000])
@pytest.mark.parametrize("value", [b"x", b"\r\n", b"a\r", b"\nb"], ids=["text", "crlf", "cr", "lf"])
def test_take_requests_values_around_the_first_stage_limit(size, value):
    big = (value * size)[:size]
    data = (SMALL + encode_command([b"SET", b"big", big]) + SMALL
            + encode_command([b"MSET"] + [b"k%d" % i for i in range(10)]) + SMALL)
    expected = _one_by_one(data)
    assert expected[1] is None and len(expected[0]) == 8 and expected[0][2][2] == big
    assert _batched(data) == expected
    for split in range(0, len(data) + 1, max(1, len(data) // 97)):
        assert _batched(data, split) == expected


def test_take_requests_keeps_parsing_right_across_reads_after_a_big_value():
    # A request the first stage cannot take makes it step aside for a while;
    # every read in between and after must still parse exactly.
    parser = RequestParser()
    reads = []
    for i in range(3 * protocol._SPLIT_BACKOFF):
        if i % 50 == 0:
            reads.append(encode_command([b"SET", b"big", b"v" * 4000]) + SMALL)
        elif i % 7 == 0:
            reads.append(b"GET inline\r\n" + SMALL)
        else:
            reads.append(SMALL * (1 + i % 3))
    expected = _one_by_one(b"".join(reads))
    assert _batched_reads(reads, parser) == expected
    assert parser.take_requests() == []


@pytest.mark.parametrize("max_bulk_len", [1, 3, 10, 1023, 1024])
def test_take_requests_honours_a_small_proto_max_bulk_len(max_bulk_len):
    data = SMALL + encode_command([b"ECHO", b"y" * (max_bulk_len + 1)]) + SMALL
    expected = _one_by_one(data, max_bulk_len=max_bulk_len)
    assert expected[1] == "ERR Protocol error: invalid bulk length"
    assert _batched_reads([data], RequestParser(max_bulk_len=max_bulk_len)) == expected
    ok = SMALL + encode_command([b"ECHO", b"y" * max_bulk_len])
    assert _batched_reads([ok], RequestParser(max_bulk_len=max_bulk_len)) == (
        _one_by_one(ok, max_bulk_len=max_bulk_len))


@pytest.mark.parametrize("header", [b"*02", b"*+2", b"* 2", b"*2 ", b"*-0", b"*0", b"*-1"])
def test_take_requests_leaves_unusual_multibulk_headers_to_the_exact_parser(header):
    data = SMALL + header + b"\r\n$3\r\nGET\r\n$1\r\nk\r\n" + SMALL
    assert _batched(data) == _one_by_one(data)


@pytest.mark.parametrize("header", [b"$03", b"$+3", b"$ 3", b"$3 ", b"$-3", b"$-1", b"$4"])
def test_take_requests_leaves_unusual_bulk_headers_to_the_exact_parser(header):
    data = SMALL + b"*2\r\n" + header + b"\r\nGET\r\n$1\r\nk\r\n" + SMALL
    assert _batched(data) == _one_by_one(data)


@given(st.lists(st.lists(st.one_of(st.binary(max_size=12),
                                   st.binary(min_size=1015, max_size=1030)),
                         min_size=1, max_size=5), min_size=1, max_size=6),
       st.lists(st.integers(min_value=0, max_value=8000), max_size=4))
@settings(max_examples=150, deadline=None)
def test_take_requests_round_trips_pipelines_across_reads(commands, cuts):
    data = b"".join(encode_command(c) for c in commands)
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    assert _batched_reads(chunks) == (commands, None)


@pytest.mark.parametrize("data", [
    SMALL + encode_command([b"SET", b"big", b"v" * 1500]) + SMALL,
    SMALL + b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\nb\r\n" + SMALL + b"PING\r\n" + SMALL,
    encode_command([b"MSET"] + [b"k%d" % i for i in range(8)]) * 2,
])
def test_take_requests_returns_a_request_only_once_it_is_whole(data):
    # Every prefix: exactly the requests whose last CRLF it holds, no sooner.
    for cut in range(len(data) + 1):
        assert _batched(data[:cut]) == _one_by_one(data[:cut]), cut
