"""AUTH: the default user's password (``requirepass``)."""

from __future__ import annotations

import hashlib
import hmac

from ..errors import CommandError
from ..protocol import OK
from . import command

_NO_PASSWORD = ("ERR AUTH <password> called without any password configured for the "
                "default user. Are you sure your configuration is correct?")
_WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled."


def password_matches(given: bytes, expected: bytes) -> bool:
    """Compare in time independent of where they differ and of their lengths.

    Both sides are hashed first (as Redis 7 does with SHA-256), so
    ``compare_digest`` sees equal lengths and leaks neither a matching
    prefix nor the configured password's length.
    """
    return hmac.compare_digest(hashlib.sha256(given).digest(), hashlib.sha256(expected).digest())


def check_password(s, user: bytes, password: bytes) -> None:
    """Authenticate ``s`` as ``user`` or raise WRONGPASS."""
    expected = s.core.config.requirepass.encode()
    ok = user == b"default" and (not expected or password_matches(password, expected))
    if not ok:
        raise CommandError(_WRONGPASS)
    s.authenticated = True


@command("auth", -2, "noscript loading stale fast no_auth", group="connection", since="1.0.0",
         acl="@fast @connection", summary="Authenticate to the server",
         synopsis="[username] password")
def cmd_auth(s, argv):
    if len(argv) > 3:
        raise CommandError("ERR syntax error")
    if len(argv) == 2:
        if not s.core.config.requirepass:
            raise CommandError(_NO_PASSWORD)
        check_password(s, b"default", argv[1])
    else:
        check_password(s, argv[1], argv[2])
    return OK
