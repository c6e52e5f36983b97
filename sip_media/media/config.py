"""Media engine configuration and the outbound address allow-list.

Where it sits: built once by the service (from its TOML ``[media]`` section via
:meth:`MediaConfig.from_mapping`) and handed to the engine or its worker processes.
:class:`MediaAllowList` is consulted whenever a leg's remote address changes; packets to a
refused address are dropped and counted, never sent.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .errors import MediaConfigError
from .stream_urls import LOOPBACK, StreamUrlAllowList, StreamUrlError


@dataclass(frozen=True)
class MediaConfig:
    """All knobs of the media engine (defaults suit tests on loopback)."""

    sounds_dir: Path
    recordings_dir: Path
    bind_ip: str = "127.0.0.1"
    advertised_ip: str | None = None
    port_min: int = 20000
    port_max: int = 29999
    allowed_destinations: tuple[str, ...] = ("127.0.0.0/8",)
    rtp_timeout_s: float = 30.0
    rtcp_interval_s: float = 5.0
    jitter_max_frames: int = 6
    ringback_region: str = "eu"
    inband_dtmf: bool = True
    workers: int = 0
    listen_gain: float = 1.0
    whisper_gain: float = 1.0
    barge_gain: float = 1.0
    max_catchup_ticks: int = 10
    relay_batch_ms: float = 2.0  # pass-through packets are relayed at most this late
    #: URL prefixes audio streams may connect to (contract §12); loopback by default
    stream_allowed_urls: tuple[str, ...] = LOOPBACK
    stream_connect_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not (1024 <= self.port_min < self.port_max <= 65535):
            raise MediaConfigError("port range must satisfy 1024 <= port_min < port_max <= 65535")
        if self.workers < 0:
            raise MediaConfigError("workers must be >= 0")
        if self.ringback_region not in ("eu", "us"):
            raise MediaConfigError("ringback_region must be 'eu' or 'us'")
        if self.jitter_max_frames < 1:
            raise MediaConfigError("jitter_max_frames must be >= 1")
        MediaAllowList(self.allowed_destinations)  # validates
        try:
            StreamUrlAllowList(self.stream_allowed_urls)
        except StreamUrlError as exc:
            raise MediaConfigError(str(exc)) from None
        if self.stream_connect_timeout_s <= 0:
            raise MediaConfigError("stream_connect_timeout_s must be > 0")

    @property
    def local_ip(self) -> str:
        """The address put in SDP."""
        return self.advertised_ip or self.bind_ip

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> MediaConfig:
        """Build from a parsed TOML table; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise MediaConfigError(f"unknown media settings: {sorted(unknown)}")
        kwargs = dict(data)
        for key in ("sounds_dir", "recordings_dir"):
            if key in kwargs:
                kwargs[key] = Path(kwargs[key])
        for key in ("allowed_destinations", "stream_allowed_urls"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise MediaConfigError(str(exc)) from exc


class MediaAllowList:
    """CIDR allow-list for outbound media (``127.0.0.0/8`` in every test)."""

    def __init__(self, cidrs: tuple[str, ...]) -> None:
        try:
            self._nets = tuple(ipaddress.ip_network(c, strict=False) for c in cidrs)
        except ValueError as exc:
            raise MediaConfigError(f"bad allowed_destinations entry: {exc}") from exc
        self._cache: dict[str, bool] = {}

    def permits(self, ip: str) -> bool:
        """True if media may be sent to ``ip`` (a literal address; names are refused)."""
        hit = self._cache.get(ip)
        if hit is not None:
            return hit
        try:
            addr = ipaddress.ip_address(ip)
        except ValueError:
            ok = False
        else:
            ok = any(addr in net for net in self._nets)
        if len(self._cache) < 10000:
            self._cache[ip] = ok
        return ok
