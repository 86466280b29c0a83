"""Scripting commands: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT LOAD|EXISTS|FLUSH|KILL|HELP|DEBUG.

The engine (Lua state, cache, redis.call, conversions, busy mode) is
:mod:`kvserver.scripting`; these are the commands, with Redis 7.0.15's
argument checks and texts (eval.c's evalGenericCommand and scriptCommand).

**One script is one execution unit.** EVAL is not flagged ``write`` (Redis
flags it ``noscript stale skip_monitor no_mandatory_keys movablekeys``,
and COMMAND INFO shows that), so the dispatcher opens no unit for it: the
command opens its own around the script. Each command the script runs
through redis.call nests its unit in it, so everything the script changed,
lazy expiries included, is ONE WAL record, appended when the script ends,
and the EVAL reply is held until that record is durable, as any reply
holds on the LSN applied when it was made. A script that fails after
writing keeps its writes (no rollback, as Redis) and they are in the record.
"""

from __future__ import annotations

from ..errors import CommandError
from ..numbers import parse_int as string2ll
from ..protocol import OK, ErrorReply, Simple
from ..scripting import NOSCRIPT, NOTBUSY, engine
from . import command, dispatch_subcommand


def eval_keys(argv: list) -> list:
    """EVAL's keys (COMMAND GETKEYS): argv[3:3+numkeys]; none when numkeys is bad, as Redis."""
    n = string2ll(argv[2]) if len(argv) >= 3 else None
    if n is None or n < 0 or n > len(argv) - 3:
        return []
    return argv[3:3 + n]


def _numkeys(argv: list) -> int:
    n = string2ll(argv[2])
    if n is None:
        raise CommandError("ERR value is not an integer or out of range")
    if n > len(argv) - 3:
        raise CommandError("ERR Number of keys can't be greater than number of args")
    if n < 0:
        raise CommandError("ERR Number of keys can't be negative")
    return n


def _feed_monitors(c, argv) -> None:
    """MONITOR sees EVAL before the commands it runs (Redis feeds it explicitly)."""
    core = c.core
    if core.monitors:
        from .introspection import monitor_line
        line = monitor_line(c, argv)
        for monitor in list(core.monitors):
            if monitor is not c:
                monitor.send_monitor(line)


def _run(c, argv, n: int, script, read_only: bool):
    core = c.core
    errors_before = core.stats.error_replies
    # One unit for the whole script: its commands' units nest in it.
    core.begin_unit()
    try:
        reply = engine(core).run(c, script, argv[3:3 + n], argv[3 + n:], read_only)
    finally:
        core.end_unit()
    if type(reply) is not ErrorReply and core.stats.error_replies > errors_before:
        # As Redis's call(): a command that made any error reply (its script's
        # commands included) is a failed call.
        core.command_stat(c.last_command).failed += 1
    return reply


def _eval(c, argv, read_only: bool):
    if c.core.monitors:
        _feed_monitors(c, argv)
    n = _numkeys(argv)   # Redis checks numkeys before it compiles the script
    script = engine(c.core).load(argv[1])
    return _run(c, argv, n, script, read_only)


def _evalsha(c, argv, read_only: bool):
    if c.core.monitors:
        _feed_monitors(c, argv)
    if len(argv[1]) != 40:
        raise CommandError(NOSCRIPT)
    n = _numkeys(argv)
    script = engine(c.core).lookup(argv[1])
    if script is None:
        raise CommandError(NOSCRIPT)
    return _run(c, argv, n, script, read_only)


_FLAGS = "noscript stale skip_monitor no_mandatory_keys movablekeys"


@command("eval", -3, _FLAGS, keys=(0, 0, 0), group="scripting", since="2.6.0",
         acl="@slow @scripting", getkeys=eval_keys,
         summary="Execute a Lua script server side",
         synopsis="script numkeys [key [key ...]] [arg [arg ...]]")
def cmd_eval(c, argv):
    return _eval(c, argv, False)


@command("eval_ro", -3, "readonly " + _FLAGS, keys=(0, 0, 0), group="scripting",
         since="7.0.0", acl="@slow @scripting", getkeys=eval_keys,
         summary="Execute a read-only Lua script server side",
         synopsis="script numkeys [key [key ...]] [arg [arg ...]]")
def cmd_eval_ro(c, argv):
    return _eval(c, argv, True)


@command("evalsha", -3, _FLAGS, keys=(0, 0, 0), group="scripting", since="2.6.0",
         acl="@slow @scripting", getkeys=eval_keys,
         summary="Execute a Lua script server side",
         synopsis="sha1 numkeys [key [key ...]] [arg [arg ...]]")
def cmd_evalsha(c, argv):
    return _evalsha(c, argv, False)


@command("evalsha_ro", -3, "readonly " + _FLAGS, keys=(0, 0, 0), group="scripting",
         since="7.0.0", acl="@slow @scripting", getkeys=eval_keys,
         summary="Execute a read-only Lua script server side",
         synopsis="sha1 numkeys [key [key ...]] [arg [arg ...]]")
def cmd_evalsha_ro(c, argv):
    return _evalsha(c, argv, True)


@command("script", -2, "", group="scripting", since="2.6.0", acl="@slow",
         summary="A container for Lua scripts management commands", synopsis="")
def cmd_script(c, argv):
    return dispatch_subcommand(c, argv)


@command("help", 2, "loading stale", parent="script", group="scripting", since="5.0.0",
         acl="@slow @scripting", summary="Show helpful text about the different subcommands",
         synopsis="")
def cmd_script_help(c, argv):
    return [Simple(x) for x in (
        "SCRIPT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "DEBUG (YES|SYNC|NO)",
        "    Set the debug mode for subsequent scripts executed.",
        "EXISTS <sha1> [<sha1> ...]",
        "    Return information about the existence of the scripts in the script cache.",
        "FLUSH [ASYNC|SYNC]",
        "    Flush the Lua scripts cache. Very dangerous on replicas.",
        "    When called without the optional mode argument, the behavior is determined by the",
        "    lazyfree-lazy-user-flush configuration directive. Valid modes are:",
        "    * ASYNC: Asynchronously flush the scripts cache.",
        "    * SYNC: Synchronously flush the scripts cache.",
        "KILL",
        "    Kill the currently executing Lua script.",
        "LOAD <script>",
        "    Load a script into the scripts cache without executing it.",
        "HELP",
        "    Prints this help.")]


@command("exists", -3, "noscript", parent="script", group="scripting", since="2.6.0",
         acl="@slow @scripting",
         summary="Check existence of scripts in the script cache.", synopsis="sha1 [sha1 ...]")
def cmd_script_exists(c, argv):
    e = engine(c.core)
    return [1 if e.lookup(sha) is not None else 0 for sha in argv[2:]]


@command("flush", -2, "noscript", parent="script", group="scripting", since="2.6.0",
         acl="@slow @scripting", summary="Remove all the scripts from the script cache.",
         synopsis="[ASYNC | SYNC]")
def cmd_script_flush(c, argv):
    if len(argv) == 3 and argv[2].lower() in (b"sync", b"async"):
        pass
    elif len(argv) != 2:
        raise CommandError("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    engine(c.core).flush()
    return OK


@command("kill", 2, "noscript allow_busy", parent="script", group="scripting",
         since="2.6.0", acl="@slow @scripting",
         summary="Kill the script currently in execution.", synopsis="")
def cmd_script_kill(c, argv):
    # A running script answers SCRIPT KILL itself, from its busy mode
    # (kvserver.scripting.serve_busy): when a command runs here, none does.
    running = engine(c.core).running
    if running is None:
        raise CommandError(NOTBUSY)
    error = running.kill()
    if error is not None:
        raise CommandError(error)
    return OK


@command("load", 3, "noscript stale", parent="script", group="scripting", since="2.6.0",
         acl="@slow @scripting",
         summary="Load the specified Lua script into the script cache.", synopsis="script")
def cmd_script_load(c, argv):
    return engine(c.core).load(argv[2]).sha


@command("debug", 3, "noscript", parent="script", group="scripting", since="3.2.0",
         acl="@slow @scripting", summary="Set the debug mode for executed scripts.",
         synopsis="<YES | SYNC | NO>")
def cmd_script_debug(c, argv):
    mode = argv[2].lower()
    if mode == b"no":
        return OK
    if mode in (b"yes", b"sync"):
        # Redis's Lua debugger (LDB) is a REPL over the connection; not built here.
        raise CommandError("ERR SCRIPT DEBUG is not supported by kvserver "
                           "(no Lua debugger); use redis.log to trace a script")
    raise CommandError("ERR Use SCRIPT DEBUG YES/SYNC/NO")

