"""String commands: SET and friends, counters, ranges.

Each write logs its *effect* so replay is deterministic whatever the clock
says then: relative TTLs become ``PXAT`` / ``PEXPIREAT``, ``INCRBYFLOAT``
becomes ``SET ... KEEPTTL`` with the exact result, ``GETSET``/``GETDEL`` become
``SET``/``DEL``, and a conditional write that did nothing logs nothing.
"""

from __future__ import annotations

from ..errors import (INVALID_EXPIRE, NOT_FLOAT, NOT_INTEGER, OVERFLOW, SYNTAX,
                      WRONGTYPE, CommandError)
from ..numbers import (INT64_MAX, INT64_MIN, format_long_double, ld_add,
                       parse_int, parse_long_double)
from ..notify import GENERIC, STRING as NOTIFY_STRING
from ..protocol import OK
from ..types import STRING
from . import command

_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"


def get_string(s, key: bytes) -> bytes | None:
    """The string at ``key`` or None, for a command that writes it (WRONGTYPE
    from the keyspace's typed accessor if it holds another kind)."""
    return s.core.keyspace.write(s.db, key, STRING)


def read_string(s, key: bytes) -> bytes | None:
    """The string at ``key`` or None, for read commands (counts hits and misses)."""
    return s.core.keyspace.read_counted(s.db, key, STRING)


def int_arg(arg: bytes) -> int:
    value = parse_int(arg)
    if value is None:
        raise CommandError(NOT_INTEGER)
    return value


def set_value(s, key: bytes, value: bytes, expire_at: int | None = None,
              keep_ttl: bool = False) -> None:
    """Store a string, clearing the TTL unless told to keep or set one."""
    db = s.db
    db.store(key, value)
    if expire_at is not None:
        db.set_expire(key, expire_at)
    elif not keep_ttl and db.expires:
        db.persist(key)


def store_plain(db, key: bytes, value: bytes) -> None:
    """The effect of ``SET key value`` (no options): store the string, drop any TTL.

    The one place that meaning is written: cmd_set's three-argument form,
    (which the dispatcher's fast lane runs) and WAL replay's plain-SET lane call it
    (a lazy expiry of the old value, which must be logged first, is the
    caller's business; replay has expiry off).
    """
    if db.expires:
        db.persist(key)
    db.store(key, value)


def expire_time_ms(s, arg: bytes, unit_ms: int, relative: bool, cmd: str) -> int:
    """Turn an EX/PX/EXAT/PXAT argument into absolute Unix ms, with Redis's checks."""
    value = parse_int(arg)
    if value is None:
        raise CommandError(NOT_INTEGER)
    if value <= 0 or (unit_ms == 1000 and value > INT64_MAX // 1000):
        raise CommandError(INVALID_EXPIRE.format(cmd))
    ms = value * unit_ms
    if relative:
        ms += s.core.keyspace.clock()
        if ms > INT64_MAX:
            raise CommandError(INVALID_EXPIRE.format(cmd))
    return ms


def _log_set(s, key: bytes, value: bytes, expire_at: int | None, keep_ttl: bool) -> None:
    """Log a SET's effect and publish its keyspace events (``set``, then ``expire``)."""
    if expire_at is not None:
        s.log([b"SET", key, value, b"PXAT", b"%d" % expire_at])
    elif keep_ttl:
        s.log([b"SET", key, value, b"KEEPTTL"])
    else:
        s.log([b"SET", key, value])
    notify = s.core.notify
    notify(NOTIFY_STRING, b"set", s.db_index, key)
    if expire_at is not None:
        notify(GENERIC, b"expire", s.db_index, key)


_EXPIRE_OPTS = {b"EX": (1000, True), b"PX": (1, True), b"EXAT": (1000, False), b"PXAT": (1, False)}


@command("set", -3, "write denyoom", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Set the string value of a key",
         synopsis="key value [NX | XX] [GET] [EX seconds | PX milliseconds | "
                  "EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]")
def cmd_set(s, argv):
    if len(argv) != 3:
        return _set_with_options(s, argv)
    # The common case, SET key value, in a small function: a call's cost
    # grows with the function's locals, and this is a tenth of a SET.
    key = argv[1]
    value = argv[2]
    db = s.db
    if db.expires:
        s.core.keyspace.lookup(db, key)  # a lazy expiry must be logged first
    store_plain(db, key, value)
    # s.log(), one frame less; the real name: argv[0] may be a rename-command alias.
    core = s.core
    core.log(s.db_index, [b"SET", key, value])
    if core.notify_flags:   # (core.notify's own test, without its call when off)
        core.notify(NOTIFY_STRING, b"set", s.db_index, key)
    return OK


def _set_with_options(s, argv):
    """SET key value with options (NX XX GET EX PX EXAT PXAT KEEPTTL)."""
    key, value = argv[1], argv[2]
    nx = xx = get = keep_ttl = False
    expire: tuple[bytes, int, bool] | None = None
    i = 3
    n = len(argv)
    while i < n:
        opt = argv[i].upper()
        nxt = argv[i + 1] if i + 1 < n else None
        if opt == b"NX" and not xx:
            nx = True
        elif opt == b"XX" and not nx:
            xx = True
        elif opt == b"GET":
            get = True
        elif opt == b"KEEPTTL" and expire is None:
            keep_ttl = True
        elif opt in _EXPIRE_OPTS and not keep_ttl and nxt is not None and (
                expire is None or expire[0] == opt):
            unit, relative = _EXPIRE_OPTS[opt]
            expire = (opt, unit, relative)
            expire_arg = nxt
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    expire_at = None
    if expire is not None:
        expire_at = expire_time_ms(s, expire_arg, expire[1], expire[2], "set")
    old = get_string(s, key) if get else s.core.keyspace.lookup(s.db, key)
    found = old is not None
    if (nx and found) or (xx and not found):
        return old if get else None
    set_value(s, key, value, expire_at, keep_ttl)
    _log_set(s, key, value, expire_at, keep_ttl)
    return old if get else OK


@command("setnx", 3, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Set the value of a key, only if the key does not exist", synopsis="key value")
def cmd_setnx(s, argv):
    if s.core.keyspace.lookup(s.db, argv[1]) is not None:
        return 0
    set_value(s, argv[1], argv[2])
    s.log([b"SET", argv[1], argv[2]])
    s.core.notify(NOTIFY_STRING, b"set", s.db_index, argv[1])
    return 1


def _setex(s, argv, unit_ms: int, name: str):
    key, seconds, value = argv[1], argv[2], argv[3]
    expire_at = expire_time_ms(s, seconds, unit_ms, True, name)
    s.core.keyspace.lookup(s.db, key)
    set_value(s, key, value, expire_at)
    _log_set(s, key, value, expire_at, False)
    return OK


@command("setex", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.0.0",
         summary="Set the value and expiration of a key", synopsis="key seconds value")
def cmd_setex(s, argv):
    return _setex(s, argv, 1000, "setex")


@command("psetex", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.6.0",
         summary="Set the value and expiration in milliseconds of a key",
         synopsis="key milliseconds value")
def cmd_psetex(s, argv):
    return _setex(s, argv, 1, "psetex")


@command("get", 2, "readonly fast", keys=(1, 1, 1), group="string",
         summary="Get the value of a key", synopsis="key")
def cmd_get(s, argv):
    # read_string() inlined (GET is the hottest command): one frame, the
    # keyspace's typed accessor.
    return s.core.keyspace.read_counted(s.db, argv[1], STRING)


@command("getset", 3, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Set the string value of a key and return its old value", synopsis="key value")
def cmd_getset(s, argv):
    old = get_string(s, argv[1])
    set_value(s, argv[1], argv[2])
    s.log([b"SET", argv[1], argv[2]])
    s.core.notify(NOTIFY_STRING, b"set", s.db_index, argv[1])
    return old


@command("getdel", 2, "write fast", keys=(1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and delete the key", synopsis="key")
def cmd_getdel(s, argv):
    old = read_string(s, argv[1])   # Redis reads it as GET does: a counted read
    if old is not None:
        s.db.remove(argv[1])
        s.log([b"DEL", argv[1]])
        s.core.notify(GENERIC, b"del", s.db_index, argv[1])
    return old


@command("getex", -2, "write fast", keys=(1, 1, 1), group="string", since="6.2.0",
         summary="Get the value of a key and optionally set its expiration",
         synopsis="key [EX seconds | PX milliseconds | EXAT unix-time-seconds | "
                  "PXAT unix-time-milliseconds | PERSIST]")
def cmd_getex(s, argv):
    key = argv[1]
    expire = None
    persist = False
    i, n = 2, len(argv)
    while i < n:
        opt = argv[i].upper()
        nxt = argv[i + 1] if i + 1 < n else None
        if opt == b"PERSIST" and expire is None:
            persist = True
        elif opt in _EXPIRE_OPTS and not persist and nxt is not None and (
                expire is None or expire[0] == opt):
            expire = (opt,) + _EXPIRE_OPTS[opt]
            expire_arg = nxt
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    # Redis looks the key up before it checks the time: a missing key is
    # a null reply even with a bad time.
    value = read_string(s, key)
    if value is None:
        return None
    expire_at = None
    if expire is not None:
        expire_at = expire_time_ms(s, expire_arg, expire[1], expire[2], "getex")
    db = s.db
    if expire_at is not None:
        if expire_at <= s.core.keyspace.clock():
            db.remove(key)
            s.log([b"DEL", key])
            s.core.notify(GENERIC, b"del", s.db_index, key)
        else:
            db.set_expire(key, expire_at)
            s.log([b"PEXPIREAT", key, b"%d" % expire_at])
            s.core.notify(GENERIC, b"expire", s.db_index, key)
    elif persist and db.persist(key):
        s.log([b"PERSIST", key])
        s.core.notify(GENERIC, b"persist", s.db_index, key)
    return value


@command("mget", -2, "readonly fast", keys=(1, -1, 1), group="string",
         summary="Get the values of all the given keys", synopsis="key [key ...]")
def cmd_mget(s, argv):
    ks = s.core.keyspace
    db = s.db
    out = []
    for key in argv[1:]:
        value = ks.lookup_read(db, key)
        out.append(value if type(value) is bytes else None)
    return out


def _check_pairs(argv, name: str) -> None:
    if len(argv) % 2 == 0:
        raise CommandError(f"ERR wrong number of arguments for '{name}' command")


@command("mset", -3, "write denyoom", keys=(1, -1, 2), group="string", since="1.0.1",
         summary="Set multiple keys to multiple values", synopsis="key value [key value ...]")
def cmd_mset(s, argv):
    _check_pairs(argv, "mset")
    notify = s.core.notify
    for i in range(1, len(argv), 2):
        s.core.keyspace.lookup(s.db, argv[i])
        set_value(s, argv[i], argv[i + 1])
        # Key by key, after its "new" (as Redis); the events wait for the
        # unit's record all the same (the dispatcher runs MSET in a unit).
        notify(NOTIFY_STRING, b"set", s.db_index, argv[i])
    s.log([b"MSET"] + argv[1:])
    return OK


@command("msetnx", -3, "write denyoom", keys=(1, -1, 2), group="string", since="1.0.1",
         summary="Set multiple keys to multiple values, only if none of the keys exist",
         synopsis="key value [key value ...]")
def cmd_msetnx(s, argv):
    _check_pairs(argv, "msetnx")
    ks = s.core.keyspace
    for i in range(1, len(argv), 2):
        if ks.lookup(s.db, argv[i]) is not None:
            return 0
    notify = s.core.notify
    for i in range(1, len(argv), 2):
        set_value(s, argv[i], argv[i + 1])
        notify(NOTIFY_STRING, b"set", s.db_index, argv[i])   # (as MSET)
    s.log([b"MSET"] + argv[1:])
    return 1


@command("incr", 2, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Increment the integer value of a key by one", synopsis="key")
def cmd_incr(s, argv, delta: int = 1) -> int:
    """INCR; with ``delta``, DECR, INCRBY and DECRBY: the one place their meaning is written.

    get_string() inlined (INCR is among the commands most requests are, and
    the frames it saves are a tenth of its cost): lazy expiry, type check.
    """
    key = argv[1]
    db = s.db
    if db.expires and key in db.expires:
        s.core.keyspace.expire_if_needed(db, key)
    old = db.data.get(key)
    if old is None:
        current = 0
    elif type(old) is bytes:
        current = parse_int(old)
        if current is None:
            raise CommandError(NOT_INTEGER)
    else:
        raise CommandError(WRONGTYPE)
    new = current + delta
    if not INT64_MIN <= new <= INT64_MAX:
        raise CommandError(OVERFLOW)
    db.store(key, b"%d" % new)  # keeps the TTL, as INCR does
    # s.log(), one frame less; the real name, whatever argv[0] the client used.
    core = s.core
    core.log(s.db_index, [b"INCRBY", key, b"1" if delta == 1 else b"%d" % delta])
    if core.notify_flags:   # (core.notify's own test, without its call when off)
        core.notify(NOTIFY_STRING, b"incrby", s.db_index, key)
    return new


@command("decr", 2, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Decrement the integer value of a key by one", synopsis="key")
def cmd_decr(s, argv):
    return cmd_incr(s, argv, -1)


@command("incrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Increment the integer value of a key by the given amount",
         synopsis="key increment")
def cmd_incrby(s, argv):
    return cmd_incr(s, argv, int_arg(argv[2]))


@command("decrby", 3, "write denyoom fast", keys=(1, 1, 1), group="string",
         summary="Decrement the integer value of a key by the given number",
         synopsis="key decrement")
def cmd_decrby(s, argv):
    delta = int_arg(argv[2])
    if delta == INT64_MIN:
        raise CommandError("ERR decrement would overflow")
    return cmd_incr(s, argv, -delta)


@command("incrbyfloat", 3, "write denyoom fast", keys=(1, 1, 1), group="string",
         since="2.6.0", summary="Increment the float value of a key by the given amount",
         synopsis="key increment")
def cmd_incrbyfloat(s, argv):
    key = argv[1]
    old = get_string(s, key)
    current = parse_long_double(old) if old is not None else 0
    if current is None:
        raise CommandError(NOT_FLOAT)
    incr = parse_long_double(argv[2])
    if incr is None:
        raise CommandError(NOT_FLOAT)
    result = ld_add(current, incr)
    if isinstance(result, float):
        raise CommandError("ERR increment would produce NaN or Infinity")
    text = format_long_double(result)
    s.db.store(key, text)
    s.log([b"SET", key, text, b"KEEPTTL"])
    s.core.notify(NOTIFY_STRING, b"incrbyfloat", s.db_index, key)
    return text


@command("append", 3, "write denyoom fast", keys=(1, 1, 1), group="string", since="2.0.0",
         summary="Append a value to a key", synopsis="key value")
def cmd_append(s, argv):
    key, extra = argv[1], argv[2]
    old = get_string(s, key)
    if old is None:
        new = extra
    else:
        if len(old) + len(extra) > s.core.config.proto_max_bulk_len:
            raise CommandError(_TOO_BIG)
        new = old + extra
    s.db.store(key, new)
    s.log([b"APPEND", key, extra])
    s.core.notify(NOTIFY_STRING, b"append", s.db_index, key)
    return len(new)


@command("strlen", 2, "readonly fast", keys=(1, 1, 1), group="string", since="2.2.0",
         summary="Get the length of the value stored in a key", synopsis="key")
def cmd_strlen(s, argv):
    value = read_string(s, argv[1])   # a counted read (hits/misses, keymiss), as Redis
    return 0 if value is None else len(value)


def _getrange(s, argv):
    start, end = int_arg(argv[2]), int_arg(argv[3])
    value = read_string(s, argv[1])
    if value is None:
        return b""
    size = len(value)
    if start < 0 and end < 0 and start > end:
        return b""
    if start < 0:
        start = max(size + start, 0)
    if end < 0:
        end = max(size + end, 0)
    if end >= size:
        end = size - 1
    if start > end or size == 0:
        return b""
    return value[start:end + 1]


@command("getrange", 4, "readonly", keys=(1, 1, 1), group="string", since="2.4.0",
         summary="Get a substring of the string stored at a key", synopsis="key start end")
def cmd_getrange(s, argv):
    return _getrange(s, argv)


@command("substr", 4, "readonly", keys=(1, 1, 1), group="string", since="1.0.0",
         summary="Get a substring of the string stored at a key", synopsis="key start end")
def cmd_substr(s, argv):
    return _getrange(s, argv)


@command("setrange", 4, "write denyoom", keys=(1, 1, 1), group="string", since="2.2.0",
         summary="Overwrite part of a string at key starting at the specified offset",
         synopsis="key offset value")
def cmd_setrange(s, argv):
    key, patch = argv[1], argv[3]
    offset = int_arg(argv[2])
    if offset < 0:
        raise CommandError("ERR offset is out of range")
    old = get_string(s, key)
    if old is None:
        if not patch:
            return 0
        old = b""
    elif not patch:
        return len(old)
    if offset + len(patch) > s.core.config.proto_max_bulk_len:
        raise CommandError(_TOO_BIG)
    if len(old) < offset:
        old = old + b"\x00" * (offset - len(old))
    new = old[:offset] + patch + old[offset + len(patch):]
    s.db.store(key, new)
    s.log([b"SETRANGE", key, argv[2], patch])
    s.core.notify(NOTIFY_STRING, b"setrange", s.db_index, key)
    return len(new)


# --- LCS ----------------------------------------------------------------------
# Redis fills an (n+1) x (m+1) table of uint32 lengths and refuses when that
# table would exceed proto-max-bulk-len (at 512 MB: 134,217,728 cells). We
# keep that limit and its error, but not the table: each row of it is held
# as one m-bit integer whose set bits mark where the row's LCS length steps
# up (the bit-parallel LCS of Allison-Dix / Hyyro), so a row costs a few
# big-integer operations in C instead of m Python steps, and the rows take
# 1/32 of Redis's memory. The walk back reads the same decisions from those
# bits that Redis reads from its table, and skips each run of steps along a
# row with one operation, so replies are identical. Measured at the limit
# (see the branch report): about 0.2 s for the worst shapes.

#: Bytes per table cell in Redis's LCS (uint32): the table it would allocate,
#: (len1 + 1) * (len2 + 1) * LCS_CELL_BYTES, must fit in proto-max-bulk-len.
LCS_CELL_BYTES = 4
#: Redis's check against uint32 truncation of the lengths.
LCS_MAX_LEN = 0xFFFFFFFF - 1


def _lcs_rows(x: bytes, y: bytes) -> tuple[list[int], dict[int, int]]:
    """The LCS table of x (rows) against y, one integer per row.

    Row ``i``'s bit ``k`` is set iff LCS(x[:i], y[:k+1]) = LCS(x[:i], y[:k]) + 1,
    so LCS(x[:i], y[:j]) is the number of set bits below bit j. Also returns,
    per byte of x, the mask of its positions in y.
    """
    m = len(y)
    full = (1 << m) - 1
    backwards = y[::-1]  # int(..., 2) reads the first digit as the top bit
    table = bytearray(b"0" * 256)
    where: dict[int, int] = {}
    for c in set(x):
        table[c] = 0x31
        where[c] = int(backwards.translate(table), 2)
        table[c] = 0x30
    rows = [0]
    v = full  # Hyyro's vector: the zero bits are the row's steps
    for c in x:
        u = v & where[c]
        v = ((v + u) | (v - u)) & full
        rows.append(v ^ full)
    return rows, where


def lcs_matches(a: bytes, b: bytes, min_len: int, with_len: bool) -> tuple[bytes, list]:
    """The LCS of a and b, and its IDX ranges, exactly as Redis's lcsCommand walks its table.

    Redis walks from (len(a), len(b)) back: on equal bytes it takes the byte
    and steps both; otherwise it steps a back if LCS(i-1, j) > LCS(i, j-1),
    else b. A run of matching steps is a range; ranges shorter than
    ``min_len`` (when it is not 0) are left out.
    """
    transposed = len(a) > len(b)
    # Rows run over the shorter string, so the Python-level work is per
    # byte of the shorter one.
    x, y = (b, a) if transposed else (a, b)
    rows, where = _lcs_rows(x, y)
    r, c = len(x), len(y)
    taken: list[int] = []
    ranges: list = []
    open_range = False
    a_start = a_end = b_start = b_end = 0

    def close() -> None:
        nonlocal open_range
        length = a_end - a_start + 1
        if min_len == 0 or length >= min_len:
            item = [[a_start, a_end], [b_start, b_end]]
            if with_len:
                item.append(length)
            ranges.append(item)
        open_range = False

    while r > 0 and c > 0:
        row = rows[r]
        same = where[x[r - 1]]
        # Where do the steps along y stop, from column c down? At a match,
        # or where Redis would step x back instead.
        if not transposed:
            # Unequal bytes step a (= x) back iff the row steps up at j: then
            # LCS(i, j-1) < LCS(i, j) = LCS(i-1, j).
            stop = ((same | row) & ((1 << c) - 1)).bit_length()
        else:
            # Here x is b: Redis steps b back (x, a row) unless the column
            # above steps up, i.e. unless LCS(i'-1, j') < LCS(i', j'). That
            # difference is 1 exactly when the highest bit below j' where
            # this row and the one above differ is set in this row (their
            # prefix counts differ by 0 or 1 and alternate at those bits).
            # Then the run goes down to that bit's column p+1, which is a
            # match: only a match steps this row up where the row above
            # does not, with equal counts before it.
            below = (row ^ rows[r - 1]) & ((1 << c) - 1)
            p = below.bit_length() - 1
            if p >= 0 and (row >> p) & 1:
                stop = (same & ((1 << c) - (1 << p))).bit_length()
            else:
                stop = c
        if stop < c:
            if open_range:
                close()
            c = stop
            if c == 0:
                break
        byte = x[r - 1]
        if byte == y[c - 1]:
            taken.append(byte)
            i, j = (c, r) if transposed else (r, c)
            if not open_range:
                open_range = True
                a_start = a_end = i - 1
                b_start = b_end = j - 1
            elif a_start == i and b_start == j:
                a_start -= 1
                b_start -= 1
            else:
                close()
            if open_range and (a_start == 0 or b_start == 0):
                close()
            r -= 1
            c -= 1
        else:
            r -= 1
            if open_range:
                close()
    taken.reverse()
    return bytes(taken), ranges


@command("lcs", -3, "readonly", keys=(1, 2, 1), group="string", since="7.0.0",
         summary="Find longest common substring",
         synopsis="key1:key key2:key [LEN] [IDX] [MINMATCHLEN len:integer] [WITHMATCHLEN]")
def cmd_lcs(s, argv):
    ks = s.core.keyspace
    a = ks.lookup_read(s.db, argv[1])
    b = ks.lookup_read(s.db, argv[2])
    if (a is not None and type(a) is not bytes) or (b is not None and type(b) is not bytes):
        raise CommandError("ERR The specified keys must contain string values")
    a = a or b""
    b = b or b""
    get_len = get_idx = with_len = False
    min_len = 0
    i, n = 3, len(argv)
    while i < n:
        opt = argv[i].split(b"\0", 1)[0].lower()  # strcasecmp: a C string
        if opt == b"idx":
            get_idx = True
        elif opt == b"len":
            get_len = True
        elif opt == b"withmatchlen":
            with_len = True
        elif opt == b"minmatchlen" and i + 1 < n:
            min_len = max(int_arg(argv[i + 1]), 0)
            i += 1
        else:
            raise CommandError(SYNTAX)
        i += 1
    if get_len and get_idx:
        raise CommandError("ERR If you want both the length and indexes, please just use IDX.")
    if len(a) >= LCS_MAX_LEN or len(b) >= LCS_MAX_LEN:
        raise CommandError("ERR String too long for LCS")
    if (len(a) + 1) * (len(b) + 1) * LCS_CELL_BYTES > s.core.config.proto_max_bulk_len:
        raise CommandError("ERR Insufficient memory, transient memory for LCS exceeds "
                           "proto-max-bulk-len")
    if get_len and not get_idx:
        x, y = (b, a) if len(a) > len(b) else (a, b)
        return _lcs_rows(x, y)[0][-1].bit_count()
    common, ranges = lcs_matches(a, b, min_len, with_len)
    if get_idx:
        return {b"matches": ranges, b"len": len(common)}
    return common
