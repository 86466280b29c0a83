"""Number parsing and formatting exactly as Redis does it.

Redis is strict about what counts as an integer (no sign ``+``, no leading
zeros, no spaces: ``string2ll``) and does INCRBYFLOAT in x87 80-bit long
double, printing ``%.17Lf`` with trailing zeros removed. Python has no long
double, so :func:`ld_add` rounds exact rationals to a 64-bit mantissa, which
reproduces Redis's results digit for digit.
"""

from __future__ import annotations

import re
from fractions import Fraction

INT64_MIN = -(1 << 63)
INT64_MAX = (1 << 63) - 1

_INT_RE = re.compile(rb"-?[1-9][0-9]*\Z|0\Z")


def parse_int(data: bytes) -> int | None:
    """Redis's string2ll: a canonical signed 64-bit decimal, or None."""
    if len(data) > 20 or not _INT_RE.match(data):
        return None
    value = int(data)
    if value < INT64_MIN or value > INT64_MAX:
        return None
    return value


# strtold's decimal forms: digits with an optional point and exponent, or
# inf/infinity (nan is refused by Redis). Hex floats are accepted too.
_FLOAT_RE = re.compile(
    rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?)\Z",
    re.IGNORECASE)
_HEX_FLOAT_RE = re.compile(rb"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)(?:[pP][+-]?[0-9]+)?\Z")

#: x87 extended precision: 64 mantissa bits, exponents up to 16383.
_LD_MANT_BITS = 64
_LD_MAX_EXP = 16384
_LD_MIN_EXP = -16381


INF = float("inf")


def _round_ld(x: Fraction) -> Fraction | float:
    """Round an exact value to the nearest x87 long double (ties to even)."""
    if x == 0:
        return Fraction(0)
    sign = -1 if x < 0 else 1
    a = abs(x)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    # Make 2**(MANT-1) <= a / 2**(e-MANT+1) < 2**MANT.
    if Fraction(2) ** e > a:
        e -= 1
    if e >= _LD_MAX_EXP:
        return sign * INF
    shift = max(e, _LD_MIN_EXP) - (_LD_MANT_BITS - 1)
    scaled = a / (Fraction(2) ** shift)
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q & 1):
        q += 1
    result = q * Fraction(2) ** shift
    if result >= Fraction(2) ** _LD_MAX_EXP:
        return sign * INF
    return sign * result


def parse_long_double(data: bytes) -> Fraction | float | None:
    """Redis's string2ld: the long double value of ``data`` or None.

    Returns a Fraction (exact value of the long double), or +/-inf as float.
    """
    if not data or len(data) >= 5 * 1024:
        return None
    if _FLOAT_RE.match(data):
        low = data.lower().lstrip(b"+-")
        if low.startswith(b"inf"):
            return -INF if data.startswith(b"-") else INF
        exact = Fraction(data.decode())
    elif _HEX_FLOAT_RE.match(data):
        exact = Fraction(float.fromhex(data.decode()))
    else:
        return None
    value = _round_ld(exact)
    if isinstance(value, float):
        return None  # overflow: strtold sets ERANGE and Redis refuses
    if value == 0 and exact != 0:
        return None  # underflow to zero, likewise ERANGE
    return value


def ld_add(a: Fraction | float, b: Fraction | float) -> Fraction | float:
    """a + b in long double arithmetic (may return +/-inf or nan as float)."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    return _round_ld(a + b)


def format_long_double(value: Fraction) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): ``%.17Lf`` with trailing zeros cut."""
    sign = "-" if value < 0 else ""
    scaled = abs(value) * 10 ** 17
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q & 1):
        q += 1
    digits = str(q).rjust(18, "0")
    text = f"{sign}{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()
