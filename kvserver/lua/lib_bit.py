"""bit: LuaBitOp 1.0 (lua_bit.c) as Redis 7.0.15 bundles it; 32-bit operations.

An argument becomes 32 bits as BitOp does it: the number plus 2^52+2^51, the
low 32 bits of that double (so it is rounded to nearest-even and wraps modulo
2^32); results are signed 32-bit numbers. A non-number argument is "number
expected" (numeric strings are accepted, as lua_tonumber converts them).
"""

from __future__ import annotations

import struct
from typing import Any

from .libargs import type_error
from .value import LuaTable, str_to_number

_D = struct.Struct("<d")
_Q = struct.Struct("<Q")


def _barg(args: tuple, i: int, fname: str) -> int:
    """The argument as an unsigned 32-bit value (barg)."""
    v = args[i - 1] if i <= len(args) else None
    t = type(v)
    if t is int and -(1 << 51) < v < (1 << 51):
        return v & 0xFFFFFFFF
    if t is int or t is float:
        n = float(v)
    elif t is bytes:
        n = str_to_number(v)
        if n is None:
            raise type_error(args, i, fname, "number")
        n = float(n)
    else:
        raise type_error(args, i, fname, "number")
    b = _Q.unpack(_D.pack(n + 6755399441055744.0))[0] & 0xFFFFFFFF
    return b


def _ret(b: int) -> tuple:
    b &= 0xFFFFFFFF
    return (b - 0x100000000 if b & 0x80000000 else b,)


def tobit(*args: Any) -> tuple:
    return _ret(_barg(args, 1, "tobit"))


def bnot(*args: Any) -> tuple:
    return _ret(~_barg(args, 1, "bnot"))


def band(*args: Any) -> tuple:
    b = _barg(args, 1, "band")
    for i in range(len(args), 1, -1):
        b &= _barg(args, i, "band")
    return _ret(b)


def bor(*args: Any) -> tuple:
    b = _barg(args, 1, "bor")
    for i in range(len(args), 1, -1):
        b |= _barg(args, i, "bor")
    return _ret(b)


def bxor(*args: Any) -> tuple:
    b = _barg(args, 1, "bxor")
    for i in range(len(args), 1, -1):
        b ^= _barg(args, i, "bxor")
    return _ret(b)


def lshift(*args: Any) -> tuple:
    b = _barg(args, 1, "lshift")
    return _ret(b << (_barg(args, 2, "lshift") & 31))


def rshift(*args: Any) -> tuple:
    b = _barg(args, 1, "rshift")
    return _ret(b >> (_barg(args, 2, "rshift") & 31))


def arshift(*args: Any) -> tuple:
    b = _barg(args, 1, "arshift")
    n = _barg(args, 2, "arshift") & 31
    s = b - 0x100000000 if b & 0x80000000 else b
    return _ret(s >> n)


def rol(*args: Any) -> tuple:
    b = _barg(args, 1, "rol")
    n = _barg(args, 2, "rol") & 31
    return _ret((b << n) | (b >> (32 - n)))


def ror(*args: Any) -> tuple:
    b = _barg(args, 1, "ror")
    n = _barg(args, 2, "ror") & 31
    return _ret((b << (32 - n)) | (b >> n))


def bswap(*args: Any) -> tuple:
    b = _barg(args, 1, "bswap")
    return _ret((b >> 24) | ((b >> 8) & 0xFF00) | ((b & 0xFF00) << 8) | (b << 24))


def tohex(*args: Any) -> tuple:
    b = _barg(args, 1, "tohex")
    if len(args) < 2:
        n = 8
    else:
        n = _barg(args, 2, "tohex")
        if n & 0x80000000:
            n -= 0x100000000
    digits = "0123456789abcdef"
    if n < 0:
        n = -n
        digits = "0123456789ABCDEF"
    if n > 8:
        n = 8
    if n <= 0:
        return (b"",)
    out = []
    for _ in range(n):
        out.append(digits[b & 15])
        b >>= 4
    return ("".join(reversed(out)).encode(),)


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The bit library table."""
    t = LuaTable()
    for name, f in (("tobit", tobit), ("bnot", bnot), ("band", band), ("bor", bor),
                    ("bxor", bxor), ("lshift", lshift), ("rshift", rshift),
                    ("arshift", arshift), ("rol", rol), ("ror", ror), ("bswap", bswap),
                    ("tohex", tohex)):
        t.set(name.encode(), f)
    return t
