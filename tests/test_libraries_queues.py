"""Task queues, locks and rate limiters that use Redis, run against a real kvserver.

rq, huey, dramatiq, arq, celery, pottery and limits: each test starts its own
kvserver (the ``kv`` fixture: 127.0.0.1, port 0, a temporary data directory),
points the library at it over a real socket and runs one of the library's main
uses end to end, *including its worker*, run in this process (huey's
consumer threads, a dramatiq Worker, arq's Worker in burst mode, an embedded
celery worker): a job goes in, the worker runs it, the result comes back
through the server.

These libraries are in the ``test`` extras, so they are imported plainly: a
missing one is an error, not a skip. Every wait has a timeout. After each use,
``assert_no_server_errors`` checks the server's INFO errorstats: a library
that swallows an error reply and falls back to another path (several do)
still fails the test.

Left out because kvserver serves no streams (XADD, XREVRANGE...): rq's
workers (rq 3 stores every job's result in a stream), see the rq section.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import gc
import signal
import threading
import time

import pytest
import redis
import redis.asyncio

import arq
import arq.connections
import arq.worker
import celery
import celery.contrib.testing.worker
import dramatiq
import dramatiq.brokers.redis
import dramatiq.rate_limits
import dramatiq.rate_limits.backends
import dramatiq.results
import dramatiq.results.backends
import huey
import huey.exceptions
import limits
import limits.aio.storage
import limits.aio.strategies
import limits.storage
import limits.strategies
import pottery
import rq
import rq.registry
import rq.scheduler

from conftest import wait_for
from server_errors import assert_no_server_errors

pytestmark = [
    # Warnings from the libraries about their own use of redis-py: not ours.
    pytest.mark.filterwarnings("ignore:Call to deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Call to .__init__. function with deprecated"),
    pytest.mark.filterwarnings("ignore::pottery.InefficientAccessWarning"),
]

@pytest.fixture
def r(kv):
    """A redis-py client to the same kvserver, to check what a library left there."""
    client = redis.Redis(host="127.0.0.1", port=kv.port)
    yield client
    client.close()


@contextlib.contextmanager
def kept_signal_handlers():
    """Workers install SIGINT/SIGTERM handlers: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


# --- rq -----------------------------------------------------------------------------
# rq 3's workers store every job's outcome in a stream (Result.create: XADD
# rq:results:<id>, read back with XREVRANGE), which kvserver does not serve: a
# worker runs the job but its EXEC fails, the job stays "started". So no
# worker here; enqueueing, dependencies, the registries and the scheduler work.

def rq_add(a, b):
    return a + b


def test_rq_enqueue_inspect_cancel_and_delete(kv, r):
    queue = rq.Queue("kvq", connection=r)
    job = queue.enqueue(rq_add, 2, 3, result_ttl=60, meta={"who": "test"})
    jobs = queue.enqueue_many([rq.Queue.prepare_data(rq_add, (i, i)) for i in range(3)])
    assert queue.count == 4 and queue.job_ids[0] == job.id
    assert job.get_status() == rq.job.JobStatus.QUEUED
    assert r.type(f"rq:job:{job.id}") == b"hash" and r.type("rq:queue:kvq") == b"list"
    fetched = rq.job.Job.fetch(job.id, connection=r)
    assert fetched.func_name.endswith("rq_add") and fetched.args == (2, 3)
    assert fetched.meta == {"who": "test"}
    fetched.meta["n"] = 1
    fetched.save_meta()
    assert job.get_meta(refresh=True) == {"who": "test", "n": 1}
    assert "kvq" in [q.name for q in rq.Queue.all(connection=r)]
    jobs[0].cancel()
    assert jobs[0].get_status() == rq.job.JobStatus.CANCELED and queue.count == 3
    assert jobs[0].id in rq.registry.CanceledJobRegistry(queue=queue).get_job_ids()
    jobs[1].delete()
    assert not r.exists(f"rq:job:{jobs[1].id}") and queue.count == 2
    assert queue.empty() == 2 and queue.count == 0
    assert_no_server_errors(r)


def test_rq_dependencies_and_scheduler(kv, r):
    queue = rq.Queue("kvq", connection=r)
    first = queue.enqueue(rq_add, 1, 1)
    second = queue.enqueue(rq_add, 2, 2, depends_on=first)
    assert second.get_status() == rq.job.JobStatus.DEFERRED
    assert rq.registry.DeferredJobRegistry(queue=queue).get_job_ids() == [second.id]
    assert queue.job_ids == [first.id]
    now = datetime.datetime.now(datetime.timezone.utc)
    due = queue.enqueue_at(now - datetime.timedelta(seconds=1), rq_add, 3, 3)
    later = queue.enqueue_in(datetime.timedelta(hours=1), rq_add, 4, 4)
    scheduled = rq.registry.ScheduledJobRegistry(queue=queue)
    assert due.get_status() == rq.job.JobStatus.SCHEDULED
    assert scheduled.get_job_ids() == [due.id, later.id]  # a zset, by time
    assert scheduled.get_scheduled_time(later) > now
    # A worker's scheduler: takes its lock (SET NX), moves the due jobs to the queue.
    scheduler = rq.scheduler.RQScheduler([queue], connection=r)
    assert scheduler.acquire_locks() == {"kvq"}
    scheduler.enqueue_scheduled_jobs()
    scheduler.release_locks()
    assert queue.job_ids == [first.id, due.id] and scheduled.get_job_ids() == [later.id]
    assert due.get_status(refresh=True) == rq.job.JobStatus.QUEUED
    assert_no_server_errors(r)


# --- huey ---------------------------------------------------------------------------

@contextlib.contextmanager
def huey_consumer(h):
    """huey's consumer (one worker thread + the scheduler thread) in this process."""
    consumer = h.create_consumer(workers=1, worker_type="thread", periodic=False,
                                 initial_delay=0.05, max_delay=0.2, check_worker_health=False)
    with kept_signal_handlers():
        consumer.start()
        try:
            yield consumer
        finally:
            consumer.stop(graceful=True)


def huey_add(a, b):
    return a + b


def make_huey_on(port: int):
    # blocking=True: workers wait on BRPOP (read_timeout 1 s) between tasks.
    return huey.RedisHuey("kvtest", host="127.0.0.1", port=port, blocking=True, read_timeout=1)


def make_huey(kv):
    return make_huey_on(kv.port)


def test_huey_enqueue_consumer_results_and_schedule(kv, r):
    h = make_huey(kv)

    @h.task()
    def add(a, b):
        return a + b

    @h.task(retries=1, retry_delay=0)
    def flaky(box=[]):  # noqa: B006 - the mutable default counts the tries
        box.append(1)
        if len(box) == 1:
            raise RuntimeError("first try fails")
        return len(box)

    result = add(1, 2)
    assert h.pending_count() == 1 and r.llen("huey.redis.kvtest") == 1
    scheduled = add.schedule((10, 20), delay=1)  # a worker puts it in the schedule (a zset)
    retried = flaky()
    with huey_consumer(h):
        assert result.get(blocking=True, timeout=10) == 3
        assert scheduled.get(blocking=True, timeout=10) == 30  # after the scheduler moved it
        assert retried.get(blocking=True, timeout=10) == 2
    assert h.pending_count() == 0 and h.scheduled_count() == 0
    assert_no_server_errors(r)


def test_huey_result_store_lock_and_revoke(kv, r):
    h = make_huey(kv)

    @h.task()
    def square(x):
        return x * x

    res = square(4)
    revoked = square(5)
    revoked.revoke()
    assert revoked.is_revoked()
    with h.lock_task("only-one"):
        with pytest.raises(huey.exceptions.TaskLockedException):
            with h.lock_task("only-one"):
                pass
    h.put("k", {"v": 1})
    assert h.get("k", peek=True) == {"v": 1} and h.get("k") == {"v": 1} and h.get("k") is None
    with huey_consumer(h):
        assert res.get(blocking=True, timeout=10) == 16
        wait_for(lambda: h.pending_count() == 0, "huey's queue to drain", timeout=10)
    assert revoked.get() is None  # revoked: never ran
    assert_no_server_errors(r)


def test_huey_priority_queue(kv, r):
    """PriorityRedisHuey keeps the queue in a zset: ZADD, BZPOPMIN to dequeue."""
    h = huey.PriorityRedisHuey("kvprio", host="127.0.0.1", port=kv.port, blocking=True,
                               read_timeout=1)
    ran = []

    @h.task()
    def note(x):
        ran.append(x)
        return x

    results = [note.s(x, priority=p) for x, p in (("low", 1), ("high", 10), ("mid", 5))]
    results = [h.enqueue(task) for task in results]
    assert r.type("huey.redis.kvprio") == b"zset" and h.pending_count() == 3
    with huey_consumer(h):
        assert [res.get(blocking=True, timeout=10) for res in results] == ["low", "high", "mid"]
    assert ran == ["high", "mid", "low"]  # highest priority first
    assert_no_server_errors(r)


# --- dramatiq -----------------------------------------------------------------------

@pytest.fixture
def dramatiq_broker(kv):
    broker = dramatiq.brokers.redis.RedisBroker(host="127.0.0.1", port=kv.port)
    backend = dramatiq.results.backends.RedisBackend(host="127.0.0.1", port=kv.port)
    broker.add_middleware(dramatiq.results.Results(backend=backend))
    dramatiq.set_broker(broker)  # Message.get_result looks up the global broker
    yield broker
    broker.close()
    backend.client.close()


@contextlib.contextmanager
def dramatiq_worker(broker):
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        yield worker
    finally:
        worker.stop(timeout=10_000)


def test_dramatiq_broker_worker_and_results(dramatiq_broker, r):
    broker = dramatiq_broker
    done = []

    @dramatiq.actor(broker=broker, queue_name="kvq", store_results=True)
    def add(a, b):
        done.append((a, b))
        return a + b

    @dramatiq.actor(broker=broker, queue_name="kvq", max_retries=0)
    def fail():
        raise ValueError("boom")

    messages = [add.send(i, i) for i in range(5)]
    failed = fail.send()
    delayed = add.send_with_options(args=(7, 7), delay=300)
    with dramatiq_worker(broker):
        results = [m.get_result(block=True, timeout=10_000) for m in messages]
        assert delayed.get_result(block=True, timeout=10_000) == 14
        broker.join("kvq", timeout=10_000)
    assert results == [0, 2, 4, 6, 8] and len(done) == 6
    # A message that failed for good lands in the dead-letter queue.
    assert r.zrange("dramatiq:kvq.XQ", 0, -1) == [failed.options["redis_message_id"].encode()]
    assert_no_server_errors(r)


def test_dramatiq_broker_maintenance_and_requeue(kv, r):
    """Every dispatch does maintenance (maintenance_chance at its scale): the Lua
    script walks the heartbeats zset and requeues a dead worker's unacked messages."""
    always = dramatiq.brokers.redis.MAINTENANCE_SCALE
    broker = dramatiq.brokers.redis.RedisBroker(host="127.0.0.1", port=kv.port,
                                                maintenance_chance=always, heartbeat_timeout=100)
    done = []

    @dramatiq.actor(broker=broker, queue_name="kvm")
    def note(x):
        done.append(x)

    # Another broker (another worker id) takes a message, never acks it, and dies.
    dead_broker = dramatiq.brokers.redis.RedisBroker(host="127.0.0.1", port=kv.port)
    dead_broker.declare_queue("kvm")
    try:
        note.send("orphan")
        dead = dead_broker.consume("kvm", prefetch=1, timeout=100)
        assert next(dead).args == ("orphan",)
        assert r.scard(f"dramatiq:__acks__.{dead_broker.broker_id}.kvm") == 1
        dead_broker.close()
        time.sleep(0.2)  # its heartbeat goes stale
        note.send("fresh")
        with dramatiq_worker(broker):
            broker.join("kvm", timeout=10_000)
            wait_for(lambda: len(done) == 2, "both messages", timeout=10)
        assert sorted(done) == ["fresh", "orphan"]
        assert r.zcard("dramatiq:__heartbeats__") <= 1
        assert_no_server_errors(r)
    finally:
        broker.close()


def test_dramatiq_rate_limiters(kv, r):
    backend = dramatiq.rate_limits.backends.RedisBackend(host="127.0.0.1", port=kv.port)
    mutex = dramatiq.rate_limits.ConcurrentRateLimiter(backend, "mutex", limit=1, ttl=10_000)
    with mutex.acquire():
        with mutex.acquire(raise_on_failure=False) as acquired:
            assert not acquired
    with mutex.acquire(raise_on_failure=False) as acquired:
        assert acquired

    window = dramatiq.rate_limits.WindowRateLimiter(backend, "window", limit=2, window=60)
    tries = []
    for _ in range(3):
        with window.acquire(raise_on_failure=False) as acquired:
            tries.append(acquired)
    assert tries == [True, True, False]

    bucket = dramatiq.rate_limits.BucketRateLimiter(backend, "bucket", limit=2, bucket=60_000)
    tries = []
    for _ in range(3):
        with bucket.acquire(raise_on_failure=False) as acquired:
            tries.append(acquired)
    assert tries == [True, True, False]

    barrier = dramatiq.rate_limits.Barrier(backend, "barrier", ttl=10_000)
    assert barrier.create(parties=2)
    released = []
    waiter = threading.Thread(target=lambda: released.append(barrier.wait(timeout=10_000)))
    waiter.start()
    assert barrier.wait(timeout=10_000)
    waiter.join(10)
    assert released == [True]
    backend.client.close()
    assert_no_server_errors(r)


# --- arq ----------------------------------------------------------------------------

async def arq_add(ctx, a, b):
    return a + b


async def arq_fail(ctx):
    raise ValueError("boom")


@pytest.mark.asyncio
async def test_arq_enqueue_and_burst_worker(kv, r):
    pool = await arq.create_pool(arq.connections.RedisSettings(host="127.0.0.1", port=kv.port))
    try:
        job = await pool.enqueue_job("arq_add", 2, 3)
        assert await pool.enqueue_job("arq_add", 1, 1, _job_id="unique") is not None
        assert await pool.enqueue_job("arq_add", 1, 1, _job_id="unique") is None  # already queued
        failing = await pool.enqueue_job("arq_fail")
        deferred = await pool.enqueue_job("arq_add", 4, 4,
                                          _defer_by=datetime.timedelta(seconds=0.3))
        assert await job.status() == arq.jobs.JobStatus.queued
        assert await deferred.status() == arq.jobs.JobStatus.deferred
        assert len(await pool.queued_jobs()) == 4
        await asyncio.sleep(0.4)  # the deferred job is due: the burst worker takes it too
        worker = arq.worker.Worker(functions=[arq_add, arq_fail], redis_pool=pool, burst=True,
                                   poll_delay=0.05, handle_signals=False, max_tries=1)
        try:
            await asyncio.wait_for(worker.main(), 20)
        finally:
            await worker.close()
        assert await job.result(timeout=5) == 5
        assert await deferred.result(timeout=5) == 8
        assert (await job.info()).success
        with pytest.raises(ValueError, match="boom"):
            await failing.result(timeout=5)
        assert (worker.jobs_complete, worker.jobs_failed) == (3, 1)
        assert sorted(r.info("keyspace")) == ["db0"]
    finally:
        await pool.aclose()
    assert_no_server_errors(r)


async def arq_retry(ctx):
    if ctx["job_try"] < 3:
        raise arq.worker.Retry(defer=0.05)
    return ctx["job_try"]


async def arq_slow(ctx):
    await asyncio.sleep(30)


@pytest.mark.asyncio
async def test_arq_retry_and_abort(kv, r):
    pool = await arq.create_pool(arq.connections.RedisSettings(host="127.0.0.1", port=kv.port))
    worker = arq.worker.Worker(functions=[arq_retry, arq_slow], redis_pool=pool,
                               poll_delay=0.05, handle_signals=False, allow_abort_jobs=True)
    try:
        retried = await pool.enqueue_job("arq_retry")
        slow = await pool.enqueue_job("arq_slow")
        run = asyncio.create_task(worker.main())
        try:
            assert await retried.result(timeout=10, poll_delay=0.05) == 3
            assert await slow.abort(timeout=10, poll_delay=0.05)
        finally:
            run.cancel()
            await asyncio.gather(run, return_exceptions=True)
        assert await slow.status() == arq.jobs.JobStatus.complete
    finally:
        await worker.close()
        await pool.aclose()
    assert_no_server_errors(r)


# --- celery -------------------------------------------------------------------------

def test_celery_redis_broker_backend_and_worker(kv, r):
    url = f"redis://127.0.0.1:{kv.port}/0"
    app = celery.Celery("kvtest", broker=url, backend=url, set_as_current=False)
    app.conf.update(task_always_eager=False, broker_connection_retry_on_startup=False,
                    broker_connection_max_retries=1, result_expires=60,
                    worker_hijack_root_logger=False, worker_send_task_events=False)

    @app.task(name="kvtest.add")
    def add(a, b):
        return a + b

    @app.task(name="kvtest.total")
    def total(values):
        return sum(values)

    @app.task(name="kvtest.fail")
    def fail():
        raise ValueError("boom")

    def round_trips():
        with kept_signal_handlers(), celery.contrib.testing.worker.start_worker(
                app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
            assert add.delay(2, 3).get(timeout=10) == 5
            assert add.apply_async((4, 4), countdown=1).get(timeout=10) == 8
            group = celery.group(add.s(i, i) for i in range(3)).apply_async()
            assert group.get(timeout=10) == [0, 2, 4]
            # A chord: the redis backend counts the header's results (INCR, RPUSH...).
            assert celery.chord(add.s(i, 1) for i in range(3))(total.s()).get(timeout=10) == 6
            failing = fail.delay()
            with pytest.raises(ValueError, match="boom"):
                failing.get(timeout=10)
            assert failing.state == "FAILURE"
        result = add.AsyncResult(add.delay(1, 1).id)
        assert result.state == "PENDING"  # no worker any more: it waits in the broker's list
        assert r.llen("celery") == 1

    try:
        round_trips()
    finally:
        # An AsyncResult unsubscribes when collected: let that happen while the
        # server is up (later, celery would retry the connection for 20 s).
        gc.collect()
        app.close()
    assert_no_server_errors(r)


# --- pottery ------------------------------------------------------------------------

def test_pottery_containers(kv, r):
    d = pottery.RedisDict({"a": 1, "b": [2]}, redis=r, key="pd")
    d["c"] = {"x": 3}
    assert d["b"] == [2] and len(d) == 3 and "c" in d
    del d["a"]
    assert d.to_dict() == {"b": [2], "c": {"x": 3}} and r.type("pd") == b"hash"

    lst = pottery.RedisList([1, 2, 3], redis=r, key="pl")
    lst.append(4)
    lst.insert(0, 0)
    assert lst[0] == 0 and lst[-1] == 4 and lst[1:3] == [1, 2]
    lst[1] = 10
    assert lst.pop() == 4 and lst.pop(0) == 0
    assert lst.to_list() == [10, 2, 3] and r.type("pl") == b"list"

    s = pottery.RedisSet({"a", "b"}, redis=r, key="ps")
    s.add("c")
    s.discard("a")
    assert s.to_set() == {"b", "c"} and "b" in s and r.type("ps") == b"set"
    assert s.isdisjoint({"z"}) and s.issubset({"b", "c", "d"})

    counter = pottery.RedisCounter("abracadabra", redis=r, key="pc")
    counter["a"] += 2
    assert counter["a"] == 7 and counter.most_common(1) == [("a", 7)]
    assert counter.to_counter()["b"] == 2

    dq = pottery.RedisDeque([1, 2], redis=r, key="pq", maxlen=3)
    dq.appendleft(0)
    dq.append(3)  # maxlen 3: the left end drops off
    assert list(dq) == [1, 2, 3]
    assert_no_server_errors(r)


def test_pottery_redlock_and_nextid(kv, r):
    lock = pottery.Redlock(key="res", masters={r}, auto_release_time=10)
    other = pottery.Redlock(key="res", masters={r}, auto_release_time=10)
    with lock:
        assert 0 < lock.locked() <= 10_000
        assert not other.acquire(blocking=False)
        lock.extend()
    assert not lock.locked()
    assert other.acquire(timeout=5)
    other.release()
    with pytest.raises(pottery.ReleaseUnlockedLock):
        other.release()

    ids = pottery.NextID(key="ids", masters={r})
    assert [next(ids) for _ in range(3)] == [1, 2, 3]

    calls = []

    @pottery.redis_cache(redis=r, key="pcache", timeout=30)
    def double(x):
        calls.append(x)
        return x * 2
    assert double(2) == 4 and double(2) == 4 and calls == [2]
    assert_no_server_errors(r)


def test_pottery_bloom_filter_synchronize_and_cached_dict(kv, r):
    bloom = pottery.BloomFilter({"a", "b"}, redis=r, key="pbloom", num_elements=100,
                                false_positives=0.01)
    bloom.add("c")
    assert "a" in bloom and "c" in bloom and "zzz" not in bloom
    assert list(bloom.contains_many("a", "zzz")) == [True, False]
    assert 0 < len(bloom) <= 3 and r.type("pbloom") == b"string"  # len: an estimate (BITCOUNT)

    inside = []

    @pottery.synchronize(key="psync", masters={r}, auto_release_time=10)
    def critical(n):
        inside.append(n)
        assert len(inside) == 1  # nobody else holds the Redlock
        time.sleep(0.02)
        inside.remove(n)
        return n

    threads = [threading.Thread(target=critical, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads) and not r.keys("redlock:*")

    r.hset("pcod", mapping={'"x"': "1"})
    cache = pottery.CachedOrderedDict(redis_client=r, redis_key="pcod", dict_keys=("x", "y"))
    assert cache.misses() == {"y"} and cache["x"] == 1
    cache["y"] = 2
    assert pottery.RedisDict(redis=r, key="pcod").to_dict() == {"x": 1, "y": 2}
    assert_no_server_errors(r)


@pytest.mark.asyncio
async def test_pottery_aioredlock(kv, r):
    ar = redis.asyncio.Redis(host="127.0.0.1", port=kv.port)
    try:
        lock = pottery.AIORedlock(key="ares", masters={ar}, auto_release_time=10)
        async with lock:
            assert 0 < await lock.locked() <= 10_000
            await lock.extend()
        assert not await lock.locked()
        ids = pottery.AIONextID(key="aids", masters={ar})
        assert [await anext(ids) for _ in range(2)] == [1, 2]
    finally:
        await ar.aclose()
    assert_no_server_errors(r)


# --- limits -------------------------------------------------------------------------

LIMITS_STRATEGIES = ["FixedWindowRateLimiter", "MovingWindowRateLimiter",
                     "SlidingWindowCounterRateLimiter"]


@pytest.mark.parametrize("strategy", LIMITS_STRATEGIES)
def test_limits_strategy_with_redis_storage(kv, r, strategy):
    storage = limits.storage.RedisStorage(f"redis://127.0.0.1:{kv.port}")
    assert storage.check()
    limiter = getattr(limits.strategies, strategy)(storage)
    item = limits.parse("3/minute")
    assert [limiter.hit(item, "user", "1") for _ in range(4)] == [True, True, True, False]
    assert not limiter.test(item, "user", "1")
    assert limiter.test(item, "user", "2")
    stats = limiter.get_window_stats(item, "user", "1")
    assert stats.remaining == 0
    assert limiter.hit(item, "user", "2", cost=2) and not limiter.hit(item, "user", "2", cost=2)
    limiter.clear(item, "user", "1")
    assert limiter.test(item, "user", "1")
    storage.reset()
    assert r.dbsize() == 0
    assert_no_server_errors(r)


@pytest.mark.asyncio
@pytest.mark.parametrize("strategy", LIMITS_STRATEGIES)
async def test_limits_async_strategy_with_redis_storage(kv, r, strategy):
    storage = limits.aio.storage.RedisStorage(f"async+redis://127.0.0.1:{kv.port}",
                                              implementation="redispy")
    assert await storage.check()
    limiter = getattr(limits.aio.strategies, strategy)(storage)
    item = limits.parse("2/minute")
    assert [await limiter.hit(item, "a") for _ in range(3)] == [True, True, False]
    assert not await limiter.test(item, "a")
    assert (await limiter.get_window_stats(item, "a")).remaining == 0
    await limiter.clear(item, "a")
    assert await limiter.test(item, "a")
    assert_no_server_errors(r)


# --- all of them: queued work survives a crash ----------------------------------

def key_state(r: redis.Redis) -> dict:
    """Every key's type, contents and whether it has a TTL, read through redis-py."""
    read = {b"string": r.get, b"hash": r.hgetall, b"list": lambda k: r.lrange(k, 0, -1),
            b"set": lambda k: sorted(r.smembers(k)),
            b"zset": lambda k: r.zrange(k, 0, -1, withscores=True)}
    state = {}
    for key in r.scan_iter(count=100):
        kind = r.type(key)
        state[key] = (kind, read[kind](key), r.pttl(key) > 0)
    return state


def test_queued_work_survives_kill9_and_runs_after_restart(kv_process):
    """Jobs queued by every library (through Lua scripts, MULTI/EXEC, zsets...) are
    all there after kill -9 and a restart on the same data directory, key for key,
    and the workers then run them."""
    server = kv_process()
    r = redis.Redis(host="127.0.0.1", port=server.port)
    rq_queue = rq.Queue("kvq", connection=r)
    rq_job = rq_queue.enqueue(rq_add, 1, 2)
    rq_queue.enqueue(rq_add, 3, 4, depends_on=rq_job)
    rq_queue.enqueue_in(datetime.timedelta(hours=1), rq_add, 5, 6)

    h = make_huey_on(server.port)
    huey_result = h.task()(huey_add)(1, 2)

    broker = dramatiq.brokers.redis.RedisBroker(host="127.0.0.1", port=server.port)
    done = []

    @dramatiq.actor(broker=broker, queue_name="kvd")
    def note(x):
        done.append(x)
    for x in range(3):
        note.send(x)  # the dispatch Lua script's "enqueue"
    note.send_with_options(args=("delayed",), delay=50)
    broker.close()

    async def arq_enqueue(port):
        pool = await arq.create_pool(arq.connections.RedisSettings(host="127.0.0.1", port=port))
        try:
            return (await pool.enqueue_job("arq_add", 2, 2)).job_id
        finally:
            await pool.aclose()
    arq_job_id = asyncio.run(arq_enqueue(server.port))

    app = celery.Celery("kvtest", broker=f"redis://127.0.0.1:{server.port}/0",
                        set_as_current=False)
    app.send_task("kvtest.add", (1, 1))
    app.close()
    pottery.RedisDict({"a": [1]}, redis=r, key="pd")
    pottery.Redlock(key="res", masters={r}, auto_release_time=60).acquire()

    before = key_state(r)
    assert len(before) >= 15, sorted(before)
    r.close()
    server.kill9()

    server = kv_process(data_dir=server.dir)
    r = redis.Redis(host="127.0.0.1", port=server.port)
    assert key_state(r) == before

    # The workers take it from there.
    h = make_huey_on(server.port)
    h.task()(huey_add)
    with huey_consumer(h):
        assert h.result(huey_result.id, blocking=True, timeout=10) == 3
    broker = dramatiq.brokers.redis.RedisBroker(host="127.0.0.1", port=server.port)
    dramatiq.actor(broker=broker, queue_name="kvd", actor_name="note")(lambda x: done.append(x))
    try:
        with dramatiq_worker(broker):
            broker.join("kvd", timeout=10_000)
    finally:
        broker.close()
    assert sorted(map(str, done)) == ["0", "1", "2", "delayed"]

    async def arq_run(port):
        pool = await arq.create_pool(arq.connections.RedisSettings(host="127.0.0.1", port=port))
        worker = arq.worker.Worker(functions=[arq_add], redis_pool=pool, burst=True,
                                   poll_delay=0.05, handle_signals=False)
        try:
            await asyncio.wait_for(worker.main(), 20)
            return await arq.jobs.Job(arq_job_id, pool).result(timeout=5)
        finally:
            await worker.close()
            await pool.aclose()
    assert asyncio.run(arq_run(server.port)) == 4
    assert_no_server_errors(r)
    r.close()

