"""Fixtures: a test certificate for the session, a fresh server per test and, for the portal's
tests, a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser

from chorus_presence.certs import ensure_certificate
from tests.integration.harness import DOMAIN, Harness, quiet_slixmpp, start_server, write_config
from tests.integration.harness.browser import chromium


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    ensure_certificate(cert, key, DOMAIN)
    return cert, key


@pytest.fixture
def server_config(request: pytest.FixtureRequest) -> dict:
    """Config sections for this test's server: `@pytest.mark.server_config(tls={...})`."""
    marker = request.node.get_closest_marker("server_config")
    return dict(marker.kwargs) if marker else {}


@pytest.fixture
async def harness(
    tmp_path: Path, tls_files: tuple[Path, Path], server_config: dict
) -> AsyncIterator[Harness]:
    quiet_slixmpp()
    running = await start_server(write_config(tmp_path, tls_files, **server_config), tls_files[0])
    try:
        yield running
    finally:
        await running.close()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium for the portal's tests, closed after the test."""
    async with chromium() as launched:
        yield launched
