"""cmsgpack: lua-cmsgpack 0.4.0 as Redis 7.0.15 bundles it (deps/lua/src/lua_cmsgpack.c).

pack(...) encodes each argument and concatenates them: a number that a C
int64 holds exactly as the smallest int format, any other number as float 32
when that loses nothing, else float 64; a string with the smallest str
format (fixstr/str8/str16/str32); a table whose keys are exactly 1..n
(including the empty table) as an array, any other table as a map (keys in
this table's iteration order); nil, functions and userdata (cjson.null) as
nil; a table nested 16 levels deep as nil (cmsgpack's guard against cycles).

unpack(s) decodes every value in s; unpack_one(s[, offset]) and
unpack_limit(s, limit[, offset]) return the next offset (-1 at the end)
first. Decoding is iterative and counts Lua stack slots as the C code uses
them, so deep nesting or too many values fail with Lua's "stack overflow
(...)" where Redis does (LUAI_MAXCSTACK 8000).
"""

from __future__ import annotations

import math
import struct
from typing import Any

from . import lib_string
from .libargs import arg_error, check_integer, check_str, opt_integer, runtime_error
from .value import LuaError, LuaTable

MAX_NESTING = 16
#: Lua 5.1's LUAI_MAXCSTACK: the most stack slots a C function may use.
MAXCSTACK = 8000
_INT_MAX = 2147483647

_F32 = struct.Struct(">f")
_F64 = struct.Struct(">d")


def _enc_int(n: int, out: bytearray) -> None:
    if n >= 0:
        if n <= 127:
            out.append(n)
        elif n <= 0xFF:
            out += b"\xcc" + bytes([n])
        elif n <= 0xFFFF:
            out += b"\xcd" + n.to_bytes(2, "big")
        elif n <= 0xFFFFFFFF:
            out += b"\xce" + n.to_bytes(4, "big")
        else:
            out += b"\xcf" + n.to_bytes(8, "big")
    else:
        if n >= -32:
            out.append(n & 0xFF)
        elif n >= -128:
            out += b"\xd0" + (n & 0xFF).to_bytes(1, "big")
        elif n >= -32768:
            out += b"\xd1" + (n & 0xFFFF).to_bytes(2, "big")
        elif n >= -2147483648:
            out += b"\xd2" + (n & 0xFFFFFFFF).to_bytes(4, "big")
        else:
            out += b"\xd3" + (n & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "big")


def _enc_number(v: int | float, out: bytearray) -> None:
    if type(v) is int and -9007199254740992 <= v <= 9007199254740992:
        _enc_int(v, out)
        return
    d = float(v)
    if d == d and -9.223372036854775808e18 <= d < 9.223372036854775808e18 and d.is_integer():
        _enc_int(int(d), out)
        return
    try:
        packed = _F32.pack(d)
        same = _F32.unpack(packed)[0] == d
    except OverflowError:
        same = False
    if same:
        out += b"\xca" + packed
    else:
        out += b"\xcb" + _F64.pack(d)


def _enc_bytes(s: bytes, out: bytearray) -> None:
    n = len(s)
    if n < 32:
        out.append(0xA0 | n)
    elif n <= 0xFF:
        out += b"\xd9" + bytes([n])
    elif n <= 0xFFFF:
        out += b"\xda" + n.to_bytes(2, "big")
    else:
        out += b"\xdb" + (n & 0xFFFFFFFF).to_bytes(4, "big")
    out += s


def _is_array(t: LuaTable) -> bool:
    """table_is_an_array: keys exactly 1..count (int-valued numbers > 0 that fit a C int)."""
    count = 0
    mx = 0
    for k, _v in t.items():
        tk = type(k)
        if tk is int:
            if k <= 0 or k > _INT_MAX:
                return False
        elif tk is float:
            return False      # (integral floats are int keys in LuaTable)
        else:
            return False
        if k > mx:
            mx = k
        count += 1
    return mx == count


class _Guard:
    """Bounds one pack: tables reached many times over (each level of a 16-deep
    nest referring to one table 1000 times is 1000^16 values) meet the output cap,
    and the walk calls the runtime's hook every 256 tables."""

    __slots__ = ("rt", "tables")

    def __init__(self, rt: Any) -> None:
        self.rt = rt
        self.tables = 0

    def table(self, out: bytearray) -> None:
        self.tables += 1
        if not self.tables & 255:
            self.check(out)

    def check(self, out: bytearray) -> None:
        if len(out) > lib_string.MAX_STRING:
            raise LuaError(b"resulting string too large")
        hook = getattr(self.rt, "check_hook", None)
        if hook is not None:
            hook()


def _encode(v: Any, level: int, out: bytearray, guard: _Guard) -> None:
    t = type(v)
    if t is bytes:
        _enc_bytes(v, out)
        if len(v) > 65536:
            guard.check(out)
    elif t is int or t is float:
        _enc_number(v, out)
    elif t is bool:
        out.append(0xC3 if v else 0xC2)
    elif t is LuaTable and level < MAX_NESTING:
        guard.table(out)
        if _is_array(v):
            n = v.length()
            _enc_header(n, 0x90, 0xDC, out)
            for i in range(1, n + 1):
                _encode(v.get(i), level + 1, out, guard)
        else:
            items = list(v.items())
            _enc_header(len(items), 0x80, 0xDE, out)
            for k, x in items:
                _encode(k, level + 1, out, guard)
                _encode(x, level + 1, out, guard)
    else:
        out.append(0xC0)


def _enc_header(n: int, fix: int, code16: int, out: bytearray) -> None:
    if n <= 15:
        out.append(fix | n)
    elif n <= 0xFFFF:
        out += bytes([code16]) + n.to_bytes(2, "big")
    else:
        out += bytes([code16 + 1]) + (n & 0xFFFFFFFF).to_bytes(4, "big")


def mp_pack(*args: Any, rt: Any = None) -> tuple:
    if not args:
        raise arg_error(0, "pack", "MessagePack pack needs input.")
    out = bytearray()
    guard = _Guard(rt)
    for a in args:
        _encode(a, 0, out, guard)
    guard.check(out)
    return (bytes(out),)


# -- decoding --------------------------------------------------------------------------

class _Eof(Exception):
    pass


class _BadFmt(Exception):
    pass


_TOO_MANY = b"stack overflow (too many return values at once; use unpack_one or unpack_limit instead.)"


def _num(x: float) -> int | float:
    if x == x and x.is_integer() and -9007199254740992.0 <= x <= 9007199254740992.0:
        if x == 0 and math.copysign(1.0, x) < 0:
            return x
        return int(x)
    return x


def _i64(u: int) -> int | float:
    """A uint64/int64 bit pattern pushed as a Lua number (a double)."""
    if u & (1 << 63):
        u -= 1 << 64
    if -9007199254740992 <= u <= 9007199254740992:
        return u
    return _num(float(u))


def _decode_one(data: bytes, p: int, base: int) -> tuple[Any, int]:
    """One value at data[p:], its end; base = Lua stack slots in use below it."""
    n = len(data)
    frames: list = []     # [table, is_array, remaining, next_index, key, has_key]
    extra = 0             # stack slots the open containers use
    while True:
        if p >= n:
            raise _Eof
        if base + extra + 1 > MAXCSTACK:
            raise LuaError(_TOO_MANY)
        b = data[p]
        container = None
        if b <= 0x7F:
            value = b
            p += 1
        elif b >= 0xE0:
            value = b - 256
            p += 1
        elif 0xA0 <= b <= 0xBF:
            ln = b & 0x1F
            if p + 1 + ln > n:
                raise _Eof
            value = data[p + 1:p + 1 + ln]
            p += 1 + ln
        elif 0x90 <= b <= 0x9F:
            container = (True, b & 0xF)
            p += 1
        elif 0x80 <= b <= 0x8F:
            container = (False, b & 0xF)
            p += 1
        elif b == 0xC0:
            value = None
            p += 1
        elif b == 0xC2 or b == 0xC3:
            value = b == 0xC3
            p += 1
        elif b in _FIXED:
            size, conv = _FIXED[b]
            if p + 1 + size > n:
                raise _Eof
            value = conv(data[p + 1:p + 1 + size])
            p += 1 + size
        elif b in (0xD9, 0xDA, 0xDB):
            hl = {0xD9: 1, 0xDA: 2, 0xDB: 4}[b]
            if p + 1 + hl > n:
                raise _Eof
            ln = int.from_bytes(data[p + 1:p + 1 + hl], "big")
            if p + 1 + hl + ln > n:
                raise _Eof
            value = data[p + 1 + hl:p + 1 + hl + ln]
            p += 1 + hl + ln
        elif b in (0xDC, 0xDD, 0xDE, 0xDF):
            hl = 2 if b in (0xDC, 0xDE) else 4
            if p + 1 + hl > n:
                raise _Eof
            container = (b in (0xDC, 0xDD), int.from_bytes(data[p + 1:p + 1 + hl], "big"))
            p += 1 + hl
        else:
            raise _BadFmt
        if container is not None:
            is_arr, count = container
            t = LuaTable()
            extra += 1
            if is_arr and base + extra + 1 > MAXCSTACK:
                raise LuaError(b"stack overflow (in function mp_decode_to_lua_array)")
            if count:
                frames.append([t, is_arr, count, 1, None, False])
                if is_arr:
                    extra += 1      # the index pushed before each element
                continue
            extra -= 1
            value = t
        # a complete value: hand it to the open containers
        while frames:
            f = frames[-1]
            t = f[0]
            if f[1]:
                t.set(f[3], value)
                f[3] += 1
                f[2] -= 1
                extra -= 1
                if f[2]:
                    extra += 1
                    break
            else:
                if not f[5]:
                    f[4] = value
                    f[5] = True
                    extra += 1
                    break
                try:
                    t.set(f[4], value)
                except LuaError as e:   # a nil or NaN key: lua_settable's error, no position
                    raise runtime_error(e) from None
                f[5] = False
                extra -= 1
                f[2] -= 1
                if f[2]:
                    break
            frames.pop()
            extra -= 1
            value = t
        else:
            return value, p


def _u(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _s(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


_FIXED = {
    0xCC: (1, _u), 0xCD: (2, _u), 0xCE: (4, _u), 0xCF: (8, lambda r: _i64(_u(r))),
    0xD0: (1, _s), 0xD1: (2, _s), 0xD2: (4, _s), 0xD3: (8, lambda r: _i64(_u(r))),
    0xCA: (4, lambda r: _num(_F32.unpack(r)[0])), 0xCB: (8, lambda r: _num(_F64.unpack(r)[0])),
}


def _unpack_full(s: bytes, limit: int, offset: int) -> tuple:
    ln = len(s)
    decode_all = not limit and not offset
    if offset < 0 or limit < 0:
        raise LuaError(b"Invalid request to unpack with offset of %d and limit of %d."
                       % (_c_int(offset), _c_int(ln)))
    if offset > ln:
        raise LuaError(b"Start offset %d greater than input length %d."
                       % (_c_int(offset), _c_int(ln)))
    if decode_all:
        limit = _INT_MAX
    results: list = []
    p = offset
    try:
        while p < ln and len(results) < limit:
            v, p = _decode_one(s, p, 1 + len(results))
            results.append(v)
    except _Eof:
        raise LuaError(b"Missing bytes in input.") from None
    except _BadFmt:
        raise LuaError(b"Bad data format in input.") from None
    if not decode_all:
        return (-1 if p >= ln else p,) + tuple(results)
    return tuple(results)


def _c_int(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def mp_unpack(*args: Any) -> tuple:
    return _unpack_full(check_str(args, 1, "unpack"), 0, 0)


def mp_unpack_one(*args: Any) -> tuple:
    offset = opt_integer(args, 2, "unpack_one", 0)
    return _unpack_full(check_str(args, 1, "unpack_one"), 1, offset)


def mp_unpack_limit(*args: Any) -> tuple:
    limit = check_integer(args, 2, "unpack_limit")
    offset = opt_integer(args, 3, "unpack_limit", 0)
    return _unpack_full(check_str(args, 1, "unpack_limit"), limit, offset)


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The cmsgpack library table."""
    t = LuaTable()

    def pack(*args: Any) -> tuple:
        return mp_pack(*args, rt=rt)
    t.set(b"pack", pack)
    t.set(b"unpack", mp_unpack)
    t.set(b"unpack_one", mp_unpack_one)
    t.set(b"unpack_limit", mp_unpack_limit)
    t.set(b"_NAME", b"cmsgpack")
    t.set(b"_VERSION", b"lua-cmsgpack 0.4.0")
    t.set(b"_COPYRIGHT", b"Copyright (C) 2012, Salvatore Sanfilippo")
    t.set(b"_DESCRIPTION", b"MessagePack C implementation for Lua")
    return t
