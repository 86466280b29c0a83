"""Set commands: SADD SREM SCARD SISMEMBER SMISMEMBER SMEMBERS SPOP SRANDMEMBER
SMOVE SINTER SINTERCARD SINTERSTORE SUNION SUNIONSTORE SDIFF SDIFFSTORE SSCAN.

Values are :class:`~kvserver.types.set.Set` (``types/set.py``), reached only
through the keyspace's typed accessors: ``read_counted`` for reads, ``write``
to validate before a write, ``mutate`` to change a set in place (WRONGTYPE,
the running checkpoint's pre-image, the key deleted when its last member
goes, ``modified``). Replies and errors follow Redis 7.0.15's ``t_set.c``,
including its order of checks (SPOP and SRANDMEMBER parse their count before
they look at the key; SMOVE answers 0 for a missing source before it checks
the destination's type; the multi-key commands type-check every key).
RESP3 shapes as Redis: SMEMBERS, SINTER, SUNION, SDIFF and SPOP with a count
reply a set (``~``), SRANDMEMBER with a count an array.

What each write logs, always under the real command name:

* SADD logs ``SADD key member ...`` with only the members it added, SREM
  ``SREM key member ...`` with only those it removed; nothing when none;
* SPOP logs ``SREM key member ...`` with the members it removed (the random
  choice is never replayed); SRANDMEMBER and SSCAN log nothing;
* SMOVE logs ``SREM src member`` and ``SADD dst member`` (one execution
  unit, so one WAL record);
* SINTERSTORE / SUNIONSTORE / SDIFFSTORE log the resulting set: ``DEL dst``
  then ``SADD dst member ...``, or only ``DEL dst`` when the result is empty
  (and nothing when it is empty and dst did not exist).

Costs: SINTER walks its smallest set and probes the others; SINTERCARD's
LIMIT stops that walk early; SUNION and SDIFF are linear in the members they
read. SPOP and SRANDMEMBER draw from the set's random pool (``Set.pool``,
types/_pool.py: the members in a list, built on the first random pick and
then maintained by SADD/SREM in O(1)), so one random member costs O(1) and
``count`` of them O(count), as Redis's. Python's ``set.pop()`` would be O(1),
but it is not random: it returns members in hash-table order, so a
popped-and-re-added member would come straight back.
"""

from __future__ import annotations


from ..notify import GENERIC, SET as NOTIFY_SET
from ..errors import NOT_INTEGER, SYNTAX, CommandError
from ..numbers import INT64_MAX, parse_int
from ..types.set import SET, Set
from . import command
from .keys import random_element, scan_cursor, scan_matcher, scan_options, scan_step

_POSITIVE_ERR = "ERR value is out of range, must be positive"
_RANGE_ERR = ("ERR value is out of range, value must between -9223372036854775807 "
              "and 9223372036854775807")
_NUMKEYS_ERR = "ERR numkeys should be greater than 0"
_NUMKEYS_ARGS_ERR = "ERR Number of keys can't be greater than number of args"
_LIMIT_ERR = "ERR LIMIT can't be negative"

#: The most members SRANDMEMBER with a negative count returns. Redis has no
#: such limit (it streams the reply until the client's output buffer limit
#: drops it); a reply here is built before it is sent, so it is bounded.
MAX_RANDMEMBER_REPEATS = 1 << 22
_REPEATS_ERR = f"ERR count is out of range (at most {MAX_RANDMEMBER_REPEATS} repeated members)"



def _read(s, key: bytes):
    return s.core.keyspace.read_counted(s.db, key, SET)


def _check(s, key: bytes):
    """The set at ``key`` or None, for a write that validates before it changes
    anything (so a refused or no-op write signals no ``modified``)."""
    return s.core.keyspace.write(s.db, key, SET)


def _mutate(s, key: bytes):
    return s.core.keyspace.mutate(s.db, key, SET)


@command("sadd", -3, "write denyoom fast", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Add one or more members to a set", synopsis="key member [member ...]")
def cmd_sadd(s, argv):
    key = argv[1]
    current = _check(s, key)
    if current is not None and all(m in current for m in argv[2:]):
        return 0
    added = []
    with _mutate(s, key) as members:
        for m in argv[2:]:
            if members.add_member(m):
                added.append(m)
    s.log([b"SADD", key, *added])
    s.core.notify(NOTIFY_SET, b"sadd", s.db_index, key)
    return len(added)


@command("srem", -3, "write fast", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Remove one or more members from a set", synopsis="key member [member ...]")
def cmd_srem(s, argv):
    key = argv[1]
    current = _check(s, key)
    if current is None or not any(m in current for m in argv[2:]):
        return 0
    removed = []
    with _mutate(s, key) as members:
        for m in argv[2:]:
            if members.drop(m):
                removed.append(m)
    s.log([b"SREM", key, *removed])
    _notify_and_gone(s, b"srem", key)
    return len(removed)


def _notify_and_gone(s, event: bytes, key: bytes) -> None:
    """Publish ``event`` for ``key``, then ``del`` if that emptied (so deleted) the set."""
    core = s.core
    if core.notify_flags:
        core.notify(NOTIFY_SET, event, s.db_index, key)
        if key not in s.db.data:
            core.notify(GENERIC, b"del", s.db_index, key)


@command("scard", 2, "readonly fast", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Get the number of members in a set", synopsis="key")
def cmd_scard(s, argv):
    members = _read(s, argv[1])
    return 0 if members is None else len(members)


@command("sismember", 3, "readonly fast", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Determine if a given value is a member of a set", synopsis="key member")
def cmd_sismember(s, argv):
    members = _read(s, argv[1])
    return int(members is not None and argv[2] in members)


@command("smismember", -3, "readonly fast", keys=(1, 1, 1), group="set", since="6.2.0",
         summary="Returns the membership associated with the given elements for a set",
         synopsis="key member [member ...]")
def cmd_smismember(s, argv):
    members = _read(s, argv[1])
    if members is None:
        return [0] * (len(argv) - 2)
    return [int(m in members) for m in argv[2:]]


@command("smembers", 2, "readonly", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Get all the members in a set", synopsis="key")
def cmd_smembers(s, argv):
    members = _read(s, argv[1])
    return set() if members is None else set(members)  # a set in RESP3, an array in RESP2


@command("spop", -2, "write fast", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Remove and return one or multiple random members from a set",
         synopsis="key [count]")
def cmd_spop(s, argv):
    key = argv[1]
    if len(argv) == 2:
        current = _check(s, key)
        if current is None:
            return None
        member = random_element(current)
        with _mutate(s, key) as members:
            members.drop(member)
        s.log([b"SREM", key, member])
        _notify_and_gone(s, b"spop", key)
        return member
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = parse_int(argv[2])
    if count is None or count < 0:
        raise CommandError(_POSITIVE_ERR)
    current = _check(s, key)
    if current is None or count == 0:
        return set()
    if count >= len(current):
        popped = list(current)
    else:
        popped = current.random_pool().sample(count)
    with _mutate(s, key) as members:
        for m in popped:
            members.drop(m)
    s.log([b"SREM", key, *popped])
    _notify_and_gone(s, b"spop", key)
    return set(popped)


@command("srandmember", -2, "readonly", keys=(1, 1, 1), group="set", since="1.0.0",
         summary="Get one or multiple random members from a set", synopsis="key [count]")
def cmd_srandmember(s, argv):
    if len(argv) == 2:
        members = _read(s, argv[1])
        return None if members is None else random_element(members)
    if len(argv) > 3:
        raise CommandError(SYNTAX)
    count = parse_int(argv[2])
    if count is None:
        raise CommandError(NOT_INTEGER)
    if count < -INT64_MAX:
        raise CommandError(_RANGE_ERR)
    members = _read(s, argv[1])
    if members is None or count == 0:
        return []
    if -count > MAX_RANDMEMBER_REPEATS:
        raise CommandError(_REPEATS_ERR)
    if count < 0:
        return members.random_pool().choices(-count)  # repeats allowed
    if count >= len(members):
        return members.ordered()
    return members.random_pool().sample(count)


@command("smove", 4, "write fast", keys=(1, 2, 1), group="set", since="1.0.0",
         summary="Move a member from one set to another", synopsis="source destination member")
def cmd_smove(s, argv):
    src_key, dst_key, member = argv[1], argv[2], argv[3]
    src = _check(s, src_key)
    dst = _check(s, dst_key) if src is not None else None
    if src is None:
        return 0
    if src_key == dst_key:
        return int(member in src)
    if member not in src:
        return 0
    with _mutate(s, src_key) as members:
        members.drop(member)
    s.log([b"SREM", src_key, member])
    _notify_and_gone(s, b"srem", src_key)   # before dst's "new", as Redis
    if dst is None or member not in dst:
        with _mutate(s, dst_key) as members:
            members.add_member(member)
        s.log([b"SADD", dst_key, member])
        s.core.notify(NOTIFY_SET, b"sadd", s.db_index, dst_key)
    return 1


def _sets(s, keys, write: bool = False) -> list:
    """The sets at ``keys`` (None for a missing key), every key type-checked first."""
    ks = s.core.keyspace
    if write:
        return [ks.write(s.db, k, SET) for k in keys]
    return [ks.read_counted(s.db, k, SET) for k in keys]


def _inter(sets: list) -> set:
    if any(x is None for x in sets):
        return set()
    sets = sorted(sets, key=len)
    result = set(sets[0])
    for other in sets[1:]:
        if not result:
            break
        result.intersection_update(other)  # walks the smaller side
    return result


def _union(sets: list) -> set:
    result: set = set()
    for x in sets:
        if x is not None:
            result.update(x)
    return result


def _diff(sets: list) -> set:
    first = sets[0]
    if first is None:
        return set()
    result = set(first)
    for other in sets[1:]:
        if not result:
            break
        if other is not None:
            result.difference_update(other)
    return result


def _store(s, dst: bytes, result: set, event: bytes) -> int:
    """Replace ``dst`` by ``result`` (any old value of any type), logging the
    resulting set: ``DEL dst`` then ``SADD dst member ...``, or only the DEL.

    Events as Redis: ``event`` (sinterstore...) for a non-empty result,
    ``del`` if an empty one removed ``dst``; a replaced key is overwritten
    in place (no ``new`` event, as Redis's setKey).
    """
    db = s.db
    existed = s.core.keyspace.lookup(db, dst) is not None
    if existed:
        s.log([b"DEL", dst])
        if not result:
            db.remove(dst)
            s.core.notify(GENERIC, b"del", s.db_index, dst)
    if result:
        value = Set(result)
        if existed and dst in db.expires:
            db.persist(dst)
        db.store(dst, value)
        s.log([b"SADD", dst, *value])
        s.core.notify(NOTIFY_SET, event, s.db_index, dst)
    return len(result)


@command("sinter", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Intersect multiple sets", synopsis="key [key ...]")
def cmd_sinter(s, argv):
    return _inter(_sets(s, argv[1:]))


@command("sintercard", -3, "readonly movablekeys", keys=(0, 0, 0), group="set", since="7.0.0",
         summary="Intersect multiple sets and return the cardinality of the result",
         synopsis="numkeys key [key ...] [LIMIT limit:integer]")
def cmd_sintercard(s, argv):
    numkeys = parse_int(argv[1])
    if numkeys is None or numkeys < 1:
        raise CommandError(_NUMKEYS_ERR)
    if numkeys > len(argv) - 2:
        raise CommandError(_NUMKEYS_ARGS_ERR)
    limit = 0
    i = 2 + numkeys
    while i < len(argv):
        if argv[i].lower() == b"limit" and i + 1 < len(argv):
            limit = parse_int(argv[i + 1])
            if limit is None or limit < 0:
                raise CommandError(_LIMIT_ERR)
            i += 2
        else:
            raise CommandError(SYNTAX)
    sets = _sets(s, argv[2:2 + numkeys])
    if any(x is None for x in sets):
        return 0
    sets = sorted(sets, key=len)
    smallest, others = sets[0], sets[1:]
    count = 0
    for m in smallest:
        for other in others:
            if m not in other:
                break
        else:
            count += 1
            if count == limit:
                break
    return count


@command("sinterstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Intersect multiple sets and store the resulting set in a key",
         synopsis="destination key [key ...]")
def cmd_sinterstore(s, argv):
    return _store(s, argv[1], _inter(_sets(s, argv[2:], write=True)), b"sinterstore")


@command("sunion", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Add multiple sets", synopsis="key [key ...]")
def cmd_sunion(s, argv):
    return _union(_sets(s, argv[1:]))


@command("sunionstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Add multiple sets and store the resulting set in a key",
         synopsis="destination key [key ...]")
def cmd_sunionstore(s, argv):
    return _store(s, argv[1], _union(_sets(s, argv[2:], write=True)), b"sunionstore")


@command("sdiff", -2, "readonly", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Subtract multiple sets", synopsis="key [key ...]")
def cmd_sdiff(s, argv):
    return _diff(_sets(s, argv[1:]))


@command("sdiffstore", -3, "write denyoom", keys=(1, -1, 1), group="set", since="1.0.0",
         summary="Subtract multiple sets and store the resulting set in a key",
         synopsis="destination key [key ...]")
def cmd_sdiffstore(s, argv):
    return _store(s, argv[1], _diff(_sets(s, argv[2:], write=True)), b"sdiffstore")


@command("sscan", -3, "readonly", keys=(1, 1, 1), group="set", since="2.8.0",
         summary="Incrementally iterate Set elements",
         synopsis="key cursor [MATCH pattern] [COUNT count]")
def cmd_sscan(s, argv):
    cursor = scan_cursor(argv[2])
    members = _read(s, argv[1])
    if members is None:
        return [b"0", []]
    pattern, count, _type = scan_options(argv, 3)
    if not members.big:
        # An intset (at most 512 integers) is answered whole, cursor 0, sorted.
        next_cursor, found = 0, members.ordered()
    else:
        next_cursor, found = scan_step(members, cursor, count)
    matches = scan_matcher(pattern, found)
    if matches is not None:
        found = [m for m in found if matches(m)]
    return [b"%d" % next_cursor, found]
