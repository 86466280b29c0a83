"""``python -m bench.lua_libs``: the Lua libraries' common calls, called directly.

Each row is one library call as a rate-limiting script makes it, called from
Python on the functions a Runtime installs (no interpreter in between), and
reported as microseconds of this thread's CPU time per call
(``time.thread_time``, so other processes on a busy box do not count): the
best of ``--repeat`` rounds of ``--number`` calls.

    python -m bench.lua_libs
    python -m bench.lua_libs --number 20000 --repeat 5
"""

from __future__ import annotations

import argparse
import time

from kvserver.lua import lib_cjson
from kvserver.lua.runtime import Runtime
from kvserver.lua.value import LuaTable

KEY = b"ratelimit:user:12345:endpoint:/api/v1/items:window:2024-01-01T10:20:30Z"


def rows() -> dict:
    rt = Runtime()
    s = rt.globals.get(b"string")
    cjson = lib_cjson.open(rt)
    fmt, find, match, gsub, gmatch = (s.get(n) for n in (b"format", b"find", b"match", b"gsub", b"gmatch"))
    enc, dec = cjson.get(b"encode"), cjson.get(b"decode")
    obj = LuaTable(hash={b"count": 5, b"ok": True})
    obj.set(b"items", LuaTable.from_list([1, 2, 3]))
    text = b'{"count":5,"ok":true,"items":[1,2,3]}'
    return {
        "format('%d', 12345)": lambda: fmt(b"%d", 12345),
        "format('%s:%s', 'rate', 42)": lambda: fmt(b"%s:%s", b"rate", 42),
        "format('%.2f', 3.14159)": lambda: fmt(b"%.2f", 3.14159),
        "find(key, ':', 1, true)": lambda: find(KEY, b":", 1, True),
        "match(key, '^ratelimit:(%w+):(%d+)')": lambda: match(KEY, b"^ratelimit:(%w+):(%d+)"),
        "match(key, '(%d+)%-(%d+)%-(%d+)')": lambda: match(KEY, b"(%d+)%-(%d+)%-(%d+)"),
        "find(key, 'window:(.-)Z')": lambda: find(KEY, b"window:(.-)Z"),
        "gsub(key, ':', '/')": lambda: gsub(KEY, b":", b"/"),
        "gsub(key, '%d', '#')": lambda: gsub(KEY, b"%d", b"#"),
        "gmatch(key, '[^:]+'), all": lambda: list(iter(gmatch(KEY, b"[^:]+")[0], ())),
        "cjson.encode({count=5,ok=true,items={1,2,3}})": lambda: enc(obj),
        "cjson.decode(that)": lambda: dec(text),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--number", type=int, default=20000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    for name, fn in rows().items():
        best = float("inf")
        for _ in range(args.repeat):
            t0 = time.thread_time()
            for _ in range(args.number):
                fn()
            best = min(best, time.thread_time() - t0)
        print(f"{name:48s} {best / args.number * 1e6:7.2f} us")


if __name__ == "__main__":
    main()
