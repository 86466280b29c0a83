"""Watching the server work: MONITOR, SLOWLOG, INFO, COMMAND and TIME, as in Redis.

The connection calls :func:`after_command` once a command has run; it
records slow commands and feeds monitors. A monitor line is a reply like any
other to the monitoring client, so it waits for durability too: nobody sees
a value that a crash could still take back, not even through MONITOR.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import time

from ..config import format_percentile
from ..errors import SYNTAX, CommandError
from ..numbers import parse_int
from ..protocol import OK, Raw, Simple
from ..client import MONITOR
from . import TABLE, Command, command, dispatch_subcommand

#: Arguments and bytes per argument kept in a slow log entry (Redis's
#: SLOWLOG_ENTRY_MAX_ARGC / SLOWLOG_ENTRY_MAX_STRING), so one huge command
#: cannot make the slow log huge.
SLOWLOG_MAX_ARGC = 32
SLOWLOG_MAX_STRING = 128
#: Commands whose arguments never reach the slow log or monitors.
_SECRET = frozenset({"auth", "hello"})


def repr_arg(arg: bytes) -> str:
    """Quote an argument as Redis's sdscatrepr does (``"a\\r\\nb"``, ``"\\x00"``)."""
    out = ['"']
    for b in arg:
        c = chr(b)
        if c in '\\"':
            out.append("\\" + c)
        elif c == "\n":
            out.append("\\n")
        elif c == "\r":
            out.append("\\r")
        elif c == "\t":
            out.append("\\t")
        elif c == "\a":
            out.append("\\a")
        elif c == "\b":
            out.append("\\b")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\x{b:02x}")
    out.append('"')
    return "".join(out)


def after_command(session, cmd, argv: list[bytes], micros: int) -> None:
    """Record a slow command and show it to monitors (called by the connection)."""
    core = session.core
    threshold = core.config.slowlog_log_slower_than
    if 0 <= threshold <= micros and "skip_slowlog" not in cmd.flags:
        # (skip_slowlog: EXEC; the commands it ran are logged each.)
        _slowlog_add(session, cmd, argv, micros)
    if core.monitors and "skip_monitor" not in cmd.flags:
        # (skip_monitor: EVAL; it shows itself before the commands it runs.)
        if cmd.name.split("|")[0] in _SECRET:
            argv = argv[:1] + [b"(redacted)"] if len(argv) > 1 else argv
        data = monitor_line(session, argv)
        for monitor in list(core.monitors):
            if monitor is not session:
                monitor.send_monitor(data)


def monitor_line(session, argv: list[bytes]) -> bytes:
    """One MONITOR line: ``+<time> [<db> <addr>] "arg" ...`` (a script's commands: ``lua``)."""
    line = "+%.6f [%d %s] %s\r\n" % (time.time(), session.db_index, session.addr,
                                     " ".join(repr_arg(a) for a in argv))
    return line.encode("utf-8", "replace")


def _slowlog_add(session, cmd, argv: list[bytes], micros: int) -> None:
    core = session.core
    limit = core.config.slowlog_max_len
    if limit <= 0:
        return
    if cmd.name.split("|")[0] in _SECRET:
        argv = argv[:1]
    args = []
    for i, arg in enumerate(argv):
        if i == SLOWLOG_MAX_ARGC - 1 and len(argv) > SLOWLOG_MAX_ARGC:
            args.append(b"... (%d more arguments)" % (len(argv) - SLOWLOG_MAX_ARGC + 1))
            break
        if len(arg) > SLOWLOG_MAX_STRING:
            arg = arg[:SLOWLOG_MAX_STRING] + b"... (%d more bytes)" % (len(arg) - SLOWLOG_MAX_STRING)
        args.append(arg)
    entry = [core.slowlog_next_id, int(time.time()), micros, args, session.addr, session.name]
    core.slowlog_next_id += 1
    core.slowlog.appendleft(entry)
    while len(core.slowlog) > limit:
        core.slowlog.pop()


@command("monitor", 1, "admin noscript loading stale", group="server", since="1.0.0",
         acl="@admin @slow @dangerous",
         summary="Listen for all requests received by the server in real time", synopsis="")
def cmd_monitor(s, argv):
    if s.link is None:
        raise CommandError("ERR MONITOR needs a network connection")
    s.core.monitors.add(s)
    s.mode = MONITOR
    return OK


@command("slowlog", -2, "", group="server", since="2.2.12", acl="@slow",
         summary="A container for slow log commands", synopsis="")
def cmd_slowlog(s, argv):
    return dispatch_subcommand(s, argv)


@command("get", -2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Get the slow log's entries", synopsis="[count]")
def cmd_slowlog_get(s, argv):
    count = 10
    if len(argv) == 3:
        count = parse_int(argv[2])
        if count is None or count < -1:
            raise CommandError("ERR count should be greater than or equal to -1")
    elif len(argv) > 3:
        raise CommandError(SYNTAX)
    entries = list(s.core.slowlog)
    if count != -1:
        entries = entries[:count]
    return [[e[0], e[1], e[2], e[3], e[4], e[5]] for e in entries]


@command("len", 2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Get the slow log's length", synopsis="")
def cmd_slowlog_len(s, argv):
    return len(s.core.slowlog)


@command("reset", 2, "admin loading stale", parent="slowlog", group="server", acl="@admin @slow @dangerous", since="2.2.12",
         summary="Clear all entries from the slow log", synopsis="")
def cmd_slowlog_reset(s, argv):
    s.core.slowlog.clear()
    return OK


@command("help", 2, "loading stale", parent="slowlog", group="server", acl="@slow", since="6.2.0",
         summary="Show helpful text about the different subcommands", synopsis="")
def cmd_slowlog_help(s, argv):
    return [Simple(x) for x in (
        "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
        "GET [<count>]",
        "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
        "    Entries are made of:",
        "    id, timestamp, time in microseconds, arguments array, client IP and port,",
        "    client name",
        "LEN",
        "    Return the length of the slowlog.",
        "RESET",
        "    Reset the slowlog.",
        "HELP",
        "    Print this help.")]



# --- INFO ----------------------------------------------------------------------
#
# Every section and field Redis 7.0.15 prints, in its order, with kvserver's
# own fields after Redis's in the section they belong to. A field whose
# machinery kvserver lacks (replication, Lua, forks, eviction, defrag, pub/sub,
# tracking) shows what Redis shows when that machinery is idle: 0, -1,
# "ok", "no-failover". Persistence maps onto the checkpoint and the WAL:
#
#   rdb_* (a snapshot)        -> the checkpoint (a snapshot written in slices)
#   aof_* (a log + rewrite)   -> the WAL; a "rewrite" is a checkpoint, which
#                                lets the WAL before it be dropped, as Redis
#                                7's multi-part AOF rewrite replaces the base
#   aof_current_size          -> checkpoint size + WAL size (base + increments)
#   aof_base_size             -> the last checkpoint's size
#   rdb_changes_since_last_save -> WAL records applied since the checkpoint
#   current_cow_* , *_cow_size -> 0: kvserver never forks
#
# Memory: Python has no allocator statistics as jemalloc's, so used_memory
# and the allocator_* fields are the process RSS (the ratios are then 1.00),
# used_memory_startup is the RSS when the server started.

def _human(n: float) -> str:
    """Redis's bytesToHuman: 512B, 1.50K, 2.00M, ..."""
    if n < 1024:
        return f"{int(n)}B"
    for i, unit in enumerate("KMGTP", 1):
        if n < 1024 ** (i + 1):
            return f"{n / 1024 ** i:.2f}{unit}"
    return f"{int(n)}B"


def _instantaneous_ops(core) -> int:
    """Commands per second over the last samples (taken each server cycle), as Redis does."""
    samples = core.ops_samples
    if len(samples) < 2:
        return 0
    (t0, n0), (t1, n1) = samples[0], samples[-1]
    return int((n1 - n0) / (t1 - t0)) if t1 > t0 else 0


def _instantaneous_kbps(core) -> tuple[float, float]:
    samples = core.net_samples
    if len(samples) < 2:
        return 0.0, 0.0
    (t0, i0, o0), (t1, i1, o1) = samples[0], samples[-1]
    if t1 <= t0:
        return 0.0, 0.0
    return max(i1 - i0, 0) / (t1 - t0) / 1024, max(o1 - o0, 0) / (t1 - t0) / 1024


def _multiplexing_api() -> str:
    """What the event loop waits with: epoll, kqueue, poll or select, as Redis names them."""
    try:
        import asyncio
        selector = getattr(asyncio.get_running_loop(), "_selector", None)
    except RuntimeError:
        selector = None
    name = type(selector).__name__.lower() if selector is not None else ""
    for api in ("epoll", "kqueue", "devpoll", "poll", "select"):
        if name.startswith(api):
            return api
    return "asyncio"


_UNSAFE_INFO = str.maketrans("#:\n\r", "____")


def _fmt(value) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _server_section(core) -> list:
    import platform
    import sys
    from .. import REDIS_COMPAT_VERSION, __version__
    cfg = core.config
    now = time.time()
    uptime = int(now - core.start_time)
    uname = platform.uname()
    compiler = re.search(r"(\d+)\.(\d+)\.(\d+)", platform.python_compiler())
    return [
        ("redis_version", REDIS_COMPAT_VERSION),
        ("redis_git_sha1", "00000000"),
        ("redis_git_dirty", 0),
        ("redis_build_id", hashlib.sha1(f"kvserver {__version__}".encode()).hexdigest()[:15]),
        ("redis_mode", "standalone"),
        ("os", f"{uname.system} {uname.release} {uname.machine}"),
        ("arch_bits", 64 if sys.maxsize > 2 ** 32 else 32),
        ("monotonic_clock", "POSIX clock_gettime"),   # time.monotonic: CLOCK_MONOTONIC
        ("multiplexing_api", _multiplexing_api()),
        ("atomicvar_api", "python-gil"),               # one thread runs commands
        ("gcc_version", ".".join(compiler.groups()) if compiler else "0.0.0"),
        ("process_id", core.pid),
        ("process_supervised", "no"),
        ("run_id", core.run_id),
        ("tcp_port", core.tcp_port),
        ("server_time_usec", int(now * 1_000_000)),
        ("uptime_in_seconds", uptime),
        ("uptime_in_days", uptime // 86400),
        ("hz", cfg.hz),
        ("configured_hz", cfg.hz),
        ("lru_clock", int(now) & ((1 << 24) - 1)),    # Redis's 24-bit seconds clock
        ("executable", os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""),
        ("config_file", cfg.configfile),
        ("io_threads_active", 0),
        # kvserver's own
        ("kvserver_version", __version__),
        ("python_version", platform.python_version()),
    ]


def _clients_section(core) -> list:
    clients = list(core.clients.values())
    max_in = max_out = blocked = 0
    for c in clients:
        qbuf, _obl, _oll, omem, _events = c.buffer_info()
        max_in = max(max_in, qbuf)
        max_out = max(max_out, omem)
        blocked += c.is_blocked()
    return [
        ("connected_clients", len(clients)),   # monitors included, as in Redis
        ("cluster_connections", 0),
        ("maxclients", core.config.maxclients),
        ("client_recent_max_input_buffer", max_in),
        ("client_recent_max_output_buffer", max_out),
        ("blocked_clients", blocked),
        ("tracking_clients", 0),
        ("clients_in_timeout_table",
         core.blocking.with_timeout() if core.blocking is not None else 0),
    ]


def _memory_section(core) -> list:
    from ..core import process_rss
    cfg = core.config
    # The EVAL script cache: its bodies plus each entry's SHA and bookkeeping.
    engine = getattr(core, "scripting", None)
    cached = engine.scripts.values() if engine is not None else ()
    scripts_count = len(cached)
    scripts_bytes = sum(len(s.body) + 40 + 64 for s in cached)
    rss = process_rss() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, rss)
    startup = min(core.startup_memory, rss)
    dataset = rss - startup
    try:
        system = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        system = 0
    normal = slaves = 0
    for c in core.clients.values():
        qbuf, _obl, _oll, omem, _events = c.buffer_info()
        if c.mode == MONITOR:
            slaves += omem
        else:
            normal += qbuf + omem
    pending = getattr(core.persistence, "_pending", None) or ()
    return [
        ("used_memory", rss),
        ("used_memory_human", _human(rss)),
        ("used_memory_rss", rss),
        ("used_memory_rss_human", _human(rss)),
        ("used_memory_peak", peak),
        ("used_memory_peak_human", _human(peak)),
        ("used_memory_peak_perc", f"{rss * 100 / peak if peak else 0:.2f}%"),
        ("used_memory_overhead", startup + normal + slaves),
        ("used_memory_startup", startup),
        ("used_memory_dataset", dataset),
        ("used_memory_dataset_perc", f"{dataset * 100 / (rss - startup) if rss > startup else 0:.2f}%"),
        ("allocator_allocated", rss),
        ("allocator_active", rss),
        ("allocator_resident", rss),
        ("total_system_memory", system),
        ("total_system_memory_human", _human(system)),
        ("used_memory_lua", 0),
        ("used_memory_vm_eval", 0),
        ("used_memory_lua_human", "0B"),
        ("used_memory_scripts_eval", scripts_bytes),
        ("number_of_cached_scripts", scripts_count),
        ("number_of_functions", 0),
        ("number_of_libraries", 0),
        ("used_memory_vm_functions", 0),
        ("used_memory_vm_total", 0),
        ("used_memory_vm_total_human", "0B"),
        ("used_memory_functions", 0),
        ("used_memory_scripts", scripts_bytes),
        ("used_memory_scripts_human", _human(scripts_bytes)),
        ("maxmemory", cfg.maxmemory),
        ("maxmemory_human", _human(cfg.maxmemory)),
        ("maxmemory_policy", cfg.maxmemory_policy),
        ("allocator_frag_ratio", 1.0),
        ("allocator_frag_bytes", 0),
        ("allocator_rss_ratio", 1.0),
        ("allocator_rss_bytes", 0),
        ("rss_overhead_ratio", 1.0),
        ("rss_overhead_bytes", 0),
        ("mem_fragmentation_ratio", 1.0),
        ("mem_fragmentation_bytes", 0),
        ("mem_not_counted_for_evict", 0),
        ("mem_replication_backlog", 0),
        ("mem_total_replication_buffers", 0),
        ("mem_clients_slaves", slaves),
        ("mem_clients_normal", normal),
        ("mem_cluster_links", 0),
        ("mem_aof_buffer", sum(len(r) for r in pending)),   # WAL records not yet written
        ("mem_allocator", "pymalloc+libc"),
        ("active_defrag_running", 0),
        ("lazyfree_pending_objects", 0),
        ("lazyfreed_objects", 0),
    ]


def _persistence_section(core) -> list:
    p = core.persistence
    loading = int(core.loading)
    if p is None:
        # Recovery is running (or there is no writer): nothing saved yet.
        out = [("loading", loading), ("async_loading", 0), ("current_cow_peak", 0),
               ("current_cow_size", 0), ("current_cow_size_age", 0),
               ("current_fork_perc", 0.0), ("current_save_keys_processed", 0),
               ("current_save_keys_total", 0), ("rdb_changes_since_last_save", 0),
               ("rdb_bgsave_in_progress", 0), ("rdb_last_save_time", int(core.start_time)),
               ("rdb_last_bgsave_status", "ok"), ("rdb_last_bgsave_time_sec", -1),
               ("rdb_current_bgsave_time_sec", -1), ("rdb_saves", 0), ("rdb_last_cow_size", 0),
               ("rdb_last_load_keys_expired", 0), ("rdb_last_load_keys_loaded", 0),
               ("aof_enabled", 1), ("aof_rewrite_in_progress", 0), ("aof_rewrite_scheduled", 0),
               ("aof_last_rewrite_time_sec", -1), ("aof_current_rewrite_time_sec", -1),
               ("aof_last_bgrewrite_status", "ok"), ("aof_rewrites", 0),
               ("aof_rewrites_consecutive_failures", 0), ("aof_last_write_status", "ok"),
               ("aof_last_cow_size", 0), ("module_fork_in_progress", 0),
               ("module_fork_last_cow_size", 0), ("aof_current_size", 0), ("aof_base_size", 0),
               ("aof_pending_rewrite", 0), ("aof_buffer_length", 0),
               ("aof_pending_bio_fsync", 0), ("aof_delayed_fsync", 0)]
        extra: list = []
    else:
        running = int(p._checkpoint_task is not None)
        saves = p.checkpoints_done - core.checkpoints_at_reset
        last_secs = int(p.last_checkpoint_duration) if p.checkpoints_done else -1
        status = "ok" if p.last_checkpoint_status == "ok" else "err"
        pending = sum(len(r) for r in getattr(p, "_pending", ()))
        out = [
            ("loading", loading),
            ("async_loading", 0),
            ("current_cow_peak", 0),
            ("current_cow_size", 0),
            ("current_cow_size_age", 0),
            ("current_fork_perc", 0.0),
            ("current_save_keys_processed", 0),
            ("current_save_keys_total", 0),
            ("rdb_changes_since_last_save", p.applied_lsn - p.checkpoint_lsn),
            ("rdb_bgsave_in_progress", running),
            ("rdb_last_save_time", int(p.last_checkpoint_time)),
            ("rdb_last_bgsave_status", status),
            ("rdb_last_bgsave_time_sec", last_secs),
            ("rdb_current_bgsave_time_sec", -1),
            ("rdb_saves", saves),
            ("rdb_last_cow_size", 0),
            ("rdb_last_load_keys_expired", 0),
            ("rdb_last_load_keys_loaded", 0),
            ("aof_enabled", 1),
            ("aof_rewrite_in_progress", running),
            ("aof_rewrite_scheduled", int(bool(getattr(p, "_checkpoint_requested", False)))),
            ("aof_last_rewrite_time_sec", last_secs),
            ("aof_current_rewrite_time_sec", -1),
            ("aof_last_bgrewrite_status", status),
            ("aof_rewrites", saves),
            ("aof_rewrites_consecutive_failures", 0 if status == "ok" else 1),
            ("aof_last_write_status", "ok" if p.failed is None else "err"),
            ("aof_last_cow_size", 0),
            ("module_fork_in_progress", 0),
            ("module_fork_last_cow_size", 0),
            ("aof_current_size", p.last_checkpoint_size + p.wal_size()),
            ("aof_base_size", p.last_checkpoint_size),
            ("aof_pending_rewrite", 0),
            ("aof_buffer_length", pending),
            ("aof_pending_bio_fsync", 0),
            ("aof_delayed_fsync", 0),
        ]
        extra = p.info()
    if core.loading:
        progress = core.loading_progress
        loaded = int(progress.get("bytes", 0))
        percent = float(progress.get("percent", 0.0))
        total = int(loaded * 100 / percent) if percent > 0 else 0
        elapsed = max(int(time.time() - core.start_time), 0)
        eta = elapsed * max(total - loaded, 1) // (loaded + 1) if elapsed else 1
        out += [("loading_start_time", int(core.start_time)), ("loading_total_bytes", total),
                ("loading_rdb_used_mem", 0), ("loading_loaded_bytes", loaded),
                ("loading_loaded_perc", percent), ("loading_eta_seconds", eta)]
    seen = {k for k, _ in out}
    return out + [(k, v) for k, v in extra if k not in seen]


def _stats_section(core) -> list:
    st = core.stats
    ks = core.keyspace
    kin, kout = _instantaneous_kbps(core)
    return [
        ("total_connections_received", st.total_connections),
        ("total_commands_processed", st.total_commands),
        ("instantaneous_ops_per_sec", _instantaneous_ops(core)),
        ("total_net_input_bytes", st.net_input_bytes),
        ("total_net_output_bytes", st.net_output_bytes),
        ("total_net_repl_input_bytes", 0),
        ("total_net_repl_output_bytes", 0),
        ("instantaneous_input_kbps", kin),
        ("instantaneous_output_kbps", kout),
        ("instantaneous_input_repl_kbps", 0.0),
        ("instantaneous_output_repl_kbps", 0.0),
        ("rejected_connections", st.rejected_connections),
        ("sync_full", 0),
        ("sync_partial_ok", 0),
        ("sync_partial_err", 0),
        ("expired_keys", ks.expired_keys),
        ("expired_stale_perc", 0.0),
        ("expired_time_cap_reached_count", 0),
        ("expire_cycle_cpu_milliseconds", 0),
        ("evicted_keys", 0),
        ("evicted_clients", 0),
        ("total_eviction_exceeded_time", 0),
        ("current_eviction_exceeded_time", 0),
        ("keyspace_hits", ks.keyspace_hits),
        ("keyspace_misses", ks.keyspace_misses),
        ("pubsub_channels", len(core.pubsub.channels)),
        ("pubsub_patterns", len(core.pubsub.patterns)),
        ("pubsubshard_channels", len(core.pubsub.shard)),
        ("latest_fork_usec", 0),
        ("total_forks", 0),
        ("migrate_cached_sockets", 0),
        ("slave_expires_tracked_keys", 0),
        ("active_defrag_hits", 0),
        ("active_defrag_misses", 0),
        ("active_defrag_key_hits", 0),
        ("active_defrag_key_misses", 0),
        ("total_active_defrag_time", 0),
        ("current_active_defrag_time", 0),
        ("tracking_total_keys", 0),
        ("tracking_total_items", 0),
        ("tracking_total_prefixes", 0),
        ("unexpected_error_replies", 0),
        ("total_error_replies", st.error_replies),
        ("dump_payload_sanitizations", 0),
        ("total_reads_processed", st.reads_processed),
        ("total_writes_processed", st.writes_processed),
        ("io_threaded_reads_processed", 0),
        ("io_threaded_writes_processed", 0),
        ("reply_buffer_shrinks", 0),
        ("reply_buffer_expands", 0),
        # kvserver's own
        ("total_protocol_errors", st.protocol_errors),
    ]


def _replication_section(core) -> list:
    # No replication: what a Redis master that never had a replica shows.
    return [
        ("role", "master"),
        ("connected_slaves", 0),
        ("master_failover_state", "no-failover"),
        ("master_replid", core.replid),
        ("master_replid2", "0" * 40),
        ("master_repl_offset", 0),
        ("second_repl_offset", -1),
        ("repl_backlog_active", 0),
        ("repl_backlog_size", 0),
        ("repl_backlog_first_byte_offset", 0),
        ("repl_backlog_histlen", 0),
    ]


def _cpu_section(core) -> list:
    me = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    thread = resource.getrusage(getattr(resource, "RUSAGE_THREAD", resource.RUSAGE_SELF))
    return [
        ("used_cpu_sys", f"{me.ru_stime:.6f}"),
        ("used_cpu_user", f"{me.ru_utime:.6f}"),
        ("used_cpu_sys_children", f"{children.ru_stime:.6f}"),
        ("used_cpu_user_children", f"{children.ru_utime:.6f}"),
        ("used_cpu_sys_main_thread", f"{thread.ru_stime:.6f}"),   # INFO runs on the loop thread
        ("used_cpu_user_main_thread", f"{thread.ru_utime:.6f}"),
    ]


def _commandstats_section(core) -> list:
    out = []
    for name, stat in core.command_stats.items():
        calls = stat.calls
        if calls or stat.failed or stat.rejected:
            usec = stat.ns // 1000
            out.append((f"cmdstat_{name.translate(_UNSAFE_INFO)}",
                        f"calls={calls},usec={usec},"
                        f"usec_per_call={stat.ns / 1000 / calls if calls else 0:.2f},"
                        f"rejected_calls={stat.rejected},failed_calls={stat.failed}"))
    return out


def _errorstats_section(core) -> list:
    return [(f"errorstat_{prefix.translate(_UNSAFE_INFO)}", f"count={count}")
            for prefix, count in core.stats.errors.items()]


def _latencystats_section(core) -> list:
    # latency-tracking no: no lines, as Redis 7.0 prints none then. (Redis
    # also stops recording; kvserver's histogram counts the calls, so it
    # keeps recording, and the lines come back with those samples in.)
    cfg = core.config
    if not cfg.latency_tracking:
        return []
    out = []
    percentiles = cfg.latency_tracking_info_percentiles
    labels = [f"p{format_percentile(p)}" for p in percentiles]
    for name, stat in core.command_stats.items():
        if stat.calls:
            values = ",".join(f"{label}={stat.percentile_ns(p) / 1000:.3f}"
                              for label, p in zip(labels, percentiles))
            out.append((f"latency_percentiles_usec_{name.translate(_UNSAFE_INFO)}", values))
    return out


def _keyspace_section(core) -> list:
    ks = core.keyspace
    out = []
    now_ms = ks.clock()
    for db in ks.dbs:
        if len(db):
            expires = len(db.expires)
            avg_ttl = 0
            if expires:
                avg_ttl = sum(max(t - now_ms, 0) for t in db.expires.values()) // expires
            out.append((f"db{db.index}", f"keys={len(db)},expires={expires},avg_ttl={avg_ttl}"))
    return out


#: Every section in Redis 7.0's order: (name INFO takes, header, builder).
INFO_SECTIONS = (
    ("server", "Server", _server_section),
    ("clients", "Clients", _clients_section),
    ("memory", "Memory", _memory_section),
    ("persistence", "Persistence", _persistence_section),
    ("stats", "Stats", _stats_section),
    ("replication", "Replication", _replication_section),
    ("cpu", "CPU", _cpu_section),
    ("modules", "Modules", lambda core: []),
    ("commandstats", "Commandstats", _commandstats_section),
    ("errorstats", "Errorstats", _errorstats_section),
    ("latencystats", "Latencystats", _latencystats_section),
    ("cluster", "Cluster", lambda core: [("cluster_enabled", 0)]),
    ("keyspace", "Keyspace", _keyspace_section),
)
#: What INFO and INFO default show (Redis's default_sections; module_list is # Modules).
DEFAULT_SECTIONS = frozenset({"server", "clients", "memory", "persistence", "stats",
                              "replication", "cpu", "modules", "errorstats", "cluster",
                              "keyspace"})


def info_text(core, args: list[bytes]) -> str:
    """INFO's text for these arguments, as Redis 7.0's genInfoSectionDict/genRedisInfoString.

    No argument or ``default``: the default sections; ``all`` and
    ``everything``: every section; other words name sections (any case);
    unknown ones add nothing. Sections come in Redis's order whatever the
    order asked, each ``# Header`` then ``field:value`` lines, separated by
    an empty line.
    """
    wanted: set[str] = set()
    every = not args
    if not args:
        wanted = set(DEFAULT_SECTIONS)
    for raw in args:
        word = raw.decode("utf-8", "replace").lower()
        if word == "default":
            wanted |= DEFAULT_SECTIONS
        elif word in ("all", "everything"):
            every = True
        else:
            wanted.add(word)
    if every and args:
        wanted = {name for name, _h, _b in INFO_SECTIONS}
    parts = []
    for name, header, build in INFO_SECTIONS:
        if name in wanted:
            lines = [f"# {header}"]
            lines.extend(f"{k}:{_fmt(v)}" for k, v in build(core))
            parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts)


def verbatim(s, text: str):
    """A text reply Redis sends as a verbatim string (``=N\\r\\ntxt:...``) in RESP3, a bulk in RESP2."""
    if s.resp == 3:
        data = ("txt:" + text).encode()
        return Raw(b"=%d\r\n%s\r\n" % (len(data), data))
    return text


@command("info", -1, "loading stale", group="server", acl="@slow @dangerous",
         summary="Get information and statistics about the server", synopsis="[section [section ...]]")
def cmd_info(s, argv):
    return verbatim(s, info_text(s.core, argv[1:]))


# --- TIME ----------------------------------------------------------------------

@command("time", 1, "fast loading stale", group="server", since="2.6.0", acl="@fast",
         summary="Return the current server time", synopsis="")
def cmd_time(s, argv):
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]



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
    """Turn a docs synopsis (``key [NX | XX] [EX seconds]``) into COMMAND DOCS arguments.

    ``[a | b]`` is an optional choice, ``<a | b>`` a required one inside the
    line (LMOVE's ``<LEFT | RIGHT>``), ``a | b`` alone the whole line's choice.
    """
    tokens = re.findall(r"\[|\]|<|>|\||\.\.\.|[^\s\[\]<>|]+", text)
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
            elif tok == "<":
                # "<LEFT | RIGHT>": a required choice inside the line.
                alts = [parse_seq({"|", ">"})]
                while pos < len(tokens) and tokens[pos] == "|":
                    pos += 1
                    alts.append(parse_seq({"|", ">"}))
                pos += 1  # the >
                items.append({"name": "condition", "type": "oneof",
                              "arguments": [_group(a) for a in alts]})
            elif tok == "...":
                if items:
                    items[-1]["flags"] = [_MULTIPLE]
            elif tok.isupper() or tok.replace("-", "").isupper():
                if pos < len(tokens) and tokens[pos] not in ("[", "]", "<", ">", "|", "...") \
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
    if cmd.getkeys is not None:
        keys = cmd.getkeys(args)
        if keys is None:
            raise CommandError("ERR Invalid arguments specified for command")
        return keys
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

