"""Media engine: RTP legs, G.711, DTMF, players, recorders and the mixing matrix.

Where it sits: the media half of ``sip_media``.  The SIP adapter turns SDP into
:class:`~.api.CreateLeg` / :class:`~.api.UpdateLeg` parameters and call-control effects
into the other :mod:`.api` effects; the engine answers with results and reports
:mod:`.api` observations.  It knows nothing about SIP and never imports ``rwi``.

Start it::

    config = MediaConfig(sounds_dir=..., recordings_dir=..., port_min=20000,
                         port_max=29999, allowed_destinations=("127.0.0.0/8",))
    media = await start_media(config, callback=on_observation)   # workers=0: in process
    leg = await media.execute(CreateLeg("a", "127.0.0.1", 4000, payload_type=0))
    # leg.local_ip / leg.local_port go into our SDP
    await media.execute(Connect("a", "b"))
    ...
    await media.close()

Flow (one mechanism for everything): packets are drained from every leg's socket
(:mod:`.leg`, :mod:`.rtp`), RFC 4733 events handled (:mod:`.dtmf`); same-codec bridges
with nothing else attached are relayed packet by packet; every other leg goes through
its jitter buffer (:mod:`.jitter`) and, once per 20 ms tick of the single clock
(:mod:`.engine`), is decoded (:mod:`.g711`), mixed with the sources (:mod:`.sources`,
:mod:`.assets`) by the matrix (:mod:`.mixer`) — bridges, hold, early media,
listen/whisper/barge and conferences are just edge sets — recorded (:mod:`.recorder`,
:mod:`.wav`), encoded and sent.  Effects are applied by :mod:`.control`; runners live in
:mod:`.service` (in process) and :mod:`.worker` (``workers = N`` processes).
"""

from .api import (
    Ack,
    Connect,
    CreateLeg,
    DestroyLeg,
    Disconnect,
    DtmfReceived,
    Effect,
    FileSource,
    HoldLeg,
    JoinConference,
    LeaveConference,
    LegCreated,
    MediaStarted,
    MuteConferenceMember,
    Observation,
    PassThroughEarlyMedia,
    PauseRecord,
    PlaybackFinished,
    PlaybackStarted,
    Record,
    RecordingEndReason,
    RecordingFinished,
    RecordingStarted,
    RecordingWriteFailed,
    Result,
    ResumeRecord,
    RtpTimeout,
    SendDtmf,
    StartAudioStream,
    StartPlayback,
    StopAudioStream,
    StopPlayback,
    StopRecord,
    StopSupervising,
    StreamMark,
    StreamStarted,
    StreamStopped,
    SuperviseLeg,
    ToneSource,
    UnholdLeg,
    UpdateLeg,
)
from .config import MediaConfig
from .errors import MediaError
from .service import MediaService, start_media

__all__ = [
    "Ack",
    "Connect",
    "CreateLeg",
    "DestroyLeg",
    "Disconnect",
    "DtmfReceived",
    "Effect",
    "FileSource",
    "HoldLeg",
    "JoinConference",
    "LeaveConference",
    "LegCreated",
    "MediaConfig",
    "MediaError",
    "MediaService",
    "MediaStarted",
    "MuteConferenceMember",
    "Observation",
    "PassThroughEarlyMedia",
    "PauseRecord",
    "PlaybackFinished",
    "PlaybackStarted",
    "Record",
    "RecordingEndReason",
    "RecordingFinished",
    "RecordingStarted",
    "RecordingWriteFailed",
    "Result",
    "ResumeRecord",
    "RtpTimeout",
    "SendDtmf",
    "StartAudioStream",
    "StartPlayback",
    "StopAudioStream",
    "StopPlayback",
    "StopRecord",
    "StopSupervising",
    "StreamMark",
    "StreamStarted",
    "StreamStopped",
    "SuperviseLeg",
    "ToneSource",
    "UnholdLeg",
    "UpdateLeg",
    "start_media",
]
