"""Real clients against kvserver: redis-py, raw sockets, redis-cli, redis-benchmark.

Each test starts its own kvserver (the ``kv`` fixture). The Redis tools come
from Debian's redis-tools package; a test that needs one skips, saying so,
when it is not installed.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import pty
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import time

import pytest
import redis

from conftest import REDIS_BENCHMARK, REDIS_CLI, raw_exchange

#: Bound on every redis-cli / redis-benchmark run; a hang is a failure, not a stall.
TOOL_TIMEOUT = 60


# --- redis-py ---------------------------------------------------------------------

@pytest.fixture(params=[2, 3], ids=["resp2", "resp3"])
def protocol(request):
    """redis-py speaks RESP3 by default since 8.0, RESP2 before: test both."""
    return request.param


def test_redis_py_bytes_mode(kv, protocol):
    r = redis.Redis(host="127.0.0.1", port=kv.port, protocol=protocol)
    assert r.ping() is True
    assert r.set("k", "v") is True
    assert r.get("k") == b"v"
    assert r.get("missing") is None
    assert r.set("k", "w", nx=True) is None
    assert r.set("k", "w", xx=True, get=True) == b"v"
    assert r.incr("n") == 1 and r.incrby("n", 41) == 42 and r.decr("n") == 41
    assert r.incrbyfloat("f", 1.5) == 1.5
    assert r.get("f") == b"1.5"
    assert r.append("k", "xyz") == 4 and r.strlen("k") == 4
    assert r.getrange("k", 1, -1) == b"xyz"
    assert r.setrange("k", 6, "!") == 7 and r.get("k") == b"wxyz\x00\x00!"
    assert r.mset({"a": 1, "b": 2}) is True
    assert r.mget("a", "b", "missing") == [b"1", b"2", None]
    assert r.msetnx({"a": 3, "c": 4}) is False
    assert r.exists("a", "b", "c") == 2
    assert r.type("a") == b"string" and r.type("missing") == b"none"
    assert r.rename("a", "a2") is True and r.renamenx("a2", "b") is False
    assert r.copy("b", "b2") is True and r.get("b2") == b"2"
    assert r.getdel("b2") == b"2" and r.exists("b2") == 0
    assert r.getset("b", "new") == b"2"
    assert r.delete("a2", "b", "missing") == 2
    assert r.unlink("c") == 0 and r.set("c", 5) is True and r.unlink("c") == 1
    assert sorted(r.keys("*")) == [b"f", b"k", b"n"]
    assert r.dbsize() == 3
    assert r.echo("hi") == b"hi"
    assert r.flushdb() is True and r.dbsize() == 0


def test_redis_py_decoded_mode(kv, protocol):
    r = redis.Redis(host="127.0.0.1", port=kv.port, decode_responses=True, protocol=protocol)
    assert r.set("greeting", "héllo") is True
    assert r.get("greeting") == "héllo"
    assert r.strlen("greeting") == len("héllo".encode())
    assert r.mget(["greeting", "nope"]) == ["héllo", None]
    assert r.incr("n", 5) == 5
    assert r.incrbyfloat("n", "0.25") == 5.25
    assert r.type("n") == "string"
    assert sorted(r.keys()) == ["greeting", "n"]
    assert set(r.scan_iter(match="g*")) == {"greeting"}
    assert r.randomkey() in ("greeting", "n")
    assert r.config_get("save") == {"save": ""}
    assert r.config_get("appendonly")["appendonly"] in ("yes", "no")
    info = r.info("keyspace")
    assert info["db0"] == {"keys": 2, "expires": 0, "avg_ttl": 0}
    with pytest.raises(redis.ResponseError, match="not an integer or out of range"):
        r.incr("greeting")
    with pytest.raises(redis.ResponseError, match="^unknown command 'NOSUCH'"):
        r.execute_command("NOSUCH", "x")


def test_redis_py_resp3(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port, protocol=3, decode_responses=True)
    assert r.set("k", "v", ex=100) is True
    assert r.get("k") == "v"
    assert r.get("missing") is None
    assert 99 <= r.ttl("k") <= 100
    assert r.config_get("save") == {"save": ""}
    assert r.incrbyfloat("f", 2.5) == 2.5
    hello = r.execute_command("HELLO", "3")
    assert hello["proto"] == 3 and hello["server"] == "redis"


def test_redis_py_expiry(kv, protocol):
    r = redis.Redis(host="127.0.0.1", port=kv.port, protocol=protocol)
    r.set("k", "v", ex=100)
    assert 99 <= r.ttl("k") <= 100
    assert 99_000 <= r.pttl("k") <= 100_000
    at = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
    assert r.expireat("k", at) is True
    assert r.expiretime("k") == int(at.timestamp())
    assert r.expire("k", 50, nx=True) is False
    assert r.expire("k", 50, lt=True) is True
    assert 49 <= r.ttl("k") <= 50
    assert r.persist("k") is True and r.ttl("k") == -1
    assert r.set("p", "v", px=100_000, keepttl=False) is True
    assert r.getex("p", persist=True) == b"v" and r.ttl("p") == -1
    assert r.execute_command("SETEX", "s", 100, "v") is True
    assert r.execute_command("PSETEX", "ps", 100_000, "v") is True
    assert r.ttl("s") == 100 and 99_000 <= r.pttl("ps") <= 100_000
    assert r.ttl("missing") == -2


def test_redis_py_pipeline_without_transaction(kv, protocol):
    r = redis.Redis(host="127.0.0.1", port=kv.port, protocol=protocol)
    pipe = r.pipeline(transaction=False)
    expected = []
    for i in range(50):
        pipe.set(f"key:{i}", i)
        expected.append(True)
        pipe.incr(f"key:{i}")
        expected.append(i + 1)
        pipe.get(f"key:{i}")
        expected.append(str(i + 1).encode())
    pipe.mget([f"key:{i}" for i in range(50)])
    expected.append([str(i + 1).encode() for i in range(50)])
    pipe.dbsize()
    expected.append(50)
    results = pipe.execute()
    assert len(results) == 152
    assert results == expected
    # An error in the middle of a pipeline is that command's reply only.
    pipe = r.pipeline(transaction=False)
    pipe.set("s", "text").incr("s").get("s").incr("key:0")
    out = pipe.execute(raise_on_error=False)
    assert out[0] is True and out[2] == b"text" and out[3] == 2
    assert isinstance(out[1], redis.ResponseError)


def test_redis_py_binary_safe_keys_and_values(kv, protocol):
    r = redis.Redis(host="127.0.0.1", port=kv.port, protocol=protocol)
    pairs = {b"a\r\nb": b"\r\n", b"\x00": b"\x00\x00", b"\xff\xfe": b"\xc3\x28",
             b"sp ace": b"*1\r\n$4\r\nPING\r\n", b"": b""}
    for k, v in pairs.items():
        assert r.set(k, v) is True
    for k, v in pairs.items():
        assert r.get(k) == v
        assert r.strlen(k) == len(v)
    assert sorted(r.keys()) == sorted(pairs)
    assert r.exists(*pairs) == len(pairs)
    assert r.append(b"\x00", b"\r\n") == 4 and r.get(b"\x00") == b"\x00\x00\r\n"


def test_redis_py_one_mebibyte_value(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    big = os.urandom(1 << 20)
    assert r.set("big", big) is True
    assert r.get("big") == big
    assert r.strlen("big") == 1 << 20
    assert r.getrange("big", -4, -1) == big[-4:]
    assert r.append("big", b"tail") == (1 << 20) + 4
    assert r.get("big")[-8:] == big[-4:] + b"tail"


def test_redis_py_select_via_db_parameter(kv):
    db3 = redis.Redis(host="127.0.0.1", port=kv.port, db=3)
    db0 = redis.Redis(host="127.0.0.1", port=kv.port)
    assert db3.set("only-in-3", "x") is True
    assert db0.get("only-in-3") is None
    assert db3.get("only-in-3") == b"x"
    assert db3.dbsize() == 1 and db0.dbsize() == 0
    assert "db3" in db0.info("keyspace") and "db0" not in db0.info("keyspace")
    assert db0.move("nothing", 3) is False
    assert db3.swapdb(0, 3) is True
    assert db0.get("only-in-3") == b"x"


def test_redis_py_client_name_and_lib_info(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port, client_name="worker-1", decode_responses=True)
    assert r.client_getname() == "worker-1"
    me = r.client_info()
    assert me["name"] == "worker-1"
    # redis-py sends CLIENT SETINFO on connect; Redis 7.0 (and we) refuse it, redis-py goes on.
    assert "lib-name" not in me
    assert r.client_id() == me["id"]


# --- raw sockets: inline protocol and protocol errors ---------------------------------

def test_inline_set_and_get(kv):
    assert raw_exchange(kv.port, b"SET greeting hello\r\n") == b"+OK\r\n"
    assert raw_exchange(kv.port, b"GET greeting\r\n") == b"$5\r\nhello\r\n"
    assert raw_exchange(kv.port, b"GET greeting\n") == b"$5\r\nhello\r\n"


def test_inline_quoting(kv):
    assert raw_exchange(kv.port, b'SET k "a b"\r\n') == b"+OK\r\n"
    assert raw_exchange(kv.port, b"GET k\r\n") == b"$3\r\na b\r\n"
    reply = raw_exchange(kv.port, b"SET k 'it\\'s'\r\nGET k\r\n", expect=14)
    assert reply == b"+OK\r\n$4\r\nit's\r\n"
    assert raw_exchange(kv.port, b'ECHO "\\x41\\tB\\n"\r\n') == b"$4\r\nA\tB\n\r\n"


def test_inline_and_multibulk_pipelined_together(kv):
    payload = b"SET a 1\r\n*2\r\n$4\r\nINCR\r\n$1\r\na\r\nGET a\r\nPING\r\n"
    assert raw_exchange(kv.port, payload, expect=22) == b"+OK\r\n:2\r\n$1\r\n2\r\n+PONG\r\n"


@pytest.mark.parametrize("garbage,error", [
    (b"*1\r\n$x\r\n", b"-ERR Protocol error: invalid bulk length\r\n"),
    (b"*x\r\n", b"-ERR Protocol error: invalid multibulk length\r\n"),
    (b"*1\r\nGET\r\n", b"-ERR Protocol error: expected '$', got 'G'\r\n"),
    (b'SET k "open\r\n', b"-ERR Protocol error: unbalanced quotes in request\r\n"),
])
def test_protocol_error_closes_only_that_connection(kv, garbage, error):
    bystander = socket.create_connection(("127.0.0.1", kv.port), timeout=5)
    try:
        # The good request before the garbage runs; the error comes next, then EOF.
        reply = raw_exchange(kv.port, b"SET before 1\r\n" + garbage, until_close=True)
        assert reply == b"+OK\r\n" + error
        bystander.sendall(b"GET before\r\n")
        assert bystander.recv(64) == b"$1\r\n1\r\n"
        assert raw_exchange(kv.port, b"PING\r\n") == b"+PONG\r\n"
    finally:
        bystander.close()
    r = redis.Redis(host="127.0.0.1", port=kv.port, decode_responses=True)
    stats = r.info("stats")
    assert stats["total_protocol_errors"] == 1


# --- redis-cli ------------------------------------------------------------------------

def cli(port: int, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    if REDIS_CLI is None:
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    return subprocess.run([REDIS_CLI, "-p", str(port), *args], input=stdin, capture_output=True,
                          timeout=TOOL_TIMEOUT)


def test_redis_cli_one_shot_commands(kv):
    assert cli(kv.port, "PING").stdout == b"PONG\n"
    assert cli(kv.port, "SET", "foo", "bar").stdout == b"OK\n"
    assert cli(kv.port, "GET", "foo").stdout == b"bar\n"
    assert cli(kv.port, "INCR", "n").stdout == b"1\n"  # raw output: stdout is not a tty
    assert cli(kv.port, "--no-raw", "INCR", "n").stdout == b"(integer) 2\n"
    assert cli(kv.port, "--no-raw", "GET", "missing").stdout == b"(nil)\n"
    assert cli(kv.port, "--no-raw", "MGET", "foo", "missing").stdout == b'1) "bar"\n2) (nil)\n'
    assert cli(kv.port, "--raw", "MGET", "foo", "n").stdout == b"bar\n2\n"
    assert cli(kv.port, "--no-raw", "INCR", "foo").stdout == (
        b"(error) ERR value is not an integer or out of range\n")
    assert cli(kv.port, "-n", "3", "SET", "in3", "x").stdout == b"OK\n"
    assert cli(kv.port, "-n", "3", "DBSIZE").stdout == b"1\n"
    assert cli(kv.port, "DBSIZE").stdout == b"2\n"


def test_redis_cli_scan_and_info(kv):
    for i in range(30):
        cli_result = cli(kv.port, "SET", f"user:{i}", str(i))
        assert cli_result.stdout == b"OK\n"
    out = cli(kv.port, "--scan", "--pattern", "user:1*").stdout.decode().split()
    assert sorted(out) == sorted(f"user:{i}" for i in range(30) if str(i).startswith("1"))
    info = cli(kv.port, "INFO", "keyspace").stdout.decode()
    assert "db0:keys=30,expires=0,avg_ttl=0" in info


def test_redis_cli_pipe_mode(kv):
    lines = b"".join(b"SET k%d %d\r\n" % (i, i) for i in range(500)) + b"INCR k7\r\n"
    result = cli(kv.port, "--pipe", stdin=lines)
    assert result.returncode == 0, result.stderr
    assert b"errors: 0, replies: 501" in result.stdout
    assert cli(kv.port, "GET", "k7").stdout == b"8\n"


def test_redis_cli_command_docs(kv):
    out = cli(kv.port, "COMMAND", "DOCS", "get").stdout.decode().split("\n")
    assert out[:7] == ["get", "summary", "Get the value of a key", "since", "1.0.0",
                       "group", "string"]


def _pty_cli_hint(port: int, typed: bytes) -> bytes | None:
    """Run redis-cli in a pseudo-terminal, type ``typed``; return the hint it draws after it."""
    hint_re = re.compile(re.escape(typed) + rb"\x1b\[[0-9;]*m([^\x1b]*)\x1b\[0m")
    pid, fd = pty.fork()
    if pid == 0:  # the child: becomes redis-cli on the terminal
        os.environ["TERM"] = "xterm"
        os.execv(REDIS_CLI, [REDIS_CLI, "-p", str(port)])
    # A wide terminal, so linenoise has room to show the hint.
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 200, 0, 0))
    screen = b""
    try:
        deadline = time.monotonic() + 10
        sent = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            screen += chunk
            if b"\x1b[6n" in chunk:  # linenoise asks where the cursor is
                os.write(fd, b"\x1b[1;1R")
            if not sent and screen.endswith(b"> "):
                os.write(fd, typed)
                sent = True
            found = hint_re.findall(screen)
            if found:
                return found[-1]
        return None
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)


def test_redis_cli_shows_argument_hints_from_command_docs(kv):
    """redis-cli 7 builds its hints from COMMAND DOCS; typing "set " must show SET's arguments."""
    if REDIS_CLI is None:
        pytest.skip("redis-cli is not installed (apt-get install redis-tools)")
    hint = _pty_cli_hint(kv.port, b"set ")
    assert hint is not None
    assert hint.startswith(b"key value [NX|XX] [GET] [EX seconds|PX milliseconds|"), hint


# --- redis-benchmark ------------------------------------------------------------------------

@pytest.mark.parametrize("extra", [[], ["-P", "16"]], ids=["plain", "pipelined"])
def test_redis_benchmark_runs_without_errors(kv, extra):
    if REDIS_BENCHMARK is None:
        pytest.skip("redis-benchmark is not installed (apt-get install redis-tools)")
    result = subprocess.run(
        [REDIS_BENCHMARK, "-p", str(kv.port), "-t", "set,get,incr,mset", "-n", "2000", "-q",
         *extra],
        capture_output=True, timeout=TOOL_TIMEOUT)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 0, output
    assert "error" not in output.lower(), output
    finals = [line for line in re.split(r"[\r\n]", output) if "requests per second" in line]
    for test in ("SET", "GET", "INCR", "MSET (10 keys)"):
        assert any(line.startswith(test + ":") for line in finals), output
    r = redis.Redis(host="127.0.0.1", port=kv.port, decode_responses=True)
    assert r.dbsize() >= 1
    assert int(r.get("counter:__rand_int__")) == 2000
