"""The write-ahead log: segments of CRC-framed batches of records, one record per unit.

On-disk format (all integers little-endian)
-------------------------------------------
A WAL is a directory of segment files named ``wal-<first LSN, 20 digits>.log``.
Each segment starts with a 32-byte header::

    magic "KVSWAL\\r\\n" (8) | version u32 | database id u64 | first LSN u64 | CRC32 u32

The CRC covers the 28 bytes before it. The database id is chosen when the
data directory is created and is written in every segment and checkpoint,
so files from two different databases are never mixed.

Versions: **3** (written today) frames each group-commit batch once, with
one CRC, and encodes records in binary (below). **2** is version 1's record
format written by a kvserver that keeps a MANIFEST (so a version >= 2
segment without a MANIFEST means the MANIFEST was lost). **1** is the first
format. All three are read; the version-1/2 record format is described at
:func:`encode_record`.

Version 3: batches follow the header back to back::

    magic "KVB3" u32 | CRC32 u32 | length u64 | first LSN u64 | count u32 | body (length bytes)

The CRC covers length, first LSN, count and body. The body holds ``count``
records with LSNs first..first+count-1; LSNs start at 1 and increase by
exactly one across batches and segments. A record is one *execution unit*
(one command, or later an EXEC or a script): everything it logged, kept or
lost as a whole. Its first byte is its kind::

    SET  1: db u16 | key length u32 | value length u32 | key | value     (SET key value)
    DEL  2: db u16 | key length u32 | key                                 (DEL key)
    ARGV 3: db u16 | argc u32 | (length u32 | argument) * argc            (any other effect)
    UNIT 4: effect count u32 | that many SET/DEL/ARGV effects             (a unit of several)

An effect is an argv replayed through the command table in database ``db``
(SET and DEL are compact forms of ``[b"SET", key, value]`` and
``[b"DEL", key]``). A record of kind 4 takes one LSN for all its effects.

Torn tail rule (per batch)
--------------------------
A crash can leave the end of the *last* segment incomplete: a short batch
header, a short body, a body whose CRC fails, or zeros where the file
system extended the file. A batch is whole (its CRC holds) or it is the
torn tail: the tail is cut off from the batch's first byte, so a unit is
never half kept. The open segment is also allocated ahead of its writes
(:data:`PREALLOCATE_BYTES`), so it normally ends in zeros: an all-zero tail
of the last segment is its end, not damage, and is trimmed quietly;
rotation trims it before sealing.

What proves damage to *acknowledged* data is a whole batch, after the bad
bytes, that begins after the bad batch's first LSN: under ``appendfsync
always`` a batch is written only once the previous one is synced, so the
bad bytes were synced. That, a whole batch with the wrong LSN, a whole
batch whose body does not decode, or any damage in a sealed (not last)
segment, is corruption: recovery refuses to start. (Bit rot inside the
last synced batch, with nothing after it, looks exactly like a torn write;
no log format can tell them apart without another sync per batch.)

Segment creation is atomic and lazy: rotation seals the old segment, and the
next batch creates the new one *with the batch in it* (``<name>.tmp``,
synced, renamed into place, directory synced), then lists it in the MANIFEST
(kvserver/manifest.py) before any reply is released. So a named segment
always holds a synced record; one without (cut back to its header) is damage.
Fail-stop is enforced here: after the first write/sync/rotation error the
WAL refuses every later one (:attr:`WAL.failed`).

The API, kept small on purpose (after etcd's wal): :class:`WAL` with
``create``/``open``, ``write``, ``sync``, ``rotate``, ``remove_segments_before``,
``close``; the encoders :func:`encode_effect`, :func:`encode_unit`,
:func:`encode_batch`; and **the single reader**, :func:`read_segment`, that
recovery, ``kvserver check`` and the tests share (:func:`scan_segment` is
it, collecting the records), for every version.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generator, NamedTuple

from .errors import CorruptionError, StorageError
from .fs import AppendFile, FileSystem
from .manifest import Manifest, path_of, write_manifest

MAGIC = b"KVSWAL\r\n"
#: Version 3: one CRC per batch, binary records, one record per execution
#: unit (see the module doc). Version 2 segments (version 1's per-record
#: format, made by a kvserver that keeps a MANIFEST; one found in a
#: directory without a MANIFEST means the MANIFEST was lost) and version 1
#: segments are still read.
VERSION = 3
READ_VERSIONS = (1, 2, 3)
SEGMENT_HEADER = struct.Struct("<8sIQQ")  # magic, version, db id, first LSN (+ CRC u32)
SEGMENT_HEADER_SIZE = SEGMENT_HEADER.size + 4
RECORD_HEADER = struct.Struct("<IIQBH")   # crc, length, lsn, type, db
RECORD_HEADER_SIZE = RECORD_HEADER.size
_CRC_SPAN = struct.Struct("<IQBH")         # the header fields the CRC covers
_U32 = struct.Struct("<I")

RECORD_COMMAND = 1
RECORD_COMMIT = 2
_FIRST_LSN = struct.Struct("<Q")
#: A record payload larger than this is refused on write and treated as a bad
#: length on read: a request's arguments are bounded by the protocol limits
#: (1M arguments, 512 MiB each), and one record must fit in memory at replay.
MAX_RECORD = 1 << 31
#: Start a new segment once the current one passes this size, so sealed
#: segments can be dropped after a checkpoint and no single file grows huge.
SEGMENT_BYTES = 64 * 1024 * 1024
#: The open segment is allocated ahead of the writes in steps of this size
#: (``posix_fallocate``), so a sync after an append does not also have to
#: commit a new file size: measured on ext4 here, write+fdatasync p50
#: ~100 µs into allocated space against ~145 µs appending. The unused space
#: reads as zeros: recovery takes an all-zero tail of the last segment as
#: its end, and rotation trims it off the sealed segment.
PREALLOCATE_BYTES = 8 * 1024 * 1024

#: An argument at least this big is not copied into its record: the record
#: is returned as a list of buffers with the argument itself among them,
#: its batch's CRC computed piece by piece, and written piece by piece. A 400 MB
#: SET used to be copied three times here (payload, header + payload, CRC +
#: the rest) and once more to join the batch.
BIG_ARG = 256 * 1024

_SEGMENT_RE = re.compile(r"wal-(\d{20})\.log\Z")


def segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def encode_segment_header(db_id: int, first_lsn: int, version: int = VERSION) -> bytes:
    """A segment's header (``version`` other than the current one: tests and fixtures)."""
    head = SEGMENT_HEADER.pack(MAGIC, version, db_id, first_lsn)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_argv(argv: list[bytes]) -> bytes:
    """An argv as a RESP multibulk (the payload of a version 1/2 record)."""
    parts = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


def decode_argv(payload: bytes | memoryview) -> list[bytes]:
    """Inverse of :func:`encode_argv`. Raises ValueError on a malformed payload."""
    data = bytes(payload)
    if not data.startswith(b"*"):
        raise ValueError("payload is not a multibulk")
    nl = data.index(b"\r\n")
    count = int(data[1:nl])
    pos = nl + 2
    argv = []
    for _ in range(count):
        if data[pos:pos + 1] != b"$":
            raise ValueError("payload argument is not a bulk string")
        nl = data.index(b"\r\n", pos)
        size = int(data[pos + 1:nl])
        start = nl + 2
        argv.append(data[start:start + size])
        pos = start + size + 2
    if pos != len(data):
        raise ValueError("payload has trailing bytes")
    return argv


def encode_commit(first_lsn: int, last_lsn: int) -> bytes:
    """The commit marker (versions 1 and 2) closing a batch of records first_lsn..last_lsn:
    its LSN is the batch's last, its 8-byte payload the batch's first LSN."""
    body = _CRC_SPAN.pack(8, last_lsn, RECORD_COMMIT, 0) + _FIRST_LSN.pack(first_lsn)
    return struct.pack("<I", zlib.crc32(body)) + body


def encode_record(lsn: int, db: int, argv: list[bytes]) -> bytes:
    """One command record of versions 1 and 2 (read, no longer written; tests
    and fixtures build old segments with it)::

        CRC32 u32 | length u32 | LSN u64 | type u8 | db u16 | payload (length bytes)

    The CRC covers everything after it. Type 0 is invalid (zeroed space
    never parses); type 1 is a command, its payload the argv as a RESP
    multibulk; type 2 is a commit marker (:func:`encode_commit`) closing a
    batch, taking no LSN of its own.
    """
    payload = encode_argv(argv)
    body = _CRC_SPAN.pack(len(payload), lsn, RECORD_COMMAND, db) + payload
    return _U32.pack(zlib.crc32(body)) + body

# --- version 3: batches and binary records -------------------------------------------

BATCH_MAGIC = 0x3342564B                  # b"KVB3" read as a little-endian u32
BATCH_HEADER = struct.Struct("<IIQQI")    # magic, CRC, body length, first LSN, count
BATCH_HEADER_SIZE = BATCH_HEADER.size     # 28
_BATCH_SPAN = struct.Struct("<QQI")       # what the CRC covers before the body
_BATCH_MAGIC_BYTES = struct.pack("<I", BATCH_MAGIC)
KIND_SET = 1
KIND_DEL = 2
KIND_ARGV = 3
KIND_UNIT = 4
_SET = struct.Struct("<BHII")             # kind, db, key length, value length
_DEL = struct.Struct("<BHI")              # kind, db, key length
_ARGV = struct.Struct("<BHI")             # kind, db, argc
_UNIT = struct.Struct("<BI")              # kind, effect count
_SET_SIZE = _SET.size


def encode_effect(db: int, argv: list[bytes]) -> bytes | list[bytes]:
    """One effect as a version-3 record (a unit of one): ``bytes``, or a list if big.

    Written for speed: the writer calls it for every logged command. A
    record with an argument of :data:`BIG_ARG` bytes or more comes back as
    a list of buffers whose concatenation is the record, the argument
    itself one of them (not copied); :func:`encode_batch` takes either.
    """
    if len(argv) == 3 and argv[0] == b"SET":
        key = argv[1]
        value = argv[2]
        if len(value) < BIG_ARG and len(key) < BIG_ARG:
            return _SET.pack(KIND_SET, db, len(key), len(value)) + key + value
        return [_SET.pack(KIND_SET, db, len(key), len(value)), key, value]
    if len(argv) == 2 and argv[0] == b"DEL" and len(argv[1]) < BIG_ARG:
        key = argv[1]
        return _DEL.pack(KIND_DEL, db, len(key)) + key
    pieces = [_ARGV.pack(KIND_ARGV, db, len(argv))]
    u32 = _U32.pack
    big = False
    total = 0
    for arg in argv:
        size = len(arg)
        total += size
        pieces.append(u32(size))
        pieces.append(arg)
        if size >= BIG_ARG:
            big = True
    if total > MAX_RECORD:
        raise StorageError(f"wal: record of {total} bytes exceeds the {MAX_RECORD} limit")
    return pieces if big else b"".join(pieces)


def encode_unit(effects: list[tuple[int, list[bytes]]]) -> bytes | list[bytes]:
    """A unit of several effects as ONE version-3 record (one LSN): bytes, or a list if big."""
    pieces: list[bytes] = [_UNIT.pack(KIND_UNIT, len(effects))]
    big = False
    for db, argv in effects:
        record = encode_effect(db, argv)
        if type(record) is list:
            pieces.extend(record)
            big = True
        else:
            pieces.append(record)
    return _compact(pieces) if big else b"".join(pieces)


def _compact(pieces: list[bytes]) -> list[bytes]:
    """Join runs of small buffers, keep the big ones as they are (not copied)."""
    out: list[bytes] = []
    run: list[bytes] = []
    for piece in pieces:
        if len(piece) >= BIG_ARG:
            if run:
                out.append(b"".join(run))
                run = []
            out.append(piece)
        else:
            run.append(piece)
    if run:
        out.append(b"".join(run))
    return out


def encode_batch(first_lsn: int, records: list) -> bytes | list[bytes]:
    """A group-commit batch: its header (one CRC for all) and ``records``
    (encode_effect/encode_unit results, LSNs first_lsn, first_lsn+1, ...).

    Returns one buffer, or a list of buffers (big arguments not copied) that
    :meth:`WAL.write` writes in order.
    """
    count = len(records)
    try:
        body = b"".join(records)
    except TypeError:  # a big record (a list) among them
        flat: list[bytes] = []
        for rec in records:
            if type(rec) is list:
                flat.extend(rec)
            else:
                flat.append(rec)
        pieces = _compact(flat)
        length = sum(map(len, pieces))
        span = _BATCH_SPAN.pack(length, first_lsn, count)
        crc = zlib.crc32(span)
        for piece in pieces:
            crc = zlib.crc32(piece, crc)
        head = _U32.pack(BATCH_MAGIC) + _U32.pack(crc) + span
        if len(pieces[0]) < BIG_ARG:
            pieces[0] = head + pieces[0]
        else:
            pieces.insert(0, head)
        return pieces
    span = _BATCH_SPAN.pack(len(body), first_lsn, count)
    return b"".join((_BATCH_MAGIC_BYTES, _U32.pack(zlib.crc32(body, zlib.crc32(span))), span,
                     body))


def decode_effect(data: bytes, pos: int) -> tuple[int, list[bytes], int]:
    """The SET/DEL/ARGV effect at ``pos``: (db, argv, end). ValueError if malformed."""
    kind = data[pos]
    size = len(data)
    if kind == KIND_SET:
        _k, db, klen, vlen = _SET.unpack_from(data, pos)
        key_at = pos + _SET_SIZE
        value_at = key_at + klen
        end = value_at + vlen
        if end > size:
            raise ValueError("SET record runs past its batch")
        return db, [b"SET", data[key_at:value_at], data[value_at:end]], end
    if kind == KIND_DEL:
        _k, db, klen = _DEL.unpack_from(data, pos)
        key_at = pos + _DEL.size
        end = key_at + klen
        if end > size:
            raise ValueError("DEL record runs past its batch")
        return db, [b"DEL", data[key_at:end]], end
    if kind == KIND_ARGV:
        _k, db, argc = _ARGV.unpack_from(data, pos)
        pos += _ARGV.size
        if argc == 0 or argc * 4 > size - pos:
            raise ValueError(f"argument count {argc} does not fit its batch")
        argv = []
        unpack = _U32.unpack_from
        for _ in range(argc):
            (n,) = unpack(data, pos)
            pos += 4
            argv.append(data[pos:pos + n])
            pos += n
        if pos > size:
            raise ValueError("argument runs past its batch")
        return db, argv, pos
    raise ValueError(f"unknown record kind {kind}")


def decode_record(data: bytes, pos: int) -> tuple[list[tuple[int, list[bytes]]], int]:
    """The record (unit) at ``pos``: ([(db, argv), ...], end). ValueError if malformed."""
    try:
        if data[pos] == KIND_UNIT:
            _k, count = _UNIT.unpack_from(data, pos)
            pos += _UNIT.size
            if count == 0 or count > len(data) - pos:
                raise ValueError(f"unit of {count} effects does not fit its batch")
            effects = []
            for _ in range(count):
                db, argv, pos = decode_effect(data, pos)
                effects.append((db, argv))
            return effects, pos
        db, argv, pos = decode_effect(data, pos)
        return [(db, argv)], pos
    except (struct.error, IndexError):
        raise ValueError("record runs past its batch") from None


class Record(NamedTuple):
    """One record (one execution unit) as read back by :func:`scan_segment`."""

    lsn: int
    offset: int
    #: [(db, argv), ...]: the unit's effects in order (one for a plain command).
    effects: list


@dataclass
class SegmentScan:
    """What :func:`scan_segment` found in one segment file."""

    path: str
    db_id: int
    first_lsn: int
    records: list[Record]
    #: Offset just past the last good record.
    good_end: int
    size: int
    #: Set when bytes after good_end do not parse: (offset, reason).
    bad: tuple[int, str] | None = None
    #: True if a whole later batch (v1/v2: the valid commit marker of a
    #: later batch) follows the bad bytes,
    #: which makes them corruption rather than a torn tail (see the module doc).
    valid_after_bad: bool = False
    torn_tail_bytes: int = field(default=0)
    #: True if every byte from the bad offset to the end is zero: the
    #: preallocated space of the open segment (see PREALLOCATE_BYTES), or a
    #: write that extended the file and never landed. Either way no record
    #: is there; recovery takes it as the end of the last segment.
    zero_tail: bool = False
    #: LSN of the last good command record (first_lsn - 1 if there is none).
    last_lsn: int = 0


def parse_segment_header(data: bytes, path: str, lsn: int | None = None) -> tuple[int, int]:
    """Return (db id, first LSN) or raise CorruptionError.

    ``lsn`` (the first LSN the file's name promises) is named in the error.
    """
    if len(data) < SEGMENT_HEADER_SIZE:
        raise CorruptionError("wal: segment header is incomplete", path=path, offset=0, lsn=lsn)
    magic, version, db_id, first_lsn = SEGMENT_HEADER.unpack_from(data, 0)
    (crc,) = struct.unpack_from("<I", data, SEGMENT_HEADER.size)
    if magic != MAGIC or crc != zlib.crc32(data[:SEGMENT_HEADER.size]):
        raise CorruptionError("wal: bad segment header", path=path, offset=0, lsn=lsn)
    if version not in READ_VERSIONS:
        raise CorruptionError(f"wal: unsupported segment version {version}", path=path,
                              offset=0, lsn=lsn)
    return db_id, first_lsn


def segment_version(data: bytes) -> int:
    """The version field of a segment header already checked by parse_segment_header."""
    return struct.unpack_from("<I", data, len(MAGIC))[0]


def _record_at(data: bytes, pos: int) -> tuple[int, int, int, int] | str:
    """Parse the record at ``pos``: (lsn, type, db, end) or a reason it is bad."""
    end = len(data)
    if pos + RECORD_HEADER_SIZE > end:
        return "short record header"
    crc, length, lsn, rtype, db = RECORD_HEADER.unpack_from(data, pos)
    if rtype == 0 and length == 0 and crc == 0:
        return "zeroed bytes"
    if length > MAX_RECORD or pos + RECORD_HEADER_SIZE + length > end:
        return "record length runs past the end of the file"
    stop = pos + RECORD_HEADER_SIZE + length
    if zlib.crc32(memoryview(data)[pos + 4:stop]) != crc:
        return "record checksum mismatch"
    if rtype != RECORD_COMMAND and (rtype != RECORD_COMMIT or length != 8):
        return f"unknown record type {rtype}"
    return lsn, rtype, db, stop


def read_segment(data: bytes, path: str, lsn: int | None = None, *, skip_below: int = 0,
                 on_unit: Callable[[int, int, list], None] | None = None,
                 dbs: list | None = None,
                 store_plain: Callable[[Any, bytes, bytes], None] | None = None,
                 progress_every: int = 0) -> Generator[int, None, SegmentScan]:
    """THE WAL reader (every version): check one segment and hand over its records.

    A generator: it yields how many records it handed over so far every
    ``progress_every`` of them (never, if 0) and returns the
    :class:`SegmentScan` (where the whole records end, what follows them).
    Raises CorruptionError for a bad segment header and for a whole batch
    (or v1/v2 record) whose contents do not decode.

    Records with LSN >= ``skip_below`` are handed over, in LSN order:
    ``on_unit(lsn, offset, effects)`` with the unit's ``[(db, argv), ...]``,
    or, when ``dbs`` and ``store_plain`` are given, a plain ``SET key
    value`` goes straight to ``store_plain(dbs[db], key, value)`` (replay's
    fast lane: no argv, no dispatch). ``dbs`` is read at each record, so a
    SWAPDB replayed through ``on_unit`` is seen by the next SET.
    """
    db_id, first_lsn = parse_segment_header(data, path, lsn)
    fast = dbs is not None and store_plain is not None
    if segment_version(data) >= 3:
        return (yield from _read_v3(data, path, db_id, first_lsn, skip_below, on_unit,
                                    dbs if fast else None, store_plain, progress_every))
    return (yield from _read_v1(data, path, db_id, first_lsn, skip_below, on_unit,
                                dbs if fast else None, store_plain, progress_every))


def run_reader(reader: Generator[int, None, SegmentScan]) -> SegmentScan:
    """Drive :func:`read_segment` to its end (no progress wanted)."""
    while True:
        try:
            next(reader)
        except StopIteration as stop:
            return stop.value


def scan_segment(data: bytes, path: str, lsn: int | None = None,
                 collect: bool = True) -> SegmentScan:
    """:func:`read_segment` collecting every record as a :class:`Record` (tests, tools).

    Raises CorruptionError if the segment header is bad (naming ``lsn``,
    the first LSN from the file's name, if given) or a whole record does
    not decode.
    """
    records: list[Record] = []
    if collect:
        def keep(lsn_: int, offset: int, effects: list) -> None:
            records.append(Record(lsn_, offset, effects))
    scan = run_reader(read_segment(data, path, lsn, on_unit=keep if collect else None))
    scan.records = records
    return scan


def _read_v3(data: bytes, path: str, db_id: int, first_lsn: int, skip_below: int,
             on_unit: Callable | None, dbs: list | None, store_plain: Callable | None,
             progress_every: int) -> Generator[int, None, SegmentScan]:
    pos = SEGMENT_HEADER_SIZE
    size = len(data)
    expected = first_lsn
    bad = None
    unpack = BATCH_HEADER.unpack_from
    set_unpack = _SET.unpack_from
    crc32 = zlib.crc32
    view = memoryview(data)
    handed = 0
    next_progress = progress_every
    decode = on_unit is not None or dbs is not None
    while pos < size:
        if pos + BATCH_HEADER_SIZE > size:
            bad = (pos, "zeroed bytes" if data.count(0, pos) == size - pos
                   else "short batch header")
            break
        magic, crc, length, first, count = unpack(data, pos)
        start = pos + BATCH_HEADER_SIZE
        stop = start + length
        if magic != BATCH_MAGIC:
            bad = (pos, "zeroed bytes" if not magic and not crc and not length
                   else "bad batch magic")
            break
        if stop > size:
            bad = (pos, "batch length runs past the end of the file")
            break
        if crc32(view[pos + 8:stop]) != crc:
            bad = (pos, "batch checksum mismatch")
            break
        if first != expected or not count:
            bad = (pos, f"LSN {first} where {expected} was expected" if count
                   else "batch of no record")
            break
        # A whole batch: all its records are handed over, or (torn) none.
        end_lsn = first + count
        lsn = first
        p = start
        dbi = 0
        if not decode or end_lsn > skip_below:  # (check decodes every batch)
            try:
                while p < stop:
                    if dbs is not None and data[p] == KIND_SET:
                        _k, dbi, klen, vlen = set_unpack(data, p)
                        key_at = p + _SET_SIZE
                        value_at = key_at + klen
                        p = value_at + vlen
                        if lsn >= skip_below:
                            store_plain(dbs[dbi], data[key_at:value_at], data[value_at:p])
                    else:
                        at = p
                        effects, p = decode_record(data, p)
                        if lsn >= skip_below and on_unit is not None:
                            on_unit(lsn, at, effects)
                    lsn += 1
            except (ValueError, struct.error) as exc:
                raise CorruptionError(f"wal: undecodable record in a whole batch ({exc})",
                                      path=path, offset=pos, lsn=lsn) from None
            except IndexError:  # dbs[dbi]: (only the fast lane indexes dbs)
                raise CorruptionError(
                    f"wal: record for database {dbi} but only {len(dbs or ())} are "
                    "configured (raise --databases)", path=path, offset=pos, lsn=lsn) from None
            if p != stop or lsn != end_lsn:
                raise CorruptionError(
                    f"wal: batch of {count} records whose body holds {lsn - first} "
                    f"({p - start} of {length} bytes)", path=path, offset=pos, lsn=first)
            if lsn > skip_below:
                handed += lsn - max(first, skip_below)
                if progress_every and handed >= next_progress:
                    next_progress = handed + progress_every
                    yield handed
        expected = end_lsn
        pos = stop
    return finish_scan(data, path, db_id, first_lsn, pos, bad, expected, later=_later_batch_v3)


def _later_batch_v3(data: bytes, start: int, bad_lsn: int) -> bool:
    """Is there a whole batch at or after ``start`` that begins after LSN ``bad_lsn``?

    Only offsets holding the batch magic and a plausible LSN are CRC-checked,
    so the scan stays cheap even over a large damaged tail.
    """
    size = len(data)
    view = memoryview(data)
    pos = data.find(_BATCH_MAGIC_BYTES, start)
    while 0 <= pos <= size - BATCH_HEADER_SIZE:
        _m, crc, length, first, _count = BATCH_HEADER.unpack_from(data, pos)
        stop = pos + BATCH_HEADER_SIZE + length
        if bad_lsn < first < bad_lsn + (1 << 32) and stop <= size and \
                zlib.crc32(view[pos + 8:stop]) == crc:
            return True
        pos = data.find(_BATCH_MAGIC_BYTES, pos + 1)
    return False


#: The payload prefix of a plain ``SET key value`` record in versions 1 and 2.
_PLAIN_SET = b"*3\r\n$3\r\nSET\r\n$"


def _read_v1(data: bytes, path: str, db_id: int, first_lsn: int, skip_below: int,
             on_unit: Callable | None, dbs: list | None, store_plain: Callable | None,
             progress_every: int) -> Generator[int, None, SegmentScan]:
    """Versions 1 and 2: a CRC per record, RESP payloads, commit markers.

    One loop over the file image, with no per-record objects: the inline
    test takes the common record (a command with the expected LSN and a good
    CRC), :func:`next_record` the rest. Plain ``SET key value`` payloads go
    to ``store_plain`` when given.
    """
    pos = SEGMENT_HEADER_SIZE
    size = len(data)
    expected = first_lsn
    bad = None
    unpack = RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    startswith = data.startswith
    index = data.index
    view = memoryview(data)
    handed = 0
    countdown = progress_every
    while pos < size:
        stop = 0
        if pos + RECORD_HEADER_SIZE <= size:
            crc, length, lsn, rtype, dbi = unpack(data, pos)
            start = pos + RECORD_HEADER_SIZE
            stop = start + length
            if not (rtype == RECORD_COMMAND and lsn == expected and stop <= size
                    and crc32(view[pos + 4:stop]) == crc):
                stop = 0
        if not stop:
            step = next_record(data, pos, expected)
            if type(step) is str:
                bad = (pos, step)
                break
            lsn, dbi, stop = step
            start = pos + RECORD_HEADER_SIZE
            if not lsn:  # a commit marker
                pos = stop
                continue
        expected += 1
        if lsn >= skip_below and (on_unit is not None or dbs is not None):
            # A plain SET: *3 $3 SET $<klen> key $<vlen> value. The CRC
            # vouches for the bytes and our encoder for their shape, so the
            # value is what precedes the final CRLF; anything else is decoded.
            value_at = 0
            if dbs is not None and startswith(_PLAIN_SET, start):
                try:
                    nl = index(b"\r\n", start + 14, stop)
                    key_at = nl + 2
                    key_end = key_at + int(data[start + 14:nl])
                    value_at = index(b"\r\n", key_end + 3, stop) + 2
                except ValueError:
                    value_at = 0  # the general decoder below names the damage
            if value_at and dbi < len(dbs):
                store_plain(dbs[dbi], data[key_at:key_end], data[value_at:stop - 2])
            else:
                try:
                    argv = decode_argv(view[start:stop])
                except ValueError as exc:
                    raise CorruptionError(f"wal: undecodable record payload ({exc})",
                                          path=path, offset=pos, lsn=lsn) from None
                if on_unit is not None:
                    on_unit(lsn, pos, [(dbi, argv)])
                elif dbi >= len(dbs):
                    raise CorruptionError(
                        f"wal: record for database {dbi} but only {len(dbs)} are "
                        "configured (raise --databases)", path=path, offset=pos, lsn=lsn)
            handed += 1
            countdown -= 1
            if not countdown:
                countdown = progress_every
                yield handed
        pos = stop
    return finish_scan(data, path, db_id, first_lsn, pos, bad, expected)


def next_record(data: bytes, pos: int, expected: int) -> tuple[int, int, int] | str:
    """The record at ``pos`` when the next command LSN is ``expected``, the slow way.

    Returns (LSN, db, end) for a good command record, (0, 0, end) for a good
    commit marker closing the records before it, or the reason the bytes at
    ``pos`` are not a good record. (Readers check the common case, a command
    record with the expected LSN and a good CRC, inline and call this for
    the rest.)
    """
    found = _record_at(data, pos)
    if isinstance(found, str):
        return found
    lsn, rtype, db, stop = found
    if rtype == RECORD_COMMIT:
        (batch_first,) = _FIRST_LSN.unpack_from(data, pos + RECORD_HEADER_SIZE)
        if lsn != expected - 1 or batch_first > lsn:
            return (f"commit marker for LSN {batch_first}..{lsn} where the last "
                    f"record was LSN {expected - 1}")
        return 0, 0, stop
    if lsn != expected:
        return f"LSN {lsn} where {expected} was expected"
    return lsn, db, stop


def finish_scan(data: bytes, path: str, db_id: int, first_lsn: int, pos: int,
                bad: tuple[int, str] | None, expected: int,
                records: list[Record] | None = None,
                later: Callable[[bytes, int, int], bool] | None = None) -> SegmentScan:
    """The SegmentScan of a segment read up to ``pos``, classifying any bad tail.

    ``later(data, start, lsn)`` finds a whole batch after the bad bytes
    (the version's own test; versions 1 and 2 by default).
    """
    scan = SegmentScan(path=path, db_id=db_id, first_lsn=first_lsn, records=records or [],
                       good_end=pos, size=len(data), bad=bad, last_lsn=expected - 1)
    if bad is not None:
        scan.torn_tail_bytes = len(data) - pos
        scan.zero_tail = data.count(0, pos) == scan.torn_tail_bytes
        if not scan.zero_tail:
            scan.valid_after_bad = (later or _later_batch_after)(data, bad[0] + 1, expected)
    return scan


def _later_batch_after(data: bytes, start: int, bad_lsn: int) -> bool:
    """Is there a valid commit marker at or after ``start`` of a batch that began
    after LSN ``bad_lsn`` (the LSN the bad bytes should have held)?

    Only offsets holding a commit-marker type byte and a plausible LSN are
    CRC-checked, so the scan stays cheap even over a large damaged tail.
    """
    limit = len(data) - RECORD_HEADER_SIZE - 8
    lsn_field = _FIRST_LSN
    pos = data.find(b"\x08\x00\x00\x00", start + 4) - 4  # length field of a marker
    while 0 <= pos <= limit:
        if pos >= start and data[pos + 16] == RECORD_COMMIT:
            (lsn,) = lsn_field.unpack_from(data, pos + 8)
            (first,) = lsn_field.unpack_from(data, pos + RECORD_HEADER_SIZE)
            if bad_lsn < first <= lsn < bad_lsn + (1 << 32) and \
                    not isinstance(_record_at(data, pos), str):
                return True
        pos = data.find(b"\x08\x00\x00\x00", pos + 5) - 4
    return False


def list_segments(fs: FileSystem, dirpath: str) -> list[tuple[int, str]]:
    """(first LSN, path) of every segment in the directory, oldest first."""
    out = []
    for name in fs.listdir(dirpath):
        m = _SEGMENT_RE.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(dirpath, name)))
    out.sort()
    return out


class WAL:
    """The open log: appends to the newest segment, rotates, drops old segments.

    Rotation is lazy: :meth:`rotate` seals the current segment, and the next
    :meth:`write` creates the new one *with its first batch in it* (see
    :func:`_create_segment`), then lists it in the MANIFEST. So a segment
    that exists under its name always holds at least one record, and one
    that holds none (truncated to its header) is damage that recovery names.

    Not thread-safe: the writer calls it from one place at a time (its
    executor thread for write/sync, the loop for bookkeeping).
    """

    def __init__(self, fs: FileSystem, dirpath: str, db_id: int,
                 segments: list[tuple[int, str]], current: AppendFile | None,
                 next_lsn: int, checkpoints: list[int] | None = None,
                 segment_bytes: int = SEGMENT_BYTES) -> None:
        self.fs = fs
        self.dir = dirpath
        self.db_id = db_id
        self.segments = segments          # (first LSN, path), oldest first
        #: The open segment; None between a rotation (or a fresh start) and
        #: the next write, which creates the segment starting at next_lsn.
        self.current = current
        self.next_lsn = next_lsn
        #: Checkpoint LSNs the MANIFEST lists (kept here, written with the segments).
        self.checkpoints = list(checkpoints or [])
        self.segment_bytes = segment_bytes
        self.closed = False
        #: The first failure (OSError from a write, sync or rotation, or the
        #: writer's fail-stop): latched, every later write/sync/rotate raises.
        self.failed: BaseException | None = None
        #: Held across each write, sync and rotation, and by whoever must not
        #: act after a WAL failure (a checkpoint's rename, dropping old
        #: files): so "after the first failure" is exact across threads.
        #: Uncontended on the commit path (~0.1 µs against a ~100 µs sync).
        self.lock = threading.Lock()

    @classmethod
    def create(cls, fs: FileSystem, dirpath: str, db_id: int, first_lsn: int,
               segment_bytes: int = SEGMENT_BYTES,
               checkpoints: list[int] | None = None) -> "WAL":
        """Start a log whose first record will be ``first_lsn``; its first write creates
        the first segment. Writes the MANIFEST (the directory is now a database)."""
        wal = cls(fs, dirpath, db_id, [], None, first_lsn, checkpoints, segment_bytes)
        wal.write_manifest()
        return wal

    @classmethod
    def open(cls, fs: FileSystem, dirpath: str, db_id: int, segments: list[tuple[int, str]],
             next_lsn: int, checkpoints: list[int] | None = None,
             segment_bytes: int = SEGMENT_BYTES, last_version: int = VERSION) -> "WAL":
        """Continue appending to the newest of ``segments`` (already checked by recovery,
        which also wrote the MANIFEST listing them).

        A newest segment of an older format version (``last_version``) is
        left as it is (recovery trimmed it): the next write starts a new
        segment of the current version, since one segment holds one format.
        """
        if last_version != VERSION:
            return cls(fs, dirpath, db_id, list(segments), None, next_lsn, checkpoints,
                       segment_bytes)
        current = fs.open_append(segments[-1][1], PREALLOCATE_BYTES)
        return cls(fs, dirpath, db_id, list(segments), current, next_lsn, checkpoints,
                   segment_bytes)

    @property
    def size(self) -> int:
        """Bytes in the current segment (0 while none is open)."""
        return self.current.offset if self.current is not None else 0

    @property
    def path(self) -> str:
        """The file the next write goes to (for error messages)."""
        if self.current is not None:
            return self.current.path
        return os.path.join(self.dir, segment_name(self.next_lsn))

    def write(self, data: bytes | list[bytes], last_lsn: int) -> None:
        """Append encoded records ending at ``last_lsn``: a buffer, or
        encode_batch()'s list of them (big values kept by reference).
        OSError propagates: the caller fails stop (and the error carries the
        path and offset, see :class:`SegmentError`).

        After the first failure nothing more reaches the file (fail-stop is
        enforced here, at the bottom, whoever calls): a write that failed may
        have left part of its batch, and a later batch written after it would
        leave an LSN gap that no start-up accepts.
        """
        with self.lock:
            if self.failed is not None:
                self._check_failed()
            current = self.current
            try:
                if current is None:
                    # A new segment is created holding its first batch (once
                    # per segment, so joining a list of pieces here is cheap).
                    self._open_next(b"".join(data) if type(data) is list else data)
                elif type(data) is list:
                    for piece in data:
                        current.write(piece)
                else:
                    current.write(data)
            except OSError as exc:
                self.failed = exc
                raise
            self.next_lsn = last_lsn + 1

    def sync(self) -> None:
        with self.lock:
            if self.failed is not None:
                self._check_failed()
            current = self.current
            if current is None:
                return  # sealed (synced) and nothing written since
            try:
                current.sync()
            except OSError as exc:
                self.failed = exc
                raise

    def fail(self, exc: BaseException) -> None:
        """Latch a failure found elsewhere (the writer's fail-stop): no more I/O."""
        if self.failed is None:
            self.failed = exc

    def _check_failed(self) -> None:
        if self.failed is not None:
            raise StorageError(f"wal: the log failed earlier ({self.failed}); nothing more "
                               "is written to it (fail-stop)", path=self.path, offset=self.size)

    def needs_rotation(self) -> bool:
        return self.current is not None and self.current.offset >= self.segment_bytes

    def rotate(self) -> None:
        """Seal the current segment (already synced by the caller); the next write
        starts a new one at ``next_lsn``.

        The sealed segment loses its preallocated space first (durably), so
        only the last segment ever ends in zeros.
        """
        with self.lock:
            self._check_failed()
            if self.current is None:
                return
            old = self.current
            try:
                old.seal()
            except OSError as exc:
                self.failed = SegmentError("seal (ftruncate + fsync)", old.path, old.offset, exc)
                raise self.failed from exc
            old.close()
            self.current = None

    def _open_next(self, data: bytes) -> None:
        """Create segment ``next_lsn`` holding ``data``, then list it in the MANIFEST."""
        path = _create_segment(self.fs, self.dir, self.db_id, self.next_lsn, data)
        self.segments.append((self.next_lsn, path))
        try:
            self._write_manifest()
        except OSError as exc:
            raise SegmentError("MANIFEST update", path_of(self.dir), 0, exc) from exc
        try:
            self.current = self.fs.open_append(path, PREALLOCATE_BYTES)
        except OSError as exc:
            raise SegmentError("open", path, 0, exc) from exc

    def write_manifest(self) -> None:
        with self.lock:
            self._write_manifest()

    def _write_manifest(self) -> None:
        write_manifest(self.fs, self.dir, Manifest(
            self.db_id, [lsn for lsn, _p in self.segments], list(self.checkpoints)))

    def set_checkpoints(self, checkpoints: list[int]) -> None:
        """List exactly these checkpoints in the MANIFEST (call under ``lock``)."""
        self.checkpoints = sorted(checkpoints)
        self._write_manifest()

    def remove_segments_before(self, lsn: int) -> list[str]:
        """Delete sealed segments whose records all have LSN < ``lsn``. Returns their paths.

        A segment's records end where the next segment begins, so segment i
        is covered when segment i+1 starts at or before ``lsn``. The MANIFEST
        stops listing them before they go. Call under ``lock``.
        """
        count = 0
        while count + 1 < len(self.segments) and self.segments[count + 1][0] <= lsn:
            count += 1
        if not count:
            return []
        removed = [path for _first, path in self.segments[:count]]
        kept = self.segments[count:]
        write_manifest(self.fs, self.dir, Manifest(
            self.db_id, [first for first, _p in kept], list(self.checkpoints)))
        self.segments = kept  # only once the MANIFEST no longer lists them
        for path in removed:
            self.fs.unlink(path)
        self.fs.sync_dir(self.dir)
        return removed

    def close(self) -> None:
        if not self.closed:
            if self.current is not None:
                self.current.close()
            self.closed = True


class SegmentError(OSError):
    """An OSError from one step of rotation, naming the step, file and offset."""

    def __init__(self, step: str, path: str, offset: int, cause: OSError) -> None:
        super().__init__(cause.errno, cause.strerror or str(cause))
        self.step = step
        self.path = path
        self.offset = offset


def _create_segment(fs: FileSystem, dirpath: str, db_id: int, first_lsn: int,
                    first_batch: bytes) -> str:
    """Create a segment atomically with its first batch: tmp file, header and
    batch, sync, rename, sync dir. Returns its path. Each step's OSError comes
    back as a SegmentError naming the step, file and offset."""
    path = os.path.join(dirpath, segment_name(first_lsn))
    tmp = path + ".tmp"
    offset = 0
    step = "unlink"
    target = tmp
    try:
        if fs.exists(tmp):
            fs.unlink(tmp)
        step = "create (openat)"
        f = fs.create(tmp)
        try:
            step = "write"
            f.write(encode_segment_header(db_id, first_lsn) + first_batch)
            offset = f.offset
            step = "fsync"
            f.sync()
        finally:
            f.close()
        step, target = "rename", path
        fs.rename(tmp, path)
        step, target = "directory fsync", dirpath
        fs.sync_dir(dirpath)
    except SegmentError:
        raise
    except OSError as exc:
        raise SegmentError(step, target, offset, exc) from exc
    return path
