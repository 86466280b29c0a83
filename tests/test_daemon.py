"""Running kvserver as an operator does: flags, config files, daemon, signals, sockets, Docker bits.

Every server here is a real process on a free loopback port in a temporary
directory, stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, free_port, raw_exchange, wait_for
from kvserver.exitcodes import EXIT_USAGE

KVSERVER = [sys.executable, "-m", "kvserver"]
#: Bound on anything a test waits for from a process.
WAIT = 20.0


def run(*args: str, timeout: float = WAIT, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*KVSERVER, *args], cwd=str(ROOT), capture_output=True, text=True,
                          timeout=timeout, **kw)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- flags and config files --------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["--no-such-flag", "1"], "unknown option '--no-such-flag'"),
    (["--port", "99999"], "bad value for 'port'"),
    (["--appendfsync", "sometimes"], "bad value for 'appendfsync'"),
    (["--databases", "x"], "bad value for 'databases'"),
    (["--port"], "option '--port' needs a value"),
    (["stray"], "cannot read config file 'stray'"),
])
def test_bad_flags_exit_2_with_a_clear_message(args, message):
    result = run(*args)
    assert result.returncode == EXIT_USAGE
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_option():
    from kvserver.config import OPTIONS
    result = run("--help")
    assert result.returncode == 0
    for opt in OPTIONS:
        assert f"--{opt.name}" in result.stdout


def test_config_file_and_flag_precedence(tmp_path, kv_process):
    conf = tmp_path / "kv.conf"
    conf.write_text("# a comment\nport 1\ndatabases 4\nappendfsync everysec\n"
                    'requirepass ""\n')
    p = kv_process(str(conf))  # the fixture's --port overrides the file's port 1
    reply = raw_exchange(p.port, b"CONFIG GET databases\r\n", expect=24)
    assert reply == b"*2\r\n$9\r\ndatabases\r\n$1\r\n4\r\n"
    assert raw_exchange(p.port, b"SELECT 4\r\n") == b"-ERR DB index is out of range\r\n"
    assert b"appendfsync:everysec" in raw_exchange(p.port, b"INFO persistence\r\n",
                                                   timeout=2, until_close=False, expect=200)


def test_bad_config_file_line_names_file_and_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("port 7000\nappendfsync maybe\n")
    result = run(str(conf))
    assert result.returncode == EXIT_USAGE
    assert f"{conf}, at line 2" in result.stderr


# --- daemon, pidfile, signals, log reopen --------------------------------------------


def test_daemonize_returns_once_listening_and_sigterm_stops_cleanly(tmp_path):
    port = free_port()
    pidfile, logfile = tmp_path / "kv.pid", tmp_path / "kv.log"
    result = run("--daemonize", "yes", "--port", str(port), "--dir", str(tmp_path / "data"),
                 "--pidfile", str(pidfile), "--logfile", str(logfile))
    assert result.returncode == 0, result.stderr
    # It listens already: the parent returned only after the daemon said so.
    assert raw_exchange(port, b"PING\r\n") == b"+PONG\r\n"
    pid = int(pidfile.read_text())
    try:
        assert raw_exchange(port, b"SET k v\r\n") == b"+OK\r\n"
        # SIGHUP reopens the log: move the file away, the next lines go to a new one.
        logfile.rename(tmp_path / "kv.log.1")
        os.kill(pid, signal.SIGHUP)
        wait_for(logfile.exists, "the log file to be reopened")
        assert "log file reopened" in logfile.read_text()
    finally:
        os.kill(pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(pid), "the daemon to exit")
    assert not pidfile.exists()
    text = logfile.read_text()
    assert "shutting down" in text and "ready to exit" in text
    # The shutdown checkpoint holds the write.
    assert list((tmp_path / "data").glob("checkpoint-*.kvs"))


def test_daemonize_reports_a_failed_start(tmp_path, kv_process):
    first = kv_process()  # holds the data dir lock
    result = run("--daemonize", "yes", "--port", str(free_port()), "--dir", first.dir,
                 "--logfile", str(tmp_path / "second.log"))
    assert result.returncode == 1
    assert "in use by another kvserver" in result.stderr


def test_second_server_on_same_dir_refuses(kv_process):
    first = kv_process()
    result = run("--port", str(free_port()), "--dir", first.dir)
    assert result.returncode == 1
    assert "in use by another kvserver" in result.stdout


def test_sigint_twice_exits_at_once(tmp_path, kv_process):
    p = kv_process()
    # A client holding a reply would not stop the second SIGINT.
    os.kill(p.proc.pid, signal.SIGINT)
    os.kill(p.proc.pid, signal.SIGINT)
    # 1: the second SIGINT's os._exit; 0: both came as one (signals do not
    # queue); -SIGINT: the first shutdown had already finished, its handler
    # gone, when the second arrived (the test was descheduled between kills).
    assert p.proc.wait(WAIT) in (0, 1, -signal.SIGINT)


def test_shutdown_command_saves_and_exits_0(kv_process):
    p = kv_process("--checkpoint-on-shutdown", "no")
    assert raw_exchange(p.port, b"SET a 1\r\n") == b"+OK\r\n"
    # SHUTDOWN sends no reply; the connection just closes.
    assert raw_exchange(p.port, b"SHUTDOWN SAVE\r\n", until_close=True) == b""
    assert p.proc.wait(WAIT) == 0
    assert list(Path(p.dir).glob("checkpoint-*.kvs"))


def test_unix_socket(tmp_path, kv_process):
    path = str(tmp_path / "kv.sock")
    p = kv_process("--unixsocket", path, "--unixsocketperm", "600")
    assert (os.stat(path).st_mode & 0o777) == 0o600
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"SET via unix\r\nGET via\r\n")
        data = b""
        while not data.endswith(b"unix\r\n"):
            chunk = s.recv(100)
            assert chunk
            data += chunk
    assert data == b"+OK\r\n$4\r\nunix\r\n"
    assert p.terminate() == 0
    assert not os.path.exists(path)


# --- Docker entrypoint and healthcheck (no Docker engine here: run them directly) ---


def test_docker_entrypoint_and_healthcheck(tmp_path):
    bindir = Path(sys.executable).parent
    if not (bindir / "kvcli").exists() or not (bindir / "kvserver").exists():
        pytest.skip("kvserver/kvcli console scripts are not installed (make dev installs them)")
    env = dict(os.environ, PATH=f"{bindir}:{os.environ['PATH']}")
    port = free_port()
    proc = subprocess.Popen(
        ["sh", str(ROOT / "docker" / "entrypoint.sh"), str(ROOT / "docker" / "kvserver.conf"),
         "--bind", "127.0.0.1", "--port", str(port), "--dir", str(tmp_path / "data")],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + WAIT
        for line in proc.stdout:
            if "ready to accept connections" in line or time.monotonic() > deadline:
                break
        health = subprocess.run(["sh", str(ROOT / "docker" / "healthcheck.sh")],
                                env=dict(env, KVSERVER_HOST="127.0.0.1", KVSERVER_PORT=str(port)), timeout=WAIT)
        assert health.returncode == 0
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(WAIT) == 0
    unhealthy = subprocess.run(["sh", str(ROOT / "docker" / "healthcheck.sh")],
                               env=dict(env, KVSERVER_HOST="127.0.0.1", KVSERVER_PORT=str(port)), timeout=WAIT,
                               capture_output=True)
    assert unhealthy.returncode != 0
