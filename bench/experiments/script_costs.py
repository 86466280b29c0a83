"""EVALSHA in process: microseconds per call, and where the time goes, by module.

``python -m bench.experiments.script_costs`` runs the two scripts ``make bench``
measures (bench/rows.py: the limits sliding-window hit, redis-py's lock
release) through the dispatcher of an in-process Core (no sockets, no WAL
writer: the effects go to a list), best of 5 rounds, then once under
cProfile, and prints each module's share of the profiled time. The shares
say which part to speed up: the compiled Lua chunk and the interpreter's
helpers (kvserver/lua), the scripting layer (kvserver/scripting.py), the
dispatcher and the commands the script runs.
"""

from __future__ import annotations

import collections
import cProfile
import pstats
import time

from kvserver.client import Client
from kvserver.config import Config
from kvserver.core import Core
from kvserver.dispatch import Dispatcher

from ..rows import LOCK_RELEASE, SLIDING_WINDOW

ROUNDS = 5
CALLS = 10_000


def main() -> None:
    core = Core(Config())
    effects: list = []
    core.log_sink = lambda db, argv: effects.append(argv)
    dispatcher = Dispatcher(core)
    client = Client(core)
    for name, body, args in (
            ("sliding-window", SLIDING_WINDOW, [b"2", b"rl:p", b"rl:c", b"1000000", b"60", b"1"]),
            ("lock-release", LOCK_RELEASE, [b"1", b"lock:1", b"token"])):
        sha = dispatcher.call(client, [b"SCRIPT", b"LOAD", body.encode()])
        argv = [b"EVALSHA", sha] + args
        best = min(_round(dispatcher, client, argv) for _ in range(ROUNDS))
        get = min(_round(dispatcher, client, [b"GET", b"rl:c"]) for _ in range(ROUNDS))
        print(f"{name}: {best:.1f} us per EVALSHA (GET: {get:.2f} us)")
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(CALLS):
            dispatcher.call(client, argv)
        profile.disable()
        shares: collections.Counter = collections.Counter()
        for (path, _line, _fn), (_cc, _nc, tottime, _ct, _callers) in \
                pstats.Stats(profile).stats.items():
            module = ("compiled Lua chunk" if path.startswith("<lua") else
                      "builtins" if path.startswith("~") else
                      "/".join(path.split("/")[-2:]))
            shares[module] += tottime
        total = sum(shares.values())
        for module, seconds in shares.most_common(10):
            print(f"    {module:30s} {seconds / total:6.1%}")
        effects.clear()


def _round(dispatcher: Dispatcher, client: Client, argv: list) -> float:
    started = time.perf_counter()
    for _ in range(CALLS):
        dispatcher.call(client, argv)
    return (time.perf_counter() - started) / CALLS * 1e6


if __name__ == "__main__":
    main()
