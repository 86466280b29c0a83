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
import errno
import fcntl
import ipaddress
import logging
import os
import resource
import socket
import ssl
import time
from dataclasses import replace
from typing import Any

from . import REDIS_COMPAT_VERSION, __version__
from .commands import TABLE, renamed_table
from .config import Config
from .connection import Connection
from .dispatch import Dispatcher
from .core import Core
from .errors import CorruptionError, StorageError
from .exitcodes import EXIT_DATA, EXIT_FAILURE, EXIT_USAGE
from .fdlimit import FileLimitError, fit_maxclients
from .fs import FileSystem, OSFileSystem
from .recovery import Progress, Recovered, recover_steps
from .redis_directives import REDIS_COMMANDS
from .tls import HANDSHAKE_TIMEOUT, TLSConfigError, serve_tls, server_context
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
#: Errors that make an optional ("-addr") bind address skippable, as in
#: Redis's anetTcpServer handling of "-" addresses.
_SKIPPABLE_BIND_ERRORS = (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT,
                          errno.ENOPROTOOPT, errno.ESOCKTNOSUPPORT, errno.EOPNOTSUPP)
_MAX_CLIENTS_REPLY = b"-ERR max number of clients reached\r\n"
_SHUTTING_DOWN_REPLY = b"-ERR server is shutting down\r\n"
#: Listen queue length (Redis's tcp-backlog default).
LISTEN_BACKLOG = 511
#: Most connections taken per wakeup of a listener (Redis's
#: MAX_ACCEPTS_PER_CALL), so a flood of connects cannot starve the clients
#: already connected.
MAX_ACCEPTS_PER_CALL = 1000
#: When accept() fails (EMFILE, ENFILE, ENOBUFS, ENOMEM...) the listening
#: socket stays readable, so retrying at once would spin: accepting pauses
#: this long, doubling up to ACCEPT_PAUSE_MAX while it keeps failing, back to
#: the minimum after the next success.
ACCEPT_PAUSE_MIN = 0.01
ACCEPT_PAUSE_MAX = 1.0
#: accept() failures are logged at most once per this many seconds, with a count.
ACCEPT_ERROR_LOG_PERIOD = 60.0
#: Once this many connections have gone since the most there were, the
#: server's cycle hands free heap memory back to the system (malloc_trim):
#: thousands of short-lived connections (a flood of TLS handshakes) otherwise
#: leave the heap fragmented and the RSS high long after they are gone.
TRIM_AFTER_CONNECTIONS_GONE = 256
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


def listen_addresses(bind: str) -> tuple[list[str], list[str]]:
    """(required, optional) addresses for a ``bind`` value, read as Redis 7 reads it.

    ``-addr`` is optional (skipped if it cannot be used), ``*`` is every IPv4
    address and ``::*`` every IPv6 one, and an empty ``bind`` means
    ``* -::*``, as in Redis (protected mode still guards it).
    """
    words = bind.split() or ["*", "-::*"]
    wild = {"*": "0.0.0.0", "::*": "::"}
    required = [wild.get(a, a) for a in words if not a.startswith("-")]
    optional = [wild.get(a[1:], a[1:]) for a in words if a.startswith("-")]
    return required, optional


def set_keepalive(sock: socket.socket, interval: int) -> None:
    """Redis's anetKeepAlive: probe after ``interval`` idle seconds, then every
    interval/3, and give up after 3 unanswered probes."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, interval)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, max(1, interval // 3))
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)


def _load_malloc_trim() -> Any:
    """glibc's malloc_trim, or None (another libc, no ctypes)."""
    try:
        import ctypes
        trim = ctypes.CDLL(None).malloc_trim
    except (ImportError, OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_malloc_trim = _load_malloc_trim()


def _nofile() -> int | str:
    try:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except OSError:
        return "unknown"


class _Listener:
    """A listening socket, and the TLS context of its clients (None: plain)."""

    __slots__ = ("sock", "tls")

    def __init__(self, sock: socket.socket, tls: ssl.SSLContext | None) -> None:
        self.sock = sock
        self.tls = tls


def _bind_tcp(hosts: list[str], port: int, tls: ssl.SSLContext | None,
              backlog: int = LISTEN_BACKLOG) -> list[_Listener]:
    """Listen on every address of ``hosts`` (one port for all, chosen by the first
    bind when ``port`` is 0) with a listen queue of ``backlog`` (tcp-backlog).
    Raises OSError; sockets bound so far are closed."""
    listeners: list[_Listener] = []
    seen = set()
    try:
        for host in hosts or [None]:
            for family, kind, proto, _, addr in socket.getaddrinfo(
                    host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
                if (family, addr) in seen:
                    continue
                seen.add((family, addr))
                sock = socket.socket(family, kind, proto)
                listeners.append(_Listener(sock, tls))
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                if port == 0 and len(listeners) > 1:
                    addr = (addr[0], listeners[0].sock.getsockname()[1], *addr[2:])
                sock.bind(addr)
                sock.listen(backlog)
                sock.setblocking(False)
    except BaseException:
        for listener in listeners:
            listener.sock.close()
        raise
    return listeners


class StartupError(Exception):
    """The server cannot start (data dir locked, corrupt data, cannot bind).

    ``exit_code`` is what the process exits with: EXIT_DATA when the data
    is damaged (restarting will not help), EXIT_FAILURE otherwise.
    """

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code


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
        self._listeners: list[_Listener] = []
        # Accepted connections that are not clients yet (TLS before its
        # handshake, any socket before connection_made): they count against
        # maxclients. One token each; _unregistered maps a Connection to its own.
        self._pending: set[object] = set()
        self._unregistered: dict[Connection, object] = {}
        self._starting: set[asyncio.Task] = set()
        self._accept_pause = ACCEPT_PAUSE_MIN
        self._accept_resume: asyncio.TimerHandle | None = None
        self._accept_error_logged = -ACCEPT_ERROR_LOG_PERIOD
        self._accept_errors_unlogged = 0
        #: The most connections (clients + pending) since the heap was last trimmed.
        self._connections_peak = 0
        self._trim_due = False
        self._lock_fd: int | None = None
        self._lock_created = False
        self._expire_task: asyncio.Task | None = None
        self._stopped = asyncio.Event()
        self._stopping = False
        self._shutdown_task: asyncio.Task | None = None
        self.port: int = config.port
        #: The command table clients see (rename-command applied); set by start().
        self.commands = renamed_table(())
        #: Runs every client's commands against that table (kvserver.dispatch).
        self.dispatcher = Dispatcher(self.core, self.commands)
        self._cron_batch: list = []

    # --- clients ---------------------------------------------------------------

    def client_connected(self, conn: Connection) -> None:
        core = self.core
        cfg = core.config
        transport = conn.transport
        assert transport is not None
        token = self._unregistered.pop(conn, None)
        self._pending.discard(token)
        # Admission was decided at accept(); this catches a maxclients lowered since.
        if len(core.clients) + len(self._pending) >= cfg.maxclients or self._stopping:
            reply = _SHUTTING_DOWN_REPLY if self._stopping else _MAX_CLIENTS_REPLY
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
        core.clients[conn.client.id] = conn.client

    def client_disconnected(self, conn: Connection) -> None:
        self.core.clients.pop(conn.client.id, None)

    # --- start -----------------------------------------------------------------

    async def start(self) -> None:
        """Listen, lock the data dir, recover, start the writer. Raises StartupError."""
        cfg = self.config
        renames = []
        for old, new in cfg.rename_commands:
            if old in TABLE:
                renames.append((old, new))
            elif old in REDIS_COMMANDS:
                # A Redis command kvserver does not have (rename-command DEBUG ""):
                # nothing to rename or disable, so nothing to refuse either.
                log.info("ignored: rename-command %s (kvserver has no %s command)",
                         old, old.upper())
            else:
                raise StartupError(f"rename-command: unknown command '{old}' (No such command "
                                   "in rename-command)", exit_code=EXIT_USAGE)
        try:
            self.commands = renamed_table(tuple(renames))
            self.dispatcher = Dispatcher(self.core, self.commands)
        except KeyError as exc:
            raise StartupError(f"rename-command: unknown command '{exc.args[0]}'",
                               exit_code=EXIT_USAGE) from None
        try:
            ssl_context = server_context(cfg) if cfg.tls_port else None
        except TLSConfigError as exc:
            raise StartupError(str(exc), exit_code=EXIT_USAGE) from None
        self._fit_maxclients()
        cfg = self.config
        # Listen before touching the data directory: a start that fails on
        # a busy port leaves no directory and no LOCK behind. Clients that
        # connect in between get -LOADING until recovery is done.
        loop = asyncio.get_running_loop()
        try:
            await self._listen(loop, ssl_context)
        except OSError as exc:
            await self._close_listeners()
            raise StartupError(f"could not listen on {cfg.bind}:{cfg.port}"
                               f"{f' / TLS port {cfg.tls_port}' if cfg.tls_port else ''}: "
                               f"{exc.strerror}") from None
        try:
            self.fs.makedirs(cfg.dir)
            self._lock()
            await self._listen_unix(loop)
        except (StartupError, OSError) as exc:
            await self._close_listeners()
            self._unlock()
            if isinstance(exc, StartupError):
                raise
            raise StartupError(f"cannot use {cfg.dir}"
                               f"{f' or {cfg.unixsocket}' if cfg.unixsocket else ''}: "
                               f"{exc.strerror or exc}") from None
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
            self._unlock(remove=isinstance(exc, CorruptionError))
            hint = (f"; 'kvserver check {cfg.dir}' shows what is on disk"
                    if isinstance(exc, CorruptionError) and "kvserver check" not in str(exc) else "")
            raise StartupError(f"{exc}{hint}", exit_code=(EXIT_DATA if isinstance(
                exc, CorruptionError) else EXIT_FAILURE)) from None
        self.recovered = recovered
        writer = Writer(self.core, self.fs, cfg.dir, wal, recovered.last_lsn,
                        checkpoint_lsn=recovered.checkpoint_lsn,
                        checkpoint_time=(recovered.checkpoint_created_ms / 1000
                                         if recovered.checkpoint_created_ms else None),
                        sync_in_thread=self.sync_in_thread, on_fatal=self._on_fatal)
        self.writer = writer
        for client in self.core.clients.values():
            client.link.writer = writer
        self.core.log_sink = writer.append
        self.core.unit_sink = writer.append_unit
        self.core.persistence = writer
        writer.start()
        self.core.loading = False
        self._expire_task = loop.create_task(self._active_expire(), name="kvserver-expire")

    async def _listen(self, loop: asyncio.AbstractEventLoop, ssl_context: Any = None) -> None:
        """Bind the TCP (and TLS) port of every ``bind`` address; accepting starts
        once the data directory is ours (_listen_unix), clients get -LOADING.

        As in Redis 7, an address written with a leading ``-`` is optional:
        if it cannot be used (no IPv6, say) it is skipped, not fatal.
        """
        cfg = self.config
        required, optional = listen_addresses(cfg.bind)
        ports = [(cfg.port, None)]
        if ssl_context is not None:
            ports.append((cfg.tls_port, ssl_context))
        for port, tls in ports:
            bound = []
            if required:
                bound = _bind_tcp(required, port, tls, cfg.tcp_backlog)
                self._listeners += bound
                if port == 0:
                    port = bound[0].sock.getsockname()[1]
            for host in optional:
                try:
                    more = _bind_tcp([host], port, tls, cfg.tcp_backlog)
                except OSError as exc:
                    if exc.errno not in _SKIPPABLE_BIND_ERRORS:
                        raise
                    log.warning("could not listen on optional address %s: %s (skipped)",
                                host, exc.strerror)
                    continue
                self._listeners += more
                bound += more
                if port == 0:
                    port = more[0].sock.getsockname()[1]
            if tls is None:
                if not bound:
                    raise OSError(errno.EADDRNOTAVAIL, "none of the bind addresses is available")
                self.port = port

    async def _listen_unix(self, loop: asyncio.AbstractEventLoop) -> None:
        """The Unix socket, once the data dir is ours (the old socket file is replaced);
        then every listener starts accepting."""
        cfg = self.config
        if cfg.unixsocket:
            if os.path.exists(cfg.unixsocket):
                os.unlink(cfg.unixsocket)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._listeners.append(_Listener(sock, None))
            sock.bind(cfg.unixsocket)
            os.chmod(cfg.unixsocket, cfg.unixsocketperm)
            sock.listen(cfg.tcp_backlog)
            sock.setblocking(False)
        self._resume_accepting()

    # --- accept ----------------------------------------------------------------
    #
    # Our own accept loop rather than loop.create_server(): asyncio's logs a
    # traceback for every failed accept() and, on EMFILE, retries up to its
    # backlog times per wakeup (each arming another retry timer), which turned
    # a low `ulimit -n` into hundreds of thousands of log lines a second. Here a
    # client over maxclients is told so and closed before it costs anything
    # else, and failures pause accepting (ACCEPT_PAUSE_MIN..MAX) with one log
    # line per ACCEPT_ERROR_LOG_PERIOD.

    def _resume_accepting(self) -> None:
        self._accept_resume = None
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.add_reader(listener.sock.fileno(), self._accept, listener)

    def _accept(self, listener: "_Listener") -> None:
        for _ in range(MAX_ACCEPTS_PER_CALL):
            try:
                sock, _ = listener.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue  # the client gave up while queued
            except OSError as exc:
                self._pause_accepting(exc)
                return
            self._accept_pause = ACCEPT_PAUSE_MIN
            self._admit(listener, sock)

    def _pause_accepting(self, exc: OSError) -> None:
        loop = asyncio.get_running_loop()
        for listener in self._listeners:
            loop.remove_reader(listener.sock.fileno())
        pause = self._accept_pause
        self._accept_pause = min(pause * 2, ACCEPT_PAUSE_MAX)
        self._accept_resume = loop.call_later(pause, self._resume_accepting)
        now = time.monotonic()
        if now - self._accept_error_logged < ACCEPT_ERROR_LOG_PERIOD:
            self._accept_errors_unlogged += 1
            return
        self._accept_error_logged = now
        also = (f"; {self._accept_errors_unlogged} more failures since the last report"
                if self._accept_errors_unlogged else "")
        self._accept_errors_unlogged = 0
        hint = (f" (open file limit {_nofile()}, {len(self.core.clients)} clients, "
                f"maxclients {self.core.config.maxclients})"
                if exc.errno in (errno.EMFILE, errno.ENFILE) else "")
        log.warning("Error accepting a client connection: %s%s; pausing accepts for up to "
                    "%.2f s at a time, reported at most every %.0f s%s",
                    exc.strerror or exc, hint, ACCEPT_PAUSE_MAX, ACCEPT_ERROR_LOG_PERIOD, also)

    def _admit(self, listener: "_Listener", sock: socket.socket) -> None:
        """A new socket: refuse it at once (over maxclients, shutting down) or start it.

        Connections not yet clients (``_pending``: a TLS handshake, or the
        turn before connection_made) count against maxclients like clients do.
        """
        core = self.core
        if self._stopping or len(core.clients) + len(self._pending) >= core.config.maxclients:
            core.stats.rejected_connections += 1
            if listener.tls is None:  # a TLS client could not read a plain-text reply
                try:
                    sock.send(_SHUTTING_DOWN_REPLY if self._stopping else _MAX_CLIENTS_REPLY)
                except OSError:
                    pass
            sock.close()
            return
        sock.setblocking(False)
        token = object()
        self._pending.add(token)
        self._connections_peak = max(self._connections_peak,
                                     len(core.clients) + len(self._pending))
        task = asyncio.get_running_loop().create_task(self._start_client(listener, sock, token))
        self._starting.add(task)
        task.add_done_callback(self._starting.discard)

    async def _start_client(self, listener: "_Listener", sock: socket.socket,
                            token: object) -> None:
        made: list[Connection] = []

        def new_connection() -> Connection:
            conn = Connection(self)
            made.append(conn)
            self._unregistered[conn] = token
            return conn

        try:
            if listener.tls is None:
                await asyncio.get_running_loop().connect_accepted_socket(new_connection, sock)
            else:
                async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                    await serve_tls(sock, new_connection, listener.tls)
        except (OSError, asyncio.TimeoutError) as exc:
            # A failed or slow handshake, a peer gone already: only this client's business.
            sock.close()
            log.debug("client connection not started: %r", exc)
            # Its traceback holds serve_tls's frame, whose future holds the
            # exception: a cycle only the cyclic GC frees, late, with the whole
            # TLS state in it. Cut it so the memory goes now.
            exc.__traceback__ = None
        finally:
            self._pending.discard(token)
            for conn in made:
                self._unregistered.pop(conn, None)

    def _fit_maxclients(self) -> None:
        """Redis's adjustOpenFilesLimit: make room for maxclients, or lower it to fit."""
        try:
            fit = fit_maxclients(self.config.maxclients)
        except FileLimitError as exc:
            raise StartupError(str(exc)) from None
        if fit.notice:
            log.info("%s", fit.notice)
        if fit.warning:
            log.warning("%s", fit.warning)
            self.config = replace(self.config, maxclients=fit.maxclients)
            self.core.set_config(self.config)

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
                            rec.checkpoints, last_version=rec.last_version)
        return WAL.create(self.fs, self.config.dir, rec.db_id, rec.last_lsn + 1,
                          checkpoints=rec.checkpoints)

    def _lock(self) -> None:
        path = os.path.join(self.config.dir, LOCK_NAME)
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            self._lock_created = True
        except FileExistsError:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
            self._lock_created = False
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

    def _unlock(self, remove: bool = False) -> None:
        """Release the lock; with ``remove``, also delete a LOCK file this start
        created, so a refused start leaves the directory as it found it."""
        if self._lock_fd is not None:
            if remove and self._lock_created:
                try:
                    os.unlink(os.path.join(self.config.dir, LOCK_NAME))
                except OSError:
                    pass
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
            self._trim_heap()
            self.core.sample_memory()
            deadline = now + period / 4
            while ks.active_expire_cycle(EXPIRE_SLICE_KEYS) == EXPIRE_SLICE_KEYS:
                if time.monotonic() >= deadline:
                    break
                await asyncio.sleep(0)

    def _trim_heap(self) -> None:
        """Give free heap pages back once many connections have come and gone.

        The trim runs one tick after the drop is seen: a connection leaves the
        count a little before the last of its objects is freed.
        """
        if self._trim_due:
            self._trim_due = False
            if _malloc_trim is not None:
                _malloc_trim(0)
        now_open = len(self.core.clients) + len(self._pending)
        if self._connections_peak - now_open >= TRIM_AFTER_CONNECTIONS_GONE:
            self._connections_peak = now_open
            self._trim_due = True

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
            if not cfg.timeout and not cfg.normal_output_limits[1] and not (
                    core.pubsub.channels or core.pubsub.patterns or core.pubsub.shard):
                return
            self._cron_batch = list(core.clients.values())
        batch = self._cron_batch
        count = max(len(core.clients) // cfg.hz, CLIENTS_CRON_MIN)
        for _ in range(min(count, len(batch))):
            conn = batch.pop().link
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
        self._stop_listening()

    def _stop_listening(self) -> None:
        loop = asyncio.get_running_loop()
        if self._accept_resume is not None:
            self._accept_resume.cancel()
            self._accept_resume = None
        for listener in self._listeners:
            loop.remove_reader(listener.sock.fileno())
            listener.sock.close()
        self._listeners = []

    async def stop(self, save: bool | None = None) -> None:
        """Stop accepting, finish in-flight requests, optionally checkpoint, close."""
        if self._stopping:
            await self._stopped.wait()
            return
        self._stopping = True
        checkpoint = self.config.checkpoint_on_shutdown if save is None else save
        log.info("shutting down: %s", (
            "final checkpoint" if checkpoint else
            "no final checkpoint (SHUTDOWN NOSAVE)" if save is False else
            "no final checkpoint (checkpoint-on-shutdown no)"))
        # Stop accepting new clients; drop those still in their TLS handshake.
        self._stop_listening()
        for task in list(self._starting):
            task.cancel()
        if self._expire_task is not None:
            self._expire_task.cancel()
        if isinstance(self.writer, Writer):
            try:
                await self.writer.close(checkpoint=checkpoint and self.writer.failed is None)
            except (StorageError, OSError) as exc:
                log.critical("error while closing the WAL: %s", exc)
                self.exit_code = 1
            if self.writer.failed is not None:
                self.exit_code = 1
        for client in list(self.core.clients.values()):
            if isinstance(client.link, Connection):
                client.link.kill()
        if self.config.unixsocket and os.path.exists(self.config.unixsocket):
            try:
                os.unlink(self.config.unixsocket)
            except OSError:
                pass
        self._unlock()
        log.info("kvserver is now ready to exit, bye bye...")
        self._stopped.set()
