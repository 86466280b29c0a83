"""Every named limit, hit on purpose: maxclients, timeout, tcp-keepalive,
proto-max-bulk-len, client-query-buffer-limit, client-output-buffer-limit,
maxmemory (noeviction), and backpressure for a client that does not read.
"""

from __future__ import annotations

import socket
import time
from dataclasses import replace

import pytest
import redis

from conftest import raw_exchange, start_threaded, wait_for
from kvserver.connection import MAX_BATCH_REPLY_BYTES

OOM = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n"
#: Long enough for a periodic check (each client is looked at about once a
#: second) to run a few times; short enough to keep the file fast.
WAIT = 6.0


def resp(*argv: bytes | str) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def connect(port: int, rcvbuf: int | None = None) -> socket.socket:
    s = socket.socket()
    if rcvbuf:  # a small window, so the kernel cannot absorb megabytes for a client that never reads
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(5)
    s.connect(("127.0.0.1", port))
    return s


def ask(s: socket.socket, payload: bytes) -> bytes:
    s.sendall(payload)
    data = b""
    while not data.endswith(b"\r\n") or (data[:1] == b"$" and data.count(b"\r\n") < 2
                                         and not data.startswith(b"$-1")):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def is_closed_by_peer(s: socket.socket, timeout: float = WAIT) -> bool:
    """True once the server has closed ``s`` (EOF or reset), reading and discarding data."""
    s.settimeout(timeout)
    try:
        while s.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    except socket.timeout:
        return False
    return True


def clients(kv) -> list:
    return kv.call(lambda: list(kv.server.core.clients.values()))


# --- maxclients ------------------------------------------------------------------------------

def test_maxclients(kv_config) -> None:
    kv = start_threaded(kv_config, maxclients=3)
    try:
        held = [connect(kv.port) for _ in range(3)]
        for s in held:
            assert ask(s, b"PING\r\n") == b"+PONG\r\n"
        with connect(kv.port) as extra:  # read only: the reply is sent on accept
            assert extra.recv(100) == b"-ERR max number of clients reached\r\n"
            assert extra.recv(100) == b""
        held.pop().close()
        wait_for(lambda: len(clients(kv)) == 2, timeout=WAIT)
        with connect(kv.port) as again:
            assert ask(again, b"PING\r\n") == b"+PONG\r\n"
        # The cap is checked at accept (as Redis does): wait until the server
        # has seen that close, or the next client may find the slot still taken.
        wait_for(lambda: len(clients(kv)) == 2, timeout=WAIT)
        info = redis.Redis(host="127.0.0.1", port=kv.port)
        held[0].close()
        assert info.info("stats")["rejected_connections"] == 1
        info.config_set("maxclients", "1")  # at run time, for new clients
        with connect(kv.port) as extra:
            assert extra.recv(100) == b"-ERR max number of clients reached\r\n"
        for s in held:
            s.close()
    finally:
        kv.stop()


# --- timeout ---------------------------------------------------------------------------------

def test_idle_clients_are_closed_after_timeout(kv_config) -> None:
    kv = start_threaded(kv_config, timeout=1)
    try:
        idle = connect(kv.port)
        busy = connect(kv.port)
        assert ask(idle, b"PING\r\n") == b"+PONG\r\n"
        started = time.monotonic()
        closed_at = None
        while time.monotonic() - started < 4:
            assert ask(busy, b"PING\r\n") == b"+PONG\r\n"  # activity keeps it open
            idle.settimeout(0.25)
            try:
                if idle.recv(10) == b"":
                    closed_at = time.monotonic() - started
                    break
            except socket.timeout:
                pass
        assert closed_at is not None and 0.9 <= closed_at < 3.5, closed_at
        assert ask(busy, b"PING\r\n") == b"+PONG\r\n"
        busy.close()
        idle.close()
    finally:
        kv.stop()


def test_timeout_zero_never_closes_and_monitors_are_exempt(kv_config) -> None:
    kv = start_threaded(kv_config, timeout=0)
    try:
        s = connect(kv.port)
        kv.call(lambda: [setattr(c, "last_interaction", c.last_interaction - 3600)
                         for c in kv.server.core.clients.values()])
        time.sleep(1.2)
        assert ask(s, b"PING\r\n") == b"+PONG\r\n"
        redis.Redis(host="127.0.0.1", port=kv.port).config_set("timeout", "1")
        assert ask(s, b"MONITOR\r\n") == b"+OK\r\n"
        time.sleep(2.5)
        other = redis.Redis(host="127.0.0.1", port=kv.port)
        assert other.set("seen", "1")
        s.settimeout(5)
        assert b"seen" in s.recv(4096)  # the monitor is still connected
        s.close()
    finally:
        kv.stop()


# --- tcp-keepalive -----------------------------------------------------------------------------

def _server_side_keepalive(kv) -> list[tuple[int, int]]:
    def read():
        out = []
        for c in kv.server.core.clients.values():
            sock = c.link.transport.get_extra_info("socket")
            out.append((sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE),
                        sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)))
        return out
    return kv.call(read)


def test_tcp_keepalive(kv) -> None:
    with connect(kv.port) as s:
        assert ask(s, b"PING\r\n") == b"+PONG\r\n"
        assert _server_side_keepalive(kv) == [(1, 300)]  # Redis's default
    wait_for(lambda: not clients(kv), timeout=WAIT)
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_set("tcp-keepalive", "45")
    r.close()
    with connect(kv.port) as s:
        assert ask(s, b"PING\r\n") == b"+PONG\r\n"
        assert (1, 45) in _server_side_keepalive(kv)


# --- proto-max-bulk-len, client-query-buffer-limit -------------------------------------------

def test_proto_max_bulk_len(kv_config) -> None:
    kv = start_threaded(kv_config, proto_max_bulk_len=1000)
    try:
        bystander = connect(kv.port)
        assert ask(bystander, b"SET k v\r\n") == b"+OK\r\n"
        ok = raw_exchange(kv.port, resp("SET", "a", "x" * 1000))
        assert ok == b"+OK\r\n"
        bad = raw_exchange(kv.port, b"*3\r\n$3\r\nSET\r\n$1\r\nb\r\n$1001\r\n", until_close=True)
        assert bad == b"-ERR Protocol error: invalid bulk length\r\n"
        # APPEND cannot build a string past it either.
        assert raw_exchange(kv.port, resp("APPEND", "a", "y")).startswith(
            b"-ERR string exceeds maximum allowed size")
        assert ask(bystander, b"GET k\r\n") == b"$1\r\nv\r\n"
        bystander.close()
    finally:
        kv.stop()


#: Length and count fields no client sends: Redis answers each with a
#: protocol error and closes the connection.
ABSURD_HEADERS = [
    b"*" + b"9" * 5000, b"*1\r\n$" + b"9" * 5000, b"*1\r\n$" + b"1" * 4301,
    b"*-" + b"9" * 19, b"*1\r\n$-" + b"9" * 19, b"*1\r\n$" + b"9" * 20, b"*+1", b"*1\r\n$ 4",
    b"*1\r\n$4 ", b"*1\r\n$0004", b"*2147483648",
]


def test_absurd_length_fields_get_redis_protocol_errors(kv, redis_server, caplog) -> None:
    for header in ABSURD_HEADERS:
        payload = resp("PING") + header + b"\r\nPING\r\n"
        ours = raw_exchange(kv.port, payload, until_close=True)
        theirs = raw_exchange(redis_server, payload, until_close=True)
        assert ours == theirs, header[:30]
        assert ours.startswith(b"+PONG\r\n-ERR Protocol error: invalid "), header[:30]
    # Each was a protocol error of that client alone: no traceback, server fine.
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert raw_exchange(kv.port, b"PING\r\n") == b"+PONG\r\n"
    assert redis.Redis(port=kv.port).info("stats")["total_protocol_errors"] == len(ABSURD_HEADERS)


def test_client_query_buffer_limit(kv_config) -> None:
    kv = start_threaded(kv_config, client_query_buffer_limit=1024 * 1024)
    try:
        bystander = connect(kv.port)
        assert ask(bystander, resp("SET", "big", "z" * 900_000)) == b"+OK\r\n"
        s = connect(kv.port)
        s.sendall(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5000000\r\n")
        chunk = b"x" * 65536
        sent = 0
        try:
            while sent < 3_000_000:
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert sent < 3_000_000 or is_closed_by_peer(s)
        s.close()
        assert ask(bystander, b"EXISTS k\r\n") == b":0\r\n"
        assert ask(bystander, b"STRLEN big\r\n") == b":900000\r\n"
        stats = redis.Redis(host="127.0.0.1", port=kv.port).info("stats")
        assert stats["total_protocol_errors"] == 1
        bystander.close()
    finally:
        kv.stop()


# --- output buffers and backpressure ----------------------------------------------------------

VALUE = b"v" * (512 * 1024)


def _pipeline_big_gets(s: socket.socket, count: int) -> None:
    s.sendall(b"GET big\r\n" * count)


def test_backpressure_bounds_memory_for_a_client_that_does_not_read(kv) -> None:
    """No output limit (Redis's default for normal clients): the client is not dropped,
    but the server stops running its requests while its replies are not read."""
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.set("big", VALUE)
    count = 200  # 100 MiB of replies asked for
    s = connect(kv.port, rcvbuf=4096)
    _pipeline_big_gets(s, count)
    time.sleep(1.0)
    peak = 0
    for _ in range(10):
        pending = kv.call(lambda: max((c.link.output_pending() for c in kv.server.core.clients.values()),
                                      default=0))
        peak = max(peak, pending)
        time.sleep(0.05)
    # At most one batch of replies plus one reply plus the transport's buffer.
    assert 0 < peak < MAX_BATCH_REPLY_BYTES + 3 * len(VALUE), peak
    assert r.ping() is True  # others are served meanwhile
    # Now read everything: every reply arrives, intact and in order.
    s.settimeout(10)
    want = count * (len(VALUE) + len(b"$524288\r\n\r\n"))
    got = 0
    tail = b""
    while got < want:
        chunk = s.recv(1 << 20)
        assert chunk
        got += len(chunk)
        tail = (tail + chunk)[-64:]
    assert got == want and tail.endswith(b"v\r\n")
    s.close()


def test_output_buffer_hard_limit_disconnects(kv) -> None:
    """Backpressure keeps a normal client's unsent replies near one batch plus one
    reply, so the hard limit is met by replies bigger than it, as here."""
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.set("big", VALUE)
    r.config_set("client-output-buffer-limit", "normal 256kb 0 0")
    s = connect(kv.port, rcvbuf=4096)
    wait_for(lambda: len(clients(kv)) == 2, timeout=WAIT)
    _pipeline_big_gets(s, 200)
    # Watched from the server side: reading here would make this a client that reads.
    wait_for(lambda: len(clients(kv)) == 1, timeout=WAIT)  # only r is left
    assert is_closed_by_peer(s)
    s.close()
    assert r.get("big") == VALUE
    assert "normal 262144 0 0" in r.config_get("client-output-buffer-limit")[
        "client-output-buffer-limit"]


def test_output_buffer_soft_limit_disconnects_after_its_seconds(kv) -> None:
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.set("big", VALUE)
    r.config_set("client-output-buffer-limit", "normal 0 128kb 1")
    s = connect(kv.port, rcvbuf=4096)
    wait_for(lambda: len(clients(kv)) == 2, timeout=WAIT)
    started = time.monotonic()
    _pipeline_big_gets(s, 200)
    wait_for(lambda: len(clients(kv)) == 1, timeout=WAIT)
    assert time.monotonic() - started >= 1.0
    assert is_closed_by_peer(s)
    s.close()
    # A client that reads its replies is never near the limit.
    pipe = r.pipeline(transaction=False)
    for _ in range(50):
        pipe.get("big")
    assert pipe.execute() == [VALUE] * 50


# --- maxmemory -----------------------------------------------------------------------------------

def test_maxmemory_noeviction(kv) -> None:
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    assert r.set("k", "v")
    s = connect(kv.port)
    r.config_set("maxmemory", "1mb")  # far below this process's RSS
    assert ask(s, b"SET k2 v\r\n") == OOM
    assert ask(s, b"SETNX k3 v\r\n") == OOM
    assert ask(s, b"GET k\r\n") == b"$1\r\nv\r\n"  # reads still work
    assert ask(s, b"DEL k\r\n") == b":1\r\n"  # and so does freeing memory
    info = r.info("memory")
    assert info["maxmemory"] == 1024 * 1024 and info["maxmemory_policy"] == "noeviction"
    r.config_set("maxmemory", "0")
    assert ask(s, b"SET k2 v\r\n") == b"+OK\r\n"
    s.close()
    with pytest.raises(redis.ResponseError):
        r.config_set("maxmemory-policy", "allkeys-lru")  # a durable store never evicts


def test_maxmemory_is_sampled_by_the_periodic_cycle(kv_config) -> None:
    kv = start_threaded(kv_config, maxmemory=1024 * 1024)
    try:
        s = connect(kv.port)
        wait_for(lambda: ask(s, b"SET k v\r\n") == OOM, timeout=WAIT)
        # Raise the limit behind CONFIG SET's back: only the periodic sample can notice.
        core = kv.server.core
        kv.call(lambda: setattr(core, "config", replace(core.config, maxmemory=1 << 40)))
        wait_for(lambda: ask(s, b"SET k v\r\n") == b"+OK\r\n", timeout=WAIT)  # the next sample clears it
        s.close()
    finally:
        kv.stop()


def test_oom_reply_matches_redis(redis_server: int) -> None:
    r = redis.Redis(host="127.0.0.1", port=redis_server)
    r.config_set("maxmemory", "1")
    try:
        assert raw_exchange(redis_server, b"SET k v\r\n") == OOM
    finally:
        r.config_set("maxmemory", "0")
