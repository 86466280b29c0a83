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

#: Session.reply_mode values (CLIENT REPLY ON|OFF|SKIP).
REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT, REPLY_SKIP = 0, 1, 2, 3


class Session:
    """What a command may know and change about its caller."""

    __slots__ = ("core", "id", "name", "db", "db_index", "resp",
                 "created", "last_interaction", "last_command", "close_after_reply",
                 "addr", "laddr", "kind", "authenticated", "fd", "unix", "no_evict",
                 "reply_mode", "__weakref__")

    def __init__(self, core: "Core", addr: str = "", laddr: str = "", kind: str = "normal") -> None:
        self.core = core
        self.id = next(_ids)
        self.name = b""
        self.db_index = 0
        self.db: Database = core.keyspace.dbs[0]
        self.resp = 2
        self.created = time.monotonic()
        self.last_interaction = self.created
        self.last_command = "NULL"
        self.close_after_reply = False
        self.addr = addr
        self.laddr = laddr
        self.kind = kind
        self.authenticated = not core.config.requirepass
        self.fd = -1           # the socket's descriptor (CLIENT LIST fd=); -1: none
        self.unix = False      # connected over a Unix socket (flag U)
        self.no_evict = False  # CLIENT NO-EVICT ON (flag e)
        #: CLIENT REPLY: REPLY_ON, REPLY_OFF, REPLY_SKIP_NEXT (CLIENT REPLY SKIP
        #: just ran) or REPLY_SKIP (this command's reply is dropped).
        self.reply_mode = REPLY_ON

    def select(self, index: int) -> None:
        self.db = self.core.keyspace.dbs[index]
        self.db_index = index

    def log(self, argv: list[bytes]) -> None:
        """Record this command's deterministic effect in the WAL, in apply order."""
        self.core.log(self.db_index, argv)

    def kill(self) -> None:
        """Close this client after its pending replies (CLIENT KILL); transports override."""
        self.close_after_reply = True

    def buffer_info(self) -> tuple[int, int, int, int, str]:
        """(qbuf, obl, oll, omem, events) for CLIENT LIST; a transport knows better."""
        return 0, 0, 0, 0, ""

    def is_blocked(self) -> bool:
        """Waiting for something before its next request runs (flag b); transports override."""
        return False

    def client_type(self) -> str:
        """Redis's client class for CLIENT LIST/KILL TYPE: a monitor is "normal", as in Redis."""
        return "normal" if self.kind == "monitor" else self.kind

    def client_info(self, argv: list[bytes] | None = None) -> str:
        """One line of CLIENT LIST / CLIENT INFO: Redis 7.0's fields, in its order.

        ``argv`` is the command this client is running (CLIENT INFO/LIST
        itself), for argv-mem; any other client is between commands. kvserver
        has no per-client reply buffer (a read's replies are joined, then
        written), so rbs and rbp are 0; obl is what this read has produced
        so far, oll/omem the chunks held for durability or in the transport.
        """
        now = time.monotonic()
        qbuf, obl, oll, omem, events = self.buffer_info()
        argv_mem = sum(len(a) for a in argv) if argv else 0
        flags = ("O" if self.kind == "monitor" else "") + ("b" if self.is_blocked() else "") \
            + ("c" if self.close_after_reply else "") + ("U" if self.unix else "") \
            + ("e" if self.no_evict else "")
        return (f"id={self.id} addr={self.addr} laddr={self.laddr} fd={self.fd} "
                f"name={self.name.decode('utf-8', 'replace')} "
                f"age={int(now - self.created)} idle={int(now - self.last_interaction)} "
                f"flags={flags or 'N'} db={self.db_index} sub=0 psub=0 ssub=0 multi=-1 "
                f"qbuf={qbuf} qbuf-free=0 argv-mem={argv_mem} multi-mem=0 rbs=0 rbp=0 "
                f"obl={obl} oll={oll} omem={omem} tot-mem={qbuf + argv_mem + obl + omem} "
                f"events={events} cmd={self.last_command} user=default redir=-1 "
                f"resp={self.resp}")
