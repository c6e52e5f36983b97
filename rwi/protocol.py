"""RWI wire format: frames in, requests out; replies and events as envelopes.

First step of the command path: a text frame is parsed, its action resolved (aliases
included), its scope checked against the token and its params validated against the
action's schema. Whatever is wrong becomes an ``RwiError`` naming the field.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rwi.errors import RwiError, invalid_params

VERSION = "1.0"


@dataclass(frozen=True)
class Check:
    """One parameter's validation, with its JSON Schema: the same spec drives the
    service's checks, the typed client (``rwi.client``) and ``docs/asyncapi.yaml``."""

    run: Callable[[str, Any], Any]
    schema: Mapping[str, Any]

    def __call__(self, name: str, value: Any) -> Any:
        return self.run(name, value)


_SURROGATE = re.compile("[\ud800-\udfff]")


# --- parameter checks: each returns the (normalised) value or raises invalid_params ------


def string(*, empty: bool = False, max_len: int = 1024) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise invalid_params(f"params.{name} must be a string")
        if not empty and not value:
            raise invalid_params(f"params.{name} must not be empty")
        if len(value) > max_len:
            raise invalid_params(f"params.{name} is longer than {max_len} characters")
        if "\x00" in value or _SURROGATE.search(value):
            raise invalid_params(f"params.{name} must not contain NUL or invalid characters")
        return value

    return Check(check, {"type": "string", "minLength": 0 if empty else 1, "maxLength": max_len})


def identifier() -> Check:
    """An id chosen by the client: printable, no spaces, at most 128 characters."""
    pattern = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise invalid_params(
                f"params.{name} must be 1-128 characters of letters, digits and _.:@+-"
            )
        return value

    return Check(check, {"type": "string", "pattern": pattern.pattern})


def number(*, minimum: float | None = None, maximum: float | None = None) -> Check:
    def check(name: str, value: Any) -> float:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise invalid_params(f"params.{name} must be a number")
        return _within(name, value, minimum, maximum)

    return Check(check, _bounds({"type": "number"}, minimum, maximum))


def integer(*, minimum: int | None = None, maximum: int | None = None) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid_params(f"params.{name} must be an integer")
        return int(_within(name, value, minimum, maximum))

    return Check(check, _bounds({"type": "integer"}, minimum, maximum))


def _bounds(schema: dict[str, Any], minimum: float | None, maximum: float | None) -> dict[str, Any]:
    if minimum is not None:
        schema["minimum"] = minimum
    if maximum is not None:
        schema["maximum"] = maximum
    return schema


def _object_schema(schema: Mapping[str, Check], required: frozenset[str]) -> dict[str, Any]:
    """JSON Schema of an object of checked fields; unknown fields are refused."""
    out: dict[str, Any] = {
        "type": "object",
        "properties": {name: dict(check.schema) for name, check in schema.items()},
        "additionalProperties": False,
    }
    if required:
        out["required"] = sorted(required)
    return out


def _within(name: str, value: float, minimum: float | None, maximum: float | None) -> float:
    if minimum is not None and value < minimum:
        raise invalid_params(f"params.{name} must be >= {minimum}")
    if maximum is not None and value > maximum:
        raise invalid_params(f"params.{name} must be <= {maximum}")
    return value


def boolean() -> Check:
    def check(name: str, value: Any) -> bool:
        if not isinstance(value, bool):
            raise invalid_params(f"params.{name} must be true or false")
        return value

    return Check(check, {"type": "boolean"})


def one_of(*choices: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in choices:
            raise invalid_params(f"params.{name} must be one of {', '.join(choices)}")
        return str(value)

    return Check(check, {"type": "string", "enum": list(choices)})


def string_list(*, min_items: int = 1, max_items: int = 100) -> Check:
    item = identifier()

    def check(name: str, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise invalid_params(f"params.{name} must be a list of strings")
        if not min_items <= len(value) <= max_items:
            raise invalid_params(f"params.{name} must have {min_items} to {max_items} items")
        return [item(f"{name}[{i}]", v) for i, v in enumerate(value)]

    return Check(
        check, {"type": "array", "items": item.schema, "minItems": min_items, "maxItems": max_items}
    )


def obj(schema: Mapping[str, Check], required: frozenset[str] = frozenset()) -> Check:
    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid_params(f"params.{name} must be an object")
        return _validate(value, schema, required, prefix=f"{name}.")

    return Check(check, _object_schema(schema, required))


def one_of_int(*choices: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or value not in choices:
            raise invalid_params(f"params.{name} must be one of {', '.join(map(str, choices))}")
        return int(value)

    return Check(check, {"type": "integer", "enum": list(choices)})


def json_object(*, max_chars: int = 4096) -> Check:
    """Free-form JSON the service passes on (a stream's ``metadata``), bounded in size."""

    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise invalid_params(f"params.{name} must be an object")
        try:
            size = len(json.dumps(value, allow_nan=False))
        except (TypeError, ValueError):
            raise invalid_params(f"params.{name} must be plain JSON") from None
        if size > max_chars:
            raise invalid_params(f"params.{name} is larger than {max_chars} characters as JSON")
        return value

    return Check(check, {"type": "object", "description": f"at most {max_chars} chars as JSON"})


def headers() -> Check:
    header_name = re.compile(r"^X-[A-Za-z0-9\-]{1,64}$", re.IGNORECASE)

    def check(name: str, value: Any) -> dict[str, str]:
        if not isinstance(value, dict):
            raise invalid_params(f"params.{name} must be an object of header: value")
        if len(value) > 32:
            raise invalid_params(f"params.{name} has more than 32 headers")
        for key, item in value.items():
            if not header_name.match(key):
                raise invalid_params(f"params.{name}.{key}: only X- headers are allowed")
            if not isinstance(item, str) or len(item) > 512 or any(c in item for c in "\r\n\0"):
                raise invalid_params(
                    f"params.{name}.{key} must be a single-line string of at most 512 characters"
                )
        return dict(value)

    return Check(
        check,
        {
            "type": "object",
            "maxProperties": 32,
            "propertyNames": {"pattern": "^[Xx]-[A-Za-z0-9-]{1,64}$"},
            "additionalProperties": {"type": "string", "maxLength": 512},
        },
    )


def _validate(
    params: Mapping[str, Any],
    schema: Mapping[str, Check],
    required: frozenset[str],
    prefix: str = "",
) -> dict[str, Any]:
    for name in sorted(required):
        if name not in params or params[name] is None:
            raise invalid_params(f"params.{prefix}{name} is required")
    unknown = sorted(set(params) - set(schema))
    if unknown:
        raise invalid_params(f"params.{prefix}{unknown[0]} is not a parameter of this action")
    out: dict[str, Any] = {}
    for name, value in params.items():
        if value is None and name not in required:
            continue
        out[name] = schema[name](f"{prefix}{name}", value)
    return out


# --- the action table --------------------------------------------------------------------


@dataclass(frozen=True)
class ActionSpec:
    name: str
    scope: str
    schema: Mapping[str, Check] = field(default_factory=dict)
    required: frozenset[str] = frozenset()
    #: at least one of these must be given (``session.subscribe {contexts, queues}``)
    any_of: tuple[str, ...] = ()

    def validate(self, params: Mapping[str, Any]) -> dict[str, Any]:
        if self.any_of and all(params.get(name) is None for name in self.any_of):
            names = " or ".join(f"params.{name}" for name in self.any_of)
            raise invalid_params(f"{names} is required")
        return _validate(params, self.schema, self.required)

    def params_schema(self) -> dict[str, Any]:
        """The JSON Schema of ``params`` (types, bounds, required, no unknown fields)."""
        schema = _object_schema(self.schema, self.required)
        if self.any_of:
            schema["anyOf"] = [{"required": [name]} for name in self.any_of]
        return schema


def _spec(name: str, scope: str, required: str = "", **schema: Check) -> ActionSpec:
    return ActionSpec(name, scope, schema, frozenset(required.split()))


def _subscription(name: str) -> ActionSpec:
    """``session.(un)subscribe {contexts, queues}``: at least one of the two lists."""
    schema = {"contexts": string_list(), "queues": string_list()}
    return ActionSpec(name, "call.control", schema, frozenset(), ("contexts", "queues"))


_CALL = {"call_id": identifier()}
_SOURCE = obj(
    {
        "type": one_of("file", "silence", "ringback", "tone"),
        "uri": string(),
        "loop": boolean(),
        "frequency": number(minimum=20, maximum=4000),
        "duration_ms": integer(minimum=1, maximum=3_600_000),
    },
    frozenset({"type"}),
)
_RECORDING = {"call_id": identifier(), "recording_id": identifier()}
_SUPERVISOR = {"supervisor_call_id": identifier(), "target_call_id": identifier()}
_CONF = {"conf_id": identifier()}

SPECS: dict[str, ActionSpec] = {
    s.name: s
    for s in [
        _subscription("session.subscribe"),
        _subscription("session.unsubscribe"),
        _spec("session.list_calls", "call.control"),
        _spec(
            "session.attach_call",
            "call.control",
            "call_id",
            call_id=identifier(),
            mode=one_of("control", "listen", "whisper", "barge"),
            force=boolean(),
        ),
        _spec("session.detach_call", "call.control", "call_id", **_CALL),
        _spec("session.resume", "call.control", since_seq=integer(minimum=0)),
        _spec(
            "call.originate",
            "call.control",
            "call_id destination",
            call_id=identifier(),
            destination=string(max_len=512),
            caller_id=string(max_len=128),
            timeout_secs=number(minimum=1, maximum=3600),
            context=identifier(),
            extra_headers=headers(),
            hold_music=_SOURCE,
            hold_music_target=identifier(),
            ringback=one_of("local", "passthrough", "none"),
            ringback_target=identifier(),
        ),
        _spec("call.answer", "call.control", "call_id", **_CALL),
        _spec(
            "call.reject",
            "call.control",
            "call_id",
            call_id=identifier(),
            reason=one_of("busy", "forbidden", "not_found", "decline"),
        ),
        _spec("call.ring", "call.control", "call_id", **_CALL),
        _spec(
            "call.hangup",
            "call.control",
            "call_id",
            call_id=identifier(),
            reason=string(max_len=64),
            code=integer(minimum=400, maximum=699),
        ),
        _spec("call.bridge", "call.control", "leg_a leg_b", leg_a=identifier(), leg_b=identifier()),
        _spec("call.unbridge", "call.control", "call_id", **_CALL),
        _spec(
            "call.transfer", "call.control", "call_id target", call_id=identifier(), target=string()
        ),
        _spec(
            "call.transfer.attended",
            "call.control",
            "call_id target",
            call_id=identifier(),
            target=string(),
            timeout_secs=number(minimum=1, maximum=3600),
        ),
        _spec(
            "call.transfer.complete",
            "call.control",
            "call_id consultation_call_id",
            call_id=identifier(),
            consultation_call_id=identifier(),
        ),
        _spec(
            "call.transfer.cancel",
            "call.control",
            "consultation_call_id",
            consultation_call_id=identifier(),
        ),
        _spec("call.hold", "call.control", "call_id", call_id=identifier(), music=string()),
        _spec("call.unhold", "call.control", "call_id", **_CALL),
        _spec(
            "call.set_ringback_source",
            "call.control",
            "target_call_id source_call_id",
            target_call_id=identifier(),
            source_call_id=identifier(),
        ),
        _spec(
            "media.play",
            "call.control",
            "call_id source",
            call_id=identifier(),
            source=_SOURCE,
            loop=boolean(),
            interrupt_on_dtmf=boolean(),
        ),
        _spec("media.stop", "call.control", "call_id", **_CALL),
        _spec(
            "record.start",
            "record.control",
            "call_id",
            call_id=identifier(),
            mode=one_of("mixed", "separate_legs"),
            beep=boolean(),
            max_duration_secs=number(minimum=1, maximum=86400),
            storage=obj({"path": string(max_len=512)}),
        ),
        _spec("record.pause", "record.control", "call_id", **_RECORDING),
        _spec("record.resume", "record.control", "call_id", **_RECORDING),
        _spec("record.stop", "record.control", "call_id", **_RECORDING),
        _spec(
            "queue.enqueue",
            "queue.control",
            "call_id queue_id",
            call_id=identifier(),
            queue_id=identifier(),
            priority=integer(minimum=-1000, maximum=1000),
            max_wait_secs=number(minimum=1, maximum=86400),
            skills=string_list(min_items=0),
        ),
        _spec(
            "queue.dequeue", "queue.control", "call_id", call_id=identifier(), agent_id=identifier()
        ),
        _spec("queue.hold", "queue.control", "call_id", **_CALL),
        _spec("queue.unhold", "queue.control", "call_id", **_CALL),
        _spec(
            "queue.set_priority",
            "queue.control",
            "call_id priority",
            call_id=identifier(),
            priority=integer(minimum=-1000, maximum=1000),
        ),
        _spec(
            "queue.assign_agent",
            "queue.control",
            "call_id agent_id",
            call_id=identifier(),
            agent_id=identifier(),
        ),
        _spec(
            "queue.requeue", "queue.control", "call_id", call_id=identifier(), queue_id=identifier()
        ),
        _spec("queue.status", "queue.control", "queue_id", queue_id=identifier()),
        _spec("queue.list", "queue.control"),
        _spec(
            "agent.login",
            "queue.control",
            "agent_id",
            agent_id=identifier(),
            queues=string_list(min_items=0),
        ),
        _spec("agent.logout", "queue.control", "agent_id", agent_id=identifier()),
        _spec(
            "agent.pause",
            "queue.control",
            "agent_id",
            agent_id=identifier(),
            reason=string(max_len=64),
        ),
        _spec("agent.unpause", "queue.control", "agent_id", agent_id=identifier()),
        _spec(
            "supervisor.listen",
            "supervisor.control",
            "supervisor_call_id target_call_id",
            **_SUPERVISOR,
        ),
        _spec(
            "supervisor.whisper",
            "supervisor.control",
            "supervisor_call_id target_call_id",
            **_SUPERVISOR,
        ),
        _spec(
            "supervisor.barge",
            "supervisor.control",
            "supervisor_call_id target_call_id",
            **_SUPERVISOR,
        ),
        _spec(
            "supervisor.takeover",
            "supervisor.control",
            "supervisor_call_id target_call_id",
            **_SUPERVISOR,
        ),
        _spec("supervisor.stop", "supervisor.control", "supervisor_call_id", **_SUPERVISOR),
        _spec(
            "sip.message",
            "call.control",
            "body",
            call_id=identifier(),
            destination=string(max_len=1024),
            content_type=string(max_len=128),
            body=string(empty=True, max_len=16384),
            extra_headers=headers(),
        ),
        _spec(
            "sip.notify",
            "call.control",
            "call_id event",
            call_id=identifier(),
            event=string(max_len=128),
            content_type=string(max_len=128),
            body=string(empty=True, max_len=16384),
            extra_headers=headers(),
        ),
        _spec("sip.options_ping", "call.control", "call_id", **_CALL, extra_headers=headers()),
        _spec(
            "conference.create",
            "call.control",
            "conf_id",
            conf_id=identifier(),
            max_members=integer(minimum=2, maximum=500),
        ),
        *[
            _spec(f"conference.{verb}", "call.control", "conf_id call_id", **_CONF, **_CALL)
            for verb in ("add", "remove", "mute", "unmute")
        ],
        _spec("conference.destroy", "call.control", "conf_id", **_CONF),
        _spec("conference.status", "call.control", "conf_id", **_CONF),
        _spec(
            "media.stream.start",
            "media.stream",
            "call_id url",
            **_CALL,
            url=string(max_len=2048),
            mode=one_of("listen", "duplex"),
            tracks=one_of("caller", "peer", "both"),
            sample_rate=one_of_int(8000, 16000),
            metadata=json_object(),
        ),
        _spec("media.stream.stop", "media.stream", "call_id", **_CALL, stream_id=identifier()),
    ]
}


def _pascal(words: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[._]", words))


def _aliases() -> dict[str, str]:
    """PascalCase forms: ``MediaPlay`` for every action, ``Answer`` where the namespace
    (``call.``/``session.``) can be dropped without two actions sharing the short name."""
    aliases = {_pascal(name): name for name in SPECS}
    short: dict[str, list[str]] = {}
    for name in SPECS:
        namespace, _, rest = name.partition(".")
        if namespace in ("call", "session"):
            short.setdefault(_pascal(rest), []).append(name)
    for alias, names in short.items():
        if len(names) == 1 and alias not in aliases:
            aliases[alias] = names[0]
    return aliases


ALIASES = _aliases()


# --- frames ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandFrame:
    """A parsed, well-formed request; the action name is canonical."""

    action: str
    action_id: str
    params: dict[str, Any]
    meta: dict[str, Any]


_UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def safe_text(value: str) -> bool:
    """No control characters, no lone surrogates: safe to echo, log and store."""
    return not _UNSAFE_TEXT.search(value)


def new_action_id() -> str:
    return f"srv-{uuid.uuid4().hex[:16]}"


def _not_json(constant: str) -> Any:
    """Python's reader takes NaN and Infinity, which JSON (RFC 8259) does not have and the
    log's jsonb cannot store: refuse them like any other malformed frame."""
    raise ValueError(f"{constant} is not a JSON value")


def parse_frame(text: str) -> CommandFrame:
    """Parse one text frame; raise ``RwiError`` (parse_error / invalid_request)."""
    try:
        value = json.loads(text, parse_constant=_not_json)
    except (ValueError, RecursionError) as exc:
        raise RwiError("parse_error", f"frame is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RwiError("invalid_request", "frame must be a JSON object")
    action_id = value.get("action_id")
    if action_id is None:
        action_id = new_action_id()
    elif not isinstance(action_id, str) or not 0 < len(action_id) <= 256:
        raise RwiError("invalid_request", "action_id must be a string of 1 to 256 characters")
    elif not safe_text(action_id):
        raise RwiError("invalid_request", "action_id must not contain control characters")
    action = value.get("action")
    if action is None:
        raise RwiError("invalid_request", "action is required")
    if not isinstance(action, str):
        raise RwiError("invalid_request", "action must be a string")
    params = value.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RwiError("invalid_request", "params must be an object")
    meta = value.get("meta", {})
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise RwiError("invalid_request", "meta must be an object")
    key = meta.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or not 0 < len(key) <= 256):
        raise RwiError(
            "invalid_request", "meta.idempotency_key must be a string of 1 to 256 characters"
        )
    return CommandFrame(action=action, action_id=action_id, params=params, meta=meta)


def action_id_of(text: str) -> str | None:
    """Best effort: the action_id of a frame that failed to parse, to echo it back."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict) and isinstance(value.get("action_id"), str):
        action_id: str = value["action_id"]
        if 0 < len(action_id) <= 256 and safe_text(action_id):
            return action_id
    return None


def resolve(action: str) -> ActionSpec:
    """The spec of ``action`` or of its PascalCase alias; unknown_action otherwise."""
    name = action if action in SPECS else ALIASES.get(action)
    if name is None:
        raise RwiError("unknown_action", f"action {action[:100]!r} is not an RWI action")
    return SPECS[name]


def authorise(
    spec: ActionSpec,
    scopes: frozenset[str],
    built: frozenset[str],
    unavailable: Callable[[str], str | None] = lambda _: None,
) -> None:
    """Scope first (a caller without it learns nothing more), then whether it is built;
    ``unavailable`` says why a built action is off in this deployment (no ``[sip]``)."""
    if spec.scope not in scopes:
        raise RwiError("forbidden", f"scope required: {spec.scope}")
    if spec.name not in built:
        reason = unavailable(spec.name)
        raise RwiError(
            "unknown_action",
            reason or f"action {spec.name!r} is not available in this version of the service yet",
        )


def success(action_id: str, data: Mapping[str, Any] | None) -> dict[str, Any]:
    reply: dict[str, Any] = {"rwi": VERSION, "action_id": action_id, "response": "success"}
    if data is not None:
        reply["data"] = dict(data)
    return reply


def error(action_id: str | None, err: RwiError) -> dict[str, Any]:
    return {"rwi": VERSION, "action_id": action_id, "response": "error", "error": err.wire()}


def event(
    name: str, call_id: str | None, seq: int, ts: str, data: Mapping[str, Any], **top: Any
) -> dict[str, Any]:
    frame: dict[str, Any] = {"rwi": VERSION, "event": name}
    if call_id is not None:
        frame["call_id"] = call_id
    frame.update(top)
    frame["seq"] = seq
    frame["ts"] = ts
    frame["data"] = dict(data)
    return frame
