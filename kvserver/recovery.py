"""Start-up: newest valid checkpoint, then replay the WAL after it.

The rules (docs/persistence.md has the long form):

* ``*.tmp`` files are unfinished segment creations or checkpoints: deleted.
* The newest checkpoint that passes its checksum is loaded; if the newest is
  damaged the one before it is used (its WAL is kept for exactly this). If
  checkpoints exist and none is valid: refuse to start.
* WAL records after the checkpoint's LSN are replayed, in LSN order, through
  the same command table that serves clients, with expiry by the clock
  turned off (expirations were logged as ``DEL`` records).
* A torn tail in the last segment is cut off and reported (an all-zero tail
  is the segment's preallocated space: trimmed without a report). Anything else
  (damage followed by valid records, damage in a sealed segment, an LSN
  gap, a segment from another database, a record that fails on replay)
  raises :class:`~kvserver.errors.CorruptionError` naming file, offset and
  LSN: the server refuses to start rather than serve a silently shortened
  history. ``kvserver check`` explains and can repair what is repairable.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Iterator

from . import commands
from .checkpoint import checkpoint_name, list_checkpoints, load_checkpoint
from .core import Core
from .errors import CorruptionError
from .fs import FileSystem
from .manifest import NAME as MANIFEST_NAME
from .manifest import Manifest, read_manifest, write_manifest
from .protocol import ErrorReply
from .session import Session
from .commands.strings import store_plain
from .wal import (SegmentScan, list_segments, parse_segment_header, read_segment,
                  segment_name, segment_version)

log = logging.getLogger("kvserver.recovery")

#: Appended to the name of a checkpoint that fails its checks; no longer a checkpoint.
CORRUPT_SUFFIX = ".corrupt"
#: Report progress (and let the event loop answer -LOADING) this often.
PROGRESS_EVERY = 20_000


@dataclass
class Recovered:
    """What recovery found and did."""

    db_id: int
    fresh: bool
    checkpoint_lsn: int = 0
    checkpoint_path: str = ""
    checkpoint_created_ms: int = 0
    checkpoint_entries: int = 0
    last_lsn: int = 0
    records_replayed: int = 0
    bytes_replayed: int = 0
    #: Every segment on disk, oldest first (replay used the tail from base LSN + 1).
    segments: list[tuple[int, str]] = field(default_factory=list)
    #: (path, offset, bytes dropped) for a torn tail that was (or would be) cut.
    torn_tail: tuple[str, int, int] | None = None
    #: (path, offset, bytes) of the all-zero end of the last segment (its
    #: preallocated space): not damage, trimmed like a torn tail but quietly.
    zero_tail: tuple[str, int, int] | None = None
    skipped_checkpoints: list[str] = field(default_factory=list)
    removed_tmp: list[str] = field(default_factory=list)
    seconds: float = 0.0
    #: LSN after which the torn tail starts, and why its bytes do not parse.
    torn_tail_lsn: int = 0
    torn_tail_reason: str = ""
    zero_tail_lsn: int = 0
    #: The directory had a MANIFEST.
    manifest: bool = False
    #: LSNs of the checkpoints kept (damaged ones set aside are not).
    checkpoints: list[int] = field(default_factory=list)
    #: An empty last segment of a directory from before the MANIFEST (removed).
    empty_segment: str = ""
    #: Format version of the last segment (an older one is not appended to).
    last_version: int = 0


@dataclass
class Progress:
    records: int
    bytes: int
    total_bytes: int
    phase: str

    @property
    def percent(self) -> float:
        return 100.0 * self.bytes / self.total_bytes if self.total_bytes else 100.0


def recover_steps(fs: FileSystem, dirpath: str, core: Core | None,
                  repair: bool = True) -> Iterator[Progress | Recovered]:
    """Recover ``dirpath`` into ``core``, yielding Progress now and then, Recovered last.

    With ``core=None`` nothing is applied (``kvserver check``). With
    ``repair=False`` nothing on disk changes (a torn tail is reported, not cut).
    Raises CorruptionError when recovery must refuse; **a refusal changes
    nothing on disk**: every repair (deleting ``*.tmp``, cutting a torn tail,
    trimming preallocated zeros, setting a damaged checkpoint aside, writing
    the MANIFEST) is only decided while reading and done at the very end,
    once recovery knows it will start.
    """
    started = time.monotonic()
    result = Recovered(db_id=0, fresh=False)
    if not fs.exists(dirpath):
        fs.makedirs(dirpath)
    for name in sorted(fs.listdir(dirpath)):
        if name.endswith(".tmp") and (name.startswith("wal-") or name.startswith("checkpoint-")
                                      or name == MANIFEST_NAME + ".tmp"):
            result.removed_tmp.append(os.path.join(dirpath, name))

    manifest = read_manifest(fs, dirpath)
    result.manifest = manifest is not None
    checkpoints = list_checkpoints(fs, dirpath)
    segments = list_segments(fs, dirpath)
    if manifest is not None:
        _check_listed_files_exist(manifest, dirpath, checkpoints, segments)
        result.db_id = manifest.db_id
    if not checkpoints and not segments:
        result.db_id = result.db_id or secrets.randbits(63) or 1
        result.fresh = True
        _repair(fs, dirpath, result, repair)
        result.seconds = time.monotonic() - started
        yield result
        return
    if manifest is None:
        _check_unlisted_directory(dirpath, checkpoints, segments)

    checkpoint = None
    first_error: CorruptionError | None = None
    for lsn, path in reversed(checkpoints):
        try:
            checkpoint = load_checkpoint(fs, path)
            break
        except CorruptionError as exc:
            log.warning("%s; trying an older checkpoint", exc)
            first_error = first_error or exc
            result.skipped_checkpoints.append(path)
    if checkpoints and checkpoint is None and not (segments and segments[0][0] == 1):
        # The WAL from LSN 1 would have been a complete fallback; it is gone.
        assert first_error is not None
        raise CorruptionError(
            "no valid checkpoint (newest fails its checksum and no older one is valid); "
            "refusing to start. Run 'kvserver check " + dirpath + "' for details. First error",
            path=first_error.path, offset=first_error.offset, lsn=first_error.lsn)
    if checkpoint is not None and result.db_id and checkpoint.db_id != result.db_id:
        raise CorruptionError(
            f"checkpoint belongs to database id {checkpoint.db_id:x}, not {result.db_id:x} "
            "(the MANIFEST's)", path=checkpoint.path, offset=0, lsn=checkpoint.lsn)
    skipped = set(result.skipped_checkpoints)
    result.checkpoints = [lsn for lsn, path in checkpoints if path not in skipped]

    ks = core.keyspace if core is not None else None
    session = Session(core) if core is not None else None
    if core is not None:
        core.log_sink = None  # the records are already on disk
        ks.expiry_enabled = False

    base_lsn = 0
    if checkpoint is not None:
        result.db_id = checkpoint.db_id
        result.checkpoint_lsn = base_lsn = checkpoint.lsn
        result.checkpoint_path = checkpoint.path
        result.checkpoint_created_ms = checkpoint.created_ms
        result.checkpoint_entries = checkpoint.entries
        if ks is not None:
            for count in checkpoint.load_into(ks.dbs, PROGRESS_EVERY):
                yield Progress(count, 0, 0, "checkpoint")
        checkpoint.data = b""  # free the file image before replaying

    # Segments wholly before the checkpoint are not needed (they are only
    # kept for the fallback checkpoint); start at the one holding base+1.
    needed = [s for i, s in enumerate(segments)
              if i + 1 >= len(segments) or segments[i + 1][0] > base_lsn + 1]
    total_bytes = 0
    for _first, path in needed:
        try:
            total_bytes += os.path.getsize(path)
        except OSError:
            pass
    expected = base_lsn + 1
    done_bytes = 0
    for index, (first_lsn, path) in enumerate(needed):
        last = index == len(needed) - 1
        data = fs.read(path)
        db_id, seg_first = parse_segment_header(data, path, first_lsn)
        if last:
            result.last_version = segment_version(data)
        if manifest is None and segment_version(data) >= 2:
            raise _manifest_lost(dirpath, path, seg_first)
        if checkpoint is None and index == 0 and not result.db_id:
            result.db_id = db_id
        if db_id != result.db_id:
            raise CorruptionError(
                f"segment belongs to database id {db_id}, not {result.db_id}",
                path=path, offset=0, lsn=seg_first)
        if seg_first != first_lsn:
            raise CorruptionError("segment header's first LSN does not match its name",
                                  path=path, offset=0, lsn=seg_first)
        if seg_first > expected:
            raise CorruptionError(
                f"LSN gap: expected LSN {expected} but the next segment starts at "
                f"{seg_first} (a segment is missing)", path=path, offset=0, lsn=expected)
        # Check and apply in one pass. Records before damage that turns out
        # to be corruption are applied too, but then start-up refuses, and
        # nothing applied is ever served.
        if session is not None:
            replaying = read_segment(data, path, first_lsn, skip_below=expected,
                                     on_unit=_replayer(session, path), dbs=ks.dbs,
                                     store_plain=store_plain, progress_every=PROGRESS_EVERY)
        else:
            replaying = read_segment(data, path, first_lsn, skip_below=expected)
        while True:
            try:
                replayed = next(replaying)
            except StopIteration as stop:
                scan = stop.value
                break
            yield Progress(result.records_replayed + replayed, done_bytes, total_bytes, "wal")
        if scan.last_lsn >= expected:
            result.records_replayed += scan.last_lsn - max(expected, scan.first_lsn) + 1
            expected = scan.last_lsn + 1
        preallocated = scan.bad is not None and scan.zero_tail and last
        if scan.bad is not None and not preallocated:
            _check_bad(scan, last)
        if scan.last_lsn < seg_first:
            # No record. A segment is named only once its first batch is in
            # it and synced (wal._create_segment), so under a MANIFEST this is
            # damage: the file was cut back to its header, or its first
            # batch was damaged on disk. (A directory from before the
            # MANIFEST made segments empty; only its last can be, see below.)
            if manifest is not None or not last:
                what = (f"; then {scan.bad[1]} ({scan.torn_tail_bytes} bytes)"
                        if scan.bad is not None else "")
                raise CorruptionError(
                    f"wal: segment holds no record (cut back to its header, or its first "
                    f"batch is damaged{what}); its records may have been acknowledged",
                    path=path, offset=scan.good_end, lsn=seg_first)
            result.empty_segment = path
        if preallocated:
            # The open segment's reserved space (wal.PREALLOCATE_BYTES), or a
            # write that extended the file and never landed: no record is
            # there. Trimmed so the WAL reopens at its end and reserves anew.
            result.zero_tail = (path, scan.good_end, scan.torn_tail_bytes)
            result.zero_tail_lsn = scan.last_lsn
        elif scan.bad is not None:
            result.torn_tail = (path, scan.good_end, scan.torn_tail_bytes)
            result.torn_tail_lsn = scan.last_lsn
            result.torn_tail_reason = scan.bad[1]
        # Where the log really ends: records the checkpoint covers are skipped
        # above, so ``expected`` alone cannot tell a WAL that stops short of it.
        wal_end = scan.last_lsn
        wal_end_offset = scan.good_end
        done_bytes += scan.size
        del data, scan
    if needed and wal_end < base_lsn:
        # Appending LSN base+1 after it would leave a gap no later start-up accepts.
        raise CorruptionError(
            f"the WAL ends at LSN {wal_end}, before the checkpoint's LSN {base_lsn}",
            path=needed[-1][1], offset=wal_end_offset, lsn=wal_end)
    result.last_lsn = max(expected - 1, base_lsn)
    # All of them, not just those replayed: the writer drops the older ones
    # once later checkpoints cover them, which it can only do if it knows them.
    result.segments = [s for s in segments if s[1] != result.empty_segment]
    # Recovery will start: only now is anything on disk changed.
    _repair(fs, dirpath, result, repair)
    if core is not None:
        ks.expiry_enabled = True
    result.seconds = time.monotonic() - started
    yield result


def _check_listed_files_exist(manifest: Manifest, dirpath: str,
                              checkpoints: list[tuple[int, str]],
                              segments: list[tuple[int, str]]) -> None:
    """Refuse if a file the MANIFEST lists is not there (deleted, or a lost tail)."""
    have_segments = {lsn for lsn, _p in segments}
    have_checkpoints = {lsn for lsn, _p in checkpoints}
    missing = [(lsn, os.path.join(dirpath, segment_name(lsn))) for lsn in manifest.segments
               if lsn not in have_segments]
    missing += [(lsn, os.path.join(dirpath, checkpoint_name(lsn)))
                for lsn in manifest.checkpoints if lsn not in have_checkpoints]
    if missing:
        lsn, path = min(missing)
        names = ", ".join(os.path.basename(p) for _l, p in sorted(missing))
        raise CorruptionError(
            f"{len(missing)} file(s) the MANIFEST lists are missing ({names}); the "
            "acknowledged writes they held would be lost, refusing to start. First missing",
            path=path, offset=0, lsn=lsn)


def _check_unlisted_directory(dirpath: str, checkpoints: list[tuple[int, str]],
                              segments: list[tuple[int, str]]) -> None:
    """A directory without a MANIFEST is one made before it existed: it must look it."""
    manifest_path = os.path.join(dirpath, MANIFEST_NAME)
    if not segments:
        raise CorruptionError(
            "checkpoints but no WAL segment and no MANIFEST (files were removed?)",
            path=manifest_path, offset=0, lsn=checkpoints[-1][0])
    # (Segments written since the MANIFEST exists are version 2: the replay
    # loop refuses one found without a MANIFEST, see _manifest_lost.)


def _manifest_lost(dirpath: str, path: str, lsn: int) -> CorruptionError:
    return CorruptionError(
        f"the MANIFEST is missing, but {os.path.basename(path)} was written by a kvserver "
        "that keeps one (it was deleted?)", path=os.path.join(dirpath, MANIFEST_NAME),
        offset=0, lsn=lsn)


def _repair(fs: FileSystem, dirpath: str, result: Recovered, repair: bool) -> None:
    """Do the repairs recovery decided on (only once it knows it will start).

    Ordered so that a crash part-way leaves a directory that recovers the
    same way: the MANIFEST stops listing a damaged checkpoint before it is
    renamed aside, and an empty pre-MANIFEST segment goes before the first
    MANIFEST is written (under a MANIFEST an empty segment is damage).
    """
    if not repair:
        return
    for path in result.removed_tmp:
        fs.unlink(path)
    if result.torn_tail is not None:
        path, offset, size = result.torn_tail
        fs.truncate(path, offset)
        log.warning(
            "cut %d bytes that do not parse (%s) from the end of %s at offset %d, after LSN "
            "%d: the end of a batch whose write never completed (not acknowledged), or damage "
            "to the last synced batch (which may have been acknowledged); the log cannot tell "
            "these apart (docs/persistence.md, recovery rule 4)", size, result.torn_tail_reason,
            path, offset, result.torn_tail_lsn)
    if result.zero_tail is not None:
        path, offset, size = result.zero_tail
        fs.truncate(path, offset)
        # Logged (not at debug) so that a disk that zeroed the end of the log
        # shows up as a number to compare with the step.
        log.info("WAL %s ends at offset %d (LSN %d); %d zero bytes of preallocated "
                 "space after it trimmed", path, offset, result.zero_tail_lsn, size)
    if result.empty_segment:
        # Made by a kvserver before the MANIFEST, which created segments
        # empty: it holds nothing. Gone for good (directory synced) before
        # the MANIFEST appears, which would make it damage.
        fs.unlink(result.empty_segment)
        fs.sync_dir(dirpath)
        log.info("removed %s: an empty segment (no record) from before the MANIFEST",
                 result.empty_segment)
    dir_changed = bool(result.removed_tmp) and not result.empty_segment
    if not result.fresh or result.manifest:
        listed = Manifest(result.db_id, [lsn for lsn, _p in result.segments],
                          list(result.checkpoints))
        current = read_manifest(fs, dirpath) if result.manifest else None
        if current != listed:
            write_manifest(fs, dirpath, listed)  # syncs the directory
            dir_changed = False
            if not result.manifest:
                log.info("wrote %s listing %d segment(s) and %d checkpoint(s) (a directory "
                         "made before kvserver kept a MANIFEST)", os.path.join(
                             dirpath, MANIFEST_NAME), len(listed.segments),
                         len(listed.checkpoints))
    for path in result.skipped_checkpoints:
        # Set damaged checkpoints aside (kept for inspection): counted among
        # the KEEP newest, one would let the writer drop the older valid
        # checkpoint and its WAL, leaving no fallback if the next one fails.
        fs.rename(path, path + CORRUPT_SUFFIX)
        log.warning("damaged checkpoint %s renamed to %s%s", path, path, CORRUPT_SUFFIX)
        dir_changed = True
    if dir_changed:
        fs.sync_dir(dirpath)


def _check_bad(scan: SegmentScan, last: bool) -> None:
    offset, reason = scan.bad  # type: ignore[misc]
    lsn = scan.last_lsn + 1
    if reason.startswith("LSN "):
        raise CorruptionError(f"wal: {reason}", path=scan.path, offset=offset, lsn=lsn)
    if not last:
        raise CorruptionError(f"wal: {reason} in a sealed segment", path=scan.path,
                              offset=offset, lsn=lsn)
    if scan.valid_after_bad:
        raise CorruptionError(f"wal: {reason}, followed by valid records (not a torn tail)",
                              path=scan.path, offset=offset, lsn=lsn)


def _replayer(session: Session, path: str):
    """on_unit for wal.read_segment: apply a unit's effects in order through the
    command table (client checks off), refusing a record that fails."""
    dbs = session.core.keyspace.dbs

    def replay_unit(lsn: int, offset: int, effects: list) -> None:
        for db, argv in effects:
            if session.db_index != db:
                if db >= len(dbs):
                    raise CorruptionError(
                        f"record for database {db} but only {len(dbs)} are configured "
                        "(raise --databases)", path=path, offset=offset, lsn=lsn)
                session.select(db)
            reply = commands.execute(session, argv)
            if type(reply) is ErrorReply:
                raise CorruptionError(f"wal: replaying {argv[0]!r} failed with '{reply}'",
                                      path=path, offset=offset, lsn=lsn)
    return replay_unit


def recover(fs: FileSystem, dirpath: str, core: Core | None, repair: bool = True) -> Recovered:
    """Run recovery to the end (no event loop). See :func:`recover_steps`."""
    for step in recover_steps(fs, dirpath, core, repair):
        if isinstance(step, Recovered):
            return step
    raise AssertionError("recovery ended without a result")
