"""Digest authentication: RFC 7616 §3.9.1 vectors, client answers, server verification."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sip_media.sip.digest import (
    DigestClient,
    DigestServer,
    authorization_for,
    choose_challenge,
    credentials_header_name,
    digest_response,
)
from sip_media.sip.errors import AuthError
from sip_media.sip.headers import AuthHeader

RFC7616_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC7616_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC7616_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"


@pytest.mark.parametrize(
    ("algorithm", "expected"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_rfc7616_section_3_9_1_vectors(algorithm: str, expected: str) -> None:
    assert (
        digest_response(
            algorithm=algorithm,
            username="Mufasa",
            realm="http-auth@example.org",
            password="Circle of Life",
            method="GET",
            uri="/dir/index.html",
            nonce=RFC7616_NONCE,
            qop="auth",
            nc="00000001",
            cnonce=RFC7616_CNONCE,
        )
        == expected
    )
    challenge = AuthHeader.parse(
        f'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC7616_NONCE}", opaque="{RFC7616_OPAQUE}"'
    )
    creds = authorization_for(
        challenge,
        method="GET",
        uri="/dir/index.html",
        username="Mufasa",
        password="Circle of Life",
        cnonce=RFC7616_CNONCE,
    )
    assert creds.param("response") == expected
    assert (creds.param("qop"), creds.param("nc"), creds.param("opaque")) == (
        "auth",
        "00000001",
        RFC7616_OPAQUE,
    )
    assert f"algorithm={algorithm}, " in str(creds) and "qop=auth, nc=00000001" in str(creds)


def test_rfc2617_no_qop_and_sess_variant() -> None:
    # RFC 2617 §3.5 example digest (qop=auth) and the RFC 2069 form without qop.
    assert (
        digest_response(
            algorithm="MD5",
            username="Mufasa",
            realm="testrealm@host.com",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093",
            qop="auth",
            nc="00000001",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    challenge = AuthHeader.parse('Digest realm="r", nonce="n"')
    creds = authorization_for(challenge, method="REGISTER", uri="sip:r", username="u", password="p")
    assert creds.param("qop") is None and creds.param("cnonce") is None
    assert creds.param("response") == digest_response(
        algorithm="MD5", username="u", realm="r", password="p", method="REGISTER",
        uri="sip:r", nonce="n",
    )  # fmt: skip
    sess = authorization_for(
        AuthHeader.parse('Digest realm="r", nonce="n", algorithm=MD5-sess, qop="auth"'),
        method="INVITE", uri="sip:x@r", username="u", password="p", cnonce="c",
    )  # fmt: skip
    assert sess.param("response") == digest_response(
        algorithm="MD5-sess", username="u", realm="r", password="p", method="INVITE",
        uri="sip:x@r", nonce="n", qop="auth", nc="00000001", cnonce="c",
    )  # fmt: skip


def test_client_helpers() -> None:
    md5 = AuthHeader.parse('Digest realm="r", nonce="1", algorithm=MD5')
    sha = AuthHeader.parse('Digest realm="r", nonce="2", algorithm=SHA-256')
    other = AuthHeader.parse("Basic realm=x")
    assert choose_challenge([md5, other, sha]) is sha
    assert choose_challenge([other]) is None
    assert credentials_header_name(407) == "Proxy-Authorization"
    assert credentials_header_name(401) == "Authorization"
    with pytest.raises(AuthError):
        authorization_for(other, method="X", uri="sip:a", username="u", password="p")
    with pytest.raises(AuthError):
        authorization_for(
            AuthHeader.parse('Digest realm="r", nonce="1", algorithm=SHA-512-256'),
            method="X", uri="sip:a", username="u", password="p",
        )  # fmt: skip
    client = DigestClient("u", "p")
    qop = AuthHeader.parse('Digest realm="r", nonce="n1", qop="auth"')
    assert client.authorize(qop, method="BYE", uri="sip:a").param("nc") == "00000001"
    assert client.authorize(qop, method="BYE", uri="sip:a").param("nc") == "00000002"
    fresh = AuthHeader.parse('Digest realm="r", nonce="n2", qop="auth"')
    assert client.authorize(fresh, method="BYE", uri="sip:a").param("nc") == "00000001"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


USERS = {"alice": "wonderland"}


def make_server(clock: Clock, **kwargs: object) -> DigestServer:
    return DigestServer("example.test", b"k" * 32, USERS.get, clock=clock, **kwargs)  # type: ignore[arg-type]


def answer(
    server: DigestServer, pick: Callable[[list[AuthHeader]], AuthHeader], **kw: str
) -> AuthHeader:
    challenges = [AuthHeader.parse(v) for _, v in server.challenges()]
    return DigestClient(kw.get("user", "alice"), kw.get("password", "wonderland")).authorize(
        pick(challenges), method="REGISTER", uri="sip:example.test"
    )


def test_server_challenge_format() -> None:
    server = make_server(Clock())
    headers = server.challenges()
    assert [n for n, _ in headers] == ["WWW-Authenticate", "WWW-Authenticate"]
    first, second = (AuthHeader.parse(v) for _, v in headers)
    assert (first.param("algorithm"), second.param("algorithm")) == ("SHA-256", "MD5")
    assert first.param("qop") == "auth" and first.param("realm") == "example.test"
    assert first.param("nonce") == second.param("nonce") and first.param("opaque")
    assert first.param("stale") is None
    stale = AuthHeader.parse(server.challenges(stale=True)[0][1])
    assert stale.param("stale") == "true" and stale.param("nonce") != first.param("nonce")
    proxy = make_server(Clock(), proxy=True)
    assert proxy.status == 407 and proxy.challenges()[0][0] == "Proxy-Authenticate"


@pytest.mark.parametrize("index", [0, 1])
def test_server_accepts_good_credentials(index: int) -> None:
    server = make_server(Clock())
    creds = answer(server, lambda c: c[index])
    result = server.verify(creds, method="REGISTER", uri="sip:example.test")
    assert (result.username, result.realm) == ("alice", "example.test")
    assert result.algorithm == ("SHA-256", "MD5")[index]


def refused(server: DigestServer, creds: AuthHeader | None, **kw: str) -> AuthError:
    with pytest.raises(AuthError) as info:
        server.verify(
            creds, method=kw.get("method", "REGISTER"), uri=kw.get("uri", "sip:example.test")
        )
    assert info.value.status == 401 and info.value.headers
    return info.value


def test_server_refusals() -> None:
    clock = Clock()
    server = make_server(clock)
    assert "required" in refused(server, None).reason
    assert "scheme" in refused(server, AuthHeader.parse("NoOneKnowsThisScheme x=y")).reason
    assert "Wrong" in refused(server, answer(server, lambda c: c[0], password="bad")).reason
    assert "Wrong" in refused(server, answer(server, lambda c: c[0], user="mallory")).reason
    good = answer(server, lambda c: c[0])
    assert "uri" in refused(server, good, uri="sip:other.test").reason
    assert "Wrong" in refused(server, good, method="INVITE").reason
    forged = AuthHeader.build(
        "Digest", [(n, "AAAA" + v[4:] if n == "nonce" else v) for n, v in good.params]
    )
    assert "nonce" in refused(server, forged).reason
    other_realm = AuthHeader.build(
        "Digest", [(n, "x" if n == "realm" else v) for n, v in good.params]
    )
    assert "realm" in refused(server, other_realm).reason
    no_qop = AuthHeader.build("Digest", [(n, v) for n, v in good.params if n != "qop"])
    assert "qop" in refused(server, no_qop).reason
    md5_only = make_server(clock, algorithms=("MD5",))
    assert "not offered" in refused(md5_only, answer(server, lambda c: c[0])).reason
    other_secret = DigestServer("example.test", b"x" * 32, USERS.get, clock=clock)
    assert "nonce" in refused(other_secret, good).reason


def test_nonce_expiry_is_stale_and_nc_must_increase() -> None:
    clock = Clock()
    server = make_server(clock, nonce_ttl=60.0)
    challenge = AuthHeader.parse(server.challenges()[0][1])
    client = DigestClient("alice", "wonderland")
    first = client.authorize(challenge, method="REGISTER", uri="sip:example.test")
    server.verify(first, method="REGISTER", uri="sip:example.test")
    assert "Replayed" in refused(server, first).reason  # same nc again
    second = client.authorize(challenge, method="REGISTER", uri="sip:example.test")
    server.verify(second, method="REGISTER", uri="sip:example.test")
    clock.now += 61
    third = client.authorize(challenge, method="REGISTER", uri="sip:example.test")
    error = refused(server, third)
    assert error.stale and "expired" in error.reason
    assert AuthHeader.parse(error.headers[0][1]).param("stale") == "true"
    # Wrong password with an expired nonce is not "stale": the client must not retry blindly.
    bad = DigestClient("alice", "nope").authorize(
        challenge, method="REGISTER", uri="sip:example.test"
    )
    assert not refused(server, bad).stale


def test_nonce_tracking_is_bounded() -> None:
    clock = Clock()
    server = make_server(clock, max_tracked_nonces=4)
    sessions = []
    for _ in range(6):
        clock.now += 1
        challenge = AuthHeader.parse(server.challenges()[0][1])
        client = DigestClient("alice", "wonderland")
        creds = client.authorize(challenge, method="REGISTER", uri="sip:example.test")
        server.verify(creds, method="REGISTER", uri="sip:example.test")
        sessions.append((client, challenge))
    assert len(server._seen_nc) <= 4
    # The oldest nonces lost their nc history: a next request on them must start over
    # (stale), never be accepted with a count we can no longer check.
    client, challenge = sessions[0]
    error = refused(server, client.authorize(challenge, method="REGISTER", uri="sip:example.test"))
    assert error.stale and "tracked" in error.reason
    client, challenge = sessions[-1]
    follow_up = client.authorize(challenge, method="REGISTER", uri="sip:example.test")
    assert server.verify(follow_up, method="REGISTER", uri="sip:example.test").username == "alice"
