"""Error types, split by whose fault an error is and what happens next.

* :class:`ProtocolError`: the peer sent bytes we cannot frame. Reply with the
  message, then close that connection only.
* :class:`CommandError`: a well-framed command that cannot run (wrong arity,
  wrong type, not an integer...). Reply ``-<message>`` and keep going.
* :class:`StorageError`: the WAL or a checkpoint could not be written or
  synced. Fail-stop: the waiting requests get an error and the server exits.
* :class:`CorruptionError`: recovery found damage it must not paper over.
  Carries file, offset and LSN so the operator knows where to look.
"""

from __future__ import annotations


class KVError(Exception):
    """Base of every kvserver error."""


class ProtocolError(KVError):
    """Malformed request bytes. The reply is ``-ERR Protocol error: <reason>``."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    @property
    def reply_message(self) -> str:
        return f"ERR Protocol error: {self.reason}"


class ReplyError(KVError):
    """An error reply read by a client (``-ERR ...``); ``prefix`` is its first word."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.prefix = message.split(" ", 1)[0] if message else ""


class CommandError(KVError):
    """A command that cannot run. ``message`` is the whole error line, code first."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StorageError(KVError):
    """A WAL or checkpoint write/sync failed. Never retried: the server stops.

    ``path``, ``offset`` and ``errno`` say where and why.
    """

    def __init__(self, message: str, *, path: str = "", offset: int = -1,
                 errno: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.errno = errno


class CorruptionError(KVError):
    """Damaged data that recovery refuses to skip: names file, offset and LSN."""

    def __init__(self, message: str, *, path: str, offset: int, lsn: int | None) -> None:
        where = f"{path} at offset {offset}"
        if lsn is not None:
            where += f" (LSN {lsn})"
        super().__init__(f"{message}: {where}")
        self.path = path
        self.offset = offset
        self.lsn = lsn


# Error lines shared by many commands, byte-for-byte as Redis 7 sends them.
WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
SYNTAX = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OVERFLOW = "ERR increment or decrement would overflow"
NO_SUCH_KEY = "ERR no such key"
DB_INDEX = "ERR DB index is out of range"
INVALID_EXPIRE = "ERR invalid expire time in '{}' command"


def wrong_arity(name: str) -> CommandError:
    return CommandError(f"ERR wrong number of arguments for '{name}' command")
