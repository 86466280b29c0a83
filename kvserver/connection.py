"""One client connection: read, parse, run, hold replies until durable, write.

Per read, every complete request in the buffer runs in order and the replies
are joined into one chunk. Under ``appendfsync always`` the chunk is held
until the writer reports ``durable_lsn`` at or past the LSN applied when the
last of those commands ran (guarantee 2 in docs/architecture.md), then
written with one ``transport.write``. Chunks leave strictly in order. The
commands most requests are (GET, SET key value, INCR) skip _execute's
general sequence when nothing calls for it: see :data:`HOT_HANDLERS`.

Backpressure both ways: reading pauses when the transport's write buffer is
above its high-water mark (``pause_writing``), or when more than
:data:`MAX_HELD_BYTES` of replies wait for a sync. Requests already read stop
running too: once a read's replies pass :data:`MAX_BATCH_REPLY_BYTES` they are
sent, and if that paused us the rest wait in the query buffer until the client
reads. So a client that asks for big replies and reads nothing costs at most
about one batch, one reply and the transport's buffer, and with
``client-output-buffer-limit normal`` set it is disconnected.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import deque
from time import monotonic, perf_counter_ns
from typing import Any

from .commands import Command, Rejected, unknown_command_line
from .commands import strings
from .commands.introspection import after_command
from .errors import CommandError, ProtocolError, wrong_arity
from .protocol import (BIG_REPLY, ErrorReply, Parts, Raw, RequestParser, bulk_parts, encode,
                       encode3, error_line, join_replies)
from .session import REPLY_OFF, REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT, Session

log = logging.getLogger("kvserver.connection")

#: Replies held for durability before we stop reading from this client: a
#: pipelining client cannot make us buffer without bound while a sync runs.
MAX_HELD_BYTES = 64 * 1024 * 1024
#: Replies from one read are sent once they pass this size, rather than all
#: at the end: a pipeline of big GETs must not build its whole answer in
#: memory before the transport (and the client's reading) gets a say.
MAX_BATCH_REPLY_BYTES = 256 * 1024
#: A big reply (see protocol.BIG_REPLY) goes to the transport this many bytes
#: at a time, the next slice once the transport has drained below its
#: low-water mark: the transport copies what it cannot send at once, and a
#: slice bounds that copy. 256 KiB is what one socket read brings in.
STREAM_SLICE = 256 * 1024
#: At most this much of a big reply is handed to the transport per turn of
#: the loop, even if the socket takes it all: other clients get their turn
#: between slices, so one client's 400 MB GET does not stall them.
STREAM_TURN_BYTES = 4 * 1024 * 1024
#: Commands a client may run before authenticating (as in Redis).
_NO_AUTH_NEEDED = frozenset({"auth", "hello", "quit"})
_LOADING = ErrorReply("LOADING Redis is loading the dataset in memory")
_NOAUTH = ErrorReply("NOAUTH Authentication required.")
_OOM = ErrorReply("OOM command not allowed when used memory > 'maxmemory'.")
#: The hot path's slow log threshold (ns) when the slow log is off.
_NEVER_SLOW = 1 << 62


#: The hot path: the commands most requests are, run without _execute's
#: general sequence (table lookup, arity and state checks, a reply value to
#: encode). Command function -> (the one argc it takes, its hot handler).
#: A hot handler returns the reply already encoded; it must do exactly what
#: the command function does for that argc (same reply bytes in RESP2 and
#: RESP3, stats, WAL records, lazy expiry, errors raised as CommandError).
#: tests/test_hotpath.py holds both paths to that.
HOT_HANDLERS = {
    strings.cmd_get: (2, strings.hot_get),
    strings.cmd_set: (3, strings.hot_set),      # SET key value: no options
    strings.cmd_incr: (2, strings.hot_incr),
}


def hot_table(commands: dict[bytes, Command]) -> dict[bytes, tuple[Command, int, Any]]:
    """Name -> (Command, argc, hot handler) for a server's command table.

    Built from the table clients see, so it follows rename-command: a hot
    command is hot under the names it answers to, and a name renamed away
    is not in it. Keyed off each Command's function, so a command whose
    function was replaced (a test's fault injection) is not hot.
    """
    table = {}
    for name, cmd in commands.items():
        hot = HOT_HANDLERS.get(cmd.func)
        if hot is not None:
            assert cmd.arity_ok(hot[0])
            table[name] = (cmd, hot[0], hot[1])
    return table


def _hot_with_stats(hot: dict, core: Any) -> dict:
    """A server's hot table with each entry's CommandStat appended: (Command, argc, handler, stat).

    Made once per hot table and core (new connections reuse it), so the hot
    path finds its command's counters in the entry it already has.
    """
    cached = core.hot_stats
    if cached is None or cached[0] is not hot:
        table = {name: (*entry, core.command_stat(entry[0].name)) for name, entry in hot.items()}
        cached = core.hot_stats = (hot, table)
    return cached[1]


class Connection(Session, asyncio.Protocol):
    """A client on a stream transport (TCP or Unix socket)."""

    __slots__ = ("transport", "parser", "writer", "_held", "_held_bytes", "_paused",
                 "_write_paused", "_closed", "_blocked", "_executing", "server", "_commands",
                 "_soft_limit_since", "_backlog", "_hot", "_obl", "_pause_wait", "_stream",
                 "_stream_bytes", "_close_when_sent", "_pump_scheduled")

    def __init__(self, server: Any) -> None:
        core = server.core
        super().__init__(core)
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(core.config.proto_max_bulk_len,
                                    core.config.client_query_buffer_limit)
        self.writer = server.writer
        # Chunks waiting for durability: [lsn, bytes, reply count] or a future.
        self._held: deque[list] = deque()
        self._held_bytes = 0
        self._paused = False
        self._write_paused = False
        self._closed = False
        self._blocked: asyncio.Future | None = None
        self._executing = False
        self._commands = server.commands
        self._hot = _hot_with_stats(server.hot_commands, core)
        # Reply bytes this read has produced before the running command (obl).
        self._obl = 0
        # Waiting for CLIENT PAUSE to end, its requests in _backlog.
        self._pause_wait = False
        # When unsent replies first passed the soft output limit (None: below it).
        self._soft_limit_since: float | None = None
        # Requests already parsed but not run yet (we stopped mid-read: SAVE
        # blocked us, or the client stopped reading its replies).
        self._backlog: list | None = None
        # Reply bytes not yet given to the transport, in order (memoryviews
        # and bytes): set while a big reply goes out a slice at a time;
        # every write waits behind it. _stream_bytes is their total.
        self._stream: deque | None = None
        self._stream_bytes = 0
        self._close_when_sent = False
        self._pump_scheduled = False

    # --- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        self.addr = _fmt_addr(peer)
        self.laddr = _fmt_addr(sock)
        raw = transport.get_extra_info("socket")
        if raw is not None:
            self.fd = raw.fileno()
            self.unix = raw.family == getattr(socket, "AF_UNIX", None)
        self.server.client_connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._held.clear()
        self._stream = None
        self._stream_bytes = 0
        self.core.monitors.discard(self)
        self.core.paused_clients.discard(self)
        self.server.client_disconnected(self)

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        # The client is reading what we send: that counts as activity for
        # `timeout`, as a successful write does in Redis.
        self.last_interaction = time.monotonic()
        if self._stream:
            self._pump()
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        if self.close_after_reply:
            # QUIT (or CLIENT KILL of itself) ran; its reply may still wait
            # for a sync. Nothing after it runs, as in Redis.
            return
        stats = self.core.stats
        stats.net_input_bytes += len(data)
        stats.reads_processed += 1
        self.last_interaction = monotonic()
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc, [], 0)
            return
        if self._blocked is None and not self._paused and not self._pause_wait:
            self._process()

    # --- running requests --------------------------------------------------------

    def _process(self) -> None:
        """Run every complete request buffered, then emit their replies as one chunk."""
        parser = self.parser
        core = self.core
        out: list[bytes] = []
        count = 0
        size = 0
        error: ProtocolError | None = None
        self._executing = True
        stop = False
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
        hot = self._hot
        hot_ok, slow_ns = self._hot_state()
        stale = False
        try:
            # Parsed-but-not-run requests first (we stopped mid-read before),
            # then what the buffer holds; one take_requests() per read. A
            # client that must still authenticate gets the parser's tighter
            # limits and one request per take (see RequestParser.unauthenticated).
            single = parser.unauthenticated = (not self.authenticated
                                               and bool(core.config.requirepass))
            batch = backlog if backlog else parser.take_requests()
            while batch:
                for i, argv in enumerate(batch):
                    entry = hot.get(argv[0])
                    if entry is not None and stale:
                        # A command ran on the general path since: it may have
                        # changed what the hot path depends on (AUTH, HELLO 3,
                        # MONITOR, CONFIG SET...).
                        hot_ok, slow_ns = self._hot_state()
                        stale = False
                    if entry is not None and hot_ok and len(argv) == entry[1]:
                        # The hot path (see hot_table): what _execute does
                        # once its checks have passed, with the reply encoded
                        # by the handler itself.
                        cmd = entry[0]
                        self.last_command = cmd.name
                        started = perf_counter_ns()
                        try:
                            data = entry[2](self, argv)
                        except Exception as exc:  # noqa: BLE001 - as in _execute
                            reply = self._failed(cmd, exc)
                            data = encode(reply) if self.resp == 2 else encode3(reply)
                            entry[3].failed += 1
                        elapsed = perf_counter_ns() - started
                        # INFO commandstats/latencystats: CommandStat.record, inline.
                        stat = entry[3]
                        stat.ns += elapsed
                        x = elapsed * elapsed
                        stat.hist[(x * x).bit_length()] += 1
                        if elapsed >= slow_ns:
                            after_command(self, cmd, argv, elapsed // 1000)
                    else:
                        if core.client_pause is not None and self._held_by_pause(argv):
                            # CLIENT PAUSE: this request and the rest wait for its end.
                            self._backlog = batch[i:]
                            stop = True
                            break
                        self._obl = size
                        reply = self._execute(argv)
                        stale = True
                        if self.reply_mode and self._reply_suppressed():
                            # CLIENT REPLY OFF/SKIP: no reply. Later replies still
                            # wait for every write before them (their chunk's LSN).
                            core.stats.total_commands += 1  # it ran; `count` counts replies
                            if isinstance(reply, asyncio.Future):
                                # SAVE: wait for it as usual, then send nothing.
                                core.stats.total_commands += count
                                self._emit(out, count)
                                out, count = [], 0
                                self._blocked = reply
                                reply.add_done_callback(self._unblock)
                                self._backlog = batch[i + 1:] or None
                                stop = True
                                break
                            if self.close_after_reply:
                                break
                            continue
                        if isinstance(reply, asyncio.Future):
                            core.stats.total_commands += count + 1  # these and SAVE itself
                            self._emit(out, count)
                            out, count = [], 0
                            self._block_on(reply)
                            self._backlog = batch[i + 1:] or None
                            stop = True
                            break
                        if type(reply) is bytes and len(reply) >= BIG_REPLY:
                            data = bulk_parts(reply)  # sent without copying the value
                        else:
                            data = encode(reply) if self.resp == 2 else encode3(reply)
                    out.append(data)
                    count += 1
                    if self.close_after_reply:
                        break  # nothing after QUIT/SHUTDOWN/a kill runs
                    size += len(data)
                    if size > MAX_BATCH_REPLY_BYTES:
                        core.stats.total_commands += count
                        self._emit(out, count)
                        out, count, size = [], 0, 0
                        # Paused: the rest waits (_update_reading resumes it).
                        stop = self._paused
                    if stop or self._closed:
                        self._backlog = batch[i + 1:] or None
                        break
                if stop or self._closed or self.close_after_reply:
                    break
                # Another call only if this batch was the backlog or a single
                # request, or a protocol error is waiting behind the requests
                # just run.
                if batch is backlog or single or parser.pending_error:
                    single = parser.unauthenticated = (not self.authenticated
                                                       and bool(core.config.requirepass))
                    batch = parser.take_requests()
                else:
                    batch = None
        except ProtocolError as exc:
            error = exc
        finally:
            self._executing = False
        core.stats.total_commands += count
        if error is not None:
            self._protocol_error(error, out, count)
            return
        if len(core.clients) == 1 and self.writer.holds_replies:
            # The only client, and its replies wait for durability: nothing
            # else can join this batch, so commit it now and send without
            # holding (see Writer.commit_now). Under everysec/no the replies
            # go first and the write follows at the next turn, off their path.
            self.writer.commit_now()
        self._emit(out, count)

    def _hot_state(self) -> tuple[bool, int]:
        """Whether the hot path may run now, and the slow log threshold in ns.

        Not when _execute's checks could refuse a request (a client not
        authenticated yet, -LOADING, -OOM), monitors must see it, its reply
        may be suppressed (CLIENT REPLY) or it may have to wait (CLIENT
        PAUSE): then every request takes the general path. A command run by the hot path
        is timed as _execute times one; it goes to the slow log when it took
        at least the threshold (a huge number when the slow log is off).
        Between two requests of a batch only a command can change any of
        this, and every such command takes the general path, after which
        _process asks again.
        """
        core = self.core
        threshold = core.config.slowlog_log_slower_than
        ok = (self.authenticated and not core.loading and not core.over_maxmemory
              and not core.monitors and not self.reply_mode and core.client_pause is None)
        return ok, (threshold * 1000 if threshold >= 0 else _NEVER_SLOW)

    def _execute(self, argv: list[bytes]) -> Any:
        """Run one request off the hot path: lookup, checks, the command, its accounting.

        Accounting as Redis's call() and rejectCommand() do it: a request
        refused before it runs (arity, NOAUTH, LOADING, OOM) is a
        ``rejected_call`` of its command; one that ran is a call (duration in
        ``usec`` and the latency histogram) and, if it answered an error, a
        ``failed_call``. An unknown command or subcommand counts only as an
        error reply (INFO errorstats), and no request that did not run counts
        in total_commands_processed.
        """
        name = argv[0]
        cmd = self._commands.get(name)
        if cmd is None:
            cmd = self._commands.get(name.lower())
            if cmd is None:
                # Raw bytes: the quoted arguments are the client's, not UTF-8.
                stats = self.core.stats
                stats.count_error("ERR unknown command")
                stats.total_commands -= 1  # the batch counts replies; this one did not run
                return Raw(unknown_command_line(argv))
        a = cmd.arity
        if (len(argv) != a) if a >= 0 else (len(argv) < -a):
            return self._reject(cmd.name, wrong_arity(cmd.name).message)
        core = self.core
        if not self.authenticated and cmd.name not in _NO_AUTH_NEEDED \
                and core.config.requirepass:
            return self._reject(cmd.name, _NOAUTH)
        if core.loading and "loading" not in cmd.flags:
            return self._reject(cmd.name, _LOADING)
        if core.over_maxmemory and "denyoom" in cmd.flags:
            return self._reject(cmd.name, _OOM)
        self.last_command = cmd.name
        failed = False
        started = perf_counter_ns()
        try:
            reply = cmd.func(self, argv)
        except Rejected as exc:
            # A subcommand refused (unknown, or its arity) by dispatch_subcommand.
            if exc.command:
                core.command_stat(exc.command).rejected += 1
            core.stats.total_commands -= 1
            return self._error(exc.message)
        except Exception as exc:  # noqa: BLE001 - a bug must not take the connection down
            reply = self._failed(cmd, exc)
            failed = True
        else:
            if type(reply) is ErrorReply:
                core.stats.count_error(reply)
                failed = True
        elapsed = perf_counter_ns() - started
        # A container (CLIENT, CONFIG...) ran a subcommand, named in last_command.
        ran = self.last_command if cmd.subcommands else cmd.name
        stat = core.command_stats.get(ran) or core.command_stat(ran)
        stat.ns += elapsed          # CommandStat.record, inline
        x = elapsed * elapsed
        stat.hist[(x * x).bit_length()] += 1
        if failed:
            stat.failed += 1
        micros = elapsed // 1000
        if micros >= core.config.slowlog_log_slower_than >= 0 or core.monitors:
            after_command(self, cmd, argv, micros)
        return reply

    def _reject(self, name: str, message: str) -> ErrorReply:
        """A request refused before it ran: its command's rejected_calls, an error reply."""
        core = self.core
        core.command_stat(name).rejected += 1
        core.stats.total_commands -= 1  # the batch counts replies; this one did not run
        return self._error(message)

    def _reply_suppressed(self) -> bool:
        """Whether CLIENT REPLY drops the reply of the command that just ran (reply_mode set).

        As Redis's resetClient: SKIP drops one reply, the one after CLIENT
        REPLY SKIP; OFF drops all until CLIENT REPLY ON (which answers).
        """
        mode = self.reply_mode
        if mode == REPLY_SKIP_NEXT:
            self.reply_mode = REPLY_SKIP   # CLIENT REPLY SKIP itself: no reply
            return True
        if mode == REPLY_SKIP:
            self.reply_mode = REPLY_ON
            return True
        return mode == REPLY_OFF

    def _held_by_pause(self, argv: list[bytes]) -> bool:
        """Whether CLIENT PAUSE holds this request back; if so, wait for the pause to end.

        ALL holds every request, WRITE the write commands (as Redis 7.0's
        processCommand, which blocks the client: what follows waits too).
        A request Redis rejects before its pause check (an unknown command,
        a wrong arity) is not held: it gets its error at once.
        """
        core = self.core
        end, write_only = core.client_pause
        if time.monotonic() >= end:
            core.unpause_clients()
            return False
        cmd = self._commands.get(argv[0]) or self._commands.get(argv[0].lower())
        if cmd is None or not cmd.arity_ok(len(argv)) or (write_only and not cmd.is_write):
            return False
        self._pause_wait = True
        core.paused_clients.add(self)
        return True

    def resume_after_pause(self) -> None:
        """The pause ended (Core.unpause_clients): run what waited, from the loop."""
        if self._pause_wait:
            self._pause_wait = False
            asyncio.get_running_loop().call_soon(self._resume_processing)

    def is_blocked(self) -> bool:
        return self._pause_wait or self._blocked is not None

    def buffer_info(self) -> tuple[int, int, int, int, str]:
        # qbuf: the read being run, whole (Redis trims its query buffer only
        # after running every request in it, so CLIENT INFO sees its own bytes).
        qbuf = len(self.parser._buf) if self._executing else self.parser.buffered
        obl = self._obl if self._executing else 0
        events = ("" if self._paused else "r") + ("w" if self.output_pending() else "")
        return qbuf, obl, len(self._held), self.output_pending(), events

    def _failed(self, cmd: Any, exc: Exception) -> ErrorReply:
        """The reply to a command that raised; call it from the ``except`` block.

        A CommandError is the client's error. Anything else is a bug in a
        command, not the client's fault: log it with its traceback and answer
        this request with an error. (A try block costs nothing until
        something raises.) A *write* that failed half-way may have changed
        memory without logging it, and a later read could then see a value
        no crash would keep: fail stop, as for a storage error (no held reply
        is released; every waiting client gets -ERR); restart recovers the
        logged state.
        """
        if isinstance(exc, CommandError):
            return self._error(exc.message)
        log.exception("internal error running %s", cmd.name)
        reply = self._error(f"ERR internal error running '{cmd.name}': "
                            f"{type(exc).__name__}")
        if cmd.is_write:
            self.writer.fail_stop(f"internal error in write command '{cmd.name}'")
        return reply

    def send_monitor(self, line: bytes) -> None:
        """A MONITOR line: sent like a reply, so it too waits for durability."""
        self._emit([line], 1)

    def _error(self, message: str) -> ErrorReply:
        self.core.stats.count_error(message)
        return ErrorReply(message)

    def _emit(self, out: list[bytes], count: int) -> None:
        """Send (or hold until durable) one chunk of replies, keeping order."""
        if count:
            if len(out) > 1:
                try:
                    chunk = b"".join(out)
                except TypeError:  # a big reply (Parts) among them: keep it in pieces
                    chunk = join_replies(out)
            else:
                chunk = out[0]
            writer = self.writer
            # Held: behind earlier held chunks; after a fail-stop (nothing is
            # sent: when_durable answers with the error); or under ``always``
            # until the writes so far are durable. (Under everysec/no nothing
            # waits for a sync: LSN 0 is always durable.)
            if self._held or writer.failed is not None or (
                    writer.applied_lsn > writer.durable_lsn and writer.holds_replies):
                lsn = writer.applied_lsn if writer.holds_replies else 0
                self._held.append([lsn, chunk, count])
                self._held_bytes += len(chunk)
                writer.when_durable(lsn, self._on_durable)
                self._update_reading()
            else:
                self._write(chunk)
        if self.close_after_reply and not self._held:
            self._close()

    def _on_durable(self, error: Exception | None) -> None:
        if self._closed:
            return
        if error is not None:
            # Fail-stop: none of the held replies may be sent; each request
            # gets an error instead, then the connection closes.
            count = sum(item[2] for item in self._held if isinstance(item, list))
            self._held.clear()
            if count:
                self._write(error_line(f"ERR {error}") * count)
            self._close()
            return
        self._flush_held()

    def _flush_held(self) -> None:
        held = self._held
        durable = self.writer.durable_lsn
        ready = []
        while held:
            item = held[0]
            if isinstance(item, asyncio.Future):
                if not item.done():
                    break
                held.popleft()
                ready.append(encode(item.result()) if self.resp == 2 else encode3(item.result()))
                continue
            if item[0] > durable:
                break
            held.popleft()
            self._held_bytes -= len(item[1])
            ready.append(item[1])
        if ready:
            try:
                self._write(b"".join(ready))
            except TypeError:  # a big reply (Parts) among them
                self._write(join_replies(ready))
        self._update_reading()
        if self.close_after_reply and not held:
            self._close()

    def _block_on(self, fut: asyncio.Future) -> None:
        """A command answered later (SAVE): stop running requests until it is done."""
        self._blocked = fut
        self._held.append(fut)  # type: ignore[arg-type]
        fut.add_done_callback(self._unblock)

    def _unblock(self, fut: asyncio.Future) -> None:
        self._blocked = None
        if self._closed:
            return
        self._flush_held()
        if not self._closed:
            self._process()

    def _protocol_error(self, exc: ProtocolError, out: list[bytes], count: int) -> None:
        """Reply with the error after what ran before it, then close this client only."""
        self.core.stats.protocol_errors += 1
        self.core.stats.count_error(exc.reply_message)
        log.info("closing client %s after protocol error: %s", self.addr, exc.reason)
        out.append(encode(ErrorReply(exc.reply_message)))
        self.close_after_reply = True
        self._emit(out, count + 1)

    def _write(self, data: bytes | Parts) -> None:
        if self.transport is not None and not self._closed:
            stats = self.core.stats
            stats.net_output_bytes += len(data)
            stats.writes_processed += 1
            if self._stream is not None or type(data) is Parts:
                self._queue(data)
            else:
                self.transport.write(data)
            if self._write_paused:
                self._check_output_limit(time.monotonic(), self.core.config)

    def _queue(self, data: bytes | Parts) -> None:
        """Send ``data`` after what is queued, a slice at a time (see STREAM_SLICE)."""
        stream = self._stream
        if stream is None:
            stream = self._stream = deque()
        if type(data) is Parts:
            for piece in data.pieces:
                stream.append(memoryview(piece) if len(piece) > STREAM_SLICE else piece)
        else:
            stream.append(data)
        self._stream_bytes += len(data)
        if not self._write_paused and not self._pump_scheduled:
            self._pump()
        # A reply still going out is backpressure, like a full transport
        # buffer: stop reading and running this client's requests until it
        # is out, or a pipeline of big replies built fresh (GETRANGE...)
        # would pile up here while the socket keeps taking slices.
        self._update_reading()

    def _pump(self) -> None:
        """Hand queued reply bytes to the transport until it pushes back or the turn's share is out.

        The transport calls pause_writing() from inside write() once its
        buffer passes the high-water mark; resume_writing() brings us back.
        If the socket took this turn's share without pushing back, the rest
        goes at the next turn, after other clients' callbacks.
        """
        self._pump_scheduled = False
        stream = self._stream
        transport = self.transport
        if stream is None or transport is None or self._closed:
            return
        budget = STREAM_TURN_BYTES
        while stream and not self._write_paused and budget > 0:
            piece = stream[0]
            if len(piece) > STREAM_SLICE:
                piece, stream[0] = piece[:STREAM_SLICE], piece[STREAM_SLICE:]
            else:
                stream.popleft()
            self._stream_bytes -= len(piece)
            budget -= len(piece)
            transport.write(piece)
        if stream:
            if not self._write_paused:
                self._pump_scheduled = True
                asyncio.get_running_loop().call_soon(self._pump)
            return
        self._stream = None
        if self._close_when_sent:
            transport.close()
        else:
            self._update_reading()  # the requests that waited behind it run now

    def _update_reading(self) -> None:
        if self.transport is None or self._closed:
            return
        want_pause = (self._write_paused or self._stream is not None
                      or self._held_bytes > MAX_HELD_BYTES)
        if want_pause and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        elif not want_pause and self._paused:
            self._paused = False
            self.transport.resume_reading()
            if self.parser.buffered or self._backlog:
                # Requests left waiting when we paused mid-batch. Run them from
                # the loop, not from inside whichever callback resumed us (the
                # writer's release, the transport's resume_writing).
                asyncio.get_running_loop().call_soon(self._resume_processing)

    def _resume_processing(self) -> None:
        if (not self._closed and not self._paused and not self._executing
                and self._blocked is None and not self.close_after_reply
                and not self._pause_wait):
            self._process()

    def _close(self) -> None:
        if self._stream is not None:
            self._close_when_sent = True  # _pump closes once the last byte is handed over
        elif self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    # --- limits (called rarely: when the transport is backed up, and by the server's cycle) ---

    def output_pending(self) -> int:
        """Reply bytes not yet taken by the client: the transport's buffer plus held chunks."""
        transport = self.transport
        buffered = transport.get_write_buffer_size() if transport is not None else 0
        return buffered + self._held_bytes + self._stream_bytes

    def _check_output_limit(self, now: float, cfg: Any) -> bool:
        """Drop this client if it is over ``client-output-buffer-limit normal``; True if dropped.

        Hard limit: at once. Soft limit: once it has stayed over it for the
        soft seconds. Monitors are replicas in Redis's classes, so not checked.
        """
        hard, soft, soft_seconds = cfg.normal_output_limits
        if not (hard or soft) or self in self.core.monitors:
            return False
        pending = self.output_pending()
        if hard and pending > hard:
            why = "hard"
        elif soft and pending > soft:
            if self._soft_limit_since is None:
                self._soft_limit_since = now
            if now - self._soft_limit_since <= soft_seconds:
                return False
            why = "soft"
        else:
            self._soft_limit_since = None
            return False
        log.warning("client %s closed for overcoming of output buffer limits (%s limit, "
                    "%d bytes pending)", self.addr, why, pending)
        self.drop()
        return True

    def cron(self, now: float, cfg: Any) -> None:
        """The server's periodic look at this client: idle timeout, output soft limit."""
        if self._check_output_limit(now, cfg):
            return
        if (cfg.timeout and now - self.last_interaction > cfg.timeout
                and self._blocked is None and not self._pause_wait
                and self not in self.core.monitors):
            log.info("closing idle client %s (timeout %d s)", self.addr, cfg.timeout)
            self.drop()

    def drop(self) -> None:
        """Close now, discarding unsent replies (a client that is not reading them never would).

        Requests still buffered do not run (Redis's CLIENT_CLOSE_ASAP).
        """
        self._closed = True
        self._held.clear()
        self._held_bytes = 0
        self._stream = None
        self._stream_bytes = 0
        if self.transport is not None:
            self.transport.abort()

    def kill(self) -> None:
        """CLIENT KILL: close now, or right after this reply when a client kills itself."""
        if self._executing:
            self.close_after_reply = True
        else:
            self._held.clear()
            self._stream = None  # as Redis: the rest of a big reply is not sent
            self._stream_bytes = 0
            self._close()


def _fmt_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return f"{addr or ''}:0"
