"""The SDP and ICE candidate rules under Hypothesis (``signaling.media`` for the relay, ``streaming.sdp``
for WHIP/WHEP): arbitrary text and mutated valid descriptions never raise anything but the typed
errors, and no candidate that passes names a blocked address (loopback, any, link-local, the cloud
metadata endpoints) unless a deployment allows private candidates.

The blocked set is written out again here, from the standard library's address properties, so the
test does not merely restate the module's list.
"""

from __future__ import annotations

import contextlib
import ipaddress

from hypothesis import example, given
from hypothesis import strategies as st

from signaling.errors import CandidateInvalid, SdpInvalid
from signaling.media import check_sdp, parse_candidate, relayable_candidate
from streaming import sdp
from streaming.channels import FLOOR, ChannelSpec, Kind
from streaming.errors import MalformedSdp, NotAcceptable
from tests.properties.harness import budget

METADATA = frozenset(ipaddress.ip_address(a) for a in ("100.100.100.200", "fd00:ec2::254"))
CHANNELS = (ChannelSpec(FLOOR, Kind.FLOOR), ChannelSpec("fr", Kind.LANGUAGE))

OFFER = [
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111",
    "c=IN IP4 0.0.0.0",
    "a=mid:0",
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
    "a=setup:actpass",
    "a=sendonly",
    "a=rtpmap:111 opus/48000/2",
    "a=candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host",
    "m=video 9 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 0.0.0.0",
    "a=mid:1",
    "a=sendonly",
    "a=rtpmap:96 VP8/90000",
    "a=candidate:2 1 udp 1686052607 203.0.113.7 61000 typ srflx raddr 192.0.2.10 rport 50000",
    "a=end-of-candidates",
]
FRAGMENT = [
    "a=ice-ufrag:abcd",
    "a=ice-pwd:abcdefghijklmnopqrstuvwx",
    "m=audio 9 UDP/TLS/RTP/SAVPF 0",
    "a=mid:0",
    "a=candidate:1 1 udp 2130706431 192.0.2.10 50000 typ host",
]


# Any Python text, lone surrogates included (no wire decoder lets one through; the rules must
# refuse them all the same).
ANY = st.characters(exclude_categories=())


def text(max_size: int) -> st.SearchStrategy[str]:
    """Arbitrary text, now and then with a lone surrogate in it."""
    pieces = st.sampled_from(["\ud800", "\udfff", "v=0", "a=", " ", "\r", "\n"])
    return st.text(ANY, max_size=max_size) | st.lists(pieces, max_size=12).map("".join)


def blocked(address: str) -> bool:
    """Whether a candidate address is one the relay must never point anyone at."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # an mDNS name: only peers on the same link resolve it
    if isinstance(ip, ipaddress.IPv6Address):
        ip = ip.ipv4_mapped or ipaddress.IPv6Address(int(ip))  # the scope does not matter
    return ip.is_loopback or ip.is_unspecified or ip.is_link_local or ip in METADATA


# ---- strategies --------------------------------------------------------------------------------

ADDRESSES = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=6).map(lambda ip: f"::ffff:{ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)}"),
    st.sampled_from(
        [
            "127.0.0.1",
            "127.255.255.254",
            "0.0.0.0",
            "169.254.169.254",
            "100.100.100.200",
            "::1",
            "::",
            "fe80::1",
            "FE80::1%eth0",
            "::1%1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:7f00:1",
            "0:0:0:0:0:ffff:7f00:1",
            "::ffff:0.0.0.0",
            "localhost",
            "abc.local",
            "127.0.0.1.local",
            "0x7f.0.0.1",
            "2130706433",
            "127.1",
            "[::1]",
        ]
    ),
    text(20),
)
WORDS = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=12)
EXTENSIONS = st.lists(
    st.tuples(st.sampled_from(["raddr", "rport", "generation", "ufrag", "network-id"]) | WORDS,
              ADDRESSES | WORDS),
    max_size=3,
).map(lambda pairs: "".join(f" {name} {value}" for name, value in pairs))  # fmt: skip


@st.composite
def candidates(draw: st.DrawFn) -> str:
    """A candidate built from its parts: mostly well-formed, the address anything."""
    parts = [
        draw(st.sampled_from(["1", "842163049", "a+/B"]) | WORDS),
        draw(st.sampled_from(["1", "2", "256"]) | st.integers(-1, 300).map(str)),
        draw(st.sampled_from(["udp", "UDP", "tcp"]) | WORDS),
        draw(st.sampled_from(["2130706431", "4294967295"]) | st.integers(-1, 2**33).map(str)),
        draw(ADDRESSES),
        draw(st.sampled_from(["9", "50000", "65535"]) | st.integers(-1, 70_000).map(str)),
        draw(st.sampled_from(["typ"]) | WORDS),
        draw(st.sampled_from(["host", "srflx", "prflx", "relay"]) | WORDS),
    ]
    return "candidate:" + " ".join(parts) + draw(EXTENSIONS)


LINES = st.one_of(
    candidates().map(lambda c: "a=" + c),
    st.sampled_from(OFFER),
    text(40),
    st.sampled_from(["a=ice-ufrag:", "a=fingerprint:", "m=application 9 UDP/DTLS/SCTP x", "v=0",
                     "a=recvonly", "a=inactive", "m=audio 0 RTP/AVP 0", "a=end-of-candidates"]),
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, lines: list[str]) -> str:
    """A valid description with lines dropped, added, doubled or altered, and its line ends chosen."""
    result = list(lines)
    for _ in range(draw(st.integers(0, 4))):
        how = draw(st.sampled_from(["drop", "insert", "double", "alter"]))
        at = draw(st.integers(0, max(0, len(result) - 1)))
        if how == "drop" and result:
            result.pop(at)
        elif how == "insert":
            result.insert(at, draw(LINES))
        elif how == "double" and result:
            result.insert(at, result[at])
        elif how == "alter" and result:
            line = result[at]
            cut = draw(st.integers(0, len(line)))
            result[at] = (
                line[:cut] + draw(st.text(ANY, max_size=3)) + line[cut + draw(st.integers(0, 3)) :]
            )
    end = draw(st.sampled_from(["\r\n", "\n"]))
    return end.join(result) + draw(st.sampled_from([end, ""]))


# ---- the relay's rules (signaling.media) -------------------------------------------------------


def _relayed_candidates(text: str) -> list[str]:
    return [line.rstrip("\r")[2:] for line in text.split("\n") if line.startswith("a=candidate:")]


@budget(700)
@given(text(300) | candidates(), st.booleans())
@example("candidate:1 1 udp 1 127.0.0.1 9 typ host", False)
@example("candidate:1 1 udp 1 ::ffff:127.0.0.1 9 typ host", False)
@example("candidate:1 1 udp 1 fe80::1%eth0 9 typ host", False)
@example("candidate:1 1 udp 1 192.0.2.1 9 typ host\ud800", False)  # once a UnicodeEncodeError
def test_a_candidate_is_parsed_or_refused_and_a_relayed_one_names_no_blocked_address(
    text: str, allow_private: bool
) -> None:
    try:
        relay = relayable_candidate(text, allow_private=allow_private)
    except CandidateInvalid:
        return
    if text == "":
        return  # the end of candidates
    address = parse_candidate(text).address
    if relay and not allow_private:
        assert not blocked(address), text
    if not relay:
        assert blocked(address), text  # only a blocked address is dropped


@budget(700)
@given(mutated(OFFER) | text(400), st.booleans(), st.booleans())
@example("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=\ud800\r\n", True, False)  # once a UnicodeEncodeError
def test_a_description_is_checked_or_refused_and_what_is_relayed_names_no_blocked_address(
    text: str, offer: bool, allow_private: bool
) -> None:
    try:
        checked = check_sdp(text, offer=offer, allow_private=allow_private)
    except SdpInvalid:
        return
    sent, relayed = _relayed_candidates(text), _relayed_candidates(checked.sdp)
    assert len(relayed) + checked.dropped == len(sent)
    for candidate in relayed:
        assert allow_private or not blocked(parse_candidate(candidate).address), candidate
    assert check_sdp(checked.sdp, offer=offer, allow_private=allow_private).dropped == 0


# ---- WHIP and WHEP (streaming.sdp) -------------------------------------------------------------


def _encoded(text: str, raw: bytes) -> bytes:
    return text.encode("utf-8", "surrogatepass") if raw == b"" else raw


@budget(700)
@given(mutated(OFFER) | text(400), st.binary(max_size=200), st.booleans(), st.booleans())
def test_an_offer_is_read_or_refused_with_a_typed_error_and_its_candidates_filtered(
    text: str, raw: bytes, publish: bool, allow_private: bool
) -> None:
    body = _encoded(text, raw)
    try:
        offer = sdp.parse_offer(body)
    except MalformedSdp:
        pass
    else:
        for spec in CHANNELS:
            with contextlib.suppress(NotAcceptable):
                sdp.check_media(offer, spec, publish=publish)
    try:
        kept = sdp.drop_candidates(body, allow_private=allow_private)
    except MalformedSdp:
        return
    for line in kept.split(b"\n"):
        if line.startswith(b"a=candidate:") and not allow_private:
            candidate = line[2:].rstrip(b"\r").decode("utf-8", "replace")
            assert not blocked(parse_candidate(candidate).address), line


@budget(700)
@given(mutated(FRAGMENT) | text(300), st.binary(max_size=200), st.booleans())
def test_a_trickle_fragment_is_read_or_refused_and_its_candidates_are_candidates(
    text: str, raw: bytes, allow_private: bool
) -> None:
    try:
        fragment = sdp.parse_fragment(_encoded(text, raw))
    except MalformedSdp:
        return
    for _, _, candidate in fragment.candidates:
        parse_candidate(candidate)  # every one a well-formed candidate
        try:
            keep = sdp.keep_candidate(candidate, allow_private=allow_private)
        except MalformedSdp as exc:  # pragma: no cover - a parsed candidate is never refused
            raise AssertionError(candidate) from exc
        assert not keep or allow_private or not blocked(parse_candidate(candidate).address)


def test_the_valid_samples_pass_so_the_mutations_start_from_something_accepted() -> None:
    text = "\r\n".join(OFFER) + "\r\n"
    assert check_sdp(text, offer=True).dropped == 0
    sdp.check_media(sdp.parse_offer(text.encode()), CHANNELS[0], publish=True)
    assert len(sdp.parse_fragment("\r\n".join(FRAGMENT).encode()).candidates) == 1
