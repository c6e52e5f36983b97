"""One error tree for the SIP stack (``sip_media.sip``).

Every error knows its wire form: the SIP status code and reason phrase the stack would
answer with if the offending message were a request. Layers above the parser
(transactions, dialogs, the registrar, the adapter) add their own subclasses here so a
single ``except SipError`` at the transport boundary is enough to turn any refusal into
a response — or, for responses and ACKs, into a silent drop.
"""

from __future__ import annotations


class SipError(Exception):
    """Base of every error raised by ``sip_media.sip``; carries a SIP status and reason."""

    status: int = 500
    reason: str = "Server Internal Error"

    def __init__(
        self,
        reason: str | None = None,
        *,
        status: int | None = None,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        if status is not None:
            self.status = status
        if reason is not None:
            self.reason = reason
        # Extra header fields the refusal must carry (Min-Expires on 423, a challenge...).
        self.headers = headers
        super().__init__(f"{self.status} {self.reason}")


class SipParseError(SipError):
    """A message (or part of one) is malformed; usually answered with 400.

    ``status`` is 400 unless a more specific code applies (505 for an unknown SIP version,
    513 for an oversized message, 416 for an unusable URI scheme...). ``fatal`` is set when
    the stream framing itself is lost (bad Content-Length on TCP): the connection must be
    closed because the next message boundary is unknown.
    """

    status = 400
    reason = "Bad Request"

    def __init__(
        self, reason: str | None = None, *, status: int | None = None, fatal: bool = False
    ) -> None:
        super().__init__(reason, status=status)
        self.fatal = fatal


class AuthError(SipError):
    """Digest authentication failed or could not be attempted (401/407/403 semantics).

    ``headers`` carries the fresh challenge(s) to send with the 401/407, and ``stale``
    says the credentials were right but the nonce expired (RFC 7616 §3.3 ``stale=true``).
    """

    status = 403
    reason = "Forbidden"

    def __init__(
        self,
        reason: str | None = None,
        *,
        status: int | None = None,
        stale: bool = False,
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        super().__init__(reason, status=status, headers=headers)
        self.stale = stale


class RegistrarError(SipError):
    """A REGISTER cannot be applied to the bindings (400, 403, 423 + Min-Expires, 500)."""

    status = 400
    reason = "Bad Request"


class SdpError(SipError):
    """An SDP body is malformed (400) or no common media could be found (488)."""

    status = 488
    reason = "Not Acceptable Here"
