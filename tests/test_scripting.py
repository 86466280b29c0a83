"""Scripting: EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, SCRIPT, the redis.* API and the sandbox.

Differential first: the same requests go to kvserver and to the real
redis-server 7.0.15 (test_differential's Pair) and the raw replies must be
identical, in RESP2 and RESP3: argument errors, NOSCRIPT, compile and runtime
errors with their " script: <sha>, on @user_script:<line>." suffix, errors
from redis.call kept with their code, redis.pcall's error tables, the
Lua<->RESP conversions both ways, setresp(3), the sandbox's globals and its
texts, shebang flags, read-only scripts. Then what Redis cannot show: one
script is one WAL record (a recorder, and kill -9 in the middle of a load of
scripts), the script client's database, the busy mode with SCRIPT KILL
against a real process.
"""

from __future__ import annotations

import hashlib
import threading
import time

import pytest

from kvserver.client import Client
from kvserver.config import Config
from kvserver.core import Core
from kvserver.dispatch import Dispatcher
from kvserver.protocol import ErrorReply, Raw
from test_security import certs  # noqa: F401  (a fixture)
from test_crash_process import UnitWorker
from test_differential import (RawClient, kv_port, pair,  # noqa: F401
                               redis_port, run_step)


def E(script: str, *rest) -> tuple:
    """An EVAL step: the script, then numkeys and its keys and args."""
    return ("EVAL", script, *(rest or (0,)))


def sha(script: str) -> str:
    return hashlib.sha1(script.encode()).hexdigest()


CASES: dict[str, list] = {
    "arguments": ["EVAL", "EVAL x", ("EVAL", "return 1", "x"), ("EVAL", "return 1", "2", "a"),
                  ("EVAL", "return 1", "-1"), ("EVAL", "return 1", "1", "a"),
                  ("EVALSHA", "x", 0), ("EVALSHA", "a" * 40, 0), ("EVALSHA", sha("return 9"), 0),
                  ("EVALSHA", "a" * 40, "x"), ("EVALSHA", "a" * 40, 5),
                  ("EVAL_RO", "return 1", "2"), ("EVALSHA_RO", "a" * 40, 0)],
    "keys-and-argv": [E("return {KEYS[1], KEYS[2], ARGV[1], ARGV[2], #KEYS, #ARGV}", 2,
                        "k1", "k2", "a1", "a2"),
                      E("return {KEYS, ARGV}", 1, "k", "a"),
                      E("return ARGV[3]", 0, "a", "b")],
    "lua-to-resp": [E("return 1"), E("return 1.9"), E("return -1.9"), E("return 'x'"),
                    E("return {1, 2, nil, 4}"), E("return {1, 'a', {2, {3}}}"),
                    E("return 0/0"), E("return 1/0"), E("return -1/0"), E("return 2^63"),
                    E("return 2^62"), E("return -2^63"), E("return true"), E("return false"),
                    E("return nil"), E("return"), E("return {}"), E("return {ok='a\\r\\nb'}"),
                    E("return {err='a\\r\\nb'}"), E("return {err='My error'}"),
                    E("return {ok='x\\0y'}"), E("return 'x\\0y'"), E("return {err='x\\0y'}"),
                    E("return {1, {err='x'}, 3}"), E("return {double=3.5}"),
                    E("return {double=1/0}"), E("return {double='x'}"),
                    E("return {big_number='123'}"),
                    E("return {verbatim_string={format='txt', string='hi'}}"),
                    E("return {map={a=1}}"), E("return {set={a=true}}"),
                    E("return 9007199254740993"), E("return {x=1}"),
                    E("local a = {} a[1] = 1 a[3] = 3 return a"),
                    E("return redis.status_reply('OK')"),
                    E("return redis.error_reply('My err')"),
                    E("return redis.error_reply('-My err')"),
                    E("return redis.error_reply('nospace')"),
                    E("return redis.error_reply(1)"), E("return redis.status_reply()"),
                    E("return print"), E("return function() end")],
    "resp-to-lua": ["SET s v", "HSET h a 1", "RPUSH l a b", "SADD st m",
                    E("return redis.call('get', 's')"), E("return redis.call('get', 'nokey')"),
                    E("return type(redis.call('get', 'nokey'))"),
                    E("return redis.call('set', 'a', 'b')"),
                    E("return {redis.call('set', 'a', 'b')}"),
                    E("return redis.call('set', 'a', 'b')['ok']"),
                    E("return redis.call('ping')"), E("return redis.call('incr', 'n')"),
                    E("return redis.call('hgetall', 'h')"), E("return redis.call('lrange', 'l', 0, -1)"),
                    E("return redis.call('smembers', 'st')"),
                    E("return redis.call('incrbyfloat', 'f', '1.5')"),
                    E("return redis.call('set', 'x', 1.5)"), E("return redis.call('get', 'x')"),
                    E("return redis.call('set', 'x', 0.1)"), E("return redis.call('get', 'x')"),
                    E("return redis.call('set', 'x', 2^60)"), E("return redis.call('get', 'x')"),
                    E("return redis.call('exists', 'nokey', 's')"),
                    E("return redis.call('mget', 's', 'nokey', 'a')"),
                    # integer and nil replies (converted inline in redis.call): a
                    # double past 2^53, an integer compared as a number, nil -> false
                    E("return tostring(redis.call('incrby', 'big', '9007199254740993'))"),
                    E("return redis.call('incrby', 'small', 5) == 5"),
                    E("return redis.call('get', 'nokey') == false"),
                    E("return redis.pcall('get', 'nokey') == false")],
    "resp3-in-script": ["HSET h a 1", "SADD st m", "SET s v",
                        E("redis.setresp(3) return redis.call('hgetall', 'h')"),
                        E("redis.setresp(3) return redis.call('hgetall', 'h').map.a"),
                        E("redis.setresp(3) return redis.call('smembers', 'st')"),
                        E("redis.setresp(3) return type(redis.call('get', 'nokey'))"),
                        E("redis.setresp(3) return {redis.call('get', 'nokey')}"),
                        E("redis.setresp(3) return true"), E("redis.setresp(3) return false"),
                        E("redis.setresp(3) return redis.call('incrbyfloat', 'f', '2.5')"),
                        E("redis.setresp(3) return redis.call('incrbyfloat', 'f', '2.5').double"),
                        E("redis.setresp(2) return redis.call('hgetall', 'h')"),
                        E("return redis.setresp(4)"), E("return redis.setresp()"),
                        E("return redis.setresp('3')")],
    "call-errors": ["SET s x",
                    E("return redis.call('incr', 'a', 'b')"), E("return redis.call('nosuch')"),
                    E("return redis.call()"), E("return redis.call({})"),
                    E("return redis.call('lpush', 's', 'x')"),
                    E("return redis.pcall('lpush', 's', 'x')"),
                    E("return redis.pcall('nosuch')"),
                    E("return redis.pcall('incr', 'a', 'b')"),
                    E("local r = redis.pcall('lpush', 's', 'x') return r.err"),
                    E("return {pcall(redis.call, 'nosuch')}"),
                    E("return {pcall(error, {err='x'})}"), E("return {pcall(error, {err=1})}"),
                    E("return {pcall(error, 'plain')}"),
                    E("return redis.call('watch', 'x')"), E("return redis.call('multi')"),
                    E("return redis.call('blpop', 'nolist', 0)"),
                    E("return redis.call('bzpopmin', 'nozset', 0)"),
                    E("return redis.call('subscribe', 'ch')"),
                    E("return redis.call('monitor')"), E("return redis.call('save')"),
                    E("return redis.call('client', 'list')"),
                    E("return redis.call('config', 'nosuch')"),
                    E("return redis.call('config', 'get')"),
                    E("return redis.call('eval', 'return 1', 0)"),
                    E("return redis.call('script', 'load', 'return 1')"),
                    E("return redis.call('incr', 's')"),
                    E("redis.call('set', 'w', 1)\nredis.call('incr', 's')"), "GET w",
                    E("\n\nreturn redis.call('nosuch')"),
                    E("local function f()\n  return redis.call('nosuch')\nend\nreturn f()")],
    "runtime-errors": [E("return x"), E("x = 1"), E("redis = 1"), E("string.x = 1"),
                       E("redis.call = 1"), E("KEYS = 1"), E("rawset(_G, 'x', 1)"),
                       E("error('boom')"), E("error({err='X boom'})"), E("error('boom', 0)"),
                       E("error(nil)"), E("error(12)"), E("local t = nil; return t.x"),
                       E("return 1 + {}"), E("\n\nerror('on line 3')"),
                       E("local function f()\n  error('in f')\nend\nf()")],
    "compile-errors": [E("return 1 +"), E("x ="), E("for"), E("return 'abc"),
                       E("local function f() return 1"), E("#!lua\nreturn 1 +"),
                       ("SCRIPT", "LOAD", "return +")],
    "sandbox": [E("return type(loadstring)"), E("return loadstring('return 1')()"),
                E("return type(load)"), E("return dofile"), E("return loadfile"),
                E("return getfenv"), E("return setfenv"), E("return newproxy"),
                E("return debug"), E("return print"),
                E("return type(require)"),
                E("return _VERSION"), E("return type(_G)"), E("return type(cjson)"),
                E("return type(bit)"), E("return type(struct)"), E("return type(cmsgpack)"),
                E("return type(__redis__err__handler)"),
                E("local t = {} for k, v in pairs(redis) do t[#t + 1] = k end table.sort(t) "
                  "return t"),
                E("return {redis.LOG_DEBUG, redis.LOG_VERBOSE, redis.LOG_NOTICE, "
                  "redis.LOG_WARNING, redis.REPL_NONE, redis.REPL_AOF, redis.REPL_SLAVE, "
                  "redis.REPL_REPLICA, redis.REPL_ALL}"),
                E("return redis.REDIS_VERSION"), E("return redis.REDIS_VERSION_NUM"),
                E("KEYS[1] = 'changed' return KEYS[1]", 1, "k"),
                E("setmetatable(_G, nil)"), E("setmetatable(string, {})"),
                E("return type(getmetatable(string))"), E("return type(getmetatable(_G))"),
                E("table.insert(string, 1)"), E("_G.x = 1"), E("string = nil"),
                E("return rawget(_G, 'nonexistent')"),
                E("getmetatable('').__index = {}"),
                E("local t = setmetatable({}, {__index = function() return 1 end}) return t.x"),
                E("local x = 5 return x")],
    "redis-api": [E("return redis.sha1hex('')"), E("return redis.sha1hex('abc')"),
                  E("return redis.sha1hex(1)"), E("return redis.sha1hex()"),
                  E("return redis.sha1hex(nil)"),
                  E("return redis.breakpoint()"), E("return redis.debug('x')"),
                  E("return redis.replicate_commands()"),
                  E("return redis.set_repl(redis.REPL_ALL)"), E("return redis.set_repl(7)"),
                  E("return redis.set_repl()"),
                  E("return redis.log(redis.LOG_DEBUG, 'debug line')"),
                  E("return redis.log(1)"), E("return redis.log('x', 'y')"),
                  E("return redis.log(9, 'y')"),
                  E("return redis.acl_check_cmd('get', 'x')"),
                  E("return redis.acl_check_cmd('nosuch')")],
    "script-commands": ["SCRIPT", "SCRIPT NOSUCH", "SCRIPT HELP", "SCRIPT HELP x",
                        ("SCRIPT", "LOAD", "return 'loaded'"),
                        ("SCRIPT", "EXISTS", sha("return 'loaded'"), "a" * 40,
                         sha("return 'loaded'").upper()),
                        ("EVALSHA", sha("return 'loaded'"), 0),
                        ("EVALSHA", sha("return 'loaded'").upper(), 0),
                        ("EVALSHA_RO", sha("return 'loaded'"), 0),
                        "SCRIPT EXISTS", "SCRIPT LOAD", "SCRIPT LOAD a b",
                        "SCRIPT FLUSH x", "SCRIPT FLUSH SYNC x", "SCRIPT FLUSH ASYNC",
                        ("EVALSHA", sha("return 'loaded'"), 0),
                        ("EVAL", "return 'again'", 0), ("EVALSHA", sha("return 'again'"), 0),
                        "SCRIPT FLUSH", "SCRIPT FLUSH SYNC",
                        ("EVALSHA", sha("return 'again'"), 0),
                        "SCRIPT KILL", "SCRIPT KILL x", "SCRIPT DEBUG maybe", "SCRIPT DEBUG NO",
                        ("COMMAND", "GETKEYS", "EVAL", "return 1", 2, "a", "b", "c"),
                        ("COMMAND", "GETKEYS", "EVALSHA_RO", "x" * 40, 1, "a"),
                        ("COMMAND", "GETKEYS", "EVAL", "return 1", 0, "a"),
                        ("COMMAND", "GETKEYS", "EVAL", "return 1", 3, "a"),
                        ("COMMAND", "GETKEYS", "EVAL", "return 1", -1, "a"),
                        ("COMMAND", "GETKEYS", "EVAL", "return 1", "x", "a")],
    "read-only": [("EVAL_RO", "return redis.call('set', 'a', 1)", 0),
                  ("EVAL_RO", "return redis.call('get', 'a')", 0),
                  ("EVAL_RO", "return redis.pcall('del', 'a')", 0),
                  E("#!lua flags=no-writes\nreturn redis.call('set', 'a', 1)"),
                  E("#!lua flags=no-writes\nreturn redis.call('get', 'a')"),
                  ("EVAL_RO", "#!lua\nreturn redis.call('get', 'a')", 0),
                  ("EVAL_RO", "#!lua flags=no-writes\nreturn redis.call('get', 'a')", 0),
                  E("#!lua\nreturn redis.call('set', 'a', 1)"), "GET a",
                  ("EVAL_RO", "return redis.call('publish', 'ch', 'm')", 0),
                  E("#!lua flags=no-writes\nreturn redis.call('publish', 'ch', 'm')"),
                  E("return redis.call('publish', 'ch', 'm')")],
    "shebang": [E("#!lua\nreturn 1"), E("#!lua"), E("#!notlua\nreturn 1"),
                E("#!lua flags=no-writes,allow-oom\nreturn 2"),
                E("#!lua flags=nosuch\nreturn 1"), E("#!lua name=x\nreturn 1"),
                E("#!lua flags=\nreturn 1"), E("#! lua\nreturn 1"), E("#!\nreturn 1"),
                E("#!lua flags=allow-stale,no-cluster,allow-cross-slot-keys\nreturn 3"),
                E("#!lua\nerror('line two')")],
    "binary-and-many-args": [
        E("return {KEYS[1], ARGV[1], #ARGV[1]}", 1, b"k\x00\xff", b"\r\n\x00v\xfe"),
        E("local t = {} for i = 1, 2000 do t[#t + 1] = 'k' .. i; t[#t + 1] = i end "
          "redis.call('mset', unpack(t)) return redis.call('mget', 'k1', 'k2000', 'k2001')"),
        E("return redis.call('set', KEYS[1], ARGV[1])", 1, b"bin\x00key", b"\x00\x01"),
        ("GET", b"bin\x00key"),
        E("return redis.call('incrby', 'ctr', ARGV[1])", 0, "9223372036854775806"),
        E("return redis.call('incr', 'ctr')"), E("return redis.call('incr', 'ctr')"),
        E("return tonumber(redis.call('get', 'ctr'))")],
    "select-in-script": [E("redis.call('select', 2) redis.call('set', 'k', 'db2') "
                           "return redis.call('get', 'k')"),
                         "GET k", "SELECT 2", "GET k", E("return redis.call('get', 'k')"),
                         "SELECT 0", E("return redis.call('select', 99)")],
    "writes-survive-errors": [E("redis.call('set', 'a', 1) error('after write')"), "GET a",
                              E("redis.call('incr', 'b') return redis.call('nosuch')"),
                              "GET b"],
    "libraries": [E("return cjson.encode({1, 2, 3})"), E("return cjson.decode('[1,2]')[2]"),
                  E("return bit.band(7, 3)"), E("return string.format('%5.2f', 1.5)"),
                  E("return table.concat({'a', 'b'}, ',')"), E("return math.floor(2.7)"),
                  E("return struct.pack('>I2', 258)"),
                  E("return cmsgpack.unpack(cmsgpack.pack({1, 2}))"),
                  E("math.randomseed(7) return {math.random(100), math.random(100)}"),
                  E("return ('x'):rep(3)")],
}


@pytest.fixture
def spair(pair):
    for c in (pair.kv, pair.redis):
        assert c.call("SCRIPT", "FLUSH").raw == b"+OK\r\n"
    return pair


@pytest.fixture
def spair3(spair):
    for c in (spair.kv, spair.redis):
        c.call("HELLO", "3")
    return spair


@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
def test_same_replies(spair, steps):
    for step in steps:
        run_step(spair, step)


@pytest.mark.parametrize("steps", list(CASES.values()), ids=list(CASES))
def test_same_replies_in_resp3(spair3, steps):
    for step in steps:
        run_step(spair3, step)


def test_transaction_with_eval(spair):
    for step in ["MULTI", E("return redis.call('incr', 'n')"), ("EVALSHA", "a" * 40, 0),
                 E("return redis.call('nosuch')"), "EXEC", "GET n"]:
        run_step(spair, step)


def test_commandstats_and_errorstats_as_redis(spair):
    def stats(c: RawClient) -> dict:
        text = c.call("INFO", "commandstats").value.decode()
        text += c.call("INFO", "errorstats").value.decode()
        out = {}
        for line in text.splitlines():
            if line.startswith(("cmdstat_", "errorstat_")):
                name, _, rest = line.partition(":")
                fields = dict(f.split("=") for f in rest.split(","))
                fields.pop("usec", None)
                fields.pop("usec_per_call", None)
                out[name] = fields
        return out
    for c in (spair.kv, spair.redis):
        c.call("CONFIG", "RESETSTAT")
    for step in [E("return redis.call('set', 'a', 1)"), E("return redis.call('nosuch')"),
                 E("return redis.pcall('incr', 'a', 'x')"), "SET s v",
                 E("return redis.call('lpush', 's', 1)"), E("return redis.call('get', 'a', 1)"),
                 E("error('x')"), ("EVALSHA", "b" * 40, 0)]:
        spair.both(step)
    assert stats(spair.kv) == stats(spair.redis)


# --- what Redis cannot show: units, the script client ----------------------------------

class Recorder:
    def __init__(self) -> None:
        self.records: list[list] = []

    def one(self, db, argv) -> None:
        self.records.append([(db, argv)])

    def unit(self, effects) -> None:
        self.records.append(list(effects))


def make_core(**config):
    core = Core(Config(**config))
    rec = Recorder()
    core.log_sink = rec.one
    core.unit_sink = rec.unit
    return core, Dispatcher(core), rec


def run(d, client, *words):
    return d.call(client, [w.encode() if isinstance(w, str) else
                           (str(w).encode() if isinstance(w, int) else w) for w in words])


def test_script_is_one_record():
    core, d, rec = make_core()
    c = Client(core)
    reply = run(d, c, "EVAL", "for i = 1, 5 do redis.call('set', 'k' .. i, i) end "
                "redis.call('incr', 'n') redis.call('select', 3) redis.call('set', 'o', 'x') "
                "return redis.call('dbsize')", 0)
    assert reply == 1
    assert len(rec.records) == 1
    effects = rec.records[0]
    assert [argv[0] for _, argv in effects] == [b"SET"] * 5 + [b"INCR", b"SET"] or \
        [argv[0] for _, argv in effects].count(b"SET") == 6
    assert effects[-1][0] == 3 and c.db_index == 0


def test_script_that_fails_after_writing_keeps_and_logs_its_writes():
    core, d, rec = make_core()
    c = Client(core)
    reply = run(d, c, "EVAL", "redis.call('set', 'a', 1) redis.call('set', 'b', 2) "
                "error('late')", 0)
    assert type(reply) is ErrorReply and "late" in reply
    assert run(d, c, "MGET", "a", "b") == [b"1", b"2"]
    assert len(rec.records) == 1 and len(rec.records[0]) == 2


def test_read_only_script_logs_nothing():
    core, d, rec = make_core()
    c = Client(core)
    run(d, c, "SET", "a", "1")
    rec.records.clear()
    assert run(d, c, "EVAL", "return redis.call('get', 'a')", 0) == b"1"
    assert rec.records == []


def test_script_lazy_expiry_is_in_the_unit():
    now = [1_000_000]
    core = Core(Config(), clock=lambda: now[0])
    rec = Recorder()
    core.log_sink, core.unit_sink = rec.one, rec.unit
    d = Dispatcher(core)
    c = Client(core)
    run(d, c, "SET", "t", "1", "PX", "10")
    rec.records.clear()
    now[0] += 100
    run(d, c, "EVAL", "redis.call('get', 't') redis.call('set', 'u', 1)", 0)
    assert len(rec.records) == 1
    assert [argv[:2] for _, argv in rec.records[0]] == [[b"DEL", b"t"], [b"SET", b"u"]]


def test_script_cache_is_shared_and_flushed():
    core, d, _ = make_core()
    a, b = Client(core), Client(core)
    digest = run(d, a, "SCRIPT", "LOAD", "return ARGV[1]")
    assert run(d, b, "EVALSHA", digest, 0, "x") == b"x"
    assert run(d, b, "SCRIPT", "EXISTS", digest) == [1]
    run(d, a, "SCRIPT", "FLUSH")
    assert str(run(d, b, "EVALSHA", digest, 0, "x")).startswith("NOSCRIPT")


def test_globals_do_not_leak_between_scripts():
    core, d, _ = make_core()
    c = Client(core)
    assert str(run(d, c, "EVAL", "leak = 1", 0)).startswith("ERR ")
    assert str(run(d, c, "EVAL", "string.rep = nil", 0)).startswith("ERR ")
    assert run(d, c, "EVAL", "return string.rep('a', 2)", 0) == b"aa"
    assert str(run(d, c, "EVAL", "return leak", 0)).startswith(
        "ERR user_script:1: Script attempted to access nonexistent global variable 'leak'")


def test_commands_of_a_script_count_and_show_in_monitor_after_eval():
    core, d, _ = make_core()
    c = Client(core)
    run(d, c, "EVAL", "redis.call('set', 'a', 1) return redis.call('get', 'a')", 0)
    assert core.command_stats["set"].calls == 1 and core.command_stats["get"].calls == 1
    assert core.command_stats["eval"].calls == 1


# --- crash: a script is kept whole or not at all -----------------------------------------

LOAD_SCRIPT = ("redis.call('set', KEYS[1], ARGV[1]) redis.call('incr', KEYS[2]) "
               "redis.call('set', KEYS[3], string.rep(ARGV[1], ARGV[2])) "
               "redis.call('set', KEYS[4], ARGV[1]) return redis.call('get', KEYS[2])")


class ScriptWorker(UnitWorker):
    """Unit i is one EVALSHA of LOAD_SCRIPT (x, n, pad, y changed in one script)."""

    def prepare(self, client) -> None:
        self.digest = client.call("SCRIPT", "LOAD", LOAD_SCRIPT)

    def send(self, client, i: int) -> None:
        c = self.c
        client.send(("EVALSHA", self.digest, 4, f"x{c}", f"n{c}", f"pad{c}", f"y{c}",
                     str(i), str(1 + (i * 37 + c) % 400)))

    def check(self, client, i: int) -> str | None:
        reply = client.reply()
        return None if reply == str(i).encode() else repr(reply)


def test_kill9_keeps_each_script_whole(kv_process):
    from test_crash_process import kill9_keeps_units_whole
    kill9_keeps_units_whole(kv_process, ScriptWorker, clients=4, min_acked=100)


# --- busy scripts: -BUSY, SCRIPT KILL, UNKILLABLE, SHUTDOWN NOSAVE ----------------------------

def _busy_server(kind: str, kv_process, tmp_path):
    """(port, stop) of a server with busy-reply-threshold 100 ms."""
    if kind == "kvserver":
        server = kv_process("--busy-reply-threshold", "100")
        return server.port, server
    import shutil
    import subprocess
    from conftest import free_port
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not installed")
    port = free_port()
    proc = subprocess.Popen([exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path),
                             "--busy-reply-threshold", "100"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while True:
        try:
            c = RawClient(port, timeout=1)
            c.call("PING")
            c.close()
            break
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise
            time.sleep(0.05)

    class Handle:
        def kill9(self):
            proc.kill()
            proc.wait(10)
    return port, Handle()


@pytest.mark.parametrize("kind", ["kvserver", "redis-server"])
def test_busy_script_and_script_kill(kind, kv_process, tmp_path):
    port, server = _busy_server(kind, kv_process, tmp_path)
    try:
        runner = RawClient(port, timeout=20)
        other = RawClient(port, timeout=20)
        assert other.call("SCRIPT", "KILL").raw == b"-NOTBUSY No scripts in execution right now.\r\n"
        runner.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")
        deadline = time.monotonic() + 10
        while True:
            reply = other.call("PING")
            if reply.raw.startswith(b"-BUSY"):
                break
            assert time.monotonic() < deadline, "never busy"
            time.sleep(0.02)
        assert reply.raw == (b"-BUSY Redis is busy running a script. You can only call "
                             b"SCRIPT KILL or SHUTDOWN NOSAVE.\r\n")
        assert other.call("GET", "x").raw.startswith(b"-BUSY")
        other.send(b"PING\r\n*2\r\n$3\r\nGET\r\n$1\r\nx\r\nPI")    # pipelined, one cut
        assert other.read().raw.startswith(b"-BUSY") and other.read().raw.startswith(b"-BUSY")
        other.send(b"NG\r\n")
        assert other.read().raw.startswith(b"-BUSY")
        assert other.call("SCRIPT", "KILL").raw == b"+OK\r\n"
        killed = runner.read()
        assert killed.raw == (b"-ERR Script killed by user with SCRIPT KILL... script: "
                              + sha("while true do end").encode()
                              + b", on @user_script:1.\r\n")
        assert other.call("PING").raw == b"+PONG\r\n"
        assert runner.call("PING").raw == b"+PONG\r\n"
    finally:
        server.kill9()


@pytest.mark.parametrize("kind", ["kvserver", "redis-server"])
def test_busy_script_that_wrote_is_unkillable(kind, kv_process, tmp_path):
    port, server = _busy_server(kind, kv_process, tmp_path)
    try:
        runner = RawClient(port, timeout=20)
        other = RawClient(port, timeout=20)
        body = b"redis.call('set', 'w', 1) local i = 0 while i < 1e12 do i = i + 1 end"
        # Both connected (accepted) before the script starts: a client that
        # connects during a busy script is not accepted until it ends.
        assert other.call("PING").raw == b"+PONG\r\n"
        runner.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(body), body))
        deadline = time.monotonic() + 10
        while not other.call("PING").raw.startswith(b"-BUSY"):
            assert time.monotonic() < deadline, "never busy"
            time.sleep(0.02)
        assert other.call("SCRIPT", "KILL").raw.startswith(b"-UNKILLABLE Sorry the script "
                                                            b"already executed write commands")
        other.send(b"SHUTDOWN NOSAVE\r\n")
        assert other.read_until_close() == b""
        assert runner.read_until_close() == b""
    finally:
        server.kill9()
    if kind == "kvserver":
        restarted = kv_process()
        c = RawClient(restarted.port)
        assert c.call("GET", "w").raw == b"$-1\r\n"   # the script's unit was never logged
        c.close()


@pytest.mark.parametrize("kind", ["kvserver", "redis-server"])
def test_script_kill_passes_through_pcall(kind, kv_process, tmp_path):
    port, server = _busy_server(kind, kv_process, tmp_path)
    body = b"while true do pcall(function() while true do end end) end"
    try:
        runner = RawClient(port, timeout=20)
        other = RawClient(port, timeout=20)
        assert other.call("PING").raw == b"+PONG\r\n"
        runner.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(body), body))
        deadline = time.monotonic() + 10
        while not other.call("PING").raw.startswith(b"-BUSY"):
            assert time.monotonic() < deadline, "never busy"
            time.sleep(0.02)
        assert other.call("SCRIPT", "KILL").raw == b"+OK\r\n"
        assert runner.read().raw.startswith(b"-ERR Script killed by user with SCRIPT KILL...")
    finally:
        server.kill9()


def test_oom_refuses_a_scripts_first_denyoom_write_only():
    core, d, rec = make_core(maxmemory=1)
    core.over_maxmemory = True
    c = Client(core)
    oom = "OOM command not allowed when used memory > 'maxmemory'."
    assert run(d, c, "EVAL", "return redis.call('set', 'a', 1)", 0).startswith(
        b"-OOM command not allowed when used memory > 'maxmemory'. script: ")
    assert run(d, c, "EVAL", "return redis.call('get', 'a')", 0) == Raw(b"$-1\r\n")
    assert run(d, c, "EVAL", "redis.call('del', 'a') return redis.call('set', 'a', 2)", 0) \
        == Raw(b"+OK\r\n")   # DEL is not denyoom: once a script wrote, it goes on
    assert run(d, c, "EVAL", "#!lua\nreturn 1", 0) == oom                   # denyoom script
    assert run(d, c, "EVAL", "#!lua flags=allow-oom\nreturn redis.call('set', 'b', 1)", 0) \
        == Raw(b"+OK\r\n")
    assert run(d, c, "EVAL", "#!lua flags=no-writes\nreturn 2", 0) == 2


def test_monitor_sees_eval_then_its_commands():
    core, d, _ = make_core()
    c = Client(core, addr="127.0.0.1:5000")

    class Monitor:
        lines: list = []

        def send_monitor(self, line):
            self.lines.append(line)
    core.monitors.add(Monitor())
    run(d, c, "EVAL", "redis.call('set', 'a', 1) return redis.call('get', 'a')", 0)
    lines = Monitor.lines
    assert len(lines) == 3
    assert b'[0 127.0.0.1:5000] "EVAL"' in lines[0]
    assert b'[0 lua] "set" "a" "1"' in lines[1] and b'[0 lua] "get" "a"' in lines[2]


def test_deep_and_self_referencing_replies_are_bounded():
    core, d, _ = make_core()
    c = Client(core)
    deep = run(d, c, "EVAL", "local t = {} local c = t for i = 1, 20000 do c[1] = {} c = c[1] end "
               "return t", 0)
    assert deep == Raw(b"*1\r\n" * 20000 + b"*0\r\n")      # not a RecursionError
    cyclic = run(d, c, "EVAL", "local t = {1} t[2] = t return t", 0)
    assert cyclic == Raw(b"*2\r\n:1\r\n-ERR reached lua stack limit\r\n")


def test_keys_do_not_expire_during_a_script():
    now = [1_000_000]

    def clock():
        now[0] += 7          # every look at the clock moves it: time runs during the script
        return now[0]
    core = Core(Config(), clock=clock)
    d = Dispatcher(core)
    c = Client(core)
    run(d, c, "SET", "k", "v", "PX", "50")
    # Without a frozen clock the loop would see the key expire after a few GETs.
    reply = run(d, c, "EVAL", "local n = 0 for i = 1, 40 do "
                "if redis.call('get', 'k') then n = n + 1 end end return n", 0)
    assert reply == 40
    now[0] += 100
    assert run(d, c, "GET", "k") is None        # after the script, time runs again


def test_busy_reply_threshold_and_its_alias():
    from kvserver.config import rewrite
    config = Config().with_option("lua-time-limit", "250")
    assert config.busy_reply_threshold == 250
    assert config.matching("lua-time-limit") == {"lua-time-limit": "250"}
    assert config.matching("busy-*") == {"busy-reply-threshold": "250"}
    text = rewrite(config, "lua-time-limit 250\nport 7000\n")
    assert "busy-reply-threshold 250" in text and "lua-time-limit" not in text


def test_client_pause_write_holds_scripts_that_may_write(kv_port):
    """As Redis 7.0 (MAY_REPLICATE): CLIENT PAUSE WRITE holds EVAL/EVALSHA of a script that
    may write (and PUBLISH), not one whose shebang says no-writes, nor EVAL_RO."""
    admin, writer, reader, publisher = (RawClient(kv_port) for _ in range(4))
    try:
        admin.call("DEL", "p")
        body = "redis.call('set', 'p', '1') return 1"
        digest = admin.call("SCRIPT", "LOAD", body).value.decode()
        admin.call("CLIENT", "PAUSE", "600", "WRITE")
        writer.send(b"*3\r\n$7\r\nEVALSHA\r\n$40\r\n" + digest.encode() + b"\r\n$1\r\n0\r\n")
        publisher.send(b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$1\r\nm\r\n")
        ro = "#!lua flags=no-writes\nreturn redis.call('get', 'p')"
        assert reader.call("EVAL", ro, 0).raw == b"$-1\r\n"          # not held
        assert reader.call("EVAL_RO", "return 7", 0).raw == b":7\r\n"  # not held
        assert admin.call("GET", "p").raw == b"$-1\r\n"     # the script has not run yet
        assert writer.read().raw == b":1\r\n"               # after the pause (600 ms)
        assert publisher.read().raw == b":0\r\n"
        assert admin.call("GET", "p").raw == b"$1\r\n1\r\n"
    finally:
        for c in (admin, writer, reader, publisher):
            c.close()


def test_busy_mode_leaves_tls_clients_waiting(kv_process, certs):
    """Busy mode reads plain sockets only: a TLS client's request waits for the script's
    end (its bytes are the TLS layer's) and is then answered normally."""
    import redis
    from conftest import free_port
    tls_port = free_port()
    server = kv_process("--busy-reply-threshold", "100", "--tls-port", str(tls_port),
                        "--tls-cert-file", str(certs / "server.crt"),
                        "--tls-key-file", str(certs / "server.key"),
                        "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "no")
    secure = redis.Redis(host="127.0.0.1", port=tls_port, ssl=True,
                         ssl_ca_certs=str(certs / "ca.crt"), socket_timeout=20)
    assert secure.ping() is True
    runner, other = RawClient(server.port, timeout=20), RawClient(server.port, timeout=20)
    assert other.call("PING").raw == b"+PONG\r\n"
    runner.send(b"*3\r\n$4\r\nEVAL\r\n$17\r\nwhile true do end\r\n$1\r\n0\r\n")
    deadline = time.monotonic() + 10
    while not other.call("PING").raw.startswith(b"-BUSY"):
        assert time.monotonic() < deadline, "never busy"
        time.sleep(0.02)
    answers = []
    waiter = threading.Thread(target=lambda: answers.append(secure.echo("after")))
    waiter.start()
    time.sleep(0.2)                                   # its request is in, unanswered
    assert answers == [] and other.call("PING").raw.startswith(b"-BUSY")
    assert other.call("SCRIPT", "KILL").raw == b"+OK\r\n"
    assert runner.read().raw.startswith(b"-ERR Script killed by user with SCRIPT KILL...")
    waiter.join(20)
    assert answers == [b"after"]
    secure.close()


def test_error_object_tostring_runs_no_lua_after_the_script():
    # Redis 7.0.15 crashes on an error table without 'err'; we answer its raw
    # tostring. Its __tostring must not run: the script is over by then (a
    # SCRIPT KILL raised there escaped as a Python exception).
    core, d, rec = make_core()
    c = Client(core)
    reply = run(d, c, "EVAL", "error(setmetatable({}, {__tostring = function() "
                "redis.call('set', 'after', 1) return 'custom' end}))", 0)
    assert type(reply) is ErrorReply and reply.startswith("ERR table: 0x")
    assert run(d, c, "EXISTS", "after") == 0 and rec.records == []


def test_script_kill_while_an_error_object_would_be_printed(kv_process):
    server = kv_process("--busy-reply-threshold", "100")
    try:
        runner = RawClient(server.port, timeout=10)
        other = RawClient(server.port, timeout=10)
        assert other.call("PING").raw == b"+PONG\r\n"
        body = (b"error(setmetatable({}, {__tostring = function() while true do end end}))")
        runner.send(b"*3\r\n$4\r\nEVAL\r\n$%d\r\n%s\r\n$1\r\n0\r\n" % (len(body), body))
        reply = runner.read()
        assert reply.raw.startswith(b"-ERR table: 0x"), reply.raw
        assert other.call("SCRIPT", "KILL").raw.startswith(b"-NOTBUSY")
        assert runner.call("PING").raw == b"+PONG\r\n"
    finally:
        server.kill9()


def test_a_reply_reaching_one_table_many_times_over_is_capped(monkeypatch):
    # 60 small tables, 2^60 values written out: built until memory ran out.
    import kvserver.scripting as scripting
    monkeypatch.setattr(scripting, "MAX_REPLY_COST", 1_000_000)
    core, d, rec = make_core()
    c = Client(core)
    huge = run(d, c, "EVAL", "local t = {1} for i = 1, 60 do t = {t, t} end return t", 0)
    assert huge == "ERR script reply too large"
    strings = run(d, c, "EVAL", "local s = string.rep('x', 400000) return {s, s, s}", 0)
    assert strings == "ERR script reply too large"
    fits = run(d, c, "EVAL", "local t = {1} for i = 1, 10 do t = {t, t} end return t", 0)
    assert type(fits) is Raw and fits.count(b":1\r\n") == 1024
    assert run(d, c, "EVAL", "local s = string.rep('x', 400000) return {s, s}", 0) \
        == Raw(b"*2\r\n" + (b"$400000\r\n" + b"x" * 400000 + b"\r\n") * 2)


def test_loadstring_chunkname_is_a_c_string():
    # A NUL in the name ended the compile with "chunk has too many syntax levels"
    # (Python refuses it in a file name); Lua reads the name up to the NUL.
    core, d, rec = make_core()
    c = Client(core)
    assert run(d, c, "EVAL", "local f = loadstring('error(\"x\")', '=ab\\0cd') "
               "return select(2, pcall(f))", 0) == b"ab:1: x"
