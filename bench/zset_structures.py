"""Sorted-set structures compared: ``python -m bench.zset_structures [sizes...]``.

What docs/performance.md's "Sorted sets" section reports. For each size
(default 100, 10,000 and 1,000,000 members, random float scores, members
``m<i>``) and each candidate structure, microseconds per operation:

* ``zadd``: inserting a new member (a fresh random score) into a set of that size;
* ``zrank``: the rank of a random member;
* ``zrange10``: the 10 entries from a random rank (``ZRANGE key r r+9``);
* ``zscore``: a member's score (a dict lookup in every candidate);

and then, for the chosen structure (kvserver's :class:`~kvserver.types.zset.ZSet`),
what a running checkpoint costs with one zset of the largest size: the
copy-on-write pre-image (``ZSet.copy``), the first write after it (copies
one sublist), the codec's ``encode`` (one value: one step on the loop) and,
for comparison, a plain ``dict.copy()`` of the member dict.

Candidates:

* ``zset`` -- kvserver's: member dict + sorted sublists of (score, member)
  (LOAD 1000) + a Fenwick tree over the sublist lengths;
* ``skiplist`` -- Redis's design in pure Python: member dict + a skip list
  with spans (p = 1/4, 32 levels), rank by summing spans;
* ``onelist`` -- member dict + one sorted Python list (bisect.insort: the
  insertion is an O(n) memmove).

Single process, time.perf_counter, best of 3 rounds; the machine is shared,
so absolute figures move with its load (ratios much less).
"""

from __future__ import annotations

import random
import sys
import time
from bisect import bisect_left, insort

from kvserver.types.zset import ZSET, ZSet

OPS = 2000
MAX_LEVEL = 32


class SkipList:
    """Redis's zskiplist in Python: nodes [member, score, forwards, spans]."""

    def __init__(self) -> None:
        self.head = [None, None, [None] * MAX_LEVEL, [0] * MAX_LEVEL]
        self.level = 1
        self.length = 0
        self.scores: dict = {}

    @staticmethod
    def _random_level() -> int:
        level = 1
        while level < MAX_LEVEL and random.random() < 0.25:
            level += 1
        return level

    @classmethod
    def from_sorted(cls, entries: list) -> "SkipList":
        sl = cls()
        last = [sl.head] * MAX_LEVEL
        last_rank = [0] * MAX_LEVEL
        for rank, (score, member) in enumerate(entries, 1):
            level = cls._random_level()
            node = [member, score, [None] * level, [0] * level]
            for i in range(level):
                last[i][2][i] = node
                last[i][3][i] = rank - last_rank[i]
                last[i] = node
                last_rank[i] = rank
            sl.level = max(sl.level, level)
            sl.scores[member] = score
        sl.length = len(entries)
        return sl

    def insert(self, score: float, member: bytes) -> None:
        update = [None] * MAX_LEVEL
        rank = [0] * MAX_LEVEL
        x = self.head
        for i in range(self.level - 1, -1, -1):
            rank[i] = 0 if i == self.level - 1 else rank[i + 1]
            nxt = x[2][i]
            while nxt is not None and (nxt[1] < score or (nxt[1] == score and nxt[0] < member)):
                rank[i] += x[3][i]
                x = nxt
                nxt = x[2][i]
            update[i] = x
        level = self._random_level()
        if level > self.level:
            for i in range(self.level, level):
                rank[i] = 0
                update[i] = self.head
                self.head[3][i] = self.length
            self.level = level
        node = [member, score, [None] * level, [0] * level]
        for i in range(level):
            node[2][i] = update[i][2][i]
            update[i][2][i] = node
            node[3][i] = update[i][3][i] - (rank[0] - rank[i])
            update[i][3][i] = (rank[0] - rank[i]) + 1
        for i in range(level, self.level):
            update[i][3][i] += 1
        self.length += 1
        self.scores[member] = score

    def rank(self, member: bytes) -> int:
        score = self.scores[member]
        x, r = self.head, 0
        for i in range(self.level - 1, -1, -1):
            nxt = x[2][i]
            while nxt is not None and (nxt[1] < score or (nxt[1] == score and nxt[0] <= member)):
                r += x[3][i]
                x = nxt
                nxt = x[2][i]
            if x[0] == member:
                return r - 1
        raise KeyError(member)

    def range(self, start: int, count: int) -> list:
        x, traversed = self.head, 0
        target = start + 1
        for i in range(self.level - 1, -1, -1):
            while x[2][i] is not None and traversed + x[3][i] <= target:
                traversed += x[3][i]
                x = x[2][i]
        out = []
        while x is not None and len(out) < count:
            out.append((x[1], x[0]))
            x = x[2][0]
        return out


class OneList:
    """A member dict and one sorted list of (score, member)."""

    def __init__(self, entries: list) -> None:
        self.entries = list(entries)
        self.scores = {m: s for s, m in entries}

    def insert(self, score: float, member: bytes) -> None:
        insort(self.entries, (score, member))
        self.scores[member] = score

    def rank(self, member: bytes) -> int:
        return bisect_left(self.entries, (self.scores[member], member))

    def range(self, start: int, count: int) -> list:
        return self.entries[start:start + count]


def _best(fn, rounds: int = 3) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def measure(n: int, out=print) -> dict:
    rng = random.Random(n)
    entries = sorted((rng.random() * 1e6, b"m%d" % i) for i in range(n))
    members = [m for _, m in entries]
    probes = [rng.choice(members) for _ in range(OPS)]
    starts = [rng.randrange(max(1, n - 10)) for _ in range(OPS)]
    results = {}
    builders = {
        "zset": lambda: ZSet.from_sorted(list(entries)),
        "skiplist": lambda: SkipList.from_sorted(entries),
        "onelist": lambda: OneList(entries),
    }
    for name, build in builders.items():
        s = build()
        if name == "zset":
            zadd = lambda s=s: [s.add(b"new%d" % i, rng.random() * 1e6) for i in range(OPS)]  # noqa: E731
            zrank = lambda s=s: [s.rank(m) for m in probes]  # noqa: E731
            zrange = lambda s=s: [s.entries(a, a + 10) for a in starts]  # noqa: E731
            zscore = lambda s=s: [s.score(m) for m in probes]  # noqa: E731
        else:
            zadd = lambda s=s: [s.insert(rng.random() * 1e6, b"new%d" % i) for i in range(OPS)]  # noqa: E731
            zrank = lambda s=s: [s.rank(m) for m in probes]  # noqa: E731
            zrange = lambda s=s: [s.range(a, 10) for a in starts]  # noqa: E731
            zscore = lambda s=s: [s.scores.get(m) for m in probes]  # noqa: E731
        # zadd adds members: one round each on a fresh copy keeps the size n.
        row = {"zadd": _best(zadd, 1) / OPS * 1e6, "zrank": _best(zrank) / OPS * 1e6,
               "zrange10": _best(zrange) / OPS * 1e6, "zscore": _best(zscore) / OPS * 1e6}
        results[name] = row
        out(f"{n:>9,} {name:<9} " + "  ".join(f"{k} {v:7.2f} us" for k, v in row.items()))
    return results


def checkpoint_costs(n: int, out=print) -> dict:
    rng = random.Random(7)
    z = ZSet.from_sorted(sorted((rng.random() * 1e6, b"member:%d" % i) for i in range(n)))
    copy_s = _best(lambda: z.copy())
    z.copy()
    t = time.perf_counter()
    z.add(b"after-copy", 0.5)
    first_write = time.perf_counter() - t
    encode_s = _best(lambda: ZSET.encode(z))
    dict_copy = _best(lambda: dict(z._dict()).copy())
    costs = {"copy_ms": copy_s * 1e3, "first_write_ms": first_write * 1e3,
             "encode_ms": encode_s * 1e3, "dict_copy_ms": dict_copy * 1e3}
    out(f"checkpoint with one {n:,}-member zset: " +
        ", ".join(f"{k} {v:.2f}" for k, v in costs.items()))
    return costs


def memory(n: int, out=print) -> dict:
    """Bytes per member of each structure holding ``n`` members (tracemalloc;
    the members' bytes objects and the score floats are shared with the input
    and not counted: this is what the structure adds)."""
    import tracemalloc
    rng = random.Random(1)
    entries = sorted((rng.random() * 1e6, b"m%d" % i) for i in range(n))
    sizes = {}
    fresh = lambda: [(sc, m) for sc, m in entries]  # noqa: E731  (new tuples, counted)
    for name, build in (("zset", lambda: ZSet.from_sorted(fresh())),
                        ("skiplist", lambda: SkipList.from_sorted(entries)),
                        ("onelist", lambda: OneList(fresh()))):
        tracemalloc.start()
        s = build()
        used = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        del s
        sizes[name] = used / n
    out(f"memory at {n:,} members, bytes per member beyond the members: " +
        ", ".join(f"{k} {v:.0f}" for k, v in sizes.items()))
    return sizes


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or [100, 10_000, 1_000_000]
    for n in sizes:
        measure(n)
    for n in (1, 100, 10_000):
        memory(n)
    checkpoint_costs(max(sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
