"""The ``kvserver`` command.

    kvserver [configfile] [--port 6379] [--bind 127.0.0.1] [--dir PATH] ...
    kvserver check DIR [--fix] [--yes]
    kvserver --version | --help

Flags and config-file names follow redis-server (``kvserver --help`` lists
them all); a stock redis.conf is read as it is. Exit codes (exitcodes.py):
0 after a clean stop, 1 for a failed start or a fatal storage error, 2 for a
bad flag or config line, 65 when the data directory is damaged.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import sys
import time

from . import REDIS_COMPAT_VERSION, __version__
from .config import OPTIONS, Config, ConfigError, ConfigFileError, from_args
from .exitcodes import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

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
        "Usage: kvserver [/path/to/kvserver.conf] [-] [options]",
        "       kvserver check DIR [--fix] [--yes]",
        "       kvserver --version | --help",
        "",
        "A config file may be a stock redis.conf; '-' reads more config lines from",
        "standard input. Options are config lines too: any redis.conf directive may",
        "be given as --name value; those with no meaning here are logged as ignored.",
        "Exit codes: 0 clean stop, 1 failed start or fatal storage error,",
        "2 bad flag or config, 65 damaged data directory (see 'kvserver check').",
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


def log_config_notices(config: Config) -> None:
    """One line per redis.conf directive read but not applicable, and what
    the settings that only look like Redis's mean here."""
    log = logging.getLogger("kvserver")
    for name in config.ignored:
        log.info("ignored: %s (not applicable)", name)
    for notice in config.notices:
        log.warning("%s", notice)
    if not config.appendonly:
        log.warning("appendonly no: kvserver always logs every write to its WAL (synced %s); "
                    "the setting has no effect", {"always": "before each reply",
                                                  "everysec": "once a second",
                                                  "no": "by the OS"}[config.appendfsync])
    if config.dbfilename != Config.dbfilename:
        log.info("dbfilename %s: checkpoints are named checkpoint-<LSN>.kvs in %s",
                 config.dbfilename, config.dir)


def supervisor_mode(config: Config) -> str:
    """"systemd", "upstart" or "no", resolving ``supervised auto`` as Redis does."""
    mode = config.supervised
    if mode == "auto":
        if os.environ.get("NOTIFY_SOCKET"):
            return "systemd"
        return "upstart" if os.environ.get("UPSTART_JOB") else "no"
    return mode


def notify_systemd(state: str) -> bool:
    """sd_notify(3) without libsystemd: one datagram to $NOTIFY_SOCKET. True if sent."""
    path = os.environ.get("NOTIFY_SOCKET", "")
    if not path:
        return False
    if path.startswith("@"):
        path = "\0" + path[1:]  # abstract socket namespace
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as s:
            s.sendto(state.encode(), path)
    except OSError as exc:
        logging.getLogger("kvserver").warning("systemd notification failed: %s", exc)
        return False
    return True


def tell_supervisor_ready(config: Config) -> None:
    mode = supervisor_mode(config)
    log = logging.getLogger("kvserver")
    if mode == "systemd":
        if notify_systemd("STATUS=Ready to accept connections\nREADY=1\n"):
            log.info("systemd supervision: told systemd we are ready")
        else:
            log.warning("supervised systemd, but NOTIFY_SOCKET is not set (is the unit Type=notify?)")
    elif mode == "upstart":
        if os.environ.pop("UPSTART_JOB", None) is None:
            log.warning("supervised upstart, but UPSTART_JOB is not set")
        else:
            log.info("upstart supervision: stopping ourselves with SIGSTOP to say we are ready")
            os.kill(os.getpid(), signal.SIGSTOP)


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
            os._exit(EXIT_FAILURE)
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
        _tell_parent(ready_fd, f"err {exc.exit_code}: {exc}")
        return exc.exit_code
    if config.pidfile:
        with open(config.pidfile, "w", encoding="utf-8") as f:
            f.write(f"{os.getpid()}\n")
    logging.getLogger("kvserver").info("ready to accept connections")
    _tell_parent(ready_fd, "ok")
    tell_supervisor_ready(config)
    try:
        return await server.wait_stopped()
    finally:
        if supervisor_mode(config) == "systemd":
            notify_systemd("STOPPING=1\n")
        if config.pidfile:
            try:
                os.unlink(config.pidfile)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ("-h", "--help"):
        print(usage())
        return EXIT_OK
    if args and args[0] in ("-v", "--version"):
        print(f"kvserver v={__version__} redis-compat={REDIS_COMPAT_VERSION} "
              f"python={sys.version.split()[0]}")
        return EXIT_OK
    if args and args[0] == "check":
        from .check import main as check_main
        return check_main(args[1:])
    try:
        config = from_args(args)
    except ConfigFileError as exc:
        # redis-server's report, word for word apart from the file name.
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    except ConfigError as exc:
        print(f"kvserver: {exc}\nTry 'kvserver --help' for the list of options.", file=sys.stderr)
        return EXIT_USAGE
    if config.daemonize:
        return _daemonize(config)
    try:
        handler = setup_logging(config)
    except OSError as exc:
        print(f"kvserver: can't open the log file {config.logfile!r}: {exc.strerror}",
              file=sys.stderr)
        return EXIT_USAGE
    log_config_notices(config)
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
    "err <code>: <why>" (printed, exit <code>, so a damaged data directory
    still exits EXIT_DATA). A daemon that dies before saying either makes
    the parent exit 1.
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
            return EXIT_OK
        code, _, why = status.partition(": ")
        if code.startswith("err ") and code[4:].isdigit():
            print(f"kvserver: {why}", file=sys.stderr)
            return int(code[4:])
        print("kvserver: daemon exited during start-up", file=sys.stderr)
        return EXIT_FAILURE
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
    try:
        handler = setup_logging(config)
    except OSError as exc:
        _tell_parent(write_fd, f"err {EXIT_USAGE}: can't open the log file "
                               f"{config.logfile!r}: {exc.strerror}")
        os._exit(EXIT_USAGE)
    log_config_notices(config)
    code = asyncio.run(_serve(config, handler, ready_fd=write_fd))
    logging.shutdown()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
