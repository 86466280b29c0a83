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
#: Seconds between TCP keepalive probes on an idle client: Redis's default,
#: so a peer that vanished (cable pulled, NAT dropped) is found in minutes.
DEFAULT_TCP_KEEPALIVE = 300
#: Redis's client-output-buffer-limit default: (class, hard, soft, soft seconds).
#: Normal clients are unlimited here because reading pauses once a client's
#: unsent replies pass a bound (connection.py), so memory stays bounded anyway.
DEFAULT_OUTPUT_BUFFER_LIMITS = (("normal", 0, 0, 0),
                                ("replica", 256 * 1024 * 1024, 64 * 1024 * 1024, 60),
                                ("pubsub", 32 * 1024 * 1024, 8 * 1024 * 1024, 60))

TLS_AUTH_CLIENTS = ("yes", "no", "optional")
#: Only noeviction: this is a durable store, keys are never dropped to make room.
MAXMEMORY_POLICIES = ("noeviction",)
LOGLEVELS = ("debug", "verbose", "notice", "warning")


class ConfigError(ValueError):
    """A bad flag, value or config file line; the message says which.

    ``reason`` is the bare complaint about the value, worded as Redis words
    it (CONFIG SET replies with it).
    """

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message


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
        raise ValueError("argument must be a memory value")
    return int(number) * mult


def _int(lo: int, hi: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError("argument couldn't be parsed into an integer") from None
        if not lo <= value <= hi:
            raise ValueError(f"argument must be between {lo} and {hi} inclusive")
        return value
    return parse


def _int_clamped(lo: int, hi: int, floor: int, ceiling: int) -> Callable[[str], int]:
    """An integer Redis accepts in [lo, hi] and then clamps to [floor, ceiling] (hz)."""
    parse_int = _int(lo, hi)

    def parse(text: str) -> int:
        return min(max(parse_int(text), floor), ceiling)
    return parse


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        value = text.lower()
        if value not in choices:
            raise ValueError(f"argument(s) must be one of the following: {', '.join(choices)}")
        return value
    return parse


def _yesno(text: str) -> bool:
    value = text.lower()
    if value not in ("yes", "no"):
        raise ValueError("argument must be 'yes' or 'no'")
    return value == "yes"


def _str(text: str) -> str:
    return text


def _rename(text: str) -> tuple[str, str]:
    """``rename-command NAME NEWNAME``; an empty NEWNAME disables the command."""
    words = text.split()
    if not 1 <= len(words) <= 2:
        raise ValueError("expected a command name and a new name (\"\" disables it)")
    return (words[0].lower(), words[1] if len(words) == 2 else "")


def _output_limits(text: str) -> tuple[tuple[str, int, int, int], ...]:
    """``<class> <hard> <soft> <soft seconds>`` repeated, as in redis.conf."""
    words = text.split()
    if not words or len(words) % 4:
        raise ValueError("expected <class> <hard limit> <soft limit> <soft seconds>, repeated")
    out = []
    for i in range(0, len(words), 4):
        cls = words[i].lower()
        cls = "replica" if cls == "slave" else cls
        if cls not in ("normal", "replica", "pubsub"):
            raise ValueError(f"unknown client class {words[i]!r}")
        try:
            secs = int(words[i + 3])
        except ValueError:
            raise ValueError(f"soft seconds must be an integer: {words[i + 3]!r}") from None
        if secs < 0:
            raise ValueError("soft seconds must not be negative")
        out.append((cls, parse_memory(words[i + 1]), parse_memory(words[i + 2]), secs))
    return tuple(out)


def _merge_limits(old: tuple, new: tuple) -> tuple:
    # A line names only the classes it changes, as in Redis.
    by_class = {c[0]: c for c in old}
    by_class.update((c[0], c) for c in new)
    return tuple(by_class[c] for c in ("normal", "replica", "pubsub") if c in by_class)


def _percentiles(text: str) -> tuple[float, ...]:
    """``latency-tracking-info-percentiles``: space-separated numbers in [0, 100] (may be empty)."""
    out = []
    for word in text.split():
        try:
            value = float(word)
        except ValueError:
            raise ValueError("Invalid latency-tracking-info-percentiles parameters") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("Invalid latency-tracking-info-percentiles parameters")
        if not 0.0 <= value <= 100.0:
            raise ValueError("latency-tracking-info-percentiles parameters should sit "
                             "between [0.0,100.0]")
        out.append(value)
    return tuple(out)


def format_percentile(value: float) -> str:
    """A percentile as Redis prints it: ``%f`` with trailing zeros trimmed (99.9, 50)."""
    return f"{value:f}".rstrip("0").rstrip(".")


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
    #: (current value, parsed value) -> new value, for options that add to
    #: what is there (rename-command lines, output buffer classes).
    merge: Callable[[Any, Any], Any] | None = None
    #: Not shown by CONFIG GET (as Redis hides rename-command).
    hidden: bool = False


OPTIONS: tuple[Option, ...] = (
    Option("port", "port", _int(0, 65535), False, "TCP port (0 picks a free one)"),
    Option("bind", "bind", _str, False, "addresses to listen on, space separated"),
    Option("unixsocket", "unixsocket", _str, False, "also listen on this Unix socket path"),
    Option("unixsocketperm", "unixsocketperm", _octal, False, "permissions of the Unix socket"),
    Option("dir", "dir", _str, False, "data directory (WAL segments, checkpoints, lock)"),
    Option("databases", "databases", _int(1, 1024), False, "number of databases (SELECT 0..N-1)"),
    Option("appendfsync", "appendfsync", _choice("everysec", "always", "no"), True,
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
    Option("timeout", "timeout", _int(0, 2 ** 31 - 1), True, "close clients idle this many seconds (0 = never)"),
    Option("hz", "hz", _int_clamped(0, 2 ** 31 - 1, 1, 500), True,
           "active expiry cycles per second (kept within 1..500, as Redis does)"),
    Option("proto-max-bulk-len", "proto_max_bulk_len", parse_memory, True,
           "largest bulk string a client may send"),
    Option("client-query-buffer-limit", "client_query_buffer_limit", parse_memory, True,
           "most unparsed bytes held for one client"),
    Option("requirepass", "requirepass", _str, True, "password clients must AUTH with (empty = none)"),
    Option("protected-mode", "protected_mode", _yesno, True,
           "with no password, accept clients from loopback addresses only"),
    Option("tcp-keepalive", "tcp_keepalive", _int(0, 10 ** 6), True,
           "seconds between TCP keepalive probes (0 = off)"),
    Option("maxmemory", "maxmemory", parse_memory, True,
           "refuse commands that add data once the process RSS passes this (0 = no limit)"),
    Option("maxmemory-policy", "maxmemory_policy", _choice(*MAXMEMORY_POLICIES), True,
           "what to do at maxmemory: noeviction (refuse writes with -OOM)"),
    Option("client-output-buffer-limit", "client_output_buffer_limit", _output_limits, True,
           "per class: hard limit, soft limit, soft seconds (0 = none)", merge=_merge_limits),
    Option("rename-command", "rename_commands", _rename, False,
           "rename a command, or disable it with \"\" (repeatable)",
           merge=lambda old, new: old + (new,), hidden=True),
    Option("tls-port", "tls_port", _int(0, 65535), False, "TLS port (0 = no TLS listener)"),
    Option("tls-cert-file", "tls_cert_file", _str, False, "server certificate (PEM)"),
    Option("tls-key-file", "tls_key_file", _str, False, "server private key (PEM)"),
    Option("tls-ca-cert-file", "tls_ca_cert_file", _str, False,
           "CA certificates that sign client certificates (PEM)"),
    Option("tls-auth-clients", "tls_auth_clients", _choice(*TLS_AUTH_CLIENTS), False,
           "require a client certificate: yes, no, optional"),
    Option("slowlog-log-slower-than", "slowlog_log_slower_than", _int(-1, 10 ** 12), True,
           "log commands slower than this many microseconds (-1 = off, 0 = all)"),
    Option("slowlog-max-len", "slowlog_max_len", _int(0, 10 ** 7), True,
           "most entries the slow log keeps"),
    Option("latency-tracking", "latency_tracking", _yesno, True,
           "show per-command latency percentiles in INFO latencystats"),
    Option("latency-tracking-info-percentiles", "latency_tracking_info_percentiles",
           _percentiles, True, "the percentiles INFO latencystats shows"),
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
    protected_mode: bool = True
    tcp_keepalive: int = DEFAULT_TCP_KEEPALIVE
    maxmemory: int = 0
    maxmemory_policy: str = "noeviction"
    client_output_buffer_limit: tuple = DEFAULT_OUTPUT_BUFFER_LIMITS
    rename_commands: tuple = ()
    tls_port: int = 0
    tls_cert_file: str = ""
    tls_key_file: str = ""
    tls_ca_cert_file: str = ""
    tls_auth_clients: str = "yes"
    slowlog_log_slower_than: int = 10_000
    slowlog_max_len: int = 128
    latency_tracking: bool = True
    latency_tracking_info_percentiles: tuple = (50.0, 99.0, 99.9)
    configfile: str = ""

    def with_option(self, name: str, value: str) -> "Config":
        """Return a copy with one option set from its text form. Raises ConfigError."""
        opt = OPTIONS_BY_NAME.get(name.lower())
        if opt is None:
            raise ConfigError(f"unknown option '{name}'")
        try:
            parsed = opt.parse(value)
        except ValueError as exc:
            raise ConfigError(f"bad value for '{opt.name}' ({value!r}): {exc}",
                              reason=str(exc)) from None
        if opt.merge is not None:
            parsed = opt.merge(getattr(self, opt.attr), parsed)
        return dataclasses.replace(self, **{opt.attr: parsed})

    @property
    def normal_output_limits(self) -> tuple[int, int, int]:
        """(hard bytes, soft bytes, soft seconds) for normal clients; 0 = no limit."""
        for cls, hard, soft, secs in self.client_output_buffer_limit:
            if cls == "normal":
                return hard, soft, secs
        return 0, 0, 0

    def get_text(self, name: str) -> str:
        """The value of one option as CONFIG GET shows it."""
        opt = OPTIONS_BY_NAME[name]
        value = getattr(self, opt.attr)
        if isinstance(value, bool):
            return "yes" if value else "no"
        if opt.name == "unixsocketperm":
            return format(value, "o")
        if opt.name == "client-output-buffer-limit":
            return " ".join(f"{c} {h} {s} {t}" for c, h, s, t in value)
        if opt.name == "rename-command":
            return " ".join(f"{old} {new}" for old, new in value)
        if opt.name == "latency-tracking-info-percentiles":
            return " ".join(format_percentile(p) for p in value)
        return str(value)

    def matching(self, pattern: str) -> dict[str, str]:
        """Every option (and compat value) whose name matches a CONFIG GET glob."""
        pattern = pattern.lower()
        found = {}
        for opt in OPTIONS:
            if not opt.hidden and fnmatch.fnmatchcase(opt.name, pattern):
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
