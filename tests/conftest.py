"""Fixtures for every test directory: the private PostgreSQL server, started once per session
when a test first asks for it and stopped at the end however the session ends, and a fresh
database per test, copied from a template the server's own migrations were applied to."""

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
