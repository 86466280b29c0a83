"""The name commands, replay and tools have always used for a client's state.

:class:`Session` *is* :class:`kvserver.client.Client` (one class, two names):
a command's first argument, WAL replay's caller (a Client with no transport),
and what a network Connection owns as ``Connection.client``.
"""

from __future__ import annotations

from .client import REPLY_OFF, REPLY_ON, REPLY_SKIP, REPLY_SKIP_NEXT, Client

Session = Client

__all__ = ["Session", "Client", "REPLY_ON", "REPLY_OFF", "REPLY_SKIP_NEXT", "REPLY_SKIP"]
