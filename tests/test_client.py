"""The bundled clients (clients.Client, clients.AsyncClient) against a real server.

Every test runs against each server from tests/servers.py (kvserver and, if
installed, redis-server), through the ``server_address`` fixture.
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from clients import (AsyncClient, Client, ClientConnectionError, ClientTimeoutError,
                     NoAuthError, ResponseError, ServerError, WrongPassError,
                     WrongTypeError, error_from_reply, from_url, parse_url)
from clients import errors as client_errors
from kvserver import protocol as kvprotocol
from kvserver.errors import ReplyError
from servers import (ServerAddress, free_port, running_server,  # noqa: F401 (fixtures)
                     server_address)



@pytest.fixture
def client(server_address: ServerAddress) -> Iterator[Client]:
    with Client(server_address.host, server_address.port, timeout=5) as c:
        yield c


@pytest.fixture
def silent_listener() -> Iterator[int]:
    """A port that accepts connections (the kernel does) but never replies."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


# --- Client basics -------------------------------------------------------------------


def test_strings_and_keys(client: Client) -> None:
    assert client.ping() is True
    assert client.ping("hi") == b"hi"
    assert client.set("a", "1") is True
    assert client.get("a") == b"1"
    assert client.get("missing") is None
    assert client.set("a", "2", nx=True) is None
    assert client.set("a", "3", xx=True) is True
    assert client.set("b", "x", xx=True) is None
    assert client.set("a", "4", get=True) == b"3"
    assert client.incr("n") == 1
    assert client.incr("n", 5) == 6
    assert client.decr("n") == 5
    assert client.mset({"x": 1, "y": b"\x00\xff"}) is True
    assert client.mget("x", "y", "missing") == [b"1", b"\x00\xff", None]
    assert client.mget(["x", "y"]) == [b"1", b"\x00\xff"]
    assert client.exists("x", "y", "missing", "x") == 3
    assert client.delete("x", "missing") == 1
    assert client.dbsize() == 3
    assert sorted(client.keys()) == [b"a", b"n", b"y"]
    assert client.keys("[ay]") in ([b"a", b"y"], [b"y", b"a"])
    assert client.type("a") == "string"
    assert client.execute("GET", "a") == b"4"


def test_expiry(client: Client) -> None:
    assert client.set("a", "v", ex=100) is True
    assert 0 < client.ttl("a") <= 100
    assert client.set("b", "v", px=50_000) is True
    assert 0 < client.pttl("b") <= 50_000
    client.set("c", "v")
    assert client.ttl("c") == -1
    assert client.expire("c", 30) is True
    assert client.expire("missing", 30) is False
    assert client.ttl("missing") == -2
    assert client.persist("c") is True


def test_scan_iter_sees_every_key(client: Client) -> None:
    client.mset({f"k{i}": i for i in range(50)})
    client.set("other", 1)
    assert sorted(set(client.scan_iter(match="k*", count=7))) == sorted(
        f"k{i}".encode() for i in range(50))


def test_info_is_parsed(client: Client) -> None:
    client.set("a", 1)
    info = client.info()
    assert isinstance(info["redis_version"], str)
    assert isinstance(info["connected_clients"], int)
    assert info["db0"]["keys"] == 1
    assert "redis_version" not in client.info("keyspace")


def test_select_is_kept_across_reconnects(server_address: ServerAddress) -> None:
    with Client(server_address.host, server_address.port, db=2) as c:
        c.set("where", "db2")
        assert c.select(3) is True
        assert c.db == 3
        c.set("where", "db3")
        c.close()
        assert not c.connected
        assert c.get("where") == b"db3"  # reconnected, SELECT 3 again
    with Client(server_address.host, server_address.port, db=2) as c:
        assert c.get("where") == b"db2"
    with Client(server_address.host, server_address.port) as c:
        assert c.get("where") is None
        c.flushdb()


def test_resp3_replies(server_address: ServerAddress) -> None:
    with Client(server_address.host, server_address.port, resp=3) as c:
        hello = c.execute("HELLO", "3")
        assert hello[b"proto"] == 3
        assert isinstance(c.execute("CONFIG", "GET", "maxmemory"), dict)


def test_decode_responses(server_address: ServerAddress) -> None:
    with Client(server_address.host, server_address.port, decode_responses=True) as c:
        c.set("k", "välue")
        assert c.get("k") == "välue"
        assert c.mget("k", "missing") == ["välue", None]


def test_quit_closes_and_next_command_reconnects(client: Client) -> None:
    assert client.execute("QUIT") == "OK"
    assert not client.connected
    assert client.ping() is True


def test_killed_connection_raises_then_reconnects(server_address: ServerAddress,
                                                  client: Client) -> None:
    my_id = client.execute("CLIENT", "ID")
    with Client(server_address.host, server_address.port) as other:
        other.execute("CLIENT", "KILL", "ID", my_id)
    with pytest.raises(ClientConnectionError):
        client.ping()
    assert not client.connected
    assert client.ping() is True


def test_bad_argument_type_fails_before_sending(client: Client) -> None:
    with pytest.raises(TypeError):
        client.execute("SET", "k", object())
    assert client.ping() is True


def test_unix_socket(server_address: ServerAddress) -> None:
    if not server_address.unix_socket:
        pytest.skip("this server listens on TCP only")
    with Client(unix_socket=server_address.unix_socket) as c:
        assert c.set("via", "unix") is True
        assert c.address == server_address.unix_socket
    with Client(server_address.host, server_address.port) as c:
        assert c.get("via") == b"unix"


def test_big_array_reply_is_not_reparsed_per_chunk(client: Client, monkeypatch) -> None:
    # ReplyParser restarts a partial array on each attempt; the client must
    # gather geometrically more bytes between attempts, or a 2 MB KEYS reply
    # read 64 KiB at a time costs ~30 full re-parses (quadratic time).
    pipe = client.pipeline()
    for i in range(50_000):
        pipe.set(f"a-reasonably-long-key-name:{i:010d}", 1)
    pipe.execute()
    attempts = 0
    real_next_reply = kvprotocol.ReplyParser.next_reply

    def counting(self):
        nonlocal attempts
        attempts += 1
        return real_next_reply(self)

    monkeypatch.setattr(kvprotocol.ReplyParser, "next_reply", counting)
    assert len(client.keys()) == 50_000
    assert attempts < 20


# --- pipelines -------------------------------------------------------------------------


def test_pipeline_sends_one_write_and_keeps_order(client: Client, monkeypatch) -> None:
    writes: list[tuple[bytes, int]] = []
    real_exchange = Client._exchange

    def spy(self, payload, count):
        writes.append((payload, count))
        return real_exchange(self, payload, count)

    client.connect()
    monkeypatch.setattr(Client, "_exchange", spy)
    pipe = client.pipeline()
    assert pipe.set("a", 1).incr("a").get("a").execute_command("ECHO", "x") is pipe
    assert len(pipe) == 4
    assert pipe.execute() == [True, 2, b"2", b"x"]
    assert len(writes) == 1 and writes[0][1] == 4
    assert len(pipe) == 0
    assert pipe.execute() == []


def test_pipeline_errors_in_place_or_raised(client: Client) -> None:
    client.set("s", "text")
    with client.pipeline() as pipe:
        pipe.incr("s").set("t", 1).execute_command("NOSUCHCOMMAND").get("t")
        results = pipe.execute()
    assert isinstance(results[0], ResponseError)
    assert results[0].message == "ERR value is not an integer or out of range"
    assert results[1] is True
    assert isinstance(results[2], ResponseError)
    assert results[3] == b"1"

    pipe = client.pipeline()
    pipe.set("u", 1).incr("s").set("v", 2)
    with pytest.raises(ResponseError, match="not an integer"):
        pipe.execute(raise_on_error=True)
    # Every reply was read: the commands after the error ran and the
    # connection is still in step.
    assert client.mget("u", "v") == [b"1", b"2"]


def test_pipeline_select_is_tracked(client: Client) -> None:
    client.pipeline().select(4).set("p", 1).execute()
    assert client.db == 4
    client.close()
    assert client.get("p") == b"1"
    client.flushdb()


def test_pipeline_context_manager_discards_unsent(client: Client) -> None:
    with client.pipeline() as pipe:
        pipe.set("never", 1)
    assert len(pipe) == 0
    assert client.get("never") is None


# --- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("line, cls", [
    ("ERR syntax error", ResponseError),
    ("WRONGTYPE Operation against a key holding the wrong kind of value", WrongTypeError),
    ("NOAUTH Authentication required.", NoAuthError),
    ("WRONGPASS invalid username-password pair", WrongPassError),
    ("LOADING Redis is loading the dataset in memory", client_errors.LoadingError),
    ("BUSY Redis is busy running a script", client_errors.BusyError),
    ("READONLY You can't write against a read only replica.", client_errors.ReadOnlyError),
    ("EXECABORT Transaction discarded", client_errors.ExecAbortError),
    ("NOPERM this user has no permissions", client_errors.NoPermError),
    ("OOM command not allowed", client_errors.OutOfMemoryError),
    ("MISCONF Errors writing to the AOF file", client_errors.MisconfError),
    ("NOSCRIPT No matching script", client_errors.NoScriptError),
    ("SOMETHINGNEW that we do not know", ServerError),
    ("", ServerError),
])
def test_error_classes_by_prefix(line: str, cls: type) -> None:
    err = error_from_reply(ReplyError(line))
    assert type(err) is cls
    assert isinstance(err, ServerError) and isinstance(err, ReplyError)
    assert err.message == line and str(err) == line


def test_error_reply_is_raised_typed(client: Client) -> None:
    client.set("s", "text")
    with pytest.raises(ResponseError) as info:
        client.incr("s")
    assert info.value.prefix == "ERR"
    with pytest.raises(ResponseError, match="unknown command"):
        client.execute("NOSUCHCOMMAND")
    assert client.get("s") == b"text"  # the connection carries on


def test_wrongtype_is_raised_typed(client: Client) -> None:
    try:
        client.execute("RPUSH", "list", "a")
    except ResponseError as exc:
        pytest.skip(f"server has no lists: {exc}")
    with pytest.raises(WrongTypeError):
        client.get("list")


def test_password_errors_and_url_password(server_address: ServerAddress,
                                          client: Client) -> None:
    host, port = server_address.host, server_address.port
    client.execute("CONFIG", "SET", "requirepass", "s3cret")
    try:
        with Client(host, port) as anonymous:
            with pytest.raises(NoAuthError):
                anonymous.get("a")
        with pytest.raises(WrongPassError) as info:
            Client(host, port, password="wrong").connect()
        assert info.value.command == "AUTH"
        with Client(host, port, password="s3cret", db=1) as c:
            assert c.set("a", 1) is True
        with from_url(f"kv://:s3cret@{host}:{port}/1") as c:
            assert c.get("a") == b"1"
        with from_url(f"redis://default:s3cret@{host}:{port}?db=1") as c:
            assert c.get("a") == b"1"
            c.close()
            assert c.get("a") == b"1"  # the reconnect authenticates again
    finally:
        client.execute("CONFIG", "SET", "requirepass", "")


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("url, expected", [
    ("kv://example.com:7000/3", {"host": "example.com", "port": 7000, "db": 3}),
    ("kv://example.com", {"host": "example.com", "port": 6379}),
    ("redis://localhost:6380/0", {"host": "localhost", "port": 6380, "db": 0}),
    ("kv://:pa%40ss@h:1/2", {"host": "h", "port": 1, "db": 2, "password": "pa@ss"}),
    ("kv://alice:pw@h:1", {"host": "h", "port": 1, "username": "alice", "password": "pw"}),
    ("kv://pw@h", {"host": "h", "port": 6379, "password": "pw"}),
    ("kv://[::1]:7000", {"host": "::1", "port": 7000}),
    ("kv://h?db=5&timeout=1.5&resp=3",
     {"host": "h", "port": 6379, "db": 5, "timeout": 1.5, "resp": 3}),
    ("unix:///tmp/kv.sock", {"unix_socket": "/tmp/kv.sock"}),
    ("unix:///tmp/kv.sock?db=4", {"unix_socket": "/tmp/kv.sock", "db": 4}),
    ("unix://:pw@/tmp/kv.sock", {"unix_socket": "/tmp/kv.sock", "password": "pw"}),
    ("unix:///tmp/kv.sock?password=pw", {"unix_socket": "/tmp/kv.sock", "password": "pw"}),
])
def test_parse_url(url: str, expected: dict) -> None:
    assert parse_url(url) == expected


@pytest.mark.parametrize("url, message", [
    ("rediss://h:6379", "TLS"),
    ("kvs://h:6379", "TLS"),
    ("http://h", "unsupported URL scheme"),
    ("kv://h/notanumber", "invalid database"),
    ("kv://h:99999", "invalid port"),
    ("kv://h?color=red", "unknown option"),
    ("unix://", "no socket path"),
    ("kv://h?resp=4", "RESP version"),
])
def test_parse_url_refuses(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_url(url)


def test_from_url_connects(server_address: ServerAddress) -> None:
    host, port = server_address.host, server_address.port
    with Client.from_url(f"kv://{host}:{port}/3") as c:
        assert (c.host, c.port, c.db) == (host, port, 3)
        c.set("url", "kv")
    with from_url(f"redis://{host}:{port}", db=3) as c:  # keyword overrides the URL
        assert c.get("url") == b"kv"
    if server_address.unix_socket:
        with from_url(f"unix://{server_address.unix_socket}?db=3") as c:
            assert c.get("url") == b"kv"
    with Client(host, port, db=3) as c:
        c.flushdb()


# --- connection failures ---------------------------------------------------------------------


def test_timeout_when_server_never_replies(silent_listener: int) -> None:
    c = Client(port=silent_listener, timeout=0.2)
    start = time.monotonic()
    with pytest.raises(ClientTimeoutError) as info:
        c.ping()
    assert time.monotonic() - start < 3
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, ClientConnectionError)
    assert isinstance(info.value, ConnectionError)
    assert not c.connected  # a late reply must not be read as the next one's


def test_connection_refused() -> None:
    port = free_port()  # nothing listens here any more
    with pytest.raises(ClientConnectionError) as info:
        Client(port=port, timeout=2).ping()
    assert info.value.connecting
    assert info.value.reason == "Connection refused"
    assert info.value.address == f"127.0.0.1:{port}"
    assert not isinstance(info.value, ClientTimeoutError)


def test_missing_unix_socket(tmp_path: Path) -> None:
    with pytest.raises(ClientConnectionError) as info:
        Client(unix_socket=str(tmp_path / "nope.sock")).ping()
    assert info.value.reason == "No such file or directory"


# --- AsyncClient -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_basics(server_address: ServerAddress) -> None:
    async with AsyncClient(server_address.host, server_address.port, timeout=5) as c:
        assert await c.ping() is True
        assert await c.set("a", 1, ex=100) is True
        assert await c.get("a") == b"1"
        assert await c.incr("a") == 2
        assert await c.mget("a", "missing") == [b"2", None]
        assert await c.exists("a") == 1
        assert 0 < await c.ttl("a") <= 100
        assert await c.execute("ECHO", "hi") == b"hi"
        assert (await c.info("keyspace"))["db0"]["keys"] == 1
        assert await c.select(5) is True
        await c.set("k1", 1)
        await c.set("k2", 2)
        assert sorted([k async for k in c.scan_iter(match="k*")]) == [b"k1", b"k2"]
        await c.close()
        assert await c.dbsize() == 2  # reconnected into db 5
        await c.flushdb()
        with pytest.raises(ResponseError):
            await c.execute("NOSUCHCOMMAND")
        assert await c.execute("QUIT") == "OK"
        assert not c.connected
        assert await c.ping() is True


@pytest.mark.asyncio
async def test_async_pipeline(server_address: ServerAddress) -> None:
    async with AsyncClient.from_url(
            f"kv://{server_address.host}:{server_address.port}/0") as c:
        await c.set("s", "text")
        pipe = c.pipeline()
        pipe.set("a", 1).incr("a").incr("s").get("a")
        results = await pipe.execute()
        assert results[:2] == [True, 2] and results[3] == b"2"
        assert isinstance(results[2], ResponseError)
        pipe.incr("s").set("b", 1)
        with pytest.raises(ResponseError):
            await pipe.execute(raise_on_error=True)
        assert await c.get("b") == b"1"


@pytest.mark.asyncio
async def test_async_concurrent_tasks_share_one_connection(
        server_address: ServerAddress) -> None:
    async with AsyncClient(server_address.host, server_address.port, timeout=5) as c:
        results = await asyncio.gather(*(c.incr("n") for _ in range(50)))
        assert sorted(results) == list(range(1, 51))


@pytest.mark.asyncio
async def test_async_resp3(server_address: ServerAddress) -> None:
    async with AsyncClient(server_address.host, server_address.port, resp=3,
                           decode_responses=True) as c:
        assert (await c.execute("HELLO", "3"))["proto"] == 3


@pytest.mark.asyncio
async def test_async_timeout(silent_listener: int) -> None:
    c = AsyncClient(port=silent_listener, timeout=0.2)
    with pytest.raises(ClientTimeoutError):
        await c.ping()
    assert not c.connected
    await c.close()


@pytest.mark.asyncio
async def test_async_connection_refused() -> None:
    c = AsyncClient(port=free_port(), timeout=2)
    with pytest.raises(ClientConnectionError) as info:
        await c.ping()
    assert info.value.reason == "Connection refused"
    assert info.value.connecting
