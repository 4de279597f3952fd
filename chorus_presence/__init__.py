"""chorus-presence: a presence server that speaks XMPP, on asyncio and SQLite."""

__version__ = "0.1.0"
