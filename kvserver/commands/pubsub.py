"""Pub/sub commands: (P|S)SUBSCRIBE, (P|S)UNSUBSCRIBE, PUBLISH, SPUBLISH, PUBSUB; RESET.

The registry and delivery are kvserver/pubsub.py. A subscription
confirmation is one frame per channel, each with the client's count after
it (channels plus patterns; shard channels count apart), so a command
answers with several frames, made here in the client's protocol: arrays in
RESP2, push frames in RESP3, byte for byte as Redis 7.0.

A RESP2 client with any subscription is in SUBSCRIBED mode
(kvserver.client): the dispatcher lets it run only the commands Redis
allows there. A RESP3 subscriber runs everything; it is SUBSCRIBED too (so
the dispatcher's fast lane, which wants NORMAL, steps aside), and the mode
table lets RESP3 clients through. Without a cluster, shard channels are
plain channels of their own namespace, as in Redis without cluster mode.
"""

from __future__ import annotations

from ..client import MONITOR, MULTI, NORMAL, REPLY_OFF, REPLY_ON, REPLY_SKIP, SUBSCRIBED
from ..errors import CommandError
from ..protocol import NO_REPLY, Raw, Simple
from ..pubsub import frame
from . import command, dispatch_subcommand
from .connection import _subcommand_syntax


def _update_mode(s) -> None:
    """SUBSCRIBED while the client has any subscription, NORMAL once it has none.

    Inside MULTI (SUBSCRIBE queued and run by EXEC) the mode to return to
    is what changes. A monitor stays a monitor.
    """
    on = s.in_pubsub()
    if s.mode == MULTI:
        if on and s.mode_before_multi == NORMAL:
            s.mode_before_multi = SUBSCRIBED
        elif not on and s.mode_before_multi == SUBSCRIBED:
            s.mode_before_multi = NORMAL
    elif on and s.mode == NORMAL:
        s.mode = SUBSCRIBED
    elif not on and s.mode == SUBSCRIBED:
        s.mode = NORMAL


def _answer(s, frames: list) -> Raw:
    """The confirmations as the reply, or, under CLIENT REPLY OFF/SKIP, as pushes:
    Redis sends them anyway (they are flagged CLIENT_PUSHING, which the
    reply silencing does not hold back)."""
    if s.reply_mode == REPLY_OFF or s.reply_mode == REPLY_SKIP:
        for f in frames:
            s.link.send_push(f)
        return NO_REPLY
    return Raw(b"".join(frames))


def _needs_link(s, argv) -> None:
    # Messages go to a transport: a client without one (replay, tools) cannot listen.
    if s.link is None:
        raise CommandError(f"ERR {argv[0].decode('utf-8', 'replace').upper()} needs a "
                           "network connection")


def _subscribe(s, argv, shard: bool, kind: bytes) -> Raw:
    _needs_link(s, argv)
    pubsub = s.core.pubsub
    subs = pubsub.subs_of(s)
    frames = []
    for channel in argv[1:]:
        pubsub.subscribe(s, channel, shard)
        frames.append(frame(s.resp, [kind, channel,
                                     len(subs.shard) if shard else subs.count()]))
    _update_mode(s)
    return _answer(s, frames)


def _unsubscribe(s, argv, shard: bool, kind: bytes) -> Raw:
    pubsub = s.core.pubsub
    subs = pubsub.subs_of(s)
    mine = subs.shard if shard else subs.channels
    channels = argv[1:] if len(argv) > 1 else list(mine)
    frames = []
    for channel in channels:
        pubsub.unsubscribe(s, channel, shard)
        frames.append(frame(s.resp, [kind, channel,
                                     len(subs.shard) if shard else subs.count()]))
    if not frames:
        # Nothing to leave: one confirmation still comes, with a null channel.
        frames.append(frame(s.resp, [kind, None, len(subs.shard) if shard else subs.count()]))
    _update_mode(s)
    return _answer(s, frames)


@command("subscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         acl="@pubsub @slow", summary="Listen for messages published to the given channels",
         synopsis="channel [channel ...]")
def cmd_subscribe(s, argv):
    return _subscribe(s, argv, False, b"subscribe")


@command("unsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         acl="@pubsub @slow", summary="Stop listening for messages posted to the given channels",
         synopsis="[channel [channel ...]]")
def cmd_unsubscribe(s, argv):
    return _unsubscribe(s, argv, False, b"unsubscribe")


@command("ssubscribe", -2, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", acl="@pubsub @slow",
         summary="Listen for messages published to the given shard channels",
         synopsis="shardchannel [shardchannel ...]")
def cmd_ssubscribe(s, argv):
    if s.mode == MULTI:
        # Run by EXEC: Redis's CLIENT_DENY_BLOCKING refusal (SUBSCRIBE and
        # PSUBSCRIBE are let through there for compatibility; this is not).
        raise CommandError("ERR SSUBSCRIBE isn't allowed for a DENY BLOCKING client")
    return _subscribe(s, argv, True, b"ssubscribe")


@command("sunsubscribe", -1, "pubsub noscript loading stale", keys=(1, -1, 1), group="pubsub",
         since="7.0.0", acl="@pubsub @slow",
         summary="Stop listening for messages posted to the given shard channels",
         synopsis="[shardchannel [shardchannel ...]]")
def cmd_sunsubscribe(s, argv):
    return _unsubscribe(s, argv, True, b"sunsubscribe")


@command("psubscribe", -2, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         acl="@pubsub @slow",
         summary="Listen for messages published to channels matching the given patterns",
         synopsis="pattern [pattern ...]")
def cmd_psubscribe(s, argv):
    _needs_link(s, argv)
    pubsub = s.core.pubsub
    subs = pubsub.subs_of(s)
    frames = []
    for pattern in argv[1:]:
        pubsub.psubscribe(s, pattern)
        frames.append(frame(s.resp, [b"psubscribe", pattern, subs.count()]))
    _update_mode(s)
    return _answer(s, frames)


@command("punsubscribe", -1, "pubsub noscript loading stale", group="pubsub", since="2.0.0",
         acl="@pubsub @slow",
         summary="Stop listening for messages posted to channels matching the given patterns",
         synopsis="[pattern [pattern ...]]")
def cmd_punsubscribe(s, argv):
    pubsub = s.core.pubsub
    subs = pubsub.subs_of(s)
    patterns = argv[1:] if len(argv) > 1 else list(subs.patterns)
    frames = []
    for pattern in patterns:
        pubsub.punsubscribe(s, pattern)
        frames.append(frame(s.resp, [b"punsubscribe", pattern, subs.count()]))
    if not frames:
        frames.append(frame(s.resp, [b"punsubscribe", None, subs.count()]))
    _update_mode(s)
    return _answer(s, frames)


@command("publish", 3, "pubsub loading stale fast", group="pubsub", since="2.0.0",
         acl="@pubsub @fast", summary="Post a message to a channel",
         synopsis="channel message")
def cmd_publish(s, argv):
    return s.core.pubsub.publish(argv[1], argv[2])


@command("spublish", 3, "pubsub loading stale fast", keys=(1, 1, 1), group="pubsub",
         since="7.0.0", acl="@pubsub @fast", summary="Post a message to a shard channel",
         synopsis="shardchannel message")
def cmd_spublish(s, argv):
    return s.core.pubsub.publish(argv[1], argv[2], shard=True)


# --- PUBSUB ---------------------------------------------------------------------

@command("pubsub", -2, "", group="pubsub", since="2.8.0", acl="@slow",
         summary="A container for Pub/Sub commands", synopsis="")
def cmd_pubsub(s, argv):
    return dispatch_subcommand(s, argv)


@command("channels", -2, "pubsub loading stale", parent="pubsub", group="pubsub",
         since="2.8.0", acl="@pubsub @slow", summary="List active channels",
         synopsis="[pattern]")
def cmd_pubsub_channels(s, argv):
    if len(argv) > 3:
        raise _subcommand_syntax(argv)
    return s.core.pubsub.channel_list(argv[2] if len(argv) == 3 else None)


@command("numsub", -2, "pubsub loading stale", parent="pubsub", group="pubsub",
         since="2.8.0", acl="@pubsub @slow",
         summary="Get the count of subscribers for channels", synopsis="[channel [channel ...]]")
def cmd_pubsub_numsub(s, argv):
    pubsub = s.core.pubsub
    out: list = []
    for channel in argv[2:]:
        out += [channel, pubsub.numsub(channel)]
    return out


@command("numpat", 2, "pubsub loading stale", parent="pubsub", group="pubsub",
         since="2.8.0", acl="@pubsub @slow", summary="Get the count of unique patterns pattern subscriptions",
         synopsis="")
def cmd_pubsub_numpat(s, argv):
    return len(s.core.pubsub.patterns)


@command("shardchannels", -2, "pubsub loading stale", parent="pubsub", group="pubsub",
         since="7.0.0", acl="@pubsub @slow", summary="List active shard channels",
         synopsis="[pattern]")
def cmd_pubsub_shardchannels(s, argv):
    if len(argv) > 3:
        raise _subcommand_syntax(argv)
    return s.core.pubsub.channel_list(argv[2] if len(argv) == 3 else None, shard=True)


@command("shardnumsub", -2, "pubsub loading stale", parent="pubsub", group="pubsub",
         since="7.0.0", acl="@pubsub @slow",
         summary="Get the count of subscribers for shard channels",
         synopsis="[shardchannel [shardchannel ...]]")
def cmd_pubsub_shardnumsub(s, argv):
    pubsub = s.core.pubsub
    out: list = []
    for channel in argv[2:]:
        out += [channel, pubsub.numsub(channel, shard=True)]
    return out


@command("help", 2, "loading stale", parent="pubsub", group="pubsub", since="6.2.0", acl="@slow",
         summary="Show helpful text about the different subcommands", synopsis="")
def cmd_pubsub_help(s, argv):
    return [Simple(x) for x in _PUBSUB_HELP]


#: Redis 7.0.15's PUBSUB HELP, line for line.
_PUBSUB_HELP = (
    "PUBSUB <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "CHANNELS [<pattern>]",
    "    Return the currently active channels matching a <pattern> (default: '*').",
    "NUMPAT",
    "    Return number of subscriptions to patterns.",
    "NUMSUB [<channel> ...]",
    "    Return the number of subscribers for the specified channels, excluding",
    "    pattern subscriptions(default: no channels).",
    "SHARDCHANNELS [<pattern>]",
    "    Return the currently active shard level channels matching a <pattern> (default: '*').",
    "SHARDNUMSUB [<shardchannel> ...]",
    "    Return the number of subscribers for the specified shard level channel(s)",
    "HELP",
    "    Prints this help.",
)


# --- RESET ------------------------------------------------------------------------

@command("reset", 1, "noscript loading stale fast no_auth allow_busy", group="connection",
         since="6.2.0", acl="@fast @connection", summary="Reset the connection", synopsis="")
def cmd_reset(s, argv):
    """Redis's clearClientConnectionState: the connection as a new one, but for its id.

    Leaves MULTI (the queue dropped) and MONITOR, forgets WATCHes and
    subscriptions (no confirmations are sent), CLIENT REPLY back to ON,
    database 0, RESP2, the name cleared, and the client must authenticate
    again if a password is set.
    """
    from .transactions import end_multi, forget_client
    core = s.core
    if s.mode == MULTI:
        end_multi(s)
    forget_client(s)
    s.watch_dirty = False
    if s.mode == MONITOR or s in core.monitors:
        core.monitors.discard(s)
    core.pubsub.forget(s)
    s.mode = NORMAL
    s.mode_before_multi = NORMAL
    s.select(0)
    s.resp = 2
    s.authenticated = not core.config.requirepass
    s.name = b""
    s.reply_mode = REPLY_ON
    return Simple("RESET")
