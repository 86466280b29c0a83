"""Connection and server commands: PING, HELLO, SELECT, INFO, CONFIG, COMMAND, CLIENT..."""

from __future__ import annotations

import logging

import os
import platform
import re
import resource
import sys
import time

from .. import REDIS_COMPAT_VERSION, __version__
from ..config import OPTIONS_BY_NAME, ConfigError
from ..errors import DB_INDEX, SYNTAX, CommandError
from ..fdlimit import FileLimitError, fit_maxclients
from ..numbers import parse_int
from ..protocol import NO_REPLY, OK, PONG, Simple
from . import TABLE, Command, command, dispatch_subcommand
from .keys import db_arg, int32_arg


@command("ping", -1, "fast", group="connection", acl="@connection @fast",
         summary="Ping the server", synopsis="[message]")
def cmd_ping(s, argv):
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    return PONG if len(argv) == 1 else argv[1]


@command("echo", 2, "fast stale loading", group="connection", acl="@connection @fast",
         summary="Echo the given string", synopsis="message")
def cmd_echo(s, argv):
    return argv[1]


@command("quit", -1, "fast stale loading noscript no_auth", group="connection",
         acl="@connection @fast", summary="Close the connection", synopsis="")
def cmd_quit(s, argv):
    s.close_after_reply = True
    return OK


@command("select", 2, "fast stale loading", group="connection", acl="@connection @fast",
         summary="Change the selected database for the current connection", synopsis="index")
def cmd_select(s, argv):
    s.select(db_arg(s, argv[1]))
    return OK


@command("swapdb", 3, "write fast", group="server", since="4.0.0",
         acl="@keyspace @write @fast @dangerous",
         summary="Swaps two Redis databases", synopsis="index1 index2")
def cmd_swapdb(s, argv):
    dbs = s.core.keyspace.dbs
    a = int32_arg(argv[1], "ERR invalid first DB index")
    b = int32_arg(argv[2], "ERR invalid second DB index")
    if not (0 <= a < len(dbs) and 0 <= b < len(dbs)):
        raise CommandError(DB_INDEX)
    if a != b:
        dbs[a].swap_contents(dbs[b])
    s.log([b"SWAPDB", b"%d" % a, b"%d" % b])
    return OK


@command("dbsize", 1, "readonly fast", group="server", acl="@keyspace @read @fast",
         summary="Return the number of keys in the selected database", synopsis="")
def cmd_dbsize(s, argv):
    return len(s.db)


def _flush_mode(argv) -> None:
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() not in (b"ASYNC", b"SYNC")):
        raise CommandError(SYNTAX)


@command("flushdb", -1, "write", group="server", acl="@keyspace @write @slow @dangerous",
         summary="Remove all keys from the current database", synopsis="[ASYNC | SYNC]")
def cmd_flushdb(s, argv):
    _flush_mode(argv)
    s.db.clear()
    s.log([b"FLUSHDB"])
    return OK


@command("flushall", -1, "write", group="server", acl="@keyspace @write @slow @dangerous",
         summary="Remove all keys from all databases", synopsis="[ASYNC | SYNC]")
def cmd_flushall(s, argv):
    _flush_mode(argv)
    for db in s.core.keyspace.dbs:
        db.clear()
    s.log([b"FLUSHALL"])
    return OK


@command("time", 1, "fast loading stale", group="server", since="2.6.0", acl="@fast",
         summary="Return the current server time", synopsis="")
def cmd_time(s, argv):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


# --- HELLO / AUTH ------------------------------------------------------------

@command("hello", -1, "fast noscript loading stale no_auth", group="connection", since="6.0.0",
         acl="@fast @connection",
         summary="Handshake with Redis",
         synopsis="[protover [AUTH username password] [SETNAME clientname]]")
def cmd_hello(s, argv):
    version = None
    if len(argv) > 1:
        version = parse_int(argv[1])
        if version is None:
            raise CommandError("ERR Protocol version is not an integer or out of range")
        if version < 2 or version > 3:
            raise CommandError("NOPROTO unsupported protocol version")
    i = 2
    name = None
    while i < len(argv):
        opt = argv[i].upper()
        if opt == b"AUTH" and i + 2 < len(argv):
            from .auth import check_password
            check_password(s, argv[i + 1], argv[i + 2])
            i += 3
        elif opt == b"SETNAME" and i + 1 < len(argv):
            name = argv[i + 1]
            _check_client_name(name)
            i += 2
        else:
            raise CommandError(f"ERR Syntax error in HELLO option '{argv[i].decode('utf-8', 'replace')}'")
    if not s.authenticated:
        raise CommandError("NOAUTH HELLO must be called with the client already "
                           "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                           "option can be used to authenticate the client and select the "
                           "RESP protocol version at the same time")
    if name is not None:
        s.name = name
    if version is not None:
        s.resp = version
    return {
        "server": "redis",
        "version": REDIS_COMPAT_VERSION,
        "proto": s.resp,
        "id": s.id,
        "mode": "standalone",
        "role": "master",
        "modules": [],
    }


# --- CLIENT --------------------------------------------------------------------

_CLIENT_NAME_OK = re.compile(rb"[!-~]*\Z")


def _check_client_name(name: bytes) -> None:
    if not _CLIENT_NAME_OK.match(name):
        raise CommandError("ERR Client names cannot contain spaces, newlines or special characters.")


@command("client", -2, "", group="connection", since="2.4.0", acl="@slow",
         summary="A container for client connection commands", synopsis="")
def cmd_client(s, argv):
    return dispatch_subcommand(s, argv)


@command("id", 2, "noscript loading stale", parent="client", group="connection", since="5.0.0",
         summary="Returns the client ID for the current connection", synopsis="")
def cmd_client_id(s, argv):
    return s.id


@command("setname", 3, "noscript loading stale", parent="client", group="connection",
         since="2.6.9", summary="Set the current connection name", synopsis="connection-name")
def cmd_client_setname(s, argv):
    _check_client_name(argv[2])
    s.name = argv[2]
    return OK


@command("getname", 2, "noscript loading stale", parent="client", group="connection",
         since="2.6.9", summary="Get the current connection name", synopsis="")
def cmd_client_getname(s, argv):
    return s.name or None


@command("setinfo", 4, "noscript loading stale", parent="client", group="connection",
         since="7.2.0", summary="Set client or connection specific info",
         synopsis="LIB-NAME libname | LIB-VER libver")
def cmd_client_setinfo(s, argv):
    attr = argv[2].upper()
    if attr == b"LIB-NAME":
        _check_client_name(argv[3])
        s.lib_name = argv[3]
    elif attr == b"LIB-VER":
        _check_client_name(argv[3])
        s.lib_ver = argv[3]
    else:
        raise CommandError(f"ERR Unrecognized option '{argv[2].decode('utf-8', 'replace')}'")
    return OK


@command("info", 2, "noscript loading stale", parent="client", group="connection",
         since="6.2.0", summary="Returns information about the current client connection.",
         synopsis="")
def cmd_client_info(s, argv):
    return s.client_info() + "\n"


@command("list", -2, "admin noscript loading stale", parent="client", group="connection",
         since="2.4.0", summary="Get the list of client connections",
         synopsis="[TYPE type] [ID client-id ...]")
def cmd_client_list(s, argv):
    clients = list(s.core.clients.values())
    if len(argv) > 2:
        opt = argv[2].upper()
        if opt == b"TYPE" and len(argv) == 4:
            kind = argv[3].lower()
            if kind not in (b"normal", b"master", b"replica", b"pubsub"):
                raise CommandError(f"ERR Unknown client type '{argv[3].decode('utf-8', 'replace')}'")
            clients = [c for c in clients if c.kind.encode() == kind]
        elif opt == b"ID" and len(argv) > 3:
            ids = set()
            for raw in argv[3:]:
                value = parse_int(raw)
                if value is None or value <= 0:
                    raise CommandError("ERR Invalid client ID")
                ids.add(value)
            clients = [c for c in clients if c.id in ids]
        else:
            raise CommandError(SYNTAX)
    return "".join(c.client_info() + "\n" for c in clients)


@command("kill", -3, "admin noscript loading stale", parent="client", group="connection",
         since="2.4.0", summary="Kill the connection of a client",
         synopsis="ip:port | [ID client-id] [TYPE type] [ADDR ip:port] [LADDR ip:port] "
                  "[SKIPME yes/no]")
def cmd_client_kill(s, argv):
    clients = s.core.clients
    if len(argv) == 3:  # old form: CLIENT KILL addr
        for c in list(clients.values()):
            if c.addr == argv[2].decode("utf-8", "replace"):
                c.kill()
                return OK
        raise CommandError("ERR No such client")
    if len(argv) % 2 != 0:
        raise CommandError(SYNTAX)
    filters = []
    skipme = True
    for i in range(2, len(argv), 2):
        opt, value = argv[i].upper(), argv[i + 1]
        text = value.decode("utf-8", "replace")
        if opt == b"ID":
            cid = parse_int(value)
            if cid is None or cid <= 0:
                raise CommandError("ERR client-id should be greater than 0")
            filters.append(lambda c, cid=cid: c.id == cid)
        elif opt == b"ADDR":
            filters.append(lambda c, a=text: c.addr == a)
        elif opt == b"LADDR":
            filters.append(lambda c, a=text: c.laddr == a)
        elif opt == b"TYPE":
            kind = text.lower()
            if kind not in ("normal", "master", "replica", "slave", "pubsub"):
                raise CommandError(f"ERR Unknown client type '{text}'")
            filters.append(lambda c, k=kind: c.kind == k)
        elif opt == b"USER":
            filters.append(lambda c, u=text: u == "default")
        elif opt == b"SKIPME":
            if value.lower() not in (b"yes", b"no"):
                raise CommandError(SYNTAX)
            skipme = value.lower() == b"yes"
        else:
            raise CommandError(SYNTAX)
    killed = 0
    for c in list(clients.values()):
        if skipme and c is s:
            continue
        if all(f(c) for f in filters):
            c.kill()
            killed += 1
    return killed


@command("help", 2, "loading stale", parent="client", group="connection", since="5.0.0",
         summary="Show helpful text about the different subcommands", synopsis="")
def cmd_client_help(s, argv):
    lines = ["CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:"]
    for name, sub in sorted(TABLE["client"].subcommands.items()):
        lines.append(f"{name.upper()} {sub.synopsis}".rstrip())
        lines.append(f"    {sub.summary}")
    return [Simple(x) for x in lines]


# --- CONFIG --------------------------------------------------------------------

@command("config", -2, "", group="server", since="2.0.0", acl="@slow",
         summary="A container for server configuration commands", synopsis="")
def cmd_config(s, argv):
    return dispatch_subcommand(s, argv)


@command("get", -3, "admin noscript loading stale", parent="config", group="server",
         since="2.0.0", acl="@slow",
         summary="Get the values of configuration parameters", synopsis="parameter [parameter ...]")
def cmd_config_get(s, argv):
    found: dict[str, str] = {}
    for pattern in argv[2:]:
        found.update(s.core.config.matching(pattern.decode("utf-8", "replace")))
    if s.resp == 3:
        return found
    out = []
    for k, v in found.items():
        out.append(k)
        out.append(v)
    return out


@command("set", -4, "admin noscript loading stale", parent="config", group="server",
         since="2.0.0", acl="@slow",
         summary="Set configuration parameters to the given values",
         synopsis="parameter value [parameter value ...]")
def cmd_config_set(s, argv):
    if len(argv) % 2 != 0:
        raise CommandError(SYNTAX)
    config = s.core.config
    seen = set()
    for i in range(2, len(argv), 2):
        name = argv[i].decode("utf-8", "replace").lower()
        opt = OPTIONS_BY_NAME.get(name)
        if opt is None:
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{name}'")
        if not opt.mutable:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                               "- can't set immutable config")
        if name in seen:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                               "- duplicate parameter")
        seen.add(name)
        try:
            config = config.with_option(name, argv[i + 1].decode("utf-8", "replace"))
        except ConfigError as exc:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument "
                               f"'{name}') - {exc.reason}") from None
    if config.maxclients > s.core.config.maxclients:
        _check_maxclients(config.maxclients)
    s.core.set_config(config)
    return OK


def _check_maxclients(maxclients: int) -> None:
    """Redis's updateMaxclients: raise the open file limit for more clients, or refuse."""
    try:
        fit = fit_maxclients(maxclients)
    except FileLimitError:
        fit = None
    if fit is None or fit.maxclients < maxclients:
        if fit is not None:
            logging.getLogger("kvserver").warning("%s", fit.warning)
        raise CommandError("ERR CONFIG SET failed (possibly related to argument 'maxclients') - "
                           "The operating system is not able to handle the specified number "
                           f"of clients, try with {fit.maxclients if fit else 1}")


@command("resetstat", 2, "admin noscript loading stale", parent="config", group="server",
         acl="@slow",
         since="2.0.0", summary="Reset the stats returned by INFO", synopsis="")
def cmd_config_resetstat(s, argv):
    s.core.stats.reset()
    s.core.keyspace.keyspace_hits = s.core.keyspace.keyspace_misses = 0
    s.core.keyspace.expired_keys = 0
    if s.core.persistence is not None:
        s.core.persistence.reset_stats()
    return OK


@command("rewrite", 2, "admin noscript loading stale", parent="config", group="server",
         acl="@slow",
         since="2.8.0", summary="Rewrite the configuration file with the in memory configuration",
         synopsis="")
def cmd_config_rewrite(s, argv):
    path = s.core.config.configfile
    if not path:
        raise CommandError("ERR The server is running without a config file")
    config = s.core.config
    lines = [f"# Rewritten by kvserver CONFIG REWRITE at {time.strftime('%Y-%m-%d %H:%M:%S')}"]
    for name in OPTIONS_BY_NAME:
        if name == "rename-command":
            lines.extend(f'rename-command {old} "{new}"' for old, new in config.rename_commands)
            continue
        value = config.get_text(name)
        lines.append(f'{name} "{value}"' if (" " in value or not value) else f"{name} {value}")
    tmp = path + ".tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise CommandError(f"ERR Rewriting config file: {exc.strerror}") from None
    return OK


# --- COMMAND -------------------------------------------------------------------

def _command_info(cmd: Command) -> list:
    return [
        cmd.name, cmd.arity, [Simple(f) for f in cmd.flags],
        cmd.first_key, cmd.last_key, cmd.step,
        [Simple(a) for a in cmd.acl], [], [],
        [_command_info(sub) for sub in cmd.subcommands.values()],
    ]


_INTEGER_ARGS = {"seconds", "milliseconds", "count", "offset", "start", "end", "increment",
                 "decrement", "index", "index1", "index2", "db", "destination-db",
                 "client-id", "cursor", "numkeys", "timeout"}


def _arg_doc(word: str, token: str | None = None) -> dict:
    name = word
    if name in ("key", "source", "destination", "newkey"):
        kind = "key"
    elif name in _INTEGER_ARGS:
        kind = "integer"
    elif name.startswith("unix-time"):
        kind = "unix-time"
    elif name == "pattern":
        kind = "pattern"
    else:
        kind = "string"
    doc: dict = {"name": name, "type": kind}
    if token is not None:
        doc["token"] = token
    return doc


# Argument flags are simple strings in Redis's COMMAND DOCS reply.
_OPTIONAL = Simple("optional")
_MULTIPLE = Simple("multiple")


def synopsis_to_args(text: str) -> list[dict]:
    """Turn a docs synopsis (``key [NX | XX] [EX seconds]``) into COMMAND DOCS arguments."""
    tokens = re.findall(r"\[|\]|\||\.\.\.|[^\s\[\]|]+", text)
    pos = 0

    def parse_seq(stop: set[str]) -> list[dict]:
        nonlocal pos
        items: list[dict] = []
        while pos < len(tokens) and tokens[pos] not in stop:
            tok = tokens[pos]
            pos += 1
            if tok == "[":
                alts = [parse_seq({"|", "]"})]
                while pos < len(tokens) and tokens[pos] == "|":
                    pos += 1
                    alts.append(parse_seq({"|", "]"}))
                pos += 1  # the ]
                if len(alts) > 1:
                    item = {"name": "condition", "type": "oneof",
                            "arguments": [_group(a) for a in alts]}
                else:
                    item = _group(alts[0])
                # "key [key ...]" and "key value [key value ...]" mean: the
                # previous argument (or block of them), repeated.
                n = len(alts[0])
                if (len(alts) == 1 and n and len(items) >= n
                        and alts[0][-1].get("flags") == [_MULTIPLE]
                        and [a["name"] for a in alts[0]] == [a["name"] for a in items[-n:]]):
                    repeated = _group(items[-n:])
                    del items[-n:]
                    repeated["flags"] = [_MULTIPLE]
                    items.append(repeated)
                    continue
                item.setdefault("flags", [])
                if _OPTIONAL not in item["flags"]:
                    item["flags"] = [_OPTIONAL] + item["flags"]
                items.append(item)
            elif tok == "...":
                if items:
                    items[-1]["flags"] = [_MULTIPLE]
            elif tok.isupper() or tok.replace("-", "").isupper():
                if pos < len(tokens) and tokens[pos] not in ("[", "]", "|", "...") \
                        and not tokens[pos].replace("-", "").isupper():
                    items.append(_arg_doc(tokens[pos], tok))
                    pos += 1
                else:
                    items.append({"name": tok.lower(), "type": "pure-token", "token": tok})
            else:
                items.append(_arg_doc(tok))
        return items

    def _group(seq: list[dict]) -> dict:
        if len(seq) == 1:
            return dict(seq[0])
        return {"name": "block", "type": "block", "arguments": seq}

    # "a | b" outside brackets: one of the alternatives, which is required.
    alts = [parse_seq({"|"})]
    while pos < len(tokens) and tokens[pos] == "|":
        pos += 1
        alts.append(parse_seq({"|"}))
    if len(alts) == 1:
        return alts[0]
    return [{"name": "condition", "type": "oneof", "arguments": [_group(a) for a in alts]}]


def _command_docs(cmd: Command) -> dict:
    doc: dict = {"summary": cmd.summary, "since": cmd.since, "group": cmd.group}
    if cmd.synopsis:
        doc["arguments"] = synopsis_to_args(cmd.synopsis)
    if cmd.subcommands:
        doc["subcommands"] = {sub.name: _command_docs(sub) for sub in cmd.subcommands.values()}
    return doc


@command("command", -1, "loading stale", group="server", since="2.8.13",
         acl="@slow @connection", summary="Get array of Redis command details", synopsis="")
def cmd_command(s, argv):
    if len(argv) == 1:
        return [_command_info(c) for c in TABLE.values()]
    return dispatch_subcommand(s, argv)


@command("count", 2, "loading stale", parent="command", group="server",
         acl="@connection", since="2.8.13",
         summary="Get total number of Redis commands", synopsis="")
def cmd_command_count(s, argv):
    return len(TABLE)


def _find(name: bytes) -> Command | None:
    text = name.decode("utf-8", "replace").lower()
    if "|" in text:
        parent, _, sub = text.partition("|")
        top = TABLE.get(parent)
        return top.subcommands.get(sub) if top else None
    return TABLE.get(text)


@command("info", -2, "loading stale", parent="command", group="server",
         acl="@connection", since="2.8.13",
         summary="Get array of specific Redis command details, or all when no argument is given.",
         synopsis="[command-name [command-name ...]]")
def cmd_command_info(s, argv):
    if len(argv) == 2:
        return [_command_info(c) for c in TABLE.values()]
    out = []
    for name in argv[2:]:
        cmd = _find(name)
        out.append(_command_info(cmd) if cmd else None)
    return out


@command("docs", -2, "loading stale", parent="command", group="server",
         acl="@connection", since="7.0.0",
         summary="Get array of specific Redis command documentation",
         synopsis="[command-name [command-name ...]]")
def cmd_command_docs(s, argv):
    if len(argv) == 2:
        return {c.name: _command_docs(c) for c in TABLE.values()}
    out = {}
    for name in argv[2:]:
        cmd = _find(name)
        if cmd is not None:
            out[cmd.name] = _command_docs(cmd)
    return out


@command("list", -2, "loading stale", parent="command", group="server",
         acl="@connection", since="7.0.0",
         summary="Get an array of Redis command names",
         synopsis="[FILTERBY MODULE module-name | ACLCAT category | PATTERN pattern]")
def cmd_command_list(s, argv):
    names = list(TABLE)
    if len(argv) == 2:
        return names
    if len(argv) != 5 or argv[2].upper() != b"FILTERBY":
        raise CommandError(SYNTAX)
    kind, value = argv[3].upper(), argv[4].decode("utf-8", "replace")
    if kind == b"PATTERN":
        from ..glob import matcher_for
        encoded = [n.encode() for n in names]
        matches = matcher_for(argv[4], encoded, nocase=True)  # Redis: stringmatchlen(..., 1)
        return [n for n, e in zip(names, encoded) if matches(e)]
    if kind == b"ACLCAT":
        cat = "@" + value.lower().lstrip("@")
        return [n for n in names if cat in TABLE[n].acl]
    if kind == b"MODULE":
        return []
    raise CommandError(SYNTAX)


@command("getkeys", -4, "loading stale", parent="command", group="server",
         acl="@connection", since="2.8.13",
         summary="Extract keys given a full Redis command", synopsis="command [arg [arg ...]]")
def cmd_command_getkeys(s, argv):
    cmd = _find(argv[2])
    if cmd is None:
        raise CommandError("ERR Invalid command specified")
    args = argv[2:]
    if not cmd.arity_ok(len(args)):
        raise CommandError("ERR Invalid number of arguments specified for command")
    if cmd.first_key == 0:
        raise CommandError("ERR The command has no key arguments")
    last = cmd.last_key if cmd.last_key >= 0 else len(args) + cmd.last_key
    return [args[i] for i in range(cmd.first_key, last + 1, cmd.step)]


@command("help", 2, "loading stale", parent="command", group="server",
         acl="@connection", since="5.0.0",
         summary="Show helpful text about the different subcommands", synopsis="")
def cmd_command_help(s, argv):
    lines = ["COMMAND <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
             "(no subcommand)", "    Return details about all Redis commands."]
    for name, sub in TABLE["command"].subcommands.items():
        lines.append(f"{name.upper()} {sub.synopsis}".rstrip())
        lines.append(f"    {sub.summary}")
    return [Simple(x) for x in lines]


# --- INFO ----------------------------------------------------------------------

def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G", "T"):
        if abs(n) < 1024 or unit == "T":
            return f"{n:.2f}{unit}" if unit != "B" else f"{int(n)}B"
        n /= 1024
    return str(n)


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _instantaneous_ops(core) -> int:
    """Commands per second over the last samples (taken each expiry cycle), as Redis does."""
    samples = core.ops_samples
    if len(samples) < 2:
        return 0
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return int((n1 - n0) / (t1 - t0)) if t1 > t0 else 0


def info_sections(core) -> dict[str, list[tuple[str, object]]]:
    """Every INFO section as (field, value) pairs, in Redis's order."""
    cfg = core.config
    now = time.time()
    uptime = int(now - core.start_time)
    ks = core.keyspace
    rss = _rss_bytes()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sections: dict[str, list[tuple[str, object]]] = {}
    sections["server"] = [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("kvserver_version", __version__),
        ("redis_mode", "standalone"),
        ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
        ("arch_bits", 64 if sys.maxsize > 2 ** 32 else 32),
        ("multiplexing_api", "asyncio"),
        ("python_version", platform.python_version()),
        ("process_id", core.pid),
        ("tcp_port", core.tcp_port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", cfg.hz),
        ("executable", sys.argv[0] if sys.argv else ""),
        ("config_file", cfg.configfile),
    ]
    sections["clients"] = [
        ("connected_clients", len(core.clients)),
        ("maxclients", cfg.maxclients),
        ("blocked_clients", 0),
    ]
    sections["memory"] = [
        ("used_memory", rss),
        ("used_memory_human", _human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", usage.ru_maxrss * 1024),
        ("used_memory_peak_human", _human(usage.ru_maxrss * 1024)),
        ("maxmemory", cfg.maxmemory),
        ("maxmemory_human", _human(cfg.maxmemory)),
        ("maxmemory_policy", cfg.maxmemory_policy),
    ]
    if core.persistence is not None:
        sections["persistence"] = core.persistence.info()
    else:
        sections["persistence"] = [("loading", int(core.loading))]
    st = core.stats
    sections["stats"] = [
        ("total_connections_received", st.total_connections),
        ("total_commands_processed", st.total_commands),
        ("instantaneous_ops_per_sec", _instantaneous_ops(core)),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("rejected_connections", st.rejected_connections),
        ("expired_keys", ks.expired_keys),
        ("evicted_keys", 0),
        ("keyspace_hits", ks.keyspace_hits),
        ("keyspace_misses", ks.keyspace_misses),
        ("total_error_replies", st.error_replies),
        ("total_protocol_errors", st.protocol_errors),
    ]
    sections["replication"] = [("role", "master"), ("connected_slaves", 0)]
    sections["cpu"] = [
        ("used_cpu_sys", f"{usage.ru_stime:.6f}"),
        ("used_cpu_user", f"{usage.ru_utime:.6f}"),
    ]
    keyspace = []
    now_ms = ks.clock()
    for db in ks.dbs:
        if len(db):
            expires = len(db.expires)
            avg_ttl = 0
            if expires:
                avg_ttl = sum(max(t - now_ms, 0) for t in db.expires.values()) // expires
            keyspace.append((f"db{db.index}", f"keys={len(db)},expires={expires},avg_ttl={avg_ttl}"))
    sections["keyspace"] = keyspace
    return sections


_DEFAULT_SECTIONS = ("server", "clients", "memory", "persistence", "stats", "replication",
                     "cpu", "keyspace")


@command("info", -1, "loading stale", group="server", acl="@slow @dangerous",
         summary="Get information and statistics about the server", synopsis="[section [section ...]]")
def cmd_info(s, argv):
    sections = info_sections(s.core)
    wanted = [a.decode("utf-8", "replace").lower() for a in argv[1:]]
    if not wanted or any(w in ("all", "everything", "default") for w in wanted):
        names = list(_DEFAULT_SECTIONS)
    else:
        names = [n for n in _DEFAULT_SECTIONS if n in wanted]
    out = []
    for name in names:
        if out:
            out.append("")
        out.append(f"# {name.capitalize()}")
        out.extend(f"{k}:{v}" for k, v in sections[name])
    return ("\r\n".join(out) + "\r\n") if out else ""


# --- persistence and lifecycle --------------------------------------------------

def _persistence(s):
    p = s.core.persistence
    if p is None:
        raise CommandError("ERR persistence is not running")
    return p


@command("save", 1, "admin noscript", group="server", acl="@admin @slow @dangerous",
         summary="Synchronously save the dataset to disk", synopsis="")
def cmd_save(s, argv):
    return _persistence(s).request_checkpoint(s, wait=True)


@command("bgsave", -1, "admin noscript", group="server", acl="@admin @slow @dangerous",
         summary="Asynchronously save the dataset to disk", synopsis="[SCHEDULE]")
def cmd_bgsave(s, argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1].upper() != b"SCHEDULE"):
        raise CommandError(SYNTAX)
    _persistence(s).request_checkpoint(s, wait=False)
    return Simple("Background saving started")


@command("bgrewriteaof", 1, "admin noscript", group="server", acl="@admin @slow @dangerous",
         summary="Asynchronously rewrite the append-only file", synopsis="")
def cmd_bgrewriteaof(s, argv):
    _persistence(s).request_checkpoint(s, wait=False)
    return Simple("Background append only file rewriting started")


@command("lastsave", 1, "loading stale fast", group="server", acl="@admin @fast @dangerous",
         summary="Get the UNIX time stamp of the last successful save to disk", synopsis="")
def cmd_lastsave(s, argv):
    return int(_persistence(s).last_checkpoint_time)


@command("shutdown", -1, "admin noscript loading stale", group="server",
         acl="@admin @slow @dangerous",
         summary="Synchronously save the dataset to disk and then shut down the server",
         synopsis="[NOSAVE | SAVE] [NOW] [FORCE] [ABORT]")
def cmd_shutdown(s, argv):
    save = None
    for raw in argv[1:]:
        opt = raw.upper()
        if opt == b"NOSAVE" and save is None:
            save = False
        elif opt == b"SAVE" and save is None:
            save = True
        elif opt in (b"NOW", b"FORCE"):
            pass
        elif opt == b"ABORT":
            raise CommandError("ERR No shutdown in progress.")
        else:
            raise CommandError(SYNTAX)
    if s.core.request_shutdown is None:
        raise CommandError("ERR shutdown is not available")
    s.core.request_shutdown(save)
    s.close_after_reply = True
    return NO_REPLY  # Redis sends nothing: the connection just closes
