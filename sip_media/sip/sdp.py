"""SDP (RFC 4566) and the RFC 3264 offer/answer model for one audio stream.

Sits beside ``message``: the agent takes an INVITE/200/ACK body, ``SessionDescription.parse``
turns it into frozen values, ``negotiate`` builds our answer from the offer and our local
capabilities, and ``make_offer`` builds our own (re-)offers. The media engine only ever
sees the outcome (``chosen_audio``: address, port, codec, DTMF payload type, direction),
never raw SDP. We terminate audio only: PCMU/PCMA plus RFC 4733 telephone-event; every
other stream is refused with port 0, as RFC 3264 §6 requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from .errors import SdpError

DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
# RFC 3551 static payload types we can recognise without an rtpmap.
STATIC_PAYLOADS: dict[int, tuple[str, int]] = {
    0: ("PCMU", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    18: ("G729", 8000),
}
TELEPHONE_EVENT = "telephone-event"
_SESSION_EXTRA = "iuepbzkr"
_MEDIA_EXTRA = "ibk"

Attributes = tuple[tuple[str, str | None], ...]


@dataclass(frozen=True)
class Origin:
    username: str
    session_id: str
    version: int
    address: str
    net_type: str = "IN"
    addr_type: str = "IP4"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.session_id} {self.version} "
            f"{self.net_type} {self.addr_type} {self.address}"
        )


@dataclass(frozen=True)
class ConnectionData:
    address: str
    net_type: str = "IN"
    addr_type: str = "IP4"

    @property
    def is_null(self) -> bool:
        """``c=IN IP4 0.0.0.0``: RFC 2543-style hold (RFC 3264 §8.4)."""
        return self.address.split("/", 1)[0] in ("0.0.0.0", "::")

    def __str__(self) -> str:
        return f"{self.net_type} {self.addr_type} {self.address}"


def connection_for(address: str) -> ConnectionData:
    return ConnectionData(address, addr_type="IP6" if ":" in address else "IP4")


@dataclass(frozen=True)
class RtpMap:
    payload_type: int
    encoding: str
    clock_rate: int
    channels: int | None = None

    def __str__(self) -> str:
        tail = f"/{self.channels}" if self.channels is not None else ""
        return f"{self.payload_type} {self.encoding}/{self.clock_rate}{tail}"


def _attr(attributes: Attributes, name: str) -> tuple[bool, str | None]:
    for key, value in attributes:
        if key == name:
            return True, value
    return False, None


def _direction(attributes: Attributes) -> str | None:
    return next((k for k, v in attributes if k in DIRECTIONS and v is None), None)


@dataclass(frozen=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: ConnectionData | None = None
    attributes: Attributes = ()
    port_count: int | None = None
    extra: tuple[tuple[str, str], ...] = ()

    @property
    def rtpmaps(self) -> dict[int, RtpMap]:
        """Payload type -> encoding, from ``a=rtpmap`` or the static table."""
        out: dict[int, RtpMap] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in STATIC_PAYLOADS:
                name, rate = STATIC_PAYLOADS[int(fmt)]
                out[int(fmt)] = RtpMap(int(fmt), name, rate)
        for key, value in self.attributes:
            if key == "rtpmap" and value:
                parsed = _parse_rtpmap(value)
                if parsed is not None:
                    out[parsed.payload_type] = parsed
        return out

    def fmtp(self, payload_type: int) -> str | None:
        prefix = f"{payload_type} "
        for key, value in self.attributes:
            if key == "fmtp" and value and value.startswith(prefix):
                return value[len(prefix) :].strip()
        return None

    @property
    def ptime(self) -> int | None:
        value = _attr(self.attributes, "ptime")[1]
        return int(value) if value and value.isdigit() else None

    @property
    def direction(self) -> str | None:
        """The stream's own direction attribute (None: inherit from the session)."""
        return _direction(self.attributes)

    def __str__(self) -> str:
        port = f"{self.port}/{self.port_count}" if self.port_count else str(self.port)
        return f"{self.media} {port} {self.proto} {' '.join(self.formats)}"


def _parse_rtpmap(value: str) -> RtpMap | None:
    pt, _, rest = value.partition(" ")
    parts = rest.strip().split("/")
    if not pt.isdigit() or len(parts) < 2 or not parts[1].isdigit():
        return None
    channels = int(parts[2]) if len(parts) > 2 and parts[2].isdigit() else None
    return RtpMap(int(pt), parts[0], int(parts[1]), channels)


@dataclass(frozen=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: ConnectionData | None = None
    timing: tuple[str, ...] = ("0 0",)
    attributes: Attributes = ()
    media: tuple[MediaDescription, ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    version: int = 0

    @classmethod
    def parse(cls, data: bytes | str) -> SessionDescription:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        try:
            return _parse(text)
        except (ValueError, IndexError) as exc:
            raise SdpError(f"Malformed SDP ({exc})", status=400) from None

    def serialize(self) -> bytes:
        lines = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name or '-'}"]
        lines += [f"{k}={v}" for k, v in self.extra if k in "iuep"]
        if self.connection is not None:
            lines.append(f"c={self.connection}")
        lines += [f"{k}={v}" for k, v in self.extra if k == "b"]
        lines += [f"t={t}" for t in self.timing]
        lines += [f"{k}={v}" for k, v in self.extra if k in "rzk"]
        lines += _attr_lines(self.attributes)
        for m in self.media:
            lines.append(f"m={m}")
            lines += [f"{k}={v}" for k, v in m.extra if k == "i"]
            if m.connection is not None:
                lines.append(f"c={m.connection}")
            lines += [f"{k}={v}" for k, v in m.extra if k in "bk"]
            lines += _attr_lines(m.attributes)
        return ("\r\n".join(lines) + "\r\n").encode()

    def connection_of(self, media: MediaDescription) -> ConnectionData | None:
        return media.connection or self.connection

    def direction_of(self, media: MediaDescription) -> str:
        """Effective direction: media attribute, else session attribute, else sendrecv.

        A null connection address (legacy hold) means the peer will not receive, so
        sendrecv becomes sendonly and recvonly becomes inactive.
        """
        direction = media.direction or _direction(self.attributes) or "sendrecv"
        conn = self.connection_of(media)
        if conn is not None and conn.is_null:
            direction = {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
        return direction


def _attr_lines(attributes: Attributes) -> list[str]:
    return [f"a={k}" if v is None else f"a={k}:{v}" for k, v in attributes]


def _parse(text: str) -> SessionDescription:
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
    if not lines or not lines[0].startswith("v="):
        raise SdpError("SDP must start with v=", status=400)
    version = int(lines[0][2:])
    origin: Origin | None = None
    name = "-"
    session_conn: ConnectionData | None = None
    timing: list[str] = []
    attrs: list[tuple[str, str | None]] = []
    extra: list[tuple[str, str]] = []
    media: list[MediaDescription] = []
    current: MediaDescription | None = None  # m= line being filled in
    m_attrs: list[tuple[str, str | None]] = []
    m_extra: list[tuple[str, str]] = []
    for line in [*lines[1:], "m=\0"]:  # sentinel flushes the last m= section
        kind, eq, value = line.partition("=")
        if len(kind) != 1 or not eq:
            raise SdpError(f"Malformed SDP line {line[:40]!r}", status=400)
        if kind == "m":
            if current is not None:
                media.append(replace(current, attributes=tuple(m_attrs), extra=tuple(m_extra)))
            if value != "\0":
                current, m_attrs, m_extra = _parse_media(value), [], []
        elif kind == "a":
            key, colon, aval = value.partition(":")
            (m_attrs if current is not None else attrs).append((key, aval if colon else None))
        elif kind == "c":
            if current is not None:
                current = replace(current, connection=_parse_connection(value))
            else:
                session_conn = _parse_connection(value)
        elif current is not None:
            if kind in _MEDIA_EXTRA:
                m_extra.append((kind, value))
        elif kind == "o":
            origin = _parse_origin(value)
        elif kind == "s":
            name = value
        elif kind == "t":
            timing.append(value)
        elif kind in _SESSION_EXTRA:
            extra.append((kind, value))
    if origin is None:
        raise SdpError("SDP without o= line", status=400)
    return SessionDescription(
        origin=origin,
        session_name=name,
        connection=session_conn,
        timing=tuple(timing) or ("0 0",),
        attributes=tuple(attrs),
        media=tuple(media),
        extra=tuple(extra),
        version=version,
    )


def _parse_origin(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6 or not parts[2].isdigit():
        raise SdpError("Malformed o= line", status=400)
    return Origin(parts[0], parts[1], int(parts[2]), parts[5], parts[3], parts[4])


def _parse_connection(value: str) -> ConnectionData:
    parts = value.split()
    if len(parts) != 3:
        raise SdpError("Malformed c= line", status=400)
    return ConnectionData(parts[2], parts[0], parts[1])


def _parse_media(value: str) -> MediaDescription:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError("Malformed m= line", status=400)
    port_text, _, count = parts[1].partition("/")
    if not port_text.isdigit() or int(port_text) > 65535 or (count and not count.isdigit()):
        raise SdpError("Malformed m= port", status=400)
    return MediaDescription(
        media=parts[0],
        port=int(port_text),
        port_count=int(count) if count else None,
        proto=parts[2],
        formats=tuple(parts[3:]),
    )


# -- offer/answer (RFC 3264) -----------------------------------------------------------


@dataclass(frozen=True)
class Codec:
    """An audio codec we can run, with the payload type we use when *we* offer it."""

    name: str
    payload_type: int
    clock_rate: int = 8000


PCMU = Codec("PCMU", 0)
PCMA = Codec("PCMA", 8)


@dataclass(frozen=True)
class LocalMedia:
    """Our side of a stream: where we receive RTP and what we can do, in preference order.

    ``direction`` is what *we* want (``sendonly`` to put the peer on hold).
    """

    address: str
    port: int
    codecs: tuple[Codec, ...] = (PCMU, PCMA)
    telephone_event_pt: int | None = 101
    ptime: int | None = 20
    direction: str = "sendrecv"
    username: str = "-"
    session_id: str = "0"


@dataclass(frozen=True)
class ChosenAudio:
    """What the media engine needs once offer/answer is complete."""

    remote_address: str
    remote_port: int
    codec: RtpMap
    telephone_event_pt: int | None
    direction: str
    ptime: int | None


def _flags(direction: str) -> tuple[bool, bool]:
    return direction in ("sendrecv", "sendonly"), direction in ("sendrecv", "recvonly")


def _from_flags(send: bool, recv: bool) -> str:
    return {(1, 1): "sendrecv", (1, 0): "sendonly", (0, 1): "recvonly", (0, 0): "inactive"}[
        (int(send), int(recv))
    ]


def _find_codec(rtpmaps: dict[int, RtpMap], formats: Iterable[str], codec: Codec) -> int | None:
    for fmt in formats:
        if not fmt.isdigit():
            continue
        rtp = rtpmaps.get(int(fmt))
        if (
            rtp
            and rtp.encoding.lower() == codec.name.lower()
            and rtp.clock_rate == codec.clock_rate
        ):
            return int(fmt)
    return None


def _audio_attributes(
    codec: RtpMap, dtmf: RtpMap | None, events: str, local: LocalMedia, direction: str
) -> Attributes:
    attrs: list[tuple[str, str | None]] = [("rtpmap", str(codec))]
    if dtmf is not None:
        attrs += [("rtpmap", str(dtmf)), ("fmtp", f"{dtmf.payload_type} {events}")]
    if local.ptime:
        attrs.append(("ptime", str(local.ptime)))
    attrs.append((direction, None))
    return tuple(attrs)


def negotiate(
    offer: SessionDescription, local: LocalMedia, previous: SessionDescription | None = None
) -> SessionDescription:
    """Answer ``offer`` (RFC 3264 §6): same m= lines in order, the first usable audio
    stream accepted with our most preferred common codec (offer's payload numbers) and
    mirrored direction, every other stream refused with port 0. ``previous`` is the last
    SDP we sent in this session, so the o= version only moves when the content changes.
    Raises ``SdpError`` (488) when no audio stream can be accepted."""
    answered: list[MediaDescription] = []
    accepted = False
    for m in offer.media:
        maps = m.rtpmaps
        chosen = None
        if not accepted and m.media == "audio" and m.proto == "RTP/AVP" and m.port:
            chosen = next(
                (pt for c in local.codecs if (pt := _find_codec(maps, m.formats, c)) is not None),
                None,
            )
        if chosen is None:
            answered.append(MediaDescription(m.media, 0, m.proto, m.formats[:1] or ("0",)))
            continue
        accepted = True
        dtmf = None
        if local.telephone_event_pt is not None:
            dtmf_pt = _find_codec(maps, m.formats, Codec(TELEPHONE_EVENT, 0))
            dtmf = maps[dtmf_pt] if dtmf_pt is not None else None
        # RFC 4733 §2.4.1: answer with the events the offer listed (we handle 0-16).
        events = (m.fmtp(dtmf.payload_type) if dtmf else None) or "0-16"
        peer_send, peer_recv = _flags(offer.direction_of(m))
        our_send, our_recv = _flags(local.direction)
        direction = _from_flags(our_send and peer_recv, our_recv and peer_send)
        formats = (str(chosen),) + ((str(dtmf.payload_type),) if dtmf else ())
        answered.append(
            MediaDescription(
                "audio",
                local.port,
                "RTP/AVP",
                formats,
                attributes=_audio_attributes(maps[chosen], dtmf, events, local, direction),
            )
        )
    if not accepted:
        raise SdpError("No common audio codec", status=488)
    return _finish(local, tuple(answered), previous)


def make_offer(local: LocalMedia, previous: SessionDescription | None = None) -> SessionDescription:
    """Our offer (initial or re-offer, e.g. hold/resume with ``local.direction``)."""
    formats = [str(c.payload_type) for c in local.codecs]
    attrs: list[tuple[str, str | None]] = [
        ("rtpmap", f"{c.payload_type} {c.name}/{c.clock_rate}") for c in local.codecs
    ]
    if local.telephone_event_pt is not None:
        formats.append(str(local.telephone_event_pt))
        attrs += [
            ("rtpmap", f"{local.telephone_event_pt} {TELEPHONE_EVENT}/8000"),
            ("fmtp", f"{local.telephone_event_pt} 0-16"),
        ]
    if local.ptime:
        attrs.append(("ptime", str(local.ptime)))
    attrs.append((local.direction, None))
    audio = MediaDescription(
        "audio", local.port, "RTP/AVP", tuple(formats), attributes=tuple(attrs)
    )
    return _finish(local, (audio,), previous)


def _finish(
    local: LocalMedia, media: tuple[MediaDescription, ...], previous: SessionDescription | None
) -> SessionDescription:
    conn = connection_for(local.address)
    origin = Origin(local.username, local.session_id, 0, local.address, addr_type=conn.addr_type)
    sdp = SessionDescription(origin=origin, connection=conn, media=media)
    if previous is None:
        return sdp
    # RFC 3264 §8: same session id; version +1 only if anything else changed.
    same = replace(sdp, origin=previous.origin) == replace(previous, session_name="-", version=0)
    version = previous.origin.version if same else previous.origin.version + 1
    return replace(sdp, origin=replace(previous.origin, version=version, address=local.address))


def chosen_audio(local_sdp: SessionDescription, remote_sdp: SessionDescription) -> ChosenAudio:
    """The negotiated audio stream, seen from our side, once both SDPs are known."""
    for ours, theirs in zip(local_sdp.media, remote_sdp.media, strict=False):
        if ours.media != "audio" or not ours.port or not theirs.port:
            continue
        conn = remote_sdp.connection_of(theirs)
        if conn is None:
            raise SdpError("Audio stream without a connection address", status=400)
        maps = theirs.rtpmaps
        codec_pt = next(
            (int(f) for f in ours.formats if f.isdigit() and int(f) in maps
             and maps[int(f)].encoding.lower() != TELEPHONE_EVENT),
            None,
        )  # fmt: skip
        if codec_pt is None:
            continue
        dtmf = next((pt for pt, r in maps.items() if r.encoding.lower() == TELEPHONE_EVENT), None)
        our_send, our_recv = _flags(local_sdp.direction_of(ours))
        peer_send, peer_recv = _flags(remote_sdp.direction_of(theirs))
        direction = _from_flags(our_send and peer_recv, our_recv and peer_send)
        return ChosenAudio(
            remote_address=conn.address.split("/", 1)[0],
            remote_port=theirs.port,
            codec=maps[codec_pt],
            telephone_event_pt=dtmf,
            direction=direction,
            ptime=theirs.ptime or ours.ptime,
        )
    raise SdpError("No audio stream was negotiated", status=488)
