"""kvcli: the kvserver command line, modelled on redis-cli.

Modes, picked as redis-cli picks them:

* ``kvcli SET a 1``: run one command (``-r``/``-i`` repeat it) and exit.
* ``cat cmds | kvcli``: stdin is not a terminal, so run one command per line,
  split with Redis's quoting rules (``"a b"``, ``'c'``, ``\\x41``).
* ``kvcli``: an interactive prompt (``127.0.0.1:6379>``, ``[N]`` after a
  SELECT, ``(TX)`` inside MULTI) with readline history in ``~/.kvcli_history``
  (``KVCLI_HISTFILE`` moves it; ``/dev/null`` or empty turns it off).
* ``kvcli --latency``: PING in a loop and show min/max/avg round trip in
  milliseconds, until ``--latency-samples N`` samples or Ctrl-C.

Replies print like redis-cli's (see :mod:`clients.formatting`): quoted and
annotated on a terminal, bare with ``--raw`` or when stdout is not a terminal.
As in redis-cli 7, an error reply does not change the exit status; failing to
connect, or losing the connection outside the prompt, exits 1.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import IO, Any, Iterable, Sequence

from kvserver.protocol import split_args

from .client import Client
from .errors import ClientConnectionError, ServerError
from .formatting import format_reply
from .url import DEFAULT_HOST, DEFAULT_PORT, parse_url

try:
    from kvserver import __version__
except ImportError:  # pragma: no cover - kvserver always ships alongside
    __version__ = "unknown"

#: Pause between PINGs in --latency mode unless -i says otherwise: redis-cli's
#: LATENCY_SAMPLE_RATE (10 ms).
LATENCY_INTERVAL = 0.010
#: Lines kept in the history file (redis-cli keeps linenoise's default, 100;
#: a little more costs nothing).
HISTORY_LENGTH = 1000
DEFAULT_HISTFILE = "~/.kvcli_history"

USAGE = f"""\
kvcli {__version__}

Usage: kvcli [OPTIONS] [cmd [arg [arg ...]]]
  -h <hostname>      Server hostname (default: {DEFAULT_HOST}).
  -p <port>          Server port (default: {DEFAULT_PORT}).
  -s <socket>        Server socket (overrides hostname and port).
  -a <password>      Password to use when connecting to the server.
                     The KVCLI_AUTH environment variable is a safer way.
  --user <username>  Used to send ACL style 'AUTH username pass'. Needs -a.
  --pass <password>  Alias of -a for consistency with the new --user option.
  --no-auth-warning  Don't show a warning when using a password on the command line.
  -u <uri>           Server URI: kv://[[user]:pass@]host[:port][/db], redis://...,
                     unix:///path?db=N.
  -n <db>            Database number.
  -2                 Start session in RESP2 protocol mode.
  -3                 Start session in RESP3 protocol mode.
  -t <timeout>       Timeout in seconds (decimals allowed) for connect and reads.
  -r <repeat>        Execute specified command N times (-1: until Ctrl-C).
  -i <interval>      When -r is used, waits <interval> seconds per command.
                     In --latency mode, the pause between PINGs (default 0.01).
  -x                 Read last argument from STDIN.
  --raw              Use raw formatting for replies (default when STDOUT is
                     not a tty).
  --no-raw           Force formatted output even when STDOUT is not a tty.
  --latency          Enter a special mode continuously sampling latency.
  --latency-samples <n>
                     Stop --latency after n samples (default: until Ctrl-C).
  --help             Output this help and exit.
  -v, --version      Output version and exit.

Examples:
  cat /etc/passwd | kvcli -x SET mypasswd
  kvcli GET mypasswd
  kvcli -r 100 INCR counter
  kvcli -u kv://:secret@127.0.0.1:6379/0 PING
  kvcli --latency --latency-samples 100

When no command is given, kvcli starts in interactive mode.
Type "quit" or "exit" (or press Ctrl-D) to leave it.
"""

INTERACTIVE_HELP = """\
kvcli {version}
To get help about commands type:
      "help @<group>" to get a list of commands in <group>
      "help <command>" for help on <command>
      "quit" to exit
Type commands as you would to redis-cli: SET key value, GET key, ...
Quote arguments with spaces: SET k "hello world"; "\\x00" escapes bytes.
Prefix a command with a number to repeat it: 3 INCR counter.
"""


# --- help <command>: redis-cli 7.0's help, built from the server's COMMAND DOCS ---

def _pairs(value: Any) -> list[tuple[str, Any]]:
    """A RESP3 map or its RESP2 flat-array form as (key, value) pairs, keys decoded."""
    items = value.items() if isinstance(value, dict) else zip(value[::2], value[1::2])
    return [(_text(k), v) for k, v in items]


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def help_params(arguments: list) -> str:
    """A command's argument synopsis from COMMAND DOCS, as redis-cli 7.0 builds it
    (cliConcatArguments): ``key value [NX|XX] [GET] ...``."""
    return " ".join(p for p in (_help_arg(a) for a in arguments) if p)


def _help_arg(arg: Any) -> str:
    fields = dict(_pairs(arg))
    name, kind = _text(fields.get("name", "")), _text(fields.get("type", ""))
    token = _text(fields["token"]) if "token" in fields else ""
    flags = {_text(f) for f in fields.get("flags", ())}
    if kind in ("key", "string", "integer", "double", "pattern", "unix-time", "token"):
        repeat = name
    elif kind == "oneof":
        repeat = "|".join(p for p in (_help_arg(a) for a in fields.get("arguments", ())) if p)
    elif kind == "block":
        repeat = help_params(fields.get("arguments", []))
    else:
        repeat = ""
    if token and kind != "pure-token":
        token += " "
    out = ("[" if "optional" in flags else "") + token + repeat
    if "multiple" in flags:
        out += " [" + (token if "multiple_token" in flags else "") + repeat + " ...]"
    return out + ("]" if "optional" in flags else "")


@dataclasses.dataclass
class HelpEntry:
    words: tuple[str, ...]   # ("CONFIG", "GET")
    params: str
    summary: str
    since: str | None
    group: str

    @property
    def full(self) -> str:
        return " ".join(self.words)


def help_entries(docs: Any) -> list[HelpEntry]:
    """Every command and subcommand in a COMMAND DOCS reply, sorted by name as redis-cli sorts."""
    entries: list[HelpEntry] = []

    def add(words: tuple[str, ...], specs: Any) -> None:
        fields = dict(_pairs(specs))
        entries.append(HelpEntry(
            words, help_params(fields.get("arguments", [])), _text(fields.get("summary", "")),
            _text(fields["since"]) if "since" in fields else None, _text(fields.get("group", ""))))
        for sub, sub_specs in _pairs(fields.get("subcommands", [])):
            add((words[0], sub.split("|", 1)[-1].upper()), sub_specs)

    for name, specs in _pairs(docs):
        add((name.upper(),), specs)
    entries.sort(key=lambda e: e.full.encode())
    return entries


def format_help(entries: list[HelpEntry], words: list[str]) -> bytes:
    """``help SET`` / ``help config get`` / ``help @string``, byte for byte as redis-cli 7.0."""
    group = words[0][1:] if words and words[0].startswith("@") else None
    out = []
    for e in entries:
        if group is not None:
            if e.group.lower() != group.lower():
                continue
        elif len(words) > len(e.words) or any(
                w.upper() != e.words[i] for i, w in enumerate(words)):
            continue
        out.append(f"\r\n  \x1b[1m{e.full}\x1b[0m \x1b[90m{e.params}\x1b[0m\r\n"
                   f"  \x1b[33msummary:\x1b[0m {e.summary}\r\n")
        if e.since is not None:
            out.append(f"  \x1b[33msince:\x1b[0m {e.since}\r\n")
        if group is None:
            out.append(f"  \x1b[33mgroup:\x1b[0m {e.group}\r\n")
    out.append("\r\n")
    return "".join(out).encode()


class UsageError(Exception):
    """Bad command line; the message is printed and kvcli exits 1."""


@dataclasses.dataclass
class Options:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    unix_socket: str | None = None
    password: str | None = None
    username: str | None = None
    db: int = 0
    resp: int = 2
    timeout: float | None = None
    repeat: int = 1
    interval: float | None = None
    stdin_arg: bool = False
    raw: bool | None = None  # None: decide from whether stdout is a terminal
    latency: bool = False
    latency_samples: int | None = None
    auth_warning: bool = True
    password_on_command_line: bool = False
    show_help: bool = False
    show_version: bool = False
    command: list[str] = dataclasses.field(default_factory=list)


def _number(kind: type, option: str, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise UsageError(f"Invalid value for {option}: '{text}'") from None


def parse_options(args: Sequence[str]) -> Options:
    """Parse kvcli's arguments the way redis-cli does.

    Options come first; the first word that is not an option starts the
    command, so ``kvcli SET k -1`` passes ``-1`` to the server. Raises
    UsageError for an unknown option or a missing or malformed value.
    """
    opts = Options()
    takes_value = {"-h", "-p", "-s", "-a", "--pass", "--user", "-u", "-n", "-t", "-r",
                   "-i", "--latency-samples"}
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in takes_value:
            if i + 1 >= len(args):
                if arg == "-h":  # redis-cli: a bare -h asks for help
                    opts.show_help = True
                    i += 1
                    continue
                raise UsageError(f"Unrecognized option or bad number of args for: '{arg}'")
            value = args[i + 1]
            i += 2
            if arg == "-h":
                opts.host = value
            elif arg == "-p":
                opts.port = _number(int, arg, value)
                if not 0 < opts.port < 65536:
                    raise UsageError(f"Invalid port: '{value}'")
            elif arg == "-s":
                opts.unix_socket = value
            elif arg in ("-a", "--pass"):
                opts.password = value
                opts.password_on_command_line = True
            elif arg == "--user":
                opts.username = value
            elif arg == "-u":
                _apply_url(opts, value)
            elif arg == "-n":
                opts.db = _number(int, arg, value)
            elif arg == "-t":
                opts.timeout = _number(float, arg, value)
            elif arg == "-r":
                opts.repeat = _number(int, arg, value)
            elif arg == "-i":
                opts.interval = _number(float, arg, value)
            elif arg == "--latency-samples":
                opts.latency_samples = _number(int, arg, value)
                if opts.latency_samples <= 0:
                    raise UsageError(f"Invalid value for {arg}: '{value}'")
            continue
        if arg == "--help":
            opts.show_help = True
        elif arg in ("-v", "--version"):
            opts.show_version = True
        elif arg == "--raw":
            opts.raw = True
        elif arg == "--no-raw":
            opts.raw = False
        elif arg == "--latency":
            opts.latency = True
        elif arg == "--no-auth-warning":
            opts.auth_warning = False
        elif arg == "-x":
            opts.stdin_arg = True
        elif arg == "-2":
            opts.resp = 2
        elif arg == "-3":
            opts.resp = 3
        elif arg.startswith("-") and len(arg) > 1:
            raise UsageError(f"Unrecognized option or bad number of args for: '{arg}'")
        else:
            opts.command = list(args[i:])
            break
        i += 1
    if opts.password is None and os.environ.get("KVCLI_AUTH"):
        opts.password = os.environ["KVCLI_AUTH"]
    return opts


def _apply_url(opts: Options, url: str) -> None:
    try:
        parts = parse_url(url)
    except ValueError as exc:
        raise UsageError(f"Invalid URI: {exc}") from None
    opts.host = parts.get("host", opts.host)
    opts.port = parts.get("port", opts.port)
    opts.unix_socket = parts.get("unix_socket")
    opts.db = parts.get("db", opts.db)
    opts.resp = parts.get("resp", opts.resp)
    opts.timeout = parts.get("timeout", opts.timeout)
    if "username" in parts:
        opts.username = parts["username"]
    if "password" in parts:
        opts.password = parts["password"]
        opts.password_on_command_line = True


# --- running commands --------------------------------------------------------------


class Session:
    """One kvcli run: the client, where output goes, and the prompt's state."""

    def __init__(self, opts: Options, out: IO[bytes], err: IO[str], raw: bool) -> None:
        self.opts = opts
        self.out = out
        self.err = err
        self.raw = raw
        self.in_multi = False
        self.client = Client(host=opts.host, port=opts.port, unix_socket=opts.unix_socket,
                             timeout=opts.timeout)
        self._help: list[HelpEntry] | None = None

    def help(self, words: list[bytes]) -> None:
        """``help``: kvcli's own text; ``help <command>`` / ``help @<group>``: the
        command's syntax from the server's COMMAND DOCS, as redis-cli 7.0 prints it."""
        if not words:
            self.out.write(INTERACTIVE_HELP.format(version=__version__).encode())
            self.out.flush()
            return
        entries = self._help
        if entries is None:
            try:
                entries = self._help = help_entries(self.client.execute("COMMAND", "DOCS"))
            except ServerError:
                entries = []  # no COMMAND DOCS (or not authenticated yet): nothing to show
        self.out.write(format_help(entries, [w.decode("utf-8", "replace") for w in words]))
        self.out.flush()

    def connect(self) -> bool:
        """Connect, then AUTH / HELLO 3 / SELECT as asked.

        Returns False (after saying why) if the server cannot be reached. A
        failed AUTH or SELECT is reported and the session goes on, as in
        redis-cli; the client only remembers the steps that worked, so a
        reconnect repeats those.
        """
        opts, client = self.opts, self.client
        try:
            client.connect()
            if opts.password is not None:
                self._setup_step(client.auth, opts.password, opts.username, label="AUTH")
            if opts.resp == 3:
                if self._setup_step(client.execute, "HELLO", "3", label="HELLO 3"):
                    client.resp = 3
            if opts.db:
                self._setup_step(client.select, opts.db, label=f"SELECT {opts.db}")
        except ClientConnectionError as exc:
            self.err.write(f"Could not connect to kvserver at {exc.address}: {exc.reason}\n")
            self.err.flush()
            return False
        return True

    def _setup_step(self, call: Any, *args: Any, label: str) -> bool:
        try:
            call(*args)
            return True
        except ServerError as exc:
            self.err.write(f"{label} failed: {exc.message}\n")
            self.err.flush()
            return False

    def run(self, argv: list[bytes], repeat: int = 1) -> None:
        """Run one command ``repeat`` times (-1: forever), printing each reply.

        ClientConnectionError goes to the caller, which knows whether to give up.
        """
        interval = self.opts.interval
        n = 0
        while repeat < 0 or n < repeat:
            if n and interval:
                time.sleep(interval)
            n += 1
            try:
                reply: Any = self.client.execute(*argv)
            except ServerError as exc:
                reply = exc
            self._track_multi(argv, reply)
            self.out.write(format_reply(argv, reply, self.raw))
            self.out.flush()  # one reply at a time, so `kvcli ... | grep` streams

    def _track_multi(self, argv: list[bytes], reply: Any) -> None:
        name = argv[0].lower()
        if name == b"multi" and not isinstance(reply, ServerError):
            self.in_multi = True
        elif name in (b"exec", b"discard"):
            self.in_multi = False

    def prompt(self) -> str:
        client = self.client
        if not client.connected:
            return "not connected> "
        prompt = client.address
        if client.db:
            prompt += f"[{client.db}]"
        if self.in_multi:
            prompt += "(TX)"
        return prompt + "> "

    def lost(self, exc: ClientConnectionError) -> None:
        if exc.connecting:
            self.err.write(f"Could not connect to kvserver at {exc.address}: {exc.reason}\n")
        else:
            self.err.write(f"Error: {exc.reason}\n")
        self.err.flush()


def _words(line: bytes) -> tuple[list[bytes] | None, int]:
    """Split a line; a leading count (``3 INCR x``) becomes the repeat."""
    argv = split_args(line)
    if argv and len(argv) > 1 and argv[0].isdigit():
        return argv[1:], int(argv[0])
    return argv, 1


def run_lines(session: Session, lines: Iterable[bytes]) -> int:
    """Run one command per line (stdin not a terminal). Returns the exit status."""
    for line in lines:
        argv, repeat = _words(line.rstrip(b"\r\n"))
        if argv is None:
            session.out.write(b"Invalid argument(s)\n")  # stdout, in sequence, as redis-cli
            session.out.flush()
            continue
        if not argv:
            continue
        if argv[0].lower() in (b"quit", b"exit"):
            break
        try:
            session.run(argv, repeat)
        except ClientConnectionError as exc:
            session.lost(exc)
            return 1
    return 0


# Commands kept out of the history file because they carry a password.
_SECRET_COMMANDS = {b"auth"}
_SECRET_PAIRS = {(b"acl", b"setuser"), (b"config", b"set")}


def _is_secret(argv: list[bytes]) -> bool:
    words = [a.lower() for a in argv]
    if words[0] in _SECRET_COMMANDS:
        return True
    if words[0] in (b"hello", b"migrate") and (b"auth" in words or b"auth2" in words):
        return True
    return len(words) > 1 and (words[0], words[1]) in _SECRET_PAIRS


class History:
    """readline history saved after every line, as redis-cli saves its own."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        try:
            import readline
        except ImportError:  # no readline (some builds): plain input(), no history
            self.readline = None
            return
        self.readline = readline
        readline.set_history_length(HISTORY_LENGTH)
        if path and os.path.exists(path):
            try:
                readline.read_history_file(path)
            except OSError:
                pass

    @classmethod
    def from_env(cls) -> History:
        path = os.environ.get("KVCLI_HISTFILE", DEFAULT_HISTFILE)
        if not path or path == os.devnull:
            return cls(None)
        return cls(os.path.expanduser(path))

    def added(self, argv: list[bytes]) -> None:
        """input() has put the line in memory; drop it if secret, then save."""
        rl = self.readline
        if rl is None:
            return
        if _is_secret(argv):
            last = rl.get_current_history_length()
            if last:
                rl.remove_history_item(last - 1)
            return
        if self.path:
            try:
                rl.write_history_file(self.path)
            except OSError:
                pass


def repl(session: Session) -> int:
    """The interactive prompt. Returns the exit status."""
    history = History.from_env()
    while True:
        try:
            line = input(session.prompt())
        except EOFError:
            session.out.write(b"\n")
            return 0
        except KeyboardInterrupt:
            session.out.write(b"\n")
            return 0
        argv, repeat = _words(line.encode("utf-8", "surrogateescape"))
        if argv is None:
            session.out.write(b"Invalid argument(s)\n")
            session.out.flush()
            continue
        if not argv:
            continue
        history.added(argv)
        name = argv[0].lower()
        if name in (b"quit", b"exit"):
            return 0
        if name in (b"help", b"?"):
            try:
                session.help(argv[1:])
            except ClientConnectionError as exc:
                session.lost(exc)
            continue
        if name == b"clear":
            print("\x1b[H\x1b[2J", end="", flush=True)
            continue
        try:
            session.run(argv, repeat)
        except ClientConnectionError as exc:
            # The client reconnects on the next command; until then the
            # prompt says "not connected".
            session.lost(exc)
            session.in_multi = False
        except KeyboardInterrupt:
            # Ctrl-C during a slow command: the client dropped the connection
            # (its reply would arrive out of step); back to the prompt.
            session.out.write(b"\n")
            session.out.flush()
            session.in_multi = False


def latency(session: Session) -> int:
    """PING in a loop, showing ``min: X, max: Y, avg: Z (N samples)`` in ms.

    On a terminal the line is redrawn after every sample; otherwise only the
    final figures are printed. Stops after --latency-samples or on Ctrl-C.
    """
    opts, out = session.opts, session.out
    interval = LATENCY_INTERVAL if opts.interval is None else opts.interval
    tty = not session.raw
    lo = hi = total = 0.0
    count = 0

    def line() -> bytes:
        avg = total / count if count else 0.0
        return b"min: %.2f, max: %.2f, avg: %.2f (%d samples)" % (lo, hi, avg, count)

    try:
        while opts.latency_samples is None or count < opts.latency_samples:
            if count and interval:
                time.sleep(interval)
            start = time.perf_counter()
            session.client.execute("PING")
            ms = (time.perf_counter() - start) * 1000.0
            lo = ms if count == 0 else min(lo, ms)
            hi = max(hi, ms)
            total += ms
            count += 1
            if tty:
                out.write(b"\x1b[0G\x1b[2K" + line())  # back to column 0, clear the line
                out.flush()
    except KeyboardInterrupt:
        pass
    except ClientConnectionError as exc:
        if tty and count:
            out.write(b"\n")
        session.lost(exc)
        return 1
    out.write(b"\n" if tty else line() + b"\n")
    out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run kvcli with ``argv`` (default: the process's arguments); return the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        opts = parse_options(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 1
    if opts.show_help:
        sys.stdout.write(USAGE)
        return 0
    if opts.show_version:
        print(f"kvcli {__version__}")
        return 0
    if opts.password_on_command_line and opts.auth_warning:
        print("Warning: Using a password with '-a' or '-u' option on the command line "
              "interface may not be safe.", file=sys.stderr)

    out = getattr(sys.stdout, "buffer", None) or _TextOut(sys.stdout)
    raw = opts.raw if opts.raw is not None else not _isatty(sys.stdout)
    session = Session(opts, out, sys.stderr, raw)
    try:
        if not session.connect():
            return 1
        if opts.latency:
            return latency(session)
        if opts.command:
            command = [a.encode("utf-8", "surrogateescape") for a in opts.command]
            if opts.stdin_arg:
                command.append(sys.stdin.buffer.read())
            try:
                if command[0].lower() in (b"help", b"?"):
                    session.help(command[1:])  # redis-cli answers help itself here too
                    return 0
                session.run(command, opts.repeat)
            except ClientConnectionError as exc:
                session.lost(exc)
                return 1
            return 0
        if _isatty(sys.stdin):
            return repl(session)
        return run_lines(session, sys.stdin.buffer)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `kvcli KEYS '*' | head`: the reader left. Point stdout at /dev/null
        # so the interpreter's final flush does not complain again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 1
    finally:
        session.client.close()


def _isatty(stream: Any) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _TextOut:
    """Bytes written to a text stream that has no ``.buffer`` (tests, IDE consoles)."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf-8", "replace"))

    def flush(self) -> None:
        self.stream.flush()


if __name__ == "__main__":
    sys.exit(main())
