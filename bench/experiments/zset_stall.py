"""The worst ZADD stall while a checkpoint runs with one big sorted set.

``python -m bench.experiments.zset_stall [members]`` (default 1,000,000):
a fresh kvserver (``--appendfsync everysec``, no automatic checkpoints), one
zset of ``members`` members loaded by ZADDs of 1000 members, then a probe
thread sending ZADDs that change random members' scores back to back while
the main thread sends BGSAVE and waits for it (bench.extras' stall method,
with ZADD instead of SET). The first ZADD after the snapshot starts makes
the checkpoint keep the zset's pre-image (``ZSet.copy``: shared sublists),
and the zset is one checkpoint entry, encoded in one go on the loop while
the keyspace has fewer than checkpoint.FORK_MIN_KEYS keys. Prints the
worst and p99 ZADD latency during the snapshot, and the same before it.
"""

from __future__ import annotations

import random
import sys
import threading
import time

from bench.extras import KV_BIG_FLAGS, _pct, _save_marker, _snapshot_done
from bench.procs import MiniClient, Workdir, free_port, kvserver_server


def run(members: int) -> dict:
    work = Workdir()
    d = work.fresh("zset-stall")
    srv = kvserver_server(free_port(), d, "everysec", KV_BIG_FLAGS)
    try:
        srv.start()
        t = time.perf_counter()
        rnd = random.Random(1)
        with MiniClient(srv.port) as c:
            for base in range(0, members, 1000):
                args = []
                for i in range(base, min(base + 1000, members)):
                    args += (repr(rnd.random() * members), "member:%d" % i)
                c.call("ZADD", "big", *args)
        load_s = time.perf_counter() - t
        samples: list = []
        stop = threading.Event()

        def probe() -> None:
            rnd = random.Random(7)
            with MiniClient(srv.port) as pc:
                while not stop.is_set():
                    i = rnd.randrange(members)
                    t0 = time.perf_counter()
                    pc.call("ZADD", "big", str(rnd.random() * members), "member:%d" % i)
                    samples.append((t0, time.perf_counter() - t0))

        thread = threading.Thread(target=probe, daemon=True)
        with MiniClient(srv.port) as c:
            marker = _save_marker(c.info("persistence"))
            thread.start()
            time.sleep(1.0)
            t_bg = time.perf_counter()
            c.call("BGSAVE")
            while not _snapshot_done(c.info("persistence"), marker):
                time.sleep(0.02)
                if time.perf_counter() - t_bg > 300:
                    raise RuntimeError("snapshot not done after 300 s")
            t_done = time.perf_counter()
            time.sleep(0.5)
            stop.set()
            thread.join(30)
        during = [lat for t0, lat in samples if t0 <= t_done and t0 + lat >= t_bg]
        before = [lat for t0, lat in samples if t0 + lat < t_bg]
        return {"members": members, "load_s": load_s, "snapshot_s": t_done - t_bg,
                "max_ms": max(during) * 1e3, "p99_ms": _pct(during, 0.99) * 1e3,
                "before_max_ms": max(before) * 1e3, "before_p99_ms": _pct(before, 0.99) * 1e3,
                "samples_during": len(during), "rss_mib": srv.rss_bytes() / 2**20}
    finally:
        srv.stop()
        work.cleanup()


def main(argv: list[str]) -> int:
    members = int(argv[0]) if argv else 1_000_000
    res = run(members)
    print(", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in res.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
