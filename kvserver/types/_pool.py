"""An indexable pool of a set's members (or a hash's fields) for O(1) random picks.

A Python set or dict cannot be indexed, so picking a uniformly random member
means walking to a random position: O(size) per pick, where Redis's
``dictGetFairRandomKey`` is O(1). A :class:`RandomPool` keeps the members in
a list plus member -> position, maintained on every add and remove (a
removal swaps the last member into the hole), so one pick is one
``randrange`` and a list index, and ``count`` distinct picks cost O(count)
(``random.sample`` over the list).

It costs a list slot and a dict entry per member, so a set or hash builds
one lazily, on its first random pick, and plain sets and hashes pay nothing.
That first pick is O(size) once (about 0.3 s for a million members on the
bench machine, as long as an SMEMBERS of it); every later pick is O(1).
The module name starts with ``_``: it defines no kind.
"""

from __future__ import annotations

import random


class RandomPool:
    __slots__ = ("items", "position")

    def __init__(self, members) -> None:
        self.items: list[bytes] = list(members)
        # dict(zip(...)) builds at C speed (a comprehension is ~25% slower).
        self.position: dict[bytes, int] = dict(zip(self.items, range(len(self.items))))

    def add(self, member: bytes) -> None:
        """Record a new member (the owner has checked it is new)."""
        self.position[member] = len(self.items)
        self.items.append(member)

    def discard(self, member: bytes) -> None:
        """Forget a member the owner has just removed: O(1), by swapping the
        last member into its place."""
        i = self.position.pop(member)
        last = self.items.pop()
        if i < len(self.items):
            self.items[i] = last
            self.position[last] = i

    def pick(self) -> bytes:
        """One uniformly random member (the pool is not empty)."""
        items = self.items
        return items[random.randrange(len(items))]

    def sample(self, count: int) -> list[bytes]:
        """``count`` distinct random members (count <= size): O(count)."""
        return random.sample(self.items, count)

    def choices(self, count: int) -> list[bytes]:
        """``count`` independent random members (repeats allowed): O(count)."""
        return random.choices(self.items, k=count)


class Indexed:
    """What a set and a hash keep beside their members for SSCAN/HSCAN and
    random picks: ``scan`` (a ``keyspace._ScanIndex``, built on the first scan
    of a big value) and ``pool`` (a :class:`RandomPool`, built on the first
    random pick). The owner (a ``set`` or ``dict`` subclass with the two slots)
    reports every new and removed member through :meth:`_indexed` and
    :meth:`_unindexed` (called only while one of the two exists, so a plain
    SADD/HSET pays two attribute tests, no call), so both stay up to date."""

    __slots__ = ()

    def _indexed(self, member: bytes) -> None:
        """A new member (the owner has added it)."""
        if self.scan is not None:
            self.scan.add(member)
        if self.pool is not None:
            self.pool.add(member)

    def _unindexed(self, member: bytes) -> None:
        """A member the owner has just removed."""
        if self.pool is not None:
            self.pool.discard(member)
        scan = self.scan
        if scan is not None:
            scan.discard(member)
            if scan.size < len(scan.buckets) and scan.bits > 4:
                # Shrunk to under one member a bucket: drop the index, and the
                # next scan builds one sized for what is left (a step never
                # walks a table of empty buckets; cursors stay valid across
                # the resize, as across Redis's dict shrink).
                self.scan = None

    def random_pool(self) -> RandomPool:
        """The members' random pool, built on first use (O(size) once)."""
        if self.pool is None:
            self.pool = RandomPool(self)
        return self.pool
