"""Audio streams' framing (contract §12): the bot's PCM16 cut into 20 ms frames whatever
sizes its messages have (a sample split between two), a mark's flush keeping the half
sample for the data that completes it; frames written to the bot parse as websockets
parses a client's frames, with a fresh masking key each; a tick's audio offered and
taken for every stream at once."""

from __future__ import annotations

import itertools

import numpy as np
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from sip_media.media.stream_client import MaskKeys, Resampled, wire_frame
from sip_media.media.stream_tap import FRAME, FRAME_BYTES, StreamTap, offer_all, take_all


def ramp(n: int, start: int = 0) -> bytes:
    return (np.arange(start, start + n) % 30000).astype("<i2").tobytes()


def samples(frames: list[bytes]) -> list[int]:
    return np.frombuffer(b"".join(frames), dtype="<i2").tolist()


def offered(tap: StreamTap) -> list[int]:
    return samples([f for f in tap.to_bot if isinstance(f, bytes)])


def test_messages_of_any_size_become_whole_frames_in_order() -> None:
    to_call = Resampled(1.0, 1, FRAME)
    data = ramp(3 * FRAME)
    cuts = [0, 1, 319, 321, 500, 960]  # odd cuts split samples between two messages
    out: list[bytes] = []
    for a, b in itertools.pairwise(cuts):
        out += to_call.push(data[a:b])
    assert [len(f) for f in out] == [FRAME_BYTES] * 3
    assert samples(out) == samples([data])


def test_a_whole_frame_passes_as_it_is() -> None:
    frame = ramp(FRAME)
    assert Resampled(1.0, 1, FRAME).push(frame)[0] is frame


def test_flush_pads_whole_samples_and_keeps_half_of_one() -> None:
    to_call = Resampled(1.0, 1, FRAME)
    data = ramp(FRAME + 50)
    assert to_call.push(data[:101]) == []  # 50 samples and half of one
    (padded,) = to_call.flush()  # a mark came
    assert samples([padded]) == list(range(50)) + [0] * (FRAME - 50)
    assert to_call.flush() == []  # half a sample is no audio to play yet
    (frame,) = to_call.push(data[101:] + ramp(50, FRAME + 50))  # completes it: in step
    assert samples([frame]) == list(range(50, FRAME + 50))


def test_16k_is_resampled_to_8k_frames() -> None:
    to_call = Resampled(0.5, 1, FRAME)
    second = ramp(16000)  # one second at 16 kHz, in messages of odd sizes
    out: list[bytes] = []
    for at in range(0, len(second), 641):
        out += to_call.push(second[at : at + 641])
    assert 45 <= len(out) <= 50 and {len(f) for f in out} == {FRAME_BYTES}


def test_frames_to_the_bot_parse_as_masked_client_frames() -> None:
    keys = MaskKeys()
    payloads = [ramp(FRAME), ramp(4 * FRAME), b'{"type":"dtmf","digit":"5"}', bytes(70000)]
    wire = b"".join(
        wire_frame(Opcode.TEXT if p.startswith(b"{") else Opcode.BINARY, p, keys.take())
        for p in payloads
    )
    reader = StreamReader()
    reader.feed_data(wire)
    parsed = []
    for _ in payloads:
        parser = Frame.parse(reader.read_exact, mask=True)
        try:
            while True:
                next(parser)
        except StopIteration as done:
            parsed.append(done.value)
    assert [(f.opcode, f.fin, bytes(f.data)) for f in parsed] == [
        (Opcode.TEXT if p.startswith(b"{") else Opcode.BINARY, True, p) for p in payloads
    ]
    masks = {wire_frame(Opcode.BINARY, b"", keys.take())[2:6] for _ in range(3000)}
    assert len(masks) > 2990  # fresh keys, across refills of the pool


def test_a_tick_offers_each_stream_its_track_and_plays_each_duplex_bot() -> None:
    caller_tap = StreamTap("s1", "a", "ws://bot", duplex=True, open=True)
    both_tap = StreamTap("s2", "b", "ws://bot", tracks="both", open=True)
    peer_tap = StreamTap("s3", "a", "ws://bot", tracks="peer", duplex=True, open=True)
    taps = [(caller_tap, 0), (both_tap, 1), (peer_tap, 0)]
    inbound = np.array([[1000.0] * FRAME, [-40000.0] * FRAME], dtype=np.float32)
    outbound = np.array([[7.0] * FRAME, [9.0] * FRAME], dtype=np.float32)
    offer_all(taps, inbound, outbound)
    assert offered(caller_tap) == [1000] * FRAME
    assert offered(both_tap) == [-32768, 9] * FRAME  # interleaved, caller first, clipped
    assert offered(peer_tap) == [7] * FRAME
    # both duplex bots on leg a are heard there, one after its mark is reached
    caller_tap.play(ramp(FRAME))
    peer_tap.mark("m1")
    peer_tap.play(np.full(FRAME, 5, dtype="<i2").tobytes())
    reached = take_all(taps, outbound)
    assert [(tap.stream_id, name) for tap, name in reached] == [("s3", "m1")]
    assert outbound[0].tolist() == [7.0 + x + 5 for x in range(FRAME)]
    assert outbound[1].tolist() == [9.0] * FRAME


def test_a_tick_takes_one_frame_and_the_marks_before_and_right_behind_it() -> None:
    tap = StreamTap("s1", "a", "ws://bot", duplex=True, open=True)
    one, two = ramp(FRAME), ramp(FRAME, FRAME)
    tap.mark("m1")
    tap.play(one)
    tap.mark("m2")
    tap.play(two)
    tap.mark("m3")
    assert tap.take() == (one, ["m1", "m2"])
    assert tap.take() == (two, ["m3"])
    assert tap.take() == (None, [])
