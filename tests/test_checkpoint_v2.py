"""Checkpoint v2: kinds and codec payloads, v1 still loading, byte slices, and
the copy-on-write snapshot (writes during a checkpoint never reach it)."""

from __future__ import annotations

import os
import struct
import sys
import tempfile
from unittest import mock

import pytest

from kvserver import checkpoint as ck
from kvserver.checkpoint import (ENTRY, HEADER_SIZE, CheckpointWriter, Snapshot,
                                 encode_entries, load_checkpoint)
from kvserver.errors import CorruptionError
from kvserver.fs import OSFileSystem
from kvserver.keyspace import Database, Keyspace
from kvserver.types import BY_KIND, BY_TYPE, Codec
from simfs import DB_ID, SimFileSystem

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
sys.path.insert(0, FIXTURES)
import make_checkpoint_v1  # noqa: E402

D = "/sim/data"

#: A mutable aggregate kind, registered only inside the tests that use it.
LISTISH = Codec(kind=200, name="listish", pytype=list, encoding=lambda v: "listpack",
                encode=lambda v: b"".join(struct.pack("<Q", len(x)) + x for x in v),
                decode=lambda b: _decode_list(bytes(b)), size=lambda v: sum(8 + len(x) for x in v),
                snapshot_copy=list)


def _decode_list(b: bytes) -> list:
    out, pos = [], 0
    while pos < len(b):
        (n,) = struct.unpack_from("<Q", b, pos)
        out.append(b[pos + 8:pos + 8 + n])
        pos += 8 + n
    return out


@pytest.fixture
def listish():
    with mock.patch.dict(BY_KIND, {LISTISH.kind: LISTISH}), \
            mock.patch.dict(BY_TYPE, {list: LISTISH}):
        yield LISTISH


def load(path_or_ck, databases: int = 16, fs=None) -> list[Database]:
    c = load_checkpoint(fs, path_or_ck) if isinstance(path_or_ck, str) else path_or_ck
    dbs = [Database(i) for i in range(databases)]
    counts = list(c.load_into(dbs, every=3))
    assert counts[-1] == c.entries
    return dbs


def state(ks_or_dbs) -> dict:
    """{db: {key: (value, expire)}} of non-empty databases."""
    dbs = ks_or_dbs.dbs if isinstance(ks_or_dbs, Keyspace) else ks_or_dbs
    return {db.index: {k: (v if type(v) is bytes else list(v), db.expires.get(k))
                       for k, v in db.data.items()} for db in dbs if db.data}


def write_snapshot(snapshot: Snapshot, fs=None, lsn: int = 9, target: int | None = None) -> str:
    fs = fs or SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, lsn)
    for chunk, count in snapshot.slices(target):
        w.write(chunk, count)
    w.commit()
    return fs, w.path


# --- v1 still loads ---------------------------------------------------------------------

def test_v1_fixture_loads():
    path = os.path.join(FIXTURES, make_checkpoint_v1.NAME)
    c = load_checkpoint(OSFileSystem(), path)
    assert (c.version, c.lsn, c.db_id) == (1, make_checkpoint_v1.LSN, make_checkpoint_v1.DB_ID)
    assert c.created_ms == make_checkpoint_v1.CREATED_MS
    dbs = load(c)
    for db, (data, expires) in make_checkpoint_v1.CONTENT.items():
        assert dbs[db].data == data and dbs[db].expires == expires
    assert sum(len(db.data) for db in dbs) == c.entries == 5


def test_v1_fixture_is_what_the_v1_writer_makes():
    """The committed bytes are reproducible by the committed script (kept v1 encoder)."""
    with tempfile.TemporaryDirectory() as tmp:
        with open(make_checkpoint_v1.build(tmp), "rb") as f:
            made = f.read()
    with open(os.path.join(FIXTURES, make_checkpoint_v1.NAME), "rb") as f:
        assert f.read() == made


def test_v1_checkpoint_recovers_through_the_server_path():
    from kvserver.config import Config
    from kvserver.core import Core
    from kvserver.recovery import recover
    fs = SimFileSystem()
    fs.makedirs(D)
    with open(os.path.join(FIXTURES, make_checkpoint_v1.NAME), "rb") as f:
        image = f.read()
    # The WAL would start at LSN 43 with the database id the checkpoint names.
    from simfs import write_wal
    write_wal(fs, D, [[b"SET", b"after", b"v1"]], db_id=make_checkpoint_v1.DB_ID,
              first_lsn=make_checkpoint_v1.LSN + 1)
    f = fs.create(f"{D}/{ck.checkpoint_name(make_checkpoint_v1.LSN)}")
    f.write(image)
    f.sync()
    f.close()
    core = Core(Config(dir=D))
    rec = recover(fs, D, core)
    assert rec.checkpoint_lsn == 42 and rec.last_lsn == 43
    assert core.keyspace.dbs[3].data == {b"x": b"y" * 1000}
    assert core.keyspace.dbs[0].data[b"after"] == b"v1"
    assert core.keyspace.dbs[0].expires == {b"ttl": 4_102_444_800_000}


# --- v2 format ----------------------------------------------------------------------------

def test_v2_entries_have_kind_and_u64_lengths():
    blob = encode_entries(2, {b"key": b"value"}, {b"key": 77}, [b"key"])
    assert ENTRY.size == 27
    assert ENTRY.unpack_from(blob, 0) == (1, 2, 77, 3, 5)
    assert blob[ENTRY.size:] == b"keyvalue"


def test_v2_round_trip_of_another_kind_through_its_codec(listish):
    ks = Keyspace(4)
    ks.dbs[1].store(b"l", [b"a", b"", b"c" * 300])
    ks.dbs[1].set_expire(b"l", 99)
    ks.dbs[1].store(b"s", b"str")
    snap = Snapshot(ks, 9)
    fs, path = write_snapshot(snap)
    snap.close()
    c = load_checkpoint(fs, path)
    assert c.version == 2
    assert state(load(c, 4, fs)) == state(ks)
    # A kind no codec owns is corruption, named with the entry's offset.
    with mock.patch.dict(BY_KIND, {}, clear=True):
        BY_KIND[1] = ck.STRING
        with pytest.raises(CorruptionError, match="unknown kind 200") as info:
            load(load_checkpoint(fs, path), 4)
    assert info.value.offset >= HEADER_SIZE


def test_newer_version_refused():
    fs = SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, 3, version=3)
    w.commit()
    with pytest.raises(CorruptionError, match="unsupported version 3"):
        load_checkpoint(fs, w.path)


# --- slicing by bytes --------------------------------------------------------------------

def test_slices_are_cut_by_bytes_not_keys():
    ks = Keyspace(1)
    db = ks.dbs[0]
    for i in range(1000):
        db.store(b"k%04d" % i, b"v" * 10)           # 27 + 5 + 10 = 42 bytes each
    db.store(b"big", b"x" * 100_000)
    snap = Snapshot(ks, 1)
    sizes = [(len(chunk), n) for chunk, n in snap.slices(4200)]
    snap.close()
    assert sum(n for _, n in sizes) == 1001
    small = [s for s, n in sizes if n > 1]
    assert all(4200 <= s < 4200 + 42 for s in small[:-1])   # ~100 small entries a slice
    assert any(n == 1 and s > 100_000 for s, n in sizes)      # the big value is one slice


def test_slice_size_default_is_module_setting(monkeypatch):
    ks = Keyspace(1)
    for i in range(10):
        ks.dbs[0].store(b"k%d" % i, b"v")
    monkeypatch.setattr(ck, "SLICE_BYTES", 1)
    snap = Snapshot(ks, 1)
    assert [n for _c, n in snap.slices()] == [1] * 10
    snap.close()


# --- the snapshot rule: the state at L, whatever is written after ------------------------

def test_snapshot_holds_state_at_its_lsn_through_every_write_path(listish):
    ks = Keyspace(4, clock=lambda: 1000)
    db0, db1 = ks.dbs[0], ks.dbs[1]
    for i in range(50):
        db0.store(b"k%d" % i, b"v%d" % i)
    db0.set_expire(b"k1", 5000)
    db0.store(b"list", [b"a", b"b"])
    db1.store(b"other", b"o")
    db1.set_expire(b"other", 7000)
    ks.dbs[3].store(b"flushed", b"f")
    expected = state(ks)
    snap = Snapshot(ks, 9)
    assert all(db._hook is not None for db in ks.dbs)
    # Drain a few slices first: writes land both before and after their key is written.
    slices = snap.slices(100)
    taken = [next(slices) for _ in range(3)]
    db0.store(b"k0", b"changed")                    # overwrite
    db0.remove(b"k49")                              # delete
    db0.store(b"new", b"n")                         # insert
    db0.set_expire(b"k2", 1)                        # TTL set
    db0.persist(b"k1")                              # TTL removed
    with ks.mutate(db0, b"list", listish) as value:  # in place
        value.append(b"c")
    with ks.mutate(db0, b"list", listish) as value:  # emptied: deleted
        value.clear()
    ks.dbs[3].clear()                               # FLUSHDB
    ks.dbs[3].store(b"flushed", b"again")
    db1.swap_contents(ks.dbs[2])                    # SWAPDB
    ks.dbs[2].store(b"other", b"after swap")
    ks.dbs[2].remove(b"other")
    assert ks.active_expire_cycle() == 1            # k2 expires for real
    for i in range(10, 40):
        db0.store(b"k%d" % i, b"late")
    fs = SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, 9)
    for chunk, count in taken + list(slices):
        w.write(chunk, count)
    w.commit()
    snap.close()
    assert all(db._hook is None for db in ks.dbs)
    assert state(load(w.path, 4, fs)) == expected
    assert db0.data[b"k0"] == b"changed"             # the live data moved on


def test_snapshot_copies_a_mutable_value_once(listish):
    ks = Keyspace(1)
    ks.dbs[0].store(b"l", [b"a"])
    snap = Snapshot(ks, 1)
    for n in range(3):
        with ks.mutate(ks.dbs[0], b"l", listish) as value:
            value.append(b"%d" % n)
    assert snap.preserved == 1
    assert snap.parts[0].side[b"l"] == ([b"a"], None)
    assert ks.dbs[0].data[b"l"] == [b"a", b"0", b"1", b"2"]
    snap.close()


def test_no_pre_images_after_close():
    ks = Keyspace(1)
    ks.dbs[0].store(b"a", b"1")
    snap = Snapshot(ks, 1)
    snap.close()
    ks.dbs[0].store(b"a", b"2")
    assert snap.preserved == 0 and ks.dbs[0]._hook is None


# --- a forked child writes big checkpoints on the real file system ------------------------

async def _save_with_writes_around(tmp_path, fork_min):
    """A real server (real disk): keys, BGSAVE, writes while it runs, SAVE after."""
    import asyncio
    from kvserver.config import Config
    from kvserver.server import Server
    from simfs import Client
    with mock.patch.object(ck, "FORK_MIN_KEYS", fork_min):
        server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path),
                               appendfsync="always", checkpoint_wal_size=0))
        await server.start()
        forked = []
        real_fork = ck.fork_writer
        with mock.patch.object(ck, "fork_writer",
                               lambda *a: forked.append(1) or real_fork(*a)):
            try:
                c = await Client.connect(server.port)
                for i in range(200):
                    await c.call("SET", f"k{i}", f"v{i}")
                lsn_before = server.writer.applied_lsn
                assert await c.call("BGSAVE")
                for i in range(50):
                    await c.call("SET", f"k{i}", "after")
                    await c.call("DEL", f"k{100 + i}")
                while server.writer._checkpoint_task is not None:
                    await asyncio.sleep(0.01)
                c.close()
            finally:
                await server.stop(False)
    return lsn_before, forked


def test_forked_checkpoint_holds_the_state_at_its_lsn(tmp_path):
    import asyncio
    lsn, forked = asyncio.run(_save_with_writes_around(tmp_path, 0))
    assert forked == [1]
    c = load_checkpoint(OSFileSystem(), os.path.join(str(tmp_path), ck.checkpoint_name(lsn)))
    dbs = load(c)
    assert dbs[0].data == {b"k%d" % i: b"v%d" % i for i in range(200)}
    assert not any(name.endswith(".tmp") for name in os.listdir(tmp_path))


def test_a_forked_checkpoint_is_published_by_the_server_and_listed(tmp_path):
    """The child only writes the .tmp; the server renames it under the WAL lock and
    lists it in the MANIFEST, as it does an in-process checkpoint."""
    import asyncio
    from kvserver.manifest import read_manifest
    lsn, forked = asyncio.run(_save_with_writes_around(tmp_path, 0))
    assert forked == [1]
    manifest = read_manifest(OSFileSystem(), str(tmp_path))
    assert manifest is not None and lsn in manifest.checkpoints


def test_no_forked_checkpoint_appears_once_the_wal_has_failed(tmp_path):
    """The fail-stop latch holds for the forked path too: a child that finished after
    the WAL failed is not published."""
    import asyncio
    from kvserver.config import Config
    from kvserver.errors import StorageError
    from kvserver.server import Server
    from simfs import Client

    real_wait = ck.wait_child

    async def run():
        with mock.patch.object(ck, "FORK_MIN_KEYS", 0):
            server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path),
                                   checkpoint_wal_size=0))
            await server.start()
            wal = server.writer.wal

            def wait_then_fail(pid):
                code = real_wait(pid)
                wal.fail(StorageError("injected: the WAL failed while the child wrote"))
                return code
            try:
                c = await Client.connect(server.port)
                await c.call("SET", "k", "v")
                with mock.patch.object(ck, "wait_child", wait_then_fail):
                    reply = await c.call("SAVE")
                c.close()
            finally:
                await server.stop(False)
            return reply
    reply = asyncio.run(run())
    assert "ERR" in str(reply) or "failed" in str(reply)
    assert not [n for n in os.listdir(tmp_path)
                if n.startswith("checkpoint-") and not n.endswith(".tmp")]


def test_small_keyspaces_are_not_forked(tmp_path):
    import asyncio
    lsn, forked = asyncio.run(_save_with_writes_around(tmp_path, 1000))
    assert forked == []
    c = load_checkpoint(OSFileSystem(), os.path.join(str(tmp_path), ck.checkpoint_name(lsn)))
    assert load(c)[0].data == {b"k%d" % i: b"v%d" % i for i in range(200)}


def test_a_failing_child_reports_the_checkpoint_failed(tmp_path):
    import asyncio
    from kvserver.config import Config
    from kvserver.server import Server
    from simfs import Client

    def broken_finish(self):
        raise OSError(28, "No space left on device")

    async def run():
        with mock.patch.object(ck, "FORK_MIN_KEYS", 0), \
                mock.patch.object(ck.CheckpointWriter, "finish", broken_finish):
            server = Server(Config(port=0, bind="127.0.0.1", dir=str(tmp_path),
                                   checkpoint_wal_size=0))
            await server.start()
            try:
                c = await Client.connect(server.port)
                await c.call("SET", "k", "v")
                reply = await c.call("SAVE")
                status = server.writer.last_checkpoint_status
                c.close()
            finally:
                await server.stop(False)
            return reply, status
    reply, status = asyncio.run(run())
    assert "checkpoint failed" in str(reply) and "status 71" in str(reply)
    assert status == "err"
    assert not [n for n in os.listdir(tmp_path) if n.startswith("checkpoint-")]


def test_a_failed_fork_falls_back_to_the_in_process_snapshot(tmp_path):
    def no_fork():
        raise OSError(12, "Cannot allocate memory")
    with mock.patch.object(ck.os, "fork", no_fork):
        import asyncio
        lsn, forked = asyncio.run(_save_with_writes_around(tmp_path, 0))
    assert forked == [1]  # it was tried
    c = load_checkpoint(OSFileSystem(), os.path.join(str(tmp_path), ck.checkpoint_name(lsn)))
    assert load(c)[0].data == {b"k%d" % i: b"v%d" % i for i in range(200)}


def test_a_huge_sorted_set_is_spread_over_slices_and_kept_as_of_l():
    """One 20k-member zset is encoded over many slices (the loop is not held for
    the whole value) and, changed in place between slices without any write
    hook seeing a new key, still lands in the checkpoint as it was at L."""
    from kvserver.types.zset import ZSET, ZSet
    ks = Keyspace(1)
    db = ks.dbs[0]
    z = ZSet()
    for i in range(20_000):
        z.add(b"member-%06d" % i, float(i % 977))
    db.store(b"big", z)
    db.store(b"small", b"s")
    at_l = list(z.items())
    snap = Snapshot(ks, 9)
    slices = snap.slices(4096)
    taken = [next(slices) for _ in range(3)]
    assert all(len(chunk) < 4096 + 64 * 1024 for chunk, _n in taken)
    with ks.mutate(db, b"big", ZSET) as value:   # in place, mid-encoding
        for i in range(0, 20_000, 3):
            value.discard(b"member-%06d" % i)
        value.add(b"late", -1.0)
    rest = list(slices)
    assert len(taken) + len(rest) > 8            # not one slice for the whole value
    fs = SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, 9)
    for chunk, count in taken + rest:
        w.write(chunk, count)
    w.commit()
    snap.close()
    loaded = load(w.path, 1, fs)[0].data
    assert list(loaded[b"big"].items()) == at_l
    assert loaded[b"small"] == b"s"
