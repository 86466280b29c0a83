"""The bundled kvserver clients: blocking, asyncio, and the ``kvcli`` shell.

>>> from clients import Client
>>> with Client(port=6379) as c:          # doctest: +SKIP
...     c.set("greeting", "hello")
...     c.get("greeting")
True
b'hello'

``AsyncClient`` (in :mod:`clients.aio`) is imported on first use, so the
blocking client and ``kvcli`` do not pay for loading asyncio.
"""

from __future__ import annotations

from typing import Any

from .client import Client, Pipeline, from_url
from .errors import (BusyError, ClientConnectionError, ClientProtocolError,
                     ClientTimeoutError, ExecAbortError, LoadingError, MisconfError,
                     NoAuthError, NoPermError, NoScriptError, OutOfMemoryError,
                     ReadOnlyError, ResponseError, ServerError, WrongPassError,
                     WrongTypeError, error_from_reply)
from .url import parse_url

__all__ = [
    "AsyncClient", "AsyncPipeline", "Client", "Pipeline", "from_url", "parse_url",
    "error_from_reply", "ServerError", "ResponseError", "WrongTypeError", "NoAuthError",
    "WrongPassError", "NoPermError", "LoadingError", "BusyError", "ReadOnlyError",
    "ExecAbortError", "NoScriptError", "OutOfMemoryError", "MisconfError",
    "ClientConnectionError", "ClientTimeoutError", "ClientProtocolError",
]


def __getattr__(name: str) -> Any:
    if name in ("AsyncClient", "AsyncPipeline"):
        from . import aio

        return getattr(aio, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
