"""The admin command line as an operator runs it: `chorus-presence --config CONFIG ...` in a
child process, against the running test server (through its admin socket) or, while the server
is stopped, against its database."""

from __future__ import annotations

import asyncio
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.integration.harness.constants import command_line

if TYPE_CHECKING:
    from tests.integration.harness.server import Harness

# A child process has a Python interpreter to start: far slower than a stanza round trip.
CLI_TIMEOUT = 60.0


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def cli(config: Path, *args: str, stdin: str | None = None) -> Run:
    """`chorus-presence --config CONFIG ARGS...` in a child process; the server keeps serving."""
    environment = {k: v for k, v in os.environ.items() if k != "CHORUS_CONFIG"}
    process = await asyncio.create_subprocess_exec(
        *command_line(config, *args),
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=environment,
    )
    async with asyncio.timeout(CLI_TIMEOUT):
        out, err = await process.communicate(stdin.encode() if stdin is not None else None)
    assert process.returncode is not None
    return Run(process.returncode, out.decode(), err.decode())


async def ok(config: Path, *args: str, stdin: str | None = None) -> Run:
    run = await cli(config, *args, stdin=stdin)
    assert run.code == 0, run
    return run


async def fails(config: Path, code: int, *args: str, needle: str) -> Run:
    """The command exits with `code` and one line on stderr naming `needle`."""
    run = await cli(config, *args)
    assert run.code == code, run
    message = run.err.strip().splitlines()[-1]
    assert "Traceback" not in run.err, run.err
    assert needle in message, run.err
    return run


def config_of(harness: Harness) -> Path:
    """The config file the harness's in-process server was started from."""
    source = harness.server.config.source
    assert source is not None
    return source
