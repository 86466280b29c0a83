"""Keyspace notifications: the one call a command makes after it changes a key.

Redis's ``notifyKeyspaceEvent(type, event, key, dbid)``. Every command that
changes a key calls, after the change::

    s.core.notify(notify.HASH, b"hset", s.db_index, key)

with the class of the event (one of the bits below, as Redis's ``NOTIFY_*``)
and the event name Redis uses for it (``hset``, ``lpush``, ``del``,
``expired``...). :meth:`kvserver.core.Core.notify` costs one attribute test
while ``notify-keyspace-events`` selects nothing (the default), so call sites
need no guard of their own. Call it after the change *and* after its
``s.log``: the event then waits for that write's record (kvserver.pubsub,
the durability rule). Delivery (``__keyspace@<db>__:<key>`` and
``__keyevent@<db>__:<event>`` messages to subscribers) is
:meth:`kvserver.pubsub.PubSub.keyspace_event`; the Core sets
``notify_flags`` from the config (:func:`effective_flags`).
"""

from __future__ import annotations

#: Event classes, Redis's NOTIFY_* bits (server.h), with their config letters.
KEYSPACE = 1 << 0   # K: publish on __keyspace@<db>__:<key>
KEYEVENT = 1 << 1   # E: publish on __keyevent@<db>__:<event>
GENERIC = 1 << 2    # g: DEL, EXPIRE, RENAME, COPY, MOVE...
STRING = 1 << 3     # $
LIST = 1 << 4       # l
SET = 1 << 5        # s
HASH = 1 << 6       # h
ZSET = 1 << 7       # z
EXPIRED = 1 << 8    # x
EVICTED = 1 << 9    # e
STREAM = 1 << 10    # t
KEY_MISS = 1 << 11  # m (not part of A)
MODULE = 1 << 13    # d (Redis's 1 << 12 is NOTIFY_LOADED, for modules only)
NEW = 1 << 14       # n (not part of A)
ALL = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE

#: Config letter -> bits, as Redis's keyspaceEventsStringToFlags reads them.
_LETTERS = {"A": ALL, "g": GENERIC, "$": STRING, "l": LIST, "s": SET, "h": HASH, "z": ZSET,
            "x": EXPIRED, "e": EVICTED, "K": KEYSPACE, "E": KEYEVENT, "t": STREAM,
            "m": KEY_MISS, "d": MODULE, "n": NEW}
#: The class letters in the order keyspaceEventsFlagsToString writes them.
_CLASS_ORDER = (("g", GENERIC), ("$", STRING), ("l", LIST), ("s", SET), ("h", HASH),
                ("z", ZSET), ("x", EXPIRED), ("e", EVICTED), ("t", STREAM), ("d", MODULE),
                ("n", NEW))


def flags_from_string(text: str) -> int | None:
    """The bits a ``notify-keyspace-events`` value selects, or None if a letter is unknown."""
    flags = 0
    for letter in text:
        bits = _LETTERS.get(letter)
        if bits is None:
            return None
        flags |= bits
    return flags


def flags_to_string(flags: int) -> str:
    """The canonical spelling of ``flags`` (what CONFIG GET shows): ``A`` for all of
    ALL's classes, else the class letters, then K, E and m."""
    if flags & ALL == ALL:
        out = "A"
    else:
        out = "".join(letter for letter, bit in _CLASS_ORDER if flags & bit)
    if flags & KEYSPACE:
        out += "K"
    if flags & KEYEVENT:
        out += "E"
    if flags & KEY_MISS:
        out += "m"
    return out


def effective_flags(flags: int) -> int:
    """What :attr:`kvserver.core.Core.notify_flags` holds for ``flags``: 0 unless a
    channel kind (K or E) is selected, so a class without K/E costs nothing."""
    return flags if flags & (KEYSPACE | KEYEVENT) else 0
