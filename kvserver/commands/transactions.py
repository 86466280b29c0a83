"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH (Redis 7.0 semantics).

MULTI puts the client in MULTI mode; the dispatcher then queues what it
does not run at once (``dispatch.MULTI_RUNS_NOW``) and refuses, dooming the
transaction, what Redis refuses at queueing time (unknown command, arity,
``no-multi`` commands, the queue's limit): see ``Dispatcher.call``.

**One EXEC is one execution unit.** EXEC opens a unit (``core.begin_unit``),
runs every queued command through ``Dispatcher.run_command`` (each one's
own unit nests in it), and closes it: every effect of the transaction,
including lazy expiries it caused, is ONE WAL record with ONE LSN, so
recovery keeps all of it or none, and the EXEC reply leaves once that
record is durable (the connection's usual hold on the LSN applied when the
reply was made). An error inside EXEC is that command's reply; nothing is
rolled back (Redis does not either). EXEC of N commands is O(N).

**WATCH.** :class:`Watches` (one per Core, made on the first WATCH) keeps a
per-database index ``key -> clients watching it``; each client keeps its
watched ``(db, key) -> existed`` set, so memory is proportional to what is
watched and UNWATCH/EXEC/DISCARD/disconnect cost the client's own keys. It
listens to the keyspace's ``modified(db, key)`` signal only while some key
is watched (otherwise the write path pays nothing): a write to a watched key
by anyone, including its deletion by expiry, marks the watchers dirty. A
whole-database change (FLUSHDB, FLUSHALL, SWAPDB: key None) marks a watcher
dirty if its key existed when watched or exists now, as Redis's
touchAllWatchedKeysInDb does for keys that existed in either database (a
watcher not yet dirty has seen no change to its key since WATCH, so
"existed when watched" is "existed before the flush"). A watched key whose
TTL has passed at EXEC counts as touched even if nothing deleted it yet
(Redis 7.0's isWatchedKeyExpired); a key already expired at WATCH is
expired first, so it is watched as absent. EXEC unwatches before it runs
the queue: the transaction's own writes never abort it.
"""

from __future__ import annotations

from typing import Any

from ..client import MULTI, Deferred
from ..errors import CommandError
from ..protocol import NULL_ARRAY, OK
from . import command

EXECABORT = "EXECABORT Transaction discarded because of previous errors."


class Watches:
    """Who watches which key: per database, key -> set of clients (see the module doc)."""

    __slots__ = ("keyspace", "by_db", "count", "listening")

    def __init__(self, keyspace: Any) -> None:
        # The keyspace, not the core: core -> watches -> core would be a cycle.
        self.keyspace = keyspace
        self.by_db: dict[int, dict[bytes, set]] = {}
        #: Watched (client, db, key) entries in all: the listener is on while > 0.
        self.count = 0
        self.listening = False

    def watch(self, client: Any, key: bytes) -> None:
        db = client.db
        entry = (db.index, key)
        if entry in client.watched:
            return
        # A key whose time has passed is gone for good: expire it now, so it
        # is watched as absent (Redis: an already-expired key deleted later
        # is no change).
        ks = self.keyspace
        expired = bool(db.expires) and key in db.expires and ks.expire_if_needed(db, key)
        client.watched[entry] = not expired and key in db.data
        self.by_db.setdefault(db.index, {}).setdefault(key, set()).add(client)
        self.count += 1
        if not self.listening:
            ks.add_modified_listener(self.modified)
            self.listening = True

    def unwatch_all(self, client: Any) -> None:
        """Forget every key ``client`` watches (UNWATCH, EXEC, DISCARD, disconnect)."""
        watched = client.watched
        client.watch_dirty = False
        if not watched:
            return
        by_db = self.by_db
        for index, key in watched:
            keys = by_db[index]
            clients = keys[key]
            clients.discard(client)
            if not clients:
                del keys[key]
                if not keys:
                    del by_db[index]
        self.count -= len(watched)
        client.watched = {}
        if not self.count and self.listening:
            self.keyspace.remove_modified_listener(self.modified)
            self.listening = False

    def modified(self, index: int, key: bytes | None) -> None:
        """The keyspace's signal: ``key`` of database ``index`` changed (None: all of it)."""
        keys = self.by_db.get(index)
        if not keys:
            return
        if key is not None:
            clients = keys.get(key)
            if clients:
                for client in clients:
                    client.watch_dirty = True
            return
        data = self.keyspace.dbs[index].data
        for k, clients in keys.items():
            exists_now = k in data
            for client in clients:
                if not client.watch_dirty and (exists_now or client.watched.get((index, k))):
                    client.watch_dirty = True

    def expired_at_exec(self, client: Any) -> bool:
        """Whether a watched key's TTL has passed (Redis's isWatchedKeyExpired)."""
        ks = self.keyspace
        if not ks.expiry_enabled:
            return False
        dbs = ks.dbs
        now = None
        for index, key in client.watched:
            expires = dbs[index].expires
            if expires:
                when = expires.get(key)
                if when is not None:
                    if now is None:
                        now = ks.clock()
                    if when <= now:
                        return True
        return False


def watches(core: Any) -> Watches:
    """The core's WATCH index, made on first use."""
    w = getattr(core, "watches", None)
    if w is None:
        w = core.watches = Watches(core.keyspace)
    return w


def forget_client(client: Any) -> None:
    """A client is gone: drop its watches (the connection calls this when it closes)."""
    if client.watched:
        watches(client.core).unwatch_all(client)


def end_multi(client: Any) -> None:
    """Leave MULTI: drop the queue and the watches (EXEC, DISCARD)."""
    client.mode = client.mode_before_multi
    client.queued = []
    client.multi_error = False
    client.multi_bytes = 0
    forget_client(client)
    client.watch_dirty = False


@command("multi", 1, "noscript loading stale fast allow_busy", group="transactions",
         since="1.2.0", acl="@fast @transaction",
         summary="Mark the start of a transaction block")
def cmd_multi(c, argv):
    if c.mode == MULTI:
        raise CommandError("ERR MULTI calls can not be nested")
    c.mode_before_multi = c.mode
    c.mode = MULTI
    c.queued = []
    c.multi_error = False
    c.multi_bytes = 0
    return OK


@command("exec", 1, "noscript loading stale skip_slowlog", group="transactions",
         since="1.2.0", acl="@slow @transaction",
         summary="Execute all commands issued after MULTI")
def cmd_exec(c, argv):
    if c.mode != MULTI:
        raise CommandError("ERR EXEC without MULTI")
    if c.multi_error:
        end_multi(c)
        raise CommandError(EXECABORT)
    if c.watched and (c.watch_dirty or watches(c.core).expired_at_exec(c)):
        end_multi(c)
        return NULL_ARRAY
    queued = c.queued
    # Unwatch first: the transaction's own writes must not abort it.
    forget_client(c)
    core = c.core
    dispatcher = core.dispatcher()
    run = dispatcher.run_command
    core.stats.total_commands += len(queued)   # each runs now (Redis's call() counts it)
    replies = []
    core.begin_unit()
    try:
        for cmd, qargv in queued:
            reply = run(c, cmd, qargv)
            if type(reply) is Deferred:
                # No command that answers later may be queued (SAVE is no-multi).
                reply.future.cancel()
                reply = dispatcher.error(
                    f"ERR '{cmd.name}' cannot run inside a transaction")
            replies.append(reply)
    finally:
        core.end_unit()   # ONE record for every effect of the transaction
        end_multi(c)
        c.last_command = "exec"
    return replies


@command("discard", 1, "noscript loading stale fast allow_busy", group="transactions",
         since="2.0.0", acl="@fast @transaction",
         summary="Discard all commands issued after MULTI")
def cmd_discard(c, argv):
    if c.mode != MULTI:
        raise CommandError("ERR DISCARD without MULTI")
    end_multi(c)
    return OK


@command("watch", -2, "noscript loading stale fast allow_busy", keys=(1, -1, 1),
         group="transactions", since="2.2.0", acl="@fast @transaction",
         summary="Watch the given keys to determine execution of the MULTI/EXEC block",
         synopsis="key [key ...]")
def cmd_watch(c, argv):
    if c.mode == MULTI:
        raise CommandError("ERR WATCH inside MULTI is not allowed")
    w = watches(c.core)
    for key in argv[1:]:
        w.watch(c, key)
    return OK


@command("unwatch", 1, "noscript loading stale fast allow_busy", group="transactions",
         since="2.2.0", acl="@fast @transaction", summary="Forget about all watched keys")
def cmd_unwatch(c, argv):
    forget_client(c)
    return OK
