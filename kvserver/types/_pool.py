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
