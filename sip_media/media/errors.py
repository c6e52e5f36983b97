"""Error tree of the media engine (``sip_media.media``).

Every error the engine raises for a bad effect or a bad input derives from
:class:`MediaError`.  Each one knows a short machine-readable ``code`` so the adapter
can turn it into an observation / RWI error without string matching.  Bad *packets* are
never raised: they are counted and dropped by the leg that received them.
"""

from __future__ import annotations


class MediaError(Exception):
    """Base class of every error raised by the media engine."""

    code = "media_error"


class MediaConfigError(MediaError):
    """The media configuration is invalid (port range, allow-list, directories)."""

    code = "config_error"


class UnsafePathError(MediaError):
    """A file path escapes its configured directory (``..``, absolute, symlink)."""

    code = "unsafe_path"


class MediaFileError(MediaError):
    """A sound file is missing, unreadable or not a supported WAV file."""

    code = "bad_media_file"


class UnknownMediaLegError(MediaError):
    """An effect names a leg the engine does not know."""

    code = "unknown_leg"


class DuplicateIdError(MediaError):
    """An effect tries to create something (leg, playback, recording) that exists."""

    code = "duplicate_id"


class UnknownIdError(MediaError):
    """An effect names a playback, recording, conference or supervision that is gone."""

    code = "unknown_id"


class PortsExhaustedError(MediaError):
    """No free even RTP port (with its RTCP companion) is left in the configured range."""

    code = "ports_exhausted"


class UnsupportedCodecError(MediaError):
    """The payload type is neither PCMU (0) nor PCMA (8)."""

    code = "unsupported_codec"


class InvalidEffectError(MediaError):
    """An effect is well-typed but cannot be applied in the current state."""

    code = "invalid_effect"


class WorkerError(MediaError):
    """The media worker process died or answered something unexpected."""

    code = "worker_error"


ERRORS_BY_CODE: dict[str, type[MediaError]] = {
    cls.code: cls
    for cls in (
        MediaError,
        MediaConfigError,
        UnsafePathError,
        MediaFileError,
        UnknownMediaLegError,
        DuplicateIdError,
        UnknownIdError,
        PortsExhaustedError,
        UnsupportedCodecError,
        InvalidEffectError,
        WorkerError,
    )
}
