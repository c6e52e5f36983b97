"""The AsyncAPI 3 description of ``/rwi/v1``, generated from the protocol's own tables.

Every action of ``rwi.protocol.SPECS`` (its params with types, bounds and required
flags), every event of ``rwi.event_specs.EVENTS`` (its data) and every error code of
``rwi.errors.ERROR_CODES``. Committed as ``docs/asyncapi.yaml`` (a test keeps the file
equal to ``render()``) and served at ``/asyncapi.yaml``. Written from the service's
side: it receives commands and replies to them, and sends events.

YAML without a YAML library: block style, every string JSON-quoted, so the text is
plain YAML 1.2 that any parser reads. Run ``python -m rwi.asyncapi`` to rewrite the file.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from rwi.errors import ERROR_CODES
from rwi.event_specs import EVENTS
from rwi.protocol import ALIASES, SPECS, VERSION

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
CHANNEL = "#/channels/rwi"
_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")
_YAML_WORDS = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def _ref(path: str) -> dict[str, Any]:
    return {"$ref": path}


def _envelope() -> dict[str, Any]:
    return {"type": "string", "const": VERSION, "description": "protocol version"}


def _command(name: str) -> dict[str, Any]:
    spec = SPECS[name]
    aliases = sorted(alias for alias, target in ALIASES.items() if target == name)
    return {
        "name": name,
        "title": f"{name} command",
        "summary": f"Scope {spec.scope}. Also accepted as: {', '.join(aliases)}.",
        "payload": {
            "type": "object",
            "required": ["action"],
            "properties": {
                "rwi": _envelope(),
                "action": {"type": "string", "enum": [name, *aliases]},
                "action_id": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 256,
                    "description": "echoed in the reply; generated when absent",
                },
                "params": spec.params_schema(),
                "meta": {
                    "type": "object",
                    "properties": {
                        "idempotency_key": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": 256,
                            "description": "a retry with the same key gets the first reply",
                        }
                    },
                },
            },
        },
    }


def _reply(name: str) -> dict[str, Any]:
    return {
        "name": f"{name}.reply",
        "title": f"{name} success reply",
        "payload": {
            "type": "object",
            "required": ["rwi", "action_id", "response"],
            "properties": {
                "rwi": _envelope(),
                "action_id": {"type": "string"},
                "response": {"type": "string", "const": "success"},
                "data": {"type": "object"},
            },
        },
    }


def _error() -> dict[str, Any]:
    return {
        "name": "error",
        "title": "error reply",
        "summary": "The reply to any command that failed; code is one of the contract's.",
        "payload": {
            "type": "object",
            "required": ["rwi", "action_id", "response", "error"],
            "properties": {
                "rwi": _envelope(),
                "action_id": {"type": ["string", "null"]},
                "response": {"type": "string", "const": "error"},
                "error": {
                    "type": "object",
                    "required": ["code", "message"],
                    "properties": {
                        "code": {"type": "string", "enum": list(ERROR_CODES)},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }


def _event(name: str) -> dict[str, Any]:
    spec = EVENTS[name]
    properties: dict[str, Any] = {
        "rwi": _envelope(),
        "event": {"type": "string", "const": name},
        "call_id": {"type": "string"},
        "seq": {"type": "integer", "minimum": 1, "description": "log position; resume point"},
        "ts": {"type": "string", "description": "UTC time of the decision, ms, Z"},
        "data": spec.data_schema(),
    }
    if name in ("call.incoming", "sip.message.received"):
        properties["context"] = {"type": "string"}
    return {
        "name": name,
        "title": f"{name} event",
        "summary": spec.summary,
        "payload": {
            "type": "object",
            "required": ["rwi", "event", "seq", "ts", "data"],
            "properties": properties,
        },
    }


def document() -> dict[str, Any]:
    messages: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for name in SPECS:
        messages[name] = _command(name)
        messages[f"{name}.reply"] = _reply(name)
    messages["error"] = _error()
    for name in EVENTS:
        messages[f"event.{name}"] = _event(name)
    for name in SPECS:
        operations[name] = {
            "action": "receive",
            "channel": _ref(CHANNEL),
            "summary": f"The {name} command",
            "messages": [_ref(f"{CHANNEL}/messages/{name}")],
            "reply": {
                "channel": _ref(CHANNEL),
                "messages": [
                    _ref(f"{CHANNEL}/messages/{name}.reply"),
                    _ref(f"{CHANNEL}/messages/error"),
                ],
            },
        }
    for name in EVENTS:
        operations[f"event.{name}"] = {
            "action": "send",
            "channel": _ref(CHANNEL),
            "summary": EVENTS[name].summary,
            "messages": [_ref(f"{CHANNEL}/messages/event.{name}")],
        }
    return {
        "asyncapi": "3.1.0",
        "info": {
            "title": "RWI call control",
            "version": VERSION,
            "description": (
                "RWI v1 over WebSocket: one JSON object per text frame. Commands are "
                "answered by one reply (same action_id) before any event they cause; "
                "events carry a log seq, and session.resume {since_seq} replays what a "
                "connection missed. Generated from rwi.protocol.SPECS, "
                "rwi.event_specs.EVENTS and rwi.errors.ERROR_CODES; docs/protocol.md "
                "states the service's decisions."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "local": {
                "host": "127.0.0.1:8080",
                "protocol": "ws",
                "pathname": "/rwi/v1",
                "description": "the default [rwi] listen address",
                "security": [
                    _ref("#/components/securitySchemes/bearer"),
                    _ref("#/components/securitySchemes/queryToken"),
                ],
            }
        },
        "channels": {
            "rwi": {
                "address": "/rwi/v1",
                "title": "RWI connection",
                "messages": {name: _ref(f"#/components/messages/{name}") for name in messages},
            }
        },
        "operations": operations,
        "components": {
            "messages": messages,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "Authorization: Bearer <token> at the upgrade",
                },
                "queryToken": {
                    "type": "httpApiKey",
                    "name": "token",
                    "in": "query",
                    "description": "?token=, used only when no Authorization header is sent",
                },
            },
        },
    }


# --- YAML --------------------------------------------------------------------------------


def _key(key: str) -> str:
    return key if _PLAIN_KEY.match(key) and key.lower() not in _YAML_WORDS else json.dumps(key)


def _scalar(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _lines(value: Any, indent: str) -> list[str]:
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, dict | list) and item:
                out.append(f"{indent}{_key(key)}:")
                out += _lines(item, indent + "  ")
            else:
                out.append(f"{indent}{_key(key)}: {_scalar(item)}")
    else:
        for item in value:
            if isinstance(item, dict | list) and item:
                nested = _lines(item, indent + "  ")
                out.append(f"{indent}- {nested[0].lstrip()}")
                out += nested[1:]
            else:
                out.append(f"{indent}- {_scalar(item)}")
    return out


def to_yaml(value: dict[str, Any]) -> str:
    return "\n".join(_lines(value, "")) + "\n"


def render() -> str:
    header = "# Generated by `python -m rwi.asyncapi` from the protocol's specs; do not edit.\n"
    return header + to_yaml(document())


def main() -> int:
    DOCUMENT.write_text(render())
    sys.stdout.write(f"wrote {DOCUMENT}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
