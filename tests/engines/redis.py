"""A private Redis server for the tests.

`RedisServer.start()` runs Debian's `redis-server` in a new temporary directory on a free port
of 127.0.0.1, with nothing kept on disk (`save ""`, `appendonly no`), and returns once the
server says it accepts connections. `halt()` stops it (SIGTERM, awaited) and `resume()` starts
it again on the same port with an empty data set, for the tests of Redis going away while the
servers run; `kill()` is the same stop without a clean shutdown. `stop()` ends it for good and
removes the directory. A system-wide Redis service, running or not, plays no part.

Redis has 16 numbered databases (0-15); `url(n)` names one, and `flush()` empties them all.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import IO

import redis

from tests.engines.postgres import free_port

BINARY = Path("/usr/bin/redis-server")
DATABASES = 16
# What redis-server prints once it listens; until then nothing may connect.
_READY = "Ready to accept connections"
_START_ATTEMPTS = 3
_STOP_TIMEOUT = 30.0


class RedisUnavailable(RuntimeError):
    """Redis cannot be run here; the message says what is missing or what went wrong."""


class RedisServer:
    """One private redis-server process, from `start()` to `stop()`."""

    def __init__(self, directory: Path, port: int) -> None:
        self.directory = directory
        self.port = port
        self._process: subprocess.Popen[str] | None = None
        self._log_thread: threading.Thread | None = None

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    @property
    def pid(self) -> int:
        assert self._process is not None, "Redis is not running"
        return self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @classmethod
    def start(cls) -> RedisServer:
        if not BINARY.is_file():
            raise RedisUnavailable(
                f"Redis is not installed (no {BINARY}): run ./scripts/test as root to install"
                " it, or apt-get install redis-server"
            )
        directory = Path(tempfile.mkdtemp(prefix="chorus-redis-", dir="/tmp"))
        server = cls(directory, free_port())
        try:
            for attempt in range(_START_ATTEMPTS):
                try:
                    server._launch()
                    break
                except RedisUnavailable:
                    # Another process may have taken the free port since it was picked.
                    if attempt == _START_ATTEMPTS - 1:
                        raise
                    server.port = free_port()
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        return server

    def url(self, database: int = 0) -> str:
        if not 0 <= database < DATABASES:
            raise ValueError(f"Redis database {database} is not between 0 and {DATABASES - 1}")
        return f"redis://127.0.0.1:{self.port}/{database}"

    def flush(self) -> None:
        """Empty every database."""
        with redis.Redis(host="127.0.0.1", port=self.port) as client:
            client.flushall()

    def halt(self) -> None:
        """Stop the server as an operator would: open connections are closed."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Stop the server at once (SIGKILL), as a crash would."""
        self._end(signal.SIGKILL)

    def resume(self) -> None:
        """Start a halted server again on the same port; it comes back empty."""
        if self.running:
            raise RedisUnavailable(f"Redis on port {self.port} is already running")
        self._launch()

    def stop(self) -> None:
        """Stop the server, then remove its directory."""
        try:
            self.halt()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)

    def _launch(self) -> None:
        process = subprocess.Popen(
            [
                str(BINARY),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                # Logs on stdout, read below: the ready line is the signal to go on.
                "--logfile",
                "",
            ],
            cwd=self.directory,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert process.stdout is not None
        log = self.log.open("a", encoding="utf-8")
        try:
            # Ends at the ready line, or at end of output when the server gave up (port taken).
            for line in process.stdout:
                log.write(line)
                if _READY in line:
                    break
            else:
                process.wait(_STOP_TIMEOUT)
                log.close()
                tail = self.log.read_text(errors="replace")[-2000:]
                raise RedisUnavailable(
                    f"redis-server on port {self.port} exited ({process.returncode}): {tail}"
                )
        except BaseException:
            if process.poll() is None:
                process.kill()
                process.wait(_STOP_TIMEOUT)
            log.close()
            raise
        self._process = process
        # The rest of its output, until it exits, goes to the log so that the pipe never fills.
        self._log_thread = threading.Thread(
            target=_copy, args=(process.stdout, log), name=f"redis-{self.port}-log", daemon=True
        )
        self._log_thread.start()

    def _end(self, signum: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signum)
        try:
            process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT)
        if self._log_thread is not None:
            self._log_thread.join(_STOP_TIMEOUT)
            self._log_thread = None


def _copy(source: IO[str], log: IO[str]) -> None:
    with log:
        for line in source:
            log.write(line)
            log.flush()
