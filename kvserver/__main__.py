"""The ``kvserver`` command.

    kvserver [configfile] [--port 6379] [--bind 127.0.0.1] [--dir PATH] ...
    kvserver check DIR [--fix] [--yes]
    kvserver --version | --help

Flags and config-file names follow redis-server (``kvserver --help`` lists
them all). Exit codes: 0 after a clean stop, 1 for bad usage or a failed
start, 1 after a fatal storage error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time

from . import REDIS_COMPAT_VERSION, __version__
from .config import OPTIONS, Config, ConfigError, from_args

_LEVELS = {"debug": logging.DEBUG, "verbose": logging.INFO, "notice": logging.INFO,
           "warning": logging.WARNING}
_MARKS = {logging.DEBUG: ".", logging.INFO: "*", logging.WARNING: "#", logging.ERROR: "#",
          logging.CRITICAL: "#"}


class _RedisStyleFormatter(logging.Formatter):
    """``pid:M 26 Nov 2026 04:00:00.123 * message``, as redis-server logs."""

    def format(self, record: logging.LogRecord) -> str:
        t = time.localtime(record.created)
        stamp = time.strftime("%d %b %Y %H:%M:%S", t) + f".{int(record.msecs):03d}"
        line = f"{os.getpid()}:M {stamp} {_MARKS.get(record.levelno, '*')} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(config: Config) -> logging.Handler:
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    if config.logfile:
        handler: logging.Handler = logging.FileHandler(config.logfile, encoding="utf-8")
    else:
        handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_RedisStyleFormatter())
    root.addHandler(handler)
    root.setLevel(_LEVELS[config.loglevel])
    return handler


def usage() -> str:
    lines = [
        "Usage: kvserver [/path/to/kvserver.conf] [options]",
        "       kvserver check DIR [--fix] [--yes]",
        "       kvserver --version | --help",
        "",
        "Options (also valid as 'name value' lines in the config file):",
    ]
    defaults = Config()
    for opt in OPTIONS:
        default = defaults.get_text(opt.name)
        lines.append(f"  --{opt.name:<28} {opt.help} (default: {default!r})")
    return "\n".join(lines)


def reopen_log(handler: logging.Handler) -> None:
    """SIGHUP: reopen the log file, so logrotate can move the old one away."""
    if isinstance(handler, logging.FileHandler):
        handler.acquire()
        try:
            if handler.stream is not None:
                handler.stream.close()
            handler.stream = handler._open()
        finally:
            handler.release()
        logging.getLogger("kvserver").info("received SIGHUP, log file reopened")


async def _serve(config: Config, handler: logging.Handler | None = None,
                 ready_fd: int | None = None) -> int:
    """Run the server until it stops. ``ready_fd`` (daemon mode) gets "ok" or "err: why"."""
    from .server import Server, StartupError

    server = Server(config)
    loop = asyncio.get_running_loop()
    interrupts = 0

    def on_signal(signame: str) -> None:
        nonlocal interrupts
        interrupts += 1
        if signame == "SIGINT" and interrupts > 1:
            logging.getLogger("kvserver").warning("second SIGINT: exiting now")
            os._exit(1)
        logging.getLogger("kvserver").info("received %s, scheduling shutdown", signame)
        server.request_shutdown(None)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    if handler is not None:
        loop.add_signal_handler(signal.SIGHUP, reopen_log, handler)
    try:
        await server.start()
    except StartupError as exc:
        logging.getLogger("kvserver").critical("cannot start: %s", exc)
        _tell_parent(ready_fd, f"err: {exc}")
        return 1
    if config.pidfile:
        with open(config.pidfile, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    logging.getLogger("kvserver").info("ready to accept connections")
    _tell_parent(ready_fd, "ok")
    try:
        return await server.wait_stopped()
    finally:
        if config.pidfile:
            try:
                os.unlink(config.pidfile)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return 0
    if args and args[0] in ("-v", "--version"):
        print(f"kvserver v={__version__} redis-compat={REDIS_COMPAT_VERSION} "
              f"python={sys.version.split()[0]}")
        return 0
    if args and args[0] == "check":
        from .check import main as check_main
        return check_main(args[1:])
    try:
        config = from_args(args)
    except ConfigError as exc:
        print(f"kvserver: {exc}\nTry 'kvserver --help' for the list of options.", file=sys.stderr)
        return 1
    if config.daemonize:
        return _daemonize(config)
    handler = setup_logging(config)
    return asyncio.run(_serve(config, handler))


def _tell_parent(fd: int | None, message: str) -> None:
    if fd is not None:
        try:
            os.write(fd, message.encode() + b"\n")
            os.close(fd)
        except OSError:
            pass


def _daemonize(config: Config) -> int:
    """Fork into the background; return only once the daemon listens or has failed.

    The parent waits on a pipe for the daemon's first word: "ok" (exit 0) or
    "err: <why>" (printed, exit 1). A daemon that dies before saying either
    also makes the parent exit 1.
    """
    read_fd, write_fd = os.pipe()
    if os.fork() > 0:
        os.close(write_fd)
        chunks = []
        while True:
            chunk = os.read(read_fd, 4096)
            if not chunk:
                break
            chunks.append(chunk)
        os.close(read_fd)
        status = b"".join(chunks).decode(errors="replace").strip()
        if status == "ok":
            return 0
        print(f"kvserver: {status[5:] if status.startswith('err: ') else 'daemon exited during start-up'}",
              file=sys.stderr)
        return 1
    # First child: new session, then fork again so the daemon is not a session
    # leader and can never reacquire a controlling terminal.
    os.close(read_fd)
    os.setsid()
    if os.fork() > 0:
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    handler = setup_logging(config)
    code = asyncio.run(_serve(config, handler, ready_fd=write_fd))
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
