"""The redis-benchmark rows, run in alternating rounds against both servers.

One *run* is: a fresh data directory, a fresh server started with the row's
persistence policy, the keys a read needs loaded with ``redis-cli --pipe``,
dirty pages flushed (``sync``), one redis-benchmark test bounded by ``-n``
and a timeout, then the server stopped by PID and its directory removed.

Rounds go row by row, Redis then kvserver (A, B, A, B, ...), and all rows
run once per round before the next round starts, so slow drift of the
machine (other load, thermal state, page cache) spreads over every row
instead of landing on one. The ratio kvserver/redis is computed within each
round, from the two runs that sat next to each other in time, and the
report gives the median and range of those per-round ratios.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field

from .procs import (BenchError, BenchRun, Workdir, free_port, kvserver_server, pipe_load,
                    redis_benchmark, redis_server, resp_command, script_load, settle,
                    write_set_file)

#: Every run of a row gets this long before it is killed and counted as failed.
RUN_TIMEOUT = 120.0
#: Quick mode divides every request count by this (but keeps at least MIN_QUICK_N).
QUICK_DIVISOR = 6
MIN_QUICK_N = 1000


@dataclass(frozen=True)
class Target:
    """What the row must reach: kvserver/redis ops/s ratio at least ``min_ratio``,
    and (optionally) p50 latency no more than ``max_p50_excess`` above Redis's."""

    min_ratio: float
    max_p50_excess: float | None = None

    def text(self) -> str:
        t = f">= {self.min_ratio:g}x"
        if self.max_p50_excess is not None:
            t += f", p50 <= +{self.max_p50_excess:.0%}"
        return t


@dataclass(frozen=True)
class Row:
    id: str
    test: str               # redis-benchmark -t
    policy: str             # always | everysec | no
    clients: int
    n: int                  # requests per kvserver run
    n_redis: int            # requests per redis run (Redis is often much faster)
    pipeline: int = 1
    data_size: int = 3
    random_keys: int = 0
    preload: bool = False   # GET rows: load the keys first so reads hit
    #: Pop rows: fill redis-benchmark's key first ("list": mylist, "set":
    #: myset, "zset": myzset) with one element per request, so no pop finds
    #: the key empty and every request really pops.
    fill: str = ""
    latency: bool = False   # show p50/p99
    target: Target | None = None
    #: A script row: the Lua body SCRIPT LOADed first, and the request
    #: redis-benchmark sends ("EVALSHA", "{sha}", ...: {sha} is filled in).
    script: str = ""
    command: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        parts = [self.test.upper(), f"-c {self.clients}"]
        if self.pipeline > 1:
            parts.append(f"-P {self.pipeline}")
        if self.data_size != 3:
            parts.append(f"-d {self.data_size}")
        if self.random_keys:
            parts.append(f"-r {self.random_keys}")
        return " ".join(parts)

    def requests(self, kind: str, quick: bool) -> int:
        n = self.n if kind == "kvserver" else self.n_redis
        return max(MIN_QUICK_N, n // QUICK_DIVISOR) if quick else n


def _row(test: str, policy: str, clients: int, n: int, n_redis: int | None = None,
         pipeline: int = 1, data_size: int = 3, random_keys: int = 0,
         latency: bool = False, target: Target | None = None, fill: str = "") -> Row:
    rid = f"{test}-c{clients}"
    if pipeline > 1:
        rid += f"-P{pipeline}"
    if data_size != 3:
        rid += f"-d{data_size}"
    if random_keys:
        rid += f"-r{random_keys // 1000}k"
    rid += f"-{policy}"
    return Row(id=rid, test=test, policy=policy, clients=clients, n=n,
               n_redis=n_redis or n, pipeline=pipeline, data_size=data_size,
               random_keys=random_keys, preload=test == "get", latency=latency,
               target=target, fill=fill)


# Request counts are picked so that each run takes a few seconds on a
# 2-core machine (kvserver: SET -c 50 always ~20k ops/s, -P 16 ~80k ops/s;
# Redis up to ~450k ops/s pipelined, hence its larger counts).
#: redis-py's Lock.release script (redis/lock.py LUA_RELEASE_SCRIPT), verbatim.
LOCK_RELEASE = """
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    """
#: The ``limits`` package's sliding-window-counter hit (acquire_sliding_window.lua),
#: verbatim: the script a rate limiter runs per request.
SLIDING_WINDOW = """-- Time is in milliseconds in this script: TTL, expiry...

local limit = tonumber(ARGV[1])
local expiry = tonumber(ARGV[2]) * 1000
local amount = tonumber(ARGV[3])

if amount > limit then
    return false
end

local current_ttl = tonumber(redis.call('pttl', KEYS[2]))

if current_ttl > 0 and current_ttl < expiry then
    -- Current window expired, shift it to the previous window
    redis.call('rename', KEYS[2], KEYS[1])
    redis.call('set', KEYS[2], 0, 'PX', current_ttl + expiry)
end

local previous_count = tonumber(redis.call('get', KEYS[1])) or 0
local previous_ttl = tonumber(redis.call('pttl', KEYS[1])) or 0
local current_count = tonumber(redis.call('get', KEYS[2])) or 0
current_ttl = tonumber(redis.call('pttl', KEYS[2])) or 0

-- If the values don't exist yet, consider the TTL is 0
if previous_ttl <= 0 then
    previous_ttl = 0
end
if current_ttl <= 0 then
    current_ttl = 0
end
local weighted_count = math.floor(previous_count * previous_ttl / expiry) + current_count

if (weighted_count + amount) > limit then
    return false
end

-- If the current counter exists, increase its value
if redis.call('exists', KEYS[2]) == 1 then
    redis.call('incrby', KEYS[2], amount)
else
    -- Otherwise, set the value with twice the expiry time
    redis.call('set', KEYS[2], amount, 'PX', expiry * 2)
end

return true
"""


def _script_row(name: str, script: str, command: tuple[str, ...], policy: str, n: int,
                n_redis: int, random_keys: int = 0, target: Target | None = None) -> Row:
    rid = f"evalsha-{name}-c50" + (f"-r{random_keys // 1000}k" if random_keys else "")
    return Row(id=f"{rid}-{policy}", test=f"evalsha {name}", policy=policy, clients=50, n=n,
               n_redis=n_redis, random_keys=random_keys, target=target, script=script,
               command=command)


ROWS: tuple[Row, ...] = (
    _row("set", "always", 50, 60_000, target=Target(0.9)),
    _row("get", "always", 50, 100_000, target=Target(0.9)),
    _row("set", "always", 50, 200_000, 500_000, pipeline=16, target=Target(0.5)),
    _row("get", "always", 50, 200_000, 800_000, pipeline=16, target=Target(0.5)),
    _row("set", "always", 1, 4_000, 8_000, latency=True, target=Target(0.9, 0.10)),
    _row("get", "always", 1, 10_000, 20_000, latency=True),
    _row("incr", "always", 50, 60_000),
    _row("mset", "always", 50, 20_000),
    _row("set", "always", 50, 40_000, data_size=1024),
    _row("set", "always", 50, 60_000, random_keys=100_000),
    _row("get", "always", 50, 100_000, random_keys=100_000),
    _row("set", "everysec", 50, 100_000),
    _row("set", "no", 50, 100_000),
    _row("get", "no", 50, 100_000, target=Target(0.9)),
    _row("set", "no", 50, 200_000, 800_000, pipeline=16, target=Target(0.5)),
    _row("get", "no", 50, 200_000, 800_000, pipeline=16, target=Target(0.5)),
    _row("set", "no", 1, 10_000, 20_000, latency=True),
    _row("get", "no", 1, 10_000, 20_000, latency=True),
    # The aggregate types (issue 14): redis-benchmark's own tests, -c 50, always.
    _row("lpush", "always", 50, 60_000, 200_000),
    _row("rpush", "always", 50, 60_000, 200_000),
    _row("lpop", "always", 50, 60_000, 200_000, fill="list"),
    _row("rpop", "always", 50, 60_000, 200_000, fill="list"),
    _row("sadd", "always", 50, 60_000, 200_000),
    _row("hset", "always", 50, 60_000, 200_000),
    _row("spop", "always", 50, 60_000, 200_000, fill="set"),
    _row("zadd", "always", 50, 60_000, 200_000),
    _row("zpopmin", "always", 50, 60_000, 200_000, fill="zset"),
    _row("lrange_100", "always", 50, 20_000, 100_000),
    # Scripts: a rate limiter's hit (limits' sliding window counter: PTTL, GET, PTTL,
    # GET, PTTL, EXISTS, INCRBY or SET PX; 10k identities) and redis-py's lock
    # release (GET, compare, DEL; on keys mostly not held, as a release races).
    _script_row("sliding-window", SLIDING_WINDOW,
                ("EVALSHA", "{sha}", "2", "rl:prev:__rand_int__", "rl:cur:__rand_int__",
                 "1000000", "60", "1"), "always", 20_000, 100_000, random_keys=10_000,
                target=Target(0.5)),
    _script_row("lock-release", LOCK_RELEASE,
                ("EVALSHA", "{sha}", "1", "lock:__rand_int__", "token"), "always",
                30_000, 150_000, random_keys=10_000, target=Target(0.5)),
)

#: What each fill writes: redis-benchmark's key, and one command adding
#: elements i..j (100 per command, so the load is quick).
_FILLS = {
    "list": lambda i, j: resp_command(b"RPUSH", b"mylist", *[b"x" * 3] * (j - i)),
    "set": lambda i, j: resp_command(b"SADD", b"myset", *[b"element:%d" % k for k in range(i, j)]),
    "zset": lambda i, j: resp_command(b"ZADD", b"myzset", *[x for k in range(i, j)
                                                            for x in (b"%d" % k, b"element:%d" % k)]),
}


def _fill_file(workdir: Workdir, fill: str, count: int, cache: dict) -> tuple[str, int]:
    """RESP file putting ``count`` elements in the key a pop row pops from."""
    key = ("fill", fill, count)
    if key not in cache:
        path = os.path.join(workdir.base, f"fill-{fill}-{count}.resp")
        commands = 0
        with open(path, "wb") as f:
            for i in range(0, count, 100):
                f.write(_FILLS[fill](i, min(i + 100, count)))
                commands += 1
        cache[key] = (path, commands)
    return cache[key]



@dataclass
class RowResult:
    row: Row
    kv: list[BenchRun | None] = field(default_factory=list)
    redis: list[BenchRun | None] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def ratios(self) -> list[float]:
        """kvserver/redis ops/s, round by round (rounds where both ran)."""
        return [k.rps / r.rps for k, r in zip(self.kv, self.redis)
                if k is not None and r is not None and r.rps > 0]

    def p50_ratios(self) -> list[float]:
        return [k.p50_ms / r.p50_ms for k, r in zip(self.kv, self.redis)
                if k is not None and r is not None and r.p50_ms > 0]


def _preload_file(workdir: Workdir, row: Row, cache: dict) -> tuple[str, int]:
    """RESP file with the keys redis-benchmark's GET will ask for (same value size)."""
    key = (row.random_keys, row.data_size)
    if key not in cache:
        path = os.path.join(workdir.base, f"preload-r{row.random_keys}-d{row.data_size}.resp")
        value = b"x" * row.data_size
        if row.random_keys:
            pairs = ((b"key:%012d" % i, value) for i in range(row.random_keys))
        else:
            pairs = iter([(b"key:__rand_int__", value)])
        cache[key] = (path, write_set_file(path, pairs))
    return cache[key]


def run_once(row: Row, kind: str, workdir: Workdir, quick: bool, cache: dict) -> BenchRun:
    """One run of ``row`` against a fresh ``kind`` server. Raises BenchError."""
    port = free_port()
    d = workdir.fresh(f"{row.id}-{kind}")
    server = (kvserver_server(port, d, row.policy) if kind == "kvserver"
              else redis_server(port, d, row.policy))
    try:
        server.start()
        if row.preload:
            path, count = _preload_file(workdir, row, cache)
            pipe_load(port, path, count, timeout=RUN_TIMEOUT)
        if row.fill:
            path, count = _fill_file(workdir, row.fill, row.requests(kind, quick), cache)
            pipe_load(port, path, count, timeout=RUN_TIMEOUT)
        command = row.command
        if row.script:
            sha = script_load(port, row.script)
            command = tuple(a.replace("{sha}", sha) for a in command)
        settle()
        cpu = server.cpu_seconds()
        run = redis_benchmark(port, row.test, row.requests(kind, quick), row.clients,
                              row.pipeline, row.data_size, row.random_keys, RUN_TIMEOUT,
                              command=command)
        run.cpu_us = (server.cpu_seconds() - cpu) / run.requests * 1e6
        return run
    finally:
        server.stop()
        workdir.remove(d)


def run_rows(rows: list[Row], rounds: int, workdir: Workdir, quick: bool,
             log=print) -> list[RowResult]:
    results = {row.id: RowResult(row) for row in rows}
    cache: dict = {}
    for rnd in range(1, rounds + 1):
        for row in rows:
            res = results[row.id]
            for kind in ("redis", "kvserver"):
                try:
                    run = run_once(row, kind, workdir, quick, cache)
                except BenchError as exc:
                    run = None
                    res.errors.append(f"round {rnd} {kind}: {exc}")
                    log(f"  [round {rnd}/{rounds}] {row.id:<24} {kind:<8} FAILED: "
                        f"{str(exc).splitlines()[0]}")
                else:
                    lat = f"  p50 {run.p50_ms:.3f} ms  p99 {run.p99_ms:.3f} ms" if row.latency else ""
                    log(f"  [round {rnd}/{rounds}] {row.id:<24} {kind:<8} "
                        f"{run.rps:>10,.0f} ops/s  ({run.requests} req, {run.seconds:.1f} s, "
                        f"server CPU {run.cpu_us:.1f} us/op){lat}")
                (res.kv if kind == "kvserver" else res.redis).append(run)
    return list(results.values())


def median_range(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    return statistics.median(values), min(values), max(values)
