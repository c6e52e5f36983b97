"""SIP requests decided purely: what ``sip.message``/``sip.notify``/``sip.options_ping``
log, plan and wait for, and what a far end's in-dialog (or routed out-of-dialog)
MESSAGE, NOTIFY and INFO become, for whom."""

from __future__ import annotations

import pytest

from rwi import protocol
from rwi.domain.delivery import ResumeFilter, recipients
from rwi.domain.effects import SipRequest
from rwi.domain.model import Command, Emit, Policy
from rwi.domain.plan import plan
from rwi.domain.sip_requests import TIMED_OUT
from rwi.errors import RwiError
from tests.unit.rwi.world import SCOPES, World, outbound_answered


def send(w: World, cid: str, action: str, **params: object) -> tuple[object, list[Emit]]:
    """Decide ``action`` from the wire's params; the decision and its logged events."""
    from rwi.domain import decide

    w.n += 1
    params = protocol.resolve(action).validate(params)
    command = Command(action, f"a{w.n}", params, cid, cid, SCOPES, nonce=f"n{w.n}")
    decision = decide(w.state, command, w.now)
    effects = [e for event in decision.events for e in plan(w.state, event)]
    w.apply(decision.events)
    return decision, [*decision.events, *effects]  # type: ignore[list-item]


def test_scenario_10_requests_wait_for_the_far_ends_answer() -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    decision, out = send(
        w, "app", "sip.message", call_id="leg_a", content_type="text/plain",
        body="Your ticket number is 12345", extra_headers={"X-Ticket": "12345"},
    )  # fmt: skip
    sent, effect = out
    assert isinstance(sent, Emit) and sent.type == "sip.request.sent"
    assert sent.stream_id == "call:leg_a"
    assert effect == SipRequest(
        request_id=sent.data["request_id"], method="MESSAGE", leg_id="leg_a",
        content_type="text/plain", body="Your ticket number is 12345",
        extra_headers=(("X-Ticket", "12345"),),
    )  # fmt: skip
    awaits = decision.awaits  # type: ignore[attr-defined]
    assert awaits.observation == "sip.request.result"
    assert awaits.match == (("request_id", sent.data["request_id"]),)
    assert awaits.fields == ("status", "reason", "rtt_ms")
    assert awaits.timeout_data == TIMED_OUT == {"status": 408, "reason": "Request Timeout",
                                                "rtt_ms": None}  # fmt: skip

    _, out = send(
        w, "app", "sip.notify", call_id="leg_a", event="check-sync",
        content_type="application/simple-message-summary", body="Messages-Waiting: yes",
    )  # fmt: skip
    notify = out[1]
    assert isinstance(notify, SipRequest) and notify.method == "NOTIFY"
    assert (notify.event, notify.content_type) == (
        "check-sync",
        "application/simple-message-summary",
    )
    _, out = send(w, "app", "sip.options_ping", call_id="leg_a")
    ping = out[1]
    assert isinstance(ping, SipRequest) and (ping.method, ping.leg_id) == ("OPTIONS", "leg_a")

    # the far end's answer is logged on the call's stream beside the request
    assert w.see(
        "sip.request.result", request_id=ping.request_id, call_id="leg_a", method="OPTIONS",
        status=200, reason="OK", rtt_ms=1.5,
    ) == ["sip.request.answered"]  # fmt: skip
    assert w.log[-1].stream_id == "call:leg_a" and w.log[-1].data["status"] == 200
    assert w.replayed() == w.state.snapshot()


def test_a_request_needs_an_answered_call_of_ones_own() -> None:
    w = World()
    w.open("app")
    w.open("other")
    w.do("app", "call.originate", call_id="c", destination="sip:c@local")
    with pytest.raises(RwiError) as info:
        send(w, "app", "sip.options_ping", call_id="c")
    assert info.value.code == "invalid_state" and "dialing" in info.value.message
    outbound_answered(w, "app", "d")
    w.do("app", "call.hold", call_id="d")
    decision, _ = send(w, "app", "sip.options_ping", call_id="d")  # held is answered
    assert decision.awaits is not None  # type: ignore[attr-defined]
    with pytest.raises(RwiError) as info:
        send(w, "other", "sip.message", call_id="d", body="x")
    assert info.value.code == "already_owned"


@pytest.mark.parametrize(
    "params",
    [
        {"body": "x"},
        {"call_id": "d", "destination": "sip:1001@local", "body": "x"},
        {"destination": "1001", "body": "x"},
        {"call_id": "d", "body": "x", "extra_headers": {"Subject": "no"}},
    ],
)
def test_invalid_message_params(params: dict[str, object]) -> None:
    w = World()
    w.open("app")
    outbound_answered(w, "app", "d")
    with pytest.raises(RwiError) as info:
        send(w, "app", "sip.message", **params)
    assert info.value.code == "invalid_params"


def test_a_page_mode_message_to_a_destination() -> None:
    w = World()
    w.open("app")
    decision, out = send(w, "app", "sip.message", destination="sip:1001@local", body="hi")
    sent, effect = out
    assert decision.awaits is not None  # type: ignore[attr-defined]
    assert isinstance(sent, Emit) and sent.stream_id.startswith("sip:req-")
    assert isinstance(effect, SipRequest)
    assert (effect.leg_id, effect.destination, effect.method) == (None, "sip:1001@local",
                                                                  "MESSAGE")  # fmt: skip
    assert w.see(
        "sip.request.result", request_id=effect.request_id, method="MESSAGE", status=404,
        reason="Not Found", rtt_ms=None,
    ) == ["sip.request.answered"]  # fmt: skip
    assert w.log[-1].stream_id == sent.stream_id


def test_received_requests_go_to_the_legs_owner() -> None:
    w = World()
    w.open("app", "sales")
    w.open("watcher", "sales")
    outbound_answered(w, "app", "leg_a")
    assert w.see(
        "sip.message.in", call_id="leg_a", method="MESSAGE", content_type="text/plain",
        body="hello",
    ) == ["sip.message.received"]  # fmt: skip
    assert w.log[-1].data == {"call_id": "leg_a", "content_type": "text/plain", "body": "hello"}
    assert recipients(w.state, w.log[-1]) == {"app"}
    assert w.see(
        "sip.message.in", call_id="leg_a", method="INFO", content_type="application/x-thing",
        body="k=v",
    ) == ["sip.info.received"]  # fmt: skip
    assert w.see(
        "sip.notify.in", call_id="leg_a", event="check-sync", content_type="text/plain",
        body="", subscription_state="active",
    ) == ["sip.notify.received"]  # fmt: skip
    assert w.log[-1].data["event"] == "check-sync"
    assert w.see("sip.message.in", call_id="gone", method="MESSAGE", body="x") == []
    resume = ResumeFilter(w.state, "app")
    assert [e.type for e in w.log if resume(e) and e.type.endswith(".received")] == [
        "sip.message.received", "sip.info.received", "sip.notify.received",
    ]  # fmt: skip
    assert not [e for e in w.log if ResumeFilter(w.state, "watcher")(e)
                and e.type.endswith(".received")]  # fmt: skip


def test_an_out_of_dialog_message_goes_to_its_contexts_subscribers() -> None:
    w = World()
    w.open("a", "sales")
    w.open("b", "support")
    assert w.see(
        "sip.message.in", context="sales", route="sales-line", **{"from": "alice", "to": "2000"},
        content_type="text/plain", body="call me",
    ) == ["sip.message.received"]  # fmt: skip
    event = w.log[-1]
    assert event.data == {"context": "sales", "from": "alice", "to": "2000",
                          "content_type": "text/plain", "body": "call me"}  # fmt: skip
    assert recipients(w.state, event) == {"a"}
    assert ResumeFilter(w.state, "a")(event) and not ResumeFilter(w.state, "b")(event)


@pytest.mark.parametrize(("t1", "backstop"), [(0.5, 40.0), (0.05, 11.2), (2.0, 136.0)])
def test_the_reply_waits_for_timer_f_of_the_configured_t1(t1: float, backstop: float) -> None:
    """The reply's own timeout outlasts the SIP side's Timer F (64 x T1) whatever T1 is
    configured, so the client gets the SIP side's logged 408, not the backstop's."""
    w = World(Policy(sip_t1_secs=t1))
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    for action, params in (
        ("sip.options_ping", {"call_id": "leg_a"}),
        ("sip.message", {"destination": "sip:1001@local", "body": "hi"}),
    ):
        decision, _ = send(w, "app", action, **params)
        awaits = decision.awaits  # type: ignore[attr-defined]
        assert awaits.timeout_secs == pytest.approx(backstop)
        assert awaits.timeout_secs > 64 * t1


class EndedLegs:
    """``CallLegs`` whose leg has ended by the time the request runs: ``request`` goes
    through the real ``RequestOps`` over no live legs."""

    def __init__(self) -> None:
        from sip_media.call_media import LegMedia, RequestOps

        self.ops = RequestOps(LegMedia(None, None, {}), None)  # type: ignore[arg-type]

    async def request(self, leg_id: str, method: str, **options: object) -> object:
        return await self.ops.request(leg_id, method, **options)  # type: ignore[arg-type]


async def test_a_leg_gone_before_its_request_went_out_is_answered_481() -> None:
    """The call was answered when ``sip.options_ping`` was decided, its leg ended before
    the request ran: the reply and the log say 481, with no round trip."""
    import asyncio
    from types import SimpleNamespace

    from rwi.domain.model import Observation
    from rwi.pending_replies import PendingReplies
    from rwi.sip_executor import sip_executor

    w = World()
    w.open("app")
    outbound_answered(w, "app", "leg_a")
    decision, out = send(w, "app", "sip.options_ping", call_id="leg_a")
    effect = out[1]
    assert isinstance(effect, SipRequest)
    replies = PendingReplies()
    got: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
    replies.expect(decision.awaits, {}, got.set_result)  # type: ignore[attr-defined]
    seen: asyncio.Queue[Observation] = asyncio.Queue()
    settings = SimpleNamespace(engine=SimpleNamespace(trunks={}))
    executor = sip_executor(EndedLegs(), settings)  # type: ignore[arg-type]
    executor.start(seen.put)
    try:
        executor.submit([effect])
        result = await asyncio.wait_for(seen.get(), 5)
    finally:
        await executor.close()
    assert result.type == "sip.request.result"
    assert w.see(result.type, **result.data) == ["sip.request.answered"]
    answered = w.log[-1].data
    assert (answered["status"], answered["rtt_ms"]) == (481, None)
    replies.observed(result)
    reply = await asyncio.wait_for(got, 1)
    assert (reply["status"], reply["rtt_ms"]) == (481, None)
    assert "no live leg 'leg_a'" in str(reply["reason"])
