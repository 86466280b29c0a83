"""Lua 5.1's table library (ltablib.c): concat insert remove sort getn maxn foreach foreachi setn.

``#t`` is :meth:`LuaTable.length` (a border, like lua_objlen). ``table.sort``
runs ltablib.c's quicksort step for step, so an inconsistent comparator
gives Lua's "invalid order function for sorting" (or Lua's partial order)
and ties come out in Lua's order; two departures, both invisible for a
consistent order without ties:

* an array of only numbers (no NaN) or only strings with no comparator is
  sorted by Python's sort (same result, C speed);
* when the quicksort recursion passes 2*log2(n) levels (the median-of-three
  killer inputs that make it quadratic), that sub-range is finished with
  Python's O(n log n) sort, so no input makes sort quadratic.
"""

from __future__ import annotations

import functools
from typing import Any

from . import lib_string
from .libargs import check_int, opt_int, opt_str, runtime_error, type_error
from .value import LuaError, LuaTable, number_to_bytes, type_name

#: Comparisons between two rt.check_hook() calls in table.sort (the runtime fires
#: its hook every hook_interval calls, as for loop iterations).
HOOK_COMPARISONS = 10


def _check_table(args: tuple, n: int, fname: str) -> LuaTable:
    if n <= len(args) and type(args[n - 1]) is LuaTable:
        return args[n - 1]
    raise type_error(args, n, fname, "table")


def _check_function(args: tuple, n: int, fname: str) -> Any:
    if n <= len(args):
        f = args[n - 1]
        if callable(f) and type(f) is not LuaTable:
            return f
    raise type_error(args, n, fname, "function")


def _fix_tail(t: LuaTable) -> None:
    """Restore LuaTable's invariants after editing t.arr directly."""
    arr = t.arr
    while arr and arr[-1] is None:
        arr.pop()
    h = t.hash
    if h:
        k = len(arr) + 1
        while k in h:
            arr.append(h.pop(k))
            k += 1


def t_insert(*args: Any) -> tuple:
    t = _check_table(args, 1, "insert")
    n = t.length()
    e = n + 1
    nargs = len(args)
    if nargs == 2:
        v = args[1]
        if v is not None:
            t.arr.append(v)
            _fix_tail(t) if t.hash else None
        return ()
    if nargs != 3:
        raise LuaError(b"wrong number of arguments to 'insert'")
    pos = check_int(args, 2, "insert")
    v = args[2]
    if 1 <= pos <= e:
        t.arr.insert(pos - 1, v)
        _fix_tail(t)
        return ()
    if pos > e:
        t.set(pos, v)   # (ltablib.c's loop from e = pos down to pos does nothing)
        return ()
    # pos < 1: ltablib.c shifts t[pos..e-1] up one by one, raw; 2^31 steps for
    # pos = -2^31. Only the keys present move: the same table, in their number.
    present = [k for k in t.hash if type(k) is int and pos <= k < e]
    present.extend(range(1, len(t.arr) + 1))
    present.sort()
    moved = [(k + 1, t.get(k)) for k in present]
    for k in reversed(present):
        t.set(k, None)
    for k, value in moved:
        t.set(k, value)
    t.set(pos, v)
    return ()


def t_remove(*args: Any) -> tuple:
    t = _check_table(args, 1, "remove")
    e = t.length()
    pos = opt_int(args, 2, "remove", e)
    if not 1 <= pos <= e:
        return ()
    v = t.arr.pop(pos - 1)
    _fix_tail(t)
    return (v,)


def t_concat(*args: Any) -> tuple:
    sep = opt_str(args, 2, "concat", b"")
    t = _check_table(args, 1, "concat")
    i = opt_int(args, 3, "concat", 1)
    last = opt_int(args, 4, "concat", t.length())
    if i > last:
        return (b"",)
    if i == 1 and last == len(t.arr):
        arr = t.arr
        try:
            total = sum(map(len, arr)) + len(sep) * (last - 1)
            ok = total <= lib_string.MAX_STRING
        except TypeError:
            ok = False
        if ok:
            try:
                return (sep.join(arr),)
            except TypeError:
                pass        # numbers or a bad value: the general loop says which
    parts = []
    total = 0
    for k in range(i, last + 1):
        v = t.get(k)
        tv = type(v)
        if tv is bytes:
            parts.append(v)
        elif tv is int or tv is float:
            parts.append(number_to_bytes(v))
        else:
            raise LuaError(b"invalid value (%s) at index %d in table for 'concat'"
                           % (type_name(v).encode(), k))
        total += len(parts[-1]) + len(sep)
        if total > lib_string.MAX_STRING:
            raise LuaError(b"resulting string too large")
    return (sep.join(parts),)


def t_getn(*args: Any) -> tuple:
    return (_check_table(args, 1, "getn").length(),)


def t_setn(*args: Any) -> tuple:
    _check_table(args, 1, "setn")
    raise LuaError(b"'setn' is obsolete")


def t_maxn(*args: Any) -> tuple:
    t = _check_table(args, 1, "maxn")
    m = 0
    if t.arr:
        m = len(t.arr)   # arr never ends with nil
    for k in t.hash:
        tk = type(k)
        if (tk is int or tk is float) and k > m:
            m = k
    return (m,)


def open(rt: Any) -> LuaTable:  # noqa: A001 - the contract's name
    """The table library table."""
    call = rt.call

    def t_foreachi(*args: Any) -> tuple:
        t = _check_table(args, 1, "foreachi")
        n = t.length()
        f = _check_function(args, 2, "foreachi")
        for i in range(1, n + 1):
            r = call(f, i, t.get(i))
            if r and r[0] is not None:
                return (r[0],)
        return ()

    def t_foreach(*args: Any) -> tuple:
        t = _check_table(args, 1, "foreach")
        f = _check_function(args, 2, "foreach")
        k = None
        while True:
            kv = t.next(k)
            if kv is None:
                return ()
            k, v = kv
            r = call(f, k, v)
            if r and r[0] is not None:
                return (r[0],)

    def t_sort(*args: Any) -> tuple:
        t = _check_table(args, 1, "sort")
        n = t.length()
        comp = None
        if len(args) >= 2 and args[1] is not None:
            comp = _check_function(args, 2, "sort")
        if n < 2:
            return ()
        if comp is None and n == len(t.arr):
            arr = t.arr
            kinds = {type(v) for v in arr}
            if kinds == {bytes} or (kinds <= {int, float} and all(v == v for v in arr)):
                arr.sort()
                return ()
        _Sorter(rt, t, n, comp).run()
        return ()

    lib = LuaTable()
    for name, f in (("concat", t_concat), ("foreach", t_foreach), ("foreachi", t_foreachi),
                    ("getn", t_getn), ("maxn", t_maxn), ("insert", t_insert),
                    ("remove", t_remove), ("setn", t_setn), ("sort", t_sort)):
        lib.set(name.encode(), f)
    return lib


class _Sorter:
    """ltablib.c's auxsort over a Python copy of t[1..n], written back at the end (or on error)."""

    def __init__(self, rt: Any, t: LuaTable, n: int, comp: Any) -> None:
        self.rt = rt
        self.t = t
        self.n = n
        self.a = [None] + [t.get(i) for i in range(1, n + 1)]  # 1-based
        self.comp = comp
        self.count = 0
        depth = 0
        while (1 << depth) < n:
            depth += 1
        self.max_depth = 2 * depth + 4

    def get(self, i: int) -> Any:
        if 1 <= i <= self.n:
            return self.a[i]
        return self.t.get(i)

    def lt(self, x: Any, y: Any) -> bool:
        self.count += 1
        if self.count >= HOOK_COMPARISONS:
            self.count = 0
            self.rt.check_hook()
        comp = self.comp
        if comp is None:
            tx, ty = type(x), type(y)
            if (tx is int or tx is float) and (ty is int or ty is float):
                return x < y
            if tx is bytes and ty is bytes:
                return x < y
            try:
                return self.rt.lt(x, y)
            except LuaError as e:
                raise runtime_error(e) from None
        r = self.rt.call(comp, x, y)
        return bool(r) and r[0] is not None and r[0] is not False

    def run(self) -> None:
        try:
            self.auxsort(1, self.n, 0)
        finally:
            t = self.t
            for i in range(1, self.n + 1):
                t.set(i, self.a[i])

    def fallback(self, lo: int, hi: int) -> None:
        seg = self.a[lo:hi + 1]

        def cmp(x: Any, y: Any) -> int:
            if self.lt(x, y):
                return -1
            if self.lt(y, x):
                return 1
            return 0
        seg.sort(key=functools.cmp_to_key(cmp))
        self.a[lo:hi + 1] = seg

    def auxsort(self, lo: int, up: int, depth: int) -> None:
        a = self.a
        lt = self.lt
        while lo < up:
            if depth > self.max_depth:
                self.fallback(lo, up)
                return
            depth += 1
            if lt(a[up], a[lo]):
                a[lo], a[up] = a[up], a[lo]
            if up - lo == 1:
                break
            i = (lo + up) // 2
            if lt(a[i], a[lo]):
                a[i], a[lo] = a[lo], a[i]
            elif lt(a[up], a[i]):
                a[i], a[up] = a[up], a[i]
            if up - lo == 2:
                break
            p = a[i]
            a[i], a[up - 1] = a[up - 1], p
            i = lo
            j = up - 1
            while True:
                i += 1
                while lt(self.get(i), p):
                    if i > up:
                        raise LuaError(b"invalid order function for sorting")
                    i += 1
                j -= 1
                while lt(p, self.get(j)):
                    if j < lo:
                        raise LuaError(b"invalid order function for sorting")
                    j -= 1
                if j < i:
                    break
                a[i], a[j] = a[j], a[i]
            if i <= self.n:
                a[up - 1], a[i] = a[i], a[up - 1]
            else:   # a bad comparator ran i past the end: Lua swaps with t[i] too
                a[up - 1], old = self.t.get(i), a[up - 1]
                self.t.set(i, old)
            if i - lo < up - i:
                j = lo
                i = i - 1
                lo = i + 2
            else:
                j = i + 1
                i = up
                up = j - 2
            self.auxsort(j, i, depth)

