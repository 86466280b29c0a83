"""``python -m bench``: options, and the order of things.

    python -m bench                 # full run (~10-15 min on 2 cores)
    python -m bench --quick         # smoke run: small -n, 3 rounds, 100k-key extras
    python -m bench --only 'set-c50-*,origin'
    python -m bench --list          # row ids and extras
    python -m bench --profile set-c50-always   # kvserver under cProfile for one row
    python -m bench --profile recovery         # WAL replay of 1M SETs under cProfile

Writes bench/results/latest.md and latest.json (and latest.png when
matplotlib is installed: ``pip install -e '.[bench]'``).
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import os
import pstats
import shlex
import sys
import time

from . import extras as ex
from . import pubsub as ps
from . import machine, report
from .procs import (REPO_ROOT, BenchError, Workdir, ensure_redis_tools, free_port,
                    kvserver_server, pipe_load, redis_benchmark, script_load, settle)
from .rows import ROWS, RUN_TIMEOUT, Row, _preload_file, run_rows

EXTRAS = ("origin", "groupcommit", "restart", "stall", "memory", "stall-sizes", "pubsub",
          "stall-hashes")
DEFAULT_KEYS = 1_000_000
QUICK_KEYS = 100_000


def _select(only: str | None) -> tuple[list[Row], set[str]]:
    """Rows and extras matching ``--only`` (comma-separated globs; 'rows', 'extras')."""
    if not only:
        return list(ROWS), set(EXTRAS)
    pats = [p.strip() for p in only.split(",") if p.strip()]
    rows, extras = [], set()
    for row in ROWS:
        if any(p == "rows" or fnmatch.fnmatch(row.id, p) for p in pats):
            rows.append(row)
    for name in EXTRAS:
        if any(p == "extras" or fnmatch.fnmatch(name, p) for p in pats):
            extras.add(name)
    if not rows and not extras:
        raise SystemExit(f"bench: --only {only!r} matches nothing; see --list")
    return rows, extras


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench", description=(
        "Benchmark kvserver against redis-server side by side (redis-benchmark, "
        "alternating rounds) plus extra benchmarks; writes bench/results/latest.md."))
    p.add_argument("--quick", action="store_true",
                   help="smoke run: small -n, 3 rounds, 100k keys for the big extras")
    p.add_argument("--only", metavar="ROWS",
                   help="comma-separated globs over row ids and extras "
                        "(e.g. 'set-*,get-c50-always,origin'; 'rows', 'extras'); see --list")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds per row and group-commit point (default 5; --quick 3)")
    p.add_argument("--keys", type=int, default=None,
                   help=f"keys for restart/stall/memory (default {DEFAULT_KEYS:,}; "
                        f"--quick {QUICK_KEYS:,})")
    p.add_argument("--restarts", type=int, default=None,
                   help="restarts timed per kind (default 3; --quick 1)")
    p.add_argument("--out", default=str(REPO_ROOT / "bench" / "results"),
                   help="results directory (default bench/results)")
    p.add_argument("--workdir", default=None,
                   help="where data dirs go (default: the system temp dir); this is the "
                        "disk whose fsync latency is reported")
    p.add_argument("--keep", action="store_true", help="keep the data dirs")
    p.add_argument("--list", action="store_true", help="list rows and extras, then exit")
    p.add_argument("--profile", metavar="ROW",
                   help="run ROW once against kvserver under cProfile (or 'recovery': WAL "
                        "replay of --keys SETs, in process) and write profile-ROW.txt to "
                        "the results dir (no table)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        for row in ROWS:
            print(f"{row.id:<26} {row.label} [appendfsync {row.policy}]"
                  + (f"  target {row.target.text()}" if row.target else ""))
        for name in EXTRAS:
            print(f"{name:<26} (extra)")
        return 0
    if args.rounds is None:
        args.rounds = 3 if args.quick else 5
    if args.rounds < 3:
        print(f"bench: note: {args.rounds} round(s); the report wants at least 3", flush=True)
    try:
        ensure_redis_tools()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2
    os.makedirs(args.out, exist_ok=True)
    workdir = Workdir(args.workdir, keep=args.keep)
    try:
        if args.profile:
            return _profile(args, workdir)
        return _run(args, workdir)
    finally:
        workdir.cleanup()


def _log(msg: str) -> None:
    print(msg, flush=True)


def _run(args: argparse.Namespace, workdir: Workdir) -> int:
    started = time.time()
    rows, extras = _select(args.only)
    keys = args.keys or (QUICK_KEYS if args.quick else DEFAULT_KEYS)
    restarts = args.restarts or (1 if args.quick else 3)
    code_start = machine.source_hash()
    _log(f"bench: data dirs under {workdir.base}")
    mach = machine.describe(workdir.base, 100 if args.quick else machine.FSYNC_SAMPLES)
    for line in report.machine_lines(mach):
        _log(line)
    errors: list[str] = []
    results = []
    if rows:
        _log(f"bench: {len(rows)} rows x {args.rounds} rounds x 2 servers")
        results = run_rows(rows, args.rounds, workdir, args.quick, _log)
        for r in results:
            errors += [f"{r.row.id}: {e}" for e in r.errors]
    extra_results: dict = {}
    steps = []
    if "origin" in extras:
        steps.append(("origin", lambda: ex.origin(workdir, args.quick, _log)))
    if "groupcommit" in extras:
        steps.append(("group_commit",
                      lambda: ex.group_commit(workdir, args.rounds, args.quick, _log)))
    if extras & {"restart", "stall", "memory"}:  # one million-key data set serves all three
        steps.append(("big_data", lambda: ex.big_data(workdir, keys, restarts, _log)))
    if "pubsub" in extras:
        steps.append(("pubsub", lambda: ps.fanout(workdir, args.rounds, args.quick, _log)))
    if "stall-sizes" in extras:
        sizes = (QUICK_KEYS,) if args.quick else ex.STALL_SIZES
        steps.append(("stall_sizes", lambda: ex.stall_sizes(workdir, sizes, _log)))
    if "stall-hashes" in extras:
        steps.append(("stall_hashes", lambda: ex.stall_hashes(workdir, keys, _log)))
    for key, fn in steps:
        _log(f"bench: extra: {key}")
        try:
            extra_results[key] = fn()
            errors += [f"{key}: {e}" for e in extra_results[key].get("errors", [])]
        except BenchError as exc:
            errors.append(f"{key}: {exc}")
            _log(f"  {key} FAILED: {exc}")
    mach["loadavg_end"] = os.getloadavg()
    mach["loadavg_runs"] = machine.LoadSampler.summary()
    code_end = machine.source_hash()
    cmd = "python -m bench" + ("" if not sys.argv[1:] else " " + shlex.join(sys.argv[1:]))
    meta = {"when": time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(started)),
            "command": cmd, "rounds": args.rounds, "quick": args.quick,
            "seconds": time.time() - started, "keys": keys,
            "git": machine.git_describe(), "kvserver_source": code_start,
            "kvserver_source_changed": code_end != code_start}
    if code_end != code_start:
        errors.append(f"kvserver/ source changed during the run ({code_start} -> {code_end}): "
                      "rows measured different code")
    md = report.markdown(meta, mach, results, extra_results, errors)
    print()
    print(md)
    with open(os.path.join(args.out, "latest.md"), "w", encoding="utf-8") as f:
        f.write(md + "\n")
    with open(os.path.join(args.out, "latest.json"), "w", encoding="utf-8") as f:
        f.write(report.to_json(meta, mach, results, extra_results, errors) + "\n")
    png = os.path.join(args.out, "latest.png")
    charted = report.png(png, results)
    if charted:
        _log(f"bench: wrote {os.path.relpath(png)}")
    elif charted is False:
        _log("bench: no PNG chart (matplotlib is not installed: pip install -e '.[bench]')")
    _log(f"bench: wrote {os.path.relpath(os.path.join(args.out, 'latest.md'))} "
         f"in {(time.time() - started) / 60:.1f} min")
    return 0


def _profile_recovery(args: argparse.Namespace, workdir: Workdir, top: int) -> int:
    """Recovery of a WAL of N SET records, in process, under cProfile."""
    import cProfile

    from kvserver.config import Config
    from kvserver.core import Core
    from kvserver.fs import OSFileSystem
    from kvserver.recovery import recover

    from .replay import write_log
    keys = args.keys or (QUICK_KEYS if args.quick else DEFAULT_KEYS)
    d = workdir.fresh("profile-recovery")
    write_log(d, keys)  # through the real Writer: a MANIFEST, batches of 100
    t = time.perf_counter()
    recover(OSFileSystem(), d, Core(Config(dir=d)), repair=False)
    plain = time.perf_counter() - t
    prof = cProfile.Profile()
    prof.enable()
    recover(OSFileSystem(), d, Core(Config(dir=d)), repair=False)
    prof.disable()
    buf = io.StringIO()
    buf.write(f"# kvserver recovery of a WAL of {keys:,} SET records (16-byte keys and values, "
              f"100 per batch), "
              f"in process: {plain:.2f} s without the profiler = {keys / plain:,.0f} records/s\n\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    return _write_profile(args, "recovery", buf.getvalue())


def _write_profile(args: argparse.Namespace, name: str, text: str) -> int:
    path = os.path.join(args.out, f"profile-{name}.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    print(text[:6000])
    _log(f"bench: wrote {os.path.relpath(path)}")
    return 0


def _profile(args: argparse.Namespace, workdir: Workdir, top: int = 35) -> int:
    """kvserver under cProfile for one row (or 'recovery'); pstats by tottime and cumulative."""
    if args.profile == "recovery":
        return _profile_recovery(args, workdir, top)
    matches = [r for r in ROWS if fnmatch.fnmatch(r.id, args.profile)]
    if len(matches) != 1:
        raise SystemExit(f"bench: --profile wants exactly one row id, got {len(matches)} "
                         "matches; see --list")
    row = matches[0]
    prof = os.path.join(workdir.base, f"{row.id}.prof")
    port = free_port()
    d = workdir.fresh(f"profile-{row.id}")
    srv = kvserver_server(port, d, row.policy,
                          python=[sys.executable, "-m", "cProfile", "-o", prof, "-m"])
    try:
        srv.start()
        if row.preload:
            path, count = _preload_file(workdir, row, {})
            pipe_load(port, path, count, timeout=RUN_TIMEOUT)
        command = row.command
        if row.script:
            sha = script_load(port, row.script)
            command = tuple(a.replace("{sha}", sha) for a in command)
        settle()
        run = redis_benchmark(port, row.test, row.requests("kvserver", args.quick), row.clients,
                              row.pipeline, row.data_size, row.random_keys, RUN_TIMEOUT,
                              command=command)
    finally:
        srv.stop()
    buf = io.StringIO()
    buf.write(f"# kvserver under cProfile: {row.label} [appendfsync {row.policy}], "
              f"{run.requests} requests: {run.rps:,.0f} ops/s under the profiler "
              f"(cProfile slows Python calls; compare shares, not absolute times)\n\n")
    stats = pstats.Stats(prof, stream=buf)
    stats.strip_dirs().sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)
    return _write_profile(args, row.id, buf.getvalue())
