"""Lua scripting, the Redis side: the script cache, the Lua state Redis 7.0.15 sets up, redis.call, conversions, busy scripts.

The interpreter is :mod:`kvserver.lua` (a Lua 5.1 in Python); this module
makes it Redis's scripting engine, as ``eval.c``/``script_lua.c``/``script.c``
of Redis 7.0.15 do:

* **One Lua state** for every script (:class:`Scripting`, one per Core, made
  on first use), with Redis's globals: the base library minus what 7.0.15
  removes (``print``, ``dofile``, ``loadfile``, ``getfenv``, ``setfenv``,
  ``newproxy``, ``debug``...), ``string``/``table``/``math``/``cjson``/
  ``bit``/``struct``/``cmsgpack``, the ``redis`` table, Redis's own ``pcall``
  (an error table becomes its message) and ``__redis__err__handler``. The
  state is then **locked**: reading a global that does not exist and
  writing any global or any table reachable from the globals raise Redis's
  errors ("Script attempted to access nonexistent global variable 'x'",
  "Attempt to modify a readonly table"), so no script can leave anything
  behind for the next one. SCRIPT FLUSH makes a new state.
* **The cache** maps a script's SHA1 (lower-case hex; looked up without
  regard to case, as Redis's dict does) to its body, shebang flags and
  compiled function. Compiled once, at EVAL or SCRIPT LOAD.
* **redis.call/pcall** run a command as the dispatcher does
  (:meth:`Dispatcher.run_command`, inline in :func:`make_call` for commands
  without subcommands when no MONITOR is on: the command's own unit nests in
  the script's, its commandstats, slow log and MONITOR line) for a script client
  that shares the caller's database (SELECT in a script changes only the
  script's), after the checks of Redis's ``scriptCall`` in its order: known
  command and arity, ``noscript``, read-only script, OOM before the first
  write. Replies are converted to Lua as Redis converts RESP (RESP2 by
  default, RESP3 after ``redis.setresp(3)``), and the script's result back
  to RESP as ``luaReplyToRedisReply`` does.
* **Busy scripts.** The interpreter calls :meth:`RunContext.hook` every
  ``rt.hook_interval`` loop iterations or calls. Past ``busy-reply-threshold``
  milliseconds the hook serves the other clients itself, from inside the
  script (the event loop is not running): :func:`serve_busy` reads what
  plain TCP/Unix clients sent, answers ``-BUSY`` to everything but SCRIPT
  KILL and SHUTDOWN NOSAVE, and a SCRIPT KILL of a script that has not
  written makes the hook raise :class:`ScriptKilled` (a BaseException, so no
  pcall can catch it).

Durability: the EVAL command opens one execution unit around the whole
script, so every effect of its commands is ONE WAL record, written when the
script ends (or fails: Redis keeps the writes of a script that errors, so
do we, and they are logged); a crash before that keeps none of it.
``redis.set_repl`` is accepted but changes nothing: every effect is logged,
since the WAL is this server's only copy.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import select
import sys
import time
from asyncio import Future
from time import perf_counter_ns
from typing import Any

from .client import Deferred
from .errors import CommandError
from .lua.value import LuaError, LuaTable, str_to_number
from .protocol import (OK, ErrorReply, Raw, encode, encode3, error_line,
                       format_double, split_args)

log = logging.getLogger("kvserver.scripting")

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
BUSY = "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE."
NOTBUSY = "NOTBUSY No scripts in execution right now."
UNKILLABLE = ("UNKILLABLE Sorry the script already executed write commands against the "
              "dataset. You can either wait the script termination or kill the server in a "
              "hard way using the SHUTDOWN NOSAVE command.")
KILLED_MESSAGE = b"ERR Script killed by user with SCRIPT KILL..."

#: Shebang flags (``#!lua flags=...``), Redis 7.0's scripts_flags_def.
NO_WRITES, ALLOW_OOM, ALLOW_STALE, NO_CLUSTER, ALLOW_CROSS_SLOT, EVAL_COMPAT = (
    1, 2, 4, 8, 16, 32)
SHEBANG_FLAGS = {b"no-writes": NO_WRITES, b"allow-oom": ALLOW_OOM, b"allow-stale": ALLOW_STALE,
                 b"no-cluster": NO_CLUSTER, b"allow-cross-slot-keys": ALLOW_CROSS_SLOT}

#: Redis's log levels (redis.LOG_*) -> Python logging levels.
LOG_LEVELS = {0: logging.DEBUG, 1: logging.DEBUG + 5, 2: logging.INFO, 3: logging.WARNING}
#: The server's loglevel -> the lowest redis.log level it shows.
_VERBOSITY = {"debug": 0, "verbose": 1, "notice": 2, "warning": 3}

#: What a script's reply converts to when a Lua number is not a C long long
#: (NaN, infinities, out of range): x86-64's conversion gives this, and so
#: Redis answers it.
LLONG_MIN = -(1 << 63)
_LLONG_END = 1 << 63
_dict_set = dict.__setitem__
_monotonic = time.monotonic

#: Redis 7.0.15's global names that scripts see (and nothing else).
REDIS_VERSION = b"7.0.15"
REDIS_VERSION_NUM = 0x07000F
#: Globals the base library may define that Redis 7.0.15's state does not have.
REMOVED_GLOBALS = (b"print", b"dofile", b"loadfile", b"getfenv", b"setfenv", b"newproxy",
                   b"debug", b"require", b"module", b"package", b"os", b"io")
#: The libraries Redis loads besides the base one, and the module of each.
LIBRARIES = ((b"string", "lib_string"), (b"table", "lib_table"), (b"math", "lib_math"),
             (b"cjson", "lib_cjson"), (b"struct", "lib_struct"),
             (b"cmsgpack", "lib_cmsgpack"), (b"bit", "lib_bit"))

#: Commands Redis 7.0.15 flags MAY_REPLICATE internally (its COMMAND INFO does not
#: show the flag, so the table here cannot carry it): a read-only script may not
#: run them ("Write commands are not allowed from read-only scripts."). EVAL,
#: EVALSHA and FCALL have it too, but are noscript anyway.
MAY_REPLICATE = frozenset({"publish", "spublish", "pfcount"})
#: Distinct command names redis.call remembers its lookup of (scripts may
#: invent names: the cache stays bounded).
CALL_CACHE_SIZE = 1024
#: The most source load() collects from its reader before giving up (scripts are
#: bounded by proto-max-bulk-len; a reader function has no such bound).
MAX_LOAD_BYTES = 512 * 1024 * 1024


class ScriptKilled(BaseException):
    """SCRIPT KILL stopped the running script: raised from the hook, not catchable by pcall."""


def sha1hex(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def parse_shebang(body: bytes) -> tuple[int, int]:
    """(flags, length of the shebang line) of a script body, as evalExtractShebangFlags.

    No shebang: (EVAL_COMPAT, 0). Raises CommandError with Redis's text for a bad one.
    """
    if not body.startswith(b"#!"):
        return EVAL_COMPAT, 0
    end = body.find(b"\n")
    if end < 0:
        raise CommandError("ERR Invalid script shebang")
    parts = split_args(body[:end])
    if not parts:
        raise CommandError("ERR Invalid engine in script shebang")
    if parts[0] != b"#!lua":
        raise CommandError("ERR Unexpected engine in script shebang: "
                           + parts[0].decode("utf-8", "replace"))
    flags = 0
    for part in parts[1:]:
        if part.startswith(b"flags="):
            for name in (part[6:].split(b",") if len(part) > 6 else ()):
                flag = SHEBANG_FLAGS.get(name)
                if flag is None:
                    raise CommandError("ERR Unexpected flag in script shebang: "
                                       + name.decode("utf-8", "replace"))
                flags |= flag
        else:
            raise CommandError("ERR Unknown lua shebang option: "
                               + part.decode("utf-8", "replace"))
    return flags, end


class Script:
    """A cached script: its SHA1 (lower-case hex bytes), body, shebang flags and compiled function."""

    __slots__ = ("sha", "body", "flags", "func")

    def __init__(self, sha: bytes, body: bytes, flags: int, func: Any) -> None:
        self.sha = sha
        self.body = body
        self.flags = flags
        self.func = func


# --- Lua -> RESP (a script's reply) ---------------------------------------------------

def _as_long_long(n: int | float) -> int:
    """``(long long)`` of a Lua number, as x86-64 converts it (truncation; LLONG_MIN if out of range)."""
    if type(n) is int:
        return n if LLONG_MIN <= n < (1 << 63) else LLONG_MIN
    if n != n or not -9.3e18 < n < 9.3e18:
        return LLONG_MIN
    v = int(n)
    return v if LLONG_MIN <= v < (1 << 63) else LLONG_MIN


def _cstring(s: bytes) -> bytes:
    """What a C string of ``s`` holds: up to its first NUL."""
    nul = s.find(b"\0")
    return s if nul < 0 else s[:nul]


#: Marks, on lua_to_resp's stack, the end of a table's elements.
_EXIT = object()
#: A table that contains itself (directly or not) would be an endless reply;
#: Redis's recursion ends at the Lua stack's limit with this error, in place.
STACK_LIMIT_ERROR = b"-ERR reached lua stack limit\r\n"


#: The most a script's reply may cost (bytes, plus REPLY_VALUE_COST per value, about
#: what each costs in memory while the reply is built): a table reached many times
#: over (``t = {t, t}`` 60 times: 2^60 values from 60 small tables) would otherwise
#: build until memory runs out. Redis's default proto-max-bulk-len, as for the
#: encoders' "resulting string too large" (lib_string.MAX_STRING).
MAX_REPLY_COST = 512 * 1024 * 1024
REPLY_VALUE_COST = 48
REPLY_TOO_LARGE = b"ERR script reply too large"


def lua_to_resp(value: Any, script_resp: int, resp: int, out: list,
                check_hook: Any = None) -> None:
    """Append the RESP encoding of a Lua value to ``out`` (Redis's luaReplyToRedisReply).

    ``script_resp`` is the script's protocol (redis.setresp: how booleans
    convert), ``resp`` the caller's (how maps, sets, doubles, nulls encode).
    Iterative (nesting is not bounded by Python's stack); a table met again
    inside itself is answered "reached lua stack limit", where Redis's
    recursion would stop. Raises LuaError(REPLY_TOO_LARGE) past MAX_REPLY_COST;
    calls ``check_hook`` for every table (busy mode, SCRIPT KILL).
    """
    budget = MAX_REPLY_COST
    stack = [value]
    open_tables: set = set()
    pop = stack.pop
    push = stack.append
    while stack:
        value = pop()
        t = type(value)
        if t is bytes:
            budget -= len(value)
            if budget < 0:
                raise LuaError(REPLY_TOO_LARGE)
            out.append(b"$%d\r\n%s\r\n" % (len(value), value))
        elif t is int or t is float:
            out.append(b":%d\r\n" % _as_long_long(value))
        elif t is bool:
            if script_resp == 2:
                out.append(b":1\r\n" if value else (b"$-1\r\n" if resp == 2 else b"_\r\n"))
            elif resp == 2:
                out.append(b":1\r\n" if value else b":0\r\n")
            else:
                out.append(b"#t\r\n" if value else b"#f\r\n")
        elif t is LuaTable:
            if id(value) in open_tables:
                out.append(STACK_LIMIT_ERROR)
                continue
            if check_hook is not None:
                check_hook()
            children = _table_reply(value, resp, out)
            if children:
                budget -= REPLY_VALUE_COST * len(children)
                if budget < 0:
                    raise LuaError(REPLY_TOO_LARGE)
                open_tables.add(id(value))
                push((_EXIT, id(value)))
                for child in reversed(children):
                    push(child)
        elif t is tuple and value[0] is _EXIT:
            open_tables.discard(value[1])
        else:
            out.append(b"$-1\r\n" if resp == 2 else b"_\r\n")


def _table_reply(value: LuaTable, resp: int, out: list) -> list:
    """Append a table's reply header (or whole reply); return the values still to encode."""
    h = value.hash
    if h:
        err = h.get(b"err")
        if type(err) is bytes:
            out.append(error_line(_cstring(err)))
            return []
        ok = h.get(b"ok")
        if type(ok) is bytes:
            out.append(b"+%s\r\n" % _cstring(ok).replace(b"\r", b" ").replace(b"\n", b" "))
            return []
        double = h.get(b"double")
        if type(double) is int or type(double) is float:
            text = format_double(float(double))
            out.append(b"$%d\r\n%s\r\n" % (len(text), text) if resp == 2
                       else b",%s\r\n" % text)
            return []
        big = h.get(b"big_number")
        if type(big) is bytes:
            big = big.replace(b"\r", b" ").replace(b"\n", b" ")
            out.append(b"$%d\r\n%s\r\n" % (len(big), big) if resp == 2 else b"(%s\r\n" % big)
            return []
        verbatim = h.get(b"verbatim_string")
        if type(verbatim) is LuaTable:
            fmt = verbatim.get(b"format")
            text = verbatim.get(b"string")
            if type(fmt) is bytes and type(text) is bytes:
                if resp == 2:
                    out.append(b"$%d\r\n%s\r\n" % (len(text), text))
                else:
                    fmt = (fmt + b"\0\0\0")[:3]
                    out.append(b"=%d\r\n%s:%s\r\n" % (len(text) + 4, fmt, text))
                return []
        pairs = h.get(b"map")
        if type(pairs) is LuaTable:
            items = list(pairs.items())
            out.append(b"%%%d\r\n" % len(items) if resp != 2 else b"*%d\r\n" % (2 * len(items)))
            return [x for kv in items for x in kv]
        members = h.get(b"set")
        if type(members) is LuaTable:
            keys = [k for k, _ in members.items()]
            out.append(b"~%d\r\n" % len(keys) if resp != 2 else b"*%d\r\n" % len(keys))
            return keys
    items = value.sequence()
    out.append(b"*%d\r\n" % len(items))
    return items


def script_reply(value: Any, script_resp: int, resp: int, check_hook: Any = None) -> Any:
    """The reply value for a script's result: an ErrorReply for an error table, else Raw RESP."""
    t = type(value)
    if t is bytes:
        return value
    if t is LuaTable:
        err = value.hash.get(b"err") if value.hash else None
        if type(err) is bytes:
            return _error(_cstring(err), value.hash.get(IGNORE_STATS) is True)
    elif t is int:
        return _as_long_long(value)
    out: list = []
    lua_to_resp(value, script_resp, resp, out, check_hook)
    return Raw(b"".join(out))


def _error(message: bytes, counted: bool) -> Any:
    """A script's error reply: an ErrorReply (counted in the error stats when the
    dispatcher sees it), or, for a command's error already counted, the same line
    as Raw (Redis's ERR_REPLY_FLAG_NO_STATS_UPDATE)."""
    if counted:
        return Raw(error_line(message))
    return ErrorReply(message.decode("utf-8", "surrogateescape"))


# --- RESP -> Lua (a command's reply inside a script) --------------------------------

#: The field Redis puts in the error table of a command's error (redis.call,
#: redis.pcall): the error was counted in INFO errorstats when the command
#: failed, so the script's reply does not count it again.
IGNORE_STATS = b"ignore_error_stats_update"


def error_table(message: bytes, counted: bool = False) -> LuaTable:
    """Redis's luaPushErrorBuff: ``{err = "<CODE> <message>"}`` ("-CODE msg", or "msg" -> ERR).

    ``counted``: the error of a command, already in the error stats.
    """
    if message.startswith(b"-"):
        code, sep, rest = message[1:].partition(b" ")
        if not sep:
            code, rest = b"ERR", message[1:]
    else:
        code, rest = b"ERR", message
    t = LuaTable()
    t.hash[b"err"] = code + b" " + rest.strip(b"\r\n")
    if counted:
        t.hash[IGNORE_STATS] = True
    return t


def _status(text: bytes) -> LuaTable:
    t = LuaTable()
    t.hash[b"ok"] = text
    return t


_OK_TABLE_TEXT = b"OK"
#: The largest integer a double (a Lua 5.1 number) holds exactly.
_EXACT = 2 ** 53


def reply_to_lua(reply: Any, resp: int) -> Any:
    """A command's reply value as the Lua value a script sees (Redis's redisProtocolToLuaType).

    The common values convert directly; anything else is encoded in the
    script client's protocol and parsed back, so the rules are RESP's.
    """
    t = type(reply)
    if t is bytes:
        return reply
    if t is int:
        # A Lua number is a double: an integer reply past 2^53 arrives rounded.
        return reply if -_EXACT <= reply <= _EXACT else float(reply)
    if reply is None:
        return False if resp == 2 else None
    if reply is OK:
        return _status(_OK_TABLE_TEXT)
    if t is list:
        arr = [reply_to_lua(v, resp) for v in reply]
        if None in arr:   # RESP3 nulls inside an array: Lua sets them to nil (holes)
            table = LuaTable()
            for i, v in enumerate(arr, 1):
                if v is not None:
                    table.set(i, v)
            return table
        table = LuaTable()
        table.arr = arr
        return table
    if t is ErrorReply:
        return error_table(b"-" + reply.encode("utf-8", "surrogateescape"), True)
    data = encode(reply) if resp == 2 else encode3(reply)
    value, _ = _parse_resp(bytes(data), 0)
    return value


def _parse_resp(data: bytes, pos: int) -> tuple[Any, int]:
    """One RESP2/RESP3 reply at ``pos`` as a Lua value, and the position after it."""
    nl = data.index(b"\r\n", pos)
    kind = data[pos:pos + 1]
    body = data[pos + 1:nl]
    pos = nl + 2
    if kind == b"$" or kind == b"=":
        n = int(body)
        if n < 0:
            return False, pos
        s = data[pos:pos + n]
        if kind == b"=":
            t = LuaTable()
            inner = LuaTable()
            inner.hash[b"string"] = s[4:]
            inner.hash[b"format"] = s[:3]
            t.hash[b"verbatim_string"] = inner
            return t, pos + n + 2
        return s, pos + n + 2
    if kind == b":":
        n = int(body)
        return (n if -_EXACT <= n <= _EXACT else float(n)), pos
    if kind == b"+":
        return _status(body), pos
    if kind == b"-":
        return error_table(b"-" + body, True), pos
    if kind == b"*" or kind == b"~" or kind == b">":
        n = int(body)
        if n < 0:
            return False, pos
        items = []
        for _ in range(n):
            v, pos = _parse_resp(data, pos)
            items.append(v)
        if kind == b"~":
            members = LuaTable()
            for v in items:
                members.set(v, True)
            t = LuaTable()
            t.hash[b"set"] = members
            return t, pos
        t = LuaTable()
        for i, v in enumerate(items, 1):
            if v is not None:
                t.set(i, v)
        return t, pos
    if kind == b"%" or kind == b"|":
        n = int(body)
        pairs = LuaTable()
        for _ in range(n):
            k, pos = _parse_resp(data, pos)
            v, pos = _parse_resp(data, pos)
            if k is not None:
                pairs.set(k, v)
        if kind == b"|":   # an attribute: Redis skips it and reads the reply after it
            return _parse_resp(data, pos)
        t = LuaTable()
        t.hash[b"map"] = pairs
        return t, pos
    if kind == b"_":
        return None, pos
    if kind == b"#":
        return body == b"t", pos
    if kind == b",":
        t = LuaTable()
        t.hash[b"double"] = float(body)
        return t, pos
    if kind == b"(":
        t = LuaTable()
        t.hash[b"big_number"] = body
        return t, pos
    raise ValueError(f"not a RESP reply: {kind!r}")


# --- redis.call arguments --------------------------------------------------------------

def call_argv(args: tuple) -> list[bytes] | bytes:
    """A redis.call's arguments as argv, or the error message (bytes) Redis gives."""
    if not args:
        return b"Please specify at least one argument for this redis lib call"
    argv = []
    for a in args:
        t = type(a)
        if t is bytes:
            argv.append(a)
        elif t is int or t is float:
            # Not Lua's %.14g: Redis formats numbers with %.17g, keeping precision.
            argv.append(b"%.17g" % a)
        else:
            return b"Lua redis lib command arguments must be strings or integers"
    return argv


# --- the run of one script ---------------------------------------------------------------

class RunContext:
    """One running script (Redis's scriptRunCtx): its caller, flags, the clock and SCRIPT KILL."""

    __slots__ = ("engine", "caller", "client", "sha", "read_only", "allow_oom", "oom_at_start",
                 "dirty", "killed", "started", "timed_out", "threshold", "dispatcher",
                 "commands", "next_serve", "rejected")

    def __init__(self, engine: "Scripting", caller: Any, client: Any, sha: bytes,
                 read_only: bool, allow_oom: bool) -> None:
        self.engine = engine
        self.client = client
        self.dispatcher = caller.core.dispatcher()
        self.commands = self.dispatcher.commands
        from .commands import Rejected
        self.rejected = Rejected
        self.start(caller, sha, read_only, allow_oom)

    def start(self, caller: Any, sha: bytes, read_only: bool, allow_oom: bool) -> None:
        """Set up for a new run (the engine keeps one context: scripts never nest)."""
        core = caller.core
        self.caller = caller
        self.sha = sha
        self.read_only = read_only
        self.allow_oom = allow_oom
        self.oom_at_start = core.over_maxmemory
        self.dirty = False          # ran a write command: SCRIPT KILL refuses (UNKILLABLE)
        self.killed = False
        self.started = time.monotonic()
        self.timed_out = False
        self.next_serve = 0.0
        threshold = core.config.busy_reply_threshold
        self.threshold = threshold / 1000.0 if threshold > 0 else None

    def hook(self) -> None:
        """The interpreter's periodic call: past busy-reply-threshold, serve the other clients.

        Raises ScriptKilled once SCRIPT KILL asked for it (and again at every
        later call, so nothing can keep the script going, as Redis re-arms its hook).
        """
        if self.killed:
            raise ScriptKilled()
        threshold = self.threshold
        if threshold is None:
            return
        now = time.monotonic()
        elapsed = now - self.started
        if elapsed < threshold or now < self.next_serve:
            return
        self.next_serve = now + BUSY_SERVE_INTERVAL
        if not self.timed_out:
            self.timed_out = True
            log.warning("Slow script detected: still in execution after %d milliseconds. "
                        "You can try killing the script using the SCRIPT KILL command. "
                        "Script name is: %s.", int(elapsed * 1000), self.sha.decode())
        serve_busy(self)
        if self.killed:
            log.warning("Lua script killed by user with SCRIPT KILL.")
            raise ScriptKilled()

    def kill(self) -> str | None:
        """SCRIPT KILL while this script runs: None if it will stop, else the error."""
        if self.dirty:
            return UNKILLABLE
        self.killed = True
        return None


# --- busy mode: serving other clients from inside a script ---------------------------------

#: What one busy-mode pass reads from one client at most: the rest waits for the next pass.
BUSY_READ_BYTES = 64 * 1024
#: Seconds between two busy-mode passes: a pass looks at every client, and the
#: hook runs every thousand Lua steps, far more often than a client needs an answer.
BUSY_SERVE_INTERVAL = 0.005


def serve_busy(ctx: RunContext) -> None:
    """Answer the clients that sent something while the script runs (Redis's processEventsWhileBlocked).

    Only plain TCP and Unix-socket clients whose connection is idle (not the
    caller, not running or holding requests or replies, not paused, not
    TLS: its bytes are encrypted) are read: each gets ``-BUSY`` for every
    request, except SCRIPT KILL (OK, NOTBUSY is impossible here, or
    UNKILLABLE) and SHUTDOWN NOSAVE (the server exits at once: every
    acknowledged write is already durable, and the script's own unit was
    never written, so nothing of it survives). Other clients wait until the
    script ends, as everyone did before the threshold.
    """
    core = ctx.caller.core
    conns = {}
    for client in list(core.clients.values()):
        conn = client.link
        if conn is None or client is ctx.caller:
            continue
        fd = conn.busy_fd()
        if fd is not None and fd >= 0:
            conns[fd] = conn
    if not conns:
        return
    # poll(), not select(): descriptors past 1024 are common with many clients.
    poller = select.poll()
    for fd in conns:
        poller.register(fd, select.POLLIN)
    try:
        ready = poller.poll(0)
    except OSError:
        return
    for fd, _events in ready:
        conn = conns[fd]
        try:
            # The socket is non-blocking (asyncio's): this takes what is there.
            data = os.read(fd, BUSY_READ_BYTES)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            continue
        if not data:
            conn.busy_eof()
            continue
        requests, error = conn.busy_feed(data)
        replies = [_busy_reply(ctx, argv) for argv in requests]
        if replies:
            conn.busy_send(b"".join(replies), len(replies))
        if error is not None:
            conn.busy_protocol_error(error)   # after the replies to what came before it


def _busy_reply(ctx: RunContext, argv: list[bytes]) -> bytes:
    core = ctx.caller.core
    name = argv[0].lower() if argv else b""
    if name == b"script" and len(argv) == 2 and argv[1].lower() == b"kill":
        error = ctx.kill()
        if error is None:
            return b"+OK\r\n"
        core.stats.count_error(error)
        return error_line(error)
    if name == b"shutdown" and len(argv) == 2 and argv[1].lower() == b"nosave":
        log.warning("SHUTDOWN NOSAVE while a script runs: exiting now; the script's writes "
                    "are not kept")
        writer = core.persistence
        if writer is not None:
            try:
                writer.commit_now()   # what was applied before the script, not the script
            except Exception:  # noqa: BLE001 - exiting anyway
                log.exception("commit before SHUTDOWN NOSAVE failed")
        if core.config.pidfile:
            try:
                os.unlink(core.config.pidfile)   # as a graceful stop does (__main__)
            except OSError:
                pass
        logging.shutdown()
        os._exit(0)
    core.stats.count_error(BUSY)
    return error_line(BUSY)


# --- the engine --------------------------------------------------------------------------

class Scripting:
    """The scripting engine of one server: the Lua state, the script cache, the running script."""

    def __init__(self) -> None:
        #: Lower-case hex SHA1 (bytes) -> Script.
        self.scripts: dict[bytes, Script] = {}
        self.running: RunContext | None = None
        self._rt: Any = None
        #: Sets a global of the locked state (KEYS, ARGV): lock_globals gives it.
        self._set_global: Any = None
        #: The two dicts set_global writes (the locked globals' and the one
        #: compiled chunks read), for run() to set KEYS and ARGV without a call.
        self._global_dicts: tuple = ()
        self.client: Any = None     # the script client (made on first run)
        #: The run context, made once and reused (scripts never nest), and its hook.
        self._context: RunContext | None = None
        self._hook: Any = None
        #: redis.call's command lookups by the name a script used (commands
        #: without subcommands; the table is fixed while the server runs).
        self.call_cache: dict[bytes, tuple] = {}

    # -- the Lua state --------------------------------------------------------------
    @property
    def rt(self) -> Any:
        if self._rt is None:
            self._rt = make_runtime(self)
        return self._rt

    def flush(self) -> None:
        """SCRIPT FLUSH: forget every script and start a fresh Lua state."""
        self.scripts = {}
        self._rt = None

    # -- the cache -------------------------------------------------------------------
    def lookup(self, sha: bytes) -> Script | None:
        if len(sha) != 40:
            return None
        script = self.scripts.get(sha)
        if script is None:
            script = self.scripts.get(sha.lower())
        return script

    def load(self, body: bytes) -> Script:
        """The cached script for ``body``, compiling it first if new. Raises CommandError."""
        sha = sha1hex(body).encode()
        script = self.scripts.get(sha)
        if script is not None:
            return script
        flags, shebang_len = parse_shebang(body)
        from .lua.value import LuaSyntaxError
        # The shebang line is blanked, its newline kept: line numbers stay the user's.
        source = body[shebang_len:] if shebang_len else body
        try:
            func = self.rt.compile(source, "user_script")
        except LuaSyntaxError as exc:
            raise CommandError("ERR Error compiling script (new function): "
                               + _message(exc.value)) from None
        except LuaError as exc:
            raise CommandError("ERR Error compiling script (new function): "
                               + _message(exc.value)) from None
        script = self.scripts[sha] = Script(sha, body, flags, func)
        return script

    # -- running ----------------------------------------------------------------------
    def script_client(self, caller: Any) -> Any:
        client = self.client
        if client is None:
            from .client import Client
            client = self.client = Client(caller.core, addr="lua", kind="lua")
            client.authenticated = True
            client.name = b""
            # Redis runs script commands with CLIENT_DENY_BLOCKING (the blocking
            # commands are noscript in 7.0 anyway; this keeps any other from blocking).
            client.deny_blocking = True
        return client

    def run(self, caller: Any, script: Script, keys: list[bytes], args: list[bytes],
            read_only: bool) -> Any:
        """Run a cached script for ``caller``: its reply value (ErrorReply or Raw or bytes/int)."""
        core = caller.core
        flags = script.flags
        if flags & EVAL_COMPAT:
            allow_oom = False
        else:
            if not flags & NO_WRITES:
                if read_only:
                    raise CommandError(
                        "ERR Can not execute a script with write flag using *_ro command.")
            if core.over_maxmemory and core.config.maxmemory and not flags & (ALLOW_OOM | NO_WRITES):
                # A script with a shebang that may write is denyoom (evalGetCommandFlags):
                # Redis refuses it before it runs, with the command's OOM error.
                raise CommandError("OOM command not allowed when used memory > 'maxmemory'.")
            read_only = read_only or bool(flags & NO_WRITES)
            allow_oom = bool(flags & ALLOW_OOM)
        rt = self._rt or self.rt
        client = self.client or self.script_client(caller)
        client.db = caller.db           # the caller's database; SELECT changes the script's
        client.db_index = caller.db_index
        client.resp = 2
        ctx = self._context
        if ctx is None:
            ctx = self._context = RunContext(self, caller, client, script.sha, read_only,
                                             allow_oom)
            self._hook = ctx.hook
        else:
            # ctx.start(caller, script.sha, read_only, allow_oom), inline: keep in step.
            ctx.caller = caller
            ctx.sha = script.sha
            ctx.read_only = read_only
            ctx.allow_oom = allow_oom
            ctx.oom_at_start = core.over_maxmemory
            ctx.dirty = False
            ctx.killed = False
            ctx.started = _monotonic()
            ctx.timed_out = False
            ctx.next_serve = 0.0
            threshold = core.config.busy_reply_threshold
            ctx.threshold = threshold / 1000.0 if threshold > 0 else None
        self.running = ctx
        # set_global(b"KEYS", ...) and (b"ARGV", ...), inline: two calls fewer per run.
        locked, first = self._global_dicts
        table = LuaTable(keys)      # (new lists: the callers' slices)
        _dict_set(locked, b"KEYS", table)
        first[b"KEYS"] = table
        table = LuaTable(args)
        _dict_set(locked, b"ARGV", table)
        first[b"ARGV"] = table
        previous_hook = rt.hook
        rt.hook = self._hook
        # Time stands still for the script (Redis 7's scriptTimeSnapshot): a key
        # does not expire between two of its commands, whatever the script takes.
        keyspace = core.keyspace
        clock = keyspace.clock
        started_ms = clock()
        keyspace.clock = lambda: started_ms
        try:
            try:
                results = script.func()
                value = results[0] if results else None
                if type(value) is LuaTable:
                    # (inside: a reply built from a table reached many times over
                    # can be long; the hook keeps busy mode and SCRIPT KILL working)
                    return script_reply(value, client.resp, caller.resp, rt.check_hook)
            except ScriptKilled as exc:
                return self._error_reply(caller, error_value(KILLED_MESSAGE), ctx, exc)
            except LuaError as exc:
                if exc.value == REPLY_TOO_LARGE:
                    return _error(REPLY_TOO_LARGE, False)
                return self._error_reply(caller, exc.value, ctx, exc)
            except RecursionError:
                return self._error_reply(caller, b"ERR user_script: stack overflow", ctx, None)
            t = type(value)
            if t is bytes or (t is int and LLONG_MIN <= value < _LLONG_END):
                return value    # script_reply's answer for the common replies, without its call
            return script_reply(value, client.resp, caller.resp)
        finally:
            keyspace.clock = clock
            rt.hook = previous_hook
            self.running = None
            ctx.caller = None     # (the context stays; a gone client must not)

    def _error_reply(self, caller: Any, value: Any, ctx: RunContext, exc: Any) -> Any:
        """The reply to a script that raised ``value`` (Redis's error handler + luaCallFunction)."""
        counted = False
        if type(value) is LuaTable:
            counted = value.hash.get(IGNORE_STATS) is True
            err = value.get(b"err")
            if type(err) is not bytes:
                # Redis 7.0.15 crashes on error({}) (a NULL message): answer its generic
                # text, the raw form: the script is over, no __tostring may run now
                # (a SCRIPT KILL or an error there would escape the engine).
                err = b"ERR " + _raw_tostring(value)
        else:
            err = b"ERR " + _raw_tostring(value)   # (no other type has a __tostring)
        line = error_line_number(exc, value)
        if line is not None:
            err = err + b" script: %s, on @user_script:%d." % (ctx.sha, line)
        return _error(_cstring(err), counted)


def _raw_tostring(value: Any) -> bytes:
    from .lua.value import tostring
    return tostring(value)


def _lua_tostring(rt: Any, value: Any) -> bytes:
    try:
        return rt.tostring(value)
    except Exception:  # noqa: BLE001 - a __tostring that fails: the raw form
        from .lua.value import tostring
        return tostring(value)


def _message(value: Any) -> str:
    if type(value) is bytes:
        return value.decode("utf-8", "surrogateescape")
    from .lua.value import tostring
    return tostring(value).decode("utf-8", "surrogateescape")


def error_value(message: bytes) -> LuaTable:
    t = LuaTable()
    t.hash[b"err"] = message
    return t


_POSITION = re.compile(rb"^user_script:(\d+):")


def error_line_number(exc: Any, value: Any) -> int | None:
    """The script line an error was raised at (what Redis's error handler reads with getinfo).

    The innermost Lua frame of the exception's traceback (a redis.call that
    failed: the line calling it); else the position in a message.
    """
    if exc is not None:
        try:
            from .lua.runtime import _tb_where
        except ImportError:
            _tb_where = None
        if _tb_where is not None:
            m = _POSITION.match(_tb_where(exc.__traceback__))
            if m:
                return int(m.group(1))
    if type(value) is bytes:
        m = _POSITION.match(value)
        if m:
            return int(m.group(1))
    return None


# --- the Lua state as Redis sets it up ----------------------------------------------------

def make_runtime(engine: Scripting) -> Any:
    """A Lua state set up as Redis 7.0.15's scriptingInit does, then locked."""
    from .lua.runtime import Runtime
    rt = Runtime()
    g = rt.globals
    import importlib
    for name, module in LIBRARIES:
        if g.get(name) is not None:
            continue
        try:
            lib = importlib.import_module(f".lua.{module}", __package__)
        except ImportError:
            continue
        g.set(name, lib.open(rt))
    for name in REMOVED_GLOBALS:
        g.set(name, None)
    redis = LuaTable()
    api = RedisAPI(engine, rt)
    for name, func in api.functions().items():
        redis.set(name, func)
    for name, value in ((b"LOG_DEBUG", 0), (b"LOG_VERBOSE", 1), (b"LOG_NOTICE", 2),
                        (b"LOG_WARNING", 3), (b"REPL_NONE", 0), (b"REPL_AOF", 1),
                        (b"REPL_SLAVE", 2), (b"REPL_REPLICA", 2), (b"REPL_ALL", 3),
                        (b"REDIS_VERSION", REDIS_VERSION),
                        (b"REDIS_VERSION_NUM", REDIS_VERSION_NUM)):
        redis.set(name, value)
    g.set(b"redis", redis)
    base_pcall = g.get(b"pcall")
    if base_pcall is not None:
        g.set(b"pcall", _redis_pcall(base_pcall))
    g.set(b"__redis__err__handler", _err_handler(rt))
    g.set(b"loadstring", _loadstring(rt))
    if g.get(b"load") is None:
        g.set(b"load", _load(rt))
    engine._set_global = set_global = lock_globals(rt)
    engine._global_dicts = set_global.dicts
    return rt


def _redis_pcall(base_pcall: Any) -> Any:
    """Redis 7's pcall: an error that is a table with an ``err`` string comes back as that string."""
    def pcall(*args: Any) -> tuple:
        results = base_pcall(*args)
        if results and results[0] is False and len(results) > 1:
            err = results[1]
            if type(err) is LuaTable:
                msg = err.get(b"err")
                if type(msg) is bytes or type(msg) is int or type(msg) is float:
                    return (False, msg) + tuple(results[2:])
        return results
    return pcall


def _err_handler(rt: Any) -> Any:
    def handler(*args: Any) -> tuple:
        err = args[0] if args else None
        if type(err) is not LuaTable:
            err = error_value(b"ERR " + _lua_tostring(rt, err))
        return (err,)
    return handler


def _loadstring(rt: Any) -> Any:
    """Redis 7.0.15 keeps loadstring: a chunk compiled into the same (locked) state."""
    def loadstring(*args: Any) -> tuple:
        source = args[0] if args else None
        if type(source) is not bytes:
            if type(source) in (int, float):
                from .lua.value import tostring
                source = tostring(source)
            else:
                from .lua.value import type_name
                raise LuaError(b"bad argument #1 to 'loadstring' (string expected, got %s)"
                               % (b"no value" if not args else type_name(source).encode()))
        chunkname = args[1] if len(args) > 1 and type(args[1]) is bytes else source
        try:
            return (rt.compile(source, _chunk_name(chunkname)),)
        except LuaError as exc:
            return (None, exc.value)
    return loadstring


def _load(rt: Any) -> Any:
    """Lua 5.1's load(func [, chunkname]): the pieces func returns, compiled as one chunk."""
    def load(*args: Any) -> tuple:
        func = args[0] if args else None
        if not callable(func) or type(func) is LuaTable:
            from .lua.value import type_name
            raise LuaError(b"bad argument #1 to 'load' (function expected, got %s)"
                           % (b"no value" if not args else type_name(func).encode()))
        pieces = []
        size = 0
        while True:
            rt.check_hook()
            got = rt.call(func)
            piece = got[0] if got else None
            if piece is None or piece == b"":
                break
            if type(piece) is not bytes:
                return (None, b"reader function must return a string")
            pieces.append(piece)
            size += len(piece)
            if size > MAX_LOAD_BYTES:
                return (None, b"not enough memory")
        name = args[1] if len(args) > 1 and type(args[1]) is bytes else b"=(load)"
        try:
            return (rt.compile(b"".join(pieces), _chunk_name(name)),)
        except LuaError as exc:
            return (None, exc.value)
    return load


def _chunk_name(name: bytes) -> str:
    """Lua's chunkid: ``=name`` and ``@name`` as given, a source as ``[string "..."]``."""
    name = name.split(b"\0", 1)[0]    # a C string (and Python refuses a NUL in a file name)
    if name[:1] in (b"=", b"@"):
        return name[1:].decode("latin-1")
    try:
        from .lua.runtime import chunkid
    except ImportError:
        return name.split(b"\n", 1)[0][:40].decode("latin-1")
    return chunkid(name)


READONLY_ERROR = b"Attempt to modify a readonly table"


def _readonly(*_args: Any) -> Any:
    """A write to a locked table: Redis's error, with a position unless a library
    function (C in Redis: rawset, setmetatable, table.insert...) made it."""
    err = LuaError(READONLY_ERROR)
    frame = sys._getframe(1)
    while frame is not None:
        if "__lua_chunk__" in frame.f_globals:
            break       # compiled Lua code made the write: Lua adds the position
        name = frame.f_code.co_filename.rsplit("/", 1)[-1]
        if name == "baselib.py" or name.startswith("lib_"):
            err.lua_positioned = True   # a C function in Redis: no "user_script:N:"
            break
        frame = frame.f_back
    raise err


class _ReadonlyDict(dict):
    """The hash part of a locked table: reads at C speed, every write refused."""

    __slots__ = ()
    __setitem__ = __delitem__ = pop = popitem = setdefault = update = clear = _readonly


class _ReadonlyList(list):
    """The array part of a locked table."""

    __slots__ = ()
    __setitem__ = __delitem__ = append = extend = insert = pop = remove = clear = _readonly
    sort = reverse = __iadd__ = __imul__ = _readonly


def lock_globals(rt: Any) -> Any:
    """Make the globals and every table reachable from them read-only, as 7.0 does.

    A locked table keeps its contents in a dict and a list that refuse
    writes (so reads cost what they cost before, and no interpreter change
    is needed): assigning a global, a library field, or rawset on them raises
    "Attempt to modify a readonly table". Reading an undefined global raises
    Redis's error (the globals' ``__index``). Metatables reachable from the
    globals (and the string metatable) are locked too, and ``setmetatable``
    refuses a locked table. Returns the function
    that sets a global anyway (KEYS and ARGV, new tables on every run, which
    scripts may change as in Redis).
    """
    g = rt.globals

    def nonexistent(table: Any, key: Any) -> tuple:
        raise LuaError(b"Script attempted to access nonexistent global variable '%s'"
                       % _lua_tostring(rt, key))

    meta = LuaTable()
    meta.set(b"__index", nonexistent)
    g.metatable = meta
    seen: set = set()

    def lock(t: LuaTable) -> None:
        if id(t) in seen:
            return
        seen.add(id(t))
        for _k, v in list(t.items()):
            if type(v) is LuaTable:
                lock(v)
        if t.metatable is not None:
            lock(t.metatable)
        t.hash = _ReadonlyDict(t.hash)
        t.arr = _ReadonlyList(t.arr)
    # setmetatable on a locked table is a write to it, refused as Redis refuses it.
    base_setmetatable = g.get(b"setmetatable")
    if base_setmetatable is not None:
        def setmetatable(*args: Any) -> tuple:
            if args and type(args[0]) is LuaTable and type(args[0].hash) is _ReadonlyDict:
                err = LuaError(READONLY_ERROR)
                err.lua_positioned = True   # setmetatable is C in Redis: no position
                raise err
            return base_setmetatable(*args)
        g.set(b"setmetatable", setmetatable)
    string_meta = getattr(rt, "string_meta", None)
    if type(string_meta) is LuaTable:
        lock(string_meta)
    # Compiled chunks may hold the globals' first dict (a fast path for
    # global reads): it keeps every global, and only set_global writes it.
    first = g.hash
    lock(g)

    def set_global(name: bytes, value: Any) -> None:
        dict.__setitem__(g.hash, name, value)
        first[name] = value
    set_global.dicts = (g.hash, first)     # what it writes (Scripting.run inlines it)
    return set_global


# --- the redis table ------------------------------------------------------------------------

class RedisAPI:
    """The functions of the ``redis`` table, bound to one engine."""

    def __init__(self, engine: Scripting, rt: Any) -> None:
        self.engine = engine
        self.rt = rt

    def functions(self) -> dict[bytes, Any]:
        """name -> plain function (the interpreter calls plain functions on its fast path)."""
        engine = self.engine
        call = make_call(engine, True)
        pcall = make_call(engine, False)

        def plain(method: Any) -> Any:
            def f(*args: Any) -> tuple:
                return method(*args)
            return f
        table = {name: plain(method) for name, method in self._methods().items()}
        table[b"call"] = call
        table[b"pcall"] = pcall
        return table

    def _methods(self) -> dict[bytes, Any]:
        return {b"log": self.log,
                b"setresp": self.setresp, b"sha1hex": self.sha1hex,
                b"error_reply": self.error_reply, b"status_reply": self.status_reply,
                b"set_repl": self.set_repl, b"acl_check_cmd": self.acl_check_cmd,
                b"breakpoint": self.breakpoint, b"debug": self.debug,
                b"replicate_commands": self.replicate_commands}

    def _ctx(self, what: bytes) -> RunContext:
        ctx = self.engine.running
        if ctx is None:
            raise LuaError(error_value(b"ERR " + what + b" can only be called inside a "
                                       b"script invocation"))
        return ctx

    def log(self, *args: Any) -> tuple:
        if len(args) < 2:
            raise LuaError(error_value(b"ERR redis.log() requires two arguments or more."))
        level = args[0]
        if type(level) is bytes:
            level = str_to_number(level)
        if type(level) not in (int, float):
            raise LuaError(error_value(b"ERR First argument must be a number (log level)."))
        level = int(level)
        if not 0 <= level <= 3:
            raise LuaError(error_value(b"ERR Invalid debug level."))
        ctx = self.engine.running
        verbosity = _VERBOSITY.get(ctx.caller.core.config.loglevel, 2) if ctx else 2
        if level < verbosity:
            return ()
        parts = []
        for a in args[1:]:
            if type(a) is bytes:
                parts.append(a)
            elif type(a) in (int, float):
                from .lua.value import tostring
                parts.append(tostring(a))
        log.log(LOG_LEVELS[level], "%s", b" ".join(parts).decode("utf-8", "replace"))
        return ()

    def setresp(self, *args: Any) -> tuple:
        ctx = self._ctx(b"redis.setresp")
        if len(args) != 1:
            raise LuaError(error_value(b"ERR redis.setresp() requires one argument."))
        resp = _to_int(args[0])
        if resp not in (2, 3):
            raise LuaError(error_value(b"ERR RESP version must be 2 or 3."))
        ctx.client.resp = resp
        return ()

    def sha1hex(self, *args: Any) -> tuple:
        if len(args) != 1:
            raise LuaError(error_value(b"ERR wrong number of arguments"))
        s = args[0]
        if type(s) in (int, float):
            from .lua.value import tostring
            s = tostring(s)
        elif type(s) is not bytes:
            s = b""   # lua_tolstring gives NULL: Redis hashes nothing
        return (sha1hex(s).encode(),)

    def error_reply(self, *args: Any) -> tuple:
        if len(args) != 1 or type(args[0]) is not bytes:
            return (error_value(b"ERR wrong number or type of arguments"),)
        err = _cstring(args[0])
        return (error_table(err if err.startswith(b"-") else b"-" + err),)

    def status_reply(self, *args: Any) -> tuple:
        if len(args) != 1 or type(args[0]) is not bytes:
            return (error_value(b"ERR wrong number or type of arguments"),)
        return (_status(args[0]),)

    def set_repl(self, *args: Any) -> tuple:
        self._ctx(b"redis.set_repl")
        if len(args) != 1:
            raise LuaError(error_value(b"ERR redis.set_repl() requires two arguments."))
        flags = _to_int(args[-1])
        if flags & ~3:
            raise LuaError(error_value(b"ERR Invalid replication flags. Use REPL_AOF, "
                                       b"REPL_REPLICA, REPL_ALL or REPL_NONE."))
        # Accepted; every effect is still logged (the WAL is the only copy).
        return ()

    def acl_check_cmd(self, *args: Any) -> tuple:
        ctx = self._ctx(b"redis.acl_check_cmd")
        argv = call_argv(args)
        if type(argv) is bytes:
            raise LuaError(error_value(b"ERR " + argv))
        dispatcher = ctx.caller.core.dispatcher()
        if _call_info(dispatcher.commands, argv) is None:
            raise LuaError(error_value(b"ERR Invalid command passed to redis.acl_check_cmd()"))
        return (True,)   # one user, every permission (no ACL users here)

    def breakpoint(self, *args: Any) -> tuple:
        return (False,)   # no debugging session is ever active

    def debug(self, *args: Any) -> tuple:
        return ()

    def replicate_commands(self, *args: Any) -> tuple:
        return (True,)


def _to_int(v: Any) -> int:
    """lua_tonumber then a C int cast (0 when not a number)."""
    if type(v) is bytes:
        v = str_to_number(v)
    if type(v) is int:
        return v
    if type(v) is float and v == v and abs(v) < 2 ** 63:
        return int(v)
    return 0


def _call_info(commands: dict, argv: list[bytes]) -> tuple | None:
    """(command, what runs: itself or its subcommand) for redis.call, or None if unknown."""
    cmd = commands.get(argv[0]) or commands.get(argv[0].lower())
    if cmd is None:
        return None
    target = cmd
    if cmd.subcommands and len(argv) >= 2:
        target = cmd.subcommands.get(argv[1].decode("utf-8", "replace").lower())
        if target is None:
            return None
    flags = target.flags + cmd.flags
    return (cmd, target, target.arity, "noscript" in flags, target.is_write or cmd.is_write,
            "may_replicate" in flags or target.name in MAY_REPLICATE, "denyoom" in flags)


def make_call(engine: "Scripting", raising: bool) -> Any:
    """redis.call (``raising``: an error table is raised) or redis.pcall (returned), for ``engine``.

    The checks of Redis's scriptCall, the command, its reply as Lua. One
    plain function per name, the whole path in one frame (the interpreter's
    fast call path; a script's commands are most of its cost).
    """
    cache = engine.call_cache       # (one dict for the engine's life)

    def refuse(table: LuaTable) -> tuple:
        if raising:
            raise LuaError(table)
        return (table,)

    def call(*args: Any) -> tuple:
        ctx = engine.running
        if ctx is None:
            raise LuaError(error_value(b"ERR redis.call/pcall can only be called inside "
                                      b"a script invocation"))
        for a in args:
            if type(a) is not bytes:
                argv = call_argv(args)
                if type(argv) is bytes:
                    return refuse(error_value(b"ERR " + argv))
                break
        else:
            if not args:
                return refuse(error_value(b"ERR Please specify at least one argument for "
                                          b"this redis lib call"))
            argv = list(args)
        info = cache.get(argv[0])
        if info is None:
            info = _call_info(ctx.commands, argv)
            if info is not None and not info[0].subcommands and len(cache) < CALL_CACHE_SIZE:
                cache[argv[0]] = info
        client = ctx.client
        error = None
        if info is None:
            error = b"Unknown Redis command called from script"
        else:
            cmd, target, a, noscript, write, may_replicate, denyoom = info
            if (len(argv) != a) if a >= 0 else (len(argv) < -a):
                error = b"Wrong number of args calling Redis command from script"
            elif noscript:
                error = b"This Redis command is not allowed from script"
            elif write or may_replicate or denyoom:
                if ctx.read_only and (write or may_replicate):
                    error = b"Write commands are not allowed from read-only scripts."
                elif (denyoom and not ctx.allow_oom and not ctx.dirty and ctx.oom_at_start
                      and client.core.config.maxmemory):
                    error = b"-OOM command not allowed when used memory > 'maxmemory'."
                elif write:
                    ctx.dirty = True
        core = client.core
        if error is not None:
            if info is not None:
                core.command_stat(info[1].name).rejected += 1
            table = error_table(error, True)
            core.stats.count_error(table.hash[b"err"].decode())
            return refuse(table)
        core.stats.total_commands += 1      # as Redis's call(): a script's commands count
        if cmd.subcommands or core.monitors:
            reply = ctx.dispatcher.run_command(client, cmd, argv)
        else:
            # Dispatcher.run_command inline (keep the two in step): a script's
            # commands are most of its cost, and this saves a call and the checks
            # that only containers (a subcommand's stats) and MONITOR need.
            client.last_command = name = cmd.name
            failed = False
            started = perf_counter_ns()
            try:
                if write:
                    core.begin_unit()
                    try:
                        reply = cmd.func(client, argv)
                    finally:
                        core.end_unit()
                else:
                    reply = cmd.func(client, argv)
            except Exception as exc:  # noqa: BLE001 - as run_command: a bug answers an error
                if isinstance(exc, ctx.rejected):
                    if exc.command:
                        core.command_stat(exc.command).rejected += 1
                    core.stats.total_commands -= 1
                    return refuse(reply_to_lua(ctx.dispatcher.error(exc.message), client.resp))
                reply = ctx.dispatcher.failed(cmd, exc)
                failed = True
            else:
                t = type(reply)
                if t is bytes:
                    failed = None   # (the common replies: converted here, no more tests)
                elif t is int:
                    failed = None
                    if not -_EXACT <= reply <= _EXACT:
                        reply = float(reply)    # as reply_to_lua: a Lua number is a double
                elif reply is None:
                    failed = None
                    reply = False if client.resp == 2 else None   # as reply_to_lua
                elif t is ErrorReply:
                    core.stats.count_error(reply)
                    failed = True
                elif t is Future:
                    reply = Deferred(reply)
            elapsed = perf_counter_ns() - started
            stat = core.command_stats.get(name) or core.command_stat(name)
            stat.ns += elapsed
            x = elapsed * elapsed
            stat.hist[(x * x).bit_length()] += 1
            if failed:
                stat.failed += 1
            micros = elapsed // 1000
            if micros >= core.config.slowlog_log_slower_than >= 0:
                from .commands.introspection import after_command
                after_command(client, cmd, argv, micros)
            if failed is None:
                return (reply,)
        t = type(reply)
        if t is bytes:
            return (reply,)
        if t is Deferred:
            reply.future.cancel()
            reply = ctx.dispatcher.error(f"ERR '{cmd.name}' cannot run inside a script")
        reply = reply_to_lua(reply, client.resp)
        if raising and type(reply) is LuaTable and reply.hash and \
                type(reply.hash.get(b"err")) is bytes:
            raise LuaError(reply)
        return (reply,)
    return call


def script_may_write(core: Any, by_sha: bool, script: bytes) -> bool:
    """Whether EVAL(SHA) of ``script`` may write, as Redis's evalGetCommandFlags sees it
    before running it (CLIENT PAUSE WRITE holds it if so): true unless the script,
    cached or (EVAL) read from its body, has a shebang with ``no-writes``."""
    cached = engine(core).lookup(script) if by_sha else \
        engine(core).scripts.get(sha1hex(script).encode())
    if cached is not None:
        flags = cached.flags
    elif by_sha:
        return True
    else:
        try:
            flags = parse_shebang(script)[0]
        except CommandError:
            return True
    return bool(flags & EVAL_COMPAT) or not flags & NO_WRITES


def engine(core: Any) -> Scripting:
    """The core's scripting engine, made on first use."""
    e = getattr(core, "scripting", None)
    if e is None:
        e = core.scripting = Scripting()
    return e
