"""SDP and header glue for the call-leg layer: media-leg parameters <-> SDP bodies.

Where it sits: between :mod:`sip_media.calls` and the RFC 3264 helpers of
:mod:`sip_media.sip.sdp`. It builds our offers and answers around a media leg's local
RTP address, turns a completed offer/answer into the parameters of a media
``CreateLeg``/``UpdateLeg`` (:class:`MediaParams`), and turns an inbound INVITE into
its ``LegOffered`` report (caller, callee, headers, trunk). Pure functions, no I/O;
bad input raises ``SdpError`` (400/488) or is reported as empty strings, nothing else.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace

from sip_media.adapter_types import IncomingCall
from sip_media.call_types import LegOffered
from sip_media.media.api import Direction
from sip_media.sip.errors import SdpError, SipError
from sip_media.sip.sdp import (
    ChosenAudio,
    LocalMedia,
    SessionDescription,
    chosen_audio,
    make_offer,
    negotiate,
)
from sip_media.sip.uri import NameAddr, SipURI

PLACEHOLDER_PORT = 9  # only used to learn what we would choose before a leg exists
G711_BY_NAME = {"pcmu": 0, "pcma": 8}
_DIRECTIONS: dict[str, Direction] = {
    "sendrecv": "sendrecv",
    "sendonly": "sendonly",
    "recvonly": "recvonly",
    "inactive": "inactive",
}
_sessions = itertools.count(1)


@dataclass(frozen=True, slots=True)
class MediaParams:
    """What the media engine needs from a negotiated audio stream.

    ``remote`` is ``None`` when the peer gave no usable address (port 0, ``0.0.0.0``
    hold): the leg keeps its previous destination.
    """

    remote: tuple[str, int] | None
    payload_type: int
    telephone_event_pt: int | None
    direction: Direction


def local_media(address: str, port: int, session_id: str | None = None) -> LocalMedia:
    """Our side of one audio stream: PCMU, PCMA and telephone-event (RFC 4733), 20 ms."""
    return LocalMedia(address=address, port=port, session_id=session_id or new_session_id())


def new_session_id() -> str:
    """An o= session id unique within this process."""
    return str(next(_sessions))


def parse(body: bytes) -> SessionDescription:
    """Parse an SDP body (``SdpError`` 400 when malformed)."""
    return SessionDescription.parse(body)


def offer(local: LocalMedia, previous: SessionDescription | None = None) -> SessionDescription:
    """Our offer for a media leg (initial INVITE, or an offer in a 2xx/re-INVITE answer)."""
    return make_offer(local, previous)


def answer(
    remote_offer: SessionDescription,
    local: LocalMedia,
    previous: SessionDescription | None = None,
) -> SessionDescription:
    """Our RFC 3264 answer (``SdpError`` 488 when no audio stream is usable)."""
    return negotiate(remote_offer, local, previous)


def plan_answer(remote_offer: SessionDescription) -> MediaParams:
    """What a leg answering ``remote_offer`` will use, before its port is known."""
    placeholder = local_media("127.0.0.1", PLACEHOLDER_PORT, "0")
    return params(answer(remote_offer, placeholder), remote_offer)


def params(local: SessionDescription, remote: SessionDescription) -> MediaParams:
    """Media-leg parameters once both SDPs of an offer/answer exchange are known."""
    return from_chosen(chosen_audio(local, remote))


def keep_remote(params: MediaParams, previous: MediaParams | None) -> MediaParams:
    """``params`` with the previous remote address when the new SDP gave none (hold)."""
    return replace(params, remote=previous.remote if previous is not None else None)


def from_chosen(chosen: ChosenAudio) -> MediaParams:
    """Map RFC 3264's outcome to media-leg parameters (G.711 only: PCMU 0 / PCMA 8)."""
    pt = chosen.codec.payload_type
    if pt not in (0, 8):
        mapped = G711_BY_NAME.get(chosen.codec.encoding.lower())
        if mapped is None:
            raise SdpError(f"Unsupported codec {chosen.codec.encoding}", status=488)
        pt = mapped
    host = chosen.remote_address
    usable = bool(chosen.remote_port) and host not in ("0.0.0.0", "::", "")
    return MediaParams(
        remote=(host, chosen.remote_port) if usable else None,
        payload_type=pt,
        telephone_event_pt=chosen.telephone_event_pt,
        direction=_DIRECTIONS.get(chosen.direction, "sendrecv"),
    )


# ------------------------------------------------------------------ inbound INVITE
def _name_addr(header: str) -> NameAddr | None:
    try:
        return NameAddr.parse(header)
    except (SipError, ValueError, IndexError):
        return None


def _user(uri: SipURI) -> str:
    if uri.user is not None:
        return uri.user
    if uri.scheme == "tel" and uri.opaque:
        return uri.opaque.split(";", 1)[0]
    return ""


def party(header: str) -> tuple[str, str | None]:
    """User part and display name of a From/To header ("" and None if unparsable)."""
    addr = _name_addr(header)
    if addr is None:
        return "", None
    return _user(addr.uri), addr.display_name


def uri_user(uri: str) -> str:
    """User part of a Request-URI ("" if unparsable or absent)."""
    try:
        return _user(SipURI.parse(uri))
    except (SipError, ValueError, IndexError):
        return ""


def offered(call: IncomingCall, trunks: dict[str, str]) -> LegOffered:
    """The ``LegOffered`` report of an inbound INVITE; ``trunks``: name -> proxy host."""
    caller, caller_name = party(call.from_)
    callee, _ = party(call.to)
    return LegOffered(
        call.leg_id,
        caller=caller,
        callee=callee,
        request_uri_user=uri_user(call.request_uri),
        caller_name=caller_name,
        request_uri=call.request_uri,
        headers=header_map(call),
        source=call.source,
        trunk=next((name for name, host in trunks.items() if host == call.source[0]), None),
        user=call.user,
        replaces=call.replaces,
    )


def header_map(call: IncomingCall) -> dict[str, str]:
    """Lower-case header name -> value (repeated headers joined with ", ")."""
    out: dict[str, str] = {}
    for name, value in call.headers:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out
