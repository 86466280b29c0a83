"""Pub/sub: replies, push frames and errors byte for byte against redis-server 7.0.15
(RESP2 and RESP3), redis-py's PubSub (sync and asyncio), RESET, CLIENT LIST and
INFO fields, the slow subscriber, and the durability rule for messages.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import pytest

from conftest import ThreadedServer
from kvserver.config import Config
from test_differential import RawClient, encode_request, kv_port, redis_port  # noqa: F401

redis = pytest.importorskip("redis")


class Duo:
    """Named connections to kvserver and to redis-server, driven in lockstep."""

    def __init__(self, kv_port: int, redis_port: int) -> None:
        self.ports = {"kv": kv_port, "redis": redis_port}
        self.conns: dict[str, dict[str, RawClient]] = {"kv": {}, "redis": {}}

    def conn(self, server: str, name: str) -> RawClient:
        conns = self.conns[server]
        if name not in conns:
            conns[name] = RawClient(self.ports[server])
        return conns[name]

    def same(self, name: str, *argv, frames: int = 1) -> list:
        """Send argv on connection ``name`` of both servers; read ``frames`` replies/pushes,
        which must be identical byte for byte. Returns kvserver's parsed values."""
        got = {}
        for server in ("kv", "redis"):
            c = self.conn(server, name)
            c.send(encode_request([a if isinstance(a, bytes) else str(a).encode() for a in argv]))
            got[server] = [c.read() for _ in range(frames)]
        kv = [r.raw for r in got["kv"]]
        theirs = [r.raw for r in got["redis"]]
        assert kv == theirs, f"{argv!r}\n  kvserver: {kv!r}\n  redis:    {theirs!r}"
        return [r.value for r in got["kv"]]

    def hello3(self, name: str) -> None:
        """Switch ``name`` to RESP3 on both (HELLO's reply differs in its client id)."""
        for server in ("kv", "redis"):
            assert self.conn(server, name).call("HELLO", "3").value[b"proto"] == 3

    def read_same(self, name: str, frames: int = 1) -> list:
        """Read ``frames`` more frames on ``name`` of both (pushes caused by another connection)."""
        got = {s: [self.conn(s, name).read() for _ in range(frames)] for s in ("kv", "redis")}
        kv = [r.raw for r in got["kv"]]
        assert kv == [r.raw for r in got["redis"]], f"kvserver {kv!r}, redis {got['redis']!r}"
        return [r.value for r in got["kv"]]

    def close(self) -> None:
        for conns in self.conns.values():
            for c in conns.values():
                c.close()


@pytest.fixture
def duo(kv_port, redis_port):  # noqa: F811
    d = Duo(kv_port, redis_port)
    yield d
    d.close()


@pytest.mark.parametrize("resp", [2, 3])
def test_subscribe_publish_unsubscribe_match_redis(duo, resp):
    if resp == 3:
        duo.hello3("sub")
    duo.same("sub", "SUBSCRIBE", "news", "sport", frames=2)
    duo.same("sub", "SUBSCRIBE", "news")           # again: count unchanged
    duo.same("sub", "PSUBSCRIBE", "n*", "s?ort", frames=2)
    duo.same("pub", "PUBLISH", "news", "hello")    # channel + pattern: 2 receivers
    duo.read_same("sub", 2)
    duo.same("pub", "PUBLISH", "sport", "")       # empty message
    duo.read_same("sub", 2)
    duo.same("pub", "PUBLISH", "nothing", "x")     # matches n* only
    duo.read_same("sub", 1)
    duo.same("pub", "PUBLISH", "zzz", "x")         # nobody: 0
    duo.same("pub", "PUBSUB", "NUMSUB", "news", "sport", "zzz")
    duo.same("pub", "PUBSUB", "NUMPAT")
    duo.same("pub", "PUBSUB", "CHANNELS", "n*")
    duo.same("pub", "PUBSUB", "NUMSUB")
    if resp == 3:   # a RESP3 subscriber may ask itself (replies in RESP3 forms)
        duo.same("sub", "PUBSUB", "NUMSUB", "news", "zzz")
        duo.same("sub", "PUBSUB", "CHANNELS", "s*")
        duo.same("sub", "PUBSUB", "NUMPAT")
        duo.same("sub", "PUBSUB", "HELP")
    duo.same("sub", "UNSUBSCRIBE", "news")
    duo.same("sub", "UNSUBSCRIBE", "nosuch")
    duo.same("sub", "PUNSUBSCRIBE", "s?ort")
    duo.same("sub", "PUNSUBSCRIBE", "nosuch")
    duo.same("sub", "PING")
    duo.same("sub", "PING", "hi")
    duo.same("sub", "UNSUBSCRIBE")                 # the last channel (sport)
    duo.same("sub", "PUNSUBSCRIBE")                # the last pattern (n*)
    duo.same("sub", "UNSUBSCRIBE")                 # none left: nil channel, 0
    duo.same("sub", "PUNSUBSCRIBE")
    duo.same("sub", "PING")                        # out of pub/sub: +PONG again
    duo.same("sub", "SET", "k", "v")


@pytest.mark.parametrize("resp", [2, 3])
def test_shard_channels_match_redis(duo, resp):
    if resp == 3:
        duo.hello3("sub")
    duo.same("sub", "SSUBSCRIBE", "a", "b", frames=2)
    duo.same("sub", "SUBSCRIBE", "a")              # plain count apart from shard count
    duo.same("pub", "SPUBLISH", "a", "m1")
    duo.read_same("sub", 1)
    duo.same("pub", "PUBLISH", "a", "m2")
    duo.read_same("sub", 1)
    duo.same("pub", "PUBSUB", "SHARDNUMSUB", "a", "b", "c")
    duo.same("pub", "PUBSUB", "SHARDCHANNELS", "a")
    duo.same("pub", "PUBSUB", "SHARDCHANNELS", "x*")
    duo.same("sub", "SUNSUBSCRIBE", "a")
    duo.same("sub", "SUNSUBSCRIBE", "zz")
    duo.same("sub", "SUNSUBSCRIBE")                # b
    duo.same("sub", "SUNSUBSCRIBE")                # none: nil
    duo.same("sub", "UNSUBSCRIBE")


def test_resp2_subscriber_may_run_only_the_pubsub_commands(duo):
    duo.same("sub", "SUBSCRIBE", "c")
    duo.same("sub", "GET", "k")
    duo.same("sub", "set", "k", "v")
    duo.same("sub", "PUBLISH", "c", "x")
    duo.same("sub", "HELLO", "3")
    duo.same("sub", "MULTI")
    duo.same("sub", "PING", "a", "b")              # arity first, as in Redis
    duo.same("sub", "NOSUCH")
    duo.same("sub", "RESET")                       # leaves pub/sub without confirmations
    duo.same("sub", "GET", "k")
    duo.same("pub", "PUBSUB", "NUMSUB", "c")


def test_resp3_subscriber_runs_every_command_and_sees_its_own_messages(duo):
    duo.hello3("sub")
    duo.same("sub", "SUBSCRIBE", "c")
    duo.same("sub", "SET", "k", "v")
    duo.same("sub", "GET", "k")
    duo.same("sub", "PING")
    duo.same("sub", "PUBLISH", "c", "mine", frames=2)   # the push, then :1
    duo.same("sub", "RESET")
    duo.same("sub", "PING")


def test_pubsub_container_errors_and_help_match_redis(duo):
    for argv in (("PUBSUB",), ("PUBSUB", "NOPE"), ("PUBSUB", "CHANNELS", "a", "b"),
                 ("PUBSUB", "NUMPAT", "x"), ("PUBSUB", "SHARDCHANNELS", "a", "b"),
                 ("PUBSUB", "HELP"), ("PUBSUB", "help", "x"), ("SUBSCRIBE",), ("PSUBSCRIBE",),
                 ("SSUBSCRIBE",), ("PUBLISH", "c"), ("SPUBLISH", "c"), ("PUBLISH", "c", "m", "x"),
                 ("RESET", "x")):
        duo.same("pub", *argv)


def test_subscribe_inside_multi_matches_redis(duo):
    duo.same("c", "MULTI")
    duo.same("c", "SUBSCRIBE", "ch")
    duo.same("c", "SSUBSCRIBE", "sh")
    duo.same("c", "EXEC")                          # SSUBSCRIBE refused there, as Redis
    duo.same("c", "GET", "k")                      # now a RESP2 subscriber
    duo.same("c", "UNSUBSCRIBE")
    duo.same("c", "GET", "k")


def test_reset_matches_redis_and_clears_the_connection_state(duo):
    duo.same("c", "SELECT", "3")
    duo.same("c", "CLIENT", "SETNAME", "worker")
    duo.same("c", "WATCH", "w")
    duo.same("c", "MULTI")
    duo.same("c", "SET", "x", "1")
    duo.same("c", "RESET")
    duo.same("c", "EXEC")                          # the transaction is gone
    duo.same("c", "CLIENT", "GETNAME")
    duo.same("c", "SET", "in0", "1")
    duo.same("c", "SELECT", "0")
    duo.same("c", "GET", "in0")                    # RESET went back to database 0
    duo.same("c", "CLIENT", "REPLY", "OFF", frames=0)
    duo.same("c", "RESET")                         # answers although replies were off
    duo.same("c", "PING")
    duo.same("c", "MONITOR")
    duo.same("c", "RESET")
    duo.same("other", "SET", "m", "1")
    duo.same("c", "PING")                          # no monitor line came before it


def test_reset_unauthenticates_when_a_password_is_set(tmp_path):
    server = ThreadedServer(Config(port=0, dir=str(tmp_path / "d"), requirepass="pw")).start()
    try:
        c = RawClient(server.port)
        assert c.call("RESET").raw == b"+RESET\r\n"          # allowed before AUTH
        assert c.call("AUTH", "pw").raw == b"+OK\r\n"
        assert c.call("HELLO", "3").value[b"proto"] == 3
        assert c.call("RESET").raw == b"+RESET\r\n"
        assert c.call("GET", "k").raw.startswith(b"-NOAUTH")
        c.close()
    finally:
        server.stop()


def test_glob_patterns_follow_redis_rules(duo):
    duo.same("sub", "PSUBSCRIBE", "h[ae]llo", "x\\*y", "[^a]b", "a[b-d]?", frames=4)
    for channel in ("hello", "hallo", "hillo", "x*y", "xzy", "cb", "ab", "acz", "ae"):
        n = duo.same("pub", "PUBLISH", channel, "m")[0]
        if n:
            duo.read_same("sub", n)


def test_client_list_and_info_show_subscriptions_as_redis(duo):
    duo.same("sub", "SUBSCRIBE", "a", "b", frames=2)
    duo.same("sub", "PSUBSCRIBE", "p*")
    duo.same("sub", "SSUBSCRIBE", "s")
    for s in ("kv", "redis"):
        listing = duo.conn(s, "pub").call("CLIENT", "LIST", "TYPE", "pubsub").value.decode()
        assert len(listing.splitlines()) == 1
        fields = dict(f.split("=", 1) for f in listing.split())
        assert (fields["flags"], fields["sub"], fields["psub"], fields["ssub"]) == ("P", "2", "1", "1")
        info = duo.conn(s, "pub").call("INFO", "stats").value.decode()
        assert "pubsub_channels:2\r\n" in info and "pubsub_patterns:1\r\n" in info
        assert "pubsubshard_channels:1\r\n" in info
    duo.same("sub", "RESET")
    for s in ("kv", "redis"):
        assert duo.conn(s, "pub").call("CLIENT", "LIST", "TYPE", "pubsub").value == b""
        info = duo.conn(s, "pub").call("INFO", "stats").value.decode()
        assert "pubsub_channels:0\r\n" in info and "pubsub_patterns:0\r\n" in info


def test_config_output_buffer_limit_reads_as_redis(duo):
    duo.same("c", "CONFIG", "GET", "client-output-buffer-limit")
    duo.same("c", "CONFIG", "SET", "client-output-buffer-limit", "pubsub 1mb 512kb 5")
    duo.same("c", "CONFIG", "GET", "client-output-buffer-limit")
    duo.same("c", "CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60")


def test_a_closed_subscriber_leaves_the_registry(kv_port):  # noqa: F811
    sub, pub = RawClient(kv_port), RawClient(kv_port)
    sub.call("SUBSCRIBE", "gone")
    sub.call("PSUBSCRIBE", "gone*")
    assert pub.call("PUBSUB", "NUMSUB", "gone").value == [b"gone", 1]
    sub.close()
    for _ in range(200):
        if pub.call("PUBSUB", "NUMSUB", "gone").value == [b"gone", 0]:
            break
        time.sleep(0.01)
    assert pub.call("PUBSUB", "NUMSUB", "gone").value == [b"gone", 0]
    assert pub.call("PUBSUB", "NUMPAT").value == 0
    assert pub.call("PUBLISH", "gone", "x").value == 0
    pub.close()


# --- redis-py -------------------------------------------------------------------

def _wait_message(p, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        m = p.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if m is not None:
            return m
    raise AssertionError("no message")


@pytest.mark.parametrize("protocol", [2, 3])
def test_redis_py_pubsub_get_message_listen_and_patterns(kv_port, protocol):  # noqa: F811
    kwargs = {"protocol": protocol} if protocol == 3 else {}
    try:
        r = redis.Redis(port=kv_port, **kwargs)
        r.ping()
    except (TypeError, redis.exceptions.RedisError):
        pytest.skip("this redis-py has no RESP3")
    p = r.pubsub()
    p.subscribe("chan")
    p.psubscribe("pat.*")
    assert p.get_message(timeout=1)["type"] == "subscribe"
    assert p.get_message(timeout=1)["type"] == "psubscribe"
    r.publish("chan", "one")
    r.publish("pat.x", "two")
    m1, m2 = _wait_message(p), _wait_message(p)
    assert (m1["type"], m1["channel"], m1["data"]) == ("message", b"chan", b"one")
    assert (m2["type"], m2["pattern"], m2["channel"], m2["data"]) == (
        "pmessage", b"pat.*", b"pat.x", b"two")
    assert r.pubsub_numsub("chan") == [(b"chan", 1)]
    assert r.pubsub_numpat() == 1
    p.unsubscribe("chan")
    p.punsubscribe()
    seen = []
    for message in p.listen():
        seen.append(message["type"])
        if len(seen) == 2:
            break
    assert seen == ["unsubscribe", "punsubscribe"]
    p.close()
    r.close()


def test_redis_py_run_in_thread(kv_port):  # noqa: F811
    r = redis.Redis(port=kv_port)
    got: list = []
    done = threading.Event()

    def handler(message):
        got.append(message["data"])
        if len(got) == 3:
            done.set()

    p = r.pubsub()
    p.subscribe(**{"worker": handler})
    thread = p.run_in_thread(sleep_time=0.01)
    try:
        deadline = time.monotonic() + 5
        while r.pubsub_numsub("worker") != [(b"worker", 1)] and time.monotonic() < deadline:
            time.sleep(0.01)
        for i in range(3):
            r.publish("worker", f"job{i}")
        assert done.wait(5)
    finally:
        thread.stop()
        thread.join(5)
        p.close()
        r.close()
    assert got == [b"job0", b"job1", b"job2"]


def test_redis_py_asyncio_pubsub(kv_port):  # noqa: F811
    import redis.asyncio as aioredis

    async def main():
        r = aioredis.Redis(port=kv_port)
        p = r.pubsub()
        await p.subscribe("a")
        await p.psubscribe("b*")
        assert (await p.get_message(timeout=1))["type"] == "subscribe"
        assert (await p.get_message(timeout=1))["type"] == "psubscribe"
        await r.publish("a", "1")
        await r.publish("bee", "2")
        got = []
        async for message in p.listen():
            if message["type"] in ("message", "pmessage"):
                got.append((message["channel"], message["data"]))
            if len(got) == 2:
                break
        await p.aclose() if hasattr(p, "aclose") else await p.close()
        await r.aclose() if hasattr(r, "aclose") else await r.close()
        return got

    assert asyncio.run(asyncio.wait_for(main(), 10)) == [(b"a", b"1"), (b"bee", b"2")]


# --- slow subscribers -------------------------------------------------------------

def _pending_output(pub: RawClient) -> int:
    info = pub.call("CLIENT", "LIST", "TYPE", "pubsub").value.decode()
    return max((int(dict(f.split("=", 1) for f in line.split())["omem"])
                for line in info.splitlines()), default=-1)


def test_a_subscriber_that_never_reads_is_dropped_and_the_publisher_never_waits(tmp_path):
    """100k messages to a subscriber that never reads: it is disconnected at the hard
    limit, its buffered bytes stay bounded, and every PUBLISH is answered at once."""
    config = Config(port=0, dir=str(tmp_path / "d"),
                    client_output_buffer_limit=(("normal", 0, 0, 0),
                                                ("replica", 256 << 20, 64 << 20, 60),
                                                ("pubsub", 1 << 20, 256 << 10, 60)))
    server = ThreadedServer(config).start()
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode_request([b"SUBSCRIBE", b"firehose"]))
        pub = RawClient(server.port)
        deadline = time.monotonic() + 5
        while pub.call("PUBSUB", "NUMSUB", "firehose").value[1] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        payload = b"x" * 100
        request = encode_request([b"PUBLISH", b"firehose", payload]) * 1000
        receivers = []
        most = 0
        for _batch in range(100):                     # 100k messages
            pub.send(request)
            receivers += [pub.read().value for _ in range(1000)]
            most = max(most, _pending_output(pub))
        # Every PUBLISH was answered; the slow one counted until it was dropped.
        assert len(receivers) == 100_000 and receivers[0] == 1 and receivers[-1] == 0
        assert most <= (1 << 20) + 64 * 1024            # bounded by the hard limit
        assert pub.call("PUBSUB", "NUMSUB", "firehose").value == [b"firehose", 0]
        # Closed by the server (the kernel may still hand over what it had
        # taken before): only the publisher is left.
        info = pub.call("INFO", "clients").value.decode()
        assert "connected_clients:1\r\n" in info
        slow.close()
        pub.close()
    finally:
        server.stop()


def test_the_soft_limit_drops_a_subscriber_over_it_for_the_soft_seconds(tmp_path):
    config = Config(port=0, dir=str(tmp_path / "d"),
                    client_output_buffer_limit=(("normal", 0, 0, 0),
                                                ("replica", 256 << 20, 64 << 20, 60),
                                                ("pubsub", 0, 64 << 10, 1)))
    server = ThreadedServer(config).start()
    try:
        slow = socket.create_connection(("127.0.0.1", server.port))
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.sendall(encode_request([b"SUBSCRIBE", b"soft"]))
        pub = RawClient(server.port)
        deadline = time.monotonic() + 5
        while pub.call("PUBSUB", "NUMSUB", "soft").value[1] != 1:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        # 10 MB: more than the kernel's socket buffers take, so the rest
        # waits in the server, over the 64 KB soft limit (no hard limit).
        for _ in range(10):
            pub.send(encode_request([b"PUBLISH", b"soft", b"y" * 1000]) * 1000)
            assert all(pub.read().value == 1 for _ in range(1000))
        deadline = time.monotonic() + 10
        while pub.call("PUBSUB", "NUMSUB", "soft").value[1] == 1:
            assert time.monotonic() < deadline, "not dropped after the soft seconds"
            time.sleep(0.1)
        slow.close()
        pub.close()
    finally:
        server.stop()


# --- delivery order, in process -----------------------------------------------------

@pytest.mark.asyncio
async def test_messages_gathered_in_a_turn_go_before_the_subscribers_next_replies(tmp_path):
    """Messages for a subscriber are gathered for the rest of the loop turn; a reply
    it makes in that turn must not overtake them (RESP3: it runs any command)."""
    from kvserver.connection import Connection
    from kvserver.server import Server
    from test_connection_inprocess import Recording
    server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path), appendfsync="always"))
    await server.start()
    try:
        sub, pub = Connection(server), Connection(server)
        sub_out, pub_out = Recording(), Recording()
        sub.connection_made(sub_out)  # type: ignore[arg-type]
        pub.connection_made(pub_out)  # type: ignore[arg-type]
        sub.data_received(b"HELLO 3\r\nSUBSCRIBE ch\r\n")
        await asyncio.sleep(0.05)
        sub_out.data = b""
        pub.data_received(b"PUBLISH ch one\r\nPUBLISH ch two\r\n")
        sub.data_received(b"PING\r\n")             # same turn, before the gathered chunk left
        await asyncio.sleep(0.05)
        assert sub_out.data == (b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\none\r\n"
                                b">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$3\r\ntwo\r\n+PONG\r\n")
        sub.connection_lost(None)
        pub.connection_lost(None)
    finally:
        await server.stop()


def test_confirmations_come_even_under_client_reply_off_as_in_redis(duo):
    duo.same("c", "CLIENT", "REPLY", "OFF", frames=0)
    duo.same("c", "SUBSCRIBE", "a")                # sent although replies are off
    duo.same("c", "PSUBSCRIBE", "p*")
    duo.same("c", "PING", frames=0)                # an ordinary reply: dropped
    duo.same("c", "PUNSUBSCRIBE")
    duo.same("c", "UNSUBSCRIBE", "a")
    duo.same("c", "CLIENT", "REPLY", "ON")
    duo.same("c", "CLIENT", "REPLY", "SKIP", frames=0)
    duo.same("c", "SSUBSCRIBE", "s")
    duo.same("c", "PING")


def test_client_kill_type_pubsub_matches_redis(duo):
    duo.same("sub", "SUBSCRIBE", "a")
    duo.same("psub", "PSUBSCRIBE", "b*")
    duo.same("plain", "PING")
    duo.same("plain", "CLIENT", "KILL", "TYPE", "pubsub")   # :2
    duo.same("plain", "PUBSUB", "NUMSUB", "a")
    duo.same("plain", "PUBSUB", "NUMPAT")


def test_a_pipelined_request_after_subscribe_is_refused_as_in_redis(duo):
    """SUBSCRIBE then GET in one read: the GET must not slip through the fast lane."""
    got = {}
    for server in ("kv", "redis"):
        c = duo.conn(server, "c")
        c.send(encode_request([b"SUBSCRIBE", b"a"]) + encode_request([b"GET", b"x"])
               + encode_request([b"SET", b"x", b"1"]) + encode_request([b"PING"]))
        got[server] = [c.read().raw for _ in range(4)]
    assert got["kv"] == got["redis"]
    assert got["kv"][1].startswith(b"-ERR Can't execute 'get'")


def test_a_killed_subscriber_gets_no_message_published_behind_the_kill(duo):
    """CLIENT KILL ID <subscriber> then PUBLISH in one pipeline: Redis frees the client
    at once, so PUBLISH counts no receiver and NUMSUB shows none, as here."""
    ids = {}
    for server in ("kv", "redis"):
        ids[server] = str(duo.conn(server, "sub").call("CLIENT", "ID").value).encode()
    duo.same("sub", "SUBSCRIBE", "ch")
    got = {}
    for server in ("kv", "redis"):
        c = duo.conn(server, "ctl")
        c.send(encode_request([b"CLIENT", b"KILL", b"ID", ids[server]])
               + encode_request([b"PUBLISH", b"ch", b"m"])
               + encode_request([b"PUBSUB", b"NUMSUB", b"ch"]))
        got[server] = [c.read().raw for _ in range(3)]
    assert got["kv"] == got["redis"]
    assert got["kv"][1] == b":0\r\n"


def test_a_resp3_subscriber_blocked_in_blpop_gets_its_messages_at_once_as_in_redis(duo):
    """Messages are not replies: Redis pushes them to a RESP3 client while it waits
    in BLPOP, before the BLPOP reply. Held behind the pending reply, they reached the
    client only once it was served (never, for BLPOP k 0), and piled up until the
    pubsub output limit dropped a client that reads everything."""
    duo.hello3("sub")
    duo.same("sub", "SUBSCRIBE", "ch")
    for server in ("kv", "redis"):
        duo.conn(server, "sub").send(encode_request([b"BLPOP", b"bq", b"0"]))
        c = duo.conn(server, "ctl")
        deadline = time.monotonic() + 10
        while b"blocked_clients:1" not in (info := c.call("INFO", "clients").value):
            assert time.monotonic() < deadline, (server, info)
            time.sleep(0.01)
    duo.same("ctl", "PUBLISH", "ch", "m1")
    duo.same("ctl", "PUBLISH", "ch", "m2")
    assert duo.read_same("sub", 2) == [[b"message", b"ch", b"m1"], [b"message", b"ch", b"m2"]]
    duo.same("ctl", "RPUSH", "bq", "v")
    assert duo.read_same("sub") == [[b"bq", b"v"]]
    duo.same("ctl", "PUBLISH", "ch", "m3")
    duo.read_same("sub")
    duo.same("sub", "PING")


@pytest.mark.parametrize("kind", ["kvserver", "redis-server"])
def test_messages_gathered_before_a_busy_script_go_before_its_busy_errors(kind, kv_process,
                                                                          tmp_path):
    """PUBLISH then a long EVAL in one read: the message was gathered for the turn the
    script now holds up. A subscriber that sends PING meanwhile gets -BUSY, after the
    message, as Redis has it in the client's buffer first (busy mode must not answer
    a client whose messages still wait to be written)."""
    from test_scripting import _busy_server
    port, server = _busy_server(kind, kv_process, tmp_path)
    try:
        sub = RawClient(port, timeout=20)
        runner = RawClient(port, timeout=20)
        other = RawClient(port, timeout=20)
        assert other.call("PING").raw == b"+PONG\r\n"
        assert sub.call("SUBSCRIBE", "ch").raw.endswith(b":1\r\n")
        runner.send(encode_request([b"PUBLISH", b"ch", b"m"])
                    + encode_request([b"EVAL", b"while true do end", b"0"]))
        deadline = time.monotonic() + 10
        while not other.call("PING").raw.startswith(b"-BUSY"):
            assert time.monotonic() < deadline, "never busy"
            time.sleep(0.02)
        sub.send(encode_request([b"PING"]))
        assert sub.read().raw == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
        assert sub.read().raw.startswith(b"-BUSY")
        assert other.call("SCRIPT", "KILL").raw == b"+OK\r\n"
        assert runner.read().raw == b":1\r\n"
    finally:
        server.kill9()


def test_subscribers_are_exempt_from_the_idle_timeout_as_in_redis(kv_config):
    """Redis's clientsCronHandleTimeout skips CLIENT_PUBSUB clients (RESP2 or RESP3): a
    subscriber only listens, so `timeout` must not close it. A plain client idle as
    long is closed (the cron did run)."""
    from conftest import start_threaded
    kv = start_threaded(kv_config, timeout=1)
    try:
        sub2, sub3, plain = (RawClient(kv.port) for _ in range(3))
        assert sub2.call("SUBSCRIBE", "ch").raw.endswith(b":1\r\n")
        assert isinstance(sub3.call("HELLO", "3").value, dict)
        assert sub3.call("PSUBSCRIBE", "c*").raw.endswith(b":1\r\n")
        assert plain.call("PING").raw == b"+PONG\r\n"
        # Everyone idle for an hour, as far as the cron can tell.
        kv.call(lambda: [setattr(c, "last_interaction", c.last_interaction - 3600)
                         for c in kv.server.core.clients.values()])
        assert plain.read_until_close() == b""
        publisher = RawClient(kv.port)
        assert publisher.call("PUBLISH", "ch", "m").raw == b":2\r\n"
        assert sub2.read().raw == b"*3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$1\r\nm\r\n"
        assert sub3.read().raw == b">4\r\n$8\r\npmessage\r\n$2\r\nc*\r\n$2\r\nch\r\n$1\r\nm\r\n"
        for c in (sub2, sub3, publisher):
            c.close()
    finally:
        kv.stop()
