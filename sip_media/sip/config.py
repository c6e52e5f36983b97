"""Engine configuration and the UAS acceptance policies.

Where it sits: read by ``engine`` (transports, limits, timers), ``registrar`` (realm,
users, digest algorithms, limits) and ``routing`` (domains, static contacts, trunks).
Every test sets ``allowed_destinations`` to 127.0.0.0/8: nothing may leave loopback.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sip_media.sip.message import UasPolicy
from sip_media.sip.routing import TrunkConfig
from sip_media.sip.timers import TimerConfig

Address = tuple[str, int]

# Extensions we really implement: a Require for 100rel or timer gets 420 Bad Extension.
EXTENSIONS = frozenset({"replaces", "norefersub"})
SESSION_POLICY = UasPolicy(extensions=EXTENSIONS, content_types=frozenset({"application/sdp"}))
# MESSAGE / NOTIFY / INFO bodies are passed through to the service, so accept the usual ones.
CONTENT_POLICY = UasPolicy(
    extensions=EXTENSIONS,
    content_types=frozenset(
        {
            "application/sdp",
            "text/plain",
            "text/html",
            "application/json",
            "application/xml",
            "application/dtmf-relay",
            "application/dtmf",
            "message/sipfrag",
            "message/cpim",
            "application/simple-message-summary",
            "application/pidf+xml",
            "application/im-iscomposing+xml",
            "application/vnd.etsi.sci+xml",
        }
    ),
)


@dataclass
class EngineConfig:
    udp: list[Address] = field(default_factory=lambda: [("127.0.0.1", 5060)])
    tcp: list[Address] = field(default_factory=list)
    allowed_destinations: tuple[str, ...] = ("127.0.0.0/8",)
    timers: TimerConfig = field(default_factory=TimerConfig)
    trace: bool = False
    max_transactions_per_source: int = 2000  # per second; 0 disables the limit
    domains: tuple[str, ...] = ("local",)
    realm: str = "sip_media"
    # Offered in order. baresip 1.0 (Debian) gives up on a SHA-256 challenge listed
    # first, so the default is MD5 only; ("SHA-256", "MD5") for RFC 8760 clients.
    digest_algorithms: tuple[str, ...] = ("MD5",)
    users: dict[str, str] = field(default_factory=dict)  # username -> password
    static_contacts: dict[str, str] = field(default_factory=dict)  # user -> contact URI
    trunks: dict[str, TrunkConfig] = field(default_factory=dict)
    authenticate_invites: bool = True  # digest-challenge INVITEs whose From is a local user
    local_hosts: tuple[str, ...] = ()  # extra names this UAS answers for (besides bound IPs)
    max_contacts_per_aor: int = 10
    max_registrations_per_source: int = 100
    # Seconds the ACK of an outbound INVITE's 2xx waits for ``Invitation.confirm`` (the
    # owner has stored the answer); 0 sends it at once. See ``agent`` and ``stray``.
    ack_hold: float = 0.0
