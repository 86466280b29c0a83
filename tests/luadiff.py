"""Differential checking of kvserver.lua's libraries against real Redis 7.0.15.

A case is a library call written once as data: ``("string.format", b"%5.2f", 3.14)``.
From it we build the Lua expression Redis evaluates (``string.format("%5.2f", 3.14)``)
and the Python call of our library function; both results go through the same
serializer (types tagged, numbers as %.17g, tables with sorted keys, errors as
``E:message``), so a case passes only when value, type and error text agree.

Until the interpreter exists, this is how the libraries are checked against the
real thing; ``Lua(src, py)`` marks an argument that is Lua code on the Redis
side (a function, a table with a metatable) and a Python value on ours.
"""

from __future__ import annotations

import math
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

from kvserver.lua.value import LuaError, LuaTable, number_to_bytes, type_name

REDIS_SERVER = shutil.which("redis-server")


class Lua:
    """An argument given as Lua source for Redis and a Python value for us."""

    def __init__(self, src: str, py: Any) -> None:
        self.src = src
        self.py = py


def lua_literal(v: Any) -> str:
    if type(v) is str:
        v = v.encode()
    if isinstance(v, Lua):
        return v.src
    if v is None:
        return "nil"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if type(v) is int:
        return str(v) if abs(v) < 2**53 else repr(float(v))
    if type(v) is float:
        # Not 1/0 or 0/0: Lua 5.1's constant table keeps one slot for 0 and -0, so
        # in a chunk that also has a -0.0 literal, 1/0 is -inf. x86's inf - inf is
        # a NaN with the sign bit set ("-nan").
        if v != v:
            return "(math.huge-math.huge)" if math.copysign(1.0, v) < 0 else "(-(math.huge-math.huge))"
        if math.isinf(v):
            return "math.huge" if v > 0 else "(-math.huge)"
        return repr(v)
    if type(v) is bytes:
        return '"' + "".join(chr(c) if 32 <= c < 127 and c not in (34, 92) else "\\%03d" % c
                             for c in v) + '"'
    if type(v) is LuaTable:
        parts = [lua_literal(x) for x in v.arr]
        for k, x in v.hash.items():
            parts.append("[%s]=%s" % (lua_literal(k), lua_literal(x)))
        return "{" + ",".join(parts) + "}"
    if type(v) is list:
        return "{" + ",".join(lua_literal(x) for x in v) + "}"
    if type(v) is dict:
        return "{" + ",".join("[%s]=%s" % (lua_literal(k), lua_literal(x))
                              for k, x in v.items()) + "}"
    raise TypeError(v)


def py_value(v: Any) -> Any:
    if type(v) is str:
        return v.encode()
    if isinstance(v, Lua):
        return v.py
    if type(v) is list:
        t = LuaTable()
        for i, x in enumerate(v, 1):
            t.set(i, py_value(x))
        return t
    if type(v) is dict:
        t = LuaTable()
        for k, x in v.items():
            t.set(py_value(k), py_value(x))
        return t
    return v


# The same serializer in Lua (run by Redis) and Python (run on our results):
# ``ser(value, depth)``, shared by every Lua snippet that reports values.
LUA_SER_FUNCTIONS = r"""
local function num(n)
  if n ~= n then return string.format('%f', n) end
  if n == 1/0 then return 'inf' elseif n == -1/0 then return '-inf' end
  return string.format('%.17g', n)
end
local ser
ser = function(v, depth)
  local t = type(v)
  if t == 'string' then return 's:' .. v
  elseif t == 'number' then return 'n:' .. num(v)
  elseif t == 'nil' then return 'nil'
  elseif t == 'boolean' then return 'b:' .. tostring(v)
  elseif t == 'table' then
    if depth > 20 then return 't:deep' end
    local keys = {}
    for k in pairs(v) do keys[#keys+1] = k end
    table.sort(keys, function(a, b)
      local ta, tb = type(a), type(b)
      if ta ~= tb then return ta < tb end
      if ta == 'number' or ta == 'string' then return a < b end
      return tostring(a) < tostring(b)
    end)
    local parts = {}
    for _, k in ipairs(keys) do parts[#parts+1] = ser(k, depth+1) .. '=' .. ser(v[k], depth+1) end
    return 't:{' .. table.concat(parts, ',') .. '}'
  elseif t == 'userdata' then
    if v == cjson.null then return 'cjson.null' end
    return 'userdata'
  else return t end
end
"""

LUA_SER = LUA_SER_FUNCTIONS + r"""
local r = {pcall(function() return %s end)}
local n = table.maxn(r)
if not r[1] then return {'E:' .. tostring(r[2])} end
local out = {}
for i = 2, n do out[#out+1] = ser(r[i], 0) end
if n == 1 then out[1] = '(none)' end
return out
"""


def py_num(n: int | float) -> bytes:
    f = float(n)
    if f != f:
        return b"-nan" if math.copysign(1.0, f) < 0 else b"nan"
    if math.isinf(f):
        return b"inf" if f > 0 else b"-inf"
    return b"%.17g" % f


def py_ser(v: Any, depth: int = 0, null: Any = None) -> bytes:
    t = type(v)
    if t is bytes:
        return b"s:" + v
    if t is int or t is float:
        return b"n:" + py_num(v)
    if v is None:
        return b"nil"
    if t is bool:
        return b"b:" + (b"true" if v else b"false")
    if t is LuaTable:
        if depth > 20:
            return b"t:deep"
        keys = [k for k, _ in v.items()]

        def sort_key(k: Any):
            tn = type_name(k)
            if tn in ("number", "string"):
                return (tn, k, b"")
            return (tn, 0, number_to_bytes(0))
        keys.sort(key=sort_key)
        parts = [py_ser(k, depth + 1, null) + b"=" + py_ser(v.get(k), depth + 1, null) for k in keys]
        return b"t:{" + b",".join(parts) + b"}"
    if null is not None and v is null:
        return b"cjson.null"
    return type_name(v).encode()


def py_run(fn, args: tuple, null: Any = None) -> list[bytes]:
    try:
        r = fn(*[py_value(a) for a in args])
    except LuaError as e:
        msg = e.value if isinstance(e.value, bytes) else number_to_bytes(e.value) \
            if type(e.value) in (int, float) else b"?"
        return [b"E:" + msg]
    if not r:
        return [b"(none)"]
    # Lua's table.maxn drops trailing nils
    r = list(r)
    while len(r) > 1 and r[-1] is None:
        r.pop()
    if r == [None]:
        return [b"(none)"]
    return [py_ser(x, 0, null) for x in r]


def lua_expr(name: str, args: tuple) -> str:
    return "%s(%s)" % (name, ", ".join(lua_literal(a) for a in args))


# -- a minimal Redis client and server ----------------------------------------

class Redis:
    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.f = self.sock.makefile("rb")

    def call(self, *args: bytes | str) -> Any:
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, str):
                a = a.encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(parts))
        return self._read()

    def _read(self) -> Any:
        line = self.f.readline()[:-2]
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest
        if kind == b"-":
            return Exception(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self._read() for _ in range(n)]
        raise ValueError(line)

    def close(self) -> None:
        self.f.close()
        self.sock.close()


def start_redis(workdir: Path) -> tuple[subprocess.Popen, int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            r = Redis(port)
            if r.call("PING") == b"PONG":
                r.close()
                return proc, port
        except OSError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise RuntimeError("redis-server did not start")
        time.sleep(0.02)


def redis_run(r: Redis, expr: str, keep_position: bool = False) -> list[bytes]:
    res = r.call("EVAL", LUA_SER.replace("%s", expr, 1), "0")
    if isinstance(res, Exception):
        return [b"REDIS-ERROR:" + str(res).encode()]
    if keep_position:
        return res
    # A library error carries its Lua caller's position (luaL_where(L, 1));
    # adding it is the interpreter's job, so compare the message without it.
    if res and res[0].startswith(b"E:user_script:"):
        res[0] = b"E:" + re.sub(rb"^user_script:\d+: ", b"", res[0][2:])
    return res


def runtime_run(rt: Any, expr: str) -> list[bytes]:
    """The same script as redis_run, run by kvserver's Lua runtime."""
    fn = rt.compile(LUA_SER.replace("%s", expr, 1).encode(), "user_script")
    try:
        res = fn()
    except LuaError as e:
        return [b"REDIS-ERROR:" + (e.value if isinstance(e.value, bytes) else b"?")]
    t = res[0]
    return [t.get(i) for i in range(1, t.length() + 1)]
