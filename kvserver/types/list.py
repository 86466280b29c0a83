"""The list kind: a :class:`List`, a ``collections.deque`` of ``bytes``.

Push and pop at either end are O(1). LINDEX and LSET index the deque, which
CPython walks from the nearer end in blocks of 64: O(min(i, n - i)), the
same order as Redis's quicklist walk; LRANGE slices with ``itertools.islice``
from the nearer end (O(S + N)), LTRIM pops from both ends, LREM rebuilds in
one pass, LINSERT uses ``deque.insert``. Nothing is quadratic.

Commands change a list only through the methods below (inside
``Keyspace.mutate``), which keep ``nbytes`` (the bytes of its elements) so
the codec's ``size`` estimate costs nothing.

OBJECT ENCODING: Redis 7.0 holds every list as a ``quicklist`` (the small
``listpack`` list encoding came with 7.2), so that is what it reports.

Checkpoint payload: ``u32 count`` then, per element, ``u32 len, element``;
encoding is linear in the list's size. A running checkpoint keeps a copy
(``List.copy``) of a list about to change.
"""

from __future__ import annotations

from collections import deque

from . import Codec, pack_strings, unpack_strings


class List(deque):
    """A deque of elements; change it only through the methods below."""

    __slots__ = ("nbytes",)

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.nbytes = sum(map(len, self))

    def push(self, items, left: bool) -> None:
        if left:
            self.extendleft(items)
        else:
            self.extend(items)
        self.nbytes += sum(map(len, items))

    def pop_n(self, count: int, left: bool) -> list:
        """Remove and return up to ``count`` elements from one end (in pop order)."""
        take = self.popleft if left else self.pop
        out = [take() for _ in range(min(count, len(self)))]
        self.nbytes -= sum(map(len, out))
        return out

    def set_at(self, index: int, value: bytes) -> None:
        self.nbytes += len(value) - len(self[index])
        self[index] = value

    def insert_at(self, index: int, value: bytes) -> None:
        self.insert(index, value)
        self.nbytes += len(value)

    def trim(self, left: int, right: int) -> None:
        """Drop ``left`` elements from the head and ``right`` from the tail."""
        self.pop_n(left, True)
        self.pop_n(right, False)

    def remove_matching(self, element: bytes, count: int) -> int:
        """LREM: remove up to ``count`` (0: all) elements equal to ``element``,
        from the head (count >= 0) or the tail (count < 0), in one pass."""
        limit = abs(count) or len(self)
        kept = []
        removed = 0
        source = reversed(self) if count < 0 else iter(self)
        for item in source:
            if removed < limit and item == element:
                removed += 1
            else:
                kept.append(item)
        if removed:
            if count < 0:
                kept.reverse()
            self.clear()
            self.extend(kept)
            self.nbytes -= removed * len(element)
        return removed

    def copy(self) -> "List":
        """An independent copy."""
        return List(self)


def _encode(value: List) -> bytes:
    return pack_strings(len(value), value)


def _decode(buffer) -> List:
    return List(unpack_strings(buffer, 1, "list"))


LIST = Codec(
    kind=3,
    name="list",
    pytype=List,
    encoding=lambda value: "quicklist",
    encode=_encode,
    decode=_decode,
    size=lambda value: 4 + 4 * len(value) + value.nbytes,
    snapshot_copy=List.copy,
)
