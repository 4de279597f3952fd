"""The parts of one assembled server, as the composition root built them.

Services never see this: each takes its collaborators in its constructor. It is what the
layers on top work with (the listeners, the admin commands, the tests) and what the server
shuts down in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from chorus_presence.config import Config
from chorus_presence.core.background import BackgroundWork
from chorus_presence.core.bus import Bus
from chorus_presence.core.limits import Limits
from chorus_presence.core.metrics import Metrics
from chorus_presence.core.router import StanzaRouter
from chorus_presence.core.sessions import SessionRegistry
from chorus_presence.server.c2s import StreamContext
from chorus_presence.server.session_nonzas import StreamManagementService
from chorus_presence.services.accounts import AccountService
from chorus_presence.services.adhoc import AdhocService
from chorus_presence.services.block_list import BlockListService
from chorus_presence.services.call_routing import CallRoutingService
from chorus_presence.services.last_seen import LastSeenService
from chorus_presence.services.presence import PresenceService
from chorus_presence.services.priority_access import PriorityAccessService
from chorus_presence.services.quiet_hours import QuietHoursService
from chorus_presence.services.rosters import RosterService
from chorus_presence.services.sign_ins import SignInService
from chorus_presence.services.subscriptions import SubscriptionService
from chorus_presence.services.visibility import VisibilityService
from chorus_presence.storage.factory import Repositories

if TYPE_CHECKING:
    # Only for the type: a server outside a cluster never loads the cluster or Redis.
    from chorus_presence.cluster.node import ClusterNode


@dataclass(frozen=True)
class Components:
    config: Config
    repositories: Repositories
    bus: Bus
    router: StanzaRouter
    sessions: SessionRegistry
    limits: Limits
    metrics: Metrics
    background: BackgroundWork
    accounts: AccountService
    rosters: RosterService
    presence: PresenceService
    subscriptions: SubscriptionService
    visibility: VisibilityService
    block_list: BlockListService
    call_routing: CallRoutingService
    priority_access: PriorityAccessService
    quiet_hours: QuietHoursService
    last_seen: LastSeenService
    adhoc: AdhocService
    stream_management: StreamManagementService
    sign_ins: SignInService
    streams: StreamContext
    # This node's part in a cluster; None on a single node.
    cluster: ClusterNode | None = None

    @property
    def domain(self) -> str:
        return self.config.domain
