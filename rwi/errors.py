"""The service's error tree. Each RWI error knows its wire form (code + message)."""

from __future__ import annotations

from typing import Any

ERROR_CODES = (
    "parse_error",
    "invalid_request",
    "unknown_action",
    "invalid_params",
    "call_not_found",
    "not_found",
    "call_exists",
    "forbidden",
    "already_owned",
    "invalid_state",
    "rate_limited",
    "idempotency_conflict",
    "internal_error",
)


class RwiServiceError(Exception):
    """Base of every error the service raises on purpose."""


class ConfigError(RwiServiceError):
    """A configuration file or setting is wrong; the message names the key and the file."""


class RwiError(RwiServiceError):
    """An error reply: ``code`` is one of the contract's codes, ``message`` names the field."""

    def __init__(self, code: str, message: str) -> None:
        assert code in ERROR_CODES, code
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def wire(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message}


def invalid_params(message: str) -> RwiError:
    return RwiError("invalid_params", message)
