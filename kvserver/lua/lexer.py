"""Lua 5.1 lexer: source bytes to tokens, with Lua's own lexical error texts.

A token is ``(kind, value, line, text)``: ``kind`` is ``"name"``,
``"string"``, ``"number"``, ``"eof"`` or the keyword/operator itself
(``"end"``, ``".."``); ``value`` is the name/string as bytes or the number;
``text`` is what Lua's messages show after ``near`` (``'<eof>'`` at the end).
"""

from __future__ import annotations

import re

from .value import LuaSyntaxError, str_to_number

KEYWORDS = frozenset(
    "and break do else elseif end false for function if in local nil not or "
    "repeat return then true until while".split())

# Longest first so that "..." wins over ".." over ".".
_OPS3 = ("...",)
_OPS2 = ("..", "==", "~=", "<=", ">=")
_OPS1 = frozenset("+-*/%^#=<>(){}[];:,.")

_NAME_START = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_NAME_CHARS = _NAME_START | frozenset(b"0123456789")
_DIGITS = frozenset(b"0123456789")
_SPACES = frozenset(b" \t\r\v\f")

# Lua's simple escapes (lexer.c read_string).
_ESCAPES = {ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13,
            ord("t"): 9, ord("v"): 11}


def _near(text: bytes) -> str:
    return text.decode("latin-1")


class Lexer:
    def __init__(self, src: bytes, chunkname: str) -> None:
        self.src = src
        self.chunk = chunkname
        self.pos = 0
        self.line = 1
        if src[:1] == b"#":          # a first line "#!..." is skipped, as lua.c's loader does
            nl = src.find(b"\n")
            self.pos = len(src) if nl < 0 else nl

    def error(self, msg: str, near: str | None, line: int | None = None) -> LuaSyntaxError:
        line = self.line if line is None else line
        text = f"{self.chunk}:{line}: {msg}"
        if near is not None:
            text += f" near '{near}'"
        return LuaSyntaxError(text.encode("latin-1"))

    def tokens(self) -> list:
        out = []
        append = out.append
        src = self.src
        n = len(src)
        while True:
            # skip whitespace and comments
            while self.pos < n:
                c = src[self.pos]
                if c == 10:
                    self.line += 1
                    self.pos += 1
                elif c in _SPACES:
                    self.pos += 1
                elif c == 45 and src[self.pos + 1:self.pos + 2] == b"-":   # --
                    self.pos += 2
                    if src[self.pos:self.pos + 1] == b"[":
                        level = self._long_bracket_level()
                        if level >= 0:
                            self._read_long(level, comment=True)
                            continue
                    nl = src.find(b"\n", self.pos)
                    self.pos = n if nl < 0 else nl
                else:
                    break
            if self.pos >= n:
                append(("eof", None, self.line, "<eof>"))
                return out
            start = self.pos
            c = src[start]
            line = self.line
            if c in _NAME_START:
                p = start + 1
                while p < n and src[p] in _NAME_CHARS:
                    p += 1
                word = src[start:p]
                self.pos = p
                s = word.decode("latin-1")
                if s in KEYWORDS:
                    append((s, None, line, s))
                else:
                    append(("name", word, line, s))
            elif c in _DIGITS or (c == 46 and src[start + 1:start + 2].isdigit()):
                append(self._read_number())
            elif c == 34 or c == 39:
                append(self._read_string(c))
            elif c == 91:                        # [
                level = self._long_bracket_level()
                if level >= 0:
                    s = self._read_long(level, comment=False)
                    append(("string", s, line, _near(src[start:self.pos])))
                elif level == -1:
                    self.pos += 1
                    append(("[", None, line, "["))
                else:
                    raise self.error("invalid long string delimiter", _near(src[start:self.pos]))
            else:
                three = src[start:start + 3].decode("latin-1")
                if three in _OPS3:
                    self.pos += 3
                    append((three, None, line, three))
                    continue
                two = three[:2]
                if two in _OPS2:
                    self.pos += 2
                    append((two, None, line, two))
                    continue
                one = chr(c)
                if one in _OPS1:
                    self.pos += 1
                    append((one, None, line, one))
                    continue
                # Lua 5.1 returns any other character as a single-char token;
                # the parser then says "unexpected symbol near 'c'".
                self.pos += 1
                shown = f"char({c})" if c < 32 or c == 127 else one
                append(("char", None, line, shown))

    # -- pieces ---------------------------------------------------------------
    def _long_bracket_level(self) -> int:
        """At '[': the level of '[==[' (>= 0), -1 for a lone '[', -2 for '[=' without '['."""
        src = self.src
        p = self.pos + 1
        level = 0
        while src[p:p + 1] == b"=":
            level += 1
            p += 1
        if src[p:p + 1] == b"[":
            return level
        return -1 if level == 0 else -2

    def _read_long(self, level: int, comment: bool) -> bytes:
        src = self.src
        p = self.pos + level + 2
        if src[p:p + 2] == b"\r\n" or src[p:p + 2] == b"\n\r":
            p += 2
            self.line += 1
        elif src[p:p + 1] in (b"\n", b"\r"):
            p += 1
            self.line += 1
        close = b"]" + b"=" * level + b"]"
        end = src.find(close, p)
        if end < 0:
            self.line += src.count(b"\n", p)
            self.pos = len(src)
            what = "unfinished long comment" if comment else "unfinished long string"
            raise self.error(what, "<eof>")
        body = src[p:end]
        # Redis builds Lua without LUA_COMPAT_LSTR: "[[" inside "[[...]]" is plain text
        self.line += body.count(b"\n")
        self.pos = end + len(close)
        return body.replace(b"\r\n", b"\n")

    def _read_number(self) -> tuple:
        src = self.src
        n = len(src)
        start = p = self.pos
        # Lua 5.1 read_numeral: digits and dots, then an exponent with sign, then
        # letters, digits and '_' (so "0xA.8" ends before the dot)
        while p < n and (src[p] in _DIGITS or src[p] == 46):
            p += 1
        if p < n and src[p] in b"eE":
            p += 1
            if p < n and src[p] in b"+-":
                p += 1
        while p < n and src[p] in _NAME_CHARS:
            p += 1
        text = src[start:p]
        self.pos = p
        value = str_to_number(text)
        if value is None or text[-1:] in b" \t" or text.lower().startswith((b"inf", b"nan")):
            raise self.error("malformed number", _near(text))
        return ("number", value, self.line, _near(text))

    def _read_string(self, quote: int) -> tuple:
        src = self.src
        n = len(src)
        start = self.pos
        p = start + 1
        out = bytearray()
        line = self.line
        stop = _STRING_STOPS[quote]
        while True:
            # A run of plain bytes is copied at once (a per-byte loop made a
            # 10 MB literal cost seconds of an uninterruptible compile).
            m = stop(src, p)
            q = n if m is None else m.start()
            if q > p:
                out += src[p:q]
                p = q
            if p >= n:
                self.pos = p
                raise self.error("unfinished string", "<eof>")
            c = src[p]
            if c == quote:
                p += 1
                break
            if c == 10 or c == 13:
                self.pos = p
                raise self.error("unfinished string", chr(quote) + _near(bytes(out)))
            if c == 92:                           # backslash
                p += 1
                if p >= n:
                    continue
                e = src[p]
                if e in _ESCAPES:
                    out.append(_ESCAPES[e])
                    p += 1
                elif e == 10 or e == 13:
                    out.append(10)
                    self.line += 1
                    p += 1
                elif e in _DIGITS:
                    q = p
                    while q < n and q < p + 3 and src[q] in _DIGITS:
                        q += 1
                    v = int(src[p:q])
                    if v > 255:
                        self.pos = q
                        raise self.error("escape sequence too large", chr(quote) + _near(bytes(out)))
                    out.append(v)
                    p = q
                else:
                    out.append(e)               # \\ \" \' and any other char as itself
                    p += 1
                continue
            out.append(c)
            p += 1
        self.pos = p
        return ("string", bytes(out), line, _near(src[start:p]))


#: Where a quoted string's plain run ends: its quote, a backslash, a line break.
_STRING_STOPS = {q: re.compile(rb"[\\\n\r" + bytes([q]) + rb"]").search for q in (34, 39)}


def tokenize(src: bytes, chunkname: str) -> list:
    return Lexer(src, chunkname).tokens()
