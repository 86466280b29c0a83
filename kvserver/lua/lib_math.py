"""Lua 5.1's math library (lmathlib.c) with Redis 7.0.15's math.random/randomseed.

C's libm returns inf/NaN where Python's math module raises; every function
here gives the C (glibc, x86-64) result instead: ``math.sqrt(-1)`` is -nan,
``math.log(0)`` is -inf, ``math.pow(10, 400)`` is inf. ``math.mod`` is
``fmod`` (Redis builds Lua with LUA_COMPAT_MOD).

math.random/randomseed are Redis's (script_lua.c): Lua 5.1's code with
``rand()`` replaced by redisLrand48 (rand.c, a 48-bit linear congruential
generator, the same sequence on every platform). Its state is one per
process, as in Redis, where rand.c keeps it in a static: Redis 7.0 seeds it
once at start and never again, so a script's numbers depend on every earlier
math.random call in the server (Redis 6 re-seeded before each script; 7.0
relies on effects replication instead). :func:`reset_random` puts the
generator back to its start state; the scripting layer calls it only where
Redis would (at server start), tests call it to get a known sequence.
"""

from __future__ import annotations

import math
from typing import Any

from .libargs import arg_error, check_int, check_num, to_int32
from .value import LuaError, LuaTable

NAN = -float("nan")      # x86's default NaN, printed "-nan" by glibc
PNAN = float("nan")
INF = math.inf
PI = 3.14159265358979323846
RADIANS_PER_DEGREE = PI / 180.0

# -- Redis's redisLrand48 (rand.c): 48-bit state in three 16-bit words ----------

_X0, _X1, _X2 = 0x330E, 0xABCD, 0x1234
_A = 0x5DEECE66D
_C = 0xB
_MASK48 = (1 << 48) - 1
REDIS_LRAND48_MAX = 2147483647

#: The generator's state x (48 bits), process-wide like rand.c's statics.
_state = [(_X2 << 32) | (_X1 << 16) | _X0]


def _lrand48() -> int:
    """redisLrand48: x = a*x + c mod 2^48, the top 31 bits."""
    x = (_A * _state[0] + _C) & _MASK48
    _state[0] = x
    return x >> 17


def _srand48(seed: int) -> None:
    seed &= 0xFFFFFFFF
    _state[0] = ((seed >> 16) << 32) | ((seed & 0xFFFF) << 16) | _X0


def reset_random(rt: Any = None) -> None:
    """Return math.random to Redis's process-start state (rand.c's initial x)."""
    _state[0] = (_X2 << 32) | (_X1 << 16) | _X0


def m_random(*args: Any) -> tuple:
    r = (_lrand48() % REDIS_LRAND48_MAX) / REDIS_LRAND48_MAX
    n = len(args)
    if n == 0:
        return (r,)
    if n == 1:
        u = check_int(args, 1, "random")
        if not 1 <= u:
            raise arg_error(1, "random", "interval is empty")
        return (_num(math.floor(r * u) + 1),)
    if n == 2:
        lo = check_int(args, 1, "random")
        u = check_int(args, 2, "random")
        if not lo <= u:
            raise arg_error(2, "random", "interval is empty")
        width = to_int32(u - lo + 1)   # C int arithmetic: wraps for the widest interval
        return (_num(math.floor(r * width) + lo),)
    raise LuaError(b"wrong number of arguments")


def m_randomseed(*args: Any) -> tuple:
    _srand48(check_int(args, 1, "randomseed"))
    return ()


# -- the rest of lmathlib.c ------------------------------------------------------

def _num(x: float | int) -> int | float:
    """A C double as a Lua number: integral values within 2^53 as int (but -0.0 stays)."""
    if type(x) is int:
        return x
    if x.is_integer() and -9007199254740992.0 <= x <= 9007199254740992.0:
        if x == 0 and math.copysign(1.0, x) < 0:
            return x
        return int(x)
    return x


def m_abs(*args: Any) -> tuple:
    x = check_num(args, 1, "abs")
    return (abs(x),)


def _unary(name: str, fn, on_error):
    """A libm function: fn(x), or on_error(x) where Python raises and C returns inf/NaN."""
    def f(*args: Any) -> tuple:
        x = float(check_num(args, 1, name))
        try:
            r = fn(x)
        except (ValueError, OverflowError):
            r = on_error(x)
        return (_num(r),)
    f.__name__ = "m_" + name
    return f


def _nan(x: float) -> float:
    return x if x != x else NAN


def _floor(x: float) -> float:
    return x if not math.isfinite(x) else float(math.floor(x))


def _ceil(x: float) -> float:
    if not math.isfinite(x):
        return x
    r = float(math.ceil(x))
    return -0.0 if r == 0 and x < 0 else r


def _log(x: float) -> float:
    if x == 0:
        return -INF
    if x != x:
        return x
    return NAN   # negative


def _pnan(x: float) -> float:
    """glibc's asin/acos/log10 domain errors return a positive NaN ("nan")."""
    return x if x != x else PNAN


def _log10(x: float) -> float:
    if x == 0:
        return -INF
    return _pnan(x)


def _sinh(x: float) -> float:
    return math.copysign(INF, x)


def m_floor(*args: Any) -> tuple:
    x = check_num(args, 1, "floor")
    if type(x) is int:
        return (x,)
    return (_num(_floor(x)),)


def m_ceil(*args: Any) -> tuple:
    x = check_num(args, 1, "ceil")
    if type(x) is int:
        return (x,)
    return (_num(_ceil(x)),)


def m_fmod(*args: Any) -> tuple:
    x = float(check_num(args, 1, "fmod"))
    y = float(check_num(args, 2, "fmod"))
    if x != x:
        return (x,)
    if y != y:
        return (y,)
    if y == 0 or math.isinf(x):
        return (NAN,)
    return (_num(math.fmod(x, y)),)


def m_modf(*args: Any) -> tuple:
    x = float(check_num(args, 1, "modf"))
    if math.isinf(x):
        return (x, math.copysign(0.0, x))
    if x != x:
        return (x, x)
    frac, ip = math.modf(x)
    return (_num(ip), _num(frac))


def m_frexp(*args: Any) -> tuple:
    x = float(check_num(args, 1, "frexp"))
    m, e = math.frexp(x)
    return (_num(m), e)


def m_ldexp(*args: Any) -> tuple:
    x = float(check_num(args, 1, "ldexp"))
    e = check_int(args, 2, "ldexp")
    try:
        return (_num(math.ldexp(x, e)),)
    except OverflowError:
        return (math.copysign(INF, x),)


def m_pow(*args: Any) -> tuple:
    x = float(check_num(args, 1, "pow"))
    y = float(check_num(args, 2, "pow"))
    return (_num(c_pow(x, y)),)


def c_pow(x: float, y: float) -> float:
    """C's pow(x, y) (glibc): inf on overflow and for 0^negative, -nan for a negative base^fraction."""
    try:
        return math.pow(x, y)
    except OverflowError:
        if x < 0 and y.is_integer() and int(y) % 2 == 1:
            return -INF
        return INF
    except ValueError:
        if x == 0:   # 0 ^ negative
            if math.copysign(1.0, x) < 0 and y.is_integer() and int(y) % 2 == 1:
                return -INF
            return INF
        return NAN


def m_atan2(*args: Any) -> tuple:
    y = float(check_num(args, 1, "atan2"))
    x = float(check_num(args, 2, "atan2"))
    return (_num(math.atan2(y, x)),)


def m_deg(*args: Any) -> tuple:
    return (_num(float(check_num(args, 1, "deg")) / RADIANS_PER_DEGREE),)


def m_rad(*args: Any) -> tuple:
    return (_num(float(check_num(args, 1, "rad")) * RADIANS_PER_DEGREE),)


def m_min(*args: Any) -> tuple:
    dmin = check_num(args, 1, "min")
    for i in range(2, len(args) + 1):
        d = check_num(args, i, "min")
        if d < dmin:
            dmin = d
    return (dmin,)


def m_max(*args: Any) -> tuple:
    dmax = check_num(args, 1, "max")
    for i in range(2, len(args) + 1):
        d = check_num(args, i, "max")
        if d > dmax:
            dmax = d
    return (dmax,)


def _exp_err(x: float) -> float:
    return INF


def _cosh_err(x: float) -> float:
    return INF


m_sqrt = _unary("sqrt", math.sqrt, _nan)
m_sin = _unary("sin", math.sin, _nan)
m_cos = _unary("cos", math.cos, _nan)
m_tan = _unary("tan", math.tan, _nan)
m_asin = _unary("asin", math.asin, _pnan)
m_acos = _unary("acos", math.acos, _pnan)
m_atan = _unary("atan", math.atan, _nan)
m_sinh = _unary("sinh", math.sinh, _sinh)
m_cosh = _unary("cosh", math.cosh, _cosh_err)
m_tanh = _unary("tanh", math.tanh, _nan)
m_exp = _unary("exp", math.exp, _exp_err)
m_log = _unary("log", math.log, _log)
m_log10 = _unary("log10", math.log10, _log10)


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The math library table (random/randomseed as Redis replaces them)."""
    t = LuaTable()
    for name, f in (("abs", m_abs), ("acos", m_acos), ("asin", m_asin), ("atan2", m_atan2),
                    ("atan", m_atan), ("ceil", m_ceil), ("cosh", m_cosh), ("cos", m_cos),
                    ("deg", m_deg), ("exp", m_exp), ("floor", m_floor), ("fmod", m_fmod),
                    ("frexp", m_frexp), ("ldexp", m_ldexp), ("log10", m_log10), ("log", m_log),
                    ("max", m_max), ("min", m_min), ("modf", m_modf), ("pow", m_pow),
                    ("rad", m_rad), ("random", m_random), ("randomseed", m_randomseed),
                    ("sinh", m_sinh), ("sin", m_sin), ("sqrt", m_sqrt), ("tanh", m_tanh),
                    ("tan", m_tan), ("mod", m_fmod)):
        t.set(name.encode(), f)
    t.set(b"pi", PI)
    t.set(b"huge", INF)
    return t
