"""Hash commands: HSET HSETNX HGET HMGET HMSET HDEL HEXISTS HLEN HSTRLEN HKEYS
HVALS HGETALL HINCRBY HINCRBYFLOAT HRANDFIELD HSCAN.

Values are :class:`~kvserver.types.hash.Hash` (``types/hash.py``), reached
only through the keyspace's typed accessors: ``read_counted`` for reads,
``mutate`` for writes (WRONGTYPE, the running checkpoint's pre-image, the
key deleted when its last field goes, ``modified``). Inside ``mutate`` a
hash changes only through ``Hash.put`` / ``Hash.drop``. Replies and errors
follow Redis 7.0.15's ``t_hash.c``, including its order of checks (HINCRBY
parses its increment before it looks at the key; HRANDFIELD checks its
arguments before the key; HSCAN answers a missing key before it reads its
options).

What each write logs, always under the real command name:

* HSET / HMSET log ``HSET key field value ...`` (their arguments: given the
  hash before, deterministic); HSETNX logs ``HSET key field value`` when it
  set the field, nothing when the field was there;
* HDEL logs ``HDEL key field ...`` with only the fields it deleted, nothing
  when it deleted none;
* HINCRBY logs ``HSET key field result`` and HINCRBYFLOAT ``HSET key field
  result`` with the exact text it stored (replay needs no float arithmetic);
* HRANDFIELD and HSCAN are reads: their randomness and cursors are never
  logged. HRANDFIELD draws through the hash's random pool (``Hash.pool``,
  types/_pool.py, built on the first pick): O(1) for one field, O(count)
  with a count, as Redis's.
"""

from __future__ import annotations


from ..notify import GENERIC, HASH as NOTIFY_HASH
from ..errors import NOT_FLOAT, NOT_INTEGER, OVERFLOW, SYNTAX, CommandError
from ..numbers import (INT64_MAX, INT64_MIN, format_long_double, ld_add, parse_int,
                       parse_long_double)
from ..protocol import OK
from ..types.hash import HASH
from . import command
from .keys import random_element, scan_cursor, scan_matcher, scan_options, scan_step
from .strings import int_arg

_HASH_NOT_INT = "ERR hash value is not an integer"
_HASH_NOT_FLOAT = "ERR hash value is not a float"
_NAN_OR_INF = "ERR value is NaN or Infinity"
_RESULT_NAN_OR_INF = "ERR increment would produce NaN or Infinity"
_LONG_MAX = INT64_MAX
_RANGE_ERR = ("ERR value is out of range, value must between -9223372036854775807 "
              "and 9223372036854775807")
_WITHVALUES_RANGE_ERR = "ERR value is out of range"

#: The most fields HRANDFIELD with a negative count returns. Redis has no
#: such limit (it streams the reply until the client's output buffer limit
#: drops it); a reply here is built before it is sent, so it is bounded.
MAX_RANDFIELD_REPEATS = 1 << 22
_REPEATS_ERR = f"ERR count is out of range (at most {MAX_RANDFIELD_REPEATS} repeated fields)"


def _read(s, key: bytes):
    return s.core.keyspace.read_counted(s.db, key, HASH)


def _check(s, key: bytes):
    """The hash at ``key`` or None, for a write that validates before it changes
    anything (so a refused or no-op write signals no ``modified``)."""
    return s.core.keyspace.write(s.db, key, HASH)


def _mutate(s, key: bytes):
    return s.core.keyspace.mutate(s.db, key, HASH)


def _wrong_args(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")


def _hset(s, argv, name: bytes):
    if len(argv) % 2:
        raise _wrong_args(name.decode().lower())
    key = argv[1]
    added = 0
    with _mutate(s, key) as h:
        for i in range(2, len(argv), 2):
            added += h.put(argv[i], argv[i + 1])
    s.log([name, key, *argv[2:]])
    s.core.notify(NOTIFY_HASH, b"hset", s.db_index, key)
    return added


@command("hset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Set the string value of a hash field",
         synopsis="key field value [field value ...]")
def cmd_hset(s, argv):
    return _hset(s, argv, b"HSET")


@command("hmset", -4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Set multiple hash fields to multiple values",
         synopsis="key field value [field value ...]")
def cmd_hmset(s, argv):
    _hset(s, argv, b"HMSET")
    return OK


@command("hsetnx", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Set the value of a hash field, only if the field does not exist",
         synopsis="key field value")
def cmd_hsetnx(s, argv):
    key, field, value = argv[1], argv[2], argv[3]
    h = _check(s, key)
    if h is not None and field in h:
        return 0
    with _mutate(s, key) as h:
        h.put(field, value)
    s.log([b"HSET", key, field, value])
    s.core.notify(NOTIFY_HASH, b"hset", s.db_index, key)
    return 1


@command("hget", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get the value of a hash field", synopsis="key field")
def cmd_hget(s, argv):
    h = _read(s, argv[1])
    return None if h is None else h.get(argv[2])


@command("hmget", -3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get the values of all the given hash fields", synopsis="key field [field ...]")
def cmd_hmget(s, argv):
    h = _read(s, argv[1])
    if h is None:
        return [None] * (len(argv) - 2)
    get = h.get
    return [get(field) for field in argv[2:]]


@command("hdel", -3, "write fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Delete one or more hash fields", synopsis="key field [field ...]")
def cmd_hdel(s, argv):
    key = argv[1]
    h = _check(s, key)
    if h is None or not any(field in h for field in argv[2:]):
        return 0
    deleted = []
    with _mutate(s, key) as h:
        for field in argv[2:]:
            if h.drop(field):
                deleted.append(field)
    s.log([b"HDEL", key, *deleted])
    if s.core.notify_flags:
        s.core.notify(NOTIFY_HASH, b"hdel", s.db_index, key)
        if key not in s.db.data:   # its last field went: the key is gone
            s.core.notify(GENERIC, b"del", s.db_index, key)
    return len(deleted)


@command("hexists", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Determine if a hash field exists", synopsis="key field")
def cmd_hexists(s, argv):
    h = _read(s, argv[1])
    return int(h is not None and argv[2] in h)


@command("hlen", 2, "readonly fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get the number of fields in a hash", synopsis="key")
def cmd_hlen(s, argv):
    h = _read(s, argv[1])
    return 0 if h is None else len(h)


@command("hstrlen", 3, "readonly fast", keys=(1, 1, 1), group="hash", since="3.2.0",
         summary="Get the length of the value of a hash field", synopsis="key field")
def cmd_hstrlen(s, argv):
    h = _read(s, argv[1])
    value = None if h is None else h.get(argv[2])
    return 0 if value is None else len(value)


@command("hkeys", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the fields in a hash", synopsis="key")
def cmd_hkeys(s, argv):
    h = _read(s, argv[1])
    return [] if h is None else list(h)


@command("hvals", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the values in a hash", synopsis="key")
def cmd_hvals(s, argv):
    h = _read(s, argv[1])
    return [] if h is None else list(h.values())


@command("hgetall", 2, "readonly", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Get all the fields and values in a hash", synopsis="key")
def cmd_hgetall(s, argv):
    h = _read(s, argv[1])
    return {} if h is None else dict(h)  # a map in RESP3, a flat array in RESP2


@command("hincrby", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.0.0",
         summary="Increment the integer value of a hash field by the given number",
         synopsis="key field increment")
def cmd_hincrby(s, argv):
    key, field = argv[1], argv[2]
    incr = int_arg(argv[3])
    h = _check(s, key)
    old = None if h is None else h.get(field)
    current = 0 if old is None else parse_int(old)
    if current is None:
        raise CommandError(_HASH_NOT_INT)
    result = current + incr
    if not INT64_MIN <= result <= INT64_MAX:
        raise CommandError(OVERFLOW)
    text = b"%d" % result
    with _mutate(s, key) as h:
        h.put(field, text)
    s.log([b"HSET", key, field, text])
    s.core.notify(NOTIFY_HASH, b"hincrby", s.db_index, key)
    return result


@command("hincrbyfloat", 4, "write denyoom fast", keys=(1, 1, 1), group="hash", since="2.6.0",
         summary="Increment the float value of a hash field by the given amount",
         synopsis="key field increment:double")
def cmd_hincrbyfloat(s, argv):
    key, field = argv[1], argv[2]
    incr = parse_long_double(argv[3])
    if incr is None:
        raise CommandError(NOT_FLOAT)
    if isinstance(incr, float):  # only +/-inf comes back as a float
        raise CommandError(_NAN_OR_INF)
    h = _check(s, key)
    old = None if h is None else h.get(field)
    current = 0 if old is None else parse_long_double(old)
    if current is None:
        raise CommandError(_HASH_NOT_FLOAT)
    result = ld_add(current, incr)
    if isinstance(result, float):
        raise CommandError(_RESULT_NAN_OR_INF)
    text = format_long_double(result)
    with _mutate(s, key) as h:
        h.put(field, text)
    s.log([b"HSET", key, field, text])
    s.core.notify(NOTIFY_HASH, b"hincrbyfloat", s.db_index, key)
    return text


@command("hrandfield", -2, "readonly", keys=(1, 1, 1), group="hash", since="6.2.0",
         summary="Get one or multiple random fields from a hash",
         synopsis="key [count [WITHVALUES]]")
def cmd_hrandfield(s, argv):
    if len(argv) == 2:
        h = _read(s, argv[1])
        return None if h is None else random_element(h)
    count = parse_int(argv[2])
    if count is None:
        raise CommandError(NOT_INTEGER)
    if count < -_LONG_MAX:
        raise CommandError(_RANGE_ERR)
    if len(argv) > 4 or (len(argv) == 4 and argv[3].split(b"\0", 1)[0].lower() != b"withvalues"):
        raise CommandError(SYNTAX)
    withvalues = len(argv) == 4
    if withvalues and not -(_LONG_MAX // 2) <= count <= _LONG_MAX // 2:
        raise CommandError(_WITHVALUES_RANGE_ERR)
    h = _read(s, argv[1])
    if h is None or count == 0:
        return []
    if -count > MAX_RANDFIELD_REPEATS:
        raise CommandError(_REPEATS_ERR)
    if count < 0:
        # Repeats allowed: -count independent draws (bounded by the reply
        # itself, as in Redis).
        fields = h.random_pool().choices(-count)
    elif count >= len(h):
        fields = list(h)
    else:
        fields = h.random_pool().sample(count)
    if not withvalues:
        return fields
    if s.resp >= 3:
        return [[f, h[f]] for f in fields]
    out = []
    for f in fields:
        out += (f, h[f])
    return out


@command("hscan", -3, "readonly", keys=(1, 1, 1), group="hash", since="2.8.0",
         summary="Incrementally iterate hash fields and associated values",
         synopsis="key cursor [MATCH pattern] [COUNT count]")
def cmd_hscan(s, argv):
    cursor = scan_cursor(argv[2])
    h = _read(s, argv[1])
    if h is None:
        return [b"0", []]
    pattern, count, _type = scan_options(argv, 3)
    if not h.big:
        # A listpack hash (at most 128 small fields) is answered whole, cursor 0.
        next_cursor, fields = 0, list(h)
    else:
        next_cursor, fields = scan_step(h, cursor, count)
    matches = scan_matcher(pattern, fields)
    out = []
    for f in fields:
        if matches is None or matches(f):
            out += (f, h[f])
    return [b"%d" % next_cursor, out]
