"""One authenticated WebSocket connection: its token, its limits and its outbox.

The endpoint builds it at upgrade and hands it to the service, which sees it only as a
``rwi.service.ServiceClient``: who sent a command, whether its limits admit it, and where its
replies and events go.
"""

from __future__ import annotations

from dataclasses import dataclass

from rwi.config import TokenConfig
from rwi.errors import RwiError
from rwi.gateway.outbox import Outbox
from rwi.gateway.ratelimit import TokenBucket


@dataclass
class Connection:
    connection_id: str
    token: TokenConfig
    outbox: Outbox
    commands: TokenBucket
    originates: TokenBucket
    remote: str = ""

    def admit(self, action: str) -> None:
        """Take this command out of the connection's limits, or refuse it."""
        if not self.commands.take():
            raise RwiError(
                "rate_limited",
                f"command rate limit of {self.commands.rate:g}/s for this connection exceeded",
            )
        if action == "call.originate" and not self.originates.take():
            raise RwiError(
                "rate_limited",
                f"originate_rate_limit of {self.originates.rate:g}/s for this connection exceeded",
            )
