"""Lua 5.1's base library (lbaselib.c) for a :class:`~kvserver.lua.runtime.Runtime`.

Implemented: assert error pcall xpcall select type tostring tonumber pairs
ipairs next rawget rawset rawequal setmetatable getmetatable unpack print
collectgarbage gcinfo loadstring _G _VERSION. Not provided: load, dofile,
loadfile, require, module, setfenv, getfenv, newproxy, coroutine (a compiled
chunk's environment is fixed; there is no file system access).

Every builtin takes Lua values positionally and returns a tuple, like a
compiled Lua function, and raises Lua's own argument errors ("bad argument
#1 to 'setmetatable' (table expected, got nil)").
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from .libargs import to_int32
from .value import LuaError, LuaSyntaxError, LuaTable, number_to_bytes, str_to_number, type_name

log = logging.getLogger("kvserver.lua")

_NOVAL = object()      # an absent argument ("got no value"), unlike an explicit nil
MAX_UNPACK = 8000      # LUAI_MAXCSTACK: larger unpacks fail with "too many results to unpack"
_NUM = (int, float)


def argerror(n: int, fname: str, msg: str) -> LuaError:
    """luaL_argerror's error; the parts let the runtime rename it after the call site."""
    e = LuaError(b"bad argument #%d to '%s' (%s)" % (n, fname.encode(), msg.encode()))
    e.arg_n = n
    e.fname = fname
    e.extramsg = msg.encode()
    return e


def typeerror(n: int, fname: str, expected: str, v: Any) -> LuaError:
    got = "no value" if v is _NOVAL else type_name(v)
    return argerror(n, fname, f"{expected} expected, got {got}")


def check_table(v: Any, n: int, fname: str) -> LuaTable:
    if type(v) is not LuaTable:
        raise typeerror(n, fname, "table", v)
    return v


def check_int(v: Any, n: int, fname: str) -> int:
    """luaL_checkint: (int)(lua_Integer)x as x86-64 casts it (1e300 is 0, 2^31 is -2^31)."""
    t = type(v)
    if t is int:
        return v if -0x80000000 <= v <= 0x7FFFFFFF else to_int32(v)
    if t is float or t is bytes:
        x = v if t is float else str_to_number(v)
        if x is not None:
            return to_int32(x)
    raise typeerror(n, fname, "number", v)


def opt_int(v: Any, n: int, fname: str, default: int) -> int:
    if v is None or v is _NOVAL:
        return default
    return check_int(v, n, fname)


def lua_next(t: Any = _NOVAL, k: Any = None, *_: Any) -> tuple:
    check_table(t, 1, "next")
    try:
        r = t.next(k)
    except LuaError as e:
        # luaG_runerror inside a C function: Lua adds no position
        e.lua_positioned = True
        raise
    return (None,) if r is None else r


def ipairs_aux(t: Any = _NOVAL, i: Any = 0, *_: Any) -> tuple:
    check_table(t, 1, "ipairs")
    i = check_int(i, 2, "ipairs") + 1
    v = t.get(i)
    if v is None:
        return ()
    return (i, v)


def open(rt) -> LuaTable:
    G = rt.globals
    from .runtime import fix_error, level_frame, lua_where, positioned, stack_overflow, chunkid

    def call(f, *args):
        return rt.call(f, *args)

    def lua_type(v=_NOVAL, *_):
        if v is _NOVAL:
            raise argerror(1, "type", "value expected")
        return (type_name(v).encode(),)

    def lua_tostring(v=_NOVAL, *_):
        if v is _NOVAL:
            raise argerror(1, "tostring", "value expected")
        t = type(v)
        if t is not bytes and t is not int and t is not float:
            mt = rt.getmetatable(v)
            h = mt.get(b"__tostring") if mt is not None else None
            if h is not None:
                # 5.1's luaB_tostring returns what __tostring returns, unchecked
                # ("'__tostring' must return a string" is 5.2's)
                r = rt.call(h, v)
                return (r[0] if r else None,)
        return (rt.tostring(v),)

    def lua_tonumber(v=_NOVAL, base=None, *_):
        if base is None:
            if v is _NOVAL:
                raise argerror(1, "tonumber", "value expected")
            t = type(v)
            if t is int or t is float:
                return (v,)
            if t is bytes:
                if v.isdigit() and len(v) < 16:
                    return (int(v),)    # str_to_number's fast path, without its call
                return (str_to_number(v),)
            return (None,)
        b = check_int(base, 2, "tonumber")
        if b == 10:
            if v is _NOVAL:
                raise argerror(1, "tonumber", "value expected")
            return lua_tonumber(v)
        if not 2 <= b <= 36:
            raise argerror(2, "tonumber", "base out of range")
        t = type(v)
        if t is int or t is float:
            s = number_to_bytes(v)
        elif t is bytes:
            s = v
        else:
            raise typeerror(1, "tonumber", "string", v)
        # strtoul: leading space, optional sign, digits of the base; then only space
        s = s.strip(b" \t\n\v\f\r")
        neg = False
        if s[:1] in (b"+", b"-"):
            neg = s[:1] == b"-"
            s = s[1:]
        if not s:
            return (None,)
        try:
            n = int(s, b)
        except ValueError:
            return (None,)
        if b"_" in s or s[:1].isspace():
            return (None,)
        if n >= 2**64:
            n = 2**64 - 1
        elif neg and n:
            n = 2**64 - n
        return (n if n < 2**53 else float(n),)

    def lua_select(n=_NOVAL, *args):
        if type(n) is bytes and n[:1] == b"#":
            return (len(args),)
        i = check_int(n, 1, "select")
        top = len(args) + 1
        if i < 0:
            i = top + i
        elif i > top:
            i = top
        if i < 1:
            raise argerror(1, "select", "index out of range")
        return args[i - 1:]

    def lua_pairs(t=_NOVAL, *_):
        check_table(t, 1, "pairs")
        return (lua_next, t, None)

    def lua_ipairs(t=_NOVAL, *_):
        check_table(t, 1, "ipairs")
        return (ipairs_aux, t, 0)

    def lua_rawget(t=_NOVAL, k=_NOVAL, *_):
        check_table(t, 1, "rawget")
        if k is _NOVAL:
            raise argerror(2, "rawget", "value expected")
        return (t.get(k),)

    def lua_rawset(t=_NOVAL, k=_NOVAL, v=_NOVAL, *_):
        check_table(t, 1, "rawset")
        if k is _NOVAL:
            raise argerror(2, "rawset", "value expected")
        if v is _NOVAL:
            raise argerror(3, "rawset", "value expected")
        try:
            t.set(k, v)
        except LuaError as e:
            e.lua_positioned = True      # "table index is nil" from a C function: no position
            raise
        return (t,)

    def lua_rawequal(a=_NOVAL, b=_NOVAL, *_):
        if a is _NOVAL:
            raise argerror(1, "rawequal", "value expected")
        if b is _NOVAL:
            raise argerror(2, "rawequal", "value expected")
        if a is b:
            return (True,)
        ta, tb = type(a), type(b)
        if ta in _NUM:
            return (tb in _NUM and a == b,)
        if ta is not tb or ta is LuaTable:
            return (False,)
        return (a == b,)

    def lua_setmetatable(t=_NOVAL, mt=_NOVAL, *_):
        check_table(t, 1, "setmetatable")
        if mt is not None and type(mt) is not LuaTable:
            raise argerror(2, "setmetatable", "nil or table expected")
        old = t.metatable
        if old is not None and old.get(b"__metatable") is not None:
            raise LuaError(b"cannot change a protected metatable")
        t.metatable = mt
        return (t,)

    def lua_getmetatable(v=_NOVAL, *_):
        if v is _NOVAL:
            raise argerror(1, "getmetatable", "value expected")
        mt = rt.getmetatable(v)
        if mt is None:
            return (None,)
        protected = mt.get(b"__metatable")
        if protected is not None:
            return (protected,)
        return (mt,)

    def lua_unpack(t=_NOVAL, i=None, j=None, *_):
        check_table(t, 1, "unpack")
        i = opt_int(i, 2, "unpack", 1)
        j = t.length() if j is None or j is _NOVAL else check_int(j, 3, "unpack")
        if i > j:
            return ()
        n = j - i + 1
        if n >= MAX_UNPACK or n <= 0:
            raise LuaError(b"too many results to unpack")
        if i == 1 and j <= len(t.arr):
            return tuple(t.arr[:j])
        get = t.get
        return tuple(get(k) for k in range(i, j + 1))

    def lua_error(msg=None, level=None, *_):
        lvl = opt_int(level, 2, "error", 1)
        if type(msg) in _NUM:
            msg = number_to_bytes(msg)
        if type(msg) is bytes and lvl > 0:
            f = level_frame(sys._getframe(), lvl)
            if f is not None and "__lua_chunk__" in f.f_globals:
                msg = lua_where(f) + b" " + msg
        raise positioned(LuaError(msg))

    def lua_assert(v=_NOVAL, *rest):
        if v is _NOVAL:
            raise argerror(1, "assert", "value expected")
        if v is None or v is False:
            if rest and rest[0] is not None:
                m = rest[0]
                if type(m) in _NUM:
                    m = number_to_bytes(m)
                elif type(m) is not bytes:
                    raise typeerror(2, "assert", "string", m)
            else:
                m = b"assertion failed!"
            raise LuaError(m)
        return (v, *rest)

    def lua_pcall(f=_NOVAL, *args):
        if f is _NOVAL:
            raise argerror(1, "pcall", "value expected")
        try:
            r = call(f, *args)
        except LuaError as e:
            return (False, fix_error(e).value)
        except RecursionError as e:
            return (False, stack_overflow(e).value)
        except MemoryError:
            return (False, b"not enough memory")
        return (True, *r)

    def lua_xpcall(f=_NOVAL, handler=_NOVAL, *_):
        if handler is _NOVAL:
            raise argerror(2, "xpcall", "value expected")
        try:
            r = call(f)
        except LuaError as e:
            value = fix_error(e).value
        except RecursionError as e:
            value = stack_overflow(e).value
        except MemoryError:
            value = b"not enough memory"
        else:
            return (True, *r)
        try:
            hr = call(handler, value)
        except (LuaError, RecursionError):
            return (False, b"error in error handling")
        return (False, hr[0] if hr else None)

    def lua_print(*args):
        line = b"\t".join(rt.tostring(a) for a in args)
        handler = rt.print_handler
        if handler is not None:
            handler(line)
        else:
            log.info("lua print: %s", line.decode("utf-8", "replace"))
        return ()

    def lua_collectgarbage(opt=b"collect", arg=None, *_):
        if opt is None:
            opt = b"collect"
        if type(opt) is not bytes:
            raise typeerror(1, "collectgarbage", "string", opt)
        if opt not in (b"stop", b"restart", b"collect", b"count", b"step",
                       b"setpause", b"setstepmul"):
            raise argerror(1, "collectgarbage", f"invalid option '{opt.decode('latin-1')}'")
        if opt == b"count":
            return (0.0,)
        if opt == b"step":
            return (False,)
        return (0,)

    def lua_gcinfo(*_):
        return (0,)

    def lua_loadstring(s=_NOVAL, chunkname=None, *_):
        if type(s) in _NUM:
            s = number_to_bytes(s)
        if type(s) is not bytes:
            raise typeerror(1, "loadstring", "string", s)
        if chunkname is None:
            name = chunkid(s)
        elif type(chunkname) is bytes:
            name = chunkname.decode("latin-1")
            if name[:1] in ("=", "@"):
                name = name[1:]
            else:
                name = chunkid(chunkname)
        else:
            raise typeerror(2, "loadstring", "string", chunkname)
        try:
            fn = rt.compile(s, name)
        except LuaSyntaxError as e:
            return (None, e.value)
        return (fn,)

    lib = {
        b"assert": lua_assert, b"error": lua_error, b"pcall": lua_pcall,
        b"xpcall": lua_xpcall, b"select": lua_select, b"type": lua_type,
        b"tostring": lua_tostring, b"tonumber": lua_tonumber, b"pairs": lua_pairs,
        b"ipairs": lua_ipairs, b"next": lua_next, b"rawget": lua_rawget,
        b"rawset": lua_rawset, b"rawequal": lua_rawequal,
        b"setmetatable": lua_setmetatable, b"getmetatable": lua_getmetatable,
        b"unpack": lua_unpack, b"print": lua_print,
        b"collectgarbage": lua_collectgarbage, b"gcinfo": lua_gcinfo,
        b"loadstring": lua_loadstring,
    }
    for k, v in lib.items():
        G.set(k, v)
    G.set(b"_G", G)
    G.set(b"_VERSION", b"Lua 5.1")
    return G

