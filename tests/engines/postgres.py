"""A private PostgreSQL server for the tests.

`PostgresServer.start()` runs `initdb` into a new temporary directory and starts the server
with `pg_ctl` on a free port, listening on 127.0.0.1 and on a unix socket in that directory,
with trust authentication for its one superuser, `chorus`. PostgreSQL refuses to run as root:
under root the directory is handed to the `postgres` system user that Debian's package creates
and every command runs as that user (runuser). `stop()` stops it (`pg_ctl stop -m fast`) and
removes the directory; `halt()` and `resume()` stop and start it in between, for the tests of
a database going away. Only the binaries under /usr/lib/postgresql/*/bin are used; a
system-wide PostgreSQL service, running or not, plays no part.

Databases: `create_database` makes one from a template (`CREATE DATABASE ... TEMPLATE`, a file
copy, fast), `drop_database` drops it even while connections remain.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

SUPERUSER = "chorus"
# Debian's package creates this system user; the server runs as it when the tests run as root.
SYSTEM_USER = "postgres"
_START_ATTEMPTS = 3
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
# Tests never need durability across a crash of the test machine; these make commits cheap.
_TEST_SETTINGS = (
    "fsync=off",
    "synchronous_commit=off",
    "full_page_writes=off",
    "max_connections=200",
)


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be run here; the message says what is missing."""


def binaries() -> Path:
    """The directory holding initdb, pg_ctl and psql: the newest /usr/lib/postgresql/N/bin."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda path: int(path.parent.parent.name) if path.parent.parent.name.isdigit() else 0,
    )
    if not found:
        raise PostgresUnavailable(
            "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb):"
            " run ./scripts/test as root to install it, or apt-get install postgresql"
        )
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresServer:
    """One private PostgreSQL server, from `start()` to `stop()`."""

    def __init__(self, directory: Path, port: int, bindir: Path, run_as: str | None) -> None:
        self.directory = directory
        self.port = port
        self._bindir = bindir
        self._run_as = run_as

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @classmethod
    def start(cls) -> PostgresServer:
        bindir = binaries()
        run_as = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise PostgresUnavailable(
                    f"PostgreSQL refuses to run as root and there is no {SYSTEM_USER!r} user"
                ) from None
            run_as = SYSTEM_USER
        # Directly under /tmp, whatever TMPDIR says: the server's user must reach it, and a
        # unix socket's path may not be longer than 107 bytes.
        directory = Path(tempfile.mkdtemp(prefix="chorus-pg-", dir="/tmp"))
        if run_as is not None:
            os.chown(directory, account.pw_uid, account.pw_gid)
        server = cls(directory, free_port(), bindir, run_as)
        try:
            server._run(
                "initdb",
                "--pgdata",
                str(server.data),
                "--username",
                SUPERUSER,
                "--auth",
                "trust",
                "--encoding",
                "UTF8",
                "--no-sync",
            )
            for attempt in range(_START_ATTEMPTS):
                try:
                    server._start()
                    break
                except PostgresUnavailable:
                    # Another process may have taken the free port since it was picked.
                    if attempt == _START_ATTEMPTS - 1:
                        raise
                    server.port = free_port()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return server

    def _start(self) -> None:
        options = " ".join(
            [
                f"-p {self.port}",
                "-c listen_addresses=127.0.0.1",
                f"-c unix_socket_directories={self.directory}",
                *(f"-c {setting}" for setting in _TEST_SETTINGS),
            ]
        )
        log = self.directory / "server.log"
        self._run("pg_ctl", "start", "--wait", "-D", str(self.data), "-l", str(log), "-o", options)

    def halt(self) -> None:
        """Stop the server as an operator would (`-m fast`: open connections are cut), keeping
        its data for `resume`."""
        self._run("pg_ctl", "stop", "--wait", "-D", str(self.data), "-m", "fast")

    def resume(self) -> None:
        """Start a halted server again, on the same port."""
        self._start()

    def stop(self) -> None:
        """Stop the server, then remove its directory."""
        try:
            if (self.data / "postmaster.pid").exists():
                self.halt()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, template: str = "template0") -> str:
        """A new database from `template`; its URL."""
        self.sql(f"CREATE DATABASE {_identifier(name)} TEMPLATE {_identifier(template)}")
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.sql(f"DROP DATABASE IF EXISTS {_identifier(name)} WITH (FORCE)")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement with psql over the unix socket; what it printed."""
        return self._run(
            "psql",
            "--no-psqlrc",
            "--quiet",
            "--tuples-only",
            "--no-align",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            str(self.directory),
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            database,
            "-c",
            statement,
        )

    def _run(self, program: str, *args: str) -> str:
        command: Sequence[str] = [str(self._bindir / program), *args]
        if self._run_as is not None:
            command = ["runuser", "-u", self._run_as, "--", *command]
        done = subprocess.run(
            command, cwd=self.directory, capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            log = self.directory / "server.log"
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise PostgresUnavailable(
                f"{program} {' '.join(args)} failed ({done.returncode}):"
                f" {done.stderr.strip()} {tail}"
            )
        return done.stdout


def _identifier(name: str) -> str:
    if not _IDENTIFIER.fullmatch(name):
        raise ValueError(f"{name!r} is not a plain SQL identifier")
    return name
