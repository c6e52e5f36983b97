"""The SIP/media seam keeps its directions apart: ``rwi.sip_ingest`` takes reports in and
sends nothing back (everything outbound is ``rwi.sip_executor``'s, wired by
``rwi.runtime``)."""

from __future__ import annotations

import ast
import asyncio
import inspect
from collections.abc import Callable
from pathlib import Path

from rwi import sip_ingest
from rwi.dialplan import parse_routes
from rwi.domain.model import Observation
from rwi.sip_executor import release_held_ack
from rwi.sip_ingest import message_filter
from rwi.sip_settings import SipSettings
from sip_media.call_types import LegAnswered, LegEnded, LegObservation
from sip_media.calls import CallLegs
from sip_media.media.config import MediaConfig
from sip_media.sip.config import EngineConfig

INGEST = ast.parse(Path(sip_ingest.__file__).read_text(encoding="utf-8"))


def _is_legs(node: ast.expr) -> bool:
    """``legs``, ``self.legs`` or ``self._legs``."""
    if isinstance(node, ast.Name):
        return node.id == "legs"
    return isinstance(node, ast.Attribute) and node.attr in ("legs", "_legs")


def test_the_ingest_only_subscribes_to_the_legs() -> None:
    on_legs = {
        node.attr
        for node in ast.walk(INGEST)
        if isinstance(node, ast.Attribute) and _is_legs(node.value)
    }
    assert on_legs == {"subscribe"}
    methods = {
        name
        for name, _ in inspect.getmembers(CallLegs, inspect.isfunction)
        if not name.startswith("_")
    }
    assert {"confirm", "answer", "reject", "dial", "subscribe"} <= methods  # the walk sees them
    called = {
        node.func.attr
        for node in ast.walk(INGEST)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    # ``start`` and ``close`` are the ingest's own life cycle, not the legs'
    assert called & (methods - {"subscribe", "start", "close"}) == set()
    imported = {node.module for node in ast.walk(INGEST) if isinstance(node, ast.ImportFrom)} | {
        alias.name
        for node in ast.walk(INGEST)
        if isinstance(node, ast.Import)
        for alias in node.names
    }
    assert "sip_media.calls" not in imported  # typed against ``LegReports``, not the class


SETTINGS = SipSettings(
    engine=EngineConfig(udp=[]),
    media=MediaConfig(sounds_dir=Path("sounds"), recordings_dir=Path("recordings")),
    routes=parse_routes([{"name": "sales", "match_user": "^2000$", "context": "sales"}], "t"),
    header_whitelist=frozenset(),
)


def test_a_page_is_taken_only_when_the_dialplan_routes_it_to_a_context() -> None:
    accepts = message_filter(SETTINGS)
    assert accepts("sip:2000@pbx", "<sip:100@x>;tag=1", "<sip:2000@pbx>")
    assert not accepts("sip:2001@pbx", "<sip:100@x>;tag=1", "<sip:2001@pbx>")


class _Legs:
    """Records what is asked of it, like the ``CallLegs`` the runtime wires in."""

    def __init__(self) -> None:
        self.confirmed: list[str] = []

    def confirm(self, leg_id: str) -> None:
        self.confirmed.append(leg_id)


def test_the_executor_side_releases_a_held_ack_once_the_answer_is_stored() -> None:
    legs = _Legs()
    stored = release_held_ack(legs)  # type: ignore[arg-type]
    stored(LegEnded(leg_id="out-1", by="remote", sip_status=200, reason="bye"))
    assert legs.confirmed == []
    stored(LegAnswered(leg_id="out-1"))
    assert legs.confirmed == ["out-1"]


class _Reports:
    def __init__(self) -> None:
        self.callbacks: list[Callable[[LegObservation], None]] = []

    def subscribe(self, callback: Callable[[LegObservation], None]) -> Callable[[], None]:
        self.callbacks.append(callback)
        return lambda: None


class _Sink:
    def __init__(self) -> None:
        self.futures: list[asyncio.Future[list[int]]] = []
        self.queued = asyncio.Event()

    async def wait_healthy(self) -> None:
        return None

    def observe_soon(self, observation: Observation) -> asyncio.Future[list[int]]:
        future: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self.futures.append(future)
        self.queued.set()
        return future


async def test_the_ingest_tells_stored_of_a_report_once_its_observation_settles() -> None:
    told: list[str] = []
    settled = asyncio.Event()

    def stored(obs: LegObservation) -> None:
        told.append(obs.leg_id)
        settled.set()

    reports, sink = _Reports(), _Sink()
    ingest = sip_ingest.SipIngest(reports, SETTINGS, stored=stored)
    ingest.start(sink)
    reports.callbacks[0](LegAnswered(leg_id="out-1"))
    await asyncio.wait_for(sink.queued.wait(), 5)
    assert told == []  # not before the observation is stored (or fails to be)
    sink.futures[0].set_exception(OSError("log unreachable"))
    await asyncio.wait_for(settled.wait(), 5)
    assert told == ["out-1"]  # stored or not, the call goes on
    assert isinstance(sink.futures[0].exception(), OSError)
    await ingest.close()
