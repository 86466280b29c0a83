"""Replies printed the way redis-cli prints them (checked against redis-cli 7.0).

Two styles, chosen as redis-cli chooses: :func:`format_tty` when stdout is a
terminal (or ``--no-raw``), :func:`format_raw` when it is not (or ``--raw``).
Both take replies as :class:`~kvserver.protocol.ReplyParser` returns them:
``str`` is a simple string, ``bytes`` a bulk string, ``ReplyError`` an error,
``dict`` a RESP3 map, ``float`` a double, ``bool`` a boolean.

RESP3 sets, verbatim strings and big numbers reach us as ``list``,
``bytes`` and ``int``, so they print as arrays (``1)``), quoted strings and
``(integer)`` where redis-cli would show ``1~``, the bare text and
``(big number)``.
"""

from __future__ import annotations

from typing import Any, Sequence

from kvserver.errors import ReplyError
from kvserver.protocol import format_double

# redis-cli's sdscatrepr escapes; every other byte outside 0x20-0x7e is \xHH.
_REPR_ESCAPES = {0x5C: "\\\\", 0x22: '\\"', 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t",
                 0x07: "\\a", 0x08: "\\b"}
_REPR = [_REPR_ESCAPES.get(b, chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}")
         for b in range(256)]


def quote(data: bytes) -> str:
    """A bulk string as redis-cli shows it: ``"a\\r\\nb"``, ``"\\x00"``, ``"\\xc3\\xa9"``."""
    return '"' + "".join([_REPR[b] for b in data]) + '"'


def _is_multiline(reply: Any) -> bool:
    # redis-cli starts a map value on its own line when it spans several lines.
    if isinstance(reply, (list, tuple)):
        return len(reply) > 1 or (len(reply) == 1 and _is_multiline(reply[0]))
    if isinstance(reply, dict):
        return len(reply) > 1 or (len(reply) == 1 and _is_multiline(next(iter(reply.values()))))
    return False


def format_tty(reply: Any, prefix: str = "") -> str:
    """One reply in redis-cli's terminal style, ending with a newline.

    ``prefix`` is the indentation of nested elements; callers leave it empty.
    """
    if isinstance(reply, ReplyError):
        return f"(error) {reply.message}\n"
    if isinstance(reply, str):
        return reply + "\n"
    if isinstance(reply, bytes):
        return quote(reply) + "\n"
    if reply is None:
        return "(nil)\n"
    if isinstance(reply, bool):
        return "(true)\n" if reply else "(false)\n"
    if isinstance(reply, int):
        return f"(integer) {reply}\n"
    if isinstance(reply, float):
        return f"(double) {format_double(reply).decode()}\n"
    if isinstance(reply, (list, tuple)):
        if not reply:
            return "(empty array)\n"
        return _format_aggregate(list(reply), prefix, ")", len(reply))
    if isinstance(reply, dict):
        if not reply:
            return "(empty hash)\n"
        return _format_aggregate(list(reply.items()), prefix, "#", len(reply))
    return f"{reply!r}\n"


def _format_aggregate(items: list, prefix: str, mark: str, count: int) -> str:
    width = len(str(count))
    # Nested elements line up after "N) ": the index width plus two.
    inner = prefix + " " * (width + 2)
    out = []
    for i, item in enumerate(items):
        # The first element follows the caller's own "N) " on the same line.
        out.append(f"{prefix if i else ''}{i + 1:>{width}}{mark} ")
        if mark == "#":
            key, value = item
            out.append(format_tty(key, inner)[:-1])
            out.append(" => ")
            if _is_multiline(value):
                out.append("\n" + inner)
            out.append(format_tty(value, inner))
        else:
            out.append(format_tty(item, inner))
    return "".join(out)


def format_raw(reply: Any) -> bytes:
    """One reply in redis-cli's ``--raw`` style, without the final newline.

    Values print bare, array elements one per line, map entries as
    ``key value``, nil as nothing. An error keeps its own newline (redis-cli
    7 does this too, so an error at the top level is followed by a blank line).
    """
    if isinstance(reply, ReplyError):
        return reply.message.encode() + b"\n"
    if isinstance(reply, bytes):
        return reply
    if isinstance(reply, str):
        return reply.encode()
    if reply is None:
        return b""
    if isinstance(reply, bool):
        return b"(true)" if reply else b"(false)"
    if isinstance(reply, int):
        return b"%d" % reply
    if isinstance(reply, float):
        return format_double(reply)
    if isinstance(reply, (list, tuple)):
        return b"\n".join([format_raw(x) for x in reply])
    if isinstance(reply, dict):
        return b"\n".join([format_raw(k) + b" " + format_raw(v) for k, v in reply.items()])
    return repr(reply).encode()


def _lower(arg: Any) -> str:
    if isinstance(arg, (bytes, bytearray)):
        return bytes(arg).decode("latin-1").lower()
    return str(arg).lower()


def prints_raw_text(argv: Sequence[Any]) -> bool:
    """True for commands whose text reply redis-cli prints bare even on a terminal.

    INFO, CLIENT LIST and friends return a report meant for people; quoting it
    into one ``"...\\r\\n..."`` line would make it unreadable.
    """
    if not argv:
        return False
    name = _lower(argv[0])
    sub = _lower(argv[1]) if len(argv) > 1 else ""
    if name in ("info", "lolwut"):
        return True
    return (name, sub) in {
        ("client", "list"), ("client", "info"),
        ("memory", "doctor"), ("memory", "malloc-stats"),
        ("cluster", "nodes"), ("cluster", "info"),
        ("latency", "doctor"), ("latency", "graph"),
        ("debug", "htstats"), ("debug", "htstats-key"),
    }


def format_reply(argv: Sequence[Any], reply: Any, raw: bool) -> bytes:
    """What kvcli writes for ``reply`` to the command ``argv``, newline included."""
    if prints_raw_text(argv):
        return format_raw(reply)
    if raw:
        return format_raw(reply) + b"\n"
    return format_tty(reply).encode("utf-8", "surrogateescape")
