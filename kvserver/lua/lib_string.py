"""Lua 5.1's string library (lstrlib.c), as Redis 7.0.15 loads it.

Every function takes Lua values and returns a tuple; argument errors carry
lauxlib's texts. Patterns are kvserver.lua.lpattern. ``string.gfind`` is
``gmatch`` (Redis builds Lua with LUA_COMPAT_GFIND). ``string.dump`` always
fails with 5.1's "unable to dump given function": compiled chunks here are
Python code, not Lua bytecode.

Limit (not in Lua): a string built by ``rep``, ``gsub`` or ``table.concat``
may not exceed :data:`MAX_STRING` bytes ("resulting string too large", Lua
5.2's text for rep), so one call cannot allocate without bound.
"""

from __future__ import annotations

import math
from typing import Any

from . import lpattern
from .libargs import (arg_error, check_int, check_integer, check_num, check_str, opt_int, opt_integer,
                      to_integer, type_error)
from .value import LuaError, LuaTable, number_to_bytes, type_name

#: Largest string rep/gsub/concat may build: Redis's proto-max-bulk-len default.
MAX_STRING = 512 * 1024 * 1024

_TOO_LARGE = b"resulting string too large"

#: Lua 5.1's LUAI_MAXCSTACK: the most values a C function can push (string.byte's limit).
MAXCSTACK = 8000


def _posrelat(pos: int, n: int) -> int:
    if pos < 0:
        pos += n + 1
    return pos if pos >= 0 else 0


def str_len(*args: Any) -> tuple:
    return (len(check_str(args, 1, "len")),)


def str_sub(*args: Any) -> tuple:
    s = check_str(args, 1, "sub")
    n = len(s)
    start = _posrelat(check_integer(args, 2, "sub"), n)
    end = _posrelat(opt_integer(args, 3, "sub", -1), n)
    if start < 1:
        start = 1
    if end > n:
        end = n
    if start <= end:
        return (s[start - 1:end],)
    return (b"",)


def str_reverse(*args: Any) -> tuple:
    return (check_str(args, 1, "reverse")[::-1],)


def str_lower(*args: Any) -> tuple:
    return (check_str(args, 1, "lower").lower(),)   # bytes.lower is ASCII-only, as the C locale


def str_upper(*args: Any) -> tuple:
    return (check_str(args, 1, "upper").upper(),)


def str_rep(*args: Any) -> tuple:
    s = check_str(args, 1, "rep")
    n = check_int(args, 2, "rep")
    if n <= 0 or not s:
        return (b"",)
    if len(s) * n > MAX_STRING:
        raise LuaError(_TOO_LARGE)
    return (s * n,)


def str_byte(*args: Any) -> tuple:
    s = check_str(args, 1, "byte")
    n = len(s)
    posi = _posrelat(opt_integer(args, 2, "byte", 1), n)
    pose = _posrelat(opt_integer(args, 3, "byte", posi), n)
    if posi <= 0:
        posi = 1
    if pose > n:
        pose = n
    if posi > pose:
        return ()
    if pose - posi + 1 + len(args) > MAXCSTACK:   # luaL_checkstack(L, n, ...)
        raise LuaError(b"stack overflow (string slice too long)")
    return tuple(s[posi - 1:pose])


def str_char(*args: Any) -> tuple:
    out = bytearray()
    for i in range(1, len(args) + 1):
        c = check_int(args, i, "char")
        if not 0 <= c <= 255:
            raise arg_error(i, "char", "invalid value")
        out.append(c)
    return (bytes(out),)


def str_dump(*args: Any) -> tuple:
    if not args or not callable(args[0]) or type(args[0]) is LuaTable:
        raise type_error(args, 1, "dump", "function")
    raise LuaError(b"unable to dump given function")


def _init_pos(args: tuple, fname: str, n: int) -> int:
    init = _posrelat(opt_integer(args, 3, fname, 1), n) - 1
    if init < 0:
        return 0
    return n if init > n else init


def str_find(rt: Any, *args: Any) -> tuple:
    s = check_str(args, 1, "find")
    p = check_str(args, 2, "find")
    init = _init_pos(args, "find", len(s))
    plain = len(args) >= 4 and args[3] is not None and args[3] is not False
    return lpattern.find_aux(rt, s, p, init, plain, True)


def str_match(rt: Any, *args: Any) -> tuple:
    s = check_str(args, 1, "match")
    p = check_str(args, 2, "match")
    init = _init_pos(args, "match", len(s))
    return lpattern.find_aux(rt, s, p, init, False, False)


def str_gmatch(rt: Any, *args: Any) -> tuple:
    s = check_str(args, 1, "gmatch")
    p = check_str(args, 2, "gmatch")
    return (lpattern.gmatch_iter(rt, s, p),)


def _add_s(ms: lpattern.MatchState, news: bytes, s: int, e: int) -> bytes:
    """A string replacement with %0..%9 and %x escapes (add_s)."""
    if 37 not in news:
        return news
    out = bytearray()
    i = 0
    n = len(news)
    while i < n:
        c = news[i]
        if c != 37:
            out.append(c)
            i += 1
            continue
        i += 1
        d = news[i] if i < n else 0   # C reads the terminating NUL
        if not 48 <= d <= 57:
            if i < n:
                out.append(d)
            else:
                out.append(0)
        elif d == 48:
            out += ms.src[s:e]
        else:
            v = ms.capture(d - 49, s, e)
            out += v if type(v) is bytes else number_to_bytes(v)
        i += 1
    return bytes(out)


def str_gsub(rt: Any, *args: Any) -> tuple:
    src = check_str(args, 1, "gsub")
    p = check_str(args, 2, "gsub")
    repl = args[2] if len(args) >= 3 else None
    tr = type(repl)
    max_s = opt_int(args, 4, "gsub", len(src) + 1)
    total = [0]

    if tr is bytes or tr is int or tr is float:
        news = repl if tr is bytes else number_to_bytes(repl)
        if 37 not in news and len(src) * max(1, len(news)) <= MAX_STRING:
            r = _gsub_literal(rt, src, p, news, max_s)
            if r is not None:
                return r

        def add_value(ms: lpattern.MatchState, s: int, e: int) -> bytes:
            r = _add_s(ms, news, s, e)
            total[0] += len(r)
            if total[0] > MAX_STRING:
                raise LuaError(_TOO_LARGE)
            return r
    elif tr is LuaTable or (callable(repl) and repl is not None):
        is_table = tr is LuaTable

        def add_value(ms: lpattern.MatchState, s: int, e: int) -> bytes:
            if is_table:
                v = _index(rt, repl, ms.capture(0, s, e))
            else:
                res = rt.call(repl, *ms.captures(s, e, True))
                v = res[0] if res else None
            if v is None or v is False:
                r = ms.src[s:e]
            elif type(v) is bytes:
                r = v
            elif type(v) is int or type(v) is float:
                r = number_to_bytes(v)
            else:
                raise LuaError(b"invalid replacement value (a %s)" % type_name(v).encode())
            total[0] += len(r)
            if total[0] > MAX_STRING:
                raise LuaError(_TOO_LARGE)
            return r
    else:
        raise arg_error(3, "gsub", "string/function/table expected")
    out, n = lpattern.gsub(rt, src, p, max_s, add_value)
    return (out, n)


def _gsub_literal(rt: Any, src: bytes, p: bytes, news: bytes, max_s: int) -> tuple | None:
    """gsub with a replacement free of '%' by bytes.replace or re.subn, where they agree with Lua.

    A pattern without specials is a plain substring (bytes.replace counts and
    places empty matches as gsub does). A re-lane pattern that cannot match the
    empty string has no empty-match subtleties, so re.subn's left-to-right
    non-overlapping matches are gsub's. None: use the general loop. (The caller
    checked len(src) * len(news) against MAX_STRING: no output can be larger.)
    """
    if max_s <= 0:
        return (src, 0) if b"\0" not in p else None
    if b"\0" in p:
        return None
    if not lpattern.has_specials(p) and b")" not in p:   # (')' is special to gsub's matcher)
        n = src.count(p) if p else len(src) + 1
        n = min(n, max_s)
        return (src.replace(p, news, n), n)
    anchored, items = lpattern.get_pattern(p)
    if anchored or not lpattern.nonempty(items):
        return None
    f = lpattern.fast_regex(p, items, len(src), False)
    if f is None:
        return None
    out, n = f[0].subn(news.replace(b"\\", b"\\\\"), src, max_s)
    return (out, n)


def _index(rt: Any, t: LuaTable, k: Any) -> Any:
    """t[k] with __index (lua_gettable)."""
    index = getattr(rt, "index", None)
    if index is not None:
        return index(t, k)
    v = t.get(k)
    if v is None and t.metatable is not None:
        h = t.metatable.get(b"__index")
        if h is not None:
            if type(h) is LuaTable:
                return _index(rt, h, k)
            res = rt.call(h, t, k)
            return res[0] if res else None
    return v


# -- string.format ------------------------------------------------------------

_FLAGS = b"-+ #0"


def _addquoted(s: bytes) -> bytes:
    out = bytearray(b'"')
    for c in s:
        if c == 34 or c == 92 or c == 10:
            out.append(92)
            out.append(c)
        elif c == 13:
            out += b"\\r"
        elif c == 0:
            out += b"\\000"
        else:
            out.append(c)
    out.append(34)
    return bytes(out)


def _nonfinite(x: float, flags: bytes, width: int, conv: int) -> bytes:
    """glibc's printf of inf/nan for e/f/g: sign, 'inf'/'nan', space padding (no zeros)."""
    neg = math.copysign(1.0, x) < 0
    body = b"nan" if x != x else b"inf"
    if conv in b"EG":
        body = body.upper()
    sign = b"-" if neg else (b"+" if 43 in flags else (b" " if 32 in flags else b""))
    r = sign + body
    if len(r) < width:
        r = r + b" " * (width - len(r)) if 45 in flags else b" " * (width - len(r)) + r
    return r


def _unsigned(x: int | float) -> int:
    """(unsigned long long)x for a double x, as gcc on x86-64 converts it.

    Below 2^63 (or NaN) it is cvttsd2si, whose out-of-range answer is
    0x8000000000000000; from 2^63 up it is cvttsd2si(x - 2^63) ^ 2^63, which
    is 0 from 2^64 up (and for +inf).
    """
    if type(x) is int and -(1 << 63) <= x < (1 << 63):
        return x & 0xFFFFFFFFFFFFFFFF
    x = float(x)
    if x != x:
        return 1 << 63
    if x >= 9.223372036854775808e18:
        return int(x) if x < 18446744073709551616.0 else 0
    if x < -9.223372036854775808e18:
        return 1 << 63
    return int(x) & 0xFFFFFFFFFFFFFFFF


def _parse_format(fmt: bytes) -> list:
    """A format string as a list: literal bytes, or a conversion tuple, or an error.

    A conversion is (conv, pyfmt, spec, flags, width, has_prec, prec0): pyfmt is
    the Python format for it, prec0 whether the precision is 0. An error
    (scanformat's or an unknown conversion) is (0, message): like lstrlib.c we
    raise it only when formatting reaches it, after that item's "no value" check.
    """
    items: list = []
    i = 0
    n = len(fmt)
    fmt0 = fmt + b"\0\0\0\0\0\0"
    lit = bytearray()
    while i < n:
        j = fmt.find(b"%", i)
        if j < 0:
            lit += fmt[i:]
            break
        lit += fmt[i:j]
        i = j + 1
        if fmt0[i] == 37:
            lit.append(37)
            i += 1
            continue
        if lit:
            items.append(bytes(lit))
            lit = bytearray()
        p = i
        while fmt0[p] != 0 and fmt0[p] in _FLAGS:
            p += 1
        if p - i >= len(_FLAGS) + 1:
            items.append((0, b"invalid format (repeated flags)"))
            return items
        flags = fmt[i:p]
        w0 = p
        if 48 <= fmt0[p] <= 57:
            p += 1
        if 48 <= fmt0[p] <= 57:
            p += 1
        width = int(fmt[w0:p]) if p > w0 else 0
        has_prec = False
        if fmt0[p] == 46:
            has_prec = True
            p += 1
            if 48 <= fmt0[p] <= 57:
                p += 1
            if 48 <= fmt0[p] <= 57:
                p += 1
        if 48 <= fmt0[p] <= 57:
            items.append((0, b"invalid format (width or precision too long)"))
            return items
        spec = fmt[i:p]        # flags, width, precision (no '%', no conversion)
        conv = fmt0[p]
        i = p + 1
        if conv == 0 or conv not in b"diouxXeEfgGcqs":
            items.append((0, b"invalid option '%%%c' to 'format'" % conv if conv else
                          b"invalid option '%' to 'format'"))
            return items
        if has_prec and 48 in flags and conv in b"diouxX":
            # C ignores '0' for an integer conversion with a precision (Python does not)
            flags = flags.replace(b"0", b"")
            spec = flags + fmt[w0:p]
        prec0 = has_prec and _prec(spec) == 0
        pyfmt = b"%" + spec + (b"d" if conv == 105 else bytes([conv]))
        items.append((conv, pyfmt, spec, flags, width, has_prec, prec0))
    if lit:
        items.append(bytes(lit))
    return items


_FORMATS: dict[bytes, list] = {}
#: Parsed format strings kept (each at most _FORMAT_CACHE_LEN bytes).
_FORMAT_CACHE_MAX = 256
_FORMAT_CACHE_LEN = 256


def str_format(*args: Any) -> tuple:
    fmt = check_str(args, 1, "format")
    items = _FORMATS.get(fmt)
    if items is None:
        if 37 not in fmt:
            return (fmt,)
        items = _parse_format(fmt)
        if len(fmt) <= _FORMAT_CACHE_LEN:
            if len(_FORMATS) >= _FORMAT_CACHE_MAX:
                _FORMATS.clear()
            _FORMATS[fmt] = items
    top = len(args)
    out: list = []
    arg = 1
    for it in items:
        if type(it) is bytes:
            out.append(it)
            continue
        arg += 1
        if arg > top:
            raise arg_error(arg, "format", "no value")
        conv = it[0]
        if conv == 115:                     # s
            v = args[arg - 1]
            sv = v if type(v) is bytes else check_str(args, arg, "format")
            if not it[5] and len(sv) >= 100:
                out.append(sv)
                continue
            nul = sv.find(b"\0")
            if nul >= 0:
                sv = sv[:nul]
            out.append(sv if not it[2] else it[1] % sv)
        elif conv == 100 or conv == 105:    # d i
            v = args[arg - 1]
            iv = v if type(v) is int and -(1 << 63) <= v < (1 << 63) else \
                to_integer(check_num(args, arg, "format"))
            if iv == 0 and it[6]:
                out.append(_zero_no_digits(it[3], it[4], True))
            else:
                out.append(it[1] % iv)
        elif conv == 0:
            raise LuaError(it[1])
        elif conv in b"eEfgG":
            x = float(check_num(args, arg, "format"))
            if x != x or x in (math.inf, -math.inf):
                out.append(_nonfinite(x, it[3], it[4], conv))
            else:
                out.append(it[1] % x)
        elif conv in b"ouxX":
            v = _unsigned(check_num(args, arg, "format"))
            if v == 0 and it[6] and not (conv == 111 and 35 in it[3]):
                out.append(_zero_no_digits(it[3], it[4], False))
            else:
                out.append(_format_unsigned(it[2], it[3], conv, v, it[5]))
        elif conv == 99:                    # c
            v = to_integer(check_num(args, arg, "format")) & 0xFF
            out.append(_format_char(it[3], it[4], v))
        else:                               # q
            out.append(_addquoted(check_str(args, arg, "format")))
    return (b"".join(out),)


def _zero_no_digits(flags: bytes, width: int, signed: bool) -> bytes:
    """C's printf of 0 with precision 0: no digits at all, only sign and padding."""
    r = b""
    if signed:
        r = b"+" if 43 in flags else (b" " if 32 in flags else b"")
    if len(r) < width:
        r = r + b" " * (width - len(r)) if 45 in flags else b" " * (width - len(r)) + r
    return r


def _format_char(flags: bytes, width: int, v: int) -> bytes:
    """%c: C writes the byte, then lstrlib keeps strlen(buff) bytes (a NUL ends it)."""
    pad = b" " * (width - 1) if width > 1 else b""
    r = pad + bytes([v]) if 45 not in flags else bytes([v]) + pad
    nul = r.find(b"\0")
    return r if nul < 0 else r[:nul]


def _format_unsigned(spec: bytes, flags: bytes, conv: int, v: int, has_prec: bool) -> bytes:
    if 35 in flags and conv == 117:
        spec = spec.replace(b"#", b"")      # '#' means nothing for %u
        flags = flags.replace(b"#", b"")
    if 35 in flags:
        # C's '#': octal gets a leading 0 unless the digits start with one;
        # hex gets 0x/0X only for a nonzero value (Python would write 0o / 0x0).
        spec_nohash = spec.replace(b"#", b"")
        if conv == 111:
            digits = b"%o" % v
            prec = _prec(spec)
            if prec == 0 and v == 0:
                prec = 1           # '#' keeps one zero where precision 0 would print none
            elif not digits.startswith(b"0") and (prec is None or prec <= len(digits)):
                digits = b"0" + digits
            return _pad_number(spec_nohash, b"", digits, prec)
        digits = b"%x" % v if conv == 120 else b"%X" % v
        prefix = (b"0x" if conv == 120 else b"0X") if v else b""
        return _pad_number(spec_nohash, prefix, digits, _prec(spec))
    c = b"d" if conv == 117 else bytes([conv])
    # '+' and ' ' are ignored for unsigned conversions in C
    spec2 = spec.replace(b"+", b"").replace(b" ", b"")
    return (b"%" + spec2 + c) % v


def _prec(spec: bytes) -> int | None:
    k = spec.find(b".")
    if k < 0:
        return None
    d = spec[k + 1:]
    return int(d) if d else 0


def _pad_number(spec: bytes, prefix: bytes, digits: bytes, prec: int | None) -> bytes:
    k = 0
    while k < len(spec) and spec[k] in _FLAGS:
        k += 1
    flags, rest = spec[:k], spec[k:]
    k = rest.find(b".")
    wtxt = rest if k < 0 else rest[:k]
    width = int(wtxt) if wtxt else 0
    if prec is not None:
        if prec == 0 and digits == b"0":
            digits = b""
        if len(digits) < prec:
            digits = b"0" * (prec - len(digits)) + digits
    body = prefix + digits
    if len(body) >= width:
        return body
    if 45 in flags:
        return body + b" " * (width - len(body))
    if 48 in flags and prec is None:
        return prefix + b"0" * (width - len(body)) + digits
    return b" " * (width - len(body)) + body


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The string library table."""
    def bind(f):
        def g(*args: Any) -> tuple:
            return f(rt, *args)
        return g
    t = LuaTable()
    for name, f in (("byte", str_byte), ("char", str_char), ("dump", str_dump),
                    ("format", str_format), ("len", str_len), ("lower", str_lower),
                    ("rep", str_rep), ("reverse", str_reverse), ("sub", str_sub),
                    ("upper", str_upper)):
        t.set(name.encode(), f)
    gmatch = bind(str_gmatch)
    for name, f in (("find", bind(str_find)), ("match", bind(str_match)),
                    ("gmatch", gmatch), ("gsub", bind(str_gsub)), ("gfind", gmatch)):
        t.set(name.encode(), f)
    return t
