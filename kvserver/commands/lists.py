"""List commands: LPUSH RPUSH LPUSHX RPUSHX LPOP RPOP LLEN LINDEX LINSERT LSET
LRANGE LTRIM LREM LPOS LMOVE RPOPLPUSH LMPOP (the blocking pops are in
``blocking_lists.py``, on kvserver/blocking.py).

Values are :class:`~kvserver.types.list.List` (``types/list.py``), reached
only through the keyspace's typed accessors: ``read_counted`` for reads,
``write`` to validate a write first, ``mutate`` to change one (WRONGTYPE, the
running checkpoint's pre-image, the key deleted when its last element goes,
``modified``). Replies, errors and their order of checks follow Redis
7.0.15's ``t_list.c``.

What each write logs, always under the real command name:

* pushes log themselves (LPUSH/RPUSH/LPUSHX/RPUSHX key element ...), nothing
  when an X variant found no key;
* every pop (LPOP, RPOP, LMPOP, the pop half of LMOVE/RPOPLPUSH) logs
  ``LPOP key n`` or ``RPOP key n`` with the number it actually popped, so
  replay removes the same elements;
* LMOVE / RPOPLPUSH log the pop and then ``LPUSH``/``RPUSH dst element``:
  two effects in the command's one execution unit (one WAL record);
* LSET, LINSERT, LREM, LTRIM log themselves (deterministic given the list
  before), and nothing when they changed nothing.
"""

from __future__ import annotations

from itertools import islice

from ..notify import GENERIC, LIST as NOTIFY_LIST
from ..errors import SYNTAX, CommandError
from ..numbers import INT64_MAX, parse_int
from ..protocol import NULL_ARRAY, OK
from ..types.list import LIST
from . import command
from .strings import int_arg

_NO_SUCH_KEY = "ERR no such key"
_OUT_OF_RANGE = "ERR index out of range"
_MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
_RANK_ZERO = ("ERR RANK can't be zero: use 1 to start from the first match, 2 from the "
              "second ... or use negative to start from the end of the list")
_NUMKEYS = "ERR numkeys should be greater than 0"
_COUNT_POSITIVE = "ERR count should be greater than 0"

#: Marks a pop without COUNT (a single element or nil, not an array).
_NO_COUNT = None


def _read(s, key: bytes):
    return s.core.keyspace.read_counted(s.db, key, LIST)


def _check(s, key: bytes):
    return s.core.keyspace.write(s.db, key, LIST)


def _mutate(s, key: bytes):
    return s.core.keyspace.mutate(s.db, key, LIST)


def _positive(arg: bytes, message: str) -> int:
    """getPositiveLongFromObjectOrReply: a long >= 0, else ``message``."""
    value = parse_int(arg)
    if value is None or value < 0:
        raise CommandError(message)
    return value


def side(arg: bytes) -> bool:
    """LEFT -> True, RIGHT -> False (getListPositionFromObjectOrReply)."""
    word = arg.lower()
    if word == b"left":
        return True
    if word == b"right":
        return False
    raise CommandError(SYNTAX)


def _pop_name(left: bool) -> bytes:
    return b"LPOP" if left else b"RPOP"


# --- pushes -----------------------------------------------------------------------

def _push(s, argv, left: bool, only_existing: bool, name: bytes):
    key = argv[1]
    if only_existing and _check(s, key) is None:
        return 0
    items = argv[2:]
    with _mutate(s, key) as lst:
        lst.push(items, left)
        length = len(lst)
    s.log([name, key, *items])
    s.core.notify(NOTIFY_LIST, b"lpush" if left else b"rpush", s.db_index, key)
    return length


@command("lpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Prepend one or multiple elements to a list", synopsis="key element [element ...]")
def cmd_lpush(s, argv):
    return _push(s, argv, True, False, b"LPUSH")


@command("rpush", -3, "write denyoom fast", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Append one or multiple elements to a list", synopsis="key element [element ...]")
def cmd_rpush(s, argv):
    return _push(s, argv, False, False, b"RPUSH")


@command("lpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", since="2.2.0",
         summary="Prepend an element to a list, only if the list exists",
         synopsis="key element [element ...]")
def cmd_lpushx(s, argv):
    return _push(s, argv, True, True, b"LPUSHX")


@command("rpushx", -3, "write denyoom fast", keys=(1, 1, 1), group="list", since="2.2.0",
         summary="Append an element to a list, only if the list exists",
         synopsis="key element [element ...]")
def cmd_rpushx(s, argv):
    return _push(s, argv, False, True, b"RPUSHX")


# --- pops -------------------------------------------------------------------------

def _pop_from(s, key: bytes, count: int, left: bool) -> list:
    """Pop up to ``count`` elements of the (existing, non-empty) list at ``key``
    and log exactly what was popped."""
    with _mutate(s, key) as lst:
        out = lst.pop_n(count, left)
    s.log([_pop_name(left), key, b"%d" % len(out)])
    _notify_and_gone(s, b"lpop" if left else b"rpop", key)
    return out


def _notify_and_gone(s, event: bytes, key: bytes) -> None:
    """Publish ``event`` for ``key``, then ``del`` if that emptied (so deleted) the list."""
    core = s.core
    if core.notify_flags:
        core.notify(NOTIFY_LIST, event, s.db_index, key)
        if key not in s.db.data:
            core.notify(GENERIC, b"del", s.db_index, key)


def _pop(s, argv, left: bool, name: str):
    if len(argv) > 3:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")
    count = _NO_COUNT
    if len(argv) == 3:
        count = _positive(argv[2], _MUST_BE_POSITIVE)
    key = argv[1]
    lst = _check(s, key)
    if lst is None:
        return None if count is _NO_COUNT else NULL_ARRAY
    if count == 0:
        return []
    out = _pop_from(s, key, 1 if count is _NO_COUNT else count, left)
    return out[0] if count is _NO_COUNT else out


@command("lpop", -2, "write fast", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Remove and get the first elements in a list", synopsis="key [count]")
def cmd_lpop(s, argv):
    return _pop(s, argv, True, "lpop")


@command("rpop", -2, "write fast", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Remove and get the last elements in a list", synopsis="key [count]")
def cmd_rpop(s, argv):
    return _pop(s, argv, False, "rpop")


def mpop_keys(numkeys_idx: int):
    """COMMAND GETKEYS for LMPOP/BLMPOP: the numkeys keys after ``numkeys_idx``, if they fit."""
    def keys(argv: list) -> list | None:
        numkeys = parse_int(argv[numkeys_idx]) if len(argv) > numkeys_idx else None
        if numkeys is None or numkeys < 1 or numkeys_idx + 1 + numkeys > len(argv):
            return None
        return argv[numkeys_idx + 1:numkeys_idx + 1 + numkeys]
    return keys


def mpop_args(argv: list, numkeys_idx: int) -> tuple[list, bool, int]:
    """LMPOP/BLMPOP's ``numkeys key... LEFT|RIGHT [COUNT count]``: (keys, left?, count),
    with Redis's errors in its order."""
    numkeys = parse_int(argv[numkeys_idx])
    if numkeys is None or numkeys < 1:
        raise CommandError(_NUMKEYS)
    where = numkeys_idx + 1 + numkeys
    if where >= len(argv):
        raise CommandError(SYNTAX)
    left = side(argv[where])
    count = None
    j = where + 1
    while j < len(argv):
        if count is None and argv[j].lower() == b"count" and j + 1 < len(argv):
            count = parse_int(argv[j + 1])
            if count is None or count < 1:
                raise CommandError(_COUNT_POSITIVE)
            j += 2
        else:
            raise CommandError(SYNTAX)
    return argv[numkeys_idx + 1:where], left, count or 1


@command("lmpop", -4, "write movablekeys", keys=(0, 0, 0), group="list", since="7.0.0",
         summary="Pop elements from a list",
         synopsis="numkeys key [key ...] <LEFT | RIGHT> [COUNT count]", getkeys=mpop_keys(1))
def cmd_lmpop(s, argv):
    keys, left, count = mpop_args(argv, 1)
    for key in keys:
        if _check(s, key) is None:
            continue
        return [key, _pop_from(s, key, count, left)]
    return NULL_ARRAY


# --- reads ------------------------------------------------------------------------

@command("llen", 2, "readonly fast", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Get the length of a list", synopsis="key")
def cmd_llen(s, argv):
    lst = _read(s, argv[1])
    return 0 if lst is None else len(lst)


@command("lindex", 3, "readonly", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Get an element from a list by its index", synopsis="key index")
def cmd_lindex(s, argv):
    lst = _read(s, argv[1])
    if lst is None:
        return None
    index = int_arg(argv[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        return None
    return lst[index]  # deque indexing walks from the nearer end


def _range(length: int, start: int, end: int):
    """Redis's normalisation of a [start, end] index pair: the first index
    and the count of elements, count 0 when the range is empty."""
    if start < 0:
        start += length
    if end < 0:
        end += length
    if start < 0:
        start = 0
    if start > end or start >= length:
        return 0, 0
    if end >= length:
        end = length - 1
    return start, end - start + 1


@command("lrange", 4, "readonly", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Get a range of elements from a list", synopsis="key start stop:integer")
def cmd_lrange(s, argv):
    start, end = int_arg(argv[2]), int_arg(argv[3])
    lst = _read(s, argv[1])
    if lst is None:
        return []
    first, count = _range(len(lst), start, end)
    if not count:
        return []
    tail_skip = len(lst) - first - count
    if first <= tail_skip:
        return list(islice(lst, first, first + count))
    out = list(islice(reversed(lst), tail_skip, tail_skip + count))
    out.reverse()
    return out


@command("lpos", -3, "readonly", keys=(1, 1, 1), group="list", since="6.0.6",
         summary="Return the index of matching elements on a list",
         synopsis="key element [RANK rank:integer] [COUNT num-matches:integer] [MAXLEN len:integer]")
def cmd_lpos(s, argv):
    rank, count, maxlen = 1, None, 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = j + 1 < len(argv)
        if opt == b"rank" and more:
            rank = int_arg(argv[j + 1])
            if rank == 0:
                raise CommandError(_RANK_ZERO)
        elif opt == b"count" and more:
            count = _positive(argv[j + 1], "ERR COUNT can't be negative")
        elif opt == b"maxlen" and more:
            maxlen = _positive(argv[j + 1], "ERR MAXLEN can't be negative")
        else:
            raise CommandError(SYNTAX)
        j += 2
    lst = _read(s, argv[1])
    if lst is None:
        return None if count is None else []
    element = argv[2]
    length = len(lst)
    if rank > 0:
        source, index_of = iter(lst), (lambda i: i)
    else:
        source, index_of = reversed(lst), (lambda i: length - 1 - i)
        # Redis negates the rank in a C long: -LLONG_MIN stays negative, so
        # every match qualifies (rank 1 from the tail), which we reproduce.
        rank = 1 if rank < -INT64_MAX else -rank
    if maxlen:
        source = islice(source, maxlen)
    found = []
    matches = 0
    for i, item in enumerate(source):
        if item == element:
            matches += 1
            if matches >= rank:
                found.append(index_of(i))
                if count is None or (count and len(found) >= count):
                    break
    if count is None:
        return found[0] if found else None
    return found


# --- in-place writes --------------------------------------------------------------

@command("linsert", 5, "write denyoom", keys=(1, 1, 1), group="list", since="2.2.0",
         summary="Insert an element before or after another element in a list",
         synopsis="key <BEFORE | AFTER> pivot element")
def cmd_linsert(s, argv):
    where = argv[2].lower()
    if where not in (b"before", b"after"):
        raise CommandError(SYNTAX)
    key, pivot, element = argv[1], argv[3], argv[4]
    lst = _check(s, key)
    if lst is None:
        return 0
    try:
        index = lst.index(pivot)
    except ValueError:
        return -1
    with _mutate(s, key) as lst:
        lst.insert_at(index if where == b"before" else index + 1, element)
        length = len(lst)
    s.log([b"LINSERT", key, argv[2], pivot, element])
    s.core.notify(NOTIFY_LIST, b"linsert", s.db_index, key)
    return length


@command("lset", 4, "write denyoom", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Set the value of an element in a list by its index",
         synopsis="key index element")
def cmd_lset(s, argv):
    key = argv[1]
    lst = _check(s, key)
    if lst is None:
        raise CommandError(_NO_SUCH_KEY)
    index = int_arg(argv[2])
    if index < 0:
        index += len(lst)
    if not 0 <= index < len(lst):
        raise CommandError(_OUT_OF_RANGE)
    with _mutate(s, key) as lst:
        lst.set_at(index, argv[3])
    s.log([b"LSET", key, argv[2], argv[3]])
    s.core.notify(NOTIFY_LIST, b"lset", s.db_index, key)
    return OK


@command("ltrim", 4, "write", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Trim a list to the specified range", synopsis="key start stop:integer")
def cmd_ltrim(s, argv):
    start, end = int_arg(argv[2]), int_arg(argv[3])
    key = argv[1]
    lst = _check(s, key)
    if lst is None:
        return OK
    length = len(lst)
    first, count = _range(length, start, end)
    left, right = (length, 0) if not count else (first, length - first - count)
    if left or right:
        with _mutate(s, key) as lst:
            lst.trim(left, right)
        s.log([b"LTRIM", key, argv[2], argv[3]])
    _notify_and_gone(s, b"ltrim", key)   # (even if nothing went, as Redis)
    return OK


@command("lrem", 4, "write", keys=(1, 1, 1), group="list", since="1.0.0",
         summary="Remove elements from a list", synopsis="key count element")
def cmd_lrem(s, argv):
    count = int_arg(argv[2])
    key = argv[1]
    lst = _check(s, key)
    if lst is None or argv[3] not in lst:
        return 0
    with _mutate(s, key) as lst:
        removed = lst.remove_matching(argv[3], count)
    s.log([b"LREM", key, argv[2], argv[3]])
    _notify_and_gone(s, b"lrem", key)
    return removed


# --- moves ------------------------------------------------------------------------

def _move(s, src: bytes, dst: bytes, from_left: bool, to_left: bool):
    source = _check(s, src)
    if source is None:
        return None
    _check(s, dst)  # WRONGTYPE before anything changes
    if src == dst:
        with _mutate(s, src) as lst:
            value = lst.pop_n(1, from_left)[0]
            lst.push((value,), to_left)
    else:
        with _mutate(s, src) as lst:
            value = lst.pop_n(1, from_left)[0]
        with _mutate(s, dst) as lst:
            lst.push((value,), to_left)
    s.log([_pop_name(from_left), src, b"1"])
    s.log([b"LPUSH" if to_left else b"RPUSH", dst, value])
    if s.core.notify_flags:   # Redis's order: the push, then the pop (and del)
        s.core.notify(NOTIFY_LIST, b"lpush" if to_left else b"rpush", s.db_index, dst)
        _notify_and_gone(s, b"lpop" if from_left else b"rpop", src)
    return value


@command("lmove", 5, "write denyoom", keys=(1, 2, 1), group="list", since="6.2.0",
         summary="Pop an element from a list, push it to another list and return it",
         synopsis="source destination <LEFT | RIGHT> <LEFT | RIGHT>")
def cmd_lmove(s, argv):
    from_left, to_left = side(argv[3]), side(argv[4])
    return _move(s, argv[1], argv[2], from_left, to_left)


@command("rpoplpush", 3, "write denyoom", keys=(1, 2, 1), group="list", since="1.2.0",
         summary="Remove the last element in a list, prepend it to another list and return it",
         synopsis="source destination")
def cmd_rpoplpush(s, argv):
    return _move(s, argv[1], argv[2], False, True)
