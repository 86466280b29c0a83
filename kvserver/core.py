"""The server's state, free of sockets: config, keyspace, clients, counters.

Commands reach everything through ``session.core``. The WAL writer plugs in
as :attr:`Core.log_sink`; the network server plugs in shutdown and client
bookkeeping. Recovery builds a Core with logging off and replays into it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from .config import Config
from .keyspace import Keyspace

if TYPE_CHECKING:
    from .session import Session

LogSink = Callable[[int, list], None]


def process_rss() -> int:
    """Resident set size of this process in bytes (0 if /proc is unavailable).

    One small read of ``/proc/self/statm``: cheap, but a system call, so it is
    sampled by the server's periodic cycle, never per command.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except (OSError, ValueError, IndexError):
        return 0


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Stats:
    """Counters shown by INFO stats; CONFIG RESETSTAT zeroes them."""

    __slots__ = ("total_connections", "total_commands", "rejected_connections",
                 "net_input_bytes", "net_output_bytes", "error_replies", "protocol_errors",
                 "started")

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total_connections = 0
        self.total_commands = 0
        self.rejected_connections = 0
        self.net_input_bytes = 0
        self.net_output_bytes = 0
        self.error_replies = 0
        self.protocol_errors = 0
        self.started = time.monotonic()


class Core:
    """Everything a command may touch besides its own session."""

    def __init__(self, config: Config, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        kwargs = {"clock": clock} if clock is not None else {}
        self.keyspace = Keyspace(config.databases, on_expire=self._log_expired, **kwargs)
        self.stats = Stats()
        self.clients: dict[int, "Session"] = {}
        self.start_time = time.time()
        self.start_monotonic = time.monotonic()
        self.pid = os.getpid()
        self.tcp_port = config.port
        #: Where mutations go, in apply order: the WAL writer's append, or
        #: None while replaying the WAL (the records are already on disk).
        self.log_sink: LogSink | None = None
        #: The durability engine (kvserver.writer.Writer) once started; gives
        #: INFO persistence, SAVE/BGSAVE and LASTSAVE.
        self.persistence: Any = None
        #: Called by SHUTDOWN with (save: bool | None); set by the server.
        self.request_shutdown: Callable[..., None] | None = None
        #: Replies while True are -LOADING (set during recovery).
        self.loading = False
        self.loading_progress: dict[str, Any] = {}
        #: SLOWLOG entries, newest first (kvserver.commands.introspection).
        self.slowlog: deque = deque()
        self.slowlog_next_id = 0
        #: Sessions in MONITOR mode: they see every command others run.
        self.monitors: set = set()
        #: (monotonic time, total commands) samples for instantaneous_ops_per_sec.
        self.ops_samples: deque = deque(maxlen=16)
        #: Process RSS at the last sample (the server's cycle, CONFIG SET).
        self.used_memory = 0
        #: True while maxmemory is set and used_memory is above it: commands
        #: flagged ``denyoom`` get -OOM (noeviction). One attribute check per command.
        self.over_maxmemory = False

    def log(self, db_index: int, argv: list) -> None:
        sink = self.log_sink
        if sink is not None:
            sink(db_index, argv)

    def _log_expired(self, db_index: int, key: bytes) -> None:
        self.log(db_index, [b"DEL", key])

    def set_config(self, config: Config) -> None:
        changed_limit = config.maxmemory != self.config.maxmemory
        self.config = config
        if changed_limit:
            self.sample_memory()

    def sample_memory(self) -> None:
        """Refresh used_memory and the maxmemory verdict (periodically, and on CONFIG SET)."""
        limit = self.config.maxmemory
        if limit:
            self.used_memory = process_rss()
            self.over_maxmemory = self.used_memory > limit
        else:
            self.over_maxmemory = False
