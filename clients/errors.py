"""Errors raised by the bundled clients, split by whose fault they are.

* :class:`ServerError` and its subclasses: the server answered with an error
  reply (``-ERR ...``). The connection is fine and stays open. The subclass is
  chosen by the reply's first word, as redis-py does, so callers can catch
  ``WrongTypeError`` without parsing text; an unknown code gives a plain
  ``ServerError``. They subclass :class:`kvserver.errors.ReplyError`, the type
  the sans-I/O :class:`~kvserver.protocol.ReplyParser` returns, so ``message``
  and ``prefix`` are there too.
* :class:`ClientConnectionError` (a builtin ``ConnectionError``): we could not
  connect, the peer went away, or the byte stream is in an unknown state. The
  connection is closed; the next command opens a new one.
* :class:`ClientTimeoutError` (both a ``ClientConnectionError`` and a builtin
  ``TimeoutError``): no answer in time. The reply may still arrive later, so
  the connection is closed rather than reused out of step.
"""

from __future__ import annotations

import os
import socket

from kvserver.errors import ReplyError


class ServerError(ReplyError):
    """An error reply. ``message`` is the whole line, ``prefix`` its code (``ERR``...).

    ``command`` names the command that failed when the client knows it (the
    connection handshake sets it, so ``AUTH failed: ...`` can be reported).
    """

    command: str | None = None


class ResponseError(ServerError):
    """``ERR``: the generic command error (syntax, arity, not an integer...)."""


class WrongTypeError(ServerError):
    """``WRONGTYPE``: the key holds another kind of value."""


class NoAuthError(ServerError):
    """``NOAUTH``: authentication is required first."""


class WrongPassError(ServerError):
    """``WRONGPASS``: AUTH or HELLO AUTH with a bad username or password."""


class NoPermError(ServerError):
    """``NOPERM``: the user may not run this command or touch this key."""


class LoadingError(ServerError):
    """``LOADING``: the server is still loading its data set."""


class BusyError(ServerError):
    """``BUSY``: a script or function is running."""


class ReadOnlyError(ServerError):
    """``READONLY``: writes are refused (a replica, or a read-only server)."""


class ExecAbortError(ServerError):
    """``EXECABORT``: EXEC discarded the transaction after an earlier error."""


class NoScriptError(ServerError):
    """``NOSCRIPT``: EVALSHA of an unknown script."""


class OutOfMemoryError(ServerError):
    """``OOM``: the write would pass ``maxmemory``."""


class MisconfError(ServerError):
    """``MISCONF``: writes are refused because persistence is failing."""


#: Reply code -> exception class. A code missing here gives ServerError.
ERROR_CLASSES: dict[str, type[ServerError]] = {
    "ERR": ResponseError,
    "WRONGTYPE": WrongTypeError,
    "NOAUTH": NoAuthError,
    "WRONGPASS": WrongPassError,
    "NOPERM": NoPermError,
    "LOADING": LoadingError,
    "BUSY": BusyError,
    "READONLY": ReadOnlyError,
    "EXECABORT": ExecAbortError,
    "NOSCRIPT": NoScriptError,
    "OOM": OutOfMemoryError,
    "MISCONF": MisconfError,
}


def error_from_reply(reply: ReplyError | str) -> ServerError:
    """Return the typed exception (not raised) for an error reply or its text."""
    message = reply.message if isinstance(reply, ReplyError) else str(reply)
    code = message.split(" ", 1)[0]
    return ERROR_CLASSES.get(code, ServerError)(message)


class ClientConnectionError(ConnectionError):
    """Could not connect, or the connection broke; it has been closed.

    ``address`` is ``host:port`` or the socket path; ``reason`` the short
    cause (``Connection refused``), for messages like redis-cli's;
    ``connecting`` is True if no connection was made at all.
    """

    def __init__(self, message: str, *, address: str = "", reason: str = "",
                 connecting: bool = False) -> None:
        super().__init__(message)
        self.address = address
        self.reason = reason or message
        self.connecting = connecting


class ClientTimeoutError(ClientConnectionError, TimeoutError):
    """No reply (or no connection) within the client's timeout."""


class ClientProtocolError(ClientConnectionError):
    """The server sent bytes that are not RESP; the connection cannot be trusted."""


def os_reason(exc: OSError) -> str:
    """The short cause of a socket error, as strerror(3) words it (``Connection refused``).

    asyncio words a failed connect its own way ("Connect call failed ..."),
    so the errno is preferred over the exception's text.
    """
    if exc.errno and exc.errno > 0 and not isinstance(exc, socket.gaierror):
        return os.strerror(exc.errno)
    return exc.strerror or str(exc)
