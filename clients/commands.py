"""What the blocking client, the asyncio client and both pipelines share.

Each command helper is written once, in :class:`Commands`: it builds the
argv and names the function that shapes the reply (``+OK`` -> ``True``,
INFO text -> ``dict``...), then hands both to ``self._command(argv, shape)``.
The front end decides what that means: :class:`~clients.client.Client` runs
it now, :class:`~clients.aio.AsyncClient` returns an awaitable, and the
pipelines queue it and return themselves so calls chain.

:class:`ClientOptions` holds the connection settings and the bookkeeping
both clients need: the handshake sent on every new connection, and the
state (database, password) that a reconnect must restore.
"""

from __future__ import annotations

import datetime
import re
from typing import Any, Callable, Iterable, Sequence

from kvserver.errors import ReplyError
from kvserver.protocol import encode_command

from .errors import ServerError, error_from_reply
from .url import DEFAULT_HOST, DEFAULT_PORT, parse_url

Shape = Callable[[Any], Any]
Command = tuple[Sequence[Any], "Shape | None"]


# --- Reply shapes -------------------------------------------------------------


def is_ok(reply: Any) -> bool:
    """``+OK`` -> True. Anything else (a nil from ``SET NX``...) -> the same value."""
    return True if reply == "OK" else reply


def ok_or_none(reply: Any) -> bool | None:
    return True if reply == "OK" else None


def is_pong(reply: Any) -> bool:
    return reply in ("PONG", b"PONG")


def to_bool(reply: Any) -> bool:
    return bool(reply)


def to_str(reply: Any) -> str:
    return reply.decode() if isinstance(reply, bytes) else reply


def scan_reply(reply: Any) -> tuple[int, list]:
    cursor, keys = reply
    return int(cursor), keys


_INT = re.compile(r"-?(?:0|[1-9][0-9]*)\Z")
_FLOAT = re.compile(r"-?[0-9]+\.[0-9]+\Z")


def _info_value(text: str) -> Any:
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    # "db0:keys=1,expires=0" and "cmdstat_get:calls=2,usec=5" are records.
    if "=" in text:
        fields = text.split(",")
        if all("=" in f for f in fields):
            return {k: _info_value(v) for k, _, v in (f.partition("=") for f in fields)}
    return text


def parse_info(reply: Any) -> dict[str, Any]:
    """Turn INFO's ``key:value`` text into a dict.

    Numbers become ``int``/``float`` (but ``00000000`` stays a string: it is a
    hash, not a count); ``k=v,k=v`` values become nested dicts; section
    headers (``# Server``) and blank lines are skipped.
    """
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    info: dict[str, Any] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition(":")
        if sep:
            info[key] = _info_value(value)
    return info


def _seconds(value: int | datetime.timedelta) -> int:
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds())
    return value


def _millis(value: int | datetime.timedelta) -> int:
    if isinstance(value, datetime.timedelta):
        return int(value.total_seconds() * 1000)
    return value


def _flatten(keys: tuple) -> tuple:
    # mget(["a", "b"]) and mget("a", "b") both work, as in redis-py.
    if len(keys) == 1 and isinstance(keys[0], (list, tuple)):
        return tuple(keys[0])
    return keys


# --- Reply conversion ---------------------------------------------------------


def convert_reply(reply: Any, decode: bool) -> Any:
    """Make nested error replies typed exceptions and, if asked, bytes into str.

    A top-level error is the caller's business (raise it, or leave it in a
    pipeline's list); this handles the ones inside arrays, such as EXEC's.
    """
    t = type(reply)
    if t is bytes:
        return reply.decode() if decode else reply
    if t is list:
        return [convert_reply(x, decode) for x in reply]
    if t is dict:
        return {convert_reply(k, decode): convert_reply(v, decode) for k, v in reply.items()}
    if t is tuple:  # a map key that was an array
        return tuple(convert_reply(x, decode) for x in reply)
    if t is ReplyError:
        return error_from_reply(reply)
    return reply


def _name(arg: Any) -> str:
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode("latin-1").upper()
    return str(arg).upper()


def is_quit(argv: Sequence[Any]) -> bool:
    return _name(argv[0]) == "QUIT"


def _text(arg: Any) -> str:
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode("utf-8", "surrogateescape")
    return str(arg)


# --- Connection settings and state -------------------------------------------


class ClientOptions:
    """Connection settings shared by Client and AsyncClient.

    ``db``, ``password`` and ``username`` follow successful ``SELECT`` and
    ``AUTH`` commands, so a reconnect lands in the same state.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, db: int = 0,
                 password: str | bytes | None = None, unix_socket: str | None = None,
                 timeout: float | None = None, resp: int = 2, *,
                 username: str | bytes | None = None,
                 decode_responses: bool = False) -> None:
        if resp not in (2, 3):
            raise ValueError(f"resp must be 2 or 3, not {resp!r}")
        self.host = host
        self.port = int(port)
        self.db = int(db)
        self.password = password
        self.username = username
        self.unix_socket = unix_socket
        self.timeout = timeout
        self.resp = resp
        self.decode_responses = decode_responses

    @classmethod
    def from_url(cls, url: str, **overrides: Any):
        """Build a client from a ``kv://``, ``redis://`` or ``unix://`` URL.

        Keyword arguments override what the URL says. See :mod:`clients.url`.
        """
        kwargs = parse_url(url)
        kwargs.update(overrides)
        return cls(**kwargs)

    @property
    def address(self) -> str:
        """``host:port`` (``[v6]:port``) or the Unix socket path, for messages."""
        if self.unix_socket:
            return self.unix_socket
        if ":" in self.host:
            return f"[{self.host}]:{self.port}"
        return f"{self.host}:{self.port}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.address} db={self.db}>"

    def _handshake(self) -> list[list[Any]]:
        # AUTH before HELLO: a server that wants a password refuses HELLO
        # first. Sent in one write; the replies are checked in order.
        commands: list[list[Any]] = []
        if self.password is not None:
            if self.username:
                commands.append(["AUTH", self.username, self.password])
            else:
                commands.append(["AUTH", self.password])
        if self.resp == 3:
            commands.append(["HELLO", 3])
        if self.db:
            commands.append(["SELECT", self.db])
        return commands

    @staticmethod
    def _check_handshake(commands: list[list[Any]], replies: list[Any]) -> None:
        for argv, reply in zip(commands, replies):
            if isinstance(reply, ReplyError):
                err = error_from_reply(reply)
                err.command = _name(argv[0])
                raise err

    def _note_state(self, argv: Sequence[Any], reply: Any) -> None:
        """Remember what a successful command changed about the connection."""
        name = _name(argv[0])
        if name == "SELECT" and len(argv) == 2:
            self.db = int(argv[1])
        elif name == "AUTH" and len(argv) in (2, 3):
            self.password = _text(argv[-1])
            self.username = _text(argv[1]) if len(argv) == 3 else None

    def _result(self, argv: Sequence[Any], reply: Any, shape: Shape | None) -> Any:
        """Raise an error reply as its typed exception; else convert and shape."""
        if isinstance(reply, ReplyError):
            raise error_from_reply(reply)
        self._note_state(argv, reply)
        value = convert_reply(reply, self.decode_responses)
        return shape(value) if shape is not None else value

    def _pipeline_results(self, queue: list[Command], replies: list[Any],
                          raise_on_error: bool) -> list[Any]:
        results: list[Any] = []
        first_error: ServerError | None = None
        for (argv, shape), reply in zip(queue, replies):
            try:
                results.append(self._result(argv, reply, shape))
            except ServerError as err:
                results.append(err)
                first_error = first_error or err
        if raise_on_error and first_error is not None:
            raise first_error
        return results


# --- Command helpers ------------------------------------------------------------


class Commands:
    """Helpers for common commands; see the module docstring for how they run."""

    def _command(self, argv: Sequence[Any], shape: Shape | None = None) -> Any:
        raise NotImplementedError

    # Connection and server

    def ping(self, message: str | bytes | None = None) -> Any:
        """PING -> True; PING message -> the message."""
        if message is None:
            return self._command(("PING",), is_pong)
        return self._command(("PING", message))

    def echo(self, message: str | bytes) -> Any:
        return self._command(("ECHO", message))

    def auth(self, password: str | bytes, username: str | bytes | None = None) -> Any:
        argv = ("AUTH", password) if username is None else ("AUTH", username, password)
        return self._command(argv, is_ok)

    def hello(self, protover: int | None = None) -> Any:
        argv = ("HELLO",) if protover is None else ("HELLO", protover)
        return self._command(argv)

    def select(self, db: int) -> Any:
        """SELECT db -> True. The client reconnects to this database afterwards."""
        return self._command(("SELECT", db), is_ok)

    def flushdb(self, asynchronous: bool = False) -> Any:
        argv = ("FLUSHDB", "ASYNC") if asynchronous else ("FLUSHDB",)
        return self._command(argv, is_ok)

    def flushall(self, asynchronous: bool = False) -> Any:
        argv = ("FLUSHALL", "ASYNC") if asynchronous else ("FLUSHALL",)
        return self._command(argv, is_ok)

    def dbsize(self) -> Any:
        return self._command(("DBSIZE",))

    def info(self, *sections: str) -> Any:
        """INFO [section...] parsed into a dict (see :func:`parse_info`)."""
        return self._command(("INFO", *sections), parse_info)

    # Strings

    def get(self, key: Any) -> Any:
        return self._command(("GET", key))

    def set(self, key: Any, value: Any, ex: int | datetime.timedelta | None = None,
            px: int | datetime.timedelta | None = None, nx: bool = False, xx: bool = False,
            keepttl: bool = False, get: bool = False) -> Any:
        """SET -> True, or None when NX/XX stopped it; with ``get=True`` the old value."""
        argv: list[Any] = ["SET", key, value]
        if ex is not None:
            argv += ["EX", _seconds(ex)]
        if px is not None:
            argv += ["PX", _millis(px)]
        if nx:
            argv.append("NX")
        if xx:
            argv.append("XX")
        if keepttl:
            argv.append("KEEPTTL")
        if get:
            argv.append("GET")
            return self._command(argv)
        return self._command(argv, ok_or_none)

    def getdel(self, key: Any) -> Any:
        return self._command(("GETDEL", key))

    def mget(self, *keys: Any) -> Any:
        return self._command(("MGET", *_flatten(keys)))

    def mset(self, mapping: dict) -> Any:
        argv: list[Any] = ["MSET"]
        for k, v in mapping.items():
            argv += [k, v]
        return self._command(argv, is_ok)

    def incr(self, key: Any, amount: int = 1) -> Any:
        if amount == 1:
            return self._command(("INCR", key))
        return self._command(("INCRBY", key, amount))

    def decr(self, key: Any, amount: int = 1) -> Any:
        if amount == 1:
            return self._command(("DECR", key))
        return self._command(("DECRBY", key, amount))

    def append(self, key: Any, value: Any) -> Any:
        return self._command(("APPEND", key, value))

    def strlen(self, key: Any) -> Any:
        return self._command(("STRLEN", key))

    # Keys

    def delete(self, *keys: Any) -> Any:
        """DEL -> how many keys existed."""
        return self._command(("DEL", *_flatten(keys)))

    def exists(self, *keys: Any) -> Any:
        """EXISTS -> how many of the keys exist (a key named twice counts twice)."""
        return self._command(("EXISTS", *_flatten(keys)))

    def expire(self, key: Any, seconds: int | datetime.timedelta) -> Any:
        """EXPIRE -> True if the timeout was set."""
        return self._command(("EXPIRE", key, _seconds(seconds)), to_bool)

    def pexpire(self, key: Any, millis: int | datetime.timedelta) -> Any:
        return self._command(("PEXPIRE", key, _millis(millis)), to_bool)

    def persist(self, key: Any) -> Any:
        return self._command(("PERSIST", key), to_bool)

    def ttl(self, key: Any) -> Any:
        """TTL -> seconds left, -1 without a timeout, -2 if the key is missing."""
        return self._command(("TTL", key))

    def pttl(self, key: Any) -> Any:
        return self._command(("PTTL", key))

    def type(self, key: Any) -> Any:
        return self._command(("TYPE", key), to_str)

    def rename(self, src: Any, dst: Any) -> Any:
        return self._command(("RENAME", src, dst), is_ok)

    def keys(self, pattern: Any = "*") -> Any:
        return self._command(("KEYS", pattern))

    def scan(self, cursor: int = 0, match: Any = None, count: int | None = None) -> Any:
        """SCAN -> (next cursor, keys). A next cursor of 0 means done."""
        argv: list[Any] = ["SCAN", cursor]
        if match is not None:
            argv += ["MATCH", match]
        if count is not None:
            argv += ["COUNT", count]
        return self._command(argv, scan_reply)


def encode_all(commands: Iterable[Sequence[Any]]) -> bytes:
    """Encode several commands for one write (a pipeline or a handshake)."""
    return b"".join([encode_command(list(argv)) for argv in commands])


class QueuedCommands(Commands):
    """What both pipelines share: queueing commands (each call returns the
    pipeline, so calls chain) until ``execute`` sends them in one write."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._queue: list[Command] = []

    def _command(self, argv: Sequence[Any], shape: Shape | None = None) -> Any:
        self._queue.append((tuple(argv), shape))
        return self

    def execute_command(self, *args: Any) -> Any:
        """Queue a raw command."""
        if not args:
            raise ValueError("execute_command() needs a command")
        return self._command(args)

    def __len__(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        """Drop the queued commands."""
        self._queue = []
