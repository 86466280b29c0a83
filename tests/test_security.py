"""Access control: requirepass/AUTH, protected mode, TLS, rename-command.

TLS tests make a throwaway CA, server and client certificates with the
``openssl`` command (skipped if it is missing) and talk to the server with
redis-py and, when it supports ``--tls``, redis-cli.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
from dataclasses import replace

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from conftest import REDIS_CLI, ThreadedServer, free_port, raw_exchange, start_threaded
from kvserver.commands.auth import password_matches
from kvserver.config import ConfigError, from_args
from kvserver.server import StartupError, is_loopback, protected_mode_denies

OPENSSL = shutil.which("openssl")
#: redis-py retries a failed connection with backoff by default; a refusal is final here.
NO_RETRY = {"retry": Retry(NoBackoff(), 0)}
NOAUTH = b"-NOAUTH Authentication required.\r\n"
WRONGPASS = b"-WRONGPASS invalid username-password pair or user is disabled.\r\n"


def resp(*argv: bytes | str) -> bytes:
    parts = [a.encode() if isinstance(a, str) else a for a in argv]
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


def exchange(sock: socket.socket, payload: bytes, replies: int = 1) -> bytes:
    """Send, then read until ``replies`` CRLF-terminated lines came back (short replies only)."""
    sock.sendall(payload)
    data = b""
    while data.count(b"\r\n") < replies:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def read_until_closed(port: int, timeout: float = 5.0) -> bytes:
    """Connect, send nothing, return everything the server sends before it closes.

    (Sending first would race the server's close: unread input turns the
    close into a reset and the reply can be lost.)
    """
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        while chunk := s.recv(65536):
            data += chunk
    return data


# --- requirepass / AUTH ---------------------------------------------------------------

@pytest.fixture
def locked(kv_config):
    server = start_threaded(kv_config, requirepass="s3cret pass")
    yield server
    server.stop()


def test_every_command_but_auth_hello_quit_needs_auth(locked) -> None:
    with socket.create_connection(("127.0.0.1", locked.port), timeout=5) as s:
        for argv in (("PING",), ("GET", "k"), ("SET", "k", "v"), ("CONFIG", "GET", "*"),
                     ("FLUSHALL",), ("INFO",), ("SELECT", "1"), ("CLIENT", "ID")):
            assert exchange(s, resp(*argv)) == NOAUTH, argv
        # HELLO without AUTH: Redis's own NOAUTH wording; HELLO 3 does not switch.
        assert exchange(s, resp("HELLO", "3")).startswith(b"-NOAUTH HELLO must be called")
        assert exchange(s, resp("AUTH", "wrong")) == WRONGPASS
        assert exchange(s, resp("AUTH", "default", "wrong")) == WRONGPASS
        assert exchange(s, resp("AUTH", "alice", "s3cret pass")) == WRONGPASS
        assert exchange(s, resp("GET", "k")) == NOAUTH  # failures leave it locked
        assert exchange(s, resp("AUTH", "s3cret pass")) == b"+OK\r\n"
        assert exchange(s, resp("SET", "k", "v")) == b"+OK\r\n"
        assert exchange(s, resp("QUIT")) == b"+OK\r\n"
    with socket.create_connection(("127.0.0.1", locked.port), timeout=5) as s:
        assert exchange(s, resp("AUTH", "default", "s3cret pass")) == b"+OK\r\n"
        assert exchange(s, resp("GET", "k")) == b"$1\r\nv\r\n"


def test_inline_and_pipelined_requests_are_checked_too(locked) -> None:
    payload = b"GET k\r\nAUTH \"s3cret pass\"\r\nSET k v\r\nGET k\r\n"
    reply = raw_exchange(locked.port, payload, expect=len(NOAUTH) + 5 + 5 + 7)
    assert reply == NOAUTH + b"+OK\r\n+OK\r\n$1\r\nv\r\n"


def test_hello_auth_with_redis_py(locked) -> None:
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=locked.port, password="nope", protocol=3,
                    **NO_RETRY).ping()
    # HELLO 3 AUTH ...
    r = redis.Redis(host="127.0.0.1", port=locked.port, password="s3cret pass", protocol=3)
    assert r.ping() is True
    assert r.set("a", "1") and r.get("a") == b"1"
    r.close()
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(host="127.0.0.1", port=locked.port, **NO_RETRY).get("a")


def test_config_set_requirepass_at_run_time(kv) -> None:
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.config_set("requirepass", "pw")
    assert r.ping() is True  # an existing client stays authenticated, as in Redis
    with socket.create_connection(("127.0.0.1", kv.port), timeout=5) as s:
        assert exchange(s, resp("PING")) == NOAUTH
        r.config_set("requirepass", "")
        # With the password removed, nobody needs to authenticate any more.
        assert exchange(s, resp("PING")) == b"+PONG\r\n"


def test_auth_without_a_password_configured(kv) -> None:
    with socket.create_connection(("127.0.0.1", kv.port), timeout=5) as s:
        assert exchange(s, resp("AUTH", "x")).startswith(b"-ERR AUTH <password> called without")
        assert exchange(s, resp("AUTH", "default", "anything")) == b"+OK\r\n"


def test_password_compare_is_by_digest() -> None:
    assert password_matches(b"abc", b"abc")
    assert not password_matches(b"abc", b"abd")
    assert not password_matches(b"ab", b"abc")
    assert not password_matches(b"", b"abc")


def test_auth_replies_match_redis(redis_server: int) -> None:
    """The same exchanges against a real Redis 7.0 with a password set."""
    r = redis.Redis(host="127.0.0.1", port=redis_server)
    r.config_set("requirepass", "s3cret pass")
    try:
        with socket.create_connection(("127.0.0.1", redis_server), timeout=5) as s:
            assert exchange(s, resp("GET", "k")) == NOAUTH
            assert exchange(s, resp("AUTH", "wrong")) == WRONGPASS
            assert exchange(s, resp("AUTH", "default", "s3cret pass")) == b"+OK\r\n"
    finally:
        redis.Redis(host="127.0.0.1", port=redis_server,
                    password="s3cret pass").config_set("requirepass", "")


# --- protected mode ---------------------------------------------------------------------

@pytest.mark.parametrize("peer, local", [
    (("127.0.0.1", 5000), True), (("127.8.9.10", 1), True), (("::1", 5000, 0, 0), True),
    (("::ffff:127.0.0.1", 5000, 0, 0), True), ("/tmp/kv.sock", True), (None, True), ("", True),
    (("10.0.0.5", 5000), False), (("192.168.1.2", 1), False), (("2001:db8::1", 1, 0, 0), False),
    (("::ffff:10.0.0.1", 1, 0, 0), False), (("fe80::1%eth0", 1, 0, 2), False),
])
def test_protected_mode_decision(peer, local, kv_config) -> None:
    assert is_loopback(peer) is local
    assert protected_mode_denies(kv_config, peer) is (not local)
    assert not protected_mode_denies(replace(kv_config, requirepass="pw"), peer)
    assert not protected_mode_denies(replace(kv_config, protected_mode=False), peer)


def test_protected_mode_defaults_and_loopback_client_is_allowed(kv) -> None:
    assert from_args([]).protected_mode is True
    assert from_args([]).bind == "127.0.0.1"
    assert raw_exchange(kv.port, b"PING\r\n") == b"+PONG\r\n"
    assert redis.Redis(host="127.0.0.1", port=kv.port).config_get("protected-mode") == \
        {"protected-mode": "yes"}


def test_protected_mode_message_is_redis_s(kv) -> None:
    """A non-loopback peer gets Redis 7.0's DENIED line and is closed (peer address faked)."""
    from kvserver import server as server_mod
    real = server_mod.is_loopback
    server_mod.is_loopback = lambda peer: False
    try:
        reply = read_until_closed(kv.port)
    finally:
        server_mod.is_loopback = real
    assert reply.startswith(b"-DENIED Redis is running in protected mode because protected mode "
                            b"is enabled and no password is set for the default user.")
    assert reply.endswith(b"accepting connections from the outside.\r\n")
    assert reply.count(b"\r\n") == 1
    if shutil.which("redis-server"):
        binary = open(shutil.which("redis-server"), "rb").read()
        assert reply[:-2] in binary  # byte for byte the installed Redis's text
    assert redis.Redis(host="127.0.0.1", port=kv.port).info("stats")["rejected_connections"] == 1


# --- rename-command -----------------------------------------------------------------------

def test_rename_and_disable_dangerous_commands(kv_config) -> None:
    config = from_args(["--rename-command", "flushall", "", "--rename-command", "CONFIG",
                        "cfg-9f2", "--rename-command", "shutdown", ""], kv_config)
    server = ThreadedServer(config).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as s:
            assert exchange(s, resp("SET", "k", "v")) == b"+OK\r\n"
            for argv in (("FLUSHALL",), ("flushall", "ASYNC"), ("CONFIG", "SET", "hz", "20"),
                         ("SHUTDOWN", "NOSAVE")):
                assert exchange(s, resp(*argv)).startswith(b"-ERR unknown command"), argv
            assert exchange(s, resp("cfg-9f2", "SET", "hz", "20")) == b"+OK\r\n"
            assert exchange(s, resp("CFG-9F2", "GET", "hz")) == b"*2\r\n$2\r\nhz\r\n$2\r\n20\r\n"
            assert exchange(s, resp("GET", "k")) == b"$1\r\nv\r\n"
            assert exchange(s, resp("PING")) == b"+PONG\r\n"  # the server is still up
    finally:
        server.stop()
    # Renames are per server: a second server in this process is untouched.
    other = ThreadedServer(replace(kv_config, dir=kv_config.dir + "-2")).start()
    try:
        assert redis.Redis(host="127.0.0.1", port=other.port).flushall() is True
    finally:
        other.stop()


def test_rename_command_from_config_file_and_errors(tmp_path, kv_config) -> None:
    conf = tmp_path / "kv.conf"
    conf.write_text('rename-command FLUSHALL ""\nrename-command DEBUGX ""\n')
    config = from_args([str(conf)], kv_config)
    assert config.rename_commands == (("flushall", ""), ("debugx", ""))
    assert "rename-command" not in config.matching("*")  # hidden, as in Redis
    with pytest.raises(StartupError, match="unknown command 'debugx'"):
        ThreadedServer(config).start()
    with pytest.raises(ConfigError):
        from_args(["--rename-command", "a", "b", "c"])


def test_rename_command_cannot_be_set_at_run_time(kv) -> None:
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    with pytest.raises(redis.ResponseError, match="Unknown option|immutable"):
        r.config_set("rename-command", "flushall x")


# --- TLS ------------------------------------------------------------------------------------

def _openssl(*args: str, cwd) -> None:
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=30)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """A throwaway CA, a server certificate for 127.0.0.1/localhost and a client certificate."""
    if OPENSSL is None:
        pytest.skip("the openssl command is not installed")
    d = tmp_path_factory.mktemp("tls")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    _openssl("req", "-x509", "-new", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
             "-subj", "/CN=kvserver test CA", cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name in ("server", "client"):
        _openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN=kvserver test {name}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2",
                 "-extfile", f"{name}.ext", cwd=d)
    # A second CA whose client certificates the server must refuse.
    _openssl("req", "-x509", "-new", *ec, "-keyout", "rogue.key", "-out", "rogue.crt",
             "-days", "2", "-subj", "/CN=rogue", cwd=d)
    return d


def tls_server(kv_config, certs, **changes) -> ThreadedServer:
    return start_threaded(kv_config, tls_port=free_port(), tls_cert_file=str(certs / "server.crt"),
                          tls_key_file=str(certs / "server.key"),
                          tls_ca_cert_file=str(certs / "ca.crt"), **changes)


def tls_client(server: ThreadedServer, certs, cert: str | None = "client", **kw) -> redis.Redis:
    extra = {}
    if cert is not None:
        extra = {"ssl_certfile": str(certs / f"{cert}.crt"), "ssl_keyfile": str(certs / f"{cert}.key")}
    return redis.Redis(host="127.0.0.1", port=server.config.tls_port, ssl=True,
                       ssl_ca_certs=str(certs / "ca.crt"), socket_timeout=5, **NO_RETRY, **extra, **kw)


def test_tls_with_client_certificates(kv_config, certs) -> None:
    server = tls_server(kv_config, certs)  # tls-auth-clients yes (Redis's default)
    try:
        r = tls_client(server, certs)
        assert r.ping() is True
        assert r.set("k", "v" * 100_000) is True
        assert r.get("k") == b"v" * 100_000
        pipe = r.pipeline(transaction=False)
        for i in range(500):
            pipe.incr("n")
        assert pipe.execute()[-1] == 500
        assert r.client_list()[0]["addr"].startswith("127.0.0.1:")
        r.close()
        for cert in (None, "rogue"):
            with pytest.raises((redis.ConnectionError, ssl.SSLError)):
                tls_client(server, certs, cert=cert).ping()
        # Plain TCP still works on the plain port, and is refused on the TLS port.
        assert raw_exchange(server.port, b"GET k\r\n", expect=100_008).endswith(b"v\r\n")
        assert not raw_exchange(server.config.tls_port, b"PING\r\n", until_close=True,
                                timeout=3).startswith(b"+PONG")
    finally:
        server.stop()


def test_tls_optional_and_no_client_certificate(kv_config, certs) -> None:
    for mode in ("optional", "no"):
        server = tls_server(replace(kv_config, dir=f"{kv_config.dir}-{mode}"), certs,
                            tls_auth_clients=mode)
        try:
            assert tls_client(server, certs, cert=None).ping() is True
            assert tls_client(server, certs).ping() is True
            if mode == "optional":  # a certificate that is offered must still verify
                with pytest.raises((redis.ConnectionError, ssl.SSLError)):
                    tls_client(server, certs, cert="rogue").ping()
        finally:
            server.stop()


def test_tls_with_password(kv_config, certs) -> None:
    server = tls_server(kv_config, certs, requirepass="pw")
    try:
        with pytest.raises(redis.AuthenticationError):
            tls_client(server, certs).get("k")
        assert tls_client(server, certs, password="pw").set("k", "1") is True
    finally:
        server.stop()


def test_tls_with_redis_cli(kv_config, certs) -> None:
    if REDIS_CLI is None:
        pytest.skip("redis-cli is not installed")
    if "--tls" not in subprocess.run([REDIS_CLI, "--help"], capture_output=True,
                                     text=True).stdout + subprocess.run(
            [REDIS_CLI, "--help"], capture_output=True, text=True).stderr:
        pytest.skip("this redis-cli was built without TLS")
    server = tls_server(kv_config, certs)
    try:
        base = [REDIS_CLI, "-h", "127.0.0.1", "-p", str(server.config.tls_port), "--tls",
                "--cacert", str(certs / "ca.crt"), "--cert", str(certs / "client.crt"),
                "--key", str(certs / "client.key")]
        out = subprocess.run([*base, "SET", "greeting", "hello tls"], capture_output=True,
                             text=True, timeout=20)
        assert out.stdout.strip() == "OK", out
        out = subprocess.run([*base, "GET", "greeting"], capture_output=True, text=True, timeout=20)
        assert out.stdout.strip() == "hello tls"
    finally:
        server.stop()


def test_tls_startup_errors(kv_config, certs) -> None:
    with pytest.raises(StartupError, match="tls-cert-file"):
        start_threaded(kv_config, tls_port=free_port())
    with pytest.raises(StartupError, match="tls-ca-cert-file"):
        start_threaded(kv_config, tls_port=free_port(), tls_cert_file=str(certs / "server.crt"),
                       tls_key_file=str(certs / "server.key"))
    with pytest.raises(StartupError, match="cannot load"):
        start_threaded(kv_config, tls_port=free_port(), tls_cert_file=str(certs / "nope.crt"),
                       tls_key_file=str(certs / "server.key"), tls_auth_clients="no")
    # The data directory lock was never taken or was released: a normal start works.
    server = start_threaded(kv_config)
    server.stop()


# --- limits before authentication (Redis 7, CVE-2021-32675) ------------------------------

UNAUTH_EXCHANGES = [
    # (payload, what comes back, whether the connection is closed after it)
    (b"*11\r\n", b"-ERR Protocol error: unauthenticated multibulk length\r\n", True),
    (b"*2\r\n$4\r\nECHO\r\n$16385\r\n", b"-ERR Protocol error: unauthenticated bulk length\r\n",
     True),
    # At the limits: accepted (then refused as a command, NOAUTH).
    (b"*2\r\n$4\r\nECHO\r\n$16384\r\n" + b"x" * 16384 + b"\r\n", NOAUTH, False),
    # After AUTH in the same read, the next request is parsed without them.
    (resp("AUTH", "s3cret pass") + resp("ECHO", *(["x"] * 10)),
     b"+OK\r\n-ERR wrong number of arguments for 'echo' command\r\n", False),
]


def _send_and_read(s: socket.socket, payload: bytes, size: int) -> bytes:
    """Send, then read until ``size`` bytes came back or the peer closed."""
    s.sendall(payload)
    got = b""
    while len(got) < size:
        chunk = s.recv(65536)
        if not chunk:
            break
        got += chunk
    return got


@pytest.mark.parametrize("payload, reply, closed", UNAUTH_EXCHANGES)
def test_unauthenticated_clients_get_redis_7_request_limits(locked, payload, reply, closed):
    with socket.create_connection(("127.0.0.1", locked.port), timeout=5) as s:
        assert _send_and_read(s, payload, len(reply)) == reply
        if closed:
            s.settimeout(5)
            assert s.recv(1) == b""  # the protocol error closed the connection


def test_limits_do_not_apply_without_a_password(kv) -> None:
    assert raw_exchange(kv.port, resp("SET", "k", "x" * 20000)) == b"+OK\r\n"
    assert raw_exchange(kv.port, resp("DEL", *(["k"] * 11))) == b":1\r\n"


def test_limits_do_not_apply_once_authenticated(locked) -> None:
    big = resp("SET", "k", "x" * 20000)
    assert raw_exchange(locked.port, resp("AUTH", "s3cret pass") + big, expect=10) == \
        b"+OK\r\n+OK\r\n"


@pytest.mark.parametrize("payload, reply, closed", UNAUTH_EXCHANGES)
def test_unauthenticated_limits_match_redis(redis_server: int, payload, reply, closed) -> None:
    r = redis.Redis(host="127.0.0.1", port=redis_server)
    r.config_set("requirepass", "s3cret pass")
    try:
        with socket.create_connection(("127.0.0.1", redis_server), timeout=5) as s:
            assert _send_and_read(s, payload, len(reply)) == reply
    finally:
        redis.Redis(host="127.0.0.1", port=redis_server,
                    password="s3cret pass").config_set("requirepass", "")
