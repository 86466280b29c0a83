"""The listener: start (lock, listen, recover, write), serve, stop.

:class:`Server` takes a Config and is driven by events, never by polling:
``await server.start()`` binds (port 0 picks a free port, see
:attr:`Server.port`), accepts clients at once (they get ``-LOADING`` while
the data loads), recovers, and starts the writer; ``await server.stop()``
stops accepting, lets in-flight requests finish and become durable,
optionally checkpoints, and closes everything. Tests run real servers this
way, many in one process.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from typing import Any

from . import REDIS_COMPAT_VERSION, __version__
from .config import Config
from .connection import Connection
from .core import Core
from .errors import CorruptionError, StorageError
from .fs import FileSystem, OSFileSystem
from .recovery import Progress, Recovered, recover_steps
from .wal import WAL
from .writer import Writer

log = logging.getLogger("kvserver")

LOCK_NAME = "LOCK"
#: Most keys expired per active expiry slice (Redis: 20 per sample, looping
#: while a quarter were expired); the cycle also stops after a quarter of
#: its period, so expiry never takes more than ~25% of the loop.
EXPIRE_SLICE_KEYS = 200
_MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"


class StartupError(Exception):
    """The server cannot start (data dir locked, corrupt data, cannot bind)."""


class _NotYetWriter:
    """Stands in for the writer while loading: nothing is written, nothing waits."""

    applied_lsn = 0
    durable_lsn = 0
    holds_replies = False

    def when_durable(self, lsn: int, callback: Any) -> None:
        callback(None)


class Server:
    def __init__(self, config: Config, fs: FileSystem | None = None,
                 sync_in_thread: bool = False) -> None:
        self.config = config
        self.fs = fs or OSFileSystem()
        self.sync_in_thread = sync_in_thread
        self.core = Core(config)
        self.core.request_shutdown = self.request_shutdown
        self.writer: Any = _NotYetWriter()
        self.recovered: Recovered | None = None
        self.exit_code = 0
        self._servers: list[asyncio.AbstractServer] = []
        self._lock_fd: int | None = None
        self._expire_task: asyncio.Task | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._shutdown_task: asyncio.Task | None = None
        self.port: int = config.port

    # --- clients ---------------------------------------------------------------

    def client_connected(self, conn: Connection) -> None:
        core = self.core
        if len(core.clients) >= core.config.maxclients or self._stopping:
            core.stats.rejected_connections += 1
            assert conn.transport is not None
            conn.transport.write(_MAX_CLIENTS_REPLY if not self._stopping
                                 else b"-ERR server is shutting down\r\n")
            conn.transport.close()
            return
        core.stats.total_connections += 1
        core.clients[conn.id] = conn

    def client_disconnected(self, conn: Connection) -> None:
        self.core.clients.pop(conn.id, None)

    # --- start -----------------------------------------------------------------

    async def start(self) -> None:
        """Lock the data dir, listen, recover, start the writer. Raises StartupError."""
        cfg = self.config
        self.fs.makedirs(cfg.dir)
        self._lock()
        loop = asyncio.get_running_loop()
        try:
            await self._listen(loop)
        except OSError as exc:
            self._unlock()
            raise StartupError(f"could not listen on {cfg.bind}:{cfg.port}: {exc.strerror}") from None
        self.core.tcp_port = self.port
        log.info("kvserver %s (Redis %s compatible) pid %d listening on %s port %d, dir %s, "
                 "appendfsync %s", __version__, REDIS_COMPAT_VERSION, os.getpid(), cfg.bind,
                 self.port, os.path.abspath(cfg.dir), cfg.appendfsync)
        self.core.loading = True
        try:
            recovered = await self._recover()
            wal = self._open_wal(recovered)
        except (CorruptionError, StorageError, OSError) as exc:
            await self._close_listeners()
            self._unlock()
            hint = (f"; 'kvserver check {cfg.dir}' shows what is on disk"
                    if isinstance(exc, CorruptionError) and "kvserver check" not in str(exc) else "")
            raise StartupError(f"{exc}{hint}") from None
        self.recovered = recovered
        writer = Writer(self.core, self.fs, cfg.dir, wal, recovered.last_lsn,
                        checkpoint_lsn=recovered.checkpoint_lsn,
                        checkpoint_time=(recovered.checkpoint_created_ms / 1000
                                         if recovered.checkpoint_created_ms else None),
                        sync_in_thread=self.sync_in_thread, on_fatal=self._on_fatal)
        self.writer = writer
        for conn in self.core.clients.values():
            conn.writer = writer  # type: ignore[attr-defined]
        self.core.log_sink = writer.append
        self.core.persistence = writer
        writer.start()
        self.core.loading = False
        self._expire_task = loop.create_task(self._active_expire(), name="kvserver-expire")

    async def _listen(self, loop: asyncio.AbstractEventLoop) -> None:
        cfg = self.config
        hosts = cfg.bind.split()
        server = await loop.create_server(lambda: Connection(self), hosts, cfg.port,
                                          reuse_address=True, backlog=511)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        if cfg.unixsocket:
            if os.path.exists(cfg.unixsocket):
                os.unlink(cfg.unixsocket)
            userver = await loop.create_unix_server(lambda: Connection(self), cfg.unixsocket)
            os.chmod(cfg.unixsocket, cfg.unixsocketperm)
            self._servers.append(userver)

    async def _recover(self) -> Recovered:
        started = time.monotonic()
        last_report = started
        for step in recover_steps(self.fs, self.config.dir, self.core):
            if isinstance(step, Progress):
                self.core.loading_progress = {"records": step.records, "bytes": step.bytes,
                                              "percent": step.percent, "phase": step.phase}
                now = time.monotonic()
                if now - last_report >= 1.0:
                    last_report = now
                    log.info("loading: %s, %d records, %.1f MB, %.0f%%", step.phase,
                             step.records, step.bytes / 1e6, step.percent)
                await asyncio.sleep(0)  # let clients in (they get -LOADING)
            else:
                recovered = step
        if recovered.fresh:
            log.info("new data directory %s (database id %x)", self.config.dir, recovered.db_id)
        else:
            log.info("loaded in %.3f s: checkpoint LSN %d (%d keys), %d WAL records replayed, "
                     "last LSN %d", time.monotonic() - started, recovered.checkpoint_lsn,
                     recovered.checkpoint_entries, recovered.records_replayed,
                     recovered.last_lsn)
        return recovered

    def _open_wal(self, rec: Recovered) -> WAL:
        if rec.segments:
            return WAL.open(self.fs, self.config.dir, rec.db_id, rec.segments)
        return WAL.create(self.fs, self.config.dir, rec.db_id, rec.last_lsn + 1)

    def _lock(self) -> None:
        path = os.path.join(self.config.dir, LOCK_NAME)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StartupError(f"data directory {os.path.abspath(self.config.dir)} is in use by "
                               f"another kvserver (pid {holder}); lock file {path}") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    async def _active_expire(self) -> None:
        ks = self.core.keyspace
        while True:
            period = 1.0 / self.core.config.hz
            await asyncio.sleep(period)
            now = time.monotonic()
            self.core.ops_samples.append((now, self.core.stats.total_commands))
            deadline = now + period / 4
            while ks.active_expire_cycle(EXPIRE_SLICE_KEYS) == EXPIRE_SLICE_KEYS:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0)

    # --- stop ------------------------------------------------------------------

    def request_shutdown(self, save: bool | None = None, exit_code: int = 0) -> None:
        """Begin a graceful stop (SHUTDOWN, SIGTERM). Idempotent."""
        if self._shutdown_task is None:
            self.exit_code = exit_code
            self._shutdown_task = asyncio.get_running_loop().create_task(self.stop(save))

    def _on_fatal(self, exc: StorageError) -> None:
        log.critical("fatal storage error, exiting: %s", exc)
        self.request_shutdown(save=False, exit_code=1)

    async def wait_stopped(self) -> int:
        """Wait until the server has stopped; returns the exit code."""
        await self._stopped.wait()
        return self.exit_code

    async def _close_listeners(self) -> None:
        for server in self._servers:
            server.close()
        self._servers = []

    async def stop(self, save: bool | None = None) -> None:
        """Stop accepting, finish in-flight requests, optionally checkpoint, close."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        log.info("shutting down (save=%s)", save)
        # Stop accepting new clients. (Server.wait_closed() would wait for
        # every open connection to end, which is not what we want here.)
        for server in self._servers:
            server.close()
        if self._expire_task is not None:
            self._expire_task.cancel()
        if isinstance(self.writer, Writer):
            checkpoint = self.config.checkpoint_on_shutdown if save is None else save
            try:
                await self.writer.close(checkpoint=checkpoint and self.writer.failed is None)
            except (StorageError, OSError) as exc:
                log.critical("error while closing the WAL: %s", exc)
                self.exit_code = 1
            if self.writer.failed is not None:
                self.exit_code = 1
        for conn in list(self.core.clients.values()):
            if isinstance(conn, Connection):
                conn.kill()
        if self.config.unixsocket and os.path.exists(self.config.unixsocket):
            try:
                os.unlink(self.config.unixsocket)
            except OSError:
                pass
        self._unlock()
        log.info("kvserver is now ready to exit, bye bye...")
        self._stopped.set()
