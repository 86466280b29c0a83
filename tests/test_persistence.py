"""Checkpoint triggers, SAVE/BGSAVE/LASTSAVE, INFO persistence, and -LOADING during start-up.

The crash scenarios live in test_crash_*.py; this file checks the operator-facing
side of durability on real servers.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import redis

from conftest import free_port, raw_exchange, spawn_kvserver, start_threaded, wait_for

#: Bound on waiting for something the server does in the background.
WAIT = 20.0


def checkpoints(config) -> list[str]:
    return sorted(p.name for p in Path(config.dir).glob("checkpoint-*.kvs"))


def segments(config) -> list[str]:
    return sorted(p.name for p in Path(config.dir).glob("wal-*.log"))


def test_save_writes_a_checkpoint_and_lastsave_moves(kv_config):
    server = start_threaded(kv_config)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        before = r.lastsave()
        for i in range(50):
            r.set(f"k{i}", i)
        time.sleep(1.1)  # LASTSAVE has one-second resolution
        assert r.save() is True           # the reply waits for the checkpoint
        info = r.info("persistence")
        assert info["checkpoint_lsn"] == info["applied_lsn"] == 50
        assert info["checkpoints_done"] == 1 and info["checkpoint_in_progress"] == 0
        assert info["last_checkpoint_status"] == "ok"
        assert r.lastsave() > before
        assert checkpoints(kv_config) == [f"checkpoint-{50:020d}.kvs"]
    finally:
        server.stop()
    # The checkpoint alone (plus an empty WAL after it) brings everything back.
    server = start_threaded(kv_config)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        assert r.get("k49") == b"49"
        assert r.info("persistence")["checkpoint_lsn"] == 50
    finally:
        server.stop()


def test_bgsave_and_bgrewriteaof_reply_at_once_and_checkpoint(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.set("a", "1")
    assert raw_exchange(kv.port, b"BGSAVE\r\n") == b"+Background saving started\r\n"
    wait_for(lambda: r.info("persistence")["checkpoints_done"] == 1, "BGSAVE's checkpoint")
    r.set("b", "2")
    assert raw_exchange(kv.port, b"BGREWRITEAOF\r\n") == \
        b"+Background append only file rewriting started\r\n"
    wait_for(lambda: r.info("persistence")["checkpoints_done"] == 2, "BGREWRITEAOF's checkpoint")
    assert r.info("persistence")["checkpoint_lsn"] == 2


def test_checkpoint_by_wal_size_keeps_two_and_drops_old_segments(kv_config):
    server = start_threaded(kv_config, checkpoint_wal_size=20_000)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        value = b"v" * 1000
        for i in range(120):   # ~125 KB of WAL: several automatic checkpoints
            r.set(f"key{i}", value)
        wait_for(lambda: r.info("persistence")["checkpoints_done"] >= 3, "size checkpoints")
        wait_for(lambda: r.info("persistence")["checkpoint_in_progress"] == 0, "the last one")
        assert len(checkpoints(kv_config)) == 2          # the newest and its fallback
        oldest_kept = int(checkpoints(kv_config)[0][len("checkpoint-"):-len(".kvs")])
        first_segment = int(segments(kv_config)[0][len("wal-"):-len(".log")])
        # Only WAL the older kept checkpoint still needs remains on disk.
        assert first_segment <= oldest_kept + 1
        assert first_segment > 1
    finally:
        server.stop()
    server = start_threaded(kv_config)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        assert r.dbsize() == 120 and r.get("key119") == value
    finally:
        server.stop()


def test_checkpoint_interval(kv_config):
    server = start_threaded(kv_config, checkpoint_interval=1)
    try:
        r = redis.Redis(host="127.0.0.1", port=server.port)
        r.set("x", "1")
        wait_for(lambda: r.info("persistence")["checkpoint_lsn"] == 1, "the interval checkpoint")
        done = r.info("persistence")["checkpoints_done"]
        time.sleep(1.5)  # nothing changed: no new checkpoint
        assert r.info("persistence")["checkpoints_done"] == done
    finally:
        server.stop()


def test_info_persistence_fields(kv):
    r = redis.Redis(host="127.0.0.1", port=kv.port)
    r.set("a", "1")
    r.get("a")
    info = r.info("persistence")
    for field in ("loading", "appendfsync", "aof_enabled", "applied_lsn", "written_lsn",
                  "durable_lsn", "wal_size", "wal_segments", "wal_bytes_since_checkpoint",
                  "checkpoint_lsn", "checkpoint_in_progress", "checkpoints_done",
                  "last_checkpoint_time", "last_checkpoint_duration_sec",
                  "last_checkpoint_size", "last_checkpoint_status", "syncs", "sync_batches",
                  "avg_batch_records", "sync_latency_p50_usec", "sync_latency_p99_usec",
                  "aof_last_write_status", "last_error", "rdb_changes_since_last_save",
                  "rdb_bgsave_in_progress", "rdb_last_save_time"):
        assert field in info, field
    assert info["appendfsync"] == "always" and info["loading"] == 0
    assert info["durable_lsn"] == info["applied_lsn"] == 1
    assert info["syncs"] >= 1 and info["sync_latency_p99_usec"] >= info["sync_latency_p50_usec"] > 0
    assert info["aof_last_write_status"] == "ok"


def test_clients_get_loading_while_a_big_wal_replays(tmp_path):
    from kvserver.fs import OSFileSystem
    from kvserver.wal import WAL, encode_batch, encode_effect

    data_dir = str(tmp_path / "data")
    os.makedirs(data_dir)
    wal = WAL.create(OSFileSystem(), data_dir, 4242, 1, segment_bytes=1 << 40)
    records = 600_000
    batch = []
    for lsn in range(1, records + 1):
        batch.append(encode_effect(0, [b"INCR", b"counter"]))
        if len(batch) == 10_000:
            wal.write(encode_batch(lsn - 9_999, batch), lsn)
            batch = []
    wal.sync()
    wal.close()
    port = free_port()
    proc = spawn_kvserver(data_dir, port=port, expect_ready=False)
    try:
        # Connect as soon as the port is open (bounded), then ask for data.
        deadline = time.monotonic() + WAIT
        while True:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline or proc.proc.poll() is not None:
                    raise
                time.sleep(0.01)
        with sock:
            # PING too is refused while loading, as in Redis (health checks
            # must not call a loading server ready); ECHO is answered.
            sock.sendall(b"PING\r\nECHO hi\r\nGET counter\r\n")
            reply = b""
            while reply.count(b"\r\n") < 4:
                chunk = sock.recv(4096)
                assert chunk
                reply += chunk
        loading = b"-LOADING Redis is loading the dataset in memory\r\n"
        assert reply == loading + b"$2\r\nhi\r\n" + loading
        r = redis.Redis(host="127.0.0.1", port=port)
        wait_for(lambda: _loaded(r), "the load to finish", timeout=60)
        assert r.get("counter") == str(records).encode()
    finally:
        proc.terminate(60)
    assert proc.proc.stdout is not None
    log = proc.proc.stdout.read()
    assert "loading: wal" in log and "records" in log and "%" in log
    assert f"{records} WAL records replayed" in log


def _loaded(r) -> bool:
    try:
        return r.info("persistence")["loading"] == 0 and r.get("counter") is not None
    except redis.BusyLoadingError:
        return False


def test_save_in_the_middle_of_a_pipeline_keeps_reply_order(kv):
    # SAVE blocks the client until the checkpoint is done; the requests after
    # it in the same read run afterwards, and the replies stay in order.
    payload = b"SET a 1\r\nSAVE\r\nGET a\r\nINCR n\r\nPING\r\n"
    expected = b"+OK\r\n+OK\r\n$1\r\n1\r\n:1\r\n+PONG\r\n"
    assert raw_exchange(kv.port, payload, expect=len(expected)) == expected
    assert raw_exchange(kv.port, b"GET n\r\n") == b"$1\r\n1\r\n"
