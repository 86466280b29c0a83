"""The set kind: a :class:`Set`, a Python set of ``bytes`` members.

Commands change a set only through :meth:`Set.add_member` and
:meth:`Set.drop` (inside ``Keyspace.mutate``), which keep beside the set:

* ``nbytes``: the bytes of its members, so the codec's ``size`` estimate
  costs nothing;
* ``big``: whether Redis 7.0 would hold it as a ``hashtable`` rather than an
  ``intset`` (7.0 has no listpack sets). Redis starts a set as an intset
  while every member is a canonical 64-bit integer (``string2ll``) and it has
  at most ``set-max-intset-entries`` (512) members, converts it once either
  stops being true, and never converts back while it lives; a set loaded
  from a checkpoint is judged afresh by its contents, as Redis's RDB loader
  does. OBJECT ENCODING reports it, and SSCAN answers an intset in one reply
  (cursor 0, members in integer order, as Redis does);
* ``scan``: SSCAN's bucket index (``keyspace._ScanIndex``), built on the
  first SSCAN of a hashtable set and then kept up to date (dropped when the
  set shrinks far below it), so each SSCAN step is bounded by its COUNT;
* ``pool``: a :class:`~kvserver.types._pool.RandomPool` of the members,
  built on the first random pick (SPOP, SRANDMEMBER) and then kept up to
  date, so a random member costs O(1) and ``count`` of them O(count).

Checkpoint payload: ``u32 count`` then, per member, ``u32 len, member``;
encoding is linear in the set's size. A running checkpoint keeps a copy
(``Set.copy``) of a set about to change.
"""

from __future__ import annotations


from ..numbers import parse_int
from . import Codec, pack_strings, unpack_strings
from ._pool import Indexed

#: Redis 7.0's default set-max-intset-entries.
MAX_INTSET_ENTRIES = 512


class Set(Indexed, set):
    """A set of members; change it only through add_member/drop (see the module doc)."""

    __slots__ = ("nbytes", "big", "scan", "pool")

    def __init__(self, members=()) -> None:
        super().__init__(members)
        self.nbytes = sum(map(len, self))
        self.big = len(self) > MAX_INTSET_ENTRIES or any(parse_int(m) is None for m in self)
        self.scan = None
        self.pool = None

    def add_member(self, member: bytes) -> bool:
        """Add ``member``; returns whether it is new."""
        if member in self:
            return False
        self.add(member)
        self.nbytes += len(member)
        if self.scan is not None or self.pool is not None:
            self._indexed(member)
        if not self.big and (len(self) > MAX_INTSET_ENTRIES or parse_int(member) is None):
            self.big = True
        return True

    def drop(self, member: bytes) -> bool:
        """Remove ``member``; returns whether it was there."""
        if member not in self:
            return False
        self.remove(member)
        self.nbytes -= len(member)
        if self.scan is not None or self.pool is not None:
            self._unindexed(member)
        return True

    def copy(self) -> "Set":
        """An independent copy (same members, same encoding; no scan index or pool)."""
        new = Set()
        set.update(new, self)
        new.nbytes = self.nbytes
        new.big = self.big
        return new

    def ordered(self) -> list[bytes]:
        """The members in Redis's order where it has one: an intset is sorted
        by integer value; a hashtable's order is its own (ours: Python's)."""
        if self.big:
            return list(self)
        return sorted(self, key=int)


def _encode(value: Set) -> bytes:
    return pack_strings(len(value), value)


def _decode(buffer) -> Set:
    members = unpack_strings(buffer, 1, "set")
    value = Set(members)
    if len(value) != len(members):
        raise ValueError("set payload repeats a member")
    return value


SET = Codec(
    kind=4,  # 3 is the list kind (being added beside this one)
    name="set",
    pytype=Set,
    encoding=lambda value: "hashtable" if value.big else "intset",
    encode=_encode,
    decode=_decode,
    size=lambda value: 4 + 4 * len(value) + value.nbytes,
    snapshot_copy=Set.copy,
)
