"""Transactions: MULTI, EXEC, DISCARD, WATCH, UNWATCH.

Differential first: the same requests go to kvserver and to the real
redis-server 7.0.15 (test_differential's Pair) and the raw replies must be
identical, in RESP2 and RESP3, for the queueing replies, every error, the
per-command errors inside EXEC, EXECABORT and the null array of a dirty
WATCH (invalidated by another client's write, expiry, FLUSHDB/FLUSHALL,
SWAPDB, MOVE, RENAME, DEL, COPY). Then what Redis cannot show: one EXEC is
one WAL record (the recorder, a kill -9 restart), the queue's limit, the
WATCH index's bookkeeping, and redis-py's pipeline/transaction helpers.
"""

from __future__ import annotations

import time

import pytest

from kvserver.config import Config
from kvserver.core import Core
from kvserver.dispatch import Dispatcher
from kvserver.client import Client
from test_crash_process import UnitWorker
from test_differential import (Pair, RawClient, Sleep, kv_port, pair,  # noqa: F401
                               redis_port, run_step)

CASES: dict[str, list] = {
    "errors-outside": ["EXEC", "DISCARD", "UNWATCH", "EXEC 1", "MULTI 1", "WATCH",
                       "DISCARD x", "UNWATCH x"],
    "basic": ["MULTI", "SET a 1", "INCR a", "GET a", "EXEC", "GET a"],
    "empty": ["MULTI", "EXEC"],
    "nested-and-watch-inside": ["MULTI", "MULTI", "WATCH a", "SET a 3", "EXEC", "GET a"],
    "discard": ["MULTI", "SET a 2", "DISCARD", "GET a", "EXEC", "DISCARD"],
    "errors-inside-exec": ["MULTI", "SET a 1", "INCR a", "SETRANGE a -1 x", "INCRBY a x",
                           "INCRBYFLOAT a x", "GET a", "EXEC", "GET a"],
    "execabort-unknown": ["MULTI", "SET a 1", "NOSUCH x", "SET b 2", "EXEC", "EXISTS a b"],
    "execabort-arity": ["MULTI", "SET a 1", "GET", "EXEC", "EXISTS a"],
    "execabort-unknown-subcommand": ["MULTI", "CONFIG NOSUCH", "EXEC",
                                     "MULTI", "CONFIG GET", "EXEC",
                                     "MULTI", "CLIENT NOSUCH", "EXEC"],
    "no-multi": ["MULTI", "SAVE", "EXEC", "MULTI", "SHUTDOWN", "EXEC"],
    "unwatch-queued": ["MULTI", "UNWATCH", "PING", "ECHO hi", "EXEC"],
    "select-inside": ["MULTI", "SELECT 2", "SET s 1", "SELECT 0", "EXEC", "GET s",
                      "SELECT 2", "GET s", "SELECT 0"],
    "multiple-db-effects": ["MULTI", "SET m 1", "MOVE m 3", "SET m 2", "RENAME m n",
                            "EXEC", "MGET m n"],
    "watch-clean": ["SET w 1", "WATCH w x", "WATCH w", "MULTI", "INCR w", "EXEC", "GET w"],
    "watch-own-write-before-multi": ["SET w 1", "WATCH w", "SET w 2", "MULTI", "INCR w",
                                     "EXEC", "GET w"],
    "watch-own-write-inside-exec": ["SET w 1", "WATCH w", "MULTI", "SET w 5", "EXEC",
                                    "MULTI", "GET w", "EXEC"],
    "unwatch-clears": ["SET w 1", "WATCH w", "SET w 2", "UNWATCH", "MULTI", "GET w", "EXEC"],
    "exec-clears-watch": ["WATCH w", "MULTI", "EXEC", "SET w 3", "MULTI", "GET w", "EXEC"],
    "discard-clears-watch": ["WATCH w", "MULTI", "DISCARD", "SET w 3", "MULTI", "GET w",
                             "EXEC"],
    "watch-expired-before-watch": ["SET e 1 PX 30", Sleep(0.08), "WATCH e", "GET e",
                                   "MULTI", "PING", "EXEC"],
    "watch-expires-after-watch": ["SET e 1 PX 60", "WATCH e", Sleep(0.12), "MULTI", "PING",
                                  "EXEC"],
    "watch-expires-read-after-watch": ["SET e 1 PX 60", "WATCH e", Sleep(0.12), "GET e",
                                       "MULTI", "PING", "EXEC"],
    "flushdb-missing-key-not-dirty": ["WATCH nokey", "FLUSHDB", "MULTI", "PING", "EXEC"],
    "flushdb-existing-key-dirty": ["SET f 1", "WATCH f", "FLUSHDB", "MULTI", "PING", "EXEC"],
    "flushall-dirty": ["SET f 1", "WATCH f", "FLUSHALL", "MULTI", "PING", "EXEC"],
    "swapdb-dirty-from-other": ["SELECT 1", "SET s 1", "SELECT 0", "WATCH s", "SWAPDB 0 1",
                                "MULTI", "PING", "EXEC"],
    "swapdb-dirty-from-this": ["SET s 1", "WATCH s", "SWAPDB 0 1", "MULTI", "PING",
                               "EXEC"],
    "swapdb-not-dirty": ["WATCH s", "SWAPDB 0 1", "MULTI", "PING", "EXEC"],
    "move-dirty": ["SET m 1", "WATCH m", "MOVE m 1", "MULTI", "PING", "EXEC"],
    "rename-dirty-src": ["SET r 1", "WATCH r", "RENAME r r2", "MULTI", "PING", "EXEC"],
    "rename-dirty-dst": ["SET r 1", "WATCH r2", "RENAME r r2", "MULTI", "PING", "EXEC"],
    "copy-dirty-dst": ["SET c 1", "WATCH c2", "COPY c c2", "MULTI", "PING", "EXEC"],
    "del-dirty": ["SET d 1", "WATCH d", "DEL d", "MULTI", "PING", "EXEC"],
    "del-missing-not-dirty": ["WATCH d", "DEL d", "MULTI", "PING", "EXEC"],
    "expire-dirty": ["SET x 1", "WATCH x", "EXPIRE x 100", "MULTI", "PING", "EXEC"],
    "dirty-then-execabort": ["SET d 1", "WATCH d", "SET d 2", "MULTI", "NOSUCH", "EXEC"],
    "exec-wrong-arity-inside-discards": ["MULTI", "SET a 1", "EXEC x", "EXEC", "GET a"],
    "exec-wrong-arity-unwatches": ["SET w 1", "WATCH w", "SET w 2", "EXEC x", "MULTI",
                                   "PING", "EXEC"],
    "discard-wrong-arity-inside": ["MULTI", "SET a 1", "DISCARD x", "EXEC", "GET a"],
    "multi-wrong-arity-inside": ["MULTI", "MULTI x", "SET a 1", "EXEC", "GET a"],
    "watch-wrong-arity-inside": ["MULTI", "WATCH", "EXEC"],
    "quit-inside": ["MULTI", "SET a 1", "QUIT"],
    "case-insensitive": ["multi", "set a 1", "Exec", "mUlTi", "discard"],
}


@pytest.fixture
def pair3(kv_port, redis_port):
    p = Pair(kv_port, redis_port)
    p.reset()
    for c in (p.kv, p.redis):
        c.call("HELLO", "3")
    yield p
    p.close()


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_same_replies(pair, steps):
    for step in steps:
        run_step(pair, step)


@pytest.mark.parametrize("steps", CASES.values(), ids=CASES.keys())
def test_same_replies_in_resp3(pair3, steps):
    for step in steps:
        run_step(pair3, step)


#: Another client's write between WATCH and EXEC: (setup, the other client's write).
OTHER_WRITES = [
    (["SET k 1"], "SET k 2"), (["SET k 1"], "DEL k"), (["SET k 1"], "INCR k"),
    (["SET k 1"], "APPEND k x"), (["SET k 1"], "EXPIRE k 100"), ([], "SET k 1"),
    (["SET k 1"], "FLUSHALL"), (["SET k 1"], "FLUSHDB"), (["SET k 1"], "SWAPDB 0 1"),
    (["SET k 1"], "MOVE k 1"), (["SET k 1"], "RENAME k k2"), (["SET j 1"], "RENAME j k"),
    (["SET j 1"], "COPY j k"), (["SET k 1"], "SETBIT k 1 1"), (["SET k 1"], "GETDEL k"),
    (["SET k 1"], "SET k 1"), (["SET k 1"], "GET k"), (["SET k 1"], "SET other 1"),
    ([], "DEL k"), (["SET k 1"], "PERSIST k"),
]


@pytest.mark.parametrize("setup,write", OTHER_WRITES, ids=[w for _, w in OTHER_WRITES])
@pytest.mark.parametrize("resp", [2, 3])
def test_other_clients_write(pair, kv_port, redis_port, setup, write, resp):
    others = Pair(kv_port, redis_port)
    try:
        if resp == 3:
            for c in (pair.kv, pair.redis):
                c.call("HELLO", "3")
        for step in setup:
            pair.same(step)
        pair.same("WATCH k")
        others.same(write)
        pair.same("MULTI")
        pair.same("SET k mine")
        pair.same("EXEC")
        pair.same("GET k")
    finally:
        others.close()


def test_client_list_shows_multi(pair, kv_port, redis_port):
    """CLIENT LIST of another client: flags x and multi=<queued> while queueing; a dirty
    WATCH shows d, and Redis (so kvserver) keeps nothing of a doomed queue: multi=0."""
    observer = Pair(kv_port, redis_port)

    def fields(c):
        line = [entry for entry in c.call("CLIENT", "LIST").value.decode().splitlines()
                if "name=tx " in entry][0]
        return {k: v for k, v in (f.split("=", 1) for f in line.split())
                if k in ("flags", "multi", "cmd", "db")}
    try:
        pair.same("CLIENT SETNAME tx")
        pair.same("SET w 1")
        pair.same("WATCH w")
        pair.same("MULTI")
        pair.same("SET a 1")
        pair.same("GET a")
        assert fields(observer.kv) == fields(observer.redis) == {
            "flags": "x", "multi": "2", "cmd": "get", "db": "0"}
        observer.same("SET w 2")
        pair.same("SET b 1")
        assert fields(observer.kv) == fields(observer.redis) == {
            "flags": "xd", "multi": "2", "cmd": "set", "db": "0"}
        pair.same("EXEC")
        assert fields(observer.kv) == fields(observer.redis) == {
            "flags": "N", "multi": "-1", "cmd": "exec", "db": "0"}
        pair.same("SET w 1")
        pair.same("WATCH w")
        observer.same("SET w 2")
        pair.same("MULTI")
        pair.same("SET a 1")
        assert fields(observer.kv) == fields(observer.redis) == {
            "flags": "xd", "multi": "0", "cmd": "set", "db": "0"}
        pair.same("DISCARD")
    finally:
        observer.close()


def stats_of(c: RawClient, names) -> dict:
    c.call("CONFIG", "RESETSTAT")
    return names


def test_commandstats_count_as_redis(pair):
    """EXEC counts once; queued commands count when EXEC runs them, not when queued."""
    for c in (pair.kv, pair.redis):
        c.call("CONFIG", "RESETSTAT")
    for step in ["MULTI", "SET a 1", "INCR a", "INCRBY a x", "EXEC", "MULTI", "SET a 2",
                 "DISCARD", "MULTI", "SET a 3", "NOSUCH", "EXEC", "EXEC", "MULTI", "MULTI",
                 "SAVE", "DISCARD"]:
        pair.same(step)

    def stats(c):
        text = c.call("INFO", "commandstats").value.decode()
        out = {}
        for line in text.splitlines():
            if line.startswith("cmdstat_") and not line.startswith(("cmdstat_info",
                                                                    "cmdstat_config")):
                name, fields = line[8:].split(":", 1)
                kv = dict(f.split("=") for f in fields.split(","))
                out[name] = (kv["calls"], kv["rejected_calls"], kv["failed_calls"])
        errors = c.call("INFO", "errorstats").value.decode()
        return out, sorted(line for line in errors.splitlines() if line.startswith("errorstat"))
    assert stats(pair.kv) == stats(pair.redis)


@pytest.mark.parametrize("steps", [
    ["MULTI", "SET a 1", "INCR a", "EXEC"],
    ["MULTI", "SET a 1", "DISCARD"],
    ["MULTI", "SET a 1", "NOSUCH", "EXEC"],
    ["SET w 1", "WATCH w", "SET w 2", "MULTI", "SET a 1", "EXEC"],
    ["MULTI", "GET", "SAVE", "EXEC", "EXEC"],
], ids=["exec", "discard", "execabort", "dirty-watch", "rejected"])
def test_total_commands_processed_as_redis(pair, steps):
    """Queued commands count when EXEC runs them; rejected and discarded ones never."""
    for c in (pair.kv, pair.redis):
        c.call("CONFIG", "RESETSTAT")
    for step in steps:
        pair.same(step)

    def total(c):
        text = c.call("INFO", "stats").value.decode()
        return int(text.split("total_commands_processed:")[1].split()[0])
    assert total(pair.kv) == total(pair.redis)


def test_client_pause_write_holds_an_exec_that_writes(kv_port):
    """CLIENT PAUSE WRITE: EXEC of a queue with a write waits for the pause's end (it is
    a write, as in Redis 7.0); EXEC of reads does not."""
    admin, reader, writer = RawClient(kv_port), RawClient(kv_port), RawClient(kv_port)
    try:
        admin.call("DEL", "p")
        for c, cmd in ((reader, ("GET", "p")), (writer, ("SET", "p", "1"))):
            assert c.call("MULTI").raw == b"+OK\r\n"
        assert reader.call("GET", "p").raw == b"+QUEUED\r\n"
        admin.call("CLIENT", "PAUSE", "600", "WRITE")
        started = time.monotonic()
        assert reader.call("EXEC").raw == b"*1\r\n$-1\r\n"
        assert time.monotonic() - started < 0.5
        # A SET is a write even to queue it (Redis 7.0 holds it too): send it and EXEC
        # together; nothing answers until the pause ends.
        writer.send(b"*3\r\n$3\r\nSET\r\n$1\r\np\r\n$1\r\n1\r\n*1\r\n$4\r\nEXEC\r\n")
        time.sleep(0.2)
        assert admin.call("GET", "p").raw == b"$-1\r\n"     # not applied during the pause
        assert writer.read().raw == b"+QUEUED\r\n"          # after the pause (600 ms)
        assert writer.read().raw == b"*1\r\n+OK\r\n"
        assert admin.call("GET", "p").raw == b"$1\r\n1\r\n"
    finally:
        for c in (admin, reader, writer):
            c.close()


def test_client_pause_write_holds_exec_of_a_write_queued_before_the_pause(kv_port):
    admin, writer = RawClient(kv_port), RawClient(kv_port)
    try:
        admin.call("DEL", "q")
        assert writer.call("MULTI").raw == b"+OK\r\n"
        assert writer.call("SET", "q", "1").raw == b"+QUEUED\r\n"
        admin.call("CLIENT", "PAUSE", "500", "WRITE")
        writer.send(b"*1\r\n$4\r\nEXEC\r\n")
        time.sleep(0.2)
        assert admin.call("GET", "q").raw == b"$-1\r\n"     # EXEC waits for the pause
        assert writer.read().raw == b"*1\r\n+OK\r\n"
        assert admin.call("GET", "q").raw == b"$1\r\n1\r\n"
    finally:
        admin.close()
        writer.close()


def test_slowlog_has_the_commands_exec_ran_not_exec(pair):
    try:
        for c in (pair.kv, pair.redis):
            c.call("CONFIG", "SET", "slowlog-log-slower-than", "0")
            c.call("SLOWLOG", "RESET")
        for step in ["MULTI", "SET a 1", "INCR a", "EXEC"]:
            pair.same(step)

        def logged(c):
            return [entry[3] for entry in c.call("SLOWLOG", "GET", "10").value]
        assert logged(pair.kv) == logged(pair.redis) == [
            [b"INCR", b"a"], [b"SET", b"a", b"1"], [b"MULTI"], [b"SLOWLOG", b"RESET"]]
    finally:
        for c in (pair.kv, pair.redis):
            c.call("CONFIG", "SET", "slowlog-log-slower-than", "10000")


# --- what Redis cannot show ----------------------------------------------------------

class Recorder:
    """A log sink and a unit sink: every record the core hands the writer."""

    def __init__(self) -> None:
        self.records: list[list] = []

    def one(self, db, argv) -> None:
        self.records.append([(db, argv)])

    def unit(self, effects) -> None:
        self.records.append(list(effects))


def make_core(clock=None):
    core = Core(Config(), clock=clock)
    rec = Recorder()
    core.log_sink = rec.one
    core.unit_sink = rec.unit
    return core, Dispatcher(core), rec


def run(d, client, *words):
    return d.call(client, [w.encode() if isinstance(w, str) else w for w in words])


def test_exec_is_one_record():
    core, d, rec = make_core()
    c = Client(core)
    run(d, c, "MULTI")
    for i in range(5):
        run(d, c, "SET", f"k{i}", "v")
    run(d, c, "INCR", "n")
    run(d, c, "SELECT", "3")
    run(d, c, "SET", "other", "db")
    assert rec.records == []            # nothing logged while queueing
    replies = run(d, c, "EXEC")
    assert len(replies) == 8
    assert len(rec.records) == 1        # ONE record
    effects = rec.records[0]
    assert [argv[0] for _, argv in effects].count(b"SET") == 6
    assert effects[-1][0] == 3


def test_exec_includes_lazy_expiry_in_its_unit():
    now = [1_000_000]
    core, d, rec = make_core(clock=lambda: now[0])
    c = Client(core)
    run(d, c, "SET", "t", "1", "PX", "10")
    rec.records.clear()
    now[0] += 100
    run(d, c, "MULTI")
    run(d, c, "GET", "t")
    run(d, c, "SET", "u", "1")
    run(d, c, "SET", "v", "1")
    run(d, c, "EXEC")
    assert len(rec.records) == 1
    assert [argv[:2] for _, argv in rec.records[0]] == [[b"DEL", b"t"], [b"SET", b"u"],
                                                        [b"SET", b"v"]]


def test_exec_of_many_commands_is_linear():
    """20000 queued commands: one record, and it finishes (a quadratic EXEC would not, soon)."""
    core, d, rec = make_core()
    c = Client(core)
    run(d, c, "MULTI")
    n = 20000
    for i in range(n):
        run(d, c, "SET", b"k%d" % i, "v")
    replies = run(d, c, "EXEC")
    assert len(replies) == n and len(rec.records) == 1 and len(rec.records[0]) == n


def test_queue_limit():
    core, d, rec = make_core()
    core.config = Config(client_query_buffer_limit=1024 * 1024)
    c = Client(core)
    run(d, c, "MULTI")
    value = b"x" * 1000
    replies = [run(d, c, "SET", "k", value) for _ in range(1100)]
    assert any(type(r).__name__ == "ErrorReply" and "client-query-buffer-limit" in r
               for r in replies)
    assert 0 < len(c.queued) < 1100 and c.multi_bytes <= 1024 * 1024
    assert str(run(d, c, "EXEC")).startswith("EXECABORT")
    assert c.queued == [] and c.multi_bytes == 0 and rec.records == []


def test_watch_index_is_freed():
    core, d, rec = make_core()
    a, b = Client(core), Client(core)
    run(d, a, "WATCH", *[f"k{i}" for i in range(1000)])
    run(d, b, "WATCH", "k1", "k2000")
    w = core.watches
    assert w.count == 1002 and w.listening
    assert len(w.by_db[0]) == 1001
    run(d, a, "UNWATCH")
    assert w.count == 2 and set(w.by_db[0]) == {b"k1", b"k2000"}
    run(d, b, "MULTI")
    run(d, b, "EXEC")
    assert w.count == 0 and w.by_db == {} and not w.listening
    # nobody watches: the write path has no hook again
    assert all(db._hook is None for db in core.keyspace.dbs)


def test_watch_dirty_by_other_and_not_by_own_exec():
    core, d, rec = make_core()
    a, b = Client(core), Client(core)
    run(d, a, "WATCH", "k")
    run(d, a, "MULTI")
    run(d, a, "SET", "k", "mine")
    assert run(d, a, "EXEC") == ["OK"] or len(run(d, a, "GET", "k")) == 4
    run(d, a, "WATCH", "k")
    run(d, b, "SET", "k", "theirs")
    assert a.watch_dirty
    run(d, a, "MULTI")
    run(d, a, "SET", "k", "mine")
    from kvserver.protocol import NULL_ARRAY
    assert run(d, a, "EXEC") is NULL_ARRAY
    assert run(d, a, "GET", "k") == b"theirs"


# --- kill -9 ---------------------------------------------------------------------

class ExecWorker(UnitWorker):
    """Unit i is one MULTI ... EXEC (x, n, pad, y changed in one transaction)."""

    def send(self, client, i: int) -> None:
        c = self.c
        pad = str(i) * (1 + (i * 37 + c) % 400)
        client.send(("MULTI",), ("SET", f"x{c}", str(i)), ("INCR", f"n{c}"),
                    ("SET", f"pad{c}", pad), ("SET", f"y{c}", str(i)), ("EXEC",))

    def check(self, client, i: int) -> str | None:
        replies = [client.reply() for _ in range(6)]
        return None if replies[-1] == ["OK", i, "OK", "OK"] else repr(replies)


def test_kill9_keeps_each_exec_whole(kv_process):
    from test_crash_process import kill9_keeps_units_whole
    kill9_keeps_units_whole(kv_process, ExecWorker, clients=6, min_acked=150)


# --- redis-py --------------------------------------------------------------------

redis = pytest.importorskip("redis")


def test_redis_py_pipeline_and_transaction(kv_port):
    r = redis.Redis(port=kv_port)
    r.flushall()
    with r.pipeline(transaction=True) as p:
        p.set("a", 1).incr("a").get("a").incrby("a", "x")
        p.set("b", "2")
        with pytest.raises(redis.ResponseError):
            p.execute()
    assert r.get("a") == b"2" and r.get("b") == b"2"   # no rollback
    with r.pipeline(transaction=True) as p:
        p.set("c", 1).incr("c")
        assert p.execute() == [True, 2]
    with r.pipeline(transaction=True) as p:
        p.set("d", 1)
        p.execute_command("NOSUCH")
        with pytest.raises(redis.ResponseError):
            p.execute()
    assert r.get("d") is None                           # EXECABORT: nothing ran
    r.close()


def test_redis_py_transaction_helper_retries_on_contention(kv_port):
    """Two threads incrementing one counter through WATCH/MULTI/EXEC: no increment lost."""
    import threading
    r = redis.Redis(port=kv_port)
    r.set("counter", 0)
    retries = []

    def bump(pipe):
        value = int(pipe.get("counter"))
        pipe.multi()
        pipe.set("counter", value + 1)

    def worker():
        client = redis.Redis(port=kv_port)
        for _ in range(100):
            calls = []

            def counted(pipe):
                calls.append(1)
                bump(pipe)
            client.transaction(counted, "counter")
            retries.append(len(calls) - 1)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert int(r.get("counter")) == 300
    r.close()


def test_redis_py_watch_sees_another_clients_write(kv_port):
    r = redis.Redis(port=kv_port)
    other = redis.Redis(port=kv_port)
    r.set("w", 1)
    with r.pipeline() as p:
        p.watch("w")
        other.set("w", 2)
        p.multi()
        p.set("w", 3)
        with pytest.raises(redis.WatchError):
            p.execute()
    assert r.get("w") == b"2"
    r.close()
    other.close()
