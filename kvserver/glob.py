"""Redis glob patterns (KEYS, SCAN MATCH, COMMAND LIST FILTERBY PATTERN), in bounded time.

The meaning is Redis 7.0.15's ``stringmatchlen`` (util.c), byte for byte:

* ``*`` any run of bytes, ``?`` one byte, ``\\x`` the byte x (a trailing
  backslash is itself), anything else itself;
* ``[...]`` one byte from a class: ``^`` first negates it, ``a-z`` is a
  range (reversed ranges are swapped, ``a-]`` takes the ``]`` as the range's
  end), ``\\x`` inside is the byte x; an unterminated class runs to the end
  of the pattern; bytes compare as C's signed ``char``, so a range like
  ``[\\x00-\\xff]`` is -1..0 and holds only ``\\x00`` and ``\\xff``;
* an empty string matches only the empty pattern (``**`` does not match
  ``""``; KEYS and SCAN special-case the one-byte pattern ``*`` themselves);
* ``nocase`` (COMMAND LIST) lowers ASCII letters, except a ``\\x`` inside a
  class, which compares exactly;
* the CVE-2024-31228 limit that the reference redis-server 7.0.15 carries
  (its ``nesting > 1000``): past 1,000 star groups, a pattern whose 1,001st
  star group is followed by anything but more stars never matches.

Redis walks the pattern recursively, one level per ``*``; a backtracking
matcher (or a regex with several ``.*``) takes time exponential or
polynomial of high degree in the number of stars (the KEYS hang of
CVE-2022-36021). This module instead cuts the pattern at its star groups into
segments of one-byte items, so the pattern is ``S0 * S1 * ... * Sk``. Every
segment has a fixed length, so matching ``S1 .. Sk-1`` each at its leftmost
place after the previous one is exact (an earlier end never leaves less room
for the rest): ``S0`` must match at the start, ``Sk`` at the end, the others
are found once each, left to right, and never tried again. That is at most
O(len(pattern) * len(string)). The common shapes (``prefix*``, ``*suffix``,
``*sub*``, no star) are ``bytes`` operations; the rest is one regex in which
each middle segment is an atomic group ``(?>.*?Si)`` (Python 3.11), which the
engine never re-enters.
"""

from __future__ import annotations

import re
from typing import Callable

Matcher = Callable[[bytes], bool]

#: Redis (7.0.15 as packaged, with the CVE-2024-31228 fix) gives up past this
#: recursion depth: one level per star group.
MAX_NESTING = 1000
#: Patterns up to this size are kept compiled (KEYS and SCAN repeat them).
CACHE_PATTERN_BYTES = 4096
#: Compiled patterns kept; the cache is dropped whole when it is full.
CACHE_ENTRIES = 256

_STAR, _ANY = -1, -2
# A run of plain bytes, a run of stars, or one special byte.
_TOKEN_RE = re.compile(rb"[^*?\[\\]+|\*+|.", re.DOTALL)
_UPPER = range(ord("A"), ord("Z") + 1)


def _signed(b: int) -> int:
    return b - 256 if b >= 128 else b


def _lower(c: int) -> int:
    # C's tolower() in the "C" locale (Redis never sets LC_CTYPE): ASCII only.
    return c + 32 if 65 <= c <= 90 else c


def _set_signed_range(flags: bytearray, lo: int, hi: int) -> None:
    """Set the bytes whose signed value is in lo..hi (both -128..127)."""
    if lo > hi:
        return
    if lo < 0:
        top = min(hi, -1)
        flags[lo + 256:top + 257] = b"\1" * (top - lo + 1)
        lo = 0
    if hi >= 0:
        flags[lo:hi + 1] = b"\1" * (hi - lo + 1)


def _parse_class(pattern: bytes, i: int, nocase: bool) -> tuple[bytes, int]:
    """The class starting after the ``[`` at ``i``: (256 flags, index after it).

    Follows stringmatchlen's loop exactly, including what it reads at the end
    of the pattern (the C string's NUL, which is neither ``\\`` nor ``]``).
    """
    n = len(pattern)
    flags = bytearray(256)
    negate = i < n and pattern[i] == 94  # ^
    if negate:
        i += 1
    while True:
        if i + 1 < n and pattern[i] == 92:  # \x: x exactly, even with nocase
            i += 1
            flags[pattern[i]] = 1
        elif i < n and pattern[i] == 93:  # ]
            break
        elif i >= n:  # unterminated: the class ends with the pattern
            i = n - 1
            break
        elif i + 2 < n and pattern[i + 1] == 45:  # a-z (signed chars, swapped if reversed)
            lo, hi = sorted((_signed(pattern[i]), _signed(pattern[i + 2])))
            if nocase:
                # c matches when lo <= tolower(c) <= hi, the bounds lowered too.
                lo, hi = _lower(lo), _lower(hi)
                in_range = bytearray(256)
                _set_signed_range(in_range, lo, hi)
                for up in _UPPER:
                    in_range[up] = lo <= up + 32 <= hi
                flags[:] = bytes(a | b for a, b in zip(flags, in_range))
            else:
                _set_signed_range(flags, lo, hi)
            i += 2
        else:
            c = pattern[i]
            flags[c] = 1
            if nocase and _lower(c) != c:
                flags[_lower(c)] = 1
            if nocase and 97 <= c <= 122:
                flags[c - 32] = 1
        i += 1
    if negate:
        flags = bytearray(1 - f for f in flags)
    return bytes(flags), i + 1


def tokenize(pattern: bytes, nocase: bool = False,
             longest: int | None = None) -> list[int | bytes | bytearray] | None:
    """The pattern as items: _STAR, _ANY, a run of literal bytes, or a class's
    256 flags (as ``bytearray``); consecutive stars are one _STAR.

    None if the pattern can match no string: one past Redis's nesting limit,
    or (``longest`` given) none of at most ``longest`` bytes. Either is seen
    as soon as it is reached, so a huge pattern costs no more than that.
    """
    items: list = []
    n = len(pattern)
    i = 0
    need = 0  # bytes a matching string needs, so far
    stars = 0
    while i < n:
        m = _TOKEN_RE.match(pattern, i)
        assert m is not None
        tok = m.group()
        c = tok[0]
        if c == 42:  # *
            items.append(_STAR)
            stars += 1
            i = m.end()
            continue
        if stars > MAX_NESTING:
            return None  # Redis's nesting limit: see the module docstring
        if c == 63:  # ?
            items.append(_ANY)
            i += 1
            need += 1
        elif c == 91:  # [
            flags, i = _parse_class(pattern, i + 1, nocase)
            items.append(bytearray(flags))
            need += 1
        elif c == 92 and i + 1 < n:  # \x
            items.append(pattern[i + 1:i + 2])
            i += 2
            need += 1
        else:  # a literal run (or a trailing backslash)
            items.append(tok)
            i = m.end()
            need += len(tok)
        if longest is not None and need > longest:
            return None
    return items


def _class_regex(flags: bytes | bytearray) -> bytes:
    if all(flags):
        return b"."
    parts = []
    c = 0
    while c < 256:
        if flags[c]:
            start = c
            while c + 1 < 256 and flags[c + 1]:
                c += 1
            parts.append(b"\\x%02x" % start if start == c else b"\\x%02x-\\x%02x" % (start, c))
        c += 1
    return b"[" + b"".join(parts) + b"]"


def _literal_regex(lit: bytes, nocase: bool) -> bytes:
    if not nocase:
        return re.escape(lit)
    out = []
    for c in lit:
        if 65 <= c <= 90 or 97 <= c <= 122:
            out.append(b"[%c%c]" % (c | 32, c & ~32))
        else:
            out.append(re.escape(bytes([c])))
    return b"".join(out)


class _Segment:
    """A run of one-byte items between star groups: its length, and its bytes
    (``literal``) or a regex for it (``source``, no repetition in it)."""

    __slots__ = ("length", "literal", "source", "regex")

    def __init__(self, items: list, nocase: bool) -> None:
        self.length = sum(len(x) if isinstance(x, bytes) else 1 for x in items)
        if all(isinstance(x, bytes) for x in items) and not nocase:
            self.literal: bytes | None = b"".join(items)
            self.source = re.escape(self.literal)
        else:
            self.literal = None
            self.source = b"".join(
                b"." if x == _ANY else _literal_regex(x, nocase) if isinstance(x, bytes)
                else _class_regex(x) for x in items)
        self.regex = None if self.literal is not None else re.compile(self.source, re.DOTALL)


def _never(s: bytes) -> bool:
    return False


def _compile(pattern: bytes, nocase: bool, longest: int | None) -> Matcher:
    if not pattern:
        return lambda s: not s
    items = tokenize(pattern, nocase, longest)
    if items is None or any(isinstance(x, bytearray) and not any(x) for x in items):
        return _never  # or a class that holds no byte: nothing of length >= 1 matches
    segments: list[list] = [[]]
    for x in items:
        if x == _STAR:
            segments.append([])
        else:
            segments[-1].append(x)
    stars = len(segments) - 1
    segs = [_Segment(seg, nocase) for seg in segments]
    first, last = segs[0], segs[-1]
    if stars == 0:
        if first.literal is not None:
            lit = first.literal
            return lambda s: s == lit
        regex, length = first.regex, first.length
        return lambda s: len(s) == length and regex.match(s) is not None
    middle = [seg for seg in segs[1:-1] if seg.length]
    least = sum(seg.length for seg in segs)
    if not middle and first.literal is not None and last.literal is not None:
        # The common shapes (prefix*, *suffix, prefix*suffix, *) as bytes operations.
        head, tail = first.literal, last.literal
        if not tail:
            if not head:
                return lambda s: s != b""
            return lambda s: s.startswith(head)
        if not head:
            return lambda s: s.endswith(tail)
        return lambda s: len(s) >= least and s.startswith(head) and s.endswith(tail)
    if (len(middle) == 1 and not first.length and not last.length
            and middle[0].literal is not None):
        sub = middle[0].literal
        return lambda s: sub in s  # *sub*
    if not middle and last.length == 0 and first.length:
        regex = first.regex  # S0* with classes or ?: S0 at the start is all it takes
        return lambda s: regex.match(s) is not None
    # Everything else as one regex: S0 at the start, each middle segment in
    # an atomic group at its leftmost place after the one before (the group is
    # never re-entered, so a failure never backtracks across stars), and the
    # last segment at the end: O(len(pattern) * len(string)) in the worst case.
    source = (first.source
              + b"".join(b"(?>.*?" + seg.source + b")" for seg in middle)
              + b".*" + last.source + b"\\Z")
    regex = re.compile(source, re.DOTALL)
    if least == 0:
        return lambda s: s != b"" and regex.match(s) is not None
    return lambda s: regex.match(s) is not None


_CACHE: dict[tuple[bytes, bool], Matcher] = {}


def compile_pattern(pattern: bytes, nocase: bool = False,
                    longest: int | None = None) -> Matcher:
    """A function telling whether a byte string matches ``pattern`` (see the module doc).

    Compiling costs time linear in the pattern; each match then costs at
    most O(len(pattern) * len(string)). Callers that know the longest string
    they will ask about pass it as ``longest`` for patterns over
    CACHE_PATTERN_BYTES: compiling then stops once the pattern needs more
    bytes than that (the matcher must not be asked about longer strings), so
    a megabyte of ``?`` costs what the keys are worth, not seconds.
    """
    if len(pattern) <= CACHE_PATTERN_BYTES:
        key = (pattern, nocase)
        matcher = _CACHE.get(key)
        if matcher is None:
            matcher = _compile(pattern, nocase, None)
            if len(_CACHE) >= CACHE_ENTRIES:
                _CACHE.clear()
            _CACHE[key] = matcher
        return matcher
    return _compile(pattern, nocase, longest)


def matcher_for(pattern: bytes, strings, nocase: bool = False) -> Matcher:
    """compile_pattern for a pattern to be tried on ``strings`` (a collection
    it may iterate once more, to find the longest when the pattern is long)."""
    if len(pattern) <= CACHE_PATTERN_BYTES:
        return compile_pattern(pattern, nocase)
    return compile_pattern(pattern, nocase, max(map(len, strings), default=0))


def stringmatch(pattern: bytes, string: bytes, nocase: bool = False) -> bool:
    """Redis's stringmatchlen(pattern, string, nocase)."""
    return compile_pattern(pattern, nocase)(string)
