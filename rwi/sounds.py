"""Where prompts and music live: the one place that says which sound names are acceptable.

A sound name (``media.play``'s file ``uri``, ``call.hold``'s ``music``,
``call.originate``'s ``hold_music.uri``) must be a plain relative path (checked purely,
also by the domain's decisions) and, when the service knows its sounds directory, name
a file strictly inside it (checked by the service before it decides). The media side
resolves the same names inside the same directory when it plays them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from rwi.errors import RwiError

_SAFE_NAME = re.compile(r"^[A-Za-z0-9_\-./ ]{1,255}$")


def check_sound_name(field: str, name: str) -> None:
    """Relative, no ``..``: the media side resolves it strictly inside the sounds dir."""
    parts = name.split("/")
    if (
        not _SAFE_NAME.match(name)
        or name.startswith("/")
        or any(part in ("", ".", "..") for part in parts)
    ):
        raise RwiError(
            "invalid_params",
            f"{field} must be a relative path inside the sounds directory "
            "(letters, digits, _-. and /, no '..')",
        )


def sound_exists(sounds_dir: Path, name: str) -> bool:
    """``name`` is a file strictly inside ``sounds_dir`` (symlinks resolved)."""
    base = sounds_dir.resolve()
    path = (base / name).resolve()
    return path.is_relative_to(base) and path.is_file()


def sound_params(action: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """The sound names a command's params carry, with the field each comes from."""
    names: list[tuple[str, str]] = []
    source = params.get("source")
    if action == "media.play" and source and source.get("type") == "file" and "uri" in source:
        names.append(("params.source.uri", source["uri"]))
    if action == "call.hold" and params.get("music"):
        names.append(("params.music", params["music"]))
    music = params.get("hold_music")
    if action == "call.originate" and music and music.get("type") == "file" and "uri" in music:
        names.append(("params.hold_music.uri", music["uri"]))
    return names


class SoundLibrary:
    """The sounds directory as the service checks commands against it; without one (no
    media side) only the names' form is checked."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory

    def check(self, action: str, params: dict[str, Any]) -> None:
        """Every sound a command names is acceptable and exists (else ``invalid_params``)."""
        for field, name in sound_params(action, params):
            check_sound_name(field, name)
            if self.directory is not None and not sound_exists(self.directory, name):
                raise RwiError(
                    "invalid_params",
                    f"{field}: no sound file {name!r} in the sounds directory",
                )
