"""A simulated file system for crash tests: records every durable operation,
then materialises the disks a crash could leave behind.

The model (what POSIX promises, no more):

* A file's bytes become durable on ``sync()`` of a handle to it. Bytes
  appended since the last sync are *pending*: after a crash any prefix of
  them may be there, or (the file system extended the size but not the data)
  zeros in their place.
* Creations, renames and unlinks become durable on ``sync_dir()`` of their
  directory. Until then a crash may keep any subset of them (applied in
  order; an operation whose source is gone is skipped).
* ``truncate()`` is durable at once (the real one fsyncs), as its contract says.

:class:`SimFileSystem` is a :class:`kvserver.fs.FileSystem`, so the WAL,
checkpoint, recovery and writer code run on it unchanged. With
``record=True`` it keeps a :class:`DiskImage` after every mutating operation
(``history[k]`` is the disk after ``k`` of them), and
:meth:`DiskImage.crash_states` turns one image into the post-crash
:class:`SimFileSystem` instances to recover from. :meth:`SimFileSystem.inject`
makes the Nth write, sync, rename... raise ``OSError(EIO)`` or ``ENOSPC``.

Below the file layer: helpers that build data directories with the real WAL
and checkpoint code (:func:`write_wal`, :func:`write_checkpoint`,
:func:`recover_data`), and a harness that runs a real
:class:`kvserver.server.Server` on the simulated disk under concurrent
clients (:func:`run_workload` returns a :class:`Trace`) and holds every crash
state to the guarantees (:class:`Checker`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import errno as errno_mod
import itertools
import os
import random
import threading
from dataclasses import dataclass, field
from typing import Iterator

import pytest

from kvserver.commands import COMMANDS
from kvserver.config import Config
from kvserver.errors import CorruptionError
from kvserver.fs import AppendFile, FileSystem
from kvserver.protocol import NEED_DATA, ReplyError, ReplyParser, encode_command

#: Above this many unsynced directory operations, crash states keep their
#: prefixes only (in order) instead of every subset (2**n).
ALL_SUBSETS_UP_TO = 6


def _norm(path: str) -> str:
    return os.path.normpath(path)


@dataclass
class _Inode:
    durable: bytes = b""
    #: Appends since the last sync, oldest first.
    pending: list[bytes] = field(default_factory=list)

    def content(self) -> bytes:
        return self.durable + b"".join(self.pending) if self.pending else self.durable


@dataclass
class Fault:
    """Make matching operations raise ``OSError(err)`` from the ``nth`` one on."""

    kind: str               # create, write, sync, rename, unlink, truncate, sync_dir, read
    nth: int = 1
    err: int = errno_mod.EIO
    path: str = ""          # only paths containing this (for rename: the destination)
    partial: bool = False   # a failing write first lands half of its bytes
    sticky: bool = True     # keep failing after the first (a dead disk, a full disk)
    seen: int = 0
    fired: int = 0
    #: Index in SimFileSystem.log of the operation that failed first.
    log_index: int = -1


@dataclass(frozen=True, repr=False)
class DiskImage:
    """An immutable picture of the simulated disk at one moment."""

    inodes: dict        # ino -> (durable bytes, tuple of pending appends)
    durable: dict       # path -> ino, the directory entries that survive a crash
    entries: dict       # path -> ino, what a running process sees
    #: Unsynced ("create", path, ino), ("rename", src, dst, ino), ("unlink", path, ino).
    dir_ops: tuple
    dirs: frozenset

    def __repr__(self) -> str:
        pending = sum(len(p) for _d, pend in self.inodes.values() for p in pend)
        return (f"<DiskImage {sorted(os.path.basename(p) for p in self.entries)}, "
                f"{pending} unsynced bytes, {len(self.dir_ops)} unsynced directory ops>")

    def crash_states(self, *, cuts: str = "writes", zero_tails: bool = True,
                     limit: int | None = None, seed: int = 0) -> Iterator["SimFileSystem"]:
        """Every disk a crash at this moment could leave (deduplicated).

        ``cuts`` picks the pending-append prefixes tried per file: ``"writes"``
        (every write boundary plus the first, middle and last byte inside
        each write), ``"bytes"`` (every byte) or ``"ends"`` (nothing pending
        or all of it). ``zero_tails`` adds, for each write boundary, the
        state where the rest of the file reads as zeros. Past ``limit``
        combinations a seeded sample is taken.
        """
        seen: set = set()
        combos = []
        for entries in self._dir_choices():
            inos = sorted(set(entries.values()))
            options = [self._content_options(ino, cuts, zero_tails) for ino in inos]
            total = 1
            for opt in options:
                total *= len(opt)
            combos.append((entries, inos, options, total))
        grand = sum(c[3] for c in combos)
        rng = random.Random(seed)
        for entries, inos, options, total in combos:
            if limit is not None and grand > limit:
                share = max(1, limit * total // grand)
                picks: Iterator = (tuple(rng.choice(opt) for opt in options) for _ in range(share))
                # Always include the two extremes: only synced data, and everything.
                picks = itertools.chain([tuple(o[0] for o in options),
                                         tuple(o[-1] for o in options)], picks)
            else:
                picks = itertools.product(*options)
            for contents in picks:
                files = {path: contents[inos.index(ino)] for path, ino in entries.items()}
                key = tuple(sorted(files.items()))
                if key in seen:
                    continue
                seen.add(key)
                yield SimFileSystem.from_files(files, dirs=self.dirs)

    def durable_state(self) -> "SimFileSystem":
        """The one crash state where nothing unsynced survived."""
        files = {path: self.inodes[ino][0] for path, ino in self.durable.items()}
        return SimFileSystem.from_files(files, dirs=self.dirs)

    def current_state(self) -> "SimFileSystem":
        """The disk as the running process saw it, all of it made durable."""
        files = {path: self.inodes[ino][0] + b"".join(self.inodes[ino][1])
                 for path, ino in self.entries.items()}
        return SimFileSystem.from_files(files, dirs=self.dirs)

    def _dir_choices(self) -> list[dict]:
        ops = self.dir_ops
        if len(ops) <= ALL_SUBSETS_UP_TO:
            chosen: Iterator = itertools.chain.from_iterable(
                itertools.combinations(ops, n) for n in range(len(ops) + 1))
        else:
            chosen = (ops[:n] for n in range(len(ops) + 1))
        out, seen = [], set()
        for subset in chosen:
            entries = dict(self.durable)
            for op in subset:
                _apply_dir_op(entries, op)
            key = tuple(sorted(entries.items()))
            if key not in seen:
                seen.add(key)
                out.append(entries)
        return out

    def _content_options(self, ino: int, cuts: str, zero_tails: bool) -> list[bytes]:
        durable, pending = self.inodes[ino]
        if not pending:
            return [durable]
        tail = b"".join(pending)
        bounds = [0]
        for w in pending:
            bounds.append(bounds[-1] + len(w))
        if cuts == "bytes":
            points = set(range(len(tail) + 1))
        elif cuts == "ends":
            points = {0, len(tail)}
        else:
            points = set(bounds)
            for a, b in zip(bounds, bounds[1:]):
                if b - a > 1:
                    points.update((a + 1, (a + b) // 2, b - 1))
        # The extremes go first and last: only synced data, and everything.
        options = [durable + tail[:p] for p in sorted(points) if p < len(tail)]
        if zero_tails:
            options += [durable + tail[:p] + bytes(len(tail) - p) for p in bounds[:-1]]
        options.append(durable + tail)
        return options


def _apply_dir_op(entries: dict, op: tuple) -> None:
    kind = op[0]
    if kind == "create":
        _k, path, ino = op
        entries.setdefault(path, ino)
    elif kind == "rename":
        _k, src, dst, ino = op
        if entries.get(src) == ino:
            del entries[src]
            entries[dst] = ino
    elif kind == "unlink":
        _k, path, ino = op
        if entries.get(path) == ino:
            del entries[path]


class SimFile(AppendFile):
    """A handle open for appending: it follows its inode across renames, like an fd."""

    def __init__(self, fs: "SimFileSystem", path: str, ino: int, offset: int) -> None:
        self.fs = fs
        self.path = path
        self.ino = ino
        self.offset = offset
        self.closed = False

    def write(self, data: bytes) -> None:
        self.fs._write(self, bytes(data))

    def sync(self) -> None:
        self.fs._sync(self)

    def close(self) -> None:
        self.closed = True


class SimFileSystem(FileSystem):
    """An in-memory disk with crash semantics. Thread-safe (the writer uses threads)."""

    def __init__(self, record: bool = False) -> None:
        self._lock = threading.RLock()
        self._inodes: dict[int, _Inode] = {}
        self._next_ino = 1
        self._entries: dict[str, int] = {}
        self._durable: dict[str, int] = {}
        self._dir_ops: list[tuple] = []
        self._dirs: set[str] = set()
        self._faults: list[Fault] = []
        #: Every operation in order: (kind, path, detail).
        self.log: list[tuple[str, str, object]] = []
        #: Mutating operations done so far (the index of the next crash point).
        self.mutations = 0
        #: (kind, path) of each mutating operation; ``ops[k]`` led from
        #: ``history[k]`` to ``history[k + 1]``.
        self.ops: list[tuple[str, str]] = []
        self.history: list[DiskImage] | None = None
        if record:
            self.start_recording()

    # --- construction and inspection (test helpers) -----------------------------

    @classmethod
    def from_files(cls, files: dict[str, bytes], dirs=(), record: bool = False) -> "SimFileSystem":
        """A disk holding ``files`` (path -> bytes), all durable."""
        fs = cls()
        fs._dirs.update(_norm(d) for d in dirs)
        for path, data in files.items():
            path = _norm(path)
            ino = fs._new_inode(bytes(data))
            fs._entries[path] = ino
            fs._durable[path] = ino
            fs._dirs.add(os.path.dirname(path))
        if record:
            fs.start_recording()
        return fs

    def start_recording(self) -> None:
        with self._lock:
            self.history = [self.image()]
            self.ops = []

    def image(self) -> DiskImage:
        with self._lock:
            return DiskImage(
                inodes={i: (n.durable, tuple(n.pending)) for i, n in self._inodes.items()},
                durable=dict(self._durable), entries=dict(self._entries),
                dir_ops=tuple(self._dir_ops), dirs=frozenset(self._dirs))

    def crash_states(self, **kw) -> Iterator["SimFileSystem"]:
        """The disks a crash right now could leave (see :meth:`DiskImage.crash_states`)."""
        return self.image().crash_states(**kw)

    def copy(self) -> "SimFileSystem":
        """A durable copy of what a process sees now (as after a clean shutdown)."""
        return self.image().current_state()

    def files(self, dirpath: str | None = None) -> dict[str, bytes]:
        """Current content of every file (under ``dirpath``), by name."""
        with self._lock:
            out = {}
            for path, ino in self._entries.items():
                if dirpath is None or os.path.dirname(path) == _norm(dirpath):
                    out[path if dirpath is None else os.path.basename(path)] = \
                        self._inodes[ino].content()
            return out

    def fingerprint(self) -> tuple:
        """A hashable summary of every file's name and content."""
        return tuple(sorted(self.files().items()))

    def put(self, path: str, data: bytes) -> None:
        """Replace a file's content durably, outside any crash model (damage, set-up)."""
        with self._lock:
            path = _norm(path)
            ino = self._entries.get(path)
            if ino is None:
                ino = self._new_inode(b"")
                self._entries[path] = ino
                self._durable[path] = ino
                self._dirs.add(os.path.dirname(path))
            node = self._inodes[ino]
            node.durable = bytes(data)
            node.pending = []

    def remove(self, path: str) -> None:
        """Delete a file durably, outside any crash model (damage)."""
        with self._lock:
            path = _norm(path)
            del self._entries[path]
            self._durable.pop(path, None)

    def flip(self, path: str, offset: int, mask: int = 0x01) -> None:
        """Flip bits of one byte, durably (bit rot)."""
        data = bytearray(self.read(path))
        data[offset] ^= mask
        self.put(path, bytes(data))

    def inject(self, kind: str, nth: int = 1, err: int = errno_mod.EIO, path: str = "",
               partial: bool = False, sticky: bool = True) -> Fault:
        """From the ``nth`` ``kind`` operation on a path containing ``path``, raise OSError(err)."""
        fault = Fault(kind, nth, err, path, partial, sticky)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults = []

    # --- internals -----------------------------------------------------------------

    def _new_inode(self, data: bytes) -> int:
        ino = self._next_ino
        self._next_ino += 1
        self._inodes[ino] = _Inode(durable=data)
        return ino

    def _check_fault(self, kind: str, path: str) -> Fault | None:
        for fault in self._faults:
            if fault.kind != kind or fault.path not in path:
                continue
            fault.seen += 1
            if fault.seen == fault.nth or (fault.sticky and fault.seen > fault.nth):
                if not fault.fired:
                    fault.log_index = len(self.log) - 1
                fault.fired += 1
                return fault
        return None

    def _raise(self, fault: Fault, path: str) -> None:
        raise OSError(fault.err, os.strerror(fault.err), path)

    def _mutated(self, kind: str, path: str) -> None:
        self.mutations += 1
        self.ops.append((kind, path))
        if self.history is not None:
            self.history.append(self.image())

    def _entry(self, path: str) -> int:
        ino = self._entries.get(path)
        if ino is None:
            raise FileNotFoundError(errno_mod.ENOENT, os.strerror(errno_mod.ENOENT), path)
        return ino

    def _write(self, f: SimFile, data: bytes) -> None:
        with self._lock:
            if f.closed:
                raise ValueError(f"write to closed file {f.path}")
            self.log.append(("write", f.path, len(data)))
            fault = self._check_fault("write", f.path)
            if fault is not None:
                if fault.partial and len(data) > 1:
                    half = data[:len(data) // 2]
                    self._inodes[f.ino].pending.append(half)
                    f.offset += len(half)
                    self._mutated("write", f.path)
                self._raise(fault, f.path)
            if data:
                self._inodes[f.ino].pending.append(data)
                f.offset += len(data)
            self._mutated("write", f.path)

    def _sync(self, f: SimFile) -> None:
        with self._lock:
            if f.closed:
                raise ValueError(f"sync of closed file {f.path}")
            self.log.append(("sync", f.path, None))
            fault = self._check_fault("sync", f.path)
            if fault is not None:
                self._raise(fault, f.path)
            node = self._inodes[f.ino]
            if node.pending:
                node.durable = node.content()
                node.pending = []
            self._mutated("sync", f.path)

    # --- FileSystem --------------------------------------------------------------

    def create(self, path: str) -> AppendFile:
        path = _norm(path)
        with self._lock:
            self.log.append(("create", path, None))
            if os.path.dirname(path) not in self._dirs:
                raise FileNotFoundError(errno_mod.ENOENT, os.strerror(errno_mod.ENOENT), path)
            if path in self._entries:
                raise FileExistsError(errno_mod.EEXIST, os.strerror(errno_mod.EEXIST), path)
            fault = self._check_fault("create", path)
            if fault is not None:
                self._raise(fault, path)
            ino = self._new_inode(b"")
            self._entries[path] = ino
            self._dir_ops.append(("create", path, ino))
            self._mutated("create", path)
            return SimFile(self, path, ino, 0)

    def open_append(self, path: str, preallocate: int = 0) -> AppendFile:
        # No preallocation here: zero tails are produced by crash_states().
        path = _norm(path)
        with self._lock:
            self.log.append(("open_append", path, None))
            ino = self._entry(path)
            return SimFile(self, path, ino, len(self._inodes[ino].content()))

    def read(self, path: str) -> bytes:
        path = _norm(path)
        with self._lock:
            self.log.append(("read", path, None))
            fault = self._check_fault("read", path)
            if fault is not None:
                self._raise(fault, path)
            return self._inodes[self._entry(path)].content()

    def listdir(self, path: str) -> list[str]:
        path = _norm(path)
        with self._lock:
            if path not in self._dirs:
                raise FileNotFoundError(errno_mod.ENOENT, os.strerror(errno_mod.ENOENT), path)
            return [os.path.basename(p) for p in self._entries if os.path.dirname(p) == path]

    def exists(self, path: str) -> bool:
        path = _norm(path)
        with self._lock:
            return path in self._entries or path in self._dirs

    def rename(self, src: str, dst: str) -> None:
        src, dst = _norm(src), _norm(dst)
        with self._lock:
            self.log.append(("rename", src, dst))
            ino = self._entry(src)
            fault = self._check_fault("rename", dst)
            if fault is not None:
                self._raise(fault, dst)
            del self._entries[src]
            self._entries[dst] = ino
            self._dir_ops.append(("rename", src, dst, ino))
            self._mutated("rename", dst)

    def unlink(self, path: str) -> None:
        path = _norm(path)
        with self._lock:
            self.log.append(("unlink", path, None))
            ino = self._entry(path)
            fault = self._check_fault("unlink", path)
            if fault is not None:
                self._raise(fault, path)
            del self._entries[path]
            self._dir_ops.append(("unlink", path, ino))
            self._mutated("unlink", path)

    def truncate(self, path: str, size: int) -> None:
        path = _norm(path)
        with self._lock:
            self.log.append(("truncate", path, size))
            ino = self._entry(path)
            fault = self._check_fault("truncate", path)
            if fault is not None:
                self._raise(fault, path)
            node = self._inodes[ino]
            node.durable = node.content()[:size]
            node.pending = []
            self._mutated("truncate", path)

    def sync_dir(self, path: str) -> None:
        path = _norm(path)
        with self._lock:
            self.log.append(("sync_dir", path, None))
            fault = self._check_fault("sync_dir", path)
            if fault is not None:
                self._raise(fault, path)
            keep = []
            for op in self._dir_ops:
                target = op[2] if op[0] == "rename" else op[1]
                if os.path.dirname(target) != path:
                    keep.append(op)
            # After the sync the durable entries of this directory are exactly
            # what the process sees in it.
            for p in [p for p in self._durable if os.path.dirname(p) == path]:
                del self._durable[p]
            for p, ino in self._entries.items():
                if os.path.dirname(p) == path:
                    self._durable[p] = ino
            self._dir_ops = keep
            self._mutated("sync_dir", path)

    def makedirs(self, path: str) -> None:
        path = _norm(path)
        with self._lock:
            while path and path not in self._dirs:
                self._dirs.add(path)
                parent = os.path.dirname(path)
                if parent == path:
                    break
                path = parent


# --- building and reading data directories in tests ------------------------------

#: The database id the builders below write (any non-zero value would do).
DB_ID = 0x5EED


def write_wal(fs: FileSystem, dirpath: str, commands: list[list[bytes]], *, db_id: int = DB_ID,
              first_lsn: int = 1,
              per_segment: int | None = None) -> list[tuple[int, str, int, int]]:
    """Log ``commands`` (argv lists, database 0) as LSNs ``first_lsn``..., each synced.

    With ``per_segment`` a new segment starts every that many records.
    Returns (LSN, segment path, offset, batch length) per record (each
    record is its own batch).
    """
    from kvserver.wal import SEGMENT_HEADER_SIZE, WAL, encode_batch, encode_effect, segment_name

    fs.makedirs(dirpath)
    wal = WAL.create(fs, dirpath, db_id, first_lsn)
    out = []
    lsn = first_lsn
    for i, argv in enumerate(commands):
        if per_segment and i and i % per_segment == 0:
            wal.rotate()
        record = encode_batch(lsn, [encode_effect(0, argv)])  # one batch per record, as synced
        if wal.current is None:  # this batch creates the segment
            path, offset = os.path.join(dirpath, segment_name(lsn)), SEGMENT_HEADER_SIZE
        else:
            path, offset = wal.current.path, wal.current.offset
        out.append((lsn, path, offset, len(record)))
        wal.write(record, lsn)
        wal.sync()
        lsn += 1
    wal.close()
    return out


def make_v1(fs: "SimFileSystem", dirpath: str, *, empty_last: bool = False) -> None:
    """Turn a directory into what kvserver wrote before the MANIFEST: version 1
    segments (the records re-encoded in that format, one batch each), no
    MANIFEST, and (``empty_last``) an empty newest segment (the old code
    created each segment with its header only)."""
    import struct
    import zlib

    from kvserver.wal import (MAGIC, SEGMENT_HEADER, SEGMENT_HEADER_SIZE, list_segments,
                              segment_name)

    def header(db_id: int, first: int) -> bytes:
        head = SEGMENT_HEADER.pack(MAGIC, 1, db_id, first)
        return head + struct.pack("<I", zlib.crc32(head))

    fs.remove(os.path.join(dirpath, "MANIFEST"))
    last_end = 1
    db_id = DB_ID
    for first, path in list_segments(fs, dirpath):
        data = fs.read(path)
        db_id = SEGMENT_HEADER.unpack_from(data, 0)[2]
        from kvserver.wal import encode_commit, encode_record, scan_segment
        scan = scan_segment(data, path)
        body = b"".join(encode_record(rec.lsn, db, argv) + encode_commit(rec.lsn, rec.lsn)
                        for rec in scan.records for db, argv in rec.effects)
        fs.put(path, header(db_id, first) + body)
        last_end = scan.last_lsn + 1
    if empty_last:
        fs.put(os.path.join(dirpath, segment_name(last_end)), header(db_id, last_end))


def write_checkpoint(fs: FileSystem, dirpath: str, lsn: int, data: dict[bytes, bytes], *,
                     db_id: int = DB_ID) -> str:
    """Write a checkpoint of database 0 holding ``data`` at ``lsn``. Returns its path."""
    from kvserver.checkpoint import CheckpointWriter, encode_entries
    from kvserver.manifest import read_manifest, write_manifest

    fs.makedirs(dirpath)
    writer = CheckpointWriter(fs, dirpath, db_id, lsn)
    writer.write(encode_entries(0, data, {}, list(data)), len(data))
    writer.commit()
    manifest = read_manifest(fs, dirpath)
    if manifest is not None:  # list it, as the writer does
        manifest.checkpoints = sorted(manifest.checkpoints + [lsn])
        write_manifest(fs, dirpath, manifest)
    return writer.path


def drop_segments_before(fs: FileSystem, dirpath: str, lsn: int, db_id: int = DB_ID) -> None:
    """Remove the segments a checkpoint at ``lsn - 1`` covers, as the writer does
    (the MANIFEST first)."""
    from kvserver.checkpoint import list_checkpoints
    from kvserver.wal import WAL, list_segments

    segs = list_segments(fs, dirpath)
    wal = WAL.open(fs, dirpath, db_id, segs, 0, [c for c, _p in list_checkpoints(fs, dirpath)])
    wal.remove_segments_before(lsn)
    wal.close()


def recover_data(fs: FileSystem, dirpath: str, config: Config | None = None,
                 repair: bool = True):
    """Recover into a fresh Core: (database 0 as a dict, Recovered)."""
    from kvserver.core import Core
    from kvserver.recovery import recover

    core = Core(config or Config(dir=dirpath))
    result = recover(fs, dirpath, core, repair=repair)
    return dict(core.keyspace.dbs[0].data), result


def dump(fs: SimFileSystem, dirpath: str, target: str) -> None:
    """Write the files of a simulated directory to a real one (for the CLI)."""
    os.makedirs(target, exist_ok=True)
    for name, data in fs.files(dirpath).items():
        with open(os.path.join(target, name), "wb") as f:
            f.write(data)


# --- a real server on the simulated disk -------------------------------------------
#
# run_workload() starts a kvserver Server on a SimFileSystem, drives concurrent
# clients and returns a Trace: the disk's history (one image per mutating
# operation), the keyspace after each LSN in the order the server applied the
# commands, and every acknowledgement with the crash point it arrived at.
# Checker then recovers crash states and holds them to the guarantees.

def sim_config(real_dir: str, **changes) -> Config:
    """A Config for a server on the simulated disk at the path ``real_dir``.

    The LOCK file is opened with the real ``os`` (Server._lock), so the
    directory exists for real too; everything else lives in the simulation.
    """
    os.makedirs(real_dir, exist_ok=True)
    return dataclasses.replace(Config(port=0, bind="127.0.0.1", dir=real_dir), **changes)


class Client:
    """A minimal RESP client on asyncio streams (it sends nothing it was not asked to)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.parser = ReplyParser()

    @classmethod
    async def connect(cls, port: int) -> "Client":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    def send(self, *args) -> None:
        self.writer.write(encode_command(list(args)))

    async def reply(self):
        while True:
            value = self.parser.next_reply()
            if value is not NEED_DATA:
                return value
            data = await self.reader.read(65536)
            if not data:
                raise ConnectionError("server closed the connection")
            self.parser.feed(data)

    async def call(self, *args):
        self.send(*args)
        return await self.reply()

    def close(self) -> None:
        self.writer.close()


def apply_model(state: dict, argv) -> None:
    """The plain-dict effect of one client command that changed the keyspace."""
    argv = [a.encode() if isinstance(a, str) else a for a in argv]
    name = argv[0].upper()
    if name == b"SET":
        state[argv[1]] = argv[2]
    elif name == b"INCR":
        state[argv[1]] = b"%d" % (int(state.get(argv[1], b"0")) + 1)
    elif name == b"APPEND":
        state[argv[1]] = state.get(argv[1], b"") + argv[2]
    elif name == b"DEL":
        del state[argv[1]]
    elif name == b"UNITSET":  # the test-only command of test_crash_sim's unit tests
        for i in range(1, len(argv), 2):
            state[argv[i]] = argv[i + 1]
    else:
        raise AssertionError(f"{argv!r} changed the keyspace but has no model")


class Instrument:
    """Records, for one server, each command's applied LSN, in execution order.

    Wraps the command table's functions, so it sees exactly what the
    connections ran and in which order (the WAL's order, if the server is right).
    """

    NAMES = (b"set", b"incr", b"append", b"del", b"get", b"bgsave", b"client")

    def __init__(self) -> None:
        self._core = None
        self._in_unit: list[tuple[int, list]] = []
        self.by_session: dict[int, list[int]] = {}
        #: (LSN, argv, continues the previous command's unit) in apply order.
        self.applied: list[tuple[int, list, bool]] = []
        self._saved: list = []

    @property
    def core(self):
        return self._core

    @core.setter
    def core(self, core) -> None:
        """Watch ``core``'s units too: a command's record gets its LSN when its
        execution unit closes (core.end_unit, after the command function
        returned), so commands run inside a unit are recorded then."""
        self._core = core
        if core is None:
            return
        orig_end = core.end_unit

        def end_unit() -> None:
            try:
                orig_end()
            finally:
                if not core.unit_depth and self._in_unit:
                    # One unit is one reply of one client (a command, or an
                    # EXEC of several): ONE LSN for its session, and every
                    # command after its first is a continuation of the record.
                    lsn = core.persistence.applied_lsn
                    session_id = self._in_unit[0][0]
                    self.by_session.setdefault(session_id, []).append(lsn)
                    for i, (sid, argv) in enumerate(self._in_unit):
                        assert sid == session_id, "two clients' commands in one unit"
                        self.applied.append((lsn, argv, i > 0))
                    self._in_unit = []
        core.end_unit = end_unit

    def __enter__(self) -> "Instrument":
        for name in self.NAMES + (b"unitset",):
            cmd = COMMANDS.get(name)
            if cmd is None:  # (unitset: registered only by the tests that use it)
                continue
            self._saved.append((cmd, cmd.func))
            cmd.func = self._wrap(cmd.func)
        return self

    def __exit__(self, *exc) -> None:
        for cmd, orig in reversed(self._saved):
            cmd.func = orig
        if self._core is not None:
            self._core.__dict__.pop("end_unit", None)  # the method again

    def _wrap(self, orig):
        def run(session, argv):
            try:
                return orig(session, argv)
            finally:
                # Only client commands of our server (not its start-up replay).
                if session.core is self.core and session.core.persistence is not None:
                    if session.core.unit_depth:
                        self._in_unit.append((session.id, list(argv)))
                    else:
                        lsn = session.core.persistence.applied_lsn
                        self.by_session.setdefault(session.id, []).append(lsn)
                        self.applied.append((lsn, list(argv), False))
        return run

    def models(self, base: dict, base_lsn: int) -> list[dict]:
        """The keyspace at each LSN from ``base_lsn`` on (index 0 is ``base``)."""
        state = dict(base)
        models = [dict(state)]
        for lsn, argv, continued in self.applied:
            if continued:
                # The same record as the command before it (inside one EXEC):
                # the model steps once per record, never between its commands.
                assert lsn == base_lsn + len(models) - 1, f"{argv!r} left its unit's record"
                apply_model(state, argv)
                models[-1] = dict(state)
                continue
            if lsn == base_lsn + len(models):
                apply_model(state, argv)
                models.append(dict(state))
            assert lsn == base_lsn + len(models) - 1, f"{argv!r} logged more than one record"
        return models


@dataclass
class Trace:
    """What a workload did: the disk's history, the apply order, every acknowledgement."""

    config: Config
    sim: SimFileSystem
    #: models[n]: database 0 at LSN base_lsn + n (client commands in apply order).
    models: list = field(default_factory=list)
    base_lsn: int = 0
    #: (mutations done when the reply arrived, applied LSN when the command ran).
    acks: list = field(default_factory=list)
    #: (mutations when a GET reply arrived, key, value it returned).
    reads: list = field(default_factory=list)
    #: (argv, error message) of every error reply.
    errors: list = field(default_factory=list)
    #: required[k]: the highest LSN acknowledged before crash point k.
    required: list = field(default_factory=list)
    exit_code: int = 0

    def __repr__(self) -> str:  # the default would print every model and image
        return (f"<Trace {len(self.sim.history or ())} crash points, LSN {self.base_lsn}.."
                f"{self.base_lsn + len(self.models) - 1}, {len(self.acks)} acks, "
                f"{len(self.errors)} errors>")

    @property
    def dir(self) -> str:
        return self.config.dir

    def finish(self) -> None:
        self.acks.sort()
        self.required = []
        best = i = 0
        for k in range(len(self.sim.history or ())):
            # Replies that had arrived once k mutations were done were sent
            # before a crash at point k: their LSNs must survive it.
            while i < len(self.acks) and self.acks[i][0] <= k:
                best = max(best, self.acks[i][1])
                i += 1
            self.required.append(best)

    def points(self, kind: str, name_part: str) -> list[int]:
        """Crash points k just before a ``kind`` operation on a file named like ``name_part``."""
        return [k for k, (op, path) in enumerate(self.sim.ops)
                if op == kind and name_part in os.path.basename(path)]


def client_script(c: int, ops: int, rng: random.Random, bgsave_every: int = 0) -> list[tuple]:
    """One client's commands: its own INCR key, shared APPEND/SET/DEL keys, GETs of anything."""
    script: list[tuple] = []
    for i in range(ops):
        if bgsave_every and i % bgsave_every == bgsave_every - 1:
            script.append(("BGSAVE",))
            continue
        roll = rng.random()
        if roll < 0.25:
            script.append(("INCR", f"n{c}"))
        elif roll < 0.45:
            script.append(("APPEND", f"a{c % 2}", f"<{c}.{i}>"))
        elif roll < 0.65:
            script.append(("SET", f"s{rng.randrange(4)}", f"{c}.{i}"))
        elif roll < 0.75:
            script.append(("DEL", f"s{rng.randrange(4)}"))
        else:
            script.append(("GET", rng.choice([f"s{rng.randrange(4)}", f"n{rng.randrange(4)}",
                                               f"a{rng.randrange(2)}"])))
    return script


async def run_workload(config: Config, sim: SimFileSystem, *, clients: int = 4, ops: int = 30,
                       seed: int = 0, segment_bytes: int = 400, bgsave_every: int = 25,
                       stop_save: bool | None = None, base: dict | None = None,
                       scripts: list | None = None, on_started=None,
                       expect_exit: int = 0, sync_in_thread: bool | None = None) -> Trace:
    """Run a Server on ``sim``, drive concurrent clients (one script each), stop it.

    ``base`` is database 0 as ``sim`` holds it (empty for a fresh disk).
    ``on_started(server)`` runs once the server is up (inject faults there).
    A client stops at its first error reply or closed connection. With
    ``expect_exit`` non-zero the server is expected to stop by itself.
    ``sync_in_thread`` overrides the server's default place for WAL I/O.
    """
    from kvserver.server import Server

    trace = Trace(config, sim)
    if scripts is None:
        rng = random.Random(seed)
        scripts = [client_script(c, ops, random.Random(rng.random()), bgsave_every if c == 0 else 0)
                   for c in range(clients)]
    with Instrument() as inst:
        extra = {} if sync_in_thread is None else {"sync_in_thread": sync_in_thread}
        server = Server(config, fs=sim, **extra)
        inst.core = server.core
        await server.start()
        server.writer.wal.segment_bytes = segment_bytes
        if on_started is not None:
            on_started(server)

        async def run_client(script) -> tuple[int, list]:
            client = await Client.connect(server.port)
            replies: list = []
            try:
                sid = await client.call("CLIENT", "ID")
                replies.append((sim.mutations, ("CLIENT", "ID"), sid))
                for argv in script:
                    try:
                        if argv[0] == "MULTI-EXEC":
                            # One transaction, pipelined: MULTI, the commands, EXEC.
                            # One reply (EXEC's), one LSN (its unit's).
                            client.send("MULTI")
                            for queued in argv[1:]:
                                client.send(*queued)
                            client.send("EXEC")
                            for _ in range(len(argv) + 1):
                                value = await client.reply()
                                if isinstance(value, ReplyError):
                                    break
                            if isinstance(value, list):
                                value = next((v for v in value if isinstance(v, ReplyError)),
                                             value)
                        else:
                            value = await client.call(*argv)
                    except ConnectionError:
                        break
                    if isinstance(value, ReplyError):
                        trace.errors.append((argv, str(value)))
                        break
                    replies.append((sim.mutations, argv, value))
            finally:
                client.close()
            return sid, replies

        results = await asyncio.wait_for(asyncio.gather(*(run_client(s) for s in scripts)), 60)
        if expect_exit == 0:
            await server.stop(stop_save)
        trace.exit_code = await asyncio.wait_for(server.wait_stopped(), 30)
        assert trace.exit_code == expect_exit, trace.errors
    trace.base_lsn = server.recovered.last_lsn
    trace.models = inst.models(base or {}, trace.base_lsn)
    for sid, replies in results:
        lsns = inst.by_session[sid]
        assert len(lsns) >= len(replies)
        for (mutations, argv, value), lsn in zip(replies, lsns):
            trace.acks.append((mutations, lsn))
            if argv[0] == "GET":
                trace.reads.append((mutations, argv[1].encode(), value))
    trace.finish()
    return trace


class Checker:
    """Recovers crash states of a Trace and holds them to the guarantees (cached by content)."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace
        self.cache: dict = {}
        self.states = 0

    def outcome(self, state: SimFileSystem) -> tuple[dict, int]:
        """(database 0, last LSN) recovered from ``state``; a refusal fails the test."""
        key = state.fingerprint()
        if key not in self.cache:
            try:
                data, rec = recover_data(state, self.trace.dir, self.trace.config)
            except CorruptionError as exc:
                # No traceback: the message says it all (and pytest on 3.11.7
                # can crash rendering this one).
                pytest.fail(f"a reachable crash state refused to recover: {exc}\n"
                            f"files: {sorted(n for n, _ in key)}", pytrace=False)
            self.cache[key] = (data, rec.last_lsn)
        return self.cache[key]

    def check_state(self, state: SimFileSystem, required: int, where: str) -> None:
        """Recovered state holds LSN ``required`` and equals the history at some LSN."""
        trace = self.trace
        data, last = self.outcome(state)
        self.states += 1
        assert last >= required, (
            f"crash {where}: recovered LSN {last} but LSN {required} was acknowledged")
        index = last - trace.base_lsn
        assert 0 <= index < len(trace.models), f"crash {where}: LSN {last} was never applied"
        assert data == trace.models[index], (
            f"crash {where}: recovered state is not the history at LSN {last}")

    def check_point(self, k: int, limit: int = 300, **kw) -> None:
        trace = self.trace
        where = f"after {k} ops ({trace.sim.ops[k - 1] if k else 'start'})"
        for state in trace.sim.history[k].crash_states(limit=limit, seed=k, **kw):
            self.check_state(state, trace.required[k], where)

    def check_points(self, points, **kw) -> None:
        for k in sorted(set(points)):
            self.check_point(k, **kw)
