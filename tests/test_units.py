"""Execution units (core.begin_unit/end_unit/log): one record, one LSN per unit."""

from __future__ import annotations

import pytest

from kvserver.config import Config
from kvserver.core import Core


class Sink:
    def __init__(self) -> None:
        self.records: list = []

    def append(self, db, argv) -> None:
        self.records.append(("one", db, argv))

    def append_unit(self, effects) -> None:
        self.records.append(("unit", list(effects)))


def make() -> tuple[Core, Sink]:
    core = Core(Config())
    sink = Sink()
    core.log_sink = sink.append
    core.unit_sink = sink.append_unit
    return core, sink


def test_outside_a_unit_each_effect_is_a_unit_of_one():
    core, sink = make()
    core.log(0, [b"SET", b"a", b"1"])
    core.log(2, [b"DEL", b"a"])
    assert sink.records == [("one", 0, [b"SET", b"a", b"1"]), ("one", 2, [b"DEL", b"a"])]


def test_a_unit_collects_and_the_outermost_end_writes_once():
    core, sink = make()
    core.begin_unit()
    core.log(0, [b"SET", b"a", b"1"])
    core.begin_unit()
    core.log(1, [b"SET", b"b", b"2"])
    core.end_unit()
    assert sink.records == []            # the inner end writes nothing
    core.log(0, [b"DEL", b"c"])
    core.end_unit()
    assert sink.records == [("unit", [(0, [b"SET", b"a", b"1"]), (1, [b"SET", b"b", b"2"]),
                                      (0, [b"DEL", b"c"])])]
    assert core.unit_depth == 0


def test_a_unit_of_one_is_a_plain_record_and_an_empty_unit_writes_nothing():
    core, sink = make()
    core.begin_unit()
    core.end_unit()
    core.begin_unit()
    core.log(0, [b"SET", b"a", b"1"])
    core.end_unit()
    assert sink.records == [("one", 0, [b"SET", b"a", b"1"])]


def test_units_never_leak_into_the_next_one_and_unbalanced_end_raises():
    core, sink = make()
    core.begin_unit()
    core.log(0, [b"SET", b"a", b"1"])
    core.log(0, [b"SET", b"b", b"1"])
    core.end_unit()
    core.begin_unit()
    core.log(0, [b"SET", b"c", b"1"])
    core.end_unit()
    assert [r[0] for r in sink.records] == ["unit", "one"]
    with pytest.raises(RuntimeError):
        core.end_unit()


def test_without_a_log_sink_nothing_is_collected():
    core = Core(Config())        # replay: log_sink is None
    core.begin_unit()
    core.log(0, [b"SET", b"a", b"1"])
    core.end_unit()
    assert core._unit == []


@pytest.mark.asyncio
async def test_the_writer_gives_a_unit_one_lsn(tmp_path):
    from kvserver.fs import OSFileSystem
    from kvserver.recovery import recover
    from kvserver.session import Session
    from kvserver.wal import WAL, list_segments, scan_segment
    from kvserver.writer import Writer
    from kvserver.commands import execute

    d = str(tmp_path)
    fs = OSFileSystem()
    core = Core(Config(dir=d, appendfsync="always"))
    wal = WAL.create(fs, d, 1, 1)
    writer = Writer(core, fs, d, wal, 0)
    core.log_sink = writer.append
    core.unit_sink = writer.append_unit
    writer.start()
    s = Session(core)
    execute(s, [b"SET", b"before", b"1"])
    core.begin_unit()
    execute(s, [b"SET", b"a", b"1"])
    execute(s, [b"INCR", b"n"])
    execute(s, [b"DEL", b"before"])
    core.end_unit()
    assert writer.applied_lsn == 2
    await writer.close()
    [(first, path)] = list_segments(fs, d)
    scan = scan_segment(fs.read(path), path, first)
    assert [(r.lsn, len(r.effects)) for r in scan.records] == [(1, 1), (2, 3)]
    replayed = Core(Config(dir=d))
    assert recover(fs, d, replayed).last_lsn == 2
    assert replayed.keyspace.dbs[0].data == {b"a": b"1", b"n": b"1"}
