"""The write-ahead log: segments of CRC-framed records, one per mutation.

On-disk format (all integers little-endian)
-------------------------------------------
A WAL is a directory of segment files named ``wal-<first LSN, 20 digits>.log``.
Each segment starts with a 32-byte header::

    magic "KVSWAL\\r\\n" (8) | version u32 | database id u64 | first LSN u64 | CRC32 u32

The CRC covers the 28 bytes before it. The database id is chosen when the
data directory is created and is written in every segment and checkpoint,
so files from two different databases are never mixed.

Records follow back to back::

    CRC32 u32 | length u32 | LSN u64 | type u8 | db u16 | payload (length bytes)

The CRC (zlib.crc32) covers everything after it: length, LSN, type, db and
payload. Type 0 is invalid, so zero-filled space never parses as a record.
Type 1 is a command whose payload is its argv as a RESP multibulk, replayed
through the normal command table in database ``db``; command LSNs start at 1
and increase by exactly one across all segments. Type 2 is a *commit marker*
that closes each group-commit batch: its LSN is the batch's last command LSN
and its 8-byte payload the batch's first LSN. A marker takes no LSN of its own.

Torn tail rule
--------------
A crash can leave the end of the *last* segment incomplete: a short header, a
short payload, or zeros where the file system extended the file. Such a tail
is cut off (:func:`scan_segment` reports where it starts). The open segment
is also allocated ahead of its writes (:data:`PREALLOCATE_BYTES`), so it
normally ends in zeros: an all-zero tail of the last segment is its end, not
damage, and is trimmed quietly; rotation trims it before sealing.

Within the batch being written when the crash came, the disk may have kept
any pages in any order, so valid records can follow a hole; none of them was
acknowledged, because acknowledgement waits for the batch's sync. What proves
damage to *acknowledged* data is a valid commit marker, after the bad bytes,
of a batch that began after them: under ``appendfsync always`` a batch is
written only once the previous one is synced, so the bad bytes were synced.
That, or any damage in a sealed (not last) segment, is corruption: recovery
refuses to start. (Bit rot inside the last synced batch, with nothing after
it, looks exactly like a torn write; no log format can tell them apart
without another sync per batch.)

Segment creation is atomic and lazy: rotation seals the old segment, and the
next batch creates the new one *with the batch in it* (``<name>.tmp``,
synced, renamed into place, directory synced), then lists it in the MANIFEST
(kvserver/manifest.py) before any reply is released. So a named segment
always holds a synced record; one without (cut back to its header) is damage.
Fail-stop is enforced here: after the first write/sync/rotation error the
WAL refuses every later one (:attr:`WAL.failed`).

The API, kept small on purpose (after etcd's wal): :class:`WAL` with
``create``/``open``, ``write``, ``sync``, ``rotate``, ``remove_segments_before``,
``close``; and the readers :func:`list_segments`, :func:`scan_segment`.
"""

from __future__ import annotations

import os
import re
import struct
import threading
import zlib
from dataclasses import dataclass, field
from typing import NamedTuple

from .errors import CorruptionError, StorageError
from .fs import AppendFile, FileSystem
from .manifest import Manifest, path_of, write_manifest

MAGIC = b"KVSWAL\r\n"
#: Version 2 segments are made by a kvserver that keeps a MANIFEST (the
#: record format is unchanged); one found in a directory without a MANIFEST
#: means the MANIFEST was lost. Version 1 segments are still read.
VERSION = 2
READ_VERSIONS = (1, 2)
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
#: its CRC computed piece by piece, and written piece by piece. A 400 MB
#: SET used to be copied three times here (payload, header + payload, CRC +
#: the rest) and once more to join the batch.
BIG_ARG = 256 * 1024

_SEGMENT_RE = re.compile(r"wal-(\d{20})\.log\Z")


def segment_name(first_lsn: int) -> str:
    return f"wal-{first_lsn:020d}.log"


def encode_segment_header(db_id: int, first_lsn: int) -> bytes:
    head = SEGMENT_HEADER.pack(MAGIC, VERSION, db_id, first_lsn)
    return head + struct.pack("<I", zlib.crc32(head))


def encode_argv(argv: list[bytes]) -> bytes:
    """An argv as a RESP multibulk (the record payload; encode_record inlines argc 3)."""
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
    """The commit marker closing a batch of command records first_lsn..last_lsn."""
    body = _CRC_SPAN.pack(8, last_lsn, RECORD_COMMIT, 0) + _FIRST_LSN.pack(first_lsn)
    return struct.pack("<I", zlib.crc32(body)) + body


def encode_record(lsn: int, db: int, argv: list[bytes]) -> bytes:
    """One command record, CRC and all."""
    record = encode_record_parts(lsn, db, argv)
    return record if type(record) is bytes else b"".join(record)


def encode_record_parts(lsn: int, db: int, argv: list[bytes]) -> bytes | list[bytes]:
    """One command record, CRC and all: ``bytes``, or a list of buffers if big.

    What the writer calls. Written for speed: every write command pays it.
    Header and payload are joined first so the CRC is one call over one
    buffer, and the usual three-argument payload is formatted here (~0.72
    against ~0.87 µs). A record with an argument of :data:`BIG_ARG` bytes
    or more comes back as a list whose concatenation is the record, the
    argument itself one of its items (not copied); :meth:`WAL.write` takes
    either form, and :func:`join_records` joins a batch of them.
    """
    if len(argv) == 3:  # SET k v, INCRBY k n, APPEND k v...: most records
        a, b, c = argv
        if len(c) >= BIG_ARG or len(b) >= BIG_ARG:
            return _record_pieces(lsn, db, argv)
        payload = b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
            len(a), a, len(b), b, len(c), c)
    else:
        if max(map(len, argv)) >= BIG_ARG:
            return _record_pieces(lsn, db, argv)
        payload = encode_argv(argv)
    if len(payload) > MAX_RECORD:
        raise StorageError(f"wal: record of {len(payload)} bytes exceeds the {MAX_RECORD} limit")
    body = _CRC_SPAN.pack(len(payload), lsn, RECORD_COMMAND, db) + payload
    return _U32.pack(zlib.crc32(body)) + body


def _record_pieces(lsn: int, db: int, argv: list[bytes]) -> list[bytes]:
    """encode_record_parts for a record with big arguments: the same bytes, in pieces."""
    pieces: list[bytes] = []
    run = [b"*%d\r\n" % len(argv)]
    for arg in argv:
        if len(arg) >= BIG_ARG:
            run.append(b"$%d\r\n" % len(arg))
            pieces.append(b"".join(run))
            pieces.append(arg)
            run = [b"\r\n"]
        else:
            run.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    pieces.append(b"".join(run))
    length = sum(map(len, pieces))
    if length > MAX_RECORD:
        raise StorageError(f"wal: record of {length} bytes exceeds the {MAX_RECORD} limit")
    span = _CRC_SPAN.pack(length, lsn, RECORD_COMMAND, db)
    crc = zlib.crc32(span)
    for piece in pieces:
        crc = zlib.crc32(piece, crc)
    pieces[0] = _U32.pack(crc) + span + pieces[0]
    return pieces


def join_records(records: list) -> bytes | list[bytes]:
    """A batch of encode_record_parts() results as one buffer, or as a list if any is in pieces.

    In the list, runs of small records are joined and big pieces kept as
    they are, so a big argument is still not copied.
    """
    try:
        return b"".join(records)
    except TypeError:  # a big record (a list) among them
        pass
    out: list[bytes] = []
    run: list[bytes] = []
    for rec in records:
        if type(rec) is list:
            for piece in rec:
                if len(piece) >= BIG_ARG:
                    if run:
                        out.append(b"".join(run))
                        run = []
                    out.append(piece)
                else:
                    run.append(piece)
        else:
            run.append(rec)
    if run:
        out.append(b"".join(run))
    return out


class Record(NamedTuple):
    """One command record as read back (a tuple: replay reads millions of them)."""

    lsn: int
    db: int
    offset: int
    payload: memoryview


#: Builds a Record without the Python-level NamedTuple __new__ (a third of
#: the scan's time on a million records).
_new_record = tuple.__new__


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
    #: True if a valid commit marker of a later batch follows the bad bytes,
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


def scan_segment(data: bytes, path: str, lsn: int | None = None,
                 collect: bool = True) -> SegmentScan:
    """Read every good record of one segment and classify what follows them.

    Raises CorruptionError if the segment header itself is bad (naming
    ``lsn``, the first LSN from the file's name, if given). With
    ``collect=False`` the records are only checked (``kvserver check``;
    recovery checks and applies in one pass, see recovery._apply_segment).
    """
    db_id, first_lsn = parse_segment_header(data, path, lsn)
    records: list[Record] = []
    pos = SEGMENT_HEADER_SIZE
    view = memoryview(data)
    expected = first_lsn
    bad = None
    size = len(data)
    unpack = RECORD_HEADER.unpack_from
    crc32 = zlib.crc32
    append = records.append
    while pos < size:
        # Fast path: a whole command record with the next LSN and a good CRC.
        if pos + RECORD_HEADER_SIZE <= size:
            crc, length, lsn_, rtype, db = unpack(data, pos)
            stop = pos + RECORD_HEADER_SIZE + length
            if (rtype == RECORD_COMMAND and lsn_ == expected and stop <= size
                    and crc32(view[pos + 4:stop]) == crc):
                if collect:
                    append(_new_record(Record, (lsn_, db, pos, view[pos + RECORD_HEADER_SIZE:stop])))
                expected += 1
                pos = stop
                continue
        step = next_record(data, pos, expected)
        if type(step) is str:
            bad = (pos, step)
            break
        lsn_, db, stop = step
        if lsn_ and collect:
            records.append(Record(lsn_, db, pos, view[pos + RECORD_HEADER_SIZE:stop]))
        if lsn_:
            expected += 1
        pos = stop
    return finish_scan(data, path, db_id, first_lsn, pos, bad, expected, records)


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
                records: list[Record] | None = None) -> SegmentScan:
    """The SegmentScan of a segment read up to ``pos``, classifying any bad tail."""
    scan = SegmentScan(path=path, db_id=db_id, first_lsn=first_lsn, records=records or [],
                       good_end=pos, size=len(data), bad=bad, last_lsn=expected - 1)
    if bad is not None:
        scan.torn_tail_bytes = len(data) - pos
        scan.zero_tail = data.count(0, pos) == scan.torn_tail_bytes
        if not scan.zero_tail:
            scan.valid_after_bad = _later_batch_after(data, bad[0] + 1, expected)
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
             segment_bytes: int = SEGMENT_BYTES) -> "WAL":
        """Continue appending to the newest of ``segments`` (already checked by recovery,
        which also wrote the MANIFEST listing them)."""
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
        join_records()' list of them (big values kept by reference).
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
