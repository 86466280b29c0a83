"""Did a client library get an error reply it did not show us?

Several libraries catch an error reply and fall back to another path (django-
redis's incr does GET + SET when EVAL fails, redis-py's Script sends EVAL when
EVALSHA answers NOSCRIPT, ...), so a use can "work" while the server refused
what the library meant to send. These helpers read the server's INFO
errorstats after a use and fail on any error reply the library did not have
to receive.
"""

from __future__ import annotations

#: Error replies a library receives in normal operation: redis-py's Script
#: object sends EVALSHA first and EVAL on NOSCRIPT.
EXPECTED_ERRORS = {"NOSCRIPT"}
#: redis-py sends CLIENT SETINFO LIB-NAME and LIB-VER on every new connection
#: and ignores the ERR that Redis 7.0 (and so kvserver) answers.
SETINFO_ERRORS_PER_CONNECTION = 2


def unexpected_errors(errorstats: dict, stats: dict) -> dict:
    """{error prefix: count} from INFO errorstats, less the expected ones."""
    errors = {k.removeprefix("errorstat_"): v["count"] for k, v in errorstats.items()}
    setinfo = SETINFO_ERRORS_PER_CONNECTION * stats["total_connections_received"]
    errors["ERR"] = errors.get("ERR", 0) - setinfo
    return {k: v for k, v in errors.items() if v and k not in EXPECTED_ERRORS}


def assert_no_server_errors(r) -> None:
    """The library got no error reply from the server (a redis.Redis to it)."""
    errors = unexpected_errors(r.info("errorstats"), r.info("stats"))
    assert not errors, errors


async def assert_no_server_errors_async(ar) -> None:
    """The same through a redis.asyncio.Redis."""
    errors = unexpected_errors(await ar.info("errorstats"), await ar.info("stats"))
    assert not errors, errors
