"""``[sip]``, ``[media]`` and ``[[routes]]`` of the service's config, checked at start-up.

Turns the TOML tables into the SIP engine's and media engine's own configurations and
the dialplan's rules. Like the rest of the config, a wrong key or value stops start-up
with a message naming the key and the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rwi.config import Config, sip_t1_secs
from rwi.dialplan import RouteRule, parse_routes
from rwi.errors import ConfigError
from sip_media.media.config import MediaConfig
from sip_media.sip.config import EngineConfig
from sip_media.sip.routing import TrunkConfig
from sip_media.sip.timers import TimerConfig

DEFAULT_LISTEN = ("udp:127.0.0.1:5060",)
#: Seconds an outbound answer's ACK waits for its ``sip.call.answered`` to be stored
#: (``rwi.sip_ingest`` confirms it then; usually a commit, milliseconds): a bound, so
#: a slow log delays an ACK (the far end retransmits its 2xx meanwhile) but never a call.
#: 8 s: a log stalled by load (seen past 2 s on a saturated machine) must not open the
#: window where a crash leaves a dialog no record names, and the far end waits 64*T1
#: (32 s) for the ACK before it gives the call up.
ANSWER_ACK_HOLD = 8.0
_SIP_KEYS = {
    "listen",
    "allowed_destinations",
    "realm",
    "trace",
    "domains",
    "header_whitelist",
    "users",
    "trunks",
    "digest_algorithms",
    "authenticate_invites",
    "max_contacts_per_aor",
    "max_registrations_per_source",
    "max_transactions_per_source",
    "t1_ms",
}


@dataclass(frozen=True)
class SipSettings:
    engine: EngineConfig
    media: MediaConfig
    routes: tuple[RouteRule, ...]
    #: inbound INVITE headers copied into call.incoming data (lower-case names)
    header_whitelist: frozenset[str]


def _address(value: Any, where: str) -> tuple[str, str, int]:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be 'udp:HOST:PORT' or 'tcp:HOST:PORT'")
    transport, _, rest = value.partition(":")
    host, _, port = rest.rpartition(":")
    if transport.lower() not in ("udp", "tcp") or not host or not port.isdigit():
        raise ConfigError(f"{where} must be 'udp:HOST:PORT' or 'tcp:HOST:PORT', got {value!r}")
    return transport.lower(), host.strip("[]"), int(port)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where} must be a list of strings")
    return tuple(value)


def _users(items: Any, where: str) -> tuple[dict[str, str], dict[str, str]]:
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be an array of tables")
    passwords: dict[str, str] = {}
    contacts: dict[str, str] = {}
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at} must be a table")
        unknown = sorted(set(item) - {"name", "password", "contact"})
        if unknown:
            raise ConfigError(f"{at}.{unknown[0]} is not a known setting")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}.name must be a non-empty string")
        if "password" in item:
            if not isinstance(item["password"], str) or not item["password"]:
                raise ConfigError(f"{at}.password must be a non-empty string")
            passwords[name] = item["password"]
        if "contact" in item:
            if not isinstance(item["contact"], str) or not item["contact"].startswith("sip:"):
                raise ConfigError(f"{at}.contact must be a sip: URI")
            contacts[name] = item["contact"]
    return passwords, contacts


def _trunks(items: Any, where: str) -> dict[str, TrunkConfig]:
    if not isinstance(items, list):
        raise ConfigError(f"{where} must be an array of tables")
    trunks = {}
    keys = {"name", "proxy", "username", "password", "from_user", "from_domain", "transport"}
    for index, item in enumerate(items):
        at = f"{where}[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{at} must be a table")
        unknown = sorted(set(item) - keys)
        if unknown:
            raise ConfigError(f"{at}.{unknown[0]} is not a known setting")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{at}.name must be a non-empty string")
        proxy = item.get("proxy")
        host, _, port = proxy.rpartition(":") if isinstance(proxy, str) else ("", "", "")
        if not host or not port.isdigit():
            raise ConfigError(f"{at}.proxy must be HOST:PORT")
        trunks[name] = TrunkConfig(
            name=name,
            proxy=(host, int(port)),
            username=item.get("username"),
            password=item.get("password"),
            from_user=item.get("from_user"),
            from_domain=item.get("from_domain"),
            transport=str(item.get("transport", "UDP")).upper(),
        )
    return trunks


def sip_settings(config: Config) -> SipSettings:
    source = config.source
    sip = dict(config.sip)
    unknown = sorted(set(sip) - _SIP_KEYS)
    if unknown:
        raise ConfigError(f"{source}: sip.{unknown[0]} is not a known setting")
    udp: list[tuple[str, int]] = []
    tcp: list[tuple[str, int]] = []
    for index, value in enumerate(sip.get("listen", list(DEFAULT_LISTEN))):
        transport, host, port = _address(value, f"{source}: sip.listen[{index}]")
        (udp if transport == "udp" else tcp).append((host, port))
    allowed = _strings(
        sip.get("allowed_destinations", ["127.0.0.0/8"]), f"{source}: sip.allowed_destinations"
    )
    passwords, contacts = _users(sip.get("users", []), f"{source}: sip.users")
    timers = TimerConfig(t1=sip_t1_secs(sip, source))
    try:
        engine = EngineConfig(
            udp=udp,
            tcp=tcp,
            allowed_destinations=allowed,
            timers=timers,
            trace=bool(sip.get("trace", False)),
            domains=_strings(sip.get("domains", ["local"]), f"{source}: sip.domains"),
            realm=str(sip.get("realm", "rwi")),
            digest_algorithms=_strings(
                sip.get("digest_algorithms", ["MD5"]), f"{source}: sip.digest_algorithms"
            ),
            users=passwords,
            static_contacts=contacts,
            trunks=_trunks(sip.get("trunks", []), f"{source}: sip.trunks"),
            authenticate_invites=bool(sip.get("authenticate_invites", True)),
            max_contacts_per_aor=int(sip.get("max_contacts_per_aor", 10)),
            max_registrations_per_source=int(sip.get("max_registrations_per_source", 100)),
            max_transactions_per_source=int(sip.get("max_transactions_per_source", 2000)),
            ack_hold=ANSWER_ACK_HOLD,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: [sip] {exc}") from None
    media_table = dict(config.media)
    media_table.setdefault("allowed_destinations", list(allowed))
    media_table.setdefault("sounds_dir", str(config.storage.sounds_dir))
    media_table.setdefault("recordings_dir", str(config.storage.recordings_dir))
    try:
        media = MediaConfig.from_mapping(media_table)
    except Exception as exc:  # the media layer's own ConfigError and value errors
        raise ConfigError(f"{source}: [media] {exc}") from None
    headers = _strings(sip.get("header_whitelist", []), f"{source}: sip.header_whitelist")
    return SipSettings(
        engine=engine,
        media=media,
        routes=parse_routes(list(config.routes), source),
        header_whitelist=frozenset(h.lower() for h in headers),
    )
