"""Converts a pretalx/frab schedule JSON export into programme TOML text.

Errors: :class:`ScheduleImportError`, whose message names the JSON path of the first field that is
missing or cannot be read (e.g. ``schedule.conference.days[0].rooms["Room XVII"][2].duration``).
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from config.programme import MAX_SESSION_LENGTH, ProgrammeErrors, parse_programme
from signaling.programme import UN_LANGUAGES

__all__ = ["DEFAULT_LANGUAGE", "ScheduleImportError", "import_schedule", "slugify"]

DEFAULT_LANGUAGE: Final = "en"
_SLUG_LENGTH: Final = 64
_DURATION: Final = re.compile(r"(\d{1,2}):([0-5]\d)(?::([0-5]\d))?")
_TOML_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


class ScheduleImportError(Exception):
    """The export lacks something a programme needs, or holds a value that cannot be read."""


@dataclass(frozen=True, slots=True)
class _Talk:
    """One talk of the export, read and checked, before it is given its session id."""

    base_id: str
    title: str
    room: str
    track: str
    start: datetime
    end: datetime
    language: str
    speakers: tuple[str, ...]
    description: str


def import_schedule(data: dict[str, Any]) -> str:
    """Converts a frab-style schedule export (as pretalx and frab publish it) to programme TOML.

    Each talk becomes one session. Its id is the slug of the talk's ``slug`` (else ``guid``, ``id``
    or title), made unique; its language is the talk's when that is a UN language, else ``en``. The
    event's languages are the ones its sessions use. Moderators, capacity and the Q&A and floor
    settings are left to their defaults for the organiser to fill in.

    Args:
        data: The parsed JSON document, ``{"schedule": {"conference": {...}}}``.

    Returns:
        TOML text that :func:`config.programme.parse_programme` accepts.

    Raises:
        ScheduleImportError: The export is missing a field, holds an unreadable value, has no
            talks, or converts into a programme that does not validate.
    """
    schedule = _object(_object(data, "$").get("schedule"), "schedule")
    conference = _object(schedule.get("conference"), "schedule.conference")
    where = "schedule.conference"
    title = _text(conference, "title", where)
    zone_name = _text(conference, "time_zone_name", where)
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ScheduleImportError(
            f"{where}.time_zone_name: {zone_name!r} is not an IANA time zone, e.g. Europe/Zurich"
        ) from exc
    acronym = conference.get("acronym")
    event_id = slugify(acronym if isinstance(acronym, str) else "") or slugify(title) or "event"

    talks = _talks(conference, zone)
    # Chronological order reads best, and decides which of two equal slugs keeps the plain id.
    talks.sort(key=lambda talk: (talk.start.astimezone(UTC), talk.room))
    languages = tuple(code for code in UN_LANGUAGES if any(t.language == code for t in talks))
    lines = [
        "# Imported from a pretalx/frab schedule export. Review moderators, capacity,",
        "# guest access and the qna and floor settings of each session before the event.",
        "",
        "[event]",
        f"id = {_string(event_id)}",
        f"title = {_string(title)}",
        f"timezone = {_string(zone_name)}",
        f"languages = {_strings(languages)}",
    ]
    used: set[str] = set()
    for talk in talks:
        lines += [
            "",
            "[[sessions]]",
            f"id = {_string(_unique(talk.base_id, used))}",
            f"title = {_string(talk.title)}",
            f"room = {_string(talk.room)}",
            f"track = {_string(talk.track)}",
            f"start = {talk.start.isoformat()}",
            f"end = {talk.end.isoformat()}",
            f"languages = {_strings((talk.language,))}",
            f"speakers = {_strings(talk.speakers)}",
            f"description = {_string(talk.description)}",
        ]
    text = "\n".join(lines) + "\n"
    try:
        # The contract is "TOML the loader accepts": checking it here turns any gap between the
        # checks above and the loader's into an import error instead of a broken file on disk.
        parse_programme(text, "<imported schedule>")
    except ProgrammeErrors as exc:
        raise ScheduleImportError(f"the imported programme does not validate:\n{exc}") from exc
    return text


def slugify(value: str) -> str:
    """Lowercase ASCII letters, digits and single ``-``, at most 64 characters; may be empty.

    Args:
        value: Any text, e.g. a talk title or a pretalx slug.

    Returns:
        The slug (accents dropped: "Zürich" gives "zurich").
    """
    ascii_text = unicodedata.normalize("NFKD", value).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:_SLUG_LENGTH].rstrip("-")


def _talks(conference: dict[str, Any], zone: ZoneInfo) -> list[_Talk]:
    """Reads every talk of every room of every day."""
    days = conference.get("days")
    if not isinstance(days, list):
        raise ScheduleImportError("schedule.conference.days: must be a list of days")
    talks: list[_Talk] = []
    for day_index, day in enumerate(days):
        where = f"schedule.conference.days[{day_index}]"
        rooms = _object(_object(day, where).get("rooms"), f"{where}.rooms")
        for room, room_talks in rooms.items():
            room_where = f"{where}.rooms[{json.dumps(room, ensure_ascii=False)}]"
            if not isinstance(room_talks, list):
                raise ScheduleImportError(f"{room_where}: must be a list of talks")
            for talk_index, talk in enumerate(room_talks):
                talk_where = f"{room_where}[{talk_index}]"
                talks.append(_talk(_object(talk, talk_where), talk_where, room, zone))
    if not talks:
        raise ScheduleImportError(
            "schedule.conference.days: the schedule has no talks, and a programme needs a session"
        )
    return talks


def _talk(talk: dict[str, Any], where: str, room: str, zone: ZoneInfo) -> _Talk:
    """Reads one talk found at JSON path ``where``, in the list of the room named ``room``."""
    title = _text(talk, "title", where)
    start = _start(_text(talk, "date", where), f"{where}.date", zone)
    length = _duration(_text(talk, "duration", where), f"{where}.duration")
    room_name = talk.get("room")
    track = talk.get("track")
    language = talk.get("language")
    description = talk.get("abstract") or talk.get("description")
    return _Talk(
        base_id=_base_id(talk, title),
        title=title,
        room=room_name if isinstance(room_name, str) and room_name.strip() else room,
        track=track if isinstance(track, str) else "",
        start=start,
        end=start + length,
        language=_language(language if isinstance(language, str) else ""),
        speakers=_speakers(talk.get("persons"), f"{where}.persons"),
        description=description.strip() if isinstance(description, str) else "",
    )


def _start(value: str, where: str, zone: ZoneInfo) -> datetime:
    """Reads an ISO 8601 date-time; one without an offset is read in the conference time zone."""
    try:
        start = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ScheduleImportError(
            f"{where}: must be an ISO 8601 date-time, e.g. 2027-05-24T09:00:00+02:00, not {value!r}"
        ) from exc
    return start if start.tzinfo is not None else start.replace(tzinfo=zone)


def _duration(value: str, where: str) -> timedelta:
    """Reads frab's "HH:MM" (or "HH:MM:SS") duration, longer than zero and at most 24 hours."""
    match = _DURATION.fullmatch(value.strip())
    if match is None:
        raise ScheduleImportError(f'{where}: must be "HH:MM", e.g. "01:30", not {value!r}')
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    length = timedelta(hours=hours, minutes=minutes, seconds=seconds)
    if not timedelta(0) < length <= MAX_SESSION_LENGTH:
        raise ScheduleImportError(f"{where}: must be longer than 00:00 and at most 24:00")
    return length


def _base_id(talk: dict[str, Any], title: str) -> str:
    """The slug a session id starts from: the talk's slug, else its guid, numeric id or title."""
    for key in ("slug", "guid", "id"):
        value = talk.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool):
            slug = slugify(str(value))
            if slug:
                return slug
    return slugify(title) or "session"


def _unique(base: str, used: set[str]) -> str:
    """``base``, or ``base-2``, ``base-3``… (kept within the slug length) if already taken."""
    candidate, number = base, 1
    while candidate in used:
        number += 1
        suffix = f"-{number}"
        candidate = base[: _SLUG_LENGTH - len(suffix)].rstrip("-") + suffix
    used.add(candidate)
    return candidate


def _language(value: str) -> str:
    """The UN language a talk is given in, from a code like "fr" or "es-419"; else English."""
    primary = re.split(r"[-_]", value.strip(), maxsplit=1)[0].lower()
    return primary if primary in UN_LANGUAGES else DEFAULT_LANGUAGE


def _speakers(persons: object, where: str) -> tuple[str, ...]:
    """The display names of a talk's persons (pretalx's ``public_name``, or frab's ``name``)."""
    if persons is None:
        return ()
    if not isinstance(persons, list):
        raise ScheduleImportError(f"{where}: must be a list of persons")
    names: list[str] = []
    for index, person in enumerate(persons):
        entry = _object(person, f"{where}[{index}]")
        name = entry.get("public_name") or entry.get("name")
        # A person with no public name stays off the programme rather than failing the import.
        if isinstance(name, str) and name.strip():
            names.append(name.strip())
    return tuple(names)


def _object(value: object, where: str) -> dict[str, Any]:
    """``value`` as a JSON object, or an error naming where one was expected."""
    if not isinstance(value, dict):
        raise ScheduleImportError(f"{where}: must be a JSON object, found {_json_type(value)}")
    return value


def _json_type(value: object) -> str:
    """Names a parsed JSON value's type as the export's author knows it."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return f"a Python {type(value).__name__}"  # not from json.load: a caller's mistake


def _text(table: dict[str, Any], key: str, where: str) -> str:
    """A required, non-blank string field."""
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ScheduleImportError(f"{where}.{key}: must be a non-empty string")
    return value.strip()


def _string(value: str) -> str:
    """``value`` as a TOML basic string, with every character TOML forbids raw escaped."""
    escaped = (
        _TOML_ESCAPES.get(char, f"\\u{ord(char):04x}" if char < " " or char == "\x7f" else char)
        for char in value
    )
    return f'"{"".join(escaped)}"'


def _strings(values: tuple[str, ...]) -> str:
    """``values`` as a one-line TOML array of basic strings."""
    return f"[{', '.join(_string(value) for value in values)}]"
