"""Connection URLs: ``kv://``, ``redis://`` and ``unix://``.

Forms accepted (``[...]`` is optional)::

    kv://[[username]:password@]host[:port][/db][?option=value...]
    redis://...                       the same, for tools that only know Redis URLs
    unix://[[username]:password@]/path/to/socket[?db=N&...]

Userinfo follows redis-cli's ``-u`` rules: ``user:pass@`` gives both,
``:pass@`` and ``pass@`` give only a password. Percent-escapes are decoded.
Query options: ``db``, ``password``, ``username``, ``timeout`` (seconds) and
``resp`` (``2`` or ``3``; ``protocol`` is accepted as a synonym).
TLS (``rediss://``, ``kvs://``) is not supported and is refused by name.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6379

_TCP_SCHEMES = ("kv", "redis")
_TLS_SCHEMES = ("rediss", "kvs")
_QUERY_OPTIONS = ("db", "password", "username", "timeout", "resp", "protocol")


def parse_url(url: str) -> dict[str, Any]:
    """Return the keyword arguments for ``Client(...)`` that ``url`` describes.

    Raises ValueError for an unsupported scheme (TLS included), a bad port or
    database number, or an unknown query option.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in _TLS_SCHEMES:
        raise ValueError(f"{scheme}:// (TLS) is not supported by this client; "
                         "use kv://, redis:// or unix://")
    kwargs: dict[str, Any] = {}
    if scheme in _TCP_SCHEMES:
        try:
            port = parts.port
        except ValueError:
            raise ValueError(f"invalid port in URL {url!r}") from None
        kwargs["host"] = parts.hostname or DEFAULT_HOST
        kwargs["port"] = port if port is not None else DEFAULT_PORT
        path = parts.path.strip("/")
        if path:
            kwargs["db"] = _db(path, url)
    elif scheme == "unix":
        if not parts.path:
            raise ValueError(f"no socket path in URL {url!r}")
        kwargs["unix_socket"] = unquote(parts.path)
    else:
        raise ValueError(f"unsupported URL scheme in {url!r}: use kv://, redis:// or unix://")

    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        user, colon, password = userinfo.partition(":")
        if colon:
            if user:
                kwargs["username"] = unquote(user)
            kwargs["password"] = unquote(password)
        else:
            kwargs["password"] = unquote(user)

    for name, values in parse_qs(parts.query, keep_blank_values=True).items():
        if name not in _QUERY_OPTIONS:
            raise ValueError(f"unknown option {name!r} in URL {url!r}")
        value = values[-1]
        if name == "db":
            kwargs["db"] = _db(value, url)
        elif name == "timeout":
            try:
                kwargs["timeout"] = float(value)
            except ValueError:
                raise ValueError(f"invalid timeout {value!r} in URL {url!r}") from None
        elif name in ("resp", "protocol"):
            if value not in ("2", "3"):
                raise ValueError(f"invalid RESP version {value!r} in URL {url!r}")
            kwargs["resp"] = int(value)
        else:
            kwargs[name] = value
    return kwargs


def _db(text: str, url: str) -> int:
    if not text.isdigit():
        raise ValueError(f"invalid database number {text!r} in URL {url!r}")
    return int(text)
