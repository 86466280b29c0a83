"""Value kinds and their codecs: one module per kind, one registry.

A *kind* is what a key holds (string today; hash, list, set, zset later).
Each kind is described by one :class:`Codec`, defined in its own module
(``string.py``) and registered here:

* ``kind``: the byte that marks the kind in checkpoint entries (never reused);
* ``name``: what TYPE, SCAN ... TYPE and OBJECT ENCODING's neighbours call it;
* ``pytype``: the Python class of its values in the keyspace (exactly: the
  keyspace tests ``type(value) is codec.pytype``, no subclasses);
* ``encoding(value)``: the name OBJECT ENCODING reports;
* ``encode(value) -> bytes-like`` and ``decode(buffer) -> value``: the
  checkpoint payload (and, later, replication's full sync);
* ``size(value)``: a cheap estimate of the encoded size in bytes, without
  encoding (for the kinds to come: deciding to cut one huge aggregate over
  several checkpoint slices, memory accounting); the checkpoint counts the
  bytes it actually encoded;
* ``snapshot_copy(value)``: a copy a running checkpoint keeps when a
  command is about to change the value in place (None for immutable kinds:
  the value itself is then the pre-image);
* ``encode_blocks(value)`` (optional): the payload as an iterator of pieces,
  so the checkpoint can spread one huge value over several slices (turns of
  the loop) instead of encoding it in one stall. A kind that has it must
  make ``size`` exact and ``snapshot_copy`` cheap (the checkpoint encodes a
  copy, since the live value may change between slices).

Adding a kind: write ``types/<kind>.py`` defining its codec as a module-level
:class:`Codec`; :func:`_load` imports every module of this package and
registers the codecs it finds, so nothing else names the new module and
nothing else in the checkpoint changes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, Callable, Iterable


@dataclass(frozen=True, eq=False)
class Codec:
    kind: int
    name: str
    pytype: type
    encoding: Callable[[Any], str]
    encode: Callable[[Any], Any]
    decode: Callable[[Any], Any]
    size: Callable[[Any], int]
    snapshot_copy: Callable[[Any], Any] | None = None
    encode_blocks: Callable[[Any], Iterable[bytes]] | None = None


#: kind byte -> codec (the checkpoint loader's table).
BY_KIND: dict[int, Codec] = {}
#: Python type of a value -> codec (TYPE, the checkpoint writer, the accessors).
BY_TYPE: dict[type, Codec] = {}


def register(codec: Codec) -> Codec:
    if not 0 < codec.kind < 255:
        raise ValueError(f"kind byte {codec.kind} out of range (1..254; 255 ends a checkpoint)")
    if codec.kind in BY_KIND or codec.pytype in BY_TYPE:
        raise ValueError(f"kind {codec.name} registered twice")
    BY_KIND[codec.kind] = codec
    BY_TYPE[codec.pytype] = codec
    return codec


def codec_of(value: object) -> Codec:
    """The codec of a stored value (KeyError for a value no kind owns: a bug)."""
    return BY_TYPE[type(value)]


def type_name(value: object) -> str:
    """What TYPE replies for a stored value (None: ``none``)."""
    if value is None:
        return "none"
    return BY_TYPE[type(value)].name


_U32 = struct.Struct("<I")


def pack_strings(count: int, strings: Iterable[bytes]) -> bytes:
    """A checkpoint payload of ``count`` entries: ``u32 count``, then each string
    as ``u32 length`` + bytes (a hash's entry is two strings, field and value)."""
    pack = _U32.pack
    parts = [pack(count)]
    for item in strings:
        parts += (pack(len(item)), item)
    return b"".join(parts)


def unpack_strings(buffer: Any, per_entry: int, what: str) -> list[bytes]:
    """The strings of a :func:`pack_strings` payload (``per_entry`` per entry, in
    order). ValueError, naming ``what``, if a string runs past the payload or
    bytes follow the last one."""
    view = memoryview(buffer)
    unpack = _U32.unpack_from
    (count,) = unpack(view, 0)
    pos = 4
    out = []
    for _ in range(count * per_entry):
        (n,) = unpack(view, pos)
        item = bytes(view[pos + 4:pos + 4 + n])
        pos += 4 + n
        if len(item) != n:
            raise ValueError(f"{what} entry runs past its payload")
        out.append(item)
    if pos != len(view):
        raise ValueError(f"{len(view) - pos} bytes after the {what}'s last entry")
    return out


def _load() -> None:
    """Import every module of this package and register each Codec it defines.

    The one place kinds are found (as ``commands._load`` finds command
    families): a new kind is a new module here. Modules load in name order;
    a codec one module imports from another is registered once.
    """
    import importlib
    import pkgutil
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Codec) and BY_KIND.get(value.kind) is not value:
                register(value)


_load()

from .string import STRING  # noqa: E402  (registered by _load; the common import)

__all__ = ["BY_KIND", "BY_TYPE", "Codec", "STRING", "codec_of", "register", "type_name"]
