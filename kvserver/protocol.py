"""The Redis wire protocol, without I/O.

Nothing here touches a socket. A server feeds the bytes it read into a
:class:`RequestParser` and pulls requests (argv lists of ``bytes``) until it
says it needs more data; replies are Python values turned into bytes by
:func:`encode` (RESP2) or :func:`encode3` (RESP3). A client does the reverse
with :func:`encode_command` and :class:`ReplyParser`.

Requests come in two shapes, told apart by the first byte as Redis does: a
multibulk (``*``) request, or an inline request, one line of words as a person
types it into telnet, with Redis's quoting rules (``"a b"``, ``'c'``, ``\\x41``).

Reply values and their wire forms:

============================  ====================  ====================
Python value                  RESP2                 RESP3
============================  ====================  ====================
``bytes`` / ``str``           ``$`` bulk            ``$`` bulk
``Simple`` (a ``str``)        ``+`` simple          ``+`` simple
``ErrorReply`` (a ``str``)    ``-`` error           ``-`` error
``int``                       ``:``                 ``:``
``bool``                      ``:1`` / ``:0``       ``#t`` / ``#f``
``float``                     ``$`` bulk            ``,`` double
``None``                      ``$-1``               ``_``
``NULL_ARRAY``                ``*-1``               ``_``
``list`` / ``tuple``          ``*`` array           ``*`` array
``dict``                      ``*`` flat array      ``%`` map
``set`` / ``frozenset``       ``*`` array           ``~`` set
``Raw`` (``bytes``)           as is                 as is
============================  ====================  ====================
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ProtocolError, ReplyError

# --- Limits -----------------------------------------------------------------
# Each is Redis's own default, so a client that works against Redis works here.

#: An inline request (or a ``*``/``$`` header line) with no newline within this
#: many bytes is refused: Redis's PROTO_INLINE_MAX_SIZE.
MAX_INLINE_SIZE = 64 * 1024
#: Largest bulk string argument: Redis's ``proto-max-bulk-len`` default.
MAX_BULK_LEN = 512 * 1024 * 1024
#: Most arguments in one multibulk request. Redis 7 allows up to INT_MAX; we
#: keep the 1024*1024 bound older Redis versions had, so one request can never
#: make us allocate an argument list of unbounded length.
MAX_MULTIBULK_LEN = 1024 * 1024
#: Before a client has authenticated (requirepass set), Redis 7 accepts only
#: small requests, so a few bytes cannot make the server allocate much
#: (CVE-2021-32675): at most this many arguments...
UNAUTHENTICATED_MAX_MULTIBULK = 10
#: ...of at most this many bytes each. Inline requests are bounded by
#: MAX_INLINE_SIZE anyway.
UNAUTHENTICATED_MAX_BULK = 16 * 1024
#: Unparsed bytes held for one client: Redis's ``client-query-buffer-limit``.
MAX_QUERY_BUFFER = 1024 * 1024 * 1024
#: Bulk strings at least this big are special-cased, as Redis does past its
#: PROTO_MBULK_BIG_ARG (same name and size): one that is whole in the buffer
#: is copied out through a memoryview (one copy instead of two); one that is
#: not yet whole is collected as the reads arrive, each read kept as it came
#: (no copy), and joined once when complete (see RequestParser.feed). So a
#: 400 MB value costs one copy of itself, never a growing buffer plus a copy.
_BIG_ARG = 32 * 1024

_CRLF = b"\r\n"
#: Header lines of small requests, as bytes -> the number they give
#: (``b"*3"`` -> 3, ``b"$5"`` -> 5): take_requests' first stage checks and
#: converts a header with one dict lookup. Only canonical forms are keys (no
#: sign, no leading zero, no ``*0``), so a header that is not a key is simply
#: left to the later stages, which know the exact rules and errors.
_SPLIT_MAX = 1024
_MULTIBULK_HEADERS = {b"*%d" % n: n for n in range(1, _SPLIT_MAX)}
_BULK_HEADERS = {b"$%d" % n: n for n in range(_SPLIT_MAX)}
#: Reads for which take_requests skips its first stage after that stage met a
#: request it cannot take (a big value, a CRLF in a value, an inline request).
#: Its split scans every byte, values too, so for such a client it is work
#: thrown away; clients tend to send alike requests, and trying again now
#: and then costs little.
_SPLIT_BACKOFF = 64


class Simple(str):
    """A simple-string reply (``+OK``)."""

    __slots__ = ()


class ErrorReply(str):
    """An error reply; the text starts with its code (``ERR``, ``WRONGTYPE``...)."""

    __slots__ = ()


class Raw(bytes):
    """Bytes that are already a complete encoded reply."""

    __slots__ = ()


class Parts:
    """An encoded reply held in pieces, so a big value among them is never copied.

    ``len()`` is its size in bytes. Built by :func:`bulk_parts` for a bulk
    reply of at least :data:`BIG_REPLY` bytes, and by :func:`join_replies`
    when such a reply is batched with others; the connection writes the
    pieces out a slice at a time.
    """

    __slots__ = ("pieces", "nbytes")

    def __init__(self, pieces: list) -> None:
        self.pieces = pieces
        self.nbytes = sum(map(len, pieces))

    def __len__(self) -> int:
        return self.nbytes

    def __bytes__(self) -> bytes:
        return b"".join(self.pieces)


#: A bulk reply at least this big is encoded as Parts (header, the value
#: itself, CRLF) instead of one new bytes object: formatting a 400 MB value
#: into its reply would copy it, and the transport would copy it again.
#: Past MAX_BATCH_REPLY_BYTES (256 KiB) a reply is sent on its own anyway.
BIG_REPLY = 256 * 1024


def bulk_parts(value: bytes) -> Parts:
    """A bulk reply (RESP2 and RESP3 alike) whose value is referenced, not copied."""
    return Parts([b"$%d\r\n" % len(value), value, b"\r\n"])


def join_replies(replies: list) -> bytes | Parts:
    """Encoded replies as one chunk: ``bytes`` if all are bytes, else Parts.

    In Parts, runs of small replies are joined and big pieces kept as they are.
    """
    pieces: list = []
    run: list = []
    for reply in replies:
        if type(reply) is Parts:
            for piece in reply.pieces:
                if len(piece) >= BIG_REPLY:
                    if run:
                        pieces.append(b"".join(run))
                        run = []
                    pieces.append(piece)
                else:
                    run.append(piece)
        else:
            run.append(reply)
    if not pieces:
        return b"".join(run)
    if run:
        pieces.append(b"".join(run))
    return Parts(pieces)


class _NullArray:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NULL_ARRAY"


#: The null array (``*-1`` in RESP2), which some commands reply instead of a null bulk.
NULL_ARRAY = _NullArray()

OK = Raw(b"+OK\r\n")
PONG = Raw(b"+PONG\r\n")
QUEUED = Raw(b"+QUEUED\r\n")
#: A command that answers nothing (SHUTDOWN closes the connection instead).
NO_REPLY = Raw(b"")

# --- Requests ---------------------------------------------------------------


class RequestParser:
    """Turns a client's byte stream into argv lists.

    Use: ``feed(data)`` with whatever the socket gave, then call
    :meth:`next_request` until it returns ``None`` (needs more data), or
    :meth:`take_requests` for all of them at once (what the server does).
    :meth:`next_request` raises :class:`ProtocolError` on malformed input; the
    caller replies with ``err.reply_message`` and closes the connection.
    Requests completed before the bad bytes are returned first, so a pipeline
    runs up to the error, as in Redis.
    """

    __slots__ = ("_buf", "_pos", "_scan", "_argv", "_want", "_max_bulk", "_max_query",
                 "_bulk_headers", "_split_skip", "pending_error", "unauthenticated",
                 "_big", "_big_need", "_big_have")

    def __init__(self, max_bulk_len: int = MAX_BULK_LEN,
                 max_query_buffer: int = MAX_QUERY_BUFFER) -> None:
        # Unparsed bytes: usually the ``bytes`` object the socket gave (no
        # copy, and slices of it are arguments already); a bytearray only
        # while a large request accumulates over many reads (see feed()).
        self._buf: bytes | bytearray = b""
        self._pos = 0
        # Where to resume looking for the end of an unfinished header or
        # inline line, so a slow sender does not make us rescan it per byte.
        self._scan = 0
        # A multibulk request in progress: arguments so far, and how many more.
        self._argv: list[bytes] | None = None
        self._want = 0
        self._max_bulk = max_bulk_len
        self._max_query = max_query_buffer
        # The first stage's bulk headers: those proto-max-bulk-len allows.
        self._bulk_headers = _BULK_HEADERS if max_bulk_len >= _SPLIT_MAX else {
            k: v for k, v in _BULK_HEADERS.items() if v <= max_bulk_len}
        # Reads left before the first stage is tried again (see _SPLIT_BACKOFF).
        self._split_skip = 0
        # A protocol error found by take_requests() after good requests: it is
        # raised by the next call, once those requests have run. Public so a
        # caller can tell, without a call, whether another take is needed.
        self.pending_error: ProtocolError | None = None
        # Set by the connection while its client must still authenticate:
        # the UNAUTHENTICATED_* limits apply, and take_requests() returns one
        # request at a time, so the request after an AUTH is parsed with the
        # limits the AUTH lifted (Redis parses and runs one by one).
        self.unauthenticated = False
        # A big bulk argument being collected (see _BIG_ARG): the reads that
        # hold its bytes so far, how many bytes it still lacks (its CRLF is
        # not part of it: that is parsed from _buf once the bytes are in),
        # and how many it has.
        self._big: list[bytes] | None = None
        self._big_need = 0
        self._big_have = 0

    @property
    def buffered(self) -> int:
        """Bytes received and not yet parsed (the query buffer length)."""
        return len(self._buf) - self._pos + self._big_have

    def feed(self, data: bytes) -> None:
        """Add bytes read from the peer. Raises ProtocolError past the query buffer limit."""
        if self._big is not None:
            data = self._feed_big(data)
            if not data:
                return
        buf, pos = self._buf, self._pos
        rest = len(buf) - pos
        if not rest:
            self._buf = data  # the common case: everything before was parsed
            self._scan = 0
        elif type(buf) is bytearray:
            # A big request is accumulating: compact and append in place.
            del buf[:pos]
            buf += data
            self._scan = max(0, self._scan - pos)
        elif rest + len(data) <= _BIG_ARG:
            self._buf = buf[pos:] + data  # a small partial request: copy is cheap
            self._scan = max(0, self._scan - pos)
        else:
            # Switch to a bytearray so growing a large request stays linear.
            grown = bytearray(memoryview(buf)[pos:])
            grown += data
            self._buf = grown
            self._scan = max(0, self._scan - pos)
        self._pos = 0
        if len(self._buf) + self._big_have > self._max_query:
            raise ProtocolError("query buffer limit exceeded")

    def _feed_big(self, data: bytes) -> bytes:
        """Collect the bytes of a big bulk argument; returns what follows them (or b"")."""
        if type(data) is not bytes:
            data = bytes(data)  # a caller's buffer may change: keep our own
        need = self._big_need
        big = self._big
        if len(data) <= need:
            big.append(data)  # the usual case: the read is all value, kept as it came
            rest = b""
        else:
            big.append(data[:need])
            rest = data[need:]
        taken = len(data) - len(rest)
        self._big_need -= taken
        self._big_have += taken
        if self._big_have + len(rest) > self._max_query:
            raise ProtocolError("query buffer limit exceeded")
        return rest

    def take_requests(self) -> list[list[bytes]]:
        """Every complete request buffered now, in order ([] if none is complete).

        The same requests :meth:`next_request` would return one by one, with
        the per-call overhead paid once per read: a busy pipelining client
        sends dozens per read. Malformed input after good requests: those are
        returned and the ProtocolError is raised by the next call.
        """
        error = self.pending_error
        if error is not None:
            self.pending_error = None
            raise error
        if self.unauthenticated:
            argv = self.next_request()
            return [argv] if argv is not None else []
        out: list[list[bytes]] = []
        buf = self._buf
        pos = self._pos
        end = len(buf)
        if type(buf) is bytes and self._argv is None and not self._scan:
            if self._split_skip:
                self._split_skip -= 1
            else:
                pos = self._take_small(buf, pos, out)
                if pos == end:
                    self._pos = pos
                    return out  # the usual end: the read held whole small requests only
            # Second stage: whole, well-formed multibulk requests sitting in
            # a ``bytes`` buffer, with any header string2ll accepts (digits
            # only, no leading zero). Each is committed only when complete;
            # anything unusual -- partial data, a bad header, a limit -- is
            # left to next_request(), which gives the exact error.
            max_bulk = self._max_bulk
            find = buf.find
            while pos < end and buf[pos] == 42:
                nl = find(b"\r\n", pos)
                digits = buf[pos + 1:nl]
                if nl < 0 or not digits.isdigit() or digits[0] == 48 or len(digits) > 7:
                    break
                want = int(digits)
                if want > MAX_MULTIBULK_LEN:
                    break
                p = nl + 2
                argv = []
                while want:
                    if p >= end or buf[p] != 36:
                        break
                    nl = find(b"\r\n", p)
                    digits = buf[p + 1:nl]
                    # At most 10 digits (MAX_BULK_LEN has 9): a longer run
                    # is refused by the exact parser, and int() of one past
                    # 4300 digits would raise ValueError.
                    if nl < 0 or not digits.isdigit() or (digits[0] == 48 and nl - p > 2) \
                            or nl - p > 11:
                        break
                    start = nl + 2
                    stop = start + int(digits)
                    if stop - start > max_bulk or stop + 2 > end or buf[stop] != 13 \
                            or buf[stop + 1] != 10:
                        break
                    argv.append(buf[start:stop])
                    p = stop + 2
                    want -= 1
                if want:
                    break
                out.append(argv)
                pos = p
            self._pos = pos
            if pos == end:
                return out  # the usual end: the read held whole requests only
        # Whatever the fast loop left (inline requests, partial or unusual
        # input) goes through the general parser, one request at a time.
        while True:
            try:
                argv = self.next_request()
            except ProtocolError as exc:
                if not out:
                    raise
                self.pending_error = exc
                return out
            if argv is None:
                return out
            out.append(argv)

    def _take_small(self, buf: bytes, pos: int, out: list[list[bytes]]) -> int:
        """take_requests' first stage: small requests, found by one split of the buffer.

        Appends to ``out`` the whole requests from ``pos`` on whose headers
        are all keys of the *_HEADERS tables, and returns where it stopped.
        Split at every CRLF, a request's lines alternate bulk header and
        argument; an argument is whole exactly when its line is as long as
        its header says (a CRLF inside a value makes the line shorter). The
        lines are the arguments themselves: no slicing, no int() per header.
        Stops at partial data, or at the first request that does not fit,
        which the later stages then parse (with exact errors).
        """
        lines = (buf[pos:] if pos else buf).split(b"\r\n")
        last = len(lines) - 1  # what follows the last CRLF: never a whole line
        multibulk = _MULTIBULK_HEADERS
        bulk = self._bulk_headers
        j = 0
        want = stop = 0
        while j < last:
            want = multibulk.get(lines[j])
            if want is None:
                break
            stop = j + 1 + 2 * want  # the line after this request's last
            if stop > last:
                break
            # Each argument's line must be as long as its header says;
            # written out for the usual two and three arguments.
            if want == 2:
                a, b = lines[j + 2], lines[j + 4]
                if bulk.get(lines[j + 1]) != len(a) or bulk.get(lines[j + 3]) != len(b):
                    break
                out.append([a, b])
            elif want == 3:
                a, b, c = lines[j + 2], lines[j + 4], lines[j + 6]
                if bulk.get(lines[j + 1]) != len(a) or bulk.get(lines[j + 3]) != len(b) \
                        or bulk.get(lines[j + 5]) != len(c):
                    break
                out.append([a, b, c])
            else:
                k = j + 1
                while k < stop and bulk.get(lines[k]) == len(lines[k + 1]):
                    k += 2
                if k < stop:
                    break
                out.append(lines[j + 2:stop:2])
            j = stop
        if j == last:
            return len(buf) - len(lines[last])  # the usual end
        if want is None or stop <= last:
            self._split_skip = _SPLIT_BACKOFF  # a request it cannot take, not partial data
        if not j:
            return pos
        # Less the bytes of the lines left (each with its CRLF but the last).
        return len(buf) - sum(map(len, lines[j:])) - 2 * (last - j)

    def next_request(self) -> list[bytes] | None:
        """Return the next complete request, or None if more bytes are needed.

        The general parser: any input, any split, exact errors. The server
        calls :meth:`take_requests`, whose fast loop handles the common case
        and falls back to this for the rest.

        An empty list is never returned: empty inline lines and ``*0`` are skipped.
        """
        buf = self._buf
        while True:
            pos = self._pos
            if self._argv is None:
                if pos >= len(buf):
                    return None
                if buf[pos] == 42:  # b"*"
                    argv = self._start_multibulk(buf, pos)
                else:
                    argv = self._inline(buf, pos)
                if argv is None:
                    return None
                if argv:
                    return argv
                continue  # empty inline line or *0: nothing to run
            return self._continue_multibulk(buf)

    def _find_line_end(self, buf: bytearray, pos: int, sep: bytes = b"\r\n") -> int:
        nl = buf.find(sep, max(pos, self._scan))
        # Resume next time where this search stopped (less one byte: a "\r"
        # at the very end may be followed by its "\n" in the next read).
        self._scan = 0 if nl >= 0 else max(pos, len(buf) - len(sep) + 1)
        return nl

    def _start_multibulk(self, buf: bytearray, pos: int) -> list[bytes] | None:
        nl = self._find_line_end(buf, pos)
        if nl < 0:
            if len(buf) - pos > MAX_INLINE_SIZE:
                raise ProtocolError("too big mbulk count string")
            return None
        count = _header_int(buf[pos + 1:nl])
        if count is None or count > MAX_MULTIBULK_LEN:
            raise ProtocolError("invalid multibulk length")
        if count > UNAUTHENTICATED_MAX_MULTIBULK and self.unauthenticated:
            raise ProtocolError("unauthenticated multibulk length")
        self._pos = nl + 2
        if count <= 0:
            return []
        self._argv = []
        self._want = count
        return self._continue_multibulk(buf)

    def _continue_multibulk(self, buf: bytearray) -> list[bytes] | None:
        argv = self._argv
        assert argv is not None
        pos = self._pos
        end = len(buf)
        want = self._want
        big = self._big
        if big is not None:
            # The bytes of a big argument are all in (feed() collected
            # them); what is left of it is its CRLF, at the buffer's start.
            if self._big_need or end - pos < 2:
                return None
            if buf[pos] != 13 or buf[pos + 1] != 10:
                raise ProtocolError("expected CRLF after bulk string")
            argv.append(big[0] if len(big) == 1 else b"".join(big))  # the one copy
            self._big = None
            self._big_have = 0
            pos += 2
            want -= 1
        while want:
            if pos >= end:
                break
            if buf[pos] != 36:  # b"$"
                # Redis turns CR/LF into spaces in error lines: a raw one would
                # end the reply early.
                got = " " if buf[pos] in b"\r\n" else chr(buf[pos])
                raise ProtocolError(f"expected '$', got '{got}'")
            nl = self._find_line_end(buf, pos)
            if nl < 0:
                if end - pos > MAX_INLINE_SIZE:
                    raise ProtocolError("too big bulk count string")
                break
            size = _header_int(buf[pos + 1:nl])
            if size is None or size < 0 or size > self._max_bulk:
                raise ProtocolError("invalid bulk length")
            if size > UNAUTHENTICATED_MAX_BULK and self.unauthenticated:
                raise ProtocolError("unauthenticated bulk length")
            start = nl + 2
            stop = start + size
            if stop + 2 > end:
                if size >= _BIG_ARG and stop > end:
                    # Collect the value read by read (feed() does) rather
                    # than grow the buffer and copy the value out of it.
                    have = bytes(memoryview(buf)[start:end])
                    self._big = [have] if have else []
                    self._big_need = size - len(have)
                    self._big_have = len(have)
                    self._buf = b""
                    self._scan = 0
                    pos = 0
                break
            if buf[stop] != 13 or buf[stop + 1] != 10:
                raise ProtocolError("expected CRLF after bulk string")
            if size < _BIG_ARG:
                argv.append(bytes(buf[start:stop]))
            else:
                with memoryview(buf) as view:
                    argv.append(bytes(view[start:stop]))
            pos = stop + 2
            want -= 1
        self._pos = pos
        self._want = want
        if want:
            return None
        self._argv = None
        return argv

    def _inline(self, buf: bytearray, pos: int) -> list[bytes] | None:
        nl = self._find_line_end(buf, pos, b"\n")
        if nl < 0:
            if len(buf) - pos > MAX_INLINE_SIZE:
                raise ProtocolError("too big inline request")
            return None
        line = bytes(buf[pos:nl])
        self._pos = nl + 1
        if line.endswith(b"\r"):
            line = line[:-1]
        argv = split_args(line)
        if argv is None:
            raise ProtocolError("unbalanced quotes in request")
        return argv


# What Redis's string2ll accepts: "0", or an optional minus and digits without
# a leading zero (at most 19, the width of a long long), within its range.
_HEADER_INT = re.compile(rb"0|-?[1-9][0-9]{0,18}")
_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1


def _header_int(digits: bytearray) -> int | None:
    """The number in a ``*``/``$`` header, or None if Redis would refuse it.

    Python's int() alone would also take spaces, ``+`` and ``_``, and raise
    ValueError past 4300 digits; the pattern caps the length first.
    """
    if not _HEADER_INT.fullmatch(digits):
        return None
    value = int(digits)
    return value if _INT64_MIN <= value <= _INT64_MAX else None

_ESCAPES = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("a"): 7}
_SPACE = b" \t\n\r\v\f\x00"
#: What ends an unquoted word: sdssplitargs skips isspace() between words but
#: ends a word only at these, so \v and \f stay inside one.
_WORD_END = b" \t\n\r\x00"
_HEX = b"0123456789abcdefABCDEF"


def split_args(line: bytes) -> list[bytes] | None:
    """Split one inline line into arguments with Redis's quoting rules.

    ``"..."`` understands ``\\n \\r \\t \\b \\a \\xHH`` and escapes any other
    character; ``'...'`` understands only ``\\'``. A closing quote must be
    followed by a space or the end of the line. Returns None on unbalanced quotes.
    """
    args: list[bytes] = []
    i, n = 0, len(line)
    while True:
        while i < n and line[i] in _SPACE:
            i += 1
        if i >= n:
            return args
        cur = bytearray()
        in_dq = in_sq = False
        while True:
            if in_dq:
                if i >= n:
                    return None
                c = line[i]
                if (c == 92 and i + 3 < n and line[i + 1] == 120  # \xHH
                        and line[i + 2] in _HEX and line[i + 3] in _HEX):
                    cur.append(int(line[i + 2:i + 4], 16))
                    i += 3
                elif c == 92 and i + 1 < n:
                    i += 1
                    cur.append(_ESCAPES.get(line[i], line[i]))
                elif c == 34:  # closing "
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    in_dq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            elif in_sq:
                if i >= n:
                    return None
                c = line[i]
                if c == 92 and i + 1 < n and line[i + 1] == 39:
                    i += 1
                    cur.append(39)
                elif c == 39:
                    if i + 1 < n and line[i + 1] not in _SPACE:
                        return None
                    in_sq = False
                    i += 1
                    break
                else:
                    cur.append(c)
            else:
                if i >= n:
                    break
                c = line[i]
                if c in _WORD_END:
                    break
                if c == 34:
                    in_dq = True
                elif c == 39:
                    in_sq = True
                else:
                    cur.append(c)
            i += 1
        args.append(bytes(cur))


def encode_command(argv: list[bytes | str | int | float] | tuple) -> bytes:
    """Encode one request as a RESP multibulk (what clients send)."""
    out = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        if isinstance(arg, str):
            arg = arg.encode()
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            arg = repr(arg).encode()
        elif not isinstance(arg, (bytes, bytearray, memoryview)):
            raise TypeError(f"cannot send argument of type {type(arg).__name__}")
        out.append(b"$%d\r\n" % len(arg))
        out.append(bytes(arg))
        out.append(_CRLF)
    return b"".join(out)


# --- Replies ----------------------------------------------------------------


def format_double(value: float) -> bytes:
    """Format a double the way Redis 7 prints one (``%.17g``, with inf/nan spelled out)."""
    if value != value:
        return b"nan"
    if value == float("inf"):
        return b"inf"
    if value == float("-inf"):
        return b"-inf"
    if value == int(value) and 0 < abs(value) < 1e17:  # not 0: %.17g keeps -0's sign
        return b"%d" % int(value)
    return (b"%.17g" % value)


def error_line(message: str | bytes) -> bytes:
    """The wire form of an error reply: ``-<message>\\r\\n``, with no CR or LF inside.

    Every error reply goes through here (encode(), encode3(), and the few
    lines built by hand). Messages quote client input (an unknown
    subcommand, a CONFIG SET name, an EXPIRE option), and a raw CR or LF
    would end the line early and put the rest of the reply stream out of
    step. As Redis's addReplyErrorFormat does: CR/LF at the ends are
    trimmed, the others become spaces.
    """
    data = message.encode() if type(message) is not bytes else message
    if b"\r" in data or b"\n" in data:
        data = data.strip(b"\r\n").replace(b"\r", b" ").replace(b"\n", b" ")
    return b"-%s\r\n" % data


def _bulk(v: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(v), v)


def encode(value: Any) -> bytes:
    """Encode a reply value as RESP2 (see the module table)."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if t is Raw:
        return value
    if t is int:
        return b":%d\r\n" % value
    if value is None:
        return b"$-1\r\n"
    if t is Simple:
        return b"+%s\r\n" % value.encode()
    if t is ErrorReply:
        return error_line(value)
    if t is str:
        return _bulk(value.encode())
    if t is list or t is tuple:
        return b"*%d\r\n" % len(value) + b"".join([encode(v) for v in value])
    if t is bool:
        return b":1\r\n" if value else b":0\r\n"
    if t is float:
        return _bulk(format_double(value))
    if t is dict:
        parts = [b"*%d\r\n" % (2 * len(value))]
        for k, v in value.items():
            parts.append(encode(k))
            parts.append(encode(v))
        return b"".join(parts)
    if t is set or t is frozenset:
        return b"*%d\r\n" % len(value) + b"".join([encode(v) for v in value])
    if value is NULL_ARRAY:
        return b"*-1\r\n"
    if isinstance(value, (bytearray, memoryview)):
        return _bulk(bytes(value))
    raise TypeError(f"cannot encode reply of type {t.__name__}")


def encode3(value: Any) -> bytes:
    """Encode a reply value as RESP3 (see the module table)."""
    t = type(value)
    if t is bytes:
        return b"$%d\r\n%s\r\n" % (len(value), value)
    if t is Raw:
        return value
    if t is int:
        return b":%d\r\n" % value
    if value is None or value is NULL_ARRAY:
        return b"_\r\n"
    if t is list or t is tuple:
        return b"*%d\r\n" % len(value) + b"".join([encode3(v) for v in value])
    if t is dict:
        parts = [b"%%%d\r\n" % len(value)]
        for k, v in value.items():
            parts.append(encode3(k))
            parts.append(encode3(v))
        return b"".join(parts)
    if t is bool:
        return b"#t\r\n" if value else b"#f\r\n"
    if t is float:
        return b",%s\r\n" % format_double(value)
    if t is set or t is frozenset:
        return b"~%d\r\n" % len(value) + b"".join([encode3(v) for v in value])
    return encode(value)


class ReplyParser:
    """Turns a server's byte stream into reply values (RESP2 and RESP3).

    ``feed(data)``, then :meth:`next_reply` until it returns :data:`NEED_DATA`.
    Simple strings come back as ``str``, bulk strings as ``bytes``, nulls as
    ``None``, error replies as :class:`ReplyError` instances (returned, not
    raised: a pipeline's other replies are still good), maps as ``dict``,
    sets as ``list``, doubles as ``float``, booleans as ``bool``.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._pos = 0

    def feed(self, data: bytes) -> None:
        if self._pos:
            del self._buf[:self._pos]
            self._pos = 0
        self._buf += data

    def next_reply(self) -> Any:
        """Return the next complete reply, or NEED_DATA.

        Raises ProtocolError on anything that is not a reply, and only that:
        whatever a server sends, a client never sees another exception.
        """
        try:
            value, pos = self._parse(self._pos, 0)
        except _Incomplete:
            return NEED_DATA
        except ValueError as exc:  # a length or number that is not one
            raise ProtocolError(f"invalid reply: {str(exc)[:200]}") from None
        self._pos = pos
        return value

    def _line(self, pos: int) -> tuple[bytes, int]:
        nl = self._buf.find(b"\r\n", pos)
        if nl < 0:
            raise _Incomplete
        return bytes(self._buf[pos:nl]), nl + 2

    def _parse(self, pos: int, depth: int) -> tuple[Any, int]:
        buf = self._buf
        if pos >= len(buf):
            raise _Incomplete
        if depth > MAX_REPLY_DEPTH:
            raise ProtocolError(f"reply nested more than {MAX_REPLY_DEPTH} deep")
        kind = buf[pos]
        line, pos = self._line(pos + 1)
        if kind == 43:  # +
            return line.decode("utf-8", "replace"), pos
        if kind == 45:  # -
            return ReplyError(line.decode("utf-8", "replace")), pos
        if kind == 58 or kind == 40:  # : and ( (big number)
            return int(line), pos
        if kind == 36 or kind == 61 or kind == 33:  # $, = verbatim, ! blob error
            size = int(line)
            if size < 0:
                return None, pos
            if pos + size + 2 > len(buf):
                raise _Incomplete
            data = bytes(buf[pos:pos + size])
            pos += size + 2
            if kind == 61:
                data = data[4:]  # drop the "txt:" format prefix
            elif kind == 33:
                return ReplyError(data.decode("utf-8", "replace")), pos
            return data, pos
        if kind in (42, 126, 62):  # *, ~ set, > push
            count = int(line)
            if count < 0:
                return None, pos
            items = []
            depth += 1
            for _ in range(count):
                item, pos = self._parse(pos, depth)
                items.append(item)
            return items, pos
        if kind == 37 or kind == 124:  # % map, | attribute
            count = int(line)
            result = {}
            depth += 1
            for _ in range(count):
                k, pos = self._parse(pos, depth)
                v, pos = self._parse(pos, depth)
                result[_hashable(k)] = v
            if kind == 124:  # attributes annotate the next reply; we drop them
                return self._parse(pos, depth - 1)
            return result, pos
        if kind == 95:  # _
            return None, pos
        if kind == 44:  # ,
            text = line.decode()
            return float(text), pos
        if kind == 35:  # #
            return line == b"t", pos
        raise ProtocolError(f"unknown reply type byte {chr(kind)!r}")


#: Aggregates nested deeper than this in a reply are refused: the parser
#: recurses per level, and a hostile server must get a ProtocolError, not a
#: RecursionError. Redis's deepest replies (COMMAND DOCS) nest about 8 deep.
MAX_REPLY_DEPTH = 100


def _hashable(key: Any) -> Any:
    """A map key as a dict key: arrays become tuples, maps tuples of pairs, all the way down."""
    if isinstance(key, list):
        return tuple(_hashable(k) for k in key)
    if isinstance(key, dict):
        return tuple((k, _hashable(v)) for k, v in key.items())
    return key


class _Incomplete(Exception):
    pass


class _NeedData:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NEED_DATA"


#: Returned by :meth:`ReplyParser.next_reply` when a reply is not complete yet.
NEED_DATA = _NeedData()
