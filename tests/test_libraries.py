"""Popular Python libraries that use Redis, run against a real kvserver.

Each test starts its own kvserver (the ``kv`` fixture: 127.0.0.1, port 0, a
temporary data directory), points the library at it over a real socket, runs
one *use* of the library and checks both what the library returns and, where
it matters, what the server holds afterwards (keys, TTLs) through redis-py.

Only uses that work on kvserver today are here; no xfail. A library that is
not installed is skipped (``pytest.importorskip``), so the file also runs in a
venv without the ``test`` extras.

Layout: one table of uses per library (``DJANGO``, ``FLASK``, ...), one test
function per table, parametrized over it. A use is a plain function decorated
with its table, so when the server learns a feature (MULTI/EXEC, hashes, Lua,
...) making a library use count is one new function. The uses that still fail,
with the first command the server rejects, are listed at each table (and in
docs/compatibility.md); none of them is tested here.

Libraries with no working use today (no table yet), each with the first
command kvserver rejects:

- rq: enqueue needs SADD, HSET, RPUSH (inside MULTI/EXEC, which works since 0.2);
  its results need XREVRANGE (streams).
- dramatiq, huey, arq: work since scripting (dramatiq's enqueue script), sorted
  sets and the blocking pops: tested below (enqueue, then a worker runs the job).
- celery (redis broker + backend): delay() needs SUBSCRIBE (result backend) and
  LLEN/LPUSH (broker, inside MULTI); the worker needs ZRANGE BYSCORE and EVALSHA.
- limits: works since scripting (EVALSHA): its moving-window, sliding-window and
  fixed-window limiters are tested in tests/test_scripting_libraries.py.
- rq: results need XREVRANGE (streams).
"""

from __future__ import annotations

import asyncio
from typing import Callable

import pytest
import redis
import redis.asyncio

#: aiocache, cashews and walrus call redis-py methods it deprecates (close, setex): not ours.
pytestmark = pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning")


class Uses:
    """One library's table of uses that work on kvserver.

    Decorate a function with the table to add it; the test for that library
    runs every function in the table, each as its own test case, named after
    the function without the table's prefix (``django_touch`` -> ``touch``).
    The prefix keeps the module's function names apart across libraries.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.funcs: dict[str, Callable] = {}

    def __call__(self, func: Callable) -> Callable:
        assert func.__name__.startswith(self.prefix), func.__name__
        name = func.__name__.removeprefix(self.prefix)
        assert name not in self.funcs, name
        self.funcs[name] = func
        return func

    def params(self) -> list:
        return [pytest.param(f, id=name) for name, f in self.funcs.items()]


@pytest.fixture
def r(kv):
    """A redis-py client to the same kvserver, to check what a library left there."""
    client = redis.Redis(host="127.0.0.1", port=kv.port)
    yield client
    client.close()


# --- Django's cache framework (built-in RedisCache and django-redis) --------------

#: Uses of the Django cache API, run on both backends (set_many: MULTI/EXEC since 0.2).
DJANGO = Uses("django_")
#: Uses that only the built-in django.core.cache.backends.redis.RedisCache passes.
#: (django-redis's incr sends EVAL and, on any error, falls back to a non-atomic
#: GET + SET, so it "works" only by that fallback: not claimed here.)
DJANGO_BUILTIN = Uses("django_builtin_")
#: django-redis extensions (incr is a script since scripting: checked in
#: tests/test_scripting_libraries.py that it is not the GET+SET fallback).
DJANGO_REDIS = Uses("django_redis_")


def make_django_cache(backend: str, port: int):
    pytest.importorskip("django")
    from django.conf import settings
    if not settings.configured:
        settings.configure()
    location = f"redis://127.0.0.1:{port}/0"
    if backend == "django":
        from django.core.cache.backends.redis import RedisCache
        return RedisCache(location, {})
    pytest.importorskip("django_redis")
    from django_redis.cache import RedisCache
    return RedisCache(location, {})


def close_django_cache(cache) -> None:
    if hasattr(cache, "_cache"):  # built-in: one connection pool per server URL
        for pool in getattr(cache._cache, "_pools", {}).values():
            pool.disconnect()
    else:  # django-redis
        cache.client.get_client().connection_pool.disconnect()


@pytest.fixture(params=["django", "django_redis"])
def django_cache(request, kv):
    cache = make_django_cache(request.param, kv.port)
    yield cache
    close_django_cache(cache)


@DJANGO
def django_set_get_with_timeouts(cache, r):
    cache.set("a", {"x": [1, 2]}, 30)
    assert cache.get("a") == {"x": [1, 2]}
    assert cache.get("missing", "default") == "default"
    assert 0 < r.ttl(cache.make_key("a")) <= 30
    cache.set("forever", 1, None)
    assert r.ttl(cache.make_key("forever")) == -1
    cache.set("gone", 1, 0)  # timeout 0: expire at once
    assert cache.get("gone") is None
    assert r.exists(cache.make_key("gone")) == 0


@DJANGO
def django_add(cache, r):
    assert cache.add("k", 1, 30) is True
    assert cache.add("k", 2, 30) is False
    assert cache.get("k") == 1


@DJANGO
def django_get_many(cache, r):
    cache.set("a", "A")
    cache.set("b", [2])
    assert cache.get_many(["a", "b", "missing"]) == {"a": "A", "b": [2]}


@DJANGO
def django_delete_and_delete_many(cache, r):
    for key in "abc":
        cache.set(key, key)
    cache.delete_many(["a", "b"])
    assert not cache.has_key("a") and not cache.has_key("b")
    assert cache.has_key("c")
    assert cache.delete("c")
    assert not cache.delete("c")
    assert r.dbsize() == 0


@DJANGO
def django_touch(cache, r):
    cache.set("a", 1, 10)
    assert cache.touch("a", 100)
    assert 90 < r.ttl(cache.make_key("a")) <= 100
    assert cache.touch("a", None)
    assert r.ttl(cache.make_key("a")) == -1
    assert not cache.touch("missing", 10)


@DJANGO
def django_get_or_set(cache, r):
    calls = []

    def compute():
        calls.append(1)
        return 42
    assert cache.get_or_set("g", compute, 30) == 42
    assert cache.get_or_set("g", compute, 30) == 42
    assert calls == [1]


@DJANGO
def django_incr_version(cache, r):
    cache.set("p", "v")
    assert cache.incr_version("p") == 2
    assert cache.get("p", version=2) == "v"
    assert cache.get("p") is None


@DJANGO
def django_clear(cache, r):
    cache.set("a", 1)
    cache.set("b", 2)
    cache.clear()
    assert r.dbsize() == 0
    assert cache.get("a") is None


@DJANGO
def django_set_many(cache, r):
    # Both backends send MULTI, SET..., EXEC (a transaction pipeline).
    assert cache.set_many({"a": 1, "b": [2], "c": "three"}, 30) in ([], None)  # (django-redis: None)
    assert cache.get_many(["a", "b", "c"]) == {"a": 1, "b": [2], "c": "three"}
    assert 0 < r.ttl(cache.make_key("b")) <= 30


@DJANGO_BUILTIN
def django_builtin_incr_decr(cache, r):
    cache.set("n", 5)
    assert cache.incr("n", 3) == 8
    assert cache.decr("n") == 7
    assert cache.get("n") == 7
    assert r.get(cache.make_key("n")) == b"7"  # stored as a Redis integer
    with pytest.raises(ValueError):
        cache.incr("missing")


@DJANGO_REDIS
def django_redis_ttl_persist_expire(cache, r):
    cache.set("t", 1, 50)
    assert 40 < cache.ttl("t") <= 50
    assert cache.persist("t")
    assert cache.ttl("t") is None
    assert cache.expire("t", 20)
    assert 10 < cache.ttl("t") <= 20
    assert cache.ttl("missing") == 0


@DJANGO_REDIS
def django_redis_keys_and_iter_keys(cache, r):
    for key in ("user:1", "user:2", "other"):
        cache.set(key, key)
    assert sorted(cache.keys("user:*")) == ["user:1", "user:2"]
    assert sorted(cache.iter_keys("user:*", itersize=1)) == ["user:1", "user:2"]


@DJANGO_REDIS
def django_redis_set_nx_and_xx(cache, r):
    assert cache.set("nx", 1, nx=True)
    assert not cache.set("nx", 2, nx=True)
    assert not cache.set("xx", 3, xx=True)
    assert cache.get("nx") == 1 and cache.get("xx") is None


@DJANGO_REDIS
def django_redis_delete_pattern(cache, r):
    for key in ("user:1", "user:2", "other"):
        cache.set(key, key)
    assert cache.delete_pattern("user:*") == 2
    assert cache.keys("*") == ["other"]


@DJANGO_REDIS
def django_redis_incr_and_lock(cache, r):
    cache.set("n", 5)
    assert cache.incr("n", 3) == 8 and cache.decr("n") == 7
    lock = cache.lock("job", timeout=10)
    assert lock.acquire(blocking=False)
    assert not cache.lock("job", timeout=10).acquire(blocking=False)
    lock.release()                   # redis-py's release script (EVALSHA)
    assert r.exists(cache.make_key("job")) == 0


@pytest.mark.parametrize("use", DJANGO.params())
def test_django_cache(django_cache, r, use):
    use(django_cache, r)


@pytest.mark.parametrize("use", DJANGO_BUILTIN.params())
def test_django_builtin_redis_cache(kv, r, use):
    cache = make_django_cache("django", kv.port)
    try:
        use(cache, r)
    finally:
        close_django_cache(cache)


@pytest.mark.parametrize("use", DJANGO_REDIS.params())
def test_django_redis(kv, r, use):
    cache = make_django_cache("django_redis", kv.port)
    try:
        use(cache, r)
    finally:
        close_django_cache(cache)


# --- Flask-Caching (cachelib's RedisCache) ----------------------------------------

#: Everything tried works, including set_many (a pipeline without MULTI).
FLASK = Uses("flask_")


@pytest.fixture
def flask_cache(kv):
    flask = pytest.importorskip("flask")
    flask_caching = pytest.importorskip("flask_caching")
    app = flask.Flask(__name__)
    cache = flask_caching.Cache(app, config={
        "CACHE_TYPE": "RedisCache", "CACHE_KEY_PREFIX": "fc:",
        "CACHE_REDIS_URL": f"redis://127.0.0.1:{kv.port}/0"})
    with app.app_context():
        yield app, cache
    cache.cache._write_client.connection_pool.disconnect()


@FLASK
def flask_set_get_add(app, cache, r):
    assert cache.set("a", [1, 2], timeout=30)
    assert cache.get("a") == [1, 2]
    assert 0 < r.ttl("fc:a") <= 30
    assert not cache.add("a", 3)
    assert cache.add("b", 3)
    assert cache.get("b") == 3 and cache.has("b")


@FLASK
def flask_inc_dec(app, cache, r):
    cache.set("n", 1)
    assert cache.cache.inc("n", 4) == 5
    assert cache.cache.dec("n") == 4
    assert cache.get("n") == 4


@FLASK
def flask_set_many_get_many_delete_many(app, cache, r):
    assert cache.set_many({"c": 1, "d": 2}, timeout=30)
    assert cache.get_many("c", "d", "missing") == [1, 2, None]
    assert cache.get_dict("c", "d") == {"c": 1, "d": 2}
    assert 0 < r.ttl("fc:d") <= 30
    cache.delete_many("c", "d")
    assert r.dbsize() == 0


@FLASK
def flask_memoize(app, cache, r):
    calls = []

    @cache.memoize(30)
    def square(x):
        calls.append(x)
        return x * x
    assert square(3) == 9 and square(3) == 9 and calls == [3]
    cache.delete_memoized(square, 3)
    assert square(3) == 9 and calls == [3, 3]


@FLASK
def flask_cached_view(app, cache, r):
    calls = []

    @app.route("/double/<int:n>")
    @cache.cached(timeout=30)
    def double(n):
        calls.append(n)
        return str(2 * n)
    client = app.test_client()
    assert client.get("/double/21").data == b"42"
    assert client.get("/double/21").data == b"42"
    assert calls == [21]


@FLASK
def flask_clear(app, cache, r):
    r.set("not-ours", 1)
    cache.set("a", 1)
    cache.set("b", 2)
    assert cache.clear()
    assert r.keys() == [b"not-ours"]  # only the prefix's keys went


@pytest.mark.parametrize("use", FLASK.params())
def test_flask_caching(flask_cache, r, use):
    app, cache = flask_cache
    use(app, cache, r)


# --- aiocache RedisCache --------------------------------------------------------------

#: Fails today: cas / OptimisticLock (EVAL), RedLock release (EVAL).
AIOCACHE = Uses("aiocache_")


@AIOCACHE
async def aiocache_set_get(cache, ar):
    assert await cache.set("a", {"x": 1}, ttl=30)
    assert await cache.get("a") == {"x": 1}
    assert await cache.get("missing") is None
    assert 0 < await ar.ttl("ns:a") <= 30


@AIOCACHE
async def aiocache_multi_set(cache, ar):
    assert await cache.multi_set([("m1", 1), ("m2", {"y": 2})], ttl=30)
    assert await cache.multi_get(["m1", "m2"]) == [1, {"y": 2}]
    assert 0 < await ar.ttl("ns:m2") <= 30


@AIOCACHE
async def aiocache_add(cache, ar):
    assert await cache.add("b", 1)
    with pytest.raises(ValueError):
        await cache.add("b", 2)
    assert await cache.get("b") == 1


@AIOCACHE
async def aiocache_increment(cache, ar):
    assert await cache.increment("n", 3) == 3
    assert await cache.increment("n", -1) == 2
    await cache.set("s", "text")
    with pytest.raises(TypeError):  # the server's "not an integer" error
        await cache.increment("s")


@AIOCACHE
async def aiocache_multi_get_exists_expire_delete(cache, ar):
    await cache.set("c", 1)
    await cache.set("d", 2)
    assert await cache.multi_get(["c", "d", "missing"]) == [1, 2, None]
    assert await cache.exists("c")
    assert await cache.expire("c", 10)
    assert 0 < await ar.ttl("ns:c") <= 10
    assert await cache.delete("c") == 1
    assert not await cache.exists("c")


@AIOCACHE
async def aiocache_clear_namespace(cache, ar):
    await ar.set("other:x", 1)
    await cache.set("a", 1)
    await cache.set("b", 1)
    assert await cache.clear(namespace="ns")
    assert await ar.keys() == [b"other:x"]


@AIOCACHE
async def aiocache_cached_decorator(cache, ar):
    import aiocache
    calls = []

    @aiocache.cached(cache=aiocache.Cache.REDIS, endpoint="127.0.0.1",
                     port=ar.connection_pool.connection_kwargs["port"], namespace="dec", ttl=30)
    async def double(x):
        calls.append(x)
        return x * 2
    try:
        assert await double(2) == 4 and await double(2) == 4 and await double(3) == 6
        assert calls == [2, 3]
        assert len(await ar.keys("dec*")) == 2
    finally:
        await double.cache.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("use", AIOCACHE.params())
async def test_aiocache(kv, use):
    aiocache = pytest.importorskip("aiocache")
    cache = aiocache.RedisCache(endpoint="127.0.0.1", port=kv.port, namespace="ns")
    ar = redis.asyncio.Redis(host="127.0.0.1", port=kv.port)
    try:
        await use(cache, ar)
    finally:
        await cache.close()
        await ar.aclose()


# --- cashews --------------------------------------------------------------------------

#: Not claimed: rate_limit, slice_rate_limit and @hit (sorted sets),
#: get_bits/incr_bits and bloom (BITFIELD), get_size (MEMORY USAGE).
CASHEWS = Uses("cashews_")


@CASHEWS
async def cashews_set_get_exist(cache, ar):
    assert await cache.set("a", {"x": 1}, expire=30)
    assert await cache.get("a") == {"x": 1}
    assert await cache.get("missing", default="d") == "d"
    assert not await cache.set("a", 2, exist=False)  # SET NX
    assert await cache.get_expire("a") in range(25, 31)


@CASHEWS
async def cashews_set_many(cache, ar):
    await cache.set_many({"m1": 1, "m2": [2]}, expire=30)
    assert await cache.get_many("m1", "m2") == (1, [2])
    assert 0 < await ar.ttl("m2") <= 30


@CASHEWS
async def cashews_incr(cache, ar):
    assert await cache.incr("n") == 1
    assert await cache.incr("n", 5) == 6


@CASHEWS
async def cashews_get_many_delete_many(cache, ar):
    await cache.set("c", 1)
    await cache.set("d", 2)
    assert await cache.get_many("c", "d", "missing") == (1, 2, None)
    await cache.delete_many("c", "d")
    assert not await cache.exists("c") and not await cache.exists("d")


@CASHEWS
async def cashews_expire_and_delete(cache, ar):
    await cache.set("a", 1)
    assert await cache.get_expire("a") == -1
    assert await cache.expire("a", 100)
    assert 90 < await cache.get_expire("a") <= 100
    assert await cache.delete("a")
    assert not await cache.exists("a")


@CASHEWS
async def cashews_set_lock_is_locked(cache, ar):
    assert await cache.set_lock("lk", "me", expire=10)
    assert not await cache.set_lock("lk", "other", expire=10)
    assert await cache.is_locked("lk")
    assert 0 < await ar.ttl("lk") <= 10


@CASHEWS
async def cashews_unlock(cache, ar):
    assert await cache.set_lock("lk", "me", expire=10)
    assert not await cache.unlock("lk", "other")     # a script: only the owner unlocks
    assert await cache.unlock("lk", "me")
    assert not await cache.is_locked("lk")


@CASHEWS
async def cashews_scan_and_delete_match(cache, ar):
    for i in range(5):
        await cache.set(f"user:{i}", i)
    await cache.set("other", 1)
    assert sorted([k async for k in cache.scan("user:*")]) == [f"user:{i}" for i in range(5)]
    await cache.delete_match("user:*")
    assert [k async for k in cache.scan("*")] == ["other"]


@CASHEWS
async def cashews_cache_decorators(cache, ar):
    calls = []

    @cache(ttl="1m")
    async def plain(x):
        calls.append(("plain", x))
        return x * 2

    @cache.early(ttl="1m", early_ttl="30s")
    async def early(x):
        calls.append(("early", x))
        return x * 3

    @cache.soft(ttl="1m", soft_ttl="30s")
    async def soft(x):
        calls.append(("soft", x))
        return x * 4

    @cache.failover(ttl="1m")
    async def failover(x):
        calls.append(("failover", x))
        return x * 5

    for _ in range(2):
        assert await plain(2) == 4
        assert await early(2) == 6
        assert await soft(2) == 8
        assert await failover(2) == 10
    # failover always calls through (it only serves the cache on errors)
    assert calls.count(("plain", 2)) == calls.count(("early", 2)) == calls.count(("soft", 2)) == 1
    assert await ar.dbsize() >= 4


@CASHEWS
async def cashews_clear(cache, ar):
    await cache.set("a", 1)
    await cache.clear()
    assert await ar.dbsize() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("use", CASHEWS.params())
async def test_cashews(kv, use):
    cashews = pytest.importorskip("cashews")
    cache = cashews.Cache()
    cache.setup(f"redis://127.0.0.1:{kv.port}/0", client_side=False, suppress=False)
    ar = redis.asyncio.Redis(host="127.0.0.1", port=kv.port)
    try:
        await use(cache, ar)
    finally:
        await cache.close()
        await ar.aclose()


# --- walrus ---------------------------------------------------------------------------

#: Not claimed: ZSet and autocomplete (sorted sets), Stream (XADD),
#: bloom_filter (BITFIELD).
WALRUS = Uses("walrus_")


@pytest.fixture
def walrus_db(kv):
    walrus = pytest.importorskip("walrus")
    db = walrus.Database(host="127.0.0.1", port=kv.port)
    yield db
    db.connection_pool.disconnect()


@WALRUS
def walrus_cache_set_get_get_many_delete(db, r):
    cache = db.cache(name="wc")
    assert cache.set("a", {"x": 1}, 30)
    assert cache.get("a") == {"x": 1}
    assert cache.get("missing", "d") == "d"
    assert 0 < r.ttl("wc:a") <= 30
    cache.set("b", [2], 30)
    assert cache.get_many(["a", "b", "missing"]) == {"a": {"x": 1}, "b": [2]}
    assert cache.delete("a") == 1
    assert cache.get("a") is None


@WALRUS
def walrus_cache_set_many(db, r):
    cache = db.cache(name="wc")
    assert cache.set_many({"a": 1, "b": [2]}, 30)
    assert cache.get_many(["a", "b"]) == {"a": 1, "b": [2]}
    assert 0 < r.ttl("wc:b") <= 30


@WALRUS
def walrus_cache_delete_many_and_flush(db, r):
    cache = db.cache(name="wc")
    for key in "abcd":
        cache.set(key, key, 30)
    r.set("not-ours", 1)
    assert cache.delete_many(["a", "b"]) == 2
    assert cache.get("c") == "c"
    assert cache.flush() == 2
    assert r.keys() == [b"not-ours"]


@WALRUS
def walrus_cached_decorator(db, r):
    cache = db.cache(name="wc")
    calls = []

    @cache.cached(timeout=30)
    def square(x):
        calls.append(x)
        return x * x
    assert square(3) == 9 and square(3) == 9 and square(4) == 16
    assert calls == [3, 4]
    square.bust(3)
    assert square(3) == 9 and calls == [3, 4, 3]


@WALRUS
def walrus_hash(db, r):
    h = db.Hash("wh")
    h["a"] = "1"
    h.update(b="2", c="3")
    assert h["a"] == b"1" and h.get("zz", "d") == "d"
    assert len(h) == 3 and "b" in h and "zz" not in h
    assert h.setnx("a", "x") is False and h.setnx("d", "4") is True
    assert h.incr("n", 5) == 5 and h.incr_float("f", 1.5) == 1.5
    assert h["a", "b", "zz"] == [b"1", b"2", None]
    assert sorted(h.keys()) == [b"a", b"b", b"c", b"d", b"f", b"n"]
    assert set(h.values()) == {b"1", b"2", b"3", b"4", b"1.5", b"5"}
    assert dict(h.items()) == h.as_dict()
    assert sorted(k for k, _ in h.search("[ab]*")) == [b"a", b"b"]
    assert h.as_dict(decode=True)["c"] == "3"
    del h["c"]
    assert "c" not in h and r.type("wh") == b"hash"
    h.expire(30)
    assert 0 < r.ttl("wh") <= 30
    h.clear()
    assert r.exists("wh") == 0


@WALRUS
def walrus_list(db, r):
    """walrus's List, everything but its blocking pops (bpopleft/bpopright/bmove_tail)."""
    lst = db.List("wl")
    lst.append("b")
    lst.prepend("a")
    lst.extend(["c", "d", "c"])
    assert len(lst) == 5 and lst[0] == b"a" and lst[-1] == b"c"
    assert lst[1:3] == [b"b", b"c"] and list(lst) == [b"a", b"b", b"c", b"d", b"c"]
    lst[1] = "B"
    lst.insert_before("x", "B")
    lst.insert_after("y", "d")
    assert lst.as_list(decode=True) == ["a", "x", "B", "c", "d", "y", "c"]
    del lst["c"]  # LREM 1
    assert lst.as_list(decode=True) == ["a", "x", "B", "d", "y", "c"]
    del lst[:4]  # walrus keeps the slice: LTRIM wl 0 3
    assert lst.as_list(decode=True) == ["a", "x", "B", "d"]
    del lst[1]  # by index: LINDEX then LREM 1
    lst.insert_after("x", "a")
    assert lst.as_list(decode=True) == ["a", "x", "B", "d"]
    assert lst.popleft() == b"a" and lst.popright() == b"d"
    assert lst.move_tail("wl2") == b"B" and db.List("wl2").as_list() == [b"B"]
    assert r.type("wl") == b"list"
    from walrus.containers import List as WList
    other = WList.from_list(db, "wl3", ["p", "q"])
    assert other.as_list(decode=True) == ["p", "q"]
    lst.clear()
    assert r.exists("wl") == 0


@pytest.mark.parametrize("use", WALRUS.params())
def test_walrus(walrus_db, r, use):
    use(walrus_db, r)


@WALRUS
def walrus_lock(db, r):
    lock = db.lock("wlk", ttl=10000)
    assert lock.acquire(block=False)
    assert not db.lock("wlk", ttl=10000).acquire(block=False)
    assert lock.release()            # walrus's release script (EVALSHA)
    assert r.exists("lock:wlk") == 0
    with lock:
        assert r.exists("lock:wlk") == 1


@WALRUS
def walrus_rate_limit_lua(db, r):
    limiter = db.rate_limit_lua("rl", limit=3, per=60)
    assert [limiter.limit("u") for _ in range(5)] == [False, False, False, True, True]


# --- pottery ----------------------------------------------------------------------------

#: Since scripting: Redlock and NextID (EVALSHA) and the containers (WATCH/MULTI
#: over hashes, lists, sets). Not claimed: RedisCounter, bloom filters, HyperLogLog.
POTTERY = Uses("pottery_")


@POTTERY
def pottery_redlock(r):
    from pottery import Redlock
    lock = Redlock(key="res", masters={r}, auto_release_time=10)
    assert lock.acquire(blocking=False) and lock.locked()
    assert not Redlock(key="res", masters={r}, auto_release_time=10).acquire(blocking=False)
    lock.release()
    assert not lock.locked() and r.exists("redlock:res") == 0


@POTTERY
def pottery_next_id(r):
    from pottery import NextID
    ids = NextID(key="ids", masters={r})
    assert [next(ids) for _ in range(3)] == [1, 2, 3]


@POTTERY
def pottery_containers(r):
    from pottery import RedisDeque, RedisDict, RedisList, RedisSet
    d = RedisDict({"a": 1}, redis=r, key="pd")
    d["b"] = 2
    assert dict(d) == {"a": 1, "b": 2}
    lst = RedisList([1, 2], redis=r, key="pl")
    lst.append(3)
    assert list(lst) == [1, 2, 3]
    st = RedisSet({1, 2}, redis=r, key="ps")
    st.add(3)
    assert set(st) == {1, 2, 3}
    q = RedisDeque([1], redis=r, key="pq")
    q.appendleft(0)
    assert list(q) == [0, 1]


@pytest.mark.filterwarnings("ignore:Doing an O\\(n\\) Redis operation")
@pytest.mark.parametrize("use", POTTERY.params())
def test_pottery(r, use):
    pytest.importorskip("pottery")
    use(r)


# --- task queues: dramatiq, huey, arq ---------------------------------------------------

def test_dramatiq_enqueue_and_worker(kv):
    """RedisBroker.enqueue is a Lua script (EVALSHA, sorted sets inside); a worker runs the job."""
    dramatiq = pytest.importorskip("dramatiq")
    import time
    from dramatiq.brokers.redis import RedisBroker
    broker = RedisBroker(host="127.0.0.1", port=kv.port)
    done = []

    @dramatiq.actor(broker=broker, queue_name="kvtest")
    def task(x):
        done.append(x)
    task.send(5)
    worker = dramatiq.Worker(broker, worker_timeout=100)
    worker.start()
    try:
        deadline = time.monotonic() + 15
        while not done and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.stop()
        broker.close()
    assert done == [5]


def test_huey_enqueue_execute_and_result(kv):
    huey = pytest.importorskip("huey")
    h = huey.RedisHuey("kvtest", host="127.0.0.1", port=kv.port, results=True)

    @h.task()
    def add(a, b):
        return a + b
    result = add(1, 2)
    h.execute(h.dequeue())              # the consumer's step: BRPOP, run, store the result
    assert result.get() == 3


@pytest.mark.asyncio
async def test_arq_enqueue_and_worker(kv):
    pytest.importorskip("arq")
    from arq import create_pool
    from arq.connections import RedisSettings
    from arq.worker import Worker, func

    async def add(ctx, a, b):
        return a + b
    settings = RedisSettings(host="127.0.0.1", port=kv.port)
    pool = await create_pool(settings)
    try:
        job = await pool.enqueue_job("add", 2, 3)
        worker = Worker(functions=[func(add, name="add")], redis_settings=settings, burst=True,
                        poll_delay=0.05)
        await asyncio.wait_for(worker.async_run(), 20)
        assert await job.result(timeout=5) == 5
        await worker.close()
    finally:
        await pool.aclose()
