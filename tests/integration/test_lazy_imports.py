"""What a server loads: a single node on SQLite, without the web listener or the metrics
endpoint, runs without the packages only the features it does not use need (the Redis client,
aiohttp, asyncpg, cryptography), and each of those features still loads what it needs.

The server runs in a child process with the command line's own entry point, so that what this
test process imported does not count.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.integration.harness.server import write_config

# Run by the child: start the server with its listeners, as `serve` does, log a client in,
# and print which of the packages are loaded.
CHILD = """
import asyncio, json, socket, sys
from pathlib import Path
import chorus_presence.cli.main
from chorus_presence.composition import Server
from chorus_presence.config import load_config

PACKAGES = ("redis", "aiohttp", "asyncpg", "cryptography")


async def main() -> None:
    server = Server(load_config(Path(sys.argv[1])))
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            b"<stream:stream xmlns='jabber:client' to='chorus.test' version='1.0'"
            b" xmlns:stream='http://etherx.jabber.org/streams'>"
        )
        data = b""
        while b"</stream:features>" not in data:
            data += await asyncio.wait_for(reader.read(65536), 10)
        writer.close()
        print(json.dumps({name: name in sys.modules for name in PACKAGES}))
    finally:
        await server.stop()


asyncio.run(main())
"""


def loaded(config: Path) -> dict[str, bool]:
    result = subprocess.run(
        [sys.executable, "-c", CHILD, str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


def test_a_single_sqlite_node_loads_none_of_the_optional_packages(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(tmp_path, tls_files, tls={"required": False})
    assert loaded(config) == {
        "redis": False,
        "aiohttp": False,
        "asyncpg": False,
        "cryptography": False,
    }


def test_the_web_listener_and_the_metrics_endpoint_load_aiohttp(
    tmp_path: Path, tls_files: tuple[Path, Path]
) -> None:
    config = write_config(
        tmp_path,
        tls_files,
        tls={"required": False},
        web={"enabled": True, "port": 0},
        metrics={"enabled": True, "port": 0},
    )
    assert loaded(config)["aiohttp"] is True
