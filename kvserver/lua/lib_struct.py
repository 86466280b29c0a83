"""struct: lua_struct.c (Roberto Ierusalimschy's struct library) as Redis 7.0.15 bundles it.

Formats as on x86-64 Linux, where Redis runs: native little-endian, ``b/B``
1 byte, ``h/H`` 2, ``l/L`` and ``T`` 8, ``i/I[n]`` 4 by default (n up to 32),
``f`` 4, ``d`` 8, ``c[n]`` n bytes (``c0``: the whole string when packing, the
previous result as the length when unpacking), ``s`` zero-terminated, ``x``
one pad byte, ``<``/``>`` endianness, ``![n]`` alignment (default 8), spaces
ignored. Integers are C ``long`` (64 bits): wider ``i``/``I`` sizes carry
zero bytes past the eighth, as in C; unpacked numbers are Lua doubles.
"""

from __future__ import annotations

import math
import struct as _pystruct
from typing import Any

from .lib_string import _unsigned
from .libargs import arg_error, check_num, check_str, opt_integer, to_integer
from .value import LuaError, LuaTable

MAXINTSIZE = 32
#: Lua 5.1's LUAI_MAXCSTACK: how many values unpack can return.
MAXCSTACK = 8000
MAXALIGN = 8
_M64 = (1 << 64) - 1
_INT_MAX = 2147483647
_SIZES = {"B": 1, "b": 1, "H": 2, "h": 2, "L": 8, "l": 8, "T": 8, "f": 4, "d": 8, "x": 1}


class _Fmt:
    """A cursor over a format string (C string: it ends at the first NUL)."""

    def __init__(self, fmt: bytes) -> None:
        nul = fmt.find(b"\0")
        self.s = fmt if nul < 0 else fmt[:nul]
        self.i = 0

    def more(self) -> bool:
        return self.i < len(self.s)

    def next(self) -> str:
        c = chr(self.s[self.i])
        self.i += 1
        return c

    def getnum(self, df: int) -> int:
        s = self.s
        if self.i >= len(s) or not (48 <= s[self.i] <= 57):
            return df
        a = 0
        while self.i < len(s) and 48 <= s[self.i] <= 57:
            d = s[self.i] - 48
            if a > _INT_MAX // 10 or a * 10 > _INT_MAX - d:
                raise LuaError(b"integral size overflow")
            a = a * 10 + d
            self.i += 1
        return a


def _optsize(opt: str, f: _Fmt) -> int:
    size = _SIZES.get(opt)
    if size is not None:
        return size
    if opt == "c":
        return f.getnum(1)
    if opt in "iI":
        sz = f.getnum(4)
        if sz > MAXINTSIZE:
            raise LuaError(b"integral size %d is larger than limit of %d" % (sz, MAXINTSIZE))
        return sz
    return 0


def _toalign(length: int, align: int, opt: str, size: int) -> int:
    if size == 0 or opt == "c":
        return 0
    if size > align:
        size = align
    return (size - (length & (size - 1))) & (size - 1)


def _control(opt: str, f: _Fmt, h: list, fname: str) -> None:
    """controloptions: h is [little_endian, align]."""
    if opt == " ":
        return
    if opt == ">":
        h[0] = False
        return
    if opt == "<":
        h[0] = True
        return
    if opt == "!":
        a = f.getnum(MAXALIGN)
        if not (a > 0 and (a & (a - 1)) == 0):
            raise LuaError(b"alignment %d is not a power of 2" % a)
        h[1] = a
        return
    raise arg_error(1, fname, b"invalid format option '%s'" % opt.encode("latin-1"))


def s_pack(*args: Any) -> tuple:
    f = _Fmt(check_str(args, 1, "pack"))
    # b_pack pushes a nil mark after its arguments: a missing first value is "got nil"
    args = args + (None,)
    h = [True, 1]
    arg = 2
    out = bytearray()
    total = 0
    while f.more():
        opt = f.next()
        size = _optsize(opt, f)
        pad = _toalign(total, h[1], opt, size)
        total += pad
        out += b"\0" * pad
        if opt in "bBhHlLTiI":
            n = check_num(args, arg, "pack")
            arg += 1
            value = (to_integer(n) & _M64) if n < 0 else _unsigned(n)
            if size <= 8:
                raw = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
            else:
                raw = value.to_bytes(8, "little") + b"\0" * (size - 8)
            out += raw if h[0] else raw[::-1]
        elif opt == "x":
            out.append(0)
        elif opt == "f":
            x = float(check_num(args, arg, "pack"))
            arg += 1
            try:
                raw = _pystruct.pack("<f", x)
            except OverflowError:
                raw = _pystruct.pack("<f", float("inf") if x > 0 else float("-inf"))
            out += raw if h[0] else raw[::-1]
        elif opt == "d":
            x = float(check_num(args, arg, "pack"))
            arg += 1
            raw = _pystruct.pack("<d", x)
            out += raw if h[0] else raw[::-1]
        elif opt == "c" or opt == "s":
            s = check_str(args, arg, "pack")
            arg += 1
            if size == 0:
                size = len(s)
            if len(s) < size:
                raise arg_error(arg, "pack", "string too short")
            out += s[:size]
            if opt == "s":
                out.append(0)
                size += 1
        else:
            _control(opt, f, h, "pack")
        total += size
    return (bytes(out),)


def _getinteger(raw: bytes, little: bool, signed: bool, size: int) -> int | float:
    v = int.from_bytes(raw, "little" if little else "big") & _M64
    if signed:
        mask = (_M64 << ((size * 8 - 1) & 63)) & _M64
        if v & mask:
            v |= mask
        if v & (1 << 63):
            v -= 1 << 64
    f = float(v)
    if f.is_integer() and abs(f) <= 9007199254740992.0:
        return int(f)
    return f


def s_unpack(*args: Any) -> tuple:
    f = _Fmt(check_str(args, 1, "unpack"))
    data = check_str(args, 2, "unpack")
    ld = len(data)
    pos = opt_integer(args, 3, "unpack", 1)
    if not pos > 0:
        raise arg_error(3, "unpack", "offset must be 1 or greater")
    pos -= 1
    h = [True, 1]
    res: list = []
    nargs = len(args)
    while f.more():
        opt = f.next()
        if nargs + len(res) + 2 > MAXCSTACK:   # luaL_checkstack(L, 2, "too many results")
            raise LuaError(b"stack overflow (too many results)")
        size = _optsize(opt, f)
        pos += _toalign(pos, h[1], opt, size)
        if not (size <= ld and pos <= ld - size):
            raise arg_error(2, "unpack", "data string too short")
        if opt in "bBhHlLTiI":
            res.append(_getinteger(data[pos:pos + size], h[0], opt.islower(), size))
        elif opt == "x":
            pass
        elif opt == "f":
            raw = data[pos:pos + 4]
            res.append(_num(_pystruct.unpack("<f" if h[0] else ">f", raw)[0]))
        elif opt == "d":
            raw = data[pos:pos + 8]
            res.append(_num(_pystruct.unpack("<d" if h[0] else ">d", raw)[0]))
        elif opt == "c":
            if size == 0:
                if not res or type(res[-1]) not in (int, float, bytes) or \
                        (type(res[-1]) is bytes and _isnum(res[-1]) is None):
                    raise LuaError(b"format 'c0' needs a previous size")
                prev = res.pop()
                size = to_integer(prev if type(prev) is not bytes else _isnum(prev))
                if not (size <= ld and pos <= ld - size):
                    raise arg_error(2, "unpack", "data string too short")
            res.append(data[pos:pos + size])
        elif opt == "s":
            e = data.find(b"\0", pos)
            if e < 0:
                raise LuaError(b"unfinished string in data")
            size = e - pos + 1
            res.append(data[pos:e])
        else:
            _control(opt, f, h, "unpack")
        pos += size
    res.append(pos + 1)
    return tuple(res)


def _isnum(s: bytes):
    from .value import str_to_number
    return str_to_number(s)


def _num(x: float) -> int | float:
    if x == x and x.is_integer() and abs(x) <= 9007199254740992.0 and \
            not (x == 0 and math.copysign(1.0, x) < 0):
        return int(x)
    return x


def s_size(*args: Any) -> tuple:
    f = _Fmt(check_str(args, 1, "size"))
    h = [True, 1]
    pos = 0
    while f.more():
        opt = f.next()
        size = _optsize(opt, f)
        pos += _toalign(pos, h[1], opt, size)
        if opt == "s":
            raise arg_error(1, "size", "option 's' has no fixed size")
        if opt == "c" and size == 0:
            raise arg_error(1, "size", "option 'c0' has no fixed size")
        if not opt.isalnum() or not opt.isascii():
            _control(opt, f, h, "size")
        pos += size
    return (pos,)


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The struct library table."""
    t = LuaTable()
    t.set(b"pack", s_pack)
    t.set(b"unpack", s_unpack)
    t.set(b"size", s_size)
    return t
