"""Data directories written by older kvservers still load (WAL format versions).

tests/fixtures/v2-batches: version 2 segments (per-record CRC, RESP payloads,
commit markers), written by tests/fixtures/make_wal_fixture.py at c66aae5 (v2 code).
tests/fixtures/v1-kill9: version 1, before the MANIFEST (see its README;
its process-level test is in test_crash_process.py).
"""

from __future__ import annotations

import os
import shutil

from kvserver.check import main as check_main
from kvserver.config import Config
from kvserver.core import Core
from kvserver.fs import OSFileSystem
from kvserver.recovery import recover
from kvserver.wal import list_segments, segment_version

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")

V2_EXPECTED = {
    0: {b"plain": b"final", b"n": b"6", b"ttl": b"t", b"m1": b"a", b"m2": b"b",
        b"bin": b"\x00\r\n$3\r\n*1"},
    3: {b"in3": b"three"},
}


def _copy(name: str, tmp_path) -> str:
    d = str(tmp_path / name)
    shutil.copytree(os.path.join(FIXTURES, name), d, ignore=shutil.ignore_patterns("README.md"))
    return d


def test_v2_fixture_is_version_2():
    fs = OSFileSystem()
    d = os.path.join(FIXTURES, "v2-batches")
    for _first, path in list_segments(fs, d):
        assert segment_version(fs.read(path)) == 2


def test_v2_directory_recovers_every_record_kind(tmp_path):
    d = _copy("v2-batches", tmp_path)
    assert check_main([d]) == 0
    core = Core(Config(dir=d))
    result = recover(OSFileSystem(), d, core)
    assert result.last_lsn == 11 and result.records_replayed == 11
    got = {db.index: dict(db.data) for db in core.keyspace.dbs if db.data}
    assert got == V2_EXPECTED
    assert core.keyspace.dbs[0].expires == {b"ttl": 4102444800000}


def test_v1_directory_recovers(tmp_path):
    d = _copy("v1-kill9", tmp_path)
    core = Core(Config(dir=d))
    recover(OSFileSystem(), d, core)
    data = core.keyspace.dbs[0].data
    assert data == {**{b"k%d" % i: b"v%d" % i for i in range(2, 31)}, b"k1": b"v1-x", b"n": b"5"}


def _serve_and_write(d: str, writes: list[tuple]) -> None:
    import asyncio

    from kvserver.server import Server
    from simfs import Client, sim_config

    async def run() -> None:
        server = Server(sim_config(d), fs=OSFileSystem())
        await server.start()
        client = await Client.connect(server.port)
        for argv in writes:
            assert await client.call(*argv) is not None
        client.close()
        await server.stop(False)
        assert await server.wait_stopped() == 0
    asyncio.run(run())


def test_an_old_directory_gets_new_segments_and_still_loads(tmp_path):
    """A server on a v2 (or v1) directory never appends v3 batches to the old
    segment: its first write starts a new, version-3 segment."""
    for name in ("v2-batches", "v1-kill9"):
        d = _copy(name, tmp_path)
        _serve_and_write(d, [("SET", "after", "1"), ("INCR", "n")])
        fs = OSFileSystem()
        versions = [segment_version(fs.read(p)) for _f, p in list_segments(fs, d)]
        assert versions[-1] == 3 and set(versions[:-1]) <= {1, 2}, (name, versions)
        assert check_main([d]) == 0
        core = Core(Config(dir=d))
        recover(fs, d, core)
        assert core.keyspace.dbs[0].data[b"after"] == b"1", name
        assert core.keyspace.dbs[0].data[b"n"] == (b"7" if name == "v2-batches" else b"6")
