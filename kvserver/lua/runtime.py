"""The Lua runtime: globals, metatables, the slow paths of every operation, errors.

:class:`Runtime` is the interface the libraries and the scripting layer use
(see LUA_CONTRACT.md): ``compile``, ``call``, ``tostring``, ``lt``/``le``/
``eq``, ``hook``/``check_hook``, ``globals``, ``string_meta``.

The compiled code (see :mod:`kvserver.lua.compiler`) runs fast paths inline
and calls the helpers made here (``_index``, ``_add``, ``_callable``...) for
everything else: metamethods, string coercion, and the errors, which carry
Lua 5.1's text ("attempt to index global 'x' (a nil value)").

Error positions: a helper raises a :class:`LuaError` without a position; the
first place that catches it (``pcall``, ``xpcall``, or the chunk's entry)
prefixes ``chunkname:line:`` of the innermost Lua function in the
traceback, which is also how Lua positions errors raised by C functions
(luaL_where(L, 1)). Errors that already carry their final value (``error``
with a level, non-string error values) are marked and left alone.
"""

from __future__ import annotations

import math
import re
import sys
import types
import warnings
from typing import Any, Callable

from .compiler import generate
from .parser import parse
from .value import LuaError, LuaSyntaxError, LuaTable, number_to_bytes, tonumber, type_name

_FN = types.FunctionType
_NUM = frozenset((int, float))
_N1 = (None,)
_M53 = 9007199254740992
_INF = math.inf
_NEGNAN = _INF - _INF          # what 0/0 gives in C on x86 (prints "-nan")
_NAN = -_NEGNAN

_THIS_FILE = __file__
MAXTAGLOOP = 100               # lvm.c: __index/__newindex chains longer than this are loops
# Longest string '..' may build (not in Lua, which grows until memory runs out):
# Redis's proto-max-bulk-len default, the same cap lib_string puts on rep/gsub/concat.
MAX_STRING = 512 * 1024 * 1024
# Python's recursion limit while a chunk runs: a Lua call takes one Python frame
# (two or three through pcall or a metamethod), so Lua code recurses about 2900
# deep before "stack overflow" (C Lua: 20000). Measured: every recursion shape
# of tests/test_lua_core.py survives 4000 in a thread with a 2 MB stack, not 8000.
LUA_RECURSION_LIMIT = 3000
DEFAULT_HOOK_INTERVAL = 1000
# Nesting allowed while parsing/compiling a chunk (MAX_LEVELS levels each take a few frames).
_COMPILE_RECURSION = 6000

_ARITH_EVENTS = {"+": b"__add", "-": b"__sub", "*": b"__mul", "/": b"__div",
                 "%": b"__mod", "^": b"__pow"}


def positioned(e: LuaError) -> LuaError:
    """Mark e as final: no position is added to it any more."""
    e.lua_positioned = True
    return e


def lua_where(frame) -> bytes:
    """'chunk:line:' of the innermost Lua function at or above frame, or b''."""
    while frame is not None:
        info = frame.f_globals.get("__lua_chunk__")
        if info is not None:
            name, linemap = info
            ln = frame.f_lineno
            line = linemap[ln] if 0 < ln < len(linemap) else 0
            return b"%s:%d:" % (name, line)
        frame = frame.f_back
    return b""


def level_frame(frame, level: int):
    """The frame of the function at call level ``level`` above ``frame`` (level 0).

    Levels count Lua functions and builtins ("C functions"), as lua_getstack
    does; this module's frames (call helpers, metamethod dispatch) are not
    functions at the Lua level and are skipped. None if there are not so many.
    """
    f = frame.f_back
    n = 0
    while f is not None:
        if f.f_code.co_filename != _THIS_FILE:
            n += 1
            if n == level:
                return f
        f = f.f_back
    return None


def _tb_where(tb) -> bytes:
    """'chunk:line:' of the innermost Lua frame of a traceback, or b''."""
    where = b""
    while tb is not None:
        info = tb.tb_frame.f_globals.get("__lua_chunk__")
        if info is not None:
            name, linemap = info
            ln = tb.tb_lineno
            line = linemap[ln] if 0 < ln < len(linemap) else 0
            where = b"%s:%d:" % (name, line)
        tb = tb.tb_next
    return where


def _innermost_lua_tb(tb):
    """The traceback entry of the innermost Lua frame (or None), and whether the
    builtin that raised was called by it directly: below the Lua frame, after
    the runtime's own helper frames, the first other frame is the callee; if
    the runtime appears again below that, the callee called a function back
    (pcall, sort's comparator) and the raiser was not called by Lua code."""
    found = None
    state = 0
    while tb is not None:
        f = tb.tb_frame
        if "__lua_chunk__" in f.f_globals:
            found = tb
            state = 0
        elif found is not None:
            helper = f.f_code.co_filename == _THIS_FILE
            if state == 0 and not helper:
                state = 1
            elif state == 1 and helper:
                state = 2
        tb = tb.tb_next
    return found, found is not None and state != 2


_DESC = re.compile(r"""_callable\([^,()]*, (None|"[^"]*"|'[^']*')\)\)$""")


def call_site_name(tb) -> tuple[str, bool] | None:
    """(name, is_method) of the call a Lua frame was making, as Lua's getfuncname
    tells it ("rep" and True for s:rep()); None if it cannot be told."""
    code = tb.tb_frame.f_code
    lines = tb.tb_frame.f_globals.get("__lua_source__")
    if lines is None:
        return None
    try:
        pos = list(code.co_positions())[tb.tb_lasti // 2]
    except (IndexError, ValueError):
        return None
    line, end_line, col, end_col = pos
    if line is None or col is None:
        return None
    text = "\n".join(lines[line - 1:end_line])
    end = len(text) - (len(lines[end_line - 1]) - end_col)
    text = text[col:end]
    # the call is "(callee)(args)": find the callee's closing parenthesis
    depth = 0
    quote = None
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                m = _DESC.search(text[:i + 1])
                if m is None:
                    return None
                desc = m.group(1)
                if desc == "None":
                    return "?", False
                kind, _, name = desc[1:-1].partition(" ")
                return name.strip("'"), kind == "method"
    return None


def fix_error(e: LuaError) -> LuaError:
    """Give e its Lua position (once), as the catcher of a Lua error must.

    An argument error of a builtin (one carrying ``arg_n``, ``extramsg``, as
    libargs.arg_error makes them) is renamed as luaL_argerror does: the name
    the call site used, '?' when a builtin called it, and for a method call
    (``s:rep()``) the number shifted past self.
    """
    if getattr(e, "lua_positioned", False):
        return e
    e.lua_positioned = True
    v = e.value
    if type(v) is bytes:
        tb, direct = _innermost_lua_tb(e.__traceback__)
        if getattr(e, "arg_n", None) is not None and getattr(e, "extramsg", None) is not None:
            n = e.arg_n
            extramsg = e.extramsg
            site = call_site_name(tb) if (tb is not None and direct) else None
            name, is_method = site if site is not None else ("?", False)
            if tb is not None and not direct:
                name, is_method = "?", False
            if is_method:
                n -= 1
                if n == 0:
                    v = b"calling '%s' on bad self (%s)" % (name.encode("latin-1"), extramsg)
            if not (is_method and n == 0):
                v = b"bad argument #%d to '%s' (%s)" % (n, name.encode("latin-1"), extramsg)
        if tb is not None:
            info = tb.tb_frame.f_globals["__lua_chunk__"]
            ln = tb.tb_lineno
            linemap = info[1]
            line = linemap[ln] if 0 < ln < len(linemap) else 0
            v = b"%s:%d: %s" % (info[0], line, v)
        e.value = v
        e.args = (v,)
    return e


def stack_overflow(exc: BaseException) -> LuaError:
    where = _tb_where(exc.__traceback__)
    msg = where + b" stack overflow" if where else b"stack overflow"
    return positioned(LuaError(msg))


def chunkid(source: bytes) -> str:
    """luaO_chunkid for a chunk named by its source (loadstring's default)."""
    first = source
    for i, c in enumerate(source):
        if c == 10 or c == 13:
            first = source[:i]
            break
    limit = 60 - 16
    text = first[:limit].decode("latin-1")
    if len(first) > limit or len(first) < len(source):
        return f'[string "{text}..."]'
    return f'[string "{text}"]'


class Runtime:
    """One Lua state: globals, the string metatable, the hook and compiled chunks."""

    def __init__(self) -> None:
        self.globals = LuaTable()
        self.string_meta = LuaTable()
        self.hook: Callable[[], None] | None = None
        self._hook_interval = DEFAULT_HOOK_INTERVAL
        self._hook_count = DEFAULT_HOOK_INTERVAL
        self.print_handler: Callable[[bytes], None] | None = None
        self._running = False           # a chunk is running (nested chunks keep its limit)
        self._helpers = self._make_helpers()
        # the comparison helpers themselves, not methods that look them up
        # (table.sort calls them once per comparison)
        self.lt = self._helpers["_lt"]
        self.le = self._helpers["_le"]
        self.eq = self._helpers["_eq"]
        from . import baselib
        baselib.open(self)
        self._open_optional_libs()

    @property
    def hook_interval(self) -> int:
        return self._hook_interval

    @hook_interval.setter
    def hook_interval(self, n: int) -> None:
        self._hook_interval = max(1, int(n))
        self._hook_count = self._hook_interval

    # -- libraries ---------------------------------------------------------------
    def _open_optional_libs(self) -> None:
        import importlib
        for name, gname in (("lib_string", b"string"), ("lib_table", b"table"),
                            ("lib_math", b"math")):
            try:
                mod = importlib.import_module(f"kvserver.lua.{name}")
            except ImportError:
                continue
            lib = mod.open(self)
            if isinstance(lib, LuaTable):
                if self.globals.get(gname) is None:
                    self.globals.set(gname, lib)
                if gname == b"string" and self.string_meta.get(b"__index") is None:
                    self.string_meta.set(b"__index", lib)

    # -- the public interface ------------------------------------------------------
    def compile(self, source: bytes, chunkname: str = "user_script") -> Callable[..., tuple]:
        """Compile a chunk once; the result runs it: ``fn(*args) -> tuple``."""
        if isinstance(source, str):
            source = source.encode("latin-1")
        old = sys.getrecursionlimit()
        if old < _COMPILE_RECURSION:
            sys.setrecursionlimit(_COMPILE_RECURSION)
        try:
            tree = parse(source, chunkname)
            pysrc, linemap = generate(tree, chunkname)
            try:
                with warnings.catch_warnings():
                    # "is" against a literal is intended: Lua's identity tests on constants
                    warnings.simplefilter("ignore")
                    code = compile(pysrc, f"<lua {chunkname}>", "exec")
            except (SyntaxError, RecursionError, MemoryError, ValueError):
                # Python's own nesting limits are below Lua's in rare shapes
                raise LuaSyntaxError(f"{chunkname}:1: chunk has too many syntax levels"
                                     .encode("latin-1")) from None
        except RecursionError:
            raise LuaSyntaxError(f"{chunkname}:1: chunk has too many syntax levels"
                                 .encode("latin-1")) from None
        finally:
            if old < _COMPILE_RECURSION:
                sys.setrecursionlimit(old)
        g = dict(self._helpers)
        g["__lua_chunk__"] = (chunkname.encode("latin-1"), linemap)
        g["__lua_source__"] = pysrc.split("\n")     # read only to name a call site in an error
        g["_hc"] = self.hook_interval
        g["__builtins__"] = {}
        rt = self

        def _tick() -> int:
            n = g["_hc"] = rt.hook_interval
            hook = rt.hook
            if hook is not None:
                hook()
            return n
        g["_tick"] = _tick
        exec(code, g)
        main = g["_lua_main"]

        def chunk(*args: Any) -> tuple:
            # The outermost chunk runs under LUA_RECURSION_LIMIT whatever the
            # process's limit is: deep Lua recursion then stops with "stack
            # overflow" long before the C stack (2 MB in the smallest thread
            # stacks measured) can overflow. A chunk called from a running one
            # (loadstring) keeps the limit it finds.
            outermost = not rt._running
            changed = False
            if outermost:
                old = sys.getrecursionlimit()
                if old != LUA_RECURSION_LIMIT:
                    try:
                        sys.setrecursionlimit(LUA_RECURSION_LIMIT)
                        changed = True
                    except RecursionError:      # already deeper than that: keep the limit
                        pass
                rt._running = True
            try:
                return main(*args)      # one frame: the script's own code is next
            except LuaError as e:
                fix_error(e)
                raise
            except RecursionError as e:
                raise stack_overflow(e) from None
            except MemoryError:
                raise positioned(LuaError(b"not enough memory")) from None
            finally:
                if outermost:
                    rt._running = False
                    if changed:
                        sys.setrecursionlimit(old)
        return chunk

    def call(self, f: Any, *args: Any) -> tuple:
        """Call any Lua value (functions, tables with __call)."""
        if type(f) is _FN:
            return f(*args)
        return self._helpers["_callable"](f, None)(*args)

    def tostring(self, v: Any) -> bytes:
        t = type(v)
        if t is bytes:
            return v
        if t is int or t is float:
            return number_to_bytes(v)
        mt = self.getmetatable(v)
        if mt is not None:
            h = mt.get(b"__tostring")
            if h is not None:
                r = self.call(h, v)
                r = r[0] if r else None
                if type(r) is bytes:
                    return r
                if type(r) in _NUM:
                    return number_to_bytes(r)
                raise LuaError(b"'__tostring' must return a string")
        if v is None:
            return b"nil"
        if t is bool:
            return b"true" if v else b"false"
        return b"%s: 0x%08x" % (type_name(v).encode(), id(v) & 0xFFFFFFFFFFFF)

    # lt(a, b), le(a, b), eq(a, b): Lua's <, <= and == with metamethods
    # (instance attributes set in __init__)

    def index(self, o: Any, k: Any) -> Any:
        return self._helpers["_index"](o, k, None)

    def setindex(self, o: Any, k: Any, v: Any) -> None:
        self._helpers["_setindex"](o, k, v, None)

    def check_hook(self) -> None:
        """Libraries call this inside long loops; it calls the hook every hook_interval calls."""
        self._hook_count -= 1
        if self._hook_count < 0:
            self._hook_count = self.hook_interval
            hook = self.hook
            if hook is not None:
                hook()

    def getmetatable(self, v: Any) -> LuaTable | None:
        t = type(v)
        if t is LuaTable:
            return v.metatable
        if t is bytes:
            return self.string_meta
        return None

    def error(self, msg: bytes, level: int = 1) -> LuaError:
        """A LuaError positioned as luaL_error would (level 1: the calling Lua code)."""
        if level > 0:
            f = level_frame(sys._getframe(1), level)
            if f is not None and "__lua_chunk__" in f.f_globals:
                msg = lua_where(f) + b" " + msg
        return positioned(LuaError(msg))

    # -- the helpers the generated code calls ------------------------------------------
    def _make_helpers(self) -> dict:
        rt = self
        G = self.globals
        Gh = G.hash
        string_meta = self.string_meta
        LT = LuaTable

        def metatable(v):
            t = type(v)
            if t is LT:
                return v.metatable
            if t is bytes:
                return string_meta
            return None

        def tm(v, event):
            mt = metatable(v)
            if mt is None:
                return None
            return mt.hash.get(event)

        def first(r):
            return r[0] if r else None

        def typeerror(v, op, desc):
            if desc:
                return LuaError(b"attempt to %s %s (a %s value)"
                                % (op, desc.encode("latin-1"), type_name(v).encode()))
            return LuaError(b"attempt to %s a %s value" % (op, type_name(v).encode()))

        check_hook = rt.check_hook

        def call_tm(h, *args):
            # counted here: a metamethod may be a leaf function, which has no
            # hook call of its own, and metamethods can recurse without calls
            check_hook()
            if type(h) is _FN:
                return h(*args)
            return callable_(h, None)(*args)

        def callable_(f, desc):
            if type(f) is LT:
                h = tm(f, b"__call")
                # Lua calls __call only when it is a function (no chains)
                if h is not None and type(h) is not LT and callable(h) and type(h) is not bytes:
                    def bound(*args):
                        check_hook()
                        return h(f, *args)
                    return bound
            elif callable(f) and type(f) not in (bytes, bool, int, float):
                return f
            raise typeerror(f, b"call", desc)

        def index(o, k, desc=None):
            for _ in range(MAXTAGLOOP):
                if type(o) is LT:
                    v = o.get(k)
                    if v is not None:
                        return v
                    mt = o.metatable
                    if mt is None:
                        return None
                    h = mt.hash.get(b"__index")
                    if h is None:
                        return None
                else:
                    h = tm(o, b"__index")
                    if h is None:
                        raise typeerror(o, b"index", desc)
                if type(h) is not LT:
                    r = call_tm(h, o, k)
                    return r[0] if r else None
                o = h
                desc = None
            raise LuaError(b"loop in gettable")

        def setindex(o, k, v, desc=None):
            for _ in range(MAXTAGLOOP):
                if type(o) is LT:
                    mt = o.metatable
                    if mt is None:
                        o.set(k, v)
                        return
                    h = mt.hash.get(b"__newindex")
                    if h is None or o.get(k) is not None:
                        o.set(k, v)
                        return
                else:
                    h = tm(o, b"__newindex")
                    if h is None:
                        raise typeerror(o, b"index", desc)
                if type(h) is not LT:
                    call_tm(h, o, k, v)
                    return
                o = h
                desc = None
            raise LuaError(b"loop in settable")

        def getglobal(k):
            v = Gh.get(k)
            if v is not None or G.metatable is None:
                return v
            return index(G, k)

        def setglobal(k, v):
            if G.metatable is None:
                G._set_hash(k, v)
            else:
                setindex(G, k, v)

        tonum = tonumber

        def fl(r):
            if type(r) is int:
                try:
                    return float(r)
                except OverflowError:
                    return _INF if r > 0 else -_INF
            return r

        def mulfix(a, b):
            r = a * b
            if r == 0:
                return float(a) * float(b)     # Lua's doubles: 0 * -1 is -0
            return norm(r)

        def norm(r):
            if type(r) is int and not -_M53 < r < _M53:
                return fl(r)
            return r

        def arith_num(op, x, y):
            if op == "+":
                return norm(x + y)
            if op == "-":
                return norm(x - y)
            if op == "*":
                return norm(x * y)
            if op == "/":
                if y == 0:
                    if x == 0 or x != x:
                        return _NEGNAN if x == x else x
                    neg = (x < 0) != (math.copysign(1.0, y) < 0)
                    return -_INF if neg else _INF
                try:
                    return x / y
                except OverflowError:
                    return _INF if (x < 0) == (y < 0) else -_INF
            if op == "%":
                if type(x) is int and type(y) is int and y != 0:
                    return x % y
                x = float(x)
                y = float(y)
                q = arith_num("/", x, y)
                if q != q or q in (_INF, -_INF):
                    f = q
                else:
                    f = float(math.floor(q))
                r = x - f * y
                return r
            if op == "^":
                return pow_num(x, y)
            raise AssertionError(op)   # pragma: no cover

        def pow_num(x, y):
            try:
                r = math.pow(x, y)
            except ValueError:
                return _NEGNAN
            except OverflowError:
                # the magnitude overflowed: sign is negative only for a negative base with odd y
                if x < 0 and float(y).is_integer() and int(y) % 2 == 1:
                    return -_INF
                return _INF
            return r

        def arith(op, a, b, da, db):
            x = tonum(a)
            y = tonum(b)
            if x is not None and y is not None:
                return arith_num(op, x, y)
            event = _ARITH_EVENTS[op]
            h = tm(a, event)
            if h is None:
                h = tm(b, event)
            if h is not None:
                return first(call_tm(h, a, b))
            if x is None:
                raise typeerror(a, b"perform arithmetic on", da)
            raise typeerror(b, b"perform arithmetic on", db)

        def add(a, b, da=None, db=None):
            return arith("+", a, b, da, db)

        def sub(a, b, da=None, db=None):
            return arith("-", a, b, da, db)

        def mul(a, b, da=None, db=None):
            return arith("*", a, b, da, db)

        def div(a, b, da=None, db=None):
            return arith("/", a, b, da, db)

        def mod(a, b, da=None, db=None):
            return arith("%", a, b, da, db)

        def pow_(a, b, da=None, db=None):
            if type(a) in _NUM and type(b) in _NUM:
                return pow_num(a, b)
            return arith("^", a, b, da, db)

        def unm(a, desc=None):
            x = tonum(a)
            if x is not None:
                if x == 0:
                    return -float(x)
                return -x
            h = tm(a, b"__unm")
            if h is not None:
                return first(call_tm(h, a, a))
            raise typeerror(a, b"perform arithmetic on", desc)

        def len_(a, desc=None):
            if type(a) is LT:
                return a.length()
            if type(a) is bytes:
                return len(a)
            raise typeerror(a, b"get length of", desc)

        def tostr_operand(v):
            t = type(v)
            if t is bytes:
                return v
            if t is int or t is float:
                return number_to_bytes(v)
            return None

        def too_long():
            return LuaError(b"string length overflow")

        def concat2(a, b, da=None, db=None):
            x = tostr_operand(a)
            if x is not None:
                y = tostr_operand(b)
                if y is not None:
                    if len(x) + len(y) > MAX_STRING:
                        raise too_long()
                    return x + y
            h = tm(a, b"__concat")
            if h is None:
                h = tm(b, b"__concat")
            if h is not None:
                return first(call_tm(h, a, b))
            if x is not None:
                raise typeerror(b, b"concatenate", db)
            raise typeerror(a, b"concatenate", da)

        def concat(values, descs):
            parts = []
            total = 0
            for v in values:
                s = tostr_operand(v)
                if s is None:
                    break
                total += len(s)
                parts.append(s)
            else:
                if total > MAX_STRING:
                    raise too_long()
                return b"".join(parts)
            # a value needs a metamethod or is an error: right to left, as luaV_concat
            n = len(values)
            acc = values[-1]
            accdesc = descs[-1]
            i = n - 2
            while i >= 0:
                # collect the run of strings/numbers ending at i when acc is one too
                acc = concat2(values[i], acc, descs[i], accdesc)
                accdesc = None
                i -= 1
            return acc

        def order_error(a, b):
            t1 = type_name(a).encode()
            t2 = type_name(b).encode()
            if t1 == t2:
                return LuaError(b"attempt to compare two %s values" % t1)
            return LuaError(b"attempt to compare %s with %s" % (t1, t2))

        def order_tm(a, b, event):
            h1 = tm(a, event)
            if h1 is None:
                return None
            h2 = tm(b, event)
            if h2 is None or not (h1 is h2 or (type(h1) is not LT and h1 == h2 and type(h1) is type(h2))):
                return None
            r = first(call_tm(h1, a, b))
            return r is not None and r is not False

        def lt(a, b):
            ta = type(a)
            tb = type(b)
            if ta in _NUM and tb in _NUM:
                return a < b
            if ta is bytes and tb is bytes:
                return a < b
            if type_name(a) != type_name(b):
                raise order_error(a, b)
            r = order_tm(a, b, b"__lt")
            if r is None:
                raise order_error(a, b)
            return r

        def le(a, b):
            ta = type(a)
            tb = type(b)
            if ta in _NUM and tb in _NUM:
                return a <= b
            if ta is bytes and tb is bytes:
                return a <= b
            if type_name(a) != type_name(b):
                raise order_error(a, b)
            r = order_tm(a, b, b"__le")
            if r is not None:
                return r
            r = order_tm(b, a, b"__lt")
            if r is not None:
                return not r
            raise order_error(a, b)

        def eq(a, b):
            if a is b:
                return True
            ta = type(a)
            tb = type(b)
            if ta in _NUM:
                return tb in _NUM and a == b
            if ta is not tb:
                return False
            if ta is LT:
                mt1 = a.metatable
                mt2 = b.metatable
                if mt1 is None or mt2 is None:
                    return False
                h1 = mt1.hash.get(b"__eq")
                if h1 is None:
                    return False
                if mt1 is not mt2:
                    h2 = mt2.hash.get(b"__eq")
                    if not (h1 is h2 or (type(h1) is type(h2) and type(h1) is not LT and h1 == h2)):
                        return False
                r = first(call_tm(h1, a, b))
                return r is not None and r is not False
            return a == b

        def forrange(a, b, c):
            x = tonum(a)
            if x is None:
                raise LuaError(b"'for' initial value must be a number")
            y = tonum(b)
            if y is None:
                raise LuaError(b"'for' limit must be a number")
            z = tonum(c)
            if z is None:
                raise LuaError(b"'for' step must be a number")
            if type(x) is int and type(z) is int and z != 0:
                if type(y) is float:
                    if y != y:
                        return ()
                    if y in (_INF, -_INF):
                        return float_range(x, y, z)
                    y = math.floor(y) if z > 0 else math.ceil(y)
                return range(x, y + 1, z) if z > 0 else range(x, y - 1, z)
            return float_range(x, y, z)

        def float_range(x, y, z):
            if z > 0:
                while x <= y:
                    yield x
                    x = norm(x + z)
            else:
                while y <= x:
                    yield x
                    x = norm(x + z)

        def pairs_iter(t, n):
            arr = t.arr
            i = 0
            while i < len(arr):
                v = arr[i]
                i += 1
                if v is not None:
                    yield (i, v) if n == 2 else (i,)
            h = t.hash
            if not h:
                return
            for k in list(h):
                v = h.get(k)
                if v is not None:
                    if type(k) is _BoolKey:
                        k = k.value
                    yield (k, v) if n == 2 else (k,)

        def ipairs_iter(t, n):
            arr = t.arr
            i = 0
            while True:
                if i < len(arr):
                    v = arr[i]
                else:
                    v = t.hash.get(i + 1)
                if v is None:
                    return
                i += 1
                yield (i, v) if n == 2 else (i,)

        def forin(f, s, c, n):
            if n <= 2 and type(s) is LT and c is None and f is lua_next:
                return pairs_iter(s, n)
            if n <= 2 and type(s) is LT and type(c) is int and c == 0 and f is ipairs_aux:
                return ipairs_iter(s, n)
            return generic_for(f, s, c, n)

        def generic_for(f, s, c, n):
            call = f if type(f) is _FN else callable_(f, None)
            while True:
                r = call(s, c)
                if not r:
                    return
                c = r[0]
                if c is None:
                    return
                lr = len(r)
                if lr == n:
                    yield tuple(r)
                elif lr > n:
                    yield tuple(r[:n])
                else:
                    yield (*r, *((None,) * (n - lr)))

        def adjust(seq, n):
            ls = len(seq)
            if ls == n:
                return seq
            if ls > n:
                return seq[:n]
            return (*seq, *((None,) * (n - ls)))

        def newtable(arr, kvs):
            if kvs is None:
                while arr and arr[-1] is None:
                    arr.pop()
                return LT(arr)
            t = LT()
            for i in range(0, len(kvs), 2):
                v = kvs[i + 1]
                k = kvs[i]
                if k is None:
                    raise LuaError(b"table index is nil")
                if v is not None:
                    t.set(k, v)
            if arr:
                for i, v in enumerate(arr, 1):
                    t.set(i, v)
            return t

        def ctor(values, layout):
            """A constructor mixing positional and keyed items, evaluated in order."""
            t = LT()
            arr = []
            i = 0
            for kind in layout:
                if kind == "k":
                    k = values[i]
                    v = values[i + 1]
                    i += 2
                    if k is None:
                        raise LuaError(b"table index is nil")
                    if v is not None:
                        t.set(k, v)
                elif kind == "p":
                    arr.append(values[i])
                    i += 1
                else:          # "m": all remaining values
                    arr.extend(values[i:])
            # positional items are stored last (Lua's SETLIST), overriding keyed ones
            for n, v in enumerate(arr, 1):
                t.set(n, v)
            return t

        from .baselib import ipairs_aux, lua_next
        from .value import _BoolKey

        self._metatable = metatable
        return {
            "_LT": LT, "_FN": _FN, "_NUM": _NUM, "_MAXS": MAX_STRING, "_N1": _N1, "_INF": _INF, "_NAN": _NAN,
            "_Gh": Gh, "_Gget": Gh.get, "_getglobal": getglobal, "_setglobal": setglobal,
            "_index": index, "_setindex": setindex, "_callable": callable_,
            "_add": add, "_sub": sub, "_mul": mul, "_div": div, "_mod": mod, "_pow": pow_,
            "_unm": unm, "_len": len_, "_concat": concat, "_concat2": concat2,
            "_lt": lt, "_le": le, "_eq": eq, "_fl": fl, "_mulfix": mulfix,
            "_forrange": forrange, "_forin": forin, "_adjust": adjust, "_newtable": newtable, "_ctor": ctor,
            "type": type, "len": len, "float": float, "bytes": bytes, "int": int,
        }
