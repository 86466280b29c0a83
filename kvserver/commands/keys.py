"""Generic key commands: deleting, renaming, copying, iterating, expiry."""

from __future__ import annotations

import re
from typing import Callable

from ..notify import GENERIC
from ..errors import DB_INDEX, INVALID_EXPIRE, NO_SUCH_KEY, NOT_INTEGER, SYNTAX, CommandError
from ..glob import matcher_for
from ..keyspace import _ScanIndex
from ..numbers import INT64_MAX, INT64_MIN, parse_int
from ..protocol import OK, Simple
from ..types import codec_of, type_name
from . import command
from .strings import int_arg

_SAME_OBJECT = "ERR source and destination objects are the same"
_INT_RANGE = "ERR value is out of range, value must between -2147483648 and 2147483647"


def int32_arg(arg: bytes, error: str | None = None) -> int:
    """Redis's getIntFromObjectOrReply: a C int, or ``error`` (else Redis's own messages)."""
    value = parse_int(arg)
    if value is None:
        raise CommandError(error or NOT_INTEGER)
    if not -(1 << 31) <= value < (1 << 31):
        raise CommandError(error or _INT_RANGE)
    return value


def db_arg(s, arg: bytes) -> int:
    """A database index argument (SELECT, MOVE, COPY ... DB), range-checked."""
    index = int32_arg(arg)
    if not 0 <= index < len(s.core.keyspace.dbs):
        raise CommandError(DB_INDEX)
    return index


def _delete(s, argv):
    ks = s.core.keyspace
    db = s.db
    removed = []
    for key in argv[1:]:
        ks.lookup(db, key)
        if db.remove(key):
            removed.append(key)
    if removed:
        s.log([b"DEL"] + removed)
        if s.core.notify_flags:
            for key in removed:
                s.core.notify(GENERIC, b"del", s.db_index, key)
    return len(removed)


@command("del", -2, "write", keys=(1, -1, 1), group="generic", acl="@keyspace @write @slow",
         summary="Delete a key", synopsis="key [key ...]")
def cmd_del(s, argv):
    return _delete(s, argv)


@command("unlink", -2, "write fast", keys=(1, -1, 1), group="generic", since="4.0.0",
         acl="@keyspace @write @fast",
         summary="Delete a key asynchronously in another thread. Otherwise it is just as DEL, "
                 "but non blocking.", synopsis="key [key ...]")
def cmd_unlink(s, argv):
    return _delete(s, argv)


@command("exists", -2, "readonly fast", keys=(1, -1, 1), group="generic",
         acl="@keyspace @read @fast",
         summary="Determine if a key exists", synopsis="key [key ...]")
def cmd_exists(s, argv):
    ks = s.core.keyspace
    # Counted reads (INFO keyspace_hits/misses, keymiss events), as Redis's.
    return sum(1 for key in argv[1:] if ks.lookup_read(s.db, key) is not None)


@command("touch", -2, "readonly fast", keys=(1, -1, 1), group="generic", since="3.2.1",
         acl="@keyspace @read @fast",
         summary="Alters the last access time of a key(s). Returns the number of existing keys specified.",
         synopsis="key [key ...]")
def cmd_touch(s, argv):
    return cmd_exists(s, argv)


@command("type", 2, "readonly fast", keys=(1, 1, 1), group="generic",
         acl="@keyspace @read @fast", summary="Determine the type stored at key", synopsis="key")
def cmd_type(s, argv):
    return Simple(type_name(s.core.keyspace.lookup_read(s.db, argv[1])))


def _rename(s, argv, nx: bool):
    src, dst = argv[1], argv[2]
    ks = s.core.keyspace
    db = s.db
    value = ks.lookup(db, src)
    if value is None:
        raise CommandError(NO_SUCH_KEY)
    if src == dst:
        return 0 if nx else OK
    if ks.lookup(db, dst) is not None and nx:
        return 0
    ttl = db.expires.get(src)
    db.remove(dst)
    db.remove(src)
    db.store(dst, value)
    if ttl is not None:
        db.set_expire(dst, ttl)
    s.log([b"RENAME", src, dst])
    s.core.notify(GENERIC, b"rename_from", s.db_index, src)
    s.core.notify(GENERIC, b"rename_to", s.db_index, dst)
    return 1 if nx else OK


@command("rename", 3, "write", keys=(1, 2, 1), group="generic", acl="@keyspace @write @slow",
         summary="Rename a key", synopsis="key newkey")
def cmd_rename(s, argv):
    return _rename(s, argv, False)


@command("renamenx", 3, "write fast", keys=(1, 2, 1), group="generic",
         acl="@keyspace @write @fast",
         summary="Rename a key, only if the new key does not exist", synopsis="key newkey")
def cmd_renamenx(s, argv):
    return _rename(s, argv, True)


@command("copy", -3, "write denyoom", keys=(1, 2, 1), group="generic", since="6.2.0",
         acl="@keyspace @write @slow",
         summary="Copy a key", synopsis="source destination [DB destination-db] [REPLACE]")
def cmd_copy(s, argv):
    src, dst = argv[1], argv[2]
    target = s.db_index
    replace = False
    i = 3
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"REPLACE":
            replace = True
        elif opt == b"DB" and i + 1 < len(argv):
            target = db_arg(s, argv[i + 1])  # checked at once, before later options
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    ks = s.core.keyspace
    if src == dst and target == s.db_index:
        raise CommandError(_SAME_OBJECT)
    value = ks.lookup_read(s.db, src)   # counted, as Redis's lookupKeyRead
    if value is None:
        return 0
    dst_db = ks.dbs[target]
    if ks.lookup(dst_db, dst) is not None:
        if not replace:
            return 0
        dst_db.remove(dst)
    copy = codec_of(value).snapshot_copy  # a mutable kind: dst gets its own value
    dst_db.store(dst, value if copy is None else copy(value))
    ttl = s.db.expires.get(src)
    if ttl is not None:
        dst_db.set_expire(dst, ttl)
    s.log([b"COPY", src, dst, b"DB", b"%d" % target, b"REPLACE"])
    s.core.notify(GENERIC, b"copy_to", target, dst)
    return 1


@command("move", 3, "write fast", keys=(1, 1, 1), group="generic",
         acl="@keyspace @write @fast",
         summary="Move a key to another database", synopsis="key db")
def cmd_move(s, argv):
    key = argv[1]
    target = db_arg(s, argv[2])
    if target == s.db_index:
        raise CommandError(_SAME_OBJECT)
    ks = s.core.keyspace
    value = ks.lookup(s.db, key)
    if value is None:
        return 0
    dst_db = ks.dbs[target]
    if ks.lookup(dst_db, key) is not None:
        return 0
    ttl = s.db.expires.get(key)
    s.db.remove(key)
    dst_db.store(key, value)
    if ttl is not None:
        dst_db.set_expire(key, ttl)
    s.log([b"MOVE", key, b"%d" % target])
    s.core.notify(GENERIC, b"move_from", s.db_index, key)
    s.core.notify(GENERIC, b"move_to", target, key)
    return 1


@command("keys", 2, "readonly", keys=(0, 0, 0), group="generic",
         acl="@keyspace @read @slow @dangerous",
         summary="Find all keys matching the given pattern", synopsis="pattern")
def cmd_keys(s, argv):
    pattern = argv[1]
    ks = s.core.keyspace
    db = s.db
    now = ks.clock()
    expires = db.expires
    if pattern == b"*":  # Redis's allkeys: unlike stringmatchlen, it takes the empty key
        candidates = list(db.data)
    else:
        candidates = list(filter(matcher_for(pattern, db.data), db.data))
    # Filter expired keys without deleting them here: KEYS is a read of many
    # keys, and Redis's KEYS skips expired keys the same way.
    if expires and ks.expiry_enabled:
        candidates = [k for k in candidates if expires.get(k, now + 1) > now]
    return candidates


# What Redis's strtoul() call accepts as a whole cursor: a sign and digits,
# or nothing at all (an empty cursor is 0); C sees the string up to a NUL.
_CURSOR_RE = re.compile(rb"([+-]?)([0-9]+)\Z|\Z")


def scan_cursor(arg: bytes) -> int:
    """Redis's parseScanCursorOrReply: an unsigned 64-bit cursor, as strtoul reads it."""
    m = _CURSOR_RE.match(arg.split(b"\0", 1)[0])
    if m is None or (m.group(2) is not None and int(m.group(2)) >= 1 << 64):
        raise CommandError("ERR invalid cursor")
    if m.group(2) is None:
        return 0
    value = int(m.group(2))
    # strtoul negates in unsigned arithmetic: "-1" is the largest cursor.
    return (-value) & ((1 << 64) - 1) if m.group(1) == b"-" else value


#: SCAN's COUNT when none is given (Redis's default), for SCAN, HSCAN, SSCAN...
SCAN_COUNT = 10


def scan_options(argv: list[bytes], start: int, with_type: bool = False
                 ) -> tuple[bytes | None, int, str | None]:
    """The ``[MATCH pattern] [COUNT count] [TYPE type]`` options of SCAN and its
    per-key cousins (HSCAN, SSCAN...), read from ``argv[start:]`` as Redis's
    scanGenericCommand reads them: option names compared as C strings without
    case, COUNT at least 1, TYPE only for SCAN (``with_type``); anything else
    is a syntax error. Returns (pattern or None, count, type name or None)."""
    pattern = None
    count = SCAN_COUNT
    want_type = None
    i = start
    while i < len(argv):
        opt = argv[i].split(b"\0", 1)[0].lower()
        if i + 1 >= len(argv):
            raise CommandError(SYNTAX)
        if opt == b"count":
            count = int_arg(argv[i + 1])
            if count < 1:
                raise CommandError(SYNTAX)
        elif opt == b"match":
            pattern = argv[i + 1]
        elif opt == b"type" and with_type:
            want_type = argv[i + 1].decode("utf-8", "replace").lower()
        else:
            raise CommandError(SYNTAX)
        i += 2
    return pattern, count, want_type


def scan_matcher(pattern: bytes | None, candidates) -> "Callable[[bytes], bool] | None":
    """The filter for a SCAN-family MATCH, or None when there is nothing to
    filter: no pattern, or the one-byte ``*`` (Redis's use_pattern), which
    also takes the empty key that stringmatchlen would not."""
    if pattern is None or pattern == b"*":
        return None
    return matcher_for(pattern, candidates)


def scan_step(collection, cursor: int, count: int) -> tuple[int, list[bytes]]:
    """One HSCAN/SSCAN step over a big aggregate: its scan index (built on
    first use, kept on ``collection.scan`` and maintained by the type) walked
    in Redis's reverse-binary cursor order, about ``count`` elements."""
    if collection.scan is None:
        collection.scan = _ScanIndex(collection)
    return collection.scan.step(cursor, count)


def random_element(collection) -> bytes:
    """A uniformly random member of a set or field of a hash: O(1) through its
    random pool (types/_pool.py; built on the first pick), as Redis's
    dictGetFairRandomKey."""
    return collection.random_pool().pick()


@command("scan", -2, "readonly", keys=(0, 0, 0), group="generic", since="2.8.0",
         acl="@keyspace @read @slow",
         summary="Incrementally iterate the keys space",
         synopsis="cursor [MATCH pattern] [COUNT count] [TYPE type]")
def cmd_scan(s, argv):
    cursor = scan_cursor(argv[1])
    pattern, count, want_type = scan_options(argv, 2, with_type=True)
    ks = s.core.keyspace
    db = s.db
    next_cursor, keys = db.scan(cursor, count)
    matches = scan_matcher(pattern, keys)
    out = []
    for key in keys:
        if matches is not None and not matches(key):
            continue
        if ks.expire_if_needed(db, key):
            continue
        if want_type is not None and type_name(db.data.get(key)) != want_type:
            continue
        out.append(key)
    return [b"%d" % next_cursor, out]


@command("randomkey", 1, "readonly", group="generic", acl="@keyspace @read @slow",
         summary="Return a random key from the keyspace", synopsis="")
def cmd_randomkey(s, argv):
    return s.core.keyspace.random_key(s.db)


# --- expiry ----------------------------------------------------------------

def _expire(s, argv, unit_ms: int, relative: bool, name: str):
    key = argv[1]
    nx = xx = gt = lt = False
    for raw in argv[3:]:
        opt = raw.upper()
        if opt == b"NX":
            nx = True
        elif opt == b"XX":
            xx = True
        elif opt == b"GT":
            gt = True
        elif opt == b"LT":
            lt = True
        else:
            raise CommandError(f"ERR Unsupported option {raw.decode('utf-8', 'replace')}")
    if nx and (xx or gt or lt):
        raise CommandError("ERR NX and XX, GT or LT options at the same time are not compatible")
    if gt and lt:
        raise CommandError("ERR GT and LT options at the same time are not compatible")
    value = parse_int(argv[2])  # after the options, as Redis checks them
    if value is None:
        raise CommandError(NOT_INTEGER)
    ks = s.core.keyspace
    # Overflow checks in the order Redis makes them (LLONG_MIN / 1000 in C
    # truncates towards zero, hence not INT64_MIN // 1000).
    if unit_ms == 1000 and not (-(INT64_MAX // 1000) <= value <= INT64_MAX // 1000):
        raise CommandError(INVALID_EXPIRE.format(name))
    when = value * unit_ms
    if relative:
        when += ks.clock()
        if when > INT64_MAX or when < INT64_MIN:
            raise CommandError(INVALID_EXPIRE.format(name))
    db = s.db
    if ks.lookup(db, key) is None:
        return 0
    current = db.expires.get(key)
    if nx and current is not None:
        return 0
    if xx and current is None:
        return 0
    if gt and (current is None or when <= current):
        return 0
    if lt and current is not None and when >= current:
        return 0
    if when <= ks.clock() and ks.expiry_enabled:
        db.remove(key)
        s.log([b"DEL", key])
        s.core.notify(GENERIC, b"del", s.db_index, key)
        return 1
    db.set_expire(key, when)
    s.log([b"PEXPIREAT", key, b"%d" % when])
    s.core.notify(GENERIC, b"expire", s.db_index, key)
    return 1


_EXPIRE_SYNOPSIS = "key {} [NX | XX | GT | LT]"


@command("expire", -3, "write fast", keys=(1, 1, 1), group="generic",
         acl="@keyspace @write @fast",
         summary="Set a key's time to live in seconds", synopsis=_EXPIRE_SYNOPSIS.format("seconds"))
def cmd_expire(s, argv):
    return _expire(s, argv, 1000, True, "expire")


@command("pexpire", -3, "write fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         acl="@keyspace @write @fast",
         summary="Set a key's time to live in milliseconds",
         synopsis=_EXPIRE_SYNOPSIS.format("milliseconds"))
def cmd_pexpire(s, argv):
    return _expire(s, argv, 1, True, "pexpire")


@command("expireat", -3, "write fast", keys=(1, 1, 1), group="generic", since="1.2.0",
         acl="@keyspace @write @fast",
         summary="Set the expiration for a key as a UNIX timestamp",
         synopsis=_EXPIRE_SYNOPSIS.format("unix-time-seconds"))
def cmd_expireat(s, argv):
    return _expire(s, argv, 1000, False, "expireat")


@command("pexpireat", -3, "write fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         acl="@keyspace @write @fast",
         summary="Set the expiration for a key as a UNIX timestamp specified in milliseconds",
         synopsis=_EXPIRE_SYNOPSIS.format("unix-time-milliseconds"))
def cmd_pexpireat(s, argv):
    return _expire(s, argv, 1, False, "pexpireat")


def _ttl(s, key: bytes, relative: bool, unit_ms: int) -> int:
    ks = s.core.keyspace
    if ks.lookup_read(s.db, key) is None:
        return -2
    when = s.db.expires.get(key)
    if when is None:
        return -1
    # Seconds are rounded to the nearest, for EXPIRETIME as for TTL.
    remaining = when if not relative else max(when - ks.clock(), 0)
    return (remaining + 500) // 1000 if unit_ms == 1000 else remaining


@command("ttl", 2, "readonly fast", keys=(1, 1, 1), group="generic",
         acl="@keyspace @read @fast",
         summary="Get the time to live for a key in seconds", synopsis="key")
def cmd_ttl(s, argv):
    return _ttl(s, argv[1], True, 1000)


@command("pttl", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="2.6.0",
         acl="@keyspace @read @fast",
         summary="Get the time to live for a key in milliseconds", synopsis="key")
def cmd_pttl(s, argv):
    return _ttl(s, argv[1], True, 1)


@command("expiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="7.0.0",
         acl="@keyspace @read @fast",
         summary="Get the expiration Unix timestamp for a key", synopsis="key")
def cmd_expiretime(s, argv):
    return _ttl(s, argv[1], False, 1000)


@command("pexpiretime", 2, "readonly fast", keys=(1, 1, 1), group="generic", since="7.0.0",
         acl="@keyspace @read @fast",
         summary="Get the expiration Unix timestamp for a key in milliseconds", synopsis="key")
def cmd_pexpiretime(s, argv):
    return _ttl(s, argv[1], False, 1)


@command("persist", 2, "write fast", keys=(1, 1, 1), group="generic", since="2.2.0",
         acl="@keyspace @write @fast",
         summary="Remove the expiration from a key", synopsis="key")
def cmd_persist(s, argv):
    if s.core.keyspace.lookup(s.db, argv[1]) is None:
        return 0
    if s.db.persist(argv[1]):
        s.log([b"PERSIST", argv[1]])
        s.core.notify(GENERIC, b"persist", s.db_index, argv[1])
        return 1
    return 0
