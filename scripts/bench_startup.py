#!/usr/bin/env python3
"""Start-up time and idle memory of chorus-presence with many accounts.

Creates a fresh data directory (`chorus-presence init`), fills its SQLite database in one
transaction with N accounts, each with SCRAM-SHA-1 and SCRAM-SHA-256 credentials for one
password, and among them users with a roster (a ring of mutual subscriptions), with an XEP-0191
block list, with presence settings and with a presence blocked list, so that whatever a start
loads has rows to load. Then it starts `chorus-presence serve` and measures, from the exec:

- `listening_s`: until the c2s port accepts a connection;
- `ready_s`: until one user has logged in (PLAIN), bound a resource and had its roster back;
- `rss_kib`: the server's resident memory (VmRSS, /proc) once idle again after that login.

Each repetition starts the server again on the same data; one JSON line on stdout with the
median and every figure, progress on stderr.

    scripts/bench_startup.py                          # 100,000 accounts, 3 starts
    scripts/bench_startup.py --accounts 1000 --reps 1
    scripts/bench_startup.py --keep /tmp/startup-data  # the data directory stays for reuse
    scripts/bench_startup.py --data /tmp/startup-data  # reuse it, no filling
    scripts/bench_startup.py --source /tmp/old          # git archive REV | tar -x -C /tmp/old
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = ROOT / ".venv" / "bin" / "python"
DOMAIN = "bench.local"
PASSWORD = "bench-secret-1"
# The server's default iteration count: a login costs what it costs in production.
ITERATIONS = 10000
CONFIG = """domain = "{domain}"

[c2s]
host = "127.0.0.1"
port = {port}

[storage]
database = "data/chorus.db"

[tls]
required = false
cert = "data/tls/cert.pem"
key = "data/tls/key.pem"

[admin]
socket = "data/admin.sock"

[logging]
level = "warning"
"""


def log(message: str) -> None:
    print(f"[bench_startup {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def credentials(mechanism: str, digest: str) -> tuple[str, bytes, int, bytes, bytes]:
    """RFC 5802 keys for PASSWORD: the same salt for everyone, derived once."""
    salt = hashlib.sha256(mechanism.encode()).digest()[:16]
    salted = hashlib.pbkdf2_hmac(digest, PASSWORD.encode(), salt, ITERATIONS)
    client_key = hmac.new(salted, b"Client Key", digest).digest()
    stored_key = hashlib.new(digest, client_key).digest()
    server_key = hmac.new(salted, b"Server Key", digest).digest()
    return mechanism, salt, ITERATIONS, stored_key, server_key


def spread(n: int, count: int, *, offset: int = 0) -> range:
    """`count` indices spread evenly over n accounts (none for 0)."""
    if count <= 0:
        return range(0)
    return range(offset % n, n, max(1, n // count))


def fill(database: Path, args: argparse.Namespace) -> None:
    """Every row in one transaction, straight into the tables the migrations made."""
    n = args.accounts
    names = [f"{args.prefix}{i}" for i in range(n)]
    creds = [credentials("SCRAM-SHA-1", "sha1"), credentials("SCRAM-SHA-256", "sha256")]
    half = args.contacts // 2
    rostered = set(spread(n, args.roster_users))
    roster_rows, version_rows = [], []
    for i in rostered:
        for step in range(1, half + 1):
            for j in ((i + step) % n, (i - step) % n):
                contact = f"{names[j]}@{DOMAIN}"
                subscription = "both" if j in rostered else "to"
                roster_rows.append((names[i], contact, subscription, "[]"))
        version_rows.append((names[i], 1))
    block_rows = [
        (names[i], f"{names[(i + 7 * k + 3) % n]}@{DOMAIN}")
        for i in spread(n, args.block_lists)
        for k in range(args.block_items)
    ]
    settings_rows = [
        (names[i], ("ask", "everyone", "nobody")[i % 3], i % 2)
        for i in spread(n, args.settings_users, offset=1)
    ]
    presence_block_rows = [
        (names[i], f"{names[(i + n // 2) % n]}@{DOMAIN}")
        for i in spread(n, args.block_lists, offset=2)
    ]
    conn = sqlite3.connect(database, isolation_level=None)
    try:
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO accounts (username) VALUES (?)", ((u,) for u in names))
        conn.executemany(
            "INSERT INTO scram_credentials"
            " (username, mechanism, salt, iterations, stored_key, server_key)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            ((u, *c) for u in names for c in creds),
        )
        conn.executemany(
            "INSERT INTO roster_items (owner, contact, subscription, groups) VALUES (?, ?, ?, ?)",
            roster_rows,
        )
        conn.executemany("INSERT INTO roster_versions (owner, version) VALUES (?, ?)", version_rows)
        conn.executemany("INSERT OR IGNORE INTO blocks (owner, jid) VALUES (?, ?)", block_rows)
        conn.executemany(
            "INSERT INTO user_settings (owner, visibility_policy, away_when_offline)"
            " VALUES (?, ?, ?)",
            settings_rows,
        )
        conn.executemany(
            "INSERT OR IGNORE INTO presence_blocks (owner, contact) VALUES (?, ?)",
            presence_block_rows,
        )
        conn.execute("COMMIT")
    finally:
        conn.close()
    log(
        f"filled: {n} accounts, {len(rostered)} rosters ({len(roster_rows)} items),"
        f" {len(block_rows)} block items, {len(settings_rows)} settings rows,"
        f" {len(presence_block_rows)} presence blocks"
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def chorus(args: argparse.Namespace, config: Path, command: str) -> list[str]:
    """The command line running `command` of the checkout under test; run it in the data's
    directory, so that `python -m` finds no package in the current one."""
    return [str(PYTHON), "-m", "chorus_presence", "--config", str(config), command]


def environment(args: argparse.Namespace) -> dict[str, str]:
    env = dict(os.environ)
    if args.source is not None:
        env["PYTHONPATH"] = str(args.source.resolve())
    return env


def prepare(workdir: Path, args: argparse.Namespace) -> Path:
    config = workdir / "chorus.toml"
    config.write_text(CONFIG.format(domain=DOMAIN, port=free_port()))
    subprocess.run(
        chorus(args, config, "init"),
        check=True,
        capture_output=True,
        env=environment(args),
        cwd=workdir,
    )
    started = time.monotonic()
    fill(workdir / "data" / "chorus.db", args)
    log(f"filling took {time.monotonic() - started:.1f} s")
    return config


def port_of(config: Path) -> int:
    match = re.search(r"^port = (\d+)$", config.read_text(), re.MULTILINE)
    assert match is not None
    return int(match.group(1))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def read_until(sock: socket.socket, deadline: float, *patterns: bytes) -> bytes:
    """What the server sends until one of `patterns` has arrived."""
    data = b""
    while not any(pattern in data for pattern in patterns):
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError(f"the server closed the stream; waiting for {patterns}: {data!r}")
        data += chunk
    return data


def login_and_roster(port: int, username: str, deadline: float) -> int:
    """One full login: PLAIN, bind, roster get; the number of roster items returned."""
    header = (
        f"<?xml version='1.0'?><stream:stream xmlns='jabber:client'"
        f" xmlns:stream='http://etherx.jabber.org/streams' to='{DOMAIN}' version='1.0'>"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(header)
        read_until(sock, deadline, b"</stream:features>")
        token = base64.b64encode(f"\0{username}\0{PASSWORD}".encode()).decode()
        auth = f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>"
        sock.sendall(auth.encode())
        reply = read_until(sock, deadline, b"</success>", b"</failure>")
        if b"</success>" not in reply:
            raise RuntimeError(f"login refused: {reply!r}")
        sock.sendall(header)
        read_until(sock, deadline, b"</stream:features>")
        sock.sendall(
            b"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
            b"<resource>r</resource></bind></iq>"
        )
        read_until(sock, deadline, b"</iq>")
        sock.sendall(b"<iq type='get' id='r'><query xmlns='jabber:iq:roster'/></iq>")
        roster = read_until(sock, deadline, b"</iq>")
        sock.sendall(b"</stream:stream>")
        return roster.count(b"<item ")


def wait_listening(port: int, server: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not listen in time") from None
            time.sleep(0.005)


def one_start(config: Path, args: argparse.Namespace) -> dict[str, float | int]:
    port = port_of(config)
    command = chorus(args, config, "serve")
    if args.core is not None:
        command = ["taskset", "-c", args.core, *command]
    started = time.monotonic()
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, env=environment(args), cwd=config.parent
    )
    try:
        deadline = started + args.timeout
        wait_listening(port, server, deadline)
        listening = time.monotonic() - started
        items = login_and_roster(port, f"{args.prefix}0", deadline)
        ready = time.monotonic() - started
        time.sleep(args.settle)
        rss = rss_kib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {
        "listening_s": round(listening, 3),
        "ready_s": round(ready, 3),
        "rss_kib": rss,
        "roster_items": items,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Start-up time and idle memory of chorus-presence with many accounts.",
        epilog="Prints one JSON line: the medians and every start's figures.",
    )
    parser.add_argument("--accounts", type=int, default=100_000, help="accounts to create")
    parser.add_argument("--roster-users", type=int, default=2000, help="users with a roster")
    parser.add_argument("--contacts", type=int, default=20, help="items in each such roster")
    parser.add_argument("--block-lists", type=int, default=1000, help="users with a block list")
    parser.add_argument("--block-items", type=int, default=5, help="items in each block list")
    parser.add_argument(
        "--settings-users", type=int, default=5000, help="users with a settings row"
    )
    parser.add_argument(
        "--prefix",
        default="su",
        help="usernames are PREFIX0, PREFIX1 ...; with 'bi' the data serves bench.py idle",
    )
    parser.add_argument("--reps", type=int, default=3, help="starts to measure")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds idle before the RSS")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds a start may take")
    parser.add_argument("--core", help="pin the server to this CPU list (taskset -c)")
    parser.add_argument("--keep", type=Path, help="fill this directory and leave it there")
    parser.add_argument("--data", type=Path, help="a directory --keep filled: start on it")
    parser.add_argument(
        "--source",
        type=Path,
        help="run the chorus_presence package in this directory (an unpacked revision, to"
        " compare with) instead of the installed one",
    )
    args = parser.parse_args()
    if args.data is not None:
        workdir, temporary = args.data, False
        config = workdir / "chorus.toml"
    else:
        if args.keep is not None:
            args.keep.mkdir(parents=True, exist_ok=False)
            workdir, temporary = args.keep, False
        else:
            workdir, temporary = Path(tempfile.mkdtemp(prefix="chorus-startup-")), True
        config = prepare(workdir, args)
    try:
        runs = []
        for rep in range(args.reps):
            runs.append(one_start(config, args))
            log(f"start {rep + 1}: {runs[-1]}")
    finally:
        if temporary:
            shutil.rmtree(workdir, ignore_errors=True)
    result: dict[str, object] = {
        "accounts": args.accounts if args.data is None else None,
        "python": sys.version.split()[0],
    }
    for key in ("listening_s", "ready_s", "rss_kib"):
        result[key] = statistics.median(run[key] for run in runs)
    result["runs"] = runs
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
