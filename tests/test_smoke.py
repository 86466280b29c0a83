"""The first things a newcomer does: connect, SET, GET, restart, and the data is there."""

import redis

from conftest import start_threaded


def test_set_get_with_redis_py(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    assert r.set("greeting", "hello") is True
    assert r.get("greeting") == b"hello"


def test_acknowledged_writes_survive_a_restart(kv_config):
    server = start_threaded(kv_config)
    r = redis.Redis(host="127.0.0.1", port=server.port)
    for i in range(100):
        r.set(f"k{i}", i)
    r.incr("counter", 41)
    r.incr("counter")
    server.stop()
    server = start_threaded(kv_config)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        assert r.get("counter") == b"42"
        assert r.mget([f"k{i}" for i in range(100)]) == [str(i).encode() for i in range(100)]
    finally:
        server.stop()
