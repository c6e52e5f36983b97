"""Registrar binding logic (RFC 3261 §10.3), pure: a REGISTER in, new bindings out.

Sits under the registrar transaction user: after digest authentication the registrar
calls ``apply_register(request, current_bindings, now=...)`` and gets a
``RegisterOutcome`` (the AOR's complete new binding set plus what was added, refreshed
and removed) or a ``RegistrarError`` carrying the SIP status to answer with. Nothing is
stored here: the engine persists the outcome (bindings are frozen, JSON-friendly values,
see ``Binding.to_dict``/``from_dict``) and rebuilds state from it, and ``sweep`` drops
expired bindings at whatever ``now`` the caller passes in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .errors import RegistrarError, SipError
from .headers import MAX_UINT32, parse_uint
from .message import Request
from .uri import NameAddr, SipURI, quote_string


@dataclass(frozen=True)
class RegistrarPolicy:
    default_expires: int = 3600
    min_expires: int = 60  # shorter non-zero requests get 423 + Min-Expires
    max_expires: int = 7200  # longer requests are shortened, not refused
    max_contacts_per_aor: int = 10
    max_bindings_per_source: int = 50


@dataclass(frozen=True)
class Binding:
    """One contact bound to an address-of-record until ``expires_at`` (epoch seconds)."""

    aor: str
    contact: str  # the Contact URI, serialised (URI parameters and headers kept)
    expires_at: float
    call_id: str = ""
    cseq: int = 0
    q: float | None = None
    params: tuple[tuple[str, str | None], ...] = ()  # other Contact header params
    display_name: str | None = None
    source: tuple[str, int] = ("", 0)  # where the REGISTER came from (NAT traversal)
    transport: str = "UDP"

    @property
    def uri(self) -> SipURI:
        return SipURI.parse(self.contact)

    def remaining(self, now: float) -> int:
        return max(0, int(self.expires_at - now))

    def contact_header(self, now: float) -> str:
        """Contact value for a 200 OK to REGISTER, with the remaining ``expires``."""
        head = f"{quote_string(self.display_name)} " if self.display_name is not None else ""
        params = [f";{n}" if v is None else f";{n}={v}" for n, v in self.params]
        if self.q is not None:
            params.append(f";q={self.q:g}")
        params.append(f";expires={self.remaining(now)}")
        return f"{head}<{self.contact}>{''.join(params)}"

    def to_dict(self) -> dict[str, object]:
        return {
            "aor": self.aor,
            "contact": self.contact,
            "expires_at": self.expires_at,
            "call_id": self.call_id,
            "cseq": self.cseq,
            "q": self.q,
            "params": [list(p) for p in self.params],
            "display_name": self.display_name,
            "source": list(self.source),
            "transport": self.transport,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> Binding:
        params = data.get("params") or []
        source = data.get("source") or ("", 0)
        q = data.get("q")
        display = data.get("display_name")
        if not isinstance(params, list) or not isinstance(source, list | tuple):
            raise ValueError("Malformed binding record")
        return cls(
            aor=str(data["aor"]),
            contact=str(data["contact"]),
            expires_at=float(str(data["expires_at"])),
            call_id=str(data.get("call_id", "")),
            cseq=int(str(data.get("cseq", 0))),
            q=None if q is None else float(str(q)),
            params=tuple((str(p[0]), None if p[1] is None else str(p[1])) for p in params),
            display_name=None if display is None else str(display),
            source=(str(source[0]), int(source[1])),
            transport=str(data.get("transport", "UDP")),
        )


@dataclass(frozen=True)
class RegisterOutcome:
    aor: str
    bindings: tuple[Binding, ...]  # the AOR's full set after the REGISTER, best q first
    added: tuple[Binding, ...] = ()
    refreshed: tuple[Binding, ...] = ()
    removed: tuple[Binding, ...] = ()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.refreshed or self.removed)

    def contact_headers(self, now: float) -> tuple[tuple[str, str], ...]:
        """``Contact`` headers for the 200 OK: every current binding (RFC 3261 §10.3 step 8)."""
        return tuple(("Contact", b.contact_header(now)) for b in self.bindings)


def aor_of(uri: SipURI) -> str:
    """Canonical address-of-record: scheme, unescaped user, lower-case host; no parameters."""
    if not uri.is_sip:
        raise RegistrarError("Address-of-record must be a SIP or SIPS URI", status=400)
    user = f"{uri.user}@" if uri.user else ""
    port = f":{uri.port}" if uri.port is not None else ""
    return f"{uri.scheme}:{user}{uri.host.lower()}{port}"


def _q_value(contact: NameAddr) -> float | None:
    text = contact.param("q")
    if text is None:
        return None
    try:
        q = float(text)
    except ValueError:
        raise RegistrarError(f"Invalid q value {text!r}", status=400) from None
    if not 0.0 <= q <= 1.0 or len(text) > 5:
        raise RegistrarError(f"Invalid q value {text!r}", status=400)
    return q


def _requested_expires(
    contact: NameAddr, header_default: int | None, policy: RegistrarPolicy
) -> int:
    text = contact.param("expires")
    if text is not None:
        try:
            # RFC 3261 §10.2.1.1: delta-seconds; hostile 10**100 means "as long as allowed".
            return parse_uint(text, "Contact expires", clamp=True)
        except SipError:
            raise RegistrarError(f"Invalid expires parameter {text!r}", status=400) from None
    return policy.default_expires if header_default is None else header_default


def _order(bindings: Sequence[Binding]) -> tuple[Binding, ...]:
    # Highest q first (absent q ranks as 1.0 per RFC 3261 §16.6), then longest-lived.
    return tuple(sorted(bindings, key=lambda b: (-(1.0 if b.q is None else b.q), -b.expires_at)))


def apply_register(
    request: Request,
    current: Sequence[Binding],
    *,
    now: float,
    policy: RegistrarPolicy = RegistrarPolicy(),
    source: tuple[str, int] = ("", 0),
    transport: str = "UDP",
    source_bindings: int = 0,
) -> RegisterOutcome:
    """Apply a REGISTER to the AOR's ``current`` bindings (RFC 3261 §10.3 steps 5-8).

    All-or-nothing: any refusal raises ``RegistrarError`` and leaves nothing applied.
    ``source_bindings`` is how many live bindings the sender's address already holds
    across all AORs (the per-source limit needs that global view, which the caller has).
    """
    try:
        aor = aor_of(request.to.uri)
        call_id, cseq = request.call_id, request.cseq.number
        contact_values = request.headers.get_all("Contact")
        header_expires = request.expires
    except RegistrarError:
        raise
    except SipError as exc:
        raise RegistrarError(exc.reason, status=400) from None
    live = [b for b in current if b.expires_at > now and b.aor == aor]
    if not contact_values:  # a query: just report the bindings
        return RegisterOutcome(aor, _order(live))
    if any(v.strip() == "*" for v in contact_values):
        return _unregister_all(aor, live, call_id, cseq, header_expires, len(contact_values))
    try:
        contacts = [NameAddr.parse(v) for v in contact_values]
    except SipError as exc:
        raise RegistrarError(f"Bad Contact: {exc.reason}", status=400) from None

    bindings = {b.contact: b for b in live}
    added: dict[str, Binding] = {}
    refreshed: dict[str, Binding] = {}
    removed: dict[str, Binding] = {}
    for contact in contacts:
        expires = _requested_expires(contact, header_expires, policy)
        if 0 < expires < policy.min_expires:
            raise RegistrarError(
                "Interval Too Brief",
                status=423,
                headers=(("Min-Expires", str(policy.min_expires)),),
            )
        uri = contact.uri
        key = next((k for k, b in bindings.items() if b.uri.equivalent(uri)), None)
        existing = bindings.get(key) if key is not None else None
        if existing is not None and existing.call_id == call_id and cseq <= existing.cseq:
            # §10.3 step 7: same Call-ID needs a higher CSeq, else the update is aborted.
            raise RegistrarError("CSeq not higher than the stored binding's", status=500)
        if expires == 0:
            if existing is not None and key is not None:
                gone = bindings.pop(key)
                refreshed.pop(key, None)
                if added.pop(key, None) is None:  # only bindings that existed before count
                    removed[key] = gone
            continue
        params = tuple((n, v) for n, v in contact.params if n.lower() not in ("expires", "q"))
        binding = Binding(
            aor=aor,
            contact=str(uri),
            expires_at=now + min(expires, policy.max_expires, MAX_UINT32),
            call_id=call_id,
            cseq=cseq,
            q=_q_value(contact),
            params=params,
            display_name=contact.display_name,
            source=source,
            transport=transport,
        )
        if existing is not None and key is not None:
            del bindings[key]
            refreshed.pop(key, None)
            was_new = added.pop(key, None) is not None
            (added if was_new else refreshed)[binding.contact] = binding
        else:
            added[binding.contact] = binding
        bindings[binding.contact] = binding
    if len(bindings) > policy.max_contacts_per_aor and added:
        raise RegistrarError(
            f"Too many contacts for this address-of-record (max {policy.max_contacts_per_aor})",
            status=403,
        )
    if added and source_bindings + len(added) > policy.max_bindings_per_source:
        raise RegistrarError("Too many registrations from this address", status=403)
    return RegisterOutcome(
        aor,
        _order(list(bindings.values())),
        added=tuple(added.values()),
        refreshed=tuple(refreshed.values()),
        removed=tuple(removed.values()),
    )


def _unregister_all(
    aor: str,
    live: list[Binding],
    call_id: str,
    cseq: int,
    header_expires: int | None,
    count: int,
) -> RegisterOutcome:
    """``Contact: *`` with ``Expires: 0`` removes every binding (RFC 3261 §10.3 step 6)."""
    if count != 1 or header_expires != 0:
        raise RegistrarError("Contact: * needs Expires: 0 and no other Contact", status=400)
    kept = [b for b in live if b.call_id == call_id and cseq <= b.cseq]
    if kept:
        raise RegistrarError("CSeq not higher than the stored binding's", status=500)
    return RegisterOutcome(aor, (), removed=tuple(live))


def sweep(
    bindings: Sequence[Binding], now: float
) -> tuple[tuple[Binding, ...], tuple[Binding, ...]]:
    """Split bindings into (still live, expired) at ``now``."""
    live = tuple(b for b in bindings if b.expires_at > now)
    expired = tuple(b for b in bindings if b.expires_at <= now)
    return live, expired


def rebuild(bindings: Sequence[Binding], now: float) -> dict[str, tuple[Binding, ...]]:
    """Group persisted bindings by AOR, dropping the expired ones (state after restart)."""
    out: dict[str, list[Binding]] = {}
    for binding in sweep(bindings, now)[0]:
        out.setdefault(binding.aor, []).append(binding)
    return {aor: _order(items) for aor, items in out.items()}
