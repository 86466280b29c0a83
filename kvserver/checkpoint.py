"""Checkpoints: a snapshot of every database as of one LSN, written atomically.

On-disk format (integers little-endian)
---------------------------------------
File ``checkpoint-<LSN, 20 digits>.kvs``::

    header:  magic "KVSCKPT\\n" (8) | version u32 | database id u64 | LSN u64 |
             created Unix ms u64 | CRC32 of the preceding 36 bytes u32
    body:    entries, each  kind u8 (1 = string) | db u16 | expire Unix ms i64
             (-1 = none) | key length u32 | value length u32 | key | value
             then the end marker, kind u8 = 255
    trailer: body length u64 | entry count u64 | CRC32 of the body u32 |
             magic "KVSEND\\r\\n" (8)

A checkpoint at LSN L holds exactly the effect of WAL records 1..L.

Atomicity: the file is written as ``<name>.tmp``, synced, renamed into
place and the directory synced; only then may WAL segments the checkpoint
covers be dropped (by the caller). A ``.tmp`` found at start-up is an
unfinished checkpoint and is deleted. The two newest checkpoints are kept, so
one that later fails its checksum can fall back to the one before it, whose
WAL is still on disk.
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Callable, ContextManager, Iterable, Iterator

from .errors import CorruptionError
from .fs import AppendFile, FileSystem

MAGIC = b"KVSCKPT\n"
END_MAGIC = b"KVSEND\r\n"
VERSION = 1
HEADER = struct.Struct("<8sIQQQ")
HEADER_SIZE = HEADER.size + 4
ENTRY = struct.Struct("<BHqII")
TRAILER = struct.Struct("<QQI8s")
KIND_STRING = 1
KIND_END = 255
#: Checkpoints kept on disk; the older is the fallback if the newer is damaged.
KEEP = 2

_NAME_RE = re.compile(r"checkpoint-(\d{20})\.kvs\Z")


def checkpoint_name(lsn: int) -> str:
    return f"checkpoint-{lsn:020d}.kvs"


def list_checkpoints(fs: FileSystem, dirpath: str) -> list[tuple[int, str]]:
    """(LSN, path) of every finished checkpoint, oldest first."""
    out = []
    for name in fs.listdir(dirpath):
        m = _NAME_RE.match(name)
        if m:
            out.append((int(m.group(1)), os.path.join(dirpath, name)))
    out.sort()
    return out


def encode_entries(db: int, data: dict, expires: dict, keys: Iterable[bytes]) -> bytes:
    """Serialise some keys of one database (a slice of a snapshot)."""
    pack = ENTRY.pack
    parts = []
    get_exp = expires.get
    for key in keys:
        value = data[key]
        parts.append(pack(KIND_STRING, db, get_exp(key, -1), len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


class CheckpointWriter:
    """Writes one checkpoint file in pieces; :meth:`commit` makes it visible."""

    def __init__(self, fs: FileSystem, dirpath: str, db_id: int, lsn: int) -> None:
        self.fs = fs
        self.dir = dirpath
        self.lsn = lsn
        self.path = os.path.join(dirpath, checkpoint_name(lsn))
        self.tmp = self.path + ".tmp"
        if fs.exists(self.tmp):
            fs.unlink(self.tmp)
        self._file: AppendFile = fs.create(self.tmp)
        head = HEADER.pack(MAGIC, VERSION, db_id, lsn, time.time_ns() // 1_000_000)
        try:
            self._file.write(head + struct.pack("<I", zlib.crc32(head)))
        except BaseException:
            self.abort()  # the caller never gets a writer to abort
            raise
        self._crc = 0
        self._body = 0
        self.entries = 0

    def write(self, chunk: bytes, entries: int) -> None:
        self._file.write(chunk)
        self._crc = zlib.crc32(chunk, self._crc)
        self._body += len(chunk)
        self.entries += entries

    def commit(self, guard: Callable[[], ContextManager] | None = None) -> int:
        """Finish, sync, rename into place, sync the directory. Returns the file size.

        The rename and directory sync run inside ``guard()`` if given (the
        writer's: it holds the WAL lock and raises after a WAL failure, so
        no checkpoint appears once the log has failed).
        """
        end = bytes([KIND_END])
        self.write(end, 0)
        self._file.write(TRAILER.pack(self._body, self.entries, self._crc, END_MAGIC))
        self._file.sync()
        size = self._file.offset
        self._file.close()
        with guard() if guard is not None else contextlib.nullcontext():
            self.fs.rename(self.tmp, self.path)
            self.fs.sync_dir(self.dir)
        return size

    def abort(self, remove: bool = True) -> None:
        """Close the unfinished file and (with ``remove``) delete it."""
        try:
            self._file.close()
        finally:
            if remove and self.fs.exists(self.tmp):
                self.fs.unlink(self.tmp)


@dataclass
class Checkpoint:
    path: str
    db_id: int
    lsn: int
    created_ms: int
    entries: int
    data: bytes

    def load_into(self, dbs: list, every: int = 20_000) -> Iterator[int]:
        """Put every entry into ``dbs`` (keyspace Databases), yielding the count so far
        every ``every`` entries (and once at the end).

        One tight loop straight from the file image: this is most of a restart.
        Raises CorruptionError for an entry of a database we do not have.
        """
        data = self.data
        pos = HEADER_SIZE
        unpack = ENTRY.unpack_from
        size = ENTRY.size
        datas = [db.data for db in dbs]
        ndbs = len(dbs)
        count = 0
        while True:
            for _ in range(every):
                if data[pos] == KIND_END:
                    yield count
                    return
                _kind, db, expire, klen, vlen = unpack(data, pos)
                if db >= ndbs:
                    raise CorruptionError(
                        f"checkpoint holds database {db} but only {ndbs} are configured "
                        "(raise --databases)", path=self.path, offset=pos, lsn=self.lsn)
                pos += size
                kend = pos + klen
                key = data[pos:kend]
                pos = kend + vlen
                datas[db][key] = data[kend:pos]
                if expire >= 0:
                    dbs[db].set_expire(key, expire)
                count += 1
            yield count



def load_checkpoint(fs: FileSystem, path: str) -> Checkpoint:
    """Read and fully validate a checkpoint. Raises CorruptionError naming what is wrong."""
    data = fs.read(path)
    # Until the header is trusted, the LSN to name is the one in the file name.
    named = _NAME_RE.match(os.path.basename(path))
    name_lsn = int(named.group(1)) if named else None
    if len(data) < HEADER_SIZE + 1 + TRAILER.size:
        raise CorruptionError("checkpoint: file is too short", path=path, offset=len(data),
                              lsn=name_lsn)
    magic, version, db_id, lsn, created = HEADER.unpack_from(data, 0)
    (crc,) = struct.unpack_from("<I", data, HEADER.size)
    if magic != MAGIC or crc != zlib.crc32(data[:HEADER.size]):
        raise CorruptionError("checkpoint: bad header", path=path, offset=0, lsn=name_lsn)
    if version != VERSION:
        raise CorruptionError(f"checkpoint: unsupported version {version}", path=path,
                              offset=0, lsn=lsn)
    trailer_at = len(data) - TRAILER.size
    body_len, entries, body_crc, end_magic = TRAILER.unpack_from(data, trailer_at)
    if end_magic != END_MAGIC or body_len != trailer_at - HEADER_SIZE:
        raise CorruptionError("checkpoint: bad trailer (file truncated?)", path=path,
                              offset=trailer_at, lsn=lsn)
    if zlib.crc32(memoryview(data)[HEADER_SIZE:trailer_at]) != body_crc:
        raise CorruptionError("checkpoint: body checksum mismatch", path=path,
                              offset=HEADER_SIZE, lsn=lsn)
    if data[trailer_at - 1] != KIND_END:
        raise CorruptionError("checkpoint: missing end marker", path=path,
                              offset=trailer_at - 1, lsn=lsn)
    return Checkpoint(path=path, db_id=db_id, lsn=lsn, created_ms=created, entries=entries,
                      data=data)
