"""Configuration: redis.conf files and flags, CONFIG SET + CONFIG REWRITE, exit codes.

Servers here are real processes on free loopback ports in temporary
directories, stopped by their PID; redis-server (when installed) is the
reference for the config file format, its error report and its rewrite quoting.
"""

from __future__ import annotations

import functools
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from clients import Client, ServerError
from conftest import ROOT, free_port, raw_exchange, spawn_kvserver, start_threaded, wait_for
from kvserver.config import (Config, ConfigError, ConfigFileError, from_args,
                             parse_config_file, quote, rewrite)
from kvserver.exitcodes import EXIT_DATA, EXIT_FAILURE, EXIT_USAGE
from kvserver.redis_directives import REDIS_DIRECTIVES
from netns_docker import ADDRESS as NETNS_ADDRESS

REDIS_SERVER = shutil.which("redis-server")
STOCK_REDIS_CONF = Path("/etc/redis/redis.conf")
WAIT = 20.0

#: Values an attacker with CONFIG SET (or a careless operator) could store:
#: each tries to end its line and start a directive of its own.
HOSTILE = [
    'pw"\ndir /srv/evil\n#"',                 # the report in issue 11
    "x\nbind 0.0.0.0",
    'pw\nrename-command CONFIG ""',
    "\n",                                      # a bare newline
    "\r\n",
    "a b 'c' \"d\" \\ \t e",                   # masterauth-like: quotes, spaces, backslash
    "ends with a backslash\\",
    "\\x41 is not A",
    '"',
    "#not a comment",
    "p\u00e4ssw\u00f6rt \u2603",
    "\x00\x01\x07\x08\x7f",
]


def run_kvserver(*args: str, cwd: Path = ROOT, stdin: str | None = None,
                 env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kvserver", *args], cwd=str(cwd),
                          capture_output=True, text=True, timeout=WAIT, input=stdin, env=env)


# --- quoting: what CONFIG REWRITE writes reads back as itself ------------------------


@pytest.mark.parametrize("value", HOSTILE)
def test_quote_round_trips_through_the_config_parser(value):
    config = parse_config_file(f"requirepass {quote(value)}\n", Config())
    assert config.requirepass == value
    assert config.dir == Config().dir                   # nothing else changed
    assert config.bind == Config().bind and config.rename_commands == ()


def test_quote_matches_redis_sdscatrepr():
    # Redis 7.0.15 wrote exactly this line for the value of issue 11.
    assert quote('pw"\ndir /srv/evil\n#"') == r'"pw\"\ndir /srv/evil\n#\""'
    assert quote("\u00e9\x01") == r'"\xc3\xa9\x01"'


@pytest.mark.parametrize("value", HOSTILE)
def test_rewrite_then_read_gives_the_same_config(value):
    old = "# my settings\nport 7000\nrequirepass old\nalways-show-logo no\n"
    config = parse_config_file(old, Config())
    config = config.with_option("requirepass", value)
    text = rewrite(config, old)
    again = parse_config_file(text, Config())
    assert again.requirepass == value
    assert again.dir == os.path.abspath(Config().dir)
    assert again.bind == config.bind and again.rename_commands == ()
    assert again.port == 7000
    assert "# my settings" in text and "always-show-logo no" in text


# --- CONFIG SET + CONFIG REWRITE + restart, with real processes ----------------------


def _auth_client(port: int, password: str | None) -> Client:
    return Client(port=port, timeout=5, password=password.encode() if password else None)


@pytest.mark.parametrize("value", [HOSTILE[0], "x\nbind 0.0.0.0",
                                   'pw\nrename-command CONFIG ""', "\n"])
def test_config_set_rewrite_restart_round_trip(tmp_path, value):
    conf = tmp_path / "kv.conf"
    conf.write_text("# hand written\nappendfsync always\n")
    data = str(tmp_path / "data")
    first = spawn_kvserver(data, str(conf))
    try:
        with _auth_client(first.port, None) as c:
            assert c.execute("CONFIG", "SET", "requirepass", value) == "OK"
        with _auth_client(first.port, value) as c:
            assert c.execute("CONFIG", "REWRITE") == "OK"
    finally:
        assert first.terminate() == 0
    text = conf.read_text()
    assert "# hand written" in text
    assert not re.search(r"^\s*(bind|rename-command)\b", text, re.M), text
    assert len([ln for ln in text.splitlines() if ln.startswith("dir ")]) == 1
    # Restart from the rewritten file alone: no --dir, --bind from the fixture
    # could hide an injected directive, so run it directly.
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "kvserver", str(conf), "--port", str(port)],
                            cwd=str(tmp_path), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        def up() -> bool:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    return True
            except OSError:
                return False
        wait_for(up, "the restarted server")
        with _auth_client(port, value) as c:
            wait_for(lambda: c.execute("PING") == "PONG", "loading to finish")
            assert c.execute("CONFIG", "GET", "requirepass") == [b"requirepass", value.encode()]
            assert c.execute("CONFIG", "GET", "dir") == [b"dir", os.path.abspath(data).encode()]
            assert c.execute("CONFIG", "GET", "bind") == [b"bind", b"127.0.0.1"]
            assert c.execute("CONFIG", "GET", "appendfsync")[1] == b"always"
            assert c.execute("DBSIZE") == 0
    finally:
        proc.terminate()
        proc.wait(WAIT)


def test_rewrite_keeps_comments_ignored_directives_and_blanks_duplicates(tmp_path):
    old = ("# top comment\nport 7000\nsave 900 1\nsave 300 10\nhz 10\nhz 20\n"
           "rename-command FLUSHALL \"\"\ntcp-backlog 128\nlazyfree-lazy-expire no\n")
    config = parse_config_file(old, Config())
    assert config.hz == 20 and config.save == ((900, 1), (300, 10))
    config = config.with_option("save", "60 5").with_option("requirepass", "pw")
    text = rewrite(config, old)
    # Options replace their first line in place; their extra lines become
    # blank; rename-command and ignored directives stay; new ones go last.
    assert text == ("# top comment\nport 7000\nsave 60 5\n\nhz 20\n\n"
                    "rename-command FLUSHALL \"\"\ntcp-backlog 128\nlazyfree-lazy-expire no\n"
                    f"# Generated by CONFIG REWRITE\ndir {quote(os.path.abspath('./data'))}\n"
                    'requirepass "pw"\n')
    assert parse_config_file(text, Config()).save == ((60, 5),)


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
def test_rewritten_requirepass_line_equals_redis_server(tmp_path):
    """Differential: the line Redis 7.0 writes for a hostile requirepass is ours."""
    value = 'pw"\ndir /srv/evil\n#\t\\'
    conf = tmp_path / "redis.conf"
    conf.write_text("save \"\"\nappendonly no\n")
    port = free_port()
    proc = subprocess.Popen([REDIS_SERVER, str(conf), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                return raw_exchange(port, b"PING\r\n", timeout=1) == b"+PONG\r\n"
            except OSError:
                return False
        wait_for(up, "redis-server")
        with Client(port=port, timeout=5) as c:
            c.execute("CONFIG", "SET", "requirepass", value)
        with _auth_client(port, value) as c:
            c.execute("CONFIG", "REWRITE")
    finally:
        proc.terminate()
        proc.wait(WAIT)
    redis_line = next(ln for ln in conf.read_text().splitlines() if ln.startswith("requirepass"))
    ours = rewrite(Config(requirepass=value), "")
    assert redis_line in ours.splitlines()


# --- reading redis.conf ---------------------------------------------------------------


@pytest.mark.skipif(not STOCK_REDIS_CONF.exists(), reason="no /etc/redis/redis.conf")
def test_stock_redis_conf_starts(tmp_path, kv_process):
    """The redis.conf of the installed redis-server package, as it is, with
    redis-server-style overrides for what would touch the system."""
    conf = tmp_path / "redis.conf"
    shutil.copyfile(STOCK_REDIS_CONF, conf)
    p = kv_process(str(conf), "--daemonize", "no", "--pidfile", str(tmp_path / "kv.pid"),
                   "--logfile", "", "--supervised", "no")
    assert raw_exchange(p.port, b"SET a 1\r\n") == b"+OK\r\n"
    assert raw_exchange(p.port, b"CONFIG GET tcp-backlog\r\n", expect=30) == \
        b"*2\r\n$11\r\ntcp-backlog\r\n$3\r\n511\r\n"
    ignored = [line.split("ignored: ", 1)[1] for line in p.log if "ignored: " in line]
    # One line per directive that means nothing here, each "(not applicable)".
    assert "always-show-logo (not applicable)" in ignored
    assert "repl-diskless-sync (not applicable)" in ignored
    assert len(ignored) == len(set(ignored))
    assert all(x.endswith(" (not applicable)") for x in ignored)
    assert not any(x.startswith(("tcp-backlog", "save", "dbfilename", "appendfsync"))
                   for x in ignored)
    # appendonly no in the stock file: said plainly, and the WAL stays on.
    assert any("appendonly no" in line and "has no effect" in line for line in p.log)
    assert raw_exchange(p.port, b"CONFIG GET appendonly\r\n", expect=26) == \
        b"*2\r\n$10\r\nappendonly\r\n$3\r\nyes\r\n"
    assert p.terminate() == 0


@pytest.mark.skipif(not STOCK_REDIS_CONF.exists(), reason="no /etc/redis/redis.conf")
def test_every_active_line_of_the_stock_redis_conf_is_a_known_directive():
    for line in STOCK_REDIS_CONF.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            assert line.split()[0].lower() in REDIS_DIRECTIVES, line
    config = from_args([str(STOCK_REDIS_CONF)])
    assert config.ignored  # the replication/encoding settings, one entry each
    assert len(config.ignored) == len(set(config.ignored))


def test_hand_written_redis_conf_with_save_lines(tmp_path, kv_process):
    conf = tmp_path / "redis.conf"
    conf.write_text("save 900 1\nsave 300 10\ndbfilename kv.rdb\nappendonly yes\n"
                    "tcp-backlog 128\nsupervised no\nnotify-keyspace-events Ex\n"
                    "hash-max-listpack-entries 512\n")
    p = kv_process(str(conf))
    with Client(port=p.port, timeout=5) as c:
        assert c.execute("CONFIG", "GET", "save") == [b"save", b"900 1 300 10"]
        assert c.execute("CONFIG", "GET", "dbfilename") == [b"dbfilename", b"kv.rdb"]
        assert c.execute("CONFIG", "GET", "notify-keyspace-events")[1] == b"xE"   # Redis shows its canonical spelling
    assert any("ignored: hash-max-listpack-entries (not applicable)" in x for x in p.log)
    assert p.terminate() == 0


def test_save_rule_triggers_a_checkpoint(kv_config):
    server = start_threaded(kv_config, save=((1, 2),))
    try:
        with Client(port=server.port, timeout=5) as c:
            c.execute("SET", "a", "1")
            c.execute("SET", "b", "2")
            wait_for(lambda: b"checkpoint_lsn:2" in c.execute("INFO", "persistence"),
                     "the save 1 2 checkpoint")
    finally:
        server.stop()


def test_save_lines_add_up_while_loading_and_config_set_replaces():
    config = from_args(["--save", "900", "1", "--save", "300 10"])
    assert config.save == ((900, 1), (300, 10))
    assert from_args(["--save", "900", "1", "--save", ""]).save == ()
    assert config.with_option("save", "60 1").save == ((60, 1),)
    with pytest.raises(ConfigError, match="Invalid save parameters"):
        from_args(["--save", "0", "1"])


@pytest.mark.parametrize("text, reason", [
    ("port 7000\nno-such-directive 1\n", "Bad directive or wrong number of arguments"),
    ("port 7000\nrequirepass a b\n", "wrong number of arguments"),
    ("port 7000\nrename-command GET\n", "Bad directive or wrong number of arguments"),
    ("port 7000\nappendfsync maybe\n",
     "argument(s) must be one of the following: everysec, always, no"),
    ('port 7000\nrequirepass "open\n', "Unbalanced quotes in configuration line"),
])
def test_bad_config_file_line_fails_as_redis_does(tmp_path, text, reason):
    conf = tmp_path / "bad.conf"
    conf.write_text(text)
    result = run_kvserver(str(conf))
    assert result.returncode == EXIT_USAGE
    line = text.splitlines()[1]
    assert "*** FATAL CONFIG FILE ERROR (kvserver " in result.stderr
    assert f"Reading the configuration file {conf}, at line 2" in result.stderr
    assert f">>> '{line}'" in result.stderr
    assert result.stderr.rstrip().endswith(reason)


@pytest.mark.skipif(REDIS_SERVER is None, reason="redis-server is not installed")
@pytest.mark.parametrize("line", ["no-such-directive 1", "requirepass a b", "appendfsync maybe",
                                  "rename-command GET", 'requirepass "open'])
def test_bad_config_line_reason_equals_redis_server(tmp_path, line):
    conf = tmp_path / "bad.conf"
    conf.write_text(f"port 0\n{line}\n")
    redis = subprocess.run([REDIS_SERVER, str(conf)], capture_output=True, text=True,
                           timeout=WAIT, cwd=str(tmp_path))
    ours = run_kvserver(str(conf))
    assert redis.returncode != 0 and ours.returncode == EXIT_USAGE
    assert redis.stderr.rstrip().splitlines()[-1] == ours.stderr.rstrip().splitlines()[-1]
    assert f">>> '{line}'" in redis.stderr and f">>> '{line}'" in ours.stderr


def test_include_follows_files_and_globs_and_refuses_a_loop(tmp_path):
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "a.conf").write_text("databases 4\n")
    (tmp_path / "conf.d" / "b.conf").write_text("databases 8\nhz 50\n")
    (tmp_path / "pw.conf").write_text('requirepass "s p"\n')
    main = tmp_path / "main.conf"
    main.write_text(f"include {tmp_path}/pw.conf\ninclude {tmp_path}/conf.d/*.conf\n"
                    f"include {tmp_path}/none.d/*.conf\nport 7001\n")
    config = from_args([str(main)])
    assert (config.requirepass, config.databases, config.hz, config.port) == ("s p", 8, 50, 7001)
    loop = tmp_path / "loop.conf"
    loop.write_text(f"include {loop}\n")
    with pytest.raises(ConfigFileError, match="include nested deeper"):
        from_args([str(loop)])


def test_acl_users_are_refused_not_ignored(tmp_path):
    with pytest.raises(ConfigError, match="ACL users are not supported"):
        parse_config_file("user default on >secret ~* +@all\n", Config())
    with pytest.raises(ConfigError, match="ACL files are not supported"):
        parse_config_file("aclfile /etc/redis/users.acl\n", Config())
    assert parse_config_file('aclfile ""\n', Config()).ignored == ("aclfile",)


def test_any_redis_directive_is_a_flag_and_unknown_ones_are_not():
    config = from_args(["--tcp-backlog", "128", "--always-show-logo", "yes",
                        "--requirepass", "a b", "--bind", "127.0.0.1", "-::1"])
    assert config.tcp_backlog == 128 and config.ignored == ("always-show-logo",)
    assert config.requirepass == "a b" and config.bind == "127.0.0.1 -::1"
    result = run_kvserver("--always-show-logo", "yes", "--no-such-directive", "1")
    assert result.returncode == EXIT_USAGE
    assert "unknown option '--no-such-directive'" in result.stderr


def test_config_lines_from_standard_input(tmp_path):
    conf = tmp_path / "kv.conf"
    conf.write_text("databases 4\n")
    config = from_args([str(conf), "-", "--hz", "30"],
                       stdin=io.StringIO('requirepass "from stdin"\nhz 20\n'))
    assert (config.databases, config.requirepass, config.hz) == (4, "from stdin", 30)


def test_optional_bind_address_that_is_unavailable_is_skipped(tmp_path):
    port = free_port()
    # 203.0.113.7 (TEST-NET-3) is on no interface here: EADDRNOTAVAIL, skipped.
    proc = subprocess.Popen([sys.executable, "-m", "kvserver", "--port", str(port),
                             "--dir", str(tmp_path / "data"), "--bind", "127.0.0.1",
                             "-203.0.113.7"], cwd=str(ROOT), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:  # ends at EOF if the process dies
            lines.append(line)
            if "ready to accept connections" in line:
                break
        assert any("optional address 203.0.113.7" in x for x in lines), lines
        assert raw_exchange(port, b"PING\r\n") == b"+PONG\r\n"
    finally:
        proc.terminate()
        proc.wait(WAIT)


def test_config_set_dbfilename_is_protected_and_appendonly_immutable(kv):
    with Client(port=kv.port, timeout=5) as c:
        with pytest.raises(ServerError, match="can't set protected config"):
            c.execute("CONFIG", "SET", "dbfilename", "x.rdb")
        with pytest.raises(ServerError, match="can't set immutable config"):
            c.execute("CONFIG", "SET", "appendonly", "no")


def test_help_lists_the_exit_codes():
    result = run_kvserver("--help")
    assert result.returncode == 0
    assert "2 bad flag or config, 65 damaged data directory" in result.stdout


# --- exit codes, with real processes ------------------------------------------------


def test_busy_port_exits_1_and_creates_nothing(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        data = tmp_path / "data"
        result = run_kvserver("--port", str(port), "--dir", str(data))
    assert result.returncode == EXIT_FAILURE
    assert "could not listen" in result.stdout
    assert not data.exists()  # neither the directory nor its LOCK


def test_bad_flag_exits_2(tmp_path):
    result = run_kvserver("--port", "99999", "--dir", str(tmp_path / "data"))
    assert result.returncode == EXIT_USAGE
    assert not (tmp_path / "data").exists()


def test_damaged_data_exits_65_and_leaves_no_new_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    segment = data / "wal-00000000000000000001.log"
    segment.write_bytes(b"\x00not a wal segment header" * 10)
    before = sorted(os.listdir(data))
    result = run_kvserver("--port", "0", "--dir", str(data))
    assert result.returncode == EXIT_DATA, result.stdout
    assert "kvserver check" in result.stdout
    assert sorted(os.listdir(data)) == before  # no LOCK left behind


def test_daemon_parent_exits_with_the_data_code(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "wal-00000000000000000001.log").write_bytes(b"garbage" * 20)
    result = run_kvserver("--daemonize", "yes", "--port", "0", "--dir", str(data),
                          "--logfile", str(tmp_path / "kv.log"))
    assert result.returncode == EXIT_DATA
    assert "bad segment header" in result.stderr


def test_systemd_unit_prevents_restarts_only_for_usage_and_data_codes():
    unit = (ROOT / "docs" / "kvserver.service").read_text()
    [line] = [x for x in unit.splitlines() if x.startswith("RestartPreventExitStatus=")]
    codes = set(line.split("=", 1)[1].split())
    assert codes == {str(EXIT_USAGE), str(EXIT_DATA)}
    assert str(EXIT_FAILURE) not in codes
    assert "Restart=on-failure" in unit


def test_supervised_systemd_notifies_ready_and_stopping(tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(WAIT)
        env = dict(os.environ, NOTIFY_SOCKET=path)
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "kvserver", "--supervised", "systemd",
                                 "--port", str(port), "--dir", str(tmp_path / "data")],
                                cwd=str(ROOT), env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            ready = sock.recv(4096)
            assert b"READY=1" in ready
            assert raw_exchange(port, b"PING\r\n") == b"+PONG\r\n"
        finally:
            proc.terminate()
        assert proc.wait(WAIT) == 0
        assert b"STOPPING=1" in sock.recv(4096)


def test_shutdown_log_line_says_what_happens(kv_process):
    p = kv_process("--checkpoint-on-shutdown", "no")
    assert p.terminate() == 0
    wait_for(lambda: any("ready to exit" in x for x in p.log), "the last log line")
    line = next(x for x in p.log if "shutting down" in x)
    assert "save=None" not in line
    assert line.endswith("shutting down: no final checkpoint (checkpoint-on-shutdown no)")


# --- the container entrypoint, with the shipped config and a non-loopback client ----
#
# A container's clients never come from its loopback. To be such a client
# without sending anything to this host's own interface address, the scenario
# runs in tests/netns_docker.py under `unshare -n`: a network namespace of its
# own, where NETNS_ADDRESS sits on `lo` and exists nowhere else.

NETNS_DRIVER = ROOT / "tests" / "netns_docker.py"


@functools.cache
def _netns_unavailable() -> str | None:
    """Why a private network namespace with NETNS_ADDRESS cannot be made here
    (tried once, the way the driver makes it), or None."""
    for tool, package in (("unshare", "util-linux"), ("ip", "iproute2")):
        if shutil.which(tool) is None:
            return f"`{tool}` ({package}) is not installed"
    script = f"ip link set lo up && ip addr add {NETNS_ADDRESS}/32 dev lo"
    try:
        done = subprocess.run(["unshare", "-n", "sh", "-c", script],
                              capture_output=True, text=True, timeout=WAIT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`unshare -n` failed: {exc}"
    if done.returncode != 0:
        return f"`unshare -n` + `ip` refused here: {done.stderr.strip()}"
    return None


def _entrypoint_in_netns(tmp_path: Path, password: str | None = None) -> dict:
    """Run tests/netns_docker.py in a new network namespace; what it observed."""
    bindir = Path(sys.executable).parent
    if not (bindir / "kvcli").exists() or not (bindir / "kvserver").exists():
        pytest.skip("kvserver/kvcli console scripts are not installed (make dev installs them)")
    reason = _netns_unavailable()
    if reason is not None:
        pytest.skip(reason)
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVSERVER_")}
    env["PATH"] = f"{bindir}:{os.environ['PATH']}"
    if password is not None:
        env["KVSERVER_PASSWORD"] = password  # in the environment, as `docker run -e` sets it
    # The driver refuses to run in this (the host's) namespace: it checks it is elsewhere.
    outer = os.stat("/proc/self/ns/net").st_ino
    done = subprocess.run(["unshare", "-n", sys.executable, str(NETNS_DRIVER), str(outer),
                           str(tmp_path)], env=env, capture_output=True, text=True,
                          timeout=12 * WAIT)
    assert done.returncode == 0, f"driver exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return json.loads(done.stdout.splitlines()[-1])


def test_docker_config_accepts_a_client_from_outside_the_container(tmp_path):
    seen = _entrypoint_in_netns(tmp_path)
    log = seen["log"]
    client = seen["anonymous"]
    # Not a loopback client, and the server sees it as one from NETNS_ADDRESS.
    assert client["source"] == NETNS_ADDRESS
    # Before: -DENIED (protected mode, no password) for every real client.
    assert client["replies"][:1] == ["+PONG\r\n"], (client, log)
    assert f" addr={NETNS_ADDRESS}:" in f" {client['replies'][1]}"
    assert seen["healthcheck_on_address"]["rc"] == 0, seen["healthcheck_on_address"]
    # By default the healthcheck asks on the container's address (what
    # `hostname -i` says there), not on loopback: the server listens on
    # NETNS_ADDRESS only, so asking 127.0.0.1 fails.
    assert seen["healthcheck_default_host"]["rc"] == 0, seen["healthcheck_default_host"]
    assert seen["healthcheck_on_loopback"]["rc"] != 0
    assert seen["exit_code"] == 0, log


@pytest.mark.parametrize("password", ["s3cret", 'with "quotes" and \\ and spaces'])
def test_docker_password_from_the_environment(tmp_path, password):
    seen = _entrypoint_in_netns(tmp_path, password)
    log = seen["log"]
    assert seen["anonymous"]["source"] == NETNS_ADDRESS
    assert seen["anonymous"]["replies"][0].startswith("-NOAUTH"), (seen["anonymous"], log)
    client = seen["authenticated"]
    assert client["replies"][:2] == ["+OK\r\n", "+PONG\r\n"], (client, log)
    assert f" addr={NETNS_ADDRESS}:" in f" {client['replies'][2]}"
    # Not on the process list: the password went in on standard input.
    assert seen["password_in_cmdline"] is False
    # The healthcheck asks the way a client does, with the same password.
    assert seen["healthcheck_on_address"]["rc"] == 0, seen["healthcheck_on_address"]
    assert seen["healthcheck_default_host"]["rc"] == 0, seen["healthcheck_default_host"]
    assert seen["healthcheck_without_password"]["rc"] != 0
    assert seen["exit_code"] == 0, log


def test_values_that_are_not_utf8_are_refused_not_mangled(kv, tmp_path):
    with pytest.raises(ConfigError, match="valid UTF-8"):
        from_args(["-"], stdin=io.StringIO('requirepass "\\xff\\xfe"\n'))
    conf = tmp_path / "latin1.conf"
    conf.write_bytes(b"requirepass caf\xe9\n")
    result = run_kvserver(str(conf))
    assert result.returncode == EXIT_USAGE and "valid UTF-8" in result.stderr
    with Client(port=kv.port, timeout=5) as c:
        with pytest.raises(ServerError, match="valid UTF-8"):
            c.execute("CONFIG", "SET", "requirepass", b"caf\xe9")
        assert c.execute("CONFIG", "GET", "requirepass") == [b"requirepass", b""]


def test_redis_hardening_and_cache_lines_start(tmp_path, kv_process):
    """Common redis.conf lines naming Redis features kvserver lacks still start."""
    conf = tmp_path / "redis.conf"
    conf.write_text('rename-command DEBUG ""\nrename-command FLUSHALL ""\n'
                    "rename-command CONFIG cfg-x\nmaxmemory-policy allkeys-lru\n")
    p = kv_process(str(conf))
    assert any("ignored: rename-command debug (kvserver has no DEBUG command)" in x
               for x in p.log)
    assert any("maxmemory-policy allkeys-lru: kvserver never evicts" in x for x in p.log)
    assert raw_exchange(p.port, b"FLUSHALL\r\n").startswith(b"-ERR unknown command")
    assert raw_exchange(p.port, b"cfg-x GET maxmemory-policy\r\n", expect=40) == \
        b"*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n"
    assert p.terminate() == 0
    (tmp_path / "typo.conf").write_text('rename-command FLUSHAL ""\n')
    result = run_kvserver(str(tmp_path / "typo.conf"), "--port", "0",
                          "--dir", str(tmp_path / "d2"))
    assert result.returncode == EXIT_USAGE and "No such command" in result.stdout


def test_bind_forms_of_redis_7():
    from kvserver.server import listen_addresses
    assert listen_addresses("127.0.0.1 -::1") == (["127.0.0.1"], ["::1"])
    assert listen_addresses("* -::*") == (["0.0.0.0"], ["::"])
    assert listen_addresses("") == (["0.0.0.0"], ["::"])
    assert listen_addresses("-10.0.0.1") == ([], ["10.0.0.1"])
