"""Connection commands: PING, ECHO, QUIT, SELECT, HELLO, CLIENT and its subcommands.

What a client asks about or changes in its own connection (AUTH, with the
password checks, is in auth.py).
"""

from __future__ import annotations

import re
import time

from .. import REDIS_COMPAT_VERSION
from ..client import REPLY_OFF, REPLY_ON, REPLY_SKIP_NEXT
from ..errors import SYNTAX, CommandError
from ..numbers import parse_int
from ..protocol import NO_REPLY, OK, PONG, Simple
from . import command, dispatch_subcommand
from .introspection import verbatim
from .keys import db_arg


@command("ping", -1, "fast", group="connection", acl="@connection @fast",
         summary="Ping the server", synopsis="[message]")
def cmd_ping(s, argv):
    if len(argv) > 2:
        raise CommandError("ERR wrong number of arguments for 'ping' command")
    if s.resp == 2 and s.subs is not None and s.in_pubsub():
        # A RESP2 subscriber reads arrays only: Redis answers in the message form.
        return [b"pong", b"" if len(argv) == 1 else argv[1]]
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
    client_id = parse_int(argv[2])
    if client_id is None:
        raise CommandError("ERR value is not an integer or out of range")
    # Only a client blocked on keys (a blocking pop): one held by CLIENT PAUSE
    # or waiting for SAVE is not, as in Redis (SAVE does not block there).
    blocking = s.core.blocking
    target = s.core.clients.get(client_id)
    if blocking is None or target is None:
        return 0
    return int(blocking.unblock(target, len(argv) == 4 and argv[3].lower() == b"error"))


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

