"""A cluster under test: N `chorus-presence serve` processes sharing one fresh PostgreSQL
database and the session's private Redis, each wrapped as a `Harness`.

Every node has a directory of its own (`tmp_path/node-a`, ...) holding its config, admin
socket and log (`server.log`: the process's stderr, appended across restarts), a distinct
node name (node-a, node-b, ...) and distinct ports, and `[cluster] enabled = true` with
`heartbeat = 0.2` and `node_timeout = 1.0` unless the test says otherwise. Ports are chosen by
the kernel at the first start and then written into the node's config, so that a restarted
node listens where its clients connected before.

Fixtures (for tests under tests/integration):

    async def test_x(cluster: Cluster) -> None:          # two nodes, default settings
        a, b = cluster
        await cluster.add_users("alice", "bob")           # once: the database is shared
        alice, alice_in = await online(a, "alice")
        bob, bob_in = await online(b, "bob")
        await b.kill_9()                                  # SIGKILL, awaited
        await b.restart()                                 # same config, same ports

    async def test_y(cluster_of: ClusterFactory) -> None:
        three = await cluster_of(3, cluster={"node_timeout": 2.0}, messages={"offline": "store"})

`cluster_of(n, **sections)` starts the test's one cluster (a second would share its database,
Redis and node names) with the config sections `write_config` takes (`top_level=...` too),
applied to every node; `[cluster]` values given there override the defaults above but
never `enabled` nor `node`. A `web` or `metrics` section that enables them gets a free port per
node; `node.web_port` and `node.metrics_port` say which. The cluster is closed at the end of
the test (clients aborted, processes stopped with SIGTERM, killed if they do not exit).
`Cluster` is the sequence of its nodes, with `add_users(*names)` (through the first running
node), `postgres_url` and `redis_url`.

`ClusterNode` is a `Harness` whose server is a child process: `login`, `make_client`,
`connect`, `raw`, `online(node, ...)` and the admin command line (`cli(config_of(node), ...)`)
work as with one server; `add_user` goes through the node's admin socket. `ctx` and `link`,
which need the server's objects in this process, do not. Its own:

- `node.name`, `node.directory`, `node.log` (the stderr file); `config_of(node)` is its
  config file, as for any harness;
- `await node.kill_9()`: SIGKILL, awaited; its clients see their streams cut;
- `await node.terminate()`: SIGTERM, the clean stop, awaited; returns the exit code;
- `await node.restart()`: stops the node if it runs (SIGTERM), forgets its clients and starts
  it again with the same config; `while_stopped=` runs in between, as `Harness.restart`;
- `node.running`: whether its process is alive.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import string
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from chorus_presence.config import Config, load_config
from tests.integration.harness.constants import PASSWORD, TIMEOUT, command_line
from tests.integration.harness.server import Harness, quiet_slixmpp, write_config

# Fast enough that a node's death is noticed within a second or so, slow enough that two nodes
# on a busy two-core machine do not declare each other dead.
HEARTBEAT = 0.2
NODE_TIMEOUT = 1.0
# A child process has an interpreter to start and, with the cluster, Redis and PostgreSQL to
# reach before it listens.
START_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0

_SERVING = re.compile(r"serving \S+ on \S+:(\d+)")
_WEB = re.compile(r"web portal on http://\S+:(\d+)/")
_METRICS = re.compile(r"metrics on http://\S+:(\d+)/metrics")


def node_names(count: int) -> list[str]:
    """node-a, node-b, ...: the names of a cluster of `count` nodes."""
    if not 1 <= count <= len(string.ascii_lowercase):
        raise ValueError(f"A test cluster has 1 to 26 nodes, not {count}")
    return [f"node-{letter}" for letter in string.ascii_lowercase[:count]]


class NodeProcess:
    """One `chorus-presence serve` child process, from the moment it printed where it listens
    until it exits."""

    def __init__(
        self,
        process: asyncio.subprocess.Process,
        config: Config,
        port: int,
        web: int | None,
        metrics: int | None,
    ) -> None:
        self.process = process
        # As the in-process server's: `config_of(node)` reads the file's path from it.
        self.config = config
        self.port = port
        self.web_port = web
        self.metrics_port = metrics

    @classmethod
    async def start(cls, config: Config, log: Path) -> NodeProcess:
        assert config.source is not None
        config_path = config.source
        with log.open("ab") as stderr:
            process = await asyncio.create_subprocess_exec(
                *command_line(config_path, "serve"),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
            )
        assert process.stdout is not None
        wanted = {"c2s": _SERVING}
        if config.web.enabled:
            wanted["web"] = _WEB
        if config.metrics.enabled:
            wanted["metrics"] = _METRICS
        ports: dict[str, int] = {}
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while len(ports) < len(wanted):
                    line = (await process.stdout.readline()).decode()
                    if not line:
                        await process.wait()
                        raise AssertionError(
                            f"{config_path.parent.name} exited ({process.returncode}) before it"
                            f" was ready: {tail(log)}"
                        )
                    for key, pattern in wanted.items():
                        match = pattern.search(line)
                        if match:
                            ports[key] = int(match[1])
        except BaseException:
            if process.returncode is None:
                process.kill()
                await process.wait()
            raise
        return cls(process, config, ports["c2s"], ports.get("web"), ports.get("metrics"))

    @property
    def running(self) -> bool:
        return self.process.returncode is None

    async def signal(self, signum: signal.Signals) -> int:
        """Send `signum` and wait for the exit; the exit code."""
        if self.process.returncode is None:
            self.process.send_signal(signum)
        try:
            async with asyncio.timeout(STOP_TIMEOUT):
                return await self.process.wait()
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(
                f"The server did not exit {STOP_TIMEOUT}s after {signum.name}"
            ) from None

    async def stop(self) -> None:
        """The clean stop, for the end of a test; a process that hangs is killed."""
        if self.process.returncode is None:
            await self.signal(signal.SIGTERM)


@dataclass
class NodeSettings:
    """What one node's config file is written from; the ports the kernel chose at the first
    start are added to `sections`, so that later starts listen on the same ones."""

    name: str
    directory: Path
    tls_files: tuple[Path, Path]
    sections: dict[str, dict[str, Any]]
    top_level: dict[str, Any] | None = None

    @property
    def path(self) -> Path:
        return self.directory / "chorus.toml"

    def write(self) -> Config:
        write_config(self.directory, self.tls_files, top_level=self.top_level, **self.sections)
        return load_config(self.path)

    def pin(self, server: NodeProcess) -> None:
        ports = {"c2s": server.port, "web": server.web_port, "metrics": server.metrics_port}
        for section, port in ports.items():
            if port is not None:
                self.sections.setdefault(section, {})["port"] = port
        self.write()


class ClusterNode(Harness):
    """One node of a test cluster: a `Harness` on a `NodeProcess`."""

    server: NodeProcess

    def __init__(self, settings: NodeSettings, server: NodeProcess) -> None:
        super().__init__(server, settings.tls_files[0])  # type: ignore[arg-type]
        self.settings = settings

    @classmethod
    async def launch(cls, settings: NodeSettings) -> ClusterNode:
        node = cls(settings, await cls._process(settings))
        settings.pin(node.server)
        return node

    @staticmethod
    async def _process(settings: NodeSettings) -> NodeProcess:
        return await NodeProcess.start(settings.write(), settings.directory / "server.log")

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def directory(self) -> Path:
        return self.settings.directory

    @property
    def log(self) -> Path:
        return self.settings.directory / "server.log"

    @property
    def running(self) -> bool:
        return self.server.running

    @property
    def web_port(self) -> int | None:
        return self.server.web_port

    @property
    def metrics_port(self) -> int | None:
        return self.server.metrics_port

    async def add_user(self, username: str, password: str = PASSWORD) -> None:
        await admin_call(
            self.directory / "admin.sock", "user.add", user=username, password=password
        )

    async def kill_9(self) -> None:
        """SIGKILL, as a crash or the OOM killer would; returns once the process is gone."""
        await self.server.signal(signal.SIGKILL)

    async def terminate(self) -> int:
        """SIGTERM, the clean stop; the exit code once the process is gone."""
        return await self.server.signal(signal.SIGTERM)

    async def restart(
        self, *, while_stopped: Callable[[], Awaitable[object]] | None = None
    ) -> None:
        """Stop the node if it runs (SIGTERM), forget its clients, start it again with the
        same config and ports."""
        await self.close()
        self.clients.clear()
        self.raw_connections.clear()
        if while_stopped is not None:
            await while_stopped()
        self.server = await self._process(self.settings)


class Cluster:
    """The nodes of one test cluster, in order: `a, b = cluster`, `cluster[0]`."""

    def __init__(self, nodes: list[ClusterNode], postgres_url: str, redis_url: str) -> None:
        self.nodes = nodes
        self.postgres_url = postgres_url
        self.redis_url = redis_url

    def __iter__(self) -> Iterator[ClusterNode]:
        return iter(self.nodes)

    def __getitem__(self, index: int) -> ClusterNode:
        return self.nodes[index]

    def __len__(self) -> int:
        return len(self.nodes)

    async def add_users(self, *usernames: str, password: str = PASSWORD) -> None:
        """Create accounts once, through the first running node; every node sees them, as
        they are rows of the shared database."""
        node = next((node for node in self.nodes if node.running), None)
        assert node is not None, "No node of the cluster is running"
        for username in usernames:
            await node.add_user(username, password)

    async def close(self) -> None:
        await asyncio.gather(*(node.close() for node in self.nodes))


class ClusterFactory(Protocol):
    def __call__(self, count: int, **sections: Any) -> Awaitable[Cluster]: ...


async def start_cluster(
    directory: Path,
    tls_files: tuple[Path, Path],
    postgres_url: str,
    redis_url: str,
    count: int,
    *,
    top_level: dict[str, Any] | None = None,
    **sections: dict[str, Any],
) -> Cluster:
    """Start `count` nodes together, each with a directory under `directory`."""
    settings = []
    for name in node_names(count):
        home = directory / name
        home.mkdir()
        own = node_sections(name, postgres_url, redis_url, sections)
        settings.append(NodeSettings(name, home, tls_files, own, top_level))
    results = await asyncio.gather(
        *(ClusterNode.launch(node) for node in settings), return_exceptions=True
    )
    nodes = [result for result in results if isinstance(result, ClusterNode)]
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        await asyncio.gather(*(node.close() for node in nodes))
        raise failures[0]
    return Cluster(nodes, postgres_url, redis_url)


def node_sections(
    name: str, postgres_url: str, redis_url: str, sections: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """The config sections of node `name`: the test's, over the cluster's defaults."""
    merged = {key: dict(values) for key, values in sections.items()}
    merged["storage"] = {**merged.get("storage", {}), "backend": "postgresql", "url": postgres_url}
    merged["cluster"] = {
        "redis": redis_url,
        "heartbeat": HEARTBEAT,
        "node_timeout": NODE_TIMEOUT,
        **merged.get("cluster", {}),
        "enabled": True,
        "node": name,
    }
    for listener in ("web", "metrics"):
        if merged.get(listener, {}).get("enabled"):
            merged[listener].setdefault("port", 0)
    return merged


async def admin_call(socket: Path, command: str, **args: Any) -> Any:
    """One request on a running server's admin channel; its result. A refusal fails the test
    with the server's message."""
    reader, writer = await asyncio.open_unix_connection(str(socket))
    try:
        writer.write(json.dumps({"command": command, "args": args}).encode() + b"\n")
        async with asyncio.timeout(TIMEOUT):
            answer = json.loads(await reader.readline())
    finally:
        writer.close()
    assert answer.get("ok"), f"{command} refused: {answer.get('error')}"
    return answer.get("result")


def tail(log: Path, lines: int = 20) -> str:
    """The end of a node's log, for failure messages."""
    try:
        return " | ".join(log.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


@pytest.fixture
async def cluster_of(
    tmp_path: Path, tls_files: tuple[Path, Path], postgres_url: str, redis_db: str
) -> AsyncIterator[ClusterFactory]:
    """Start the test's cluster of `n` nodes on its database and Redis; closed at its end."""
    quiet_slixmpp()
    started: list[Cluster] = []

    async def factory(count: int, **sections: Any) -> Cluster:
        # A second cluster would share the database, the Redis and the node names.
        assert not started, "One cluster per test"
        cluster = await start_cluster(
            tmp_path, tls_files, postgres_url, redis_db, count, **sections
        )
        started.append(cluster)
        return cluster

    try:
        yield factory
    finally:
        await asyncio.gather(*(cluster.close() for cluster in started))


@pytest.fixture
async def cluster(cluster_of: ClusterFactory) -> Cluster:
    """Two nodes, node-a and node-b, with the default settings."""
    return await cluster_of(2)
