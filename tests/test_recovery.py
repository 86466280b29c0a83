"""Checkpoint format and recovery rules, unit by unit; and ``kvserver check``."""

import os
import subprocess
import sys
import zlib

import pytest

from kvserver.check import main as check_main
from kvserver.checkpoint import (HEADER_SIZE, TRAILER, CheckpointWriter, checkpoint_name,
                                 encode_entries, list_checkpoints, load_checkpoint)
from kvserver.config import Config
from kvserver.core import Core
from kvserver.errors import CorruptionError
from kvserver.recovery import Progress, recover, recover_steps
from kvserver.wal import SEGMENT_HEADER_SIZE, encode_segment_header, list_segments, segment_name
from simfs import (DB_ID, SimFileSystem, dump, make_v1, recover_data, write_checkpoint,
                   write_wal)

D = "/sim/data"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def sets(n: int, start: int = 0) -> list[list[bytes]]:
    return [[b"SET", b"k%d" % i, b"v%d" % i] for i in range(start, start + n)]


# --- checkpoint files ---------------------------------------------------------------

def test_checkpoint_round_trip_with_expiry_and_databases():
    fs = SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, 77)
    data0 = {b"a": b"1", b"b": b"", b"bin\x00\r\n": b"\xff" * 1000}
    w.write(encode_entries(0, data0, {b"a": 1234}, list(data0)), 3)
    w.write(encode_entries(5, {b"x": b"y"}, {}, [b"x"]), 1)
    size = w.commit()
    path = f"{D}/{checkpoint_name(77)}"
    assert fs.files(D) == {checkpoint_name(77): fs.read(path)} and size == len(fs.read(path))
    ck = load_checkpoint(fs, path)
    assert (ck.db_id, ck.lsn, ck.entries) == (DB_ID, 77, 4)
    dbs = loaded(ck, 6)
    assert dbs[0].data == data0 and dbs[0].expires == {b"a": 1234}
    assert dbs[5].data == {b"x": b"y"} and dbs[5].expires == {}
    assert all(not db.data for i, db in enumerate(dbs) if i not in (0, 5))
    with pytest.raises(CorruptionError, match="database 5 but only 5 are configured"):
        loaded(load_checkpoint(fs, path), 5)


def loaded(ck, databases: int) -> list:
    """The databases a checkpoint loads into (through Checkpoint.load_into)."""
    from kvserver.keyspace import Database
    dbs = [Database(i) for i in range(databases)]
    counts = list(ck.load_into(dbs, every=2))
    assert counts[-1] == ck.entries
    return dbs


def test_checkpoint_commit_order_is_tmp_sync_rename_dirsync():
    fs = SimFileSystem(record=True)
    fs.makedirs(D)
    path = write_checkpoint(fs, D, 5, {b"k": b"v"})
    kinds = [k for k, _ in fs.ops]
    assert kinds[-3:] == ["sync", "rename", "sync_dir"]
    assert fs.ops[-2] == ("rename", path) and "write" in kinds[:-3]


def test_empty_checkpoint_is_valid():
    fs = SimFileSystem()
    path = write_checkpoint(fs, D, 0, {})
    assert not loaded(load_checkpoint(fs, path), 1)[0].data


def test_abort_removes_the_tmp_file():
    fs = SimFileSystem()
    fs.makedirs(D)
    w = CheckpointWriter(fs, D, DB_ID, 3)
    w.write(b"partial", 0)
    w.abort()
    assert fs.files(D) == {}


def test_list_checkpoints_orders_by_lsn_and_ignores_tmp():
    fs = SimFileSystem()
    for lsn in (30, 4, 100):
        write_checkpoint(fs, D, lsn, {})
    fs.put(f"{D}/{checkpoint_name(200)}.tmp", b"")
    assert [lsn for lsn, _ in list_checkpoints(fs, D)] == [4, 30, 100]


def _damaged(kind: str, data: bytes) -> tuple[bytes, str, int]:
    """A damaged copy of a checkpoint image: (bytes, expected message, expected offset)."""
    trailer_at = len(data) - TRAILER.size
    if kind == "truncated":
        return data[:-5], "bad trailer", len(data) - 5 - TRAILER.size
    if kind == "too short":
        return data[:HEADER_SIZE], "too short", HEADER_SIZE
    if kind == "header":
        return bytes([data[0] ^ 1]) + data[1:], "bad header", 0
    if kind == "body":
        b = bytearray(data)
        b[HEADER_SIZE + 3] ^= 0x40
        return bytes(b), "body checksum mismatch", HEADER_SIZE
    if kind == "trailer magic":
        return data[:-1] + b"?", "bad trailer", trailer_at
    if kind == "end marker":
        b = bytearray(data)
        b[trailer_at - 1] = 7
        body_crc = zlib.crc32(bytes(b[HEADER_SIZE:trailer_at]))
        body_len, entries, _crc, magic = TRAILER.unpack_from(b, trailer_at)
        b[trailer_at:] = TRAILER.pack(body_len, entries, body_crc, magic)
        return bytes(b), "missing end marker", trailer_at - 1
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["truncated", "too short", "header", "body", "trailer magic",
                                  "end marker"])
def test_load_checkpoint_validates_and_names_file_offset_lsn(kind):
    fs = SimFileSystem()
    path = write_checkpoint(fs, D, 12, {b"k%d" % i: b"v" * i for i in range(20)})
    bad, message, offset = _damaged(kind, fs.read(path))
    fs.put(path, bad)
    with pytest.raises(CorruptionError, match=message) as info:
        load_checkpoint(fs, path)
    assert info.value.path == path and info.value.offset == offset
    # Named from the header once it is trusted, from the file name before.
    assert f"{path} at offset {offset} (LSN 12)" in str(info.value) and info.value.lsn == 12


# --- recovery ----------------------------------------------------------------------

def test_fresh_directory_recovers_empty_with_a_new_database_id():
    fs = SimFileSystem()
    data, rec = recover_data(fs, D)
    assert data == {} and rec.fresh and rec.db_id > 0 and rec.last_lsn == 0


def test_only_tmp_files_count_as_fresh_and_are_removed():
    fs = SimFileSystem()
    fs.makedirs(D)
    fs.put(f"{D}/{segment_name(1)}.tmp", b"x")
    fs.put(f"{D}/{checkpoint_name(9)}.tmp", b"y")
    fs.put(f"{D}/LOCK", b"123\n")
    data, rec = recover_data(fs, D)
    assert rec.fresh and sorted(fs.files(D)) == ["LOCK"]
    assert len(rec.removed_tmp) == 2


def test_wal_replay_restores_every_record():
    fs = SimFileSystem()
    write_wal(fs, D, sets(50) + [[b"INCRBY", b"n", b"5"], [b"APPEND", b"n", b"x"],
                                 [b"DEL", b"k3"]], per_segment=7)
    data, rec = recover_data(fs, D)
    expected = {b"k%d" % i: b"v%d" % i for i in range(50) if i != 3}
    expected[b"n"] = b"5x"
    assert data == expected
    assert (rec.last_lsn, rec.records_replayed, rec.db_id, rec.torn_tail) == (53, 53, DB_ID, None)


def test_checkpoint_then_replay_skips_records_it_covers():
    fs = SimFileSystem()
    cmds = [[b"INCRBY", b"n", b"1"]] * 10
    write_wal(fs, D, cmds, per_segment=4)
    write_checkpoint(fs, D, 6, {b"n": b"6"})
    data, rec = recover_data(fs, D)
    assert data == {b"n": b"10"}
    assert (rec.checkpoint_lsn, rec.records_replayed, rec.last_lsn) == (6, 4, 10)
    # Every segment is handed to the writer (it drops the old ones later).
    assert [lsn for lsn, _ in rec.segments] == [1, 5, 9]


def test_checkpoint_with_empty_wal_after_it():
    fs = SimFileSystem()
    write_wal(fs, D, [], first_lsn=4)
    write_checkpoint(fs, D, 3, {b"a": b"b"})
    data, rec = recover_data(fs, D)
    assert data == {b"a": b"b"} and rec.last_lsn == 3


def test_segment_of_another_database_refuses():
    fs = SimFileSystem()
    write_wal(fs, D, sets(3), per_segment=2)
    segs = list_segments(fs, D)
    other = bytearray(fs.read(segs[1][1]))
    other[:SEGMENT_HEADER_SIZE] = encode_segment_header(DB_ID + 1, 3)
    fs.put(segs[1][1], bytes(other))
    with pytest.raises(CorruptionError, match="database id") as info:
        recover_data(fs, D)
    assert info.value.path == segs[1][1] and info.value.lsn == 3


def test_segment_name_not_matching_its_header_refuses():
    fs = SimFileSystem()
    write_wal(fs, D, sets(3))
    [(_, path)] = list_segments(fs, D)
    body = fs.read(path)[SEGMENT_HEADER_SIZE:]
    fs.put(f"{D}/{segment_name(1)}", encode_segment_header(DB_ID, 2) + body)
    with pytest.raises(CorruptionError, match="does not match its name"):
        recover_data(fs, D)


def test_wal_not_starting_at_one_without_checkpoint_refuses():
    fs = SimFileSystem()
    write_wal(fs, D, sets(3), first_lsn=5)
    with pytest.raises(CorruptionError, match="LSN gap: expected LSN 1") as info:
        recover_data(fs, D)
    assert info.value.lsn == 1


def test_record_that_fails_on_replay_refuses():
    fs = SimFileSystem()
    write_wal(fs, D, [[b"SET", b"k", b"abc"], [b"INCRBY", b"k", b"1"]])
    with pytest.raises(CorruptionError, match="replaying b'INCRBY' failed") as info:
        recover_data(fs, D)
    assert info.value.lsn == 2


def test_records_for_other_databases_replay_there():
    from kvserver.wal import WAL, encode_batch, encode_effect
    fs = SimFileSystem()
    fs.makedirs(D)
    wal = WAL.create(fs, D, DB_ID, 1)
    wal.write(encode_batch(1, [encode_effect(3, [b"SET", b"a", b"3"]),
                               encode_effect(0, [b"SET", b"a", b"0"])]), 2)
    wal.sync()
    core = Core(Config(dir=D))
    recover(fs, D, core)
    assert core.keyspace.dbs[3].data == {b"a": b"3"} and core.keyspace.dbs[0].data == {b"a": b"0"}
    core = Core(Config(dir=D, databases=2))
    with pytest.raises(CorruptionError, match="database 3 but only 2"):
        recover(fs, D, core)


def test_replay_shortcut_for_plain_set_equals_the_command_table():
    """Replay applies plain SET records straight to the dict; every case
    around that shortcut must end exactly as running the commands does."""
    from kvserver.commands import execute
    from kvserver.session import Session
    from kvserver.wal import WAL, encode_batch, encode_effect

    log = [  # (database, argv) as the server logs them
        (0, [b"SET", b"a", b"0"]), (1, [b"FLUSHALL"]), (1, [b"SET", b"after-flush", b"1"]),
        (0, [b"SET", b"a", b"1"]),
        (0, [b"SET", b"k\r\n$3\r\nx", b"v\r\n*1\r\n"]),   # CRLFs inside key and value
        (0, [b"SET", b"", b""]),                              # empty key and value
        (0, [b"SET", b"big", b"x" * 100_000]),
        (0, [b"PEXPIREAT", b"a", b"99999999999999"]), (0, [b"SET", b"a", b"2"]),  # drops TTL
        (0, [b"SET", b"t", b"keeps", b"PXAT", b"99999999999999"]),  # not plain
        (1, [b"SET", b"a", b"db1"]), (0, [b"SET", b"b", b"db0"]),
        (0, [b"SWAPDB", b"0", b"2"]), (0, [b"SET", b"after-swap", b"1"]),
        (2, [b"SET", b"in-2", b"1"]), (2, [b"SET", b"a", b"3"]),
    ]
    fs = SimFileSystem()
    fs.makedirs(D)
    wal = WAL.create(fs, D, DB_ID, 1)
    for lsn, (db, argv) in enumerate(log, 1):
        wal.write(encode_batch(lsn, [encode_effect(db, argv)]), lsn)
    wal.sync()
    wal.close()
    replayed = Core(Config(dir=D))
    recover(fs, D, replayed)

    live = Core(Config(dir=D))
    session = Session(live)
    for db, argv in log:
        session.select(db)
        assert not str(execute(session, argv)).startswith("ERR"), argv
    for mine, theirs in zip(replayed.keyspace.dbs, live.keyspace.dbs):
        assert (mine.data, mine.expires) == (theirs.data, theirs.expires)
    dbs = replayed.keyspace.dbs
    assert dbs[0].data == {b"after-swap": b"1"} and dbs[1].data == {b"after-flush": b"1", b"a": b"db1"}
    assert dbs[2].data[b"k\r\n$3\r\nx"] == b"v\r\n*1\r\n" and dbs[2].data[b""] == b""
    assert dbs[2].data[b"a"] == b"3" and dbs[2].expires == {b"t": 99999999999999}


def test_repair_false_reports_a_torn_tail_without_cutting():
    fs = SimFileSystem()
    [*_, (_, path, offset, length)] = write_wal(fs, D, sets(4))
    fs.put(path, fs.read(path)[:offset + length - 2])
    before = fs.read(path)
    _data, rec = recover_data(fs, D, repair=False)
    assert rec.torn_tail == (path, offset, length - 2) and fs.read(path) == before
    _data, rec = recover_data(fs, D)
    assert len(fs.read(path)) == offset


def test_recover_steps_reports_progress(monkeypatch):
    monkeypatch.setattr("kvserver.recovery.PROGRESS_EVERY", 10)
    fs = SimFileSystem()
    write_wal(fs, D, sets(35))
    steps = list(recover_steps(fs, D, Core(Config(dir=D))))
    assert [s.records for s in steps if isinstance(s, Progress)] == [10, 20, 30]
    assert steps[-1].last_lsn == 35


# --- kvserver check -------------------------------------------------------------------

def _real_dir(tmp_path, fs: SimFileSystem) -> str:
    target = str(tmp_path / "data")
    dump(fs, D, target)
    return target


def test_check_exit_0_on_a_clean_directory(tmp_path, capsys):
    fs = SimFileSystem()
    write_wal(fs, D, sets(10), per_segment=4)
    write_checkpoint(fs, D, 4, {b"k%d" % i: b"v%d" % i for i in range(4)})
    target = _real_dir(tmp_path, fs)
    assert check_main([target]) == 0
    out = capsys.readouterr().out
    assert "RESULT: OK, recovers to LSN 10 (checkpoint LSN 4" in out


def test_check_torn_tail_is_0_and_fix_yes_cuts_it(tmp_path, capsys):
    fs = SimFileSystem()
    [*_, (_, path, offset, length)] = write_wal(fs, D, sets(5))
    fs.put(path, fs.read(path)[:offset + 7])
    target = _real_dir(tmp_path, fs)
    seg = os.path.join(target, os.path.basename(path))
    assert check_main([target]) == 0
    assert "torn tail of 7 bytes" in capsys.readouterr().out
    assert os.path.getsize(seg) == offset + 7          # check alone changes nothing
    assert check_main([target, "--fix", "--yes"]) == 0
    assert os.path.getsize(seg) == offset
    assert check_main([target]) == 0
    assert "RESULT: OK, recovers to LSN 4" in capsys.readouterr().out


def test_check_exit_1_on_corruption_names_file_offset_lsn(tmp_path, capsys):
    fs = SimFileSystem()
    records = write_wal(fs, D, sets(5))
    _lsn, path, offset, _len = records[2]
    fs.flip(path, offset + 20)
    target = _real_dir(tmp_path, fs)
    seg = os.path.join(target, os.path.basename(path))
    before = open(seg, "rb").read()
    assert check_main([target, "--fix", "--yes"]) == 1
    out = capsys.readouterr().out
    assert "recovery would refuse" in out and f"{seg} at offset {offset} (LSN 3)" in out
    assert open(seg, "rb").read() == before            # --fix never touches corruption


def test_check_exit_1_on_missing_directory(tmp_path):
    assert check_main([str(tmp_path / "nope")]) == 1


def test_check_runs_as_kvserver_check_command(tmp_path):
    fs = SimFileSystem()
    write_wal(fs, D, sets(3))
    target = _real_dir(tmp_path, fs)
    ok = subprocess.run([sys.executable, "-m", "kvserver", "check", target], cwd=ROOT,
                        capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    seg = os.path.join(target, segment_name(1))
    with open(seg, "r+b") as f:
        f.seek(SEGMENT_HEADER_SIZE + 5)
        f.write(b"\xee")
    bad = subprocess.run([sys.executable, "-m", "kvserver", "check", target], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "refuse" in bad.stdout


def test_check_names_zeros_ending_a_sealed_segment_as_damage(tmp_path, capsys):
    """Only the open (last) segment is preallocated; zeros ending a sealed one
    are damage, and check must not call them preallocated space."""
    from kvserver.fs import OSFileSystem
    from kvserver.wal import WAL, encode_batch, encode_effect

    d = str(tmp_path)
    wal = WAL.create(OSFileSystem(), d, DB_ID, 1)
    wal.write(encode_batch(1, [encode_effect(0, [b"SET", b"a", b"1"])]), 1)
    wal.sync()
    wal.rotate()
    wal.write(encode_batch(2, [encode_effect(0, [b"SET", b"b", b"2"])]), 2)
    wal.sync()
    wal.close()
    sealed, last = [p for _l, p in list_segments(OSFileSystem(), d)]
    with open(sealed, "ab") as f:
        f.write(bytes(4096))
    assert check_main([d]) == 1
    out = capsys.readouterr().out
    sealed_line = next(line for line in out.splitlines() if sealed in line)
    last_line = next(line for line in out.splitlines() if last in line and "segment" in line)
    assert "preallocated" not in sealed_line and "zeroed bytes at offset" in sealed_line
    assert "preallocated space" in last_line  # the open segment's reserve, as written
    assert "would refuse" in out


def test_check_prints_one_result_line_and_says_what_is_damaged(tmp_path, capsys):
    """Issue 12: one RESULT line for a torn tail; no "LSN 10..9" for a segment
    without records; an unneeded damaged sealed segment is named in RESULT."""
    fs = SimFileSystem()
    [*_, (_, path, offset, _n)] = write_wal(fs, D, sets(9), per_segment=3)
    write_checkpoint(fs, D, 6, {b"k%d" % i: b"v%d" % i for i in range(6)})
    fs.put(path, fs.read(path)[:offset + 7])                      # torn tail
    first = list_segments(fs, D)[0][1]
    fs.flip(first, 40)                                            # not needed (checkpoint 6)
    target = _real_dir(tmp_path, fs)
    capsys.readouterr()
    assert check_main([target]) == 0
    out = capsys.readouterr().out
    results = [line for line in out.splitlines() if line.startswith("RESULT")]
    assert len(results) == 1, out
    assert results[0].startswith("RESULT: OK, recovers to LSN 8")
    assert "torn tail of 7 bytes" in results[0] and "may have been acknowledged" in results[0]
    assert f"damaged but not needed to recover: {os.path.basename(first)}" in results[0]
    # A directory from before the MANIFEST with its empty newest segment.
    old = SimFileSystem()
    write_wal(old, D, sets(9))
    make_v1(old, D, empty_last=True)
    target = str(tmp_path / "old")
    dump(old, D, target)
    assert check_main([target]) == 0
    out = capsys.readouterr().out
    assert "LSN 10..9" not in out and "no record (first LSN 10)" in out


@pytest.mark.parametrize("damage", ["undecodable", "wrong-count", "unknown-command", "db-range"])
def test_a_whole_v3_batch_that_cannot_be_replayed_refuses_and_check_agrees(tmp_path, capsys,
                                                                           damage):
    """A batch whose CRC holds was written whole: if its records do not decode
    (or cannot run), that is corruption, never a torn tail, at start-up and in
    ``kvserver check`` alike, and nothing on disk changes."""
    import struct

    from kvserver.fs import OSFileSystem
    from kvserver.wal import WAL, encode_batch, encode_effect

    def framed(body: bytes, count: int, first: int) -> bytes:
        span = struct.pack("<QQI", len(body), first, count)
        return b"KVB3" + struct.pack("<I", zlib.crc32(body, zlib.crc32(span))) + span + body

    d = str(tmp_path)
    fs = OSFileSystem()
    wal = WAL.create(fs, d, DB_ID, 1)
    wal.write(encode_batch(1, [encode_effect(0, [b"SET", b"a", b"1"])]), 1)
    good = encode_effect(0, [b"SET", b"b", b"2"])
    bad = {"undecodable": framed(b"\x09" + good[1:], 1, 2),
           "wrong-count": framed(good, 2, 2),
           "unknown-command": encode_batch(2, [encode_effect(0, [b"NOSUCH", b"x"])]),
           "db-range": encode_batch(2, [encode_effect(40, [b"SET", b"b", b"2"])])}[damage]
    wal.write(bad, 2)
    wal.sync()
    wal.close()
    before = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}
    with pytest.raises(CorruptionError) as info:
        recover(fs, d, Core(Config(dir=d)))
    assert info.value.lsn == 2 and info.value.path.endswith(segment_name(1))
    assert check_main([d]) == 1
    assert "would refuse" in capsys.readouterr().out
    assert {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)} == before
    if damage == "db-range":  # start-up with --databases 41 would run it: so does check
        assert check_main([d, "--databases", "41"]) == 0
