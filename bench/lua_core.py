"""``python -m bench.lua_core``: the Lua interpreter's speed, against Lua 5.1 inside redis-server.

Each row is a pure-Lua program compiled once by :mod:`kvserver.lua` and run
over and over in process; reported as microseconds of this thread's CPU time
per run (``time.thread_time``: time the OS gives other processes on a busy
box does not count), the median of ``--repeat`` rounds, each round the mean
over as many runs as fit in ``--seconds`` of CPU time. Rows:

* ``fib20``: recursive fib(20) (21891 Lua calls).
* ``add1M``: a numeric for loop of 1,000,000 additions.
* ``insert100k``: ``t[#t + 1] = i`` 100,000 times.
* ``concat1k``: ``s = s .. i`` 1,000 times (a 3.9 kB string).
* ``limiter``: a sliding-window rate limiter as Redis users write it
  (ZREMRANGEBYSCORE, ZCARD, ZADD, PEXPIRE, a reply table), with ``redis.call``
  a Python stand-in answering at once: the interpreter's share of a call.

Reference: the same code run by EVALSHA in a redis-server started on a free
loopback port (stopped by PID at the end); its time is Redis's own
``usec_per_call`` for EVALSHA from ``INFO commandstats`` (server-side, no
network), with the limiter's real commands on a real key. Needs redis-py and
redis-server; without them only our rows are printed.

    python -m bench.lua_core
    python -m bench.lua_core --seconds 0.5 --repeat 5 fib20 limiter
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time

from kvserver.lua.runtime import Runtime
from kvserver.lua.value import LuaTable

PROGRAMS = {
    "fib20": """
        local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
        return fib(20)""",
    "add1M": """
        local s = 0
        for i = 1, 1000000 do s = s + i end
        return s""",
    "insert100k": """
        local t = {}
        for i = 1, 100000 do t[#t + 1] = i end
        return #t""",
    "concat1k": """
        local s = ''
        for i = 1, 1000 do s = s .. i end
        return #s""",
    "limiter": """
        local key = KEYS[1]
        local now = tonumber(ARGV[1])
        local window = tonumber(ARGV[2])
        local limit = tonumber(ARGV[3])
        redis.call('ZREMRANGEBYSCORE', key, 0, now - window)
        local count = redis.call('ZCARD', key)
        if count < limit then
            redis.call('ZADD', key, now, now .. '-' .. count)
            redis.call('PEXPIRE', key, window)
            return {1, limit - count - 1}
        end
        return {0, 0}""",
}

LIMITER_KEYS = [b"rate:user42"]
LIMITER_ARGV = [b"1700000000000", b"60000", b"1000000"]


def make_runtime() -> Runtime:
    rt = Runtime()
    redis_tbl = LuaTable()

    def call(cmd, *args):
        # a stand-in that answers at once: ZCARD a count, the rest an integer
        return (5,) if cmd == b"ZCARD" else (1,)
    redis_tbl.set(b"call", call)
    rt.globals.set(b"redis", redis_tbl)
    rt.globals.set(b"KEYS", LuaTable.from_list(LIMITER_KEYS))
    rt.globals.set(b"ARGV", LuaTable.from_list(LIMITER_ARGV))
    return rt


def time_ours(name: str, seconds: float, repeat: int) -> float:
    rt = make_runtime()
    fn = rt.compile(PROGRAMS[name].encode(), "user_script")
    fn()                                   # warm up (specialisation of the generated code)
    rounds = []
    gc.disable()
    try:
        for _ in range(repeat):
            n = 0
            start = time.thread_time()
            deadline = start + seconds
            while True:
                fn()
                n += 1
                now = time.thread_time()
                if now >= deadline:
                    break
            rounds.append((now - start) / n * 1e6)
    finally:
        gc.enable()
    return statistics.median(rounds)


def time_redis(names: list[str], seconds: float) -> dict[str, float]:
    """usec_per_call of EVALSHA in a real redis-server, per program."""
    try:
        import redis
    except ImportError:
        print("bench.lua_core: redis-py not installed: no reference column", file=sys.stderr)
        return {}
    from .procs import BenchError, free_port, redis_server
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-lua-") as d:
        server = redis_server(free_port(), d, "no")
        try:
            server.start()
        except (BenchError, OSError) as e:
            print(f"bench.lua_core: no redis-server ({e}): no reference column", file=sys.stderr)
            return {}
        try:
            r = redis.Redis(port=server.port)
            for name in names:
                sha = r.script_load(PROGRAMS[name])
                keys = LIMITER_KEYS if name == "limiter" else []
                argv = LIMITER_ARGV if name == "limiter" else []
                r.evalsha(sha, len(keys), *keys, *argv)
                r.config_resetstat()
                deadline = time.perf_counter() + seconds
                while time.perf_counter() < deadline:
                    r.evalsha(sha, len(keys), *keys, *argv)
                stats = r.info("commandstats")["cmdstat_evalsha"]
                out[name] = float(stats["usec_per_call"])
        finally:
            server.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lua_core", description=__doc__.split("\n")[0])
    ap.add_argument("rows", nargs="*", choices=[[], *PROGRAMS], default=[],
                    help="rows to run (default: all)")
    ap.add_argument("--seconds", type=float, default=1.0, help="length of one round per row")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per row (median reported)")
    ap.add_argument("--no-redis", action="store_true", help="skip the redis-server reference")
    args = ap.parse_args(argv)
    names = args.rows or list(PROGRAMS)
    ref = {} if args.no_redis else time_redis(names, args.seconds)
    print(f"{'program':<12} {'kvserver.lua us/run':>20} {'redis Lua us/run':>18} {'ratio':>7}")
    for name in names:
        ours = time_ours(name, args.seconds, args.repeat)
        theirs = ref.get(name)
        if theirs:
            print(f"{name:<12} {ours:>20.1f} {theirs:>18.1f} {ours / theirs:>7.1f}")
        else:
            print(f"{name:<12} {ours:>20.1f} {'-':>18} {'-':>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
