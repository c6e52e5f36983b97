"""``sip_media``'s public surface: every name in ``__all__`` imports from the package."""

from __future__ import annotations

import pytest

import sip_media


def test_all_names_each_public_name_once() -> None:
    assert len(sip_media.__all__) == len(set(sip_media.__all__)) > 0


@pytest.mark.parametrize("name", sip_media.__all__)
def test_each_public_name_imports(name: str) -> None:
    namespace: dict[str, object] = {}
    exec(f"from sip_media import {name}", namespace)  # the statement users write
    assert namespace[name] is getattr(sip_media, name)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError):
        sip_media.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
