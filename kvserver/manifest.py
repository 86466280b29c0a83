"""``MANIFEST``: the files a data directory must hold, so a missing one is noticed.

Segments are chained by LSN, so a missing segment in the middle shows up as
a gap; but nothing after the newest segment says it existed, and a directory
emptied of its files looks new. The manifest closes that: it names the
database id, every WAL segment (by first LSN) and every checkpoint (by LSN)
that must exist. Recovery refuses to start when a listed file is missing.

Format (text, so an operator can read it)::

    KVSMANIFEST 1
    db <database id, hex>
    segment <first LSN>        (one line per segment, oldest first)
    checkpoint <LSN>           (one line per checkpoint, oldest first)
    crc <CRC32 of every byte before this line, hex>

It is rewritten atomically (``MANIFEST.tmp``, fsync, rename, directory fsync)
whenever the set of files changes: when a segment is created (after the
segment's own rename is durable), when a checkpoint is renamed into place,
and *before* files are deleted. So at every crash point each listed file
exists; a file that exists but is not listed is one whose creation the
crash interrupted (its records were never acknowledged: acknowledgement
waits for the manifest) or one whose deletion did (it is no longer needed).
Recovery accepts both and lists what it keeps when it starts.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass, field

from .errors import CorruptionError
from .fs import FileSystem

NAME = "MANIFEST"
MAGIC = "KVSMANIFEST 1"


@dataclass
class Manifest:
    db_id: int
    segments: list[int] = field(default_factory=list)
    checkpoints: list[int] = field(default_factory=list)

    def encode(self) -> bytes:
        lines = [MAGIC, f"db {self.db_id:x}"]
        lines += [f"segment {lsn}" for lsn in self.segments]
        lines += [f"checkpoint {lsn}" for lsn in self.checkpoints]
        body = ("\n".join(lines) + "\n").encode()
        return body + b"crc %08x\n" % zlib.crc32(body)


def path_of(dirpath: str) -> str:
    return os.path.join(dirpath, NAME)


def read_manifest(fs: FileSystem, dirpath: str) -> Manifest | None:
    """The directory's manifest, None if it has none. Raises CorruptionError if damaged."""
    path = path_of(dirpath)
    if not fs.exists(path):
        return None
    data = fs.read(path)
    cut = data.rfind(b"crc ")
    if cut < 0 or not data.endswith(b"\n") or \
            data[cut:] != b"crc %08x\n" % zlib.crc32(data[:cut]):
        raise CorruptionError("MANIFEST fails its checksum (truncated or damaged)", path=path,
                              offset=max(cut, 0), lsn=None)
    lines = data[:cut].decode("ascii", "replace").splitlines()
    if not lines or lines[0] != MAGIC:
        raise CorruptionError("MANIFEST has an unknown format", path=path, offset=0, lsn=None)
    manifest = Manifest(db_id=0)
    offset = len(lines[0]) + 1
    for line in lines[1:]:
        key, _, value = line.partition(" ")
        try:
            if key == "db":
                manifest.db_id = int(value, 16)
            elif key == "segment":
                manifest.segments.append(int(value))
            elif key == "checkpoint":
                manifest.checkpoints.append(int(value))
            else:
                raise ValueError(key)
        except ValueError:
            raise CorruptionError(f"MANIFEST line {line!r} is not understood", path=path,
                                  offset=offset, lsn=None) from None
        offset += len(line) + 1
    return manifest


def write_manifest(fs: FileSystem, dirpath: str, manifest: Manifest) -> None:
    """Replace the manifest atomically: tmp, fsync, rename, directory fsync. OSError propagates."""
    path = path_of(dirpath)
    tmp = path + ".tmp"
    if fs.exists(tmp):
        fs.unlink(tmp)
    f = fs.create(tmp)
    try:
        f.write(manifest.encode())
        f.sync()
    finally:
        f.close()
    fs.rename(tmp, path)
    fs.sync_dir(dirpath)
