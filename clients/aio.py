"""The asyncio client: the same API as :class:`clients.Client`, awaited.

Built on asyncio streams and the sans-I/O :mod:`kvserver.protocol`. One
connection serves one exchange at a time: an :class:`asyncio.Lock` keeps
concurrent tasks from interleaving their requests and replies (use a
pipeline, or one client per task, for throughput).

``timeout`` bounds the connect (with handshake) and each whole exchange,
a pipeline included, through :func:`asyncio.wait_for`. As in the blocking
client, a timeout, a cancellation or a broken stream closes the connection,
since the reply may still be on its way; the next command reconnects.
"""

from __future__ import annotations

import asyncio
import select
from typing import Any, AsyncIterator, Awaitable, Sequence

from kvserver.errors import ProtocolError
from kvserver.protocol import NEED_DATA, ReplyParser

from .client import READ_SIZE
from .commands import (ClientOptions, Commands, QueuedCommands, Shape, encode_all,
                       is_quit)
from .errors import (ClientConnectionError, ClientProtocolError, ClientTimeoutError,
                     ServerError, os_reason)


class AsyncClient(ClientOptions, Commands):
    """An asyncio connection to kvserver; see :class:`clients.Client` for the options.

    Every command helper returns an awaitable: ``await client.get("a")``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 6379, db: int = 0,
                 password: str | bytes | None = None, unix_socket: str | None = None,
                 timeout: float | None = None, resp: int = 2, *,
                 username: str | bytes | None = None,
                 decode_responses: bool = False) -> None:
        super().__init__(host, port, db, password, unix_socket, timeout, resp,
                         username=username, decode_responses=decode_responses)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._parser = ReplyParser()
        self._poller: select.poll | None = None
        # Since 3.10 a Lock binds to the running loop on first use, not here.
        self._lock = asyncio.Lock()

    # --- connection -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._writer is not None

    async def connect(self) -> None:
        """Open the connection now, if not open, and run the handshake.

        Raises as :meth:`clients.Client.connect` does.
        """
        async with self._lock:
            await self._connect_locked()

    async def _connect_locked(self) -> None:
        if self._writer is not None:
            return
        try:
            await self._bounded(self._open_and_handshake())
        except BaseException as exc:
            self._drop()
            raise self._translate(exc, connecting=True) from exc

    async def _open_and_handshake(self) -> None:
        if self.unix_socket:
            reader, writer = await asyncio.open_unix_connection(self.unix_socket)
        else:
            # asyncio sets TCP_NODELAY on TCP transports itself.
            reader, writer = await asyncio.open_connection(self.host, self.port)
        self._reader, self._writer = reader, writer
        self._parser = ReplyParser()
        handshake = self._handshake()
        if handshake:
            replies = await self._exchange(encode_all(handshake), len(handshake))
            self._check_handshake(handshake, replies)

    def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        self._poller = None
        if writer is not None:
            writer.close()

    async def close(self) -> None:
        """Close the connection (the client can still be used: it reconnects)."""
        writer = self._writer
        self._drop()
        if writer is not None:
            try:
                await writer.wait_closed()
            except (OSError, RuntimeError):
                pass

    aclose = close

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.close()

    # --- exchanging bytes ---------------------------------------------------------

    async def _bounded(self, awaitable: Awaitable[Any]) -> Any:
        if self.timeout is None:
            return await awaitable
        return await asyncio.wait_for(awaitable, self.timeout)

    async def _exchange(self, payload: bytes, count: int) -> list[Any]:
        writer, reader = self._writer, self._reader
        assert writer is not None and reader is not None
        writer.write(payload)
        await writer.drain()
        parser = self._parser
        replies = []
        for _ in range(count):
            # As in the blocking client: gather twice as many waiting bytes
            # before each new attempt at a partial reply, so the parser's
            # start-over attempts cost linear, not quadratic, time.
            gather = READ_SIZE
            while (reply := parser.next_reply()) is NEED_DATA:
                got = 0
                while True:
                    data = await reader.read(gather)
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
            replies.append(reply)
        return replies

    def _more_waiting(self) -> bool:
        """True if the kernel holds more bytes than the stream has handed over."""
        if self._poller is None:
            writer = self._writer
            sock = writer.get_extra_info("socket") if writer is not None else None
            if sock is None:
                return False
            self._poller = select.poll()
            self._poller.register(sock.fileno(), select.POLLIN)
        return bool(self._poller.poll(0))

    def _translate(self, exc: BaseException, connecting: bool = False) -> BaseException:
        if isinstance(exc, (ClientConnectionError, ServerError)) or not isinstance(exc, Exception):
            return exc  # ours already, or CancelledError / KeyboardInterrupt
        if isinstance(exc, TimeoutError):
            what = "connecting to" if connecting else "reading from"
            return ClientTimeoutError(f"Timeout {what} {self.address}", address=self.address,
                                      reason="Connection timed out" if connecting else "Timeout",
                                      connecting=connecting)
        if isinstance(exc, OSError):
            reason = os_reason(exc)
            what = "connecting to" if connecting else "talking to"
            return ClientConnectionError(f"Error {what} {self.address}: {reason}",
                                         address=self.address, reason=reason,
                                         connecting=connecting)
        if isinstance(exc, (ProtocolError, ValueError)):
            return ClientProtocolError(f"Protocol error from {self.address}: {exc}",
                                       address=self.address, reason=f"Protocol error: {exc}")
        return exc

    async def _roundtrip(self, commands: list[Sequence[Any]]) -> list[Any]:
        payload = encode_all(commands)  # a bad argument type fails before any I/O
        async with self._lock:
            await self._connect_locked()
            try:
                return await self._bounded(self._exchange(payload, len(commands)))
            except BaseException as exc:
                self._drop()
                raise self._translate(exc) from exc

    # --- commands -------------------------------------------------------------------

    async def execute(self, *args: Any) -> Any:
        """Send one command and return its parsed reply; raise its error reply."""
        if not args:
            raise ValueError("execute() needs a command")
        return await self._command(args)

    execute_command = execute

    async def _command(self, argv: Sequence[Any], shape: Shape | None = None) -> Any:
        reply = (await self._roundtrip([argv]))[0]
        if is_quit(argv):
            await self.close()  # the server hangs up after answering QUIT
        return self._result(argv, reply, shape)

    async def scan_iter(self, match: Any = None, count: int | None = None) -> AsyncIterator[Any]:
        """Yield every key SCAN finds (a key may repeat if the keyspace changes)."""
        cursor = 0
        while True:
            cursor, keys = await self.scan(cursor, match=match, count=count)
            for key in keys:
                yield key
            if cursor == 0:
                return

    def pipeline(self) -> AsyncPipeline:
        """An :class:`AsyncPipeline` on this connection."""
        return AsyncPipeline(self)


class AsyncPipeline(QueuedCommands):
    """Queued commands sent in one write by ``await pipeline.execute()``.

    Queueing is synchronous and chains (``p.set("a", 1).get("a")``); only
    :meth:`execute` is awaited. Results as :meth:`clients.Pipeline.execute`.
    """

    async def execute(self, raise_on_error: bool = False) -> list[Any]:
        """Send the queue in one write; errors in place, or raise the first."""
        queue, self._queue = self._queue, []
        if not queue:
            return []
        replies = await self._client._roundtrip([argv for argv, _ in queue])
        return self._client._pipeline_results(queue, replies, raise_on_error)

    async def __aenter__(self) -> AsyncPipeline:
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self.reset()

    def __enter__(self) -> AsyncPipeline:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.reset()
