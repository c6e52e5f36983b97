"""Where an outbound INVITE goes: local users, configured trunks, or a plain URI.

Where it sits: consulted by the engine/adapter before ``agent.Invitation.dial``.
``sip:<user>@local`` resolves to the user's registered contacts (registrar) or a static
contact from config; ``sip:<number>@<trunk-name>`` to a configured trunk (proxy address,
credentials, from-user); anything else to the URI's own host:port. The allow-list in
``transport`` still vets the final address.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sip_media.sip.dialog import uri_address
from sip_media.sip.errors import SipError
from sip_media.sip.uri import SipURI

Address = tuple[str, int]
#: A local user's registered contacts, best first: (contact URI, REGISTER source, transport)
ContactLookup = Callable[[str], list[tuple[str, Address | None, str]]]


class RouteError(SipError):
    status = 404
    reason = "Not Found"


@dataclass(frozen=True, slots=True)
class TrunkConfig:
    name: str
    proxy: Address
    username: str | None = None
    password: str | None = None
    from_user: str | None = None
    from_domain: str | None = None
    transport: str = "UDP"


@dataclass(frozen=True, slots=True)
class Route:
    request_uri: str
    address: Address
    transport: str = "UDP"
    from_user: str | None = None
    from_domain: str | None = None
    username: str | None = None
    password: str | None = None
    trunk: str | None = None


class Router:
    """Resolves targets against the served ``domains``, the ``trunks``, the registered
    ``contacts`` and the ``static_contacts`` it is built with."""

    def __init__(
        self,
        domains: tuple[str, ...],
        trunks: Mapping[str, TrunkConfig],
        static_contacts: Mapping[str, str],
        contacts: ContactLookup,
    ) -> None:
        self.domains = domains
        self.trunks = trunks
        self.static_contacts = static_contacts
        self.contacts = contacts

    def resolve(self, target: str) -> Route:
        try:
            uri = SipURI.parse(target)
        except SipError as exc:
            raise RouteError(f"Bad target {target[:60]!r}", status=400) from exc
        host = uri.host.lower()
        if host in self.domains:
            return self._local_user(uri.user or "")
        trunk = self.trunks.get(host)
        if trunk is not None:
            return self._trunk(uri.user or "", trunk)
        transport = (uri.transport or "udp").upper()
        return Route(request_uri=str(uri), address=uri_address(str(uri)), transport=transport)

    def _local_user(self, user: str) -> Route:
        contacts = self.contacts(user)
        if contacts:
            contact, source, transport = contacts[0]
            address = source or uri_address(contact)
            return Route(request_uri=contact, address=address, transport=transport)
        static = self.static_contacts.get(user)
        if static is not None:
            uri = SipURI.parse(static)
            return Route(
                request_uri=static,
                address=uri_address(static),
                transport=(uri.transport or "udp").upper(),
            )
        raise RouteError(f"User {user!r} is not registered")

    @staticmethod
    def _trunk(number: str, trunk: TrunkConfig) -> Route:
        host, port = trunk.proxy
        return Route(
            request_uri=f"sip:{number}@{host}:{port}",
            address=trunk.proxy,
            transport=trunk.transport,
            from_user=trunk.from_user,
            from_domain=trunk.from_domain or host,
            username=trunk.username,
            password=trunk.password,
            trunk=trunk.name,
        )
