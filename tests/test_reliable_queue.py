"""The reliable-queue pattern end to end, with ``kill -9`` in the middle (issue 14's "done when").

Producers LPUSH jobs; workers BLMOVE them from the queue to a processing
list (most of the time they are blocked and served by a producer's push),
process them, and LREM them from the processing list when done; a second
queue is drained by BRPOP consumers. The server process is killed with
SIGKILL while all of this runs, then restarted on the same directory.
Every acknowledged effect must be there: no acknowledged job is lost or
left in neither list, no acknowledged move is undone, no job is twice, and
once the processing list is requeued (what a reliable-queue client does at
start) every acknowledged job gets processed. Real processes, redis-py,
bounded in jobs and time.
"""

from __future__ import annotations

import threading
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

#: Jobs each producer pushes at most (the kill usually comes first).
JOBS_PER_PRODUCER = 300
#: How long the workload runs before the kill, at most.
RUN_SECONDS = 5.0


class Ledger:
    """What clients were told (acknowledged) and what they sent, thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pushed: set[str] = set()        # LPUSH acknowledged
        self.sent: set[str] = set()          # every job a producer sent
        self.moved: set[str] = set()         # BLMOVE answered with the job
        self.lrem_sent: set[str] = set()     # LREM sent for the job (done, maybe applied)
        self.done: set[str] = set()          # LREM acknowledged
        self.popped: set[str] = set()        # BRPOP answered with the job (second queue)

    def add(self, name: str, job: str) -> None:
        with self.lock:
            getattr(self, name).add(job)


def _client(port: int) -> redis.Redis:
    # No retries: a killed server must end the clients at once (redis-py's
    # default retries with backoff would only slow the test down).
    return redis.Redis(port=port, socket_timeout=10, decode_responses=True,
                       retry=Retry(NoBackoff(), 0))


def _producer(port: int, n: int, ledger: Ledger, stop: threading.Event) -> None:
    r = _client(port)
    try:
        for i in range(JOBS_PER_PRODUCER):
            if stop.is_set():
                return
            for queue in ("queue", "queue2"):
                job = f"{queue}-p{n}-{i}"
                ledger.add("sent", job)
                r.lpush(queue, job)
                ledger.add("pushed", job)
            time.sleep(0.001 * (i % 4))
    except (redis.ConnectionError, redis.TimeoutError):
        pass
    finally:
        r.close()


def _worker(port: int, ledger: Ledger, stop: threading.Event) -> None:
    r = _client(port)
    try:
        while not stop.is_set():
            job = r.blmove("queue", "processing", 0.2, "RIGHT", "LEFT")
            if job is None:
                continue
            ledger.add("moved", job)
            ledger.add("lrem_sent", job)
            assert r.lrem("processing", 1, job) == 1, job
            ledger.add("done", job)
    except (redis.ConnectionError, redis.TimeoutError):
        pass
    finally:
        r.close()


def _consumer(port: int, ledger: Ledger, stop: threading.Event) -> None:
    r = _client(port)
    try:
        while not stop.is_set():
            reply = r.brpop(["queue2"], 0.2)
            if reply is not None:
                ledger.add("popped", reply[1])
    except (redis.ConnectionError, redis.TimeoutError):
        pass
    finally:
        r.close()


@pytest.mark.parametrize("kill_after_done", [40, 250])
def test_reliable_queue_survives_kill9(kv_process, kill_after_done):
    server = kv_process()
    ledger = Ledger()
    stop = threading.Event()
    threads = ([threading.Thread(target=_producer, args=(server.port, n, ledger, stop))
                for n in range(3)]
               + [threading.Thread(target=_worker, args=(server.port, ledger, stop))
                  for _ in range(5)]
               + [threading.Thread(target=_consumer, args=(server.port, ledger, stop))
                  for _ in range(2)])
    for t in threads:
        t.start()
    served_blocked = 0
    deadline = time.monotonic() + RUN_SECONDS
    r = _client(server.port)
    try:
        while time.monotonic() < deadline:
            with ledger.lock:
                if len(ledger.done) >= kill_after_done:
                    break
            served_blocked = max(served_blocked, int(r.info("clients")["blocked_clients"]))
            time.sleep(0.01)
    finally:
        r.close()
        server.kill9()    # in the middle: producers pushing, workers blocked and being served
        stop.set()
        for t in threads:
            t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert ledger.done and ledger.popped, "the workload did not get going"
    assert served_blocked >= 1, "no worker was ever blocked"

    again = kv_process(data_dir=server.dir)
    r = _client(again.port)
    try:
        queue = r.lrange("queue", 0, -1)
        processing = r.lrange("processing", 0, -1)
        queue2 = r.lrange("queue2", 0, -1)
        held = queue + processing + queue2
        assert len(held) == len(set(held)), "a job is twice"
        assert set(held) <= ledger.sent, "a job from nowhere"
        in_flight = set()
        for job in ledger.pushed:
            if job.startswith("queue2-"):
                if job not in queue2 and job not in ledger.popped:
                    in_flight.add(job)
            else:
                assert job in queue or job in processing or job in ledger.lrem_sent, \
                    f"acknowledged {job} is in neither list"
        # A BRPOP whose reply the kill cut off may have taken a job for good (its
        # pop durable, its reply never sent): at most one per consumer.
        assert len(in_flight) <= 2, f"acknowledged jobs lost from queue2: {sorted(in_flight)}"
        for job in ledger.moved:
            assert job not in queue, f"acknowledged move of {job} undone"
            assert job in processing or job in ledger.lrem_sent, f"moved {job} lost"
        for job in ledger.done:
            assert job not in queue and job not in processing, f"done {job} came back"
        for job in ledger.popped:
            assert job not in queue2, f"acknowledged pop of {job} undone"

        # A reliable-queue client's restart: requeue what was being processed;
        # every acknowledged job is then done already or waiting in the queue
        # (a job whose LREM was sent and applied was processed).
        while r.lmove("processing", "queue", "RIGHT", "RIGHT") is not None:
            pass
        waiting = set(r.lrange("queue", 0, -1))
        finished = ledger.done | (ledger.lrem_sent - set(held))
        missing = {j for j in ledger.pushed if j.startswith("queue-")} - finished - waiting
        assert not missing, f"acknowledged jobs never to be processed: {sorted(missing)[:5]}"
        # And the restarted server serves blocked workers again.
        worker = _client(again.port)
        try:
            if waiting:
                assert worker.blmove("queue", "processing", 1, "RIGHT", "LEFT") in waiting
            got = []
            t = threading.Thread(target=lambda: got.append(worker.blpop(["fresh"], 10)))
            t.start()
            wait_blocked = time.monotonic() + 10
            while int(r.info("clients")["blocked_clients"]) < 1 and time.monotonic() < wait_blocked:
                time.sleep(0.01)
            r.rpush("fresh", "x")
            t.join(10)
            assert got == [("fresh", "x")], got
        finally:
            worker.close()
    finally:
        r.close()

