"""The adapter's built-in "no media" SDP: valid offers/answers aimed at the discard port.

Where it sits: used by ``sip_media.adapter`` when no media engine supplies SDP
(benchmarks, signalling-only interop tests). Answers mirror the offer's m-lines
(RFC 3264 §6: same count and order), pick the first offered codec, and flip the direction
so a hold offer (sendonly) is answered recvonly.
"""

from __future__ import annotations

import itertools

_version = itertools.count(1)
DISCARD_PORT = 9
_FLIP = {"sendonly": "recvonly", "recvonly": "sendonly", "inactive": "inactive"}


def offer_sdp(host: str = "127.0.0.1") -> bytes:
    sid = next(_version)
    return (
        f"v=0\r\no=- {sid} {sid} IN IP4 {host}\r\ns=-\r\nc=IN IP4 {host}\r\nt=0 0\r\n"
        f"m=audio {DISCARD_PORT} RTP/AVP 0 8 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-16\r\n"
        "a=sendrecv\r\n"
    ).encode()


def answer_sdp(offer: bytes | None, previous: bytes | None, host: str = "127.0.0.1") -> bytes:
    """Answer ``offer`` (or make an offer when there is none, e.g. INVITE without SDP)."""
    if not offer:
        return previous or offer_sdp(host)
    sid = next(_version)
    lines = ["v=0", f"o=- {sid} {sid} IN IP4 {host}", "s=-", f"c=IN IP4 {host}", "t=0 0"]
    session_dir = "sendrecv"
    media: list[list[str]] = []
    for raw in offer.decode("utf-8", "replace").splitlines():
        line = raw.strip()
        if line.startswith("m="):
            media.append([line])
        elif media:
            media[-1].append(line)
        elif line[2:] in _FLIP:
            session_dir = line[2:]
    for block in media:
        parts = block[0][2:].split()
        kind, proto, fmts = parts[0], parts[1] if len(parts) > 1 else "RTP/AVP", parts[3:]
        port = parts[1] if len(parts) > 1 else "0"
        proto = parts[2] if len(parts) > 2 else "RTP/AVP"
        if kind != "audio" or port == "0" or not fmts:
            lines.append(f"m={kind} 0 {proto} {fmts[0] if fmts else '0'}")
            continue
        chosen = fmts[0]
        keep = [chosen]
        rtpmaps = {ln.split()[0][9:]: ln for ln in block if ln.startswith("a=rtpmap:")}
        for fmt, ln in rtpmaps.items():
            if "telephone-event" in ln and fmt != chosen:
                keep.append(fmt)
        lines.append(f"m=audio {DISCARD_PORT} {proto} {' '.join(keep)}")
        lines.extend(rtpmaps[f] for f in keep if f in rtpmaps)
        direction = session_dir
        for ln in block:
            if ln[2:] in _FLIP or ln == "a=sendrecv":
                direction = ln[2:]
        lines.append(f"a={_FLIP.get(direction, 'sendrecv')}")
    return ("\r\n".join(lines) + "\r\n").encode()
