"""Sorted-set commands: ZADD ZINCRBY ZREM ZCARD ZCOUNT ZLEXCOUNT ZSCORE ZMSCORE
ZRANK ZREVRANK ZRANGE ZRANGESTORE ZREVRANGE ZRANGEBYSCORE ZREVRANGEBYSCORE
ZRANGEBYLEX ZREVRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREMRANGEBYLEX
ZPOPMIN ZPOPMAX ZMPOP ZRANDMEMBER ZUNION ZUNIONSTORE ZINTER ZINTERSTORE
ZINTERCARD ZDIFF ZDIFFSTORE ZSCAN, and the blocking BZPOPMIN BZPOPMAX BZMPOP.

Values are :class:`~kvserver.types.zset.ZSet` (``types/zset.py``), reached
through the keyspace's typed accessors (WRONGTYPE, the running checkpoint's
pre-image, an emptied key deleted). Replies, error strings and the order in
which arguments are checked follow Redis 7.0.15's ``t_zset.c``: options are
parsed before the key is looked up, ZADD parses every score before it
touches the key, ZPOPMIN/ZMPOP type-check only the first existing key, the
ZUNION family accepts sets (every member scored 1) and type-checks every
key before it reads its options. Scores are doubles; a reply carries them
as Python floats, which the protocol writes as Redis does (``%.17g``,
``inf``/``-inf``; a bulk string in RESP2, a double in RESP3). RESP3 shapes
as Redis: WITHSCORES replies are arrays of [member, score] pairs, ZPOPMIN
with a count likewise, ZMPOP is [key, [[member, score]...]] in both.

What each write logs, always under the real command name, so a replay ends
in the same zset with bit-identical scores (scores are logged as ``%.17g``,
which reads back as the same double):

* ZADD (any options) and ZINCRBY log ``ZADD key score member ...`` with the
  scores they set, in the order they set them (INCR, GT and LT already
  resolved; a member repeated in the command may appear twice, so a replay
  crosses the listpack-to-skiplist conversion at the same point); nothing
  when nothing changed;
* ZREM, ZPOPMIN, ZPOPMAX, ZMPOP and ZREMRANGEBY{RANK,SCORE,LEX} log
  ``ZREM key member ...`` with what they removed. Logging the ZREMRANGE
  command itself would be smaller, but a BYLEX range over members of
  mixed scores has no order Redis defines, so its result could depend on the
  structure's history; the removed members replay exactly, always;
* ZRANGESTORE, ZUNIONSTORE, ZINTERSTORE and ZDIFFSTORE log the resulting
  zset: ``DEL dst`` (if dst existed) then ``ZADD dst score member ...``, or
  only the DEL when the result is empty (nothing if dst did not exist).

A logged ZADD or ZREM carries at most :data:`LOG_CHUNK` members; a bigger
effect is several of them in the same execution unit (one WAL record).

Costs: ZADD/ZREM/ZSCORE/ZRANK are O(log n) (ZSCORE O(1)); a range reply is
O(log n + m) for m entries; ZREMRANGE*/ZPOP with a count are linear in what
they remove; ZUNION/ZINTER/ZDIFF are linear in the members they read plus a
sort of the result.
"""

from __future__ import annotations

import math
import random
import re

from .. import notify
from ..blocking import block, may_block, parse_timeout
from ..errors import NOT_FLOAT, NOT_INTEGER, SYNTAX, WRONGTYPE, CommandError
from ..numbers import INT64_MAX, parse_int
from ..protocol import NULL_ARRAY, format_double
from ..types.set import Set
from ..types.zset import MAX_LISTPACK_ENTRIES, MAX_LISTPACK_VALUE, ZSET, ZSet
from . import command
from .keys import scan_cursor, scan_matcher, scan_options, scan_step

_NAN_ERR = "ERR resulting score is not a number (NaN)"
_RANGE_FLOAT_ERR = "ERR min or max is not a float"
_RANGE_LEX_ERR = "ERR min or max not valid string range item"
_POSITIVE_ERR = "ERR value is out of range, must be positive"
_RANGE_ERR = ("ERR value is out of range, value must between -9223372036854775807 "
              "and 9223372036854775807")
_LIMIT_RANK_ERR = ("ERR syntax error, LIMIT is only supported in combination with either "
                   "BYSCORE or BYLEX")
_WITHSCORES_LEX_ERR = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"

#: The most members ZRANDMEMBER with a negative count returns (Redis streams
#: any count; a reply here is built before it is sent, so it is bounded).
MAX_RANDMEMBER_REPEATS = 1 << 22
_REPEATS_ERR = f"ERR count is out of range (at most {MAX_RANDMEMBER_REPEATS} repeated members)"

#: Most members in one logged ZADD or ZREM effect (see the module doc).
LOG_CHUNK = 1 << 16

_ACL = "@sortedset"


# --- numbers ------------------------------------------------------------------------

# strtod's grammar (after its leading white space): decimal, hex, inf/infinity, nan.
_DEC = rb"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_HEX = rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
_STRTOD_RE = re.compile(rb"(?:(%s)|(%s)|([+-]?(?:inf(?:inity)?|nan(?:\([0-9A-Za-z_]*\))?)))\Z"
                        % (_DEC, _HEX), re.IGNORECASE)
_C_SPACE = b" \t\n\v\f\r"


def _strtod(text: bytes) -> tuple[float, bool] | None:
    """C's strtod over all of ``text`` (no trailing bytes): (value, ERANGE) or None."""
    m = _STRTOD_RE.match(text)
    if m is None or m.end() != len(text):
        return None
    dec, hexa, word = m.groups()
    if word is not None:
        w = word.lower().lstrip(b"+-")
        if w.startswith(b"nan"):
            return math.nan, False
        return (-math.inf if word[:1] == b"-" else math.inf), False
    if dec is not None:
        value = float(dec)
        digits = dec.split(b"e")[0].split(b"E")[0]
    else:
        try:
            value = float.fromhex(hexa.decode())
        except OverflowError:
            return (-math.inf if hexa[:1] == b"-" else math.inf), True
        digits = hexa[2:].split(b"p")[0].split(b"P")[0]
    if math.isinf(value):
        return value, True
    if value == 0 and digits.strip(b"+-.0xX"):
        return value, True  # underflow to zero
    return value, False


def parse_score(arg: bytes) -> float | None:
    """Redis's string2d: a double, or None (no white space, NaN, overflow or underflow)."""
    if not arg or arg[0] in _C_SPACE:
        return None
    parsed = _strtod(arg)
    if parsed is None:
        return None
    value, erange = parsed
    if value != value or (erange and (math.isinf(value) or value == 0)):
        return None
    return value


def _score_arg(arg: bytes, error: str = NOT_FLOAT) -> float:
    value = parse_score(arg)
    if value is None:
        raise CommandError(error)
    return value


def _range_bound(arg: bytes) -> tuple[float, bool]:
    """One end of a score range, as zslParseRange reads it (strtod over the C string)."""
    text = arg.split(b"\0", 1)[0]
    exclusive = text[:1] == b"("
    if exclusive:
        text = text[1:]
    if not text:
        return 0.0, exclusive  # strtod of "" is 0 with nothing left over
    parsed = _strtod(text.lstrip(_C_SPACE)) if text.lstrip(_C_SPACE) else None
    if parsed is None or parsed[0] != parsed[0]:
        raise CommandError(_RANGE_FLOAT_ERR)
    return parsed[0], exclusive


def _score_range(min_arg: bytes, max_arg: bytes) -> tuple:
    lo, lo_ex = _range_bound(min_arg)
    hi, hi_ex = _range_bound(max_arg)
    return lo, lo_ex, hi, hi_ex


def _score_span(z: ZSet, rng: tuple) -> tuple[int, int]:
    lo, lo_ex, hi, hi_ex = rng
    if lo > hi or (lo == hi and (lo_ex or hi_ex)):
        return 0, 0
    start = z.score_position(lo, lo_ex, False)
    stop = z.score_position(hi, hi_ex, True)
    return start, max(start, stop)


def _lex_item(arg: bytes) -> tuple[str, bytes]:
    c = arg[:1]
    if c == b"+" or c == b"-":
        if len(arg) > 1 and arg[1] != 0:
            raise CommandError(_RANGE_LEX_ERR)
        return c.decode(), b""
    if c == b"(" or c == b"[":
        return c.decode(), arg[1:]
    raise CommandError(_RANGE_LEX_ERR)


def _lex_range(min_arg: bytes, max_arg: bytes) -> tuple:
    return _lex_item(min_arg), _lex_item(max_arg)


def _lex_span(z: ZSet, rng: tuple) -> tuple[int, int]:
    (lo_kind, lo), (hi_kind, hi) = rng
    n = len(z)
    if lo_kind == "+" or hi_kind == "-":
        return 0, 0
    if lo_kind in "([" and hi_kind in "([" and (lo > hi or (lo == hi and "(" in (lo_kind, hi_kind))):
        return 0, 0
    start = 0 if lo_kind == "-" else z.lex_position(lo, lo_kind == "(", False)
    stop = n if hi_kind == "+" else z.lex_position(hi, hi_kind == "(", True)
    return start, max(start, stop)


def _long_arg(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None:
        raise CommandError(NOT_INTEGER)
    return value


# --- keyspace access -----------------------------------------------------------------

def _read(s, key: bytes):
    return s.core.keyspace.read_counted(s.db, key, ZSET)


def _check(s, key: bytes):
    return s.core.keyspace.write(s.db, key, ZSET)


def _mutate(s, key: bytes):
    return s.core.keyspace.mutate(s.db, key, ZSET)


def _log_chunks(s, name: bytes, key: bytes, args: list, per: int) -> None:
    """Log ``name key args...`` in effects of at most LOG_CHUNK members."""
    step = LOG_CHUNK * per
    for i in range(0, len(args), step):
        s.log([name, key, *args[i:i + step]])


def _log_zadd(s, key: bytes, pairs) -> None:
    args = []
    for member, score in pairs:
        args += (format_double(score), member)
    if args:
        _log_chunks(s, b"ZADD", key, args, 2)


def _log_zrem(s, key: bytes, members: list) -> None:
    if members:
        _log_chunks(s, b"ZREM", key, members, 1)


def _removed(s, key: bytes, z: ZSet, event: bytes) -> None:
    """Notifications after a removal: ``event``, and ``del`` if the key went."""
    s.core.notify(notify.ZSET, event, s.db_index, key)
    if not len(z):
        s.core.notify(notify.GENERIC, b"del", s.db_index, key)


def _with_scores(s, entries, withscores: bool) -> list:
    """entries (score, member) as a reply: members, or with their scores flat
    (RESP2) or as [member, score] pairs (RESP3)."""
    if not withscores:
        return [m for _, m in entries]
    if s.resp >= 3:
        return [[m, sc] for sc, m in entries]
    out: list = []
    for sc, m in entries:
        out += (m, sc)
    return out


def _store(s, dst: bytes, entries: list, event: bytes) -> int:
    """Replace ``dst`` (any old value, any type, its TTL) by the zset of
    ``entries`` (sorted (score, member)), logging DEL + ZADD (see the module doc)."""
    db = s.db
    existed = s.core.keyspace.lookup(db, dst) is not None
    if existed:
        db.remove(dst)
        s.log([b"DEL", dst])
    if entries:
        value = ZSet.from_sorted(entries)
        db.store(dst, value)
        _log_zadd(s, dst, ((m, sc) for sc, m in entries))
        if value.big:
            # A replayed ZADD may insert a -0 score while the zset is still a
            # listpack, which keeps no -0 (see ZSet.add): re-add those
            # members once the zset is a skiplist, so the replay is bit-exact.
            for sc, m in entries:
                if sc == 0 and math.copysign(1.0, sc) < 0:
                    s.log([b"ZREM", dst, m])
                    s.log([b"ZADD", dst, b"-0", m])
        s.core.notify(notify.ZSET, event, s.db_index, dst)
    elif existed:
        s.core.notify(notify.GENERIC, b"del", s.db_index, dst)
    return len(entries)


# --- ZADD ZINCRBY ZREM ---------------------------------------------------------------

_ZADD_FLAGS = {b"nx", b"xx", b"ch", b"incr", b"gt", b"lt"}


def _zadd(s, argv, incr: bool):
    key = argv[1]
    flags = set()
    idx = 2
    while idx < len(argv):
        opt = argv[idx].split(b"\0", 1)[0].lower()
        if opt not in _ZADD_FLAGS:
            break
        flags.add(opt)
        idx += 1
    incr = incr or b"incr" in flags
    nx, xx, gt, lt = (f in flags for f in (b"nx", b"xx", b"gt", b"lt"))
    rest = len(argv) - idx
    if rest % 2 or not rest:
        raise CommandError(SYNTAX)
    if nx and xx:
        raise CommandError("ERR XX and NX options at the same time are not compatible")
    if (gt and nx) or (lt and nx) or (gt and lt):
        raise CommandError("ERR GT, LT, and/or NX options at the same time are not compatible")
    if incr and rest > 2:
        raise CommandError("ERR INCR option supports a single increment-element pair")
    pairs = [(argv[i + 1], _score_arg(argv[i])) for i in range(idx, len(argv), 2)]
    z = _check(s, key)
    if z is None and xx:
        return None if incr else 0
    # Work out the outcome first (members may repeat within one command), so a
    # no-op changes nothing and signals nothing.
    final: dict = {}
    # The changes in the order Redis makes them: a member set while the zset
    # is still a listpack and set again after it converted ends as Redis
    # leaves it (a listpack keeps no -0), and the log replays the same order.
    steps: list = []
    added = updated = processed = 0
    score = None
    for member, score in pairs:
        cur = final.get(member)
        if cur is None and z is not None:
            cur = z.score(member)
        if cur is not None:
            if nx:
                continue
            if incr:
                score = cur + score
                if score != score:
                    raise CommandError(_NAN_ERR)
            if (lt and score >= cur) or (gt and score <= cur):
                continue
            processed += 1
            if score != cur:
                final[member] = score
                steps.append((member, score))
                updated += 1
        elif not xx:
            final[member] = score
            steps.append((member, score))
            added += 1
            processed += 1
    if added or updated:
        with _mutate(s, key) as value:
            for member, sc in steps:
                value.add(member, sc)
        _log_zadd(s, key, steps)
        s.core.notify(notify.ZSET, b"zincr" if incr else b"zadd", s.db_index, key)
    if incr:
        return score if processed else None
    return added + updated if b"ch" in flags else added


@command("zadd", -4, "write denyoom fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Add one or more members to a sorted set, or update its score if it already exists",
         synopsis="key [NX | XX] [GT | LT] [CH] [INCR] score:double member [score:double member ...]")
def cmd_zadd(s, argv):
    return _zadd(s, argv, False)


@command("zincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Increment the score of a member in a sorted set",
         synopsis="key increment member")
def cmd_zincrby(s, argv):
    return _zadd(s, [argv[0], argv[1], argv[2], argv[3]], True)


@command("zrem", -3, "write fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Remove one or more members from a sorted set",
         synopsis="key member [member ...]")
def cmd_zrem(s, argv):
    key = argv[1]
    z = _check(s, key)
    if z is None or not any(m in z for m in argv[2:]):
        return 0
    removed = []
    with _mutate(s, key) as value:
        for m in argv[2:]:
            if value.discard(m) is not None:
                removed.append(m)
    _log_zrem(s, key, removed)
    _removed(s, key, value, b"zrem")
    return len(removed)


# --- reads ------------------------------------------------------------------------------

@command("zcard", 2, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Get the number of members in a sorted set", synopsis="key")
def cmd_zcard(s, argv):
    z = _read(s, argv[1])
    return 0 if z is None else len(z)


@command("zscore", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Get the score associated with the given member in a sorted set",
         synopsis="key member")
def cmd_zscore(s, argv):
    z = _read(s, argv[1])
    return None if z is None else z.score(argv[2])


@command("zmscore", -3, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="6.2.0", summary="Get the score associated with the given members in a sorted set",
         synopsis="key member [member ...]")
def cmd_zmscore(s, argv):
    z = s.core.keyspace.read(s.db, argv[1], ZSET)
    if z is None:
        return [None] * (len(argv) - 2)
    return [z.score(m) for m in argv[2:]]


def _zrank(s, argv, reverse: bool):
    z = _read(s, argv[1])
    if z is None:
        return None
    rank = z.rank(argv[2])
    if rank is None:
        return None
    return len(z) - 1 - rank if reverse else rank


@command("zrank", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.0.0", summary="Determine the index of a member in a sorted set",
         synopsis="key member")
def cmd_zrank(s, argv):
    return _zrank(s, argv, False)


@command("zrevrank", 3, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.0.0",
         summary="Determine the index of a member in a sorted set, with scores ordered from high to low",
         synopsis="key member")
def cmd_zrevrank(s, argv):
    return _zrank(s, argv, True)


@command("zcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.0.0", summary="Count the members in a sorted set with scores within the given values",
         synopsis="key min:double max:double")
def cmd_zcount(s, argv):
    rng = _score_range(argv[2], argv[3])
    z = _read(s, argv[1])
    if z is None:
        return 0
    start, stop = _score_span(z, rng)
    return stop - start


@command("zlexcount", 4, "readonly fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.8.9",
         summary="Count the number of members in a sorted set between a given lexicographical range",
         synopsis="key min max")
def cmd_zlexcount(s, argv):
    rng = _lex_range(argv[2], argv[3])
    z = _read(s, argv[1])
    if z is None:
        return 0
    start, stop = _lex_span(z, rng)
    return stop - start


# --- ZRANGE and its family --------------------------------------------------------------

_RANK, _SCORE, _LEX = "rank", "score", "lex"


def _rank_span(n: int, start: int, end: int) -> tuple[int, int]:
    """Redis's index sanitising: (first, stop) ranks, empty when start > end."""
    if start < 0:
        start += n
    if end < 0:
        end += n
    if start < 0:
        start = 0
    if start > end or start >= n:
        return 0, 0
    if end >= n:
        end = n - 1
    return start, end + 1


def _zrange(s, argv, first: int, store: bool, rangetype: str | None, reverse: bool | None):
    """zrangeGenericCommand: ``argv[first]`` is the source key, then min and max."""
    key = argv[first]
    withscores = False
    offset, limit = 0, -1
    j = first + 3
    while j < len(argv):
        opt = argv[j].split(b"\0", 1)[0].lower()
        left = len(argv) - j - 1
        if not store and opt == b"withscores":
            withscores = True
        elif opt == b"limit" and left >= 2:
            offset = _long_arg(argv[j + 1])
            limit = _long_arg(argv[j + 2])
            j += 2
        elif reverse is None and opt == b"rev":
            reverse = True
        elif rangetype is None and opt == b"bylex":
            rangetype = _LEX
        elif rangetype is None and opt == b"byscore":
            rangetype = _SCORE
        else:
            raise CommandError(SYNTAX)
        j += 1
    reverse = bool(reverse)
    rangetype = rangetype or _RANK
    if limit != -1 and rangetype == _RANK:
        raise CommandError(_LIMIT_RANK_ERR)
    if withscores and rangetype == _LEX:
        raise CommandError(_WITHSCORES_LEX_ERR)
    lo_arg, hi_arg = argv[first + 1], argv[first + 2]
    if reverse and rangetype != _RANK:
        lo_arg, hi_arg = hi_arg, lo_arg
    if rangetype == _RANK:
        rng = (_long_arg(lo_arg), _long_arg(hi_arg))
    elif rangetype == _SCORE:
        rng = _score_range(lo_arg, hi_arg)
    else:
        rng = _lex_range(lo_arg, hi_arg)
    z = _read(s, key)
    if z is None:
        entries = []
    elif rangetype == _RANK:
        n = len(z)
        start, stop = _rank_span(n, *rng)
        if reverse:
            entries = z.entries(n - stop, n - start)
            entries.reverse()
        else:
            entries = z.entries(start, stop)
    else:
        start, stop = (_score_span if rangetype == _SCORE else _lex_span)(z, rng)
        if offset < 0 or (offset > 0 and offset >= len(z)):
            entries = []
        elif reverse:
            b = stop - offset
            a = start if limit < 0 else max(start, b - limit)
            entries = z.entries(a, b)
            entries.reverse()
        else:
            a = start + offset
            b = stop if limit < 0 else min(stop, a + limit)
            entries = z.entries(a, b)
    if store:
        if rangetype != _RANK or len(entries) <= MAX_LISTPACK_ENTRIES:
            entries = _through_listpack(entries)
        if reverse:
            entries.reverse()
        return _store(s, argv[1], entries, b"zrangestore")
    return _with_scores(s, entries, withscores)


def _through_listpack(entries: list) -> list:
    """``entries`` (in the order ZRANGESTORE adds them) as they end up in a
    destination Redis starts as a listpack (zrangeResultBeginStore: a score
    or lex range, or a rank range of at most 128): the members added before
    it converts (past 128 members, or at one longer than 64 bytes) were held
    by the listpack, which keeps no -0, so their -0 scores become 0."""
    out = entries
    for i, (sc, m) in enumerate(entries):
        if i >= MAX_LISTPACK_ENTRIES or len(m) > MAX_LISTPACK_VALUE:
            break
        if sc == 0 and math.copysign(1.0, sc) < 0:
            if out is entries:
                out = list(entries)
            out[i] = (0.0, m)
    return out


@command("zrange", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL, since="1.2.0",
         summary="Return a range of members in a sorted set",
         synopsis="key start:string stop:string [BYSCORE | BYLEX] [REV] [LIMIT offset count] [WITHSCORES]")
def cmd_zrange(s, argv):
    return _zrange(s, argv, 1, False, None, None)


@command("zrangestore", -5, "write denyoom", keys=(1, 2, 1), group="sorted-set", acl=_ACL,
         since="6.2.0", summary="Store a range of members from sorted set into another key",
         synopsis="dst:key src:key min max [BYSCORE | BYLEX] [REV] [LIMIT offset count]")
def cmd_zrangestore(s, argv):
    return _zrange(s, argv, 2, True, None, None)


@command("zrevrange", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0",
         summary="Return a range of members in a sorted set, by index, with scores ordered from high to low",
         synopsis="key start stop:integer [WITHSCORES]")
def cmd_zrevrange(s, argv):
    return _zrange(s, argv, 1, False, _RANK, True)


@command("zrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.0.5", summary="Return a range of members in a sorted set, by score",
         synopsis="key min:double max:double [WITHSCORES] [LIMIT offset count]")
def cmd_zrangebyscore(s, argv):
    return _zrange(s, argv, 1, False, _SCORE, False)


@command("zrevrangebyscore", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.2.0",
         summary="Return a range of members in a sorted set, by score, with scores ordered from high to low",
         synopsis="key max:double min:double [WITHSCORES] [LIMIT offset count]")
def cmd_zrevrangebyscore(s, argv):
    return _zrange(s, argv, 1, False, _SCORE, True)


@command("zrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.8.9", summary="Return a range of members in a sorted set, by lexicographical range",
         synopsis="key min max [LIMIT offset count]")
def cmd_zrangebylex(s, argv):
    return _zrange(s, argv, 1, False, _LEX, False)


@command("zrevrangebylex", -4, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.8.9",
         summary="Return a range of members in a sorted set, by lexicographical range, ordered from higher to lower strings.",
         synopsis="key max min [LIMIT offset count]")
def cmd_zrevrangebylex(s, argv):
    return _zrange(s, argv, 1, False, _LEX, True)


# --- ZREMRANGEBY* -------------------------------------------------------------------------

def _zremrange(s, argv, rangetype: str, event: bytes):
    key = argv[1]
    if rangetype == _RANK:
        rng = (_long_arg(argv[2]), _long_arg(argv[3]))
    elif rangetype == _SCORE:
        rng = _score_range(argv[2], argv[3])
    else:
        rng = _lex_range(argv[2], argv[3])
    z = _check(s, key)
    if z is None:
        return 0
    if rangetype == _RANK:
        start, stop = _rank_span(len(z), *rng)
    elif rangetype == _SCORE:
        start, stop = _score_span(z, rng)
    else:
        start, stop = _lex_span(z, rng)
    if start >= stop:
        return 0
    with _mutate(s, key) as value:
        removed = value.remove_range(start, stop)
    _log_zrem(s, key, [m for _, m in removed])
    _removed(s, key, value, event)
    return len(removed)


@command("zremrangebyrank", 4, "write", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.0.0", summary="Remove all members in a sorted set within the given indexes",
         synopsis="key start stop:integer")
def cmd_zremrangebyrank(s, argv):
    return _zremrange(s, argv, _RANK, b"zremrangebyrank")


@command("zremrangebyscore", 4, "write", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="1.2.0", summary="Remove all members in a sorted set within the given scores",
         synopsis="key min:double max:double")
def cmd_zremrangebyscore(s, argv):
    return _zremrange(s, argv, _SCORE, b"zremrangebyscore")


@command("zremrangebylex", 4, "write", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="2.8.9",
         summary="Remove all members in a sorted set between the given lexicographical range",
         synopsis="key min max")
def cmd_zremrangebylex(s, argv):
    return _zremrange(s, argv, _LEX, b"zremrangebylex")


# --- pops -------------------------------------------------------------------------------

def pop(s, key: bytes, z: ZSet, maximum: bool, count: int) -> list:
    """Remove up to ``count`` lowest (highest) entries of the zset ``z`` at
    ``key``; log, notify; returns them (score, member) in pop order. Also the
    blocking pops' unblocking step."""
    n = len(z)
    k = min(count, n)
    with _mutate(s, key) as value:
        if maximum:
            popped = value.remove_range(n - k, n)
            popped.reverse()
        else:
            popped = value.remove_range(0, k)
    _log_zrem(s, key, [m for _, m in popped])
    _removed(s, key, value, b"zpopmax" if maximum else b"zpopmin")
    return popped


def _zpop(s, argv, maximum: bool):
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = -1
    if len(argv) == 3:
        count = _range_long(argv[2], 0, INT64_MAX, _POSITIVE_ERR)
    key = argv[1]
    z = _check(s, key)
    if z is None or count == 0:
        return []
    popped = pop(s, key, z, maximum, 1 if count == -1 else count)
    if s.resp >= 3 and count != -1:
        return [[m, sc] for sc, m in popped]
    out: list = []  # flat in RESP2, and in RESP3 for a pop without a count
    for sc, m in popped:
        out += (m, sc)
    return out


@command("zpopmin", -2, "write fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="5.0.0", summary="Remove and return members with the lowest scores in a sorted set",
         synopsis="key [count]")
def cmd_zpopmin(s, argv):
    return _zpop(s, argv, False)


@command("zpopmax", -2, "write fast", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="5.0.0", summary="Remove and return members with the highest scores in a sorted set",
         synopsis="key [count]")
def cmd_zpopmax(s, argv):
    return _zpop(s, argv, True)


def _range_long(arg: bytes, low: int, high: int, message: str) -> int:
    """getRangeLongFromObjectOrReply with a message: the same error either way."""
    value = parse_int(arg)
    if value is None or not low <= value <= high:
        raise CommandError(message)
    return value


def mpop_args(argv, numkeys_idx: int) -> tuple[list, bool, int]:
    """ZMPOP/BZMPOP's ``numkeys key... MIN|MAX [COUNT count]``: (keys, max?, count)."""
    numkeys = _range_long(argv[numkeys_idx], 1, INT64_MAX, "ERR numkeys should be greater than 0")
    where_idx = numkeys_idx + numkeys + 1
    if where_idx >= len(argv):
        raise CommandError(SYNTAX)
    where = argv[where_idx].split(b"\0", 1)[0].lower()
    if where not in (b"min", b"max"):
        raise CommandError(SYNTAX)
    count = -1
    j = where_idx + 1
    while j < len(argv):
        opt = argv[j].split(b"\0", 1)[0].lower()
        if count == -1 and opt == b"count" and len(argv) - 1 - j > 0:
            j += 1
            count = _range_long(argv[j], 1, INT64_MAX, "ERR count should be greater than 0")
        else:
            raise CommandError(SYNTAX)
        j += 1
    return argv[numkeys_idx + 1:where_idx], where == b"max", 1 if count == -1 else count


def _numkeys_getkeys(idx: int):
    def getkeys(argv):
        n = parse_int(argv[idx]) if len(argv) > idx else None
        if n is None or n < 1 or idx + n >= len(argv):
            return None
        return list(argv[idx + 1:idx + 1 + n])
    return getkeys


@command("zmpop", -4, "write movablekeys", keys=(0, 0, 0), group="sorted-set", acl=_ACL,
         since="7.0.0", getkeys=_numkeys_getkeys(1),
         summary="Remove and return members with scores in a sorted set",
         synopsis="numkeys key [key ...] <MIN | MAX> [COUNT count]")
def cmd_zmpop(s, argv):
    keys, maximum, count = mpop_args(argv, 1)
    for key in keys:
        z = _check(s, key)
        if z is not None:
            popped = pop(s, key, z, maximum, count)
            return [key, [[m, sc] for sc, m in popped]]
    return NULL_ARRAY


# --- ZRANDMEMBER ---------------------------------------------------------------------------

@command("zrandmember", -2, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL,
         since="6.2.0", summary="Get one or multiple random elements from a sorted set",
         synopsis="key [count [WITHSCORES]]")
def cmd_zrandmember(s, argv):
    if len(argv) == 2:
        z = _read(s, argv[1])
        return None if z is None else z.entry_at(random.randrange(len(z)))[1]
    count = parse_int(argv[2])
    if count is None:
        raise CommandError(NOT_INTEGER)
    if count < -INT64_MAX:
        raise CommandError(_RANGE_ERR)
    withscores = False
    if len(argv) > 4 or (len(argv) == 4 and argv[3].split(b"\0", 1)[0].lower() != b"withscores"):
        raise CommandError(SYNTAX)
    if len(argv) == 4:
        withscores = True
        if count < -(INT64_MAX // 2) or count > INT64_MAX // 2:
            raise CommandError("ERR value is out of range")
    z = _read(s, argv[1])
    if z is None or count == 0:
        return []
    n = len(z)
    if count < 0:
        if -count > MAX_RANDMEMBER_REPEATS:
            raise CommandError(_REPEATS_ERR)
        picks = [z.entry_at(random.randrange(n)) for _ in range(-count)]
    elif count >= n:
        picks = z.entries(0, n)
        picks.reverse()  # Redis's zuiNext walks from the highest score down
    else:
        picks = [z.entry_at(pos) for pos in random.sample(range(n), count)]
    return _with_scores(s, picks, withscores)


# --- ZUNION ZINTER ZDIFF and their STOREs ----------------------------------------------------

def _aggregate_sum(a: float, b: float) -> float:
    t = a + b
    return 0.0 if t != t else t


def _aggregate_min(a: float, b: float) -> float:
    return b if b < a else a


def _aggregate_max(a: float, b: float) -> float:
    return b if b > a else a


_AGGREGATES = {b"sum": _aggregate_sum, b"min": _aggregate_min, b"max": _aggregate_max}


class _Source:
    """One input of ZUNION & co: a zset, a set (scores 1) or nothing."""

    __slots__ = ("value", "weight")

    def __init__(self, value) -> None:
        self.value = value
        self.weight = 1.0

    def __len__(self) -> int:
        return 0 if self.value is None else len(self.value)

    def items(self):
        v = self.value
        if v is None:
            return iter(())
        if type(v) is ZSet:
            return v.items()
        return ((m, 1.0) for m in v)

    def score(self, member: bytes) -> float | None:
        v = self.value
        if v is None:
            return None
        if type(v) is ZSet:
            return v.score(member)
        return 1.0 if member in v else None


def _setop(s, argv, dst: bytes | None, numkeys_idx: int, op: str, card_only: bool = False):
    """zunionInterDiffGenericCommand: ``op`` is union, inter or diff."""
    setnum = _long_arg(argv[numkeys_idx])
    if setnum < 1:
        cmd = "zintercard" if card_only else f"z{op}{'' if dst is None else 'store'}"
        raise CommandError(f"ERR at least 1 input key is needed for '{cmd}' command")
    if setnum > len(argv) - (numkeys_idx + 1):
        raise CommandError(SYNTAX)
    ks = s.core.keyspace
    sources = []
    j = numkeys_idx + 1
    for key in argv[j:j + setnum]:
        value = ks.lookup_read(s.db, key)
        if value is not None and type(value) is not ZSet and type(value) is not Set:
            raise CommandError(WRONGTYPE)
        sources.append(_Source(value))
    j += setnum
    aggregate = _aggregate_sum
    withscores = False
    limit = 0
    while j < len(argv):
        remaining = len(argv) - j
        opt = argv[j].split(b"\0", 1)[0].lower()
        if op != "diff" and not card_only and remaining >= setnum + 1 and opt == b"weights":
            j += 1
            for src in sources:
                src.weight = _score_arg(argv[j], "ERR weight value is not a float")
                j += 1
        elif op != "diff" and not card_only and remaining >= 2 and opt == b"aggregate":
            aggregate = _AGGREGATES.get(argv[j + 1].split(b"\0", 1)[0].lower())
            if aggregate is None:
                raise CommandError(SYNTAX)
            j += 2
        elif remaining >= 1 and dst is None and not card_only and opt == b"withscores":
            withscores = True
            j += 1
        elif card_only and remaining >= 2 and opt == b"limit":
            limit = parse_int(argv[j + 1])
            if limit is None or limit < 0:
                raise CommandError("ERR LIMIT can't be negative")
            j += 2
        else:
            raise CommandError(SYNTAX)
    if op != "diff":
        sources.sort(key=len)  # stable, as Redis's qsort by cardinality in practice
    result: dict = {}
    if op == "inter":
        count = 0
        if len(sources[0]):
            first, others = sources[0], sources[1:]
            for member, sc in first.items():
                score = first.weight * sc
                if score != score:
                    score = 0.0
                for src in others:
                    other = src.score(member)
                    if other is None:
                        break
                    score = aggregate(score, other * src.weight)
                else:
                    if card_only:
                        count += 1
                        if limit and count >= limit:
                            break
                    else:
                        result[member] = score
        if card_only:
            return count
    elif op == "union":
        for src in sources:
            w = src.weight
            for member, sc in src.items():
                score = w * sc
                if score != score:
                    score = 0.0
                old = result.get(member)
                result[member] = score if old is None else aggregate(old, score)
    else:
        first, others = sources[0], [x for x in sources[1:] if len(x)]
        if len(first) and not any(x.value is first.value for x in others):
            for member, sc in first.items():
                if not any(src.score(member) is not None for src in others):
                    result[member] = sc
    entries = sorted([(sc, m) for m, sc in result.items()])
    if dst is not None:
        return _store(s, dst, entries, b"z%sstore" % op.encode())
    return _with_scores(s, entries, withscores)


@command("zunion", -3, "readonly movablekeys", keys=(0, 0, 0), group="sorted-set", acl=_ACL,
         since="6.2.0", getkeys=_numkeys_getkeys(1), summary="Add multiple sorted sets",
         synopsis="numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]")
def cmd_zunion(s, argv):
    return _setop(s, argv, None, 1, "union")


def _store_getkeys(argv):
    keys = _numkeys_getkeys(2)(argv)
    return None if keys is None else [argv[1], *keys]


@command("zunionstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group="sorted-set",
         acl=_ACL, since="2.0.0", getkeys=_store_getkeys,
         summary="Add multiple sorted sets and store the resulting sorted set in a new key",
         synopsis="destination numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE SUM | MIN | MAX]")
def cmd_zunionstore(s, argv):
    return _setop(s, argv, argv[1], 2, "union")


@command("zinter", -3, "readonly movablekeys", keys=(0, 0, 0), group="sorted-set", acl=_ACL,
         since="6.2.0", getkeys=_numkeys_getkeys(1), summary="Intersect multiple sorted sets",
         synopsis="numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE SUM | MIN | MAX] [WITHSCORES]")
def cmd_zinter(s, argv):
    return _setop(s, argv, None, 1, "inter")


@command("zinterstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group="sorted-set",
         acl=_ACL, since="2.0.0", getkeys=_store_getkeys,
         summary="Intersect multiple sorted sets and store the resulting sorted set in a new key",
         synopsis="destination numkeys key [key ...] [WEIGHTS weight:integer [weight:integer ...]] [AGGREGATE SUM | MIN | MAX]")
def cmd_zinterstore(s, argv):
    return _setop(s, argv, argv[1], 2, "inter")


@command("zintercard", -3, "readonly movablekeys", keys=(0, 0, 0), group="sorted-set",
         acl=_ACL, since="7.0.0", getkeys=_numkeys_getkeys(1),
         summary="Intersect multiple sorted sets and return the cardinality of the result",
         synopsis="numkeys key [key ...] [LIMIT limit:integer]")
def cmd_zintercard(s, argv):
    return _setop(s, argv, None, 1, "inter", card_only=True)


@command("zdiff", -3, "readonly movablekeys", keys=(0, 0, 0), group="sorted-set", acl=_ACL,
         since="6.2.0", getkeys=_numkeys_getkeys(1), summary="Subtract multiple sorted sets",
         synopsis="numkeys key [key ...] [WITHSCORES]")
def cmd_zdiff(s, argv):
    return _setop(s, argv, None, 1, "diff")


@command("zdiffstore", -4, "write denyoom movablekeys", keys=(1, 1, 1), group="sorted-set",
         acl=_ACL, since="6.2.0", getkeys=_store_getkeys,
         summary="Subtract multiple sorted sets and store the resulting sorted set in a new key",
         synopsis="destination numkeys key [key ...]")
def cmd_zdiffstore(s, argv):
    return _setop(s, argv, argv[1], 2, "diff")


# --- ZSCAN -----------------------------------------------------------------------------------

@command("zscan", -3, "readonly", keys=(1, 1, 1), group="sorted-set", acl=_ACL, since="2.8.0",
         summary="Incrementally iterate sorted sets elements and associated scores",
         synopsis="key cursor [MATCH pattern] [COUNT count]")
def cmd_zscan(s, argv):
    cursor = scan_cursor(argv[2])
    z = _read(s, argv[1])
    if z is None:
        return [b"0", []]
    pattern, count, _type = scan_options(argv, 3)
    if not z.big:
        # A listpack (at most 128 members) is answered whole, cursor 0, in
        # order, each score as the listpack holds it (d2string's text).
        next_cursor, found, text = 0, list(z), _listpack_score
    else:
        next_cursor, found, text = *scan_step(z, cursor, count), format_double
    matches = scan_matcher(pattern, found)
    out = []
    for m in found:
        if matches is None or matches(m):
            out += (m, text(z.score(m)))
    return [b"%d" % next_cursor, out]


#: double2ll's range (util.c): LLONG_MAX / 2, as a double.
_D2LL_MAX = float(INT64_MAX // 2)


def _listpack_score(score: float) -> bytes:
    """A score as a listpack stores it (d2string): integral values within
    +/-LLONG_MAX/2 as integers (1e17 -> 100000000000000000), others %.17g."""
    if -_D2LL_MAX <= score <= _D2LL_MAX and score == int(score):
        return b"%d" % int(score)
    return format_double(score)


# --- BZPOPMIN BZPOPMAX BZMPOP (kvserver.blocking) ------------------------------------------------

def _blocking_zpop(s, keys: list, maximum: bool, deadline: int, count: int | None):
    """blockingGenericZpopCommand: ``count`` None is BZPOPMIN/BZPOPMAX (a flat
    [key, member, score]), else BZMPOP's ([key, [[member, score]...]])."""
    ks = s.core.keyspace

    def reply(c, key, z):
        popped = pop(c, key, z, maximum, 1 if count is None else count)
        if count is None:
            sc, m = popped[0]
            return [key, m, sc]
        return [key, [[m, sc] for sc, m in popped]]

    for key in keys:
        z = ks.write(s.db, key, ZSET)  # every existing key up to a non-empty one is type-checked
        if z is not None:
            return reply(s, key, z)
    if not may_block(s):
        return NULL_ARRAY

    def serve(c, key):
        z = c.core.keyspace.lookup(c.db, key)
        if type(z) is not ZSet or not len(z):
            return None  # absent or another type now: keep waiting, as Redis
        return reply(c, key, z)

    return block(s, keys, deadline, serve, NULL_ARRAY)


@command("bzpopmin", -3, "write noscript blocking fast", keys=(1, -2, 1), group="sorted-set",
         acl="@sortedset @blocking", since="5.0.0",
         summary="Remove and return the member with the lowest score from one or more sorted sets, "
         "or block until one is available", synopsis="key [key ...] timeout:double")
def cmd_bzpopmin(s, argv):
    deadline = parse_timeout(argv[-1], s.core.keyspace.clock())
    return _blocking_zpop(s, argv[1:-1], False, deadline, None)


@command("bzpopmax", -3, "write noscript blocking fast", keys=(1, -2, 1), group="sorted-set",
         acl="@sortedset @blocking", since="5.0.0",
         summary="Remove and return the member with the highest score from one or more sorted sets, "
         "or block until one is available", synopsis="key [key ...] timeout:double")
def cmd_bzpopmax(s, argv):
    deadline = parse_timeout(argv[-1], s.core.keyspace.clock())
    return _blocking_zpop(s, argv[1:-1], True, deadline, None)


@command("bzmpop", -5, "write blocking movablekeys", keys=(0, 0, 0), group="sorted-set",
         acl="@sortedset @blocking", since="7.0.0", getkeys=_numkeys_getkeys(2),
         summary="Remove and return members with scores in a sorted set or block until one is available",
         synopsis="timeout:double numkeys key [key ...] <MIN | MAX> [COUNT count]")
def cmd_bzmpop(s, argv):
    keys, maximum, count = mpop_args(argv, 2)  # numkeys, MIN|MAX and COUNT before the timeout
    deadline = parse_timeout(argv[1], s.core.keyspace.clock())
    return _blocking_zpop(s, keys, maximum, deadline, count)
