"""MONITOR, SLOWLOG and INFO's live counters, through real sockets."""

from __future__ import annotations

import socket
import time

import redis


def read_until(sock: socket.socket, needle: bytes, timeout: float = 5.0) -> bytes:
    sock.settimeout(timeout)
    data = b""
    deadline = time.monotonic() + timeout
    while needle not in data and time.monotonic() < deadline:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_monitor_sees_other_clients_commands_quoted(kv):
    with socket.create_connection(("127.0.0.1", kv.port)) as mon:
        mon.sendall(b"MONITOR\r\n")
        assert read_until(mon, b"+OK\r\n") == b"+OK\r\n"
        r = redis.Redis(port=kv.port, db=2)
        r.set("key", b"a\r\n\x00b")
        data = read_until(mon, b'"SET"')
        line = data.split(b"\r\n")[-2] if data.endswith(b"\r\n") else data
        assert line.startswith(b"+")
        assert b'[2 127.0.0.1:' in line
        assert line.endswith(b'"SET" "key" "a\\r\\n\\x00b"')


def test_monitor_redacts_auth(kv):
    with socket.create_connection(("127.0.0.1", kv.port)) as mon:
        mon.sendall(b"MONITOR\r\n")
        read_until(mon, b"+OK\r\n")
        with socket.create_connection(("127.0.0.1", kv.port)) as other:
            other.sendall(b"AUTH hunter2\r\nPING\r\n")
            read_until(other, b"+PONG")
        data = read_until(mon, b'"PING"')
        assert b"hunter2" not in data
        assert b'"AUTH" "(redacted)"' in data


def test_slowlog_records_commands_over_the_threshold(kv):
    r = redis.Redis(port=kv.port)
    assert r.slowlog_len() == 0
    r.config_set("slowlog-log-slower-than", 0)   # log everything
    r.set("a", "x" * 200)
    r.execute_command("MSET", *[f"k{i}" for i in range(40)])
    entries = r.execute_command("SLOWLOG", "GET", "-1")
    by_cmd = {e[3][0]: e for e in entries}
    set_entry = by_cmd[b"set"] if b"set" in by_cmd else by_cmd[b"SET"]
    assert set_entry[3][2] == b"x" * 128 + b"... (72 more bytes)"
    mset = by_cmd[b"MSET"]
    assert len(mset[3]) == 32
    assert mset[3][-1] == b"... (10 more arguments)"
    assert isinstance(set_entry[2], int) and set_entry[2] >= 0
    assert set_entry[4].startswith(b"127.0.0.1:")
    r.config_set("slowlog-max-len", 2)
    r.ping()
    assert r.slowlog_len() == 2
    r.config_set("slowlog-log-slower-than", -1)
    assert r.slowlog_reset() is True
    r.ping()
    assert r.slowlog_len() == 0


def test_slowlog_get_count_errors(kv):
    r = redis.Redis(port=kv.port)
    try:
        r.execute_command("SLOWLOG", "GET", "-2")
    except redis.ResponseError as exc:
        assert str(exc) == "count should be greater than or equal to -1"
    else:
        raise AssertionError("SLOWLOG GET -2 must fail")


def test_instantaneous_ops_per_sec_reflects_recent_load(kv):
    r = redis.Redis(port=kv.port)
    pipe = r.pipeline(transaction=False)
    for _ in range(2000):
        pipe.ping()
    deadline = time.monotonic() + 10
    ops = 0
    while time.monotonic() < deadline and ops == 0:
        pipe.execute()
        ops = r.info("stats")["instantaneous_ops_per_sec"]
    assert ops > 0
