"""Speakers' list commands on the wire (registered with signaling's codec by the composition root)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from signaling.messages import Command

EntryId = Annotated[str, msgspec.Meta(pattern=r"^f[0-9a-z]{4,40}$")]
# Generous raw caps: the text rules (moderation.text) give the precise refusal.
RawName = Annotated[str, msgspec.Meta(max_length=2000)]
Group = Annotated[str, msgspec.Meta(max_length=64)]
Position = Annotated[int, msgspec.Meta(ge=0, le=10_000)]


class RequestFloor(Command, tag="floor.request"):
    """A participant or speaker asks for the floor (name, group and mode come from the token)."""


class WithdrawFloor(Command, tag="floor.withdraw"):
    """Take one's request back; while speaking, end one's turn."""


class AddSpeaker(Command, tag="floor.add"):
    """Moderator: put a person in the room who has no device on the list."""

    name: RawName
    group: Group = ""


class GrantFloor(Command, tag="floor.grant"):
    """Moderator: give the floor to a queued entry (a current speaker's turn ends)."""

    entry: EntryId


class SkipEntry(Command, tag="floor.skip"):
    """Moderator: pass over an entry; it goes to the end of the queue."""

    entry: EntryId


class MoveEntry(Command, tag="floor.move"):
    """Moderator: put a queued entry at a 0-based position (clamped to the queue)."""

    entry: EntryId
    position: Position


class RevokeFloor(Command, tag="floor.revoke"):
    """Moderator: end the current turn (no entry), or remove a queued request."""

    entry: EntryId | None = None


class CloseFloor(Command, tag="floor.close"):
    """Moderator: close the list to new requests (or reopen it)."""

    closed: bool


COMMANDS: tuple[type[Command], ...] = (
    RequestFloor,
    WithdrawFloor,
    AddSpeaker,
    GrantFloor,
    SkipEntry,
    MoveEntry,
    RevokeFloor,
    CloseFloor,
)
