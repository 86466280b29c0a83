"""The file layer the WAL and checkpoints run on.

Everything durable goes through a :class:`FileSystem`, so the crash tests can
swap in a simulated one that records writes, syncs, renames and unlinks and
then materialises the states a crash could leave (tests/simfs.py). The real
one, :class:`OSFileSystem`, is a thin wrapper over ``os``.

Errors are raised as ``OSError`` exactly as the OS reports them; the callers
turn them into fail-stop :class:`~kvserver.errors.StorageError`.
"""

from __future__ import annotations

import os


class AppendFile:
    """A file open for appending. ``offset`` is where the next write lands."""

    path: str
    offset: int

    def write(self, data: bytes) -> None:
        """Write all of ``data`` or raise OSError."""
        raise NotImplementedError

    def sync(self) -> None:
        """Make every byte written so far durable (fdatasync)."""
        raise NotImplementedError

    def seal(self) -> None:
        """Drop space reserved past ``offset`` (see ``open_append``'s ``preallocate``), durably."""

    def close(self) -> None:
        raise NotImplementedError


class FileSystem:
    """The operations durability needs, nothing more."""

    def create(self, path: str) -> AppendFile:
        """Create a new, empty file (fails if it exists) open for appending."""
        raise NotImplementedError

    def open_append(self, path: str, preallocate: int = 0) -> AppendFile:
        """Open an existing file for appending at its end.

        With ``preallocate``, the file system may reserve space ahead of the
        writes in steps of that many bytes (it reads as zeros until written):
        then a sync after a write need not also commit a new file size, which
        makes it cheaper. ``seal`` gives the unused space back.
        """
        raise NotImplementedError

    def read(self, path: str) -> bytes:
        raise NotImplementedError

    def listdir(self, path: str) -> list[str]:
        raise NotImplementedError

    def exists(self, path: str) -> bool:
        raise NotImplementedError

    def rename(self, src: str, dst: str) -> None:
        """Atomically replace ``dst`` with ``src`` (durable after sync_dir)."""
        raise NotImplementedError

    def unlink(self, path: str) -> None:
        raise NotImplementedError

    def truncate(self, path: str, size: int) -> None:
        """Cut a file to ``size`` bytes and make that durable."""
        raise NotImplementedError

    def sync_dir(self, path: str) -> None:
        """Make renames, creations and unlinks in directory ``path`` durable."""
        raise NotImplementedError

    def makedirs(self, path: str) -> None:
        raise NotImplementedError


class _OSAppendFile(AppendFile):
    """Writes with ``pwrite`` at ``offset``: the file may extend past it (preallocated)."""

    __slots__ = ("path", "offset", "fd", "allocated", "step")

    def __init__(self, path: str, fd: int, offset: int, step: int = 0) -> None:
        self.path = path
        self.fd = fd
        self.offset = offset
        self.allocated = offset
        self.step = step
        if step:
            self._reserve(offset)

    def write(self, data: bytes) -> None:
        if self.step and self.offset + len(data) > self.allocated:
            self._reserve(self.offset + len(data))
        n = os.pwrite(self.fd, data, self.offset)
        self.offset += n
        if n < len(data):  # rare: a signal or a full disk cut the write short
            view = memoryview(data)[n:]
            while view:
                n = os.pwrite(self.fd, view, self.offset)
                self.offset += n
                view = view[n:]

    def _reserve(self, end: int) -> None:
        """Allocate the file up to the next multiple of ``step`` past ``end``.

        ~10 µs on ext4 whatever the size (only extents change). Where the file
        system cannot (EOPNOTSUPP, or no space left), stop trying for this
        file: the writes themselves then extend it, as without preallocation.
        """
        target = (end // self.step + 1) * self.step
        try:
            os.posix_fallocate(self.fd, self.allocated, target - self.allocated)
        except OSError:
            self.step = 0
            return
        self.allocated = target

    def sync(self) -> None:
        os.fdatasync(self.fd)

    def seal(self) -> None:
        if os.fstat(self.fd).st_size > self.offset:
            os.ftruncate(self.fd, self.offset)
            os.fsync(self.fd)
        self.allocated = self.offset
        self.step = 0

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class OSFileSystem(FileSystem):
    """The real disk."""

    def create(self, path: str) -> AppendFile:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        return _OSAppendFile(path, fd, 0)

    def open_append(self, path: str, preallocate: int = 0) -> AppendFile:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            return _OSAppendFile(path, fd, os.fstat(fd).st_size, preallocate)
        except BaseException:
            os.close(fd)
            raise

    def read(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()

    def listdir(self, path: str) -> list[str]:
        return os.listdir(path)

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def rename(self, src: str, dst: str) -> None:
        os.replace(src, dst)

    def unlink(self, path: str) -> None:
        os.unlink(path)

    def truncate(self, path: str, size: int) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_dir(self, path: str) -> None:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def makedirs(self, path: str) -> None:
        os.makedirs(path, exist_ok=True)
