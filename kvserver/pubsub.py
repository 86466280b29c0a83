"""Pub/sub: who listens to which channel or pattern, and delivery of messages.

Redis's pubsub.c and notify.c without the sockets. :class:`PubSub` (one per
server, ``Core.pubsub``) keeps three registries, channel -> subscribers,
pattern -> subscribers and shard channel -> subscribers, each subscriber set
in subscription order, as Redis's lists are; every client keeps its own
side in :class:`Subscriptions` (``Client.subs``, None until it subscribes).
The commands are in kvserver/commands/pubsub.py.

A message is encoded once per publish for each protocol (an array in RESP2,
a push frame ``>`` in RESP3) and handed to each subscriber's transport with
``Link.send_push``, which never blocks the publisher.

**The durability rule.** A message leaves for a subscriber only once
everything the publisher had applied before it is durable, so a subscriber
told "key k changed" never reads a value a crash could take back. The
subscriber's connection holds a message exactly as it holds a reply: until
the writer's ``durable_lsn`` reaches the ``applied_lsn`` of the moment it was
sent (kvserver/connection.py, ``Connection.send_push``). What is published
while an execution unit is open (a keyspace event from inside a write, a
PUBLISH inside EXEC) is not sent before the unit's record exists: it waits in
``Core.unit_pushes`` and leaves from ``Core.end_unit``, after the record got
its LSN; there, a subscriber's messages count against its output buffer
limit (:meth:`PubSub._hold`). PUBLISH itself logs nothing.

**Slow subscribers.** A subscriber that does not read has its messages pile
up in its transport; ``client-output-buffer-limit pubsub`` (Redis's default
32mb 8mb 60) bounds them: over the hard limit it is disconnected at once,
over the soft limit for longer than the soft seconds too
(``Connection._check_output_limit``). The publisher never waits for it.
"""

from __future__ import annotations

import logging
from typing import Any

from .glob import compile_pattern
from .notify import KEYEVENT, KEYSPACE

log = logging.getLogger("kvserver.pubsub")


class Subscriptions:
    """One client's side: its channels, patterns and shard channels, in subscription order."""

    __slots__ = ("channels", "patterns", "shard")

    def __init__(self) -> None:
        self.channels: dict[bytes, None] = {}
        self.patterns: dict[bytes, None] = {}
        self.shard: dict[bytes, None] = {}

    def count(self) -> int:
        """Redis's clientSubscriptionsCount: channels plus patterns (the count SUBSCRIBE replies)."""
        return len(self.channels) + len(self.patterns)

    def total(self) -> int:
        """Every subscription, shard channels included (the client is in pub/sub while > 0)."""
        return len(self.channels) + len(self.patterns) + len(self.shard)


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


def frame(resp: int, parts: list) -> bytes:
    """A pub/sub frame: an array in RESP2, a push (``>``) in RESP3, of bulks, ints and None."""
    out = [b"%c%d\r\n" % (0x2A if resp == 2 else 0x3E, len(parts))]
    for part in parts:
        if part is None:
            out.append(b"$-1\r\n" if resp == 2 else b"_\r\n")
        elif type(part) is int:
            out.append(b":%d\r\n" % part)
        else:
            out.append(_bulk(part))
    return b"".join(out)


class PubSub:
    """The server's channel and pattern registries; publishing and keyspace events."""

    __slots__ = ("core", "channels", "patterns", "shard", "_matchers")

    def __init__(self, core: Any) -> None:
        self.core = core
        #: channel -> {client: None}, in subscription order.
        self.channels: dict[bytes, dict] = {}
        #: pattern -> {client: None}.
        self.patterns: dict[bytes, dict] = {}
        #: shard channel -> {client: None} (one node: SPUBLISH reaches these).
        self.shard: dict[bytes, dict] = {}
        #: pattern -> its compiled matcher (Redis's stringmatchlen rules, kvserver.glob).
        self._matchers: dict[bytes, Any] = {}

    # --- subscribing ---------------------------------------------------------------

    @staticmethod
    def subs_of(client: Any) -> Subscriptions:
        subs = client.subs
        if subs is None:
            subs = client.subs = Subscriptions()
        return subs

    def subscribe(self, client: Any, channel: bytes, shard: bool = False) -> bool:
        """Add ``client`` to ``channel``; False if it was already there."""
        subs = self.subs_of(client)
        mine = subs.shard if shard else subs.channels
        if channel in mine:
            return False
        mine[channel] = None
        registry = self.shard if shard else self.channels
        listeners = registry.get(channel)
        if listeners is None:
            listeners = registry[channel] = {}
        listeners[client] = None
        return True

    def unsubscribe(self, client: Any, channel: bytes, shard: bool = False) -> bool:
        """Remove ``client`` from ``channel``; False if it was not there.

        A channel nobody listens to any more leaves the registry (PUBSUB
        CHANNELS stops listing it; no memory stays behind).
        """
        subs = client.subs
        if subs is None:
            return False
        mine = subs.shard if shard else subs.channels
        if channel not in mine:
            return False
        del mine[channel]
        registry = self.shard if shard else self.channels
        listeners = registry[channel]
        del listeners[client]
        if not listeners:
            del registry[channel]
        return True

    def psubscribe(self, client: Any, pattern: bytes) -> bool:
        subs = self.subs_of(client)
        if pattern in subs.patterns:
            return False
        subs.patterns[pattern] = None
        listeners = self.patterns.get(pattern)
        if listeners is None:
            listeners = self.patterns[pattern] = {}
            self._matchers[pattern] = compile_pattern(pattern)
        listeners[client] = None
        return True

    def punsubscribe(self, client: Any, pattern: bytes) -> bool:
        subs = client.subs
        if subs is None or pattern not in subs.patterns:
            return False
        del subs.patterns[pattern]
        listeners = self.patterns[pattern]
        del listeners[client]
        if not listeners:
            del self.patterns[pattern]
            del self._matchers[pattern]
        return True

    def forget(self, client: Any) -> None:
        """Drop every subscription of ``client`` without telling it (it is gone, or RESET)."""
        subs = client.subs
        if subs is None:
            return
        for channel in list(subs.channels):
            self.unsubscribe(client, channel)
        for channel in list(subs.shard):
            self.unsubscribe(client, channel, True)
        for pattern in list(subs.patterns):
            self.punsubscribe(client, pattern)
        client.subs = None

    # --- publishing ----------------------------------------------------------------

    def publish(self, channel: bytes, message: bytes, shard: bool = False) -> int:
        """Send ``message`` to the subscribers of ``channel`` and of matching patterns.

        Returns how many received it (a client subscribed to the channel and
        to two matching patterns counts three times, as in Redis). Shard
        channels ignore patterns.
        """
        count = 0
        targets: list = []
        listeners = (self.shard if shard else self.channels).get(channel)
        if listeners:
            kind = b"smessage" if shard else b"message"
            # The frame, made once for all (RESP3's differs in its first byte).
            f2 = b"*3\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (
                len(kind), kind, len(channel), channel, len(message), message)
            f3 = b">" + f2[1:]
            count = len(listeners)
            if not self.core.unit_depth and (shard or not self.patterns):
                # The common case, sent here without building a target list.
                for client in listeners:
                    client.link.send_push(f2 if client.resp == 2 else f3)
                return count
            for client in listeners:
                targets.append((client, f2, f3))
        if self.patterns and not shard:
            matchers = self._matchers
            for pattern, clients in self.patterns.items():
                if matchers[pattern](channel):
                    f2 = frame(2, [b"pmessage", pattern, channel, message])
                    f3 = b">" + f2[1:]
                    for client in clients:
                        targets.append((client, f2, f3))
                    count += len(clients)
        if targets:
            core = self.core
            if core.unit_depth:
                # Inside a unit: after its record (Core.end_unit), see the module doc.
                hold = self._hold
                for client, f2, f3 in targets:
                    hold(client, f2 if client.resp == 2 else f3)
            else:
                for client, f2, f3 in targets:
                    link = client.link
                    if link is not None:
                        link.send_push(f2 if client.resp == 2 else f3)
        return count

    def _hold(self, client: Any, data: bytes) -> None:
        """Keep a message published inside a unit for ``client`` until the unit ends.

        Held within the client's ``client-output-buffer-limit`` (its hard
        limit): one command or EXEC can publish millions of keyspace events
        before its record exists, and a subscriber past the limit is dropped
        at once, as Redis drops it when its output buffer passes the limit,
        and nothing more is kept for it.
        """
        pending = self.core.unit_pushes
        entry = pending.get(client, False)
        if entry is None:
            return   # dropped in this unit
        if entry is False:
            core = self.core
            hard = (0 if client in core.monitors
                    else core.config.output_limits(client.client_type())[0])
            entry = pending[client] = [0, hard, []]
        entry[0] += len(data)
        entry[2].append(data)
        if entry[1] and entry[0] > entry[1]:
            pending[client] = None
            link = client.link
            if link is not None:
                log.warning("client %s closed for overcoming of output buffer limits "
                            "(hard limit, %d bytes of messages in one unit)",
                            client.addr, entry[0])
                link.drop()

    def deliver_unit_pushes(self) -> None:
        """Send what was published while a unit was open (Core.end_unit calls it)."""
        pushes, self.core.unit_pushes = self.core.unit_pushes, {}
        for client, entry in pushes.items():
            link = client.link
            if entry is not None and link is not None:
                frames = entry[2]
                link.send_push(frames[0] if len(frames) == 1 else b"".join(frames))

    def keyspace_event(self, kind: int, event: bytes, db_index: int, key: bytes) -> None:
        """Redis's notifyKeyspaceEvent, once ``Core.notify_flags`` selected ``kind``.

        ``__keyspace@<db>__:<key>`` gets the event name, ``__keyevent@<db>__:<event>``
        the key, each if its letter (K, E) is set.
        """
        flags = self.core.notify_flags
        if not (self.channels or self.patterns):
            return   # nobody could hear it: skip building the channel names
        if flags & KEYSPACE:
            self.publish(b"__keyspace@%d__:%s" % (db_index, key), event)
        if flags & KEYEVENT:
            self.publish(b"__keyevent@%d__:%s" % (db_index, event), key)

    # --- introspection -------------------------------------------------------------

    def channel_list(self, pattern: bytes | None, shard: bool = False) -> list[bytes]:
        """PUBSUB CHANNELS / SHARDCHANNELS: active channels matching ``pattern`` (all if None)."""
        registry = self.shard if shard else self.channels
        if pattern is None:
            return list(registry)
        match = compile_pattern(pattern, longest=max(map(len, registry), default=0))
        return [channel for channel in registry if match(channel)]

    def numsub(self, channel: bytes, shard: bool = False) -> int:
        listeners = (self.shard if shard else self.channels).get(channel)
        return len(listeners) if listeners else 0
