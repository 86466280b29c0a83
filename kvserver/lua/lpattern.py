"""Lua 5.1 patterns (string.find/match/gmatch/gsub), matched as lstrlib.c does.

A pattern is compiled once (cached) into a list of items; matching then
walks the items with the same backtracking lstrlib.c uses: greedy ``*``/``+``
expand to the longest run then give back one at a time, ``-`` grows one at a
time, ``?`` tries with then without. Errors are raised when the matcher
*reaches* the bad item, as in Lua, so ``("").find("a[")`` is nil while
``("a").find("a[")`` is "malformed pattern (missing ']')": a parse error is
compiled into an error item.

As in C, the pattern ends at its first NUL byte and reading one position past
the subject yields NUL (what ``%f`` sees at the end).

Safety: Lua's patterns have no nested quantifiers, so the work is polynomial
in the subject, but ``a*a*a*b`` is still O(n^3). The matcher counts its steps
and calls ``rt.check_hook()`` every :data:`HOOK_STEPS` of them, so a script
stuck in a pattern can be interrupted like any loop. Lua 5.1 recurses on the C
stack without a limit; here a match nests at most :data:`MAXCCALLS` levels
(Lua 5.2's limit and text: "pattern too complex"), which only a pattern with
about 200 captures or quantified items reaches.
"""

from __future__ import annotations

import re
from typing import Any

from .value import LuaError

#: Lua's LUA_MAXCAPTURES.
MAXCAPTURES = 32
#: Nesting of the backtracking matcher (Lua 5.2's MAXCCALLS; 5.1 has no limit).
MAXCCALLS = 200
#: Matcher steps between two rt.check_hook() calls. The runtime counts those calls
#: as it counts loop iterations (its hook fires every hook_interval of them), so a
#: call stands for a few steps' work, like one iteration of a Lua loop.
HOOK_STEPS = 10

SPECIALS = frozenset(b"^$*+?.([%-")

CAP_UNFINISHED = -1
CAP_POSITION = -2

# item kinds
SINGLE, OPEN, POSITION, CLOSE, BALANCE, FRONTIER, BACKREF, END_ANCHOR, END, ERROR = range(10)


def _ctype_table() -> dict[int, bytes]:
    """C-locale ctype classes as 256-byte membership tables (class letter -> table)."""
    def tbl(pred) -> bytes:
        return bytes(1 if pred(c) else 0 for c in range(256))
    alpha = lambda c: 65 <= c <= 90 or 97 <= c <= 122
    digit = lambda c: 48 <= c <= 57
    classes = {
        ord("a"): tbl(alpha),
        ord("c"): tbl(lambda c: c < 32 or c == 127),
        ord("d"): tbl(digit),
        ord("l"): tbl(lambda c: 97 <= c <= 122),
        ord("p"): tbl(lambda c: 33 <= c <= 126 and not alpha(c) and not digit(c)),
        ord("s"): tbl(lambda c: c == 32 or 9 <= c <= 13),
        ord("u"): tbl(lambda c: 65 <= c <= 90),
        ord("w"): tbl(lambda c: alpha(c) or digit(c)),
        ord("x"): tbl(lambda c: digit(c) or 97 <= c <= 102 or 65 <= c <= 70),
        ord("z"): tbl(lambda c: c == 0),
    }
    for k in list(classes):
        classes[k - 32] = bytes(1 - b for b in classes[k])
    return classes


_CLASSES = _ctype_table()
_ALL = bytes([1]) * 256


def _match_class(c: int, cl: int) -> bool:
    t = _CLASSES.get(cl)
    if t is not None:
        return bool(t[c])
    return cl == c


def _bracket(c: int, p: bytes, i: int, ec: int) -> bool:
    """matchbracketclass: p[i] is '[', p[ec] is the closing ']'."""
    sig = True
    if p[i + 1] == 94:  # '^'
        sig = False
        i += 1
    i += 1
    while i < ec:
        ch = p[i]
        if ch == 37:  # '%'
            i += 1
            if _match_class(c, p[i]):
                return sig
        elif p[i + 1] == 45 and i + 2 < ec:  # range a-z
            if ch <= c <= p[i + 2]:
                return sig
            i += 2
        elif ch == c:
            return sig
        i += 1
    return not sig


class _Malformed(Exception):
    pass


def _classend(p: bytes, i: int) -> int:
    """Index just past the single-char class at p[i] (raises _Malformed with Lua's text)."""
    ch = p[i]
    i += 1
    if ch == 37:  # '%'
        if p[i] == 0:
            raise _Malformed(b"malformed pattern (ends with '%')")
        return i + 1
    if ch == 91:  # '['
        if p[i] == 94:
            i += 1
        while True:
            if p[i] == 0:
                raise _Malformed(b"malformed pattern (missing ']')")
            c = p[i]
            i += 1
            if c == 37 and p[i] != 0:
                i += 1
            if p[i] == 93:
                break
        return i + 1
    return i


def _literal_table(ch: int) -> bytes:
    t = bytearray(256)
    t[ch] = 1
    return bytes(t)


_LITERALS = [_literal_table(c) for c in range(256)]

# Interned set tables and run regexes: a pattern's items share them, and a script
# cannot grow them without bound (each is cleared when it reaches its cap).
_SETS: dict[bytes, bytes] = {}
_RUNS: dict[bytes, Any] = {}
_INTERN_MAX = 1024


def _class_table(p: bytes, i: int, ep: int) -> bytes:
    """Membership table of the single-char class p[i:ep]."""
    ch = p[i]
    if ch == 46:  # '.'
        return _ALL
    if ch == 37:
        cl = p[i + 1]
        t = _CLASSES.get(cl)
        if t is not None:
            return t
        return _LITERALS[cl]
    if ch == 91:
        src = p[i:ep]
        t = _SETS.get(src)
        if t is None:
            t = bytes(1 if _bracket(c, p, i, ep - 1) else 0 for c in range(256))
            if len(_SETS) >= _INTERN_MAX:
                _SETS.clear()
            _SETS[src] = t
        return t
    return _LITERALS[ch]


def _run_regex(tbl: bytes):
    """A compiled regex matching the longest run of members of tbl (for max_expand)."""
    rx = _RUNS.get(tbl)
    if rx is None:
        members = bytes(c for c in range(256) if tbl[c])
        if not members:
            return None
        rx = re.compile(b"[" + b"".join(re.escape(bytes([c])) for c in members) + b"]*")
        if len(_RUNS) >= _INTERN_MAX:
            _RUNS.clear()
        _RUNS[tbl] = rx
    return rx


def compile_pattern(pat: bytes) -> list:
    """The item list of pattern ``pat`` (without a leading '^', handled by callers).

    Each item is a list ``[kind, a, b, quant]``; a parse error becomes an
    ERROR item carrying Lua's message, raised only if a match reaches it.
    """
    nul = pat.find(b"\0")
    if nul >= 0:
        pat = pat[:nul]
    p = pat + b"\0\0\0"
    n = len(pat)
    items: list = []
    i = 0
    while True:
        if i >= n:
            items.append([END, None, None, 0])
            break
        ch = p[i]
        if ch == 40:  # '('
            if p[i + 1] == 41:
                items.append([POSITION, None, None, 0])
                i += 2
            else:
                items.append([OPEN, None, None, 0])
                i += 1
            continue
        if ch == 41:  # ')'
            items.append([CLOSE, None, None, 0])
            i += 1
            continue
        if ch == 37:  # '%'
            nx = p[i + 1]
            if nx == 98:  # 'b'
                if p[i + 2] == 0 or p[i + 3] == 0:
                    items.append([ERROR, b"unbalanced pattern", None, 0])
                    break
                items.append([BALANCE, p[i + 2], p[i + 3], 0])
                i += 4
                continue
            if nx == 102:  # 'f'
                i += 2
                if p[i] != 91:
                    items.append([ERROR, b"missing '[' after '%f' in pattern", None, 0])
                    break
                try:
                    ep = _classend(p, i)
                except _Malformed as e:
                    items.append([ERROR, e.args[0], None, 0])
                    break
                items.append([FRONTIER, _class_table(p, i, ep), None, 0])
                i = ep
                continue
            if 48 <= nx <= 57:
                items.append([BACKREF, nx, None, 0])
                i += 2
                continue
        elif ch == 36 and i + 1 == n:  # '$' at the very end
            items.append([END_ANCHOR, None, None, 0])
            i += 1
            continue
        try:
            ep = _classend(p, i)
        except _Malformed as e:
            items.append([ERROR, e.args[0], None, 0])
            break
        tbl = _class_table(p, i, ep)
        q = p[ep]
        if q in (63, 42, 43, 45):  # ? * + -
            items.append([SINGLE, tbl, _run_regex(tbl) if q in (42, 43) else None, q])
            i = ep + 1
        else:
            items.append([SINGLE, tbl, None, 0])
            i = ep
    return items


# Compiled patterns (and their re translations, below) are cached by pattern text;
# the caches hold at most CACHE_BYTES of pattern text in all (about a hundred
# bytes of items per pattern byte), and patterns longer than CACHE_PATTERN_MAX
# are compiled on each call. Reaching the cap clears both caches.
CACHE_BYTES = 32 * 1024
CACHE_PATTERN_MAX = 1024
_cache: dict[bytes, list] = {}
_cache_bytes = [0]


def _cache_room(pat: bytes) -> bool:
    """Whether pat may be cached (clearing the caches first if they are full)."""
    if len(pat) > CACHE_PATTERN_MAX:
        return False
    if _cache_bytes[0] + len(pat) > CACHE_BYTES:
        _cache.clear()
        _fast_cache.clear()
        _cache_bytes[0] = 0
    _cache_bytes[0] += len(pat)
    return True


def compiled(pat: bytes) -> list:
    """compile_pattern(pat), cached (patterns are usually literals in a script)."""
    r = _cache.get(pat)
    if r is None:
        r = compile_pattern(pat)
        if _cache_room(pat):
            _cache[pat] = r
    return r


def get_pattern(pat: bytes) -> tuple[bool, list]:
    """(anchored, items) for pattern ``pat`` as find/match/gsub read it."""
    if pat[:1] == b"^":
        return True, compiled(pat[1:])
    return False, compiled(pat)


class MatchState:
    __slots__ = ("src", "end", "items", "level", "cap_init", "cap_len", "depth", "steps", "rt")

    def __init__(self, rt: Any, src: bytes, items: list) -> None:
        self.rt = rt
        self.src = src
        self.end = len(src)
        self.items = items
        self.level = 0
        self.cap_init = [0] * MAXCAPTURES
        self.cap_len = [0] * MAXCAPTURES
        self.depth = 0
        self.steps = 0

    def tick(self, n: int) -> None:
        self.steps += n
        if self.steps >= HOOK_STEPS:
            self.steps = 0
            hook = getattr(self.rt, "check_hook", None)
            if hook is not None:
                hook()

    # -- the matcher (lstrlib.c's match, item by item) ------------------------
    def match(self, s: int, i: int) -> int:
        """End of the match of items[i:] at subject position s, or -1."""
        self.depth += 1
        if self.depth > MAXCCALLS:
            raise LuaError(b"pattern too complex")
        self.steps += 1
        if self.steps >= HOOK_STEPS:
            self.tick(0)
        r = self._match(s, i)
        self.depth -= 1  # (an error abandons the whole MatchState: no finally needed)
        return r

    def _match(self, s: int, i: int) -> int:
        items = self.items
        src = self.src
        end = self.end
        while True:
            kind, a, b, q = items[i]
            if kind == SINGLE:
                if q == 0:
                    if s < end and a[src[s]]:
                        s += 1
                        i += 1
                        continue
                    return -1
                if q == 42 or q == 43:  # '*' '+'
                    if q == 43:
                        if not (s < end and a[src[s]]):
                            return -1
                        s += 1
                    if i + 1 < len(items) and items[i + 1][0] == END:
                        j = b.match(src, s).end() if b is not None else s
                        self.tick(j - s)
                        return j
                    j = b.match(src, s).end() if b is not None else s
                    self.tick(j - s)
                    while j >= s:
                        r = self.match(j, i + 1)
                        if r >= 0:
                            return r
                        j -= 1
                    return -1
                if q == 63:  # '?'
                    if s < end and a[src[s]]:
                        r = self.match(s + 1, i + 1)
                        if r >= 0:
                            return r
                    i += 1
                    continue
                # '-'
                while True:
                    r = self.match(s, i + 1)
                    if r >= 0:
                        return r
                    if s < end and a[src[s]]:
                        s += 1
                    else:
                        return -1
            if kind == END:
                return s
            if kind == OPEN or kind == POSITION:
                level = self.level
                if level >= MAXCAPTURES:
                    raise LuaError(b"too many captures")
                self.cap_init[level] = s
                self.cap_len[level] = CAP_UNFINISHED if kind == OPEN else CAP_POSITION
                self.level = level + 1
                r = self.match(s, i + 1)
                if r < 0:
                    self.level -= 1
                return r
            if kind == CLOSE:
                level = self.level - 1
                cap_len = self.cap_len
                while level >= 0 and cap_len[level] != CAP_UNFINISHED:
                    level -= 1
                if level < 0:
                    raise LuaError(b"invalid pattern capture")
                cap_len[level] = s - self.cap_init[level]
                r = self.match(s, i + 1)
                if r < 0:
                    cap_len[level] = CAP_UNFINISHED
                return r
            if kind == END_ANCHOR:
                return s if s == end else -1
            if kind == BALANCE:
                if s >= end or src[s] != a:
                    return -1
                cont = 1
                k = s + 1
                found = -1
                while k < end:
                    c = src[k]
                    if c == b:
                        cont -= 1
                        if cont == 0:
                            found = k + 1
                            break
                    elif c == a:
                        cont += 1
                    k += 1
                self.tick(k - s)
                if found < 0:
                    return -1
                s = found
                i += 1
                continue
            if kind == FRONTIER:
                prev = src[s - 1] if s > 0 else 0
                cur = src[s] if s < end else 0
                if a[prev] or not a[cur]:
                    return -1
                i += 1
                continue
            if kind == BACKREF:
                lv = a - 49
                if lv < 0 or lv >= self.level or self.cap_len[lv] == CAP_UNFINISHED:
                    raise LuaError(b"invalid capture index")
                ln = self.cap_len[lv]
                st = self.cap_init[lv]
                if ln == CAP_POSITION:
                    # C compares (size_t)-2 bytes: never fits in the rest.
                    return -1
                if end - s >= ln and src[st:st + ln] == src[s:s + ln]:
                    s += ln
                    i += 1
                    continue
                return -1
            # ERROR
            raise LuaError(a)

    # -- captures -----------------------------------------------------------
    def capture(self, i: int, s: int, e: int) -> Any:
        if i >= self.level:
            if i == 0:
                return self.src[s:e]
            raise LuaError(b"invalid capture index")
        ln = self.cap_len[i]
        if ln == CAP_UNFINISHED:
            raise LuaError(b"unfinished capture")
        init = self.cap_init[i]
        if ln == CAP_POSITION:
            return init + 1
        return self.src[init:init + ln]

    def captures(self, s: int, e: int, whole: bool) -> tuple:
        """push_captures: the captures, or the whole match when there are none and whole."""
        n = 1 if (self.level == 0 and whole) else self.level
        return tuple(self.capture(i, s, e) for i in range(n))


# -- the fast lane: Python's re for patterns it reads exactly as Lua does ----------------
#
# Without %b, %f and back references, a Lua pattern is a regular expression
# with the same backtracking priorities: a single-char class is a class, '?',
# '*', '+' are greedy as in re, '-' is '*?', captures are groups (position
# captures empty groups), a final '$' is \Z. The first match re finds from a
# position is the one lstrlib.c's matcher finds, so find/match/gmatch/gsub
# give the same results. re cannot call the hook, so it is used only when the
# worst case is small: items * (n+1)^e * 2^q steps at most FAST_BUDGET, for a
# subject of n bytes, q optional items and e = 1 (the search over start
# positions) + 1 if an unbounded item can fail after expanding (anything but
# the end of the pattern follows it: one expansion is O(n)) + the number of
# unbounded items that can trade characters with what follows them.
# An unbounded item followed (past captures) by the end of the pattern, by '$',
# or by a mandatory single-char item whose class it does not share, cannot:
# every give-back but one fails at once, so it costs O(n), not a factor n
# ("%d+%-%d+" is e = 2; "a*a*b" is e = 3). Everything else (and every pattern
# that can raise an error) runs on the matcher above, which counts its steps
# and calls the hook.

#: Worst-case backtracking steps allowed in the (uninterruptible) re lane (a few ms of C).
FAST_BUDGET = 5_000_000

_fast_cache: dict[bytes, Any] = {}
_FAST_K = 6
_FAST_Q = 16


_CLASS_RX: dict[bytes, bytes] = {}


def _class_regex(tbl: bytes) -> bytes:
    rx = _CLASS_RX.get(tbl)
    if rx is None:
        rx = _class_regex_of(tbl)
        if len(_CLASS_RX) >= _INTERN_MAX:
            _CLASS_RX.clear()
        _CLASS_RX[tbl] = rx
    return rx


def _class_regex_of(tbl: bytes) -> bytes:
    members = [c for c in range(256) if tbl[c]]
    if len(members) == 256:
        return b"[\\x00-\\xff]"
    if len(members) == 1:
        return b"\\x%02x" % members[0]
    if not members:
        return b"[^\\x00-\\xff]"
    parts = []
    i = 0
    while i < len(members):
        j = i
        while j + 1 < len(members) and members[j + 1] == members[j] + 1:
            j += 1
        if j == i:
            parts.append(b"\\x%02x" % members[i])
        else:
            parts.append(b"\\x%02x-\\x%02x" % (members[i], members[j]))
        i = j + 1
    return b"[" + b"".join(parts) + b"]"


def _translate(items: list):
    """(regex, ncaptures, positions, e, q, nitems) for items re reads as Lua does, else None."""
    q = sum(1 for it in items if it[0] == SINGLE and it[3] == 63)
    unbounded = [i for i, it in enumerate(items) if it[0] == SINGLE and it[3] in (42, 43, 45)]
    trading = sum(1 for i in unbounded if not _stops_cleanly(items, i))
    expanding = any(not _ends_pattern(items, i) for i in unbounded)
    e = 1 + (1 if expanding else 0) + trading
    if trading > _FAST_K or q > _FAST_Q:
        return None     # (beyond these the budget never admits a subject worth it)
    out = []
    depth = 0
    ncap = 0
    positions = []
    for kind, a, b, quant in items:
        if kind == SINGLE:
            out.append(_class_regex(a))
            if quant == 63:
                out.append(b"?")
            elif quant == 42:
                out.append(b"*")
            elif quant == 43:
                out.append(b"+")
            elif quant == 45:
                out.append(b"*?")
        elif kind == OPEN:
            out.append(b"(")
            depth += 1
            ncap += 1
        elif kind == POSITION:
            out.append(b"()")
            positions.append(ncap)
            ncap += 1
        elif kind == CLOSE:
            if depth == 0:
                return None
            out.append(b")")
            depth -= 1
        elif kind == END_ANCHOR:
            out.append(b"\\Z")
        elif kind == END:
            break
        else:       # %b, %f, back references, errors: the matcher's job
            return None
    if depth or ncap > MAXCAPTURES:
        return None
    try:
        rx = re.compile(b"".join(out))
    except (re.error, RecursionError, OverflowError):
        return None
    return rx, ncap, frozenset(positions), e, q, len(items)


def _ends_pattern(items: list, i: int) -> bool:
    """Whether only captures' ends follow item i: once it starts it cannot fail."""
    return all(it[0] in (CLOSE, END) for it in items[i + 1:])


def _stops_cleanly(items: list, i: int) -> bool:
    """Whether unbounded item i is followed by the end, '$', or a mandatory disjoint class."""
    tbl = items[i][1]
    for kind, a, _b, quant in items[i + 1:]:
        if kind in (OPEN, CLOSE, POSITION):
            continue
        if kind == END or kind == END_ANCHOR:
            return True
        if kind == SINGLE and quant == 0:
            return int.from_bytes(a, "big") & int.from_bytes(tbl, "big") == 0
        return False
    return True


def fast_regex(pat: bytes, items: list, n: int, anchored: bool = False):
    """The re lane for pattern ``pat`` (its item list) on a subject of n bytes, or None.

    An anchored pattern is tried at one position only: one factor of n less.
    """
    f = _fast_cache.get(pat, False)
    if f is False:
        f = _translate(items)
        if _cache_room(pat):
            _fast_cache[pat] = f
    if f is None:
        return None
    if f[5] * (n + 1) ** (f[3] - anchored) * (1 << f[4]) > FAST_BUDGET:
        return None
    return f


class ReMatch:
    """A re match seen through MatchState's capture interface (what gsub's add_value uses)."""

    __slots__ = ("src", "m", "level", "positions")

    def __init__(self, src: bytes, m: re.Match, level: int, positions: frozenset) -> None:
        self.src = src
        self.m = m
        self.level = level
        self.positions = positions

    def capture(self, i: int, s: int, e: int) -> Any:
        if i >= self.level:
            if i == 0:
                return self.src[s:e]
            raise LuaError(b"invalid capture index")
        if i in self.positions:
            return self.m.start(i + 1) + 1
        return self.m.group(i + 1)

    def captures(self, s: int, e: int, whole: bool) -> tuple:
        if self.level and not self.positions:
            return self.m.groups()      # (captures cannot be optional: every group took part)
        n = 1 if (self.level == 0 and whole) else self.level
        return tuple(self.capture(i, s, e) for i in range(n))


def nonempty(items: list) -> bool:
    """Whether every match of the item list is at least one byte long."""
    return any(it[0] == SINGLE and it[3] in (0, 43) for it in items) or \
        any(it[0] == BALANCE for it in items)


def has_specials(pat: bytes) -> bool:
    """strpbrk(p, SPECIALS) != NULL (up to the first NUL, as C sees it)."""
    nul = pat.find(b"\0")
    if nul >= 0:
        pat = pat[:nul]
    for c in pat:
        if c in SPECIALS:
            return True
    return False


def find_aux(rt: Any, s: bytes, pat: bytes, init: int, plain: bool, find: bool) -> tuple:
    """str_find_aux: string.find (find=True) or string.match, init already 0-based and clamped."""
    if find and (plain or not has_specials(pat)):
        k = s.find(pat, init)
        if k >= 0:
            return (k + 1, k + len(pat))
        return (None,)
    anchored, items = get_pattern(pat)
    f = fast_regex(pat, items, len(s), anchored)
    if f is not None:
        rx, ncap, positions = f[0], f[1], f[2]
        m = rx.match(s, init) if anchored else rx.search(s, init)
        if m is None:
            return (None,)
        if not ncap:
            return (m.start() + 1, m.end()) if find else (m.group(),)
        rm = ReMatch(s, m, ncap, positions)
        if find:
            return (m.start() + 1, m.end()) + rm.captures(-1, 0, False)
        return rm.captures(m.start(), m.end(), True)
    ms = MatchState(rt, s, items)
    s1 = init
    n = len(s)
    while True:
        ms.level = 0
        e = ms.match(s1, 0)
        if e >= 0:
            if find:
                return (s1 + 1, e) + ms.captures(-1, 0, False)
            return ms.captures(s1, e, True)
        s1 += 1
        if s1 > n or anchored:
            break
    return (None,)


def gmatch_iter(rt: Any, s: bytes, pat: bytes):
    """The iterator string.gmatch returns (5.1: a leading '^' is a literal character here)."""
    items = compiled(pat)
    pos = [0]
    f = fast_regex(b"\0gmatch" + pat, items, len(s))
    if f is not None:
        rx, ncap, positions = f[0], f[1], f[2]
        count = [0]

        def it_fast(*_args: Any) -> tuple:
            start = pos[0]
            if start > len(s):
                return ()
            m = rx.search(s, start)
            if m is None:
                pos[0] = len(s) + 1
                return ()
            e = m.end()
            pos[0] = e + 1 if e == m.start() else e
            count[0] += 1
            if count[0] >= HOOK_STEPS:
                count[0] = 0
                hook = getattr(rt, "check_hook", None)
                if hook is not None:
                    hook()
            if not ncap:
                return (m.group(),)
            return ReMatch(s, m, ncap, positions).captures(m.start(), e, True)
        return it_fast
    ms = MatchState(rt, s, items)

    def it(*_args: Any) -> tuple:
        src = pos[0]
        n = len(s)
        while src <= n:
            ms.level = 0
            e = ms.match(src, 0)
            if e >= 0:
                pos[0] = e + 1 if e == src else e
                return ms.captures(src, e, True)
            src += 1
        pos[0] = src
        return ()
    return it


def gsub(rt: Any, src: bytes, pat: bytes, max_s: int, add_value) -> tuple[bytes, int]:
    """str_gsub's loop; add_value(ms, s, e) returns the replacement bytes of one match."""
    anchored, items = get_pattern(pat)
    f = fast_regex(pat, items, len(src), anchored)
    if f is not None:
        return _gsub_fast(rt, src, f, anchored, max_s, add_value)
    ms = MatchState(rt, src, items)
    out: list = []
    pos = 0
    copied = 0  # src[copied:pos] is text kept as it is, appended lazily
    n = 0
    end = len(src)
    while n < max_s:
        ms.level = 0
        e = ms.match(pos, 0)
        if e >= 0:
            n += 1
            if copied < pos:
                out.append(src[copied:pos])
            out.append(add_value(ms, pos, e))
            copied = e
        if e > pos:
            pos = e
        elif pos < end:
            pos += 1
        else:
            break
        if anchored:
            break
    out.append(src[copied:])
    return b"".join(out), n


def _gsub_fast(rt: Any, src: bytes, f: tuple, anchored: bool, max_s: int, add_value) -> tuple[bytes, int]:
    """gsub's loop on the re lane: search finds the position the matcher would reach next."""
    rx, ncap, positions = f[0], f[1], f[2]
    out: list = []
    pos = 0
    copied = 0
    n = 0
    end = len(src)
    hook = getattr(rt, "check_hook", None)
    while n < max_s:
        m = rx.match(src, pos) if anchored else rx.search(src, pos)
        if m is None:
            break
        s, e = m.start(), m.end()
        n += 1
        if copied < s:
            out.append(src[copied:s])
        out.append(add_value(ReMatch(src, m, ncap, positions), s, e))
        copied = e
        if n % HOOK_STEPS == 0 and hook is not None:
            hook()
        if e > s:
            pos = e
        elif s < end:
            pos = s + 1
        else:
            break
        if anchored:
            break
    out.append(src[copied:])
    return b"".join(out), n
