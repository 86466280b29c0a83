"""Lua 5.1 parser: tokens to an AST with every name resolved to its variable.

Recursive descent in the shape of Lua 5.1's lparser.c, so the syntax errors
are Lua's ("'=' expected near 'x'", "'end' expected (to close 'function' at
line 1) near '<eof>'", "unexpected symbol near '+'").

The AST is made of tuples whose first item is a tag (see the ``compiler``).
Local variables are :class:`Var` objects: the parser decides which function
owns each one and marks those that inner functions capture, so the compiler
knows which locals must live in cells.
"""

from __future__ import annotations

from .lexer import tokenize
from .value import LuaSyntaxError

MAX_LEVELS = 200          # LUAI_MAXCCALLS: nesting of blocks and expressions
MAX_LOCALS = 200          # LUAI_MAXVARS: active locals per function
MAX_UPVALUES = 60         # LUAI_MAXUPVALUES

# (left, right) priorities of binary operators, as lparser.c's priority[]
BINARY = {
    "+": (6, 6), "-": (6, 6), "*": (7, 7), "/": (7, 7), "%": (7, 7),
    "^": (10, 9), "..": (5, 4),
    "==": (3, 3), "~=": (3, 3), "<": (3, 3), "<=": (3, 3), ">": (3, 3), ">=": (3, 3),
    "and": (2, 2), "or": (1, 1),
}
UNARY_PRIORITY = 8
_BLOCK_FOLLOW = frozenset(("else", "elseif", "end", "until", "eof"))


class Var:
    """A Lua local variable."""

    __slots__ = ("name", "id", "func", "captured", "pyname", "reassigned", "in_loop")

    def __init__(self, name: str, vid: int, func: "Func") -> None:
        self.name = name
        self.id = vid
        self.func = func
        self.captured = False        # an inner function uses it
        self.reassigned = False      # assigned after its declaration
        self.in_loop = False         # declared in a loop body (a fresh one per iteration)
        self.pyname = f"v{vid}_{name}"

    @property
    def cell(self) -> bool:
        """Whether it lives in a one-item list. A captured local that is set once
        and declared outside loops is shared through a plain Python closure."""
        return self.captured and (self.reassigned or self.in_loop)


class Func:
    """A function being parsed (the main chunk is one too, line 0)."""

    def __init__(self, parent: "Func | None", line: int) -> None:
        self.parent = parent
        self.line = line
        self.params: list[Var] = []
        self.is_vararg = False
        self.upvals: dict[int, Var] = {}   # outer variables this function (or an inner one) uses
        self.active: list[Var] = []        # locals in scope, innermost last
        self.body: list = []
        self.name = ""                      # for tracebacks only
        self.has_loop = False
        self.has_call = False               # a call or method call in its own body


class Parser:
    def __init__(self, src: bytes, chunkname: str) -> None:
        self.chunk = chunkname
        self.toks = tokenize(src, chunkname)
        self.i = 0
        self.tok = self.toks[0]
        self.level = 0
        self.nvars = 0
        self.fs: Func | None = None
        self.loops = 0                      # enclosing loops in the current function

    # -- token helpers --------------------------------------------------------
    def next(self) -> None:
        self.i += 1
        self.tok = self.toks[self.i]

    @property
    def lastline(self) -> int:
        return self.toks[self.i - 1][2] if self.i else 1

    def error(self, msg: str, near: bool = True) -> LuaSyntaxError:
        t = self.tok
        text = f"{self.chunk}:{t[2]}: {msg}"
        if near:
            text += f" near '{t[3]}'"
        return LuaSyntaxError(text.encode("latin-1"))

    def error_expected(self, what: str) -> LuaSyntaxError:
        if what == "eof":
            what = "<eof>"
        return self.error(f"'{what}' expected")

    def check(self, kind: str) -> None:
        if self.tok[0] != kind:
            raise self.error_expected(kind)

    def checknext(self, kind: str) -> None:
        if self.tok[0] != kind:
            raise self.error_expected(kind)
        self.next()

    def testnext(self, kind: str) -> bool:
        if self.tok[0] == kind:
            self.next()
            return True
        return False

    def check_match(self, what: str, who: str, line: int) -> None:
        if self.tok[0] != what:
            if line == self.tok[2]:
                raise self.error_expected(what)
            raise self.error(f"'{what}' expected (to close '{who}' at line {line})")
        self.next()

    def checkname(self) -> str:
        if self.tok[0] != "name":
            raise self.error_expected("<name>")
        name = self.tok[3]
        self.next()
        return name

    def enterlevel(self) -> None:
        self.level += 1
        if self.level > MAX_LEVELS:
            raise self.error("chunk has too many syntax levels", near=False)

    # -- scopes -----------------------------------------------------------------
    def new_var(self, name: str) -> Var:
        self.nvars += 1
        v = Var(name, self.nvars, self.fs)
        v.in_loop = self.loops > 0
        return v

    def activate(self, v: Var) -> None:
        fs = self.fs
        fs.active.append(v)
        if len(fs.active) > MAX_LOCALS:
            raise self.errorlimit(MAX_LOCALS, "local variables")

    def errorlimit(self, limit: int, what: str) -> LuaSyntaxError:
        fs = self.fs
        if fs.line == 0:
            msg = f"main function has more than {limit} {what}"
        else:
            msg = f"function at line {fs.line} has more than {limit} {what}"
        return self.error(msg, near=False)

    def resolve(self, name: str) -> tuple:
        fs = self.fs
        for v in reversed(fs.active):
            if v.name == name:
                return ("local", v)
        f = fs.parent
        while f is not None:
            for v in reversed(f.active):
                if v.name == name:
                    v.captured = True
                    g = fs
                    while g is not f:
                        if v.id not in g.upvals:
                            g.upvals[v.id] = v
                            if len(g.upvals) > MAX_UPVALUES:
                                saved = self.fs
                                self.fs = g
                                err = self.errorlimit(MAX_UPVALUES, "upvalues")
                                self.fs = saved
                                raise err
                        g = g.parent
                    return ("upval", v)
            f = f.parent
        return ("global", name.encode("latin-1"))

    # -- chunk and blocks --------------------------------------------------------
    def parse_chunk(self) -> Func:
        fs = Func(None, 0)
        fs.is_vararg = True
        fs.name = "main chunk"
        self.fs = fs
        fs.body = self.block_body()
        self.check("eof")
        return fs

    def block_body(self) -> list:
        """lparser.c chunk(): statements until a block end; return/break end it."""
        self.enterlevel()
        stats = []
        fs = self.fs
        nactive = len(fs.active)
        while self.tok[0] not in _BLOCK_FOLLOW:
            st, last = self.statement()
            stats.append(st)
            self.testnext(";")
            if last:
                break
        del fs.active[nactive:]
        self.level -= 1
        return stats

    def statement(self) -> tuple:
        kind = self.tok[0]
        line = self.tok[2]
        if kind == "if":
            return self.ifstat(line), False
        if kind == "while":
            self.next()
            cond = self.expr()
            self.checknext("do")
            body = self.loop_block()
            self.check_match("end", "while", line)
            return ("while", cond, body, line), False
        if kind == "do":
            self.next()
            body = self.block_body()
            self.check_match("end", "do", line)
            return ("do", body, line), False
        if kind == "for":
            return self.forstat(line), False
        if kind == "repeat":
            return self.repeatstat(line), False
        if kind == "function":
            return self.funcstat(line), False
        if kind == "local":
            self.next()
            if self.testnext("function"):
                name = self.checkname()
                v = self.new_var(name)
                self.activate(v)
                f = self.body(False, line, name)
                return ("localfunc", v, f, line), False
            return self.localstat(line), False
        if kind == "return":
            self.next()
            if self.tok[0] in _BLOCK_FOLLOW or self.tok[0] == ";":
                exprs = []
            else:
                exprs = self.explist()
            return ("return", exprs, line), True
        if kind == "break":
            self.next()
            if not self.loops:
                raise self.error("no loop to break")
            return ("break", line), True
        return self.exprstat(line), False

    def loop_block(self) -> list:
        self.fs.has_loop = True
        self.loops += 1
        body = self.block_body()
        self.loops -= 1
        return body

    def ifstat(self, line: int) -> tuple:
        clauses = []
        self.next()
        cond = self.expr()
        self.checknext("then")
        clauses.append((cond, self.block_body()))
        orelse = None
        while self.tok[0] == "elseif":
            self.next()
            cond = self.expr()
            self.checknext("then")
            clauses.append((cond, self.block_body()))
        if self.tok[0] == "else":
            self.next()
            orelse = self.block_body()
        self.check_match("end", "if", line)
        return ("if", clauses, orelse, line)

    def forstat(self, line: int) -> tuple:
        self.next()
        name = self.checkname()
        kind = self.tok[0]
        fs = self.fs
        if kind == "=":
            self.next()
            start = self.expr()
            self.checknext(",")
            stop = self.expr()
            step = None
            if self.testnext(","):
                step = self.expr()
            self.checknext("do")
            v = self.new_var(name)
            v.in_loop = True
            n = len(fs.active)
            self.activate(v)
            body = self.loop_block()
            del fs.active[n:]
            self.check_match("end", "for", line)
            return ("fornum", v, start, stop, step, body, line)
        if kind == "," or kind == "in":
            names = [name]
            while self.testnext(","):
                names.append(self.checkname())
            self.checknext("in")
            eline = self.tok[2]
            exprs = self.explist()
            self.checknext("do")
            n = len(fs.active)
            vs = [self.new_var(nm) for nm in names]
            for v in vs:
                v.in_loop = True
                self.activate(v)
            body = self.loop_block()
            del fs.active[n:]
            self.check_match("end", "for", line)
            return ("forin", vs, exprs, body, line, eline)
        raise self.error("'=' or 'in' expected")

    def repeatstat(self, line: int) -> tuple:
        self.next()
        fs = self.fs
        fs.has_loop = True
        self.loops += 1
        # the condition sees the body's locals: parse both in one scope
        self.enterlevel()
        n = len(fs.active)
        stats = []
        while self.tok[0] not in _BLOCK_FOLLOW:
            st, last = self.statement()
            stats.append(st)
            self.testnext(";")
            if last:
                break
        self.loops -= 1
        self.check_match("until", "repeat", line)
        cond = self.expr()
        del fs.active[n:]
        self.level -= 1
        return ("repeat", stats, cond, line)

    def funcstat(self, line: int) -> tuple:
        self.next()
        name = self.checkname()
        target = self.singlevar(name, line)
        fullname = name
        is_method = False
        while self.tok[0] == ".":
            self.next()
            key = self.checkname()
            fullname += "." + key
            target = ("index", target, ("str", key.encode("latin-1")), line)
        if self.tok[0] == ":":
            self.next()
            key = self.checkname()
            fullname += ":" + key
            target = ("index", target, ("str", key.encode("latin-1")), line)
            is_method = True
        f = self.body(is_method, line, fullname)
        if target[0] == "local" or target[0] == "upval":
            target[1].reassigned = True
        return ("assign", [target], [("function", f)], line)

    def localstat(self, line: int) -> tuple:
        names = [self.checkname()]
        while self.testnext(","):
            names.append(self.checkname())
        exprs = self.explist() if self.testnext("=") else []
        vs = [self.new_var(n) for n in names]
        for v in vs:
            self.activate(v)
        return ("local", vs, exprs, line)

    def exprstat(self, line: int) -> tuple:
        e = self.primaryexp()
        if e[0] in ("call", "method"):
            return ("callstat", e, line)
        targets = [e]
        while True:
            if targets[-1][0] not in ("local", "upval", "global", "index"):
                raise self.error("syntax error")
            if self.testnext(","):
                targets.append(self.primaryexp())
                continue
            break
        self.checknext("=")
        exprs = self.explist()
        for t in targets:
            if t[0] == "local" or t[0] == "upval":
                t[1].reassigned = True
        return ("assign", targets, exprs, line)

    # -- functions ---------------------------------------------------------------
    def body(self, is_method: bool, line: int, name: str) -> Func:
        parent = self.fs
        fs = Func(parent, line)
        fs.name = name
        self.fs = fs
        saved_loops = self.loops
        self.loops = 0
        if is_method:
            v = self.new_var("self")
            fs.params.append(v)
            self.activate(v)
        self.checknext("(")
        if self.tok[0] != ")":
            while True:
                if self.tok[0] == "name":
                    v = self.new_var(self.checkname())
                    fs.params.append(v)
                    self.activate(v)
                elif self.tok[0] == "...":
                    self.next()
                    fs.is_vararg = True
                else:
                    raise self.error("<name> or '...' expected")
                if fs.is_vararg or not self.testnext(","):
                    break
        self.checknext(")")
        fs.body = self.block_body()
        self.check_match("end", "function", line)
        self.loops = saved_loops
        self.fs = parent
        return fs

    # -- expressions ---------------------------------------------------------------
    def explist(self) -> list:
        exprs = [self.expr()]
        while self.testnext(","):
            exprs.append(self.expr())
        return exprs

    def expr(self) -> tuple:
        return self.subexpr(0)

    def subexpr(self, limit: int) -> tuple:
        self.enterlevel()
        kind = self.tok[0]
        if kind == "not" or kind == "-" or kind == "#":
            line = self.tok[2]
            self.next()
            operand = self.subexpr(UNARY_PRIORITY)
            if kind == "-" and operand[0] == "num":
                v = operand[1]
                e = ("num", -float(v) if v == 0 else -v)
            else:
                e = ("unop", kind, operand, line)
        else:
            e = self.simpleexp()
        while True:
            op = self.tok[0]
            prio = BINARY.get(op)
            if prio is None or prio[0] <= limit:
                break
            line = self.tok[2]
            self.next()
            right = self.subexpr(prio[1])
            if op != "and" and op != "or":
                line = self.lastline      # Lua codes the operation after its second operand
            if op == "and" or op == "or":
                e = (op, e, right, line)
            else:
                e = ("binop", op, e, right, line)
        self.level -= 1
        return e

    def simpleexp(self) -> tuple:
        t = self.tok
        kind = t[0]
        if kind == "number":
            self.next()
            return ("num", t[1])
        if kind == "string":
            self.next()
            return ("str", t[1])
        if kind == "nil":
            self.next()
            return ("nil",)
        if kind == "true":
            self.next()
            return ("true",)
        if kind == "false":
            self.next()
            return ("false",)
        if kind == "...":
            if not self.fs.is_vararg:
                raise self.error("cannot use '...' outside a vararg function")
            self.next()
            return ("vararg",)
        if kind == "{":
            return self.constructor()
        if kind == "function":
            line = t[2]
            self.next()
            return ("function", self.body(False, line, "anonymous"))
        return self.primaryexp()

    def singlevar(self, name: str, line: int) -> tuple:
        r = self.resolve(name)
        if r[0] == "global":
            return ("global", r[1], line)
        return r

    def prefixexp(self) -> tuple:
        t = self.tok
        if t[0] == "name":
            self.next()
            return self.singlevar(t[3], t[2])
        if t[0] == "(":
            line = t[2]
            self.next()
            e = self.expr()
            self.check_match(")", "(", line)
            return ("paren", e)
        raise self.error("unexpected symbol")

    def primaryexp(self) -> tuple:
        e = self.prefixexp()
        while True:
            kind = self.tok[0]
            line = self.tok[2]
            if kind == ".":
                self.next()
                key = self.checkname()
                e = ("index", e, ("str", key.encode("latin-1")), line)
            elif kind == "[":
                self.next()
                k = self.expr()
                self.checknext("]")
                e = ("index", e, k, line)
            elif kind == ":":
                self.next()
                name = self.checkname()
                args = self.funcargs()
                e = ("method", e, name.encode("latin-1"), args, line)
                self.fs.has_call = True
            elif kind == "(" or kind == "string" or kind == "{":
                args = self.funcargs()
                e = ("call", e, args, line)
                self.fs.has_call = True
            else:
                return e

    def funcargs(self) -> list:
        t = self.tok
        kind = t[0]
        if kind == "(":
            line = t[2]
            if line != self.lastline:
                raise self.error("ambiguous syntax (function call x new statement)")
            self.next()
            args = [] if self.tok[0] == ")" else self.explist()
            self.check_match(")", "(", line)
            return args
        if kind == "{":
            return [self.constructor()]
        if kind == "string":
            self.next()
            return [("str", t[1])]
        raise self.error("function arguments expected")

    def constructor(self) -> tuple:
        line = self.tok[2]
        self.checknext("{")
        items = []
        while self.tok[0] != "}":
            kind = self.tok[0]
            if kind == "name" and self.toks[self.i + 1][0] == "=":
                key = ("str", self.tok[1])
                self.next()
                self.next()
                items.append(("kv", key, self.expr()))
            elif kind == "[":
                self.next()
                k = self.expr()
                self.checknext("]")
                self.checknext("=")
                items.append(("kv", k, self.expr()))
            else:
                items.append(("pos", self.expr()))
            if not (self.testnext(",") or self.testnext(";")):
                break
        self.check_match("}", "{", line)
        return ("table", items, line)


def parse(src: bytes, chunkname: str) -> Func:
    return Parser(src, chunkname).parse_chunk()
