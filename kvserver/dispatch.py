"""The one dispatcher: every check a command passes, then the command, then its accounting.

Redis's ``processCommand`` + ``call`` in one place. Connections run their
requests through :meth:`Dispatcher.run`; one request that needs the whole
sequence goes through :meth:`Dispatcher.call` (EXEC and scripts will too);
WAL replay goes through ``commands.execute`` (:data:`replay`), with every
client check off. The sequence, in Redis's order::

    lookup (the table clients see: rename-command applied)   -> unknown command
    arity (arity_error: the one place it is checked)          -> wrong number of arguments
    auth                                                      -> NOAUTH
    OOM (maxmemory, denyoom commands)                         -> OOM
    read-only replica (a hook: Core.read_only_replica)        -> READONLY
    the client's mode (MODE_ALLOWED: subscribed mode...)      -> Can't execute ...
    loading                                                   -> LOADING
    MULTI: queue instead of running (Client.queued)           -> +QUEUED
    execution unit open (write commands: core.begin_unit)
    the command function
    execution unit closed (core.end_unit: its effects, one WAL record)
    stats (commandstats, errorstats, latencystats), slow log, MONITOR

CLIENT PAUSE holds a request (and what follows) before it is looked at;
:meth:`Dispatcher.run` reports that to the connection, which waits.
After each request of the general lane, the keys it made ready are served
to the clients blocked on them (kvserver.blocking: Redis's
``handleClientsBlockedOnKeys`` after ``call()``).

**The fast lane.** Most requests are GET, SET key value or INCR. While
nothing in the sequence can refuse or watch a request (the client is
authenticated and in NORMAL mode, no loading, no OOM, no monitors, no
CLIENT REPLY, no pause, not a read-only replica: :meth:`Dispatcher.fast_table`
says so once per batch, and again after any command off the lane),
:meth:`Dispatcher.run` calls those commands' **same functions** directly
(``cmd_get``, ``cmd_set``, ``cmd_incr``), found in a table keyed by the name
the client sent and the one argument count the lane takes for it (a count
:func:`arity_error` accepted when the table was built), and encodes the
common reply values inline. It times, counts and slow-logs each command as
the general lane does. tests/test_hotpath.py holds both lanes to the same
replies, WAL records, INFO, SLOWLOG and MONITOR output.
"""

from __future__ import annotations

import logging
import weakref
from asyncio import Future
from time import perf_counter_ns
from typing import Any

from .client import MONITOR, MULTI, NORMAL, REPLICA, SUBSCRIBED, Deferred  # noqa: F401
from .client import REPLY_OFF, REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT
from .commands import (COMMANDS, Command, Rejected, arity_error, execute,
                       unknown_command_line, unknown_subcommand)
from .commands.introspection import after_command
from .errors import CommandError
from .protocol import (BIG_REPLY, OK, QUEUED, ErrorReply, Raw, bulk_parts, encode,
                       encode3)

log = logging.getLogger("kvserver.dispatch")

#: Replies from one read are handed back to the connection once they pass
#: this size, rather than all at the end: a pipeline of big GETs must not
#: build its whole answer in memory before the transport gets a say.
MAX_BATCH_REPLY_BYTES = 256 * 1024

#: The fast lane: command (real name) -> the one argument count it takes there.
#: Their replies at that count are the values the lane encodes inline
#: (bytes, None, an int, OK); anything else is encoded as the general lane does.
#: Each logs at most ONE effect of its own at that count, and the only other
#: effect it can log is lazy expiry's DEL, which needs a TTL in its database.
#: So the lane opens an execution unit for a write only when the client's
#: database has TTLs (or keyspace events are on: they wait for the unit's
#: record, see kvserver.pubsub): otherwise its one effect is a unit by itself (core.log
#: outside a unit is a unit of one effect), and the unit's two calls, a
#: tenth of a SET's cost here, are saved. tests/test_dispatch.py holds the
#: lane to that.
FAST_LANE = {"get": 2, "set": 3, "incr": 2}

#: Commands a client may run before authenticating (as in Redis).
NO_AUTH_NEEDED = frozenset({"auth", "hello", "quit", "reset"})

#: The mode table: what a client in each mode may run (None: everything).
#: BLOCKED clients run nothing (the connection does not hand their requests
#: over); MULTI queues what it does not run at once (MULTI_RUNS_NOW).
SUBSCRIBED_ALLOWED = frozenset({"subscribe", "psubscribe", "ssubscribe", "unsubscribe",
                                "punsubscribe", "sunsubscribe", "ping", "quit", "reset"})
MODE_ALLOWED: dict[int, frozenset | None] = {
    NORMAL: None,
    MULTI: None,
    MONITOR: None,
    SUBSCRIBED: SUBSCRIBED_ALLOWED,
    REPLICA: None,
}
#: In MULTI, these run at once; every other command is queued for EXEC.
MULTI_RUNS_NOW = frozenset({"exec", "discard", "multi", "watch", "quit", "reset"})
#: Commands Redis 7.0 flags ``no-multi``: refused inside MULTI (and the
#: transaction is doomed), as COMMAND INFO of redis-server 7.0.15 lists them.
NO_MULTI = frozenset({"save", "shutdown", "psync", "sync"})
NO_MULTI_ERROR = "ERR Command not allowed inside a transaction"
#: The queue of a MULTI counts its argument bytes (plus QUEUED_OVERHEAD per
#: argument) against the client's ``client-query-buffer-limit``: past it a
#: command is refused and EXEC answers EXECABORT, so a client cannot grow
#: its queue without bound.
QUEUED_OVERHEAD = 16
MULTI_QUEUE_FULL = ("ERR MULTI queue exceeds client-query-buffer-limit; "
                    "the transaction will be discarded")


def queued_cost(argv: list[bytes]) -> int:
    """What one queued request counts against the MULTI queue's limit."""
    return sum(map(len, argv)) + QUEUED_OVERHEAD * (len(argv) + 1)


def queue_error(cmd: Command, argv: list[bytes]) -> tuple[str, str] | None:
    """Why a request may not be queued in MULTI: (command name, error), or None.

    Redis refuses these at queueing time, before EXEC: a ``no-multi``
    command, and an unknown subcommand or a subcommand's wrong arity (Redis
    looks subcommands up before queueing; kvserver's containers do it when
    they run, so it is checked here too).
    """
    if cmd.name in NO_MULTI or "no-multi" in cmd.flags:
        return cmd.name, NO_MULTI_ERROR
    if cmd.subcommands:
        sub = cmd.subcommands.get(argv[1].decode("utf-8", "replace").lower())
        if sub is None:
            return "", unknown_subcommand(argv).message
        error = arity_error(sub, len(argv))
        if error is not None:
            return sub.name, error
    return None

LOADING = ErrorReply("LOADING Redis is loading the dataset in memory")
NOAUTH = ErrorReply("NOAUTH Authentication required.")
OOM = ErrorReply("OOM command not allowed when used memory > 'maxmemory'.")
READONLY = ErrorReply("READONLY You can't write against a read only replica.")
#: The slow log threshold (ns) when the slow log is off.
_NEVER_SLOW = 1 << 62

#: Dispatcher.run's outcomes, besides DONE: why it stopped before the batch's end.
DONE, FULL, PAUSED, CLOSING, DEFERRED = range(5)


def mode_error(mode: int, resp: int, cmd: Command) -> str | None:
    """The error for running ``cmd`` in client mode ``mode``, or None if the mode allows it.

    Subscribed mode limits RESP2 clients only (a RESP3 client can mix
    replies and pushes), as in Redis 7.0.
    """
    allowed = MODE_ALLOWED.get(mode)
    if allowed is None or cmd.name.split("|")[0] in allowed:
        return None
    if mode == SUBSCRIBED and resp != 2:
        return None
    return (f"ERR Can't execute '{cmd.name}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / "
            "PING / QUIT / RESET are allowed in this context")


def fast_entries(commands: dict[bytes, Command], core: Any) -> dict[bytes, tuple]:
    """The fast lane's table for a server's command table (rename-command applied).

    Name as clients send it -> (Command, argc, CommandStat, function, is_write, name).
    Built from the table clients see, so it follows rename-command: a name
    renamed away is not in it. The function is the Command's own, looked up
    here, so replacing a Command's function (a test's fault injection)
    before the table is built changes both lanes alike.
    """
    table = {}
    for name, cmd in commands.items():
        argc = FAST_LANE.get(cmd.name)
        if argc is not None and arity_error(cmd, argc) is None:
            table[name] = (cmd, argc, core.command_stat(cmd.name), cmd.func, cmd.is_write,
                           cmd.name)
    return table


class Dispatcher:
    """Runs commands for clients of one server: checks, the unit, the command, accounting."""

    __slots__ = ("core", "commands", "fast", "_empty", "__weakref__")

    def __init__(self, core: Any, commands: dict[bytes, Command] = COMMANDS) -> None:
        self.core = core
        self.commands = commands
        self.fast = fast_entries(commands, core)
        self._empty: dict = {}
        # EXEC runs its queue through run_command. A weak reference: core ->
        # dispatcher -> core would keep a stopped server's core (and its
        # clients' transports) alive until the cyclic GC runs.
        core.dispatcher = weakref.ref(self)

    # --- the fast lane's gate --------------------------------------------------

    def fast_table(self, client: Any) -> tuple[dict, int]:
        """The fast lane's table if it may run now (else an empty one), and the slow log threshold in ns.

        Not when a check could refuse a request (a client not authenticated
        yet, -LOADING, -OOM, a read-only replica, a mode other than NORMAL),
        monitors must see it, its reply may be suppressed (CLIENT REPLY) or
        it may have to wait (CLIENT PAUSE). Between two requests of a batch
        only a command can change any of this, and every such command takes
        the general lane, after which run() asks again.
        """
        core = self.core
        threshold = core.config.slowlog_log_slower_than
        ok = (client.authenticated and client.mode == NORMAL and not core.loading
              and not core.over_maxmemory and not core.monitors and not client.reply_mode
              and core.client_pause is None and not core.read_only_replica)
        return (self.fast if ok else self._empty), (threshold * 1000 if threshold >= 0
                                                    else _NEVER_SLOW)

    # --- a batch of requests ----------------------------------------------------

    def run(self, client: Any, batch: list, i: int, out: list, size: int
            ) -> tuple[int, int, int, Deferred | None]:
        """Run ``batch[i:]`` for ``client``, appending each encoded reply to ``out``.

        Returns (index of the first request not handled, reply bytes in
        ``out``, outcome, deferred reply). The outcome is DONE (all ran),
        FULL (``out`` passed MAX_BATCH_REPLY_BYTES: send it, then call again
        from the index), CLOSING (a command asked to close after its reply),
        PAUSED (batch[index] waits for CLIENT PAUSE to end; Core.paused_clients
        has the client) or DEFERRED (the last request answers later: the
        Deferred, whose reply is to be sent, or dropped if it is None under
        CLIENT REPLY, when its future resolves). ``len(out)`` replies were
        made; a request whose reply CLIENT REPLY dropped is counted in
        total_commands here.
        """
        core = self.core
        # fast_table(), inline (once per read: its frame is a tenth of a GET).
        if (client.authenticated and client.mode == NORMAL and not core.loading
                and not core.over_maxmemory and not core.monitors and not client.reply_mode
                and core.client_pause is None and not core.read_only_replica):
            fast = self.fast
        else:
            fast = self._empty
        slow_ns = core.config.slowlog_log_slower_than
        slow_ns = slow_ns * 1000 if slow_ns >= 0 else _NEVER_SLOW
        stale = False
        for i, argv in (enumerate(batch, 1) if not i else enumerate(batch[i:], i + 1)):
            # i: the index of the request after this one.
            entry = fast.get(argv[0])
            if entry is not None and stale:
                # A command ran on the general lane since: it may have changed
                # what the fast lane depends on (AUTH, HELLO 3, MONITOR...).
                fast, slow_ns = self.fast_table(client)
                entry = fast.get(argv[0])
                stale = False
            if entry is not None and len(argv) == entry[1]:
                # The fast lane: what call() does once its checks have passed.
                cmd, _argc, stat, func, write, client.last_command = entry
                started = perf_counter_ns()
                try:
                    if write and (client.db.expires or core.notify_flags):
                        # A write in a database with TTLs: lazy expiry may log
                        # a DEL before the command's own effect; one unit.
                        # With keyspace events on: they leave after the
                        # unit's record (Core.unit_pushes), never before it.
                        core.begin_unit()
                        try:
                            reply = func(client, argv)
                        finally:
                            core.end_unit()
                    else:
                        reply = func(client, argv)
                except Exception as exc:  # noqa: BLE001 - as in call()
                    reply = self.failed(cmd, exc)
                elapsed = perf_counter_ns() - started
                # INFO commandstats/latencystats: CommandStat.record, inline.
                stat.ns += elapsed
                x = elapsed * elapsed
                stat.hist[(x * x).bit_length()] += 1
                if elapsed >= slow_ns:
                    after_command(client, cmd, argv, elapsed // 1000)
                t = type(reply)
                if t is bytes:
                    if len(reply) < BIG_REPLY:
                        data = b"$%d\r\n%s\r\n" % (len(reply), reply)
                    else:
                        data = bulk_parts(reply)  # sent without copying the value
                elif reply is OK:
                    data = b"+OK\r\n"
                elif t is int:
                    data = b":%d\r\n" % reply
                elif reply is None:
                    data = b"$-1\r\n" if client.resp == 2 else b"_\r\n"
                else:
                    if t is ErrorReply:
                        stat.failed += 1
                    data = encode(reply) if client.resp == 2 else encode3(reply)
                # (A fast-lane command never asks to close the connection.)
            else:
                if core.client_pause is not None and self.held_by_pause(client, argv):
                    return i - 1, size, PAUSED, None
                client.obl = size
                reply = self.call(client, argv)
                stale = True
                blocking = core.blocking
                if blocking is not None and blocking.ready:
                    # Keys this command made ready: serve the clients blocked
                    # on them now, after the whole command (EXEC, a script),
                    # before this reply is encoded, so it holds on their pops.
                    blocking.serve_ready(core)
                if client.reply_mode and reply_suppressed(client):
                    # CLIENT REPLY OFF/SKIP: no reply. Later replies still wait
                    # for every write before them (their chunk's LSN).
                    core.stats.total_commands += 1  # it ran; `out` counts replies
                    if type(reply) is Deferred:
                        reply.silent = True  # wait for it as usual, then send nothing
                        return i, size, DEFERRED, reply
                    if client.close_after_reply:
                        return i, size, CLOSING, None
                    continue
                if type(reply) is Deferred:
                    return i, size, DEFERRED, reply
                if type(reply) is bytes and len(reply) >= BIG_REPLY:
                    data = bulk_parts(reply)  # sent without copying the value
                else:
                    data = encode(reply) if client.resp == 2 else encode3(reply)
                if client.close_after_reply:
                    out.append(data)
                    return i, size, CLOSING, None  # nothing after QUIT/SHUTDOWN/a kill runs
            out.append(data)
            size += len(data)
            if size > MAX_BATCH_REPLY_BYTES:
                return i, size, FULL, None
        return i, size, DONE, None   # (i: the start when there was nothing to run)

    # --- one request: the general lane -------------------------------------------

    def call(self, client: Any, argv: list[bytes]) -> Any:
        """Run one request through every check: its reply value (a Deferred if it answers later).

        Accounting as Redis's call() and rejectCommand() do it: a request
        refused before it runs (arity, NOAUTH, LOADING, OOM, mode) is a
        ``rejected_call`` of its command; one that ran is a call (duration in
        ``usec`` and the latency histogram) and, if it answered an error, a
        ``failed_call``. An unknown command or subcommand counts only as an
        error reply (INFO errorstats), and no request that did not run counts
        in total_commands_processed (the connection adds one per reply).
        """
        name = argv[0]
        cmd = self.commands.get(name)
        core = self.core
        if cmd is None:
            cmd = self.commands.get(name.lower())
            if cmd is None:
                # Raw bytes: the quoted arguments are the client's, not UTF-8.
                stats = core.stats
                if client.mode == MULTI:
                    client.multi_error = True   # EXEC answers EXECABORT
                stats.count_error("ERR unknown command")
                stats.total_commands -= 1
                return Raw(unknown_command_line(argv))
        error = arity_error(cmd, len(argv))
        if error is not None:
            return self.reject(cmd.name, error, client)
        if not client.authenticated and cmd.name not in NO_AUTH_NEEDED \
                and core.config.requirepass:
            return self.reject(cmd.name, NOAUTH, client)
        if core.over_maxmemory and "denyoom" in cmd.flags:
            return self.reject(cmd.name, OOM, client)
        if core.read_only_replica and cmd.is_write:
            return self.reject(cmd.name, READONLY, client)
        mode = client.mode
        if mode != NORMAL:
            error = mode_error(mode, client.resp, cmd)
            if error is not None:
                return self.reject(cmd.name, error, client)
        if core.loading and "loading" not in cmd.flags:
            return self.reject(cmd.name, LOADING, client)
        if mode == MULTI and cmd.name not in MULTI_RUNS_NOW:
            # Redis's queueMultiCommand: EXEC runs the queue, in one unit.
            error = queue_error(cmd, argv)
            if error is not None:
                return self.reject(error[0], error[1], client)
            client.last_command = cmd.name   # CLIENT LIST cmd=, as Redis's lastcmd
            if not (client.multi_error or client.watch_dirty):
                # (A doomed queue keeps nothing: EXEC will not run it, as Redis.)
                cost = queued_cost(argv)
                if client.multi_bytes + cost > core.config.client_query_buffer_limit:
                    return self.reject(cmd.name, MULTI_QUEUE_FULL, client)
                client.multi_bytes += cost
                client.queued.append((cmd, argv))
            # Not processed yet: total_commands_processed counts it when EXEC runs it.
            core.stats.total_commands -= 1
            return QUEUED
        return self.run_command(client, cmd, argv)

    def run_command(self, client: Any, cmd: Command, argv: list[bytes]) -> Any:
        """Run a command that passed every check (call(), and EXEC for each queued one).

        Its own execution unit if it writes (nested in EXEC's: one record),
        its stats, the slow log and MONITOR.
        """
        core = self.core
        client.last_command = cmd.name
        failed = False
        started = perf_counter_ns()
        try:
            if cmd.is_write:
                core.begin_unit()
                try:
                    reply = cmd.func(client, argv)
                finally:
                    core.end_unit()
            else:
                reply = cmd.func(client, argv)
        except Rejected as exc:
            # A subcommand refused (unknown, or its arity) by dispatch_subcommand.
            if exc.command:
                core.command_stat(exc.command).rejected += 1
            core.stats.total_commands -= 1
            return self.error(exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the connection down
            reply = self.failed(cmd, exc)
            failed = True
        else:
            if type(reply) is ErrorReply:
                core.stats.count_error(reply)
                failed = True
            elif type(reply) is Future:
                reply = Deferred(reply)
        elapsed = perf_counter_ns() - started
        # A container (CLIENT, CONFIG...) ran a subcommand, named in last_command.
        ran = client.last_command if cmd.subcommands else cmd.name
        stat = core.command_stats.get(ran) or core.command_stat(ran)
        stat.ns += elapsed          # CommandStat.record, inline
        x = elapsed * elapsed
        stat.hist[(x * x).bit_length()] += 1
        if failed:
            stat.failed += 1
        micros = elapsed // 1000
        if micros >= core.config.slowlog_log_slower_than >= 0 or core.monitors:
            after_command(client, cmd, argv, micros)
        return reply

    def reject(self, name: str, message: str, client: Any = None) -> ErrorReply:
        """A request refused before it ran: its command's rejected_calls, an error reply.

        In MULTI it also dooms the transaction (Redis's flagTransaction):
        EXEC then answers EXECABORT.
        """
        core = self.core
        if name == "exec":
            # Redis's execCommandAbort: the transaction (if any) is discarded.
            if message.startswith("ERR "):
                message = message[4:]
            message = "EXECABORT Transaction discarded because of: " + message
            if client is not None:
                from .commands.transactions import end_multi
                end_multi(client)
        elif client is not None and client.mode == MULTI:
            client.multi_error = True
        if name:   # (an unknown subcommand counts for no command)
            core.command_stat(name).rejected += 1
        core.stats.total_commands -= 1  # the connection counts replies; this one did not run
        return self.error(message)

    def error(self, message: str) -> ErrorReply:
        self.core.stats.count_error(message)
        return ErrorReply(message)

    def failed(self, cmd: Command, exc: Exception) -> ErrorReply:
        """The reply to a command that raised; call it from the ``except`` block.

        A CommandError is the client's error. Anything else is a bug in a
        command, not the client's fault: log it with its traceback and answer
        this request with an error. A *write* that failed half-way may have
        changed memory without logging it, and a later read could then see a
        value no crash would keep: fail stop, as for a storage error (no held
        reply is released; every waiting client gets -ERR); restart recovers
        the logged state.
        """
        if isinstance(exc, CommandError):
            return self.error(exc.message)
        log.exception("internal error running %s", cmd.name)
        reply = self.error(f"ERR internal error running '{cmd.name}': {type(exc).__name__}")
        writer = self.core.persistence
        if cmd.is_write and writer is not None:
            writer.fail_stop(f"internal error in write command '{cmd.name}'")
        return reply

    def held_by_pause(self, client: Any, argv: list[bytes]) -> bool:
        """Whether CLIENT PAUSE holds this request back; if so, the client waits for its end.

        ALL holds every request, WRITE the write commands (as Redis 7.0's
        processCommand, which blocks the client: what follows waits too).
        A request Redis rejects before its pause check (an unknown command,
        a wrong arity) is not held: it gets its error at once.
        """
        core = self.core
        end, write_only = core.client_pause
        import time
        if time.monotonic() >= end:
            core.unpause_clients()
            return False
        commands = self.commands
        cmd = commands.get(argv[0]) or commands.get(argv[0].lower())
        if cmd is None or arity_error(cmd, len(argv)) is not None:
            return False
        if write_only and not cmd.is_write and not (
                cmd.name == "exec" and client.mode == MULTI
                and any(queued.is_write for queued, _argv in client.queued)) and not (
                cmd.name in PAUSED_AS_WRITES and pauses_as_write(core, cmd.name, argv)):
            return False   # (EXEC of a queue with a write is a write, as in Redis 7.0)
        core.paused_clients.add(client)
        return True


#: Commands CLIENT PAUSE WRITE holds though they are not writes: Redis 7.0's
#: MAY_REPLICATE ones (PUBLISH, SPUBLISH, PFCOUNT; EVAL and EVALSHA unless the
#: script's shebang says no-writes).
PAUSED_AS_WRITES = frozenset({"publish", "spublish", "pfcount", "eval", "evalsha"})


def pauses_as_write(core: Any, name: str, argv: list[bytes]) -> bool:
    """Whether a PAUSED_AS_WRITES request counts as a write for CLIENT PAUSE WRITE."""
    if name in ("eval", "evalsha"):
        from .scripting import script_may_write
        return script_may_write(core, name == "evalsha", argv[1])
    return True


def reply_suppressed(client: Any) -> bool:
    """Whether CLIENT REPLY drops the reply of the command that just ran (reply_mode set).

    As Redis's resetClient: SKIP drops one reply, the one after CLIENT
    REPLY SKIP; OFF drops all until CLIENT REPLY ON (which answers).
    """
    mode = client.reply_mode
    if mode == REPLY_SKIP_NEXT:
        client.reply_mode = REPLY_SKIP   # CLIENT REPLY SKIP itself: no reply
        return True
    if mode == REPLY_SKIP:
        client.reply_mode = REPLY_ON
        return True
    return mode == REPLY_OFF


#: WAL replay's entry (no client checks): commands.execute, by its other name.
replay = execute
