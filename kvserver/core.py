"""The server's state, free of sockets: config, keyspace, clients, counters.

Commands reach everything through ``session.core``. The WAL writer plugs in
as :attr:`Core.log_sink`; the network server plugs in shutdown and client
bookkeeping. Recovery builds a Core with logging off and replays into it.
"""

from __future__ import annotations

import os
import time
from collections import deque
from typing import Any, Callable

from .config import Config
from .keyspace import Keyspace
from .notify import EXPIRED, KEY_MISS, NEW, effective_flags, flags_from_string
from .pubsub import PubSub

LogSink = Callable[[int, list], None]
UnitSink = Callable[[list], None]


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


#: Latency histogram buckets: bucket ``(ns ** 4).bit_length()`` holds the
#: durations of that quarter-octave (each bucket is 2**(1/4), about 19%,
#: wider than the last), so 257 buckets cover 0 ns to 2**64 ns in bounded
#: memory. Redis keeps an HDR histogram per command (2 significant digits);
#: this is coarser, but costs one multiply-and-count per command.
LATENCY_BUCKETS = 257
#: Distinct error prefixes INFO errorstats keeps (Redis's ERRORSTATS_LIMIT):
#: past it, new prefixes are counted in total_error_replies only, and the
#: table is not grown by clients inventing error codes.
ERRORSTATS_LIMIT = 128


def latency_bucket(ns: int) -> int:
    """The histogram bucket of a duration in nanoseconds (see :data:`LATENCY_BUCKETS`)."""
    x = ns * ns
    return (x * x).bit_length()


def bucket_top_ns(bucket: int) -> int:
    """The largest duration (ns) that falls in ``bucket``: what a percentile reports.

    HDR histograms report a bucket's highest equivalent value too, which is
    why Redis prints figures like ``p50=9.023``.
    """
    if bucket <= 0:
        return 0
    limit = 1 << bucket          # bucket b holds n with n**4 < 2**b <= ... (n**4).bit_length() == b
    n = int((limit - 1) ** 0.25)
    while (n + 1) ** 4 < limit:
        n += 1
    while n > 0 and n ** 4 >= limit:
        n -= 1
    return n


class CommandStat:
    """What INFO commandstats and latencystats show for one command (Redis's per-command counters).

    ``hist`` counts every call by duration, so ``calls`` is its sum: the
    hot path pays for one histogram update and one addition per command,
    not a separate call counter.
    """

    __slots__ = ("ns", "hist", "rejected", "failed")

    def __init__(self) -> None:
        self.ns = 0
        self.hist = [0] * LATENCY_BUCKETS
        self.rejected = 0
        self.failed = 0

    @property
    def calls(self) -> int:
        return sum(self.hist)

    def record(self, ns: int) -> None:
        self.ns += ns
        self.hist[latency_bucket(ns)] += 1

    def percentile_ns(self, percentile: float) -> int:
        """The duration at ``percentile`` (0-100), as hdr_value_at_percentile computes it."""
        hist = self.hist
        total = sum(hist)
        wanted = max(int(percentile / 100 * total + 0.5), 1)
        seen = 0
        for bucket, count in enumerate(hist):
            seen += count
            if seen >= wanted:
                return bucket_top_ns(bucket)
        return 0


class Stats:
    """Counters shown by INFO stats; CONFIG RESETSTAT zeroes them."""

    __slots__ = ("total_connections", "total_commands", "rejected_connections",
                 "net_input_bytes", "net_output_bytes", "error_replies", "protocol_errors",
                 "started", "errors", "reads_processed", "writes_processed")

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
        self.reads_processed = 0    # reads handed to data_received
        self.writes_processed = 0   # transport.write calls (one per chunk of replies)
        self.started = time.monotonic()
        #: Error prefix (``ERR``, ``WRONGTYPE``...) -> count: INFO errorstats.
        self.errors: dict[str, int] = {}

    def count_error(self, message: str) -> None:
        """One error reply sent: total_error_replies and its prefix's errorstat.

        The prefix is the error's first word, looked for in its first 32
        characters as Redis does ("ERR" when there is no space there).
        """
        self.error_replies += 1
        space = message.find(" ", 0, 32)
        prefix = message[:space] if space > 0 else "ERR"
        errors = self.errors
        if prefix in errors:
            errors[prefix] += 1
        elif len(errors) < ERRORSTATS_LIMIT:
            errors[prefix] = 1


class Core:
    """Everything a command may touch besides its own session."""

    def __init__(self, config: Config, clock: Callable[[], int] | None = None) -> None:
        self.config = config
        kwargs = {"clock": clock} if clock is not None else {}
        self.keyspace = Keyspace(config.databases, on_expire=self._log_expired, **kwargs)
        self.stats = Stats()
        #: Client id -> kvserver.client.Client of every connected client.
        self.clients: dict[int, Any] = {}
        self.start_time = time.time()
        self.start_monotonic = time.monotonic()
        self.pid = os.getpid()
        self.tcp_port = config.port
        #: Where mutations go, in apply order: the WAL writer's append, or
        #: None while replaying the WAL (the records are already on disk).
        self.log_sink: LogSink | None = None
        #: Where a unit of several effects goes as one record (the writer's
        #: append_unit); set with log_sink. Without it (a test recorder) the
        #: effects reach log_sink one by one.
        self.unit_sink: UnitSink | None = None
        #: Execution units (begin_unit/end_unit): how deep, and what the
        #: open unit has logged so far, as (db, argv).
        self.unit_depth = 0
        self._unit: list[tuple[int, list]] = []
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
        #: Full command name (``get``, ``client|info``) -> CommandStat, made on
        #: first use; kept by the real name under rename-command, as in Redis.
        self.command_stats: dict[str, CommandStat] = {}
        #: A read-only replica refuses write commands (-READONLY): the
        #: dispatcher's hook for replication; always False until it lands.
        self.read_only_replica = False
        #: CLIENT PAUSE: (end, write_only) while clients are paused, else None.
        #: ``end`` is time.monotonic(). Read by every request off the hot path.
        self.client_pause: tuple[float, bool] | None = None
        #: Connections waiting for the pause to end (they run again then).
        self.paused_clients: set = set()
        self._pause_timer: Any = None
        #: (monotonic time, net input bytes, net output bytes) samples, taken
        #: with the memory sample each cycle: INFO's instantaneous_*_kbps.
        self.net_samples: deque = deque(maxlen=16)
        #: Checkpoints done before the last CONFIG RESETSTAT (rdb_saves counts from there).
        self.checkpoints_at_reset = 0
        #: Random 40-hex-digit ids, new each start, as Redis's run_id and master_replid.
        self.run_id = os.urandom(20).hex()
        self.replid = os.urandom(20).hex()
        #: Process RSS when the core was made: INFO's used_memory_startup.
        self.startup_memory = process_rss()
        #: A weak reference to the dispatcher (kvserver.dispatch sets it): EXEC
        #: runs its queue through it.
        self.dispatcher: Any = None
        #: WATCH's index (kvserver.commands.transactions.Watches), made on first WATCH.
        self.watches: Any = None
        #: notify-keyspace-events as kvserver.notify bits; 0 = no notifications
        #: (also while no channel kind, K or E, is chosen: nothing would be sent).
        self.notify_flags = effective_flags(flags_from_string(config.notify_keyspace_events) or 0)
        #: The channel registry and delivery (kvserver.pubsub.PubSub): PUBLISH,
        #: SUBSCRIBE and keyspace events go through it.
        self.pubsub = PubSub(self)
        #: Blocked clients (kvserver.blocking.Blocking), made on the first blocking
        #: command; the dispatcher serves its ready keys after each command.
        self.blocking: Any = None
        #: Delivers one keyspace event (kind, event, db_index, key) once
        #: notify_flags selects its kind: the pub/sub registry's.
        self.keyspace_event: Callable[[int, bytes, int, bytes], None] = self.pubsub.keyspace_event
        #: Messages published while an execution unit is open: client ->
        #: [bytes, its hard output limit, frames] (None once it was dropped for
        #: passing that limit, PubSub._hold): they leave when the
        #: unit's record is handed to the writer (end_unit), so they wait for
        #: that record's sync like any reply made after it (the durability rule
        #: in kvserver.pubsub).
        self.unit_pushes: dict = {}
        self._arm_new_events()

    def command_stat(self, name: str) -> CommandStat:
        stat = self.command_stats.get(name)
        if stat is None:
            stat = self.command_stats[name] = CommandStat()
        return stat

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT: what Redis's resetServerStats and resetCommandTableStats clear."""
        self.stats.reset()
        # The CommandStat objects stay (hot tables hold them): zero them in place.
        for stat in self.command_stats.values():
            stat.__init__()
        self.ops_samples.clear()
        self.net_samples.clear()
        p = self.persistence
        self.checkpoints_at_reset = p.checkpoints_done if p is not None else 0

    def pause_clients(self, end: float, write_only: bool, loop: Any) -> None:
        """CLIENT PAUSE: merge with a running pause as Redis does (longest end, wider mode)."""
        current = self.client_pause
        if current is not None:
            end = max(end, current[0])
            write_only = write_only and current[1]
        self.client_pause = (end, write_only)
        self.keyspace.expiry_paused = True   # as Redis: nothing expires while paused
        if self._pause_timer is not None:
            self._pause_timer.cancel()
        self._pause_timer = loop.call_at(loop.time() + max(end - time.monotonic(), 0),
                                         self.unpause_clients)

    def unpause_clients(self) -> None:
        """End the pause (CLIENT UNPAUSE or its timeout); paused clients run their requests."""
        self.client_pause = None
        self.keyspace.expiry_paused = False
        if self._pause_timer is not None:
            self._pause_timer.cancel()
            self._pause_timer = None
        waiting, self.paused_clients = self.paused_clients, set()
        for conn in waiting:
            conn.resume_after_pause()  # a kvserver.client.Client

    def begin_unit(self) -> None:
        """Open an execution unit (nestable): until the outermost end_unit, every
        effect logged is collected, then written as ONE record with ONE LSN."""
        self.unit_depth += 1

    def end_unit(self) -> None:
        """Close a unit; the outermost hands its effects to the writer (nothing
        if none, a plain record if one, a multi-effect record if several).

        Call it in a ``finally``: effects already applied in memory must be
        logged even when the command failed half-way.
        """
        depth = self.unit_depth - 1
        if depth:
            if depth < 0:
                raise RuntimeError("end_unit without begin_unit")
            self.unit_depth = depth
            return
        self.unit_depth = 0
        effects = self._unit
        if effects:
            sink = self.log_sink
            if len(effects) == 1:  # the common case: no new list, one call
                db_index, argv = effects.pop()
                if sink is not None:
                    sink(db_index, argv)
            else:
                self._unit = []
                if sink is None:
                    pass
                elif self.unit_sink is not None:
                    self.unit_sink(effects)
                else:
                    for db_index, argv in effects:
                        sink(db_index, argv)
        # (else: a read, or a write that changed nothing)
        if self.unit_pushes:
            # After the record: the messages wait for its LSN (see unit_pushes).
            self.pubsub.deliver_unit_pushes()

    def log(self, db_index: int, argv: list) -> None:
        """Log one effect: into the open unit, or (none open) as a unit of its own."""
        sink = self.log_sink
        if sink is not None:
            if self.unit_depth:
                self._unit.append((db_index, argv))
            else:
                sink(db_index, argv)

    def _log_expired(self, db_index: int, key: bytes) -> None:
        """A key expired (lazily or by the active cycle): log its DEL, publish ``expired``."""
        self.log(db_index, [b"DEL", key])
        if self.notify_flags & EXPIRED:
            self.keyspace_event(EXPIRED, b"expired", db_index, key)

    def _arm_new_events(self) -> None:
        """The ``new`` event (flag n) comes from the keyspace's write hook and
        ``keymiss`` (m) from its counted reads, each armed only while selected."""
        wanted = bool(self.notify_flags & NEW)
        if wanted != (self.keyspace._hooks.on_new is not None):
            self.keyspace.set_new_listener(self._key_created if wanted else None)
        self.keyspace.on_miss = self._key_missed if self.notify_flags & KEY_MISS else None

    def _key_missed(self, db_index: int, key: bytes) -> None:
        self.notify(KEY_MISS, b"keymiss", db_index, key)

    def _key_created(self, db_index: int, key: bytes) -> None:
        self.notify(NEW, b"new", db_index, key)

    def notify(self, kind: int, event: bytes, db_index: int, key: bytes) -> None:
        """A keyspace event (see kvserver.notify): one attribute test when none is wanted."""
        if self.notify_flags & kind:
            self.keyspace_event(kind, event, db_index, key)

    def set_config(self, config: Config) -> None:
        changed_limit = config.maxmemory != self.config.maxmemory
        self.config = config
        self.notify_flags = effective_flags(flags_from_string(config.notify_keyspace_events) or 0)
        self._arm_new_events()
        if changed_limit:
            self.sample_memory()

    def sample_memory(self) -> None:
        """Refresh used_memory and the maxmemory verdict (periodically, and on CONFIG SET)."""
        st = self.stats
        self.net_samples.append((time.monotonic(), st.net_input_bytes, st.net_output_bytes))
        limit = self.config.maxmemory
        if limit:
            self.used_memory = process_rss()
            self.over_maxmemory = self.used_memory > limit
        else:
            self.over_maxmemory = False
