"""The values every part of the harness and every test share: the test domain, the default
password and the one timeout that bounds every wait."""

from __future__ import annotations

import sys
from pathlib import Path

DOMAIN = "chorus.test"
PASSWORD = "correct horse battery staple"
TIMEOUT = 10.0


def command_line(config: Path, *args: str) -> list[str]:
    """`chorus-presence --config CONFIG ARGS...` as this interpreter runs it."""
    return [sys.executable, "-m", "chorus_presence", "--config", str(config), *args]
