"""Route sets (Record-Route, §12.1) and target resolution (local users, trunks, URIs)."""

from __future__ import annotations

import pytest

from sip_media.sip.routing import RouteError, TrunkConfig
from tests.unit.sip_stack.harness import SDP, Harness, invite


def test_uas_dialog_keeps_record_route_and_routes_bye_through_it(h: Harness) -> None:
    rr = "Record-Route: <sip:127.0.0.2:5080;lr>\nRecord-Route: <sip:127.0.0.3:5090;lr>\n"
    h.inject(invite(sdp=SDP, extra=rr))
    inv = h.sessions[0]
    inv.answer(SDP.encode())  # type: ignore[attr-defined]
    ok = h.take()[-1]
    assert ok.header_list("record-route") == ["<sip:127.0.0.2:5080;lr>", "<sip:127.0.0.3:5090;lr>"]
    h.inject(invite(method="ACK", branch="z9hG4bKack", to_tag=ok.to_tag))
    inv.hangup()  # type: ignore[attr-defined]
    dest = h.wire.sent[-1][1]
    assert dest == ("127.0.0.2", 5080)  # loose routing: first Route
    bye = h.sent()[-1]
    assert bye.method == "BYE" and bye.ruri == "sip:bob@127.0.0.1:5070"  # the remote target
    assert bye.header_list("route") == ["<sip:127.0.0.2:5080;lr>", "<sip:127.0.0.3:5090;lr>"]


def test_resolve_static_contact_trunk_and_plain_uri(h: Harness) -> None:
    config = h.engine.config
    config.static_contacts["desk"] = "sip:desk@127.0.0.1:5099"
    config.trunks["itsp"] = TrunkConfig("itsp", ("127.0.0.1", 5065), "u", "p", from_user="+1555")
    local = h.engine.resolve("sip:desk@local")
    assert (local.request_uri, local.address) == ("sip:desk@127.0.0.1:5099", ("127.0.0.1", 5099))
    trunk = h.engine.resolve("sip:+4930123@itsp")
    assert trunk.request_uri == "sip:+4930123@127.0.0.1:5065"
    assert (trunk.address, trunk.username, trunk.from_user) == (("127.0.0.1", 5065), "u", "+1555")
    plain = h.engine.resolve("sip:bob@127.0.0.1:5070;transport=tcp")
    assert (plain.address, plain.transport) == (("127.0.0.1", 5070), "TCP")


def test_unknown_local_user_is_404(h: Harness) -> None:
    with pytest.raises(RouteError) as err:
        h.engine.resolve("sip:nobody@local")
    assert err.value.status == 404
