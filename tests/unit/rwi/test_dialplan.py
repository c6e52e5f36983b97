"""Inbound routing: first matching rule wins, no match is a 404, bad rules fail at start."""

from __future__ import annotations

import pytest

from rwi.dialplan import NO_ROUTE, Offer, parse_routes, route
from rwi.errors import ConfigError

RULES = parse_routes(
    [
        {"name": "blocked", "match_from": r"sip:666@", "reject": 403},
        {
            "name": "vip",
            "match_user": r"^2000$",
            "match_headers": {"X-Tier": "^gold$"},
            "context": "vip",
        },
        {"name": "sales", "match_user": r"^2\d{3}$", "context": "sales"},
        {"name": "agent", "match_to": r"sip:1001@", "user": "1001"},
    ],
    "rwi.toml",
)


def offer(user: str, caller: str = "sip:100@x", callee: str = "", **headers: str) -> Offer:
    return Offer(user=user, caller=caller, callee=callee or f"sip:{user}@pbx", headers=headers)


def test_first_match_wins() -> None:
    assert route(RULES, offer("2000", **{"x-tier": "gold"})).context == "vip"
    assert route(RULES, offer("2000", **{"X-Tier": "silver"})).context == "sales"
    assert route(RULES, offer("2000", caller="sip:666@evil")).reject == 403
    assert route(RULES, offer("1001")).user == "1001"
    assert route(RULES, offer("2345")).rule == "sales"


def test_nothing_matches_is_404_never_a_relay() -> None:
    assert route(RULES, offer("sip-anything")) == NO_ROUTE
    assert NO_ROUTE.reject == 404
    assert route((), offer("2000")) == NO_ROUTE


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"context": "a", "user": "b"}, "exactly one of context, user, reject"),
        ({"match_user": "("}, "exactly one of"),
        ({"match_user": "(", "context": "a"}, "routes[0].match_user is not a valid regular"),
        ({"reject": 200}, "routes[0].reject must be a SIP status code"),
        ({"context": "a", "colour": 1}, "routes[0].colour is not a known setting"),
        ({"context": ""}, "routes[0].context must be a non-empty string"),
        ({"context": "a", "match_headers": {"X-A": 5}}, "match_headers.X-A must be a regular"),
    ],
)
def test_bad_rules_name_the_key_and_file(rule: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_routes([rule], "rwi.toml")
    assert "rwi.toml" in str(info.value)
    assert message in str(info.value)
