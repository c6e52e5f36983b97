"""Applying effects to the engine: the validation and state changes of every effect.

Where it sits: :meth:`MediaEngine.apply` forwards here.  Each handler checks its
arguments (unknown legs, duplicate ids, unsafe paths raise typed
:mod:`.errors`), changes the engine's legs, playbacks, recorders or topology, marks
the mixing plan dirty, and returns the effect's result.  Nothing here touches audio
samples; the next tick picks up the new topology.
"""

from __future__ import annotations

from typing import assert_never

import numpy as np

from . import api
from .dtmf import DIGITS, dtmf_tone
from .errors import DuplicateIdError, InvalidEffectError, UnknownIdError, UnknownMediaLegError
from .leg import MediaLeg
from .paths import resolve_inside
from .recorder import Recorder
from .sources import Playback, SourceStream, tone_samples
from .stream_tap import StreamTap
from .tables import EngineTables


def _leg(engine: EngineTables, leg_id: str) -> MediaLeg:
    leg = engine.legs.get(leg_id)
    if leg is None:
        raise UnknownMediaLegError(f"unknown leg {leg_id!r}")
    return leg


def _stream(engine: EngineTables, source: api.Source, loop: bool) -> SourceStream:
    if isinstance(source, api.FileSource):
        samples = engine.sounds.load(source.name).astype(np.float32)
        return SourceStream(samples, loop)
    region = source.region or engine.config.ringback_region
    samples, natural_loop = tone_samples(source.kind, region, source.frequency, source.seconds)
    return SourceStream(samples, loop or natural_loop)


def _start(
    engine: EngineTables,
    pid: str,
    leg_id: str,
    stream: SourceStream,
    interrupt: bool,
    report: bool,
) -> None:
    if pid in engine.playbacks:
        raise DuplicateIdError(f"playback {pid!r} exists")
    engine.playbacks[pid] = Playback(pid, leg_id, stream, interrupt, report)
    engine.topology.sources[pid] = leg_id
    engine.mark_dirty()


def _create_leg(engine: EngineTables, e: api.CreateLeg, now: float) -> api.LegCreated:
    if e.leg_id in engine.legs:
        raise DuplicateIdError(f"leg {e.leg_id!r} exists")
    rtp, rtcp, port = engine.ports.open()
    try:
        leg = MediaLeg(
            e.leg_id,
            rtp,
            rtcp,
            port,
            engine.allow,
            e.payload_type,
            e.telephone_event_pt,
            e.direction,
            now,
            engine.config.inband_dtmf,
            engine.config.jitter_max_frames,
            engine.config.rtcp_interval_s,
        )
    except Exception:
        rtp.close()
        rtcp.close()
        raise
    leg.set_remote(e.remote_ip, e.remote_port)
    engine.register(leg)
    return api.LegCreated(e.leg_id, engine.config.local_ip, port)


def _update_leg(engine: EngineTables, e: api.UpdateLeg, now: float) -> None:
    leg = _leg(engine, e.leg_id)
    if e.payload_type is not None:
        leg.set_codec(e.payload_type)
    if e.telephone_event_pt is not None:
        leg.te_pt = e.telephone_event_pt
    if e.remote_ip is not None or e.remote_port is not None:
        engine.unlatch(leg)
        leg.set_remote(e.remote_ip or (leg.signalled or ("", 0))[0], e.remote_port)
    if e.direction is not None:
        leg.set_direction(e.direction)
    leg.last_rx = now
    leg.marker_next = True
    engine.mark_dirty()


def _destroy_leg(engine: EngineTables, leg_id: str) -> None:
    leg = _leg(engine, leg_id)
    for pb in [p for p in engine.playbacks.values() if p.leg_id == leg_id]:
        engine.finish_playback(pb, True, None)
    for rec in [r for r in engine.recorders.values() if leg_id in r.legs]:
        engine.finish_recording(rec, "leg_gone")
    for tap in [t for t in engine.streams.values() if t.leg_id == leg_id]:
        engine.stop_stream(tap, "hangup")
    engine.topology.forget_leg(leg_id)
    engine.unregister(leg)


def _record(engine: EngineTables, e: api.Record) -> api.RecordingStarted:
    if not 1 <= len(e.legs) <= 2 or len(set(e.legs)) != len(e.legs):
        raise InvalidEffectError("record one leg or two different legs")
    for leg_id in e.legs:
        _leg(engine, leg_id)
    if e.recording_id in engine.recorders:
        raise DuplicateIdError(f"recording {e.recording_id!r} exists")
    if e.max_duration_s is not None and e.max_duration_s <= 0:
        raise InvalidEffectError("max_duration_s must be positive")
    if e.mode not in ("mixed", "separate"):
        raise InvalidEffectError(f"unknown record mode {e.mode!r}")
    path = resolve_inside(engine.config.recordings_dir, e.path)
    beep_for_file = None
    if e.beep:
        beep = engine.sounds.load(api.BEEP.name)
        for leg_id in e.legs:
            stream = SourceStream(beep.astype(np.float32), False)
            _start(engine, api.new_id(), leg_id, stream, False, False)
        if len(e.legs) == 2:  # inbound-only channels would not contain the beep
            beep_for_file = beep
    try:
        rec = Recorder(e.recording_id, path, e.legs, e.mode, e.max_duration_s, beep_for_file)
    except OSError as exc:
        raise InvalidEffectError(f"cannot open recording: {exc.strerror}") from exc
    engine.recorders[e.recording_id] = rec
    engine.mark_dirty()
    return api.RecordingStarted(e.recording_id, str(path))


def _start_stream(engine: EngineTables, e: api.StartAudioStream) -> None:
    _leg(engine, e.leg_id)
    if e.stream_id in engine.streams:
        raise DuplicateIdError(f"stream {e.stream_id!r} exists")
    if not engine.stream_allow.permits(e.url):
        raise InvalidEffectError(f"stream URL {e.url!r} is not in stream_allowed_urls")
    if e.tracks not in ("caller", "peer", "both") or e.sample_rate not in (8000, 16000):
        raise InvalidEffectError("tracks must be caller|peer|both, sample_rate 8000|16000")
    tap = StreamTap(e.stream_id, e.leg_id, e.url, e.tracks, e.sample_rate, e.duplex, dict(e.start))
    engine.streams[e.stream_id] = tap
    engine.stream_hub.start(tap)


def _recorder(engine: EngineTables, rid: str) -> Recorder:
    rec = engine.recorders.get(rid)
    if rec is None:
        raise UnknownIdError(f"unknown recording {rid!r}")
    return rec


def _send_dtmf(engine: EngineTables, e: api.SendDtmf) -> None:
    leg = _leg(engine, e.leg_id)
    if not e.digits or any(d.upper() not in DIGITS for d in e.digits):
        raise InvalidEffectError(f"invalid DTMF digits {e.digits!r}")
    if not 40 <= e.duration_ms <= 5000:
        raise InvalidEffectError("duration_ms must be 40..5000")
    if leg.te_pt is not None:
        leg.dtmf_tx.queue(e.digits, e.duration_ms)
        return
    samples = e.duration_ms * 8
    gap = np.zeros(480, dtype=np.float32)
    tones = np.concatenate([np.concatenate([dtmf_tone(d, samples), gap]) for d in e.digits])
    _start(engine, api.new_id(), leg.leg_id, SourceStream(tones, False), False, False)


def apply_effect(engine: EngineTables, effect: api.Effect, now: float) -> api.Result:
    """Apply one effect; raise a :class:`~.errors.MediaError` if it cannot be."""
    topo = engine.topology
    match effect:
        case api.CreateLeg():
            return _create_leg(engine, effect, now)
        case api.UpdateLeg():
            _update_leg(engine, effect, now)
        case api.DestroyLeg(leg_id=leg_id):
            _destroy_leg(engine, leg_id)
        case api.Connect(leg_a=a, leg_b=b) | api.PassThroughEarlyMedia(from_leg=a, to_leg=b):
            _leg(engine, a), _leg(engine, b)
            if a == b:
                raise InvalidEffectError("cannot connect a leg to itself")
            if isinstance(effect, api.Connect):
                topo.bridges.add(frozenset((a, b)))
                topo.early -= {(a, b), (b, a)}
            else:
                topo.early.add((a, b))
        case api.Disconnect(leg_a=a, leg_b=b):
            topo.bridges.discard(frozenset((a, b)))
            topo.early -= {(a, b), (b, a)}
        case api.HoldLeg(leg_id=leg_id, source=source):
            _leg(engine, leg_id)
            stream = _stream(engine, source, True)
            old = topo.held.pop(leg_id, None)
            if old is not None and old in engine.playbacks:
                engine.finish_playback(engine.playbacks[old], True, None)
            pid = api.new_id()
            _start(engine, pid, leg_id, stream, False, False)
            topo.held[leg_id] = pid
            engine.mark_dirty()
            return api.PlaybackStarted(pid)
        case api.UnholdLeg(leg_id=leg_id):
            _leg(engine, leg_id)
            held = topo.held.pop(leg_id, None)
            if held is not None and held in engine.playbacks:
                engine.finish_playback(engine.playbacks[held], True, None)
        case api.StartPlayback():
            _leg(engine, effect.leg_id)
            stream = _stream(engine, effect.source, effect.loop)
            _start(
                engine,
                effect.playback_id,
                effect.leg_id,
                stream,
                effect.interrupt_on_dtmf,
                True,
            )
            return api.PlaybackStarted(effect.playback_id)
        case api.StopPlayback(playback_id=pid):
            pb = engine.playbacks.get(pid)
            if pb is None:
                raise UnknownIdError(f"unknown playback {pid!r}")
            engine.finish_playback(pb, True, None)
        case api.Record():
            return _record(engine, effect)
        case api.PauseRecord(recording_id=rid):
            rec = _recorder(engine, rid)
            rec.paused = True
            rec.flush()
        case api.ResumeRecord(recording_id=rid):
            _recorder(engine, rid).paused = False
        case api.StopRecord(recording_id=rid):
            engine.finish_recording(_recorder(engine, rid), "stop")
        case api.SuperviseLeg(supervisor_leg=s, agent_leg=a, mode=mode):
            _leg(engine, s), _leg(engine, a)
            if s == a:
                raise InvalidEffectError("supervisor and agent must differ")
            if mode not in ("listen", "whisper", "barge"):
                raise InvalidEffectError(f"unknown supervise mode {mode!r}")
            topo.supervisions[s] = (a, mode)
        case api.StopSupervising(supervisor_leg=s):
            if s not in topo.supervisions:
                raise UnknownIdError(f"{s!r} supervises nobody")
            del topo.supervisions[s]
        case api.JoinConference(conference_id=conf, leg_id=leg_id, muted=muted):
            _leg(engine, leg_id)
            topo.conferences.setdefault(conf, {})[leg_id] = muted
        case api.LeaveConference(conference_id=conf, leg_id=leg_id):
            members = topo.conferences.get(conf)
            if members is None or leg_id not in members:
                raise UnknownIdError(f"{leg_id!r} is not in conference {conf!r}")
            del members[leg_id]
            if not members:
                del topo.conferences[conf]
        case api.MuteConferenceMember(conference_id=conf, leg_id=leg_id, muted=muted):
            members = topo.conferences.get(conf)
            if members is None or leg_id not in members:
                raise UnknownIdError(f"{leg_id!r} is not in conference {conf!r}")
            members[leg_id] = muted
        case api.SendDtmf():
            _send_dtmf(engine, effect)
        case api.StartAudioStream():
            _start_stream(engine, effect)
        case api.StopAudioStream(stream_id=sid):
            tap = engine.streams.get(sid)
            if tap is None:
                raise UnknownIdError(f"unknown stream {sid!r}")
            engine.stop_stream(tap, "rwi")
        case _:
            assert_never(effect)
    engine.mark_dirty()
    return api.Ack()
