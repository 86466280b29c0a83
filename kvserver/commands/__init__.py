"""The command table: every command, its arity and flags, in one place.

A command is a function ``(session, argv) -> reply`` registered with
:func:`command`. It checks its arguments, applies itself to the keyspace,
logs its deterministic effect with ``session.log([b"NAME", ...])`` when it
changed something, and returns a reply value (see :mod:`kvserver.protocol`) or raises
:class:`~kvserver.errors.CommandError`. Commands never touch files or sockets.

A logged argv always starts with the command's real name, never with
``argv[0]`` as the client sent it: under ``rename-command SET put`` the
client's ``argv[0]`` is ``put``, and WAL replay runs through the real table,
whatever renaming is in force when the server restarts.

Arity follows Redis: a positive number is exact, a negative one means "at
least" (the command name counts). :func:`arity_error` is the one check.
``COMMAND INFO`` and ``COMMAND DOCS`` are derived from this table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import CommandError
from ..protocol import ErrorReply, error_line

Handler = Callable[[Any, list], Any]


@dataclass(slots=True)
class Command:
    name: str
    func: Handler
    arity: int
    flags: tuple[str, ...]
    first_key: int
    last_key: int
    step: int
    group: str
    summary: str
    since: str
    synopsis: str
    acl: tuple[str, ...]
    subcommands: dict[str, "Command"] = field(default_factory=dict)
    is_write: bool = False
    #: For a command whose keys move (``movablekeys``: LMPOP's numkeys):
    #: argv -> its keys, or None when argv has no valid key list (COMMAND GETKEYS).
    getkeys: Callable[[list], list | None] | None = None

    def arity_ok(self, argc: int) -> bool:
        return arity_error(self, argc) is None


#: name (lower-case bytes) -> Command. Upper-case names are added as aliases
#: so the common case needs no ``.lower()`` per request.
COMMANDS: dict[bytes, Command] = {}
#: Every command once, by lower-case name.
TABLE: dict[str, Command] = {}


def command(name: str, arity: int, flags: str = "", *, keys: tuple[int, int, int] = (0, 0, 0),
            group: str = "generic", summary: str = "", since: str = "1.0.0",
            synopsis: str = "", acl: str = "", parent: str | None = None,
            getkeys: Callable[[list], list | None] | None = None
            ) -> Callable[[Handler], Handler]:
    """Register a command (or, with ``parent``, a subcommand such as CONFIG GET).

    ``flags`` is space separated (``write``, ``readonly``, ``fast``, ``denyoom``,
    ``loading``, ``stale``, ``noscript``, ``admin``...). ``keys`` is
    (first key, last key, step) as in COMMAND INFO. ``synopsis`` is the
    argument line of the Redis docs (``key value [NX | XX]``), used for
    COMMAND DOCS and redis-cli's hints. ``getkeys`` finds the keys of a
    ``movablekeys`` command (its ``keys`` are then (0, 0, 0), as Redis shows).
    """
    def register(func: Handler) -> Handler:
        flag_tuple = tuple(flags.split())
        category = implied_categories(tuple(acl.split()) or (f"@{group}",), flag_tuple)
        cmd = Command(name=name.lower(), func=func, arity=arity, flags=flag_tuple,
                      first_key=keys[0], last_key=keys[1], step=keys[2], group=group,
                      summary=summary, since=since, synopsis=synopsis,
                      acl=category, is_write="write" in flag_tuple, getkeys=getkeys)
        if parent is None:
            TABLE[cmd.name] = cmd
            COMMANDS[cmd.name.encode()] = cmd
            COMMANDS[cmd.name.upper().encode()] = cmd
        else:
            cmd.name = f"{parent}|{cmd.name}"
            TABLE[parent].subcommands[name.lower()] = cmd
        return func
    return register


#: ACL categories a flag implies (Redis's setImplicitACLCategories); a
#: command that is not @fast is @slow.
_IMPLIED_CATEGORIES = (("write", ("@write",)), ("readonly", ("@read",)),
                       ("admin", ("@admin", "@dangerous")), ("fast", ("@fast",)),
                       ("blocking", ("@blocking",)))


def implied_categories(categories: tuple[str, ...], flags: tuple[str, ...]) -> tuple[str, ...]:
    """``categories`` plus those the flags imply, as COMMAND INFO shows them."""
    out = list(categories)
    for flag, implied in _IMPLIED_CATEGORIES:
        if flag == "readonly" and "@scripting" in out:
            continue   # Redis: EVAL_RO and FCALL_RO are not @read
        if flag in flags:
            out.extend(c for c in implied if c not in out)
    if "@fast" not in out and "@slow" not in out:
        out.append("@slow")
    return tuple(out)


def unknown_command_line(argv: list[bytes]) -> bytes:
    """Redis's error line for a command it does not know, byte for byte (``-ERR ...\\r\\n``).

    Redis formats it with C strings (``'%.*s'``): each argument ends at a NUL,
    the quoted arguments stop once 128 bytes are shown, even inside a UTF-8
    character, and CR/LF become spaces. Hence bytes, not text.
    """
    args = b""
    for arg in argv[1:]:
        if len(args) >= 128:
            break
        args += b"'%s' " % arg.split(b"\0", 1)[0][: 128 - len(args)]
    name = argv[0].split(b"\0", 1)[0][:128]
    return error_line(b"ERR unknown command '%s', with args beginning with: %s" % (name, args))


def unknown_command(argv: list[bytes]) -> CommandError:
    """The unknown-command error as text (for callers that need a CommandError)."""
    return CommandError(unknown_command_line(argv)[1:-2].decode("utf-8", "replace"))


class Rejected(CommandError):
    """A subcommand refused before it ran: unknown (``command`` is None) or of the wrong arity.

    The connection counts it as Redis does: a rejected_call of ``command``
    (INFO commandstats), nothing for an unknown subcommand; an error reply
    either way.
    """

    def __init__(self, message: str, command: str | None = None) -> None:
        super().__init__(message)
        self.command = command


def unknown_subcommand(argv: list[bytes]) -> CommandError:
    sub = argv[1].decode("utf-8", "replace")
    return Rejected(f"ERR unknown subcommand '{sub[:128]}'. Try {argv[0].decode().upper()} HELP.")


def dispatch_subcommand(session: Any, argv: list[bytes]) -> Any:
    """Run ``argv[1]`` as a subcommand of ``argv[0]`` (CONFIG GET, CLIENT ID...)."""
    # The container is found by the name it ran under; a renamed one
    # (rename-command CONFIG x) is not in TABLE by that name, but the
    # connection recorded which command it is.
    parent = TABLE.get(argv[0].decode("utf-8", "replace").lower()) or TABLE[session.last_command]
    sub = parent.subcommands.get(argv[1].decode("utf-8", "replace").lower())
    if sub is None:
        raise unknown_subcommand(argv)
    session.last_command = sub.name  # CLIENT LIST shows cmd=client|info, as Redis does
    error = arity_error(sub, len(argv))
    if error is not None:
        raise Rejected(error, sub.name)
    return sub.func(session, argv)


def renamed_table(renames: tuple[tuple[str, str], ...]) -> dict[bytes, Command]:
    """The command table as clients see it after ``rename-command`` lines.

    Returns :data:`COMMANDS` itself when nothing is renamed. A rename to
    ``""`` removes the command; the old name then answers "unknown command",
    as in Redis. Renames are per server, never applied to the shared table:
    WAL replay keeps the real names. Raises KeyError naming an unknown command.
    """
    if not renames:
        return COMMANDS
    table = dict(COMMANDS)
    for old, new in renames:
        cmd = TABLE.get(old.lower())
        if cmd is None or table.pop(old.lower().encode(), None) is None:
            raise KeyError(old)
        table.pop(old.upper().encode(), None)
        if new:
            table[new.lower().encode()] = cmd
            table[new.upper().encode()] = cmd
    return table


def lookup(name: bytes) -> Command | None:
    cmd = COMMANDS.get(name)
    if cmd is None:
        cmd = COMMANDS.get(name.lower())
    return cmd


def arity_error(cmd: Command, argc: int) -> str | None:
    """The error for ``argc`` arguments to ``cmd``, or None if it takes that many.

    The one place arity is checked: the dispatcher's general lane, WAL
    replay (:func:`execute`), subcommands, and the fast lane's table (built
    only from counts this accepts) all come here.
    """
    a = cmd.arity
    if (argc != a) if a >= 0 else (argc < -a):
        return f"ERR wrong number of arguments for '{cmd.name}' command"
    return None


def execute(session: Any, argv: list[bytes]) -> Any:
    """The dispatcher's replay entry: run one logged effect with every client check off.

    WAL replay and tools call it. Lookup by the real name in the real table
    (never a rename-command alias), the one arity check, the command: no
    auth, loading, OOM or mode check, no stats, slow log or MONITOR, and no
    execution unit (replay logs nothing: the record is already on disk).
    Errors become error replies. kvserver.dispatch documents the whole
    sequence this is the client-less part of.
    """
    cmd = COMMANDS.get(argv[0])
    if cmd is None:
        cmd = COMMANDS.get(argv[0].lower())
        if cmd is None:
            return ErrorReply(unknown_command(argv).message)
    error = arity_error(cmd, len(argv))
    if error is not None:
        return ErrorReply(error)
    try:
        return cmd.func(session, argv)
    except CommandError as exc:
        return ErrorReply(exc.message)


def _load() -> None:
    """Import every module of this package; each registers its commands with @command.

    The one place command modules are found: a new command family is a new
    module in this package (see "Adding a command family" in
    docs/architecture.md), and nothing else has to name it. Modules load in
    name order; one may import another (a helper it shares) at any point.
    """
    import importlib
    import pkgutil
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


_load()
