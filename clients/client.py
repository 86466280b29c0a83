"""The blocking client: one socket, one command (or one pipeline) at a time.

Bytes go through the sans-I/O :mod:`kvserver.protocol` both ways:
:func:`~kvserver.protocol.encode_command` to send and
:class:`~kvserver.protocol.ReplyParser` to read, so the client and the server
agree on RESP by construction.

The connection opens lazily on the first command (or :meth:`Client.connect`).
Any failure in the middle of an exchange (timeout, reset, Ctrl-C, garbage)
closes it, because the position in the reply stream is then unknown; the next
command opens a fresh one, with the same AUTH / HELLO / SELECT handshake.
A command that failed that way is never re-sent: it may have run.

Not thread-safe: give each thread its own Client.
"""

from __future__ import annotations

import select
import socket
from typing import Any, Iterator, Sequence

from kvserver.errors import ProtocolError
from kvserver.protocol import NEED_DATA, ReplyParser, encode_command

from .commands import (ClientOptions, Commands, QueuedCommands, Shape, encode_all,
                       is_quit)
from .errors import (ClientConnectionError, ClientProtocolError, ClientTimeoutError,
                     os_reason)

#: Bytes asked of the socket per read: 64 KiB, asyncio's default stream limit.
#: Redis itself reads 16 KiB (PROTO_IOBUF_LEN); a client holds one buffer, so
#: reading more per call costs nothing and makes big replies take fewer calls.
READ_SIZE = 64 * 1024


class Client(ClientOptions, Commands):
    """A blocking connection to kvserver (or any Redis-compatible server).

    ``timeout`` (seconds, None = wait forever) bounds the connect and each
    socket read or write. ``resp=3`` sends ``HELLO 3`` on connect, so maps,
    doubles and booleans come back as ``dict``, ``float`` and ``bool``.
    Bulk strings are ``bytes`` unless ``decode_responses=True``.

    Error replies raise :class:`~clients.errors.ServerError` subclasses;
    connection trouble raises :class:`~clients.errors.ClientConnectionError`
    (:class:`~clients.errors.ClientTimeoutError` for timeouts).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, db: int = 0,
                 password: str | bytes | None = None, unix_socket: str | None = None,
                 timeout: float | None = None, resp: int = 2, *,
                 username: str | bytes | None = None,
                 decode_responses: bool = False) -> None:
        super().__init__(host, port, db, password, unix_socket, timeout, resp,
                         username=username, decode_responses=decode_responses)
        self._sock: socket.socket | None = None
        self._poller: select.poll | None = None
        self._parser = ReplyParser()

    # --- connection -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self) -> None:
        """Open the connection now, if not open, and run the handshake.

        Raises ClientConnectionError / ClientTimeoutError if the server cannot
        be reached, or the ServerError of a failed AUTH / HELLO / SELECT (its
        ``command`` attribute names which).
        """
        if self._sock is not None:
            return
        self._sock = self._open_socket()
        self._parser = ReplyParser()
        handshake = self._handshake()
        if handshake:
            try:
                replies = self._exchange(encode_all(handshake), len(handshake))
                self._check_handshake(handshake, replies)
            except BaseException:
                self.close()
                raise

    def _open_socket(self) -> socket.socket:
        try:
            if self.unix_socket:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.settimeout(self.timeout)
                    sock.connect(self.unix_socket)
                except BaseException:
                    sock.close()
                    raise
            else:
                sock = socket.create_connection((self.host, self.port), self.timeout)
                # Requests are small and the reply is awaited: don't let Nagle
                # hold the last segment back.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except TimeoutError as exc:
            raise ClientTimeoutError(f"Timeout connecting to {self.address}",
                                     address=self.address, reason="Connection timed out",
                                     connecting=True) from exc
        except OSError as exc:
            reason = os_reason(exc)
            raise ClientConnectionError(f"Error connecting to {self.address}: {reason}",
                                        address=self.address, reason=reason,
                                        connecting=True) from exc
        return sock

    def close(self) -> None:
        """Close the connection (the client can still be used: it reconnects)."""
        sock, self._sock = self._sock, None
        self._poller = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # --- exchanging bytes ---------------------------------------------------------

    def _exchange(self, payload: bytes, count: int) -> list[Any]:
        """Send ``payload`` in one write, read ``count`` replies (errors in place).

        On any failure the connection is closed before the exception leaves.
        """
        sock = self._sock
        assert sock is not None
        try:
            sock.sendall(payload)
            return [self._read_reply(sock) for _ in range(count)]
        except BaseException as exc:
            self.close()
            raise self._translate(exc) from exc

    def _read_reply(self, sock: socket.socket) -> Any:
        parser = self._parser
        # ReplyParser starts a partial aggregate over from its first element
        # on every attempt, so re-parsing after each 64 KiB of a big array
        # would cost time quadratic in its size. Gathering twice as many bytes
        # before each new attempt keeps the total linear; only bytes already
        # waiting are gathered, so a short reply is never held up.
        gather = READ_SIZE
        while True:
            reply = parser.next_reply()
            if reply is not NEED_DATA:
                return reply
            got = 0
            while True:
                data = sock.recv(READ_SIZE)
                if not data:
                    if got:  # EOF after a reply (QUIT): parse what came first
                        break
                    raise ClientConnectionError("Server closed the connection",
                                                address=self.address,
                                                reason="Server closed the connection")
                parser.feed(data)
                got += len(data)
                if got >= gather or not self._more_waiting():
                    break
            gather *= 2

    def _more_waiting(self) -> bool:
        if self._poller is None:
            self._poller = select.poll()
            self._poller.register(self._sock, select.POLLIN)
        return bool(self._poller.poll(0))

    def _translate(self, exc: BaseException) -> BaseException:
        if isinstance(exc, ClientConnectionError) or not isinstance(exc, Exception):
            return exc  # ours already, or KeyboardInterrupt and friends
        if isinstance(exc, TimeoutError):
            return ClientTimeoutError(f"Timeout reading from {self.address}",
                                      address=self.address, reason="Timeout")
        if isinstance(exc, OSError):
            reason = os_reason(exc)
            return ClientConnectionError(f"Error talking to {self.address}: {reason}",
                                         address=self.address, reason=reason)
        if isinstance(exc, (ProtocolError, ValueError)):
            return ClientProtocolError(f"Protocol error from {self.address}: {exc}",
                                       address=self.address, reason=f"Protocol error: {exc}")
        return exc

    def _roundtrip(self, commands: list[Sequence[Any]]) -> list[Any]:
        payload = encode_all(commands)  # a bad argument type fails before any I/O
        self.connect()
        return self._exchange(payload, len(commands))

    # --- commands -------------------------------------------------------------------

    def execute(self, *args: Any) -> Any:
        """Send one command and return its parsed reply; raise its error reply."""
        if not args:
            raise ValueError("execute() needs a command")
        return self._command(args)

    execute_command = execute

    def _command(self, argv: Sequence[Any], shape: Shape | None = None) -> Any:
        payload = encode_command(argv)
        self.connect()
        reply = self._exchange(payload, 1)[0]
        if is_quit(argv):
            self.close()  # the server hangs up after answering QUIT
        return self._result(argv, reply, shape)

    def scan_iter(self, match: Any = None, count: int | None = None) -> Iterator[Any]:
        """Yield every key SCAN finds (a key may repeat if the keyspace changes)."""
        cursor = 0
        while True:
            cursor, keys = self.scan(cursor, match=match, count=count)
            yield from keys
            if cursor == 0:
                return

    def pipeline(self) -> Pipeline:
        """A :class:`Pipeline` on this connection."""
        return Pipeline(self)


class Pipeline(QueuedCommands):
    """Commands queued and sent in one write by :meth:`execute`.

    The helpers (``set``, ``get``...) and :meth:`execute_command` queue and
    return the pipeline, so calls chain: ``p.set("a", 1).get("a").execute()``.
    It is not a transaction: other clients' commands may run in between.
    """

    def execute(self, raise_on_error: bool = False) -> list[Any]:
        """Send every queued command in one write; return the replies in order.

        Error replies are left in the list as ServerError instances, or with
        ``raise_on_error=True`` the first is raised (after every reply has
        been read, so the connection stays usable). The queue is emptied
        either way.
        """
        queue, self._queue = self._queue, []
        if not queue:
            return []
        replies = self._client._roundtrip([argv for argv, _ in queue])
        return self._client._pipeline_results(queue, replies, raise_on_error)

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.reset()


def from_url(url: str, **overrides: Any) -> Client:
    """A :class:`Client` for a ``kv://``, ``redis://`` or ``unix://`` URL.

    See :mod:`clients.url` for the forms; keyword arguments override the URL.
    """
    return Client.from_url(url, **overrides)
