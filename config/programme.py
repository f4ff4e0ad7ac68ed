"""Reads a programme TOML file into a validated :class:`signaling.programme.Programme`.

Errors: every problem found is a :class:`ProgrammeError` (file, line, field, reason); the loader
collects all of them in one pass and raises a single :class:`ProgrammeErrors`, so an organiser fixes
the whole file at once instead of one mistake per run.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from difflib import get_close_matches
from pathlib import Path
from typing import Any, Final, TypeVar, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from signaling.programme import (
    STAKEHOLDER_GROUPS,
    UN_LANGUAGES,
    Event,
    FloorSettings,
    Programme,
    QnaSettings,
    QuestionOrder,
    Session,
)

__all__ = [
    "MAX_SESSION_LENGTH",
    "ProgrammeError",
    "ProgrammeErrors",
    "load_programme",
    "parse_programme",
]

MAX_SESSION_LENGTH: Final = timedelta(hours=24)
SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")

_EXAMPLE_INSTANT: Final = "2026-06-01T09:00:00+02:00"
_ORDERS: Final[dict[str, QuestionOrder]] = {order: order for order in get_args(QuestionOrder)}
_TOP_FIELDS: Final = ("event", "sessions")
_EVENT_FIELDS: Final = (
    "id",
    "title",
    "timezone",
    "venue",
    "organisers",
    "languages",
    "stakeholder_groups",
)
_SESSION_FIELDS: Final = (
    "id",
    "title",
    "room",
    "track",
    "start",
    "end",
    "languages",
    "moderators",
    "speakers",
    "capacity",
    "guest_access",
    "description",
    "qna",
    "floor",
)
_QNA_FIELDS: Final = ("enabled", "premoderation", "anonymous_allowed", "max_chars", "order")
_FLOOR_FIELDS: Final = ("enabled", "speaking_seconds", "remote_speakers", "revoke_on_expiry")

FieldPath = tuple[str | int, ...]
_T = TypeVar("_T")


class ProgrammeError(Exception):
    """One problem in a programme file.

    Attributes:
        file: The file name as given to the loader (``<string>`` for parsed text).
        line: The 1-based line the problem is on, or None when it cannot be placed.
        field: The dotted path of the field, e.g. ``sessions[3].start`` (empty for syntax errors).
        reason: What is wrong, phrased to follow the field name.
    """

    def __init__(self, file: str, line: int | None, field: str, reason: str) -> None:
        super().__init__(file, line, field, reason)
        self.file = file
        self.line = line
        self.field = field
        self.reason = reason

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if not self.field:
            return f"{where}: {self.reason}"
        return f"{where}: {self.field}: {self.reason}"


class ProgrammeErrors(Exception):
    """Every problem found in a programme file (at least one), in the order they were found.

    Attributes:
        errors: The individual problems.
    """

    def __init__(self, errors: Sequence[ProgrammeError]) -> None:
        super().__init__(*errors)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(error) for error in self.errors)


def load_programme(path: str | Path) -> Programme:
    """Reads and validates a programme TOML file.

    Args:
        path: The file to read (UTF-8).

    Returns:
        The validated programme.

    Raises:
        ProgrammeErrors: The file cannot be read, is not TOML, or breaks the schema.
    """
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        reason = f"cannot be read: {exc.strerror or exc}"
        raise ProgrammeErrors([ProgrammeError(file, None, "", reason)]) from exc
    except UnicodeDecodeError as exc:
        reason = f"is not UTF-8 text (byte {exc.start})"
        raise ProgrammeErrors([ProgrammeError(file, None, "", reason)]) from exc
    return parse_programme(text, file)


def parse_programme(text: str, file: str = "<string>") -> Programme:
    """Validates programme TOML text.

    Args:
        text: The TOML document.
        file: The name used in error messages.

    Returns:
        The validated programme.

    Raises:
        ProgrammeErrors: The text is not TOML or breaks the schema.
    """
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line, reason = _syntax_error(str(exc), text)
        raise ProgrammeErrors([ProgrammeError(file, line, "", reason)]) from exc
    reader = _Reader(file, _LineIndex(text))
    programme = reader.programme(document)
    if reader.errors or programme is None:
        # In file order, as an editor walks them; problems with no line (missing tables) first.
        raise ProgrammeErrors(sorted(reader.errors, key=lambda error: error.line or 0))
    return programme


def _syntax_error(message: str, text: str) -> tuple[int | None, str]:
    """Splits tomllib's "msg (at line L, column C)" into a line and a reason."""
    if match := re.search(r"\s*\(at line (\d+), column (\d+)\)$", message):
        reason = f"not valid TOML: {message[: match.start()]} (column {match[2]})"
        return int(match[1]), reason
    if match := re.search(r"\s*\(at end of document\)$", message):
        return max(1, len(text.splitlines())), f"not valid TOML: {message[: match.start()]}"
    return None, f"not valid TOML: {message}"


def _dotted(path: FieldPath) -> str:
    """Formats ("sessions", 3, "start") as ``sessions[3].start``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{name}" if out else name
    return out


def _toml_type(value: object) -> str:
    """Names a parsed value's TOML type, with its article, for "must be X, not Y" messages."""
    # bool before int and datetime before date: each is a subclass of the latter.
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, datetime):
        return "a local date-time" if value.tzinfo is None else "an offset date-time"
    if isinstance(value, date):
        return "a local date"
    if isinstance(value, time):
        return "a local time"
    if isinstance(value, list):
        return "an array"
    return "a table"


_KEY_PART: Final = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED_KEY: Final = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_ARRAY_HEADER: Final = re.compile(rf"\s*\[\[\s*({_DOTTED_KEY})\s*\]\]")
_TABLE_HEADER: Final = re.compile(rf"\s*\[\s*({_DOTTED_KEY})\s*\]")
_KEY_LINE: Final = re.compile(rf"\s*({_DOTTED_KEY})\s*=")
_KEY_PARTS: Final = re.compile(_KEY_PART)


def _key_parts(dotted: str) -> tuple[str, ...]:
    """Splits a TOML dotted key into its parts, unquoting quoted ones (escapes left as written)."""
    parts = (match[0] for match in _KEY_PARTS.finditer(dotted))
    return tuple(p[1:-1] if p[0] in "\"'" else p for p in parts)


class _LineIndex:
    """The line each table header and key sits on, found by scanning the raw text.

    tomllib reports no positions, so this is a best-effort map from field paths (with
    array-of-tables indices, as tomllib numbers them) to 1-based lines; lines inside multi-line
    strings are skipped.
    """

    def __init__(self, text: str) -> None:
        self._lines: dict[FieldPath, int] = {}
        counts: dict[FieldPath, int] = {}
        table: FieldPath = ()
        open_string: str | None = None
        for number, line in enumerate(text.splitlines(), start=1):
            if open_string is not None:
                if open_string in line:
                    open_string = None
                continue
            if match := _ARRAY_HEADER.match(line):
                parts = _key_parts(match[1])
                array = (*self._resolve(parts[:-1], counts), parts[-1])
                counts[array] = counts.get(array, -1) + 1
                table = (*array, counts[array])
                self._lines.setdefault(table, number)
            elif match := _TABLE_HEADER.match(line):
                table = self._resolve(_key_parts(match[1]), counts)
                self._lines.setdefault(table, number)
            elif match := _KEY_LINE.match(line):
                self._lines.setdefault((*table, *_key_parts(match[1])), number)
                value = line[match.end() :].lstrip()
                for quotes in ('"""', "'''"):
                    if value.startswith(quotes) and quotes not in value[3:]:
                        open_string = quotes

    @staticmethod
    def _resolve(parts: tuple[str, ...], counts: dict[FieldPath, int]) -> FieldPath:
        """Adds the current index after every part that names an array of tables."""
        resolved: FieldPath = ()
        for part in parts:
            resolved = (*resolved, part)
            if resolved in counts:
                resolved = (*resolved, counts[resolved])
        return resolved

    def line_of(self, path: FieldPath) -> int | None:
        """The line of the field, else of its nearest enclosing table or key that has one."""
        for end in range(len(path), 0, -1):
            line = self._lines.get(path[:end])
            if line is not None:
                return line
        return None


@dataclass(frozen=True, slots=True)
class _EventContext:
    """What sessions need from the event to be validated: its languages and time zone."""

    languages: tuple[str, ...]
    zone: ZoneInfo | None


class _Reader:
    """Walks the parsed document, turning each problem into a located ProgrammeError."""

    def __init__(self, file: str, lines: _LineIndex) -> None:
        self.file = file
        self.lines = lines
        self.errors: list[ProgrammeError] = []

    def fail(self, path: FieldPath, reason: str) -> None:
        """Records one problem at ``path``."""
        self.errors.append(
            ProgrammeError(self.file, self.lines.line_of(path), _dotted(path), reason)
        )

    def programme(self, document: dict[str, Any]) -> Programme | None:
        """Validates the whole document; None when the event is missing."""
        self.known(document, (), _TOP_FIELDS)
        event, context = self.event(document.get("event"))
        sessions = self.sessions(document.get("sessions"), context)
        return None if event is None else Programme(event, sessions)

    def event(self, raw: object) -> tuple[Event | None, _EventContext]:
        """Validates ``[event]``."""
        path: FieldPath = ("event",)
        if raw is None:
            self.fail(path, "is required: add an [event] table")
            return None, _EventContext(UN_LANGUAGES, None)
        table = self.table(raw, path, _EVENT_FIELDS)
        if table is None:
            return None, _EventContext(UN_LANGUAGES, None)
        event_id = self.slug(table, "id", path)
        title = self.string(table, "title", path)
        zone_name = self.string(table, "timezone", path)
        zone = self.zone(zone_name, (*path, "timezone"))
        languages = self.codes(table, "languages", path, UN_LANGUAGES, UN_LANGUAGES)
        event = Event(
            id=event_id,
            title=title,
            timezone=zone_name,
            venue=self.string(table, "venue", path, default=""),
            organisers=self.strings(table, "organisers", path),
            languages=languages,
            stakeholder_groups=self.codes(
                table, "stakeholder_groups", path, None, STAKEHOLDER_GROUPS
            ),
        )
        return event, _EventContext(languages, zone)

    def zone(self, name: str, path: FieldPath) -> ZoneInfo | None:
        """Looks the time zone up in the IANA database; None (reported) when unknown."""
        if not name:
            return None  # already reported as missing or mistyped
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            self.fail(path, f"{name!r} is not an IANA time zone, e.g. Europe/Zurich")
            return None

    def sessions(self, raw: object, context: _EventContext) -> tuple[Session, ...]:
        """Validates every ``[[sessions]]`` block and the uniqueness of their ids."""
        path: FieldPath = ("sessions",)
        if not isinstance(raw, list):
            if raw is None:
                self.fail(path, "at least one session is required: add a [[sessions]] table")
            else:
                self.fail(path, f"must be an array of tables ([[sessions]]), not {_toml_type(raw)}")
            return ()
        if not raw:
            self.fail(path, "at least one session is required: add a [[sessions]] table")
        sessions: list[Session] = []
        first_index: dict[str, int] = {}
        for index, item in enumerate(raw):
            session = self.session(item, (*path, index), context)
            if session is not None:
                sessions.append(session)
            session_id = item.get("id") if isinstance(item, dict) else None
            if not isinstance(session_id, str) or not session_id:
                continue
            if session_id in first_index:
                self.fail(
                    (*path, index, "id"),
                    f"{session_id!r} is already the id of sessions[{first_index[session_id]}]",
                )
            else:
                first_index[session_id] = index
        return tuple(sessions)

    def session(self, raw: object, path: FieldPath, context: _EventContext) -> Session | None:
        """Validates one ``[[sessions]]`` block; None when it cannot be built."""
        table = self.table(raw, path, _SESSION_FIELDS)
        if table is None:
            return None
        session_id = self.slug(table, "id", path)
        start = self.instant(table, "start", path, context.zone)
        end = self.instant(table, "end", path, context.zone)
        if start is not None and end is not None:
            # Compare in UTC: aware datetimes sharing one ZoneInfo compare and subtract by wall
            # clock, which is wrong across a daylight-saving change.
            length = end.astimezone(UTC) - start.astimezone(UTC)
            if length <= timedelta(0):
                self.fail((*path, "end"), f"must be after start ({start.isoformat()})")
            elif length > MAX_SESSION_LENGTH:
                self.fail((*path, "end"), f"makes the session longer than 24 hours ({length})")
        title = self.string(table, "title", path)
        room = self.string(table, "room", path)
        track = self.string(table, "track", path, default="")
        languages = self.codes(table, "languages", path, context.languages, context.languages)
        moderators = self.strings(table, "moderators", path)
        speakers = self.strings(table, "speakers", path)
        capacity = self.integer(table, "capacity", path, 1000, 1, 100_000)
        guest_access = self.boolean(table, "guest_access", path, False)
        description = self.string(table, "description", path, default="")
        qna = self.qna(table.get("qna"), (*path, "qna"))
        floor = self.floor(table.get("floor"), (*path, "floor"))
        if start is None or end is None:
            return None
        return Session(
            id=session_id,
            title=title,
            room=room,
            track=track,
            start=start,
            end=end,
            languages=languages,
            moderators=moderators,
            speakers=speakers,
            capacity=capacity,
            guest_access=guest_access,
            description=description,
            qna=qna,
            floor=floor,
        )

    def qna(self, raw: object, path: FieldPath) -> QnaSettings:
        """Validates a session's optional ``qna`` table."""
        default = QnaSettings()
        table = {} if raw is None else self.table(raw, path, _QNA_FIELDS)
        if table is None:
            return default
        order = self.string(table, "order", path, default=default.order)
        if order not in _ORDERS:
            self.fail((*path, "order"), f"must be one of {', '.join(_ORDERS)}, not {order!r}")
        return QnaSettings(
            enabled=self.boolean(table, "enabled", path, default.enabled),
            premoderation=self.boolean(table, "premoderation", path, default.premoderation),
            anonymous_allowed=self.boolean(
                table, "anonymous_allowed", path, default.anonymous_allowed
            ),
            max_chars=self.integer(table, "max_chars", path, default.max_chars, 1, 2000),
            order=_ORDERS.get(order, default.order),
        )

    def floor(self, raw: object, path: FieldPath) -> FloorSettings:
        """Validates a session's optional ``floor`` table."""
        default = FloorSettings()
        table = {} if raw is None else self.table(raw, path, _FLOOR_FIELDS)
        if table is None:
            return default
        return FloorSettings(
            enabled=self.boolean(table, "enabled", path, default.enabled),
            speaking_seconds=self.integer(
                table, "speaking_seconds", path, default.speaking_seconds, 10, 3600
            ),
            remote_speakers=self.boolean(table, "remote_speakers", path, default.remote_speakers),
            revoke_on_expiry=self.boolean(
                table, "revoke_on_expiry", path, default.revoke_on_expiry
            ),
        )

    def table(self, raw: object, path: FieldPath, fields: Collection[str]) -> dict[str, Any] | None:
        """Checks that ``raw`` is a table with no unknown keys; None (reported) when not a table."""
        if not isinstance(raw, dict):
            self.fail(path, f"must be a table, not {_toml_type(raw)}")
            return None
        self.known(raw, path, fields)
        return raw

    def known(self, table: dict[str, Any], path: FieldPath, fields: Collection[str]) -> None:
        """Reports every key of ``table`` outside ``fields``, suggesting the likely intended one."""
        for key in table:
            if key not in fields:
                close = get_close_matches(key, fields, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                self.fail((*path, key), f"unknown field{hint}")

    def present(
        self, table: dict[str, Any], key: str, path: FieldPath, kind: type[_T], expected: str
    ) -> _T | None:
        """The value at ``key`` when it has the expected type, else None (reported if mistyped)."""
        value = table.get(key)
        if value is None:
            return None
        # bool is a subclass of int, but `capacity = true` is a mistake, not 1.
        if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
            return value
        self.fail((*path, key), f"must be {expected}, not {_toml_type(value)}")
        return None

    def string(
        self, table: dict[str, Any], key: str, path: FieldPath, *, default: str | None = None
    ) -> str:
        """A string field; required (and non-blank) when there is no default."""
        value = self.present(table, key, path, str, "a string")
        if value is None:
            if default is not None:
                return default
            if key not in table:
                self.fail((*path, key), "is required")
            return ""
        if default is None and not value.strip():
            self.fail((*path, key), "must not be empty")
        return str(value)

    def slug(self, table: dict[str, Any], key: str, path: FieldPath) -> str:
        """A required id: lowercase letters, digits and ``-``, 1 to 64 characters."""
        value = self.string(table, key, path)
        if value and not SLUG.fullmatch(value):
            self.fail(
                (*path, key),
                f"{value!r} must be 1 to 64 lowercase letters, digits or '-', e.g. opening-plenary",
            )
        return value

    def boolean(self, table: dict[str, Any], key: str, path: FieldPath, default: bool) -> bool:
        """An optional boolean field."""
        value = self.present(table, key, path, bool, "a boolean (true or false)")
        return default if value is None else bool(value)

    def integer(
        self, table: dict[str, Any], key: str, path: FieldPath, default: int, low: int, high: int
    ) -> int:
        """An optional integer field within ``low..high`` inclusive."""
        value = self.present(table, key, path, int, "an integer")
        if value is None:
            return default
        if not low <= value <= high:
            self.fail((*path, key), f"must be between {low} and {high}, not {value}")
            return default
        return int(value)

    def array(self, table: dict[str, Any], key: str, path: FieldPath) -> list[Any] | None:
        """An optional array field, or None when absent or mistyped."""
        return self.present(table, key, path, list, "an array")

    def strings(self, table: dict[str, Any], key: str, path: FieldPath) -> tuple[str, ...]:
        """An optional array of non-blank strings (names of people or organisations)."""
        items = self.array(table, key, path)
        out: list[str] = []
        for index, item in enumerate(items or ()):
            if not isinstance(item, str):
                self.fail((*path, key, index), f"must be a string, not {_toml_type(item)}")
            elif not item.strip():
                self.fail((*path, key, index), "must not be empty")
            else:
                out.append(item)
        return tuple(out)

    def codes(
        self,
        table: dict[str, Any],
        key: str,
        path: FieldPath,
        allowed: tuple[str, ...] | None,
        default: tuple[str, ...],
    ) -> tuple[str, ...]:
        """A non-empty array of distinct codes, from ``allowed`` or else any slug."""
        if key not in table:
            return default
        items = self.array(table, key, path)
        if items is None:
            return default
        if not items:
            self.fail((*path, key), "must list at least one value")
            return default
        out: list[str] = []
        for index, item in enumerate(items):
            where = (*path, key, index)
            if not isinstance(item, str):
                self.fail(where, f"must be a string, not {_toml_type(item)}")
            elif allowed is not None and item not in allowed:
                self.fail(where, f"{item!r} is not one of {', '.join(allowed)}")
            elif allowed is None and not SLUG.fullmatch(item):
                self.fail(where, f"{item!r} must be 1 to 64 lowercase letters, digits or '-'")
            elif item in out:
                self.fail(where, f"{item!r} is listed twice")
            else:
                out.append(item)
        return tuple(out) or default

    def instant(
        self, table: dict[str, Any], key: str, path: FieldPath, zone: ZoneInfo | None
    ) -> datetime | None:
        """A required date-time: with an offset, or local and read in the event time zone."""
        value = table.get(key)
        where = (*path, key)
        if value is None:
            self.fail(where, f"is required, e.g. {key} = {_EXAMPLE_INSTANT}")
            return None
        if not isinstance(value, datetime):
            unquote = " (write it without quotes)" if isinstance(value, str) else ""
            self.fail(
                where,
                f"must be a date-time, e.g. {_EXAMPLE_INSTANT} or a local 2026-06-01T09:00:00 "
                f"in the event time zone, not {_toml_type(value)}{unquote}",
            )
            return None
        if value.tzinfo is not None:
            return value
        if zone is None:
            self.fail(
                where,
                f"must be a time-zone-aware date-time, e.g. {_EXAMPLE_INSTANT}, "
                "since the event has no valid time zone to read a local one in",
            )
            return None
        aware = value.replace(tzinfo=zone)
        # A local time skipped by a daylight-saving change does not exist; the round trip through
        # UTC moves it, which is how it is detected.
        if aware.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != value:
            self.fail(
                where, f"{value.isoformat()} does not exist in {zone.key} (clocks go forward)"
            )
            return None
        return aware
