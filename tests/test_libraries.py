"""Popular Python libraries that use Redis, run against a real kvserver.

Each test starts its own kvserver (the ``kv`` fixture: 127.0.0.1, port 0, a
temporary data directory), points the library at it over a real socket, runs
one *use* of the library and checks both what the library returns and, where
it matters, what the server holds afterwards (keys, TTLs) through redis-py.
Where a library hides error replies behind a fallback (django-redis's incr,
redis-py's Script, lock helpers), the use also checks the server's INFO
errorstats (``server_errors.assert_no_server_errors``).

The libraries are in the ``test`` extras and imported plainly: a missing one
is an error, not a skip. No xfail: a use is here only if it should work.

Layout: one table of uses per library (``DJANGO``, ``FLASK``, ...), one test
function per table, parametrized over it. A use is a plain function decorated
with its table, so when the server learns a feature making a library use
count is one new function. Uses left out, with the reason, are listed at each
table (and in docs/compatibility.md).

Task queues, locks and rate limiters (rq, huey, dramatiq, arq, celery,
pottery, limits) are in tests/test_libraries_queues.py.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable

import pytest
import redis
import redis.asyncio

from server_errors import assert_no_server_errors, assert_no_server_errors_async

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
#: (django-redis's incr is in DJANGO_REDIS: it sends EVAL, checked there.)
DJANGO_BUILTIN = Uses("django_builtin_")
#: django-redis extensions (lock, atomic incr, sets, hashes, ttl...).
DJANGO_REDIS = Uses("django_redis_")


def make_django_cache(backend: str, port: int):
    from django.conf import settings
    if not settings.configured:
        settings.configure()
    location = f"redis://127.0.0.1:{port}/0"
    if backend == "django":
        from django.core.cache.backends.redis import RedisCache
        return RedisCache(location, {})
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
def django_redis_lock(cache, r):
    """cache.lock is redis-py's Lock: SET NX PX to take it, EVALSHA scripts to release/extend."""
    lock = cache.lock("lk", timeout=10, blocking_timeout=1)
    assert lock.acquire()
    assert r.exists(cache.make_key("lk")) and 0 < r.pttl(cache.make_key("lk")) <= 10_000
    assert not cache.lock("lk", timeout=10).acquire(blocking=False)
    assert lock.extend(10)
    lock.release()
    assert not r.exists(cache.make_key("lk"))
    with cache.lock("lk", timeout=10):
        assert r.exists(cache.make_key("lk"))
    assert_no_server_errors(r)


@DJANGO_REDIS
def django_redis_atomic_incr(cache, r):
    """incr runs EVAL (EXISTS + INCRBY) and keeps the TTL; on an error reply it
    would fall back to a non-atomic GET + SET, which assert_no_server_errors catches."""
    cache.set("n", 5, 100)
    assert cache.incr("n", 3) == 8
    assert cache.decr("n") == 7
    assert r.get(cache.make_key("n")) == b"7" and 90 < r.ttl(cache.make_key("n")) <= 100
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert r.info("commandstats")["cmdstat_eval"]["calls"] == 3
    assert_no_server_errors(r)


@DJANGO_REDIS
def django_redis_sets(cache, r):
    assert cache.sadd("s", "a", "b", "c") == 3
    assert cache.sismember("s", "a") and cache.scard("s") == 3
    assert cache.smembers("s") == {"a", "b", "c"}
    assert cache.srem("s", "a") == 1
    assert cache.smove("s", "t", "b")
    assert cache.sunion("s", "t") == {"b", "c"}
    assert r.type(cache.make_key("s")) == b"set"


@DJANGO_REDIS
def django_redis_hashes(cache, r):
    assert cache.hset("h", "f", {"x": 1}) == 1
    assert cache.hexists("h", "f") and cache.hlen("h") == 1
    assert cache.hkeys("h") == ["f"]
    assert cache.hdel("h", "f") == 1 and not cache.hexists("h", "f")


@DJANGO_REDIS
def django_redis_delete_pattern(cache, r):
    for key in ("user:1", "user:2", "other"):
        cache.set(key, key)
    assert cache.delete_pattern("user:*") == 2
    assert cache.keys("*") == ["other"]


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
    import flask
    import flask_caching
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

#: aiocache's RedisCache, its locks included.
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


@AIOCACHE
async def aiocache_optimistic_lock_cas(cache, ar):
    """OptimisticLock.cas is one EVAL: set the key only if it still holds the value read."""
    from aiocache.lock import OptimisticLock, OptimisticLockError
    await cache.set("v", 1)
    async with OptimisticLock(cache, "v") as lock:
        await lock.cas(2)
    assert await cache.get("v") == 2
    with pytest.raises(OptimisticLockError):
        async with OptimisticLock(cache, "v") as lock:
            await cache.set("v", 3)  # someone else writes first
            await lock.cas(4)
    assert await cache.get("v") == 3
    await assert_no_server_errors_async(ar)


@AIOCACHE
async def aiocache_redlock(cache, ar):
    """RedLock: SET NX PX to take it, EVAL (compare and delete) to release."""
    from aiocache.lock import RedLock
    order = []

    async def worker(name):
        async with RedLock(cache, "res", lease=5):
            order.append(f"{name} in")
            await asyncio.sleep(0.05)
            order.append(f"{name} out")
    async with RedLock(cache, "res", lease=5):
        assert await ar.exists("ns:res-lock")
    assert not await ar.exists("ns:res-lock")  # released by the EVAL script
    await asyncio.wait_for(asyncio.gather(worker("a"), worker("b")), 10)
    assert order in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])
    await assert_no_server_errors_async(ar)


@pytest.mark.asyncio
@pytest.mark.parametrize("use", AIOCACHE.params())
async def test_aiocache(kv, use):
    import aiocache
    cache = aiocache.RedisCache(endpoint="127.0.0.1", port=kv.port, namespace="ns")
    ar = redis.asyncio.Redis(host="127.0.0.1", port=kv.port)
    try:
        await use(cache, ar)
    finally:
        await cache.close()
        await ar.aclose()


# --- cashews --------------------------------------------------------------------------

#: Not tried: client-side caching (client_side=True, CLIENT TRACKING) and the
#: bloom-filter decorators.
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
async def cashews_sets(cache, ar):
    await cache.set_add("s", "a", "b", "c")
    await cache.set_add("s2", "x", expire=30)
    assert 0 < await ar.ttl("s2") <= 30 and await ar.type("s") == b"set"
    await cache.set_remove("s", "a")
    assert sorted(await cache.set_pop("s", 10)) == ["b", "c"]
    assert await cache.set_pop("s") == []


@CASHEWS
async def cashews_lock_unlock_and_locked(cache, ar):
    assert await cache.set_lock("lk", "me", expire=10)
    assert not await cache.unlock("lk", "other")  # EVALSHA: only the holder's value unlocks
    assert await cache.is_locked("lk")
    assert await cache.unlock("lk", "me")
    assert not await cache.is_locked("lk")
    async with cache.lock("lk2", expire=10):
        assert await cache.is_locked("lk2")
    assert not await cache.is_locked("lk2")

    calls = []

    @cache.locked(ttl="10s", wait=False)
    async def once(x):
        calls.append(x)
        await asyncio.sleep(0.05)
        return x

    import cashews.exceptions
    first, second = await asyncio.gather(once(1), once(1), return_exceptions=True)
    assert first == 1 and isinstance(second, cashews.exceptions.LockedError)
    assert await once(1) == 1 and calls == [1, 1]  # the lock went with the first call
    await assert_no_server_errors_async(ar)


@CASHEWS
async def cashews_incr_with_expire(cache, ar):
    assert await cache.incr("n", expire=30) == 1  # EVALSHA: INCR + PEXPIRE on create
    assert await cache.incr("n", 2, expire=30) == 3
    assert 0 < await ar.ttl("n") <= 30
    await assert_no_server_errors_async(ar)


@CASHEWS
async def cashews_rate_limits(cache, ar):
    import cashews.exceptions

    @cache.rate_limit(limit=2, period="1m")
    async def fixed():
        return 1

    @cache.slice_rate_limit(limit=2, period="1m")
    async def sliding():
        return 1

    for limited in (fixed, sliding):
        assert await limited() == 1 and await limited() == 1
        with pytest.raises(cashews.exceptions.RateLimitError):
            await limited()
    await assert_no_server_errors_async(ar)


@CASHEWS
async def cashews_hit_decorator(cache, ar):
    calls = []

    @cache.hit(ttl="1m", cache_hits=2)
    async def counted(x):
        calls.append(x)
        return x

    for _ in range(4):
        assert await counted(5) == 5
    assert calls == [5, 5]  # served from the cache twice, then recomputed
    await assert_no_server_errors_async(ar)


@CASHEWS
async def cashews_get_size(cache, ar):
    await cache.set("big", "x" * 1000)
    assert 1000 <= await cache.get_size("big") < 1200  # MEMORY USAGE
    assert await cache.get_size("missing") == 0


@CASHEWS
async def cashews_bits(cache, ar):
    assert await cache.incr_bits("b", 0, 3, size=2) == (1, 1)  # BITFIELD INCRBY u2 SAT
    assert await cache.incr_bits("b", 3, size=2, by=5) == (3,)
    assert await cache.get_bits("b", 0, 1, 3, size=2) == (1, 0, 3)


@CASHEWS
async def cashews_clear(cache, ar):
    await cache.set("a", 1)
    await cache.clear()
    assert await ar.dbsize() == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("use", CASHEWS.params())
async def test_cashews(kv, use):
    import cashews
    cache = cashews.Cache()
    cache.setup(f"redis://127.0.0.1:{kv.port}/0", client_side=False, suppress=False)
    ar = redis.asyncio.Redis(host="127.0.0.1", port=kv.port)
    try:
        await use(cache, ar)
    finally:
        await cache.close()
        await ar.aclose()


# --- walrus ---------------------------------------------------------------------------

#: Left out: walrus's Stream, ConsumerGroup and TimeSeries (XADD...: kvserver
#: serves no streams) and HyperLogLog (PFADD...: not served either).
WALRUS = Uses("walrus_")


@pytest.fixture
def walrus_db(kv):
    import walrus
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


@WALRUS
def walrus_list_blocking_pops(db, r):
    lst = db.List("wl")
    lst.extend(["a", "b", "c"])
    assert lst.bpopleft(timeout=1) == b"a" and lst.bpopright(timeout=1) == b"c"
    assert lst.bmove_tail("wl2", timeout=1) == b"b"
    assert db.List("wl2").as_list() == [b"b"]
    assert lst.bpopleft(timeout=0.1) is None  # empty: BLPOP times out
    pushed = threading.Timer(0.1, lambda: db.List("wl").append("late"))
    pushed.start()
    try:
        assert lst.bpopright(timeout=5) == b"late"  # woken by the push
    finally:
        pushed.join(5)


@WALRUS
def walrus_set(db, r):
    s = db.Set("ws")
    assert s.add("a", "b", "c") == 3
    assert "a" in s and "z" not in s and len(s) == 3
    assert s.members() == {b"a", b"b", b"c"}
    s.remove("c")
    other = db.Set("ws2")
    other.add("b", "x")
    assert s | other == {b"a", b"b", b"x"}
    assert s & other == {b"b"} and s - other == {b"a"}
    assert s.interstore("ws3", other).members() == {b"b"}
    assert s.random() in (b"a", b"b") and sorted(s.search("a*")) == [b"a"]
    assert s.pop() in (b"a", b"b") and len(s) == 1
    assert s.as_set(decode=True) <= {"a", "b"} and r.type("ws") == b"set"


@WALRUS
def walrus_zset(db, r):
    z = db.ZSet("wz")
    z.add({"a": 1, "b": 2, "c": 3, "d": 4})
    assert z.score("c") == 3.0 and z.rank("c") == 2
    assert z[:2] == [b"a", b"b"] and z[1:3, True] == [(b"b", 2.0), (b"c", 3.0)]
    assert z.range_by_score(2, 3) == [b"b", b"c"]
    assert z.count(2, 4) == 3 and len(z) == 4 and "a" in z
    assert z.incr("a", 10) == 11.0 and z.rank("a", reverse=True) == 0
    assert z.popmin() == [(b"b", 2.0)] and z.popmax() == [(b"a", 11.0)]
    assert z.bpopmin(timeout=1) == (b"c", 3.0)
    z["e"] = 5
    assert z.as_items() == [(b"d", 4.0), (b"e", 5.0)]
    assert z.remove_by_score(5) == 1 and z.range(0, -1) == [b"d"]
    other = db.ZSet("wz2")
    other.add({"d": 10, "f": 1})
    assert z.unionstore("wz3", other).as_items() == [(b"f", 1.0), (b"d", 14.0)]
    assert r.type("wz") == b"zset"


@WALRUS
def walrus_model(db, r):
    from walrus import (AutoIncrementField, IntegerField, Model, SetField, TextField)

    class User(Model):
        __database__ = db
        __namespace__ = "wm"
        id = AutoIncrementField()
        name = TextField(index=True)
        age = IntegerField(index=True)
        tags = SetField()

    huey_user = User.create(name="huey", age=3)
    User.create(name="mickey", age=5)
    User.create(name="zaizee", age=2)
    huey_user.tags.add("cat", "white")
    assert User.load(huey_user.id).name == "huey"
    assert User.get(User.name == "mickey").age == 5
    assert sorted(u.name for u in User.query(User.age >= 3)) == ["huey", "mickey"]
    assert [u.name for u in User.query(order_by=User.age.desc())] == ["mickey", "huey", "zaizee"]
    assert [u.name for u in User.query((User.age < 5) & (User.name != "huey"))] == ["zaizee"]
    assert User.count() == 3 and User.load(huey_user.id).tags.members() == {b"cat", b"white"}
    huey_user.age = 4
    huey_user.save()
    assert User.get(User.age == 4).name == "huey"
    huey_user.delete()
    assert User.count() == 2 and sorted(u.name for u in User.all()) == ["mickey", "zaizee"]
    with pytest.raises(KeyError):
        User.load(huey_user.id)


@WALRUS
def walrus_lock(db, r):
    lock = db.lock("wlock", ttl=10_000)
    other = db.lock("wlock", ttl=10_000)
    assert lock.acquire(block=False)
    assert not other.acquire(block=False)
    released = threading.Timer(0.1, lock.release)
    released.start()
    try:
        assert other.acquire()  # blocks (BLPOP on the lock's event list) until released
    finally:
        released.join(5)
    assert other.release() and not other.release()

    @db.lock("wlock2", ttl=10_000)
    def locked():
        return r.exists("lock:wlock2")
    assert locked() == 1 and r.exists("lock:wlock2") == 0


@WALRUS
def walrus_rate_limits(db, r):
    for rate_limit in (db.rate_limit("rl", limit=2, per=60),
                       db.rate_limit_lua("rll", limit=2, per=60)):
        assert [rate_limit.limit("user") for _ in range(3)] == [False, False, True]
        assert not rate_limit.limit("other")

    @db.rate_limit("rld", limit=1, per=60).rate_limited(lambda x: f"k{x}")
    def limited(x):
        return x
    from walrus.rate_limit import RateLimitException
    assert limited(1) == 1
    with pytest.raises(RateLimitException):
        limited(1)


@WALRUS
def walrus_autocomplete(db, r):
    ac = db.autocomplete(namespace="wac")
    ac.store("p1", "python programming", data={"id": 1})
    ac.store("p2", "python snakes", data={"id": 2})
    ac.store("r1", "ruby gems")
    assert sorted(d["id"] for d in ac.search("pyth")) == [1, 2]
    assert list(ac.search("python prog")) == [{"id": 1}]
    assert list(ac.search("rub")) == ["ruby gems"]
    ac.boost_object("p2", multiplier=2)
    assert [d["id"] for d in ac.search("pyth")] == [2, 1]
    assert ac.exists("p1")
    ac.remove("p1")
    assert not ac.exists("p1") and [d["id"] for d in ac.search("pyth")] == [2]
    ac.flush()
    assert r.keys("wac*") == []


@WALRUS
def walrus_array_counter_bitfield_bloom(db, r):
    arr = db.Array("warr")
    arr.extend(["a", "b", "c"])  # Array is Lua scripts over a hash (EVALSHA)
    arr.append("d")
    assert len(arr) == 4 and arr[1] == b"b" and arr[-1] == b"d"
    arr[0] = "A"
    assert arr.pop() == b"d" and arr.pop(0) == b"A" and arr.as_list() == [b"b", b"c"]
    counter = db.counter("wcount")
    assert counter.incr() == 1 and counter.incr(5) == 6 and counter.decr() == 5
    bits = db.bit_field("wbits")
    assert bits.incrby("u8", 0, 200).incrby("u8", 0, 100, "SAT").execute() == [200, 255]
    bloom = db.bloom_filter("wbloom", size=1024)
    bloom.add("x")
    assert "x" in bloom and "y" not in bloom


@WALRUS
def walrus_graph(db, r):
    """The hexastore: every triple in one zset, queried with ZRANGEBYLEX."""
    g = db.graph("wg")
    g.store_many([("huey", "is", "cat"), ("mickey", "is", "dog"),
                  ("huey", "likes", "mickey"), ("zaizee", "is", "cat")])
    assert sorted(t["s"] for t in g.query(p="is", o="cat")) == ["huey", "zaizee"]
    assert list(g.query(s="huey", p="likes")) == [{"s": "huey", "p": "likes", "o": "mickey"}]
    x = g.v.x
    assert sorted(g.search({"s": x, "p": "is", "o": "cat"})["x"]) == ["huey", "zaizee"]
    g.delete("zaizee", "is", "cat")
    assert [t["s"] for t in g.query(p="is", o="cat")] == ["huey"]
    assert r.type("wg") == b"zset"


@WALRUS
def walrus_full_text_search(db, r):
    from walrus import AutoIncrementField, Model, TextField

    class Note(Model):
        __database__ = db
        __namespace__ = "wfts"
        id = AutoIncrementField()
        content = TextField(fts=True)

    for text in ("python and redis", "redis sorted sets", "cooking with python"):
        Note.create(content=text)
    assert sorted(n.content for n in Note.query(Note.content.match("python"))) == [
        "cooking with python", "python and redis"]
    assert [n.content for n in Note.query(Note.content.search("python AND redis"))] == [
        "python and redis"]
    assert sorted(n.content for n in Note.query(Note.content.search("sorted OR cooking"))) == [
        "cooking with python", "redis sorted sets"]


@pytest.mark.parametrize("use", WALRUS.params())
def test_walrus(walrus_db, r, use):
    use(walrus_db, r)
