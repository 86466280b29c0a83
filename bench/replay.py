"""``python -m bench.replay [N]``: WAL replay speed, in process (the focused measurement).

Writes N (default 1,000,000) plain ``SET key value`` records (16-byte keys
and values, as ``make bench``'s restart row) through the real Writer under
``appendfsync no``, 100 records per group-commit batch, then times
``recovery.recover`` into a fresh keyspace, best of 3, and prints records/s.
Only public APIs (Writer, WAL, recover), so the same script measures any
version of the format. Bounded: ~1M records, ~20 s.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
import time

from kvserver.config import Config
from kvserver.core import Core
from kvserver.fs import OSFileSystem
from kvserver.recovery import recover
from kvserver.wal import WAL
from kvserver.writer import Writer

from .procs import key16, value16

BATCH = 100


async def _write(d: str, n: int) -> None:
    fs = OSFileSystem()
    core = Core(Config(dir=d, appendfsync="no", checkpoint_wal_size=0))  # no checkpoint
    wal = WAL.create(fs, d, 1, 1, segment_bytes=1 << 40)
    writer = Writer(core, fs, d, wal, 0)
    writer.start()
    for start in range(0, n, BATCH):
        for i in range(start, min(n, start + BATCH)):
            writer.append(0, [b"SET", key16(i), value16(i)])
        while writer.written_lsn < writer.applied_lsn:
            await asyncio.sleep(0)
    await writer.close()


def write_log(d: str, n: int) -> None:
    """A data directory holding a WAL of ``n`` SET records (also --profile recovery's)."""
    asyncio.run(_write(d, n))


def main(argv: list[str]) -> int:
    n = int(argv[0]) if argv else 1_000_000
    d = tempfile.mkdtemp(prefix="kvreplay-")
    try:
        write_log(d, n)
        runs = []
        for _ in range(3):
            core = Core(Config(dir=d))
            t = time.perf_counter()
            result = recover(OSFileSystem(), d, core, repair=False)
            runs.append(time.perf_counter() - t)
            assert result.records_replayed == n and len(core.keyspace.dbs[0].data) == n
            del core
        best = min(runs)
        print(f"replay of {n:,} SET records: {best:.3f} s = {n / best:,.0f} records/s "
              f"(best of 3, in process; runs {', '.join(f'{r:.3f}' for r in runs)} s)")
    finally:
        shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
