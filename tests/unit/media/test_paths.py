"""File names resolve strictly inside their directory."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sip_media.media.errors import UnsafePathError
from sip_media.media.paths import resolve_inside


def test_plain_and_nested_names(tmp_path: Path) -> None:
    assert resolve_inside(tmp_path, "a.wav") == tmp_path.resolve() / "a.wav"
    assert resolve_inside(tmp_path, "x/y/a.wav") == tmp_path.resolve() / "x/y/a.wav"


@pytest.mark.parametrize(
    "name",
    ["../a.wav", "x/../../a.wav", "/etc/passwd", "", "a\x00b", "~/a.wav", "..", "x\\..\\a", "."],
)
def test_escapes_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(UnsafePathError):
        resolve_inside(tmp_path, name)


def test_symlink_escaping_is_refused(tmp_path: Path) -> None:
    base = tmp_path / "sounds"
    base.mkdir()
    outside = tmp_path / "secret.wav"
    outside.write_bytes(b"x")
    os.symlink(outside, base / "link.wav")
    os.symlink(tmp_path, base / "dirlink")
    with pytest.raises(UnsafePathError):
        resolve_inside(base, "link.wav")
    with pytest.raises(UnsafePathError):
        resolve_inside(base, "dirlink/secret.wav")


def test_symlink_inside_is_fine(tmp_path: Path) -> None:
    (tmp_path / "real.wav").write_bytes(b"x")
    os.symlink(tmp_path / "real.wav", tmp_path / "alias.wav")
    assert resolve_inside(tmp_path, "alias.wav") == (tmp_path / "real.wav").resolve()
