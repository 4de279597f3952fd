"""Test harness: the real server on an ephemeral port with a temporary database, real slixmpp
clients over TCP (STARTTLS and SCRAM included) and raw sockets for bad input.

Every helper an integration test shares lives here, so that no test module imports another;
import them from this package. Every wait is for an event, bounded by a timeout; nothing sleeps.

- `constants`: the test domain, the default password, the timeout.
- `server`: the config file, the in-process server (`Harness`), the server as a child process,
  set-up through the server's own services (`link`).
- `clients`: slixmpp clients: waiting for events, inboxes, sync points, logging in, requests.
- `raw`: raw sockets: negotiation by hand, reading stanzas back, the parsing `Peer`.
- `adhoc`: XEP-0050 commands as a stock client drives them.
- `fast`: SASL2 and FAST sign-in tokens (XEP-0388, XEP-0484) spoken by hand over a raw socket.
- `admin`: the admin command line in a child process.
- `cluster`: several server processes sharing PostgreSQL and Redis, each a `Harness`, and the
  `cluster` and `cluster_of` fixtures.
"""

from __future__ import annotations

from tests.integration.harness.adhoc import ADHOC, COMMANDS, complete, execute, fields, options
from tests.integration.harness.admin import Run, cli, config_of, fails, ok
from tests.integration.harness.clients import (
    Inbox,
    befriend,
    block_list,
    ending,
    listed,
    online,
    presence_of,
    pushed,
    roster_of,
    sync,
    visibility,
    wait_first,
)
from tests.integration.harness.cluster import Cluster, ClusterFactory, ClusterNode, start_cluster
from tests.integration.harness.constants import DOMAIN, PASSWORD, TIMEOUT
from tests.integration.harness.raw import (
    Peer,
    RawClient,
    TopLevel,
    authenticate,
    bind,
    error_condition,
    features,
    ping,
    plain_token,
    raw_login,
    raw_session,
    stanzas,
    starttls,
    still_serving,
)
from tests.integration.harness.server import (
    CLOCK_START,
    Harness,
    ServerProcess,
    clocked_server,
    link,
    quiet_slixmpp,
    start_server,
    write_config,
)

__all__ = [
    "ADHOC",
    "CLOCK_START",
    "COMMANDS",
    "DOMAIN",
    "PASSWORD",
    "TIMEOUT",
    "Cluster",
    "ClusterFactory",
    "ClusterNode",
    "Harness",
    "Inbox",
    "Peer",
    "RawClient",
    "Run",
    "ServerProcess",
    "TopLevel",
    "authenticate",
    "befriend",
    "bind",
    "block_list",
    "cli",
    "clocked_server",
    "complete",
    "config_of",
    "ending",
    "error_condition",
    "execute",
    "fails",
    "features",
    "fields",
    "link",
    "listed",
    "ok",
    "online",
    "options",
    "ping",
    "plain_token",
    "presence_of",
    "pushed",
    "quiet_slixmpp",
    "raw_login",
    "raw_session",
    "roster_of",
    "stanzas",
    "start_cluster",
    "start_server",
    "starttls",
    "still_serving",
    "sync",
    "visibility",
    "wait_first",
    "write_config",
]
