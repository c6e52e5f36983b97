"""DialogRecord: JSON round trips, tolerant reading, and hostile dicts refused clearly."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sip_media.sip.dialog_record import (
    CSEQ_STEP,
    DialogKind,
    DialogRecord,
    DialogRecordError,
)
from tests.unit.sip.layering import FORBIDDEN, SIP, imports_of

CONFIRMED = DialogRecord(
    kind=DialogKind.CONFIRMED,
    call_id="a84b4c76e66710@127.0.0.1",
    local_tag="1928301774",
    remote_tag="a6c85cf",
    local_uri='"Alice" <sip:alice@127.0.0.1>',
    remote_uri="<sip:bob@127.0.0.1:5080>",
    cseq=2,
    destination=("127.0.0.1", 5090),
    remote_target="sip:bob@127.0.0.1:5080;transport=udp",
    route_set=("<sip:127.0.0.1:5090;lr>", "<sip:127.0.0.2;lr>"),
    leg_id="out-1",
    trunk="itsp",
)
OUTBOUND = DialogRecord(
    kind=DialogKind.OUTBOUND_EARLY,
    call_id="c1@127.0.0.1",
    local_tag="ft",
    remote_tag="",
    local_uri="<sip:alice@127.0.0.1>",
    remote_uri="<sip:bob@127.0.0.1:5080>",
    cseq=1,
    destination=("127.0.0.1", 5080),
    request_uri="sip:bob@127.0.0.1:5080",
    vias=("SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bKabc;rport",),
)
INBOUND = DialogRecord(
    kind=DialogKind.INBOUND_EARLY,
    call_id="c2@127.0.0.1",
    local_tag="tt",
    remote_tag="ft1",
    local_uri="<sip:svc@127.0.0.1>",
    remote_uri="<sip:carol@127.0.0.1>",
    cseq=101,
    destination=("127.0.0.1", 5070),
    transport="UDP",
    remote_target="sip:carol@127.0.0.1:5070",
    vias=(
        "SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bKx;rport=5070;received=127.0.0.1",
        "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKy",
    ),
)
RECORDS = [CONFIRMED, OUTBOUND, INBOUND]


@pytest.mark.parametrize("record", RECORDS, ids=lambda r: r.kind.value)
def test_json_round_trip(record: DialogRecord) -> None:
    text = json.dumps(record.to_dict())
    back = DialogRecord.from_dict(json.loads(text))
    assert back == record
    assert json.loads(json.dumps(back.to_dict())) == json.loads(text)


def test_to_dict_is_plain_json_types() -> None:
    def plain(value: object) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int)

    for record in RECORDS:
        assert plain(record.to_dict())
        assert record.to_dict()["kind"] == record.kind.value


def test_from_dict_is_tolerant() -> None:
    data: dict[str, Any] = CONFIRMED.to_dict()
    data["added_by_a_later_version"] = {"x": 1}
    data["destination"] = ("127.0.0.1", "5090")
    data["cseq"] = "2"
    data["route_set"] = tuple(data["route_set"])
    del data["v"], data["leg_id"], data["request_uri"], data["vias"]
    assert DialogRecord.from_dict(data) == replace(CONFIRMED, leg_id="")
    minimal = {
        "kind": "confirmed",
        "call_id": "x@h",
        "local_tag": "a",
        "local_uri": "<sip:a@h>",
        "remote_uri": "<sip:b@h>",
        "cseq": 0,
        "destination": ["127.0.0.1", 5060],
        "remote_target": "sip:b@127.0.0.1",
    }
    record = DialogRecord.from_dict(minimal)
    assert (record.transport, record.remote_tag, record.route_set, record.trunk) == (
        "UDP",
        "",
        (),
        None,
    )


def test_bye_cseq_is_above_anything_recorded_and_capped() -> None:
    assert CONFIRMED.bye_cseq == 2 + CSEQ_STEP
    big = DialogRecord.from_dict({**CONFIRMED.to_dict(), "cseq": 2**31 - 10})
    assert big.bye_cseq == 2**31 - 1


def _fields(record: DialogRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in DialogRecord.__dataclass_fields__}


def _with(record: DialogRecord, **changes: Any) -> dict[str, Any]:
    return {**record.to_dict(), **changes}


HOSTILE: list[tuple[str, Any]] = [
    ("not a mapping", ["kind", "confirmed"]),
    ("none", None),
    ("version", _with(CONFIRMED, v=2)),
    ("version type", _with(CONFIRMED, v="one")),
    ("kind", _with(CONFIRMED, kind="zombie")),
    ("kind type", _with(CONFIRMED, kind=["confirmed"])),
    ("no call_id", {k: v for k, v in CONFIRMED.to_dict().items() if k != "call_id"}),
    ("call_id null", _with(CONFIRMED, call_id=None)),
    ("call_id empty", _with(CONFIRMED, call_id="")),
    ("call_id space", _with(CONFIRMED, call_id="a b")),
    ("call_id type", _with(CONFIRMED, call_id=42)),
    ("CRLF call_id", _with(CONFIRMED, call_id="x\r\nVia: evil")),
    ("CRLF local_uri", _with(CONFIRMED, local_uri="<sip:a@h>\r\nContact: *")),
    ("LF remote_uri", _with(CONFIRMED, remote_uri="<sip:b@h>\nX: y")),
    ("NUL tag", _with(CONFIRMED, local_tag="a\0b")),
    ("tag not token", _with(CONFIRMED, remote_tag="a;b=c")),
    ("no local tag", _with(CONFIRMED, local_tag="")),
    ("CRLF route", _with(CONFIRMED, route_set=["<sip:h;lr>\r\nX: y"])),
    ("route type", _with(CONFIRMED, route_set="<sip:h;lr>")),
    ("route item type", _with(CONFIRMED, route_set=[1])),
    ("empty route", _with(CONFIRMED, route_set=["  "])),
    ("too many routes", _with(CONFIRMED, route_set=["<sip:h;lr>"] * 100)),
    ("huge uri", _with(CONFIRMED, local_uri="<sip:" + "a" * 5000 + "@h>")),
    ("target not uri", _with(CONFIRMED, remote_target="not a uri")),
    ("target tel", _with(CONFIRMED, remote_target="tel:+123")),
    ("target space", _with(CONFIRMED, remote_target="sip:a@h SIP/2.0")),
    ("cseq negative", _with(CONFIRMED, cseq=-1)),
    ("cseq too big", _with(CONFIRMED, cseq=2**31)),
    ("cseq bool", _with(CONFIRMED, cseq=True)),
    ("cseq float", _with(CONFIRMED, cseq=1.5)),
    ("cseq text", _with(CONFIRMED, cseq="1e3")),
    ("destination short", _with(CONFIRMED, destination=["127.0.0.1"])),
    ("destination type", _with(CONFIRMED, destination="127.0.0.1:5060")),
    ("port zero", _with(CONFIRMED, destination=["127.0.0.1", 0])),
    ("port big", _with(CONFIRMED, destination=["127.0.0.1", 70000])),
    ("port text", _with(CONFIRMED, destination=["127.0.0.1", "x"])),
    ("host empty", _with(CONFIRMED, destination=["", 5060])),
    ("host space", _with(CONFIRMED, destination=["127.0.0.1 ", 5060])),
    ("host type", _with(CONFIRMED, destination=[2130706433, 5060])),
    ("host junk", _with(CONFIRMED, destination=["a/b", 5060])),
    ("transport", _with(CONFIRMED, transport="SCTP")),
    ("trunk type", _with(CONFIRMED, trunk=7)),
    ("outbound no request uri", _with(OUTBOUND, request_uri="")),
    ("outbound no via", _with(OUTBOUND, vias=[])),
    ("outbound two vias", _with(OUTBOUND, vias=[OUTBOUND.vias[0]] * 2)),
    ("outbound no branch", _with(OUTBOUND, vias=["SIP/2.0/UDP 127.0.0.1:5060"])),
    ("outbound no tag", _with(OUTBOUND, local_tag="")),
    ("inbound no via", _with(INBOUND, vias=[])),
    ("inbound CRLF via", _with(INBOUND, vias=["SIP/2.0/UDP h\r\nX: y"])),
    ("too many vias", _with(INBOUND, vias=["SIP/2.0/UDP h;branch=z9hG4bKa"] * 71)),
]


@pytest.mark.parametrize(("what", "data"), HOSTILE, ids=[h[0] for h in HOSTILE])
def test_hostile_dicts_are_refused_clearly(what: str, data: Any) -> None:
    with pytest.raises(DialogRecordError) as caught:
        DialogRecord.from_dict(data)
    assert isinstance(caught.value, ValueError)
    assert caught.value.code == "invalid_record"
    assert str(caught.value) and not str(caught.value).startswith("400")


def test_error_names_the_field() -> None:
    with pytest.raises(DialogRecordError) as caught:
        DialogRecord.from_dict(_with(CONFIRMED, destination=["127.0.0.1", 0]))
    assert caught.value.field == "destination"
    with pytest.raises(DialogRecordError) as caught:
        DialogRecord.from_dict(_with(CONFIRMED, call_id="x\ny"))
    assert caught.value.field == "call_id"


def test_constructor_validates_too() -> None:
    with pytest.raises(DialogRecordError):
        DialogRecord(**{**_fields(CONFIRMED), "call_id": "x\r\ny"})
    with pytest.raises(DialogRecordError):
        DialogRecord(**{**_fields(CONFIRMED), "kind": "confirmed"})


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(RECORDS),
    key=st.sampled_from(sorted(CONFIRMED.to_dict())),
    value=json_values,
)
def test_fuzzed_fields_give_a_record_or_a_clear_error(
    base: DialogRecord, key: str, value: Any
) -> None:
    data = {**base.to_dict(), key: value}
    try:
        record = DialogRecord.from_dict(data)
    except DialogRecordError:
        return
    assert DialogRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_record_module_is_pure() -> None:
    modules = imports_of(SIP / "dialog_record.py")
    assert not {m.split(".")[0] for m in modules} & FORBIDDEN
    assert {m for m in modules if m.startswith(".")} <= {".errors", ".headers", ".uri"}
