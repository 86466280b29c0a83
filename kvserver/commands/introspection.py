"""Watching the server work: MONITOR and SLOWLOG, as in Redis.

The connection calls :func:`after_command` once a command has run; it
records slow commands and feeds monitors. A monitor line is a reply like any
other to the monitoring client, so it waits for durability too: nobody sees
a value that a crash could still take back, not even through MONITOR.
"""

from __future__ import annotations

import time

from ..errors import SYNTAX, CommandError
from ..numbers import parse_int
from ..protocol import OK, Simple
from . import command, dispatch_subcommand

#: Arguments and bytes per argument kept in a slow log entry (Redis's
#: SLOWLOG_ENTRY_MAX_ARGC / SLOWLOG_ENTRY_MAX_STRING), so one huge command
#: cannot make the slow log huge.
SLOWLOG_MAX_ARGC = 32
SLOWLOG_MAX_STRING = 128
#: Commands whose arguments never reach the slow log or monitors.
_SECRET = frozenset({"auth", "hello"})


def repr_arg(arg: bytes) -> str:
    """Quote an argument as Redis's sdscatrepr does (``"a\\r\\nb"``, ``"\\x00"``)."""
    out = ['"']
    for b in arg:
        c = chr(b)
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\a":
            out.append("\\a")
        elif c == "\b":
            out.append("\\b")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    out.append('"')
    return "".join(out)


def after_command(session, cmd, argv: list[bytes], micros: int) -> None:
    """Record a slow command and show it to monitors (called by the connection)."""
    core = session.core
    threshold = core.config.slowlog_log_slower_than
    if 0 <= threshold <= micros:
        _slowlog_add(session, cmd, argv, micros)
    if core.monitors:
        if cmd.name.split("|")[0] in _SECRET:
            argv = argv[:1] + [b"(redacted)"] if len(argv) > 1 else argv
        now = time.time()
        line = "+%.6f [%d %s] %s\r\n" % (now, session.db_index, session.addr,
                                         " ".join(repr_arg(a) for a in argv))
        data = line.encode("utf-8", "replace")
        for monitor in list(core.monitors):
            if monitor is not session:
                monitor.send_monitor(data)


def _slowlog_add(session, cmd, argv: list[bytes], micros: int) -> None:
    core = session.core
    limit = core.config.slowlog_max_len
    if limit <= 0:
        return
    if cmd.name.split("|")[0] in _SECRET:
        argv = argv[:1]
    args = []
    for i, arg in enumerate(argv):
        if i == SLOWLOG_MAX_ARGC - 1 and len(argv) > SLOWLOG_MAX_ARGC:
            args.append(b"... (%d more arguments)" % (len(argv) - SLOWLOG_MAX_ARGC + 1))
            break
        if len(arg) > SLOWLOG_MAX_STRING:
            arg = arg[:SLOWLOG_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_MAX_STRING)
        args.append(arg)
    entry = [core.slowlog_next_id, int(time.time()), micros, args, session.addr, session.name]
    core.slowlog_next_id += 1
    core.slowlog.appendleft(entry)
    while len(core.slowlog) > limit:
        core.slowlog.pop()


@command("monitor", 1, "admin noscript loading stale", group="server", since="1.0.0",
         acl="@admin @slow @dangerous",
         summary="Listen for all requests received by the server in real time", synopsis="")
def cmd_monitor(s, argv):
    if not hasattr(s, "send_monitor"):
        raise CommandError("ERR MONITOR needs a network connection")
    s.core.monitors.add(s)
    s.kind = "monitor"
    return OK


@command("slowlog", -2, "", group="server", since="2.2.12", acl="@slow",
         summary="A container for slow log commands", synopsis="")
def cmd_slowlog(s, argv):
    return dispatch_subcommand(s, argv)


@command("get", -2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Get the slow log's entries", synopsis="[count]")
def cmd_slowlog_get(s, argv):
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2])
        if count is None or count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    elif len(argv) > 3:
        raise CommandError(SYNTAX)
    entries = list(s.core.slowlog)
    if count != -1:
        entries = entries[:count]
    return [[e[0], e[1], e[2], e[3], e[4], e[5]] for e in entries]


@command("len", 2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Get the slow log's length", synopsis="")
def cmd_slowlog_len(s, argv):
    return len(s.core.slowlog)


@command("reset", 2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Clear all entries from the slow log", synopsis="")
def cmd_slowlog_reset(s, argv):
    s.core.slowlog.clear()
    return OK


@command("help", 2, "loading stale", parent="slowlog", group="server", acl="@slow", since="6.2.0",
         summary="Show helpful text about the different subcommands", synopsis="")
def cmd_slowlog_help(s, argv):
    return [Simple(x) for x in (
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Print this help.")]

