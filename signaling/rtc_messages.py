"""The media relay's messages: ``rtc.*`` commands a speaker or a desk sends, and what the other end gets.

A relayed message keeps its command's type (``rtc.offer`` in, ``rtc.offer`` out), so a browser's
signaling code reads like the JSEP it drives; the relayed form has no request id and carries what the
server adds (the media session's id, the speaker's name and group, a hangup's reason).
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from signaling.messages import Command, Message

MediaId = Annotated[str, msgspec.Meta(pattern=r"^m[0-9a-f]{16,40}$")]
# Generous raw caps: the media rules (signaling.media) give the precise refusal.
RawSdp = Annotated[str, msgspec.Meta(max_length=61_440)]
RawCandidate = Annotated[str, msgspec.Meta(max_length=4096)]
Mid = Annotated[str, msgspec.Meta(max_length=32)]
MLine = Annotated[int, msgspec.Meta(ge=0, le=63)]
PeerState = Literal["connected", "disconnected", "failed", "closed"]
HangupReason = Literal["hangup", "left", "replaced", "revoked", "yielded", "expired"]

# ---- client → server -------------------------------------------------------------------------------


class Ice(Command, tag="rtc.ice"):
    """The floor holder or a desk asks for ICE servers (TURN credentials included)."""


class Offer(Command, tag="rtc.offer"):
    """The floor holder offers media to the desks; with ``media``, renegotiates that session."""

    sdp: RawSdp
    media: MediaId | None = None


class Answer(Command, tag="rtc.answer"):
    """A desk answers an offer (the first desk to answer takes the media session)."""

    media: MediaId
    sdp: RawSdp


class Candidate(Command, tag="rtc.candidate"):
    """A trickled ICE candidate for the other end; ``""`` ends the candidates."""

    media: MediaId
    candidate: RawCandidate
    mid: Mid | None = None
    mline: MLine | None = None


class Restart(Command, tag="rtc.restart"):
    """The desk asks the speaker for an ICE restart (a new offer for the same media session)."""

    media: MediaId


class Hangup(Command, tag="rtc.hangup"):
    """Either end ends the media session."""

    media: MediaId


class State(Command, tag="rtc.state"):
    """Either end reports its peer connection's state (for the other end, and for metrics)."""

    media: MediaId
    state: PeerState


COMMANDS: tuple[type[Command], ...] = (Ice, Offer, Answer, Candidate, Restart, Hangup, State)

# ---- server → client (relayed from the other end) --------------------------------------------------


class OfferRelayed(Message, tag="rtc.offer"):
    """A speaker's offer, to the desks (or to the desk that took the media session)."""

    media: str
    sdp: str
    name: str
    group: str


class AnswerRelayed(Message, tag="rtc.answer"):
    """The desk's answer, to the speaker."""

    media: str
    sdp: str


class CandidateRelayed(Message, tag="rtc.candidate"):
    """The other end's ICE candidate."""

    media: str
    candidate: str
    mid: str | None = None
    mline: int | None = None


class RestartRelayed(Message, tag="rtc.restart"):
    """The desk asks the speaker to offer again with new ICE credentials."""

    media: str


class HangupRelayed(Message, tag="rtc.hangup"):
    """The media session ended: the other end hung up or left, or the speaker's turn ended."""

    media: str
    reason: HangupReason


class StateRelayed(Message, tag="rtc.state"):
    """The other end's peer connection state."""

    media: str
    state: PeerState


RELAYED_TYPES: tuple[str, ...] = (
    "rtc.offer",
    "rtc.answer",
    "rtc.candidate",
    "rtc.restart",
    "rtc.hangup",
    "rtc.state",
)
