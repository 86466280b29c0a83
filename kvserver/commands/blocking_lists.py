"""The blocking list pops: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP (Redis 7.0.15's t_list.c).

Each first tries what its non-blocking form would do: a non-empty list
among its keys (the first, in order) is popped at once and answered as
LPOP/RPOP/LMOVE/LMPOP would, with the same effect logged. Otherwise the
client blocks (kvserver.blocking) with a serve function that does the same
pop when one of its keys is ready, or, inside MULTI/EXEC or a script,
answers as a timeout at once.

Order of checks as Redis: BLPOP/BRPOP parse the timeout first, then look at
the keys (WRONGTYPE for the first key of another type, keys before it being
absent); BLMOVE parses LEFT/RIGHT, then the timeout, then the source (the
destination's type is only checked when an element moves: a blocked
BLMOVE whose destination became another type is answered WRONGTYPE when
served); BLMPOP parses numkeys, the direction and COUNT, then the timeout.

Replies: BLPOP/BRPOP ``[key, element]``, BLMPOP ``[key, [elements]]``,
BLMOVE/BRPOPLPUSH the element. A timeout (and CLIENT UNBLOCK ... TIMEOUT)
answers a null array for all five (``*-1``; RESP3 ``_``), as Redis's
replyToBlockedClientTimedOut; inside MULTI, BLMOVE/BRPOPLPUSH answer a
null bulk (``$-1``) and the others a null array.

Effects (the WAL), always under the real name: ``LPOP key 1`` /
``RPOP key 1`` for BLPOP/BRPOP, ``LPOP key n`` for BLMPOP (n = what was
popped), and for a move ``LPOP src 1`` then ``LPUSH``/``RPUSH dst element``
(two effects, one unit), whether served at once or later; a served pop is
logged in the serving round's unit (see kvserver.blocking: after the push
that fed it). Keyspace events as Redis: ``lpop``/``rpop`` (and ``del`` when
the list is emptied), a move's ``lpush``/``rpush`` on the destination first.
"""

from __future__ import annotations

from .. import notify
from ..blocking import block, may_block, parse_timeout
from ..errors import WRONGTYPE
from ..protocol import NULL_ARRAY, ErrorReply
from ..types.list import LIST, List
from . import command
from .lists import mpop_args, mpop_keys, side

def _pop(s, key: bytes, count: int, left: bool) -> list:
    """Pop up to ``count`` elements from the non-empty list at ``key``: log, notify."""
    core = s.core
    with core.keyspace.mutate(s.db, key, LIST) as lst:
        out = lst.pop_n(count, left)
        emptied = not lst
    s.log([b"LPOP" if left else b"RPOP", key, b"%d" % len(out)])
    core.notify(notify.LIST, b"lpop" if left else b"rpop", s.db_index, key)
    if emptied:
        core.notify(notify.GENERIC, b"del", s.db_index, key)
    return out


def _move(s, src: bytes, dst: bytes, from_left: bool, to_left: bool) -> bytes:
    """Move one element of the non-empty list ``src`` to ``dst`` (checked to be a list
    or absent): LMOVE's effects, events and order."""
    core = s.core
    ks = core.keyspace
    with ks.mutate(s.db, src, LIST) as lst:
        value = lst.pop_n(1, from_left)[0]
        if src == dst:
            lst.push((value,), to_left)   # rotating: never empty in between
        emptied = not lst
    if src != dst:
        with ks.mutate(s.db, dst, LIST) as lst:
            lst.push((value,), to_left)
    s.log([b"LPOP" if from_left else b"RPOP", src, b"1"])
    s.log([b"LPUSH" if to_left else b"RPUSH", dst, value])
    index = s.db_index
    core.notify(notify.LIST, b"lpush" if to_left else b"rpush", index, dst)
    core.notify(notify.LIST, b"lpop" if from_left else b"rpop", index, src)
    if emptied:
        core.notify(notify.GENERIC, b"del", index, src)
    return value


def _list_at(s, key: bytes):
    """The non-empty list at ``key`` for a serve function, or None (absent, another
    type: the client keeps waiting). Lazy expiry first, as Redis's lookup."""
    value = s.core.keyspace.lookup(s.db, key)
    if type(value) is List and value:
        return value
    return None


# --- BLPOP BRPOP BLMPOP ---------------------------------------------------------

def _blocking_pop(s, keys: list, left: bool, timeout: bytes, count: int | None):
    """blockingPopGenericCommand: ``count`` None is BLPOP/BRPOP, else BLMPOP's COUNT."""
    ks = s.core.keyspace
    deadline = parse_timeout(timeout, ks.clock())
    for key in keys:
        if ks.write(s.db, key, LIST) is None:
            continue
        if count is None:
            return [key, _pop(s, key, 1, left)[0]]
        return [key, _pop(s, key, count, left)]
    if not may_block(s):
        return NULL_ARRAY

    def serve(c, key):
        if _list_at(c, key) is None:
            return None
        if count is None:
            return [key, _pop(c, key, 1, left)[0]]
        return [key, _pop(c, key, count, left)]

    return block(s, keys, deadline, serve, NULL_ARRAY)


@command("blpop", -3, "write noscript blocking", keys=(1, -2, 1), group="list", since="2.0.0",
         summary="Remove and get the first element in a list, or block until one is available",
         synopsis="key [key ...] timeout:double")
def cmd_blpop(s, argv):
    return _blocking_pop(s, argv[1:-1], True, argv[-1], None)


@command("brpop", -3, "write noscript blocking", keys=(1, -2, 1), group="list", since="2.0.0",
         summary="Remove and get the last element in a list, or block until one is available",
         synopsis="key [key ...] timeout:double")
def cmd_brpop(s, argv):
    return _blocking_pop(s, argv[1:-1], False, argv[-1], None)


@command("blmpop", -5, "write blocking movablekeys", keys=(0, 0, 0), group="list",
         since="7.0.0", summary="Pop elements from a list, or block until one is available",
         synopsis="timeout:double numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
         getkeys=mpop_keys(2))
def cmd_blmpop(s, argv):
    keys, left, count = mpop_args(argv, 2)
    return _blocking_pop(s, keys, left, argv[1], count)


# --- BLMOVE BRPOPLPUSH ------------------------------------------------------------

def _blocking_move(s, src: bytes, dst: bytes, from_left: bool, to_left: bool,
                   timeout: bytes):
    """blmoveGenericCommand (the timeout already comes after LEFT/RIGHT)."""
    ks = s.core.keyspace
    deadline = parse_timeout(timeout, ks.clock())
    if ks.write(s.db, src, LIST) is not None:
        ks.write(s.db, dst, LIST)   # WRONGTYPE before anything moves, as LMOVE
        return _move(s, src, dst, from_left, to_left)
    if not may_block(s):
        return None

    def serve(c, key):
        if _list_at(c, key) is None:
            return None
        target = c.core.keyspace.lookup(c.db, dst)
        if target is not None and type(target) is not List:
            return ErrorReply(WRONGTYPE)   # answered, nothing moved, as Redis
        return _move(c, src, dst, from_left, to_left)

    return block(s, [src], deadline, serve, NULL_ARRAY)


@command("blmove", 6, "write denyoom noscript blocking", keys=(1, 2, 1), group="list",
         since="6.2.0", summary="Pop an element from a list, push it to another list and "
         "return it; or block until one is available",
         synopsis="source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout:double")
def cmd_blmove(s, argv):
    from_left, to_left = side(argv[3]), side(argv[4])
    return _blocking_move(s, argv[1], argv[2], from_left, to_left, argv[5])


@command("brpoplpush", 4, "write denyoom noscript blocking", keys=(1, 2, 1), group="list",
         since="2.2.0", summary="Pop an element from a list, push it to another list and "
         "return it; or block until one is available",
         synopsis="source destination timeout:double")
def cmd_brpoplpush(s, argv):
    return _blocking_move(s, argv[1], argv[2], False, True, argv[3])
