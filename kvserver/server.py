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
import ipaddress
import logging
import os
import socket
import time
from typing import Any

from . import REDIS_COMPAT_VERSION, __version__
from .commands import renamed_table
from .config import Config
from .connection import Connection, hot_table
from .core import Core
from .errors import CorruptionError, StorageError
from .fs import FileSystem, OSFileSystem
from .recovery import Progress, Recovered, recover_steps
from .tls import HANDSHAKE_TIMEOUT, TLSConfigError, server_context
from .wal import WAL
from .writer import Writer

log = logging.getLogger("kvserver")

LOCK_NAME = "LOCK"
#: Most keys expired per active expiry slice (Redis: 20 per sample, looping
#: while a quarter were expired); the cycle also stops after a quarter of
#: its period, so expiry never takes more than ~25% of the loop.
EXPIRE_SLICE_KEYS = 200
#: Fewest clients the clients cycle looks at per tick (Redis's CLIENTS_CRON_MIN_ITERATIONS);
#: otherwise it takes clients/hz per tick, so each is seen about once a second.
CLIENTS_CRON_MIN = 5
_MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"
#: Redis 7.0's reply, byte for byte, to a non-loopback client in protected mode.
_PROTECTED_MODE_REPLY = (
    b"-DENIED Redis is running in protected mode because protected mode is enabled and no "
    b"password is set for the default user. In this mode connections are only accepted from "
    b"the loopback interface. If you want to connect from external computers to Redis you may "
    b"adopt one of the following solutions: 1) Just disable protected mode sending the command "
    b"'CONFIG SET protected-mode no' from the loopback interface by connecting to Redis from "
    b"the same host the server is running, however MAKE SURE Redis is not publicly accessible "
    b"from internet if you do so. Use CONFIG REWRITE to make this change permanent. 2) "
    b"Alternatively you can just disable the protected mode by editing the Redis configuration "
    b"file, and setting the protected mode option to 'no', and then restarting the server. 3) "
    b"If you started the server manually just for testing, restart it with the "
    b"'--protected-mode no' option. 4) Setup a an authentication password for the default "
    b"user. NOTE: You only need to do one of the above things in order for the server to start "
    b"accepting connections from the outside.\r\n")


def is_loopback(peer: Any) -> bool:
    """True for a Unix socket peer or a loopback IP (127.0.0.0/8, ::1, ::ffff:127.x)."""
    if not (isinstance(peer, tuple) and peer and isinstance(peer[0], str)):
        return True  # Unix socket: the peer is on this host
    try:
        ip = ipaddress.ip_address(peer[0].split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def protected_mode_denies(config: Config, peer: Any) -> bool:
    """Redis's protected mode: with no password set, only loopback clients get in.

    ``peer`` is the transport's ``peername`` (a tuple for TCP, a string or
    None for a Unix socket).
    """
    return config.protected_mode and not config.requirepass and not is_loopback(peer)


def set_keepalive(sock: socket.socket, interval: int) -> None:
    """Redis's anetKeepAlive: probe after ``interval`` idle seconds, then every
    interval/3, and give up after 3 unanswered probes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 3))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


class StartupError(Exception):
    """The server cannot start (data dir locked, corrupt data, cannot bind)."""


class _NotYetWriter:
    """Stands in for the writer while loading: nothing is written, nothing waits."""

    applied_lsn = 0
    durable_lsn = 0
    holds_replies = False
    failed = None

    def when_durable(self, lsn: int, callback: Any) -> None:
        callback(None)

    def commit_now(self) -> None:
        pass

    def fail_stop(self, reason: str) -> None:
        raise StorageError(reason)  # nothing can write while loading; a bug here is fatal


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
        #: The command table clients see (rename-command applied); set by start().
        self.commands = renamed_table(())
        #: Its hot commands (Connection's fast path), by the names in ``commands``.
        self.hot_commands = hot_table(self.commands)
        self._cron_batch: list = []

    # --- clients ---------------------------------------------------------------

    def client_connected(self, conn: Connection) -> None:
        core = self.core
        cfg = core.config
        transport = conn.transport
        assert transport is not None
        if len(core.clients) >= cfg.maxclients or self._stopping:
            reply = b"-ERR server is shutting down\r\n" if self._stopping else _MAX_CLIENTS_REPLY
        elif protected_mode_denies(cfg, transport.get_extra_info("peername")):
            reply = _PROTECTED_MODE_REPLY
        else:
            reply = None
        if reply is not None:
            core.stats.rejected_connections += 1
            transport.write(reply)
            transport.close()
            return
        sock = transport.get_extra_info("socket")
        if cfg.tcp_keepalive and sock is not None and sock.family in (socket.AF_INET,
                                                                        socket.AF_INET6):
            try:
                set_keepalive(sock, cfg.tcp_keepalive)
            except OSError:
                pass  # the peer may already be gone; the connection will notice
        core.stats.total_connections += 1
        core.clients[conn.id] = conn

    def client_disconnected(self, conn: Connection) -> None:
        self.core.clients.pop(conn.id, None)

    # --- start -----------------------------------------------------------------

    async def start(self) -> None:
        """Lock the data dir, listen, recover, start the writer. Raises StartupError."""
        cfg = self.config
        try:
            self.commands = renamed_table(cfg.rename_commands)
            self.hot_commands = hot_table(self.commands)
        except KeyError as exc:
            raise StartupError(f"rename-command: unknown command '{exc.args[0]}'") from None
        try:
            ssl_context = server_context(cfg) if cfg.tls_port else None
        except TLSConfigError as exc:
            raise StartupError(str(exc)) from None
        self.fs.makedirs(cfg.dir)
        self._lock()
        loop = asyncio.get_running_loop()
        try:
            await self._listen(loop, ssl_context)
        except OSError as exc:
            await self._close_listeners()
            self._unlock()
            raise StartupError(f"could not listen on {cfg.bind}:{cfg.port}"
                               f"{f' / TLS port {cfg.tls_port}' if cfg.tls_port else ''}: "
                               f"{exc.strerror}") from None
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

    async def _listen(self, loop: asyncio.AbstractEventLoop, ssl_context: Any = None) -> None:
        cfg = self.config
        hosts = cfg.bind.split()
        server = await loop.create_server(lambda: Connection(self), hosts, cfg.port,
                                          reuse_address=True, backlog=511)
        self._servers.append(server)
        self.port = server.sockets[0].getsockname()[1]
        if ssl_context is not None:
            tserver = await loop.create_server(lambda: Connection(self), hosts, cfg.tls_port,
                                               reuse_address=True, backlog=511, ssl=ssl_context,
                                               ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
            self._servers.append(tserver)
        if cfg.unixsocket:
            if os.path.exists(cfg.unixsocket):
                os.unlink(cfg.unixsocket)
            userver = await loop.create_unix_server(lambda: Connection(self), cfg.unixsocket)
            os.chmod(cfg.unixsocket, cfg.unixsocketperm)
            self._servers.append(userver)

    async def _recover(self) -> Recovered:
        started = time.monotonic()
        last_report = started - 1.0  # the first progress line comes at once
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
            return WAL.open(self.fs, self.config.dir, rec.db_id, rec.segments, rec.last_lsn + 1,
                            rec.checkpoints)
        return WAL.create(self.fs, self.config.dir, rec.db_id, rec.last_lsn + 1,
                          checkpoints=rec.checkpoints)

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
        """The periodic cycle (Redis's serverCron): clients, memory, then active expiry."""
        ks = self.core.keyspace
        while True:
            period = 1.0 / self.core.config.hz
            await asyncio.sleep(period)
            now = time.monotonic()
            self.core.ops_samples.append((now, self.core.stats.total_commands))
            self._clients_cron(now)
            self.core.sample_memory()
            deadline = now + period / 4
            while ks.active_expire_cycle(EXPIRE_SLICE_KEYS) == EXPIRE_SLICE_KEYS:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0)

    def _clients_cron(self, now: float) -> None:
        """Close idle clients (``timeout``) and clients over their output buffer soft limit.

        Like Redis's clientsCron, each tick looks at clients/hz of them (at
        least CLIENTS_CRON_MIN), so every client is seen about once a second
        and no tick does unbounded work. Clients that connect during a round
        are seen in the next one.
        """
        core = self.core
        cfg = core.config
        if not self._cron_batch:
            if not cfg.timeout and not cfg.normal_output_limits[1]:
                return
            self._cron_batch = list(core.clients.values())
        batch = self._cron_batch
        count = max(len(core.clients) // cfg.hz, CLIENTS_CRON_MIN)
        for _ in range(min(count, len(batch))):
            conn = batch.pop()
            if isinstance(conn, Connection) and not conn._closed:
                conn.cron(now, cfg)

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
