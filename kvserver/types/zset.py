"""The sorted-set kind: a :class:`ZSet`, members (``bytes``) ordered by score.

Structure (chosen by measurement, see docs/performance.md and
``python -m bench.zset_structures``): a dict member -> score, beside the
entries ``(score, member)`` in order, held as a list of sorted sublists of
at most ``2 * LOAD`` entries each (the "sorted containers" layout), with

* ``_maxes``: the last entry of each sublist, so finding an entry is two
  C-speed bisections (``bisect`` on tuples compares score, then member
  bytes: exactly Redis's order, memcmp on equal scores);
* ``_index``: a Fenwick tree over the sublist lengths, so the rank of an
  entry and the entry at a rank cost O(log n) (built lazily in O(n / LOAD)
  after a sublist is split, merged or dropped, updated in O(log) by a
  single insertion or deletion);
* ``_shared``: None, or one flag per sublist telling that the sublist is
  shared with a copy (:meth:`ZSet.copy`) and must be copied before it is
  changed. So a copy, for a running checkpoint (the pre-image) or COPY, costs
  O(n / LOAD) pointers, not O(n): the copy shares the sublists and builds its
  own member dict only when first asked for a score (never, for a
  checkpoint's pre-image, which is only encoded).

Insertions and deletions cost O(log n + LOAD) (a bisection and a memmove
of at most 2 * LOAD pointers); removing a range of ranks (ZREMRANGE*,
ZPOPMIN with a count) drops whole sublists at once, linear in what it
removes. Commands change a zset only through :meth:`ZSet.add`,
:meth:`ZSet.discard` and :meth:`ZSet.remove_range` (inside
``Keyspace.mutate``), which keep beside it:

* ``nbytes``: the bytes of its members, so the codec's ``size`` costs nothing;
* ``big``: whether Redis 7.0 would hold it as a ``skiplist`` rather than a
  ``listpack``: it converts once the zset has more than
  ``zset-max-listpack-entries`` (128) members or a member longer than
  ``zset-max-listpack-value`` (64 bytes), and never back while it lives; a
  zset stored whole (ZUNIONSTORE, ZRANGESTORE...) or loaded from a
  checkpoint is judged by its contents, as Redis does. OBJECT ENCODING
  reports it, and ZSCAN answers a listpack zset in one reply (cursor 0);
* ``scan``: ZSCAN's bucket index (``keyspace._ScanIndex``) over the members,
  built on the first ZSCAN of a big zset and then kept up to date.

:meth:`ZSet.items` iterates ``(member, score)`` in score order (SORT, the
checkpoint), :meth:`ZSet.entries` ``(score, member)`` between two ranks.

Checkpoint payload (:func:`encode_blocks`): ``u32 count``, then one block
per sublist, ``u32 n``, n little-endian f64 scores, n u32 member lengths,
the n members back to back; all in score order, so a load rebuilds the
sublists without sorting (after checking the order). Blocks keep encoding
to a few C-speed passes over entries still in the CPU cache (a 1M-member
zset is one checkpoint entry, encoded in one go on the loop today), and
let a checkpoint that holds a :meth:`ZSet.copy` encode one over several
turns of the loop.
"""

from __future__ import annotations

import struct
import sys
from array import array
from bisect import bisect_left, bisect_right, insort
from itertools import accumulate, chain, islice
from operator import itemgetter

from . import Codec

#: Redis 7.0's defaults for zset-max-listpack-entries and zset-max-listpack-value.
MAX_LISTPACK_ENTRIES = 128
MAX_LISTPACK_VALUE = 64

#: Sublists hold between LOAD/2 and 2*LOAD entries (the last one may be
#: shorter). Measured (bench/zset_structures.py): 1000 keeps ZADD's memmove
#: cheap and the sublist count (the Fenwick tree's size) small.
LOAD = 1000

_member = itemgetter(1)
_score = itemgetter(0)
_U32 = struct.Struct("<I")


class _Top:
    """Greater than every member: (score, TOP) sorts after every entry of that score."""

    __slots__ = ()

    def __lt__(self, other):
        return False

    def __gt__(self, other):
        return other is not self

    def __eq__(self, other):
        return other is self

    __hash__ = object.__hash__


TOP = _Top()


class ZSet:
    """A sorted set; change it only through add/discard/remove_range (see the module doc)."""

    __slots__ = ("_scores", "_lists", "_maxes", "_index", "_shared", "_len",
                 "nbytes", "big", "scan")

    def __init__(self, pairs=()) -> None:
        """A zset of ``pairs`` ((member, score); a later score for the same
        member wins), judged listpack or skiplist by its contents."""
        scores = dict(pairs)
        self.big = len(scores) > MAX_LISTPACK_ENTRIES or any(
            len(m) > MAX_LISTPACK_VALUE for m in scores)
        if not self.big:  # a listpack holds no -0 (see add)
            scores = {m: 0.0 if s == 0 else s for m, s in scores.items()}
        self._scores = scores
        self._len = len(scores)
        self._set_entries(sorted([(s, m) for m, s in scores.items()]))
        self.nbytes = sum(map(len, scores))
        self.scan = None

    def _set_entries(self, entries: list) -> None:
        self._lists = [entries[i:i + LOAD] for i in range(0, len(entries), LOAD)]
        self._maxes = [sub[-1] for sub in self._lists]
        self._index = None
        self._shared = None

    # --- reading ----------------------------------------------------------------------

    def __len__(self) -> int:
        return self._len

    def __iter__(self):
        """The members, in score order."""
        return map(_member, chain.from_iterable(self._lists))

    def __contains__(self, member) -> bool:
        return member in self._dict()

    def _dict(self) -> dict:
        scores = self._scores
        if scores is None:  # a copy: built on first use
            scores = self._scores = {m: s for s, m in chain.from_iterable(self._lists)}
        return scores

    def score(self, member: bytes) -> float | None:
        return self._dict().get(member)

    def items(self):
        """(member, score) pairs in score order (Redis's order)."""
        return ((m, s) for s, m in chain.from_iterable(self._lists))

    def _fenwick(self) -> list:
        tree = self._index
        if tree is None:
            k = len(self._lists)
            tree = [0] * (k + 1)
            for i, sub in enumerate(self._lists, 1):
                tree[i] += len(sub)
                j = i + (i & -i)
                if j <= k:
                    tree[j] += tree[i]
            self._index = tree
        return tree

    def _prefix(self, i: int) -> int:
        """The number of entries in the sublists before sublist ``i``."""
        if i == 0:
            return 0
        tree = self._fenwick()
        total = 0
        while i:
            total += tree[i]
            i &= i - 1
        return total

    def _locate(self, pos: int) -> tuple[int, int]:
        """(sublist, offset) of the entry at rank ``pos`` (0 <= pos < len)."""
        lists = self._lists
        if len(lists) == 1:
            return 0, pos
        tree = self._fenwick()
        k = len(tree) - 1
        i = 0
        step = 1 << k.bit_length()
        while step:
            j = i + step
            if j <= k and tree[j] <= pos:
                pos -= tree[j]
                i = j
            step >>= 1
        return i, pos

    def _bisect(self, key, right: bool, lexical: bool) -> int:
        """The global position of ``key`` (an entry, or a member with
        ``lexical``), bisected left or right."""
        maxes = self._maxes
        find = bisect_right if right else bisect_left
        if lexical:
            i = find(maxes, key, key=_member)
        else:
            i = find(maxes, key)
        if i == len(maxes):
            return self._len
        sub = self._lists[i]
        j = find(sub, key, key=_member) if lexical else find(sub, key)
        return self._prefix(i) + j

    def rank(self, member: bytes) -> int | None:
        """The 0-based rank of ``member`` in ascending order, or None."""
        score = self._dict().get(member)
        if score is None:
            return None
        return self._bisect((score, member), False, False)

    def score_position(self, score: float, exclusive: bool, upper: bool) -> int:
        """The first rank past the range end given: for a lower bound, the
        rank of the first entry with score >= score (> when exclusive); for an
        upper bound, one past the last entry with score <= score (< when
        exclusive)."""
        if upper != exclusive:
            return self._bisect((score, TOP), True, False)
        return self._bisect((score, b""), False, False)

    def lex_position(self, member: bytes, exclusive: bool, upper: bool) -> int:
        """As score_position, comparing members only (zsets of equal scores)."""
        return self._bisect(member, upper != exclusive, True)

    def entries(self, start: int, stop: int) -> list:
        """The entries (score, member) of ranks start..stop-1, ascending."""
        if start >= stop:
            return []
        i, j = self._locate(start)
        lists = self._lists
        out = lists[i][j:j + stop - start]
        need = stop - start - len(out)
        while need > 0:
            i += 1
            part = lists[i][:need]
            out += part
            need -= len(part)
        return out

    def entry_at(self, pos: int) -> tuple:
        i, j = self._locate(pos)
        return self._lists[i][j]

    # --- writing (inside Keyspace.mutate) ---------------------------------------------

    def _own(self, i: int) -> list:
        """Sublist ``i``, copied first if a copy of this zset shares it."""
        shared = self._shared
        if shared is not None and shared[i]:
            self._lists[i] = self._lists[i][:]
            shared[i] = False
        return self._lists[i]

    def _grew(self, i: int, delta: int) -> None:
        tree = self._index
        if tree is not None:
            i += 1
            k = len(tree) - 1
            while i <= k:
                tree[i] += delta
                i += i & -i

    def add(self, member: bytes, score: float) -> bool:
        """Set ``member``'s score; returns whether it is new. (Never NaN.)"""
        scores = self._dict()
        old = scores.get(member)
        if old is not None:
            if old == score:  # -0.0 == 0.0: Redis keeps the old one too
                return False
            if score == 0 and not self.big:
                score = 0.0  # a listpack stores "-0" as the integer 0
            self._remove_entry((old, member))
            scores[member] = score
            self._insert_entry((score, member))
            return False
        if not self.big and (self._len >= MAX_LISTPACK_ENTRIES or len(member) > MAX_LISTPACK_VALUE):
            self.big = True  # converted before the insertion, as zsetAdd does
        if score == 0 and not self.big:
            score = 0.0
        scores[member] = score
        self._len += 1
        self._insert_entry((score, member))
        self.nbytes += len(member)
        if self.scan is not None:
            self.scan.add(member)
        return True

    def discard(self, member: bytes) -> float | None:
        """Remove ``member``; returns its score, or None if it was not there."""
        scores = self._dict()
        score = scores.pop(member, None)
        if score is None:
            return None
        self._len -= 1
        self._remove_entry((score, member))
        self._forget(member)
        return score

    def _forget(self, member: bytes) -> None:
        self.nbytes -= len(member)
        scan = self.scan
        if scan is not None:
            scan.discard(member)
            if scan.size < len(scan.buckets) and scan.bits > 4:
                self.scan = None  # as Hash.drop: the next ZSCAN builds a smaller index

    def _insert_entry(self, entry: tuple) -> None:
        maxes = self._maxes
        if not maxes:
            self._lists.append([entry])
            maxes.append(entry)
            if self._shared is not None:
                self._shared.append(False)
            self._index = None
            return
        i = bisect_left(maxes, entry)
        if i == len(maxes):
            i -= 1
            sub = self._own(i)
            sub.append(entry)
            maxes[i] = entry
        else:
            sub = self._own(i)
            insort(sub, entry)
        if len(sub) > 2 * LOAD:
            half = sub[LOAD:]
            del sub[LOAD:]
            maxes[i] = sub[-1]
            self._lists.insert(i + 1, half)
            maxes.insert(i + 1, half[-1])
            if self._shared is not None:
                self._shared.insert(i + 1, False)
            self._index = None
        else:
            self._grew(i, 1)

    def _remove_entry(self, entry: tuple) -> None:
        maxes = self._maxes
        i = bisect_left(maxes, entry)
        sub = self._own(i)
        j = bisect_left(sub, entry)
        del sub[j]
        if not sub:
            self._drop_sublist(i)
            return
        if j == len(sub):
            maxes[i] = sub[-1]
        if len(sub) < LOAD // 2 and len(maxes) > 1:
            self._merge(i)
        else:
            self._grew(i, -1)

    def _drop_sublist(self, i: int) -> None:
        del self._lists[i]
        del self._maxes[i]
        if self._shared is not None:
            del self._shared[i]
        self._index = None

    def _merge(self, i: int) -> None:
        """Merge the short sublist ``i`` into a neighbour (split again if too long)."""
        if i == len(self._maxes) - 1:
            i -= 1
        first = self._own(i)
        first += self._lists[i + 1]
        self._drop_sublist(i + 1)
        if len(first) > 2 * LOAD:
            half = first[LOAD:]
            del first[LOAD:]
            self._lists.insert(i + 1, half)
            self._maxes.insert(i + 1, half[-1])
            if self._shared is not None:
                self._shared.insert(i + 1, False)
        self._maxes[i] = first[-1]
        self._index = None

    def remove_range(self, start: int, stop: int) -> list:
        """Remove the entries of ranks start..stop-1; returns them (score, member),
        ascending. Linear in what it removes plus the number of sublists."""
        if start >= stop:
            return []
        # A copy builds its member dict from the sublists: build it before
        # they lose the entries removed here.
        scores = self._dict()
        removed = self.entries(start, stop)
        if stop - start == self._len:
            self._set_entries([])
        elif stop - start <= 8:
            for entry in removed:
                self._remove_entry(entry)
        else:
            i, j = self._locate(start)
            k, m = self._locate(stop - 1)
            lists = self._lists
            if i == k:
                sub = self._own(i)
                del sub[j:m + 1]
            else:
                head = self._own(i)
                del head[j:]
                tail = self._own(k)
                del tail[:m + 1]
                del lists[i + 1:k]
                del self._maxes[i + 1:k]
                if self._shared is not None:
                    del self._shared[i + 1:k]
            # Drop emptied sublists, refresh the maxes, merge a short remnant.
            for idx in (i + 1, i) if i != k else (i,):
                if idx < len(lists) and not lists[idx]:
                    self._drop_sublist(idx)
            for idx in range(max(i - 1, 0), min(i + 2, len(lists))):
                self._maxes[idx] = lists[idx][-1]
            self._index = None
            for idx in (i + 1, i):
                if idx < len(lists) and len(lists[idx]) < LOAD // 2 and len(lists) > 1:
                    self._merge(idx)
        for _, member in removed:
            del scores[member]
            self._forget(member)
        self._len -= len(removed)
        return removed

    def copy(self) -> "ZSet":
        """An independent copy (same entries, same encoding, no scan index) that
        shares the sublists copy-on-write: O(n / LOAD), see the module doc."""
        new = ZSet.__new__(ZSet)
        new._scores = None
        new._lists = list(self._lists)
        new._maxes = list(self._maxes)
        new._index = None if self._index is None else list(self._index)
        new._shared = [True] * len(self._lists)
        self._shared = [True] * len(self._lists)
        new._len = self._len
        new.nbytes = self.nbytes
        new.big = self.big
        new.scan = None
        return new

    @classmethod
    def from_sorted(cls, entries: list, big: bool | None = None) -> "ZSet":
        """A zset of ``entries`` (score, member), already sorted and unique;
        judged by its contents unless ``big`` is given."""
        if big is None:
            big = len(entries) > MAX_LISTPACK_ENTRIES or any(
                len(m) > MAX_LISTPACK_VALUE for _, m in entries)
        if not big:  # a listpack holds no -0 (see add)
            entries = [(0.0, m) if s == 0 else (s, m) for s, m in entries]
        new = cls.__new__(cls)
        new._scores = {m: s for s, m in entries}
        new._len = len(entries)
        new._set_entries(entries)
        new.nbytes = sum(len(m) for _, m in entries)
        new.big = big
        new.scan = None
        return new

    def check(self) -> None:
        """Assert the invariants (tests)."""
        flat = list(chain.from_iterable(self._lists))
        assert flat == sorted(flat) and len(flat) == self._len, "order"
        assert len({m for _, m in flat}) == len(flat), "unique"
        assert all(self._maxes[i] == sub[-1] for i, sub in enumerate(self._lists)), "maxes"
        assert all(self._lists), "empty sublist"
        assert self._dict() == {m: s for s, m in flat}, "dict"
        assert self.nbytes == sum(len(m) for _, m in flat), "nbytes"
        for pos in range(0, self._len, max(1, self._len // 50)):
            assert self.entry_at(pos) == flat[pos], "locate"
            assert self.rank(flat[pos][1]) == pos, "rank"
        if self._shared is not None:
            assert len(self._shared) == len(self._lists)


def encode_blocks(value: ZSet):
    """The checkpoint payload of ``value`` in pieces: the count, then one block
    per sublist (``u32 n``, n f64 scores, n u32 lengths, the members). Every
    piece is a few C-speed passes over at most 2 * LOAD entries that are
    still in the CPU's cache from the pass before, and a caller that holds a
    :meth:`ZSet.copy` may encode the blocks over several turns of the loop
    (the payload's length is known first: :func:`payload_size`)."""
    yield _U32.pack(len(value))
    swap = sys.byteorder == "big"
    for sub in value._lists:
        scores = array("d", map(_score, sub))
        members = list(map(_member, sub))
        lengths = array("I", map(len, members))
        if swap:
            scores.byteswap()
            lengths.byteswap()
        yield b"".join([_U32.pack(len(sub)), scores.tobytes(), lengths.tobytes(), *members])


def payload_size(value: ZSet) -> int:
    """The exact length of the checkpoint payload of ``value``."""
    return 4 + 4 * len(value._lists) + 12 * len(value) + value.nbytes


def _encode(value: ZSet) -> bytes:
    return b"".join(encode_blocks(value))


def _decode(buffer) -> ZSet:
    view = memoryview(buffer)
    unpack = _U32.unpack_from
    (count,) = unpack(view, 0)
    pos = 4
    swap = sys.byteorder == "big"
    entries: list = []
    while len(entries) < count:
        (n,) = unpack(view, pos)
        if n == 0:
            raise ValueError("empty block in a zset payload")
        scores = array("d")
        scores.frombytes(view[pos + 4:pos + 4 + 8 * n])
        lengths = array("I")
        lengths.frombytes(view[pos + 4 + 8 * n:pos + 4 + 12 * n])
        if len(lengths) != n:
            raise ValueError("zset block runs past its payload")
        if swap:
            scores.byteswap()
            lengths.byteswap()
        pos += 4 + 12 * n
        end = pos + sum(lengths)
        blob = bytes(view[pos:end])
        if len(blob) != end - pos:
            raise ValueError("zset members run past their payload")
        pos = end
        ends = list(accumulate(lengths))
        entries += zip(scores, [blob[a:b] for a, b in zip(chain((0,), ends), ends)])
    if len(entries) != count or pos != len(view):
        raise ValueError("zset payload does not end after its last entry")
    for a, b in zip(entries, islice(entries, 1, None)):
        if not a < b:
            raise ValueError("zset payload out of order or repeats a member")
    if any(sc != sc for sc, _ in entries):
        raise ValueError("zset payload holds a NaN score")
    return ZSet.from_sorted(entries)


ZSET = Codec(
    kind=5,
    name="zset",
    pytype=ZSet,
    encoding=lambda value: "skiplist" if value.big else "listpack",
    encode=_encode,
    decode=_decode,
    size=payload_size,
    snapshot_copy=ZSet.copy,
    encode_blocks=encode_blocks,
)
