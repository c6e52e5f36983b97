"""The control surface of the media engine: effects in, results and observations out.

Where it sits: the SIP adapter turns SDP into :class:`CreateLeg` / :class:`UpdateLeg`
parameters and call-control effects into the other effect types; the engine (in
process or in worker processes) applies them and answers with a result
(:class:`LegCreated`, :class:`PlaybackStarted`, :class:`RecordingStarted` or
:class:`Ack`), then later reports :data:`Observation` objects.  Everything here is a
frozen, picklable dataclass and knows nothing of SIP.

Ids of playbacks, recordings and supervisions may be given by the caller (event-sourced
call control wants deterministic ids); otherwise a random one is generated.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

Direction = Literal["sendrecv", "sendonly", "recvonly", "inactive"]
RecordMode = Literal["mixed", "separate"]
SuperviseMode = Literal["listen", "whisper", "barge"]
#: why a recording ended: ``StopRecord``, its ``max_duration_s``, its leg destroyed, or
#: the engine closing
RecordingEndReason = Literal["stop", "max_duration", "leg_gone", "closed"]
ToneKind = Literal["ringback", "beep", "silence", "tone"]
StreamTracks = Literal["caller", "peer", "both"]


def new_id() -> str:
    """A random id for playbacks, recordings and supervisions."""
    return uuid.uuid4().hex


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True, slots=True)
class FileSource:
    """A WAV file, named relative to the configured sounds directory."""

    name: str


@dataclass(frozen=True, slots=True)
class ToneSource:
    """A generated tone: ringback (region cadence), beep, silence or a pure tone."""

    kind: ToneKind
    region: str | None = None  # ringback cadence ("eu", "us"); None = configured default
    frequency: float = 0.0  # kind="tone"
    seconds: float = 1.0  # kind="tone" / "silence"


Source = FileSource | ToneSource
HOLD_MUSIC = FileSource("hold_music.wav")
BEEP = FileSource("beep.wav")


# ----------------------------------------------------------------------------- effects


@dataclass(frozen=True, slots=True)
class CreateLeg:
    """Open an RTP endpoint.  ``remote_*`` may be unknown yet (we send the offer)."""

    leg_id: str
    remote_ip: str | None = None
    remote_port: int | None = None
    payload_type: int = 0
    telephone_event_pt: int | None = 101
    direction: Direction = "sendrecv"
    group: str | None = None  # legs that may be mixed together share a worker


@dataclass(frozen=True, slots=True)
class UpdateLeg:
    """A re-INVITE changed the remote address, codec or direction (``None`` = keep)."""

    leg_id: str
    remote_ip: str | None = None
    remote_port: int | None = None
    payload_type: int | None = None
    telephone_event_pt: int | None = None
    direction: Direction | None = None


@dataclass(frozen=True, slots=True)
class DestroyLeg:
    """Close a leg: stops its playbacks, finalises its recordings, leaves conferences."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class Connect:
    """Bridge two legs: each hears the other."""

    leg_a: str
    leg_b: str


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Undo a :class:`Connect` or a :class:`PassThroughEarlyMedia` between two legs."""

    leg_a: str
    leg_b: str


@dataclass(frozen=True, slots=True)
class HoldLeg:
    """Take a leg out of its mix; it hears ``source`` (hold music by default)."""

    leg_id: str
    source: Source = HOLD_MUSIC


@dataclass(frozen=True, slots=True)
class UnholdLeg:
    """Put a held leg back into its mix."""

    leg_id: str


@dataclass(frozen=True, slots=True)
class StartPlayback:
    """Play a source to a leg (mixed over whatever else it hears)."""

    leg_id: str
    source: Source
    loop: bool = False
    interrupt_on_dtmf: bool = False
    playback_id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class StopPlayback:
    """Stop a playback (reported as finished with ``interrupted=True``)."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class Record:
    """Record one or two legs to a 16-bit 8 kHz WAV inside the recordings directory.

    ``mixed``: mono; one leg = what it says + what it hears, two legs = both inbound.
    ``separate``: stereo; one leg = (says, hears), two legs = (a says, b says).
    """

    legs: tuple[str, ...]
    path: str
    mode: RecordMode = "mixed"
    beep: bool = False
    max_duration_s: float | None = None
    recording_id: str = field(default_factory=new_id)


@dataclass(frozen=True, slots=True)
class PauseRecord:
    """Pause a recording; paused time is left out of the file."""

    recording_id: str


@dataclass(frozen=True, slots=True)
class ResumeRecord:
    """Resume a paused recording."""

    recording_id: str


@dataclass(frozen=True, slots=True)
class StopRecord:
    """Finalise a recording (``RecordingFinished`` follows)."""

    recording_id: str


@dataclass(frozen=True, slots=True)
class SuperviseLeg:
    """A mixing rule around the agent leg, whoever it is connected to: listen: the
    supervisor hears the agent and what the agent hears; whisper: + the agent hears the
    supervisor; barge: + whoever hears the agent hears the supervisor too."""

    supervisor_leg: str
    agent_leg: str
    mode: SuperviseMode = "listen"


@dataclass(frozen=True, slots=True)
class StopSupervising:
    """End the supervision started by ``supervisor_leg``."""

    supervisor_leg: str


@dataclass(frozen=True, slots=True)
class JoinConference:
    """Add a leg to a conference (created on first use); everyone hears N-1 others."""

    conference_id: str
    leg_id: str
    muted: bool = False


@dataclass(frozen=True, slots=True)
class LeaveConference:
    """Remove a leg from a conference (the conference vanishes when empty)."""

    conference_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class MuteConferenceMember:
    """Mute or unmute a conference member (a muted member still hears the others)."""

    conference_id: str
    leg_id: str
    muted: bool = True


@dataclass(frozen=True, slots=True)
class PassThroughEarlyMedia:
    """One way: ``to_leg`` hears ``from_leg`` (ringback/announcements before answer)."""

    from_leg: str
    to_leg: str


@dataclass(frozen=True, slots=True)
class SendDtmf:
    """Send digits: RFC 4733 if the leg negotiated telephone-event, else in-band."""

    leg_id: str
    digits: str
    duration_ms: int = 100


@dataclass(frozen=True, slots=True)
class StartAudioStream:
    """Stream a leg's audio to a WebSocket bot (and, ``duplex``, play the bot's audio).

    ``caller`` is what the leg's far end says, ``peer`` what it hears (its bridge, its
    prompts; never the bot itself); ``both`` sends them as two interleaved channels,
    caller first. ``start`` is the first text frame's extra fields (``metadata``...).
    ``StreamStarted`` follows once connected, ``StreamStopped`` when it ends.
    """

    stream_id: str
    leg_id: str
    url: str
    tracks: StreamTracks = "caller"
    sample_rate: int = 8000
    duplex: bool = False
    start: tuple[tuple[str, object], ...] = ()


@dataclass(frozen=True, slots=True)
class StopAudioStream:
    """End a stream: a last ``{"type":"stop"}`` frame, then the connection is closed."""

    stream_id: str


Effect = (
    CreateLeg
    | UpdateLeg
    | DestroyLeg
    | Connect
    | Disconnect
    | HoldLeg
    | UnholdLeg
    | StartPlayback
    | StopPlayback
    | Record
    | PauseRecord
    | ResumeRecord
    | StopRecord
    | SuperviseLeg
    | StopSupervising
    | JoinConference
    | LeaveConference
    | MuteConferenceMember
    | PassThroughEarlyMedia
    | SendDtmf
    | StartAudioStream
    | StopAudioStream
)


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class LegCreated:
    """The local RTP address to put in the SDP (RTCP is on ``local_port + 1``)."""

    leg_id: str
    local_ip: str
    local_port: int


@dataclass(frozen=True, slots=True)
class PlaybackStarted:
    """Answer to :class:`StartPlayback` / :class:`HoldLeg`."""

    playback_id: str


@dataclass(frozen=True, slots=True)
class RecordingStarted:
    """Answer to :class:`Record` with the resolved file path."""

    recording_id: str
    path: str


@dataclass(frozen=True, slots=True)
class Ack:
    """Answer to every other effect."""


Result = LegCreated | PlaybackStarted | RecordingStarted | Ack


# ------------------------------------------------------------------------ observations


@dataclass(frozen=True, slots=True)
class MediaStarted:
    """The first valid RTP packet arrived on a leg (symmetric RTP latched here)."""

    leg_id: str
    remote_ip: str
    remote_port: int


@dataclass(frozen=True, slots=True)
class DtmfReceived:
    """A digit ended on a leg; ``method`` is ``rfc4733`` or ``inband``."""

    leg_id: str
    digit: str
    duration_ms: int
    method: str = "rfc4733"


@dataclass(frozen=True, slots=True)
class RtpTimeout:
    """No RTP for the configured time on a leg that expects to receive."""

    leg_id: str
    silent_secs: float


@dataclass(frozen=True, slots=True)
class PlaybackFinished:
    """A playback ended: naturally, stopped, interrupted by ``digit``, or leg gone."""

    playback_id: str
    leg_id: str
    interrupted: bool
    digit: str | None = None


@dataclass(frozen=True, slots=True)
class RecordingFinished:
    """A recording was finalised, and why: ``StopRecord`` (``stop``), its max duration
    reached (``max_duration``), a leg it covers destroyed (``leg_gone``) or the engine
    closed (``closed``)."""

    recording_id: str
    path: str
    duration_secs: float
    reason: RecordingEndReason = "stop"


@dataclass(frozen=True, slots=True)
class RecordingWriteFailed:
    """A recording could not be written."""

    recording_id: str
    path: str
    error: str


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """A stream's WebSocket is open and its start frame sent: audio flows from now."""

    stream_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class StreamMark:
    """Everything the bot queued before its mark ``name`` was played (or cleared)."""

    stream_id: str
    leg_id: str
    name: str


@dataclass(frozen=True, slots=True)
class StreamStopped:
    """A stream ended: ``rwi`` | ``hangup`` | ``remote_closed`` | ``failed``."""

    stream_id: str
    leg_id: str
    reason: str
    frames_sent: int
    frames_received: int
    frames_dropped: int
    error: str | None = None


Observation = (
    MediaStarted
    | DtmfReceived
    | RtpTimeout
    | PlaybackFinished
    | RecordingFinished
    | RecordingWriteFailed
    | StreamStarted
    | StreamMark
    | StreamStopped
)
