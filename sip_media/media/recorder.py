"""Recorders: the sinks of the mixing matrix, writing 16-bit 8 kHz WAV incrementally.

Where it sits: after the engine has mixed a tick, each active :class:`Recorder` gets the
frames it asked for (a leg's inbound and/or outbound audio, see ``api.Record``) through
:meth:`Recorder.write`.  The WAV header is fixed up every second of audio (so a crash
leaves a playable file up to the last second) and on :meth:`Recorder.close`.  Paused
frames are not written; the optional start beep is added to every channel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from .wav import WavWriter

F32 = npt.NDArray[np.float32]


class Recorder:
    """One recording in progress."""

    def __init__(
        self,
        recording_id: str,
        path: Path,
        legs: tuple[str, ...],
        mode: str,
        max_duration_s: float | None,
        beep: npt.NDArray[np.int16] | None,
    ) -> None:
        self.recording_id = recording_id
        self.path = path
        self.legs = legs
        self.mode = mode
        self.channels = 2 if mode == "separate" else 1
        self.paused = False
        self._max_bytes = (
            None if max_duration_s is None else int(max_duration_s * 8000) * 2 * self.channels
        )
        self._beep = beep.astype(np.float32) if beep is not None else None
        self._beep_pos = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = path.open("wb")
        self._writer = WavWriter(fh, self.channels)

    def write(self, channels: list[F32]) -> bool:
        """Append one frame per channel; return True when ``max_duration`` is reached."""
        if self.paused:
            return False
        if self.channels == 1:
            frame = channels[0] if len(channels) == 1 else np.sum(channels, axis=0)
            data = frame.reshape(-1, 1)
        else:
            data = np.stack(channels[:2], axis=1)
        if self._beep is not None:
            chunk = self._beep[self._beep_pos : self._beep_pos + data.shape[0]]
            data = data.copy()
            data[: chunk.size] += chunk[:, None]
            self._beep_pos += data.shape[0]
            if self._beep_pos >= self._beep.size:
                self._beep = None
        pcm = np.clip(data, -32768, 32767).astype(np.int16)
        if self._max_bytes is not None:
            room = (self._max_bytes - self._writer.data_bytes) // (2 * self.channels)
            if room <= 0:
                return True
            pcm = pcm[:room]
        self._writer.write(pcm.reshape(-1))
        return self._max_bytes is not None and self._writer.data_bytes >= self._max_bytes

    @property
    def duration_secs(self) -> float:
        """Seconds of audio in the file (paused time excluded)."""
        return self._writer.duration_secs

    def flush(self) -> None:
        """Fix the header now (used before a pause so the file is complete on disk)."""
        self._writer.fixup()

    def close(self) -> float:
        """Finalise the file and return its duration."""
        self._writer.close()
        return self.duration_secs
