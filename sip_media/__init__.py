"""SIP user agent / B2BUA toolkit and media engine.

A library driven through a narrow seam: the call-leg layer (:class:`CallLegs`: effects
in, leg observations out) over the SIP adapter (:class:`SipAdapter`) and the media
service (:func:`start_media`). It never imports ``rwi``: the call-control service sits
on top of it, not inside it.

The names below are the public surface; each is imported from its module on first use,
so importing one (e.g. the plain observation types) does not start loading the SIP
stack and the media engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sip_media.adapter import (
        SipAdapter as SipAdapter,
    )
    from sip_media.adapter_types import (
        EffectResult as EffectResult,
    )
    from sip_media.adapter_types import (
        SipObservation as SipObservation,
    )
    from sip_media.call_legstate import (
        LegInfo as LegInfo,
    )
    from sip_media.call_legstate import (
        LegState as LegState,
    )
    from sip_media.call_types import (
        CallError as CallError,
    )
    from sip_media.call_types import (
        DialogRecord as DialogRecord,
    )
    from sip_media.call_types import (
        DialogRecordError as DialogRecordError,
    )
    from sip_media.call_types import (
        DtmfVia as DtmfVia,
    )
    from sip_media.call_types import (
        DuplicateLegError as DuplicateLegError,
    )
    from sip_media.call_types import (
        EndedBy as EndedBy,
    )
    from sip_media.call_types import (
        LegAnswered as LegAnswered,
    )
    from sip_media.call_types import (
        LegDtmf as LegDtmf,
    )
    from sip_media.call_types import (
        LegEnded as LegEnded,
    )
    from sip_media.call_types import (
        LegFailed as LegFailed,
    )
    from sip_media.call_types import (
        LegObservation as LegObservation,
    )
    from sip_media.call_types import (
        LegOffered as LegOffered,
    )
    from sip_media.call_types import (
        LegProgress as LegProgress,
    )
    from sip_media.call_types import (
        LegStateError as LegStateError,
    )
    from sip_media.call_types import (
        MediaFailure as MediaFailure,
    )
    from sip_media.call_types import (
        MessageIn as MessageIn,
    )
    from sip_media.call_types import (
        NegotiationError as NegotiationError,
    )
    from sip_media.call_types import (
        NotifyIn as NotifyIn,
    )
    from sip_media.call_types import (
        PlaybackDone as PlaybackDone,
    )
    from sip_media.call_types import (
        RecordingDone as RecordingDone,
    )
    from sip_media.call_types import (
        RecordingFailed as RecordingFailed,
    )
    from sip_media.call_types import (
        ReferIn as ReferIn,
    )
    from sip_media.call_types import (
        RegistrationChanged as RegistrationChanged,
    )
    from sip_media.call_types import (
        SignallingError as SignallingError,
    )
    from sip_media.call_types import (
        UnknownLegError as UnknownLegError,
    )
    from sip_media.calls import (
        CallLegs as CallLegs,
    )
    from sip_media.media.api import (
        HOLD_MUSIC as HOLD_MUSIC,
    )
    from sip_media.media.api import (
        FileSource as FileSource,
    )
    from sip_media.media.api import (
        Source as Source,
    )
    from sip_media.media.api import (
        ToneSource as ToneSource,
    )
    from sip_media.media.assets import (
        ensure_assets as ensure_assets,
    )
    from sip_media.media.config import (
        MediaConfig as MediaConfig,
    )
    from sip_media.media.service import (
        MediaService as MediaService,
    )
    from sip_media.media.service import (
        start_media as start_media,
    )
    from sip_media.sip.bindings import (
        Binding as Binding,
    )
    from sip_media.sip.config import (
        EngineConfig as EngineConfig,
    )
    from sip_media.sip.routing import (
        TrunkConfig as TrunkConfig,
    )

#: public name -> the module that defines it
_HOMES = {
    "CallLegs": "sip_media.calls",
    "LegInfo": "sip_media.call_legstate",
    "LegState": "sip_media.call_legstate",
    "SipAdapter": "sip_media.adapter",
    "EffectResult": "sip_media.adapter_types",
    "SipObservation": "sip_media.adapter_types",
    "EngineConfig": "sip_media.sip.config",
    "TrunkConfig": "sip_media.sip.routing",
    "Binding": "sip_media.sip.bindings",
    "MediaConfig": "sip_media.media.config",
    "MediaService": "sip_media.media.service",
    "start_media": "sip_media.media.service",
    "ensure_assets": "sip_media.media.assets",
    "FileSource": "sip_media.media.api",
    "ToneSource": "sip_media.media.api",
    "Source": "sip_media.media.api",
    "HOLD_MUSIC": "sip_media.media.api",
    **{
        name: "sip_media.call_types"
        for name in (
            "CallError",
            "DialogRecord",
            "DialogRecordError",
            "DtmfVia",
            "DuplicateLegError",
            "EndedBy",
            "LegAnswered",
            "LegDtmf",
            "LegEnded",
            "LegFailed",
            "LegObservation",
            "LegOffered",
            "LegProgress",
            "LegStateError",
            "MediaFailure",
            "MessageIn",
            "NegotiationError",
            "NotifyIn",
            "PlaybackDone",
            "RecordingDone",
            "RecordingFailed",
            "ReferIn",
            "RegistrationChanged",
            "SignallingError",
            "UnknownLegError",
        )
    },
}

__all__ = [
    "HOLD_MUSIC",
    "Binding",
    "CallError",
    "CallLegs",
    "DialogRecord",
    "DialogRecordError",
    "DtmfVia",
    "DuplicateLegError",
    "EffectResult",
    "EndedBy",
    "EngineConfig",
    "FileSource",
    "LegAnswered",
    "LegDtmf",
    "LegEnded",
    "LegFailed",
    "LegInfo",
    "LegObservation",
    "LegOffered",
    "LegProgress",
    "LegState",
    "LegStateError",
    "MediaConfig",
    "MediaFailure",
    "MediaService",
    "MessageIn",
    "NegotiationError",
    "NotifyIn",
    "PlaybackDone",
    "RecordingDone",
    "RecordingFailed",
    "ReferIn",
    "RegistrationChanged",
    "SignallingError",
    "SipAdapter",
    "SipObservation",
    "Source",
    "ToneSource",
    "TrunkConfig",
    "UnknownLegError",
    "ensure_assets",
    "start_media",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'sip_media' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
