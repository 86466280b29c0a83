"""kvserver with each WAL batch written and synced in a thread (the road not taken).

    python -m bench.wal_thread [kvserver flags...]

The same server as ``python -m kvserver``, built with
``Server(config, sync_in_thread=True)``: each group-commit batch goes to the
WAL thread for its write and fdatasync while the loop keeps parsing and
applying. kvserver's default syncs on the loop, as Redis does in beforeSleep
(kvserver/writer.py has the measurement behind that choice); the
group-commit benchmark runs this variant beside the default so the choice
is re-checked on whatever machine the bench runs on.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from kvserver.__main__ import setup_logging
from kvserver.config import ConfigError, from_args
from kvserver.server import Server, StartupError


async def _serve(config) -> int:
    server = Server(config, sync_in_thread=True)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, server.request_shutdown, None)
    try:
        await server.start()
    except StartupError as exc:
        logging.getLogger("kvserver").critical("cannot start: %s", exc)
        return 1
    logging.getLogger("kvserver").info("ready to accept connections (WAL synced in a thread)")
    return await server.wait_stopped()


def main(argv: list[str] | None = None) -> int:
    try:
        config = from_args(list(sys.argv[1:] if argv is None else argv))
    except ConfigError as exc:
        print(f"bench.wal_thread: {exc}", file=sys.stderr)
        return 1
    setup_logging(config)
    return asyncio.run(_serve(config))


if __name__ == "__main__":
    sys.exit(main())
