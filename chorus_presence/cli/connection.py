"""How the command line reaches the admin commands.

While the server runs, its admin socket answers and every command goes through it, so
changes are live and nothing races the server's own writes. While it is stopped, the commands
that need only the database run in-process, through the same functions on a server started
without listeners; the others fail with "The server is not running".
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from chorus_presence.cli.common import CliError
from chorus_presence.config import Config


class Admin(Protocol):
    def call(self, command: str, **args: Any) -> Any:
        """The command's result; raises Refused when the request is refused, CliError when
        the command cannot be run at all."""
        ...


@contextmanager
def connect(config: Config) -> Iterator[Admin]:
    """The running server's admin channel, else the database in-process."""
    try:
        live = LiveAdmin.open(config)
    except ServerNotRunning:
        offline = OfflineAdmin(config)
        try:
            yield offline
        finally:
            offline.close()
        return
    try:
        yield live
    finally:
        live.close()


def call(config: Config, command: str, **args: Any) -> Any:
    """One command, on a connection opened and closed around it."""
    with connect(config) as admin:
        return admin.call(command, **args)


class ServerNotRunning(Exception):
    """Nothing answers on the admin socket."""


class Refused(CliError):
    """The command ran and refused the request (no such user, bad password...); the
    connection is fine for the next one."""


class LiveAdmin:
    """Requests over the running server's admin socket, one at a time, answered in order."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._responses = sock.makefile("rb")

    @classmethod
    def open(cls, config: Config) -> LiveAdmin:
        path = config.admin.socket
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            raise ServerNotRunning from None
        except PermissionError:
            sock.close()
            raise CliError(
                f"Permission denied on the admin socket {path}: run this as the server's user"
            ) from None
        except OSError as error:
            sock.close()
            raise CliError(
                f"Cannot connect to the admin socket {path}: {error.strerror or error}"
            ) from None
        return cls(sock)

    def call(self, command: str, **args: Any) -> Any:
        request = json.dumps({"command": command, "args": args}).encode() + b"\n"
        try:
            self._sock.sendall(request)
            line = self._responses.readline()
        except OSError as error:
            raise CliError(f"The admin connection failed: {error.strerror or error}") from None
        if not line:
            raise CliError("The server closed the admin connection")
        try:
            response = json.loads(line)
        except ValueError:
            raise CliError("The admin socket answered with something that is not JSON") from None
        if not response.get("ok"):
            raise Refused(response.get("error") or "The server refused the request")
        return response.get("result")

    def close(self) -> None:
        self._responses.close()
        self._sock.close()


class OfflineAdmin:
    """The admin commands run in this process on the database of a stopped server.

    The server context is started at the first command and kept for the next ones (an import
    runs one per row). The event loop runs only during a command, so a password prompt between
    two commands gets Ctrl-C as usual.
    """

    def __init__(self, config: Config) -> None:
        # The server's code is imported only here and in call(): commands sent to a running
        # server do not need it, and it takes a while to load.
        from chorus_presence.composition import Server

        self._server = Server(config)
        self._runner: asyncio.Runner | None = None

    def call(self, command: str, **args: Any) -> Any:
        from chorus_presence.admin.commands import execute, lookup
        from chorus_presence.admin.common import AdminError, error_message
        from chorus_presence.xmpp.errors import StanzaError

        try:
            if not lookup(command).offline_safe:
                name = command.replace(".", " ")
                raise CliError(f"The server is not running, and {name} needs it")
            if self._runner is None:
                self._runner = self._start()
            assert self._server.ctx is not None
            return self._runner.run(execute(self._server.ctx, command, args))
        except (AdminError, StanzaError) as error:
            raise Refused(error_message(error)) from None

    def _start(self) -> asyncio.Runner:
        runner = asyncio.Runner()
        try:
            runner.run(self._server.start(listen=False))
        except BaseException:
            runner.close()
            raise
        return runner

    def close(self) -> None:
        if self._runner is None:
            return
        try:
            self._runner.run(self._server.stop())
        finally:
            self._runner.close()
            self._runner = None
