"""Argument checking for library functions, with Lua 5.1's lauxlib error texts.

A library function is ``f(*args) -> tuple``; these helpers take the whole
``args`` tuple and a 1-based position, so a missing argument is told apart
from an explicit nil exactly as luaL_typerror does ("got no value" vs
"got nil"). The conversions are lauxlib's: a number is accepted where a
string is expected (formatted "%.14g") and a numeric string where a number
is expected; integers are truncated toward zero as the C casts do.

One difference from Lua: the name in "bad argument #N to 'name'" is the
library's own name for the function, whereas Lua reports the name the
call site used (and, for a method call ``s:rep()``, shifts N by one).
"""

from __future__ import annotations

from .value import LuaError, number_to_bytes, str_to_number, type_name

#: (lua_Integer)d on x86-64 for NaN, infinities and out-of-range values.
_INT64_MIN = -(1 << 63)


def arg_error(n: int, fname: str, extramsg: str | bytes) -> LuaError:
    """luaL_argerror's error (returned, the caller raises it).

    The error carries ``arg_n``, ``fname`` and ``extramsg`` so that a runtime
    that knows the call was a method call (``s:rep()``) can renumber it as
    Lua does: #N-1, or "calling 'rep' on bad self (...)" for N = 1.
    """
    if isinstance(extramsg, str):
        extramsg = extramsg.encode()
    e = LuaError(b"bad argument #%d to '%s' (%s)" % (n, fname.encode(), extramsg))
    e.arg_n = n
    e.fname = fname
    e.extramsg = extramsg
    return e


def runtime_error(e: LuaError) -> LuaError:
    """Mark e as an error raised *inside* a C function (luaG_runerror while a C
    function runs adds no position), e.g. a comparison in table.sort or a nil
    key while cmsgpack fills a table: the runtime must not prefix the calling
    Lua code's position (the marker is kvserver.lua.runtime.positioned's)."""
    e.lua_positioned = True
    return e


def type_error(args: tuple, n: int, fname: str, expected: str) -> LuaError:
    """luaL_typerror's error: 'X expected, got Y' ('no value' for a missing argument)."""
    got = "no value" if n > len(args) else type_name(args[n - 1])
    return arg_error(n, fname, f"{expected} expected, got {got}")


def check_str(args: tuple, n: int, fname: str) -> bytes:
    """luaL_checklstring: a string, or a number converted to one."""
    if n <= len(args):
        v = args[n - 1]
        t = type(v)
        if t is bytes:
            return v
        if t is int or t is float:
            return number_to_bytes(v)
    raise type_error(args, n, fname, "string")


def opt_str(args: tuple, n: int, fname: str, default: bytes) -> bytes:
    if n > len(args) or args[n - 1] is None:
        return default
    return check_str(args, n, fname)


def check_num(args: tuple, n: int, fname: str) -> int | float:
    """luaL_checknumber: a number, or a string that converts to one."""
    if n <= len(args):
        v = args[n - 1]
        t = type(v)
        if t is int or t is float:
            return v
        if t is bytes:
            r = str_to_number(v)
            if r is not None:
                return r
    raise type_error(args, n, fname, "number")


def opt_num(args: tuple, n: int, fname: str, default: int | float) -> int | float:
    if n > len(args) or args[n - 1] is None:
        return default
    return check_num(args, n, fname)


def to_integer(x: int | float) -> int:
    """(lua_Integer)x: truncation toward zero, x86-64's INT64_MIN when out of range."""
    if type(x) is int:
        if -(1 << 63) <= x < (1 << 63):
            return x
        return _INT64_MIN
    if x != x or x >= 9.223372036854775807e18 or x < -9.223372036854775808e18:
        return _INT64_MIN
    return int(x)


def to_int32(x: int | float) -> int:
    """(int)(lua_Integer)x, as luaL_checkint does: the low 32 bits, signed."""
    i = to_integer(x) & 0xFFFFFFFF
    return i - (1 << 32) if i & 0x80000000 else i


def check_integer(args: tuple, n: int, fname: str) -> int:
    return to_integer(check_num(args, n, fname))


def opt_integer(args: tuple, n: int, fname: str, default: int) -> int:
    if n > len(args) or args[n - 1] is None:
        return default
    return to_integer(check_num(args, n, fname))


def check_int(args: tuple, n: int, fname: str) -> int:
    return to_int32(check_num(args, n, fname))


def opt_int(args: tuple, n: int, fname: str, default: int) -> int:
    if n > len(args) or args[n - 1] is None:
        return default
    return to_int32(check_num(args, n, fname))
