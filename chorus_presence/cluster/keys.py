"""The names a cluster uses in Redis: the set of node names, each node's heartbeat key, its
directory (a hash of the sessions it holds) and its channel.

Every name carries the database number of `cluster.redis`: pub/sub channels are shared by all
the databases of one Redis server, so two clusters on two databases of one server stay apart.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    @classmethod
    def for_database(cls, database: int) -> Keys:
        return cls(f"chorus:{database}:")

    @property
    def nodes(self) -> str:
        """The set of node names that joined and were not yet cleaned up after."""
        return f"{self.prefix}nodes"

    def alive(self, node: str) -> str:
        """The node's heartbeat: its boot id, expiring after `cluster.node_timeout`."""
        return f"{self.prefix}node:{node}:alive"

    def directory(self, node: str) -> str:
        """The sessions the node holds: full JID -> entry (`wire.Entry`)."""
        return f"{self.prefix}node:{node}:sessions"

    def channel(self, node: str) -> str:
        return f"{self.prefix}node:{node}:inbox"
