"""Side-by-side benchmarks: kvserver against a real redis-server.

``python -m bench`` (or ``make bench``) installs what it needs (Debian's
redis-server and redis-tools, through scripts/install-redis-tools.sh), starts
both servers on free loopback ports with matching persistence, drives them
with redis-benchmark in alternating rounds, runs the extra benchmarks, and
writes ``bench/results/latest.md`` (plus ``latest.json``, and a PNG chart when
matplotlib, the ``bench`` extra, is installed). docs/performance.md explains
the method and the results.

Modules, one job each:

* :mod:`bench.procs`   -- servers as child processes (start, wait ready, stop
  by PID), redis-benchmark and ``redis-cli --pipe`` runs, each bounded in
  count and time;
* :mod:`bench.machine` -- what the machine is, and fsync latency on the data disk;
* :mod:`bench.rows`    -- the redis-benchmark rows and the alternating rounds;
* :mod:`bench.extras`  -- origin, group commit, restart, checkpoint stall, memory;
* :mod:`bench.onesync` -- the one-sync-per-write baseline server;
* :mod:`bench.wal_thread` -- kvserver with its WAL synced in a thread (the
  alternative to the default, re-measured by the group-commit benchmark);
* :mod:`bench.report`  -- the table (text, Markdown, JSON, PNG);
* :mod:`bench.cli`     -- options and the order of things;
* :mod:`bench.hotpath` -- µs of server CPU per request, in process;
* :mod:`bench.replay`  -- WAL replay records/s, in process.

Finished experiments, kept runnable, live in :mod:`bench.experiments`
(their figures are in docs/performance.md).
"""
