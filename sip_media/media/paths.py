"""Strict resolution of user-supplied file names inside a configured directory.

Where it sits: every ``StartPlayback`` (sounds directory) and ``Record`` (recordings directory)
path goes through :func:`resolve_inside` before any file is opened.  Absolute paths,
``..`` components, NUL bytes and symlinks that lead outside the directory raise
:class:`~sip_media.media.errors.UnsafePathError`.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from .errors import UnsafePathError


def resolve_inside(base: Path, name: str) -> Path:
    """Return the real path of ``name`` inside ``base``, or raise ``UnsafePathError``."""
    if not name or "\x00" in name or "\\" in name:
        raise UnsafePathError(f"invalid file name {name!r}")
    rel = PurePosixPath(name)
    if rel.is_absolute() or name.startswith("~"):
        raise UnsafePathError(f"absolute paths are not allowed: {name!r}")
    if ".." in rel.parts:
        raise UnsafePathError(f"'..' is not allowed in {name!r}")
    root = Path(os.path.realpath(base))
    target = Path(os.path.realpath(root / rel))
    if target != root and root not in target.parents:
        raise UnsafePathError(f"{name!r} resolves outside {base}")
    if target == root:
        raise UnsafePathError(f"{name!r} names the directory itself")
    return target
