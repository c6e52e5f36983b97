"""Effects: what a durable event makes happen on SIP and media, as plain values.

Features plan them purely (``Feature.plans``, composed by ``rwi.domain.plan``): from the
state just before an event and the event, the effects it requires (dial, answer,
bridge, play, arm a timer...). The service plans while it decides and hands the effects
to the executor (``rwi.executor``) only after the events are stored.

Most effects are fire-and-forget: a failure comes back as ``effect.failed``. A *request
effect* (``Refer``, ``SipRequest``, ``EndStaleDialog``) asks the far end something: its result comes
back as an observation of its own, logged like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# --- the effects ---------------------------------------------------------------------


@dataclass(frozen=True)
class Dial:
    leg_id: str
    target: str
    caller_id: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()
    timeout_secs: float = 60.0


@dataclass(frozen=True)
class Ring:
    leg_id: str


@dataclass(frozen=True)
class Answer:
    leg_id: str


@dataclass(frozen=True)
class Reject:
    leg_id: str
    code: int


@dataclass(frozen=True)
class Hangup:
    leg_id: str


@dataclass(frozen=True)
class Bridge:
    leg_a: str
    leg_b: str


@dataclass(frozen=True)
class Unbridge:
    leg_a: str
    leg_b: str


@dataclass(frozen=True)
class Hold:
    leg_id: str
    music: str | None = None


@dataclass(frozen=True)
class Unhold:
    leg_id: str


@dataclass(frozen=True)
class Play:
    leg_id: str
    playback_id: str
    source: dict[str, Any] = field(default_factory=dict)
    loop: bool = False
    interrupt_on_dtmf: bool = False


@dataclass(frozen=True)
class StopPlay:
    leg_id: str


@dataclass(frozen=True)
class EarlyMedia:
    """``to_leg`` hears ``from_leg`` one way (ringback passed through)."""

    from_leg: str
    to_leg: str


@dataclass(frozen=True)
class StopEarlyMedia:
    from_leg: str
    to_leg: str


@dataclass(frozen=True)
class Refer:
    """REFER the far end of ``leg_id`` to ``target`` (a blind transfer of a bridged leg)."""

    leg_id: str
    target: str


@dataclass(frozen=True)
class SipRequest:
    """A MESSAGE, NOTIFY or OPTIONS in ``leg_id``'s dialog, or a page-mode MESSAGE to
    ``destination`` (no ``leg_id``): its result (the far end's final status, reason,
    round trip) comes back as a ``sip.request.result`` observation naming
    ``request_id``."""

    request_id: str
    method: str
    leg_id: str | None = None
    destination: str | None = None
    content_type: str | None = None
    body: str = ""
    event: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ConferenceAdd:
    """``leg_id`` joins the mix of ``conf_id`` (created on first use): it hears every
    other unmuted member, never itself."""

    conf_id: str
    leg_id: str


@dataclass(frozen=True)
class ConferenceRemove:
    conf_id: str
    leg_id: str


@dataclass(frozen=True)
class ConferenceMute:
    """A muted member still hears the others; nobody hears it."""

    conf_id: str
    leg_id: str
    muted: bool = True


@dataclass(frozen=True)
class Supervise:
    """``supervisor_leg`` monitors ``agent_leg`` in ``mode`` (``listen`` | ``whisper`` |
    ``barge``): a mixing rule around the agent leg, whoever it is connected to; a new
    one for the same supervisor replaces its rule."""

    supervisor_leg: str
    agent_leg: str
    mode: str


@dataclass(frozen=True)
class StopSupervise:
    """End the supervisor's rule (gone already when one of its legs ended)."""

    supervisor_leg: str


@dataclass(frozen=True)
class EndStaleDialog:
    """End the SIP dialog a previous process left live (BYE, CANCEL or a final
    response), from the record it logged; ``answered``: the call was answered."""

    call_id: str
    dialog: dict[str, Any]
    answered: bool


@dataclass(frozen=True)
class StartRecording:
    """Record ``call_id`` (what it says and what it hears, whatever it is bridged to) to
    ``file`` inside the recordings directory; ``mode``: ``mixed`` | ``separate_legs``."""

    recording_id: str
    call_id: str
    file: str
    mode: str = "mixed"
    beep: bool = False
    max_duration_secs: float | None = None


@dataclass(frozen=True)
class StartStream:
    """Stream ``call_id``'s audio to the WebSocket bot at ``url`` (contract §12); ``start``
    is the first frame's fields (stream_id, call_id, sample_rate, tracks, metadata)."""

    stream_id: str
    call_id: str
    url: str
    mode: str = "listen"
    tracks: str = "caller"
    sample_rate: int = 8000
    start: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class StopStream:
    stream_id: str


@dataclass(frozen=True)
class PauseRecording:
    recording_id: str


@dataclass(frozen=True)
class ResumeRecording:
    recording_id: str


@dataclass(frozen=True)
class StopRecording:
    """Finalise a recording; the media side reports it finished (duration, size)."""

    recording_id: str


@dataclass(frozen=True)
class CloseRecordingFile:
    """Make the WAV a previous process left open valid, and report what is on disk."""

    recording_id: str
    path: str


@dataclass(frozen=True)
class StartTimer:
    """Fire a ``timer.fired`` observation after ``seconds`` for the aggregate of
    ``stream_id`` (``call:<id>``, ``queue:<id>``, ``agent:<id>``...): its data names the
    stream, the aggregate's id as ``<kind>_id`` (``call_id``...), ``kind`` and ``since``;
    the feature declaring timers for that stream kind decides what it means."""

    kind: str
    stream_id: str
    seconds: float
    since: str | None = None

    def fired(self) -> dict[str, Any]:
        """The data of the ``timer.fired`` observation."""
        aggregate, _, key = self.stream_id.partition(":")
        data: dict[str, Any] = {f"{aggregate}_id": key, "stream_id": self.stream_id}
        data["kind"] = self.kind
        if self.since is not None:
            data["since"] = self.since
        return data


Effect = (
    Dial
    | Ring
    | Answer
    | Reject
    | Hangup
    | Bridge
    | Unbridge
    | Hold
    | Unhold
    | Play
    | StopPlay
    | EarlyMedia
    | StopEarlyMedia
    | Refer
    | SipRequest
    | ConferenceAdd
    | ConferenceRemove
    | ConferenceMute
    | Supervise
    | StopSupervise
    | EndStaleDialog
    | StartRecording
    | PauseRecording
    | ResumeRecording
    | StopRecording
    | CloseRecordingFile
    | StartStream
    | StopStream
    | StartTimer
)
