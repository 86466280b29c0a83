"""Crash tests for the aggregate types: the simulator and ``kill -9``.

* On the simulated disk (tests/simfs.py): a real Server under concurrent
  clients using hashes, lists, sets, sorted sets and every multi-effect command (SMOVE,
  LMOVE, RPOPLPUSH, SINTERSTORE/SUNIONSTORE/SDIFFSTORE, SORT ... STORE,
  MULTI/EXEC over several types), with checkpoints taken while the values
  change in place. At every crash point, for every disk a crash there could
  leave, recovery must hold every acknowledged unit and equal the history at
  one LSN: no unit half-kept.

  The history is built from the effects the server logged (captured at the
  log sink, one record per LSN) replayed through the command table in a
  fresh core, since SPOP's choice is random: the argv alone cannot say what
  it removed. Command semantics are the differential tests' business; here
  the question is only durability and atomicity.

* ``kill -9`` of a real process while clients of every type write: every
  acknowledged reply is found after the restart.
"""

from __future__ import annotations

import asyncio
import random
import threading

import pytest

import simfs
from kvserver import commands
from kvserver.config import Config
from kvserver.core import Core
from kvserver.protocol import ErrorReply
from kvserver.session import Session
from simfs import Checker, Instrument, SimFileSystem, run_workload, sim_config
from test_differential import RawClient


def normalize(data: dict) -> dict:
    """A database's contents as plain comparable values (lists as tuples,
    sets as frozensets, hashes as dicts, sorted sets as (member, score) tuples)."""
    out = {}
    for key, value in data.items():
        if isinstance(value, bytes):
            out[key] = value
        elif isinstance(value, dict):
            out[key] = ("hash", dict(value))
        elif isinstance(value, (set, frozenset)):
            out[key] = ("set", frozenset(value))
        elif hasattr(value, "items"):
            out[key] = ("zset", tuple(value.items()))
        else:
            out[key] = ("list", tuple(value))
    return out


class EffectInstrument(Instrument):
    """Instrument for typed workloads: every command's LSN (for the acks), and
    the history rebuilt from the logged effects (see the module doc)."""

    NAMES = tuple(n.encode() for n in (
        "set", "del", "get", "bgsave", "client", "hset", "hdel", "hincrby", "hget", "lpush",
        "rpush", "lpop", "rpop", "lmove", "rpoplpush", "lrange", "sadd", "srem", "spop", "smove",
        "smembers", "sinterstore", "sunionstore", "sdiffstore", "sort", "multi", "exec",
        "zadd", "zincrby", "zpopmin", "zunionstore", "zrangestore", "zrange"))

    def __init__(self) -> None:
        super().__init__()
        self.records: list[list[tuple[int, list]]] = []

    def watch_sinks(self, server) -> None:
        """Capture every record the server hands its writer (one per LSN)."""
        core = server.core
        log_sink, unit_sink = core.log_sink, core.unit_sink

        def one(db_index, argv):
            self.records.append([(db_index, list(argv))])
            return log_sink(db_index, argv)

        def unit(effects):
            self.records.append([(db, list(argv)) for db, argv in effects])
            return unit_sink(effects)
        core.log_sink = one
        if unit_sink is not None:
            core.unit_sink = unit

    def models(self, base: dict, base_lsn: int) -> list[dict]:
        assert not base and base_lsn == 0, "typed workloads start on an empty disk"
        # One record per execution unit: every LSN is the one some command's
        # unit (a command, or a whole EXEC) ended at, never a piece of one.
        unit_lsns = {lsn for lsn, _argv, _continued in self.applied}
        assert set(range(1, len(self.records) + 1)) <= unit_lsns
        core = Core(Config(port=0))
        session = Session(core)
        models = [normalize({})]
        for record in self.records:
            for db_index, argv in record:
                session.select(db_index)
                reply = commands.execute(session, argv)
                assert not isinstance(reply, ErrorReply), (argv, reply)
            models.append(normalize(core.keyspace.dbs[0].data))
        # The logged effects rebuild exactly what the server held: no write
        # changed memory without logging it.
        assert models[-1] == normalize(self.core.keyspace.dbs[0].data)
        return models


class TypedChecker(Checker):
    def outcome(self, state):
        key = state.fingerprint()
        if key not in self.cache:
            data, last = super().outcome(state)
            self.cache[key] = (normalize(data), last)
        return self.cache[key]


def typed_script(c: int, ops: int, rng: random.Random, bgsave_every: int = 0) -> list[tuple]:
    """One client's commands over shared hashes, lists and sets (keys by type,
    so nothing answers WRONGTYPE), with every multi-effect command."""
    out: list[tuple] = []
    for i in range(ops):
        if bgsave_every and i % bgsave_every == bgsave_every - 1:
            out.append(("BGSAVE",))
            continue
        m = f"m{rng.randrange(6)}"
        h, lst, st = f"h{rng.randrange(2)}", f"l{rng.randrange(2)}", f"s{rng.randrange(3)}"
        z = f"z{rng.randrange(2)}"
        roll = rng.randrange(20)
        if roll == 0:
            out.append(("HSET", h, m, f"{c}.{i}", "x", str(i)))
        elif roll == 1:
            out.append(("HINCRBY", h, "n", "1"))
        elif roll == 2:
            out.append(("HDEL", h, m))
        elif roll == 3:
            out.append((rng.choice(["LPUSH", "RPUSH"]), lst, f"{c}.{i}", m))
        elif roll == 4:
            out.append((rng.choice(["LPOP", "RPOP"]), lst))
        elif roll == 5:
            out.append(("LMOVE", lst, f"l{rng.randrange(2)}", rng.choice(["LEFT", "RIGHT"]),
                        rng.choice(["LEFT", "RIGHT"])))
        elif roll == 6:
            out.append(("RPOPLPUSH", lst, "l1"))
        elif roll == 7:
            out.append(("SADD", st, m, f"{c}.{i}"))
        elif roll == 8:
            out.append(("SREM", st, m))
        elif roll == 9:
            out.append(("SPOP", st) if rng.random() < 0.5 else ("SPOP", st, "2"))
        elif roll == 10:
            out.append(("SMOVE", st, f"s{rng.randrange(3)}", m))
        elif roll == 11:
            out.append((rng.choice(["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]), "s2",
                        "s0", "s1"))
        elif roll == 12:
            out.append(("SORT", st, "ALPHA", "STORE", "sorted"))
        elif roll == 13:
            out.append(("MULTI-EXEC", ("HSET", h, "t", str(i)), ("LPUSH", lst, m),
                        ("SADD", st, m), ("SMOVE", "s0", "s1", m), ("ZADD", z, "4", m)))
        elif roll == 14:
            out.append(("DEL", rng.choice([h, lst, st, z])))
        elif roll == 15:
            out.append(("ZADD", z, str(rng.randrange(-3, 9)), m, f"{i}.5", f"{c}.{i}"))
        elif roll == 16:
            out.append(("ZINCRBY", z, "1.25", m))
        elif roll == 17:
            out.append(("ZPOPMIN", z, "2"))
        elif roll == 18:
            out.append(rng.choice([("ZUNIONSTORE", "z2", "2", "z0", "z1"),
                                   ("ZRANGESTORE", "z2", z, "0", "2"),
                                   ("SORT", z, "BY", "nosort", "STORE", "sorted")]))
        else:
            out.append(rng.choice([("HGET", h, m), ("LRANGE", lst, "0", "-1"),
                                   ("SMEMBERS", st), ("ZRANGE", z, "0", "-1", "WITHSCORES")]))
    return out


def _typed_trace(tmp_path, seed: int, clients: int, ops: int, segment_bytes: int,
                 checkpoint_wal_size: int, monkeypatch):
    config = sim_config(str(tmp_path / "data"), checkpoint_wal_size=checkpoint_wal_size)
    sim = SimFileSystem(record=True)
    rng = random.Random(seed)
    scripts = [typed_script(c, ops, random.Random(rng.random()), 12 if c == 0 else 0)
               for c in range(clients)]
    made: list[EffectInstrument] = []

    def make() -> EffectInstrument:
        made.append(EffectInstrument())
        return made[-1]
    monkeypatch.setattr(simfs, "Instrument", make)
    trace = asyncio.run(run_workload(config, sim, scripts=scripts, segment_bytes=segment_bytes,
                                     on_started=lambda server: made[-1].watch_sinks(server)))
    trace.records = made[-1].records
    return trace


def made_records(trace) -> list:
    return trace.records


@pytest.mark.parametrize("seed,clients,ops,segment_bytes,checkpoint_wal_size", [
    (1, 5, 40, 400, 1500), (2, 3, 50, 200, 800)])
def test_every_crash_point_keeps_typed_units_whole(tmp_path, monkeypatch, seed, clients, ops,
                                                   segment_bytes, checkpoint_wal_size):
    trace = _typed_trace(tmp_path, seed, clients, ops, segment_bytes, checkpoint_wal_size,
                         monkeypatch)
    assert not trace.errors, trace.errors[:3]
    # The workload did what it is for: checkpoints and multi-effect records.
    assert len(trace.points("rename", "checkpoint-")) >= 2
    assert len(trace.models) > 60
    units = [r for r in made_records(trace) if len(r) > 1]
    assert len(units) >= 5  # SMOVE, LMOVE, *STORE over an existing key, EXEC
    final = trace.models[-1]
    assert {kind for kind, _ in (v for v in final.values() if isinstance(v, tuple))} >= {
        "hash", "list", "set", "zset"}
    checker = TypedChecker(trace)
    checker.check_points(range(len(trace.sim.history)))
    assert checker.states > len(trace.sim.history)


# --- kill -9 with concurrent clients of every type --------------------------------------

def _writer(port: int, kind: str, acked: list, stop: threading.Event) -> None:
    """Write until the server dies; record each acknowledged effect."""
    c = RawClient(port, timeout=5)
    i = 0
    try:
        while not stop.is_set():
            i += 1
            try:
                if kind == "hash":
                    r = c.call("HSET", "h", f"f{i}", f"v{i}")
                elif kind == "list":
                    r = c.call("RPUSH", "l", f"e{i}")
                elif kind == "set":
                    r = c.call("SADD", "s", f"m{i}")
                elif kind == "zset":
                    r = c.call("ZADD", "z", str(i), f"z{i}")
                elif kind == "move":
                    c.call("RPUSH", "src", f"j{i}")
                    r = c.call("LMOVE", "src", "dst", "LEFT", "RIGHT")
                elif kind == "smove":
                    c.call("SADD", "pool", f"p{i}")
                    r = c.call("SMOVE", "pool", "taken", f"p{i}")
                else:  # a transaction over three types
                    c.send(b"*1\r\n$5\r\nMULTI\r\n")
                    c.read()
                    for argv in (("HSET", "th", f"f{i}", "1"), ("RPUSH", "tl", f"{i}"),
                                 ("SADD", "ts", f"{i}")):
                        c.call(*argv)
                    r = c.call("EXEC")
            except (OSError, ConnectionError, EOFError, ValueError):
                return
            if r.raw[:1] == b"-":
                return
            acked.append(i)
    finally:
        c.close()


def test_kill9_with_concurrent_clients_of_every_type_keeps_every_ack(kv_process):
    server = kv_process("--checkpoint-wal-size", "20000")
    kinds = ("hash", "list", "set", "zset", "move", "smove", "multi")
    acked = {k: [] for k in kinds}
    stop = threading.Event()
    threads = [threading.Thread(target=_writer, args=(server.port, k, acked[k], stop))
               for k in kinds]
    for t in threads:
        t.start()
    deadline = 0
    while min(len(v) for v in acked.values()) < 150 and deadline < 400:
        threading.Event().wait(0.05)
        deadline += 1
    server.kill9()  # mid-stream: clients are still writing
    stop.set()
    for t in threads:
        t.join(10)
    assert min(len(v) for v in acked.values()) >= 150
    server = kv_process()
    c = RawClient(server.port)
    try:
        h = c.call("HGETALL", "h").value
        fields = set(h[::2])
        assert {b"f%d" % i for i in acked["hash"]} <= fields
        lst = c.call("LRANGE", "l", "0", "-1").value
        assert [b"e%d" % i for i in acked["list"]] == lst[:len(acked["list"])]
        members = set(c.call("SMEMBERS", "s").value)
        assert {b"m%d" % i for i in acked["set"]} <= members
        zmembers = c.call("ZRANGE", "z", "0", "-1").value
        assert [b"z%d" % i for i in acked["zset"]] == zmembers[:len(acked["zset"])]
        dst = c.call("LRANGE", "dst", "0", "-1").value
        src = c.call("LRANGE", "src", "0", "-1").value
        assert [b"j%d" % i for i in acked["move"]] == dst[:len(acked["move"])]
        assert not set(dst) & set(src)  # a moved job is in one list, never both
        taken = set(c.call("SMEMBERS", "taken").value)
        pool = set(c.call("SMEMBERS", "pool").value)
        assert {b"p%d" % i for i in acked["smove"]} <= taken and not taken & pool
        th = set(c.call("HGETALL", "th").value[::2])
        tl = c.call("LRANGE", "tl", "0", "-1").value
        ts = set(c.call("SMEMBERS", "ts").value)
        # A transaction is whole or absent: the three keys hold the same runs.
        assert {f[1:] for f in th} == set(tl) == ts
        assert {b"%d" % i for i in acked["multi"]} <= ts
    finally:
        c.close()
