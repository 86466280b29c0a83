"""``kvserver check DIR``: verify checkpoints and WAL segments, like redis-check-aof.

Exit code 0 when the directory would recover cleanly (a torn tail counts as
clean: start-up cuts it), 1 when recovery would refuse. ``--fix`` cuts a
torn tail after asking (or at once with ``--yes``); it never "repairs"
corruption of acknowledged data, which needs a human decision.
"""

from __future__ import annotations

import argparse
import os
import sys

from .checkpoint import list_checkpoints, load_checkpoint
from .commands import lookup
from .config import DEFAULT_DATABASES
from .errors import CorruptionError
from .fs import OSFileSystem
from .recovery import recover
from .wal import list_segments, parse_segment_header, read_segment, run_reader


class _Unreplayable(Exception):
    pass


def _first_unreplayable(fs: OSFileSystem, segments: list, after_lsn: int,
                        databases: int = DEFAULT_DATABASES) -> str | None:
    """Why replay would refuse the first record past ``after_lsn`` it cannot run, or None.

    Recovery without a keyspace (what check runs) checks framing, CRCs,
    LSNs and that records decode; replay also needs every effect to name a
    real command with a fitting number of arguments (rename-command aliases
    never qualify) in one of the ``databases`` the server is configured with.
    The same reader (wal.read_segment) hands the effects over.
    """
    for first, path in segments:
        def check_unit(lsn: int, offset: int, effects: list) -> None:
            for db, argv in effects:
                if db >= databases:
                    raise _Unreplayable(
                        f"record for database {db} but only {databases} are configured "
                        f"(start with --databases {db + 1} or more; check --databases "
                        f"N says the same): {path} at offset {offset} (LSN {lsn})")
                cmd = lookup(argv[0]) if argv else None
                if cmd is None or not cmd.arity_ok(len(argv)):
                    what = "unknown command" if cmd is None else "wrong number of arguments for"
                    name = argv[0].decode("utf-8", "replace") if argv else ""
                    raise _Unreplayable(f"wal: {what} '{name}': {path} at offset {offset} "
                                        f"(LSN {lsn})")
        data = fs.read(path)
        try:
            parse_segment_header(data, path, first)
        except CorruptionError:
            continue  # reported above
        try:
            run_reader(read_segment(data, path, first, skip_below=after_lsn + 1,
                                    on_unit=check_unit))
        except CorruptionError as exc:
            return str(exc)
        except _Unreplayable as exc:
            return str(exc)
    return None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kvserver check",
                                     description="Verify a kvserver data directory.")
    parser.add_argument("dir")
    parser.add_argument("--fix", action="store_true", help="cut a torn WAL tail")
    parser.add_argument("--yes", action="store_true", help="do not ask before --fix")
    parser.add_argument("--databases", type=int, default=DEFAULT_DATABASES,
                        help="the server's --databases (records must fit them; default "
                             f"{DEFAULT_DATABASES})")
    args = parser.parse_args(argv)
    fs = OSFileSystem()
    if not os.path.isdir(args.dir):
        print(f"{args.dir}: not a directory", file=sys.stderr)
        return 1
    damaged: list[str] = []  # files with damage that recovery may not need
    for lsn, path in list_checkpoints(fs, args.dir):
        try:
            ck = load_checkpoint(fs, path)
            print(f"checkpoint {path}: OK, LSN {ck.lsn}, {ck.entries} keys")
        except CorruptionError as exc:
            print(f"checkpoint {path}: BAD: {exc}")
            damaged.append(os.path.basename(path))
    segments = list_segments(fs, args.dir)
    for first, path in segments:
        try:
            scan = run_reader(read_segment(fs.read(path), path, first))
        except CorruptionError as exc:
            print(f"segment {path}: BAD: {exc}")
            damaged.append(os.path.basename(path))
            continue
        last = scan.last_lsn
        count = last - first + 1
        status = "OK"
        if scan.bad is not None and scan.zero_tail and path == segments[-1][1]:
            # Only the open (last) segment is preallocated; rotation trims the rest.
            status = f"OK, then {scan.torn_tail_bytes} zero bytes (preallocated space)"
        elif scan.bad is not None:
            offset, reason = scan.bad
            status = (f"{reason} at offset {offset} ({scan.torn_tail_bytes} bytes"
                      f"{', a later batch follows: corruption' if scan.valid_after_bad else ''})")
            if path != segments[-1][1] or scan.valid_after_bad:
                damaged.append(os.path.basename(path))
        span = f"LSN {first}..{last}" if count else f"no record (first LSN {first})"
        print(f"segment {path}: {span}, {count} records: {status}")
    try:
        result = recover(fs, args.dir, None, repair=False)
    except CorruptionError as exc:
        print(f"RESULT: recovery would refuse to start: {exc}")
        return 1
    if result.fresh:
        print("RESULT: empty data directory" if not result.manifest else
              "RESULT: OK, an empty database (the MANIFEST lists no file)")
        return 0
    refused = _first_unreplayable(fs, segments, result.checkpoint_lsn, args.databases)
    if refused is not None:
        print(f"RESULT: recovery would refuse to start: {refused}")
        return 1
    notes = []
    if result.torn_tail is not None:
        path, offset, size = result.torn_tail
        notes.append(f"start-up will cut a torn tail of {size} bytes from {path} at offset "
                     f"{offset} (after LSN {result.torn_tail_lsn}: an unfinished write, or "
                     "damage to the last synced batch, which may have been acknowledged)")
    if damaged:
        notes.append(f"damaged but not needed to recover: {', '.join(damaged)} (recovery "
                     "skips them; kept only as a fallback)")
    if not result.manifest:
        notes.append("no MANIFEST yet (a directory from an older kvserver; start-up writes it)")
    print(f"RESULT: OK, recovers to LSN {result.last_lsn} (checkpoint LSN "
          f"{result.checkpoint_lsn}, {result.records_replayed} WAL records after it)"
          + "".join(f"; {n}" for n in notes))
    if result.torn_tail is not None and args.fix:
        path, offset, _size = result.torn_tail
        if not args.yes:
            answer = input(f"Cut {path} to {offset} bytes? [y/N] ").strip().lower()
            if answer not in ("y", "yes"):
                print("not changed")
                return 0
        fs.truncate(path, offset)
        print(f"cut {path} to {offset} bytes")
    return 0
