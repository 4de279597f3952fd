"""Several nodes as one server: the cluster's live state in Redis and node-to-node delivery.

Durable state is the shared PostgreSQL database's; what lives only while nodes run is here:
the session directory (which node holds which full JID, its priority and presence) with each
node's heartbeat, and one pub/sub channel per node. The rest of the server sees another node's
sessions through stand-ins (`remote.RemoteSession`) bound in the local session registry, and
their presence mirrored in the presence service, so that every service works unchanged; the
node (`node.ClusterNode`) keeps those up to date from what the other nodes announce, tells
them what this node's sessions do, and declares dead a node whose heartbeat stopped.

- `keys`: the names used in Redis.
- `wire`: what one node says to another.
- `link`: the connection to Redis: ordered writes, this node's channel, its health.
- `remote`: the stand-in sessions and the outbox that coalesces what goes to each node.
- `mirror`: other nodes' sessions, bound here as stand-ins with their presence.
- `requests`: subscription requests that crossed the contact's login on another node.
- `node`: the bus subscriptions, membership and heartbeats, queries between nodes.
- `limits`: the failed-login throttles and the subscription allowance, counted in Redis.
"""
