"""kvserver: a durable, Redis-compatible key-value server (standard library only)."""

__version__ = "0.2.0"
#: The Redis version whose commands and replies we follow; reported as
#: ``redis_version`` so tools that check it (redis-cli, clients) behave.
REDIS_COMPAT_VERSION = "7.0.15"
