"""Configuration: one frozen object, built from defaults, a config file and flags.

Names are redis-server's where Redis has the setting (``port``, ``bind``,
``dir``, ``appendfsync``...), so a ``redis.conf``-style file reads the same.
Precedence, lowest first: the defaults below, the config file, the
command-line flags (``--name value``), exactly as redis-server does it.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import os
from dataclasses import dataclass
from typing import Any, Callable

DEFAULT_PORT = 6379
DEFAULT_BIND = "127.0.0.1"
DEFAULT_DATABASES = 16
#: Checkpoint once the WAL has grown this much since the last one: big enough
#: that checkpoints are rare under load, small enough that replay stays short.
DEFAULT_CHECKPOINT_WAL_SIZE = 64 * 1024 * 1024
#: Redis's maxclients default.
DEFAULT_MAXCLIENTS = 10000
#: Active expiry cycles per second, Redis's ``hz``.
DEFAULT_HZ = 10

FSYNC_POLICIES = ("always", "everysec", "no")
LOGLEVELS = ("debug", "verbose", "notice", "warning")


class ConfigError(ValueError):
    """A bad flag, value or config file line; the message says which."""


def parse_memory(text: str) -> int:
    """Parse a redis.conf memory size: ``1000``, ``1k`` (1000), ``1kb`` (1024), ``64mb``, ``1gb``."""
    t = text.strip().lower()
    units = (("gb", 1024 ** 3), ("mb", 1024 ** 2), ("kb", 1024),
             ("g", 1000 ** 3), ("m", 1000 ** 2), ("k", 1000), ("b", 1))
    for suffix, mult in units:
        if t.endswith(suffix):
            number = t[: -len(suffix)]
            break
    else:
        number, mult = t, 1
    if not number.isdigit():
        raise ValueError(f"argument must be a memory value: {text!r}")
    return int(number) * mult


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"argument couldn't be parsed into an integer: {text!r}") from None
        if not lo <= value <= hi:
            raise ValueError(f"argument must be between {lo} and {hi} inclusive")
        return value
    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.lower()
        if value not in choices:
            raise ValueError(f"argument must be one of: {', '.join(choices)}")
        return value
    return parse


def _yesno(text: str) -> bool:
    value = text.lower()
    if value not in ("yes", "no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return value == "yes"


def _str(text: str) -> str:
    return text


def _octal(text: str) -> int:
    try:
        return int(text, 8)
    except ValueError:
        raise ValueError(f"argument must be an octal permission like 700: {text!r}") from None


@dataclass(frozen=True)
class Option:
    name: str          # the redis.conf / --flag name
    attr: str          # the Config attribute
    parse: Callable[[str], Any]
    mutable: bool      # may CONFIG SET change it at run time?
    help: str


OPTIONS: tuple[Option, ...] = (
    Option("port", "port", _int(0, 65535), False, "TCP port (0 picks a free one)"),
    Option("bind", "bind", _str, False, "addresses to listen on, space separated"),
    Option("unixsocket", "unixsocket", _str, False, "also listen on this Unix socket path"),
    Option("unixsocketperm", "unixsocketperm", _octal, False, "permissions of the Unix socket"),
    Option("dir", "dir", _str, False, "data directory (WAL segments, checkpoints, lock)"),
    Option("databases", "databases", _int(1, 1024), False, "number of databases (SELECT 0..N-1)"),
    Option("appendfsync", "appendfsync", _choice(*FSYNC_POLICIES), True,
           "when the WAL is synced: always (before every reply), everysec, no"),
    Option("checkpoint-wal-size", "checkpoint_wal_size", parse_memory, True,
           "checkpoint once the WAL has grown by this much (0 = never by size)"),
    Option("checkpoint-interval", "checkpoint_interval", _int(0, 10 ** 9), True,
           "also checkpoint every N seconds if anything changed (0 = off)"),
    Option("checkpoint-on-shutdown", "checkpoint_on_shutdown", _yesno, True,
           "write a checkpoint on a graceful shutdown"),
    Option("daemonize", "daemonize", _yesno, False, "run in the background"),
    Option("pidfile", "pidfile", _str, False, "write the process id here"),
    Option("logfile", "logfile", _str, False, "log to this file (empty = standard output)"),
    Option("loglevel", "loglevel", _choice(*LOGLEVELS), True, "debug, verbose, notice or warning"),
    Option("maxclients", "maxclients", _int(1, 10 ** 6), True, "most clients connected at once"),
    Option("timeout", "timeout", _int(0, 10 ** 9), True, "close clients idle this many seconds (0 = never)"),
    Option("hz", "hz", _int(1, 500), True, "active expiry cycles per second"),
    Option("proto-max-bulk-len", "proto_max_bulk_len", parse_memory, True,
           "largest bulk string a client may send"),
    Option("client-query-buffer-limit", "client_query_buffer_limit", parse_memory, True,
           "most unparsed bytes held for one client"),
    Option("requirepass", "requirepass", _str, True, "password clients must AUTH with (empty = none)"),
    Option("slowlog-log-slower-than", "slowlog_log_slower_than", _int(-1, 10 ** 12), True,
           "log commands slower than this many microseconds (-1 = off, 0 = all)"),
    Option("slowlog-max-len", "slowlog_max_len", _int(0, 10 ** 7), True,
           "most entries the slow log keeps"),
)
OPTIONS_BY_NAME = {o.name: o for o in OPTIONS}

#: Settings Redis tools ask for that we do not have; CONFIG GET answers these
#: fixed values so redis-benchmark and friends show something true.
COMPAT_VALUES = {"save": "", "appendonly": "yes"}


@dataclass(frozen=True)
class Config:
    port: int = DEFAULT_PORT
    bind: str = DEFAULT_BIND
    unixsocket: str = ""
    unixsocketperm: int = 0o700
    dir: str = "./data"
    databases: int = DEFAULT_DATABASES
    appendfsync: str = "always"
    checkpoint_wal_size: int = DEFAULT_CHECKPOINT_WAL_SIZE
    checkpoint_interval: int = 0
    checkpoint_on_shutdown: bool = True
    daemonize: bool = False
    pidfile: str = ""
    logfile: str = ""
    loglevel: str = "notice"
    maxclients: int = DEFAULT_MAXCLIENTS
    timeout: int = 0
    hz: int = DEFAULT_HZ
    proto_max_bulk_len: int = 512 * 1024 * 1024
    client_query_buffer_limit: int = 1024 * 1024 * 1024
    requirepass: str = ""
    slowlog_log_slower_than: int = 10_000
    slowlog_max_len: int = 128
    configfile: str = ""

    def with_option(self, name: str, value: str) -> "Config":
        """Return a copy with one option set from its text form. Raises ConfigError."""
        opt = OPTIONS_BY_NAME.get(name.lower())
        if opt is None:
            raise ConfigError(f"unknown option '{name}'")
        try:
            parsed = opt.parse(value)
        except ValueError as exc:
            raise ConfigError(f"bad value for '{opt.name}': {exc}") from None
        return dataclasses.replace(self, **{opt.attr: parsed})

    def get_text(self, name: str) -> str:
        """The value of one option as CONFIG GET shows it."""
        opt = OPTIONS_BY_NAME[name]
        value = getattr(self, opt.attr)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if opt.name == "unixsocketperm":
            return format(value, "o")
        return str(value)

    def matching(self, pattern: str) -> dict[str, str]:
        """Every option (and compat value) whose name matches a CONFIG GET glob."""
        pattern = pattern.lower()
        found = {}
        for opt in OPTIONS:
            if fnmatch.fnmatchcase(opt.name, pattern):
                found[opt.name] = self.get_text(opt.name)
        for name, value in COMPAT_VALUES.items():
            if fnmatch.fnmatchcase(name, pattern):
                found[name] = value
        return found


def parse_config_file(text: str, config: Config, source: str = "config file") -> Config:
    """Apply redis.conf-style lines (``name value...``, ``#`` comments) to ``config``."""
    from .protocol import split_args

    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        words = split_args(line.encode())
        if not words:
            raise ConfigError(f"{source}, line {lineno}: unbalanced quotes")
        name = words[0].decode().lower()
        value = " ".join(w.decode() for w in words[1:])
        try:
            config = config.with_option(name, value)
        except ConfigError as exc:
            raise ConfigError(f"{source}, line {lineno}: {exc}") from None
    return config


def from_args(args: list[str], base: Config | None = None) -> Config:
    """Build a Config from redis-server style arguments: ``[configfile] --name value ...``.

    Raises ConfigError naming the bad flag or value.
    """
    config = base or Config()
    rest = list(args)
    if rest and not rest[0].startswith("--"):
        path = rest.pop(0)
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as exc:
            raise ConfigError(f"cannot read config file '{path}': {exc.strerror}") from None
        config = parse_config_file(text, config, source=path)
        config = dataclasses.replace(config, configfile=os.path.abspath(path))
    i = 0
    while i < len(rest):
        flag = rest[i]
        if not flag.startswith("--") or len(flag) < 3:
            raise ConfigError(f"unexpected argument '{flag}' (options look like --port 6379)")
        name = flag[2:].lower()
        if name not in OPTIONS_BY_NAME:
            raise ConfigError(f"unknown option '{flag}'")
        values = []
        i += 1
        while i < len(rest) and not rest[i].startswith("--"):
            values.append(rest[i])
            i += 1
        if not values:
            raise ConfigError(f"option '{flag}' needs a value")
        config = config.with_option(name, " ".join(values))
    return config
