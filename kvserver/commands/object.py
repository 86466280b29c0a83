"""OBJECT ENCODING|REFCOUNT|IDLETIME|FREQ|HELP and MEMORY USAGE|HELP.

OBJECT answers what Redis 7.0.15 answers under kvserver's only eviction
policy, ``noeviction``:

* ENCODING: each kind's codec says it (``types/*.py``): strings ``int`` /
  ``embstr`` / ``raw`` by content; hashes ``listpack`` until one has more
  than 512 fields or a field or value over 64 bytes, then ``hashtable``;
  lists ``quicklist`` (what 7.0 reports for every list; ``listpack`` lists
  came with 7.2); sets ``intset`` while every member is an integer and there
  are at most 512, then ``hashtable``; sorted sets as their own type says.
  The thresholds are Redis's defaults (kvserver has no CONFIG for them).
* REFCOUNT: 2147483647 for a string Redis would hold as a shared integer
  (an ``int`` encoding in 0..9999, OBJ_SHARED_INTEGERS), else 1.
* IDLETIME: kvserver keeps no per-key access time (a timestamp written on
  every read would cost a dict store per command and a dict entry per key),
  so it answers 0: every key reads as just used. An idle-key sweep built on
  it would find nothing to evict, never something wrongly.
* FREQ: Redis's error for a server whose policy is not LFU (kvserver's is
  always noeviction).

A missing key answers nil. The key is looked up as Redis does (expired keys
are deleted first; a hit or miss is counted).

MEMORY USAGE ``key [SAMPLES count]``: the kind's codec size estimate (the
bytes of the value's payload, kept up to date by the types, so O(1)) plus a
fixed per-key overhead; SAMPLES is checked as Redis checks it and otherwise
unused (the estimate is exact, not sampled). The figure is kvserver's own,
not Redis's allocator's. MEMORY's other subcommands (STATS, DOCTOR,
MALLOC-STATS, PURGE) are jemalloc's in Redis and are not provided.
"""

from __future__ import annotations

from ..errors import NOT_INTEGER, SYNTAX, CommandError
from ..numbers import INT64_MAX, INT64_MIN, parse_int
from ..protocol import Simple
from ..types import STRING, codec_of
from . import command, dispatch_subcommand

#: Redis's OBJ_SHARED_REFCOUNT (INT_MAX) and OBJ_SHARED_INTEGERS.
SHARED_REFCOUNT = 2147483647
SHARED_INTEGERS = 10000
#: What a key costs besides its value in MEMORY USAGE: a dict entry, the
#: key's header and the value's object header (Redis's dictEntry 24 + robj
#: 16 + sds header 8, rounded).
KEY_OVERHEAD = 48

_NO_LFU = ("ERR An LFU maxmemory policy is not selected, access frequency not tracked. "
           "Please note that when switching between policies at runtime LRU and LFU data "
           "will take some time to adjust.")


@command("object", -2, "", group="generic", since="2.2.3", acl="@slow",
         summary="A container for object introspection commands", synopsis="")
def cmd_object(s, argv):
    return dispatch_subcommand(s, argv)


def _value(s, key: bytes):
    return s.core.keyspace.lookup_read(s.db, key)


@command("encoding", 3, "readonly", parent="object", keys=(2, 2, 1), group="generic",
         since="2.2.3", acl="@keyspace", synopsis="key",
         summary="Inspect the internal encoding of a Redis object")
def cmd_object_encoding(s, argv):
    value = _value(s, argv[2])
    return None if value is None else codec_of(value).encoding(value).encode()


@command("refcount", 3, "readonly", parent="object", keys=(2, 2, 1), group="generic",
         since="2.2.3", acl="@keyspace", synopsis="key",
         summary="Get the number of references to the value of the key")
def cmd_object_refcount(s, argv):
    value = _value(s, argv[2])
    if value is None:
        return None
    if type(value) is bytes and STRING.encoding(value) == "int" \
            and 0 <= int(value) < SHARED_INTEGERS:
        return SHARED_REFCOUNT
    return 1


@command("idletime", 3, "readonly", parent="object", keys=(2, 2, 1), group="generic",
         since="2.2.3", acl="@keyspace", synopsis="key",
         summary="Get the time since a Redis object was last accessed")
def cmd_object_idletime(s, argv):
    return None if _value(s, argv[2]) is None else 0


@command("freq", 3, "readonly", parent="object", keys=(2, 2, 1), group="generic",
         since="4.0.0", acl="@keyspace", synopsis="key",
         summary="Get the logarithmic access frequency counter of a Redis object")
def cmd_object_freq(s, argv):
    if _value(s, argv[2]) is None:
        return None
    raise CommandError(_NO_LFU)


@command("help", 2, "loading stale", parent="object", group="generic", since="6.2.0",
         acl="@keyspace", synopsis="",
         summary="Show helpful text about the different subcommands")
def cmd_object_help(s, argv):
    return [Simple(line) for line in (
        "OBJECT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "ENCODING <key>",
        "    Return the kind of internal representation used in order to store the value",
        "    associated with a <key>.",
        "FREQ <key>",
        "    Return the access frequency index of the <key>. The returned integer is",
        "    proportional to the logarithm of the recent access frequency of the key.",
        "IDLETIME <key>",
        "    Return the idle time of the <key>, that is the approximated number of",
        "    seconds elapsed since the last access to the key.",
        "REFCOUNT <key>",
        "    Return the number of references of the value associated with the specified",
        "    <key>.",
        "HELP",
        "    Prints this help.")]


@command("memory", -2, "", group="server", since="4.0.0", acl="@slow",
         summary="A container for memory diagnostics commands", synopsis="")
def cmd_memory(s, argv):
    return dispatch_subcommand(s, argv)


@command("usage", -3, "readonly", parent="memory", keys=(2, 2, 1), group="server",
         since="4.0.0", acl="@read @slow", synopsis="key [SAMPLES count]",
         summary="Estimate the memory usage of a key")
def cmd_memory_usage(s, argv):
    j = 3
    while j < len(argv):
        if argv[j].lower() == b"samples" and j + 1 < len(argv):
            samples = parse_int(argv[j + 1])
            if samples is None or not INT64_MIN <= samples <= INT64_MAX:
                raise CommandError(NOT_INTEGER)
            if samples < 0:
                raise CommandError(SYNTAX)
            j += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    key = argv[2]
    value = s.db.data.get(key)  # Redis's dbFind: no expiry, no stats
    if value is None:
        return None
    return KEY_OVERHEAD + len(key) + codec_of(value).size(value)


@command("help", 2, "loading stale", parent="memory", group="server", since="4.0.0",
         acl="@slow", synopsis="",
         summary="Show helpful text about the different subcommands")
def cmd_memory_help(s, argv):
    return [Simple(line) for line in (
        "MEMORY <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "USAGE <key> [SAMPLES <count>]",
        "    Return memory in bytes used by <key> and its value. Nested values are",
        "    sampled up to <count> times (default: 5, 0 means sample all).",
        "HELP",
        "    Prints this help.")]
