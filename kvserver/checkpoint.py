"""Checkpoints: a snapshot of every database as of one LSN, written atomically.

On-disk format, version 2 (integers little-endian)
-------------------------------------------------
File ``checkpoint-<LSN, 20 digits>.kvs``::

    header:  magic "KVSCKPT\\n" (8) | version u32 (2) | database id u64 | LSN u64 |
             created Unix ms u64 | CRC32 of the preceding 36 bytes u32
    body:    entries, each  kind u8 | db u16 | expire Unix ms i64 (-1 = none) |
             key length u64 | payload length u64 | key | payload
             then the end marker, kind u8 = 255
    trailer: body length u64 | entry count u64 | CRC32 of the body u32 |
             magic "KVSEND\\r\\n" (8)

``kind`` is the value's kind byte and ``payload`` its codec's encoding
(kvserver/types/: 1 = string, the bytes themselves). Version 1 (the format
before the typed keyspace) differs only in the entry: u32 lengths and a kind
byte that was always 1; it still loads (:func:`encode_entries_v1` writes it,
for the tests' fixture).

A checkpoint at LSN L holds exactly the effect of WAL records 1..L.

The snapshot rule (:class:`Snapshot`): at the barrier the writer records L
and, per database, the list of keys (no values are copied); the keyspace's
write hook then hands every write's key to :meth:`Snapshot.preserve` *before*
the write, which keeps the key's value and TTL as of L in a side table (once:
the first write after L is the one that matters; a mutable value is copied
with its codec's ``snapshot_copy``). The serialiser takes each listed key's
pre-image from the side table, or else the live value, which no write has
touched since L. FLUSHDB/FLUSHALL give a database new dict objects, so the
snapshot keeps reading the old ones; SWAPDB moves dict objects between
databases, so pre-images are kept per dict object, not per database index.

Slicing: entries are encoded in slices of about :data:`SLICE_BYTES` (counted
in encoded bytes, not keys), the loop gets control back between
slices (one huge value whose kind has ``encode_blocks``, a big sorted set, is
itself spread over slices, encoded from a copy-on-write copy), and slices are written from a thread in writes of about
:data:`WRITE_BYTES`.

Atomicity: the file is written as ``<name>.tmp``, synced, renamed into
place and the directory synced; only then may WAL segments the checkpoint
covers be dropped (by the caller). A ``.tmp`` found at start-up is an
unfinished checkpoint and is deleted. The two newest checkpoints are kept, so
one that later fails its checksum can fall back to the one before it, whose
WAL is still on disk.
"""

from __future__ import annotations

import contextlib
import gc
import os
import re
import signal
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterable, Iterator

from .errors import CorruptionError
from .fs import AppendFile, FileSystem, OSFileSystem
from .types import BY_KIND, BY_TYPE, STRING

MAGIC = b"KVSCKPT\n"
END_MAGIC = b"KVSEND\r\n"
VERSION = 2
#: Versions the loader reads.
VERSIONS = (1, 2)
HEADER = struct.Struct("<8sIQQQ")
HEADER_SIZE = HEADER.size + 4
ENTRY = struct.Struct("<BHqQQ")
ENTRY_V1 = struct.Struct("<BHqII")
TRAILER = struct.Struct("<QQI8s")
KIND_STRING = STRING.kind
KIND_END = 255
#: Checkpoints kept on disk; the older is the fallback if the newer is damaged.
KEEP = 2
#: Encoded bytes per slice before the loop gets control back: ~500 small
#: entries, well under a millisecond (2,000 keys per slice, ~3 ms, cut a lone
#: client's rate by 7x).
SLICE_BYTES = 32 * 1024
#: Encoded slices are handed to the checkpoint thread in writes of about
#: this size, so the per-write thread hand-off is paid rarely.
WRITE_BYTES = 1024 * 1024

#: From this many keys on, a checkpoint on the real file system is written by a
#: forked child (its stall is the fork, ~2-3 ms per GiB of heap) instead of in
#: process (whose barrier lists the keys, ~8-25 ms per million): see
#: docs/persistence.md. None: never fork.
FORK_MIN_KEYS: int | None = 1_000_000
#: Keys taken off a snapshot's key list at a time (a few slices' worth).
_KEY_BATCH = 2048

_NAME_RE = re.compile(r"checkpoint-(\d{20})\.kvs\Z")
_MISSING = object()


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
    """Serialise some keys of one database (v2 entries; a slice of a snapshot)."""
    pack = ENTRY.pack
    parts = []
    get_exp = expires.get
    for key in keys:
        value = data[key]
        if type(value) is bytes:
            payload = value
            kind = KIND_STRING
        else:
            codec = BY_TYPE[type(value)]
            payload = codec.encode(value)
            kind = codec.kind
        parts.append(pack(kind, db, get_exp(key, -1), len(key), len(payload)))
        parts.append(key)
        parts.append(payload)
    return b"".join(parts)


def encode_entries_v1(db: int, data: dict, expires: dict, keys: Iterable[bytes]) -> bytes:
    """Version-1 entries, exactly as the code before checkpoint v2 wrote them
    (kept to make the v1 fixture and test that v1 checkpoints still load)."""
    pack = ENTRY_V1.pack
    parts = []
    get_exp = expires.get
    for key in keys:
        value = data[key]
        parts.append(pack(KIND_STRING, db, get_exp(key, -1), len(key), len(value)))
        parts.append(key)
        parts.append(value)
    return b"".join(parts)


class _Part:
    """One database's share of a snapshot: its dicts as of L and the keys they held."""

    __slots__ = ("index", "data", "expires", "keys", "side")

    def __init__(self, index: int, data: dict, expires: dict) -> None:
        self.index = index
        self.data = data
        self.expires = expires
        self.keys = list(data)
        #: key -> (value at L, expire at L or None), saved before the first
        #: write after L.
        self.side: dict[bytes, tuple[Any, int | None]] = {}


class Snapshot:
    """The keyspace as of LSN ``lsn``, kept by copy-on-write per key (see module doc).

    Created synchronously at the barrier (no await between the LSN and the
    constructor); :meth:`close` must follow, whatever happens.
    """

    def __init__(self, keyspace: Any, lsn: int, keep_pre_images: bool = True) -> None:
        self.lsn = lsn
        self.keyspace = keyspace if keep_pre_images else None
        self.parts = [_Part(db.index, db.data, db.expires) for db in keyspace.dbs if db.data]
        self._by_data = {id(part.data): part for part in self.parts}
        self.keys = sum(len(part.keys) for part in self.parts)
        self.preserved = 0
        if keep_pre_images:
            keyspace.set_snapshot(self)

    def preserve(self, db: Any, key: bytes) -> None:
        """Called by the keyspace before any write of ``key`` in ``db``."""
        part = self._by_data.get(id(db.data))
        if part is None or key in part.side:
            return  # a dict made after L (FLUSH), or the pre-image is kept already
        value = part.data.get(key, _MISSING)
        if value is _MISSING:
            return  # absent at L (a deletion since L would have been preserved)
        if type(value) is not bytes:
            copy = BY_TYPE[type(value)].snapshot_copy
            if copy is not None:
                value = copy(value)
        part.side[key] = (value, part.expires.get(key))
        self.preserved += 1

    def slices(self, target: int | None = None) -> Iterator[tuple[bytes, int]]:
        """(encoded entries, entry count) of about ``target`` (SLICE_BYTES) bytes each."""
        if target is None:
            target = SLICE_BYTES
        pack = ENTRY.pack
        size = ENTRY.size
        for part in self.parts:
            index = part.index
            side = part.side
            data = part.data
            get_exp = part.expires.get
            keys = part.keys
            chunk: list[bytes] = []
            buffered = count = 0
            # Keys are taken from the end of the list and the list is cut as
            # they go: no memmove, and the references are dropped slice by
            # slice rather than all at once at the end (~80 ms per 3M keys).
            while keys:
                batch = keys[-_KEY_BATCH:]
                del keys[-_KEY_BATCH:]
                for key in batch:
                    pre = side.get(key) if side else None
                    if pre is None:
                        value = data[key]
                        expire = get_exp(key, -1)
                    else:
                        value, expire = pre
                        if expire is None:
                            expire = -1
                    if type(value) is bytes:
                        payload = value
                        kind = KIND_STRING
                    else:
                        codec = BY_TYPE[type(value)]
                        kind = codec.kind
                        if codec.encode_blocks is not None and codec.size(value) > target:
                            # One huge value: encoded over several slices, so
                            # the loop gets control back in between. A live
                            # value may change meanwhile: encode a copy (cheap
                            # for such kinds; a pre-image is already one).
                            if pre is None:
                                value = codec.snapshot_copy(value)
                            chunk.append(pack(kind, index, expire, len(key), codec.size(value)))
                            chunk.append(key)
                            buffered += size + len(key)
                            count += 1
                            for block in codec.encode_blocks(value):
                                chunk.append(block)
                                buffered += len(block)
                                if buffered >= target:
                                    yield b"".join(chunk), count
                                    chunk = []
                                    buffered = count = 0
                            continue
                        payload = codec.encode(value)
                    chunk.append(pack(kind, index, expire, len(key), len(payload)))
                    chunk.append(key)
                    chunk.append(payload)
                    buffered += size + len(key) + len(payload)
                    count += 1
                    if buffered >= target:
                        yield b"".join(chunk), count
                        chunk = []
                        buffered = count = 0
            if chunk:
                yield b"".join(chunk), count

    def close(self) -> None:
        """Stop keeping pre-images and let go of the snapshot's data."""
        if self.keyspace is not None:
            self.keyspace.set_snapshot(None)
            self.keyspace = None
        self.parts = []
        self._by_data = {}


def should_fork(fs: FileSystem, keyspace: Any) -> bool:
    """Whether this checkpoint is written by a forked child (see FORK_MIN_KEYS)."""
    return (FORK_MIN_KEYS is not None and hasattr(os, "fork") and type(fs) is OSFileSystem
            and sum(len(db.data) for db in keyspace.dbs) >= FORK_MIN_KEYS)


def fork_writer(fs: FileSystem, dirpath: str, db_id: int, keyspace: Any, lsn: int) -> int:
    """Fork a child that writes and commits the checkpoint of ``keyspace`` at ``lsn``.

    The child's memory is the keyspace at the moment of the fork, so it needs
    no pre-images. It closes every inherited descriptor (the LOCK file's
    included, so a dead parent's lock is not held), ignores the signals the
    server handles, stops if its parent dies, and leaves with ``os._exit``:
    status 0 once the ``.tmp`` file is complete and synced (the server then
    publishes it: see :meth:`CheckpointWriter.publish`). Returns its pid.
    """
    pid = os.fork()
    if pid:
        return pid
    code = 70
    try:
        gc.disable()  # the heap is a copy; a collection would only touch (copy) pages
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN if sig == signal.SIGINT else signal.SIG_DFL)
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:
            pass
        os.closerange(3, 1 << 20)
        parent = os.getppid()
        snapshot = Snapshot(keyspace, lsn, keep_pre_images=False)
        writer = CheckpointWriter(fs, dirpath, db_id, lsn)
        try:
            for chunk, count in snapshot.slices(WRITE_BYTES):
                writer.write(chunk, count)
                if os.getppid() != parent:
                    raise OSError("the server died")
            writer.finish()  # the server renames it, under the WAL lock
        except BaseException:
            writer.abort()
            raise
        code = 0
    except BaseException:
        code = 71
    finally:
        os._exit(code)


def publish(fs: FileSystem, dirpath: str, lsn: int,
            guard: Callable[[], ContextManager] | None = None) -> None:
    """Rename the finished ``.tmp`` checkpoint at ``lsn`` into place and sync the
    directory, inside ``guard()`` if given (the writer's: it holds the WAL lock,
    raises after a WAL failure so no checkpoint appears once the log has
    failed, and then lists the checkpoint in the MANIFEST)."""
    path = os.path.join(dirpath, checkpoint_name(lsn))
    with guard() if guard is not None else contextlib.nullcontext():
        fs.rename(path + ".tmp", path)
        fs.sync_dir(dirpath)


def wait_child(pid: int) -> int:
    """Wait for a checkpoint child (in a thread); its exit status (0 = committed)."""
    _pid, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


class CheckpointWriter:
    """Writes one checkpoint file in pieces; :meth:`commit` makes it visible."""

    def __init__(self, fs: FileSystem, dirpath: str, db_id: int, lsn: int,
                 version: int = VERSION) -> None:
        self.fs = fs
        self.dir = dirpath
        self.lsn = lsn
        self.path = os.path.join(dirpath, checkpoint_name(lsn))
        self.tmp = self.path + ".tmp"
        if fs.exists(self.tmp):
            fs.unlink(self.tmp)
        self._file: AppendFile = fs.create(self.tmp)
        head = HEADER.pack(MAGIC, version, db_id, lsn, time.time_ns() // 1_000_000)
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

    def finish(self) -> int:
        """Write the trailer, sync and close the ``.tmp`` file. Returns its size.

        Not yet visible: :meth:`publish` renames it into place. A forked
        checkpoint child stops here, so that the rename happens in the server,
        under the WAL lock (see :meth:`commit`).
        """
        end = bytes([KIND_END])
        self.write(end, 0)
        self._file.write(TRAILER.pack(self._body, self.entries, self._crc, END_MAGIC))
        self._file.sync()
        size = self._file.offset
        self._file.close()
        return size

    def publish(self, guard: Callable[[], ContextManager] | None = None) -> None:
        """Make the finished file visible: see :func:`publish`."""
        publish(self.fs, self.dir, self.lsn, guard)

    def commit(self, guard: Callable[[], ContextManager] | None = None) -> int:
        """Finish, sync, rename into place, sync the directory. Returns the file size."""
        size = self.finish()
        self.publish(guard)
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
    version: int = VERSION

    def load_into(self, dbs: list, every: int = 20_000) -> Iterator[int]:
        """Put every entry into ``dbs`` (keyspace Databases), yielding the count so far
        every ``every`` entries (and once at the end).

        One tight loop straight from the file image: this is most of a restart.
        Strings (almost every entry) are sliced out inline; other kinds go
        through their codec. Raises CorruptionError for an entry of a database
        we do not have, or of a kind no codec owns.
        """
        data = self.data
        pos = HEADER_SIZE
        entry = ENTRY if self.version >= 2 else ENTRY_V1
        unpack = entry.unpack_from
        size = entry.size
        datas = [db.data for db in dbs]
        ndbs = len(dbs)
        view = memoryview(data)
        v1 = self.version < 2
        count = 0
        while True:
            for _ in range(every):
                kind, db, expire, klen, vlen = unpack(data, pos)
                if kind != KIND_STRING:
                    if kind == KIND_END:
                        yield count
                        return
                    if not v1:  # v1 wrote 1 always and read no other
                        self._load_other(dbs, pos, kind, db, expire, klen, vlen, view)
                        pos += size + klen + vlen
                        count += 1
                        continue
                if db >= ndbs:
                    raise self._no_db(db, ndbs, pos)
                pos += size
                kend = pos + klen
                key = data[pos:kend]
                pos = kend + vlen
                datas[db][key] = data[kend:pos]
                if expire >= 0:
                    dbs[db].set_expire(key, expire)
                count += 1
            yield count

    def _no_db(self, db: int, ndbs: int, pos: int) -> CorruptionError:
        return CorruptionError(
            f"checkpoint holds database {db} but only {ndbs} are configured "
            "(raise --databases)", path=self.path, offset=pos, lsn=self.lsn)

    def _load_other(self, dbs: list, pos: int, kind: int, db: int, expire: int, klen: int,
                    vlen: int, view: memoryview) -> None:
        codec = BY_KIND.get(kind)
        if codec is None:
            raise CorruptionError(f"checkpoint: entry of unknown kind {kind}", path=self.path,
                                  offset=pos, lsn=self.lsn)
        if db >= len(dbs):
            raise self._no_db(db, len(dbs), pos)
        start = pos + ENTRY.size
        key = bytes(view[start:start + klen])
        try:
            value = codec.decode(view[start + klen:start + klen + vlen])
        except (ValueError, IndexError, struct.error) as exc:
            raise CorruptionError(f"checkpoint: undecodable {codec.name} value ({exc})",
                                  path=self.path, offset=pos, lsn=self.lsn) from None
        dbs[db].data[key] = value
        if expire >= 0:
            dbs[db].set_expire(key, expire)


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
    if version not in VERSIONS:
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
                      data=data, version=version)
