"""MONITOR, SLOWLOG and INFO's live counters, through real sockets."""

from __future__ import annotations

import re
import socket
import time

import pytest
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
        r = redis.Redis(host="127.0.0.1", port=kv.port, db=2)
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
    r = redis.Redis(host="127.0.0.1", port=kv.port)
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
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    try:
        r.execute_command("SLOWLOG", "GET", "-2")
    except redis.ResponseError as exc:
        assert str(exc) == "count should be greater than or equal to -1"
    else:
        raise AssertionError("SLOWLOG GET -2 must fail")


def test_instantaneous_ops_per_sec_reflects_recent_load(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    pipe = r.pipeline(transaction=False)
    for _ in range(2000):
        pipe.ping()
    deadline = time.monotonic() + 10
    ops = 0
    while time.monotonic() < deadline and ops == 0:
        pipe.execute()
        ops = r.info("stats")["instantaneous_ops_per_sec"]
    assert ops > 0


# --- INFO commandstats / errorstats / latencystats, CONFIG RESETSTAT, CLIENT PAUSE -------

def _info(r, section: str) -> dict:
    return r.info(section)


def test_hot_path_commands_are_counted_in_commandstats_and_latencystats(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_resetstat()
    for _ in range(5):
        r.set("k", "1")      # the hot path (SET key value)
        r.get("k")
        r.execute_command("INCR", "k")   # (redis-py's incr() sends INCRBY)
    r.set("s", "x")
    with pytest.raises(redis.ResponseError, match="not an integer"):
        r.execute_command("INCR", "s")   # an error on the hot path: a failed call
    stats = _info(r, "commandstats")
    assert stats["cmdstat_get"]["calls"] == 5
    assert stats["cmdstat_set"]["calls"] == 6
    assert stats["cmdstat_incr"] == {**stats["cmdstat_incr"], "calls": 6, "failed_calls": 1,
                                     "rejected_calls": 0}
    latency = r.info("latencystats")["latency_percentiles_usec_get"]
    assert list(latency) == ["p50", "p99", "p99.9"]
    assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"]
    errors = _info(r, "errorstats")
    assert errors["errorstat_ERR"] == {"count": 1}


def test_config_resetstat_clears_what_redis_clears(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_set("slowlog-log-slower-than", 0)
    r.set("a", 1)
    r.get("a")
    r.get("nosuch")
    with pytest.raises(redis.ResponseError):
        r.execute_command("NOSUCHCOMMAND")
    with pytest.raises(redis.ResponseError):
        r.execute_command("GET")
    assert _info(r, "stats")["total_error_replies"] >= 2
    assert r.slowlog_len() > 0
    assert r.config_resetstat() is True
    stats = _info(r, "stats")
    for field in ("total_error_replies", "keyspace_hits", "keyspace_misses",
                  "total_connections_received"):
        assert stats[field] == 0, (field, stats[field])
    assert stats["total_net_input_bytes"] < 100  # the INFO request only
    assert stats["total_commands_processed"] == 1   # RESETSTAT itself, as in Redis
    assert _info(r, "errorstats") == {}
    assert set(_info(r, "commandstats")) == {"cmdstat_config|resetstat", "cmdstat_info"}
    assert r.slowlog_len() > 0  # Redis keeps the slow log (SLOWLOG RESET clears it)
    assert _info(r, "server")["uptime_in_seconds"] >= 0


def test_errorstats_keep_at_most_errorstats_limit_prefixes():
    from kvserver.core import ERRORSTATS_LIMIT, Stats
    stats = Stats()
    for i in range(ERRORSTATS_LIMIT + 10):
        stats.count_error(f"E{i} something failed")
    stats.count_error("E0 again")
    stats.count_error("no-space-in-the-first-32-characters-at-all here")
    assert len(stats.errors) == ERRORSTATS_LIMIT
    assert stats.errors["E0"] == 2
    assert stats.error_replies == ERRORSTATS_LIMIT + 12


def test_latency_histogram_percentiles_report_the_bucket_top():
    from kvserver.core import CommandStat, bucket_top_ns, latency_bucket
    for ns in (0, 1, 7, 999, 1000, 1001, 9023, 123_456, 10 ** 9, 10 ** 12):
        top = bucket_top_ns(latency_bucket(ns))
        assert ns <= top < max(ns * 1.2, 2), ns          # within a quarter octave above
        assert latency_bucket(top) == latency_bucket(ns)
        if ns >= 1000:  # buckets are contiguous once a quarter octave spans whole numbers
            assert latency_bucket(top + 1) == latency_bucket(ns) + 1
    stat = CommandStat()
    for ns in [1000] * 98 + [50_000, 2_000_000]:
        stat.record(ns)
    assert stat.calls == 100
    assert stat.percentile_ns(50) == bucket_top_ns(latency_bucket(1000))
    assert stat.percentile_ns(99) == bucket_top_ns(latency_bucket(50_000))
    assert stat.percentile_ns(99.9) == bucket_top_ns(latency_bucket(2_000_000))


def _send(sock: socket.socket, data: bytes) -> None:
    sock.sendall(data)


def test_client_pause_write_holds_writes_until_unpause(kv):
    with socket.create_connection(("127.0.0.1", kv.port)) as admin, \
            socket.create_connection(("127.0.0.1", kv.port)) as other:
        _send(admin, b"CLIENT PAUSE 100000 WRITE\r\n")
        assert read_until(admin, b"\r\n") == b"+OK\r\n"
        _send(other, b"GET x\r\nSET x 1\r\nGET x\r\n")
        assert read_until(other, b"$-1\r\n") == b"$-1\r\n"    # the read ran
        other.settimeout(0.3)
        with pytest.raises(socket.timeout):                   # the write (and what follows) waits
            other.recv(64)
        _send(admin, b"CLIENT LIST\r\n")
        listing = read_until(admin, b"cmd=client|list")
        assert b" flags=b " in listing                        # the waiting client is blocked
        _send(admin, b"CLIENT UNPAUSE\r\n")
        assert read_until(admin, b"+OK\r\n").endswith(b"+OK\r\n")
        assert read_until(other, b"$1\r\n1\r\n") == b"+OK\r\n$1\r\n1\r\n"


def test_client_pause_all_holds_everyone_including_the_pauser_until_it_ends(kv):
    with socket.create_connection(("127.0.0.1", kv.port)) as admin, \
            socket.create_connection(("127.0.0.1", kv.port)) as other:
        _send(admin, b"CLIENT PAUSE 300\r\n")
        assert read_until(admin, b"\r\n") == b"+OK\r\n"
        started = time.monotonic()
        # Rejected requests are answered at once (Redis rejects before its pause check).
        _send(other, b"NOSUCH\r\nGET\r\nPING\r\n")
        errors = read_until(other, b"'get' command\r\n")
        assert errors.startswith(b"-ERR unknown command") and b"PONG" not in errors
        _send(admin, b"CLIENT UNPAUSE\r\n")  # held too, as in Redis 7.0
        assert read_until(other, b"+PONG\r\n", timeout=5) == b"+PONG\r\n"
        assert read_until(admin, b"+OK\r\n", timeout=5) == b"+OK\r\n"
        assert time.monotonic() - started >= 0.25


def test_info_persistence_has_redis_fields_while_loading(kv):
    """Before the writer runs (recovery: -LOADING), # Persistence still has every Redis field,
    plus Redis's loading_* fields."""
    from kvserver.commands.introspection import info_text
    from kvserver.config import Config
    from kvserver.core import Core

    def fields(text):
        return [ln.split(":", 1)[0] for ln in text.split("\r\n")[1:] if ln]
    running = fields(_raw_info(kv, "persistence"))
    core = Core(Config())
    core.loading = True
    core.loading_progress = {"records": 10, "bytes": 4096, "percent": 25.0, "phase": "wal"}
    loading = fields(info_text(core, [b"persistence"]))
    redis_part = loading[:loading.index("loading_start_time")]
    assert redis_part == running[:len(redis_part)]
    assert loading[len(redis_part):] == ["loading_start_time", "loading_total_bytes",
                                         "loading_rdb_used_mem", "loading_loaded_bytes",
                                         "loading_loaded_perc", "loading_eta_seconds"]
    assert "loading_total_bytes:16384\r\n" in info_text(core, [b"persistence"])


def _raw_info(kv, section: str) -> str:
    with socket.create_connection(("127.0.0.1", kv.port)) as sock:
        sock.sendall(b"INFO %s\r\n" % section.encode())
        data = read_until(sock, b"\r\n\r\n")
        header, _, body = data.partition(b"\r\n")
        size = int(header[1:])
        while len(body) < size + 2:
            body += sock.recv(65536)
        return body[:size].decode()


def test_commands_before_and_including_save_are_counted(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_resetstat()
    with socket.create_connection(("127.0.0.1", kv.port)) as sock:
        sock.sendall(b"PING\r\nSAVE\r\nPING\r\n")
        assert read_until(sock, b"+PONG\r\n+OK\r\n+PONG\r\n") == b"+PONG\r\n+OK\r\n+PONG\r\n"
    # CONFIG RESETSTAT, then the three (INFO counts once it has run).
    assert _info(r, "stats")["total_commands_processed"] == 4
    assert _info(r, "commandstats")["cmdstat_ping"]["calls"] == 2


def test_a_paused_client_is_not_closed_as_idle(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_set("timeout", 1)
    try:
        with socket.create_connection(("127.0.0.1", kv.port)) as admin:
            admin.sendall(b"CLIENT PAUSE 1800\r\n")
            assert read_until(admin, b"\r\n") == b"+OK\r\n"
            # Connected only now and asking at once, so it is never idle
            # before its request (a loaded machine made that race flaky).
            with socket.create_connection(("127.0.0.1", kv.port)) as other:
                other.sendall(b"PING\r\n")  # waits past `timeout`, blocked like Redis's clients
                assert read_until(other, b"+PONG\r\n", timeout=5) == b"+PONG\r\n"
    finally:
        r.config_set("timeout", 0)
