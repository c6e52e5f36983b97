"""The RFC 4475 torture corpus through the whole engine (parse, match, dispatch, answer).

Every message must be answered or dropped without an exception, and nothing may be sent
anywhere but back to the loopback source: the corpus names 192.0.2.x, example.com and
255.255.255.255 in Vias, Contacts and URIs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.sip_stack.harness import Harness

CORPUS = Path(__file__).resolve().parents[2] / "data" / "rfc4475"
FILES = sorted(CORPUS.glob("*.dat"))


def test_corpus_is_present() -> None:
    assert len(FILES) >= 40


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_engine_survives_torture_message(path: Path) -> None:
    h = Harness(on_new_session=lambda inv, msg: inv.answer(None))  # exercise the UAS path
    h.engine._receive(path.read_bytes(), ("127.0.0.1", 5070), h.wire)
    assert h.engine.stats.counters["errors"] == 0
    for _data, dest in h.wire.sent:
        assert dest == ("127.0.0.1", 5070)
