"""``python -m bench.walv2_proto``: how fast could WAL replay be with another format?

Not kvserver's format: a prototype behind the "what would close it" of the
WAL-replay target in docs/performance.md. It builds 1,000,000 plain SETs
(16-byte keys and values, 25 per group-commit batch) twice, in memory:

* in kvserver's segment format (v1: a CRC per record, RESP payloads), and
  replays them with recovery's own loop (``recovery._apply_segment``);
* in a hypothetical v2 (one CRC per batch, records of type/db/length and a
  binary ``SET`` payload: key length, key, value), replayed by a loop of
  the same style, checking each batch's CRC and LSN range.

and prints records/s for each, best of 3. Bounded: ~1M records, ~15 s.
"""

from __future__ import annotations

import struct
import sys
import time
import zlib

from kvserver.config import Config
from kvserver.core import Core
from kvserver.recovery import _apply_segment
from kvserver.session import Session
from kvserver.wal import encode_commit, encode_record, encode_segment_header

N = 1_000_000
BATCH = 25
V2_BATCH = struct.Struct("<IIQQ")   # crc, body length, first LSN, last LSN
V2_RECORD = struct.Struct("<BHI")   # type, db, payload length
V2_KEYLEN = struct.Struct("<I")
V2_SET = 3


def keys(i: int) -> tuple[bytes, bytes]:
    return b"key:%012d" % i, b"val:%012d" % i


def build_v1() -> bytes:
    parts = [encode_segment_header(1, 1)]
    batch = []
    for i in range(1, N + 1):
        k, v = keys(i)
        batch.append(encode_record(i, 0, [b"SET", k, v]))
        if len(batch) == BATCH:
            batch.append(encode_commit(i - BATCH + 1, i))
            parts.append(b"".join(batch))
            batch = []
    return b"".join(parts)


def build_v2() -> bytes:
    parts = []
    batch = []
    for i in range(1, N + 1):
        k, v = keys(i)
        payload = V2_KEYLEN.pack(len(k)) + k + v
        batch.append(V2_RECORD.pack(V2_SET, 0, len(payload)) + payload)
        if len(batch) == BATCH:
            body = b"".join(batch)
            head = V2_BATCH.pack(0, len(body), i - BATCH + 1, i)
            parts.append(V2_BATCH.pack(zlib.crc32(body, zlib.crc32(head[4:])), len(body),
                                       i - BATCH + 1, i) + body)
            batch = []
    return b"".join(parts)


def replay_v1(data: bytes) -> dict:
    core = Core(Config())
    steps = _apply_segment(Session(core), data, "v1", 1, 1, 1)
    for _ in steps:
        pass
    return core.keyspace.dbs[0].data


def replay_v2(data: bytes) -> dict:
    d: dict = {}
    pos, size, expected = 0, len(data), 1
    unpack_batch, unpack_rec, unpack_klen = (V2_BATCH.unpack_from, V2_RECORD.unpack_from,
                                             V2_KEYLEN.unpack_from)
    crc32 = zlib.crc32
    view = memoryview(data)
    while pos < size:
        crc, length, first, last = unpack_batch(data, pos)
        start = pos + V2_BATCH.size
        end = start + length
        if crc32(view[start:end], crc32(view[pos + 4:start])) != crc or first != expected:
            raise ValueError(f"bad batch at {pos}")
        p = start
        count = 0
        while p < end:
            rtype, _db, rlen = unpack_rec(data, p)
            q = p + 7
            p = q + rlen
            if rtype == V2_SET:
                (klen,) = unpack_klen(data, q)
                kend = q + 4 + klen
                d[data[q + 4:kend]] = data[kend:p]
            count += 1
        if count != last - first + 1:
            raise ValueError(f"batch at {pos} holds {count} records, not {last - first + 1}")
        expected = last + 1
        pos = end
    return d


def main() -> int:
    for name, build, replay in (("v1 (kvserver today)", build_v1, replay_v1),
                                ("v2 prototype", build_v2, replay_v2)):
        data = build()
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            d = replay(data)
            best = min(best, time.perf_counter() - started)
            assert len(d) == N and d[keys(77)[0]] == keys(77)[1]
        print(f"{name:<22} {len(data) / N:5.1f} bytes/record  {best / N * 1e6:5.2f} µs/record  "
              f"{N / best:>10,.0f} records/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
