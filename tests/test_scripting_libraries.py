"""The real Lua scripts of popular libraries, run through redis-py against kvserver.

redis-py's ``Lock`` (acquire, extend, reacquire, release: its three scripts,
through EVALSHA after a NOSCRIPT fallback to SCRIPT LOAD), the ``limits``
package's moving-window, sliding-window and fixed-window rate limiters on its
Redis storage, django-redis's ``incr`` (an EVAL; checked in commandstats so
its non-atomic fallback cannot pass for it) and its lock, a sliding-window
limiter of the kind rate limiters run per request (the one ``make bench``
measures), and redis-py's ``transaction()`` with WATCH retries under
contention next to a script bumping the same counter. Each test starts its
own kvserver (the ``kv`` fixture) and is bounded.
"""

from __future__ import annotations

import threading
import time

import pytest

redis = pytest.importorskip("redis")

#: A sliding-window rate limiter on a sorted set would need ZADD; this one, on
#: a list of timestamps (what limiters built on lists do), is the script
#: bench/rows.py measures too: KEYS[1] the window, ARGV: now (ms), window
#: (ms), limit. Returns 1 if allowed (and records the hit), 0 if not.
SLIDING_WINDOW = """
local key = KEYS[1]
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
while true do
  local oldest = redis.call('lindex', key, -1)
  if not oldest or tonumber(oldest) > now - window then break end
  redis.call('rpop', key)
end
if redis.call('llen', key) < limit then
  redis.call('lpush', key, now)
  redis.call('pexpire', key, window)
  return 1
end
return 0
"""


@pytest.fixture
def r(kv):
    client = redis.Redis(host="127.0.0.1", port=kv.port)
    yield client
    client.close()


def eval_calls(r) -> dict:
    stats = r.info("commandstats")
    return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
            for name in ("eval", "evalsha", "script|load")}


# --- redis-py Lock ----------------------------------------------------------------------

def test_redis_py_lock_acquire_extend_reacquire_release(r):
    lock = r.lock("resource", timeout=10)
    assert lock.acquire(blocking=False)
    assert lock.owned() and lock.locked()
    other = r.lock("resource", timeout=10)
    assert not other.acquire(blocking=False)
    assert lock.extend(20)                       # LUA_EXTEND_SCRIPT
    assert 20_000 < r.pttl("resource") <= 30_000
    assert lock.extend(5, replace_ttl=True)
    assert r.pttl("resource") <= 5_000
    assert lock.reacquire()                      # LUA_REACQUIRE_SCRIPT
    assert 9_000 < r.pttl("resource") <= 10_000
    impostor = r.lock("resource", timeout=10)
    impostor.local.token = b"not-the-owner"
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        impostor.release()                       # the release script answered 0
    impostor.local.token = b"not-the-owner"      # (release() forgot it)
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        impostor.extend(5)                       # the extend script answered 0
    with pytest.raises(redis.exceptions.LockNotOwnedError):
        impostor.reacquire()
    assert r.exists("resource") == 1
    lock.release()                               # LUA_RELEASE_SCRIPT
    assert not lock.locked() and r.exists("resource") == 0
    assert other.acquire(blocking=False)
    other.release()
    assert eval_calls(r)["evalsha"] >= 5


def test_redis_py_lock_is_exclusive_under_contention(kv):
    """Threads take one lock in turn around a read-modify-write: no update is lost."""
    counter = {"in": 0, "max": 0}
    clients = [redis.Redis(host="127.0.0.1", port=kv.port) for _ in range(4)]

    def worker(client):
        for _ in range(15):
            with client.lock("mutex", timeout=5, blocking_timeout=20, sleep=0.001):
                counter["in"] += 1
                counter["max"] = max(counter["max"], counter["in"])
                value = int(client.get("n") or 0)
                client.set("n", value + 1)
                counter["in"] -= 1
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert int(clients[0].get("n")) == 60 and counter["max"] == 1
    for c in clients:
        c.close()


# --- limits ----------------------------------------------------------------------------

@pytest.fixture
def limits_storage(kv):
    pytest.importorskip("limits")
    from limits.storage import RedisStorage
    storage = RedisStorage(f"redis://127.0.0.1:{kv.port}")
    yield storage
    storage.storage.close()


@pytest.mark.parametrize("strategy", ["MovingWindowRateLimiter",
                                      "SlidingWindowCounterRateLimiter",
                                      "FixedWindowRateLimiter"])
def test_limits_rate_limiters(limits_storage, r, strategy):
    import limits
    import limits.strategies
    limiter = getattr(limits.strategies, strategy)(limits_storage)
    per_minute = limits.parse("5/minute")
    for _ in range(5):
        assert limiter.hit(per_minute, "user", "42")
    assert not limiter.hit(per_minute, "user", "42")          # the sixth is refused
    assert not limiter.test(per_minute, "user", "42")
    assert limiter.hit(per_minute, "user", "43")              # another identity
    stats = limiter.get_window_stats(per_minute, "user", "42")
    assert stats.remaining == 0
    assert limiter.hit(limits.parse("10/minute"), "user", "44", cost=4)
    assert not limiter.hit(limits.parse("10/minute"), "user", "44", cost=7)
    limiter.clear(per_minute, "user", "42")
    assert limiter.hit(per_minute, "user", "42")
    if strategy != "FixedWindowRateLimiter":
        assert sum(eval_calls(r).values()) > 0


def test_limits_moving_window_slides(limits_storage):
    import limits
    import limits.strategies
    limiter = limits.strategies.MovingWindowRateLimiter(limits_storage)
    per_second = limits.parse("3/second")
    assert all(limiter.hit(per_second, "slide") for _ in range(3))
    assert not limiter.hit(per_second, "slide")
    deadline = time.monotonic() + 5
    while not limiter.hit(per_second, "slide"):               # the window moves on
        assert time.monotonic() < deadline
        time.sleep(0.05)


# --- django-redis ---------------------------------------------------------------------------

@pytest.fixture
def django_redis_cache(kv):
    pytest.importorskip("django")
    pytest.importorskip("django_redis")
    from django.conf import settings
    if not settings.configured:
        settings.configure()
    from django_redis.cache import RedisCache
    cache = RedisCache(f"redis://127.0.0.1:{kv.port}/0", {})
    yield cache
    cache.client.get_client().connection_pool.disconnect()


def test_django_redis_incr_is_a_script(django_redis_cache, r):
    cache = django_redis_cache
    cache.set("n", 5)
    assert cache.incr("n", 3) == 8
    assert cache.decr("n") == 7
    assert cache.get("n") == 7
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert eval_calls(r)["eval"] >= 3        # the script ran: not the GET+SET fallback


def test_django_redis_lock(django_redis_cache, r):
    lock = django_redis_cache.lock("job", timeout=10)
    assert lock.acquire(blocking=False)
    assert not django_redis_cache.lock("job", timeout=10).acquire(blocking=False)
    lock.release()
    assert r.exists(django_redis_cache.make_key("job")) == 0


# --- a per-request limiter, and WATCH retries next to scripts --------------------------------

def test_sliding_window_limiter_script(r):
    limiter = r.register_script(SLIDING_WINDOW)
    now = 1_000_000
    assert [limiter(keys=["rl:a"], args=[now + i, 1000, 3]) for i in range(5)] == [1, 1, 1, 0, 0]
    assert limiter(keys=["rl:a"], args=[now + 1001, 1000, 3]) == 1   # the oldest left the window
    assert r.llen("rl:a") == 2        # now+0 and now+1 left, now+1001 came in
    r.script_flush()
    assert limiter(keys=["rl:b"], args=[now, 1000, 3]) == 1          # NOSCRIPT -> reloaded


def test_transaction_retries_and_scripts_on_one_counter(kv):
    """Threads bump one counter, half through WATCH/MULTI/EXEC (redis-py's transaction(),
    retrying on WatchError), half through a script: the final count is exact."""
    bump = "return redis.call('incr', KEYS[1])"
    clients = [redis.Redis(host="127.0.0.1", port=kv.port) for _ in range(4)]
    clients[0].set("counter", 0)

    def by_transaction(client):
        def body(pipe):
            value = int(pipe.get("counter"))
            pipe.multi()
            pipe.set("counter", value + 1)
        for _ in range(40):
            client.transaction(body, "counter")

    def by_script(client):
        script = client.register_script(bump)
        for _ in range(40):
            script(keys=["counter"])

    threads = [threading.Thread(target=by_transaction if i % 2 else by_script, args=(c,))
               for i, c in enumerate(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert int(clients[0].get("counter")) == 160
    with clients[0].pipeline(transaction=True) as p:
        p.eval(bump, 1, "counter").incr("counter")
        assert p.execute() == [161, 162]
    for c in clients:
        c.close()


def test_a_scripts_push_serves_a_blocked_client_after_the_script(kv):
    """As in Redis, a client blocked in BLPOP is served once the whole script has run:
    the script still sees both elements it pushed."""
    blocked = redis.Redis(host="127.0.0.1", port=kv.port)
    writer = redis.Redis(host="127.0.0.1", port=kv.port)
    got = []
    waiter = threading.Thread(target=lambda: got.append(blocked.blpop("jobs", 10)))
    waiter.start()
    deadline = time.monotonic() + 5
    while writer.info("clients")["blocked_clients"] < 1:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert writer.eval("redis.call('rpush', 'jobs', 'a', 'b') return redis.call('llen', 'jobs')",
                       0) == 2
    waiter.join(10)
    assert got == [(b"jobs", b"a")] and writer.lrange("jobs", 0, -1) == [b"b"]
    blocked.close()
    writer.close()
