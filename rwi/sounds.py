"""Where prompts and music live: names resolve strictly inside the sounds directory."""

from __future__ import annotations

from pathlib import Path


def sound_exists(sounds_dir: Path, name: str) -> bool:
    """``name`` is a file strictly inside ``sounds_dir`` (symlinks resolved)."""
    base = sounds_dir.resolve()
    path = (base / name).resolve()
    return path.is_relative_to(base) and path.is_file()
