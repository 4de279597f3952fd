"""The admin channel: the running server's Unix socket for the admin command line.

The socket file is created with mode 0600, so only the server's own user (and root) can
connect; whoever can connect is an administrator. The protocol is newline-delimited JSON,
any number of requests per connection, answered in order:

    {"command": "user.add", "args": {"user": "alice", "password": "..."}}
    {"ok": true, "result": {...}}      or      {"ok": false, "error": "one line"}
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from pathlib import Path
from typing import Any

from chorus_presence.admin.commands import execute
from chorus_presence.admin.common import AdminError, error_message
from chorus_presence.server.components import Components
from chorus_presence.xmpp.errors import StanzaError

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1 << 20
# How long in-flight admin commands may take to finish when the server stops.
STOP_TIMEOUT = 5.0


class AdminChannelInUse(OSError):
    """Another running server answers on the configured admin socket."""


class AdminChannel:
    def __init__(self, ctx: Components, path: Path) -> None:
        self.ctx = ctx
        self.path = path
        self._server: asyncio.Server | None = None
        # Each open connection's task and writer; `_busy` holds those running a command.
        self._connections: dict[asyncio.Task[None], asyncio.StreamWriter] = {}
        self._busy: set[asyncio.Task[None]] = set()
        # The socket file this channel created, so stop() never removes a successor's.
        self._inode: tuple[int, int] | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        await self._remove_stale_socket()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            # The umask makes the file 0600 from its creation: a chmod after bind would leave a
            # moment in which anyone could connect.
            previous = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            except OSError as error:
                raise OSError(
                    f"Cannot create the admin socket {self.path}: {error.strerror or error}"
                ) from None
            finally:
                os.umask(previous)
            created = self.path.stat()
            self._inode = (created.st_dev, created.st_ino)
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=MAX_REQUEST_BYTES
            )
        except BaseException:
            sock.close()
            self._remove_socket_file()
            raise
        log.info("admin channel on %s", self.path)

    async def stop(self) -> None:
        """Stop accepting, let commands in progress finish, and remove the socket file."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for task, writer in self._connections.items():
            if task not in self._busy:
                writer.close()
        if self._connections:
            _, late = await asyncio.wait(list(self._connections), timeout=STOP_TIMEOUT)
            for task in late:
                task.cancel()
        self._remove_socket_file()

    async def _remove_stale_socket(self) -> None:
        """A socket file nobody answers on is left by a server that died; one somebody
        answers on belongs to a running server, which this one must not cut off."""
        try:
            mode = self.path.lstat().st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"The admin socket {self.path} exists and is not a socket")
        try:
            _, writer = await asyncio.open_unix_connection(str(self.path))
        except (FileNotFoundError, ConnectionRefusedError):
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
            return
        writer.close()
        raise AdminChannelInUse(f"The admin socket {self.path} is in use by another running server")

    def _remove_socket_file(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            current = self.path.stat()
            if (current.st_dev, current.st_ino) == self._inode:
                self.path.unlink()
        self._inode = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections[task] = writer
        try:
            while self._server is not None:
                try:
                    line = await reader.readline()
                except ValueError:
                    error = f"The request is longer than {MAX_REQUEST_BYTES} bytes"
                    writer.write(_encode({"ok": False, "error": error}))
                    break
                if not line:
                    break
                self._busy.add(task)
                try:
                    writer.write(_encode(await self._answer(line)))
                finally:
                    self._busy.discard(task)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            del self._connections[task]
            writer.close()

    async def _answer(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {"ok": False, "error": "The request is not JSON"}
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            return {"ok": False, "error": 'A request is {"command": NAME, "args": {...}}'}
        args = request.get("args", {})
        if not isinstance(args, dict):
            return {"ok": False, "error": "The args of a request are a JSON object"}
        try:
            result = await execute(self.ctx, request["command"], args)
        except (AdminError, StanzaError) as error:
            return {"ok": False, "error": error_message(error)}
        except Exception:
            log.exception("admin command %s failed", request["command"])
            return {"ok": False, "error": "Internal error: see the server log"}
        return {"ok": True, "result": result}


def _encode(response: dict[str, Any]) -> bytes:
    return json.dumps(response).encode() + b"\n"
