"""Connection and server commands: PING, HELLO, SELECT, INFO, CONFIG, COMMAND, CLIENT..."""

from __future__ import annotations

import logging

import os
import re
import tempfile
import time

from .. import REDIS_COMPAT_VERSION
from ..config import OPTIONS_BY_NAME, ConfigError, rewrite
from ..errors import DB_INDEX, SYNTAX, CommandError
from ..fdlimit import FileLimitError, fit_maxclients
from ..numbers import parse_int
from ..protocol import NO_REPLY, OK, PONG, Simple
from . import TABLE, Command, command, dispatch_subcommand
from ..session import REPLY_OFF, REPLY_ON, REPLY_SKIP_NEXT
from .introspection import verbatim
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


@command("info", 2, "noscript loading stale", parent="client", group="connection",
         since="6.2.0", summary="Returns information about the current client connection.",
         synopsis="")
def cmd_client_info(s, argv):
    return verbatim(s, s.client_info(argv) + "\n")


_CLIENT_TYPES = {b"normal": "normal", b"slave": "slave", b"replica": "slave",
                 b"master": "master", b"pubsub": "pubsub"}


@command("list", -2, "admin noscript loading stale", parent="client", group="connection",
         since="2.4.0", summary="Get the list of client connections",
         synopsis="[TYPE NORMAL | MASTER | REPLICA | PUBSUB] [ID client-id [client-id ...]]")
def cmd_client_list(s, argv):
    clients = s.core.clients
    if len(argv) == 4 and argv[2].lower() == b"type":
        kind = _CLIENT_TYPES.get(argv[3].lower())
        if kind is None:
            raise CommandError(f"ERR Unknown client type '{argv[3].decode('utf-8', 'replace')}'")
        chosen = [c for c in clients.values() if c.client_type() == kind]
    elif len(argv) > 3 and argv[2].lower() == b"id":
        # In the order asked, repeats included, unknown ids skipped (as Redis).
        ids = []
        for raw in argv[3:]:
            value = parse_int(raw)
            if value is None:
                raise CommandError("ERR Invalid client ID")
            ids.append(value)
        chosen = [clients[i] for i in ids if i in clients]
    elif len(argv) != 2:
        raise CommandError(SYNTAX)
    else:
        chosen = list(clients.values())
    return verbatim(s, "".join(c.client_info(argv if c is s else None) + "\n" for c in chosen))


def _subcommand_syntax(argv) -> CommandError:
    """Redis's addReplySubcommandSyntaxError, for a subcommand given too many arguments."""
    sub = argv[1].decode("utf-8", "replace")[:128]
    return CommandError(f"ERR unknown subcommand or wrong number of arguments for '{sub}'. "
                        f"Try {argv[0].decode('utf-8', 'replace').upper()} HELP.")


def _on_off(arg: bytes) -> bool:
    word = arg.lower()
    if word not in (b"on", b"off"):
        raise CommandError(SYNTAX)
    return word == b"on"


@command("reply", 3, "noscript loading stale", parent="client", group="connection",
         since="3.2.0", summary="Instruct the server whether to reply to commands",
         synopsis="ON | OFF | SKIP")
def cmd_client_reply(s, argv):
    # The connection drops the replies (Connection._reply_suppressed); OFF and
    # SKIP answer nothing themselves, ON answers +OK.
    mode = argv[2].lower()
    if mode == b"on":
        s.reply_mode = REPLY_ON
        return OK
    if mode == b"off":
        s.reply_mode = REPLY_OFF
    elif mode == b"skip":
        if s.reply_mode != REPLY_OFF:
            s.reply_mode = REPLY_SKIP_NEXT
    else:
        raise CommandError(SYNTAX)
    return NO_REPLY


@command("no-evict", 3, "admin noscript loading stale", parent="client", group="connection",
         since="7.0.0", summary="Set client eviction mode for the current connection",
         synopsis="ON | OFF")
def cmd_client_no_evict(s, argv):
    # kvserver never evicts clients (no maxmemory-clients): the flag is shown (e), nothing more.
    s.no_evict = _on_off(argv[2])
    return OK


#: Redis's LLONG_MAX for timeouts in milliseconds.
_LLONG_MAX = (1 << 63) - 1


@command("pause", -3, "admin noscript loading stale", parent="client", group="connection",
         since="2.9.50", summary="Stop processing commands from clients for some time",
         synopsis="timeout [WRITE | ALL]")
def cmd_client_pause(s, argv):
    if len(argv) > 4:
        raise _subcommand_syntax(argv)
    write_only = False
    if len(argv) == 4:
        mode = argv[3].lower()
        if mode not in (b"write", b"all"):
            raise CommandError("ERR CLIENT PAUSE mode must be WRITE or ALL")
        write_only = mode == b"write"
    millis = parse_int(argv[2])
    if millis is None:
        raise CommandError("ERR timeout is not an integer or out of range")
    if millis < 0:
        raise CommandError("ERR timeout is negative")
    if millis > _LLONG_MAX - int(time.time() * 1000):
        raise CommandError("ERR timeout is out of range")
    import asyncio
    s.core.pause_clients(time.monotonic() + millis / 1000, write_only,
                         asyncio.get_running_loop())
    return OK


@command("unpause", 2, "admin noscript loading stale", parent="client", group="connection",
         since="6.2.0", summary="Resume processing of clients that were paused", synopsis="")
def cmd_client_unpause(s, argv):
    s.core.unpause_clients()
    return OK


#: CLIENT TRACKING ON is refused: kvserver has no invalidation machinery
#: (no key tracking table, no push messages, no __redis__:invalidate channel).
TRACKING_UNSUPPORTED = "ERR CLIENT TRACKING is not supported by this server (no client-side caching)"


@command("tracking", -3, "noscript loading stale", parent="client", group="connection",
         since="6.0.0", summary="Enable or disable server assisted client side caching support",
         synopsis="ON | OFF [REDIRECT client-id] [PREFIX prefix [PREFIX prefix ...]] "
                  "[BCAST] [OPTIN] [OPTOUT] [NOLOOP]")
def cmd_client_tracking(s, argv):
    # The options are checked as Redis checks them, so a bad request gets
    # Redis's error; a valid ON is then refused, OFF is what we are.
    redirect = None
    bcast = optin = optout = False
    prefixes = 0
    j = 3
    while j < len(argv):
        opt = argv[j].lower()
        more = j + 1 < len(argv)
        if opt == b"redirect" and more:
            j += 1
            if redirect is not None:
                raise CommandError("ERR A client can only redirect to a single other client")
            redirect = parse_int(argv[j])
            if redirect is None:
                raise CommandError("ERR value is not an integer or out of range")
            if redirect not in s.core.clients:
                raise CommandError("ERR The client ID you want redirect to does not exist")
        elif opt == b"bcast":
            bcast = True
        elif opt == b"optin":
            optin = True
        elif opt == b"optout":
            optout = True
        elif opt == b"noloop":
            pass
        elif opt == b"prefix" and more:
            j += 1
            prefixes += 1
        else:
            raise CommandError(SYNTAX)
        j += 1
    mode = argv[2].lower()
    if mode == b"on":
        if prefixes and not bcast:
            raise CommandError("ERR PREFIX option requires BCAST mode to be enabled")
        if bcast and (optin or optout):
            raise CommandError("ERR OPTIN and OPTOUT are not compatible with BCAST")
        if optin and optout:
            raise CommandError("ERR You can't specify both OPTIN mode and OPTOUT mode")
        raise CommandError(TRACKING_UNSUPPORTED)
    if mode != b"off":
        raise CommandError(SYNTAX)
    return OK


@command("caching", 3, "noscript loading stale", parent="client", group="connection",
         since="6.0.0", summary="Instruct the server about tracking or not keys in the next request",
         synopsis="YES | NO")
def cmd_client_caching(s, argv):
    # Tracking is never on (CLIENT TRACKING ON is refused): Redis's answer then.
    raise CommandError("ERR CLIENT CACHING can be called only when the client is in tracking "
                       "mode with OPTIN or OPTOUT mode enabled")


@command("getredir", 2, "noscript loading stale", parent="client", group="connection",
         since="6.0.0", summary="Get tracking notifications redirection client ID if any",
         synopsis="")
def cmd_client_getredir(s, argv):
    return -1  # tracking is off


@command("trackinginfo", 2, "noscript loading stale", parent="client", group="connection",
         since="6.2.0", summary="Return information about server assisted client side caching "
         "for the current connection", synopsis="")
def cmd_client_trackinginfo(s, argv):
    return {"flags": {b"off"}, "redirect": -1, "prefixes": []}


@command("unblock", -3, "admin noscript loading stale", parent="client", group="connection",
         since="5.0.0", summary="Unblock a client blocked in a blocking command from a "
         "different connection", synopsis="client-id [TIMEOUT | ERROR]")
def cmd_client_unblock(s, argv):
    if len(argv) > 4:
        raise _subcommand_syntax(argv)
    if len(argv) == 4 and argv[3].lower() not in (b"timeout", b"error"):
        raise CommandError("ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR")
    if parse_int(argv[2]) is None:
        raise CommandError("ERR value is not an integer or out of range")
    return 0  # kvserver has no blocking commands: nobody to unblock


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
    filters = []
    skipme = True
    for i in range(2, len(argv), 2):
        if i + 1 >= len(argv):  # an option without its value (checked in order, as Redis)
            raise CommandError(SYNTAX)
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
            kind = _CLIENT_TYPES.get(value.lower())
            if kind is None:
                raise CommandError(f"ERR Unknown client type '{text}'")
            filters.append(lambda c, k=kind: c.client_type() == k)
        elif opt == b"USER":
            if text != "default":
                raise CommandError(f"ERR No such user '{text}'")
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
    return [Simple(x) for x in _CLIENT_HELP]


#: Redis 7.0.15's CLIENT HELP, line for line.
_CLIENT_HELP = (
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CACHING (YES|NO)",
    "    Enable/disable tracking of the keys for next command in OPTIN/OPTOUT modes.",
    "GETREDIR",
    "    Return the client ID we are redirecting to when tracking is enabled.",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "INFO",
    "    Return information about the current client connection.",
    "KILL <ip:port>",
    "    Kill connection made from <ip:port>.",
    "KILL <option> <value> [<option> <value> [...]]",
    "    Kill connections. Options are:",
    "    * ADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made from the specified address",
    "    * LADDR (<ip:port>|<unixsocket>:0)",
    "      Kill connections made to specified local address",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Kill connections by type.",
    "    * USER <username>",
    "      Kill connections authenticated by <username>.",
    "    * SKIPME (YES|NO)",
    "      Skip killing current connection (default: yes).",
    "LIST [options ...]",
    "    Return information about client connections. Options:",
    "    * TYPE (NORMAL|MASTER|REPLICA|PUBSUB)",
    "      Return clients of specified type.",
    "UNPAUSE",
    "    Stop the current client pause, resuming traffic.",
    "PAUSE <timeout> [WRITE|ALL]",
    "    Suspend all, or just write, clients for <timeout> milliseconds.",
    "REPLY (ON|OFF|SKIP)",
    "    Control the replies sent to the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "UNBLOCK <clientid> [TIMEOUT|ERROR]",
    "    Unblock the specified blocked client.",
    "TRACKING (ON|OFF) [REDIRECT <id>] [BCAST] [PREFIX <prefix> [...]]",
    "         [OPTIN] [OPTOUT] [NOLOOP]",
    "    Control server assisted client side caching.",
    "TRACKINGINFO",
    "    Report tracking status for the current connection.",
    "NO-EVICT (ON|OFF)",
    "    Protect current client connection from eviction.",
    "HELP",
    "    Prints this help.",
)


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
        if opt.protected and opt.mutable:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                               "- can't set protected config")
        if not opt.mutable:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                               "- can't set immutable config")
        if name in seen:
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument '{name}') "
                               "- duplicate parameter")
        seen.add(name)
        try:
            value = argv[i + 1].decode("utf-8")
        except UnicodeDecodeError:
            # Decoding with replacement would store a different value than
            # was sent (a password nobody could AUTH with): refuse instead.
            raise CommandError(f"ERR CONFIG SET failed (possibly related to argument "
                               f"'{name}') - argument must be valid UTF-8") from None
        try:
            config = config.with_option(name, value)
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
    # What Redis's resetServerStats, resetCommandTableStats and
    # resetErrorTableStats clear: INFO stats counters, commandstats,
    # latencystats, errorstats, the instantaneous samples. Not the slow log
    # (SLOWLOG RESET), not uptime, memory peaks or the keyspace.
    core = s.core
    core.reset_stats()
    ks = core.keyspace
    ks.keyspace_hits = ks.keyspace_misses = 0
    ks.expired_keys = 0
    if core.persistence is not None:
        core.persistence.reset_stats()
    return OK


@command("rewrite", 2, "admin noscript loading stale", parent="config", group="server",
         acl="@slow",
         since="2.8.0", summary="Rewrite the configuration file with the in memory configuration",
         synopsis="")
def cmd_config_rewrite(s, argv):
    """Rewrite the config file in place, as Redis does (config.rewrite).

    String values are written quoted, so no value can add a directive; the
    new file is synced, renamed over the old one, and the directory synced.
    """
    path = s.core.config.configfile
    if not path:
        raise CommandError("ERR The server is running without a config file")
    try:
        try:
            with open(path, encoding="utf-8", errors="surrogateescape") as f:
                old = f.read()
        except FileNotFoundError:
            old = ""
        write_config_file(path, rewrite(s.core.config, old))
    except OSError as exc:
        raise CommandError(f"ERR Rewriting config file: {exc.strerror}") from None
    return OK


def write_config_file(path: str, text: str) -> None:
    """Replace ``path`` atomically: a synced temporary file renamed over it."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=os.path.basename(path) + ".", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
            # Keep the old file's mode (0600 for a file holding requirepass
            # stays 0600); a new file gets mkstemp's 0600, then 0644.
            try:
                mode = os.stat(path).st_mode & 0o7777
            except FileNotFoundError:
                mode = 0o644
            os.fchmod(f.fileno(), mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


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
    # "name:type" in a synopsis gives the type where the name does not tell
    # it (BITOP's destkey is a key, SETBIT's value an integer).
    name, _, given = word.partition(":")
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
    doc: dict = {"name": name, "type": given or kind}
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
