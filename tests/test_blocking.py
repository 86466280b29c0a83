"""Blocked clients: BLPOP BRPOP BLMOVE BRPOPLPUSH BLMPOP, CLIENT UNBLOCK, and their durability.

Differential first: single-connection replies (errors, timeouts, immediate
pops, MULTI) through the shared table runner, then multi-client
*scenarios* run step by step against kvserver and the real redis-server
7.0.15, in RESP2 and RESP3: several clients block (each step waits until
the server shows the client blocked), others push, and every reply of
every client must be byte-identical on both servers (FIFO order, which key
serves, MULTI/EXEC, type changes, SWAPDB/MOVE/RENAME/COPY, CLIENT UNBLOCK,
disconnects, pipelines behind a blocked request).

Then what Redis cannot show: a served client's reply does not leave before
the WAL sync that holds its pop (fdatasync held back), the pops' WAL
records (one unit after the push's), the registry's bookkeeping, and the
crash simulator (every cut of the WAL keeps a prefix: never a pop without
its push). Process-level kill -9 tests are in tests/test_reliable_queue.py.
"""

from __future__ import annotations

import asyncio
import select
import threading
import time
from dataclasses import dataclass

import pytest

from conftest import ThreadedServer, wait_for
from kvserver.blocking import parse_timeout
from kvserver.config import Config
from kvserver.errors import CommandError
from test_differential import (Pair, RawClient, Sleep, args, encode_request,  # noqa: F401
                               kv_port, pair, redis_port, same_reply_tests)

# --- single-connection table ---------------------------------------------------------

CASES: dict[str, list] = {
    "errors": [
        "BLPOP", "BLPOP k", "BRPOP k", "BLMOVE a b LEFT RIGHT", "BLMOVE a b LEFT RIGHT 0 x",
        "BRPOPLPUSH a b", "BRPOPLPUSH a b 0 x", "BLMPOP 0 1 k", "BLMPOP 0",
        "BLPOP k abc", "BLPOP k -1", "BLPOP k nan", "BLPOP k inf", "BLPOP k -inf",
        "BLPOP k 1e400", "BLPOP k 1e30", ("BLPOP", "k", ""), ("BLPOP", "k", " 1"),
        ("BLPOP", "k", "1 "), "BLPOP k 9223372036854775807", "BRPOP k x",
        "BLMOVE a b LEFT RIGHT x", "BLMOVE a b UP RIGHT x", "BLMOVE a b LEFT DOWN -1",
        "BLMOVE a b LEFT RIGHT -1", "BRPOPLPUSH a b -1", "BRPOPLPUSH a b x",
        "BLMPOP x 1 k LEFT", "BLMPOP -1 1 k LEFT", "BLMPOP 0 0 k LEFT", "BLMPOP 0 x k LEFT",
        "BLMPOP 0 -1 k LEFT", "BLMPOP x 0 k LEFT", "BLMPOP 0 2 k LEFT", "BLMPOP 0 1 k UP",
        "BLMPOP x 1 k UP", "BLMPOP 0 1 k LEFT COUNT 0", "BLMPOP 0 1 k LEFT COUNT -1",
        "BLMPOP x 1 k LEFT COUNT 0", "BLMPOP 0 1 k LEFT COUNT 1 COUNT 1",
        "BLMPOP 0 1 k LEFT FOO", "BLMPOP 0 1 k LEFT COUNT", "BLMPOP 0 1 k RIGHT count x"],
    "wrongtype": [
        "SET s v", "BLPOP s 0", "BLPOP nokey s 0", "RPUSH l a", "BLPOP l s 0", "BRPOP s l 0",
        "BLMOVE s d LEFT LEFT 0", "RPUSH l a", "BLMOVE l s LEFT LEFT 0", "LRANGE l 0 -1",
        "BRPOPLPUSH l s 0", "BLMPOP 0 2 nokey s LEFT", "BLMPOP 0 2 l s LEFT",
        "BLPOP s x", "BLMOVE s d LEFT LEFT x", "BLMPOP x 1 s LEFT"],
    "immediate": [
        "RPUSH l a b c d e", "BLPOP l 0", "BRPOP l 0", "BLPOP nokey l 1", "BRPOP nokey l 0.5",
        "LRANGE l 0 -1", "RPUSH m 1 2 3", "BLMPOP 0 2 nokey m LEFT", "BLMPOP 0 1 m RIGHT COUNT 5",
        "EXISTS m", "RPUSH m 1 2 3", "BLMPOP 1 1 m left count 2", "RPUSH l x y z",
        "BLMOVE l d LEFT RIGHT 0",
        "BLMOVE l d right left 0", "BRPOPLPUSH d d 0", "LRANGE d 0 -1", "LRANGE l 0 -1",
        "BLMOVE d d LEFT RIGHT 0", "LRANGE d 0 -1", "BLPOP l 0", "EXISTS l", "blpop d 0",
        "BrPoP d 0", "EXISTS d", ("RPUSH", "bin", b"\x00\xff", ""), "BLPOP bin 0",
        "BLPOP bin 0", "RPUSH x a", "BLPOP x x 0", "RPUSH x a", "BLMPOP 0 2 x x LEFT COUNT 3",
        "RPUSH l v", "BLPOP l 0x10", "RPUSH l v", "BLPOP l -0.0001", "RPUSH l v", "BLPOP l +1",
        "RPUSH l v", "BLPOP l .5"],
    "timeouts": [
        "BLPOP k 0.01", "BRPOP k j 0.01", "BLMOVE a b LEFT RIGHT 0.01", "BRPOPLPUSH a b 0.01",
        "BLMPOP 0.01 2 k j LEFT", "BLMPOP 0.01 1 k RIGHT COUNT 3", "BLPOP k 1e-400",
        "BLPOP k 0.0001", "SET s v", "BLMOVE a s LEFT RIGHT 0.01", "DBSIZE"],
    "in-multi": [
        "MULTI", "BLPOP k 0", "BRPOP k 0", "BLMOVE a b LEFT RIGHT 0", "BRPOPLPUSH a b 0",
        "BLMPOP 0 1 k LEFT", "BLPOP k x", "RPUSH k v", "BLPOP k 0", "EXEC",
        "MULTI", "BLPOP k 0", "RPUSH k v", "BLPOP k 0", "BLMOVE k d LEFT LEFT 0",
        "BLMOVE k d LEFT LEFT 0", "LRANGE d 0 -1", "EXEC"],
}

test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_table_covers_every_blocking_list_command(pair):
    sent = {args(s)[0].decode().lower()
            for steps in CASES.values() for s in steps if isinstance(s, (str, tuple))}
    blocking = {e[0].decode() for e in pair.kv.call("COMMAND").value
                if {b"@list", b"@blocking"} <= {c.encode() for c in e[6]}}
    assert blocking == {"blpop", "brpop", "blmove", "brpoplpush", "blmpop"}
    assert blocking <= sent


def test_command_info_matches_redis(pair):
    """Flags, arity and key positions as Redis 7.0.15 lists them (categories as a set)."""
    for name in ("blpop", "brpop", "blmove", "brpoplpush", "blmpop"):
        kv, redis = pair.both(f"COMMAND INFO {name}")
        (k,), (r,) = kv.value, redis.value
        assert k[:6] == r[:6], name
        assert set(k[6]) == set(r[6]), name
    for step in ("COMMAND GETKEYS BLMPOP 0 2 a b LEFT", "COMMAND GETKEYS BLPOP a b 0",
                 "COMMAND GETKEYS BLMOVE a b LEFT RIGHT 0", "COMMAND GETKEYS BRPOPLPUSH a b 1"):
        pair.same(step)


# --- multi-client scenarios ------------------------------------------------------------

@dataclass(frozen=True)
class Send:
    """``who`` sends a request that blocks; the step waits until the server shows it blocked."""
    who: str
    step: object
    blocks: bool = True


@dataclass(frozen=True)
class Read:
    """Read ``who``'s next reply (compared)."""
    who: str


@dataclass(frozen=True)
class Unblock:
    """The control client runs CLIENT UNBLOCK <who's id> [reason] (compared)."""
    who: str
    reason: str = ""


@dataclass(frozen=True)
class Close:
    who: str


@dataclass(frozen=True)
class Pipeline:
    """``who`` sends these requests in one write and reads their replies (compared)."""
    who: str
    steps: tuple


@dataclass(frozen=True)
class Kill:
    """The control client runs CLIENT KILL ID <who's id> (compared); who reads its EOF."""
    who: str


@dataclass(frozen=True)
class Blocked:
    """INFO's blocked_clients line (compared)."""


@dataclass(frozen=True)
class Stats:
    """INFO commandstats of the blocking commands (without timings) and errorstats (compared)."""


class Scene:
    """Clients of one server, by name; records every reply a scenario compares."""

    def __init__(self, port: int, resp3: bool) -> None:
        self.port = port
        self.resp3 = resp3
        self.clients: dict[str, RawClient] = {}
        self.ids: dict[str, bytes] = {}
        self.control = self._connect()
        self.out: list = []

    def _connect(self) -> RawClient:
        c = RawClient(self.port)
        if self.resp3:
            assert isinstance(c.call("HELLO", "3").value, dict)
        return c

    def client(self, who: str) -> RawClient:
        if who not in self.clients:
            c = self.clients[who] = self._connect()
            self.ids[who] = str(c.call("CLIENT", "ID").value)
        return self.clients[who]

    def blocked(self, who: str) -> bool:
        listing = self.control.call("CLIENT", "LIST", "ID", self.ids[who]).value
        text = listing.decode() if isinstance(listing, bytes) else str(listing)
        flags = text.split(" flags=")[1].split(" ")[0]
        return "b" in flags

    def run(self, step) -> None:
        if isinstance(step, Send):
            c = self.client(step.who)
            c.send(encode_request(args(step.step)))
            if step.blocks:
                wait_for(lambda: self.blocked(step.who), f"{step.who} to block", timeout=10)
        elif isinstance(step, Read):
            self.out.append((step.who, self.client(step.who).read().raw))
        elif isinstance(step, Unblock):
            argv = ["CLIENT", "UNBLOCK", self.ids[step.who]] + ([step.reason] if step.reason
                                                                 else [])
            self.out.append(("unblock", self.control.call(*argv).raw))
        elif isinstance(step, Pipeline):
            c = self.client(step.who)
            c.send(b"".join(encode_request(args(x)) for x in step.steps))
            self.out.append((step.who, [c.read().raw for _ in step.steps]))
        elif isinstance(step, Kill):
            self.out.append(("kill", self.control.call("CLIENT", "KILL", "ID",
                                                       self.ids[step.who]).raw))
            c = self.clients.pop(step.who)
            self.out.append((step.who, c.read_until_close()))
            c.close()
        elif isinstance(step, Close):
            self.clients.pop(step.who).close()
            time.sleep(0.05)
        elif isinstance(step, Blocked):
            info = self.control.call("INFO", "clients").value
            line = [x for x in info.decode().split("\r\n")
                    if x.startswith(("blocked_clients", "clients_in_timeout_table"))]
            self.out.append(("info", line))
        elif isinstance(step, Stats):
            lines = (self.control.call("INFO", "commandstats").value.decode().split("\r\n")
                     + self.control.call("INFO", "errorstats").value.decode().split("\r\n"))
            kept = []
            for line in lines:
                name = line.split(":", 1)[0]
                if name.startswith("errorstat_") or name in (
                        "cmdstat_blpop", "cmdstat_brpop", "cmdstat_blmove",
                        "cmdstat_brpoplpush", "cmdstat_blmpop"):
                    fields = dict(f.split("=") for f in line.split(":", 1)[1].split(","))
                    kept.append((name, {k: v for k, v in fields.items() if "usec" not in k}))
            self.out.append(("stats", sorted(kept)))
        elif isinstance(step, Sleep):
            time.sleep(step.seconds)
        else:
            who, request = step
            self.out.append((who, self.client(who).call(*args(request)).raw))

    def close(self) -> None:
        for c in self.clients.values():
            c.close()
        self.control.close()


SCENARIOS: dict[str, list] = {
    "fifo": [
        Send("A", "BLPOP k 0"), Send("B", "BLPOP k 0"), Send("C", "BRPOP k 0"), Blocked(),
        ("D", "RPUSH k a b"), Read("A"), Read("B"), Blocked(), ("D", "LLEN k"),
        ("D", "RPUSH k c d"), Read("C"), ("D", "LRANGE k 0 -1"), Blocked()],
    "one-push-many-waiters": [
        Send("A", "BRPOP k 0"), Send("B", "BLPOP k 0"), Send("C", "BLPOP k 0"),
        ("D", "LPUSH k 1 2 3 4"), Read("A"), Read("B"), Read("C"), ("D", "LRANGE k 0 -1")],
    "multi-key-order": [
        Send("A", "BLPOP k1 k2 0"), ("D", "RPUSH k2 x"), Read("A"),
        Send("A", "BLPOP k1 k2 0"), ("D", "MULTI"), ("D", "RPUSH k2 y"), ("D", "RPUSH k1 z"),
        ("D", "EXEC"), Read("A"), ("D", "LRANGE k1 0 -1"), ("D", "LRANGE k2 0 -1"),
        Send("B", "BLPOP a b c 0"), ("D", "MSET x 1 y 2"), Blocked(), ("D", "RPUSH c 3"),
        Read("B"), Send("B", "BLPOP dup dup 0"), ("D", "RPUSH dup 1 2"), Read("B"),
        ("D", "LRANGE dup 0 -1")],
    "exec-empties-the-key": [
        Send("A", "BLPOP k 0"), ("D", "MULTI"), ("D", "RPUSH k a"), ("D", "LPOP k"),
        ("D", "EXEC"), Blocked(), ("D", "RPUSH k b"), Read("A"), Blocked(),
        Send("A", "BLPOP k 0"), Send("B", "BLPOP k 0"), ("D", "MULTI"), ("D", "RPUSH k 1 2"),
        ("D", "RPOP k"), ("D", "EXEC"), Read("A"), Blocked(), ("D", "RPUSH k 3"), Read("B")],
    "type-changes-while-waiting": [
        Send("A", "BLPOP k 0"), ("D", "SET k str"), Blocked(), ("D", "DEL k"),
        ("D", "SADD k m"), Blocked(), ("D", "DEL k"), ("D", "HSET k f v"), ("D", "DEL k"),
        ("D", "RPUSH k z"), Read("A"), ("D", "MULTI"), ("D", "SET k s"), ("D", "DEL k"),
        ("D", "EXEC"), Send("A", "BLMOVE k d LEFT LEFT 0"), ("D", "MULTI"), ("D", "SET k s"),
        ("D", "DEL k"), ("D", "RPUSH k q"), ("D", "EXEC"), Read("A"), ("D", "LRANGE d 0 -1")],
    "blmove-served": [
        Send("A", "BLMOVE src dst LEFT RIGHT 0"), ("D", "RPUSH src 1 2"), Read("A"),
        ("D", "LRANGE src 0 -1"), ("D", "LRANGE dst 0 -1"),
        Send("A", "BRPOPLPUSH s2 dst 0"), ("D", "RPUSH s2 x y"), Read("A"),
        ("D", "LRANGE dst 0 -1"), ("D", "LRANGE s2 0 -1")],
    "blmove-chain": [
        Send("A", "BLMOVE a b RIGHT LEFT 0"), Send("B", "BLMOVE b c LEFT RIGHT 0"),
        Send("C", "BLPOP c 0"), ("D", "RPUSH a x"), Read("A"), Read("B"), Read("C"),
        ("D", "EXISTS a b c"), Blocked()],
    "blmove-wrongtype-destination": [
        Send("A", "BLMOVE s d LEFT LEFT 0"), Send("B", "BLPOP s 0"), ("D", "SET d str"),
        ("D", "RPUSH s v w"), Read("A"), Read("B"), ("D", "LRANGE s 0 -1"),
        ("D", "GET d"), Blocked()],
    "blmove-rotate": [
        Send("A", "BLMOVE r r LEFT RIGHT 0"), ("D", "RPUSH r a b c"), Read("A"),
        ("D", "LRANGE r 0 -1"), Send("A", "BRPOPLPUSH r2 r2 0"), ("D", "RPUSH r2 a b"),
        Read("A"), ("D", "LRANGE r2 0 -1")],
    "blmpop-served": [
        Send("A", "BLMPOP 0 2 x y LEFT COUNT 3"), Send("B", "BLMPOP 0 1 y RIGHT COUNT 10"),
        Send("C", "BLMPOP 0 1 y LEFT"), ("D", "RPUSH y 1 2 3 4 5"), Read("A"), Read("B"),
        Blocked(), ("D", "RPUSH y 6"), Read("C")],
    "timeouts-served-late": [
        Send("A", "BLPOP k 0.05", blocks=False), Read("A"),
        Send("A", "BLMOVE a b LEFT RIGHT 0.05", blocks=False), Read("A"),
        Send("A", "BRPOPLPUSH a b 0.05", blocks=False), Read("A"),
        Send("A", "BLMPOP 0.05 1 k LEFT COUNT 2", blocks=False), Read("A"),
        Send("A", "BRPOP k 0.05", blocks=False), Read("A"), ("D", "RPUSH k v"),
        ("D", "LLEN k"), Blocked()],
    "client-unblock": [
        Send("A", "BLPOP k 0"), Unblock("A"), Read("A"), Send("A", "BLPOP k 0"),
        Unblock("A", "ERROR"), Read("A"), Send("A", "BLMOVE a b LEFT RIGHT 0"),
        Unblock("A", "timeout"), Read("A"), Send("A", "BLMPOP 0 1 k LEFT"),
        Unblock("A", "error"), Read("A"), Unblock("A"), Unblock("A", "ERROR"),
        Send("A", "BLPOP k 5"), Unblock("A", "TIMEOUT"), Read("A"), ("A", "PING"),
        ("D", "CLIENT UNBLOCK 999999"), ("D", "CLIENT UNBLOCK x"),
        ("D", "CLIENT UNBLOCK 1 maybe"), ("D", "CLIENT UNBLOCK x maybe"),
        ("D", "CLIENT UNBLOCK 1 ERROR x"), Blocked()],
    "disconnect-while-blocked": [
        Send("A", "BLPOP k 0"), Send("B", "BLPOP k 0"), Close("A"), Blocked(),
        ("D", "RPUSH k a b"), Read("B"), ("D", "LRANGE k 0 -1"), Send("C", "BLPOP k2 0"),
        Close("C"), ("D", "RPUSH k2 x"), ("D", "LLEN k2"), Blocked()],
    "served-between-pipelined-commands": [
        # Served after RPUSH, before the LPOP behind it in the same read (as Redis
        # serves after each command); an EXEC that pushes and pops serves no one.
        Send("A", "BLPOP k 0"), Pipeline("D", ("RPUSH k v", "LPOP k", "LLEN k")), Read("A"),
        Send("A", "BLPOP k 0"), Pipeline("D", ("MULTI", "RPUSH k v", "LPOP k", "EXEC")),
        Blocked(), Pipeline("D", ("RPUSH k 1 2", "RPOP k")), Read("A"), ("D", "LLEN k")],
    "client-kill-while-blocked": [
        Send("A", "BLPOP k 0"), Send("B", "BLMOVE k d LEFT LEFT 0"), Kill("A"), Blocked(),
        ("D", "RPUSH k 1 2"), Read("B"), ("D", "LRANGE k 0 -1"), Blocked()],
    "pipeline-behind-blocked": [
        Send("A", "BLPOP k 0"), Send("A", "PING", blocks=False), Send("A", "LLEN k", blocks=False),
        ("D", "RPUSH k a b"), Read("A"), Read("A"), Read("A"), Send("A", "BLPOP k3 k2 0"),
        Send("A", "BLPOP k2 0", blocks=False), ("D", "RPUSH k2 1"), Read("A"), Blocked(),
        ("D", "RPUSH k2 2"), Read("A")],
    "swapdb-move-rename-copy": [
        ("A", "SELECT 1"), Send("A", "BLPOP k 0"), ("D", "RPUSH k v"), ("D", "SWAPDB 0 1"),
        Read("A"), ("D", "DBSIZE"), Send("A", "BLPOP m 0"), ("D", "RPUSH m v"),
        ("D", "MOVE m 1"), Read("A"), ("A", "SELECT 0"), Send("A", "BLPOP r 0"),
        ("D", "RPUSH tmp v w"), ("D", "RENAME tmp r"), Read("A"), Send("A", "BRPOP c 0"),
        ("D", "COPY r c"), Read("A"), ("D", "LRANGE r 0 -1"), Send("A", "BLPOP lm 0"),
        ("D", "LMOVE r lm LEFT LEFT"), Read("A"), Send("A", "BLPOP f 0"), ("D", "FLUSHALL"),
        Blocked(), ("D", "RPUSH f 1"), Read("A")],
    "other-databases-apart": [
        ("A", "SELECT 2"), Send("A", "BLPOP k 0"), ("D", "RPUSH k v"), Blocked(),
        ("D", "LLEN k"), ("D", "SELECT 2"), ("D", "RPUSH k w"), Read("A"), ("D", "SELECT 0"),
        ("D", "LLEN k")],
    "client-pause": [
        # BLPOP is a write: held by PAUSE WRITE like a push; a client already
        # waiting stays blocked; its timeout still fires; all runs at the end.
        Send("A", "BLPOP k 0"), ("D", "CLIENT PAUSE 400 WRITE"), Send("E", "RPUSH k v"),
        Send("B", "BLPOP z 0.01"), Blocked(), Send("C", "BLPOP t 0.05", blocks=False),
        Read("C"), Read("E"), Read("A"), Read("B"), Blocked()],
    "timeout-table": [
        Send("A", "BLPOP k 100"), Send("B", "BLPOP k 0"), Send("C", "BLMOVE k d LEFT LEFT 50"),
        Blocked(), ("D", "RPUSH k v"), Read("A"), Blocked(), Unblock("C"), Read("C"),
        Blocked(), ("D", "RPUSH k w"), Read("B"), Blocked()],
    "commandstats": [
        ("D", "CONFIG RESETSTAT"), Send("A", "BLPOP k 0"), ("D", "RPUSH k v"), Read("A"),
        Send("A", "BLPOP k 0"), Unblock("A"), Read("A"), Send("A", "BRPOP k 0"),
        Unblock("A", "ERROR"), Read("A"), Send("A", "BLPOP k 0.01", blocks=False), Read("A"),
        Send("A", "BLMOVE s d LEFT LEFT 0"), ("D", "SET d x"), ("D", "RPUSH s 1"), Read("A"),
        ("A", "BLMPOP 0 1 s LEFT"), ("A", "BLPOP d 0"), ("A", "BLPOP k x"), ("A", "BLPOP"),
        Stats()],
    "served-then-multi-pipeline": [
        Send("A", "BLPOP k 0"), ("D", "MULTI"), ("D", "RPUSH k a"), ("D", "LLEN k"),
        ("D", "EXEC"), Read("A"), ("D", "LLEN k"), Send("A", "BLPOP k 0"),
        ("D", "RPUSH k 1 2 3"), Read("A"), ("D", "LRANGE k 0 -1")],
}


def _scenario(kv_port, redis_port, steps, resp3):
    kv, redis = Scene(kv_port, resp3), Scene(redis_port, resp3)
    try:
        for scene in (kv, redis):
            scene.control.call("FLUSHALL")
        for step in steps:
            kv.run(step)
            redis.run(step)
            assert kv.out == redis.out, (step, kv.out, redis.out)
    finally:
        kv.close()
        redis.close()


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_scenario(kv_port, redis_port, steps):
    _scenario(kv_port, redis_port, steps, resp3=False)


@pytest.mark.parametrize("steps", list(SCENARIOS.values()), ids=list(SCENARIOS))
def test_scenario_resp3(kv_port, redis_port, steps):
    _scenario(kv_port, redis_port, steps, resp3=True)


# --- keyspace notifications: the same events as Redis ---------------------------------

NOTIFY_STEPS = [
    Send("A", "BLPOP k 0"), ("D", "RPUSH k a"), Read("A"),
    Send("A", "BRPOP k 0"), ("D", "RPUSH k a b"), Read("A"), ("A", "BLPOP k 0"),
    Send("A", "BLMOVE s d LEFT RIGHT 0"), ("D", "RPUSH s 1"), Read("A"),
    Send("A", "BLMPOP 0 1 m RIGHT COUNT 5"), ("D", "RPUSH m 1 2"), Read("A"),
    Send("A", "BRPOPLPUSH r r 0"), ("D", "RPUSH r 1"), Read("A"),
    ("A", "BLPOP r 0"), ("D", "RPUSH r 1 2"), ("A", "BLMPOP 0 1 r LEFT COUNT 9"),
    ("D", "RPUSH r 1"), ("A", "BLMOVE r x RIGHT LEFT 0"),
]


def test_keyspace_events_match_redis(kv, redis_port):
    """Served and immediate pops notify Redis's events, in its order (lpush on the
    destination before the pop, del when the list empties)."""
    events: list = []
    core = kv.server.core

    def record(kind, event, db, key):
        events.append((event, key))

    def arm():
        core.keyspace_event = record
        core.notify_flags = -1
    kv.call(arm)
    control = RawClient(redis_port)
    sub = RawClient(redis_port)
    try:
        assert control.call("CONFIG", "SET", "notify-keyspace-events", "KEA").raw == b"+OK\r\n"
        sub.call("PSUBSCRIBE", "__keyevent@0__:*")
        sub.call("SUBSCRIBE", "__done__")
        control.call("FLUSHALL")
        kv_scene, redis_scene = Scene(kv.port, False), Scene(redis_port, False)
        for step in NOTIFY_STEPS:
            kv_scene.run(step)
            redis_scene.run(step)
        kv_scene.close()
        redis_scene.close()
        control.call("PUBLISH", "__done__", "x")   # not an event: a marker
        redis_events = []
        while True:
            msg = sub.read().value
            if msg[0] == b"message":
                break
            if msg[0] == b"pmessage":
                redis_events.append((msg[2].split(b":", 1)[1], msg[3]))
        # (RPUSH notifies from its own module: only the pops' events are compared,
        # which are all of kvserver's here, and Redis's without the client's RPUSHes.)
        pushed_by_d = {b"k", b"s", b"m", b"r"}
        expected = [e for e in redis_events if not (e[0] == b"rpush" and e[1] in pushed_by_d)]
        assert [e for e in events if e[0] != b"rpush" or e[1] not in pushed_by_d] == expected
        assert (b"lpush", b"x") in expected and (b"del", b"r") in expected
    finally:
        control.call("CONFIG", "SET", "notify-keyspace-events", "")
        control.close()
        sub.close()


# --- durability: a served reply leaves only once its pop is durable ----------------------

def _wal_records(data_dir) -> list[list[list[bytes]]]:
    """Each WAL record's effects (argv lists), in order."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import list_segments, scan_segment
    fs = OSFileSystem()
    out = []
    for first, path in list_segments(fs, str(data_dir)):
        for record in scan_segment(fs.read(path), path, first).records:
            out.append([list(argv) for _, argv in record.effects])
    return out


def _reply_within(c: RawClient, seconds: float):
    """The next reply if its first byte arrives within ``seconds``, else None."""
    if not select.select([c.sock], [], [], seconds)[0]:
        return None
    return c.read().raw


def _hold_syncs(kv) -> threading.Event:
    """From now on every WAL sync of ``kv`` waits for the returned event (set = go).

    The sync moves to the writer's thread, so the loop keeps serving while it
    is held: only durability waits.
    """
    gate = threading.Event()
    gate.set()

    def install():
        writer = kv.server.writer
        writer.sync_in_thread = True
        wal = writer.wal
        orig = wal.sync

        def held_sync():
            assert gate.wait(20), "test never released the sync"
            orig()
        wal.sync = held_sync
    kv.call(install)
    return gate


def test_a_served_reply_waits_for_the_sync_of_its_pop(kv):
    popper, pusher, other = RawClient(kv.port), RawClient(kv.port), RawClient(kv.port)
    core = kv.server.core
    try:
        gate = _hold_syncs(kv)
        popper.send(encode_request(["BLMOVE", "q", "proc", "LEFT", "RIGHT", "0"]))
        wait_for(lambda: core.blocking is not None and core.blocking.waiters, "the wait")
        gate.clear()
        pusher.send(encode_request(["RPUSH", "q", "job"]))
        # Applied in memory (moved), but not durable: neither reply may leave.
        wait_for(lambda: b"proc" in core.keyspace.dbs[0].data, "the move")
        assert kv.call(lambda: core.blocking.waiters) == {}
        assert _reply_within(popper, 0.3) is None
        assert _reply_within(pusher, 0.05) is None
        # The loop goes on meanwhile: other clients are served (their replies
        # wait for the same sync, as every reply after an undurable write does).
        other.send(encode_request(["LLEN", "proc"]))
        wait_for(lambda: kv.call(lambda: "llen" in core.command_stats), "LLEN to run")
        gate.set()
        assert popper.read().raw == b"$3\r\njob\r\n"
        assert pusher.read().raw == b":1\r\n"
        assert other.read().raw == b":1\r\n"
        assert popper.call("LRANGE", "proc", "0", "-1").value == [b"job"]
    finally:
        gate.set()
        for c in (popper, pusher, other):
            c.close()


def test_a_timeout_reply_does_not_wait_for_later_syncs(kv):
    """A timeout answers at once even while the WAL sync of others' writes is held."""
    waiter, writer_client = RawClient(kv.port), RawClient(kv.port)
    try:
        gate = _hold_syncs(kv)
        waiter.send(encode_request(["BLPOP", "nothing", "0.2"]))
        time.sleep(0.05)
        gate.clear()
        writer_client.send(encode_request(["SET", "x", "1"]))
        assert _reply_within(waiter, 5) == b"*-1\r\n"
        assert _reply_within(writer_client, 0.05) is None
        gate.set()
        assert writer_client.read().raw == b"+OK\r\n"
    finally:
        gate.set()
        waiter.close()
        writer_client.close()


def test_served_pops_are_one_unit_after_the_push(kv, kv_config):
    """The WAL holds the push, then ONE record with every pop it served (FIFO),
    each under its real name; a BLMOVE is its pop and push."""
    a, b, c, d = (RawClient(kv.port) for _ in range(4))
    core = kv.server.core
    try:
        a.send(encode_request(["BLPOP", "q", "0"]))
        wait_for(lambda: len(core.blocking.waiters) == 1 if core.blocking else False, "a")
        b.send(encode_request(["BLMOVE", "q", "p", "RIGHT", "LEFT", "0"]))
        wait_for(lambda: len(core.blocking.waiters) == 2, "b")
        c.send(encode_request(["BLMPOP", "0", "1", "q", "LEFT", "COUNT", "5"]))
        wait_for(lambda: len(core.blocking.waiters) == 3, "c")
        assert d.call("RPUSH", "q", "1", "2", "3", "4", "5").raw == b":5\r\n"
        assert a.read().value == [b"q", b"1"]
        assert b.read().value == b"5"
        assert c.read().value == [b"q", [b"2", b"3", b"4"]]
    finally:
        for x in (a, b, c, d):
            x.close()
    records = _wal_records(kv_config.dir)
    assert records[-2:] == [
        [[b"RPUSH", b"q", b"1", b"2", b"3", b"4", b"5"]],
        [[b"LPOP", b"q", b"1"], [b"RPOP", b"q", b"1"], [b"LPUSH", b"p", b"5"],
         [b"LPOP", b"q", b"3"]]]


def test_nothing_listens_once_nobody_is_blocked(kv):
    """The modified listener is on only while someone waits: a write costs nothing otherwise."""
    a, d = RawClient(kv.port), RawClient(kv.port)
    core = kv.server.core
    hooks = core.keyspace._hooks
    try:
        a.send(encode_request(["BLPOP", "k", "0"]))
        wait_for(lambda: core.blocking is not None and core.blocking.waiters, "the wait")
        assert core.blocking.modified in hooks.listeners
        assert d.call("INFO", "clients").value.count(b"blocked_clients:1") == 1
        assert b"clients_in_timeout_table:0" in d.call("INFO", "clients").value
        d.call("RPUSH", "k", "v")
        assert a.read().value == [b"k", b"v"]
        assert kv.call(lambda: (core.blocking.waiters, core.blocking.by_db,
                                core.blocking.ready)) == ({}, {}, {})
        assert core.blocking.modified not in hooks.listeners
        a.send(encode_request(["BLPOP", "k", "k", "j", "100"]))
        wait_for(lambda: core.blocking.waiters, "the second wait")
        assert b"clients_in_timeout_table:1" in d.call("INFO", "clients").value
        a.close()   # a disconnect forgets the wait
        wait_for(lambda: not core.blocking.waiters, "the disconnect")
        assert kv.call(lambda: (core.blocking.by_db, core.blocking.listening)) == ({}, False)
        assert d.call("RPUSH", "k", "w").raw == b":1\r\n"
    finally:
        d.close()


def test_parse_timeout_follows_redis():
    now = 1_000_000
    assert parse_timeout(b"0", now) == 0
    assert parse_timeout(b"1.5", now) == now + 1500
    assert parse_timeout(b"0.0001", now) == now + 1      # rounded up to a millisecond
    assert parse_timeout(b"-0.0001", now) == 0           # ceil(-0.1) is 0: forever
    assert parse_timeout(b"0x10", now) == now + 16000
    assert parse_timeout(b"9223372036854775", now) == -1  # wrapped: never fires
    for bad, message in ((b"x", "not a float"), (b"nan", "not a float"), (b"", "not a float"),
                         (b"-1", "negative"), (b"inf", "negative"), (b"1e400", "negative")):
        with pytest.raises(CommandError, match=message):
            parse_timeout(bad, now)


# --- the crash simulator: blocked clients served while the disk may stop at any write ---------

async def _queue_workload(config, sim, sync_in_thread: bool, jobs_per_producer: int = 10):
    """Producers RPUSH jobs to q (moved by BLMOVE workers to proc, then LREM'd) and to q2
    (taken by a BLPOP consumer); workers block most of the time, so most pops are served.

    Returns what the clients saw, each with ``sim.mutations`` at that moment:
    pushes acked, moves acked, LREMs sent, pops acked.
    """
    from kvserver.server import Server
    from simfs import Client

    seen = {"push": [], "moved": [], "lrem_sent": [], "popped": []}
    server = Server(config, fs=sim, sync_in_thread=sync_in_thread)
    await server.start()
    server.writer.wal.segment_bytes = 400
    producing = [2]

    async def producer(n):
        c = await Client.connect(server.port)
        for i in range(jobs_per_producer):
            for queue in (b"q", b"q2"):
                job = b"%s-p%d-%d" % (queue, n, i)
                assert await c.call(b"RPUSH", queue, job) >= 1
                seen["push"].append((sim.mutations, queue, job))
            await asyncio.sleep(0.002 * (i % 3))
        producing[0] -= 1
        c.close()

    async def mover():
        c = await Client.connect(server.port)
        while True:
            job = await c.call(b"BLMOVE", b"q", b"proc", b"LEFT", b"RIGHT", b"0.05")
            if job is None:
                if not producing[0]:
                    break
                continue
            seen["moved"].append((sim.mutations, job))
            seen["lrem_sent"].append((sim.mutations, job))
            assert await c.call(b"LREM", b"proc", b"1", job) == 1
        c.close()

    async def popper():
        c = await Client.connect(server.port)
        while True:
            reply = await c.call(b"BLPOP", b"q2", b"0.05")
            if reply is None:
                if not producing[0]:
                    break
                continue
            seen["popped"].append((sim.mutations, reply[1]))
        c.close()

    await asyncio.wait_for(asyncio.gather(producer(0), producer(1), mover(), mover(), popper()),
                           60)
    served = server.core.command_stats["blmove"].calls
    await server.stop(False)
    await asyncio.wait_for(server.wait_stopped(), 30)
    return seen, served


@pytest.mark.parametrize("sync_in_thread", [False, True])
def test_crash_at_any_point_never_keeps_a_pop_without_its_push(tmp_path, monkeypatch,
                                                               sync_in_thread):
    """At every crash point (and the disks a crash there may leave), recovery holds
    every acknowledged push (in its queue, or moved, or taken by an acknowledged pop),
    every acknowledged move (in proc, not in q), no job twice, no job from nowhere."""
    from kvserver.blocking import Blocking
    from simfs import SimFileSystem, recover_data, sim_config

    served = [0]
    serve_ready = Blocking.serve_ready

    def counting(self, core):
        before = len(self.waiters)
        serve_ready(self, core)
        served[0] += before - len(self.waiters)
    monkeypatch.setattr(Blocking, "serve_ready", counting)
    # The LSN of the unit holding each served pop: an acknowledged served pop
    # must be in every crash state from its acknowledgement on.
    pop_lsn: dict = {}
    resolve = Blocking._resolve

    def recording(self, waiter, reply, lsn):
        job = reply[1] if isinstance(reply, list) else reply
        if isinstance(job, bytes):
            pop_lsn[job] = lsn
        resolve(self, waiter, reply, lsn)
    monkeypatch.setattr(Blocking, "_resolve", recording)
    if sync_in_thread:
        # A sync that takes a while, off the loop: a reply sent before its
        # sync would reach the client first, and be counted before it.
        slow_sync = SimFileSystem._sync

        def _sync(self, f):
            time.sleep(0.003)
            slow_sync(self, f)
        monkeypatch.setattr(SimFileSystem, "_sync", _sync)
    config = sim_config(str(tmp_path / "data"), checkpoint_wal_size=1500)
    sim = SimFileSystem(record=True)
    seen, _calls = asyncio.run(_queue_workload(config, sim, sync_in_thread))
    all_jobs = {job for _m, _q, job in seen["push"]}
    assert len(seen["moved"]) + len(seen["popped"]) == len(all_jobs)   # all consumed
    assert served[0] >= len(all_jobs) // 4, served   # many were served while blocked
    assert len(pop_lsn) == served[0]
    states = 0
    for k in range(len(sim.history)):
        for state in sim.history[k].crash_states(limit=12, seed=k):
            data, rec = recover_data(state, config.dir, config)
            states += 1
            q, proc, q2 = (list(data.get(key, ())) for key in (b"q", b"proc", b"q2"))
            where = f"crash after {k} ops ({sim.ops[k - 1] if k else 'start'})"
            held = q + proc + q2
            assert len(held) == len(set(held)), f"{where}: a job twice: {held}"
            assert set(held) <= all_jobs, where
            # (An LREM sent at m is logged after m: it can only be in states past m.)
            removed = {job for m, job in seen["lrem_sent"] if m < k}
            popped_ever = {job for _m, job in seen["popped"]}
            for m, queue, job in seen["push"]:
                if m > k:
                    continue
                if queue == b"q":
                    assert job in q or job in proc or job in removed, \
                        f"{where}: acknowledged {job!r} lost"
                else:
                    assert job in q2 or job in popped_ever, f"{where}: acknowledged {job!r} lost"
            for m, job in seen["moved"] + seen["popped"]:
                if m <= k and job in pop_lsn:
                    assert rec.last_lsn >= pop_lsn[job], \
                        f"{where}: served pop of {job!r} acknowledged, its unit lost"
            for m, job in seen["moved"]:
                if m <= k:
                    assert job not in q, f"{where}: acknowledged move of {job!r} undone"
                    assert job in proc or job in removed, f"{where}: moved {job!r} lost"
            for m, job in seen["popped"]:
                if m <= k:
                    assert job not in q2, f"{where}: acknowledged pop of {job!r} undone"
    assert states > len(sim.history)


def test_blocked_clients_hold_up_nothing(kv, kv_config):
    """While clients are blocked: other clients run, SAVE checkpoints, keys expire
    actively; then a push serves them and a restart from the checkpoint + WAL has it."""
    a, b, d = RawClient(kv.port), RawClient(kv.port), RawClient(kv.port)
    core = kv.server.core
    try:
        a.send(encode_request(["BLPOP", "k", "0"]))
        b.send(encode_request(["BLMOVE", "k2", "done", "LEFT", "LEFT", "0"]))
        wait_for(lambda: core.blocking is not None and len(core.blocking.waiters) == 2, "waits")
        assert d.call("SET", "e", "1", "PX", "30").raw == b"+OK\r\n"
        assert d.call("RPUSH", "other", "x").raw == b":1\r\n"
        assert d.call("SAVE").raw == b"+OK\r\n"
        wait_for(lambda: d.call("DBSIZE").value == 1, "active expiry of e", timeout=10)
        assert d.call("RPUSH", "k", "v").raw == b":1\r\n"
        assert d.call("RPUSH", "k2", "w").raw == b":1\r\n"
        assert a.read().value == [b"k", b"v"]
        assert b.read().value == b"w"
    finally:
        for c in (a, b, d):
            c.close()
    kv.stop()
    again = ThreadedServer(kv_config).start()
    try:
        c = RawClient(again.port)
        assert c.call("LRANGE", "done", "0", "-1").value == [b"w"]
        assert c.call("EXISTS", "k", "k2", "e").value == 0
        assert c.call("LRANGE", "other", "0", "-1").value == [b"x"]
        c.close()
    finally:
        again.stop()


def test_deny_blocking_answers_as_a_timeout_at_once():
    """A client that may not block (a script sets Client.deny_blocking, as Redis's
    CLIENT_DENY_BLOCKING) gets the non-blocking answer; nothing is registered."""
    from kvserver.commands import TABLE
    from kvserver.core import Core
    from kvserver.protocol import NULL_ARRAY
    from kvserver.session import Session

    core = Core(Config(port=0))
    s = Session(core)
    s.deny_blocking = True
    assert TABLE["blpop"].func(s, [b"BLPOP", b"k", b"0"]) is NULL_ARRAY
    assert TABLE["blmpop"].func(s, [b"BLMPOP", b"0", b"1", b"k", b"LEFT"]) is NULL_ARRAY
    assert TABLE["blmove"].func(s, [b"BLMOVE", b"a", b"b", b"LEFT", b"LEFT", b"0"]) is None
    assert TABLE["brpoplpush"].func(s, [b"BRPOPLPUSH", b"a", b"b", b"0"]) is None
    assert core.blocking is None
    TABLE["rpush"].func(s, [b"RPUSH", b"k", b"v"])
    assert TABLE["blpop"].func(s, [b"BLPOP", b"k", b"0"]) == [b"k", b"v"]


@pytest.mark.asyncio
async def test_serving_passes_waiters_that_keep_waiting_and_keeps_fifo():
    """Waiters whose serve keeps them waiting (blocked for another type on the same
    key, as BZPOPMIN on a list) stay, in order; the others are served FIFO, each
    serve function called once per round."""
    from kvserver import blocking
    from kvserver.commands import TABLE
    from kvserver.core import Core
    from kvserver.session import Session
    from kvserver.types.list import LIST

    core = Core(Config(port=0))
    calls: list = []

    def serve_other(c, key):
        calls.append(c.id)
        return None

    def serve_list(c, key):
        calls.append(c.id)
        if not c.core.keyspace.lookup(c.db, key):
            return None
        with c.core.keyspace.mutate(c.db, key, LIST) as lst:
            return lst.pop_n(1, True)[0]

    others = [Session(core) for _ in range(30)]
    listers = [Session(core) for _ in range(30)]
    for i in range(30):   # interleaved: other, list, other, list...
        blocking.block(others[i], [b"k"], 0, serve_other)
        blocking.block(listers[i], [b"k", b"j"], 0, serve_list)
    registry = core.blocking
    waiting = {c: registry.waiters[c].deferred for c in listers}
    pusher = Session(core)
    TABLE["rpush"].func(pusher, [b"RPUSH", b"k"] + [b"%d" % i for i in range(20)])
    registry.serve_ready(core)
    served = [c for c in listers if waiting[c].future.done()]
    assert served == listers[:20]
    assert [waiting[c].future.result() for c in served] == [b"%d" % i for i in range(20)]
    assert len(calls) == 40                   # each waiter up to the 20th list waiter, once
    assert len(registry.waiters) == 40 and b"k" not in core.keyspace.dbs[0].data
    assert list(registry.by_db[0][b"k"]) == [registry.waiters[c] for c in
                                             [x for pair in zip(others, listers) for x in pair]
                                             if c in registry.waiters]
    TABLE["rpush"].func(pusher, [b"RPUSH", b"j", b"x"])
    registry.serve_ready(core)
    assert waiting[listers[20]].future.result() == b"x"   # j: the first still waiting
    for c in others + listers[21:]:
        registry.forget(c)
    assert not registry.listening and registry.by_db == {}


@pytest.mark.asyncio
async def test_a_serve_that_raises_answers_its_client_and_the_round_goes_on():
    from kvserver import blocking
    from kvserver.commands import TABLE
    from kvserver.core import Core
    from kvserver.session import Session

    core = Core(Config(port=0))
    a, b = Session(core), Session(core)

    def refuse(c, key):
        raise CommandError("WRONGTYPE Operation against a key holding the wrong kind of value")
    first = blocking.block(a, [b"k"], 0, refuse)
    second = blocking.block(b, [b"k"], 0, lambda c, key: b"served")
    TABLE["rpush"].func(Session(core), [b"RPUSH", b"k", b"v"])
    core.blocking.serve_ready(core)
    assert first.future.result().startswith("WRONGTYPE")
    assert second.future.result() == b"served"
    assert core.stats.errors == {"WRONGTYPE": 1}


def test_a_client_killed_while_blocked_is_not_served_by_a_push_behind_the_kill(kv_port,
                                                                                redis_port):
    """CLIENT KILL ID <blocked> then RPUSH in one pipeline: Redis frees the killed client
    at once, so the push is left in the list. Served to the dead client instead, the
    element would be popped (and logged) with its reply going nowhere: a lost job."""
    out = {}
    for port in (kv_port, redis_port):
        scene = Scene(port, resp3=False)
        try:
            scene.control.call("FLUSHALL")
            scene.run(Send("A", "BLPOP k 0"))
            d = scene.client("D")
            d.send(encode_request([b"CLIENT", b"KILL", b"ID", scene.ids["A"].encode()])
                   + encode_request([b"RPUSH", b"k", b"v"]) + encode_request([b"LLEN", b"k"]))
            out[port] = [d.read().raw for _ in range(3)]
            out[port].append(scene.clients.pop("A").read_until_close())
        finally:
            scene.close()
    assert out[kv_port] == out[redis_port]
    assert out[kv_port][2] == b":1\r\n"


def test_a_wal_failure_leaks_no_served_pop_and_no_message(kv):
    """Fail-stop while a client is served and a subscriber waits for a message: the
    sync of the push and its pop fails, so the served client gets an error (never the
    value), the pusher too, and the subscriber gets nothing (its message came after
    the failed write); the server stops."""
    import errno

    blocked, pusher, publisher, sub = (RawClient(kv.port) for _ in range(4))
    assert sub.call("SUBSCRIBE", "ch").raw.endswith(b":1\r\n")
    blocked.send(encode_request([b"BLPOP", b"k", b"0"]))
    wait_for(lambda: kv.call(lambda: kv.server.core.blocking is not None
                             and bool(kv.server.core.blocking.waiters)), "the client to block")
    gate = threading.Event()

    def install():
        writer = kv.server.writer
        writer.sync_in_thread = True

        def failing_sync():
            assert gate.wait(20), "test never released the sync"
            raise OSError(errno.EIO, "Input/output error")
        writer.wal.sync = failing_sync
    kv.call(install)
    pusher.send(encode_request([b"RPUSH", b"k", b"v"]))
    wait_for(lambda: kv.call(lambda: not kv.server.core.blocking.waiters), "the pop")
    publisher.send(encode_request([b"PUBLISH", b"ch", b"m"]))   # its reply waits too
    assert _reply_within(blocked, 0.2) is None and _reply_within(sub, 0.2) is None
    gate.set()
    got = blocked.read_until_close()
    assert got.startswith(b"-ERR wal: fsync failed") and b"$1\r\nv" not in got
    assert pusher.read_until_close().startswith(b"-ERR wal: fsync failed")
    assert publisher.read_until_close().startswith(b"-ERR wal: fsync failed")
    assert sub.read_until_close() == b""
    for c in (blocked, pusher, publisher, sub):
        c.close()
