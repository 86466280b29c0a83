"""kvcli: reply formatting (exactly redis-cli 7.0's), options, and the modes end to end.

The formatter tests need no server: the expected strings were captured from
redis-cli 7.0.15 given the same replies. The end-to-end tests run
``python -m clients.kvcli`` as a subprocess against the server from the
``server_address`` fixture (tests/servers.py: kvserver and, if installed,
redis-server).
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from clients import Client
from clients.formatting import format_raw, format_reply, format_tty, quote
from clients.kvcli import Options, UsageError, parse_options
from kvserver.errors import ReplyError
from servers import (ServerAddress, free_port, running_server,  # noqa: F401 (fixtures)
                     server_address)

ROOT = Path(__file__).resolve().parent.parent
REDIS_SERVER = shutil.which("redis-server")
STARTUP_TIMEOUT = 10.0
#: Bound on any single kvcli run; each normally takes well under a second.
RUN_TIMEOUT = 10.0


def kvcli_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["KVCLI_HISTFILE"] = str(tmp_path / "history")
    env["HOME"] = str(tmp_path)
    env["TERM"] = "dumb"  # no colour or bracketed-paste escapes from readline
    env.pop("KVCLI_AUTH", None)
    return env


def kvcli(tmp_path: Path, *args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clients.kvcli", *args], input=stdin,
                          capture_output=True, cwd=ROOT, env=kvcli_env(tmp_path),
                          timeout=RUN_TIMEOUT)


# --- formatting, terminal style (strings captured from redis-cli 7.0.15) ----------------


@pytest.mark.parametrize("reply, expected", [
    ("OK", "OK\n"),
    ("PONG", "PONG\n"),
    (b"value", '"value"\n'),
    (b"a\r\nb", '"a\\r\\nb"\n'),
    (b"\x00", '"\\x00"\n'),
    (b'say "hi" \\ \t\a\b', '"say \\"hi\\" \\\\ \\t\\a\\b"\n'),
    ("é".encode(), '"\\xc3\\xa9"\n'),
    (b"", '""\n'),
    (1, "(integer) 1\n"),
    (-7, "(integer) -7\n"),
    (None, "(nil)\n"),
    ([], "(empty array)\n"),
    ({}, "(empty hash)\n"),
    (ReplyError("ERR unknown command 'x'"), "(error) ERR unknown command 'x'\n"),
    (1.5, "(double) 1.5\n"),
    (0.1, "(double) 0.10000000000000001\n"),
    (float("inf"), "(double) inf\n"),
    (True, "(true)\n"),
    (False, "(false)\n"),
    ([b"a", b"b c", b""], '1) "a"\n2) "b c"\n3) ""\n'),
    ([None], "1) (nil)\n"),
    ([[None]], "1) 1) (nil)\n"),
    ([[]], "1) (empty array)\n"),
    ([1, [b"a", [b"b", []]], ReplyError("ERR x"), b"q"],
     '1) (integer) 1\n2) 1) "a"\n   2) 1) "b"\n      2) (empty array)\n'
     '3) (error) ERR x\n4) "q"\n'),
    (list(range(1, 10)) + [[b"a", [b"b", b"c"]], 11],
     "".join(f" {i}) (integer) {i}\n" for i in range(1, 10))
     + '10) 1) "a"\n    2) 1) "b"\n       2) "c"\n11) (integer) 11\n'),
])
def test_format_tty(reply, expected: str) -> None:
    assert format_tty(reply) == expected


def test_format_tty_resp3_maps() -> None:
    hello = {b"server": b"redis", b"version": b"7.0.15", b"proto": 3, b"id": 20,
             b"mode": b"standalone", b"role": b"master", b"modules": []}
    assert format_tty(hello) == (
        '1# "server" => "redis"\n2# "version" => "7.0.15"\n3# "proto" => (integer) 3\n'
        '4# "id" => (integer) 20\n5# "mode" => "standalone"\n6# "role" => "master"\n'
        '7# "modules" => (empty array)\n')
    # A value spanning several lines starts on its own line, as in redis-cli 7.
    nested = {b"a": [b"x"], b"c": [[b"p", b"q"]], b"b": {b"y": 2, b"x": 1},
              b"e": {b"z": [b"u", b"v"]}, b"d": []}
    assert format_tty(nested) == (
        '1# "a" => 1) "x"\n'
        '2# "c" => \n   1) 1) "p"\n      2) "q"\n'
        '3# "b" => \n   1# "y" => (integer) 2\n   2# "x" => (integer) 1\n'
        '4# "e" => \n   1# "z" => \n      1) "u"\n      2) "v"\n'
        '5# "d" => (empty array)\n')
    assert format_tty({b"a": {b"x": 1}}) == '1# "a" => 1# "x" => (integer) 1\n'


# --- formatting, raw style -------------------------------------------------------------------


@pytest.mark.parametrize("reply, expected", [
    ("OK", b"OK\n"),
    (b"a\r\nb\x00", b"a\r\nb\x00\n"),
    (7, b"7\n"),
    (None, b"\n"),
    ([], b"\n"),
    ([b"a", b"b c", b""], b"a\nb c\n\n"),
    # An error keeps its own newline, so redis-cli 7 leaves a blank line after it.
    (ReplyError("ERR bad"), b"ERR bad\n\n"),
    ([1, [b"a", b"b"], [], b"x\n\x00y"], b"1\na\nb\n\nx\n\x00y\n"),
    ([1, ReplyError("ERR x"), 3], b"1\nERR x\n\n3\n"),
    ({b"a": 1, b"b": [b"x", b"y"]}, b"a 1\nb x\ny\n"),
    (True, b"(true)\n"),
    (2.5, b"2.5\n"),
])
def test_format_raw(reply, expected: bytes) -> None:
    assert format_raw(reply) + b"\n" == expected
    assert format_reply([b"GET", b"k"], reply, raw=True) == expected


def test_reports_print_as_text_even_on_a_terminal() -> None:
    report = b"# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
    for argv in ([b"INFO"], [b"info", b"keyspace"], [b"CLIENT", b"LIST"], [b"client", b"info"]):
        assert format_reply(argv, report, raw=False) == report
        assert format_reply(argv, report, raw=True) == report
    assert format_reply([b"GET", b"k"], report, raw=False) == (quote(report) + "\n").encode()


# --- options ------------------------------------------------------------------------------------


def test_options_then_command() -> None:
    opts = parse_options(["-h", "example", "-p", "7000", "-n", "2", "--raw", "SET", "k", "-1"])
    assert (opts.host, opts.port, opts.db, opts.raw) == ("example", 7000, 2, True)
    assert opts.command == ["SET", "k", "-1"]


def test_options_url_and_latency() -> None:
    opts = parse_options(["-u", "kv://:pw@h:7001/3", "--latency", "--latency-samples", "5",
                          "-i", "0.5", "--no-raw", "-3"])
    assert (opts.host, opts.port, opts.db, opts.password) == ("h", 7001, 3, "pw")
    assert opts.latency and opts.latency_samples == 5 and opts.interval == 0.5
    assert opts.raw is False and opts.resp == 3 and opts.command == []
    assert parse_options(["-s", "/tmp/kv.sock"]).unix_socket == "/tmp/kv.sock"
    assert parse_options(["-h"]).show_help  # a bare -h asks for help, as in redis-cli


@pytest.mark.parametrize("args, message", [
    (["-z"], "Unrecognized option or bad number of args for: '-z'"),
    (["-p"], "bad number of args"),
    (["-p", "http"], "Invalid value for -p"),
    (["-p", "70000"], "Invalid port"),
    (["-u", "rediss://h"], "TLS"),
    (["--latency-samples", "0"], "Invalid value"),
])
def test_bad_options(args: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)):
        parse_options(args)


def test_defaults(monkeypatch) -> None:
    monkeypatch.delenv("KVCLI_AUTH", raising=False)
    assert parse_options([]) == Options()
    monkeypatch.setenv("KVCLI_AUTH", "from-env")
    opts = parse_options(["PING"])
    assert opts.password == "from-env" and not opts.password_on_command_line


# --- one-shot, piped, errors --------------------------------------------------------------------


def test_one_shot(server_address: ServerAddress, tmp_path: Path) -> None:
    port = str(server_address.port)
    result = kvcli(tmp_path, "-p", port, "SET", "a", "1")
    assert (result.returncode, result.stdout, result.stderr) == (0, b"OK\n", b"")
    assert kvcli(tmp_path, "-p", port, "GET", "a").stdout == b"1\n"
    assert kvcli(tmp_path, "-p", port, "--no-raw", "GET", "a").stdout == b'"1"\n'
    assert kvcli(tmp_path, "-p", port, "--no-raw", "GET", "nope").stdout == b"(nil)\n"
    assert kvcli(tmp_path, "-p", port, "GET", "nope").stdout == b"\n"
    assert kvcli(tmp_path, "-p", port, "-n", "3", "SET", "d3", "x").stdout == b"OK\n"
    assert kvcli(tmp_path, "-u", f"kv://127.0.0.1:{port}/3", "GET", "d3").stdout == b"x\n"
    assert kvcli(tmp_path, "-p", port, "-r", "3", "-i", "0.01", "INCR", "n").stdout == b"1\n2\n3\n"
    assert kvcli(tmp_path, "-p", port, "-x", "SET", "blob",
                 stdin=b"line1\nline2\x00").stdout == b"OK\n"
    with Client(port=server_address.port) as c:
        assert c.get("blob") == b"line1\nline2\x00"


def test_error_reply_formats_and_exit_status(server_address: ServerAddress,
                                             tmp_path: Path) -> None:
    port = str(server_address.port)
    kvcli(tmp_path, "-p", port, "SET", "s", "text")
    raw = kvcli(tmp_path, "-p", port, "INCR", "s")
    assert raw.returncode == 0  # redis-cli 7 also exits 0 after an error reply
    assert raw.stdout == b"ERR value is not an integer or out of range\n\n"
    tty = kvcli(tmp_path, "-p", port, "--no-raw", "INCR", "s")
    assert tty.stdout == b"(error) ERR value is not an integer or out of range\n"


def test_piped_commands(server_address: ServerAddress, tmp_path: Path) -> None:
    script = (b'SET greeting "hello world"\n'
              b"GET greeting\n"
              b"\n"
              b"SET bin \"a\\x00b\\r\\n\"\n"
              b"STRLEN bin\n"
              b'GET "unbalanced\n'
              b"3 INCR counter\n"
              b"MGET greeting nope\n"
              b"quit\n"
              b"SET after quit\n")
    result = kvcli(tmp_path, "-p", str(server_address.port), stdin=script)
    assert result.returncode == 0
    assert result.stdout == (b"OK\nhello world\nOK\n5\nInvalid argument(s)\n1\n2\n3\n"
                             b"hello world\n\n")
    assert result.stderr == b""
    with Client(port=server_address.port) as c:
        assert c.get("after") is None
    tty = kvcli(tmp_path, "-p", str(server_address.port), "--no-raw",
                stdin=b"MGET greeting nope\nGET bin\n")
    assert tty.stdout == b'1) "hello world"\n2) (nil)\n"a\\x00b\\r\\n"\n'


def test_server_down(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    for args in (["PING"], [], ["--latency"]):
        result = kvcli(tmp_path, "-p", str(port), *args)
        assert result.returncode == 1
        assert result.stdout == b""
        assert result.stderr == (
            f"Could not connect to kvserver at 127.0.0.1:{port}: Connection refused\n".encode())
    result = kvcli(tmp_path, "-s", str(tmp_path / "none.sock"), "PING")
    assert result.returncode == 1
    assert b"No such file or directory" in result.stderr and b"Traceback" not in result.stderr


def test_failed_select_is_reported_and_session_continues(server_address: ServerAddress,
                                                         tmp_path: Path) -> None:
    result = kvcli(tmp_path, "-p", str(server_address.port), "-n", "999", "PING")
    assert result.returncode == 0
    assert result.stdout == b"PONG\n"
    assert result.stderr.startswith(b"SELECT 999 failed: ERR")


# --- latency ------------------------------------------------------------------------------------

LATENCY_LINE = rb"min: \d+\.\d\d, max: \d+\.\d\d, avg: \d+\.\d\d \((\d+) samples\)"


def test_latency_stops_after_samples(server_address: ServerAddress, tmp_path: Path) -> None:
    result = kvcli(tmp_path, "-p", str(server_address.port), "--latency",
                   "--latency-samples", "5", "-i", "0.001")
    assert result.returncode == 0
    match = re.fullmatch(LATENCY_LINE + rb"\n", result.stdout)
    assert match and match.group(1) == b"5"


def test_latency_stops_on_ctrl_c(server_address: ServerAddress, tmp_path: Path) -> None:
    # SIGINT back to its default in the child: a test run started in the
    # background by a non-interactive shell has it ignored, and Python only
    # turns Ctrl-C into KeyboardInterrupt when it starts with the default.
    proc = subprocess.Popen([sys.executable, "-m", "clients.kvcli", "-p",
                             str(server_address.port), "--latency", "-i", "0.005"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=kvcli_env(tmp_path),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        # Let it connect and take a few samples (no output before the end
        # when stdout is a pipe), then interrupt it as Ctrl-C would.
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=RUN_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    match = re.fullmatch(LATENCY_LINE + rb"\n", out)
    assert match and int(match.group(1)) > 0


# --- the interactive prompt, through a pseudo-terminal --------------------------------------


class Terminal:
    """kvcli on a pty: type lines, read output until an expected string shows up."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([sys.executable, "-m", "clients.kvcli", *args],
                                     stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                                     env=env, start_new_session=True)
        os.close(slave)
        self.pending = b""

    def read_until(self, expected: bytes, timeout: float = 5.0) -> bytes:
        """Output up to and including ``expected``; what follows is kept for the next call."""
        deadline = time.monotonic() + timeout
        seen = self.pending
        while expected not in seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{expected!r} did not appear; got {seen!r}")
            ready, _, _ = select.select([self.master], [], [], remaining)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk:
                raise AssertionError(f"kvcli exited before {expected!r}; got {seen!r}")
            seen += chunk
        end = seen.index(expected) + len(expected)
        self.pending = seen[end:]
        return seen[:end]

    def type(self, line: str) -> None:
        os.write(self.master, line.encode() + b"\r")

    def close(self) -> int:
        try:
            return self.proc.wait(timeout=5)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            os.close(self.master)


def test_interactive_prompt(server_address: ServerAddress, tmp_path: Path) -> None:
    port = server_address.port
    prompt = f"127.0.0.1:{port}> ".encode()
    term = Terminal(["-p", str(port)], kvcli_env(tmp_path))
    try:
        term.read_until(prompt)
        term.type("SET a 1")
        assert b"OK\r\n" in term.read_until(prompt)
        term.type("GET a")
        assert b'"1"\r\n' in term.read_until(prompt)
        term.type("GET nope")
        assert b"(nil)\r\n" in term.read_until(prompt)
        term.type("INCR a b")
        assert b"(error) ERR wrong number of arguments" in term.read_until(prompt)
        term.type("SELECT 2")
        assert b"OK\r\n" in term.read_until(f"127.0.0.1:{port}[2]> ".encode())
        term.type("SET in2 yes")
        term.read_until(f"127.0.0.1:{port}[2]> ".encode())
        term.type("AUTH hunter2")  # fails, and must not reach the history file
        term.read_until(b"(error) ")
        term.read_until(f"127.0.0.1:{port}[2]> ".encode())
        term.type("quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.close()
    history = (tmp_path / "history").read_text()
    assert "SET a 1" in history and "GET a" in history and "SELECT 2" in history
    assert "hunter2" not in history
    with Client(port=port, db=2) as c:
        assert c.get("in2") == b"yes"


def test_interactive_db_prompt_and_eof(server_address: ServerAddress, tmp_path: Path) -> None:
    port = server_address.port
    term = Terminal(["-p", str(port), "-n", "3"], kvcli_env(tmp_path))
    try:
        term.read_until(f"127.0.0.1:{port}[3]> ".encode())
        term.type("SELECT 0")
        term.read_until(f"127.0.0.1:{port}> ".encode())
        os.write(term.master, b"\x04")  # Ctrl-D on an empty line leaves
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.close()


# --- help <command>: redis-cli 7.0's help, from the server's COMMAND DOCS --------------


SET_HELP = (b"\r\n  \x1b[1mSET\x1b[0m \x1b[90mkey value [NX|XX] [GET] [EX seconds|PX milliseconds|"
            b"EXAT unix-time-seconds|PXAT unix-time-milliseconds|KEEPTTL]\x1b[0m\r\n"
            b"  \x1b[33msummary:\x1b[0m Set the string value of a key\r\n"
            b"  \x1b[33msince:\x1b[0m 1.0.0\r\n  \x1b[33mgroup:\x1b[0m string\r\n\r\n")


def test_help_command_prints_its_syntax(server_address: ServerAddress, tmp_path: Path) -> None:
    # Captured from redis-cli 7.0.15 ('redis-cli help set' against redis-server 7.0.15).
    result = kvcli(tmp_path, "-p", str(server_address.port), "help", "set")
    assert result.returncode == 0
    assert result.stdout == SET_HELP


@pytest.mark.skipif(shutil.which("redis-cli") is None, reason="redis-cli is not installed")
@pytest.mark.parametrize("words", [["SET"], ["config", "get"], ["CONFIG"], ["@string"],
                                   ["client", "kill"], ["zadd"], ["nosuch"]])
def test_help_equals_redis_cli_byte_for_byte(redis_server, tmp_path: Path, words) -> None:
    """Same server (redis-server), same COMMAND DOCS: the same bytes out."""
    theirs = subprocess.run(["redis-cli", "-p", str(redis_server), "help", *words],
                            capture_output=True, timeout=RUN_TIMEOUT)
    ours = kvcli(tmp_path, "-p", str(redis_server), "help", *words)
    assert ours.stdout == theirs.stdout


def test_interactive_help_set_shows_set(server_address: ServerAddress, tmp_path: Path) -> None:
    port = server_address.port
    prompt = f"127.0.0.1:{port}> ".encode()
    term = Terminal(["-p", str(port)], kvcli_env(tmp_path))
    try:
        term.read_until(prompt)
        term.type("help SET")
        shown = term.read_until(prompt)
        assert SET_HELP in shown.replace(b"\r\r\n", b"\r\n")  # the pty adds \r before \n
        term.type("help")  # no topic: kvcli's own help, as redis-cli prints its own
        assert b'"help <command>" for help on <command>' in term.read_until(prompt)
        term.type("quit")
        assert term.close() == 0
    finally:
        if term.proc.poll() is None:
            term.close()
