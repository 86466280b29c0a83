"""Administration: databases as a whole (DBSIZE, FLUSH*, SWAPDB), CONFIG, persistence, SHUTDOWN."""

from __future__ import annotations

import logging
import os
import tempfile

from ..config import OPTIONS_BY_NAME, ConfigError, rewrite
from ..errors import DB_INDEX, SYNTAX, CommandError
from ..fdlimit import FileLimitError, fit_maxclients
from ..protocol import NO_REPLY, OK, Simple
from . import command, dispatch_subcommand
from .keys import int32_arg


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
        given = argv[i].decode("utf-8", "replace")
        name = given.lower()
        opt = OPTIONS_BY_NAME.get(name)
        if opt is None:  # named as the client spelled it, as Redis does
            raise CommandError(f"ERR Unknown option or number of arguments for CONFIG SET - '{given}'")
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

