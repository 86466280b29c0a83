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
    if data.isdigit() and len(data) < 19 and (data[0] != 48 or len(data) == 1):
        return int(data)  # the usual case (INCR's counters): ASCII digits, no leading 0, in range
    if len(data) > 20 or not _INT_RE.match(data):
        return None
    value = int(data)
    if value < INT64_MIN or value > INT64_MAX:
        return None
    return value


# strtold's forms: decimal digits with an optional point and exponent, hex
# digits with an optional point and binary exponent, or inf/infinity (nan is
# refused by Redis). Groups: sign, whole digits, fraction digits, exponent.
_DEC_RE = re.compile(rb"([+-]?)([0-9]*)(?:\.([0-9]*))?(?:[eE]([+-]?[0-9]+))?\Z")
_HEX_RE = re.compile(rb"([+-]?)0[xX]([0-9a-fA-F]*)(?:\.([0-9a-fA-F]*))?(?:[pP]([+-]?[0-9]+))?\Z")
_INF_RE = re.compile(rb"[+-]?inf(?:inity)?\Z", re.IGNORECASE)

#: x87 extended precision: 64 mantissa bits; with the value written as
#: 1.f * 2**e, normal numbers have -16382 <= e <= 16383 and subnormals go
#: down to 2**-16445.
_LD_MANT_BITS = 64
_LD_MAX_EXP = 16384
_LD_MIN_EXP = -16382
#: Decimal exponents (of the leading digit) beyond which a long double
#: certainly overflows (LDBL_MAX ~ 1.19e4932) or rounds to zero (half the
#: least subnormal ~ 1.8e-4951); in between the value is computed exactly.
_LD_MAX_DEC_EXP = 4933
_LD_MIN_DEC_EXP = -4952
#: int() and str() refuse more than 4300 decimal digits (CPython's guard
#: against quadratic conversions); a 5 KiB argument may have more, so the
#: conversions go in chunks of this many digits.
_DIGIT_CHUNK = 4000


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


def _digits_to_int(digits: bytes, radix: int) -> int:
    if radix == 16:  # no digit limit for power-of-two bases
        return int(digits, 16)
    value = 0
    for i in range(0, len(digits), _DIGIT_CHUNK):
        chunk = digits[i:i + _DIGIT_CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _exponent(text: bytes | None) -> int:
    """An exponent's value; absurdly long ones become +/-10**10 (as good as infinite)."""
    if not text:
        return 0
    negative = text[:1] == b"-"
    digits = text.lstrip(b"+-").lstrip(b"0") or b"0"
    value = int(digits) if len(digits) <= 10 else 10 ** 10
    return -value if negative else value


def parse_long_double(data: bytes) -> Fraction | float | None:
    """Redis's string2ld: the long double value of ``data`` or None.

    Returns a Fraction (exact value of the long double), or +/-inf as float.
    The exact value is only built when it can be a finite non-zero long
    double, so a 5 KiB exponent costs nothing.
    """
    if not data or len(data) >= 5 * 1024:
        return None
    if _INF_RE.match(data):
        return -INF if data[:1] == b"-" else INF
    m = _DEC_RE.match(data)
    radix = 10
    if m is None:
        m = _HEX_RE.match(data)
        radix = 16
        if m is None:
            return None
    sign, whole, frac, exp = m.groups()
    frac = frac or b""
    if not whole and not frac:
        return None
    digits = (whole + frac).lstrip(b"0")
    if not digits:
        return Fraction(0)  # zero with any exponent is plain zero, no ERANGE
    if radix == 10:
        scale = _exponent(exp) - len(frac)  # value = digits * 10**scale
        top = scale + len(digits) - 1
        if top >= _LD_MAX_DEC_EXP or top <= _LD_MIN_DEC_EXP:
            return None  # overflow or underflow to zero: ERANGE, refused
        exact = Fraction(_digits_to_int(digits, 10)) * Fraction(10) ** scale
    else:
        scale = _exponent(exp) - 4 * len(frac)  # value = digits * 2**scale
        mantissa = _digits_to_int(digits, 16)
        top = scale + mantissa.bit_length() - 1
        if top >= _LD_MAX_EXP or top < _LD_MIN_EXP - _LD_MANT_BITS:
            return None
        exact = Fraction(mantissa) * Fraction(2) ** scale
    if sign == b"-":
        exact = -exact
    value = _round_ld(exact)
    if isinstance(value, float):
        return None  # overflow: strtold sets ERANGE and Redis refuses
    if value == 0:
        return None  # underflow to zero, likewise ERANGE
    return value


def ld_add(a: Fraction | float, b: Fraction | float) -> Fraction | float:
    """a + b in long double arithmetic (may return +/-inf or nan as float)."""
    if isinstance(a, float) or isinstance(b, float):
        return float(a) + float(b)
    return _round_ld(a + b)


def _int_to_str(n: int) -> str:
    """str(n) for a non-negative n of any length (see _DIGIT_CHUNK)."""
    if n < 10 ** _DIGIT_CHUNK:
        return str(n)
    high, low = divmod(n, 10 ** _DIGIT_CHUNK)
    return _int_to_str(high) + str(low).rjust(_DIGIT_CHUNK, "0")


def format_long_double(value: Fraction) -> bytes:
    """Redis's ld2string(LD_STR_HUMAN): ``%.17Lf`` with trailing zeros cut."""
    sign = "-" if value < 0 else ""
    scaled = abs(value) * 10 ** 17
    q, r = divmod(scaled.numerator, scaled.denominator)
    twice = 2 * r
    if twice > scaled.denominator or (twice == scaled.denominator and q & 1):
        q += 1
    digits = _int_to_str(q).rjust(18, "0")
    text = f"{sign}{digits[:-17]}.{digits[-17:]}".rstrip("0").rstrip(".")
    if text == "-0":
        text = "0"
    return text.encode()
