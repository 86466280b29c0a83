"""A Lua 5.1 implementation in pure Python, for Redis scripting (EVAL, EVALSHA).

Layout (each module's docstring says more):

* ``value.py``: how Lua values are Python objects (the contract every part
  keeps), :class:`LuaTable`, :class:`LuaError`, raw ``tostring``/``tonumber``.
* the language: lexer, parser, compiler (Lua source to Python source,
  compiled once per chunk), the runtime (globals, metatables, arithmetic and
  indexing with Lua's errors, the interruption hook) and the base library.
* the libraries Redis scripts use: ``string`` (with Lua patterns),
  ``table``, ``math``, ``cjson``, ``bit``, ``struct``, ``cmsgpack``.

The Redis side (KEYS/ARGV, ``redis.call``, the sandbox Redis puts around a
script, the script cache) is ``kvserver.scripting``.
"""

from .value import LuaError, LuaSyntaxError, LuaTable, tonumber, tostring, type_name

__all__ = ["LuaError", "LuaSyntaxError", "LuaTable", "tonumber", "tostring", "type_name"]
