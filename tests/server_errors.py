"""Did a client library get an error reply it did not show us?

Several libraries catch an error reply and fall back to another path (django-
redis's incr does GET + SET when EVAL fails, redis-py's Script sends EVAL when
EVALSHA answers NOSCRIPT, ...), so a use can "work" while the server refused
what the library meant to send. These helpers read the server's INFO
errorstats after a use and fail on any error reply the library did not have
to receive.

Every redis-py connection starts with commands Redis 7.0 (and so kvserver)
refuses and redis-py ignores: CLIENT SETINFO LIB-NAME and LIB-VER (redis-py
5), and one more in redis-py 8. How many depends on the redis-py version, so
the helpers measure it: one more connection, opened at the end, shows the
count per connection, which is taken off once per connection the server
received (every client in these tests is redis-py).
"""

from __future__ import annotations

import redis
import redis.asyncio

#: Error replies a library receives in normal operation: redis-py's Script
#: object sends EVALSHA first and EVAL on NOSCRIPT.
EXPECTED_ERRORS = {"NOSCRIPT"}


def _counts(errorstats: dict) -> dict:
    return {k.removeprefix("errorstat_"): v["count"] for k, v in errorstats.items()}


def _unexpected(errors: dict, connections: int, per_connection: int) -> dict:
    errors = dict(errors)
    errors["ERR"] = errors.get("ERR", 0) - per_connection * connections
    return {k: v for k, v in errors.items() if v and k not in EXPECTED_ERRORS}


def assert_no_server_errors(r: redis.Redis) -> None:
    """The library got no error reply from the server (r: a redis.Redis to it)."""
    errors = _counts(r.info("errorstats"))
    connections = r.info("stats")["total_connections_received"]
    pool = r.connection_pool
    probe = redis.Redis(connection_pool=redis.ConnectionPool(
        connection_class=pool.connection_class, **pool.connection_kwargs))
    try:
        probe.ping()
    finally:
        probe.close()
        probe.connection_pool.disconnect()
    per_connection = _counts(r.info("errorstats")).get("ERR", 0) - errors.get("ERR", 0)
    unexpected = _unexpected(errors, connections, per_connection)
    assert not unexpected, unexpected


async def assert_no_server_errors_async(ar: redis.asyncio.Redis) -> None:
    """The same through a redis.asyncio.Redis."""
    errors = _counts(await ar.info("errorstats"))
    connections = (await ar.info("stats"))["total_connections_received"]
    pool = ar.connection_pool
    probe = redis.asyncio.Redis(connection_pool=redis.asyncio.ConnectionPool(
        connection_class=pool.connection_class, **pool.connection_kwargs))
    try:
        await probe.ping()
    finally:
        await probe.aclose(close_connection_pool=True)
    per_connection = _counts(await ar.info("errorstats")).get("ERR", 0) - errors.get("ERR", 0)
    unexpected = _unexpected(errors, connections, per_connection)
    assert not unexpected, unexpected
