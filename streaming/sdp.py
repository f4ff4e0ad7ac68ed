"""What podium reads in SDP before handing it to the media stack (pure).

An offer is checked for shape (RFC 8866: ``v=0`` first, ``o=``, ``s=``, media sections with ICE
credentials and a DTLS fingerprint) and for the media it asks for: a WHIP offer must send, a WHEP
offer must receive, and the channel bounds the tracks (one audio, plus one video on the floor). A
trickle-ICE fragment (RFC 8840, ``application/trickle-ice-sdpfrag``) yields its ICE credentials and
candidates, so the edge can tell trickling from an ICE restart.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from signaling.errors import CandidateInvalid
from signaling.media import parse_candidate, relayable_candidate
from streaming.channels import ChannelSpec
from streaming.errors import IceRestartUnsupported, MalformedSdp, NotAcceptable

MAX_SDP_BYTES = 32 * 1024
MAX_CANDIDATES = 64
_MEDIA = re.compile(r"m=(\w+) (\d+)(?:/\d+)? ([\w/]+)( [\w.-]+)+")
_DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")


@dataclass(slots=True)
class MediaSection:
    """One ``m=`` section of an offer."""

    kind: str
    port: int
    mid: str = ""
    direction: str = "sendrecv"


@dataclass(slots=True)
class Offer:
    """The parts of an SDP offer podium checks."""

    media: list[MediaSection] = field(default_factory=list)
    ice_ufrag: str = ""
    ice_pwd: str = ""

    def count(self, kind: str) -> int:
        """Media sections of that kind that carry media (port not zero, not inactive)."""
        return sum(1 for m in self.media if m.kind == kind and m.port and m.direction != "inactive")


def _lines(body: bytes) -> list[str]:
    if len(body) > MAX_SDP_BYTES:
        raise MalformedSdp(f"the SDP is larger than {MAX_SDP_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedSdp("the SDP is not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    for line in lines:
        if len(line) < 2 or line[1] != "=" or not line[0].isalpha() or not line.isprintable():
            raise MalformedSdp(f"not an SDP line: {line[:40]!r}")
    return lines


def parse_offer(body: bytes) -> Offer:
    """Reads an SDP offer.

    Raises:
        MalformedSdp: not SDP, or without the ICE credentials and fingerprint WebRTC needs.
    """
    lines = _lines(body)
    if not lines or lines[0] != "v=0":
        raise MalformedSdp("an SDP offer starts with v=0")
    if not any(line.startswith("o=") for line in lines) or not any(
        line.startswith("s=") for line in lines
    ):
        raise MalformedSdp("an SDP offer has o= and s= lines")
    offer = Offer()
    fingerprint = False
    section: MediaSection | None = None
    for line in lines:
        if line.startswith("m="):
            match = _MEDIA.fullmatch(line)
            if match is None:
                raise MalformedSdp(f"not a media line: {line[:60]!r}")
            section = MediaSection(kind=match[1], port=int(match[2]))
            offer.media.append(section)
        elif line.startswith("a="):
            name, _, value = line[2:].partition(":")
            if name == "ice-ufrag" and not offer.ice_ufrag:
                offer.ice_ufrag = value
            elif name == "ice-pwd" and not offer.ice_pwd:
                offer.ice_pwd = value
            elif name == "fingerprint":
                fingerprint = True
            elif section is not None and name == "mid":
                section.mid = value
            elif section is not None and name in _DIRECTIONS:
                section.direction = name
    if not offer.media:
        raise MalformedSdp("the offer has no media section")
    if not offer.ice_ufrag or not offer.ice_pwd or not fingerprint:
        raise MalformedSdp("the offer lacks ICE credentials or a DTLS fingerprint")
    return offer


def check_media(offer: Offer, spec: ChannelSpec, *, publish: bool) -> None:
    """Raises unless the offer asks for what the channel carries, in the right direction.

    Args:
        offer: the parsed offer.
        spec: the channel.
        publish: True for WHIP (the client sends), False for WHEP (the client receives).

    Raises:
        NotAcceptable: other media than audio and video, more tracks than the channel carries,
            video on a language channel, or a direction that does not fit.
    """
    unsupported = {m.kind for m in offer.media if m.port} - {"audio", "video"}
    if unsupported:
        raise NotAcceptable(f"podium carries audio and video only, not {sorted(unsupported)}")
    audio, video = offer.count("audio"), offer.count("video")
    if audio > 1 or video > spec.max_video:
        what = "one audio track" + (" and one video track" if spec.max_video else "")
        raise NotAcceptable(
            f"the {spec.id} channel carries {what}; the offer has {audio} audio and {video} video"
        )
    if audio + video == 0:
        raise NotAcceptable("the offer has no audio or video to carry")
    wanted = ("sendonly", "sendrecv") if publish else ("recvonly", "sendrecv")
    for m in offer.media:
        if m.port and m.direction != "inactive" and m.direction not in wanted:
            verb = "send" if publish else "receive"
            raise NotAcceptable(f"a {'WHIP' if publish else 'WHEP'} offer must {verb} its media")


@dataclass(frozen=True, slots=True)
class Fragment:
    """A trickle-ICE fragment: its ICE credentials (if any) and candidates by media section."""

    ice_ufrag: str
    ice_pwd: str
    candidates: tuple[tuple[str, int, str], ...]
    end: bool


def parse_fragment(body: bytes) -> Fragment:
    """Reads an ``application/trickle-ice-sdpfrag`` body (RFC 8840).

    Returns:
        The fragment; each candidate as (mid, media index, ``candidate:…`` attribute value).

    Raises:
        MalformedSdp: not a fragment, a malformed candidate, or too many candidates.
    """
    lines = _lines(body)
    ufrag = pwd = ""
    mid = ""
    index = -1
    end = False
    candidates: list[tuple[str, int, str]] = []
    for line in lines:
        if line.startswith("m="):
            if _MEDIA.fullmatch(line) is None:
                raise MalformedSdp(f"not a media line: {line[:60]!r}")
            index += 1
            mid = ""
        elif line.startswith("a="):
            name, _, value = line[2:].partition(":")
            if name == "ice-ufrag":
                ufrag = value
            elif name == "ice-pwd":
                pwd = value
            elif name == "mid":
                mid = value
            elif name == "end-of-candidates":
                end = True
            elif name == "candidate":
                _parsed(line[2:])
                candidates.append((mid, max(index, 0), line[2:]))
        elif not line.startswith(("v=", "o=", "s=", "t=", "c=")):
            raise MalformedSdp(f"a trickle-ICE fragment has no {line[:2]!r} lines")
    if len(candidates) > MAX_CANDIDATES:
        raise MalformedSdp(f"at most {MAX_CANDIDATES} candidates per PATCH")
    if not candidates and not end and not ufrag:
        raise MalformedSdp("the fragment carries no candidate, credentials or end-of-candidates")
    return Fragment(ufrag, pwd, tuple(candidates), end)


def keep_candidate(text: str, *, allow_private: bool) -> bool:
    """Whether a ``candidate:…`` value may reach the media stack (the relay's rules, one set for both).

    Its address must be an IP address or an mDNS name — never a host name the node would resolve
    itself (``localhost`` reaches this machine) — and not a loopback, link-local or metadata address
    unless private candidates are allowed: the node sends connectivity checks to every candidate.

    Raises:
        MalformedSdp: the text is not an ICE candidate.
    """
    try:
        return relayable_candidate(text, allow_private=allow_private)
    except CandidateInvalid as exc:
        raise MalformedSdp(f"not an ICE candidate: {exc.message}") from None


def _parsed(text: str) -> None:
    try:
        parse_candidate(text)
    except CandidateInvalid as exc:
        raise MalformedSdp(f"not an ICE candidate: {exc.message}") from None


def drop_candidates(body: bytes, *, allow_private: bool) -> bytes:
    """The SDP without the candidate lines ``keep_candidate`` refuses to keep.

    Raises:
        MalformedSdp: a candidate line is not an ICE candidate.
    """
    kept = [
        line
        for line in body.split(b"\n")
        if not line.startswith(b"a=candidate:")
        or keep_candidate(
            line[2:].rstrip(b"\r").decode("utf-8", "replace"), allow_private=allow_private
        )
    ]
    return b"\n".join(kept)


def check_no_restart(fragment: Fragment, ufrag: str, pwd: str, *, restart_asked: bool) -> None:
    """Raises when the fragment (or ``If-Match: *``) asks for an ICE restart.

    Raises:
        IceRestartUnsupported: new ICE credentials, or a restart asked with ``If-Match: *``.
    """
    changed = bool(fragment.ice_ufrag) and (fragment.ice_ufrag, fragment.ice_pwd) != (ufrag, pwd)
    if restart_asked or changed:
        raise IceRestartUnsupported(
            "podium cannot restart ICE on a WHIP/WHEP session: DELETE it and POST a new offer"
        )
