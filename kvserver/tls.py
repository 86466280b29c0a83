"""TLS for the listener, with the standard ``ssl`` module and redis-server's option names.

``tls-port`` opens a second listener whose connections are ordinary
:class:`~kvserver.connection.Connection` objects on an SSL transport: the
same parser, limits, authentication and backpressure. ``tls-auth-clients``
decides whether a client certificate signed by ``tls-ca-cert-file`` is
required (``yes``, Redis's default), checked if offered (``optional``) or
ignored (``no``).
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from asyncio import sslproto
from typing import Callable

from .config import Config

#: A client that has not finished its TLS handshake by then is dropped, from
#: accept() on (including the time before it sends anything). Such a client is
#: not yet a Connection (neither `timeout` nor CLIENT LIST sees it), though it
#: counts against maxclients; a real handshake takes milliseconds.
HANDSHAKE_TIMEOUT = 10.0
#: Bytes read from a TLS socket at a time (Redis reads 16 KiB per call,
#: PROTO_IOBUF_LEN; a TLS record holds at most 16 KiB of data). asyncio's
#: default, 256 KiB, is allocated for every connection as it is accepted, and
#: was most of the ~300 KB each silent TLS client cost.
TLS_READ_SIZE = 16 * 1024


class _ServerSSLProtocol(sslproto.SSLProtocol):
    """asyncio's TLS layer with a Redis-sized read buffer (TLS_READ_SIZE)."""

    max_size = TLS_READ_SIZE


async def _readable(sock: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    ready = loop.create_future()
    fd = sock.fileno()
    loop.add_reader(fd, lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(fd)


async def serve_tls(sock: socket.socket, protocol_factory: Callable[[], asyncio.Protocol],
                    context: ssl.SSLContext) -> None:
    """Run the server side of a TLS handshake on an accepted socket, then hand the
    connection to a protocol from ``protocol_factory`` (its connection_made runs
    once the handshake is done).

    Nothing is allocated for TLS until the client sends its first bytes, so a
    silent connection costs a socket and a task. The caller bounds the whole
    wait (HANDSHAKE_TIMEOUT). Raises OSError (ssl.SSLError included) if the
    handshake fails; the socket is closed then, and on cancellation.
    """
    loop = asyncio.get_running_loop()
    try:
        await _readable(sock)
        if not sock.recv(1, socket.MSG_PEEK):
            raise ConnectionResetError("the client left before its TLS handshake")
    except BaseException:
        sock.close()
        raise
    handshake_done = loop.create_future()
    tls = _ServerSSLProtocol(loop, protocol_factory(), context, handshake_done, server_side=True,
                             ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
    try:
        transport, _ = await loop.connect_accepted_socket(lambda: tls, sock)
    except BaseException:
        sock.close()
        raise
    try:
        await handshake_done
    except BaseException:
        transport.close()
        raise

_VERIFY = {"yes": ssl.CERT_REQUIRED, "optional": ssl.CERT_OPTIONAL, "no": ssl.CERT_NONE}


class TLSConfigError(ValueError):
    """The TLS options are incomplete or a file cannot be loaded; the message says which."""


def server_context(config: Config) -> ssl.SSLContext:
    """Build the listener's SSLContext from the ``tls-*`` options. Raises TLSConfigError."""
    if not config.tls_cert_file or not config.tls_key_file:
        raise TLSConfigError("tls-port needs tls-cert-file and tls-key-file")
    verify = _VERIFY[config.tls_auth_clients]
    if verify != ssl.CERT_NONE and not config.tls_ca_cert_file:
        raise TLSConfigError(f"tls-auth-clients {config.tls_auth_clients} needs tls-ca-cert-file "
                             "(or set tls-auth-clients no)")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # TLS 1.2 and 1.3 are Redis's default tls-protocols.
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(config.tls_cert_file, config.tls_key_file)
    except (OSError, ssl.SSLError) as exc:
        raise TLSConfigError(f"cannot load tls-cert-file {config.tls_cert_file} / "
                             f"tls-key-file {config.tls_key_file}: {exc}") from None
    if config.tls_ca_cert_file:
        try:
            ctx.load_verify_locations(cafile=config.tls_ca_cert_file)
        except (OSError, ssl.SSLError) as exc:
            raise TLSConfigError(f"cannot load tls-ca-cert-file "
                                 f"{config.tls_ca_cert_file}: {exc}") from None
    ctx.verify_mode = verify
    return ctx
