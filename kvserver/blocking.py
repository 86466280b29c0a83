"""Blocked clients: who waits on which keys, which keys are ready, serving them in order.

Redis's ``blocked.c`` for keys (lists today, sorted sets next), as one
generic mechanism. A blocking command that finds nothing to take calls
:func:`block` and returns the :class:`~kvserver.client.Deferred` it gets;
the dispatcher hands that to the connection, which puts the client in
BLOCKED mode (its later requests wait in its buffer) and holds the reply.

The API a blocking command uses (kvserver/commands/blocking_lists.py is
the model)::

    from ..blocking import block, may_block, parse_timeout

    deadline = parse_timeout(argv[-1], client.core.keyspace.clock())   # Redis's errors
    ... try to pop now; if it worked, reply as the non-blocking form ...
    if not may_block(client):                   # MULTI/EXEC, scripts
        return NULL_ARRAY                       # "timeout" at once
    return block(client, keys, deadline, serve, timeout_reply=NULL_ARRAY)

``serve(client, key)`` is called when ``key`` (in the client's database)
may hold something for it; it runs as the blocked client (``client.db``,
``client.log``...), inside an open execution unit, and returns the reply
(an :class:`~kvserver.protocol.ErrorReply` too, or a CommandError raised:
the client is answered and unblocked) or None to keep waiting: the key is absent, empty or of
another type now, as Redis leaves a client blocked when its key changed
type. It does the pop, logs its effect under the real name
(``LPOP key 1``, ``LPOP``+``RPUSH`` for a move) and notifies, as the
non-blocking command would.

Semantics, as Redis 7.0.15:

* **FIFO per key**: the clients waiting on a key are served in the order
  they blocked (``Blocking.by_db[db][key]`` is an insertion-ordered dict).
* **Ready keys**: while any client is blocked, :class:`Blocking` listens
  to the keyspace's ``modified(db, key)`` signal (and only then: with no
  blocked client the write path pays nothing). A write that leaves a
  waited key existing marks it ready (a whole-database change, SWAPDB,
  marks every waited key of that database that exists); pushes, LMOVE,
  RENAME, MOVE, COPY, SORT ... STORE, SWAPDB all reach it. Marking more
  than Redis's ``signalKeyAsReady`` (which fires on key creation) changes
  nothing observable: ``serve`` decides, and a waited key that holds a
  value of the waited type must have been created since the client
  blocked.
* **When**: :meth:`Blocking.serve_ready` runs after each command the
  dispatcher runs for a client (its general lane: the fast lane's GET, SET,
  INCR never make a list or sorted set), so after a whole EXEC or script,
  never inside one (Redis's ``handleClientsBlockedOnKeys`` after
  ``call()``). A key that a later command of the same EXEC emptied leaves
  its clients blocked: ``serve`` finds nothing. Serving a BLMOVE may make
  its destination ready; that is served in the same round.
* **Timeouts** are loop timers (no polling): the client gets
  ``timeout_reply`` (a null array) when its deadline passes. ``0`` waits
  forever. Inside MULTI or a script the command must not block
  (:func:`may_block`) and answers as a timeout at once.
* **CLIENT UNBLOCK id [TIMEOUT|ERROR]** (:meth:`Blocking.unblock`):
  the timeout reply, or ``-UNBLOCKED client unblocked via CLIENT UNBLOCK``.
* A client that disconnects while blocked is forgotten
  (:meth:`Blocking.forget`, called by the connection).

Durability (``appendfsync always``). Every pop served in one
:meth:`serve_ready` round is logged in ONE execution unit of its own,
opened after the command that made the keys ready has closed its unit:
the WAL holds the push (LSN n) and then the pops (LSN n + 1). WAL order
is apply order and recovery keeps a prefix, so a crash can lose the pops
with or without the push, but never keep a pop without the push that fed
it. A served client's reply leaves only once LSN n + 1 is durable
(``Deferred.lsn`` set when it is resolved); the pusher's reply is
encoded after the round (the dispatcher serves before the connection
emits), so it holds on n + 1 too. A timeout or CLIENT UNBLOCK reply
holds only on the LSN applied when the client blocked (what it saw),
which is normally durable long before: it leaves at once. Nothing here
waits on I/O: the writer, expiry, checkpoints and other clients go on.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable

from .client import MULTI, Deferred
from .errors import CommandError
from .numbers import parse_long_double
from .protocol import NULL_ARRAY, ErrorReply

log = logging.getLogger("kvserver.blocking")

#: serve(client, key) -> the reply, or None to keep waiting.
Serve = Callable[[Any, bytes], Any]

TIMEOUT_NOT_FLOAT = "ERR timeout is not a float or out of range"
TIMEOUT_NEGATIVE = "ERR timeout is negative"
UNBLOCKED_ERROR = "UNBLOCKED client unblocked via CLIENT UNBLOCK"

_I64 = 1 << 64
_I64_MIN = -(1 << 63)


def _wrap64(n: int) -> int:
    n &= _I64 - 1
    return n - _I64 if n >= 1 << 63 else n


def parse_timeout(arg: bytes, now_ms: int) -> int:
    """A blocking command's timeout in seconds -> absolute deadline in Unix ms (0: forever).

    Redis's getTimeoutFromObjectOrReply(UNIT_SECONDS): a long double
    (string2ld: ``inf`` and hex forms included, ``nan`` refused), times
    1000, rounded up, converted to a long long (a value out of its range
    becomes LLONG_MIN, as x86 does: "timeout is negative"), and a positive
    one added to the clock, wrapping as C does. A deadline that wrapped
    negative is -1 here: Redis's timeout table orders deadlines as unsigned,
    so it never fires (the client waits like timeout 0, but counts in
    clients_in_timeout_table). Raises CommandError with Redis's text.
    """
    value = parse_long_double(arg)
    if value is None:
        raise CommandError(TIMEOUT_NOT_FLOAT)
    if isinstance(value, float):   # +/-inf: the conversion gives LLONG_MIN
        ms = _I64_MIN
    else:
        scaled = value * 1000
        ms = -((-scaled.numerator) // scaled.denominator)   # ceil
        if not _I64_MIN <= ms < 1 << 63:
            ms = _I64_MIN
    if ms < 0:
        raise CommandError(TIMEOUT_NEGATIVE)
    if ms > 0:
        ms = _wrap64(ms + now_ms)
        if ms <= 0:
            ms = -1
    return ms


def may_block(client: Any) -> bool:
    """Whether ``client`` may block now: not inside MULTI/EXEC or a script (Redis's
    CLIENT_DENY_BLOCKING); otherwise a blocking command answers as if it timed out."""
    return client.mode != MULTI and not client.deny_blocking


class Waiter:
    """One blocked client: its database, keys, serve function, reply and timer."""

    __slots__ = ("client", "db_index", "keys", "serve", "deferred", "timeout_reply",
                 "timer", "block_lsn", "deadline")

    def __init__(self, client: Any, keys: list, serve: Serve, deferred: Deferred,
                 timeout_reply: Any, block_lsn: int) -> None:
        self.client = client
        self.db_index = client.db_index
        self.keys = keys
        self.serve = serve
        self.deferred = deferred
        self.timeout_reply = timeout_reply
        self.timer: asyncio.TimerHandle | None = None
        self.block_lsn = block_lsn
        #: Absolute Unix ms; 0: none; -1: one that never fires (parse_timeout).
        self.deadline = 0


class Blocking:
    """Every blocked client of one server (see the module doc). One per Core, made on
    the first blocking command (:func:`registry`)."""

    __slots__ = ("core", "keyspace", "by_db", "ready", "waiters",
                 "listening", "_serving")

    def __init__(self, core: Any) -> None:
        # A weak reference: core -> blocking -> core would keep a stopped
        # server's core alive until the cyclic GC runs.
        self.core = weakref.ref(core)
        self.keyspace = core.keyspace
        #: db index -> key -> {Waiter: None} in blocking order (FIFO).
        self.by_db: dict[int, dict[bytes, dict[Waiter, None]]] = {}
        #: (db index, key) marked ready since the last serve_ready, in order.
        self.ready: dict[tuple[int, bytes], None] = {}
        #: client -> its Waiter.
        self.waiters: dict[Any, Waiter] = {}
        self.listening = False
        self._serving = False

    # --- blocking ------------------------------------------------------------

    def block(self, client: Any, keys: list, deadline_ms: int, serve: Serve,
              timeout_reply: Any = NULL_ARRAY) -> Deferred:
        """Block ``client`` on ``keys`` (of its database) until ``serve`` answers, the
        deadline (absolute Unix ms, 0 = none) passes, CLIENT UNBLOCK, or disconnect."""
        loop = asyncio.get_running_loop()
        deferred = Deferred(loop.create_future())
        waiter = Waiter(client, list(dict.fromkeys(keys)), serve, deferred, timeout_reply,
                        self._applied_lsn())
        keys_of_db = self.by_db.setdefault(waiter.db_index, {})
        for key in waiter.keys:
            keys_of_db.setdefault(key, {})[waiter] = None
        self.waiters[client] = waiter
        waiter.deadline = deadline_ms
        if deadline_ms > 0:
            # (A deadline already past fires at the loop's next turn, after
            # this command's reply: Redis's next beforeSleep.)
            delay = max((deadline_ms - self.keyspace.clock()) / 1000, 0)
            waiter.timer = loop.call_later(delay, self._timed_out, waiter)
        if not self.listening:
            self.keyspace.add_modified_listener(self.modified)
            self.listening = True
        return deferred

    def modified(self, index: int, key: bytes | None) -> None:
        """The keyspace's signal (only while someone is blocked): mark waited keys ready."""
        keys = self.by_db.get(index)
        if not keys:
            return
        data = self.keyspace.dbs[index].data
        if key is not None:
            if key in keys and key in data:
                self.ready[(index, key)] = None
            return
        for k in keys:   # FLUSHDB/FLUSHALL/SWAPDB: what exists now may serve someone
            if k in data:
                self.ready[(index, k)] = None

    # --- serving ---------------------------------------------------------------

    def serve_ready(self, core: Any) -> None:
        """Serve the clients blocked on ready keys, FIFO per key, in ONE execution unit.

        Called by the dispatcher after a command (never inside EXEC or a
        script). Loops until no key is ready: a served BLMOVE's push may
        make its destination ready. The served clients' replies are
        resolved after the unit is closed, so their Deferred.lsn is the
        unit's LSN (see the module doc).
        """
        if self._serving:
            return
        self._serving = True
        served: list[tuple[Waiter, Any]] = []
        core.begin_unit()
        try:
            while self.ready:
                ready, self.ready = self.ready, {}
                for index, key in ready:
                    keys = self.by_db.get(index)
                    waiters = keys.get(key) if keys else None
                    if not waiters:
                        continue
                    self._serve_key(key, waiters, self.keyspace.dbs[index].data, served)
        finally:
            core.end_unit()
            self._serving = False
            lsn = self._applied_lsn()
            for waiter, reply in served:
                if type(reply) is ErrorReply:
                    # As Redis's updateStatsOnUnblock: an error reply, a failed call.
                    core.stats.count_error(reply)
                    core.command_stat(waiter.client.last_command).failed += 1
                self._resolve(waiter, reply, lsn)

    def _serve_key(self, key: bytes, waiters: dict, data: dict, served: list) -> None:
        """Serve ``key``'s waiters in blocking order until one keeps waiting or the key
        is gone (emptied: the rest keep waiting).

        From the head while each is served: a served waiter leaves the dict, so
        that is O(1) per client served, whatever the number waiting. A waiter
        that keeps waiting (blocked for another type on the same key) sends
        the rest through one snapshot: O(waiters) once, never per client.
        """
        while key in data:
            waiter = next(iter(waiters), None)
            if waiter is None:
                return
            reply = self._call(waiter, key)
            if reply is not None:
                self._remove(waiter)
                served.append((waiter, reply))
                continue
            for waiter in list(waiters)[1:]:
                if key not in data:
                    return
                if self.waiters.get(waiter.client) is not waiter:
                    continue
                reply = self._call(waiter, key)
                if reply is not None:
                    self._remove(waiter)
                    served.append((waiter, reply))
            return

    def _call(self, waiter: Waiter, key: bytes) -> Any:
        """``waiter.serve(client, key)``; a CommandError it raises is its reply. Anything
        else is a bug in a write: logged, answered with an error, and fail-stop (as the
        dispatcher does for a command), since memory may have changed unlogged."""
        try:
            return waiter.serve(waiter.client, key)
        except CommandError as exc:
            return ErrorReply(exc.message)
        except Exception as exc:  # noqa: BLE001 - must not take the pusher's connection down
            log.exception("internal error serving a blocked client on %r", key)
            writer = self.core().persistence
            if writer is not None:
                writer.fail_stop("internal error serving a blocked client")
            return ErrorReply(f"ERR internal error serving a blocked client: "
                              f"{type(exc).__name__}")

    # --- ending a wait otherwise ---------------------------------------------------

    def _timed_out(self, waiter: Waiter) -> None:
        if self.waiters.get(waiter.client) is waiter:
            waiter.timer = None
            self._remove(waiter)
            self._resolve(waiter, waiter.timeout_reply, waiter.block_lsn)

    def unblock(self, client: Any, error: bool) -> bool:
        """CLIENT UNBLOCK: end ``client``'s wait with its timeout reply or the
        UNBLOCKED error. False if it is not blocked on keys."""
        waiter = self.waiters.get(client)
        if waiter is None:
            return False
        self._remove(waiter)
        core = self.core()
        # Redis counts a failed call of the blocked command either way
        # (updateStatsOnUnblock(..., had_errors=1)), and the error reply's errorstat.
        core.command_stat(client.last_command).failed += 1
        if error:
            core.stats.count_error(UNBLOCKED_ERROR)
            reply = ErrorReply(UNBLOCKED_ERROR)
        else:
            reply = waiter.timeout_reply
        self._resolve(waiter, reply, waiter.block_lsn)
        return True

    def forget(self, client: Any) -> None:
        """The client disconnected: drop its wait (nothing is answered)."""
        waiter = self.waiters.get(client)
        if waiter is not None:
            self._remove(waiter)
            waiter.deferred.future.cancel()

    def is_waiting(self, client: Any) -> bool:
        return client in self.waiters

    def with_timeout(self) -> int:
        """Blocked clients with a deadline (INFO clients_in_timeout_table)."""
        return sum(1 for w in self.waiters.values() if w.deadline)

    # --- internals -----------------------------------------------------------------

    def _remove(self, waiter: Waiter) -> None:
        del self.waiters[waiter.client]
        if waiter.timer is not None:
            waiter.timer.cancel()
            waiter.timer = None
        keys = self.by_db[waiter.db_index]
        for key in waiter.keys:
            clients = keys[key]
            del clients[waiter]
            if not clients:
                del keys[key]
                self.ready.pop((waiter.db_index, key), None)
        if not keys:
            del self.by_db[waiter.db_index]
        if not self.waiters and self.listening:
            self.keyspace.remove_modified_listener(self.modified)
            self.listening = False
            self.ready.clear()

    def _resolve(self, waiter: Waiter, reply: Any, lsn: int) -> None:
        """Answer the waiter: its reply leaves once ``lsn`` is durable; the client
        leaves BLOCKED now (CLIENT LIST, INFO see it at once, as in Redis)."""
        deferred = waiter.deferred
        writer = self.core().persistence
        deferred.lsn = lsn if writer is not None and writer.holds_replies else 0
        if not deferred.future.done():
            deferred.future.set_result(reply)
        link = waiter.client.link
        if link is not None:
            link.wake(deferred)

    def _applied_lsn(self) -> int:
        writer = self.core().persistence
        return writer.applied_lsn if writer is not None else 0


def registry(core: Any) -> Blocking:
    """The core's blocked-client registry, made on first use."""
    b = core.blocking
    if b is None:
        b = core.blocking = Blocking(core)
    return b


def block(client: Any, keys: list, deadline_ms: int, serve: Serve,
          timeout_reply: Any = NULL_ARRAY) -> Deferred:
    """Block ``client`` (see :meth:`Blocking.block`); return what the command returns."""
    return registry(client.core).block(client, keys, deadline_ms, serve, timeout_reply)


def forget_client(client: Any) -> None:
    """A client is gone (the connection calls this): drop its wait, if any."""
    b = client.core.blocking
    if b is not None and b.waiters:
        b.forget(client)
