"""One client connection: read, parse, run, hold replies until durable, write.

Per read, every complete request in the buffer runs in order and the replies
are joined into one chunk. Under ``appendfsync always`` the chunk is held
until the writer reports ``durable_lsn`` at or past the LSN applied when the
last of those commands ran (guarantee 2 in docs/architecture.md), then
written with one ``transport.write``. Chunks leave strictly in order. The
requests run through the server's :class:`~kvserver.dispatch.Dispatcher`
(its fast lane included); this module only moves bytes and holds replies.
The client's state (mode, database, protocol...) is its
:class:`~kvserver.client.Client`, which this Connection owns as ``client``
and is the ``link`` of.

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
from functools import partial
from time import monotonic
from typing import Any

from .blocking import forget_client as forget_blocked
from .client import BLOCKED, MONITOR, NORMAL, Client, Deferred
from .commands.transactions import forget_client
from .dispatch import DEFERRED, DONE, FULL, MAX_BATCH_REPLY_BYTES, PAUSED, Dispatcher
from .errors import ProtocolError
from .protocol import ErrorReply, Parts, RequestParser, encode, encode3, error_line, join_replies

log = logging.getLogger("kvserver.connection")

#: Replies held for durability before we stop reading from this client: a
#: pipelining client cannot make us buffer without bound while a sync runs.
MAX_HELD_BYTES = 64 * 1024 * 1024
#: A big reply (see protocol.BIG_REPLY) goes to the transport this many bytes
#: at a time, the next slice once the transport has drained below its
#: low-water mark: the transport copies what it cannot send at once, and a
#: slice bounds that copy. 256 KiB is what one socket read brings in.
STREAM_SLICE = 256 * 1024
#: At most this much of a big reply is handed to the transport per turn of
#: the loop, even if the socket takes it all: other clients get their turn
#: between slices, so one client's 400 MB GET does not stall them.
STREAM_TURN_BYTES = 4 * 1024 * 1024
#: Pub/sub messages for one subscriber are gathered for the rest of the loop
#: turn and written as one chunk (one send for a publisher's whole pipeline,
#: not one per message); past this many bytes they go at once, so a long
#: pipeline of PUBLISH cannot gather without bound before the output limit
#: (client-output-buffer-limit pubsub) gets a look at them.
PUSH_GATHER_BYTES = 256 * 1024

__all__ = ["Connection", "MAX_BATCH_REPLY_BYTES", "MAX_HELD_BYTES"]


class Connection(asyncio.Protocol):
    """A client on a stream transport (TCP or Unix socket): the transport side of a Client."""

    __slots__ = ("client", "core", "transport", "parser", "writer", "dispatcher", "_held",
                 "_held_bytes", "_paused", "_write_paused", "_closed", "_waiting",
                 "_executing", "server", "_soft_limit_since", "_backlog", "_stream",
                 "_stream_bytes", "_close_when_sent", "_pump_scheduled", "_resume_mode", "_out",
                 "_push_buf", "_push_bytes")

    def __init__(self, server: Any) -> None:
        core = server.core
        self.core = core
        self.client = Client(core, link=self)
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.parser = RequestParser(core.config.proto_max_bulk_len,
                                    core.config.client_query_buffer_limit)
        self.writer = server.writer
        self.dispatcher: Dispatcher = server.dispatcher
        # Chunks waiting for durability: [lsn, bytes, reply count] or a Deferred.
        self._held: deque = deque()
        self._held_bytes = 0
        # Reading paused (backpressure), and the transport's own write pause.
        self._paused = False
        self._write_paused = False
        self._closed = False
        # The deferred reply the client waits for (mode BLOCKED), if any.
        self._waiting: Deferred | None = None
        # The client's mode before it was BLOCKED (restored when it resumes).
        self._resume_mode = NORMAL
        self._executing = False
        # When unsent replies first passed the soft output limit (None: below it).
        self._soft_limit_since: float | None = None
        # Requests already parsed but not run yet (we stopped mid-read: SAVE
        # blocked us, a pause, or the client stopped reading its replies).
        self._backlog: list | None = None
        # Reply bytes not yet given to the transport, in order (memoryviews
        # and bytes): set while a big reply goes out a slice at a time;
        # every write waits behind it. _stream_bytes is their total.
        self._stream: deque | None = None
        self._stream_bytes = 0
        self._close_when_sent = False
        self._pump_scheduled = False
        # The replies of the read being run (while _executing): a message this
        # client's own command publishes to it goes among them (send_push).
        self._out: list | None = None
        # Pub/sub messages gathered this loop turn (send_push), and their size.
        self._push_buf: list | None = None
        self._push_bytes = 0

    # --- asyncio.Protocol ------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        client = self.client
        peer = transport.get_extra_info("peername")
        sock = transport.get_extra_info("sockname")
        client.addr = _fmt_addr(peer)
        client.laddr = _fmt_addr(sock)
        raw = transport.get_extra_info("socket")
        if raw is not None:
            client.fd = raw.fileno()
            client.unix = raw.family == getattr(socket, "AF_UNIX", None)
        self.server.client_connected(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._held.clear()
        self._stream = None
        self._stream_bytes = 0
        self.core.monitors.discard(self.client)
        self.core.paused_clients.discard(self.client)
        forget_client(self.client)   # its WATCHes
        self._leave_registries()
        self.server.client_disconnected(self)
        # Break the connection <-> client cycle: a gone client's transport
        # (its TLS state) is freed now, by reference counting, not at the
        # next full GC pass (tests/test_tls_limits.py counts those layers).
        self.client.link = None

    def _leave_registries(self) -> None:
        """Out of the pub/sub and blocked-client registries now. Called when the
        client is killed (CLIENT KILL), not only once the transport reports the loss
        (a later loop turn): as Redis frees a killed client at once, a push or
        PUBLISH that runs in between must not pop for, or count, a client that
        will never read it."""
        if self.client.subs is not None:
            self.core.pubsub.forget(self.client)
        forget_blocked(self.client)  # its blocking pop, if it waits in one

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        # The client is reading what we send: that counts as activity for
        # `timeout`, as a successful write does in Redis.
        self.client.last_interaction = time.monotonic()
        if self._stream:
            self._pump()
        self._update_reading()

    def data_received(self, data: bytes) -> None:
        client = self.client
        if client.close_after_reply:
            # QUIT (or CLIENT KILL of itself) ran; its reply may still wait
            # for a sync. Nothing after it runs, as in Redis.
            return
        stats = self.core.stats
        stats.net_input_bytes += len(data)
        stats.reads_processed += 1
        client.last_interaction = monotonic()
        try:
            self.parser.feed(data)
        except ProtocolError as exc:
            self._protocol_error(exc, [], 0)
            return
        if client.mode != BLOCKED and not self._paused:
            self._process()

    # --- running requests --------------------------------------------------------

    def _process(self) -> None:
        """Run every complete request buffered, then emit their replies as one chunk."""
        parser = self.parser
        core = self.core
        client = self.client
        dispatcher = self.dispatcher
        out: list = []
        size = 0
        error: ProtocolError | None = None
        self._executing = True
        self._out = out
        backlog = self._backlog
        if backlog is not None:
            self._backlog = None
        try:
            # Parsed-but-not-run requests first (we stopped mid-read before),
            # then what the buffer holds; one take_requests() per read. A
            # client that must still authenticate gets the parser's tighter
            # limits and one request per take (see RequestParser.unauthenticated).
            single = parser.unauthenticated = (not client.authenticated
                                               and bool(core.config.requirepass))
            batch = backlog if backlog else parser.take_requests()
            while batch:
                i = 0
                while True:
                    i, size, outcome, deferred = dispatcher.run(client, batch, i, out, size)
                    if outcome == DONE:
                        break
                    if outcome == FULL:
                        core.stats.total_commands += len(out)
                        self._emit(out, len(out))
                        out, size = [], 0
                        self._out = out
                        if self._paused or self._closed:
                            # Paused: the rest waits (_update_reading resumes it).
                            self._backlog = batch[i:] or None
                            break
                        continue
                    if outcome == PAUSED:
                        # CLIENT PAUSE: this request and the rest wait for its end.
                        self._resume_mode = client.mode
                        client.mode = BLOCKED
                        self._backlog = batch[i:]
                    elif outcome == DEFERRED:
                        # SAVE: these replies, then the deferred one, in order.
                        core.stats.total_commands += len(out) + (not deferred.silent)
                        self._emit(out, len(out))
                        out = self._out = []
                        self._block_on(deferred)
                        self._backlog = batch[i:] or None
                    break  # CLOSING too: nothing after QUIT/SHUTDOWN/a kill runs
                if outcome != DONE:
                    break
                # Another call only if this batch was the backlog or a single
                # request, or a protocol error is waiting behind the requests
                # just run.
                if batch is backlog or single or parser.pending_error:
                    single = parser.unauthenticated = (not client.authenticated
                                                       and bool(core.config.requirepass))
                    batch = parser.take_requests()
                else:
                    batch = None
        except ProtocolError as exc:
            error = exc
        finally:
            self._executing = False
            self._out = None
        # What the read produced (or the protocol error after it) goes out.
        count = len(out)
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

    def resume_after_pause(self) -> None:
        """The pause ended (Core.unpause_clients): run what waited, from the loop."""
        client = self.client
        if client.mode == BLOCKED and self._waiting is None:
            client.mode = self._resume_mode
            asyncio.get_running_loop().call_soon(self._resume_processing)

    # --- busy mode: a script runs past busy-reply-threshold (kvserver.scripting.serve_busy) ---

    def busy_fd(self) -> int | None:
        """The descriptor a busy script may read this client from, or None if it must wait.

        Only an idle plain TCP/Unix client: not running a request, holding
        none (backlog, held or streaming replies, paused or blocked), not
        closing, and not TLS (its bytes are encrypted: it waits instead).
        """
        transport = self.transport
        if (transport is None or self._closed or self._executing or self._paused
                or self._backlog or self._held or self._stream is not None
                or self.client.mode == BLOCKED or self.client.close_after_reply
                or transport.get_extra_info("sslcontext") is not None):
            return None
        sock = transport.get_extra_info("socket")
        return sock.fileno() if sock is not None else None

    def busy_feed(self, data: bytes) -> tuple[list, ProtocolError | None]:
        """Bytes read by the busy script: into this client's parser.

        Returns every complete request, and the protocol error after them if any.
        """
        stats = self.core.stats
        stats.net_input_bytes += len(data)
        stats.reads_processed += 1
        self.client.last_interaction = monotonic()
        requests: list = []
        try:
            self.parser.feed(data)
            while True:   # (one at a time for a client that must still authenticate)
                batch = self.parser.take_requests()
                if not batch:
                    return requests, None
                requests += batch
        except ProtocolError as exc:
            return requests, exc

    def busy_send(self, data: bytes, count: int = 1) -> None:
        """Replies made in busy mode (``count`` of them): nothing of this client is held,
        so they go out now, but after the messages gathered for it before the script
        (send_push), which the loop the script holds up has not written yet."""
        if self._push_buf is not None:
            self._flush_pushes()
        if self._held:
            self._emit([data], count)   # behind those messages, held for durability
        else:
            self._write(data)

    def busy_eof(self) -> None:
        """The client closed while the script ran: the loop sees the same EOF afterwards."""

    def busy_protocol_error(self, exc: ProtocolError) -> None:
        self._protocol_error(exc, [], 0)

    def buffer_info(self) -> tuple[int, int, int, int, str]:
        # qbuf: the read being run, whole (Redis trims its query buffer only
        # after running every request in it, so CLIENT INFO sees its own bytes).
        qbuf = len(self.parser._buf) if self._executing else self.parser.buffered
        obl = self.client.obl if self._executing else 0
        events = ("" if self._paused else "r") + ("w" if self.output_pending() else "")
        return qbuf, obl, len(self._held), self.output_pending(), events

    def send_monitor(self, line: bytes) -> None:
        """A MONITOR line: sent like a reply, so it too waits for durability."""
        self._emit([line], 1)

    def send_push(self, data: bytes) -> None:
        """A pub/sub message for this client: like a reply, it waits for durability.

        It leaves once the writes applied so far are durable (the durability
        rule in kvserver.pubsub), after every reply and message before it. A
        message this client's own command published (a RESP3 subscriber)
        goes among the replies of the read being run, before that command's
        reply, as Redis sends it. Never blocks the publisher: a subscriber
        that does not read is held to ``client-output-buffer-limit pubsub``.
        """
        buf = self._push_buf
        if buf is not None:   # the common case: more for this turn's chunk
            buf.append(data)
            size = self._push_bytes = self._push_bytes + len(data)
            if size > PUSH_GATHER_BYTES:
                self._flush_pushes()
            return
        if self._closed:
            return
        if self._out is not None:
            self._out.append(data)
            # (_process counts one command per item in out; this is no command.)
            self.core.stats.total_commands -= 1
            return
        self._push_buf = [data]
        self._push_bytes = len(data)
        asyncio.get_running_loop().call_soon(self._flush_pushes)

    def _flush_pushes(self) -> None:
        """Send the messages gathered this turn as one chunk (held like a reply if
        writes before them are not durable yet: the LSN applied now covers them)."""
        buf = self._push_buf
        if buf is None:
            return
        self._push_buf = None
        if self._closed:
            return
        data = buf[0] if len(buf) == 1 else b"".join(buf)
        writer = self.writer
        held = self._held
        waiting = self._waiting
        if (waiting is not None and held and held[-1] is waiting
                and not waiting.future.done()):
            # Blocked (a RESP3 subscriber in BLPOP...): messages are not behind the
            # reply it waits for, as Redis pushes them at once; they still wait for
            # what was applied before them, and for the replies before the wait.
            lsn = writer.applied_lsn if writer.holds_replies else 0
            held.insert(len(held) - 1, [lsn, data, 0])
            self._held_bytes += len(data)
            writer.when_durable(lsn, self._on_durable)
            self._flush_held()
            if self._held_bytes:
                self._check_output_limit(monotonic(), self.core.config)
            return
        if self._held or writer.failed is not None or (
                writer.applied_lsn > writer.durable_lsn and writer.holds_replies):
            self._emit([data], 1)
            held = self._held
            if held and type(held[-1]) is list and held[-1][1] is data:
                held[-1][2] = 0   # no request waits for it: no error line at a fail-stop
            if self._held_bytes:
                self._check_output_limit(monotonic(), self.core.config)
        else:
            self._write(data)

    def _emit(self, out: list, count: int) -> None:
        """Send (or hold until durable) one chunk of replies, keeping order."""
        if self._push_buf is not None:
            self._flush_pushes()   # messages gathered before these replies go first
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
        if self.client.close_after_reply and not self._held:
            self._close()

    def _on_durable(self, error: Exception | None) -> None:
        if self._closed:
            return
        if error is not None:
            # Fail-stop: none of the held replies may be sent; each request
            # gets an error instead, then the connection closes.
            count = sum(item[2] if type(item) is list else 1 for item in self._held)
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
            if type(item) is Deferred:
                # Resolved, and what it waits for durable (_unblock set its LSN).
                if not item.future.done() or item.lsn < 0 or item.lsn > durable:
                    break
                held.popleft()
                result = item.future.result()
                ready.append(encode(result) if self.client.resp == 2 else encode3(result))
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
        if self.client.close_after_reply and not held:
            self._close()

    def _block_on(self, deferred: Deferred) -> None:
        """A command answered later (SAVE, a blocking pop): the client is BLOCKED until
        its future resolves.

        Its reply takes its place among the held chunks (unless CLIENT
        REPLY dropped it), and leaves once the future has resolved *and*
        its LSN is durable (Deferred.lsn: the unit holding a served pop;
        otherwise the LSN applied when it resolved).
        """
        client = self.client
        self._waiting = deferred
        self._resume_mode = client.mode
        client.mode = BLOCKED
        if not deferred.silent:
            self._held.append(deferred)
        deferred.future.add_done_callback(partial(self._unblock, deferred))

    def wake(self, deferred: Deferred) -> None:
        """Leave BLOCKED now: ``deferred`` was answered inside another command (a
        served pop, CLIENT UNBLOCK), so CLIENT LIST and INFO stop counting this
        client at once, as in Redis. The reply and the requests behind it go
        from the loop (_unblock), never from inside that command."""
        if self._waiting is deferred:
            self._waiting = None
            self.client.mode = self._resume_mode

    def _unblock(self, deferred: Deferred, fut: asyncio.Future) -> None:
        self.wake(deferred)
        writer = self.writer
        if deferred.lsn < 0:
            deferred.lsn = writer.applied_lsn if writer.holds_replies else 0
        if self._closed or fut.cancelled():
            return
        if not deferred.silent and deferred.lsn > writer.durable_lsn:
            writer.when_durable(deferred.lsn, self._on_durable)
        self._flush_held()
        # What waited behind it runs now, unless something else holds the
        # client (a newer wait, backpressure, a pending close).
        self._resume_processing()

    def _protocol_error(self, exc: ProtocolError, out: list[bytes], count: int) -> None:
        """Reply with the error after what ran before it, then close this client only."""
        self.core.stats.protocol_errors += 1
        self.core.stats.count_error(exc.reply_message)
        log.info("closing client %s after protocol error: %s", self.client.addr, exc.reason)
        out.append(encode(ErrorReply(exc.reply_message)))
        self.client.close_after_reply = True
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
        client = self.client
        if (not self._closed and not self._paused and not self._executing
                and client.mode != BLOCKED and not client.close_after_reply):
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
        """Drop this client if it is over its class's ``client-output-buffer-limit``
        (normal, or pubsub for a subscriber); True if dropped.

        Hard limit: at once. Soft limit: once it has stayed over it for the
        soft seconds. Monitors are replicas in Redis's classes, so not checked.
        """
        hard, soft, soft_seconds = cfg.output_limits(self.client.client_type())
        # (The registry, not the mode: a monitor stays one while a pause blocks it.)
        if not (hard or soft) or self.client in self.core.monitors:
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
                    "%d bytes pending)", self.client.addr, why, pending)
        self.drop()
        return True

    def cron(self, now: float, cfg: Any) -> None:
        """The server's periodic look at this client: idle timeout, output soft limit."""
        if self._check_output_limit(now, cfg):
            return
        client = self.client
        # Not blocked clients, monitors, nor subscribers (RESP2 or RESP3): they
        # wait for the server, as Redis's clientsCronHandleTimeout exempts them.
        if (cfg.timeout and now - client.last_interaction > cfg.timeout
                and client.mode != BLOCKED and client.mode != MONITOR
                and not client.in_pubsub()):
            log.info("closing idle client %s (timeout %d s)", client.addr, cfg.timeout)
            self.drop()

    def drop(self) -> None:
        """Close now, discarding unsent replies (a client that is not reading them never would).

        Requests still buffered do not run (Redis's CLIENT_CLOSE_ASAP).
        """
        self._closed = True
        self._held.clear()
        self._held_bytes = 0
        self._push_buf = None
        self._stream = None
        self._stream_bytes = 0
        # (Registries are left when the loss is reported, as Redis frees a client
        # over its output limit asynchronously: this may run inside a PUBLISH that
        # walks a channel's subscribers.)
        if self.transport is not None:
            self.transport.abort()

    def kill(self) -> None:
        """CLIENT KILL: close now, or right after this reply when a client kills itself."""
        if self._executing:
            self.client.close_after_reply = True
        else:
            self._held.clear()
            self._stream = None  # as Redis: the rest of a big reply is not sent
            self._stream_bytes = 0
            self._leave_registries()
            self._close()


def _fmt_addr(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in str(host) else f"{host}:{addr[1]}"
    return f"{addr or ''}:0"
