"""Per-client state, apart from any transport: what commands see and the dispatcher checks.

A :class:`Client` is everything a command may know and change about its
caller (database, protocol, name, CLIENT REPLY...) plus one explicit
:attr:`Client.mode` that :mod:`kvserver.dispatch` checks before a command
runs (its mode table). A network connection *owns* a Client
(``Connection.client``) and is reached from it through :attr:`Client.link`,
the transport side: closing, buffer figures for CLIENT LIST, MONITOR lines.
WAL replay and tools use a Client with no link.

Modes (Redis keeps them as client flags; here exactly one holds at a time):

========== =========================================================
NORMAL     runs every command
MULTI      queues commands until EXEC (the queue is :attr:`Client.queued`)
SUBSCRIBED only (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PING, QUIT, RESET (RESP2;
           a RESP3 subscriber runs everything; kvserver.commands.pubsub)
MONITOR    receives every command others run; runs commands as NORMAL
BLOCKED    waits (a deferred reply, CLIENT PAUSE): nothing of it runs
REPLICA    a replica's link (later)
========== =========================================================

Besides the mode, two facts every check needs: :attr:`Client.authenticated`
and :attr:`Client.close_after_reply` (QUIT, SHUTDOWN, CLIENT KILL of
itself: nothing after that reply runs).

This module imports nothing of the server: :mod:`kvserver.core` never needs
it and it never needs core (the Core is handed in), so there is no circle.
"""

from __future__ import annotations

import itertools
import time
from typing import Any, Protocol

_ids = itertools.count(1)

#: Client.mode values (small ints: the dispatcher compares them per batch).
NORMAL, MULTI, SUBSCRIBED, MONITOR, BLOCKED, REPLICA = range(6)
MODE_NAMES = {NORMAL: "normal", MULTI: "multi", SUBSCRIBED: "subscribed", MONITOR: "monitor",
              BLOCKED: "blocked", REPLICA: "replica"}

#: Client.reply_mode values (CLIENT REPLY ON|OFF|SKIP).
REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT, REPLY_SKIP = 0, 1, 2, 3


class Link(Protocol):
    """The transport side of a client (kvserver.connection.Connection implements it)."""

    def kill(self) -> None: ...
    def drop(self) -> None: ...
    def buffer_info(self) -> tuple[int, int, int, int, str]: ...
    def send_monitor(self, line: bytes) -> None: ...
    def send_push(self, data: bytes) -> None: ...
    def resume_after_pause(self) -> None: ...
    def wake(self, deferred: "Deferred") -> None: ...


class Deferred:
    """A reply that comes later (SAVE, a blocking pop; WAIT tomorrow), and its LSN.

    ``future`` resolves to the reply value. ``lsn`` is the WAL position the
    reply must wait for before it leaves, as any reply holds on the LSN
    applied when it was made. Whoever resolves the future may set it first
    (kvserver.blocking: the unit holding the served pop, or the LSN seen at
    block time for a timeout); otherwise the connection sets it to the LSN
    applied when the future resolved. The reply is released only once that
    is durable.
    """

    __slots__ = ("future", "lsn", "silent")

    def __init__(self, future: Any) -> None:
        self.future = future
        self.lsn = -1   # not known until the future resolves
        #: CLIENT REPLY OFF/SKIP: wait for it as usual, then send nothing.
        self.silent = False


class Client:
    """What a command may know and change about its caller; the mode the dispatcher checks."""

    __slots__ = ("core", "id", "name", "db", "db_index", "resp",
                 "created", "last_interaction", "last_command", "close_after_reply",
                 "addr", "laddr", "kind", "authenticated", "fd", "unix", "no_evict",
                 "reply_mode", "mode", "queued", "link", "obl", "multi_error", "multi_bytes",
                 "mode_before_multi", "watched", "watch_dirty", "subs", "deny_blocking",
                 "__weakref__")

    def __init__(self, core: Any, addr: str = "", laddr: str = "", kind: str = "normal",
                 link: Link | None = None) -> None:
        self.core = core
        self.id = next(_ids)
        self.name = b""
        self.db_index = 0
        self.db = core.keyspace.dbs[0]
        self.resp = 2
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.close_after_reply = False
        self.addr = addr
        self.laddr = laddr
        self.kind = kind
        self.authenticated = not core.config.requirepass
        self.fd = -1           # the socket's descriptor (CLIENT LIST fd=); -1: none
        self.unix = False      # connected over a Unix socket (flag U)
        self.no_evict = False  # CLIENT NO-EVICT ON (flag e)
        #: CLIENT REPLY: REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT (CLIENT REPLY SKIP
        #: just ran) or REPLY_SKIP (this command's reply is dropped).
        self.reply_mode = REPLY_ON
        #: One of NORMAL, MULTI, SUBSCRIBED, MONITOR, BLOCKED, REPLICA.
        self.mode = NORMAL
        #: MULTI mode: the (Command, argv) pairs queued for EXEC.
        self.queued: list = []
        #: MULTI: a request was refused while queueing (EXEC answers EXECABORT).
        self.multi_error = False
        #: MULTI: what the queue counts against its limit (dispatch.queued_cost).
        self.multi_bytes = 0
        #: The mode MULTI left, restored by EXEC/DISCARD.
        self.mode_before_multi = NORMAL
        #: WATCH: (db index, key) -> whether the key existed when watched
        #: (kvserver.commands.transactions keeps the per-db index of watchers).
        self.watched: dict = {}
        #: A watched key was modified since WATCH: EXEC answers a null array.
        self.watch_dirty = False
        #: A blocking command must answer at once (Redis's CLIENT_DENY_BLOCKING): a
        #: script runner sets it while it runs; MULTI/EXEC is its own mode
        #: (kvserver.blocking.may_block checks both).
        self.deny_blocking = False
        #: The transport (None: replay, tools).
        self.link = link
        #: Reply bytes the running read has produced before this command (CLIENT LIST obl).
        self.obl = 0
        #: Its pub/sub subscriptions (kvserver.pubsub.Subscriptions), None until it subscribes.
        self.subs: Any = None

    def select(self, index: int) -> None:
        self.db = self.core.keyspace.dbs[index]
        self.db_index = index

    def log(self, argv: list[bytes]) -> None:
        """Record this command's deterministic effect in the WAL, in apply order."""
        self.core.log(self.db_index, argv)

    def kill(self) -> None:
        """CLIENT KILL: close after the pending replies (the transport decides how)."""
        if self.link is not None:
            self.link.kill()
        else:
            self.close_after_reply = True

    def in_pubsub(self) -> bool:
        """Subscribed to anything (Redis's CLIENT_PUBSUB flag): class pubsub, flag P."""
        subs = self.subs
        return subs is not None and subs.total() > 0

    def send_monitor(self, line: bytes) -> None:
        """A MONITOR line for this client (only clients with a link become monitors)."""
        if self.link is not None:
            self.link.send_monitor(line)

    def resume_after_pause(self) -> None:
        """CLIENT PAUSE ended (Core.unpause_clients): the transport runs what waited."""
        if self.link is not None:
            self.link.resume_after_pause()

    def buffer_info(self) -> tuple[int, int, int, int, str]:
        """(qbuf, obl, oll, omem, events) for CLIENT LIST; the transport knows them."""
        if self.link is not None:
            return self.link.buffer_info()
        return 0, 0, 0, 0, ""

    def is_blocked(self) -> bool:
        """Waiting for something before its next request runs (flag b, INFO blocked_clients)."""
        return self.mode == BLOCKED

    def client_type(self) -> str:
        """Redis's client class for CLIENT LIST/KILL TYPE and output buffer limits:
        a subscriber is "pubsub", a monitor "normal", as in Redis's getClientType."""
        if self.kind == "normal" and self.subs is not None and self.subs.total():
            return "pubsub"
        return self.kind

    def client_info(self, argv: list[bytes] | None = None) -> str:
        """One line of CLIENT LIST / CLIENT INFO: Redis 7.0's fields, in its order.

        ``argv`` is the command this client is running (CLIENT INFO/LIST
        itself), for argv-mem; any other client is between commands. kvserver
        has no per-client reply buffer (a read's replies are joined, then
        written), so rbs and rbp are 0; obl is what this read has produced
        so far, oll/omem the chunks held for durability or in the transport.
        """
        now = time.monotonic()
        qbuf, obl, oll, omem, events = self.buffer_info()
        argv_mem = sum(len(a) for a in argv) if argv else 0
        subs = self.subs
        flags = ("O" if self.mode == MONITOR else "") \
            + ("P" if subs is not None and subs.total() else "") \
            + ("x" if self.mode == MULTI else "") \
            + ("b" if self.is_blocked() else "") + ("d" if self.watch_dirty else "") \
            + ("c" if self.close_after_reply else "") + ("U" if self.unix else "") \
            + ("e" if self.no_evict else "")
        multi = len(self.queued) if self.mode == MULTI else -1
        multi_mem = self.multi_bytes if self.mode == MULTI else 0
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd={self.fd} "
                f"name={self.name.decode('utf-8', 'replace')} "
                f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
                f"flags={flags or 'N'} db={self.db_index} "
                f"sub={len(subs.channels) if subs else 0} psub={len(subs.patterns) if subs else 0} "
                f"ssub={len(subs.shard) if subs else 0} multi={multi} "
                f"qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem={multi_mem} rbs=0 rbp=0 "
                f"obl={obl} oll={oll} omem={omem} tot-mem={qbuf + argv_mem + multi_mem + obl + omem} "
                f"events={events} cmd={self.last_command} user=default redir=-1 "
                f"resp={self.resp}")
