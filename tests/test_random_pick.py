"""SPOP, SRANDMEMBER and HRANDFIELD pick through the type's random pool
(types/_pool.py): uniform, O(1) per member and O(count) per COUNT pick once
the pool exists, and the pool always mirrors the set or hash.

Uniformity is a chi-square test with a fixed seed (no flakiness); cost is
counted in elements iterated, never timed.
"""

from __future__ import annotations

import itertools
import random

import pytest

from kvserver import commands
from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from kvserver.types.hash import Hash
from kvserver.types.set import Set

#: chi-square critical values at p = 0.001 by degrees of freedom (a fixed
#: seed makes the test deterministic; the bound only has to be honest).
CHI2_999 = {9: 27.88, 19: 43.82}


def _session() -> Session:
    core = Core(Config(port=0))
    core.log = lambda s, argv: None  # noqa: E731
    return Session(core)


def _chi2(counts: dict, n_bins: int, draws: int) -> float:
    expected = draws / n_bins
    assert len(counts) == n_bins, counts
    return sum((c - expected) ** 2 / expected for c in counts.values())


def _count(draws):
    out: dict = {}
    for d in draws:
        out[d] = out.get(d, 0) + 1
    return out


@pytest.mark.parametrize("request_", [
    [b"SRANDMEMBER", b"s"], [b"SRANDMEMBER", b"s", b"3"], [b"SRANDMEMBER", b"s", b"-4"],
    [b"HRANDFIELD", b"h"], [b"HRANDFIELD", b"h", b"3"], [b"HRANDFIELD", b"h", b"-4"]])
def test_random_picks_are_uniform(request_):
    random.seed(1234)
    s = _session()
    members = [b"m%d" % i for i in range(20)]
    commands.execute(s, [b"SADD", b"s", *members])
    commands.execute(s, [b"HSET", b"h", *[x for m in members for x in (m, b"v")]])
    # Churn first, so the pool has seen swap-removals and re-adds.
    for m in members[::3]:
        commands.execute(s, [b"SREM", b"s", m]), commands.execute(s, [b"HDEL", b"h", m])
        commands.execute(s, [b"SPOP", b"s"])
        commands.execute(s, [b"SADD", b"s", *members]), commands.execute(s, [b"HSET", b"h", m, b"v"])
    draws = []
    for _ in range(4000):
        reply = commands.execute(s, request_)
        draws += reply if isinstance(reply, list) else [reply]
    assert _chi2(_count(draws), 20, len(draws)) < CHI2_999[19]


def test_spop_is_uniform():
    random.seed(99)
    s = _session()
    members = [b"%d" % i for i in range(10)]
    commands.execute(s, [b"SADD", b"s", *members])
    draws = []
    for _ in range(5000):
        m = commands.execute(s, [b"SPOP", b"s"])
        draws.append(m)
        commands.execute(s, [b"SADD", b"s", m])
    assert _chi2(_count(draws), 10, len(draws)) < CHI2_999[9]


@pytest.fixture
def iterated(monkeypatch):
    """Count the elements every Python-level iteration of a Set or Hash yields."""
    seen = [0]
    set_iter, dict_iter = set.__iter__, dict.__iter__

    def counting(base):
        def it(self):
            for x in base(self):
                seen[0] += 1
                yield x
        return it
    monkeypatch.setattr(Set, "__iter__", counting(set_iter))
    monkeypatch.setattr(Hash, "__iter__", counting(dict_iter))
    return seen


def test_random_picks_do_not_walk_a_big_set_or_hash(iterated):
    """Before the pool, each pick walked to a random position (O(size), so
    about 10k elements a pick here); now the first pick builds the pool once
    and every later one costs O(1) or O(count)."""
    s = _session()
    n = 20000
    commands.execute(s, [b"SADD", b"s", *[b"%d" % i for i in range(n)]])
    commands.execute(s, [b"HSET", b"h", *[x for i in range(n) for x in (b"%d" % i, b"v")]])
    iterated[0] = 0
    for _ in range(300):
        commands.execute(s, [b"SPOP", b"s"])
        commands.execute(s, [b"SRANDMEMBER", b"s"])
        commands.execute(s, [b"HRANDFIELD", b"h"])
    for _ in range(50):
        commands.execute(s, [b"SPOP", b"s", b"10"])
        commands.execute(s, [b"SRANDMEMBER", b"s", b"10"])
        commands.execute(s, [b"SRANDMEMBER", b"s", b"-10"])
        commands.execute(s, [b"HRANDFIELD", b"h", b"10", b"WITHVALUES"])
        commands.execute(s, [b"HRANDFIELD", b"h", b"-10"])
    assert iterated[0] <= 2 * n  # the two pool builds, nothing per pick
    assert commands.execute(s, [b"SCARD", b"s"]) == n - 300 - 500


def test_the_pool_mirrors_the_set_and_hash_through_every_change():
    random.seed(7)
    s = _session()
    for step in range(3000):
        m = b"%d" % random.randrange(60)
        op = random.randrange(6)
        if op == 0:
            commands.execute(s, [b"SADD", b"s", m])
        elif op == 1:
            commands.execute(s, [b"SREM", b"s", m])
        elif op == 2:
            commands.execute(s, [b"SPOP", b"s", b"%d" % random.randrange(4)])
        elif op == 3:
            commands.execute(s, [b"SMOVE", b"s", b"t", m])
            commands.execute(s, [b"SRANDMEMBER", b"t"])
        elif op == 4:
            commands.execute(s, [b"HSET", b"h", m, b"x"])
            commands.execute(s, [b"HRANDFIELD", b"h"])
        else:
            commands.execute(s, [b"HDEL", b"h", m])
        for key in (b"s", b"t", b"h"):
            value = s.db.data.get(key)
            if value is not None and value.pool is not None:
                assert sorted(value.pool.items) == sorted(value)
                assert all(value.pool.items[i] == k for k, i in value.pool.position.items())
    # A set deleted by its last SPOP is gone; a copy carries no pool.
    assert s.db.data[b"h"].copy().pool is None


class _CountingDict(dict):
    """A keyspace dict that counts the walks over it (iteration, not lookups)."""

    walks = 0

    def __iter__(self):
        type(self).walks += 1
        return super().__iter__()


class _EveryDraw:
    """Stands for the random module in keyspace: its draws go through every
    (bucket, slot) pair in turn, so any run of as many picks as there are keys
    must return each key exactly once if the sampling is uniform (exact, where
    a chi-square over a hash-seed-dependent bucket layout would be flaky)."""

    def __init__(self, bits: int, slots: int) -> None:
        self._pairs = itertools.cycle(itertools.product(range(1 << bits), range(slots)))
        self._slot = 0

    def getrandbits(self, bits: int) -> int:
        bucket, self._slot = next(self._pairs)
        return bucket

    def randrange(self, n: int) -> int:
        return self._slot


def test_randomkey_is_uniform_and_never_walks_the_keyspace(monkeypatch):
    from kvserver import keyspace
    s = _session()
    db = s.core.keyspace.dbs[0]
    db.data = _CountingDict()
    for i in range(20_000):
        db.store(b"k%05d" % i, b"v")
    for i in range(20, 20_000):     # deletions leave the SCAN index sparse: it is rebuilt
        db.remove(b"k%05d" % i)
    _CountingDict.walks = 0
    assert commands.execute(s, [b"RANDOMKEY"]) in db.data   # builds the index (one walk)
    index = db._scan
    monkeypatch.setattr(keyspace, "random", _EveryDraw(index.bits, 2 * index.MAX_LOAD))
    counts = _count(commands.execute(s, [b"RANDOMKEY"]) for _ in range(3 * 20))
    assert _CountingDict.walks <= 1      # the index is built once, not a walk per call
    assert counts == {b"k%05d" % i: 3 for i in range(20)}
