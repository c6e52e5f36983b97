"""SIPp call scenarios shared by the call-leg interop tests and the e2e tests.

The templates live in ``tests/interop/calls/scenarios`` (their header comments say
what each does); ``call_sipp`` fills their ``{placeholders}`` (``ring``, ``ack_action``,
``middle`` default to nothing) and the fragments below are what tests put in them:
a 180, an OPTIONS answer (optionally acting on it), in-dialog requests from the UAC
of ``uac_call.xml``.
"""

from __future__ import annotations

from pathlib import Path

from tests.support.sipp import Sipp


def call_sipp(workdir: Path, scenario: str, **subs: object) -> Sipp:
    """A SIPp running call template ``scenario`` with ``subs`` filled in."""
    return Sipp(workdir, scenario, **subs)


RING_180 = """  <send>
    <![CDATA[
SIP/2.0 180 Ringing
[last_Via:]
[last_From:]
[last_To:];tag=[pid]SIPpTag01[call_number]
[last_Call-ID:]
[last_CSeq:]
Contact: <sip:[local_ip]:[local_port];transport=[transport]>
Content-Length: 0

]]>
  </send>
  <pause milliseconds="50"/>"""

ANSWER_OPTIONS = """  <recv request="OPTIONS"/>
  <send>
    <![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Accept: application/sdp
Content-Length: 0

]]>
  </send>"""


#: a UAS phone hangs up its own call (after a REFER, it leaves the transfer); CSeq 3
UAS_BYE = """  <send retrans="500">
    <![CDATA[
BYE [$remote_contact] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: <sip:bob@[local_ip]:[local_port]>;tag=[pid]SIPpTag01[call_number]
To: [$remote_from]
Call-ID: [call_id]
CSeq: 3 BYE
Max-Forwards: 70
Content-Length: 0

]]>
  </send>
  <recv response="200"/>"""


def answer_options_with(action: str) -> str:
    """``ANSWER_OPTIONS`` that also runs ``action`` (an ``<exec .../>``) as the OPTIONS
    arrives: a test's ``sip.options_ping`` tells the phone when to act (say, press keys
    with ``play_pcap_audio``), instead of the phone acting at a fixed time."""
    recv = f"""  <recv request="OPTIONS">
    <action>
      {action}
    </action>
  </recv>"""
    return ANSWER_OPTIONS.replace('  <recv request="OPTIONS"/>', recv, 1)


def uac_request(method: str, cseq: int, body: str = "", extra: str = "") -> str:
    """An in-dialog request from the SIPp UAC of ``uac_call.xml``."""
    ctype = "Content-Type: application/sdp\n" if body and method == "INVITE" else extra
    return f"""  <send retrans="500">
    <![CDATA[
{method} sip:[service]@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch];rport
From: "Alice Caller" <sip:alice@[local_ip]:[local_port]>;tag=[pid]SIPpTag00[call_number]
To: <sip:[service]@[remote_ip]:[remote_port]>[peer_tag_param]
Call-ID: [call_id]
CSeq: {cseq} {method}
Contact: <sip:alice@[local_ip]:[local_port]>
Max-Forwards: 70
{ctype}Content-Length: [len]

{body}]]>
  </send>"""


def uac_info_dtmf(cseq: int, digit: str) -> str:
    """SIPp sends one SIP INFO digit (application/dtmf-relay) and expects 200."""
    body = f"Signal={digit}\nDuration=160\n"
    ctype = "Content-Type: application/dtmf-relay\n"
    return uac_request("INFO", cseq, body, ctype) + '\n  <recv response="200"/>'


def uac_reinvite(cseq: int, direction: str, expect: str) -> str:
    """A re-INVITE with ``direction``; our 200 must carry ``a=<expect>``; then ACK."""
    sdp = (
        "v=0\no=user1 53655765 2353687638 IN IP4 [local_ip]\ns=-\nc=IN IP4 [media_ip]\n"
        "t=0 0\nm=audio [media_port] RTP/AVP 0 101\na=rtpmap:0 PCMU/8000\n"
        f"a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\na={direction}\n"
    )
    var = f"d{cseq}"
    check = f"""  <recv response="100" optional="true"/>
  <recv response="200">
    <action>
      <ereg regexp="a={expect}" search_in="body" check_it="true" assign_to="{var}"/>
    </action>
  </recv>
  <Reference variables="{var}"/>"""
    ack = uac_request("ACK", cseq).replace('<send retrans="500">', "<send>")
    return "\n".join((uac_request("INVITE", cseq, sdp), check, ack))
