"""OBJECT and MEMORY USAGE against the real redis-server 7.0.15 (RESP2 and
RESP3): ENCODING for every kind at each size threshold, REFCOUNT, FREQ's
error, IDLETIME of a just-used key, HELP, the argument errors; MEMORY
USAGE's figure is kvserver's own, so only its shape is compared."""

from __future__ import annotations

from kvserver import commands
from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session
from test_differential import (same_reply_tests, Kind, kv_port, pair, redis_port,  # noqa: F401
                               run_step)

LONG = "x" * 65  # past hash-max-listpack-value (64)

CASES: dict[str, list] = {
    "strings": [
        "SET i 12345", "OBJECT ENCODING i", "SET neg -7", "OBJECT ENCODING neg",
        "SET e hello", "OBJECT ENCODING e", "SET z 0123", "OBJECT ENCODING z",
        ("SET", "r", "y" * 45), "OBJECT ENCODING r", ("SET", "m", "y" * 44), "OBJECT ENCODING m",
        "SET big 9223372036854775808", "OBJECT ENCODING big",
        "SET small 5", "OBJECT REFCOUNT small", "SET k 9999", "OBJECT REFCOUNT k",
        "SET k 10000", "OBJECT REFCOUNT k", "OBJECT REFCOUNT e", "OBJECT REFCOUNT neg",
        "OBJECT ENCODING nokey", "OBJECT REFCOUNT nokey", "OBJECT IDLETIME nokey",
        "OBJECT FREQ nokey", "OBJECT FREQ e", "OBJECT IDLETIME e"],
    "hashes": [
        "HSET h f v", "OBJECT ENCODING h", ("HSET", "h", "g", LONG), "OBJECT ENCODING h",
        ("HDEL", "h", "g"), "OBJECT ENCODING h", ("HSET", "h2", LONG, "v"), "OBJECT ENCODING h2",
        ("HSET", "h3", *[x for i in range(512) for x in (f"f{i}", "v")]), "OBJECT ENCODING h3",
        "HSET h3 one more", "OBJECT ENCODING h3", "OBJECT REFCOUNT h3"],
    "lists": [
        "RPUSH l a", "OBJECT ENCODING l", ("RPUSH", "l2", *["e"] * 200), "OBJECT ENCODING l2",
        ("RPUSH", "l3", LONG * 200), "OBJECT ENCODING l3", "OBJECT REFCOUNT l"],
    "sets": [
        "SADD s 1 2 3", "OBJECT ENCODING s", "SADD s x", "OBJECT ENCODING s", "SREM s x",
        "OBJECT ENCODING s", ("SADD", "s2", *[str(i) for i in range(512)]), "OBJECT ENCODING s2",
        "SADD s2 512", "OBJECT ENCODING s2", "SADD s3 01", "OBJECT ENCODING s3"],
    "zsets": [
        "ZADD z 1 a", "OBJECT ENCODING z", ("ZADD", "z", "2", "x" * 65), "OBJECT ENCODING z",
        ("ZADD", "z2", *[x for i in range(128) for x in (str(i), f"m{i}")]), "OBJECT ENCODING z2",
        "ZADD z2 1 one-more", "OBJECT ENCODING z2", "OBJECT REFCOUNT z2", "OBJECT FREQ z2"],
    "errors-and-help": [
        "OBJECT", "OBJECT ENCODING", "OBJECT ENCODING a b", "OBJECT foo", "OBJECT foo x",
        "OBJECT HELP", "OBJECT help x", "OBJECT REFCOUNT", "OBJECT FREQ",
        "MEMORY", "MEMORY USAGE", "MEMORY USAGE nokey", "SET k v", "MEMORY USAGE k SAMPLES",
        "MEMORY USAGE k SAMPLES x", "MEMORY USAGE k SAMPLES -1", "MEMORY USAGE k foo 1",
        "MEMORY USAGE k foo", "MEMORY USAGE nokey SAMPLES x", "MEMORY USAGE nokey SAMPLES 0",
        Kind("MEMORY USAGE k"), Kind("MEMORY USAGE k SAMPLES 0"), Kind("MEMORY usage k samples 9"),
        "MEMORY foo"],
}

test_same_replies, test_same_replies_in_resp3 = same_reply_tests(CASES)


def test_memory_usage_follows_the_value_size():
    core = Core(Config(port=0))
    core.log = lambda s, argv: None  # noqa: E731
    s = Session(core)
    commands.execute(s, [b"SET", b"k", b"v"])
    small = commands.execute(s, [b"MEMORY", b"USAGE", b"k"])
    commands.execute(s, [b"SET", b"k", b"v" * 1000])
    assert commands.execute(s, [b"MEMORY", b"USAGE", b"k"]) == small + 999
    commands.execute(s, [b"RPUSH", b"l", *[b"e" * 10] * 100])
    commands.execute(s, [b"HSET", b"h", b"f", b"v" * 100])
    commands.execute(s, [b"SADD", b"s", b"m" * 50])
    for key, at_least in ((b"l", 1000), (b"h", 101), (b"s", 50)):
        assert commands.execute(s, [b"MEMORY", b"USAGE", key]) > at_least


def test_object_help_lists_every_subcommand():
    core = Core(Config(port=0))
    s = Session(core)
    lines = commands.execute(s, [b"OBJECT", b"HELP"])
    named = {line.split()[0] for line in lines[1:] if not line.startswith(" ")}
    assert named == {n.upper() for n in commands.TABLE["object"].subcommands}
    lines = commands.execute(s, [b"MEMORY", b"HELP"])
    named = {line.split()[0] for line in lines[1:] if not line.startswith(" ")}
    assert named == {n.upper() for n in commands.TABLE["memory"].subcommands}
