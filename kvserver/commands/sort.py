"""SORT and SORT_RO over lists, sets and sorted sets, as Redis 7.0.15's sort.c.

``SORT key [BY pattern] [LIMIT offset count] [GET pattern ...] [ASC|DESC]
[ALPHA] [STORE destination]``. The rules, each as Redis has them:

* Options are read left to right; a later BY or LIMIT replaces an earlier
  one, but a BY without ``*`` (``BY nosort``) turns sorting off for good.
  SORT_RO does not know STORE (a syntax error). Option errors come before
  the key's type is checked (WRONGTYPE), which comes before any score error.
* A missing key sorts as an empty list.
* Without ALPHA every weight (the element, or with BY the looked-up value) is
  read as C's ``strtod`` reads it, whole: leading blanks, hex, ``inf``
  allowed; trailing bytes, NaN, overflow and an inexact underflow to a
  subnormal or zero refused with ``ERR One or more scores can't be
  converted into double`` (after sorting, before any STORE). A BY key that
  is missing (or not a string, or a hash without the field) weighs 0.
  Equal weights are ordered by the elements' bytes (memcmp), so the result
  is deterministic.
* With ALPHA, elements compare by ``strcoll`` without STORE and by memcmp
  with it. Redis runs under the C (or C.UTF-8) collation, where strcoll is
  strcmp: bytes up to the first NUL; kvserver compares so. With BY, a
  missing weight sorts first and equal weights keep no particular order
  (Redis's qsort; ours keeps the input order).
* DESC reverses the whole comparison.
* A sorted set held as a ``listpack`` becomes a ``skiplist`` (OBJECT
  ENCODING, ZSCAN's cursor) once SORT has read it, as Redis converts it.
* Without sorting (BY nosort): a list gives its own order (DESC from the
  tail) and a sorted set its score order (DESC from the highest), LIMIT
  taken directly; a set its own iteration order (an intset's is integer
  order; a hashtable's is the server's own), except with STORE, where a set
  is sorted ALPHA by bytes so the stored list does not depend on hash order.
* GET ``#`` is the element; GET/BY ``prefix*suffix`` names the key with the
  element in place of the first ``*``; ``prefix*suffix->field`` a hash
  field. A pattern without ``*`` finds nothing (nil). Patterns are read as
  C strings where Redis reads them so (``*`` and ``->`` are looked for
  before the first NUL).
* LIMIT offset count: offset clamped to [0, n], a negative count means
  all, as sortCommandGeneric computes ``start`` and ``end``.
* STORE replaces the destination (any type, its TTL dropped) with the
  result as a list (a missing GET value stored as ``""``), or deletes it
  when the result is empty; the reply is the number of elements stored.

Effects logged (under the real name, in the command's one execution unit):
``DEL dst`` when dst existed, then ``RPUSH dst element ...`` when the result
is not empty. Keyspace events: ``sortstore`` (list class) on the
destination, or ``del`` (generic) when an empty result deleted it.

Cost: O(n log n) for n elements, plus one key lookup per element for BY and
one per element and GET pattern; the reply (or stored list) has at most
n x max(1, GETs) entries, so nothing is super-linear in the input.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from itertools import islice

from .. import notify
from ..errors import NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from ..numbers import INT64_MAX, INT64_MIN, parse_int
from ..types import BY_TYPE
from ..types.hash import Hash
from ..types.list import List
from . import command

_SCORE_ERR = "ERR One or more scores can't be converted into double"

#: Smallest positive normal double: below it a result is subnormal and
#: glibc's strtod reports ERANGE when it is inexact.
_MIN_NORMAL = 2.2250738585072014e-308

# What glibc strtod accepts as a whole number (after leading blanks).
_DEC_RE = re.compile(rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\Z")
_HEX_RE = re.compile(rb"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)"
                     rb"(?:[pP][+-]?[0-9]+)?)\Z")
_INF_RE = re.compile(rb"[+-]?(?:inf|infinity)\Z", re.IGNORECASE)
_NAN_RE = re.compile(rb"[+-]?nan(?:\([0-9A-Za-z_]*\))?\Z", re.IGNORECASE)


def strtod_score(data: bytes) -> float | None:
    """The weight SORT reads from ``data`` (C's strtod over the C string,
    which must be consumed whole), or None where Redis reports a score it
    can't convert: trailing bytes, NaN, ERANGE (overflow, or an inexact
    result in the subnormal range or flushed to zero)."""
    text = data.split(b"\0", 1)[0].lstrip(b" \t\n\v\f\r")
    if not text:
        # Nothing converted: strtod points back at the start; an empty C
        # string passes (weight 0), blanks alone do not.
        return 0.0 if not data.split(b"\0", 1)[0] else None
    if _INF_RE.match(text):
        return -math.inf if text[:1] == b"-" else math.inf
    if _DEC_RE.match(text):
        value = float(text)
        if math.isinf(value):
            return None
        if abs(value) < _MIN_NORMAL and Fraction(text.decode()) != Fraction(value):
            return None
        return value
    m = _HEX_RE.match(text)
    if m is not None:
        body = m.group(2).decode()
        try:
            value = float.fromhex(body)
        except OverflowError:
            return None
        if abs(value) < _MIN_NORMAL and not _hex_exact(body, value):
            return None
        return -value if m.group(1) == b"-" else value
    return None  # NaN or not a number


def _hex_exact(body: str, value: float) -> bool:
    """Whether the hex float ``body`` is exactly ``value`` (no rounding)."""
    mant, _, exp = body.lower().partition("p")
    whole, _, frac = mant.partition(".")
    digits = int((whole + frac) or "0", 16)
    exact = Fraction(digits) * Fraction(2) ** (int(exp or "0") - 4 * len(frac))
    return exact == Fraction(value)


def _cstr(data: bytes) -> bytes:
    """strcoll under the C collation is strcmp: the bytes before the first NUL."""
    return data.split(b"\0", 1)[0]


class _Pattern:
    """A BY or GET pattern, parsed once (lookupKeyByPattern's reading of it)."""

    __slots__ = ("is_self", "prefix", "postfix", "field", "usable")

    def __init__(self, pattern: bytes) -> None:
        head = _cstr(pattern)
        self.is_self = head == b"#"
        star = head.find(b"*")
        self.usable = star >= 0
        self.prefix = self.postfix = b""
        self.field = None
        if not self.usable:
            return
        self.prefix = pattern[:star]
        arrow = _cstr(pattern[star + 1:]).find(b"->")
        if arrow >= 0:
            arrow += star + 1
            if arrow + 2 < len(pattern) and pattern[arrow + 2] != 0:
                self.field = pattern[arrow + 2:]
                self.postfix = pattern[star + 1:arrow]
                return
        self.postfix = pattern[star + 1:]

    def lookup(self, s, element: bytes) -> bytes | None:
        """The string (or hash field) this pattern names for ``element``, or None."""
        if self.is_self:
            return element
        if not self.usable:
            return None
        value = s.core.keyspace.lookup_read(s.db, self.prefix + element + self.postfix)
        if value is None:
            return None
        if self.field is not None:
            return value.get(self.field) if type(value) is Hash else None
        return value if type(value) is bytes else None


def _limit_arg(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None or not INT64_MIN <= value <= INT64_MAX:
        raise CommandError(NOT_INTEGER)
    return value


def _sortable(value) -> str:
    """The kind name of a value SORT can read, else WRONGTYPE."""
    codec = BY_TYPE.get(type(value))
    if codec is None or codec.name not in ("list", "set", "zset"):
        raise CommandError(WRONGTYPE)
    return codec.name


def _zset_members(zset) -> list[bytes]:
    """Every member of a sorted set (in score order; they are sorted afterwards)."""
    return list(zset)


def _zset_range(zset, start: int, count: int, desc: bool) -> list[bytes]:
    """``count`` members of a sorted set in score order from rank ``start``
    (from the highest score with ``desc``): O(log n + count)."""
    if desc:
        n = len(zset)
        entries = zset.entries(n - start - count, n - start)
        entries.reverse()
    else:
        entries = zset.entries(start, start + count)
    return [member for _score, member in entries]


def _sort(s, argv, readonly: bool):
    desc = alpha = dontsort = False
    limit_start, limit_count = 0, -1
    sortby: _Pattern | None = None
    store: bytes | None = None
    gets: list[_Pattern] = []
    j = 2
    argc = len(argv)
    while j < argc:
        opt = argv[j].lower()
        left = argc - j - 1
        if opt == b"asc":
            desc = False
        elif opt == b"desc":
            desc = True
        elif opt == b"alpha":
            alpha = True
        elif opt == b"limit" and left >= 2:
            limit_start = _limit_arg(argv[j + 1])
            limit_count = _limit_arg(argv[j + 2])
            j += 2
        elif opt == b"store" and not readonly and left >= 1:
            store = argv[j + 1]
            j += 1
        elif opt == b"by" and left >= 1:
            sortby = _Pattern(argv[j + 1])
            if not sortby.usable:
                dontsort = True  # sticky, as in Redis: a later BY does not undo it
            j += 1
        elif opt == b"get" and left >= 1:
            gets.append(_Pattern(argv[j + 1]))
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1

    ks = s.core.keyspace
    value = ks.lookup_read(s.db, argv[1])
    kind = "list" if value is None else _sortable(value)
    if value is None:
        value = List()

    if kind == "zset" and not value.big:
        # Redis converts a listpack sorted set to a skiplist for good before
        # sorting it (zsetConvert in sortCommandGeneric): OBJECT ENCODING and
        # ZSCAN see it afterwards. Not an effect: nothing in the content
        # changes, and a restart judges the encoding afresh, as Redis's does.
        value.big = True

    if dontsort and kind == "set" and store is not None:
        # A set's own order is its hash order: a stored result must not
        # depend on it, so Redis sorts it by bytes instead.
        dontsort, alpha, sortby = False, True, None

    n = len(value)
    start = min(max(limit_start, 0), n)
    limit_count = min(max(limit_count, -1), n)
    end = n - 1 if limit_count < 0 else start + limit_count - 1
    if start >= n:
        start, end = n - 1, n - 2
    if end >= n:
        end = n - 1

    error = False
    if dontsort and kind in ("list", "zset"):
        # Taken directly in the value's own order; LIMIT applied here.
        count = end - start + 1
        if count <= 0:
            vector = []
        elif kind == "list":
            source = reversed(value) if desc else iter(value)
            vector = list(islice(source, start, start + count))
        else:
            vector = _zset_range(value, start, count, desc)
        start, end = 0, len(vector) - 1
    else:
        if kind == "list":
            vector = list(value)
        elif kind == "set":
            vector = value.ordered() if dontsort else list(value)
        else:
            vector = _zset_members(value)
        if not dontsort:
            vector, error = _sorted(s, vector, sortby, alpha, desc, store is not None)

    if error:
        raise CommandError(_SCORE_ERR)
    chosen = vector[start:end + 1] if end >= start else []
    if gets:
        if store is None:
            out = [p.lookup(s, e) for e in chosen for p in gets]
        else:
            out = [v if v is not None else b"" for e in chosen for p in gets
                   for v in (p.lookup(s, e),)]
    else:
        out = chosen
    if store is None:
        return out
    return _store(s, store, out)


def _sorted(s, vector: list[bytes], sortby: _Pattern | None, alpha: bool, desc: bool,
            storing: bool) -> tuple[list[bytes], bool]:
    """``vector`` in sortCompare's order, and whether a weight failed to convert."""
    if alpha:
        compare = (lambda b: b) if storing else _cstr
        if sortby is None:
            keyed = [(compare(e), e) for e in vector]
        else:
            keyed = []
            for e in vector:
                w = sortby.lookup(s, e)
                keyed.append(((0, b"") if w is None else (1, compare(w)), e))
        keyed.sort(key=lambda pair: pair[0], reverse=desc)
        return [e for _, e in keyed], False
    error = False
    weighted = []
    for e in vector:
        if sortby is None:
            w = e
        else:
            w = sortby.lookup(s, e)
            if w is None:
                weighted.append((0.0, e))
                continue
        score = strtod_score(w)
        if score is None:
            error = True
            score = 0.0
        weighted.append((score, e))
    # Equal scores: the elements' bytes decide (compareStringObjects).
    weighted.sort(reverse=desc)
    return [e for _, e in weighted], error


def _store(s, dst: bytes, result: list[bytes]) -> int:
    db = s.db
    existed = s.core.keyspace.lookup(db, dst) is not None
    if existed:
        db.remove(dst)
        s.log([b"DEL", dst])
    if result:
        db.store(dst, List(result))
        s.log([b"RPUSH", dst, *result])
        s.core.notify(notify.LIST, b"sortstore", s.db_index, dst)
    elif existed:
        s.core.notify(notify.GENERIC, b"del", s.db_index, dst)
    return len(result)


def _sort_keys(argv: list) -> list:
    """sortGetKeys: the key, and the argument after the last STORE (options
    are skipped by their argument counts, as Redis skips them)."""
    keys = [argv[1]]
    store = None
    skip = {b"limit": 2, b"get": 1, b"by": 1}
    i = 2
    while i < len(argv):
        word = argv[i].lower()
        if word in skip:
            i += skip[word]
        elif word == b"store" and i + 1 < len(argv):
            store = argv[i + 1]
        i += 1
    return keys if store is None else keys + [store]


_SYNOPSIS = ("key [BY pattern] [LIMIT offset count] [GET pattern [GET pattern ...]] "
             "[ASC | DESC] [ALPHA]")


@command("sort", -2, "write denyoom movablekeys", keys=(1, 1, 1), group="generic",
         since="1.0.0", acl="@write @set @sortedset @list @slow @dangerous",
         summary="Sort the elements in a list, set or sorted set",
         synopsis=_SYNOPSIS + " [STORE destination]", getkeys=_sort_keys)
def cmd_sort(s, argv):
    return _sort(s, argv, readonly=False)


@command("sort_ro", -2, "readonly movablekeys", keys=(1, 1, 1), group="generic",
         since="7.0.0", acl="@read @set @sortedset @list @slow @dangerous",
         summary="Sort the elements in a list, set or sorted set. Read-only variant of SORT.",
         synopsis=_SYNOPSIS, getkeys=lambda argv: [argv[1]])
def cmd_sort_ro(s, argv):
    return _sort(s, argv, readonly=True)
