"""The string kind: values are immutable ``bytes``.

Checkpoint payload: the bytes themselves. Immutable, so a running
checkpoint keeps the old object itself as the pre-image (no copy).
"""

from __future__ import annotations

from . import Codec


def _encoding(value: bytes) -> str:
    # Redis: "int" for a 64-bit integer in canonical form, "embstr" up to 44
    # bytes, "raw" beyond.
    if len(value) <= 20 and value[:1] != b"0" or value == b"0":
        try:
            n = int(value)
        except ValueError:
            n = None
        if n is not None and b"%d" % n == value and -(1 << 63) <= n < (1 << 63):
            return "int"
    return "embstr" if len(value) <= 44 else "raw"


STRING = Codec(
    kind=1,
    name="string",
    pytype=bytes,
    encoding=_encoding,
    encode=lambda value: value,
    decode=bytes,
    size=len,
    snapshot_copy=None,
)
