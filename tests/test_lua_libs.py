"""kvserver.lua's libraries (string, table, math, cjson, bit, struct, cmsgpack).

The core is a differential table: each case is a library call evaluated by a
real redis-server 7.0.15 (EVAL, one per case, on a server started for the
session and stopped by PID) and by our library function, compared as tagged
serializations (value, type, exact error text). Every case runs twice on our
side: called from Python with a stand-in runtime, and as the same Lua code
through kvserver's interpreter (where error positions must match too).
Randomized batches (patterns, format specs, JSON, msgpack, struct formats,
encodings) go to Redis in one EVAL each. Further tests check what a
difference test cannot: the fast lanes against the slow ones, limits,
interruption through the runtime's hook, complexity against an adversary.

    python tests/test_lua_libs.py     # lists every differing case (development)
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from luadiff import (LUA_SER_FUNCTIONS, REDIS_SERVER, Lua, Redis, lua_expr,  # noqa: E402
                     lua_literal, py_run, py_ser, py_value, redis_run, runtime_run, start_redis)

from kvserver.lua import lib_bit, lib_cjson, lib_cmsgpack, lib_struct  # noqa: E402
import importlib  # noqa: E402
_mods = {}
for _n in ("string", "table", "math", "cjson", "bit", "struct", "cmsgpack"):
    try:
        _mods[_n] = importlib.import_module("kvserver.lua.lib_" + _n)
    except ImportError:
        pass
from kvserver.lua import lib_math, lib_string, lib_table, lpattern  # noqa: E402
from kvserver.lua.value import LuaError, LuaTable, tostring, type_name  # noqa: E402


class StandInRuntime:
    """The parts of kvserver.lua.runtime.Runtime the libraries use."""

    def __init__(self) -> None:
        self.hook_calls = 0
        self.hook = None

    def tostring(self, v):
        if type(v) is LuaTable and v.metatable is not None:
            h = v.metatable.get(b"__tostring")
            if h is not None:
                return self.call(h, v)[0]
        return tostring(v)

    def call(self, f, *args):
        if not callable(f) or type(f) is LuaTable:
            raise LuaError(b"attempt to call a %s value" % type_name(f).encode())
        return tuple(f(*args))

    def lt(self, a, b):
        ta, tb = type(a), type(b)
        if ta in (int, float) and tb in (int, float):
            return a < b
        if ta is bytes and tb is bytes:
            return a < b
        na, nb = type_name(a), type_name(b)
        if na == nb:
            raise LuaError(b"attempt to compare two %s values" % na.encode())
        raise LuaError(b"attempt to compare %s with %s" % (na.encode(), nb.encode()))

    def check_hook(self):
        self.hook_calls += 1
        if self.hook is not None:
            self.hook()


RT = StandInRuntime()
LIBS = {n: m.open(RT) for n, m in _mods.items()}
NULL = LIBS["cjson"].get(b"null") if "cjson" in LIBS else None


def lib_fn(name: str):
    lib, _, fn = name.partition(".")
    f = LIBS[lib].get(fn.encode())
    assert f is not None, name
    return f


def lua_fn(src: str, py):
    return Lua(src, py)


def _t(*items, **fields):
    """A LuaTable argument: positional items then fields."""
    d = {i: v for i, v in enumerate(items, 1)}
    d.update({k.encode(): v for k, v in fields.items()})
    return d


def _deep_list(depth):
    v = [1]
    for _ in range(depth - 1):
        v = [v]
    return v


# Lua functions as arguments (Lua source for Redis, Python for us).
UPPER = lua_fn("function(s) return s:upper() end", lambda s: (s.upper(),))
RET_NIL = lua_fn("function() return nil end", lambda *a: (None,))
RET_FALSE = lua_fn("function() return false end", lambda *a: (False,))
RET_TABLE = lua_fn("function() return {} end", lambda *a: (LuaTable(),))
RET_NUM = lua_fn("function() return 42 end", lambda *a: (42,))
CAT2 = lua_fn("function(a, b) return b .. a end", lambda a, b: (b + a,))
GT = lua_fn("function(a, b) return a > b end", lambda a, b: (RT.lt(b, a),))
ALWAYS = lua_fn("function(a, b) return true end", lambda a, b: (True,))
ERRF = lua_fn("function(a, b) error('boom', 0) end", lambda *a: (_ for _ in ()).throw(LuaError(b"boom")))

ADDKV = lua_fn("function(k, v) return k + v end", lambda k, v: (k + v,))

S = b"hello world from Lua"

CASES = [
    # -- string.len/sub/upper/lower/rep/reverse/byte/char
    ("string.len", b"abc"), ("string.len", 123), ("string.len", 1.5), ("string.len",),
    ("string.len", None), ("string.len", _t()),
    ("string.sub", S, 3), ("string.sub", S, 3, 5), ("string.sub", S, -3), ("string.sub", S, -100, 2),
    ("string.sub", S, 0), ("string.sub", S, 5, 2), ("string.sub", S, 2, 100), ("string.sub", S, 2.7, 4.2),
    ("string.sub", S, "2", "4"), ("string.sub", S), ("string.sub", S, "x"), ("string.sub", S, None),
    ("string.sub", 12345, 2, 3), ("string.sub", S, -3, -2),
    ("string.upper", b"aBc\xe9z"), ("string.lower", b"AbC\xc9Z"), ("string.upper", 12),
    ("string.rep", b"ab", 3), ("string.rep", b"ab", 0), ("string.rep", b"ab", -1), ("string.rep", b"", 5),
    ("string.rep", b"ab", 2.9), ("string.rep", b"ab"), ("string.rep", b"x", "3"),
    ("string.reverse", b"abc"), ("string.reverse", b""),
    ("string.byte", b"ABC"), ("string.byte", b"ABC", 2), ("string.byte", b"ABC", 1, 3),
    ("string.byte", b"ABC", -1), ("string.byte", b"ABC", 10), ("string.byte", b"ABC", 0, 10),
    ("string.byte", b""), ("string.byte", b"ABC", 3, 1), ("string.byte", b"a" * 7997, 1, -1),
    ("string.byte", b"a" * 7998, 1, -1), ("string.byte", b"a" * 7998, -7998), ("string.byte", b"a" * 7999, -7998),
    ("string.char", 72, 105), ("string.char",), ("string.char", 256), ("string.char", -1),
    ("string.char", 65, "66"), ("string.char", 65, None), ("string.char", 65.9),
    # -- string.format
    ("string.format", b"%5.2f|%-5d|%q", 3.14159, 42, b"a\nb"),
    ("string.format", b"%d", 3.9), ("string.format", b"%d", -3.9), ("string.format", b"%d", "12"),
    ("string.format", b"%d", b"x"), ("string.format", b"%d"), ("string.format", b"%d %d", 1),
    ("string.format", b"%5d|%-5d|%05d|%+d|% d", 42, 42, 42, 42, 42),
    ("string.format", b"%.3d|%3.2d", 7, 7), ("string.format", b"%i", 2**40),
    ("string.format", b"%d", 1e20), ("string.format", b"%d", 1/3),
    ("string.format", b"%x|%X|%o", 255, 255, 8), ("string.format", b"%#x|%#X|%#o", 255, 255, 8),
    ("string.format", b"%#x|%#o", 0, 0), ("string.format", b"%x", -1), ("string.format", b"%u", -1),
    ("string.format", b"%5x|%-5x|%05x", 10, 10, 10), ("string.format", b"%.3x", 10),
    ("string.format", b"%x", 2**53), ("string.format", b"%x", 1e19),
    ("string.format", b"%c%c%c", 76, 117, 97), ("string.format", b"%c", 0), ("string.format", b"a%cb", 0),
    ("string.format", b"%5c|%-5c", 65, 66), ("string.format", b"%c", 321),
    ("string.format", b"%e", 12345.6789), ("string.format", b"%E", 0.000123), ("string.format", b"%.0e", 5.5),
    ("string.format", b"%f", 1/3), ("string.format", b"%.0f", 2.5), ("string.format", b"%.10f", math.pi),
    ("string.format", b"%10.3f|%-10.3f|%010.3f", 3.14159, 3.14159, -3.14159),
    ("string.format", b"%g", 100000), ("string.format", b"%g", 1000000), ("string.format", b"%g", 1e-5),
    ("string.format", b"%g", 0.0001), ("string.format", b"%G", 1e-10), ("string.format", b"%#g", 1.0),
    ("string.format", b"%.3g", 3.14159), ("string.format", b"%.14g", 0.1), ("string.format", b"%.20g", 0.1),
    ("string.format", b"%f", math.inf), ("string.format", b"%f", -math.inf), ("string.format", b"%5.1f", math.inf),
    ("string.format", b"%e", math.inf), ("string.format", b"%G", -math.inf), ("string.format", b"%f", math.nan), ("string.format", b"%f", -math.nan), ("string.format", b"%5.1e", -math.nan),
    ("string.format", b"%d", math.inf),
    ("string.format", b"%s", b"abc"), ("string.format", b"%s", 1.5), ("string.format", b"%s", 10),
    ("string.format", b"%s", None), ("string.format", b"%s", True), ("string.format", b"%s", _t()),
    ("string.format", b"%10s|%-10s|%.2s", b"abc", b"abc", b"abc"), ("string.format", b"%s", b"a\0b"),
    ("string.format", b"%5s", b"a\0b"), ("string.format", b"%s", b"x" * 150 + b"\0y"),
    ("string.format", b"%.200s", b"x"), ("string.format", b"%.99s", b"x" * 120),
    ("string.format", b"%q", b'a"b\\c\rd\0e\x01f'), ("string.format", b"%q", 1/3), ("string.format", b"%q", 7),
    ("string.format", b"%%|%5%"), ("string.format", b"%"), ("string.format", b"%y", 1),
    ("string.format", b"%123d", 1), ("string.format", b"%1.123f", 1), ("string.format", b"%------d", 1),
    ("string.format", b"%-----d", 1), ("string.format", b"%ld", 1), ("string.format", b"%99.99f", 1.0),
    ("string.format", 12), ("string.format",), ("string.format", b"no conversions"),
    ("string.format", b"%d%%", 50), ("string.format", b"%5.1s|", b"abc"),
    ("string.format", b"%+.0f|% .0f", 2.0, 2.0), ("string.format", b"%+x", 5), ("string.format", b"% u", 5),
    ("string.format", b"%-#8x|%#08x|%#8o", 255, 255, 8), ("string.format", b"%.0x|%.0o|%.0d", 0, 0, 0),
    # -- find/match/gmatch/gsub
    ("string.find", S, b"o w"), ("string.find", S, b"o", 6), ("string.find", S, b"o", -5),
    ("string.find", S, b"l+"), ("string.find", S, b"(l+)(o)"), ("string.find", S, b"xyz"),
    ("string.find", S, b""), ("string.find", S, b"", 100), ("string.find", S, b"", -100),
    ("string.find", b"a.b", b".", 1, True), ("string.find", b"a.b", b"%.", 1), ("string.find", b"a+b", b"+", 1, True),
    ("string.find", S, b"^hello"), ("string.find", S, b"^world"), ("string.find", S, b"Lua$"),
    ("string.find", S, b"(h)(e)(l)"), ("string.find", S, b"()ll()"),
    ("string.find", b"abc", b"b", None), ("string.find", b"abc", b"[a"), ("string.find", b"", b"a["),
    ("string.find", b"abc", b"%"), ("string.find", b"abc", b"(a"), ("string.find", b"abc", b"a)"),
    ("string.find", b"abc", b"%1"), ("string.find", b"abc", b"(a)%2"), ("string.find", b"abc", b"(a%1)"),
    ("string.find", b"abc", b"%b"), ("string.find", b"abc", b"%ba"), ("string.find", b"abc", b"%f"),
    ("string.find", b"abc", b"%fa"), ("string.find", b"abc", b"%f[a"),
    ("string.find", b"a\0b", b"\0"), ("string.find", b"a\0b", b"%z"), ("string.find", b"a\0b", b"b\0x"),
    ("string.match", S, b"(%a+) (%a+)"), ("string.match", S, b"%a+", 7), ("string.match", S, b"()o()"),
    ("string.match", b"key=val", b"(%w+)=(%w+)"), ("string.match", b"  trim  ", b"^%s*(.-)%s*$"),
    ("string.match", b"f(a(b)c)d", b"%b()"), ("string.match", b"THE (quick) fox", b"%f[%a]%a+"),
    ("string.match", b"hello", b".-"), ("string.match", b"hello", b".-l"), ("string.match", b"hello", b"l*"),
    ("string.match", b"hello", b"l+"), ("string.match", b"hello", b"x?h"), ("string.match", b"hello", b"h?e?x?l"),
    ("string.match", b"abcabc", b"(abc)%1"), ("string.match", b"[]]", b"[]]+"), ("string.match", b"a-b", b"[a-]+"),
    ("string.match", b"a^b", b"[%^^]"), ("string.match", b"x^y", b"x^y"), ("string.match", b"x$y", b"x$y"),
    ("string.match", b"12ab", b"[^%d]+"), ("string.match", b"a1_B2", b"[%w_]+"), ("string.match", b"AbC", b"%u%l%u"),
    ("string.match", b"\t x", b"%s+"), ("string.match", b"a,b;c", b"%p"), ("string.match", b"\x01\x7f", b"%c+"),
    ("string.match", b"0xFFg", b"%x+", 3), ("string.match", b"abc", b"%A"), ("string.match", b"ab12", b"%D+"),
    ("string.match", b"THE END", b"%f[%w]%w+$"), ("string.match", b"hello", b"()", 3), ("string.match", b"x", b"(()")
    , ("string.match", b"hello", b"^(h)(.)"), ("string.match", b"a.b.c", b"^(.-)%.(.*)$"),
    ("string.match", b"2024-01-02", b"(%d+)-(%d+)-(%d+)"), ("string.match", b"abc", b"[b-]"),
    ("string.match", b"a]b", b"[%]]"), ("string.match", b"z", b"[a-c-z]"),
    ("string.gsub", b"hello world", b"o", b"0"), ("string.gsub", b"hello world", b"o", b"0", 1),
    ("string.gsub", b"hello", b"", b"-"), ("string.gsub", b"hello world", b"(%w+)", b"<%1>"),
    ("string.gsub", b"hello world", b"%w+", b"%0 %0"), ("string.gsub", b"abc", b"%w", b"%%"),
    ("string.gsub", b"abc", b"%w", b"%2"), ("string.gsub", b"abc", b"(%w)", b"%2"),
    ("string.gsub", b"abc", b"%w", b"%"), ("string.gsub", b"abc", b"%w", b"x%y"),
    ("string.gsub", b"hello world", b"%w+", UPPER), ("string.gsub", b"hello world", b"%w+", RET_NIL),
    ("string.gsub", b"hello world", b"%w+", RET_FALSE), ("string.gsub", b"hello world", b"%w+", RET_TABLE),
    ("string.gsub", b"hello world", b"%w+", RET_NUM), ("string.gsub", b"hello world", b"(%w+) (%w+)", CAT2),
    ("string.gsub", b"$name is $age", b"%$(%w+)", _t(name=b"Bob", age=42)),
    ("string.gsub", b"$name is $x", b"%$(%w+)", _t(name=True)),
    ("string.gsub", b"abc", b"%w", None), ("string.gsub", b"abc", b"%w", True), ("string.gsub", b"abc", b"%w"),
    ("string.gsub", b"abc", b"^%w", b"X"), ("string.gsub", b"abc", b"^", b"X"), ("string.gsub", b"abc", b"$", b"X"),
    ("string.gsub", b"abc", b"x*", b"-"), ("string.gsub", b"abc", b"b*", b"-"), ("string.gsub", b"abc", b"%w", 5),
    ("string.gsub", b"abc", b"%w", b"x", 0), ("string.gsub", b"abc", b"%w", b"x", -1), ("string.gsub", b"abc", b"%w", b"x", 2.5),
    ("string.gsub", b"a b", b"()", b"%1"), ("string.gsub", b"abc", b"(b)", b"[%0%1]"),
    ("string.gsub", 123, 2, 9), ("string.gsub", b"abc", b"[", b"x"),
    ("string.gfind", b"a", b"a"),
    # -- more edges: format flags, sets, replacement escapes
    ("string.format", b"%5.3s|%-+5d|% 5.2f|%#.3g|%#10x|%-#10o", b"abcdef", 3, 2.5, 1.0, 255, 8),
    ("string.format", b"%#10x|%#010x|%-#10X|%#10.4x|%#10o|%#010o|%#.5o|%#.2o|%#.0o|%#5.0o", 255, 255, 255, 255, 8, 8, 8, 8, 0, 0),
    ("string.format", b"%#05.0o|%#05.0o|%#-5.0o|%05.0x|%#05.0x", 0, 8, 0, 0, 0),
    ("string.format", b"%x|%x|%x|%x", math.inf, -math.inf, -math.nan, math.nan), ("string.format", b"%u", 1e20),
    ("string.format", b"%u|%u|%u", -1e19, 1.5e19, -2.0**63), ("string.format", b"%o", -1), ("string.format", b"%i", b"0x10"), ("string.format", b"%d", 2**63),
    ("string.format", b"%d", -2**63), ("string.format", b"%x", -2**63), ("string.format", b"%u", 2**64),
    ("string.format", b"%.0f|%.1f|%.2f", 0.5, 0.25, 1.005), ("string.format", b"%e", 0), ("string.format", b"%g", -0.0),
    ("string.format", b"%5.2e|%-12.4E|%+g", 123.456, 0.000123, 5), ("string.format", b"%c", b"65"),
    ("string.format", b"%.3c", 65), ("string.format", b"%05s", b"ab"), ("string.format", b"%-05d", 7),
    ("string.format", b"%#5.0f|%#.0e", 3.0, 3.0), ("string.format", b"%+5s", b"x"), ("string.format", b"%q", b"\x80\xff"),
    ("string.format", b"%s %s", 1e100, -1e-100), ("string.format", b"%s", 2**53 + 1), ("string.format", b"%d", b" 12 "),
    ("string.format", b"%d", b"1e2"), ("string.format", b"%x", b"0x1p4"), ("string.format", b"%s", 1e15),
    ("string.format", b"%s", 123456789012345678), ("string.format", b"%s", 0.1 + 0.2),
    ("string.match", b"a-z", b"[%a-z]+"), ("string.match", b"5-a", b"[a-%d]+"), ("string.find", b"x", b"[]"),
    ("string.find", b"x", b"[^]"), ("string.match", b"]", b"[]]"), ("string.match", b"^]", b"[^]]"),
    ("string.match", b"a.b", b"[.]"), ("string.match", b"a%b", b"[%%]"), ("string.match", b"-a", b"[-a]+"),
    ("string.match", b"zyx", b"[z-a]"), ("string.match", b"abc", b"(.-)$"), ("string.match", b"abc", b".-$"),
    ("string.gsub", b"abc", b"%w", b"%1"), ("string.gsub", b"abc", b"", b"%0"), ("string.gsub", b"abc", b"", b"%1"),
    ("string.gsub", b"hello world", b"(o)", b"%1%1"), ("string.gsub", b"abc", b".", {b"a": 1, b"b": True}),
    ("string.gsub", b"abc", b"%w", b"%"), ("string.gsub", b"a.b", b"%.", b"%%"), ("string.gsub", b"abc", b"()", b"%1"),
    ("string.find", b"abc", b"b", 1.9), ("string.find", b"abc", b"b", b"2"), ("string.find", b"abc", b"b", b"x"),
    ("string.find", b"abc", b"b", -1), ("string.find", b"abc", b"c", -1), ("string.find", b"abc", b"", 4),
    ("string.find", b"abc", b"", 5), ("string.match", b"abc", b"^(a)(b)(c)$"), ("string.match", b"  x", b"^%s*()"),
    ("string.find", b"a\nb", b"."), ("string.match", b"a\nb", b"a.b"), ("string.match", b"\xe9t\xe9", b"%a+"),
    ("string.upper", b"\xe9"), ("string.match", b"x" * 100 + b"y", b"x*y"), ("string.match", b"AB12", b"%u+()%d+"),
    ("string.gsub", b"one two  three", b"%s+", b" "), ("string.gsub", b"CamelCaseString", b"(%u)", b"_%1"),
    ("string.gsub", b"key=val; k2=v2", b"(%w+)=(%w+)", b"%2=%1"), ("string.match", b"[tag]", b"^%[(.*)%]$"),
    ("string.match", b"2024-01-02T10:20:30Z", b"^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$"),
    # -- math
    ("math.abs", -3), ("math.abs", b"-2.5"), ("math.abs", b"x"), ("math.abs",), ("math.abs", -0.0),
    ("math.floor", 3.7), ("math.floor", -3.2), ("math.floor", b"4.5"), ("math.floor", math.inf),
    ("math.floor", -0.5), ("math.ceil", 3.2), ("math.ceil", -3.7), ("math.ceil", -0.5), ("math.ceil", 2**60),
    ("math.sqrt", 2), ("math.sqrt", -1), ("math.sqrt", math.inf), ("math.sin", 1), ("math.sin", math.inf), ("math.sqrt", -0.0), ("math.sqrt", math.nan),
    ("math.cos", 1), ("math.tan", 1), ("math.asin", 0.5), ("math.asin", 2), ("math.acos", 0.5), ("math.acos", -2),
    ("math.atan", 1), ("math.atan2", 1, 2), ("math.atan2", 0, -1), ("math.atan2", 1),
    ("math.sinh", 1), ("math.sinh", 1000), ("math.sinh", -1000), ("math.cosh", 1), ("math.cosh", -1000),
    ("math.tanh", 0.5), ("math.tanh", 1000), ("math.pow", 2, 10), ("math.pow", 2, 0.5), ("math.pow", -8, 1 / 3),
    ("math.pow", 0, -1), ("math.pow", -0.0, -1), ("math.pow", 10, 400), ("math.pow", -10, 401), ("math.pow", 2),
    ("math.exp", 1), ("math.exp", 1000), ("math.exp", -1000), ("math.log", 10), ("math.log", 0), ("math.log", -1),
    ("math.log", math.inf), ("math.log10", 1000), ("math.log10", 0), ("math.log10", -5), ("math.log", 8, 2),
    ("math.fmod", 7, 3), ("math.fmod", -7, 3), ("math.fmod", 7, -3), ("math.fmod", 7.5, 2), ("math.fmod", 1, 0),
    ("math.fmod", math.inf, 1), ("math.fmod", 1, math.inf), ("math.fmod", 5), ("math.mod", 7, 3),
    ("math.modf", 3.7), ("math.modf", -3.7), ("math.modf", 5), ("math.modf", math.inf), ("math.modf", -math.inf),
    ("math.frexp", 8), ("math.frexp", 0), ("math.frexp", -3.5), ("math.frexp", 1e-310),
    ("math.ldexp", 0.5, 4), ("math.ldexp", 1, 2000), ("math.ldexp", -1, 2000), ("math.ldexp", 1, -2000),
    ("math.ldexp", 1), ("math.ldexp", 1, 2.9),
    ("math.deg", math.pi), ("math.deg", 1), ("math.rad", 180), ("math.rad", 1),
    ("math.min", 3, 1, 2), ("math.min", b"3", 5), ("math.min",), ("math.min", 1, b"x"), ("math.min", 1.5),
    ("math.max", 3, 1, 2), ("math.max", -1, -5), ("math.max",), ("math.max", 1, None),
    ("math.random", 1, 2, 3), ("math.random", 0), ("math.random", 5, 4), ("math.random", b"x"),
    ("math.random", 1, b"x"), ("math.random", -5), ("math.randomseed",), ("math.randomseed", b"x"),
    # -- cjson
    ("cjson.encode", [1, 2, _t(a=1)]), ("cjson.encode", _t()), ("cjson.encode", b"a/b\"c\\d\n\x01\x7f\xe9"),
    ("cjson.encode", 3.14159265358979), ("cjson.encode", 1e15), ("cjson.encode", 2**53), ("cjson.encode", -0.0),
    ("cjson.encode", 0.1), ("cjson.encode", 1 / 3), ("cjson.encode", 100), ("cjson.encode", -5),
    ("cjson.encode", 1e300), ("cjson.encode", 123456789012345), ("cjson.encode", math.inf),
    ("cjson.encode", math.nan), ("cjson.encode", True), ("cjson.encode", False), ("cjson.encode", None),
    ("cjson.encode",), ("cjson.encode", 1, 2), ("cjson.encode", Lua("cjson.null", NULL)),
    ("cjson.encode", Lua("string.len", lib_string.str_len)),
    ("cjson.encode", {1: 1, 2: 2, 4: 4}), ("cjson.encode", {1: 1, 20: 2}), ("cjson.encode", {11: 1}),
    ("cjson.encode", {10: 1}), ("cjson.encode", {0: b"z"}), ("cjson.encode", {1.5: 1}), ("cjson.encode", {-1: 1}),
    ("cjson.encode", {True: 1}), ("cjson.encode", _t(x=_t())), ("cjson.encode", [[[[]]]]),
    ("cjson.encode", [_t(k=[1, b"two", None]), False]), ("cjson.encode", [1, Lua("string.len", lib_string.str_len)]),
    ("cjson.encode", {1: 1, 3: 3}), ("cjson.encode", _t(n=math.inf)),
    ("cjson.decode", b'{"a":1}'), ("cjson.decode", b"[1,2,3]"), ("cjson.decode", b"[]"), ("cjson.decode", b"{}"),
    ("cjson.decode", b'"str\\u00e9\\n\\/\\"\\t"'), ("cjson.decode", b"  12.5e3  "), ("cjson.decode", b"-0"),
    ("cjson.decode", b"null"), ("cjson.decode", b"[null,true,false]"), ("cjson.decode", b"abc"),
    ("cjson.decode", b""), ("cjson.decode", b"["), ("cjson.decode", b"[1,"), ("cjson.decode", b"[1 2]"),
    ("cjson.decode", b'{"a" 1}'), ("cjson.decode", b"{1:2}"), ("cjson.decode", b'{"a":1,}'), ("cjson.decode", b"[1]x"),
    ("cjson.decode", b'"abc'), ("cjson.decode", b'"a\\qb"'), ("cjson.decode", b'"\\u12"'), ("cjson.decode", b'"\\ud800"'),
    ("cjson.decode", b'"\\ud83d\\ude00"'), ("cjson.decode", b'"\\udc00\\ud800"'), ("cjson.decode", b"0x10"),
    ("cjson.decode", b"+1"), ("cjson.decode", b"007"), ("cjson.decode", b"inf"), ("cjson.decode", b"-Infinity"),
    ("cjson.decode", b"nan"), ("cjson.decode", b"1e"), ("cjson.decode", b"-"), ("cjson.decode", b"tru"),
    ("cjson.decode", b"1\x00junk"), ("cjson.decode", b"\x001"), ("cjson.decode", b"1\x002"), ("cjson.decode", 42),
    ("cjson.decode",), ("cjson.decode", None), ("cjson.decode", _t()), ("cjson.decode", b"[1,2]", 1),
    ("cjson.decode", b'{"a":{"b":[1,{"c":null}]}}'), ("cjson.decode", b'{"a":1,"a":2}'),
    ("cjson.decode", b"[" * 1000 + b"]" * 1000), ("cjson.decode", b"[" * 1001 + b"]" * 1001),
    ("cjson.decode", b'{"a":' * 1001 + b"1" + b"}" * 1001), ("cjson.decode", b"9007199254740993"),
    ("cjson.decode", b"123456789012345678901234567890"), ("cjson.decode", b"[1,]"), ("cjson.decode", b"\x7f"),
    ("cjson.decode", b'"\xff\xfe"'), ("cjson.decode", b'"a\nb"'), ("cjson.decode", b"1.5E+2"),
    # -- bit
    ("bit.tobit", 0xFFFFFFFF), ("bit.tobit", 2**32 + 5), ("bit.tobit", -1), ("bit.tobit", 1.5), ("bit.tobit", 2.5),
    ("bit.tobit", -2.5), ("bit.tobit", b"10"), ("bit.tobit", b"x"), ("bit.tobit",), ("bit.tobit", None),
    ("bit.tobit", 2**52 + 7), ("bit.tobit", 1e300), ("bit.tobit", math.inf), ("bit.tobit", 2**31),
    ("bit.tohex", 1), ("bit.tohex", -1), ("bit.tohex", 255, 2), ("bit.tohex", 255, -4), ("bit.tohex", 255, 12),
    ("bit.tohex", 255, 0), ("bit.tohex", 0x12345678, 3), ("bit.tohex", 1, None),
    ("bit.bnot", 0), ("bit.bnot", 5), ("bit.band", 0xFF, 0x0F, 0x3), ("bit.band", 7), ("bit.band",),
    ("bit.bor", 1, 2, 4), ("bit.bxor", 5, 3), ("bit.bxor", 1, b"x"), ("bit.band", -1, 0xFFFF),
    ("bit.lshift", 1, 31), ("bit.lshift", 1, 32), ("bit.lshift", 1, 33), ("bit.lshift", 3, -1),
    ("bit.rshift", -1, 28), ("bit.rshift", 256, 4), ("bit.arshift", -256, 4), ("bit.arshift", 256, 4),
    ("bit.rol", 0x12345678, 8), ("bit.rol", 0x12345678, 0), ("bit.ror", 0x12345678, 8), ("bit.ror", 1, 1),
    ("bit.bswap", 0x12345678), ("bit.bswap", -1), ("bit.lshift", 1),
    # -- struct
    ("struct.pack", b">I2", 258), ("struct.pack", b"<i", -2), ("struct.pack", b"bBhHlLTiI", -1, 255, -2, 65535, -3, 7, 8, 9, 10),
    ("struct.pack", b">d", 1.5), ("struct.pack", b"<f", 0.1), ("struct.pack", b"f", 1e300), ("struct.pack", b"s", b"abc"),
    ("struct.pack", b"c5", b"abcdefg"), ("struct.pack", b"c0", b"xyz"), ("struct.pack", b"c5", b"ab"),
    ("struct.pack", b"!4 b i", 1, 2), ("struct.pack", b"!b d", 1, 2), ("struct.pack", b"!3i", 1), ("struct.pack", b"z", 1),
    ("struct.pack", b"i33", 1), ("struct.pack", b"i16", -1), ("struct.pack", b">i12", 1), ("struct.pack", b"i"), ("struct.pack", b"ii", 1), ("struct.pack", b"iii", 1),
    ("struct.pack", b"i", b"x"), ("struct.pack", b"xxb", 5), ("struct.pack", b"I", 2**32 + 1), ("struct.pack", b"b", 300),
    ("struct.pack", b"i99999999999", 1), ("struct.pack", b"h", 1.7), ("struct.pack", b"h", -1.7), ("struct.pack",),
    ("struct.unpack", b">I2", b"\x01\x02"), ("struct.unpack", b"<i", b"\xfe\xff\xff\xff"), ("struct.unpack", b"b", b"\xff"),
    ("struct.unpack", b"B", b"\xff"), ("struct.unpack", b"i", b"ab"), ("struct.unpack", b"s", b"abc\0rest"),
    ("struct.unpack", b"s", b"abc"), ("struct.unpack", b"c3", b"abcdef", 2), ("struct.unpack", b"b", b"abc", 0),
    ("struct.unpack", b"b c0", b"\x02abc"), ("struct.unpack", b"c0", b"abc"), ("struct.unpack", b">d", b"?\xf8\0\0\0\0\0\0"),
    ("struct.unpack", b"f", b"\xcd\xcc\xcc\x3d"), ("struct.unpack", b"!4 b i", b"\x01\0\0\0\x02\0\0\0"),
    ("struct.unpack", b"l", b"\xff" * 8), ("struct.unpack", b"L", b"\xff" * 8), ("struct.unpack", b"i16", b"\xff" * 16),
    ("struct.unpack", b"I9", b"\x01" * 9), ("struct.unpack", b">i9", b"\x80" + b"\0" * 8), ("struct.unpack", b"x", b""),
    ("struct.unpack", b"z", b"a"), ("struct.unpack", b"b", b"a", 5),
    ("struct.unpack", b"b" * 7996, b"\0" * 7996), ("struct.unpack", b"b" * 7997, b"\0" * 7997),
    ("struct.unpack", b"b" * 7996 + b" ", b"\0" * 7996), ("struct.unpack", b"b" * 7996, b"\0" * 7996, 1),
    ("struct.size", b"bhi"), ("struct.size", b"!bhid"), ("struct.size", b"s"), ("struct.size", b"c0"), ("struct.size", b"c7"),
    ("struct.size", b"z"), ("struct.size", b"?"), ("struct.size", b"<>!2i"),
    # -- cmsgpack
    ("cmsgpack.pack", 1), ("cmsgpack.pack", 127), ("cmsgpack.pack", 128), ("cmsgpack.pack", 255), ("cmsgpack.pack", 256),
    ("cmsgpack.pack", 65536), ("cmsgpack.pack", 2**32), ("cmsgpack.pack", -1), ("cmsgpack.pack", -33),
    ("cmsgpack.pack", -129), ("cmsgpack.pack", -32769), ("cmsgpack.pack", -2**31 - 1), ("cmsgpack.pack", 1.5),
    ("cmsgpack.pack", 0.1), ("cmsgpack.pack", math.inf), ("cmsgpack.pack", math.nan), ("cmsgpack.pack", 2.0**63),
    ("cmsgpack.pack", -2.0**63), ("cmsgpack.pack", 1e300), ("cmsgpack.pack", -0.0),
    ("cmsgpack.pack", b"abc"), ("cmsgpack.pack", b"x" * 31), ("cmsgpack.pack", b"x" * 32), ("cmsgpack.pack", b"x" * 256),
    ("cmsgpack.pack", b"x" * 70000), ("cmsgpack.pack", True, False, None), ("cmsgpack.pack",),
    ("cmsgpack.pack", [1, 2, 3]), ("cmsgpack.pack", []), ("cmsgpack.pack", _t(a=1)), ("cmsgpack.pack", {1: 1, 3: 3}),
    ("cmsgpack.pack", {2: 2}), ("cmsgpack.pack", list(range(16))), ("cmsgpack.pack", list(range(70000))[:20]),
    ("cmsgpack.pack", Lua("cjson.null", NULL)), ("cmsgpack.pack", Lua("string.len", lib_string.str_len)),
    ("cmsgpack.pack", _deep_list(15)), ("cmsgpack.pack", _deep_list(16)), ("cmsgpack.pack", _deep_list(18)), ("cmsgpack.pack", {1.5: 1}),
    ("cmsgpack.unpack", b"\x93\x01\x02\x03"), ("cmsgpack.unpack", b"\x81\xa1a\x01"), ("cmsgpack.unpack", b"\x01\x02\x03"),
    ("cmsgpack.unpack", b""), ("cmsgpack.unpack", b"\xc1"), ("cmsgpack.unpack", b"\x92\x01"), ("cmsgpack.unpack", b"\xcd\x01"),
    ("cmsgpack.unpack", b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"), ("cmsgpack.unpack", b"\xd3\x80\0\0\0\0\0\0\0"),
    ("cmsgpack.unpack", b"\xd0\x80\xd1\x80\x00\xd2\x80\0\0\0"), ("cmsgpack.unpack", b"\xca\x3f\xc0\0\0"),
    ("cmsgpack.unpack", b"\xcb\x3f\xf8\0\0\0\0\0\0"), ("cmsgpack.unpack", b"\xd9\x03abc\xda\x00\x01z\xdb\0\0\0\x01q"),
    ("cmsgpack.unpack", b"\x81\xc0\x01"), ("cmsgpack.unpack", b"\x92\xc0\x01"), ("cmsgpack.unpack", b"\xc4\x01a"),
    ("cmsgpack.unpack", b"\xdc\x00\x02\x01\x02"), ("cmsgpack.unpack", b"\xde\x00\x01\x01\x02"), ("cmsgpack.unpack", 5),
    ("cmsgpack.unpack", b"\x91" * 3990 + b"\x01"), ("cmsgpack.unpack", b"\x91" * 4010 + b"\x01"),
    ("cmsgpack.unpack", b"\x81" * 2000 + b"\x01" * 2001), ("cmsgpack.unpack", b"\x81" * 8000 + b"\x01" * 8001),
    ("cmsgpack.unpack", b"\x01" * 7998), ("cmsgpack.unpack", b"\x01" * 7999), ("cmsgpack.unpack", b"\x01" * 8000),
    ("cmsgpack.unpack", b"\xff\xe0"), ("cmsgpack.unpack", b"\xa3ab"),
    ("cmsgpack.unpack_one", b"\x01\x02"), ("cmsgpack.unpack_one", b"\x01\x02", 1), ("cmsgpack.unpack_one", b"\x01\x02", 2),
    ("cmsgpack.unpack_one", b"\x01\x02", 3), ("cmsgpack.unpack_one", b"\x01\x02", -1), ("cmsgpack.unpack_one", b""),
    ("cmsgpack.unpack_limit", b"\x01\x02\x03", 2), ("cmsgpack.unpack_limit", b"\x01\x02\x03", 2, 2),
    ("cmsgpack.unpack_limit", b"\x01\x02\x03", 0), ("cmsgpack.unpack_limit", b"\x01\x02\x03", -1),
    ("cmsgpack.unpack_limit", b"\x01\x02\x03"), ("cmsgpack.unpack_limit", b"\x01\x02\x03", 0, 1),
    ("cmsgpack.unpack_one", None, 1),
    # -- table
    ("table.concat", [1, 2, 3]), ("table.concat", [b"a", b"b"], b", "), ("table.concat", [b"a", 2.5, 3], b"-"),
    ("table.concat", [b"a", b"b", b"c"], b",", 2), ("table.concat", [b"a", b"b", b"c"], b",", 2, 3),
    ("table.concat", [b"a", b"b", b"c"], b",", 3, 2), ("table.concat", [b"a", b"b"], b",", 1, 3),
    ("table.concat", [b"a", _t(), b"c"]), ("table.concat", [b"a", True]), ("table.concat", []),
    ("table.concat", None), ("table.concat",), ("table.concat", 1, _t()), ("table.concat", [b"a"], 5),
    ("table.concat", [b"a", b"b"], b"", 0), ("table.concat", _t(x=1)),
    ("table.getn", [1, 2, 3]), ("table.getn", []), ("table.getn", b"x"),
    ("table.maxn", [1, 2, 3]), ("table.maxn", {1: 1, 10: 2, 3.5: 3, b"x": 4}), ("table.maxn", {-5: 1}),
    ("table.maxn", {}), ("table.maxn", 1),
    ("table.setn", [1], 2), ("table.setn", 1),
    ("table.insert", [1, 2]), ("table.insert", [1, 2], 3, 4, 5), ("table.insert", None, 1),
    ("table.insert", [1, 2], b"x", 1), ("table.insert", [1, 2], 1.5, 9),
    ("table.remove", []), ("table.remove", [1], 5), ("table.remove", b"x"), ("table.remove", [1], b"x"),
    ("table.sort", [3, 1, 2], b"x"), ("table.sort", b"x"), ("table.sort", [3, 1, b"x"]),
    ("table.sort", [_t(), _t()]), ("table.sort", [3, 2, 1, 5, 4], ERRF),
    ("table.foreach", [1], 1), ("table.foreachi", 1, UPPER), ("table.foreach", [5, 6], ADDKV),
    ("table.foreachi", [5, 6], ADDKV),
    ("string.dump", Lua("string.len", lib_string.str_len)), ("string.dump", 1),
]


def _tbl(*items):
    return LuaTable.from_list(list(items))


def _mutate(make, fname, *args):
    """Call library function fname on table make() and return the table (and results)."""
    def run():
        t = make()
        r = lib_fn(fname)(t, *args)
        return (t,) + tuple(r)
    return run


def _sort_with(items, comp):
    def run():
        t = _tbl(*items)
        lib_fn("table.sort")(t, comp.py) if comp is not None else lib_fn("table.sort")(t)
        return (t,)
    return run


def _snip(lua_make, fname, *args):
    """(Lua expression, Python thunk): t = lua_make; fname(t, args...); return t, results."""
    lua = "(function() local t = %s; return t, %s(t%s) end)()" % (
        lua_make, fname, "".join(", " + lua_literal(a) for a in args))
    return lua


SORT_INPUTS = [
    [5, 3, 8, 1, 9, 2, 7], list(range(20, 0, -1)), [b"pear", b"apple", b"fig", b"apple"],
    [3, 1, 2, 3, 1, 2, 3, 1], [1.5, -2, 1e10, 0, -0.5], [1] * 9,
]
CMP_FIRST = lua_fn("function(a, b) return a[1] < b[1] end", lambda a, b: (a.get(1) < b.get(1),))

def _seeded(seed, calls):
    def run():
        lib_fn("math.randomseed")(seed)
        out = []
        for c in calls:
            out.extend(lib_fn("math.random")(*c))
        return tuple(out)
    return run


RANDOM_CALLS = [(), (), (100,), (1, 6), (-10, 10), (), (2147483647,), (-2147483648, 2147483647), (1,)]

def _nested(depth):
    t = LuaTable()
    inner = t
    for _ in range(depth - 1):
        nxt = LuaTable()
        inner.set(1, nxt)
        inner = nxt
    return t


def _cjson_cfg(calls, expr_fn):
    """Run cjson config calls on a fresh cjson.new(), then expr_fn(module)."""
    def run():
        m = lib_fn("cjson.new")()[0]
        out = []
        for name, args in calls:
            out.extend(m.get(name.encode())(*[py_value(a) for a in args]))
        return tuple(out) + tuple(expr_fn(m))
    return run


def _cjson_snip(calls, lua_tail):
    body = " ".join("local r%d = {c.%s(%s)}" % (i, name, ", ".join(lua_literal(a) for a in args))
                    for i, (name, args) in enumerate(calls))
    rets = ", ".join("unpack(r%d)" % i for i in range(len(calls)))
    # unpack of a middle list truncates to one value in Lua; calls return one value except sparse_array
    return "(function() local c = cjson.new() %s return %s end)()" % (
        body, ", ".join(["r%d[%d]" % (i, j + 1) for i, (name, args) in enumerate(calls)
                         for j in range(3 if name == "encode_sparse_array" else 1)] + [lua_tail]))


CJSON_CFG = [
    ([(name, args)], "1", lambda m: (1,))
    for name, args in (("encode_keep_buffer", (b"x",)), ("encode_keep_buffer", (1, 2)),
                       ("encode_max_depth", (0,)), ("encode_number_precision", (15,)),
                       ("encode_sparse_array", (True, -1)), ("encode_sparse_array", (None, None, -1)),
                       ("encode_invalid_numbers", (b"maybe",)), ("encode_invalid_numbers", (_t(),)),
                       ("encode_sparse_array", ()), ("encode_max_depth", ()), ("decode_max_depth", (5.7,)),
                       ("encode_number_precision", (b"7",)), ("encode_invalid_numbers", (b"null",)),
                       ("decode_invalid_numbers", (b"on",)), ("encode_keep_buffer", (b"off",)))
] + [
    ([("encode_invalid_numbers", (True,))], "c.encode({1/0, -1/0, 0/0})",
     lambda m: m.get(b"encode")(_tbl(math.inf, -math.inf, -math.nan))),
    ([("encode_invalid_numbers", (b"null",))], "c.encode({1/0, 0/0, 1})",
     lambda m: m.get(b"encode")(_tbl(math.inf, -math.nan, 1))),
    ([("encode_invalid_numbers", (b"off",))], "c.encode(1)", lambda m: m.get(b"encode")(1)),
    ([("encode_number_precision", (3,))], "c.encode({3.14159, 12345, 100})",
     lambda m: m.get(b"encode")(_tbl(3.14159, 12345, 100))),
    ([("encode_sparse_array", (True,))], "c.encode({[1]=1, [20]=2})",
     lambda m: m.get(b"encode")(LuaTable(hash={1: 1, 20: 2}))),
    ([("encode_sparse_array", (False, 0))], "c.encode({[1]=1, [30]=2})",
     lambda m: m.get(b"encode")(LuaTable(hash={1: 1, 30: 2}))),
    ([("encode_sparse_array", (None, None, 100))], "c.encode({[1]=1, [30]=2})",
     lambda m: m.get(b"encode")(LuaTable(hash={1: 1, 30: 2}))),
    ([("encode_max_depth", (3,))], "c.encode({{{}}})", lambda m: m.get(b"encode")(_nested(3))),
    ([("encode_max_depth", (3,))], "c.encode({{{{}}}})", lambda m: m.get(b"encode")(_nested(4))),
    ([("decode_max_depth", (2,))], "c.decode('[[1]]')", lambda m: m.get(b"decode")(b"[[1]]")),
    ([("decode_max_depth", (2,))], "c.decode('[[[1]]]')", lambda m: m.get(b"decode")(b"[[[1]]]")),
    ([("decode_invalid_numbers", (False,))], "c.decode('0x10')", lambda m: m.get(b"decode")(b"0x10")),
    ([("decode_invalid_numbers", (False,))], "c.decode('-inf')", lambda m: m.get(b"decode")(b"-inf")),
    ([("decode_invalid_numbers", (False,))], "c.decode('nan')", lambda m: m.get(b"decode")(b"nan")),
    ([("decode_invalid_numbers", (b"off",))], "c.decode('[1.5]')", lambda m: m.get(b"decode")(b"[1.5]")),
    ([("encode_keep_buffer", (False,))], "c.encode('x')", lambda m: m.get(b"encode")(b"x")),
    ([("encode_keep_buffer", ())], "c.encode('x')", lambda m: m.get(b"encode")(b"x")),
]

SNIPPETS = [
    (_cjson_snip(calls, tail), _cjson_cfg(calls, fn)) for calls, tail, fn in CJSON_CFG
] + [
    ("(function() local t = {} local x = t for i = 1, %d do x[1] = {} x = x[1] end "
     "return cjson.encode(t) end)()" % (d - 1), (lambda d: lambda: lib_fn("cjson.encode")(_nested(d)))(d))
    for d in (1000, 1001)
] + [
    ("(function() math.randomseed(%s) return %s end)()" % (
        lua_literal(seed), ", ".join("math.random(%s)" % ", ".join(map(str, c)) for c in RANDOM_CALLS)),
     _seeded(seed, RANDOM_CALLS))
    for seed in (0, 1, 42, -1, 123456789, 2**31 - 1, -2**31, 4294967297, 3.9)
] + [
    (_snip("{1,2,3}", "table.insert", 0), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 0)),
    (_snip("{1,2,3}", "table.insert", 1, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 1, b"x")),
    (_snip("{1,2,3}", "table.insert", 2, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 2, b"x")),
    (_snip("{1,2,3}", "table.insert", 4, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 4, b"x")),
    (_snip("{1,2,3}", "table.insert", 6, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 6, b"x")),
    (_snip("{1,2,3}", "table.insert", 0, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 0, b"x")),
    (_snip("{1,2,3}", "table.insert", -1, b"x"), _mutate(lambda: _tbl(1, 2, 3), "table.insert", -1, b"x")),
    (_snip("{1,2,3}", "table.insert", 2, None), _mutate(lambda: _tbl(1, 2, 3), "table.insert", 2, None)),
    (_snip("{1,2,3}", "table.insert", None), _mutate(lambda: _tbl(1, 2, 3), "table.insert", None)),
    (_snip("{}", "table.insert", b"a"), _mutate(lambda: _tbl(), "table.insert", b"a")),
    (_snip("{1,2,3}", "table.remove"), _mutate(lambda: _tbl(1, 2, 3), "table.remove")),
    (_snip("{1,2,3}", "table.remove", 1), _mutate(lambda: _tbl(1, 2, 3), "table.remove", 1)),
    (_snip("{1,2,3}", "table.remove", 2), _mutate(lambda: _tbl(1, 2, 3), "table.remove", 2)),
    (_snip("{1,2,3}", "table.remove", 0), _mutate(lambda: _tbl(1, 2, 3), "table.remove", 0)),
    (_snip("{1,2,3}", "table.remove", 4), _mutate(lambda: _tbl(1, 2, 3), "table.remove", 4)),
    (_snip("{}", "table.remove"), _mutate(lambda: _tbl(), "table.remove")),
    (_snip("{}", "table.remove", 0), _mutate(lambda: _tbl(), "table.remove", 0)),
] + [
    ("(function() local t = %s; table.sort(t%s); return t end)()"
     % (lua_literal(items), "" if comp is None else ", " + comp.src), _sort_with(items, comp))
    for items in SORT_INPUTS for comp in (None, GT, ALWAYS)
] + [
    ("(function() local t = %s; table.sort(t, %s); local o = {} for i, v in ipairs(t) do o[i] = v[2] end "
     "return o end)()" % ("{" + ",".join("{%d,%d}" % (k, i) for i, k in enumerate(keys)) + "}", CMP_FIRST.src),
     (lambda keys: lambda: (_sort_pairs(keys),))(keys))
    for keys in ([3, 1, 2, 1, 3, 2, 1, 1, 2, 3, 3, 1], [1, 1, 1, 1, 1, 1, 1], [2, 1] * 10)
]

# Only through the interpreter (they need Lua code on both sides).
LUA_ONLY = [
    "table.sort({3, 2, 1}, function(a, b) error('lvl2', 2) end)",
    "table.sort({3, 2, 1}, function(a, b) error('lvl1') end)",
    "string.gsub('abc', '%w', function(c) error('in repl') end)",
    "string.gsub('abc', '%w', function(c) error('in repl', 2) end)",
    "('abc'):rep(2)", "('abc'):find('b', 1, true)",
    "string.format('%s', setmetatable({}, {__tostring = function() return 'T' end}))",
    "string.gsub('a b', '%w', setmetatable({}, {__index = function(t, k) return k:upper() end}))",
    "table.concat(setmetatable({}, {__index = function() return 'x' end}), ',', 1, 3)",
    "table.insert(setmetatable({}, {__index = function() return 1 end}), 5)",
    "table.sort(setmetatable({}, {__lt = function() return true end}))",
    "(function() local mt = {__lt = function(a, b) return a.v < b.v end} "
    "local t = {setmetatable({v=3}, mt), setmetatable({v=1}, mt), setmetatable({v=2}, mt)} "
    "table.sort(t) return t[1].v, t[2].v, t[3].v end)()",
    "(function() local n = 0 for k, v in string.gmatch('a=1, b=2', '(%w+)=(%w+)') do n = n + v end return n end)()",
    "(function() local t = {} for w in string.gfind('one two', '%a+') do t[#t+1] = w end return t end)()",
    "cmsgpack.unpack(cmsgpack.pack({1, 2, {a = {true, false}}, 'x', 1.5, -7}))",
    "cjson.decode(cjson.encode({1, 2, {a = {true, false}}, 'x', 1.5, -7, cjson.null}))",
    "cjson.encode(setmetatable({}, {__index = function() return 1 end}))",
    "struct.unpack('>i2 s c0', struct.pack('>i2 s b c0', 7, 'zz', 3, 'abc'))",
    "math.max(1, '5', 3)", "select('#', string.byte('hello', 1, -1))", "bit.tohex(bit.bnot(0))",
]


def _sort_pairs(keys):
    t = LuaTable.from_list([LuaTable.from_list([k, i]) for i, k in enumerate(keys)])
    lib_fn("table.sort")(t, CMP_FIRST.py)
    return LuaTable.from_list([v.get(2) for v in t.arr])


def _case_id(case) -> str:
    return lua_expr(case[0], case[1:])[:80]


@pytest.fixture(scope="session")
def redis_conn(tmp_path_factory):
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed")
    proc, port = start_redis(tmp_path_factory.mktemp("redis-lua"))
    r = Redis(port)
    try:
        yield r
    finally:
        r.close()
        proc.terminate()
        proc.wait(10)


def ours(case) -> list[bytes]:
    name, args = case[0], case[1:]
    if name == "string.gfind":   # an iterator: compare what the first call returns
        it = lib_fn(name)(*args)[0]
        return py_run(it, ())
    if "math" in _mods:
        _mods["math"].reset_random(RT)
    return py_run(lib_fn(name), args, NULL)


def theirs(r: Redis, case) -> list[bytes]:
    name, args = case[0], case[1:]
    if name == "string.gfind":
        return redis_run(r, "string.gfind(%s)()" % ", ".join(lua_literal(a) for a in args))
    return redis_run(r, lua_expr(name, args))


# Cases are checked a library at a time (one test each, every mismatch listed):
# some two thousand single-case tests cost more in pytest than in Lua.
LIB_NAMES = sorted({c[0].split(".")[0] for c in CASES})


def _mismatches(pairs):
    return [(label, a, b) for label, a, b in pairs if a != b]


@pytest.mark.parametrize("lib", LIB_NAMES)
def test_differential(redis_conn, lib):
    cases = [c for c in CASES if c[0].split(".")[0] == lib]
    assert cases
    assert _mismatches((_case_id(c), ours(c), theirs(redis_conn, c)) for c in cases) == []


PATTERN_CASES = [c for c in CASES if c[0] in ("string.find", "string.match", "string.gsub", "string.gfind")]


def test_differential_patterns_without_the_re_lane(redis_conn, monkeypatch):
    # The same cases on lstrlib's matcher alone (the re lane takes most of them otherwise).
    monkeypatch.setattr(lpattern, "FAST_BUDGET", -1)
    assert _mismatches((_case_id(c), ours(c), theirs(redis_conn, c)) for c in PATTERN_CASES) == []


def _random_pattern(rnd):
    pieces = [b"a", b"b", b".", b"%a", b"%d", b"[ab]", b"[^a]", b"%s", b"1"]
    out = [b"^"] if rnd.random() < 0.2 else []
    open_caps = 0
    for _ in range(rnd.randint(1, 5)):
        r = rnd.random()
        if r < 0.15:
            out.append(b"(")
            open_caps += 1
        elif r < 0.25 and open_caps:
            out.append(b")")
            open_caps -= 1
        elif r < 0.3:
            out.append(b"()")
        else:
            out.append(rnd.choice(pieces) + rnd.choice([b"", b"", b"?", b"*", b"+", b"-"]))
    out.extend([b")"] * open_caps)
    if rnd.random() < 0.2:
        out.append(b"$")
    return b"".join(out)


def test_re_lane_agrees_with_the_matcher(monkeypatch):
    import random
    rnd = random.Random(1234)

    def run_all(pat, subj):
        res = []
        for fn, args in (("string.find", (subj, pat)), ("string.match", (subj, pat, 2)),
                         ("string.gsub", (subj, pat, b"<%0>")), ("string.gsub", (subj, pat, b"[%1]", 2))):
            res.append(py_run(lib_fn(fn), args))
        it = lib_fn("string.gmatch")(subj, pat)[0]
        seq = []
        for _ in range(30):
            r = it()
            if not r:
                break
            seq.append(r)
        res.append(seq)
        return res
    checked = 0
    for _ in range(400):
        pat = _random_pattern(rnd)
        subj = bytes(rnd.choice(b"ab1 ") for _ in range(rnd.randint(0, 12)))
        fast = run_all(pat, subj)
        monkeypatch.setattr(lpattern, "FAST_BUDGET", -1)
        slow = run_all(pat, subj)
        monkeypatch.undo()
        assert fast == slow, (pat, subj)
        checked += 1
    assert checked == 400


RANDOM_PATTERN_LUA = r"""
local out = {}
local function ser(ok, ...)
  if not ok then return 'E:' .. tostring((...)) end
  local parts = {}
  for i = 1, select('#', ...) do
    local v = select(i, ...)
    parts[#parts + 1] = type(v) .. ':' .. tostring(v)
  end
  return table.concat(parts, '|')
end
for i = 1, #ARGV, 2 do
  local s, p = ARGV[i], ARGV[i + 1]
  out[#out + 1] = ser(pcall(string.find, s, p))
  out[#out + 1] = ser(pcall(string.match, s, p, 2))
  out[#out + 1] = ser(pcall(string.gsub, s, p, '<%0>'))
  out[#out + 1] = ser(pcall(string.gsub, s, p, '<\\>', 3))
  local ok, it = pcall(string.gmatch, s, p)
  local seq = {}
  if ok then
    for _ = 1, 20 do
      local r = {pcall(it)}
      if not r[1] then seq[#seq + 1] = 'E:' .. tostring(r[2]) break end
      if r[2] == nil then break end
      seq[#seq + 1] = ser(unpack(r))
    end
  end
  out[#out + 1] = table.concat(seq, ';')
end
return out
"""


def _random_pattern_full(rnd):
    """Random patterns over every feature, including %b, %f, back references and bad syntax."""
    pieces = [b"a", b"b", b".", b"%a", b"%d", b"[ab]", b"[^a]", b"%s", b"1", b"%w", b"[a-c]", b"%%", b"ab", b" ",
              b"%bab", b"%f[a]", b"%f[^a]", b"%1", b"()", b"[%a1]", b"%", b"[a", b"(", b")", b"$", b"^"]
    out = [b"^"] if rnd.random() < 0.2 else []
    for _ in range(rnd.randint(1, 6)):
        piece = rnd.choice(pieces)
        if piece in (b"(",) and rnd.random() < 0.7:
            piece = b"(" + rnd.choice(pieces[:8]) + rnd.choice([b"", b"*", b"+"]) + b")"
        out.append(piece + (rnd.choice([b"", b"", b"?", b"*", b"+", b"-"]) if len(piece) <= 4 and
                            piece not in (b"(", b")", b"%", b"()", b"$", b"^") else b""))
    return b"".join(out)


def _ser_py(fn):
    try:
        r = fn()
    except LuaError as e:
        return b"E:" + e.value
    return b"|".join(type_name(v).encode() + b":" + tostring(v) for v in r)


def _our_random_pattern_results(pairs):
    out = []
    for s, p in pairs:
        out.append(_ser_py(lambda: lib_fn("string.find")(s, p)))
        out.append(_ser_py(lambda: lib_fn("string.match")(s, p, 2)))
        out.append(_ser_py(lambda: lib_fn("string.gsub")(s, p, b"<%0>")))
        out.append(_ser_py(lambda: lib_fn("string.gsub")(s, p, b"<\\>", 3)))
        seq = []
        try:
            it = lib_fn("string.gmatch")(s, p)[0]
        except LuaError:
            it = None
        if it is not None:
            for _ in range(20):
                try:
                    r = it()
                except LuaError as e:
                    seq.append(b"E:" + e.value)
                    break
                if not r or r[0] is None:
                    break
                seq.append(b"|".join(type_name(v).encode() + b":" + tostring(v) for v in r))
        out.append(b";".join(seq))
    return out


@pytest.mark.parametrize("lane", ["re", "matcher"])
def test_random_patterns_against_redis(redis_conn, monkeypatch, lane):
    import random
    rnd = random.Random(99)
    pairs = [(bytes(rnd.choice(b"ab1 ") for _ in range(rnd.randint(0, 10))), _random_pattern_full(rnd))
             for _ in range(400)]
    if lane == "matcher":
        monkeypatch.setattr(lpattern, "FAST_BUDGET", -1)
    args = [x for pair in pairs for x in pair]
    theirs_ = redis_conn.call("EVAL", RANDOM_PATTERN_LUA, "0", *args)
    assert not isinstance(theirs_, Exception), theirs_
    # errors raised inside C functions carry no position; ours never do here either
    ours_ = _our_random_pattern_results(pairs)
    for i, (a, b) in enumerate(zip(ours_, theirs_)):
        assert a == b, (pairs[i // 5], i % 5, a, b)
    assert len(ours_) == len(theirs_)


RANDOM_FORMAT_LUA = r"""
local out = {}
for i = 1, #ARGV, 3 do
  local fmt, kind, v = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if kind == 'n' then v = tonumber(v) end
  local ok, r = pcall(string.format, fmt, v)
  out[#out + 1] = (ok and 'ok:' or 'E:') .. tostring(r)
end
return out
"""


def test_random_format_specs_against_redis(redis_conn):
    import random
    from kvserver.lua.value import str_to_number
    rnd = random.Random(7)
    values = [b"0", b"1", b"-1", b"42", b"-42", b"3.14159", b"-2.5", b"0.5", b"1e10", b"-1e-5", b"123456789",
              b"4294967296", b"1e300", b"-0", b"255", b"65", b"0.1", b"9007199254740993", b"1.5e-300"]
    strings = [b"", b"abc", b"hello world", b"a\nb", b"x" * 120]
    cases = []
    for _ in range(600):
        flags = bytes(rnd.choice(b"-+ #0") for _ in range(rnd.choice([0, 0, 1, 1, 2, 3])))
        width = str(rnd.randint(0, 25)).encode() if rnd.random() < 0.5 else b""
        prec = (b"." + (str(rnd.randint(0, 20)).encode() if rnd.random() < 0.8 else b"")) \
            if rnd.random() < 0.4 else b""
        conv = bytes([rnd.choice(b"diouxXeEfgGcsq")])
        if conv in b"sq" and rnd.random() < 0.7:
            kind, v = b"s", rnd.choice(strings)
        else:
            kind, v = b"n", rnd.choice(values)
        cases.append((b"[%" + flags + width + prec + conv + b"]", kind, v))
    theirs_ = redis_conn.call("EVAL", RANDOM_FORMAT_LUA, "0", *[x for c in cases for x in c])
    assert not isinstance(theirs_, Exception), theirs_
    fmt = lib_fn("string.format")
    for (f, kind, v), b in zip(cases, theirs_):
        # (value.str_to_number(b"-0") is 0, Lua's tonumber("-0") is -0: reported, not ours)
        arg = (-0.0 if v == b"-0" else str_to_number(v)) if kind == b"n" else v
        try:
            a = b"ok:" + fmt(f, arg)[0]
        except LuaError as e:
            a = b"E:" + e.value
        assert a == b, (f, kind, v)
    assert len(theirs_) == len(cases)


RANDOM_LIB_LUA = LUA_SER_FUNCTIONS + r"""
local fn = ({decode = cjson.decode, unpack = cmsgpack.unpack,
             unpack_struct = function(s) return struct.unpack(s, string.rep('\1\2\3\4', 16)) end})[KEYS[1]]
local out = {}
for i = 1, #ARGV do
  local r = {pcall(fn, ARGV[i])}
  if not r[1] then out[#out+1] = 'E:' .. tostring(r[2])
  else
    local parts = {}
    for j = 2, table.maxn(r) do parts[#parts+1] = ser(r[j], 0) end
    out[#out+1] = table.concat(parts, ' ')
  end
end
return out
"""


def _random_json(rnd, depth=0):
    r = rnd.random()
    if depth > 4 or r < 0.45:
        return rnd.choice([b"1", b"-0", b"0.5", b"-12.5e3", b"1E400", b"true", b"false", b"null", b'"x"',
                           b'"a\\u00e9\\n\\/b"', b'"\\ud83d\\ude00"', b"123456789012345678", b"1e-400",
                           b'""', b'"\xc3\xa9"', b"NaN", b"-Infinity", b"0x1F", b"+5", b"007", b"1.", b"nan"])
    if r < 0.75:
        items = [_random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
        return b"[" + b",".join(items) + b"]"
    items = [b'"k%d":' % rnd.randint(0, 3) + _random_json(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return b"{" + b",".join(items) + b"}"


def _mutate(rnd, text):
    r = rnd.random()
    if r < 0.6 or not text:
        return text
    i = rnd.randrange(len(text))
    if r < 0.75:
        return text[:i] + text[i + 1:]
    if r < 0.9:
        return text[:i] + bytes([rnd.choice(b'[]{},:"\\ x0\t')]) + text[i:]
    return text[:i]


def _our_lib_results(fn, inputs):
    out = []
    for x in inputs:
        try:
            r = fn(x)
        except LuaError as e:
            out.append(b"E:" + e.value)
            continue
        r = list(r)
        while r and r[-1] is None:   # table.maxn drops trailing nils
            r.pop()
        out.append(b" ".join(py_ser(v, 0, NULL) for v in r))
    return out


def _compare_random(redis_conn, which, fn, inputs):
    theirs_ = redis_conn.call("EVAL", RANDOM_LIB_LUA, "1", which, *inputs)
    assert not isinstance(theirs_, Exception), theirs_
    # (struct.unpack runs inside a Lua wrapper there: its argument errors carry that line)
    theirs_ = [re.sub(rb"^E:user_script:\d+: ", b"E:", x) for x in theirs_]
    ours_ = _our_lib_results(fn, inputs)
    for x, a, b in zip(inputs, ours_, theirs_):
        assert a == b, x
    assert len(ours_) == len(theirs_) == len(inputs)


def test_random_json_against_redis(redis_conn):
    import random
    rnd = random.Random(5)
    texts = [_mutate(rnd, _random_json(rnd)) for _ in range(500)]
    _compare_random(redis_conn, "decode", lib_fn("cjson.decode"), texts)


def test_random_msgpack_against_redis(redis_conn):
    import random
    rnd = random.Random(6)
    pack = lib_fn("cmsgpack.pack")
    inputs = []
    for _ in range(400):
        v = py_value(_random_lua_value(rnd))
        data = pack(v)[0]
        r = rnd.random()
        if r < 0.3 and data:
            i = rnd.randrange(len(data))
            data = data[:i] + bytes([rnd.randrange(256)]) + data[i + 1:]
        elif r < 0.4:
            data = data[:rnd.randrange(len(data) + 1)]
        inputs.append(data)
    _compare_random(redis_conn, "unpack", lib_fn("cmsgpack.unpack"), inputs)


def test_random_struct_formats_against_redis(redis_conn):
    import random
    rnd = random.Random(8)
    unpack = lib_fn("struct.unpack")
    data = b"\1\2\3\4" * 16
    fmts = []
    for _ in range(400):
        parts = []
        for _ in range(rnd.randint(1, 5)):
            c = rnd.choice(b"bBhHlLTiIfdcxs<>! ?")
            n = str(rnd.choice([1, 2, 3, 4, 8, 16])).encode() if c in b"iIc!" and rnd.random() < 0.6 else b""
            parts.append(bytes([c]) + n)
        fmts.append(b"".join(parts))
    _compare_random(redis_conn, "unpack_struct", lambda f: unpack(f, data), fmts)


def _random_encodable(rnd, depth=0):
    """Values whose cjson/cmsgpack encoding does not depend on hash order (<= 1 non-array key)."""
    r = rnd.random()
    if depth > 3 or r < 0.45:
        # (no -0.0: Lua 5.1's constant table shares one slot for 0 and -0 within a chunk)
        return rnd.choice([0, 1, -1, 0.5, 1e15, 1e-7, 2**53, 1 / 3, 1e300, math.inf, b"", b"a/b",
                           b"q\"\\\n\x01\x7f\xe9", True, False, Lua("cjson.null", NULL), 255, -2**31 - 1])
    if r < 0.75:
        return [_random_encodable(rnd, depth + 1) for _ in range(rnd.randint(0, 5))]
    k = rnd.choice([b"k", 1, 2, 3, 11, 30, 0, -1, 2.5, True])
    return {k: _random_encodable(rnd, depth + 1)}


def test_random_encodings_against_redis(redis_conn):
    import random
    rnd = random.Random(21)
    values = [_random_encodable(rnd) for _ in range(300)]
    script = ("local cases = {" + ",".join("function() return %s end" % lua_literal(v) for v in values) + "}\n"
              "local out = {}\n"
              "for i, f in ipairs(cases) do\n"
              "  local ok, j = pcall(cjson.encode, f())\n"
              "  local ok2, m = pcall(cmsgpack.pack, f())\n"
              "  out[#out+1] = (ok and 'ok:' or 'E:') .. j\n"
              "  out[#out+1] = (ok2 and 'ok:' or 'E:') .. m\n"
              "end\nreturn out")
    theirs_ = redis_conn.call("EVAL", script, "0")
    assert not isinstance(theirs_, Exception), theirs_
    for i, v in enumerate(values):
        for j, fn in enumerate((lib_fn("cjson.encode"), lib_fn("cmsgpack.pack"))):
            try:
                a = b"ok:" + fn(py_value(v))[0]
            except LuaError as e:
                a = b"E:" + e.value
            assert a == theirs_[2 * i + j], (lua_literal(v), j)


def _random_lua_value(rnd, depth=0):
    r = rnd.random()
    if depth > 3 or r < 0.5:
        return rnd.choice([0, 1, -1, 127, 128, -33, 255, 256, 65535, 65536, 2**32, -2**31 - 1, 2**40, 1.5,
                           0.1, -0.0, 1e300, b"", b"abc", b"x" * 40, b"y" * 300, True, False])
    if r < 0.8:
        return [_random_lua_value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))]
    return {rnd.choice([b"a", b"b", 1, 2, 5, 1.5]): _random_lua_value(rnd, depth + 1)
            for _ in range(rnd.randint(1, 4))}


def test_differential_snippets(redis_conn):
    assert _mismatches((lua[:100], py_run(thunk, (), NULL), redis_run(redis_conn, lua))
                       for lua, thunk in SNIPPETS) == []


def test_random_starts_where_a_fresh_redis_starts():
    # What a fresh redis-server 7.0.15 answers to its first script
    # `return {tostring(math.random()), tostring(math.random(100)),
    #          string.format('%.17g', math.random())}` (Redis 7.0 seeds once per process).
    lib_math.reset_random(RT)
    rnd = lib_fn("math.random")
    assert tostring(rnd()[0]) == b"0.39646477363839"
    assert rnd(100) == (85,)
    assert b"%.17g" % rnd()[0] == b"0.35333609737145533"


def test_random_state_persists_across_scripts(redis_conn):
    # Redis 7.0.15 does not re-seed before a script: two EVALs continue one sequence.
    a = redis_run(redis_conn, "math.randomseed(7)")
    b = redis_run(redis_conn, "math.random(1000000)")
    c = redis_run(redis_conn, "math.random(1000000)")
    assert a == [b"(none)"] and b != c
    assert py_run(_seeded(7, [(1000000,), (1000000,)]), ()) == b + c


# -- the same cases as Lua code, run by kvserver's interpreter ---------------------------

def _runtime():
    from kvserver.lua.runtime import Runtime
    rt = Runtime()
    for name, mod in (("cjson", lib_cjson), ("bit", lib_bit), ("struct", lib_struct),
                      ("cmsgpack", lib_cmsgpack)):
        rt.globals.set(name.encode(), mod.open(rt))
    return rt


@pytest.fixture(scope="module")
def lua_runtime():
    return _runtime()


def _lua_of(case) -> str:
    if case[0] == "string.gfind":
        return "string.gfind(%s)()" % ", ".join(lua_literal(a) for a in case[1:])
    return lua_expr(case[0], case[1:])


ALL_LUA = [_lua_of(c) for c in CASES] + [lua for lua, _ in SNIPPETS] + LUA_ONLY
# Seeded random sequences must not depend on other cases' calls: they seed first.


def _lua_group(lua: str) -> str:
    m = re.match(r"(\w+)\.", lua)
    return m.group(1) if m and m.group(1) in LIB_NAMES else "snippets"


@pytest.mark.parametrize("group", LIB_NAMES + ["snippets"])
def test_differential_through_the_interpreter(redis_conn, lua_runtime, group):
    luas = [lua for lua in ALL_LUA if _lua_group(lua) == group]
    assert luas
    assert _mismatches((lua[:100], runtime_run(lua_runtime, lua),
                        redis_run(redis_conn, lua, keep_position=True)) for lua in luas) == []


# Lua names a bad argument after the call site and renumbers method calls (s:rep() ->
# #1, not #2); the interpreter does that from libargs.arg_error's arg_n/fname/extramsg.
CALL_SITE_ERRORS = [
    "('x'):rep()", "('%d'):format('z')", "('x'):sub()", "(''):char(256)",
    "(function() local f = string.rep return f() end)()",
    "(function() local s = string return s.sub() end)()",
    "(function() local t = {f = table.concat} return t.f(1) end)()",
    "cjson.decode()", "struct.pack('i')", "bit.band('x')", "math.floor()",
]


def test_argument_errors_are_named_by_the_call_site(redis_conn, lua_runtime):
    assert _mismatches((lua, runtime_run(lua_runtime, lua), redis_run(redis_conn, lua, keep_position=True))
                       for lua in CALL_SITE_ERRORS) == []


# -- limits, interruption and complexity (what a difference test cannot show) -----------

class Interrupted(BaseException):
    """What a killed script's hook raises: not an Exception, so pcall cannot catch it."""


@pytest.fixture
def interrupting_hook():
    calls = []

    def hook():
        calls.append(1)
        if len(calls) >= 3:
            raise Interrupted
    RT.hook = hook
    try:
        yield calls
    finally:
        RT.hook = None


def test_pathological_pattern_calls_the_hook(interrupting_hook):
    # a*a*a*a*b on 4000 a's is O(n^5) backtracking, as in Lua: it must be interruptible.
    with pytest.raises(Interrupted):
        lib_fn("string.find")(b"a" * 4000, b"a*a*a*a*b")
    assert len(interrupting_hook) == 3


def test_gsub_and_gmatch_call_the_hook(interrupting_hook):
    with pytest.raises(Interrupted):
        lib_fn("string.gsub")(b"a" * 3000, b"a-a-a-b", b"x")
    interrupting_hook.clear()
    it = lib_fn("string.gmatch")(b"a" * 3000, b"a*a*a*b")[0]
    with pytest.raises(Interrupted):
        it()


@pytest.mark.parametrize("lua", [
    "return string.find(('a'):rep(40), 'a*a*a*b')",
    "return string.gsub(('a'):rep(40), 'a*a*a*b', 'x')",
    "for w in string.gmatch(('a'):rep(40), 'a*a*a*b') do end",
])
def test_library_loops_reach_the_runtime_hook(lua):
    # The interpreter fires its hook every hook_interval check_hook() calls; a library
    # call doing ~10^5 steps of work must reach it (a killed script stops inside it).
    from kvserver.lua.runtime import Runtime
    rt = Runtime()
    fired = []

    def hook():
        fired.append(1)
        raise Interrupted
    fn = rt.compile(lua.encode())
    rt.hook = hook
    with pytest.raises(Interrupted):
        fn()
    assert fired


def test_sort_without_comparator_reaches_the_runtime_hook():
    from kvserver.lua.runtime import Runtime
    rt = Runtime()
    fired = []

    def hook():
        fired.append(1)
        raise Interrupted
    rt.hook = hook
    t = LuaTable.from_list([LuaTable() for _ in range(3000)])
    for i, x in enumerate(t.arr):
        x.metatable = MT_LT
        x.set(b"v", (i * 7919) % 3000)
    with pytest.raises(Interrupted):
        rt.globals.get(b"table").get(b"sort")(t)
    assert fired


MT_LT = LuaTable()
MT_LT.set(b"__lt", lambda a, b: (a.get(b"v") < b.get(b"v"),))


@pytest.mark.parametrize("pat, n, anchored, lane", [
    (b"(%d+)%-(%d+)%-(%d+)", 500, False, True),    # each run stops at a disjoint class: O(n^2)
    (b"(%d+)%-(%d+)%-(%d+)", 1000, False, False),  # 12 items x 1001^2 > FAST_BUDGET
    (b"%d+%-", 2000, False, False),                 # O(n^2) over start positions: 4M x items
    (b"%d+%-", 2000, True, True),                   # anchored: one start position
    (b"a*a*a*b", 40, False, False),                 # runs trade characters: O(n^4)
    (b"a*a*a*b", 10, False, True),
    (b"[^:]+", 100000, False, True),                # nothing after it: once started it matches
    (b"([^:]+)", 100000, False, True),
    (b"[^:]+$", 100000, False, False),              # '$' can fail after each expansion
    (b"x-y", 100000, False, False),                 # '.-'-like: each step re-tries the rest
    (b"%bxy", 10, False, False),                    # %b: matcher only
    (b"(a)%1", 10, False, False),                   # back reference: matcher only
])
def test_re_lane_admission(pat, n, anchored, lane):
    anch, items = lpattern.get_pattern(b"^" + pat if anchored else pat)
    assert (lpattern.fast_regex(pat, items, n, anch) is not None) == lane


def test_pattern_caches_are_bounded():
    find = lib_fn("string.find")
    for i in range(50):                           # 2 x 50 x 900 bytes > CACHE_BYTES
        pat = (b"%d" % i) + b"[ab]*x" * 150       # 901+ bytes, distinct
        find(b"ab" * 10, pat)
        find(b"ab" * 10, b"^" + pat)
    cached = sum(map(len, lpattern._cache)) + sum(map(len, lpattern._fast_cache))
    assert cached <= 2 * lpattern.CACHE_BYTES
    assert len(lpattern._SETS) <= lpattern._INTERN_MAX and len(lpattern._RUNS) <= lpattern._INTERN_MAX
    big = b"a?" * (lpattern.CACHE_PATTERN_MAX // 2 + 1)
    assert find(b"a" * 10, big) == (1, 10)       # a long pattern still works, uncached
    assert big not in lpattern._cache


def test_pattern_nesting_limit():
    # Lua 5.1 recurses without limit on the C stack; here 200 levels ("pattern too complex").
    with pytest.raises(LuaError, match="pattern too complex"):
        lib_fn("string.match")(b"a" * 300, b"a?" * 300)
    assert lib_fn("string.match")(b"a" * 150, b"a?" * 150) == (b"a" * 150,)
    with pytest.raises(LuaError, match="too many captures"):
        lib_fn("string.match")(b"a" * 40, b"(a)" * 33)


def test_rep_refuses_giant_strings():
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn("string.rep")(b"xx", 2**30)
    assert lib_fn("string.rep")(b"ab", 3) == (b"ababab",)


def test_gsub_and_concat_output_is_capped(monkeypatch):
    monkeypatch.setattr(lib_string, "MAX_STRING", 1000)
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn("string.gsub")(b"a" * 100, b"a", b"x" * 11)
    assert lib_fn("string.gsub")(b"a" * 100, b"a", b"x" * 10)[1] == 100
    big = LuaTable.from_list([b"y" * 100] * 11)
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn("table.concat")(big)
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn("table.concat")(LuaTable.from_list([b"y" * 100, 5] * 10))


def _antiqsort(n):
    """McIlroy's adversary: a comparator that makes any quicksort quadratic (keys decided lazily)."""
    gas = n
    val = [gas] * n
    state = {"solid": 0, "candidate": -1, "count": 0}

    def lt(x, y):
        state["count"] += 1
        if val[x] == gas and val[y] == gas:
            z = x if x == state["candidate"] else y
            val[z] = state["solid"]
            state["solid"] += 1
        if val[x] == gas:
            state["candidate"] = x
        elif val[y] == gas:
            state["candidate"] = y
        return (val[x] < val[y],)
    return lt, state, val


@pytest.mark.parametrize("fallback", [True, False])
def test_sort_is_n_log_n_even_against_an_adversary(monkeypatch, fallback):
    n = 1500
    if not fallback:   # shows the adversary works: without the fallback sort goes quadratic
        monkeypatch.setattr(lib_table._Sorter, "fallback", None)
        orig_init = lib_table._Sorter.__init__

        def init(self, *a):
            orig_init(self, *a)
            self.max_depth = 10**9
        monkeypatch.setattr(lib_table._Sorter, "__init__", init)
    lt, state, val = _antiqsort(n)
    t = LuaTable.from_list(list(range(n)))
    lib_fn("table.sort")(t, lt)
    keys = [val[x] for x in t.arr]
    assert keys == sorted(keys)
    bound = 8 * n * math.log2(n)
    if fallback:
        assert state["count"] < bound
    else:
        assert state["count"] > bound


def test_sort_calls_the_hook(interrupting_hook):
    t = LuaTable.from_list(list(range(20000, 0, -1)))
    with pytest.raises(Interrupted):
        lib_fn("table.sort")(t, lambda a, b: (a < b,))


JSON_CORPUS = [
    b'{"count":5,"ok":true,"items":[1,2,3]}', b"[]", b"{}", b"[[],{}]", b'{"a":{"b":{"c":[null]}}}',
    b"-0", b"0", b"-0.0", b"1e400", b"-1e400", b"1E-400", b"[NaN,Infinity,-Infinity]", b"9007199254740993",
    b"123456789012345678", b"1.0", b"2.5e3", b'"\xe9\x01\x7f raw"', b'{"k":1,"k":2}', b'{"b":1,"a":2}',
    b" \t\n\r[1 , 2]\r\n", b"[1,]", b"[01]", b"01", b"1.", b".5", b"+1", b"0x10", b"nan", b"[true,false,null]",
    b"truex", b"[1]]", b'{"a" 1}', b'{"a":}', b"\xff", b'["a\tb"]', b"[1e5]", b"[-1.5e-3]", b"[" * 50 + b"]" * 50,
    b'{"":""}', b"[[[[[[1]]]]]]", b'"unterminated', b"[1,2", b"", b" ", b"[-]", b"[--1]", b"[1e]", b"[1.5E+2]",
]


def test_cjson_fast_decode_agrees_with_cjson_tokenizer():
    cfg = lib_cjson._Config()

    def run(fn, text):
        return py_run(lambda: (fn(cfg, text),), (), NULL)
    assert _mismatches((text, run(lib_cjson.decode, text), run(lib_cjson.decode_slow, text))
                       for text in JSON_CORPUS) == []


ENCODE_CORPUS = [
    [1, 2, _t(a=1)], _t(), [[[[]]]], _t(x=[1, b"two", True, False]), {1: 1, 3: 3}, {1: 1, 20: 2}, {True: 1},
    _t(n=math.inf), [b"a/b\"c", -0.0, 1e300, 2**53, 1 / 3], {0: 1}, {1.5: 2}, [Lua("x", print)],
]


@pytest.mark.parametrize("value", ENCODE_CORPUS, ids=range(len(ENCODE_CORPUS)))
@pytest.mark.parametrize("depth", [0, 3, 60])
def test_cjson_recursive_encode_agrees_with_iterative(value, depth):
    cfg = lib_cjson._Config()
    v = py_value(value)
    for _ in range(depth):
        v = LuaTable.from_list([v])

    def run(fn):
        return py_run(lambda: (fn(cfg, v),), ())
    assert run(lib_cjson.encode) == run(lib_cjson._encode_iter)


def test_cjson_fast_decode_respects_the_depth_limit():
    cfg = lib_cjson._Config()
    cfg.decode_max_depth = 3
    assert py_run(lambda: (lib_cjson.decode(cfg, b"[[[1]]]"),), ()) == [b"t:{n:1=t:{n:1=t:{n:1=n:1}}}"]
    with pytest.raises(LuaError, match="Found too many nested data structures"):
        lib_cjson.decode(cfg, b"[[[[1]]]]")


def _shared_dag(levels, width):
    """A table small in memory whose encoding is width^levels values (each level refers
    `width` times to the one below)."""
    t = LuaTable.from_list([1, 2, 3])
    for _ in range(levels):
        t = LuaTable.from_list([t] * width)
    return t


@pytest.mark.parametrize("encoder", ["cjson.encode", "cmsgpack.pack"])
def test_encoders_of_shared_tables_are_capped_and_interruptible(encoder, monkeypatch, interrupting_hook):
    # 2^40 copies of {1,2,3}: Redis would run (and allocate) until killed by the OS.
    monkeypatch.setattr(lib_string, "MAX_STRING", 10**6)
    RT.hook = None
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn(encoder)(_shared_dag(12, 8))
    RT.hook = lambda: (_ for _ in ()).throw(Interrupted())
    with pytest.raises(Interrupted):
        lib_fn(encoder)(_shared_dag(14, 2))


def test_cjson_deep_shared_tables_use_the_guard_too(monkeypatch):
    monkeypatch.setattr(lib_string, "MAX_STRING", 10**6)
    t = _shared_dag(70, 2)           # past the recursive encoder's 64 levels
    with pytest.raises(LuaError, match="resulting string too large"):
        lib_fn("cjson.encode")(t)


def test_cjson_null_is_userdata_and_shared():
    assert type_name(NULL) == "userdata"
    other = lib_fn("cjson.new")()[0]
    assert other.get(b"null") is NULL
    assert lib_fn("cjson.decode")(b"[null]")[0].get(1) is NULL


if __name__ == "__main__":
    import tempfile
    proc, port = start_redis(Path(tempfile.mkdtemp()))
    try:
        r = Redis(port)
        bad = 0
        for case in CASES:
            try:
                a = ours(case)
            except Exception as e:  # noqa: BLE001 - a dev report
                a = ["PYEXC %r" % e]
            b = theirs(r, case)
            if a != b:
                bad += 1
                print(lua_expr(case[0], case[1:])[:200])
                print("   ours  :", a)
                print("   redis :", b)
        for lua, thunk in SNIPPETS:
            try:
                a = py_run(thunk, (), NULL)
            except Exception as e:  # noqa: BLE001 - a dev report
                a = ["PYEXC %r" % e]
            b = redis_run(r, lua)
            if a != b:
                bad += 1
                print(lua[:200])
                print("   ours  :", a)
                print("   redis :", b)
        print(bad, "of", len(CASES) + len(SNIPPETS), "differ")
    finally:
        proc.terminate()
        proc.wait(10)
