"""Lua 5.1 AST to Python source, compiled once per chunk.

Each Lua function becomes a Python ``def`` whose parameters are
``(p1=None, p2=None, *varargs)`` and which returns a tuple (or list) of
results, the calling convention of :mod:`kvserver.lua.value`.

* A Lua local is a Python local named ``v<id>_<name>``; one that an inner
  function captures lives in a one-item list (a cell, ``v3_x[0]``) made when
  the ``local`` statement runs, so each loop iteration gets a fresh one.
  Inner functions receive the cells as keyword-only defaults (bound when the
  closure is made, never passed by a caller). Lua names never reach Python
  identifiers (globals are ``bytes`` keys of the globals table), so a script
  cannot name any Python object.
* Arithmetic, comparison, concatenation, indexing and calls are inline fast
  paths (numbers, strings, tables without metatables, Python functions)
  with a call to a runtime helper (metamethods, coercions, Lua's error
  texts naming the variable) when the fast path does not apply.
* Every generated line remembers its Lua line; a runtime error's position is
  read from the traceback only when an error happens.
* Loops and function entries decrement a counter and call the runtime's
  tick (which calls ``rt.hook``) when it runs out.
"""

from __future__ import annotations

from .parser import Func, Var

_M53 = 9007199254740992

# expression kinds
COMPLEX, SIMPLE, BOOL, NUM, STR, NIL = range(6)
# expression nodes that carry their Lua line as the last item
_LINED = frozenset(("index", "call", "method", "binop", "unop", "and", "or", "table"))


def _bytes_lit(b: bytes) -> str:
    return repr(b)


def _num_lit(v: int | float) -> str:
    if type(v) is int:
        return repr(v)
    if v != v:
        return "_NAN"
    if v == float("inf"):
        return "_INF"
    if v == float("-inf"):
        return "(-_INF)"
    r = repr(v)
    return f"({r})" if r.startswith("-") else r


def _small_int(code: str, kind: int) -> bool:
    """A constant integer operand small enough that +/- need no 2^53 check."""
    if kind != NUM:
        return False
    try:
        v = int(code.strip("()"))
    except ValueError:
        return False
    return -(1 << 20) < v < (1 << 20)


def _name_desc(e: tuple, fn: Func) -> str | None:
    """How Lua 5.1's getobjname names the value of expression e (None: no name)."""
    tag = e[0]
    if tag == "local":
        return f"local '{e[1].name}'"
    if tag == "upval":
        return f"upvalue '{e[1].name}'"
    if tag == "global":
        return f"global '{e[1].decode('latin-1')}'"
    if tag == "index":
        k = e[2]
        if k[0] == "str":
            try:
                return f"field '{k[1].decode('latin-1')}'"
            except Exception:   # pragma: no cover - latin-1 decodes everything
                return None
        return "field '?'"
    if tag == "paren":
        return _name_desc(e[1], fn)
    return None


_MAX_PAREN_DEPTH = 60     # of Python's 200, leaving room for the enclosing expression


def _paren_depth(code: str) -> int:
    depth = top = 0
    for ch in code:
        if ch == "(" or ch == "[":
            depth += 1
            if depth > top:
                top = depth
        elif ch == ")" or ch == "]":
            depth -= 1
    return top


class CodeGen:
    def __init__(self, chunkname: str) -> None:
        self.chunk = chunkname
        self.lines: list[tuple[int, str, int]] = []   # (indent, text, lua line)
        self.indent = 0
        self.line = 0
        self.ntmp = 0
        self.nfunc = 0
        self.fn: Func | None = None
        self.vararg_name = "_va0"
        self.cur = 0          # the Lua line the expression being generated sits on
        self.conditional = 0  # > 0 inside an operand that may not be evaluated

    # -- output ---------------------------------------------------------------
    def emit(self, text: str) -> None:
        self.lines.append((self.indent, text, self.line))

    def tmp(self) -> str:
        self.ntmp += 1
        return f"_t{self.ntmp}"

    def source(self) -> tuple[str, list[int]]:
        out = []
        linemap = [0]
        for indent, text, line in self.lines:
            if "\n" not in text:
                out.append("    " * indent + text)
                linemap.append(line)
                continue
            pad = "    " * indent
            for part in text.split("\n"):
                if part.startswith("#@"):
                    line = int(part[2:])
                out.append(pad + part)
                linemap.append(line)
        return "\n".join(out) + "\n", linemap

    # -- functions --------------------------------------------------------------
    def main(self, f: Func) -> None:
        self.emit("def _lua_main(*_va0):")
        self.indent += 1
        saved = self.fn, self.vararg_name
        self.fn = f
        self.vararg_name = "_va0"
        self.emit("global _hc")
        if f.has_loop:
            self.emit("_hk = _hc")
        self.block(f.body)
        self.emit("return ()")
        self.indent -= 1
        self.fn, self.vararg_name = saved

    def function(self, f: Func, pyname: str) -> None:
        """Emit a def for Lua function f under Python name pyname."""
        self.nfunc += 1
        params = [f"{p.pyname}=None" for p in f.params]
        va = f"_va{self.nfunc}"
        params.append(f"*{va}")
        kw = [f"{v.pyname}={v.pyname}" for v in f.upvals.values() if v.cell]
        if kw:
            params.extend(kw)
        saved_line = self.line, self.cur
        self.line = self.cur = f.line
        self.emit(f"def {pyname}({', '.join(params)}):")
        self.indent += 1
        saved = self.fn, self.vararg_name, self.conditional
        self.fn = f
        self.vararg_name = va
        self.conditional = 0
        self.emit("global _hc")
        if f.has_call:
            # a leaf (no calls, no loops) does bounded work; metamethods it
            # triggers are counted where the runtime calls them
            self.emit("if (_hc := _hc - 1) < 0: _tick()")
        if f.has_loop:
            self.emit("_hk = _hc")
        for p in f.params:
            if p.cell:
                self.emit(f"{p.pyname} = [{p.pyname}]")
        self.block(f.body)
        if not f.body or f.body[-1][0] != "return":
            self.emit("return ()")
        self.indent -= 1
        self.fn, self.vararg_name, self.conditional = saved
        self.line, self.cur = saved_line

    def function_expr(self, f: Func) -> tuple[str, int]:
        self.nfunc += 1
        name = f"_f{self.nfunc}"
        self.function(f, name)
        return name, SIMPLE

    # -- statements ---------------------------------------------------------------
    def block(self, stats: list) -> None:
        n = len(self.lines)
        for st in stats:
            self.statement(st)
        if len(self.lines) == n:
            self.emit("pass")

    def statement(self, st: tuple) -> None:
        tag = st[0]
        self.line = st[-1] if tag != "forin" else st[4]
        self.cur = self.line
        getattr(self, "st_" + tag)(st)

    def st_do(self, st: tuple) -> None:
        self.block(st[1])

    def st_callstat(self, st: tuple) -> None:
        code, _ = self.expr_multi(st[1])
        self.emit(code)

    def st_local(self, st: tuple) -> None:
        vs: list[Var] = st[1]
        exprs = st[2]
        names = [v.pyname for v in vs]
        self.assign_values(names, exprs)
        for v in vs:
            if v.cell:
                self.emit(f"{v.pyname} = [{v.pyname}]")

    def assign_values(self, names: list[str], exprs: list) -> None:
        """names = exprs with Lua's adjustment (names are plain Python targets)."""
        n = len(names)
        if not exprs:
            self.emit(" = ".join(names) + " = None" if n == 1 else
                      f"{', '.join(names)} = {', '.join(['None'] * n)}")
            return
        last = exprs[-1]
        if len(exprs) <= n and self.is_multi(last):
            codes = [self.expr(e)[0] for e in exprs[:-1]]
            mcode, _ = self.expr_multi(last)
            if n == 1:
                self.emit(f"{names[0]} = ({mcode} or _N1)[0]")
                return
            seq = f"({', '.join(codes)}, *{mcode})" if codes else mcode
            self.emit(f"{', '.join(names)} = _adjust({seq}, {n})")
            return
        codes = [self.expr(e)[0] for e in exprs]
        if len(codes) > n:
            # extra expressions are evaluated, their values dropped
            extra = [self.tmp() for _ in range(len(codes) - n)]
            targets = names + extra
        else:
            targets = names
            codes = codes + ["None"] * (n - len(codes))
        if len(targets) == 1:
            self.emit(f"{targets[0]} = {codes[0]}")
        else:
            self.emit(f"{', '.join(targets)} = {', '.join(codes)}")

    def st_localfunc(self, st: tuple) -> None:
        v: Var = st[1]
        f: Func = st[2]
        if v.cell:
            self.emit(f"{v.pyname} = [None]")
            self.nfunc += 1
            name = f"_f{self.nfunc}"
            self.function(f, name)
            self.emit(f"{v.pyname}[0] = {name}")
        else:
            self.function(f, v.pyname)

    def st_assign(self, st: tuple) -> None:
        targets = st[1]
        exprs = st[2]
        if len(targets) == 1 and len(exprs) == 1:
            t = targets[0]
            if t[0] == "index":
                obj = self.expr(t[1])
                key = self.expr(t[2])
                val = self.expr(exprs[0])
                self.store_index(obj, key, val, _name_desc(t[1], self.fn))
            else:
                val = self.expr(exprs[0])
                self.store_var(t, val[0])
            return
        # General case: evaluate the targets' tables and keys, then the values,
        # then assign right to left (as Lua 5.1 does).
        prepared = []
        for t in targets:
            if t[0] == "index":
                # table and key are fixed before any assignment (a local named
                # here may be assigned by this same statement)
                o = self.expr(t[1])
                if o[1] not in (NUM, STR, NIL):
                    tv = self.tmp()
                    self.emit(f"{tv} = {o[0]}")
                    o = (tv, SIMPLE)
                k = self.expr(t[2])
                if k[1] not in (NUM, STR, NIL):
                    tk = self.tmp()
                    self.emit(f"{tk} = {k[0]}")
                    k = (tk, SIMPLE)
                prepared.append((t, o, k))
            else:
                prepared.append((t, None, None))
        vals = [self.tmp() for _ in targets]
        self.assign_values(vals, exprs)
        for (t, o, k), v in reversed(list(zip(prepared, vals))):
            if o is not None:
                self.store_index(o, k, (v, SIMPLE), _name_desc(t[1], self.fn))
            else:
                self.store_var(t, v)

    def store_var(self, t: tuple, code: str) -> None:
        tag = t[0]
        if tag == "local":
            v = t[1]
            self.emit(f"{v.pyname}[0] = {code}" if v.cell else f"{v.pyname} = {code}")
        elif tag == "upval":
            self.emit(f"{t[1].pyname}[0] = {code}")      # assigned: always a cell
        elif tag == "global":
            self.emit(f"_setglobal({_bytes_lit(t[1])}, {code})")
        else:   # pragma: no cover - the parser only makes assignable targets
            raise AssertionError(tag)

    def store_index(self, obj: tuple, key: tuple, val: tuple, desc: str | None) -> None:
        ocode, okind = obj
        if okind != SIMPLE:
            tv = self.tmp()
            self.emit(f"{tv} = {ocode}")
            ocode = tv
        kcode, kkind = key
        if kkind not in (SIMPLE, NUM, STR, NIL):
            tk = self.tmp()
            self.emit(f"{tk} = {kcode}")
            kcode = tk
        vcode, vkind = val
        if vkind not in (SIMPLE, NUM, STR, NIL):
            tvv = self.tmp()
            self.emit(f"{tvv} = {vcode}")
            vcode = tvv
        d = repr(desc)
        if kkind == STR:
            fast = f"{ocode}._set_hash({kcode}, {vcode})"
            self.emit(f"if type({ocode}) is _LT and {ocode}.metatable is None: {fast}")
            self.emit(f"else: _setindex({ocode}, {kcode}, {vcode}, {d})")
            return
        # array part inline: overwrite t[i] (1 <= i <= #arr) or append t[#arr + 1]
        # when the hash part is empty (nothing to move into the array then)
        o, k, v = ocode, kcode, vcode
        self.emit(f"if type({o}) is _LT and {o}.metatable is None:")
        self.indent += 1
        if vkind == NIL:
            self.emit(f"{o}.set({k}, None)")
        else:
            self.emit(f"if type({k}) is int and {v} is not None and 0 < {k} <= len({o}.arr): {o}.arr[{k} - 1] = {v}")
            self.emit(f"elif type({k}) is int and {v} is not None and {k} == len({o}.arr) + 1 and not {o}.hash: "
                      f"{o}.arr.append({v})")
            self.emit(f"else: {o}.set({k}, {v})")
        self.indent -= 1
        self.emit(f"else: _setindex({o}, {k}, {v}, {d})")

    def st_return(self, st: tuple) -> None:
        exprs = st[1]
        if not exprs:
            self.emit("return ()")
            return
        if len(exprs) == 1 and self.is_multi(exprs[0]):
            code, _ = self.expr_multi(exprs[0])
            self.emit(f"return {code}")
            return
        self.emit(f"return {self.explist_tuple(exprs)}")

    def st_break(self, st: tuple) -> None:
        self.emit("break")

    def hook_line(self) -> None:
        # a function-local countdown: cheaper than the module-global one of calls
        self.emit("if (_hk := _hk - 1) < 0: _hk = _tick()")

    def st_while(self, st: tuple) -> None:
        _, cond, body, line = st
        self.emit("while True:")
        self.indent += 1
        self.hook_line()
        c = self.cond(cond)
        self.emit(f"if not ({c}): break")
        self.block(body)
        self.indent -= 1

    def st_repeat(self, st: tuple) -> None:
        _, body, cond, line = st
        self.emit("while True:")
        self.indent += 1
        self.hook_line()
        self.block(body)
        # a 'break' inside the body leaves the Python loop before the test, as in Lua
        self.line = self.cur = line
        c = self.cond(cond)
        self.emit(f"if {c}: break")
        self.indent -= 1

    def st_if(self, st: tuple) -> None:
        _, clauses, orelse, line = st
        depth = 0
        first = True
        for cond, body in clauses:
            if first:
                c = self.cond(cond)
                self.emit(f"if {c}:")
                first = False
            else:
                # statements the condition needs (function defs, deep values)
                # cannot go between a body and its 'elif': nest an 'if' in 'else'
                saved = self.lines
                self.lines = []
                self.indent += 1
                try:
                    c = self.cond(cond)
                finally:
                    pre = self.lines
                    self.lines = saved
                    self.indent -= 1
                if pre:
                    self.emit("else:")
                    self.indent += 1
                    depth += 1
                    self.lines.extend(pre)
                    self.emit(f"if {c}:")
                else:
                    self.emit(f"elif {c}:")
            self.indent += 1
            self.block(body)
            self.indent -= 1
            self.line = self.cur = line
        if orelse:
            self.emit("else:")
            self.indent += 1
            self.block(orelse)
            self.indent -= 1
        self.indent -= depth

    def st_fornum(self, st: tuple) -> None:
        _, v, start, stop, step, body, line = st
        a = self.expr(start)[0]
        b = self.expr(stop)[0]
        c = self.expr(step)[0] if step is not None else "1"
        if v.cell:
            target = self.tmp()
        else:
            target = v.pyname
        self.emit(f"for {target} in _forrange({a}, {b}, {c}):")
        self.indent += 1
        self.hook_line()
        if v.cell:
            self.emit(f"{v.pyname} = [{target}]")
        self.block(body)
        self.indent -= 1

    def st_forin(self, st: tuple) -> None:
        _, vs, exprs, body, line, eline = st
        n = len(vs)
        t1, t2, t3 = self.tmp(), self.tmp(), self.tmp()
        self.assign_values([t1, t2, t3], exprs)
        targets = []
        for v in vs:
            targets.append(self.tmp() if v.cell else v.pyname)
        tcode = ", ".join(targets) + ("," if n == 1 else "")
        self.emit(f"for {tcode} in _forin({t1}, {t2}, {t3}, {n}):")
        self.indent += 1
        self.hook_line()
        for v, t in zip(vs, targets):
            if v.cell:
                self.emit(f"{v.pyname} = [{t}]")
        self.block(body)
        self.indent -= 1

    # -- expressions ---------------------------------------------------------------
    @staticmethod
    def is_multi(e: tuple) -> bool:
        return e[0] in ("call", "method", "vararg")

    def explist_tuple(self, exprs: list) -> str:
        """A Python tuple expression of the values of an expression list."""
        if not exprs:
            return "()"
        if self.is_multi(exprs[-1]):
            codes = [self.expr(e)[0] for e in exprs[:-1]]
            m, _ = self.expr_multi(exprs[-1])
            if not codes:
                return m
            return f"({', '.join(codes)}, *{m})"
        codes = [self.expr(e)[0] for e in exprs]
        return f"({', '.join(codes)},)"

    def args_code(self, exprs: list) -> str:
        if not exprs:
            return ""
        if self.is_multi(exprs[-1]):
            codes = [self.expr(e)[0] for e in exprs[:-1]]
            m, _ = self.expr_multi(exprs[-1])
            codes.append(f"*{m}")
            return ", ".join(codes)
        return ", ".join(self.expr(e)[0] for e in exprs)

    def expr_multi(self, e: tuple) -> tuple[str, int]:
        """Code for a sequence (tuple/list) of all values of a multi-value expression."""
        tag = e[0]
        if tag == "vararg":
            return self.vararg_name, SIMPLE
        if tag == "call":
            return self.call_code(e), COMPLEX
        if tag == "method":
            return self.method_code(e), COMPLEX
        code, _ = self.expr(e)
        return f"({code},)", COMPLEX

    def bind(self, code: str, kind: int) -> tuple[str, str]:
        """(first use, later uses) of a value: complex values go through a temporary."""
        if kind in (SIMPLE, NUM, STR, NIL):
            return code, code
        t = self.tmp()
        return f"({t} := {code})", t

    def cond(self, e: tuple) -> str:
        code, kind = self.expr(e)
        if kind == BOOL:
            return code
        if kind == NIL:
            return "False"
        if kind in (NUM, STR):
            return "True"
        first, later = self.bind(code, kind)
        return f"({first} is not None and {later} is not False)"

    def expr(self, e: tuple) -> tuple[str, int]:
        """Code and kind of expression e (a multi-value one adjusted to one value).

        An operation on another Lua line than the enclosing one is wrapped in
        parentheses with '#@line' comment lines around it, so that the Python
        line of each instruction maps back to the Lua line of its operation.

        Python's parser allows 200 nested parentheses, Lua chains like
        ``t.a.a.a...`` or ``x + x + x...`` nest without limit: a deeply nested
        value is computed into a temporary by a statement of its own (outside
        and/or operands, whose evaluation is conditional).
        """
        tag = e[0]
        if tag in _LINED:
            line = e[-1]
            if line != self.cur:
                saved = self.cur
                self.cur = line
                try:
                    code, kind = self.expr_at_line(e)
                finally:
                    self.cur = saved
                code = f"(\n#@{line}\n{code}\n#@{saved}\n)"
            else:
                code, kind = self.expr_at_line(e)
            if (kind in (COMPLEX, BOOL) and not self.conditional and len(code) > 600
                    and _paren_depth(code) > _MAX_PAREN_DEPTH):
                t = self.tmp()
                saved_line = self.line
                self.line = self.cur
                self.emit(f"{t} = {code}")
                self.line = saved_line
                return t, SIMPLE
            return code, kind
        return self.expr_at_line(e)

    def expr_at_line(self, e: tuple) -> tuple[str, int]:
        tag = e[0]
        if tag == "num":
            return _num_lit(e[1]), NUM
        if tag == "str":
            return _bytes_lit(e[1]), STR
        if tag == "nil":
            return "None", NIL
        if tag == "true":
            return "True", BOOL
        if tag == "false":
            return "False", BOOL
        if tag == "local":
            v = e[1]
            return (f"{v.pyname}[0]" if v.cell else v.pyname), SIMPLE
        if tag == "upval":
            v = e[1]
            return (f"{v.pyname}[0]" if v.cell else v.pyname), SIMPLE
        if tag == "global":
            k = _bytes_lit(e[1])
            return f"(_Gget({k}) or _getglobal({k}))", COMPLEX
        if tag == "vararg":
            va = self.vararg_name
            return f"({va}[0] if {va} else None)", COMPLEX
        if tag == "paren":
            inner = e[1]
            if self.is_multi(inner):
                m, _ = self.expr_multi(inner)
                return f"({m} or _N1)[0]", COMPLEX
            return self.expr(inner)
        if tag == "call":
            return f"({self.call_code(e)} or _N1)[0]", COMPLEX
        if tag == "method":
            return f"({self.method_code(e)} or _N1)[0]", COMPLEX
        if tag == "index":
            return self.index_code(e), COMPLEX
        if tag == "function":
            return self.function_expr(e[1])
        if tag == "table":
            return self.table_code(e), COMPLEX
        if tag == "and" or tag == "or":
            return self.andor_code(e)
        if tag == "unop":
            return self.unop_code(e)
        if tag == "binop":
            return self.binop_code(e)
        raise AssertionError(tag)   # pragma: no cover

    def call_code(self, e: tuple) -> str:
        _, fe, args, line = e
        fcode, fkind = self.expr(fe)
        d = repr(_name_desc(fe, self.fn))
        first, later = self.bind(fcode, fkind)
        argc = self.args_code(args)
        return f"({later} if type({first}) is _FN else _callable({later}, {d}))({argc})"

    def method_code(self, e: tuple) -> str:
        _, oe, name, args, line = e
        ocode, okind = self.expr(oe)
        ofirst, olater = self.bind(ocode, okind)
        k = _bytes_lit(name)
        odesc = repr(_name_desc(oe, self.fn))
        f = self.tmp()
        idx = (f"(({olater}.hash.get({k}) or _index({olater}, {k}, {odesc})) "
               f"if type({ofirst}) is _LT else _index({olater}, {k}, {odesc}))")
        d = repr(f"method '{name.decode('latin-1')}'")
        argc = self.args_code(args)
        argc = f"{olater}, {argc}" if argc else olater
        return f"({f} if type({f} := {idx}) is _FN else _callable({f}, {d}))({argc})"

    def index_code(self, e: tuple) -> str:
        _, oe, ke, line = e
        ocode, okind = self.expr(oe)
        d = repr(_name_desc(oe, self.fn))
        first, later = self.bind(ocode, okind)
        kcode, kkind = self.expr(ke)
        if kkind == STR:
            return (f"(({later}.hash.get({kcode}) or _index({later}, {kcode}, {d})) "
                    f"if type({first}) is _LT else _index({later}, {kcode}, {d}))")
        if kkind in (SIMPLE, NUM, NIL):
            general = (f"({later}.get({kcode}) if type({first}) is _LT and {later}.metatable is None "
                       f"else _index({later}, {kcode}, {d}))")
            if kkind == NUM and kcode.isdigit() and int(kcode) > 0:
                # t[n] for a literal n (KEYS[1], ARGV[2]): read the array part
                # without a call when the value is there (not nil: a nil may
                # go to __index); anything else takes the general path, on the
                # value already evaluated (the object expression runs once).
                n = int(kcode)
                v = self.tmp()
                rest = (f"({later}.get({kcode}) if type({later}) is _LT and "
                        f"{later}.metatable is None else _index({later}, {kcode}, {d}))")
                return (f"({v} if type({first}) is _LT and len({later}.arr) >= {n} and "
                        f"({v} := {later}.arr[{n - 1}]) is not None else {rest})")
            return general
        k = self.tmp()
        if first == later:
            first = f"{first} is {first} and ({k} := {kcode}) is {k} and type({later})"
        else:
            first = f"{first} is {later} and ({k} := {kcode}) is {k} and type({later})"
        return (f"({later}.get({k}) if {first} is _LT and {later}.metatable is None "
                f"else _index({later}, {k}, {d}))")

    def table_code(self, e: tuple) -> str:
        items = e[1]
        if not items:
            return "_LT()"
        pos = [it for it in items if it[0] == "pos"]
        kv = [it for it in items if it[0] == "kv"]
        if pos and kv:
            # both kinds: evaluate in source order, place them as Lua does
            codes = []
            layout = []
            for n, it in enumerate(items):
                if it[0] == "kv":
                    codes.append(self.expr(it[1])[0])
                    codes.append(self.expr(it[2])[0])
                    layout.append("k")
                elif n == len(items) - 1 and self.is_multi(it[1]):
                    m, _ = self.expr_multi(it[1])
                    codes.append(f"*{m}")
                    layout.append("m")
                else:
                    codes.append(self.expr(it[1])[0])
                    layout.append("p")
            return f"_ctor(({', '.join(codes)},), {''.join(layout)!r})"
        kvcodes = []
        for it in kv:
            kvcodes.append(self.expr(it[1])[0])
            kvcodes.append(self.expr(it[2])[0])
        if pos:
            if self.is_multi(pos[-1][1]):
                codes = [self.expr(it[1])[0] for it in pos[:-1]]
                m, _ = self.expr_multi(pos[-1][1])
                codes.append(f"*{m}")
            else:
                codes = [self.expr(it[1])[0] for it in pos]
            arr = f"[{', '.join(codes)}]"
        else:
            arr = "None"
        if kvcodes:
            return f"_newtable({arr}, ({', '.join(kvcodes)},))"
        return f"_newtable({arr}, None)"

    def andor_code(self, e: tuple) -> tuple[str, int]:
        tag, a, b, line = e
        acode, akind = self.expr(a)
        self.conditional += 1
        try:
            bcode, bkind = self.expr(b)
        finally:
            self.conditional -= 1
        if akind == BOOL:
            kind = BOOL if bkind == BOOL else COMPLEX
            return f"({acode} {tag} {bcode})", kind
        if akind in (NUM, STR):       # a true constant
            return (bcode, bkind) if tag == "and" else (acode, akind)
        if akind == NIL:
            return (acode, akind) if tag == "and" else (bcode, bkind)
        first, later = self.bind(acode, akind)
        test = f"({first} is not None and {later} is not False)"
        if tag == "and":
            return f"({bcode} if {test} else {later})", COMPLEX
        return f"({later} if {test} else {bcode})", COMPLEX

    def unop_code(self, e: tuple) -> tuple[str, int]:
        _, op, a, line = e
        acode, akind = self.expr(a)
        if op == "not":
            if akind == BOOL:
                return f"(not {acode})", BOOL
            if akind == NIL:
                return "True", BOOL
            if akind in (NUM, STR):
                return "False", BOOL
            first, later = self.bind(acode, akind)
            return f"({first} is None or {later} is False)", BOOL
        d = repr(_name_desc(a, self.fn))
        first, later = self.bind(acode, akind)
        if op == "-":
            return f"(-{later} if type({first}) in _NUM and {later} else _unm({later}, {d}))", COMPLEX
        # '#'
        return (f"(len({later}.arr) if type({first}) is _LT else len({later}) if type({later}) is bytes "
                f"else _len({later}, {d}))"), COMPLEX

    def concat_operands(self, e: tuple, out: list) -> None:
        while e[0] == "binop" and e[1] == "..":
            out.append(e[2])
            e = e[3]
        out.append(e)

    def binop_code(self, e: tuple) -> tuple[str, int]:
        _, op, a, b, line = e
        if op == "..":
            ops: list = []
            self.concat_operands(e, ops)
            codes = [self.expr(x)[0] for x in ops]
            descs = [_name_desc(x, self.fn) for x in ops]
            if len(ops) == 2:
                t1, t2 = self.tmp(), self.tmp()
                return (f"({t1} + {t2} if ({t1} := {codes[0]}) is {t1} and type({t2} := {codes[1]}) "
                        f"is bytes and type({t1}) is bytes and len({t1}) + len({t2}) <= _MAXS "
                        f"else _concat2({t1}, {t2}, {descs[0]!r}, {descs[1]!r}))"), COMPLEX
            return f"_concat(({', '.join(codes)}), {tuple(descs)!r})", COMPLEX
        acode, akind = self.expr(a)
        bcode, bkind = self.expr(b)
        da = repr(_name_desc(a, self.fn))
        db = repr(_name_desc(b, self.fn))
        # Bind both operands in order (a, then b) before any test.
        if akind in (SIMPLE, NUM, STR, NIL):
            ta = acode
            pre_a = None
        else:
            ta = self.tmp()
            pre_a = f"({ta} := {acode})"
        if bkind in (SIMPLE, NUM, STR, NIL):
            tb = bcode
            pre_b = None
        else:
            tb = self.tmp()
            pre_b = f"({tb} := {bcode})"
        pre = " and ".join(f"{p} is {t}" for p, t in ((pre_a, ta), (pre_b, tb)) if p)
        if op in ("==", "~="):
            res = self.eq_code(ta, akind, tb, bkind)
            if op == "~=":
                res = f"not {res}"
            return (f"({pre} and {res})" if pre else f"({res})"), BOOL
        checks = []
        if akind != NUM:
            checks.append(f"type({ta}) in _NUM")
        if bkind != NUM:
            checks.append(f"type({tb}) in _NUM")
        if op in ("<", "<=", ">", ">="):
            if op in ("<", "<="):
                x, y = ta, tb
            else:
                x, y = tb, ta
            pyop = "<" if op in ("<", ">") else "<="
            helper = "_lt" if pyop == "<" else "_le"
            test = " and ".join(([pre] if pre else []) + checks) or "True"
            return f"({x} {pyop} {y} if {test} else {helper}({x}, {y}))", BOOL
        test_parts = ([pre] if pre else []) + checks
        slow_args = f"{ta}, {tb}, {da}, {db}"
        if op == "+" or op == "-" or op == "*":
            r = self.tmp()
            if op != "*" and (_small_int(ta, akind) or _small_int(tb, bkind)):
                # ints are below 2^53 and a small constant moves them by little:
                # no rounding to doubles to check for (2^33 steps to get there)
                fast = f"{ta} {op} {tb}"
            elif op == "*":
                # a zero product may be -0 in Lua (doubles): the slow path decides
                fast = f"({r} if -{_M53} < ({r} := {ta} * {tb}) < {_M53} and {r} else _mulfix({ta}, {tb}))"
            else:
                fast = f"({r} if -{_M53} < ({r} := {ta} {op} {tb}) < {_M53} else _fl({r}))"
            test = " and ".join(test_parts) or "True"
            helper = {"+": "_add", "-": "_sub", "*": "_mul"}[op]
            return f"({fast} if {test} else {helper}({slow_args}))", COMPLEX
        if op == "/":
            test = " and ".join(test_parts + [tb]) if bkind != NUM else " and ".join(test_parts) or "True"
            if bkind == NUM and tb in ("0", "0.0", "(-0.0)"):
                return (f"({pre} and _div({slow_args}))" if pre else f"_div({slow_args})"), COMPLEX
            return f"({ta} / {tb} if {test} else _div({slow_args}))", COMPLEX
        if op == "%":
            parts = ([pre] if pre else []) + [f"type({ta}) is int", f"type({tb}) is int", tb]
            return f"({ta} % {tb} if {' and '.join(parts)} else _mod({slow_args}))", COMPLEX
        if op == "^":
            if pre:
                return f"({pre} and _pow({slow_args}))", COMPLEX
            return f"_pow({slow_args})", COMPLEX
        raise AssertionError(op)   # pragma: no cover

    def eq_code(self, ta: str, akind: int, tb: str, bkind: int) -> str:
        if akind == NIL:
            return f"{tb} is None"
        if bkind == NIL:
            return f"{ta} is None"
        if bkind == STR:
            return f"{ta} == {tb}"
        if akind == STR:
            return f"{tb} == {ta}"
        if bkind == NUM:
            return f"(type({ta}) in _NUM and {ta} == {tb})"
        if akind == NUM:
            return f"(type({tb}) in _NUM and {tb} == {ta})"
        if bkind == BOOL and tb in ("True", "False"):
            return f"{ta} is {tb}"
        return f"({ta} == {tb} if type({ta}) is type({tb}) and type({ta}) is not _LT else _eq({ta}, {tb}))"


def generate(f: Func, chunkname: str) -> tuple[str, list[int]]:
    """Python source of the chunk (defining ``_lua_main``) and its line map."""
    cg = CodeGen(chunkname)
    cg.main(f)
    return cg.source()
