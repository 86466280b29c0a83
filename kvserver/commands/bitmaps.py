"""Bitmap commands: SETBIT GETBIT BITCOUNT BITPOS BITOP BITFIELD BITFIELD_RO.

A bitmap is a string: bit 0 is the most significant bit of the first byte.
Every reply and error follows Redis 7.0.15's ``bitops.c``, including its
order of checks (BITCOUNT and BITPOS answer for a missing key before they
look at the range arguments) and its 64-bit C arithmetic where it shows
(``#`` offsets that wrap, BITFIELD's overflow checks).

The scans work on whole chunks in C: BITCOUNT is ``int.bit_count()`` over
``int.from_bytes`` of CHUNK-byte slices, BITPOS compares CHUNK-byte slices
with a run of the byte it skips and strips the first chunk that differs,
BITOP combines CHUNK-byte slices as integers. No loop runs per byte or bit.

Values are immutable ``bytes`` (the keyspace's string type), so a SETBIT
write copies its value once and a BITFIELD write twice (into a bytearray and
back): linear in the value's length, where Redis edits in place.

What each write logs to the WAL, and why:

* SETBIT logs ``SETBIT key offset bit``: tiny, deterministic, and like the
  command it keeps the key's TTL. Nothing is logged when the bit already had
  that value and the string did not grow.
* BITOP logs its result, ``SET dest value`` (which drops dest's TTL, as BITOP
  does), or ``DEL dest`` when every source is empty or missing. Replaying
  the operation would need the sources exactly as they were; the result
  needs nothing.
* BITFIELD logs its own arguments. Given the value before it, the command
  is deterministic (no clock, no randomness; the overflow arithmetic below
  is exact), so replay rebuilds the same bytes; logging ``SET key value
  KEEPTTL`` instead would write the whole bitmap for every small update. It
  is logged when the value changed *or grew*: a BITFIELD whose writes all
  FAIL still creates or pads the key, as in Redis (which propagates only
  when a field changed, so its AOF misses that case; ours does not).
"""

from __future__ import annotations

from ..notify import GENERIC, STRING as NOTIFY_STRING
from ..errors import NOT_INTEGER, SYNTAX, CommandError
from ..numbers import parse_int
from . import command
from .strings import get_string, int_arg, read_string, set_value

#: Bytes per slice for the counting, searching and combining scans: big
#: enough that the per-slice Python cost vanishes, small enough that the
#: temporary ints and slices stay small beside a 512 MB value.
CHUNK = 1 << 16

_BIT_OFFSET_ERR = "ERR bit offset is not an integer or out of range"
_BIT_VALUE_ERR = "ERR bit is not an integer or out of range"
_BITFIELD_TYPE_ERR = ("ERR Invalid bitfield type. Use something like i16 u8. "
                      "Note that u64 is not supported but i64 is.")
_BITFIELD_RO_ERR = "ERR BITFIELD_RO only supports the GET subcommand"

_U64 = (1 << 64) - 1
_ZEROS = bytes(CHUNK)
_ONES = b"\xff" * CHUNK


def _cword(arg: bytes) -> bytes:
    """A keyword as Redis's strcasecmp sees it: up to the first NUL, lower-cased."""
    return arg.split(b"\0", 1)[0].lower()


def _i64(x: int) -> int:
    """``x`` as a C int64_t: the low 64 bits, two's complement."""
    x &= _U64
    return x - (1 << 64) if x >> 63 else x


def bit_offset(s, arg: bytes, bits: int = 0) -> int:
    """A bit offset argument, checked as Redis's getBitOffsetFromArgument.

    With ``bits`` > 0 (BITFIELD), ``#n`` means n * bits, multiplied as C's
    int64 does (it can wrap). The offset's byte must be below
    proto-max-bulk-len: 4294967295 is the last bit of a 512 MB string.
    """
    use_hash = bits > 0 and arg[:1] == b"#"
    offset = parse_int(arg[1:] if use_hash else arg)
    if offset is None:
        raise CommandError(_BIT_OFFSET_ERR)
    if use_hash:
        offset = _i64(offset * bits)
    if offset < 0 or (offset >> 3) >= s.core.config.proto_max_bulk_len:
        raise CommandError(_BIT_OFFSET_ERR)
    return offset


# --- SETBIT / GETBIT --------------------------------------------------------------

@command("setbit", 4, "write denyoom", keys=(1, 1, 1), group="bitmap", since="2.2.0",
         summary="Sets or clears the bit at offset in the string value stored at key",
         synopsis="key offset value:integer")
def cmd_setbit(s, argv):
    key = argv[1]
    offset = bit_offset(s, argv[2])
    on = parse_int(argv[3])
    if on is None or on & ~1:
        raise CommandError(_BIT_VALUE_ERR)
    old = get_string(s, key)
    byte = offset >> 3
    shift = 7 - (offset & 7)
    if old is None:
        old = b""
    if byte < len(old):
        current = old[byte]
        was = (current >> shift) & 1
        if was == on:
            return was  # nothing changes: nothing to store, log or publish
        view = memoryview(old)  # join copies from the views: one copy of the value
        new = b"".join((view[:byte], bytes((current ^ (1 << shift),)), view[byte + 1:]))
    else:
        was = 0
        new = b"".join((old, bytes(byte - len(old)), bytes((on << shift,))))
    s.db.store(key, new)  # keeps the TTL, as SETBIT does
    s.log([b"SETBIT", key, b"%d" % offset, b"%d" % on])
    s.core.notify(NOTIFY_STRING, b"setbit", s.db_index, key)
    return was


@command("getbit", 3, "readonly fast", keys=(1, 1, 1), group="bitmap", since="2.2.0",
         summary="Returns the bit value at offset in the string value stored at key",
         synopsis="key offset")
def cmd_getbit(s, argv):
    offset = bit_offset(s, argv[2])
    value = read_string(s, argv[1])
    byte = offset >> 3
    if value is None or byte >= len(value):
        return 0
    return (value[byte] >> (7 - (offset & 7))) & 1


# --- BITCOUNT / BITPOS ------------------------------------------------------------

def _unit_is_bit(arg: bytes) -> bool:
    word = _cword(arg)
    if word == b"bit":
        return True
    if word == b"byte":
        return False
    raise CommandError(SYNTAX)


def _clamp(start: int, end: int, total: int) -> tuple[int, int]:
    """Redis's range rule: negatives count from the end, then clip to [0, total-1]."""
    if start < 0:
        start += total
    if end < 0:
        end += total
    if start < 0:
        start = 0
    if end < 0:
        end = 0
    if end >= total:
        end = total - 1
    return start, end


def popcount(value: bytes, start: int, stop: int) -> int:
    """Set bits in ``value[start:stop]``, a CHUNK at a time."""
    view = memoryview(value)
    total = 0
    for i in range(start, stop, CHUNK):
        total += int.from_bytes(view[i:min(i + CHUNK, stop)], "big").bit_count()
    return total


@command("bitcount", -2, "readonly", keys=(1, 1, 1), group="bitmap", since="2.6.0",
         summary="Count set bits in a string", synopsis="key [start end [BYTE | BIT]]")
def cmd_bitcount(s, argv):
    value = read_string(s, argv[1])
    if value is None:
        return 0  # before the arguments are looked at, as in Redis
    argc = len(argv)
    size = len(value)
    if argc == 2:
        return popcount(value, 0, size)
    if argc not in (4, 5):
        raise CommandError(SYNTAX)
    start, end = int_arg(argv[2]), int_arg(argv[3])
    if start < 0 and end < 0 and start > end:
        return 0  # also before the unit is checked
    is_bit = argc == 5 and _unit_is_bit(argv[4])
    start, end = _clamp(start, end, size * 8 if is_bit else size)
    if start > end:
        return 0
    if not is_bit:
        return popcount(value, start, end + 1)
    first, last = start >> 3, end >> 3
    count = popcount(value, first, last + 1)
    # Take away the bits of the edge bytes outside [start, end].
    count -= (value[first] & (0xFF00 >> (start & 7)) & 0xFF).bit_count()
    count -= (value[last] & ((1 << (7 - (end & 7))) - 1)).bit_count()
    return count


def _first_in_byte(byte: int, bit: int, first: int, last: int) -> int:
    """Index (0 = MSB) of the first ``bit`` among the byte's bits first..last, or -1."""
    x = byte if bit else byte ^ 0xFF
    x &= (0xFF >> first) & (0xFF << (7 - last))
    return 8 - x.bit_length() if x else -1


def _first_byte_not(value: bytes, skip: int, start: int, stop: int) -> int:
    """Index of the first byte in ``value[start:stop]`` other than ``skip``, or -1."""
    run = _ZEROS if skip == 0 else _ONES
    strip = bytes((skip,))
    for i in range(start, stop, CHUNK):
        chunk = value[i:min(i + CHUNK, stop)]
        if chunk != run[:len(chunk)]:
            return i + len(chunk) - len(chunk.lstrip(strip))
    return -1


def find_bit(value: bytes, bit: int, lo: int, hi: int) -> int:
    """Position of the first ``bit`` (0 or 1) among bit positions lo..hi, or -1."""
    first, last = lo >> 3, hi >> 3
    if first == last:
        pos = _first_in_byte(value[first], bit, lo & 7, hi & 7)
        return -1 if pos < 0 else (first << 3) + pos
    pos = _first_in_byte(value[first], bit, lo & 7, 7)
    if pos >= 0:
        return (first << 3) + pos
    index = _first_byte_not(value, 0 if bit else 0xFF, first + 1, last)
    if index >= 0:
        return (index << 3) + _first_in_byte(value[index], bit, 0, 7)
    pos = _first_in_byte(value[last], bit, 0, hi & 7)
    return -1 if pos < 0 else (last << 3) + pos


@command("bitpos", -3, "readonly", keys=(1, 1, 1), group="bitmap", since="2.8.7",
         summary="Find first bit set or clear in a string",
         synopsis="key bit:integer [start [end [BYTE | BIT]]]")
def cmd_bitpos(s, argv):
    bit = int_arg(argv[2])
    if bit != 0 and bit != 1:
        raise CommandError("ERR The bit argument must be 1 or 0.")
    value = read_string(s, argv[1])
    if value is None:
        # A missing key is an endless run of zeros.
        return -1 if bit else 0
    argc = len(argv)
    size = len(value)
    is_bit = end_given = False
    if argc == 3:
        start, end = 0, size - 1
    elif argc <= 6:
        start = int_arg(argv[3])
        if argc == 6:
            is_bit = _unit_is_bit(argv[5])
        if argc >= 5:
            end = int_arg(argv[4])
            end_given = True
        else:
            end = size - 1
        start, end = _clamp(start, end, size * 8 if is_bit else size)
    else:
        raise CommandError(SYNTAX)
    if start > end:
        return -1  # an empty range holds neither a 0 nor a 1
    if is_bit:
        return find_bit(value, bit, start, end)
    pos = find_bit(value, bit, start << 3, (end << 3) + 7)
    if pos < 0 and bit == 0 and not end_given:
        # No clear bit in the bytes: without an end, the string counts as
        # padded with zeros on the right, so the answer is the next bit.
        return (end + 1) << 3
    return pos


# --- BITOP ------------------------------------------------------------------------

_BITOPS = {b"and": "and", b"or": "or", b"xor": "xor", b"not": "not"}


def bitop(op: str, sources: list[bytes]) -> bytes:
    """The bitwise ``op`` of ``sources``, shorter ones padded with zero bytes."""
    size = max(len(v) for v in sources)
    out = []
    for i in range(0, size, CHUNK):
        n = min(CHUNK, size - i)
        acc = int.from_bytes(sources[0][i:i + n].ljust(n, b"\0"), "big")
        if op == "not":
            acc ^= (1 << (8 * n)) - 1
        for v in sources[1:]:
            x = int.from_bytes(v[i:i + n].ljust(n, b"\0"), "big")
            if op == "and":
                acc &= x
            elif op == "or":
                acc |= x
            else:
                acc ^= x
        out.append(acc.to_bytes(n, "big"))
    return b"".join(out)


@command("bitop", -4, "write denyoom", keys=(2, -1, 1), group="bitmap", since="2.6.0",
         summary="Perform bitwise operations between strings",
         synopsis="operation destkey:key key [key ...]")
def cmd_bitop(s, argv):
    op = _BITOPS.get(_cword(argv[1]))
    if op is None:
        raise CommandError(SYNTAX)
    if op == "not" and len(argv) != 4:
        raise CommandError("ERR BITOP NOT must be called with a single source key.")
    sources = []
    for key in argv[3:]:
        value = read_string(s, key)
        sources.append(b"" if value is None else value)
    dest = argv[2]
    size = max(len(v) for v in sources)
    if size:
        result = bitop(op, sources)
        s.core.keyspace.lookup(s.db, dest)  # a lazy expiry must be logged first
        set_value(s, dest, result)
        s.log([b"SET", dest, result])
        s.core.notify(NOTIFY_STRING, b"set", s.db_index, dest)
    elif s.core.keyspace.lookup(s.db, dest) is not None:
        s.db.remove(dest)
        s.log([b"DEL", dest])
        s.core.notify(GENERIC, b"del", s.db_index, dest)
    return size


# --- BITFIELD ---------------------------------------------------------------------

_WRAP, _SAT, _FAIL = 0, 1, 2
_OVERFLOWS = {b"wrap": _WRAP, b"sat": _SAT, b"fail": _FAIL}
_GET, _SET, _INCRBY = 0, 1, 2
_OPCODES = {b"get": (_GET, 2), b"set": (_SET, 3), b"incrby": (_INCRBY, 3)}


def _bitfield_type(arg: bytes) -> tuple[bool, int]:
    """``i<bits>`` (1..64) or ``u<bits>`` (1..63) as (signed, bits)."""
    kind = arg[:1]
    # The width is read as a C string: it ends at a NUL.
    bits = parse_int(arg[1:].split(b"\0", 1)[0]) if kind in (b"i", b"u") else None
    signed = kind == b"i"
    if bits is None or bits < 1 or bits > (64 if signed else 63):
        raise CommandError(_BITFIELD_TYPE_ERR)
    return signed, bits


def signed_overflow(value: int, incr: int, bits: int, mode: int) -> tuple[bool, int]:
    """Redis's checkSignedBitfieldOverflow: (overflowed, value to store under WRAP/SAT).

    ``value`` and ``incr`` are int64; the differences are taken as C does
    (wrapping), which decides a few extreme SETs (SAT of -2**63 into i8 is
    127 in Redis, and here).
    """
    top = (1 << 63) - 1 if bits == 64 else (1 << (bits - 1)) - 1
    bottom = -top - 1
    max_incr = _i64(top - value)
    min_incr = _i64(bottom - value)
    if (value > top or (bits != 64 and incr > max_incr)
            or (value >= 0 and incr > 0 and incr > max_incr)):
        limit = top
    elif (value < bottom or (bits != 64 and incr < min_incr)
          or (value < 0 and incr < 0 and incr < min_incr)):
        limit = bottom
    else:
        return False, value + incr
    if mode == _WRAP:
        wrapped = (value + incr) & ((1 << bits) - 1)
        limit = wrapped - (1 << bits) if wrapped >> (bits - 1) else wrapped
    return True, limit


def unsigned_overflow(value: int, incr: int, bits: int, mode: int) -> tuple[bool, int]:
    """Redis's checkUnsignedBitfieldOverflow; ``value`` is a uint64, ``incr`` an int64."""
    top = (1 << bits) - 1
    if value > top or (incr > 0 and incr > _i64(top - value)):
        limit = top
    elif incr < 0 and incr < _i64(-value):
        limit = 0
    else:
        return False, value + incr
    if mode == _WRAP:
        limit = (value + incr) & top
    return True, limit


def _read_field(buf, offset: int, bits: int) -> int:
    """The unsigned ``bits``-wide field at bit ``offset`` (bytes past the end read as 0)."""
    byte = offset >> 3
    span = ((offset & 7) + bits + 7) >> 3
    window = int.from_bytes(buf[byte:byte + span].ljust(span, b"\0"), "big")
    return (window >> ((span << 3) - (offset & 7) - bits)) & ((1 << bits) - 1)


def _write_field(buf: bytearray, offset: int, bits: int, value: int) -> None:
    byte = offset >> 3
    span = ((offset & 7) + bits + 7) >> 3
    shift = (span << 3) - (offset & 7) - bits
    mask = ((1 << bits) - 1) << shift
    window = int.from_bytes(buf[byte:byte + span], "big")
    window = (window & ~mask) | ((value << shift) & mask)
    buf[byte:byte + span] = window.to_bytes(span, "big")


def _bitfield(s, argv, readonly_command: bool):
    ops = []  # (opcode, signed, bits, offset, argument, overflow mode)
    mode = _WRAP
    writes = False
    highest = 0
    i, argc = 2, len(argv)
    while i < argc:
        remaining = argc - i - 1
        word = _cword(argv[i])
        if word == b"overflow" and remaining >= 1:
            mode = _OVERFLOWS.get(_cword(argv[i + 1]), -1)
            if mode < 0:
                raise CommandError("ERR Invalid OVERFLOW type specified")
            i += 2
            continue
        opcode, nargs = _OPCODES.get(word, (None, 0))
        if opcode is None or remaining < nargs:
            raise CommandError(SYNTAX)
        signed, bits = _bitfield_type(argv[i + 1])
        offset = bit_offset(s, argv[i + 2], bits)
        arg = 0
        if opcode != _GET:
            writes = True
            highest = max(highest, offset + bits - 1)
            arg = parse_int(argv[i + 3])
            if arg is None:
                raise CommandError(NOT_INTEGER)
        ops.append((opcode, signed, bits, offset, arg, mode))
        i += nargs + 1
    if not writes:
        value = read_string(s, argv[1])
        buf = b"" if value is None else value
        return [_get(buf, signed, bits, offset) for _, signed, bits, offset, _, _ in ops]
    if readonly_command:
        raise CommandError(_BITFIELD_RO_ERR)
    key = argv[1]
    old = get_string(s, key)
    buf = bytearray(b"" if old is None else old)
    need = (highest >> 3) + 1
    grew = len(buf) < need  # a new key grows from nothing
    if grew:
        buf.extend(bytes(need - len(buf)))
    changed = False
    wrote = False   # a SET or INCRBY ran (not refused by OVERFLOW FAIL): Redis's "changes"
    replies: list = []
    for opcode, signed, bits, offset, arg, mode in ops:
        if opcode == _GET:
            replies.append(_get(buf, signed, bits, offset))
            continue
        old_field = _read_field(buf, offset, bits)
        if signed:
            if old_field >> (bits - 1):
                old_field -= 1 << bits
            if opcode == _INCRBY:
                overflow, new_field = signed_overflow(old_field, arg, bits, mode)
            else:
                overflow, new_field = signed_overflow(arg, 0, bits, mode)
        elif opcode == _INCRBY:
            overflow, new_field = unsigned_overflow(old_field, arg, bits, mode)
        else:
            overflow, new_field = unsigned_overflow(arg & _U64, 0, bits, mode)
        if overflow and mode == _FAIL:
            replies.append(None)
            continue
        replies.append(new_field if opcode == _INCRBY else old_field)
        wrote = True
        if new_field != old_field:
            _write_field(buf, offset, bits, new_field)
            changed = True
    if grew or changed:
        s.db.store(key, bytes(buf))  # keeps the TTL, as BITFIELD does
        s.log([b"BITFIELD"] + argv[1:])  # the real name, whatever the client called it
    if wrote:
        s.core.notify(NOTIFY_STRING, b"setbit", s.db_index, key)
    return replies


def _get(buf, signed: bool, bits: int, offset: int) -> int:
    value = _read_field(buf, offset, bits)
    if signed and value >> (bits - 1):
        value -= 1 << bits
    return value


@command("bitfield", -2, "write denyoom", keys=(1, 1, 1), group="bitmap", since="3.2.0",
         summary="Perform arbitrary bitfield integer operations on strings",
         synopsis="key [GET encoding offset | [OVERFLOW WRAP | SAT | FAIL] "
                  "SET encoding offset value | INCRBY encoding offset increment ...]")
def cmd_bitfield(s, argv):
    return _bitfield(s, argv, False)


@command("bitfield_ro", -2, "readonly fast", keys=(1, 1, 1), group="bitmap", since="6.0.0",
         summary="Perform arbitrary bitfield integer operations on strings. "
                 "Read-only variant of BITFIELD",
         synopsis="key [GET encoding offset [GET encoding offset ...]]")
def cmd_bitfield_ro(s, argv):
    return _bitfield(s, argv, True)
