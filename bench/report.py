"""The results as a table: Markdown (printed and written), JSON, and a PNG chart.

Every ratio is kvserver/redis (above 1 = kvserver faster or, for times and
memory, kvserver larger; each row says which way its target points).
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
from typing import Any

from .rows import RowResult, median_range

POLICY_TEXT = {
    "always": "always",
    "everysec": "everysec",
    "no": "no (Redis: no persistence)",
}


def _ops(v: float | None) -> str:
    return "—" if v is None or math.isnan(v) else f"{v:,.0f}"


def _mr(values: list[float], fmt: str = "{:,.0f}", suffix: str = "") -> str:
    m = median_range(values)
    if m is None:
        return "—"
    med, lo, hi = m
    return f"{fmt.format(med)}{suffix} ({fmt.format(lo)}–{fmt.format(hi)})"


def _met(ok: bool | None) -> str:
    return "—" if ok is None else ("yes" if ok else "**no**")


def row_verdict(res: RowResult) -> bool | None:
    t = res.row.target
    ratios = res.ratios()
    if t is None or not ratios:
        return None
    ok = statistics.median(ratios) >= t.min_ratio
    if t.max_p50_excess is not None:
        p50 = res.p50_ratios()
        ok = ok and bool(p50) and statistics.median(p50) <= 1 + t.max_p50_excess
    return ok


def rows_table(results: list[RowResult]) -> list[str]:
    lines = [
        "| Row | appendfsync | kvserver ops/s median (min–max) | Redis ops/s median (min–max) "
        "| ratio kv/redis, per round: median (min–max) | server CPU µs/op, kv · redis "
        "| p50 / p99 ms, kv · redis | target | met? |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        row = res.row
        kv = [r.rps for r in res.kv if r is not None]
        rd = [r.rps for r in res.redis if r is not None]
        lat = "—"
        if row.latency:
            def med(runs, attr):
                vals = [getattr(r, attr) for r in runs if r is not None]
                return statistics.median(vals) if vals else float("nan")
            lat = (f"{med(res.kv, 'p50_ms'):.3f} / {med(res.kv, 'p99_ms'):.3f} · "
                   f"{med(res.redis, 'p50_ms'):.3f} / {med(res.redis, 'p99_ms'):.3f}")
        ratio = _mr(res.ratios(), "{:.2f}", "x") if res.ratios() else "—"

        def cpu(runs) -> str:
            vals = [r.cpu_us for r in runs if r is not None and not math.isnan(r.cpu_us)]
            return f"{statistics.median(vals):.1f}" if vals else "—"
        cpu_text = f"{cpu(res.kv)} · {cpu(res.redis)}"
        target = row.target.text() if row.target else "—"
        lines.append(f"| {row.label} | {POLICY_TEXT[row.policy]} | {_mr(kv)} | {_mr(rd)} | "
                     f"{ratio} | {cpu_text} | {lat} | {target} | {_met(row_verdict(res))} |")
    return lines


def extras_table(extras: dict) -> list[str]:
    """One line per extra measurement, each with its Redis counterpart and target."""
    lines = ["| Benchmark | kvserver | Redis / baseline | ratio | target | met? |",
             "|---|---|---|---|---|---|"]
    o = extras.get("origin")
    if o:
        us = o["median_us"]
        lines.append(
            f"| Origin: 1000 SET+GET in process, WAL-backed (fsync no) vs in-memory "
            f"| {us['wal_no']:,.0f} µs | in-memory {us['memory']:,.0f} µs (no Redis counterpart) "
            f"| {o['ratio_wal_no']:.2f}x ({o['ratio_wal_no_range'][0]:.2f}–"
            f"{o['ratio_wal_no_range'][1]:.2f}) | <= 3x | {_met(o['ratio_wal_no'] <= 3)} |")
        lines.append(
            f"| Origin, appendfsync always (each SET waits for its own fdatasync) "
            f"| {us['wal_always']:,.0f} µs | in-memory {us['memory']:,.0f} µs "
            f"| {o['ratio_wal_always']:,.0f}x | (for honesty; the post's ~480x) | — |")
        lines.append(
            f"| Origin's naive scheme in Python (open+append+close per SET, no sync) "
            f"| {us['naive']:,.0f} µs | in-memory {us['memory']:,.0f} µs "
            f"| {o['ratio_naive']:.1f}x | (for scale) | — |")
    g = extras.get("group_commit")
    if g:
        for c, v in g["by_clients"].items():
            sp = _mr(v["speedup"], "{:.1f}", "x") if v["speedup"] else "—"
            vr = _mr(v["vs_redis"], "{:.2f}", "x") if v["vs_redis"] else "—"
            batch = (f", {v['avg_batch_records']:.1f} records/sync"
                     if v.get("avg_batch_records") is not None else "")
            inl = ""
            if v.get("thread") is not None:
                iv = _mr(v["thread_vs_default"], "{:.2f}", "x") if v["thread_vs_default"] else "—"
                inl = (f"; variant with the sync in a thread: "
                       f"{_ops(v['thread'])} ops/s ({iv} of default)")
            lines.append(
                f"| Group commit: durable SET -c {c} | {_ops(v['kvserver'])} ops/s{batch}{inl} "
                f"| one sync per write {_ops(v['onesync'])} ops/s; Redis always "
                f"{_ops(v['redis'])} ops/s | {sp} vs one-sync; {vr} vs Redis | — | — |")
    p = extras.get("pubsub")
    if p and p["kvserver"] and p["redis"]:
        lines.append(
            f"| Pub/sub fan-out: 1 publisher (PUBLISH -P {p['pipeline']}), "
            f"{p['subscribers']} subscribers, messages delivered/s "
            f"| {_mr(p['kvserver'])} | Redis {_mr(p['redis'])} "
            f"| {_mr(p['ratios'], '{:.2f}', 'x')} | — | — |")
    z = extras.get("stall_sizes")
    if z:
        for n, st in sorted((int(k), v) for k, v in z["sizes"].items()):
            lines.append(
                f"| Checkpoint stall at {n:,} keys: worst SET latency during BGSAVE "
                f"| worst {st['max_ms']:.1f} ms, p99 {st['p99_ms']:.2f} ms; barrier "
                f"{st.get('server_snapshot_copy_ms', float('nan')):.1f} ms (snapshot "
                f"{st['snapshot_s']:.2f} s) | — | — | worst <= 50 ms | {_met(st['max_ms'] <= 50)} |")
        for n in z.get("skipped", []):
            lines.append(f"| Checkpoint stall at {n:,} keys | skipped: not enough free memory "
                         f"| — | — | worst <= 50 ms | — |")
    h = extras.get("stall_hashes")
    if h:
        ks, rs = h.get("kvserver"), h.get("redis")
        kv_text = (f"worst {ks['max_ms']:.1f} ms, p99 {ks['p99_ms']:.2f} ms (snapshot "
                   f"{ks['snapshot_s']:.2f} s)" if ks else "failed")
        rd_text = f"worst {rs['max_ms']:.1f} ms, p99 {rs['p99_ms']:.2f} ms" if rs else "failed"
        lines.append(
            f"| Checkpoint stall with {h['keys']:,} small hashes ({h['fields']} fields): worst "
            f"HSET latency during BGSAVE | {kv_text} | {rd_text} | — | worst <= 50 ms "
            f"| {_met(ks['max_ms'] <= 50) if ks else '—'} |")
    b = extras.get("big_data")
    if b:
        lines += _big_lines(b)
    return lines


def _med(items: list[dict] | None, key: str) -> float:
    vals = [i[key] for i in items or [] if key in i]
    return statistics.median(vals) if vals else float("nan")


def _big_lines(b: dict) -> list[str]:
    """Restart, stall and memory lines; a part that failed shows as "failed"."""
    n = b["keys"]
    kv, rd = b["kvserver"], b["redis"]
    lines = []
    if kv.get("restart_wal") or rd.get("restart_aof"):
        load = _med(kv.get("restart_wal"), "load_s")
        rate = _med(kv.get("restart_wal"), "wal_records") / load if load > 0 else float("nan")
        kv_s = _med(kv.get("restart_wal"), "serve_s")
        aof_s = _med(rd.get("restart_aof"), "serve_s")
        lines.append(
            f"| Restart, {n:,} keys in the WAL/AOF only: time to serve (load) "
            f"| {kv_s:.2f} s ({load:.2f} s; {rate:,.0f} records/s) "
            f"| AOF {aof_s:.2f} s ({_med(rd.get('restart_aof'), 'load_s'):.2f} s) "
            f"| {kv_s / aof_s:.1f}x | >= 1,000,000 records/s replayed "
            f"| {_met(None if math.isnan(rate) else rate >= 1_000_000)} |")
    if kv.get("restart_checkpoint") or rd.get("restart_rdb"):
        ck = _med(kv.get("restart_checkpoint"), "serve_s")
        rdb = _med(rd.get("restart_rdb"), "serve_s")
        ratio = ck / rdb
        lines.append(
            f"| Restart, {n:,} keys in a checkpoint (+ short WAL) vs RDB: time to serve (load) "
            f"| {ck:.2f} s ({_med(kv.get('restart_checkpoint'), 'load_s'):.2f} s) "
            f"| RDB {rdb:.2f} s ({_med(rd.get('restart_rdb'), 'load_s'):.2f} s) "
            f"| {ratio:.1f}x | <= 2x Redis RDB load "
            f"| {_met(None if math.isnan(ratio) else ratio <= 2)} |")
    ks, rs = kv.get("stall"), rd.get("stall")
    if ks or rs:
        def st(s: dict | None) -> str:
            if not s:
                return "failed"
            copy = (f"; server log: snapshot copy {s['server_snapshot_copy_ms']:.1f} ms"
                    if "server_snapshot_copy_ms" in s else "")
            return (f"worst {s['max_ms']:.1f} ms, p99 {s['p99_ms']:.2f} ms{copy} "
                    f"(snapshot {s['snapshot_s']:.2f} s; probe {s['probe_rate_before']:,.0f} "
                    f"SETs/s before, {s['probe_rate_during']:,.0f} during)")
        ratio = f"{ks['max_ms'] / rs['max_ms']:.1f}x worst" if ks and rs else "—"
        lines.append(
            f"| Checkpoint stall: SET latency while a {n:,}-key snapshot runs (BGSAVE) "
            f"| {st(ks)} | {st(rs)} | {ratio} | worst <= 50 ms "
            f"| {_met(ks['max_ms'] <= 50 if ks else None)} |")
    if "bytes_per_key" in kv or "bytes_per_key" in rd:
        k = kv.get("bytes_per_key", float("nan"))
        r = rd.get("bytes_per_key", float("nan"))
        ratio = k / r

        def after(res: dict, key: str) -> str:
            rss = _med(res.get(key), "rss_bytes")
            if math.isnan(rss) or "rss_empty" not in res:
                return ""
            return f"; {(rss - res['rss_empty']) / n:.0f} B after a restart from the snapshot"
        lines.append(
            f"| Memory: RSS bytes per key, {n:,} keys (16-byte keys and values), "
            f"(RSS loaded − RSS empty) / keys "
            f"| {k:.0f} B{after(kv, 'restart_checkpoint')} | {r:.0f} B{after(rd, 'restart_rdb')} "
            f"| {ratio:.2f}x | <= 1.4x Redis "
            f"| {_met(None if math.isnan(ratio) else ratio <= 1.4)} |")
    return lines


def machine_lines(m: dict) -> list[str]:
    f = m["fsync"]
    la = m.get("loadavg_start", (0, 0, 0))
    le = m.get("loadavg_end")
    load = f"{la[0]:.2f}" + (f" at start, {le[0]:.2f} at end" if le else " at start")
    return [
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_bytes'] / 2**30:.1f} GiB; "
        f"{m['kernel']}",
        f"- Python {m['python']} ({m['python_impl']}); {m['redis_server']}; {m['redis_benchmark']}",
        f"- Data disk: {m['filesystem']} (data dirs under {m['data_dir']})",
        f"- fsync latency on the data disk (64-byte append + fdatasync, {f['samples']} samples): "
        f"p50 {f['p50_us']:.0f} µs, p99 {f['p99_us']:.0f} µs, mean {f['mean_us']:.0f} µs, "
        f"max {f['max_us']:.0f} µs",
        f"- 1-minute load average: {load}"
        + (f"; at server starts min {lr[0]:.2f}, median {lr[1]:.2f}, max {lr[2]:.2f}"
           if (lr := m.get("loadavg_runs")) else "")
        + " (this harness keeps about one core busy; more is other work on the machine)",
    ]


def markdown(meta: dict, machine: dict, results: list[RowResult], extras: dict,
             errors: list[str]) -> str:
    out = ["# kvserver vs redis-server: latest run", "",
           f"{meta['when']} · `{meta['command']}` · {meta['rounds']} rounds"
           f"{' · QUICK (small -n; not for conclusions)' if meta['quick'] else ''}"
           f" · took {meta['seconds'] / 60:.1f} min", "",
           f"Code: git {meta.get('git', '?')}, kvserver/ source hash "
           f"{meta.get('kvserver_source', '?')}"
           f"{' (CHANGED during the run)' if meta.get('kvserver_source_changed') else ''}.", "",
           "## Machine", ""] + machine_lines(machine) + [""]
    if results:
        out += ["## redis-benchmark rows", "",
                "Each run: fresh data dir, fresh server, one redis-benchmark test "
                "(`--csv`); Redis and kvserver alternate (A, B, A, B, ...). "
                "Ratios are computed round by round. `always`/`everysec`: Redis "
                "`--appendonly yes --appendfsync X` vs kvserver `--appendfsync X`; "
                "`no`: Redis `--save '' --appendonly no` vs kvserver `--appendfsync no`.",
                ""] + rows_table(results) + [""]
    if extras:
        out += ["## Extra benchmarks", ""] + extras_table(extras) + [""]
        g = extras.get("group_commit")
        if g:
            out += ["Group commit method: kvserver cannot turn group commit off, so the "
                    "baseline is `bench/onesync.py`, a small asyncio server built from "
                    "kvserver's parser, command table and WAL record encoding that writes "
                    "and fdatasyncs each record on the event loop before the next command "
                    "runs (N writes = N syncs). The variant is kvserver itself started "
                    "through `bench/wal_thread.py` as `Server(config, sync_in_thread=True)`: "
                    "each batch is written and synced in the WAL thread while the loop goes "
                    "on (the default syncs on the loop, as Redis does in beforeSleep). All "
                    "servers run with fsync-always semantics; redis-benchmark `-t set` at "
                    "each client count.", ""]
        b = extras.get("big_data")
        if b:
            out += [f"Restart/stall/memory method: {b['keys']:,} SETs of 16-byte keys and "
                    "values loaded with `redis-cli --pipe` (both servers at appendfsync "
                    "everysec; kvserver with `--checkpoint-wal-size 0 --checkpoint-on-shutdown "
                    "no`, Redis with `--auto-aof-rewrite-percentage 0`, so the WAL/AOF holds "
                    "exactly the load). Memory = (RSS after load − RSS empty) / keys. Restart = "
                    "spawn to the first correct GET (median of "
                    f"{b['restarts']}), files in the page cache; \"load\" is what the "
                    "server's own log says. Stall = one client sending SETs back to back "
                    "while another sends BGSAVE; worst/p99 of the SETs that overlapped the "
                    "snapshot. The kvserver checkpoint restart also replays the few "
                    "thousand SETs the stall probe logged after the checkpoint.", ""]
    if errors:
        out += ["## Errors and warnings", ""] + [f"- {e}" for e in errors] + [""]
    return "\n".join(out)


def to_json(meta: dict, machine: dict, results: list[RowResult], extras: dict,
            errors: list[str]) -> str:
    def enc(o: Any) -> Any:
        if dataclasses.is_dataclass(o):
            return dataclasses.asdict(o)
        raise TypeError(type(o).__name__)
    rows = []
    for r in results:
        rows.append({"id": r.row.id, "label": r.row.label, "policy": r.row.policy,
                     "row": r.row, "kvserver": r.kv, "redis": r.redis,
                     "ratios": r.ratios(), "met": row_verdict(r), "errors": r.errors})
    return json.dumps({"meta": meta, "machine": machine, "rows": rows, "extras": extras,
                       "errors": errors}, default=enc, indent=1)


def png(path: str, results: list[RowResult]) -> bool | None:
    """A bar chart of median ops/s and per-round ratios.

    Returns False if matplotlib is missing, None if there is nothing to chart.
    """
    results = [r for r in results if r.ratios()]
    if not results:
        return None
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    labels = [f"{r.row.label} [{r.row.policy}]" for r in results]
    kv = [statistics.median([x.rps for x in r.kv if x]) for r in results]
    rd = [statistics.median([x.rps for x in r.redis if x]) for r in results]
    ratio = [statistics.median(r.ratios()) for r in results]
    y = list(range(len(results)))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 0.45 * len(results) + 1.5),
                                   sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    h = 0.4
    ax1.barh([i - h / 2 for i in y], rd, h, label="redis-server", color="#c0392b")
    ax1.barh([i + h / 2 for i in y], kv, h, label="kvserver", color="#2471a3")
    ax1.set_xscale("log")
    ax1.set_xlabel("median ops/s (log scale)")
    ax1.set_yticks(y)
    ax1.set_yticklabels(labels, fontsize=8)
    ax1.invert_yaxis()
    ax1.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=2, fontsize=8, frameon=False)
    colors = []
    for r, q in zip(results, ratio):
        t = r.row.target
        colors.append("#7f8c8d" if t is None else ("#27ae60" if row_verdict(r) else "#e67e22"))
    ax2.barh(y, ratio, 0.6, color=colors)
    for i, r in enumerate(results):
        if r.row.target is not None:
            ax2.plot([r.row.target.min_ratio] * 2, [i - 0.4, i + 0.4], color="black", lw=1.5)
        lo, hi = min(r.ratios()), max(r.ratios())
        ax2.plot([lo, hi], [i, i], color="black", lw=0.8)
    ax2.axvline(1.0, color="#555", lw=0.8, ls="--")
    ax2.set_xlabel("kvserver / redis (median of rounds; bar = min–max; tick = target)")
    fig.suptitle("kvserver vs redis-server (redis-benchmark)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
