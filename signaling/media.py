"""What the media relay lets through: SDP and ICE candidate rules, and the addresses it never relays.

Pure functions: text in, a checked value (or a typed refusal) out. The relay calls them before anything
reaches another person's socket, so a desk's browser is never pointed at loopback, link-local or a
cloud metadata endpoint by a crafted candidate, and never parses an oversized or malformed SDP.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from signaling.errors import CandidateInvalid, SdpInvalid

MAX_SDP_BYTES = 16 * 1024
MAX_CANDIDATE_BYTES = 512
MAX_MEDIA_SECTIONS = 8
CANDIDATE_TYPES = frozenset({"host", "srflx", "prflx", "relay"})
TRANSPORTS = frozenset({"udp", "tcp"})

# Never relayed (unless a deployment allows private candidates): this machine, "any", link-local
# and the metadata endpoints of the big clouds (169.254.169.254 is link-local already).
_BLOCKED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "0.0.0.0/32",
        "169.254.0.0/16",
        "100.100.100.200/32",
        "::1/128",
        "::/128",
        "fe80::/10",
        "fd00:ec2::254/128",
    )
)
_LINE = re.compile(r"[a-z]=")
_ICE_CHARS = re.compile(r"[A-Za-z0-9+/]{1,32}")
_DIGITS = re.compile(r"[0-9]{1,10}")
_MDNS = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+local", re.IGNORECASE)
_EXTENSION_NAME = re.compile(r"[A-Za-z0-9-]{1,32}")
_EXTENSION_VALUE = re.compile(r"[\x21-\x7e]{1,256}")
# C0 controls but CR and LF, DEL, C1 controls, the Unicode line and paragraph separators, and
# lone surrogates (no UTF-8 text holds them; Python strings can).
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Candidate:
    """One parsed ICE candidate (RFC 8839 §5.1); extensions (``raddr``, ``generation``…) kept as pairs."""

    foundation: str
    component: int
    transport: str
    priority: int
    address: str
    port: int
    kind: str
    extensions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class CheckedSdp:
    """An SDP that passed the rules, with the candidate lines that were taken out of it."""

    sdp: str
    dropped: int


def parse_candidate(text: str) -> Candidate:
    """Parses a ``candidate:…`` attribute value (without ``a=``).

    Raises:
        CandidateInvalid: the text is not a candidate; the message says which part is wrong.
    """
    if _utf8_size(text) > MAX_CANDIDATE_BYTES:
        raise CandidateInvalid(f"a candidate is at most {MAX_CANDIDATE_BYTES} bytes")
    if _CONTROL.search(text) or "\r" in text or "\n" in text:
        raise CandidateInvalid("a candidate holds no control characters or line breaks")
    if not text.startswith("candidate:"):
        raise CandidateInvalid("a candidate starts with 'candidate:'")
    parts = text[len("candidate:") :].split(" ")
    if len(parts) < 8 or parts[6] != "typ":
        raise CandidateInvalid(
            "a candidate is 'candidate:<foundation> <component> <transport> <priority> "
            "<address> <port> typ <type>' and optional name/value pairs"
        )
    foundation, component, transport, priority, address, port, _, kind, *rest = parts
    if not _ICE_CHARS.fullmatch(foundation):
        raise CandidateInvalid("the foundation is 1–32 letters, digits, '+' or '/'")
    if not _DIGITS.fullmatch(component) or not 1 <= int(component) <= 256:
        raise CandidateInvalid("the component is a number from 1 to 256")
    if transport.lower() not in TRANSPORTS:
        raise CandidateInvalid("the transport is udp or tcp")
    if not _DIGITS.fullmatch(priority) or int(priority) > 2**32 - 1:
        raise CandidateInvalid("the priority is a number from 0 to 4294967295")
    if not _is_address(address):
        raise CandidateInvalid("the address is an IPv4 or IPv6 address or an mDNS '.local' name")
    if not _DIGITS.fullmatch(port) or not 1 <= int(port) <= 65535:
        raise CandidateInvalid("the port is a number from 1 to 65535")
    if kind not in CANDIDATE_TYPES:
        raise CandidateInvalid("the type is host, srflx, prflx or relay")
    if len(rest) % 2:
        raise CandidateInvalid("extensions come as name/value pairs")
    pairs = tuple(zip(rest[::2], rest[1::2], strict=True))
    for name, value in pairs:
        if not _EXTENSION_NAME.fullmatch(name) or not _EXTENSION_VALUE.fullmatch(value):
            raise CandidateInvalid(f"the extension {name[:32]!r} is not a name/value pair")
        if name == "raddr" and not _is_address(value):
            raise CandidateInvalid("raddr is an IPv4 or IPv6 address or an mDNS '.local' name")
        if name == "rport" and (not _DIGITS.fullmatch(value) or int(value) > 65535):
            raise CandidateInvalid("rport is a number from 0 to 65535")
    return Candidate(
        foundation=foundation,
        component=int(component),
        transport=transport.lower(),
        priority=int(priority),
        address=address,
        port=int(port),
        kind=kind,
        extensions=pairs,
    )


def blocked_address(address: str) -> bool:
    """True for addresses never relayed by default: loopback, any, link-local, metadata endpoints.

    An mDNS name is not blocked: the server cannot tell where it resolves, and only peers on the
    same link resolve it at all.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in net for net in _BLOCKED if net.version == ip.version)


def relayable_candidate(text: str, *, allow_private: bool = False) -> bool:
    """Checks a trickled candidate; False when it must be dropped (its address is blocked).

    ``""`` (the end of candidates) is always relayable.

    Raises:
        CandidateInvalid: the text is not a candidate.
    """
    if text == "":
        return True
    candidate = parse_candidate(text)
    return allow_private or not blocked_address(candidate.address)


def check_sdp(
    sdp: str,
    *,
    offer: bool,
    max_bytes: int = MAX_SDP_BYTES,
    allow_private: bool = False,
) -> CheckedSdp:
    """Checks a session description and removes the candidate lines that must not be relayed.

    Args:
        sdp: the description as the client sent it (CRLF or LF line ends).
        offer: offers must also carry ICE credentials and a DTLS fingerprint.
        max_bytes: the largest description accepted (UTF-8 bytes).
        allow_private: keep candidates on loopback and link-local addresses.

    Returns:
        The description to relay, line ends as sent, and how many candidate lines were removed.

    Raises:
        SdpInvalid: the description breaks a rule; the message says which.
    """
    if _utf8_size(sdp) > max_bytes:
        raise SdpInvalid(f"an SDP is at most {max_bytes} bytes")
    if _CONTROL.search(sdp):
        raise SdpInvalid("an SDP holds no control characters other than CR and LF")
    lines = sdp.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line end
    kept: list[str] = []
    dropped = media = 0
    seen: set[str] = set()
    for number, raw in enumerate(lines, 1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if "\r" in line:
            raise SdpInvalid(f"line {number}: a CR only comes before LF")
        if not _LINE.match(line):
            raise SdpInvalid(f"line {number}: every line is '<letter>=<value>'")
        seen.add(line[0])
        if line[0] == "m":
            media += 1
        if line.startswith("a=ice-ufrag:"):
            seen.add("ufrag")
        elif line.startswith("a=ice-pwd:"):
            seen.add("pwd")
        elif line.startswith("a=fingerprint:"):
            seen.add("fingerprint")
        elif line.startswith("a=candidate:"):
            try:
                keep = relayable_candidate(line[2:], allow_private=allow_private)
            except CandidateInvalid as exc:
                raise SdpInvalid(f"line {number}: {exc.message}") from exc
            if not keep:
                dropped += 1
                continue
        kept.append(raw)
    if not lines or lines[0].rstrip("\r") != "v=0":
        raise SdpInvalid("an SDP starts with 'v=0'")
    for letter in ("o", "s"):
        if letter not in seen:
            raise SdpInvalid(f"an SDP has an '{letter}=' line")
    if not 1 <= media <= MAX_MEDIA_SECTIONS:
        raise SdpInvalid(f"an SDP has 1 to {MAX_MEDIA_SECTIONS} media sections ('m=' lines)")
    if offer:
        for need, attribute in (("ufrag", "ice-ufrag"), ("pwd", "ice-pwd")):
            if need not in seen:
                raise SdpInvalid(f"an offer carries a={attribute}")
        if "fingerprint" not in seen:
            raise SdpInvalid("an offer carries a=fingerprint (DTLS)")
    ending = "\n" if sdp.endswith("\n") else ""
    return CheckedSdp("\n".join(kept) + ending, dropped)


def _utf8_size(text: str) -> int:
    # Measured before anything else, so it must not raise: a lone surrogate counts as its three
    # bytes here and is refused by the control-character rule right after.
    return len(text.encode("utf-8", "surrogatepass"))


def _is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return len(text) <= 253 and _MDNS.fullmatch(text) is not None
    return True
