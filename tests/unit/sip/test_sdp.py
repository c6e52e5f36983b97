"""SDP parsing/serialisation and RFC 3264 offer/answer for audio."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from sip_media.sip.errors import SdpError
from sip_media.sip.message import parse_message
from sip_media.sip.sdp import (
    PCMA,
    PCMU,
    LocalMedia,
    RtpMap,
    SessionDescription,
    chosen_audio,
    make_offer,
    negotiate,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "rfc4475"

OFFER = (
    b"v=0\r\n"
    b"o=alice 2890844526 2890844526 IN IP4 198.51.100.1\r\n"
    b"s=call\r\n"
    b"c=IN IP4 198.51.100.1\r\n"
    b"t=0 0\r\n"
    b"m=audio 49170 RTP/AVP 8 0 18 96\r\n"
    b"a=rtpmap:96 telephone-event/8000\r\n"
    b"a=fmtp:96 0-15\r\n"
    b"a=ptime:30\r\n"
    b"m=video 51372 RTP/AVP 31\r\n"
    b"a=rtpmap:31 H261/90000\r\n"
)
LOCAL = LocalMedia(address="127.0.0.1", port=40000, session_id="77", username="b2bua")


def test_parse_offer() -> None:
    sdp = SessionDescription.parse(OFFER)
    assert (sdp.origin.username, sdp.origin.version, sdp.origin.address) == (
        "alice",
        2890844526,
        "198.51.100.1",
    )
    assert sdp.session_name == "call" and sdp.connection is not None
    audio, video = sdp.media
    assert (audio.media, audio.port, audio.formats) == ("audio", 49170, ("8", "0", "18", "96"))
    assert audio.rtpmaps[96] == RtpMap(96, "telephone-event", 8000)
    assert audio.rtpmaps[8].encoding == "PCMA" and audio.rtpmaps[18].encoding == "G729"
    assert audio.fmtp(96) == "0-15" and audio.fmtp(8) is None and audio.ptime == 30
    assert audio.direction is None and sdp.direction_of(audio) == "sendrecv"
    assert video.rtpmaps[31].clock_rate == 90000
    assert SessionDescription.parse(sdp.serialize()) == sdp


def test_corpus_sdp_bodies_parse() -> None:
    ipv6 = parse_message((DATA / "rfc5118" / "ipv6-in-sdp.dat").read_bytes())
    sdp = SessionDescription.parse(ipv6.body)
    assert sdp.connection is not None and sdp.connection.addr_type == "IP6"
    assert sdp.connection.address == "2001:db8::20"
    multi = parse_message((DATA / "rfc5118" / "mult-ip-in-sdp.dat").read_bytes())
    sdp = SessionDescription.parse(multi.body)
    assert sdp.connection is None and sdp.session_name == ""
    assert [sdp.connection_of(m).address for m in sdp.media] == ["192.0.2.1", "2001:db8::1"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "body",
    [b"", b"o=x 1 1 IN IP4 h\r\n", b"v=0\r\n", b"v=0\r\no=bad\r\n", b"v=x\r\n",
     b"v=0\r\no=a 1 1 IN IP4 h\r\nm=audio x RTP/AVP 0\r\n", b"v=0\r\nbad line\r\n",
     b"v=0\r\no=a 1 1 IN IP4 h\r\nc=IN IP4\r\n", b"v=0\r\no=a 1 1 IN IP4 h\r\nm=audio 1\r\n"],
)  # fmt: skip
def test_malformed_sdp(body: bytes) -> None:
    with pytest.raises(SdpError) as info:
        SessionDescription.parse(body)
    assert info.value.status == 400


def test_answer_prefers_our_codec_order_and_keeps_offer_payload_numbers() -> None:
    offer = SessionDescription.parse(OFFER)
    answer = negotiate(offer, LOCAL)
    audio, video = answer.media
    # Offer lists PCMA first, but our preference is PCMU.
    assert audio.formats == ("0", "96") and audio.port == 40000
    assert ("rtpmap", "96 telephone-event/8000") in audio.attributes
    assert audio.fmtp(96) == "0-15" and audio.ptime == 20 and audio.direction == "sendrecv"
    assert (video.port, video.formats) == (0, ("31",))  # rejected, same position
    assert answer.connection is not None and answer.connection.address == "127.0.0.1"
    assert answer.origin.username == "b2bua" and answer.origin.session_id == "77"
    pcma_first = negotiate(offer, replace(LOCAL, codecs=(PCMA, PCMU)))
    assert pcma_first.media[0].formats[0] == "8"
    text = answer.serialize()
    assert b"m=audio 40000 RTP/AVP 0 96\r\n" in text and b"m=video 0 RTP/AVP 31\r\n" in text


@pytest.mark.parametrize(
    ("offered", "ours"),
    [("sendrecv", "sendrecv"), ("sendonly", "recvonly"), ("recvonly", "sendonly"),
     ("inactive", "inactive")],
)  # fmt: skip
def test_direction_is_mirrored(offered: str, ours: str) -> None:
    offer = SessionDescription.parse(OFFER + f"a={offered}\r\n".encode())
    # The attribute lands in the video section; put it on audio explicitly instead.
    audio = replace(offer.media[0], attributes=(*offer.media[0].attributes, (offered, None)))
    offer = replace(offer, media=(audio,))
    assert negotiate(offer, LOCAL).media[0].direction == ours


def test_session_level_direction_and_local_hold() -> None:
    body = OFFER.replace(b"t=0 0\r\n", b"t=0 0\r\na=sendonly\r\n")
    offer = SessionDescription.parse(body)
    assert offer.direction_of(offer.media[0]) == "sendonly"
    assert negotiate(offer, LOCAL).media[0].direction == "recvonly"
    holding = replace(LOCAL, direction="sendonly")
    assert negotiate(offer, holding).media[0].direction == "inactive"
    plain = SessionDescription.parse(OFFER)
    assert negotiate(plain, holding).media[0].direction == "sendonly"


def test_legacy_hold_with_null_connection() -> None:
    offer = SessionDescription.parse(OFFER.replace(b"c=IN IP4 198.51.100.1", b"c=IN IP4 0.0.0.0"))
    assert offer.connection is not None and offer.connection.is_null
    assert offer.direction_of(offer.media[0]) == "sendonly"
    assert negotiate(offer, LOCAL).media[0].direction == "recvonly"


def test_no_common_codec_is_488() -> None:
    offer = SessionDescription.parse(OFFER.replace(b"RTP/AVP 8 0 18 96", b"RTP/AVP 18"))
    with pytest.raises(SdpError) as info:
        negotiate(offer, LOCAL)
    assert info.value.status == 488
    srtp = SessionDescription.parse(OFFER.replace(b"audio 49170 RTP/AVP", b"audio 1 RTP/SAVP"))
    with pytest.raises(SdpError):
        negotiate(srtp, LOCAL)
    disabled = SessionDescription.parse(OFFER.replace(b"audio 49170", b"audio 0"))
    with pytest.raises(SdpError):
        negotiate(disabled, LOCAL)


def test_only_first_audio_stream_accepted_and_dtmf_optional() -> None:
    body = OFFER.replace(b"m=video 51372 RTP/AVP 31\r\n", b"m=audio 5000 RTP/AVP 0\r\n")
    answer = negotiate(SessionDescription.parse(body), replace(LOCAL, telephone_event_pt=None))
    assert answer.media[0].formats == ("0",) and answer.media[1].port == 0
    assert not any(k == "fmtp" for k, _ in answer.media[0].attributes)


def test_make_offer_and_session_version_increments() -> None:
    first = make_offer(LOCAL)
    audio = first.media[0]
    assert audio.formats == ("0", "8", "101") and audio.fmtp(101) == "0-16"
    assert first.origin.version == 0 and audio.direction == "sendrecv"
    same = make_offer(LOCAL, previous=first)
    assert same.origin.version == 0  # unchanged content keeps the version (RFC 3264 §8)
    parsed_prev = SessionDescription.parse(first.serialize())
    hold = make_offer(replace(LOCAL, direction="sendonly"), previous=parsed_prev)
    assert hold.origin.version == 1 and hold.media[0].direction == "sendonly"
    resume = make_offer(LOCAL, previous=hold)
    assert resume.origin.version == 2 and resume.origin.session_id == "77"
    answer1 = negotiate(SessionDescription.parse(OFFER), LOCAL)
    reanswer = negotiate(SessionDescription.parse(OFFER), replace(LOCAL, port=40002), answer1)
    assert reanswer.origin.version == answer1.origin.version + 1


def test_chosen_audio_both_roles() -> None:
    offer = SessionDescription.parse(OFFER)
    answer = negotiate(offer, LOCAL)
    as_answerer = chosen_audio(answer, offer)
    assert (as_answerer.remote_address, as_answerer.remote_port) == ("198.51.100.1", 49170)
    assert as_answerer.codec.encoding == "PCMU" and as_answerer.telephone_event_pt == 96
    assert as_answerer.direction == "sendrecv" and as_answerer.ptime == 30
    our_offer = make_offer(LOCAL)
    peer_answer = negotiate(our_offer, LocalMedia("127.0.0.2", 6000, codecs=(PCMA,)))
    as_offerer = chosen_audio(our_offer, peer_answer)
    assert as_offerer.codec.encoding == "PCMA" and as_offerer.remote_port == 6000
    assert as_offerer.telephone_event_pt == 101
    rejected = replace(peer_answer, media=(replace(peer_answer.media[0], port=0),))
    with pytest.raises(SdpError):
        chosen_audio(our_offer, rejected)
