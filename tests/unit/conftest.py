"""Fixtures for the unit tests: the storage backends, each in turn."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engines.stores import BACKENDS, STORE_DOMAIN, StoreUnderTest


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """A backend for the domain STORE_DOMAIN: SQLite in `tmp_path`, then a fresh PostgreSQL
    database."""
    if request.param == "sqlite":
        return StoreUnderTest.sqlite(tmp_path / "chorus.db", STORE_DOMAIN)
    return StoreUnderTest.postgresql(request.getfixturevalue("postgres_url"), STORE_DOMAIN)
