"""The event programme as typed, immutable values: the event, its sessions and their settings."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

UN_LANGUAGES: tuple[str, ...] = ("ar", "zh", "en", "fr", "ru", "es")
STAKEHOLDER_GROUPS: tuple[str, ...] = (
    "government",
    "civil-society",
    "private-sector",
    "academia",
    "international-organization",
    "technical-community",
    "other",
)

QuestionOrder = Literal["votes", "newest", "moderator", "balanced"]


@dataclass(frozen=True, slots=True)
class QnaSettings:
    """How a session's question queue behaves."""

    enabled: bool = True
    premoderation: bool = True
    anonymous_allowed: bool = True
    max_chars: int = 500
    order: QuestionOrder = "votes"


@dataclass(frozen=True, slots=True)
class FloorSettings:
    """How a session's speakers' list behaves."""

    enabled: bool = True
    speaking_seconds: int = 180
    remote_speakers: bool = True
    revoke_on_expiry: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """One session of the programme, in one room, between two instants (time-zone aware)."""

    id: str
    title: str
    room: str
    track: str
    start: datetime
    end: datetime
    languages: tuple[str, ...] = ("en",)
    moderators: tuple[str, ...] = ()
    speakers: tuple[str, ...] = ()
    capacity: int = 1000
    guest_access: bool = False
    description: str = ""
    qna: QnaSettings = field(default_factory=QnaSettings)
    floor: FloorSettings = field(default_factory=FloorSettings)

    def shifted(self, delta: timedelta) -> Session:
        """Returns the same session moved in time by ``delta`` (used by the demo)."""

        # Shift the instant, not the wall clock: across a daylight-saving change, adding a
        # timedelta to a zoned datetime would move the session by an hour too many or too few.
        def move(moment: datetime) -> datetime:
            return (moment.astimezone(UTC) + delta).astimezone(moment.tzinfo)

        return replace(self, start=move(self.start), end=move(self.end))


@dataclass(frozen=True, slots=True)
class Event:
    """The event as a whole."""

    id: str
    title: str
    timezone: str
    venue: str = ""
    organisers: tuple[str, ...] = ()
    languages: tuple[str, ...] = UN_LANGUAGES
    stakeholder_groups: tuple[str, ...] = STAKEHOLDER_GROUPS


@dataclass(frozen=True, slots=True)
class Programme:
    """An event and its sessions, looked up by id."""

    event: Event
    sessions: tuple[Session, ...]

    def session(self, session_id: str) -> Session | None:
        """Returns the session with that id, or None when the programme has none."""
        for session in self.sessions:
            if session.id == session_id:
                return session
        return None

    @property
    def session_ids(self) -> frozenset[str]:
        """Every session id of the programme (the only values a ``session`` metric label takes)."""
        return frozenset(s.id for s in self.sessions)

    def shifted(self, delta: timedelta) -> Programme:
        """Returns the programme with every session moved in time by ``delta``."""
        return Programme(self.event, tuple(s.shifted(delta) for s in self.sessions))
