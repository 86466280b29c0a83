"""TLS for the listener, with the standard ``ssl`` module and redis-server's option names.

``tls-port`` opens a second listener whose connections are ordinary
:class:`~kvserver.connection.Connection` objects on an SSL transport: the
same parser, limits, authentication and backpressure. ``tls-auth-clients``
decides whether a client certificate signed by ``tls-ca-cert-file`` is
required (``yes``, Redis's default), checked if offered (``optional``) or
ignored (``no``).
"""

from __future__ import annotations

import ssl

from .config import Config

#: A client that has not finished its TLS handshake by then is dropped. Such
#: a client is not yet a Connection (no timeout sweep sees it), so this is
#: what stops a slowloris from holding sockets open during the handshake.
HANDSHAKE_TIMEOUT = 10.0

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
