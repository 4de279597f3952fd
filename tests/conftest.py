"""Fixtures for every test directory: the private PostgreSQL and Redis servers, each started
once per session when a test first asks for it and stopped at the end however the session
ends; a fresh PostgreSQL database per test, copied from a template the server's own migrations
were applied to, and a Redis emptied before each test that asks for it."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from chorus_presence.config import StorageConfig
from chorus_presence.storage.factory import prepare
from tests.engines.postgres import PostgresServer
from tests.engines.redis import RedisServer

# The cluster's fixtures live beside the rest of its harness; registered here, the one conftest
# pytest reads plugins from.
pytest_plugins = ("tests.integration.harness.cluster",)

TEMPLATE = "chorus_template"
_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer.start()
    try:
        url = server.create_database(TEMPLATE)
        config = StorageConfig(Path("unused.db"), "postgresql", url)
        # In a thread of its own: this may be set up while a test's event loop runs.
        with ThreadPoolExecutor(1) as thread:
            thread.submit(asyncio.run, prepare(config)).result()
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new database holding the current schema and no rows, dropped after the
    test."""
    name = f"test_{next(_names)}"
    url = postgres_server.create_database(name, TEMPLATE)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def empty_postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL of a new database that chorus-presence never touched, dropped after the test."""
    name = f"empty_{next(_names)}"
    url = postgres_server.create_database(name)
    try:
        yield url
    finally:
        postgres_server.drop_database(name)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """The session's private Redis, for tests that stop and start it (`halt()`, `resume()`)."""
    server = RedisServer.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    """The URL of database 0 of the session's Redis; what is in it depends on earlier tests:
    take `redis_db` for an empty one."""
    return redis_server.url()


@pytest.fixture
def redis_db(redis_server: RedisServer) -> Iterator[str]:
    """The URL of the session's Redis, running and empty at the start of the test (and left
    running after it, whatever the test stopped)."""
    if not redis_server.running:
        redis_server.resume()
    redis_server.flush()
    yield redis_server.url()
    if not redis_server.running:
        redis_server.resume()
