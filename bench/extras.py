"""The extra benchmarks: origin, group commit, restart, checkpoint stall, memory.

Each has its Redis counterpart where one exists. All of them are bounded:
fixed iteration or request counts, and every server and load run has a
timeout (see bench.procs).
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import statistics
import threading
import time
from typing import Callable

from .procs import (BenchError, MiniClient, ReplyError, ServerProcess, Workdir, free_port,
                    key16, kvserver_server, onesync_server, pipe_load, redis_benchmark, redis_server,
                    resp_command, settle, value16, wal_thread_server, write_set_file)

Log = Callable[[str], None]


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# --- 1. the origin benchmark, in process ---------------------------------------------------

ORIGIN_PAIRS = 1000


def origin(workdir: Workdir, quick: bool, log: Log) -> dict:
    """1000 SET+GET pairs through kvserver's command table, in process.

    Variants, each timed per batch of 1000 pairs (median over the batches):

    * ``dict``: a bare Python dict (the origin post's raw Hashtbl);
    * ``memory``: Keyspace + command table with a Session, nothing logged;
    * ``wal_no``: the same with a real Writer and WAL on disk, appendfsync no:
      every SET is encoded as a WAL record and the batch is written to the
      file (the timing waits until the writer has written every record);
    * ``wal_always``: appendfsync always, and each SET waits for its own
      sync before the GET, as a lone client would (1000 fdatasyncs);
    * ``naive``: the origin post's scheme redone in Python, for scale: open
      the log, append the record, close it, per SET (no sync, like theirs).
    """
    from kvserver.commands import execute
    from kvserver.config import Config
    from kvserver.core import Core
    from kvserver.fs import OSFileSystem
    from kvserver.session import Session
    from kvserver.wal import WAL, encode_batch, encode_effect
    from kvserver.writer import Writer

    pairs = [(b"key%d" % i, b"%d" % i) for i in range(ORIGIN_PAIRS)]
    batches = {"dict": 200, "memory": 200, "wal_no": 200, "wal_always": 3, "naive": 20}
    if quick:
        batches = {k: max(1, v // 4) for k, v in batches.items()}
    times: dict[str, list[float]] = {k: [] for k in batches}

    # dict
    for _ in range(batches["dict"]):
        table: dict = {}
        t = time.perf_counter()
        for k, v in pairs:
            table[k] = v
            table.get(k)
        times["dict"].append(time.perf_counter() - t)

    # keyspace + commands, no WAL
    d = workdir.fresh("origin-memory")
    core = Core(Config(dir=d))
    s = Session(core)
    for _ in range(batches["memory"]):
        t = time.perf_counter()
        for k, v in pairs:
            execute(s, [b"SET", k, v])
            execute(s, [b"GET", k])
        times["memory"].append(time.perf_counter() - t)
    workdir.remove(d)

    async def with_writer(policy: str, count: int, wait_each: bool) -> list[float]:
        d = workdir.fresh(f"origin-wal-{policy}")
        fs = OSFileSystem()
        core = Core(Config(dir=d, appendfsync=policy))
        wal = WAL.create(fs, d, 1, 1)
        writer = Writer(core, fs, d, wal, 0)
        core.log_sink = writer.append
        core.persistence = writer
        writer.start()
        s = Session(core)
        loop = asyncio.get_running_loop()
        out = []
        try:
            for _ in range(count):
                t = time.perf_counter()
                for k, v in pairs:
                    execute(s, [b"SET", k, v])
                    if wait_each:
                        fut = loop.create_future()
                        writer.when_durable(writer.applied_lsn,
                                            lambda err, fut=fut: fut.set_result(err))
                        err = await fut
                        if err is not None:
                            raise BenchError(f"WAL failed: {err}")
                    execute(s, [b"GET", k])
                # Done when every record is in the file (always: synced too).
                while writer.written_lsn < writer.applied_lsn:
                    await asyncio.sleep(0)
                out.append(time.perf_counter() - t)
        finally:
            await writer.close()
            workdir.remove(d)
        return out

    times["wal_no"] = asyncio.run(with_writer("no", batches["wal_no"], False))
    times["wal_always"] = asyncio.run(with_writer("always", batches["wal_always"], True))

    # naive: open, append, close per write (the origin's Out_channel.with_open_gen)
    d = workdir.fresh("origin-naive")
    path = os.path.join(d, "storage.bin")
    lsn = 0
    for _ in range(batches["naive"]):
        table = {}
        t = time.perf_counter()
        for k, v in pairs:
            lsn += 1
            with open(path, "ab") as f:
                f.write(encode_batch(lsn, [encode_effect(0, [b"SET", k, v])]))
            table[k] = v
            table.get(k)
        times["naive"].append(time.perf_counter() - t)
    workdir.remove(d)

    med = {k: statistics.median(v) for k, v in times.items()}
    ratio_no = [w / m for w, m in zip(times["wal_no"], times["memory"])]
    result = {
        "pairs": ORIGIN_PAIRS,
        "batches": batches,
        "median_us": {k: v * 1e6 for k, v in med.items()},
        "ratio_wal_no": med["wal_no"] / med["memory"],
        "ratio_wal_no_range": (min(ratio_no), max(ratio_no)),
        "ratio_wal_always": med["wal_always"] / med["memory"],
        "ratio_naive": med["naive"] / med["memory"],
        "ratio_memory_vs_dict": med["memory"] / med["dict"],
    }
    log("  origin: " + ", ".join(f"{k} {v * 1e6:,.0f} us" for k, v in med.items())
        + f"; WAL(no)/memory {result['ratio_wal_no']:.2f}x, "
        f"WAL(always)/memory {result['ratio_wal_always']:.0f}x")
    return result


# --- 2. group commit -------------------------------------------------------------------

GC_CLIENTS = (1, 10, 50)
#: Requests per run, per server and client count: a few seconds each. The
#: one-sync-per-write baseline tops out near 1/fsync-latency whatever the
#: client count, hence its small counts.
GC_N = {
    "kvserver": {1: 4_000, 10: 20_000, 50: 60_000},
    "thread": {1: 4_000, 10: 20_000, 50: 60_000},
    "onesync": {1: 4_000, 10: 5_000, 50: 6_000},
    "redis": {1: 8_000, 10: 30_000, 50: 60_000},
}


def group_commit(workdir: Workdir, rounds: int, quick: bool, log: Log) -> dict:
    """Durable SET ops/s at 1, 10 and 50 clients: kvserver (group commit), the
    one-sync-per-write baseline (bench.onesync), Redis appendfsync always, and
    kvserver with its batches synced in a thread instead of on the loop
    (bench.wal_thread)."""
    runs: dict[str, dict[int, list[float | None]]] = {
        k: {c: [] for c in GC_CLIENTS} for k in GC_N}
    batch: dict[int, list[float]] = {c: [] for c in GC_CLIENTS}
    errors = []
    for rnd in range(1, rounds + 1):
        for c in GC_CLIENTS:
            for kind in ("redis", "kvserver", "onesync", "thread"):
                n = GC_N[kind][c]
                if quick:
                    n = max(500, n // 6)
                port = free_port()
                d = workdir.fresh(f"gc-{kind}-c{c}")
                srv = (kvserver_server(port, d, "always") if kind == "kvserver"
                       else redis_server(port, d, "always") if kind == "redis"
                       else wal_thread_server(port, d) if kind == "thread"
                       else onesync_server(port, d))
                rps = None
                try:
                    srv.start()
                    settle()
                    run = redis_benchmark(port, "set", n, c, timeout=120)
                    rps = run.rps
                    if kind == "kvserver":
                        with MiniClient(port) as cl:
                            info = cl.info("persistence")
                        batch[c].append(float(info.get("avg_batch_records", "nan")))
                except BenchError as exc:
                    errors.append(f"round {rnd} {kind} -c {c}: {exc}")
                    log(f"  [round {rnd}/{rounds}] group commit {kind} -c {c} FAILED: "
                        f"{str(exc).splitlines()[0]}")
                finally:
                    srv.stop()
                    workdir.remove(d)
                runs[kind][c].append(rps)
                if rps is not None:
                    log(f"  [round {rnd}/{rounds}] group commit -c {c:<3} {kind:<8} "
                        f"{rps:>9,.0f} ops/s")
    out: dict = {"clients": list(GC_CLIENTS), "rounds": rounds, "errors": errors, "by_clients": {}}
    for c in GC_CLIENTS:
        def med(kind: str) -> float | None:
            vals = [v for v in runs[kind][c] if v is not None]
            return statistics.median(vals) if vals else None

        def ratios(a: str, b: str) -> list[float]:
            return [x / y for x, y in zip(runs[a][c], runs[b][c]) if x and y]
        out["by_clients"][c] = {
            "kvserver": med("kvserver"), "onesync": med("onesync"), "redis": med("redis"),
            "thread": med("thread"),
            "kvserver_runs": runs["kvserver"][c], "onesync_runs": runs["onesync"][c],
            "redis_runs": runs["redis"][c], "thread_runs": runs["thread"][c],
            "speedup": ratios("kvserver", "onesync"), "vs_redis": ratios("kvserver", "redis"),
            "thread_vs_default": ratios("thread", "kvserver"),
            "avg_batch_records": statistics.median(batch[c]) if batch[c] else None,
        }
    return out


# --- 3-5. a million keys: memory, restart, checkpoint stall ------------------------------

_KV_LOADED = re.compile(r"loaded in ([\d.]+) s: checkpoint LSN \d+ \((\d+) keys\), "
                        r"(\d+) WAL records replayed")
_KV_SNAPSHOT_COPY = re.compile(r"checkpoint at LSN \d+ started \(\d+ keys, snapshot copy "
                               r"([\d.]+) ms\)")
_REDIS_LOADED = re.compile(r"DB loaded from (append only file|disk): ([\d.]+) seconds")
#: Flags for the 1M-key servers. everysec: the load is not what is measured,
#: and it keeps the million-key load to seconds on both servers. No size-
#: triggered checkpoint or AOF rewrite, so the WAL/AOF holds exactly the load;
#: no checkpoint at shutdown, so the restart replays the WAL.
KV_BIG_FLAGS = ["--checkpoint-wal-size", "0", "--checkpoint-on-shutdown", "no"]
REDIS_BIG_FLAGS = ["--auto-aof-rewrite-percentage", "0"]


def _timed_restart(srv: ServerProcess, keys: int) -> dict:
    """Start ``srv`` on an existing data dir; time to ready and to the first good GET."""
    settle()
    ready = srv.start()
    with MiniClient(srv.port) as c:
        want = value16(keys - 1)
        got = c.call("GET", key16(keys - 1))
        serve = time.perf_counter() - srv.started
        dbsize = c.call("DBSIZE")
    if got != want or dbsize != keys:
        raise BenchError(f"{srv.kind} restarted with {dbsize} keys (want {keys}), "
                         f"GET gave {got!r}")
    out = {"ready_s": ready, "serve_s": serve, "rss_bytes": srv.rss_bytes()}
    text = srv.log_text()
    m = _KV_LOADED.search(text)
    if m:
        out.update(load_s=float(m.group(1)), checkpoint_keys=int(m.group(2)),
                   wal_records=int(m.group(3)))
    m = _REDIS_LOADED.search(text)
    if m:
        out.update(load_s=float(m.group(2)), source=m.group(1))
    return out


def _restarts(make: Callable[[int], ServerProcess], keys: int, count: int, log: Log,
              label: str) -> tuple[list[dict], ServerProcess]:
    """Restart ``count`` times; the last server is left running and returned."""
    results = []
    srv = None
    for i in range(count):
        if srv is not None:
            srv.stop()
        srv = make(free_port())
        try:
            res = _timed_restart(srv, keys)
        except BaseException:
            srv.stop()
            raise
        results.append(res)
        extra = f", load {res['load_s']:.2f} s" if "load_s" in res else ""
        log(f"  restart {label} #{i + 1}: serving after {res['serve_s']:.2f} s{extra}")
    assert srv is not None
    return results, srv


def _save_marker(info: dict[str, str]) -> tuple:
    """Fields of INFO persistence that change when a snapshot *completes*.

    Not Redis's ``rdb_saves``: it counts a BGSAVE when the child is forked.
    kvserver's ``checkpoints_done`` and both servers' ``rdb_last_save_time``
    and Redis's ``rdb_last_bgsave_time_sec`` move only at the end.
    """
    return tuple(info.get(name) for name in
                 ("checkpoints_done", "rdb_last_save_time", "rdb_last_bgsave_time_sec"))


def _snapshot_done(info: dict[str, str], marker: tuple) -> bool:
    return info.get("rdb_bgsave_in_progress", "0") == "0" and _save_marker(info) != marker


def _set_request(i: int) -> tuple:
    return ("SET", key16(i), value16(i))


def stall_probe(port: int, keys: int, pre_s: float = 1.0, post_s: float = 0.5,
                max_s: float = 300.0, request: Callable[[int], tuple] = _set_request) -> dict:
    """SET latency on one connection while another sends BGSAVE and waits for it.

    A probe thread sends SETs back to back (overwriting random keys of the
    data set) and times each; the main thread lets it run ``pre_s``, sends
    BGSAVE, polls INFO persistence every 20 ms until the snapshot is done,
    waits ``post_s`` and stops it. "During" samples are those whose request
    overlapped the BGSAVE..done window; a stall anywhere in the server (a
    fork, a dict copy, a long slice) shows up as a slow SET.
    """
    samples: list[tuple[float, float]] = []   # (start, latency)
    stop = threading.Event()
    failure: list[BaseException] = []

    def probe() -> None:
        rnd = random.Random(7)
        try:
            with MiniClient(port) as c:
                while not stop.is_set():
                    argv = request(rnd.randrange(keys))
                    t = time.perf_counter()
                    r = c.call(*argv)
                    samples.append((t, time.perf_counter() - t))
                    if isinstance(r, ReplyError):
                        raise BenchError(f"probe {argv[0]} failed: {r}")
        except BaseException as exc:  # reported by the main thread
            failure.append(exc)

    thread = threading.Thread(target=probe, name="bench-stall-probe", daemon=True)
    with MiniClient(port) as c:
        marker = _save_marker(c.info("persistence"))
        thread.start()
        time.sleep(pre_s)
        t_bg = time.perf_counter()
        reply = c.call("BGSAVE")
        bgsave_reply_s = time.perf_counter() - t_bg
        if not isinstance(reply, str):
            stop.set()
            raise BenchError(f"BGSAVE failed: {reply}")
        while True:
            time.sleep(0.02)
            if _snapshot_done(c.info("persistence"), marker):
                break
            if time.perf_counter() - t_bg > max_s or failure:
                stop.set()
                raise BenchError(f"snapshot not done after {max_s:.0f} s" if not failure
                                 else f"probe failed: {failure[0]}")
        t_done = time.perf_counter()
        time.sleep(post_s)
        stop.set()
        thread.join(30)
    if failure:
        raise BenchError(f"probe failed: {failure[0]}")
    during = [lat for t, lat in samples if t <= t_done and t + lat >= t_bg]
    before = [lat for t, lat in samples if t + lat < t_bg]
    ms = 1000.0
    return {
        "probe_rate_before": len(before) / pre_s,
        "probe_rate_during": len(during) / max(t_done - t_bg, 1e-9),
        "snapshot_s": t_done - t_bg,
        "bgsave_reply_ms": bgsave_reply_s * ms,
        "samples_during": len(during),
        "max_ms": max(during) * ms if during else float("nan"),
        "p99_ms": _pct(during, 0.99) * ms,
        "p50_ms": _pct(during, 0.50) * ms,
        "before_p99_ms": _pct(before, 0.99) * ms,
        "before_max_ms": max(before) * ms if before else float("nan"),
    }


def _big_kvserver(workdir: Workdir, path: str, keys: int, restarts: int, log: Log,
                  res: dict) -> None:
    d = workdir.fresh("big-kvserver")

    def kv(port: int) -> ServerProcess:
        return kvserver_server(port, d, "everysec", KV_BIG_FLAGS)
    srv = kv(free_port())
    try:
        srv.start()
        rss0 = srv.rss_bytes()
        res["load_s"] = pipe_load(srv.port, path, keys, _load_timeout(keys))
        rss1 = srv.rss_bytes()
        res.update(rss_empty=rss0, rss_loaded=rss1, bytes_per_key=(rss1 - rss0) / keys)
    finally:
        srv.stop()
    log(f"  kvserver: loaded {keys:,} keys in {res['load_s']:.1f} s; "
        f"{res['bytes_per_key']:.0f} RSS bytes/key")
    res["restart_wal"], srv = _restarts(kv, keys, restarts, log, "kvserver WAL")
    try:
        res["stall"] = stall_probe(srv.port, keys)
    finally:
        srv.stop()
    st = res["stall"]
    m = _KV_SNAPSHOT_COPY.search(srv.log_text())
    if m:  # the server's own account of the synchronous part of the checkpoint
        st["server_snapshot_copy_ms"] = float(m.group(1))
    log(f"  kvserver checkpoint stall: worst {st['max_ms']:.1f} ms, p99 {st['p99_ms']:.2f} ms "
        f"over {st['snapshot_s']:.2f} s")
    res["restart_checkpoint"], srv = _restarts(kv, keys, restarts, log, "kvserver checkpoint")
    srv.stop()
    workdir.remove(d)


def _big_redis(workdir: Workdir, path: str, keys: int, restarts: int, log: Log,
               res: dict) -> None:
    d = workdir.fresh("big-redis")

    def redis_aof(port: int) -> ServerProcess:
        return redis_server(port, d, "everysec", REDIS_BIG_FLAGS)

    def redis_rdb(port: int) -> ServerProcess:
        return redis_server(port, d, "no")  # loads dump.rdb, ignores the AOF
    srv = redis_aof(free_port())
    try:
        srv.start()
        rss0 = srv.rss_bytes()
        res["load_s"] = pipe_load(srv.port, path, keys, _load_timeout(keys))
        rss1 = srv.rss_bytes()
        with MiniClient(srv.port) as c:
            res["used_memory"] = int(c.info("memory").get("used_memory", 0))
        res.update(rss_empty=rss0, rss_loaded=rss1, bytes_per_key=(rss1 - rss0) / keys)
    finally:
        srv.stop()
    log(f"  redis: loaded {keys:,} keys in {res['load_s']:.1f} s; "
        f"{res['bytes_per_key']:.0f} RSS bytes/key")
    res["restart_aof"], srv = _restarts(redis_aof, keys, restarts, log, "redis AOF")
    try:
        res["stall"] = stall_probe(srv.port, keys)
    finally:
        srv.stop()
    st = res["stall"]
    log(f"  redis BGSAVE stall: worst {st['max_ms']:.1f} ms, p99 {st['p99_ms']:.2f} ms "
        f"over {st['snapshot_s']:.2f} s")
    res["restart_rdb"], srv = _restarts(redis_rdb, keys, restarts, log, "redis RDB")
    srv.stop()
    workdir.remove(d)


def _load_timeout(keys: int) -> float:
    return max(120.0, keys / 5_000)


def big_data(workdir: Workdir, keys: int, restarts: int, log: Log) -> dict:
    """Load ``keys`` 16-byte keys with 16-byte values into each server, then measure
    memory per key, restart time (WAL/AOF replay, then checkpoint/RDB load), and
    SET latency while a snapshot of them is taken. A failure in one server's
    sequence is recorded in ``errors`` and keeps what was measured before it."""
    path = os.path.join(workdir.base, f"load-{keys}.resp")
    write_set_file(path, ((key16(i), value16(i)) for i in range(keys)))
    out: dict = {"keys": keys, "restarts": restarts, "kvserver": {}, "redis": {},
                 "errors": []}
    try:
        for kind, fn in (("kvserver", _big_kvserver), ("redis", _big_redis)):
            try:
                fn(workdir, path, keys, restarts, log, out[kind])
            except BenchError as exc:
                out["errors"].append(f"{kind}: {exc}")
                log(f"  {kind} million-key sequence FAILED: {str(exc).splitlines()[0]}")
    finally:
        os.unlink(path)
    return out


# --- 6. checkpoint stall at several keyspace sizes -------------------------------------------

#: Keyspace sizes for the stall extra (``make bench``: all three; --quick: 100k only).
STALL_SIZES = (1_000_000, 3_000_000, 10_000_000)
#: Skip a size whose estimated server RSS (~170 B/key) plus the load file would not
#: leave this much of MemAvailable free (the machine is shared).
STALL_MEMORY_MARGIN = 4 * 2**30


def _mem_available() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def stall_sizes(workdir: Workdir, sizes: tuple[int, ...], log: Log) -> dict:
    """kvserver's worst SET stall during BGSAVE at each keyspace size.

    Per size: a fresh server, ``n`` 16-byte keys loaded by pipe, the stall probe
    (bounded by its own timeout), stop, data dir removed. Bounded in memory: a
    size that would not fit (see STALL_MEMORY_MARGIN) is skipped and reported.
    """
    out: dict = {"sizes": {}, "skipped": [], "errors": []}
    for n in sizes:
        need = n * 170 + n * 60 + STALL_MEMORY_MARGIN
        if _mem_available() and _mem_available() < need:
            out["skipped"].append(n)
            log(f"  stall at {n:,} keys skipped: needs ~{need / 2**30:.1f} GiB available")
            continue
        d = workdir.fresh(f"stall-{n}")
        path = os.path.join(workdir.base, f"stall-{n}.resp")
        write_set_file(path, ((key16(i), value16(i)) for i in range(n)))
        srv = kvserver_server(free_port(), d, "everysec", KV_BIG_FLAGS)
        try:
            srv.start()
            load_s = pipe_load(srv.port, path, n, _load_timeout(n))
            os.unlink(path)
            res = stall_probe(srv.port, n)
            res["load_s"] = load_s
            res["rss_bytes"] = srv.rss_bytes()
            m = _KV_SNAPSHOT_COPY.search(srv.log_text())
            if m:
                res["server_snapshot_copy_ms"] = float(m.group(1))
            out["sizes"][n] = res
            log(f"  stall at {n:,} keys: worst {res['max_ms']:.1f} ms, p99 {res['p99_ms']:.2f} ms "
                f"over {res['snapshot_s']:.2f} s (barrier {res.get('server_snapshot_copy_ms', 0):.1f} ms)")
        except BenchError as exc:
            out["errors"].append(f"{n}: {exc}")
            log(f"  stall at {n:,} keys FAILED: {str(exc).splitlines()[0]}")
        finally:
            srv.stop()
            if os.path.exists(path):
                os.unlink(path)
            workdir.remove(d)
    return out


# --- 7. checkpoint stall with a million small hashes -------------------------------------

#: Fields per hash for the stall-hashes extra (small: a listpack hash in Redis).
HASH_FIELDS = 4


def _hash_key(i: int) -> bytes:
    return b"h:%014d" % i


def _hset_request(i: int) -> tuple:
    """The probe's write: one field of an existing hash changed in place, so a
    running checkpoint must keep that hash's pre-image first."""
    return ("HSET", _hash_key(i), b"f0", value16(i))


def _write_hash_file(path: str, n: int) -> int:
    count = 0
    with open(path, "wb") as f:
        chunk = []
        for i in range(n):
            chunk.append(resp_command(b"HSET", _hash_key(i),
                                      *[x for j in range(HASH_FIELDS)
                                        for x in (b"f%d" % j, value16(i))]))
            count += 1
            if len(chunk) >= 100_000:
                f.write(b"".join(chunk))
                chunk = []
        f.write(b"".join(chunk))
    return count


def stall_hashes(workdir: Workdir, n: int, log: Log) -> dict:
    """The worst HSET latency while a snapshot of ``n`` small hashes runs
    (kvserver's checkpoint; Redis's BGSAVE fork for reference): the probe
    changes random hashes in place, so every one it touches during the
    checkpoint costs a pre-image copy."""
    out: dict = {"keys": n, "fields": HASH_FIELDS, "errors": []}
    path = os.path.join(workdir.base, f"hashes-{n}.resp")
    _write_hash_file(path, n)
    try:
        for kind in ("kvserver", "redis"):
            d = workdir.fresh(f"stall-hashes-{kind}")
            srv = (kvserver_server(free_port(), d, "everysec", KV_BIG_FLAGS) if kind == "kvserver"
                   else redis_server(free_port(), d, "everysec", REDIS_BIG_FLAGS))
            try:
                srv.start()
                load_s = pipe_load(srv.port, path, n, _load_timeout(n))
                res = stall_probe(srv.port, n, request=_hset_request)
                res["load_s"] = load_s
                res["rss_bytes"] = srv.rss_bytes()
                m = _KV_SNAPSHOT_COPY.search(srv.log_text()) if kind == "kvserver" else None
                if m:
                    res["server_snapshot_copy_ms"] = float(m.group(1))
                out[kind] = res
                log(f"  {kind} stall with {n:,} hashes: worst {res['max_ms']:.1f} ms, "
                    f"p99 {res['p99_ms']:.2f} ms over {res['snapshot_s']:.2f} s")
            except BenchError as exc:
                out["errors"].append(f"{kind}: {exc}")
                log(f"  {kind} stall with {n:,} hashes FAILED: {str(exc).splitlines()[0]}")
            finally:
                srv.stop()
                workdir.remove(d)
    finally:
        os.unlink(path)
    return out
