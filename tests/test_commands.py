"""kvserver behaviour that cannot be compared with a real Redis reply for reply.

Client bookkeeping (ids, names, lists, kills), INFO, CONFIG, TIME and expiry
over time: the values are kvserver's own, so these tests check the shapes and
the rules rather than bytes. Byte-for-byte comparisons live in
test_differential.py.
"""

from __future__ import annotations

import re
import socket
import time

import pytest
import redis

from conftest import raw_exchange, wait_for


@pytest.fixture
def r(kv):
    client = redis.Redis(host="127.0.0.1", port=kv.port, decode_responses=True, protocol=2)
    yield client
    client.close()


def text_reply(kv, *argv: str) -> str:
    """A bulk-string reply (INFO, CLIENT LIST) as the exact text, which redis-py would parse."""
    request = b"*%d\r\n" % len(argv) + b"".join(
        b"$%d\r\n%s\r\n" % (len(a.encode()), a.encode()) for a in argv)
    with socket.create_connection(("127.0.0.1", kv.port), timeout=5) as sock:
        sock.sendall(request)
        f = sock.makefile("rb")
        header = f.readline()
        assert header.startswith(b"$"), header
        size = int(header[1:-2])
        return f.read(size + 2)[:-2].decode()


def connect(kv) -> socket.socket:
    return socket.create_connection(("127.0.0.1", kv.port), timeout=5)


def ask(sock: socket.socket, line: bytes) -> bytes:
    """Send one inline request, return one reply (enough for the short replies used here)."""
    sock.sendall(line + b"\r\n")
    data = b""
    while not data.endswith(b"\r\n") or (data.startswith(b"$") and data.count(b"\r\n") < 2):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


# --- CLIENT -----------------------------------------------------------------------

def test_client_ids_are_unique_and_increasing(kv):
    a, b = connect(kv), connect(kv)
    try:
        id_a = int(ask(a, b"CLIENT ID")[1:-2])
        id_b = int(ask(b, b"CLIENT ID")[1:-2])
        assert 0 < id_a < id_b
        assert int(ask(a, b"CLIENT ID")[1:-2]) == id_a
    finally:
        a.close()
        b.close()


def test_client_setname_getname(r):
    assert r.client_getname() is None
    assert r.client_setname("worker-7") is True
    assert r.client_getname() == "worker-7"
    with pytest.raises(redis.ResponseError, match="Client names cannot contain spaces"):
        r.execute_command("CLIENT", "SETNAME", "has space")
    assert r.client_getname() == "worker-7"
    assert r.execute_command("CLIENT", "SETNAME", "") == "OK"  # empty clears the name
    assert r.client_getname() is None


def test_client_list_and_info(kv, r):
    other = connect(kv)
    try:
        assert ask(other, b"CLIENT SETNAME other") == b"+OK\r\n"
        other_id = int(ask(other, b"CLIENT ID")[1:-2])
        r.client_setname("me")
        my_id = r.client_id()
        lines = r.execute_command("CLIENT", "LIST").splitlines()
        by_name = {re.search(r" name=(\S*) ", ln).group(1): ln for ln in lines}
        assert f"id={other_id} " in by_name["other"] and f"id={my_id} " in by_name["me"]
        assert "cmd=client|id" in by_name["other"] and "cmd=client|list" in by_name["me"]
        assert len(r.client_list(_type="normal")) == len(lines)
        only = r.execute_command("CLIENT", "LIST", "ID", other_id).splitlines()
        assert len(only) == 1 and " name=other " in only[0]
        with pytest.raises(redis.ResponseError, match="Unknown client type 'bogus'"):
            r.execute_command("CLIENT", "LIST", "TYPE", "bogus")
        with pytest.raises(redis.ResponseError, match="Invalid client ID"):
            r.execute_command("CLIENT", "LIST", "ID", "abc")
        info = r.client_info()
        assert info["id"] == my_id and info["name"] == "me" and info["db"] == 0
        assert info["cmd"] == "client|info" and info["resp"] == "2"
    finally:
        other.close()


def test_client_kill_by_id_and_by_address(kv, r):
    victim, victim2 = connect(kv), connect(kv)
    try:
        victim_id = int(ask(victim, b"CLIENT ID")[1:-2])
        assert r.client_kill_filter(_id=victim_id) == 1
        assert victim.recv(64) == b""  # closed by the server
        addr = [c["addr"] for c in r.client_list() if c["id"] != str(r.client_id())]
        assert len(addr) == 1
        assert r.client_kill(addr[0]) is True  # the old form: CLIENT KILL ip:port
        assert victim2.recv(64) == b""
        assert r.client_kill_filter(_id=999_999) == 0
        with pytest.raises(redis.ResponseError, match="No such client"):
            r.client_kill("1.2.3.4:5")
        with pytest.raises(redis.ResponseError, match="client-id should be greater than 0"):
            r.execute_command("CLIENT", "KILL", "ID", "0")
        assert r.ping() is True  # SKIPME yes by default: the killer lives on
    finally:
        victim.close()
        victim2.close()


def test_client_kill_self_replies_then_closes(kv):
    sock = connect(kv)
    try:
        my_id = ask(sock, b"CLIENT ID")[1:-2]
        sock.sendall(b"CLIENT KILL ID " + my_id + b" SKIPME no\r\nPING\r\n")
        data = b""
        while chunk := sock.recv(64):
            data += chunk
        assert data == b":1\r\n"  # the PING after it never ran
    finally:
        sock.close()


def test_client_setinfo_is_not_in_redis_7_0(r):
    """CLIENT SETINFO and the lib-name/lib-ver fields came with Redis 7.2; we answer as 7.0.15.

    redis-py sends SETINFO on connect and ignores the error, as it does with Redis 7.0.
    """
    with pytest.raises(redis.ResponseError, match="unknown subcommand 'SETINFO'. Try CLIENT HELP."):
        r.execute_command("CLIENT", "SETINFO", "LIB-NAME", "mylib")
    info = r.client_info()
    assert "lib-name" not in info and "lib-ver" not in info
    assert list(info)[-1] == "resp"


# --- INFO -------------------------------------------------------------------------

def parse_info(text: str) -> dict[str, dict[str, str]]:
    """INFO's text as {section: {field: value}}; every line must be a header or field:value."""
    sections: dict[str, dict[str, str]] = {}
    current = None
    assert text.endswith("\r\n")
    for line in text[:-2].split("\r\n"):
        if line.startswith("# "):
            current = sections.setdefault(line[2:].lower(), {})
        elif line:
            assert current is not None and re.fullmatch(r"[A-Za-z0-9_|-]+:[^\r\n]*", line), line
            key, _, value = line.partition(":")
            current[key] = value
    return sections


def test_info_sections_are_present_and_parseable(kv, r):
    text = text_reply(kv, "INFO")
    sections = parse_info(text)
    assert list(sections) == ["server", "clients", "memory", "persistence", "stats",
                              "replication", "cpu", "modules", "errorstats", "cluster",
                              "keyspace"]
    assert "# CPU\r\n" in text and sections["cluster"] == {"cluster_enabled": "0"}
    assert sections["server"]["redis_version"] == "7.0.15"
    assert sections["server"]["tcp_port"] == str(kv.port)
    assert int(sections["server"]["uptime_in_seconds"]) >= 0
    assert int(sections["clients"]["connected_clients"]) >= 1
    assert int(sections["memory"]["used_memory"]) > 0
    assert sections["replication"]["role"] == "master"
    assert float(sections["cpu"]["used_cpu_user"]) >= 0
    assert sections["keyspace"] == {}
    # Sections by name, several at once, "all", and an unknown one (empty).
    assert list(parse_info(text_reply(kv, "INFO", "server", "stats"))) == ["server", "stats"]
    everything = ["server", "clients", "memory", "persistence", "stats", "replication", "cpu",
                  "modules", "commandstats", "errorstats", "latencystats", "cluster", "keyspace"]
    assert list(parse_info(text_reply(kv, "INFO", "all"))) == everything
    assert list(parse_info(text_reply(kv, "INFO", "everything", "bogus"))) == everything
    assert list(parse_info(text_reply(kv, "INFO", "default"))) == list(sections)
    assert list(parse_info(text_reply(kv, "INFO", "KEYSPACE", "Server"))) == ["server", "keyspace"]
    assert text_reply(kv, "INFO", "nosuchsection") == ""


def test_info_keyspace_line_format(kv, r):
    r.set("a", 1)
    assert text_reply(kv, "INFO", "keyspace") == "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
    r.set("b", 2, px=100_000)
    r5 = redis.Redis(host="127.0.0.1", port=r.connection_pool.connection_kwargs["port"], db=5,
                     decode_responses=True)
    r5.set("c", 3)
    text = text_reply(kv, "INFO", "keyspace")
    m = re.fullmatch(r"# Keyspace\r\ndb0:keys=2,expires=1,avg_ttl=(\d+)\r\n"
                     r"db5:keys=1,expires=0,avg_ttl=0\r\n", text)
    assert m, text
    assert 90_000 < int(m.group(1)) <= 100_000


def test_info_stats_count_hits_misses_and_commands(kv, r):
    r.ping()  # connected (redis-py sends CLIENT SETINFO on connect) before counting
    before = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    r.set("k", "v")
    r.get("k")
    r.get("k")
    r.get("missing")
    after = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    assert int(after["keyspace_hits"]) - int(before["keyspace_hits"]) == 2
    assert int(after["keyspace_misses"]) - int(before["keyspace_misses"]) == 1
    # The four above and the first INFO (counted once it has run).
    assert int(after["total_commands_processed"]) - int(before["total_commands_processed"]) == 5
    with pytest.raises(redis.ResponseError):
        r.incr("k")
    errors = parse_info(text_reply(kv, "INFO", "stats"))["stats"]["total_error_replies"]
    assert int(errors) == int(after["total_error_replies"]) + 1


# --- CONFIG ------------------------------------------------------------------------

def test_config_set_mutable_option_then_get(r):
    assert r.config_get("hz") == {"hz": "10"}
    assert r.config_set("hz", 20) is True
    assert r.config_get("hz") == {"hz": "20"}
    assert r.execute_command("CONFIG", "SET", "HZ", "25", "maxclients", "500") == "OK"
    assert r.config_get("hz") == {"hz": "25"}
    assert r.config_get("maxclients") == {"maxclients": "500"}
    assert "hz" in r.config_get("h*") and "port" not in r.config_get("h*")


def test_config_set_immutable_unknown_and_bad_values(r):
    with pytest.raises(redis.ResponseError, match=r"^CONFIG SET failed \(possibly related to "
                       r"argument 'port'\) - can't set immutable config$"):
        r.config_set("port", 1234)
    with pytest.raises(redis.ResponseError, match="^Unknown option or number of arguments for "
                       "CONFIG SET - 'nosuch'$"):
        r.config_set("nosuch", 1)
    with pytest.raises(redis.ResponseError, match=r"argument 'hz'\)"):
        r.config_set("hz", "fast")
    with pytest.raises(redis.ResponseError, match="duplicate parameter"):
        r.execute_command("CONFIG", "SET", "hz", "20", "hz", "30")
    # A failed CONFIG SET changes nothing, not even the options before the bad one.
    with pytest.raises(redis.ResponseError):
        r.execute_command("CONFIG", "SET", "hz", "30", "appendfsync", "sometimes")
    assert r.config_get("hz") == {"hz": "10"}
    assert r.config_get("appendfsync") == {"appendfsync": "always"}


def test_config_resetstat(kv, r):
    r.set("k", "v")
    for _ in range(3):
        r.get("k")
    r.get("missing")
    stats = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    assert int(stats["keyspace_hits"]) == 3 and int(stats["total_commands_processed"]) > 4
    assert r.config_resetstat() is True
    stats = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    assert stats["keyspace_hits"] == "0" and stats["keyspace_misses"] == "0"
    assert stats["expired_keys"] == "0" and stats["total_error_replies"] == "0"
    assert int(stats["total_commands_processed"]) <= 1  # at most the INFO itself


# --- TIME ------------------------------------------------------------------------------

def test_time(kv):
    reply = raw_exchange(kv.port, b"TIME\r\n", expect=30)
    m = re.fullmatch(rb"\*2\r\n\$\d+\r\n(\d+)\r\n\$\d+\r\n(\d+)\r\n", reply)
    assert m, reply
    seconds, micros = int(m.group(1)), int(m.group(2))
    assert abs(seconds + micros / 1e6 - time.time()) < 5
    assert 0 <= micros < 1_000_000


# --- expiry over time -----------------------------------------------------------------

def test_active_expiry_removes_keys_nobody_reads(kv, r):
    pipe = r.pipeline(transaction=False)
    for i in range(200):
        pipe.set(f"short:{i}", i, px=50)
    pipe.set("keeper", "stays")
    pipe.execute()
    # Only DBSIZE and INFO: neither reads the keys, so only the active cycle
    # can remove them (DBSIZE counts expired keys not yet removed, as in Redis).
    wait_for(lambda: r.dbsize() == 1, timeout=10)
    assert text_reply(kv, "INFO", "keyspace") == "# Keyspace\r\ndb0:keys=1,expires=0,avg_ttl=0\r\n"
    assert int(parse_info(text_reply(kv, "INFO", "stats"))["stats"]["expired_keys"]) == 200
    assert r.get("keeper") == "stays"


def test_lazy_expiry_on_read(kv, r):
    # Switch the active cycle off for this server, so that only a read can expire the key.
    kv.call(setattr, kv.server.core.keyspace, "active_expire_cycle", lambda max_keys=0: 0)
    r.set("k", "v", px=30)
    r.set("other", "v")
    time.sleep(0.1)
    assert r.dbsize() == 2  # expired, but nobody has looked at it yet
    assert r.exists("other") == 1
    stats = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    assert stats["expired_keys"] == "0"
    assert r.get("k") is None
    assert r.dbsize() == 1
    stats = parse_info(text_reply(kv, "INFO", "stats"))["stats"]
    assert stats["expired_keys"] == "1" and stats["keyspace_misses"] == "1"
    # Every command that looks a key up expires it the same way.
    for command in (("EXISTS", "x"), ("TTL", "x"), ("TYPE", "x"), ("STRLEN", "x"),
                    ("APPEND", "x", "new")):
        r.set("x", "v", px=30)
        time.sleep(0.06)
        assert r.dbsize() == 2
        r.execute_command(*command)
        assert r.dbsize() == (2 if command[0] == "APPEND" else 1), command
        if command[0] == "APPEND":
            assert r.get("x") == "new" and r.ttl("x") == -1
            r.delete("x")
