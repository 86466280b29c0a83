"""maxclients against the open file limit (Redis's adjustOpenFilesLimit).

Every client is a file descriptor. With ``maxclients`` above what
``RLIMIT_NOFILE`` allows, accept() fails with EMFILE while the server still
believes it has room; Redis avoids that at start (and on CONFIG SET) by
raising the soft limit toward ``maxclients + 32`` and, when the hard limit
forbids it, lowering ``maxclients`` to fit. This module does the same; the
caller logs and applies the result.
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass

try:
    import resource
except ImportError:  # not on this platform: nothing to adjust
    resource = None  # type: ignore[assignment]

#: Descriptors kept for everything that is not a client: listeners, WAL
#: segments, checkpoints, the lock, the log, the event loop's own (Redis's
#: CONFIG_MIN_RESERVED_FDS).
RESERVED_FDS = 32


class FileLimitError(Exception):
    """The open file limit is too low to run at all; the message says what to raise it to."""


@dataclass(frozen=True)
class Fit:
    maxclients: int         # what the limit allows (== the request when it fits)
    warning: str = ""       # maxclients was lowered: why, in Redis's words
    notice: str = ""        # the soft limit was raised


def _raise_soft_limit(want: int) -> tuple[int, str]:
    """Try to make the soft limit ``want``: returns (the soft limit now, why not)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return want, ""
    try:
        # Above the hard limit only root may go (and Redis asks for it too).
        new_hard = hard if hard == resource.RLIM_INFINITY or hard >= want else want
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, new_hard))
        return want, ""
    except (ValueError, OSError) as exc:
        # CPython reports EPERM as ValueError("not allowed to raise maximum limit").
        why = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else \
            os.strerror(errno.EPERM)
    best = hard if hard != resource.RLIM_INFINITY else want
    if best > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (best, hard))
        except (ValueError, OSError):
            best = soft
    return max(best, soft), why


def fit_maxclients(maxclients: int) -> Fit:
    """The largest maxclients (up to the one asked for) the open file limit allows,
    raising the soft limit as far as the hard limit lets us. Raises FileLimitError
    when not even RESERVED_FDS + 1 descriptors are available."""
    if resource is None:
        return Fit(maxclients)
    want = maxclients + RESERVED_FDS
    old_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    limit, why = _raise_soft_limit(want)
    if limit >= want:
        if old_soft != resource.RLIM_INFINITY and old_soft < want:
            return Fit(maxclients, notice=f"Increased maximum number of open files to {want} "
                                          f"(it was originally set to {old_soft}).")
        return Fit(maxclients)
    if limit <= RESERVED_FDS:
        raise FileLimitError(f"Your current 'ulimit -n' of {old_soft} is not enough for the "
                             f"server to start. Please increase your open file limit to at least "
                             f"{want}.")
    fitted = limit - RESERVED_FDS
    return Fit(fitted, warning=(
        f"You requested maxclients of {maxclients} requiring at least {want} max file "
        f"descriptors. Server can't set maximum open files to {want} because of OS error: "
        f"{why}. Current maximum open files is {limit}. maxclients has been reduced to "
        f"{fitted} to compensate for low ulimit. If you need higher maxclients increase "
        f"'ulimit -n'."))
