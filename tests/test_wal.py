"""The WAL record and segment format, and the small WAL API (after etcd's wal tests).

Version 3 (batches, binary records, units) is what is written; the tests of
the version 1/2 record format (still read) build version-2 segments."""

import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kvserver.errors import CorruptionError, StorageError
from kvserver.wal import (BATCH_HEADER, BATCH_HEADER_SIZE, MAGIC, MAX_RECORD, RECORD_COMMAND,
                          RECORD_HEADER, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE, WAL,
                          decode_argv, decode_record, encode_argv, encode_batch, encode_commit,
                          encode_effect, encode_record, encode_segment_header, encode_unit,
                          list_segments, parse_segment_header, scan_segment, segment_name)
from kvserver.manifest import Manifest, read_manifest
from simfs import DB_ID, SimFileSystem, write_wal

D = "/sim/data"


def segment(records: list[bytes], first_lsn: int = 1) -> bytes:
    """A version-2 segment (the per-record format, still read)."""
    return encode_segment_header(DB_ID, first_lsn, version=2) + b"".join(records)


def rec(lsn: int, *argv: bytes, db: int = 0) -> bytes:
    return encode_record(lsn, db, list(argv))


def batch(first_lsn: int, *argvs: list[bytes], db: int = 0) -> bytes:
    """A version-3 batch of one-effect records."""
    return encode_batch(first_lsn, [encode_effect(db, list(argv)) for argv in argvs])


def segment3(batches: list[bytes], first_lsn: int = 1) -> bytes:
    return encode_segment_header(DB_ID, first_lsn) + b"".join(batches)


# --- record payload ---------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    [b"SET", b"k", b"v"],
    [b"PING"],
    [b"SET", b"", b""],
    [b"SET", b"bin\r\n\x00\xff", b"$3\r\n*1\r\n"],
    [b"MSET"] + [b"k%d" % i for i in range(100)],
    [b"SET", b"big", b"x" * 100_000],
])
def test_argv_round_trip(argv):
    payload = encode_argv(argv)
    assert payload.startswith(b"*%d\r\n" % len(argv))
    assert decode_argv(payload) == argv
    assert decode_argv(memoryview(payload)) == argv


@pytest.mark.parametrize("payload", [b"", b"+OK\r\n", b"*1\r\n:1\r\n", b"*1\r\n$3\r\nSET\r\nextra",
                                     b"*2\r\n$3\r\nSET\r\n", b"*x\r\n"])
def test_decode_argv_rejects_malformed_payloads(payload):
    with pytest.raises((ValueError, IndexError)):
        decode_argv(payload)


# --- record framing ----------------------------------------------------------------

def test_record_layout_and_crc_covers_everything_after_it():
    data = rec(42, b"SET", b"k", b"v", db=3)
    crc, length, lsn, rtype, db = RECORD_HEADER.unpack_from(data, 0)
    payload = data[RECORD_HEADER_SIZE:]
    assert (length, lsn, rtype, db) == (len(payload), 42, RECORD_COMMAND, 3)
    assert payload == encode_argv([b"SET", b"k", b"v"])
    assert crc == zlib.crc32(data[4:])


def test_segment_header_round_trip_and_damage():
    head = encode_segment_header(DB_ID, 17)
    assert len(head) == SEGMENT_HEADER_SIZE and head.startswith(MAGIC)
    assert parse_segment_header(head, "p") == (DB_ID, 17)
    for bad, what in [(head[:-1], "incomplete"), (b"X" + head[1:], "bad segment header"),
                      (head[:20] + bytes([head[20] ^ 1]) + head[21:], "bad segment header")]:
        with pytest.raises(CorruptionError, match=what) as info:
            parse_segment_header(bad, "/d/wal-x.log")
        assert info.value.path == "/d/wal-x.log" and info.value.offset == 0
    with pytest.raises(CorruptionError, match=r"wal-x.log at offset 0 \(LSN 17\)"):
        scan_segment(head[:10], "/d/wal-x.log", 17)
    v4 = struct.pack("<8sIQQ", MAGIC, 4, DB_ID, 1)
    with pytest.raises(CorruptionError, match="unsupported segment version 4"):
        parse_segment_header(v4 + struct.pack("<I", zlib.crc32(v4)), "p")


def test_scan_reads_every_record_with_offsets():
    records = [rec(i, b"SET", b"k%d" % i, b"v") for i in range(1, 6)]
    data = segment(records)
    scan = scan_segment(data, "p")
    assert [r.lsn for r in scan.records] == [1, 2, 3, 4, 5]
    assert scan.bad is None and scan.good_end == len(data) == scan.size
    offset = SEGMENT_HEADER_SIZE
    for r, raw in zip(scan.records, records):
        assert r.offset == offset and r.effects == [(0, [b"SET", b"k%d" % r.lsn, b"v"])]
        offset += len(raw)


def test_empty_segment_has_no_records():
    scan = scan_segment(segment([], 9), "p")
    assert scan.first_lsn == 9 and scan.records == [] and scan.bad is None


@pytest.mark.parametrize("tail,reason", [
    (b"\x01\x02\x03", "short record header"),
    (bytes(64), "zeroed bytes"),
    (rec(3, b"SET", b"k", b"v")[:-1], "record length runs past the end of the file"),
])
def test_scan_reports_where_a_bad_tail_starts(tail, reason):
    good = segment([rec(1, b"A"), rec(2, b"B")])
    scan = scan_segment(good + tail, "p")
    assert [r.lsn for r in scan.records] == [1, 2]
    assert scan.bad == (len(good), reason)
    assert scan.good_end == len(good) and scan.torn_tail_bytes == len(tail)
    assert not scan.valid_after_bad


def test_record_type_zero_never_parses_even_with_a_good_crc():
    body = struct.pack("<IQBH", 0, 1, 0, 0)
    zero_type = struct.pack("<I", zlib.crc32(body)) + body
    scan = scan_segment(segment([zero_type]), "p")
    assert scan.records == [] and scan.bad[1] == "unknown record type 0"


def test_checksum_mismatch_followed_by_a_later_batch_is_flagged():
    # Batches [1] [2] [3]: each was synced before the next was written, so a
    # valid batch 3 after a damaged batch 2 proves batch 2 had been synced.
    r1, r2, r3 = rec(1, b"A"), rec(2, b"SET", b"k", b"v"), rec(3, b"C")
    bad = bytearray(r2)
    bad[-3] ^= 0x10
    scan = scan_segment(segment([r1, encode_commit(1, 1), bytes(bad), encode_commit(2, 2),
                                 r3, encode_commit(3, 3)]), "p")
    assert scan.bad == (SEGMENT_HEADER_SIZE + len(r1) + 27, "record checksum mismatch")
    assert scan.valid_after_bad


def test_hole_inside_the_last_batch_is_a_torn_tail():
    # One unsynced batch [2, 3, 4]: the disk kept pages out of order, so LSN 3
    # is zeros while 4 and even the batch's marker survived. Nothing of the
    # batch was acknowledged: it is a torn tail, not corruption.
    r1, r2, r3, r4 = rec(1, b"A"), rec(2, b"B"), rec(3, b"SET", b"k", b"v"), rec(4, b"D")
    body = segment([r1, encode_commit(1, 1), r2, bytes(len(r3)), r4, encode_commit(2, 4)])
    scan = scan_segment(body, "p")
    assert [r.lsn for r in scan.records] == [1, 2]
    assert scan.bad[1] == "zeroed bytes"
    assert not scan.valid_after_bad


def test_commit_marker_must_close_the_records_before_it():
    scan = scan_segment(segment([rec(1, b"A"), rec(2, b"B"), encode_commit(1, 3)]), "p")
    assert [r.lsn for r in scan.records] == [1, 2]
    assert scan.bad[1] == "commit marker for LSN 1..3 where the last record was LSN 2"


def test_lsn_out_of_sequence_stops_the_scan():
    scan = scan_segment(segment([rec(1, b"A"), rec(3, b"B")]), "p")
    assert [r.lsn for r in scan.records] == [1]
    assert scan.bad[1] == "LSN 3 where 2 was expected"


def test_length_beyond_max_record_is_a_bad_length():
    header = struct.pack("<IQBH", MAX_RECORD + 1, 1, RECORD_COMMAND, 0)
    scan = scan_segment(segment([struct.pack("<I", 0) + header + b"x" * 32]), "p")
    assert scan.bad[1] == "record length runs past the end of the file"


def test_encode_refuses_a_record_over_the_limit(monkeypatch):
    monkeypatch.setattr("kvserver.wal.MAX_RECORD", 10)
    with pytest.raises(StorageError, match="exceeds"):
        encode_effect(0, [b"MSET", b"k", b"0123456789"])


# --- segments on a (simulated) disk ---------------------------------------------------

def test_list_segments_orders_by_first_lsn_and_ignores_other_files():
    fs = SimFileSystem()
    fs.makedirs(D)
    for name in [segment_name(100), segment_name(9), segment_name(10), "wal-1.log",
                 segment_name(5) + ".tmp", "checkpoint-%020d.kvs" % 3, "LOCK"]:
        fs.put(f"{D}/{name}", b"")
    assert list_segments(fs, D) == [(9, f"{D}/{segment_name(9)}"), (10, f"{D}/{segment_name(10)}"),
                                    (100, f"{D}/{segment_name(100)}")]


def test_create_writes_the_manifest_and_no_segment_until_the_first_batch():
    fs = SimFileSystem()
    fs.makedirs(D)
    wal = WAL.create(fs, D, DB_ID, 1)
    assert sorted(fs.files(D)) == ["MANIFEST"] and wal.current is None and wal.size == 0
    assert read_manifest(fs, D) == Manifest(DB_ID, [], [])


def test_a_segment_is_created_with_its_first_batch_then_listed():
    """tmp (header + batch), sync, rename, dir sync, then the MANIFEST: a
    segment that exists under its name always holds a synced record."""
    fs = SimFileSystem()
    fs.makedirs(D)
    wal = WAL.create(fs, D, DB_ID, 1)
    fs.ops.clear()
    first = batch(1, [b"SET", b"k", b"v"])
    wal.write(first, 1)
    path = f"{D}/{segment_name(1)}"
    tmp = path + ".tmp"
    m, mtmp = f"{D}/MANIFEST", f"{D}/MANIFEST.tmp"
    assert fs.ops[:9] == [("create", tmp), ("write", tmp), ("sync", tmp), ("rename", path),
                          ("sync_dir", D), ("create", mtmp), ("write", mtmp), ("sync", mtmp),
                          ("rename", m)]
    assert fs.ops[9] == ("sync_dir", D)
    assert fs.files(D)[segment_name(1)] == encode_segment_header(DB_ID, 1) + first
    assert read_manifest(fs, D) == Manifest(DB_ID, [1], [])
    assert wal.size == SEGMENT_HEADER_SIZE + len(first) and wal.segments == [(1, path)]


def test_create_replaces_a_leftover_tmp():
    fs = SimFileSystem()
    fs.makedirs(D)
    fs.put(f"{D}/{segment_name(1)}.tmp", b"half a header")
    wal = WAL.create(fs, D, DB_ID, 1)
    wal.write(batch(1, [b"SET", b"k", b"v"]), 1)
    assert sorted(fs.files(D)) == ["MANIFEST", segment_name(1)]


def test_write_sync_and_open_continues_at_the_end():
    fs = SimFileSystem()
    write_wal(fs, D, [[b"SET", b"a", b"1"], [b"SET", b"b", b"2"]])
    wal = WAL.open(fs, D, DB_ID, list_segments(fs, D), 3)
    before = wal.size
    wal.write(batch(3, [b"SET", b"c", b"3"]), 3)
    wal.sync()
    assert wal.size > before
    scan = scan_segment(fs.read(f"{D}/{segment_name(1)}"), "p")
    assert [r.lsn for r in scan.records] == [1, 2, 3] and scan.bad is None
    assert fs.image().inodes[fs.image().entries[f"{D}/{segment_name(1)}"]][1] == ()  # all synced


def test_rotate_seals_and_the_next_write_starts_the_next_segment():
    fs = SimFileSystem()
    fs.makedirs(D)
    wal = WAL.create(fs, D, DB_ID, 1, segment_bytes=SEGMENT_HEADER_SIZE + 10)
    assert not wal.needs_rotation()
    wal.write(batch(1, [b"SET", b"k", b"v"]), 1)
    old = wal.current
    assert wal.needs_rotation()
    wal.sync()
    wal.rotate()
    assert old.closed and wal.current is None and not wal.needs_rotation()
    assert [lsn for lsn, _ in wal.segments] == [1]
    wal.write(batch(2, [b"SET", b"k", b"w"]), 2)
    assert [lsn for lsn, _ in wal.segments] == [1, 2]
    assert list_segments(fs, D) == wal.segments
    assert parse_segment_header(fs.read(wal.segments[1][1]), "p") == (DB_ID, 2)
    assert read_manifest(fs, D).segments == [1, 2]


def test_remove_segments_before_drops_only_fully_covered_sealed_segments():
    fs = SimFileSystem()
    write_wal(fs, D, [[b"SET", b"k", b"%d" % i] for i in range(1, 10)], per_segment=3)
    segs = list_segments(fs, D)
    assert [lsn for lsn, _ in segs] == [1, 4, 7]
    wal = WAL.open(fs, D, DB_ID, segs, 10)
    assert wal.remove_segments_before(3) == []        # LSN 3 is not below 3
    assert wal.remove_segments_before(4) == [segs[0][1]]
    assert fs.ops[-1] == ("sync_dir", D)
    # The MANIFEST stopped listing it before it went.
    assert fs.ops.index(("rename", f"{D}/MANIFEST")) < fs.ops.index(("unlink", segs[0][1]))
    assert wal.remove_segments_before(100) == [segs[1][1]]  # never the current segment
    assert list_segments(fs, D) == [segs[2]] == wal.segments
    assert read_manifest(fs, D).segments == [7]


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.binary(max_size=40), min_size=1, max_size=8), data=st.data())
def test_any_cut_or_zero_fill_of_the_tail_reads_the_complete_prefix(values, data):
    records = [rec(i + 1, b"SET", b"k", v) for i, v in enumerate(values)]
    whole = segment(records)
    cut = data.draw(st.integers(SEGMENT_HEADER_SIZE, len(whole)))
    zeros = data.draw(st.integers(0, 64))
    scan = scan_segment(whole[:cut] + bytes(zeros), "p")
    complete, end = 0, SEGMENT_HEADER_SIZE
    while complete < len(records) and end + len(records[complete]) <= cut:
        end += len(records[complete])
        complete += 1
    assert [r.lsn for r in scan.records] == list(range(1, complete + 1))
    assert scan.good_end == end and not scan.valid_after_bad
    assert (scan.bad is None) == (end == cut and zeros == 0)


# --- preallocation on the real file system -----------------------------------------

def test_open_segment_is_preallocated_and_recovery_takes_the_zeros_as_its_end(tmp_path):
    """The open segment is allocated ahead of its writes (a sync then need not
    commit a new file size). Its zeros are the end of the log, not a torn
    tail; the WAL reopens at the last record; rotation trims the sealed one."""
    import os

    from kvserver.core import Core
    from kvserver.config import Config
    from kvserver.fs import OSFileSystem
    from kvserver.recovery import recover
    from kvserver.wal import PREALLOCATE_BYTES

    fs, d = OSFileSystem(), str(tmp_path)
    wal = WAL.create(fs, d, DB_ID, 1)
    wal.write(batch(1, [b"SET", b"a", b"1"]), 1)
    path = wal.current.path
    wal.sync()
    end = wal.size
    if os.path.getsize(path) == end:
        pytest.skip("this file system cannot preallocate (posix_fallocate failed)")
    assert os.path.getsize(path) == PREALLOCATE_BYTES
    wal.close()  # as after a crash or a clean stop: the zeros stay

    core = Core(Config(dir=d))
    result = recover(fs, d, core)
    assert result.torn_tail is None and result.zero_tail == (path, end, PREALLOCATE_BYTES - end)
    assert os.path.getsize(path) == end      # trimmed; the WAL reserves anew on open
    assert core.keyspace.dbs[0].data == {b"a": b"1"}

    wal = WAL.open(fs, d, DB_ID, result.segments, 2)
    assert wal.size == end and os.path.getsize(path) == PREALLOCATE_BYTES
    # A batch bigger than the reserve grows it in whole steps.
    big = b"".join(batch(2, [b"SET", b"b", b"x" * PREALLOCATE_BYTES]))
    wal.write(big, 2)
    wal.sync()
    assert os.path.getsize(path) == 2 * PREALLOCATE_BYTES
    wal.rotate()
    assert os.path.getsize(path) == end + len(big)  # sealed: no zeros left
    wal.write(batch(3, [b"SET", b"c", b"3"]), 3)
    wal.sync()
    wal.close()
    core = Core(Config(dir=d))
    result = recover(fs, d, core)
    assert result.last_lsn == 3 and result.torn_tail is None
    assert sorted(core.keyspace.dbs[0].data) == [b"a", b"b", b"c"]


# --- version 3: batches, binary records, units -------------------------------------------

EFFECTS = [
    (0, [b"SET", b"k", b"v"]),
    (3, [b"SET", b"", b""]),
    (1, [b"SET", b"bin\r\n\x00\xff", b"$3\r\n*1\r\n"]),
    (0, [b"DEL", b"k"]),
    (0, [b"DEL", b"a", b"b"]),                       # not the one-key form: generic
    (2, [b"SET", b"k", b"v", b"PXAT", b"99"]),        # not plain: generic
    (0, [b"FLUSHALL"]),
    (0, [b"MSET"] + [b"k%d" % i for i in range(100)]),
    (0, [b"SET", b"big", b"x" * 100_000]),
    (65535, [b"set", b"lower", b"case"]),            # not the canonical name: generic
]


@pytest.mark.parametrize("db,argv", EFFECTS)
def test_effect_round_trip(db, argv):
    data = encode_effect(db, argv)
    assert decode_record(data, 0) == ([(db, argv)], len(data))


def test_compact_forms_for_set_and_del():
    assert encode_effect(0, [b"SET", b"key", b"val"])[0] == 1
    assert len(encode_effect(0, [b"SET", b"key", b"val"])) == 11 + 6
    assert encode_effect(0, [b"DEL", b"key"])[0] == 2
    assert encode_effect(0, [b"INCRBY", b"n", b"1"])[0] == 3


def test_unit_round_trip_is_one_record():
    data = encode_unit(EFFECTS)
    assert decode_record(data, 0) == (EFFECTS, len(data))
    seg = segment3([encode_batch(1, [encode_effect(0, [b"SET", b"a", b"1"]), data,
                                     encode_effect(0, [b"DEL", b"a"])])])
    scan = scan_segment(seg, "p")
    assert [r.lsn for r in scan.records] == [1, 2, 3] and scan.records[1].effects == EFFECTS


def test_batch_layout_one_crc_over_everything_after_it():
    data = batch(7, [b"SET", b"a", b"1"], [b"DEL", b"a"])
    magic, crc, length, first, count = BATCH_HEADER.unpack_from(data, 0)
    assert data[:4] == b"KVB3" and (length, first, count) == (len(data) - BATCH_HEADER_SIZE, 7, 2)
    assert crc == zlib.crc32(data[8:])


@pytest.mark.parametrize("tail,reason", [
    (b"KVB", "short batch header"),
    (bytes(64), "zeroed bytes"),
    (batch(3, [b"SET", b"k", b"v"])[:-1], "batch length runs past the end of the file"),
    (b"XXXX" + bytes(60), "bad batch magic"),
])
def test_v3_scan_reports_where_a_bad_tail_starts(tail, reason):
    good = segment3([batch(1, [b"A"]), batch(2, [b"B"])])
    scan = scan_segment(good + tail, "p")
    assert [r.lsn for r in scan.records] == [1, 2]
    assert scan.bad == (len(good), reason)
    assert scan.good_end == len(good) and scan.torn_tail_bytes == len(tail)
    assert not scan.valid_after_bad


def test_v3_checksum_mismatch_followed_by_a_later_batch_is_flagged():
    b1, b2, b3 = batch(1, [b"A"]), batch(2, [b"SET", b"k", b"v"], [b"B"]), batch(4, [b"C"])
    bad = bytearray(b2)
    bad[-3] ^= 0x10
    scan = scan_segment(segment3([b1, bytes(bad), b3]), "p")
    assert scan.bad == (SEGMENT_HEADER_SIZE + len(b1), "batch checksum mismatch")
    assert scan.valid_after_bad and scan.last_lsn == 1
    # The same damage in the last batch is a torn tail: nothing after it.
    scan = scan_segment(segment3([b1, bytes(bad)]), "p")
    assert scan.bad[1] == "batch checksum mismatch" and not scan.valid_after_bad


def test_v3_whole_batch_with_the_wrong_lsn_stops_the_scan():
    scan = scan_segment(segment3([batch(1, [b"A"]), batch(3, [b"B"])]), "p")
    assert [r.lsn for r in scan.records] == [1]
    assert scan.bad[1] == "LSN 3 where 2 was expected"


def test_v3_whole_batch_that_does_not_decode_is_corruption():
    import struct as st
    for body, count in [(b"\x09junk", 1),                                  # unknown kind
                        (encode_effect(0, [b"SET", b"k", b"v"])[:-1], 1),  # short record
                        (encode_effect(0, [b"SET", b"k", b"v"]), 2)]:     # count too high
        span = st.pack("<QQI", len(body), 1, count)
        data = b"KVB3" + st.pack("<I", zlib.crc32(body, zlib.crc32(span))) + span + body
        with pytest.raises(CorruptionError, match="wal: (undecodable record|batch of)"):
            scan_segment(segment3([data]), "/d/wal-x.log")


@settings(max_examples=150, deadline=None)
@given(units=st.lists(st.lists(st.binary(max_size=40), min_size=1, max_size=4), min_size=1,
                      max_size=8), per_batch=st.integers(1, 3), data=st.data())
def test_v3_any_cut_or_zero_fill_keeps_whole_batches_only(units, per_batch, data):
    """Units of several effects, several units per batch: a cut anywhere keeps
    exactly the batches that are whole, so never a part of a unit."""
    records = [encode_unit([(0, [b"SET", b"k%d" % j, v]) for j, v in enumerate(vals)])
               if len(vals) > 1 else encode_effect(0, [b"SET", b"k", vals[0]]) for vals in units]
    batches, lsn = [], 1
    for i in range(0, len(records), per_batch):
        batches.append(encode_batch(lsn, records[i:i + per_batch]))
        lsn += len(records[i:i + per_batch])
    whole = segment3(batches)
    cut = data.draw(st.integers(SEGMENT_HEADER_SIZE, len(whole)))
    zeros = data.draw(st.integers(0, 64))
    scan = scan_segment(whole[:cut] + bytes(zeros), "p")
    kept, end = 0, SEGMENT_HEADER_SIZE
    for b in batches:
        if end + len(b) > cut:
            break
        end += len(b)
        kept += 1
    lsns = sum(len(records[i:i + per_batch]) for i in range(0, kept * per_batch, per_batch))
    assert [r.lsn for r in scan.records] == list(range(1, lsns + 1))
    for r in scan.records:
        assert len(r.effects) == len(units[r.lsn - 1])
    assert scan.good_end == end and not scan.valid_after_bad
    assert (scan.bad is None) == (end == cut and zeros == 0)
