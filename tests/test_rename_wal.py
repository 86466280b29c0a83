"""``rename-command`` never reaches the WAL (review item 1).

Under ``rename-command SET put`` a client's argv[0] is ``put``; a command
that logged its argv as given wrote ``put`` into the WAL, and the restart
after a crash refused (``replaying b'put' failed``) while ``kvserver check``
said OK. The WAL holds the real names, so replay does not depend on the
renaming in force, and ``kvserver check`` refuses what replay would refuse.
"""

from __future__ import annotations

import os

import pytest
import redis

from conftest import spawn_kvserver
from kvserver.check import main as check_main
from kvserver.commands import COMMANDS, TABLE, renamed_table
from kvserver.config import Config
from kvserver.core import Core
from kvserver.fs import OSFileSystem
from kvserver.session import Session
from kvserver.wal import WAL, encode_batch, encode_effect, list_segments, scan_segment

#: One invocation of every write command that makes it log something (the
#: keys exist: k = "v" with a TTL, n = "5", the hash h = {f: v}, the set s = {a, b}, the list
#: l = [a, b, c], the zset z = {a: 1, b: 2}, and
#: database 1 is empty). A new write command adds its case here.
WRITES = {
    "append": [b"k", b"w"], "copy": [b"k", b"k2"], "decr": [b"n"], "decrby": [b"n", b"2"],
    "del": [b"k"], "expire": [b"k", b"100"], "expireat": [b"k", b"99999999999"],
    "flushall": [], "flushdb": [], "getdel": [b"k"], "getex": [b"k", b"EX", b"100"],
    "getset": [b"k", b"w"], "incr": [b"n"], "incrby": [b"n", b"2"],
    "incrbyfloat": [b"n", b"1.5"], "move": [b"k", b"1"], "mset": [b"a", b"1", b"b", b"2"],
    "msetnx": [b"c", b"1", b"d", b"2"], "persist": [b"k"], "pexpire": [b"k", b"1000"],
    "pexpireat": [b"k", b"99999999999999"], "psetex": [b"k", b"1000", b"w"],
    "rename": [b"k", b"k3"], "renamenx": [b"k", b"k4"], "set": [b"k", b"w"],
    "setex": [b"k", b"10", b"w"], "setnx": [b"new", b"w"], "setrange": [b"k", b"0", b"abc"],
    "swapdb": [b"0", b"1"], "unlink": [b"k"], "setbit": [b"k", b"100", b"1"],
    "bitfield": [b"k", b"SET", b"u8", b"0", b"200"], "bitop": [b"AND", b"dest", b"k", b"n"],
    "hset": [b"h", b"f", b"w"], "hmset": [b"h", b"f", b"w"], "hsetnx": [b"h", b"g", b"w"],
    "hdel": [b"h", b"f"], "hincrby": [b"h", b"i", b"2"], "hincrbyfloat": [b"h", b"i", b"1.5"],
    "sadd": [b"s", b"c"], "srem": [b"s", b"a"], "spop": [b"s"], "smove": [b"s", b"s2", b"a"],
    "sinterstore": [b"d", b"s", b"s"], "sunionstore": [b"d", b"s"], "sdiffstore": [b"d", b"s", b"k9"],
    "lpush": [b"l", b"x"], "rpush": [b"l", b"x"], "lpushx": [b"l", b"x"],
    "rpushx": [b"l", b"x"], "lpop": [b"l"], "rpop": [b"l", b"2"],
    "lmpop": [b"2", b"nokey", b"l", b"LEFT", b"COUNT", b"2"],
    "linsert": [b"l", b"BEFORE", b"b", b"x"], "lset": [b"l", b"0", b"x"],
    "ltrim": [b"l", b"1", b"-1"], "lrem": [b"l", b"0", b"a"],
    "lmove": [b"l", b"m", b"LEFT", b"RIGHT"], "rpoplpush": [b"l", b"m"],
    "sort": [b"s", b"ALPHA", b"STORE", b"d"],
    "zadd": [b"z", b"GT", b"INCR", b"1", b"a"], "zincrby": [b"z", b"0.5", b"b"],
    "zrem": [b"z", b"a"], "zrangestore": [b"d", b"z", b"0", b"-1"],
    "zremrangebyrank": [b"z", b"0", b"0"], "zremrangebyscore": [b"z", b"(1", b"+inf"],
    "zremrangebylex": [b"z", b"-", b"+"], "zpopmin": [b"z"], "zpopmax": [b"z", b"2"],
    "zmpop": [b"2", b"nokey", b"z", b"MAX", b"COUNT", b"2"],
    "zunionstore": [b"d", b"2", b"z", b"s"], "zinterstore": [b"d", b"1", b"z"],
    "zdiffstore": [b"d", b"1", b"z"],
    "bzpopmin": [b"z", b"0"], "bzpopmax": [b"z", b"0"], "bzmpop": [b"0", b"1", b"z", b"MIN"],
    "blpop": [b"nokey", b"l", b"0"], "brpop": [b"l", b"0"],
    "blmove": [b"l", b"m", b"LEFT", b"RIGHT", b"0"], "brpoplpush": [b"l", b"l", b"0"],
    "blmpop": [b"0", b"2", b"nokey", b"l", b"RIGHT", b"COUNT", b"2"],
}


def test_every_write_command_logs_its_real_name_under_any_renaming(tmp_path):
    assert set(WRITES) == {name for name, cmd in TABLE.items() if cmd.is_write}, \
        "a write command without a case here"
    # Every command renamed to an alias no table knows.
    table = renamed_table(tuple((name, f"zz-{name}") for name in TABLE))
    variants = {name: [args] for name, args in WRITES.items()}
    variants["set"].append([b"k", b"w", b"EX", b"100"])  # the option-parsing path
    for name, cases in variants.items():
        for args in cases:
            core = Core(Config(dir=str(tmp_path)))
            logged: list = []
            core.log_sink = lambda db, argv: logged.append(argv)
            session = Session(core)
            TABLE["set"].func(session, [b"SET", b"k", b"v", b"EX", b"1000"])
            TABLE["set"].func(session, [b"SET", b"n", b"5"])
            TABLE["hset"].func(session, [b"HSET", b"h", b"f", b"v"])
            TABLE["sadd"].func(session, [b"SADD", b"s", b"a", b"b"])
            TABLE["rpush"].func(session, [b"RPUSH", b"l", b"a", b"b", b"c"])
            TABLE["zadd"].func(session, [b"ZADD", b"z", b"1", b"a", b"2", b"b"])
            logged.clear()
            alias = f"zz-{name}".encode()
            reply = table[alias].func(session, [alias] + args)
            assert logged, f"{name} logged nothing (reply {reply!r})"
            for argv in logged:
                assert argv[0] in COMMANDS, f"{name} logged {argv[0]!r}"
                assert COMMANDS[argv[0]].arity_ok(len(argv))


def _write_wal(dirpath: str, argvs: list[list[bytes]]) -> None:
    fs = OSFileSystem()
    os.makedirs(dirpath, exist_ok=True)
    wal = WAL.create(fs, dirpath, 1234, 1)
    wal.write(encode_batch(1, [encode_effect(0, argv) for argv in argvs]), len(argvs))
    wal.sync()
    wal.close()


def test_check_refuses_a_wal_that_replay_would_refuse(tmp_path, capsys):
    # A data directory written by a version with the bug: check used to say OK.
    good, bad = str(tmp_path / "good"), str(tmp_path / "bad")
    _write_wal(good, [[b"SET", b"k", b"v"], [b"set", b"k2", b"v"]])
    _write_wal(bad, [[b"SET", b"k", b"v"], [b"put", b"k2", b"v"]])
    assert check_main([good]) == 0
    assert check_main([bad]) == 1
    out = capsys.readouterr().out
    assert "unknown command 'put'" in out and "LSN 2" in out


def _wal_names(data_dir: str) -> set[bytes]:
    fs = OSFileSystem()
    names = set()
    for first, path in list_segments(fs, data_dir):
        for rec in scan_segment(fs.read(path), path, first).records:
            names.update(argv[0] for _db, argv in rec.effects)
    return names


RENAMES = ("--rename-command", "SET", "put", "--rename-command", "MSET", "mput",
           "--rename-command", "APPEND", "app", "--rename-command", "FLUSHALL", "")


def test_renamed_writes_survive_kill9_and_a_restart_under_another_renaming(tmp_path):
    data_dir = str(tmp_path / "data")
    server = spawn_kvserver(data_dir, *RENAMES)
    try:
        r = redis.Redis(port=server.port)
        assert r.execute_command("put", "plain", "1") == b"OK"          # the hot path
        assert r.execute_command("PUT", "ttl", "2", "EX", "1000") == b"OK"
        assert r.execute_command("mput", "m1", "a", "m2", "b") == b"OK"
        assert r.execute_command("app", "plain", "+") == 2
        assert r.pipeline(transaction=False).execute_command("put", "p1", "x") \
            .execute_command("put", "p2", "y").execute() == [b"OK", b"OK"]
        with pytest.raises(redis.ResponseError, match="unknown command"):
            r.execute_command("SET", "no", "1")
        with pytest.raises(redis.ResponseError, match="unknown command"):
            r.flushall()
    finally:
        server.kill9()
    assert _wal_names(data_dir) <= {b"SET", b"MSET", b"APPEND"}
    assert check_main([data_dir]) == 0
    expected = {b"plain": b"1+", b"ttl": b"2", b"m1": b"a", b"m2": b"b", b"p1": b"x",
                b"p2": b"y"}
    # Restart under another renaming (SET now answers to "store"), then none.
    for args in (("--rename-command", "SET", "store"), ()):
        server = spawn_kvserver(data_dir, *args)
        try:
            r = redis.Redis(port=server.port)
            assert dict(zip(expected, r.mget(list(expected)))) == expected
            assert 0 < r.ttl("ttl") <= 1000
            assert r.exists("no") == 0
        finally:
            server.kill9()
