"""SDP the adapter makes itself: "no media" offers/answers aimed at the discard port, and
answers to re-offers that keep the leg's current media address.

Where it sits: used by ``sip_media.adapter`` when no media engine supplies SDP
(benchmarks, signalling-only interop tests), and for remote re-INVITEs (hold/resume),
which are answered at once with the address and port the leg already uses.
Offer/answer itself is ``sip.sdp`` (RFC 3264): same m-lines in order, a common codec,
the direction mirrored so a hold offer (sendonly) is answered recvonly. Raises
``SdpError`` (488) when nothing fits.
"""

from __future__ import annotations

import itertools

from sip_media.sip.errors import SdpError
from sip_media.sip.sdp import (
    PCMA,
    PCMU,
    LocalMedia,
    SessionDescription,
    make_offer,
    negotiate,
)

DISCARD_PORT = 9
_sessions = itertools.count(1)


def _local(host: str) -> LocalMedia:
    return LocalMedia(address=host, port=DISCARD_PORT, session_id=str(next(_sessions)))


def offer_sdp(host: str = "127.0.0.1") -> bytes:
    return make_offer(_local(host)).serialize()


def answer_sdp(offer: bytes | None, previous: bytes | None, host: str = "127.0.0.1") -> bytes:
    """Answer ``offer`` (or make an offer when there is none, e.g. INVITE without SDP)."""
    if not offer:
        return previous or offer_sdp(host)
    before: SessionDescription | None = None
    if previous:
        try:
            before = SessionDescription.parse(previous)
        except SdpError:
            before = None
    return negotiate(SessionDescription.parse(offer), _local(host), before).serialize()


def answer_keeping_media(offer: bytes | None, previous: bytes | None) -> bytes | None:
    """Answer a re-offer with the media address/port of our ``previous`` SDP (RFC 3264
    §8): codecs and direction are negotiated again, so a hold offer gets recvonly."""
    if not previous:
        return answer_sdp(offer, None)
    if not offer:
        return previous  # offerless re-INVITE: re-offer what we had
    before = SessionDescription.parse(previous)
    audio = next((m for m in before.media if m.media == "audio" and m.port), None)
    conn = before.connection_of(audio) if audio is not None else before.connection
    if audio is None or conn is None:
        return answer_sdp(offer, previous)
    names = [audio.rtpmaps[int(f)].encoding.upper() for f in audio.formats if f.isdigit()
             and int(f) in audio.rtpmaps]  # fmt: skip
    codecs = tuple(
        sorted((PCMU, PCMA), key=lambda c: names.index(c.name) if c.name in names else 9)
    )
    local = LocalMedia(
        address=conn.address,
        port=audio.port,
        codecs=codecs,  # keep the codec in use first: hold must not switch codecs
        username=before.origin.username,
        session_id=before.origin.session_id,
    )
    return negotiate(SessionDescription.parse(offer), local, before).serialize()
