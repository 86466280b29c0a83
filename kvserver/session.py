"""Per-client state that commands see, independent of any transport.

A network connection owns a :class:`Session`; WAL replay uses one too, so a
logged command runs through exactly the code that served the client.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING

from .keyspace import Database

if TYPE_CHECKING:
    from .core import Core

_ids = itertools.count(1)


class Session:
    """What a command may know and change about its caller."""

    __slots__ = ("core", "id", "name", "db", "db_index", "resp", "lib_name", "lib_ver",
                 "created", "last_interaction", "last_command", "close_after_reply",
                 "addr", "laddr", "kind", "authenticated", "__weakref__")

    def __init__(self, core: "Core", addr: str = "", laddr: str = "", kind: str = "normal") -> None:
        self.core = core
        self.id = next(_ids)
        self.name = b""
        self.db_index = 0
        self.db: Database = core.keyspace.dbs[0]
        self.resp = 2
        self.lib_name = b""
        self.lib_ver = b""
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.close_after_reply = False
        self.addr = addr
        self.laddr = laddr
        self.kind = kind
        self.authenticated = not core.config.requirepass

    def select(self, index: int) -> None:
        self.db = self.core.keyspace.dbs[index]
        self.db_index = index

    def log(self, argv: list[bytes]) -> None:
        """Record this command's deterministic effect in the WAL, in apply order."""
        self.core.log(self.db_index, argv)

    def kill(self) -> None:
        """Close this client after its pending replies (CLIENT KILL); transports override."""
        self.close_after_reply = True

    def client_info(self) -> str:
        """One line of CLIENT LIST / CLIENT INFO."""
        now = time.monotonic()
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd=-1 "
                f"name={self.name.decode('utf-8', 'replace')} "
                f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
                f"flags=N db={self.db_index} sub=0 psub=0 ssub=0 multi=-1 qbuf=0 qbuf-free=0 "
                f"argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=0 omem=0 tot-mem=0 "
                f"events=r cmd={self.last_command} user=default redir=-1 resp={self.resp} "
                f"lib-name={self.lib_name.decode('utf-8', 'replace')} "
                f"lib-ver={self.lib_ver.decode('utf-8', 'replace')}")
