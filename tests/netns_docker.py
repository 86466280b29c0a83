"""The container entrypoint scenario, run inside a private network namespace.

    unshare -n PYTHON tests/netns_docker.py OUTER_NETNS_INODE WORKDIR

tests/test_config.py runs this to show that docker/entrypoint.sh with the
shipped docker/kvserver.conf answers a client whose source address is not
loopback, with the password from KVSERVER_PASSWORD if set, and that
docker/healthcheck.sh asks the way such a client does.

Tests send traffic only to loopback or to addresses inside a network
namespace the test run created, never to the host's own interface address.
So this script refuses to run unless it is in a network namespace other than
the caller's (OUTER_NETNS_INODE, the st_ino of the caller's
/proc/self/ns/net); there it brings ``lo`` up and adds ADDRESS to it.
ADDRESS exists only in that namespace, and a connection from it to itself is
not loopback to the server, so protected mode treats it as a remote client.

Prints one JSON object (what each step observed) as its last line of
standard output, and exits 0; exits 1 with a traceback if a step could not
run at all, 3 if it is not in a private namespace. The server is stopped by
its PID before exit, and gets SIGTERM if this script dies first.
"""

from __future__ import annotations

import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: TEST-NET-1 (RFC 5737): routed nowhere, and here on this namespace's ``lo`` only.
ADDRESS = "192.0.2.10"
#: The shipped config's port: free, since the namespace is new and private.
PORT = 6379
#: Seconds any one step may take (start, a reply, a healthcheck, the stop).
WAIT = 20.0
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


def enter_private_namespace(outer_netns_inode: int) -> None:
    """Refuse to go on in the caller's namespace; else put ADDRESS on ``lo``."""
    here = os.stat("/proc/self/ns/net").st_ino
    if here == outer_netns_inode:
        print("netns_docker: not in a private network namespace (run it under "
              "`unshare -n`); refusing to listen on or connect to " + ADDRESS, file=sys.stderr)
        raise SystemExit(3)
    ip = shutil.which("ip") or "ip"
    subprocess.run([ip, "link", "set", "lo", "up"], check=True, timeout=WAIT)
    subprocess.run([ip, "addr", "add", f"{ADDRESS}/32", "dev", "lo"], check=True, timeout=WAIT)


def _die_with_parent() -> None:
    # Runs in the child before exec: SIGTERM it if this script dies, so a
    # killed driver never leaves a server behind.
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Entrypoint:
    """docker/entrypoint.sh with docker/kvserver.conf, listening on ADDRESS only
    (not every interface), on the config's own port, data in ``workdir``."""

    def __init__(self, workdir: Path, env: dict):
        self.log: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            ["sh", str(ROOT / "docker" / "entrypoint.sh"), str(ROOT / "docker" / "kvserver.conf"),
             "--bind", ADDRESS, "--dir", str(workdir / "data")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=_die_with_parent)
        # A thread drains the log to the end, so the server never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()
        while True:
            try:
                line = self._lines.get(timeout=WAIT)
            except queue.Empty:
                raise RuntimeError("entrypoint not ready in time:\n" + "".join(self.log)) from None
            if line is None:
                raise RuntimeError("entrypoint exited before it was ready:\n" + "".join(self.log))
            if "ready to accept connections" in line:
                return

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def stop(self) -> int | None:
        """SIGTERM by PID; the exit code, or None if it had to be killed."""
        self.proc.terminate()
        try:
            return self.proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(WAIT)
            return None


def _command(*args: str) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _reply(reader) -> str | None:
    """One reply: a status/error/integer line as it came, or a bulk string's
    data; None if the server closed the connection first."""
    line = reader.readline(65536)
    if not line:
        return None
    if line.startswith(b"$") and line[1:].strip().lstrip(b"-").isdigit():
        length = int(line[1:])
        return "" if length < 0 else reader.read(length + 2)[:-2].decode(errors="replace")
    return line.decode(errors="replace")


def session(*commands: tuple[str, ...]) -> dict:
    """Connect from ADDRESS to ADDRESS:PORT and send ``commands`` one at a time,
    reading each reply; ``error`` says why it stopped early (a server that
    answers -DENIED closes the connection)."""
    observed: dict = {"source": None, "replies": [], "error": None}
    try:
        with socket.create_connection((ADDRESS, PORT), timeout=WAIT,
                                      source_address=(ADDRESS, 0)) as s:
            observed["source"] = s.getsockname()[0]
            reader = s.makefile("rb")
            for command in commands:
                s.sendall(_command(*command))
                reply = _reply(reader)
                if reply is None:
                    observed["error"] = "connection closed by the server"
                    break
                observed["replies"].append(reply)
    except OSError as exc:
        observed["error"] = repr(exc)
    return observed


def healthcheck(env: dict, **extra: str) -> dict:
    done = subprocess.run(["sh", str(ROOT / "docker" / "healthcheck.sh")],
                          env=dict(env, **extra), timeout=WAIT, capture_output=True, text=True)
    return {"rc": done.returncode, "output": done.stdout + done.stderr}


def scenario(workdir: Path) -> dict:
    """Everything a test asserts on; KVSERVER_PASSWORD comes from our environment."""
    env = dict(os.environ)
    password = env.get("KVSERVER_PASSWORD")
    # `hostname -i` as a container answers it: its own network address (the
    # healthcheck's default host), after an IPv6 one it must skip.
    fake = workdir / "bin"
    fake.mkdir()
    (fake / "hostname").write_text(f"#!/bin/sh\necho 'fe80::1 {ADDRESS}'\n")
    (fake / "hostname").chmod(0o755)
    observed: dict = {}
    server = Entrypoint(workdir, env)
    try:
        observed["anonymous"] = session(("PING",), ("CLIENT", "INFO"))
        if password is not None:
            observed["authenticated"] = session(("AUTH", password), ("PING",),
                                                ("CLIENT", "INFO"))
        # The password went in on standard input, not on the command line.
        with open(f"/proc/{server.proc.pid}/cmdline", "rb") as f:
            cmdline = f.read()
        observed["password_in_cmdline"] = (password is not None
                                           and password.encode() in cmdline)
        observed["healthcheck_on_address"] = healthcheck(env, KVSERVER_HOST=ADDRESS)
        observed["healthcheck_default_host"] = healthcheck(
            dict(env, PATH=f"{fake}:{env['PATH']}"))
        observed["healthcheck_on_loopback"] = healthcheck(env, KVSERVER_HOST="127.0.0.1")
        without = {k: v for k, v in env.items() if k != "KVSERVER_PASSWORD"}
        observed["healthcheck_without_password"] = healthcheck(without, KVSERVER_HOST=ADDRESS)
    finally:
        observed["exit_code"] = server.stop()
        observed["log"] = "".join(server.log)
    return observed


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    enter_private_namespace(int(argv[0]))
    print(json.dumps(scenario(Path(argv[1]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
