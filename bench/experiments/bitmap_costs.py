"""``python -m bench.experiments.bitmap_costs``: what one bitmap or LCS command costs, in process.

Each row runs one command through the command table
(``kvserver.commands.execute`` on a bare Session: no socket, no WAL) on a
value of the given size and reports this thread's CPU time per command
(``time.thread_time``, best of ``--repeat`` runs), so a busy box does not
inflate it. The rows are the costs that grow with a value: the scans
(BITCOUNT, BITPOS, BITOP) over a 64 MiB value, the copy a SETBIT or
BITFIELD write makes of its value (kvserver's strings are immutable bytes;
Redis edits in place), and LCS at the shapes that cost most under Redis's
own limit (its uint32 table must fit in proto-max-bulk-len, 512 MiB:
about 134 million cells). Bounded: a few seconds in all.

    python -m bench.experiments.bitmap_costs
    python -m bench.experiments.bitmap_costs --repeat 5
"""

from __future__ import annotations

import argparse
import os
import random
import time

from kvserver import commands
from kvserver.config import Config
from kvserver.core import Core
from kvserver.session import Session

MIB = 1 << 20


def _values(rng: random.Random) -> dict[bytes, bytes]:
    def bitmap(size: int) -> bytes:  # random, but bit 4000 is clear: SETBIT 1 writes
        value = bytearray(os.urandom(size))
        value[500] = 0
        return bytes(value)
    acgt = bytes(rng.choice(b"ACGT") for _ in range(11584))
    every_byte = bytes(rng.randrange(256) for _ in range(11584))
    return {
        b"rnd64": os.urandom(64 * MIB),
        b"zero64": bytes(64 * MIB - 1) + b"\x01",
        b"ones64": b"\xff" * (64 * MIB),
        b"bm1k": bitmap(1024),
        b"bm1m": bitmap(MIB),
        b"bm16m": bitmap(16 * MIB),
        # LCS: the largest square table under the limit, two alphabets; the
        # most skewed shape with 255 distinct bytes (one mask per byte).
        b"acgt1": acgt, b"acgt2": bytes(reversed(acgt)),
        b"all1": every_byte, b"all2": bytes(reversed(every_byte)),
        b"short255": bytes(range(255)),
        b"long524k": bytes(rng.randrange(256) for _ in range(524_000)),
    }


ROWS = [
    "BITCOUNT rnd64", "BITCOUNT rnd64 5 -5 BIT", "BITPOS zero64 1", "BITPOS ones64 0",
    "BITOP AND dest rnd64 ones64", "BITOP XOR dest rnd64 zero64 ones64", "BITOP NOT dest rnd64",
    "SETBIT bm1k 4000 1", "SETBIT bm1m 4000 1", "SETBIT bm16m 4000 1",
    "BITFIELD bm1m INCRBY u8 4000 1", "GETBIT rnd64 12345",
    "LCS acgt1 acgt2 IDX WITHMATCHLEN", "LCS acgt1 acgt2 LEN",
    "LCS all1 all2 IDX WITHMATCHLEN", "LCS short255 long524k IDX", "LCS long524k short255 IDX",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    session = Session(Core(Config(port=0)))
    values = _values(random.Random(1))
    print(f"{'command':45s} {'ms/command':>10s}")
    for row in ROWS:
        request = row.encode().split()
        best = float("inf")
        for _ in range(args.repeat):
            for key, value in values.items():  # SETBIT/BITFIELD change theirs
                session.db.store(key, value)
            started = time.thread_time()
            reply = commands.execute(session, request)
            best = min(best, time.thread_time() - started)
        assert not isinstance(reply, str), (row, reply)  # an error reply is a str
        print(f"{row:45s} {best * 1000:10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
