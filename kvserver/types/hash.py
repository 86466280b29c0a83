"""The hash kind: a :class:`Hash`, a dict of field -> value (both ``bytes``).

Commands change a hash only through :meth:`Hash.put` and :meth:`Hash.drop`
(inside ``Keyspace.mutate``), which keep three things beside the dict:

* ``nbytes``: the bytes of its fields and values, so the codec's ``size``
  estimate costs nothing;
* ``big``: whether Redis would hold it as a ``hashtable`` rather than a
  ``listpack``. Redis converts a hash once it has more than
  ``hash-max-listpack-entries`` (512) fields or a field or value longer than
  ``hash-max-listpack-value`` (64 bytes), and never converts back while it
  lives; a hash loaded from a checkpoint is judged afresh by its size, as
  Redis's RDB loader does. OBJECT ENCODING reports it, and HSCAN answers a
  listpack hash in one reply (cursor 0), as Redis does;
* ``scan``: HSCAN's bucket index (``keyspace._ScanIndex``), built on the
  first HSCAN of a big hash and then kept up to date (dropped when the hash
  shrinks far below it), so each HSCAN step is bounded by its COUNT and a
  full iteration returns every field present from start to end;
* ``pool``: a :class:`~kvserver.types._pool.RandomPool` of the fields,
  built on the first HRANDFIELD and then kept up to date, so a random field
  costs O(1) and ``count`` of them O(count).

Checkpoint payload: ``u32 count`` then, per field, ``u32 len, field,
u32 len, value``; encoding is linear in the hash's size. A running
checkpoint keeps a copy (``Hash.copy``) of a hash about to change.
"""

from __future__ import annotations


from . import Codec, pack_strings, unpack_strings
from ._pool import Indexed

#: Redis 7.0's compiled defaults for hash-max-listpack-entries (512; the
#: sample redis.conf says 128, CONFIG GET says 512) and hash-max-listpack-value.
MAX_LISTPACK_ENTRIES = 512
MAX_LISTPACK_VALUE = 64


class Hash(Indexed, dict):
    """field -> value; change it only through put/drop (see the module doc)."""

    __slots__ = ("nbytes", "big", "scan", "pool")

    def __init__(self, items=()) -> None:
        super().__init__(items)
        self.nbytes = 0
        big = len(self) > MAX_LISTPACK_ENTRIES
        for field, value in self.items():
            self.nbytes += len(field) + len(value)
            if len(field) > MAX_LISTPACK_VALUE or len(value) > MAX_LISTPACK_VALUE:
                big = True
        self.big = big
        self.scan = None
        self.pool = None

    def put(self, field: bytes, value: bytes) -> bool:
        """Set ``field``; returns whether it is new."""
        old = self.get(field)
        if old is None:
            self.nbytes += len(field) + len(value)
            if self.scan is not None or self.pool is not None:
                self._indexed(field)
        else:
            self.nbytes += len(value) - len(old)
        self[field] = value
        if not self.big and (len(self) > MAX_LISTPACK_ENTRIES or len(field) > MAX_LISTPACK_VALUE
                             or len(value) > MAX_LISTPACK_VALUE):
            self.big = True
        return old is None

    def drop(self, field: bytes) -> bool:
        """Delete ``field``; returns whether it was there."""
        old = self.pop(field, None)
        if old is None:
            return False
        self.nbytes -= len(field) + len(old)
        if self.scan is not None or self.pool is not None:
            self._unindexed(field)
        return True

    def copy(self) -> "Hash":
        """An independent copy (same fields, same encoding; no scan index or pool)."""
        new = Hash()
        dict.update(new, self)
        new.nbytes = self.nbytes
        new.big = self.big
        return new


def _encode(value: Hash) -> bytes:
    return pack_strings(len(value), (s for pair in value.items() for s in pair))


def _decode(buffer) -> Hash:
    flat = unpack_strings(buffer, 2, "hash")
    value = Hash(zip(flat[::2], flat[1::2]))
    if 2 * len(value) != len(flat):
        raise ValueError("hash payload repeats a field")
    return value


HASH = Codec(
    kind=2,
    name="hash",
    pytype=Hash,
    encoding=lambda value: "hashtable" if value.big else "listpack",
    encode=_encode,
    decode=_decode,
    size=lambda value: 4 + 8 * len(value) + value.nbytes,
    snapshot_copy=Hash.copy,
)
