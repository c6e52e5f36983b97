"""Pure checks of the call-leg SDP/header glue (beside the SIPp tests of the same paths):
hostile or odd input never raises anything but ``SdpError``."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sip_media import call_sdp
from sip_media.adapter_types import IncomingCall
from sip_media.sip.errors import SdpError
from sip_media.sip.sdp import SessionDescription

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n"
    "a=fmtp:101 0-15\r\n{extra}"
)


def offer(extra: str = "", body: str = OFFER) -> SessionDescription:
    return call_sdp.parse(body.format(extra=extra).encode())


def test_answer_plan_follows_the_offer_order_and_events() -> None:
    plan = call_sdp.plan_answer(offer())
    assert plan == call_sdp.MediaParams(("127.0.0.1", 40000), 0, 101, "sendrecv")
    local = call_sdp.local_media("127.0.0.1", 20000)
    answer = call_sdp.answer(offer(), local)
    assert b"m=audio 20000 RTP/AVP 0 101" in answer.serialize()
    assert call_sdp.params(answer, offer()) == plan


def test_hold_offers_keep_the_remote_and_mirror_direction() -> None:
    held = offer("a=sendonly\r\n", OFFER.replace("c=IN IP4 127.0.0.1", "c=IN IP4 0.0.0.0"))
    plan = call_sdp.plan_answer(held)
    assert plan.remote is None and plan.direction == "recvonly"
    before = call_sdp.plan_answer(offer())
    assert call_sdp.keep_remote(plan, before).remote == ("127.0.0.1", 40000)


def test_dynamic_g711_payload_maps_to_static_and_other_codecs_are_refused() -> None:
    dyn = OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 96 101") + "a=rtpmap:96 PCMA/8000\r\n"
    assert call_sdp.plan_answer(offer(body=dyn)).payload_type == 8
    with pytest.raises(SdpError) as info:
        call_sdp.plan_answer(offer(body=OFFER.replace("RTP/AVP 8 0 101", "RTP/AVP 18")))
    assert info.value.status == 488


@pytest.mark.parametrize(
    ("header", "user", "name"),
    [
        ('"Alice" <sip:alice@example.com>;tag=1', "alice", "Alice"),
        ("<tel:+15551234;phone-context=x>", "+15551234", None),
        ("sip:bob@h;tag=2", "bob", None),
        ("<sip:h>", "", None),
        ("garbage <<<", "", None),
        ("", "", None),
        ('"unterminated <sip:a@b>', "", None),
    ],
)
def test_party_of_odd_headers(header: str, user: str, name: str | None) -> None:
    assert call_sdp.party(header) == (user, name)


@given(st.text(max_size=200))
def test_header_helpers_never_raise(text: str) -> None:
    call_sdp.party(text)
    call_sdp.uri_user(text)


@given(st.binary(max_size=400))
def test_sdp_parsing_raises_only_sdp_errors(data: bytes) -> None:
    with contextlib.suppress(SdpError):
        call_sdp.plan_answer(call_sdp.parse(data))


def test_offered_report_joins_repeated_headers_and_names_the_trunk() -> None:
    call = IncomingCall(
        "in-1",
        request_uri="sip:100@127.0.0.1",
        from_='"Carol" <sip:carol@10.0.0.1>;tag=a',
        to="<sip:100@127.0.0.1>",
        headers=(("Via", "a"), ("via", "b"), ("X-Id", "7")),
        sdp=None,
        source=("127.0.0.9", 5060),
    )
    report = call_sdp.offered(call, {"itsp": "127.0.0.9"})
    assert (report.caller, report.caller_name, report.callee) == ("carol", "Carol", "100")
    assert report.headers == {"via": "a, b", "x-id": "7"}
    assert report.trunk == "itsp" and report.request_uri_user == "100"
