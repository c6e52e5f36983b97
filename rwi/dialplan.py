"""The inbound dialplan: which configured route an INVITE takes (pure).

First matching ``[[routes]]`` entry wins. A route sends the call to an RWI context
(offered to its subscribers), to a local user (a plain B2BUA call, still fully logged),
or rejects it with a code. An INVITE no route matches is refused with 404: the service
is never an open relay.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rwi.errors import ConfigError


@dataclass(frozen=True)
class Offer:
    """What the dialplan may look at in an inbound INVITE."""

    user: str
    caller: str
    callee: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RouteRule:
    name: str
    match_user: re.Pattern[str] | None = None
    match_from: re.Pattern[str] | None = None
    match_to: re.Pattern[str] | None = None
    match_headers: tuple[tuple[str, re.Pattern[str]], ...] = ()
    context: str | None = None
    user: str | None = None
    reject: int | None = None

    def matches(self, offer: Offer) -> bool:
        checks = (
            (self.match_user, offer.user),
            (self.match_from, offer.caller),
            (self.match_to, offer.callee),
        )
        if any(p is not None and not p.search(value) for p, value in checks):
            return False
        lowered = {k.lower(): v for k, v in offer.headers.items()}
        return all(
            name in lowered and pattern.search(lowered[name])
            for name, pattern in self.match_headers
        )


@dataclass(frozen=True)
class Routed:
    """The outcome: exactly one of context, user, reject is set."""

    rule: str
    context: str | None = None
    user: str | None = None
    reject: int | None = None


NO_ROUTE = Routed(rule="<none>", reject=404)


def route(rules: Sequence[RouteRule], offer: Offer) -> Routed:
    for rule in rules:
        if rule.matches(offer):
            return Routed(rule.name, rule.context, rule.user, rule.reject)
    return NO_ROUTE


def _pattern(value: Any, where: str) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a regular expression string")
    try:
        return re.compile(value)
    except re.error as exc:
        raise ConfigError(f"{where} is not a valid regular expression: {exc}") from None


_ROUTE_KEYS = {
    "name",
    "match_user",
    "match_from",
    "match_to",
    "match_headers",
    "context",
    "user",
    "reject",
}


def parse_routes(items: Sequence[Any], source: str) -> tuple[RouteRule, ...]:
    rules = []
    for index, item in enumerate(items):
        where = f"{source}: routes[{index}]"
        if not isinstance(item, Mapping):
            raise ConfigError(f"{where} must be a table")
        unknown = sorted(set(item) - _ROUTE_KEYS)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]} is not a known setting")
        targets = [k for k in ("context", "user", "reject") if k in item]
        if len(targets) != 1:
            raise ConfigError(f"{where} needs exactly one of context, user, reject")
        reject = item.get("reject")
        if reject is not None and (
            isinstance(reject, bool) or not isinstance(reject, int) or not 400 <= reject <= 699
        ):
            raise ConfigError(f"{where}.reject must be a SIP status code from 400 to 699")
        for key in ("context", "user", "name"):
            if key in item and (not isinstance(item[key], str) or not item[key]):
                raise ConfigError(f"{where}.{key} must be a non-empty string")
        headers = item.get("match_headers", {})
        if not isinstance(headers, Mapping):
            raise ConfigError(f"{where}.match_headers must be a table of header = regex")
        rules.append(
            RouteRule(
                name=item.get("name", f"route{index}"),
                match_user=_pattern(item["match_user"], f"{where}.match_user")
                if "match_user" in item
                else None,
                match_from=_pattern(item["match_from"], f"{where}.match_from")
                if "match_from" in item
                else None,
                match_to=_pattern(item["match_to"], f"{where}.match_to")
                if "match_to" in item
                else None,
                match_headers=tuple(
                    (name.lower(), _pattern(value, f"{where}.match_headers.{name}"))
                    for name, value in headers.items()
                ),
                context=item.get("context"),
                user=item.get("user"),
                reject=reject,
            )
        )
    return tuple(rules)
