"""The data: numbered databases of keys, values and expiry times.

Synchronous and free of I/O; the clock is passed in so tests and WAL replay
control time. Each value's Python type is its kind (``types/``: ``bytes`` is
a string); commands reach values through the *typed accessors* of
:class:`Keyspace`, the one place that raises WRONGTYPE and deletes an
aggregate left empty:

* :meth:`Keyspace.read` / :meth:`Keyspace.read_counted`: the live value of a
  kind or None (lazy expiry first; the second counts hits and misses);
* :meth:`Keyspace.write`: the same check for a command about to write; a
  running checkpoint gets the key's pre-image first (see below);
* :meth:`Keyspace.mutate`: a context for changing an aggregate in place: it
  creates the value if asked, and deletes the key when the aggregate is
  empty at the end;
* :meth:`Database.store` / :meth:`Database.remove` / ``set_expire`` /
  ``persist`` / ``clear`` / ``swap_contents``: the raw writes every write
  path ends in.

Write hooks
-----------
Every raw write tests one attribute, ``Database._hook``; it is None unless
someone listens, so the write path pays nothing more. When set (a
:class:`_Hooks`), a write calls ``before(db, key)`` (a running checkpoint
saves the key's pre-image, see checkpoint.py) and then, once done, the
``modified(db_index, key)`` listeners registered with
:meth:`Keyspace.add_modified_listener` (WATCH, blocked clients and keyspace
notifications will listen). ``key`` is None when a whole database changed at
once (FLUSHDB, FLUSHALL, SWAPDB). A listener is told of every key a write
changed, at least once per raw write (RENAME over an existing key tells
``dst`` twice: removed, then stored), never of a key left unchanged.

Expiry is done two ways, as in Redis:

* lazily: a lookup of an expired key deletes it first;
* actively: :meth:`Keyspace.active_expire_cycle` pops keys whose time has come
  from a heap ordered by expiry time, bounded in keys per call, so expired
  keys nobody reads do not pile up and no cycle hogs the loop.

Every deletion by expiry is reported through ``on_expire(db_index, key)`` so
the server can log it to the WAL (a replayed log then needs no clock). While
the WAL is being replayed, ``expiry_enabled`` is off: keys are never expired
by the clock during replay, only by the ``DEL`` records the log holds, which
keeps replay deterministic.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from typing import Callable, Iterator

from .errors import WRONGTYPE, CommandError
from .types import STRING, Codec

ExpireHook = Callable[[int, bytes], None]


def now_ms() -> int:
    """Wall-clock Unix time in milliseconds (expiry times are absolute)."""
    return time.time_ns() // 1_000_000


class Database:
    """One numbered database: ``data`` maps key to value, ``expires`` key to Unix ms."""

    __slots__ = ("index", "data", "expires", "_heap", "_scan", "_hook")

    def __init__(self, index: int) -> None:
        self.index = index
        self.data: dict[bytes, object] = {}
        self.expires: dict[bytes, int] = {}
        # (when_ms, key) for active expiry; entries go stale when a TTL is
        # changed or removed and are skipped (and compacted) lazily.
        self._heap: list[tuple[int, bytes]] = []
        # The SCAN index (see scan()); built on the first SCAN, then kept.
        self._scan: _ScanIndex | None = None
        # Write hooks (see the module doc): None when nobody listens.
        self._hook: _Hooks | None = None

    def __len__(self) -> int:
        return len(self.data)

    # --- writes without expiry logic; the Keyspace methods wrap these -----

    def store(self, key: bytes, value: object) -> None:
        """Set a value; keeps any TTL (callers clear it when the command says so)."""
        hook = self._hook
        if hook is not None:
            hook.before(self, key)
        if self._scan is not None and key not in self.data:
            self._scan.add(key)
        self.data[key] = value
        if hook is not None:
            hook.after(self.index, key)

    def remove(self, key: bytes) -> bool:
        """Delete a key and its TTL. Returns whether it existed."""
        hook = self._hook
        if hook is not None:
            if key not in self.data:
                return False
            hook.before(self, key)
        try:
            del self.data[key]
        except KeyError:
            return False
        self.expires.pop(key, None)
        if self._scan is not None:
            self._scan.discard(key)
        if hook is not None:
            hook.after(self.index, key)
        return True

    def set_expire(self, key: bytes, when_ms: int) -> None:
        hook = self._hook
        if hook is not None:
            hook.before(self, key)
        self.expires[key] = when_ms
        heapq.heappush(self._heap, (when_ms, key))
        if len(self._heap) > 2 * len(self.expires) + 1024:
            # Too many stale entries: rebuild from the live TTLs.
            self._heap = [(t, k) for k, t in self.expires.items()]
            heapq.heapify(self._heap)
        if hook is not None:
            hook.after(self.index, key)

    def persist(self, key: bytes) -> bool:
        hook = self._hook
        if hook is not None:
            if key not in self.expires:
                return False
            hook.before(self, key)
            self.expires.pop(key)
            hook.after(self.index, key)
            return True
        return self.expires.pop(key, None) is not None

    def clear(self) -> None:
        # New dict objects, never dict.clear(): a running checkpoint may still
        # be reading the old ones (they are frozen from here on).
        self.data = {}
        self.expires = {}
        self._heap = []
        self._scan = None
        if self._hook is not None:
            self._hook.after(self.index, None)

    def swap_contents(self, other: "Database") -> None:
        self.data, other.data = other.data, self.data
        self.expires, other.expires = other.expires, self.expires
        self._heap, other._heap = other._heap, self._heap
        self._scan, other._scan = other._scan, self._scan
        if self._hook is not None:
            self._hook.after(self.index, None)
            self._hook.after(other.index, None)

    def scan(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        """One SCAN step: the next cursor (0 = done) and some keys.

        Keys are grouped in ``hash(key)`` buckets visited in Redis's
        reverse-binary cursor order, so a full iteration returns every key
        present from start to end even if the bucket table grows or shrinks
        between calls (some keys may come twice, as in Redis).
        """
        if self._scan is None:
            self._scan = _ScanIndex(self.data)
        return self._scan.step(cursor, count)


class _ScanIndex:
    """Keys bucketed by the low bits of their hash, for stateless SCAN cursors."""

    __slots__ = ("bits", "buckets", "size")

    #: Grow the table when buckets average more keys than this; keeps a SCAN
    #: step's work near COUNT, as Redis's hash table load factor does.
    MAX_LOAD = 8

    def __init__(self, keys: Iterator[bytes] | dict) -> None:
        self._build(list(keys))

    def _build(self, keys: list[bytes]) -> None:
        """Bucket ``keys`` in a table sized for them (at most MAX_LOAD per bucket)."""
        self.bits = 4
        while (1 << self.bits) * self.MAX_LOAD < len(keys):
            self.bits += 1
        self.buckets: list[set[bytes]] = [set() for _ in range(1 << self.bits)]
        mask = (1 << self.bits) - 1
        for k in keys:
            self.buckets[hash(k) & mask].add(k)
        self.size = len(keys)

    def add(self, key: bytes) -> None:
        self.buckets[hash(key) & ((1 << self.bits) - 1)].add(key)
        self.size += 1
        if self.size > (1 << self.bits) * self.MAX_LOAD:
            self._build(list(itertools.chain.from_iterable(self.buckets)))

    def discard(self, key: bytes) -> None:
        bucket = self.buckets[hash(key) & ((1 << self.bits) - 1)]
        if key in bucket:
            bucket.remove(key)
            self.size -= 1

    def random_key(self) -> bytes:
        """A uniformly random key (the index must not be empty): a random bucket,
        then a random slot of at most 2 * MAX_LOAD, retried when the slot is
        empty (rejection sampling, so every key is equally likely while no
        bucket holds more than that; an overfull one is taken as it is). An
        index left sparse by deletions is rebuilt first, so the expected
        number of draws stays small."""
        if self.size * 8 < len(self.buckets) and len(self.buckets) > 16:
            self._build(list(itertools.chain.from_iterable(self.buckets)))
        buckets = self.buckets
        bits = self.bits
        slots = 2 * self.MAX_LOAD
        while True:
            bucket = buckets[random.getrandbits(bits)]
            n = len(bucket)
            if not n:
                continue
            j = random.randrange(slots) if n <= slots else 0
            if j < n:
                return next(itertools.islice(bucket, j, None))

    def step(self, cursor: int, count: int) -> tuple[int, list[bytes]]:
        mask = (1 << self.bits) - 1
        out: list[bytes] = []
        v = cursor
        while True:
            out.extend(self.buckets[v & mask])
            # Reverse-binary increment of the unmasked bits (Redis's dictScan).
            v |= ~mask & ((1 << 64) - 1)
            v = _rev64(v)
            v = (v + 1) & ((1 << 64) - 1)
            v = _rev64(v)
            if v == 0 or len(out) >= count:
                return v, out


def _rev64(v: int) -> int:
    return int(f"{v:064b}"[::-1], 2)


class _Hooks:
    """What a raw write calls when someone listens (see the module doc)."""

    __slots__ = ("snapshot", "listeners", "on_new", "_creating")

    def __init__(self) -> None:
        #: The running checkpoint's pre-image keeper (checkpoint.Snapshot), or None.
        self.snapshot = None
        #: modified(db_index, key) callbacks.
        self.listeners: list[Callable[[int, bytes | None], None]] = []
        #: new_key(db_index, key): a key that did not exist was stored
        #: (Redis's dbAdd; the "new" keyspace event), or None.
        self.on_new: Callable[[int, bytes], None] | None = None
        # The write between before() and after() creates its key.
        self._creating = False

    def before(self, db: Database, key: bytes) -> None:
        if self.snapshot is not None:
            self.snapshot.preserve(db, key)
        if self.on_new is not None:
            self._creating = key not in db.data

    def after(self, index: int, key: bytes | None) -> None:
        for listener in self.listeners:
            listener(index, key)
        if self._creating:
            self._creating = False
            if key is not None and self.on_new is not None:
                self.on_new(index, key)

    @property
    def idle(self) -> bool:
        return self.snapshot is None and not self.listeners and self.on_new is None


class _Mutation:
    """The context :meth:`Keyspace.mutate` returns (see there)."""

    __slots__ = ("ks", "db", "key", "value", "created")

    def __init__(self, ks: "Keyspace", db: Database, key: bytes, value: object,
                 created: bool) -> None:
        self.ks = ks
        self.db = db
        self.key = key
        self.value = value
        self.created = created

    def __enter__(self) -> object:
        return self.value

    def __exit__(self, *exc: object) -> None:
        db, key, value = self.db, self.key, self.value
        if value is None:
            return
        if not len(value):  # type: ignore[arg-type]
            # The rule for every aggregate: an empty one does not exist.
            if not self.created:
                db.remove(key)
        elif self.created:
            db.store(key, value)
        elif db._hook is not None:
            db._hook.after(db.index, key)


class Keyspace:
    """All databases, the clock, and expiry.

    ``on_expire(db_index, key)`` is called for every key removed because its
    time came (lazily or actively), after it is gone.
    """

    def __init__(self, databases: int = 16, clock: Callable[[], int] = now_ms,
                 on_expire: ExpireHook | None = None) -> None:
        self.dbs = [Database(i) for i in range(databases)]
        self.clock = clock
        self.on_expire = on_expire
        #: on_miss(db_index, key): a read found no key (Redis's "keymiss" event);
        #: None unless someone listens, so a miss pays one attribute test.
        self.on_miss: ExpireHook | None = None
        self.expiry_enabled = True
        #: CLIENT PAUSE (WRITE or ALL) is on: a key whose time has come reads
        #: as missing but is not deleted (nothing is written while paused, as
        #: in Redis); active expiry waits until the pause ends.
        self.expiry_paused = False
        self.expired_keys = 0
        self.keyspace_hits = 0
        self.keyspace_misses = 0
        self._hooks = _Hooks()

    # --- write hooks --------------------------------------------------------

    def add_modified_listener(self, callback: Callable[[int, bytes | None], None]) -> None:
        """Call ``callback(db_index, key)`` after every write (key None: whole database)."""
        self._hooks.listeners.append(callback)
        self._arm()

    def remove_modified_listener(self, callback: Callable[[int, bytes | None], None]) -> None:
        self._hooks.listeners.remove(callback)
        self._arm()

    def set_new_listener(self, callback: Callable[[int, bytes], None] | None) -> None:
        """Call ``callback(db_index, key)`` after a write creates a key (None: stop)."""
        self._hooks.on_new = callback
        self._arm()

    def set_snapshot(self, snapshot: object | None) -> None:
        """Install (or, with None, remove) a running checkpoint's pre-image keeper."""
        self._hooks.snapshot = snapshot
        self._arm()

    def _arm(self) -> None:
        hook = None if self._hooks.idle else self._hooks
        for db in self.dbs:
            db._hook = hook

    # --- typed accessors: WRONGTYPE is raised here and only here -------------

    def read(self, db: Database, key: bytes, kind: Codec = STRING) -> object | None:
        """The live value of ``key`` if it is of ``kind``, None if absent; else WRONGTYPE."""
        if db.expires and key in db.expires and self.expire_if_needed(db, key):
            return None
        value = db.data.get(key)
        if value is None or type(value) is kind.pytype:
            return value
        raise CommandError(WRONGTYPE)

    def read_counted(self, db: Database, key: bytes, kind: Codec = STRING) -> object | None:
        """:meth:`read` for read commands: also counts a keyspace hit or miss."""
        if db.expires and key in db.expires and self.expire_if_needed(db, key):
            value = None
        else:
            value = db.data.get(key)
        if value is None:
            self.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(db.index, key)
            return None
        self.keyspace_hits += 1
        if type(value) is kind.pytype:
            return value
        raise CommandError(WRONGTYPE)

    def write(self, db: Database, key: bytes, kind: Codec = STRING) -> object | None:
        """:meth:`read` for a command that will write ``key`` (replace it with
        :meth:`Database.store`, or change it in place through :meth:`mutate`)."""
        return self.read(db, key, kind)

    def mutate(self, db: Database, key: bytes, kind: Codec, create: bool = True) -> _Mutation:
        """A context yielding the aggregate at ``key`` to change in place.

        WRONGTYPE if ``key`` holds another kind. If it is absent, a new empty
        value of ``kind`` (``create``) or None. A running checkpoint gets the
        key's pre-image before the value is yielded. On exit: a value left
        empty is deleted (a new one is never stored), a new non-empty one is
        stored, and ``modified`` is signalled.
        """
        value = self.read(db, key, kind)
        created = value is None
        if created:
            if not create:
                return _Mutation(self, db, key, None, False)
            value = kind.pytype()
        elif db._hook is not None:
            db._hook.before(db, key)
        return _Mutation(self, db, key, value, created)

    def expire_if_needed(self, db: Database, key: bytes) -> bool:
        """Delete ``key`` if its time has come. Returns whether it is expired
        (then gone, or, while clients are paused, still there but to be read
        as missing: see ``expiry_paused``)."""
        when = db.expires.get(key)
        if when is None or not self.expiry_enabled or when > self.clock():
            return False
        if self.expiry_paused:
            return True
        db.remove(key)
        self.expired_keys += 1
        if self.on_expire is not None:
            self.on_expire(db.index, key)
        return True

    def lookup(self, db: Database, key: bytes) -> object | None:
        """The live value of ``key`` or None, expiring it first if due."""
        if db.expires and key in db.expires and self.expire_if_needed(db, key):
            return None
        return db.data.get(key)

    def lookup_read(self, db: Database, key: bytes) -> object | None:
        """Like lookup, and counts a keyspace hit or miss (for INFO stats)."""
        value = self.lookup(db, key)
        if value is None:
            self.keyspace_misses += 1
            if self.on_miss is not None:
                self.on_miss(db.index, key)
        else:
            self.keyspace_hits += 1
        return value

    def exists(self, db: Database, key: bytes) -> bool:
        return self.lookup(db, key) is not None

    def ttl_ms(self, db: Database, key: bytes) -> int | None:
        """Absolute expiry of a live key in Unix ms, or None if it has none."""
        return db.expires.get(key)

    def active_expire_cycle(self, max_keys: int = 200) -> int:
        """Expire up to ``max_keys`` keys whose time has passed, across databases.

        The bound keeps one cycle short (Redis bounds its cycle by CPU time the
        same way); the caller runs it ``hz`` times a second. Returns how many
        keys were expired.
        """
        if not self.expiry_enabled or self.expiry_paused:
            return 0
        now = self.clock()
        done = 0
        for db in self.dbs:
            heap = db._heap
            while heap and done < max_keys and heap[0][0] <= now:
                when, key = heapq.heappop(heap)
                if db.expires.get(key) != when:
                    continue  # stale: the TTL changed since this entry was pushed
                db.remove(key)
                self.expired_keys += 1
                done += 1
                if self.on_expire is not None:
                    self.on_expire(db.index, key)
        return done

    def random_key(self, db: Database) -> bytes | None:
        """A random live key, or None if the database is empty.

        O(1) expected, as Redis's: drawn from the SCAN index's buckets (built
        on the first SCAN or RANDOMKEY, then kept up to date by every write),
        not by walking the dict to a random offset (O(keys) a call).
        """
        key = None
        for _ in range(100):
            if not db.data:
                return None
            if db._scan is None:
                db._scan = _ScanIndex(db.data)
            key = db._scan.random_key()
            if not self.expire_if_needed(db, key):
                return key
        # Mostly expired keys: keep the last candidate rather than loop forever
        # (Redis returns an expired key in the same situation).
        return key if key in db.data else next(iter(db.data), None)
