"""Lua 5.1 values as Python objects: the contract every part of kvserver.lua keeps.

=============  ===============================================================
Lua            Python
=============  ===============================================================
nil            ``None``
boolean        ``True`` / ``False`` (never a number, though Python's bool is an int)
number         ``int`` or ``float`` (both: code that receives numbers accepts
               either; ``bool`` is excluded everywhere, check ``type(v)``)
string         ``bytes`` (Lua strings are byte strings)
table          :class:`LuaTable`
function       any Python callable that is not a LuaTable: called ``f(*args)``
               with Lua values, it returns a tuple (or list) of its results,
               ``()`` for none. Compiled Lua functions and library builtins
               follow the same convention.
=============  ===============================================================

Errors: a Lua error is :class:`LuaError` carrying the Lua error value
(usually a ``bytes`` message, already prefixed ``chunkname:line:`` where Lua
would add a position). ``pcall``/``xpcall`` catch ``Exception`` subclasses
only, so an interruption raised as a ``BaseException`` subclass (a killed
script) passes through every pcall.

A script can reach nothing but Lua values: no Python attribute, module or
object is ever exposed as a Lua value other than the kinds above.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterator


class LuaError(Exception):
    """A Lua error; ``value`` is the Lua value raised (a message is bytes)."""

    def __init__(self, value: Any, traceback: bytes | None = None) -> None:
        super().__init__(value)
        self.value = value
        self.traceback = traceback

    def __str__(self) -> str:
        v = self.value
        if isinstance(v, bytes):
            return v.decode("utf-8", "replace")
        return tostring(v).decode("utf-8", "replace")


class LuaSyntaxError(LuaError):
    """A chunk that does not compile; the message is Lua's (``chunk:line: ... near 'x'``)."""


class _BoolKey:
    """Stands for true/false as a table key (Python's True == 1 would collide)."""

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value


_TRUE_KEY = _BoolKey(True)
_FALSE_KEY = _BoolKey(False)


def _key(k: Any) -> Any:
    """The dict key for Lua key ``k`` (validated: nil and NaN are errors)."""
    t = type(k)
    if t is bytes or t is int:
        return k
    if t is float:
        if k.is_integer():
            return int(k)
        if k != k:
            raise LuaError(b"table index is NaN")
        return k
    if t is bool:
        return _TRUE_KEY if k else _FALSE_KEY
    if k is None:
        raise LuaError(b"table index is nil")
    return k


def _unkey(k: Any) -> Any:
    return k.value if type(k) is _BoolKey else k


class LuaTable:
    """A Lua table: an array part (keys 1..n, may hold None holes) and a hash part.

    Invariants: ``arr`` never ends with None, and the key ``len(arr) + 1`` is
    never in ``hash`` (it moves into ``arr``), so ``len(arr)`` is always a
    valid border for ``#``. Use :meth:`get`/:meth:`set`, never the parts, from
    outside this class unless you keep the invariants (``arr`` may be read
    directly for speed: ``arr[i - 1]`` is ``t[i]`` for ``1 <= i <= len(arr)``).
    """

    __slots__ = ("arr", "hash", "metatable", "_keys", "_pos", "__weakref__")

    def __init__(self, arr: list | None = None, hash: dict | None = None) -> None:
        self.arr: list = arr if arr is not None else []
        self.hash: dict = {}
        self.metatable: LuaTable | None = None
        self._keys: list | None = None   # next()'s snapshot of hash keys
        self._pos: dict | None = None
        if hash:
            for k, v in hash.items():
                self.set(k, v)

    @classmethod
    def from_list(cls, values: list) -> "LuaTable":
        """A sequence 1..n; stops at the first None, as Lua's table constructor would keep holes."""
        t = cls()
        for v in values:
            if v is None:
                break
            t.arr.append(v)
        return t

    # -- access -------------------------------------------------------------
    def get(self, k: Any) -> Any:
        if type(k) is int:
            if 0 < k <= len(self.arr):
                return self.arr[k - 1]
            return self.hash.get(k)
        if type(k) is bytes:
            return self.hash.get(k)
        if k is None:
            return None
        if type(k) is float:
            if k.is_integer():
                return self.get(int(k))
            if k != k:
                return None
        elif type(k) is bool:
            k = _TRUE_KEY if k else _FALSE_KEY
        return self.hash.get(k)

    def set(self, k: Any, v: Any) -> None:
        if type(k) is not int:
            k = _key(k)
            if type(k) is not int:
                self._set_hash(k, v)
                return
        arr = self.arr
        n = len(arr)
        if 0 < k <= n:
            arr[k - 1] = v
            if v is None and k == n:
                arr.pop()
                while arr and arr[-1] is None:
                    arr.pop()
            return
        if k == n + 1 and v is not None:
            arr.append(v)
            h = self.hash
            if h:
                k += 1
                while k in h:
                    arr.append(h.pop(k))
                    k += 1
            return
        self._set_hash(k, v)

    def _set_hash(self, k: Any, v: Any) -> None:
        h = self.hash
        if v is None:
            h.pop(k, None)
        else:
            if self._keys is not None and k not in h:
                self._keys = self._pos = None  # a new key: next()'s snapshot is stale
            h[k] = v

    def length(self) -> int:
        """``#t`` without metamethods: a border."""
        return len(self.arr)

    def next(self, k: Any) -> tuple[Any, Any] | None:
        """The entry after key ``k`` (None: the first), or None at the end.

        Order: the array part, then the hash part. Assigning nil to an
        existing field during a traversal is allowed (as in Lua); adding a
        new field is not (Lua: undefined; here the traversal restarts its
        snapshot and may repeat or skip entries).
        """
        arr = self.arr
        if k is None:
            i = 0
        else:
            kk = _key(k)
            if type(kk) is int and 0 < kk <= len(arr):
                i = kk
            else:
                return self._next_hash(kk)
        n = len(arr)
        while i < n:
            v = arr[i]
            if v is not None:
                return i + 1, v
            i += 1
        return self._next_hash(None)

    def _next_hash(self, kk: Any) -> tuple[Any, Any] | None:
        h = self.hash
        if not h:
            if kk is None:
                return None
            raise LuaError(b"invalid key to 'next'")
        keys = self._keys
        if keys is None:
            keys = self._keys = list(h)
            self._pos = {key: i for i, key in enumerate(keys)}
        if kk is None:
            i = 0
        else:
            i = self._pos.get(kk)
            if i is None:
                raise LuaError(b"invalid key to 'next'")
            i += 1
        n = len(keys)
        while i < n:
            key = keys[i]
            v = h.get(key)
            if v is not None:
                return _unkey(key), v
            i += 1
        return None

    def items(self) -> Iterator[tuple[Any, Any]]:
        """Every (key, value), array part first (do not change the table meanwhile)."""
        for i, v in enumerate(self.arr, 1):
            if v is not None:
                yield i, v
        for k, v in self.hash.items():
            yield _unkey(k), v

    def sequence(self) -> list:
        """t[1], t[2], ... up to the first nil (how Redis converts a table to an array)."""
        arr = self.arr
        if None in arr:
            return arr[:arr.index(None)]
        out = list(arr)
        h = self.hash
        if h:
            i = len(out) + 1
            while True:
                v = h.get(i)
                if v is None:
                    break
                out.append(v)
                i += 1
        return out

    def __repr__(self) -> str:
        return f"<LuaTable 0x{id(self):08x}>"


# -- conversions without metamethods (the base library adds __tostring) -------

def type_name(v: Any) -> str:
    """Lua's type(v)."""
    if v is None:
        return "nil"
    t = type(v)
    if t is bool:
        return "boolean"
    if t is int or t is float:
        return "number"
    if t is bytes:
        return "string"
    if t is LuaTable:
        return "table"
    if callable(v):
        return "function"
    return "userdata"


def number_to_bytes(n: int | float) -> bytes:
    """Lua 5.1's number formatting (LUAI_NUMFFORMAT "%.14g"; NaN as glibc prints it)."""
    if type(n) is int and -10**14 < n < 10**14:
        return b"%d" % n
    f = float(n)
    if f != f:
        return b"-nan" if math.copysign(1.0, f) < 0 else b"nan"
    return b"%.14g" % f


def tostring(v: Any) -> bytes:
    """Lua's tostring(v) without the __tostring metamethod."""
    t = type(v)
    if t is bytes:
        return v
    if t is int or t is float:
        return number_to_bytes(v)
    if v is None:
        return b"nil"
    if t is bool:
        return b"true" if v else b"false"
    return b"%s: 0x%08x" % (type_name(v).encode(), id(v))


# C's strtod as glibc reads it (decimal, hex with optional p exponent, inf, nan),
# which is what Lua 5.1's tonumber / string coercion accept, surrounded by
# C whitespace. Python's float() would also take underscores: not used directly.
_SPACE = b" \t\n\v\f\r"
_DEC = re.compile(rb"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)\Z")
_HEX = re.compile(rb"([+-]?)0[xX]((?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+))"
                  rb"(?:[pP]([+-]?\d+))?\Z")
_SPECIAL = re.compile(rb"([+-]?)(inf|infinity|nan(?:\([0-9A-Za-z_]*\))?)\Z", re.I)


def _hex_value(digits: bytes, exp: bytes | None) -> float:
    """The double glibc's strtod reads from hex digits (with a '.') and a binary
    exponent: correctly rounded, inf past the largest double, 0 below the
    smallest (never an OverflowError, whatever the number of digits)."""
    whole, _, frac = digits.partition(b".")
    mant = int(whole + frac or b"0", 16)
    if mant == 0:
        return 0.0
    if exp is None:
        e2 = 0
    else:
        e = exp.lstrip(b"+-").lstrip(b"0") or b"0"
        # past 9 digits the exponent alone decides: inf or 0 (int() of a huge
        # decimal string is also refused by Python's digit limit)
        e2 = int(e) if len(e) <= 9 else 10 ** 9
        if exp[:1] == b"-":
            e2 = -e2
    e2 -= 4 * len(frac)
    if mant.bit_length() + e2 > 1025:
        return math.inf
    if mant.bit_length() + e2 < -1080:
        return 0.0
    try:
        return float(mant << e2) if e2 >= 0 else mant / (1 << -e2)
    except OverflowError:
        return math.inf


def str_to_number(s: bytes) -> int | float | None:
    """A string's numeric value as Lua 5.1 converts it (tonumber(s), arithmetic), or None."""
    if s.isdigit() and len(s) < 16:
        # The common case (ARGV numbers, GET of a counter): plain ASCII digits,
        # exact as a double. bytes.isdigit() is ASCII-only and false for b"".
        return int(s)
    s = s.strip(_SPACE)
    if not s:
        return None
    if _DEC.match(s):
        if s.isdigit() and len(s) < 16:
            return int(s)
        f = float(s)
        if f.is_integer() and abs(f) < 2.0 ** 53 and (f or math.copysign(1.0, f) > 0):
            return int(f)   # (not -0: tostring(tonumber("-0")) is "-0" in Lua)
        return f
    m = _HEX.match(s)
    if m:
        sign, digits, exp = m.groups()
        value = _hex_value(digits, exp)
        if sign == b"-":
            value = -value
        if value.is_integer() and abs(value) < 2.0 ** 53 and (value or sign != b"-"):
            return int(value)
        return value
    m = _SPECIAL.match(s)
    if m:
        sign, word = m.groups()
        if word[:1] in b"nN":
            return float("nan") if sign != b"-" else -float("nan")
        return -math.inf if sign == b"-" else math.inf
    return None


def tonumber(v: Any) -> int | float | None:
    """Lua's tonumber(v) with no base: numbers as they are, strings converted, else None."""
    t = type(v)
    if t is int or t is float:
        return v
    if t is bytes:
        return str_to_number(v)
    return None
