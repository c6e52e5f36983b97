"""The adapter's built-in "no media" SDP: valid offers/answers aimed at the discard port.

Where it sits: used by ``sip_media.adapter`` when no media engine supplies SDP
(benchmarks, signalling-only interop tests). Offer/answer itself is ``sip.sdp``
(RFC 3264): same m-lines in order, a common codec, the direction mirrored so a hold
offer (sendonly) is answered recvonly. Raises ``SdpError`` (488) when nothing fits.
"""

from __future__ import annotations

import itertools

from sip_media.sip.errors import SdpError
from sip_media.sip.sdp import LocalMedia, SessionDescription, make_offer, negotiate

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
