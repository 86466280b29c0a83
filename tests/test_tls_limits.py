"""TLS connections before their handshake: counted by maxclients, bounded in
time, cheap while silent, and their memory given back once they are gone.

Certificates come from test_security's throwaway CA (the ``certs`` fixture).
"""

from __future__ import annotations

import gc
import os
import resource
import signal
import socket
import ssl
import subprocess
import sys
import threading
from asyncio import sslproto

import pytest

from conftest import ROOT, free_port, raw_exchange, wait_for
from test_security import certs, tls_client, tls_server  # noqa: F401  (certs is a fixture)
import kvserver.server
from kvserver.tls import TLS_READ_SIZE

MAX_CLIENTS = b"-ERR max number of clients reached\r\n"


def client_hello() -> bytes:
    """The first flight of a TLS client: what a client sends before it waits."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing)
    with pytest.raises(ssl.SSLWantReadError):
        tls.do_handshake()
    return outgoing.read()


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=10)


def ssl_protocols() -> list:
    """asyncio's TLS layers alive in this process (garbage not yet collected included)."""
    return [o for o in gc.get_objects() if isinstance(o, sslproto.SSLProtocol)]


def is_closed(s: socket.socket) -> bool:
    try:
        while s.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return True


def test_tls_connections_count_against_maxclients_before_their_handshake(kv_config, certs):
    server = tls_server(kv_config, certs, maxclients=4, tls_auth_clients="no")
    tls_port = server.config.tls_port
    silent = [connect(tls_port) for _ in range(4)]
    try:
        # Four clients that never speak fill the server: a plain client is refused...
        wait_for(lambda: raw_exchange(server.port, b"PING\r\n") == MAX_CLIENTS,
                 "the silent TLS connections to count", timeout=10)
        # ...and a fifth TLS connection is closed at once (no plain-text reply on TLS).
        with connect(tls_port) as extra:
            assert is_closed(extra)
        silent.pop().close()
        wait_for(lambda: raw_exchange(server.port, b"PING\r\n") == b"+PONG\r\n",
                 "the freed slot", timeout=10)
    finally:
        for s in silent:
            s.close()
        server.stop()


def test_tls_handshake_time_is_bounded_from_accept(kv_config, certs, monkeypatch):
    monkeypatch.setattr(kvserver.server, "HANDSHAKE_TIMEOUT", 0.5)
    server = tls_server(kv_config, certs, tls_auth_clients="no")
    try:
        with connect(server.config.tls_port) as silent, \
                connect(server.config.tls_port) as stalled:
            stalled.sendall(client_hello())  # then never finishes the handshake
            assert is_closed(silent) and is_closed(stalled)  # within the socket timeout
        assert tls_client(server, certs).ping() is True
    finally:
        server.stop()


def test_silent_tls_connections_hold_no_tls_state(kv_config, certs):
    server = tls_server(kv_config, certs, maxclients=40, tls_auth_clients="no")
    tls_port = server.config.tls_port
    socks = [connect(tls_port) for _ in range(40)]
    gc_was_enabled = gc.isenabled()
    try:
        wait_for(lambda: raw_exchange(server.port, b"PING\r\n") == MAX_CLIENTS,
                 "the server to accept them", timeout=10)
        assert ssl_protocols() == []  # a socket and a task each, nothing of TLS yet
        hello = client_hello()
        speaking = socks[:10]
        for s in speaking:
            s.sendall(hello)
        for s in speaking:
            assert s.recv(5)[:1] == b"\x16"  # the server's handshake record
        layers = ssl_protocols()
        assert len(layers) == 10
        assert all(len(p._ssl_buffer) <= TLS_READ_SIZE for p in layers)
        del layers
        # Gone clients free their TLS state at once, not at some later GC pass.
        gc.disable()
        for s in socks:
            s.close()
        wait_for(lambda: ssl_protocols() == [], "their TLS state to be freed", timeout=10)
    finally:
        if gc_was_enabled:
            gc.enable()
        for s in socks:
            s.close()
        server.stop()


def _rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_tls_connection_flood_memory_is_bounded_and_returned(tmp_path, certs):
    """1000 silent connections, then 1000 stalled handshakes, in a real process.

    Before: ~300 KB per connection from accept (asyncio's 256 KiB TLS read
    buffer), kept after they closed (a GC cycle per failed handshake, and a
    fragmented heap).
    """
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < 1200:
        pytest.skip("needs 1200 open files")
    port, tls_port = free_port(), free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "kvserver", "--port", str(port), "--bind", "127.0.0.1",
         "--dir", str(tmp_path / "data"), "--tls-port", str(tls_port),
         "--tls-cert-file", str(certs / "server.crt"), "--tls-key-file", str(certs / "server.key"),
         "--tls-auth-clients", "no", "--maxclients", "1100"],
        cwd=str(ROOT), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = threading.Event()

    def pump() -> None:
        for line in proc.stdout:
            if b"ready to accept" in line:
                ready.set()
    threading.Thread(target=pump, daemon=True).start()
    socks: list[socket.socket] = []
    try:
        assert ready.wait(30)
        idle = _rss_mb(proc.pid)
        socks = [connect(tls_port) for _ in range(1000)]
        wait_for(lambda: raw_exchange(port, b"PING\r\n") == b"+PONG\r\n", "the server")
        wait_for(lambda: _count_server_sockets(proc.pid) >= 1000, "the accepts", timeout=20)
        assert _rss_mb(proc.pid) - idle < 40  # was ~300 MB
        hello = client_hello()
        for s in socks:
            s.sendall(hello)
        for s in socks:
            s.recv(5)  # each handshake is under way
        for s in socks:
            s.close()
        socks = []
        wait_for(lambda: _rss_mb(proc.pid) - idle < 40, "the memory to be given back",
                 timeout=20)
    finally:
        for s in socks:
            s.close()
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _count_server_sockets(pid: int) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n
