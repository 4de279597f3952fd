"""The values every part of the harness and every test share: the test domain, the default
password and the one timeout that bounds every wait."""

from __future__ import annotations

DOMAIN = "chorus.test"
PASSWORD = "correct horse battery staple"
TIMEOUT = 10.0
