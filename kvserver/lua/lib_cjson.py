"""cjson: lua-cjson 2.1.0 as bundled with Redis 7.0.15 (deps/lua/src/lua_cjson.c).

Encoding: strings escaped with cjson's table ("/" becomes "\\/", DEL becomes
\\u007f, bytes >= 0x80 pass through), numbers with "%.14g" (the precision is
configurable 1..14), an empty table as "{}", a table whose keys are all
positive integers as an array (holes as null) unless it is "excessively
sparse" (max index > 2 * count and > 10), any other table as an object whose
number keys become strings. Decoding: cjson's tokenizer and its error texts
("Expected value but found invalid token at character 1"), numbers read as C's
strtod reads them (so "0x10", "+1", "inf" and "nan" decode: Redis builds cjson
with decode_invalid_numbers on), ``null`` as :data:`null`, input ending at
the first NUL byte as in C. Nesting is limited to 1000 both ways
("Cannot serialise, excessive nesting (1001)", "Found too many nested data
structures (1001) at character N"); both walks are iterative, so the limit is
the only bound.

Differences from Redis: an object's keys come out in this table's iteration
order (array part, then insertion order), where C Lua uses its hash order;
``tostring(cjson.null)`` is "userdata: 0x..." rather than "userdata: (nil)".
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from . import lib_string
from .libargs import arg_error, check_integer, check_str, to_int32
from .value import LuaError, LuaTable, type_name


class _Null:
    """cjson.null: Redis's lightuserdata NULL; Lua's type() says "userdata"."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "cjson.null"


#: The one cjson.null value (shared by every cjson table, like the C NULL pointer).
null = _Null()

MAX_DEPTH_DEFAULT = 1000


class _Config:
    __slots__ = ("sparse_convert", "sparse_ratio", "sparse_safe", "encode_max_depth",
                 "decode_max_depth", "encode_invalid_numbers", "decode_invalid_numbers",
                 "keep_buffer", "precision", "fmt")

    def __init__(self) -> None:
        self.sparse_convert = 0
        self.sparse_ratio = 2
        self.sparse_safe = 10
        self.encode_max_depth = MAX_DEPTH_DEFAULT
        self.decode_max_depth = MAX_DEPTH_DEFAULT
        self.encode_invalid_numbers = 0
        self.decode_invalid_numbers = 1
        self.keep_buffer = 1
        self.precision = 14
        self.fmt = b"%.14g"


# -- encoding ---------------------------------------------------------------------

_ESCAPES = {c: b"\\u%04x" % c for c in range(32)}
_ESCAPES.update({8: b"\\b", 9: b"\\t", 10: b"\\n", 12: b"\\f", 13: b"\\r", 34: b'\\"',
                 47: b"\\/", 92: b"\\\\", 127: b"\\u007f"})
_ESCAPE_BYTES = {bytes([c]): e for c, e in _ESCAPES.items()}
_NEEDS_ESCAPE = re.compile(b'[\\x00-\\x1f"/\\\\\\x7f]')


def _escape_one(m: re.Match) -> bytes:
    return _ESCAPE_BYTES[m.group()]


def _quote(s: bytes) -> bytes:
    if _NEEDS_ESCAPE.search(s) is None:
        return b'"' + s + b'"'
    return b'"' + _NEEDS_ESCAPE.sub(_escape_one, s) + b'"'


def _encode_error(what: str, reason: str) -> LuaError:
    return LuaError(b"Cannot serialise %s: %s" % (what.encode(), reason.encode()))


def _number(cfg: _Config, n: int | float) -> bytes:
    if type(n) is int and -100000000000000 < n < 100000000000000 and cfg.precision == 14:
        return b"%d" % n
    f = float(n)
    if f != f or f in (math.inf, -math.inf):
        mode = cfg.encode_invalid_numbers
        if mode == 0:
            raise _encode_error("number", "must not be NaN or Inf")
        if mode == 2:
            return b"null"
        if f != f:
            return b"nan"
        return b"inf" if f > 0 else b"-inf"
    return cfg.fmt % f


def _array_length(cfg: _Config, t: LuaTable) -> int:
    """lua_array_length: the array size, or -1 for an object (raises for a sparse array)."""
    arr = t.arr
    mx = len(arr)
    items = mx - arr.count(None) if mx else 0
    for k in t.hash:
        if type(k) is int and k >= 1:
            if k > mx:
                mx = k
            items += 1
        else:
            return -1
    if cfg.sparse_ratio > 0 and mx > items * cfg.sparse_ratio and mx > cfg.sparse_safe:
        if not cfg.sparse_convert:
            raise _encode_error("table", "excessively sparse array")
        return -1
    return mx


class _TooDeep(Exception):
    pass


#: Nesting the recursive encoder handles before handing over to the iterative one.
_FAST_DEPTH = 64


class _Guard:
    """Bounds one encode: a table reached many times over (t = {t, t} nested 60 deep
    is small in memory, 2^60 in JSON) meets the output cap, and the walk calls the
    runtime's hook, so a script stuck in it can be killed. Counting is amortized:
    every 256 tables (or after a long string) the pieces added since the last check
    are measured."""

    __slots__ = ("out", "rt", "tables", "seen", "total")

    def __init__(self, out: list, rt: Any) -> None:
        self.out = out
        self.rt = rt
        self.tables = 0
        self.seen = 0
        self.total = 0

    def table(self) -> None:
        self.tables += 1
        if not self.tables & 255:
            self.check()

    def check(self) -> None:
        out = self.out
        self.total += sum(map(len, out[self.seen:]))
        self.seen = len(out)
        if self.total > lib_string.MAX_STRING:
            raise LuaError(b"resulting string too large")
        hook = getattr(self.rt, "check_hook", None)
        if hook is not None:
            hook()


def _emit_key(cfg, k, emit) -> None:
    """An object key and its colon: a string as it is, a number as a string."""
    tk = type(k)
    if tk is bytes:
        emit(_quote(k))
        emit(b":")
    elif tk is int or tk is float:
        emit(b'"')
        emit(_number(cfg, k))
        emit(b'":')
    else:
        raise _encode_error(type_name(k), "table key must be a number or string")


def _encode_fast(cfg: _Config, x: Any, depth: int, emit, guard: _Guard) -> None:
    """The common case, recursively (same output and errors as _encode_iter)."""
    tx = type(x)
    if tx is bytes:
        emit(_quote(x))
        if len(x) > 65536:
            guard.check()
    elif tx is int and -100000000000000 < x < 100000000000000 and cfg.precision == 14:
        emit(b"%d" % x)
    elif tx is int or tx is float:
        emit(_number(cfg, x))
    elif tx is bool:
        emit(b"true" if x else b"false")
    elif x is None or x is null:
        emit(b"null")
    elif tx is LuaTable:
        depth += 1
        if depth > _FAST_DEPTH:
            raise _TooDeep
        if depth > cfg.encode_max_depth:
            raise LuaError(b"Cannot serialise, excessive nesting (%d)" % depth)
        guard.table()
        n = _array_length(cfg, x)
        if n > 0:
            emit(b"[")
            get = x.get
            for i in range(1, n + 1):
                if i > 1:
                    emit(b",")
                _encode_fast(cfg, get(i), depth, emit, guard)
            emit(b"]")
        else:
            emit(b"{")
            first = True
            for k, v in x.items():
                if first:
                    first = False
                else:
                    emit(b",")
                _emit_key(cfg, k, emit)
                _encode_fast(cfg, v, depth, emit, guard)
            emit(b"}")
    else:
        raise _encode_error(type_name(x), "type not supported")


def encode(cfg: _Config, v: Any, rt: Any = None) -> bytes:
    """cjson.encode(v); rt's hook is called as the walk goes."""
    tv = type(v)
    if tv is bytes:
        return _quote(v)
    if tv is int or tv is float:
        return _number(cfg, v)
    out: list = []
    guard = _Guard(out, rt)
    try:
        _encode_fast(cfg, v, 0, out.append, guard)
    except _TooDeep:
        return _encode_iter(cfg, v, rt)
    guard.check()
    return b"".join(out)


def _encode_iter(cfg: _Config, v: Any, rt: Any = None) -> bytes:
    """cjson.encode(v) iteratively: the nesting limit is the only bound on depth."""
    out: list = []
    guard = _Guard(out, rt)
    stack: list = []     # [is_array, iterator, first, table]
    emit = out.append
    max_depth = cfg.encode_max_depth

    def value(x: Any) -> None:
        tx = type(x)
        if tx is bytes:
            emit(_quote(x))
            if len(x) > 65536:
                guard.check()
        elif tx is int or tx is float:
            emit(_number(cfg, x))
        elif tx is bool:
            emit(b"true" if x else b"false")
        elif x is None or x is null:
            emit(b"null")
        elif tx is LuaTable:
            depth = len(stack) + 1
            if depth > max_depth:
                raise LuaError(b"Cannot serialise, excessive nesting (%d)" % depth)
            guard.table()
            n = _array_length(cfg, x)
            if n > 0:
                emit(b"[")
                stack.append([True, iter(range(1, n + 1)), True, x])
            else:
                emit(b"{")
                stack.append([False, x.items(), True, x])
        else:
            raise _encode_error(type_name(x), "type not supported")

    value(v)
    while stack:
        top = stack[-1]
        it = top[1]
        if top[0]:
            for i in it:
                if top[2]:
                    top[2] = False
                else:
                    emit(b",")
                x = top[3].get(i)
                tx = type(x)
                if tx is LuaTable:
                    value(x)
                    break
                value(x)
            else:
                emit(b"]")
                stack.pop()
        else:
            for k, x in it:
                if top[2]:
                    top[2] = False
                else:
                    emit(b",")
                _emit_key(cfg, k, emit)
                if type(x) is LuaTable:
                    value(x)
                    break
                value(x)
            else:
                emit(b"}")
                stack.pop()
    guard.check()
    return b"".join(out)


# -- decoding ---------------------------------------------------------------------

# C's strtod, as fpconv_strtod calls it (decimal, hex, inf/infinity, nan(...)).
_STRTOD = re.compile(
    rb"[+-]?(?:0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?"
    rb"|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
    rb"|[iI][nN][fF](?:[iI][nN][iI][tT][yY])?"
    rb"|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?)")
_PLAIN_NUMBER = re.compile(rb"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_WS = re.compile(rb"[ \t\n\r]*")
_STRING_PLAIN = re.compile(rb'[^"\\\x00]*')
_HEX4 = re.compile(rb"[0-9a-fA-F]{4}")

_TOKEN_NAMES = {"{": "T_OBJ_BEGIN", "}": "T_OBJ_END", "[": "T_ARR_BEGIN", "]": "T_ARR_END",
                ",": "T_COMMA", ":": "T_COLON"}


def _strtod(text: bytes) -> int | float:
    """The value of a strtod-accepted prefix (already matched by _STRTOD)."""
    s = text.lower()
    neg = s[:1] == b"-"
    body = s.lstrip(b"+-")
    if body.startswith(b"0x"):
        from .value import str_to_number
        v = str_to_number(body)
        v = float(v) if v is not None else 0.0
    elif body.startswith(b"inf"):
        v = math.inf
    elif body.startswith(b"nan"):
        v = float("nan")
    else:
        v = float(body)
    if neg:
        v = -v
    if v.is_integer() and abs(v) <= 9007199254740992.0 and not (v == 0 and neg):
        return int(v)
    return v


def _is_invalid_number(data: bytes, pos: int) -> bool:
    """json_is_invalid_number: '+', hex, leading zeros, inf and nan."""
    p = pos
    c = data[p:p + 1]
    if c == b"+":
        return True
    if c == b"-":
        p += 1
    c = data[p:p + 1]
    if c == b"0":
        c2 = data[p + 1:p + 2]
        return c2 in (b"x", b"X") or (c2 != b"" and c2.isdigit())
    if c != b"" and c <= b"9":
        return False
    w = data[p:p + 3].lower()
    return w == b"inf" or w == b"nan"


class _ParseError(Exception):
    pass


# -- the fast lane: Python's C JSON scanner for the inputs where it reads what cjson reads --
#
# With no backslash (so no escapes) and no NUL, a JSON text Python's json module
# accepts is read by cjson to the same values: same whitespace, same literals,
# strict-JSON numbers (a subset of what strtod takes; NaN/Infinity/-Infinity as
# cjson reads them with decode_invalid_numbers on), raw control bytes in strings
# (strict=False), latin-1 mapping bytes 1:1. Everything else, every error, and
# anything that might nest deeper than decode_max_depth goes to decode_slow,
# which is cjson's tokenizer and says cjson's exact error.

def _fast_int(text: str) -> int | float:
    if text == "-0":
        return -0.0
    if len(text) < 16:
        return int(text)
    f = float(text)
    return int(f) if abs(f) <= 9007199254740992.0 else f


def _fast_float(text: str) -> int | float:
    f = float(text)
    if f.is_integer() and -9007199254740992.0 <= f <= 9007199254740992.0 and \
            not (f == 0 and text.startswith("-")):
        return int(f)
    return f


_CONSTANTS = {"NaN": float("nan"), "Infinity": math.inf, "-Infinity": -math.inf}


def _fast_value(v: Any) -> Any:
    t = type(v)
    if t is str:
        return v.encode("latin-1")
    if t is list:
        return LuaTable([_fast_value(x) for x in v])
    if v is None:
        return null
    return v        # numbers, booleans, LuaTables built by the pairs hook


def _fast_object(pairs: list) -> LuaTable:
    t = LuaTable()
    for k, v in pairs:
        t.set(k.encode("latin-1"), _fast_value(v))
    return t


_FAST = json.JSONDecoder(object_pairs_hook=_fast_object, parse_float=_fast_float,
                         parse_int=_fast_int, parse_constant=_CONSTANTS.__getitem__, strict=False)


def decode(cfg: _Config, data: bytes) -> Any:
    """cjson.decode(data)."""
    if (b"\\" not in data and b"\0" not in data and cfg.decode_invalid_numbers
            and data.count(b"[") + data.count(b"{") <= cfg.decode_max_depth):
        try:
            return _fast_value(_FAST.decode(data.decode("latin-1")))
        except (ValueError, RecursionError):
            pass
    return decode_slow(cfg, data)


def decode_slow(cfg: _Config, data: bytes) -> Any:
    """cjson.decode(data) by cjson's own tokenizer and grammar (every error comes from here)."""
    if len(data) >= 2 and (data[0] == 0 or data[1] == 0):
        raise LuaError(b"JSON parser does not support UTF-16 or UTF-32")
    nul = data.find(b"\0")
    if nul >= 0:
        data = data[:nul]
    n = len(data)
    pos = 0
    max_depth = cfg.decode_max_depth
    invalid_ok = cfg.decode_invalid_numbers

    def fail(expected: str, found: str, index: int) -> LuaError:
        return LuaError(b"Expected %s but found %s at character %d"
                        % (expected.encode(), found.encode(), index + 1))

    def token(p: int):
        """(kind, value, start, end): kind is a T_ name or 'ERR' with the error text."""
        p = _WS.match(data, p).end()
        if p >= n:
            return "T_END", None, p, p
        c = data[p]
        ch = chr(c)
        if ch in "{}[],:":
            return _TOKEN_NAMES[ch], None, p, p + 1
        if ch == '"':
            return string_token(p)
        if ch == "-" or "0" <= ch <= "9":
            if not invalid_ok and _is_invalid_number(data, p):
                return "ERR", "invalid number", p, p
            return number_token(p)
        if data.startswith(b"true", p):
            return "T_BOOLEAN", True, p, p + 4
        if data.startswith(b"false", p):
            return "T_BOOLEAN", False, p, p + 5
        if data.startswith(b"null", p):
            return "T_NULL", null, p, p + 4
        if ch in "fiInNt+" and invalid_ok and _is_invalid_number(data, p):
            return number_token(p)
        return "ERR", "invalid token", p, p

    def number_token(p: int):
        m = _STRTOD.match(data, p)
        if m is None:
            return "ERR", "invalid number", p, p
        return "T_NUMBER", _strtod(m.group()), p, m.end()

    def string_token(p: int):
        start = p
        p += 1
        parts = []
        while True:
            m = _STRING_PLAIN.match(data, p)
            if m.end() > p:
                parts.append(data[p:m.end()])
                p = m.end()
            if p >= n:
                return "ERR", "unexpected end of string", p, p
            c = data[p]
            if c == 34:
                return "T_STRING", b"".join(parts), start, p + 1
            # backslash
            e = data[p + 1:p + 2]
            if e == b"u":
                r = unicode_escape(p)
                if r is None:
                    return "ERR", "invalid unicode escape code", p, p
                parts.append(r[0])
                p = r[1]
                continue
            tr = {b'"': b'"', b"\\": b"\\", b"/": b"/", b"b": b"\b", b"t": b"\t",
                  b"n": b"\n", b"f": b"\f", b"r": b"\r"}.get(e)
            if tr is None:
                return "ERR", "invalid escape code", p, p
            parts.append(tr)
            p += 2

    def unicode_escape(p: int):
        m = _HEX4.match(data, p + 2)
        if m is None:
            return None
        cp = int(m.group(), 16)
        ln = 6
        if (cp & 0xF800) == 0xD800:
            if cp & 0x400:
                return None
            if data[p + 6:p + 8] != b"\\u":
                return None
            m2 = _HEX4.match(data, p + 8)
            if m2 is None:
                return None
            lo = int(m2.group(), 16)
            if (lo & 0xFC00) != 0xDC00:
                return None
            cp = (((cp & 0x3FF) << 10) | (lo & 0x3FF)) + 0x10000
            ln = 12
        if cp <= 0x7F:
            b = bytes([cp])
        elif cp <= 0x7FF:
            b = bytes([(cp >> 6) | 0xC0, (cp & 0x3F) | 0x80])
        elif cp <= 0xFFFF:
            b = bytes([(cp >> 12) | 0xE0, ((cp >> 6) & 0x3F) | 0x80, (cp & 0x3F) | 0x80])
        else:
            b = bytes([(cp >> 18) | 0xF0, ((cp >> 12) & 0x3F) | 0x80,
                       ((cp >> 6) & 0x3F) | 0x80, (cp & 0x3F) | 0x80])
        return b, p + ln

    def found(tok) -> str:
        return tok[1] if tok[0] == "ERR" else tok[0]

    # An explicit stack of open containers: [table, is_array, next_index, pending_key]
    stack: list = []
    result = None
    tok = token(pos)
    pos = tok[3]
    while True:
        # here tok is the token where a value is expected
        kind = tok[0]
        if kind == "T_OBJ_BEGIN" or kind == "T_ARR_BEGIN":
            depth = len(stack) + 1
            if depth > max_depth:
                raise LuaError(b"Found too many nested data structures (%d) at character %d"
                               % (depth, pos))
            t = LuaTable()
            is_arr = kind == "T_ARR_BEGIN"
            tok = token(pos)
            pos = tok[3]
            if tok[0] == ("T_ARR_END" if is_arr else "T_OBJ_END"):
                value = t
            else:
                entry = [t, is_arr, 1, None]
                stack.append(entry)
                if not is_arr:
                    if tok[0] != "T_STRING":
                        raise fail("object key string", found(tok), tok[2])
                    entry[3] = tok[1]
                    tok = token(pos)
                    pos = tok[3]
                    if tok[0] != "T_COLON":
                        raise fail("colon", found(tok), tok[2])
                    tok = token(pos)
                    pos = tok[3]
                continue
        elif kind in ("T_STRING", "T_NUMBER", "T_BOOLEAN", "T_NULL"):
            value = tok[1]
        else:
            raise fail("value", found(tok), tok[2])
        # a complete value: store it in the open container, then close what ends
        while True:
            if not stack:
                result = value
                break
            entry = stack[-1]
            t = entry[0]
            if entry[1]:
                t.set(entry[2], value)
                entry[2] += 1
            else:
                t.set(entry[3], value)
            tok = token(pos)
            pos = tok[3]
            end_kind = "T_ARR_END" if entry[1] else "T_OBJ_END"
            if tok[0] == end_kind:
                stack.pop()
                value = t
                continue
            if tok[0] != "T_COMMA":
                raise fail("comma or array end" if entry[1] else "comma or object end",
                           found(tok), tok[2])
            tok = token(pos)
            pos = tok[3]
            if not entry[1]:
                if tok[0] != "T_STRING":
                    raise fail("object key string", found(tok), tok[2])
                entry[3] = tok[1]
                tok = token(pos)
                pos = tok[3]
                if tok[0] != "T_COLON":
                    raise fail("colon", found(tok), tok[2])
                tok = token(pos)
                pos = tok[3]
            break
        if result is not None or not stack:
            break
    tok = token(pos)
    if tok[0] != "T_END":
        raise fail("the end", found(tok), tok[2])
    return result


# -- the module table ------------------------------------------------------------------

def _arg_init(args: tuple, nmax: int, fname: str) -> tuple:
    if len(args) > nmax:
        raise arg_error(nmax + 1, fname, "found too many arguments")
    return args + (None,) * (nmax - len(args))


def _int_option(args: tuple, i: int, fname: str, cur: int, lo: int, hi: int) -> int:
    v = args[i - 1]
    if v is None:
        return cur
    value = to_int32(check_integer(args, i, fname))
    if not lo <= value <= hi:
        raise arg_error(1, fname, "expected integer between %d and %d" % (lo, hi))
    return value


def _enum_option(args: tuple, i: int, fname: str, cur: int, options: tuple) -> int:
    v = args[i - 1]
    if v is None:
        return cur
    if type(v) is bool:
        return 1 if v else 0
    name = check_str(args, i, fname)
    try:
        return options.index(name)
    except ValueError:
        raise arg_error(i, fname, b"invalid option '%s'" % name) from None


def _enum_result(setting: int, options: tuple) -> Any:
    if setting in (0, 1):
        return bool(setting)
    return options[setting]


_BOOL = (b"off", b"on")


def new_module(rt: Any = None) -> LuaTable:
    """A cjson module table with its own configuration (cjson.new())."""
    cfg = _Config()

    def j_encode(*args: Any) -> tuple:
        if len(args) != 1:
            raise arg_error(1, "encode", "expected 1 argument")
        return (encode(cfg, args[0], rt),)

    def j_decode(*args: Any) -> tuple:
        if len(args) != 1:
            raise arg_error(1, "decode", "expected 1 argument")
        return (decode(cfg, check_str(args, 1, "decode")),)

    def encode_sparse_array(*args: Any) -> tuple:
        a = _arg_init(args, 3, "encode_sparse_array")
        cfg.sparse_convert = _enum_option(a, 1, "encode_sparse_array", cfg.sparse_convert, _BOOL)
        cfg.sparse_ratio = _int_option(a, 2, "encode_sparse_array", cfg.sparse_ratio, 0, 2147483647)
        cfg.sparse_safe = _int_option(a, 3, "encode_sparse_array", cfg.sparse_safe, 0, 2147483647)
        return (bool(cfg.sparse_convert), cfg.sparse_ratio, cfg.sparse_safe)

    def encode_max_depth(*args: Any) -> tuple:
        a = _arg_init(args, 1, "encode_max_depth")
        cfg.encode_max_depth = _int_option(a, 1, "encode_max_depth", cfg.encode_max_depth,
                                           1, 2147483647)
        return (cfg.encode_max_depth,)

    def decode_max_depth(*args: Any) -> tuple:
        a = _arg_init(args, 1, "decode_max_depth")
        cfg.decode_max_depth = _int_option(a, 1, "decode_max_depth", cfg.decode_max_depth,
                                           1, 2147483647)
        return (cfg.decode_max_depth,)

    def encode_number_precision(*args: Any) -> tuple:
        a = _arg_init(args, 1, "encode_number_precision")
        cfg.precision = _int_option(a, 1, "encode_number_precision", cfg.precision, 1, 14)
        cfg.fmt = b"%%.%dg" % cfg.precision
        return (cfg.precision,)

    def encode_keep_buffer(*args: Any) -> tuple:
        a = _arg_init(args, 1, "encode_keep_buffer")
        cfg.keep_buffer = _enum_option(a, 1, "encode_keep_buffer", cfg.keep_buffer, _BOOL)
        return (_enum_result(cfg.keep_buffer, _BOOL),)

    def encode_invalid_numbers(*args: Any) -> tuple:
        opts = (b"off", b"on", b"null")
        a = _arg_init(args, 1, "encode_invalid_numbers")
        cfg.encode_invalid_numbers = _enum_option(a, 1, "encode_invalid_numbers",
                                                  cfg.encode_invalid_numbers, opts)
        return (_enum_result(cfg.encode_invalid_numbers, opts),)

    def decode_invalid_numbers(*args: Any) -> tuple:
        a = _arg_init(args, 1, "decode_invalid_numbers")
        cfg.decode_invalid_numbers = _enum_option(a, 1, "decode_invalid_numbers",
                                                  cfg.decode_invalid_numbers, _BOOL)
        return (_enum_result(cfg.decode_invalid_numbers, _BOOL),)

    def j_new(*args: Any) -> tuple:
        return (new_module(rt),)

    t = LuaTable()
    for name, f in (("encode", j_encode), ("decode", j_decode),
                    ("encode_sparse_array", encode_sparse_array),
                    ("encode_max_depth", encode_max_depth), ("decode_max_depth", decode_max_depth),
                    ("encode_number_precision", encode_number_precision),
                    ("encode_keep_buffer", encode_keep_buffer),
                    ("encode_invalid_numbers", encode_invalid_numbers),
                    ("decode_invalid_numbers", decode_invalid_numbers), ("new", j_new)):
        t.set(name.encode(), f)
    t.set(b"null", null)
    t.set(b"_NAME", b"cjson")
    t.set(b"_VERSION", b"2.1.0")
    return t


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The cjson library table."""
    return new_module(rt)

