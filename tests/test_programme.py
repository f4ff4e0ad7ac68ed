"""Tests of the programme loader: the example programme, every schema rule and error locations."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from config.programme import (
    ProgrammeError,
    ProgrammeErrors,
    _syntax_error,
    load_programme,
    parse_programme,
)
from signaling.programme import STAKEHOLDER_GROUPS, UN_LANGUAGES, FloorSettings, QnaSettings

SUMMIT = Path(__file__).resolve().parent.parent / "config" / "programmes" / "summit.toml"

EVENT_FIELDS = {
    "id": '"summit"',
    "title": '"Summit"',
    "timezone": '"Europe/Zurich"',
    "languages": '["en", "fr"]',
}
SESSION_FIELDS = {
    "id": '"opening"',
    "title": '"Opening"',
    "room": '"Plenary Hall"',
    "start": "2027-05-24T10:00:00+02:00",
    "end": "2027-05-24T12:00:00+02:00",
}


def table(header: str, defaults: dict[str, str], changes: dict[str, str | None]) -> str:
    """Renders a TOML table: ``defaults`` with ``changes`` applied (None removes a key)."""
    fields: dict[str, str | None] = {**defaults, **changes}
    lines = [header] + [f"{key} = {value}" for key, value in fields.items() if value is not None]
    return "\n".join(lines) + "\n"


def event(**changes: str | None) -> str:
    """A valid ``[event]`` table, changed as asked."""
    return table("[event]", EVENT_FIELDS, changes)


def session(tail: str = "", /, **changes: str | None) -> str:
    """A valid ``[[sessions]]`` block, changed as asked, followed by ``tail`` (sub-tables)."""
    return "\n" + table("[[sessions]]", SESSION_FIELDS, changes) + tail


def problems(text: str) -> list[ProgrammeError]:
    """The problems parse_programme reports for ``text`` (which must be refused)."""
    with pytest.raises(ProgrammeErrors) as caught:
        parse_programme(text, "summit.toml")
    assert caught.value.errors
    return caught.value.errors


def problem(text: str) -> ProgrammeError:
    """The single problem parse_programme reports for ``text``."""
    found = problems(text)
    assert len(found) == 1, [str(error) for error in found]
    return found[0]


def line_of(text: str, fragment: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line containing ``fragment``."""
    hits = [n for n, line in enumerate(text.splitlines(), start=1) if fragment in line]
    return hits[occurrence - 1]


# ---------------------------------------------------------------- the example programme


def test_example_programme_loads_with_five_days_many_sessions_rooms_and_six_languages() -> None:
    programme = load_programme(SUMMIT)

    assert programme.event.timezone == "Europe/Zurich"
    assert programme.event.languages == UN_LANGUAGES
    assert programme.sessions[0].id == "opening-plenary"
    assert len({s.start.date() for s in programme.sessions}) == 5
    assert min(s.start for s in programme.sessions).date().isoformat() == "2027-05-24"
    assert max(s.end for s in programme.sessions).date().isoformat() == "2027-05-28"
    assert len(programme.sessions) >= 20
    assert len({s.room for s in programme.sessions}) >= 5
    assert {lang for s in programme.sessions for lang in s.languages} == set(UN_LANGUAGES)


def test_example_plenaries_carry_all_six_languages_and_workshops_fewer() -> None:
    programme = load_programme(SUMMIT)

    plenaries = [s for s in programme.sessions if s.room == "Plenary Hall"]
    workshops = [s for s in programme.sessions if s.id.startswith("ws-")]
    assert plenaries
    assert all(set(s.languages) == set(UN_LANGUAGES) for s in plenaries)
    assert workshops
    assert all(len(s.languages) < len(UN_LANGUAGES) for s in workshops)


def test_example_sessions_vary_guest_access_qna_and_floor_settings() -> None:
    sessions = load_programme(SUMMIT).sessions

    assert {s.guest_access for s in sessions} == {True, False}
    assert {s.qna.order for s in sessions} >= {"votes", "newest", "balanced"}
    assert {s.qna.enabled for s in sessions} == {True, False}
    assert {s.floor.enabled for s in sessions} == {True, False}
    assert len({s.floor.speaking_seconds for s in sessions}) > 2
    assert all(s.moderators for s in sessions)


def test_example_rooms_never_hold_two_sessions_at_once() -> None:
    sessions = sorted(load_programme(SUMMIT).sessions, key=lambda s: (s.room, s.start))

    for before, after in itertools.pairwise(sessions):
        if before.room == after.room:
            assert before.end <= after.start, (before.id, after.id)


# ---------------------------------------------------------------- what a valid file gives


def test_minimal_programme_takes_the_documented_defaults() -> None:
    programme = parse_programme(event() + session())

    assert programme.event.venue == ""
    assert programme.event.organisers == ()
    assert programme.event.stakeholder_groups == STAKEHOLDER_GROUPS
    only = programme.sessions[0]
    assert only.track == ""
    assert only.languages == ("en", "fr")
    assert only.moderators == ()
    assert only.capacity == 1000
    assert only.guest_access is False
    assert only.description == ""
    assert only.qna == QnaSettings()
    assert only.floor == FloorSettings()


def test_event_languages_default_to_the_six_un_languages() -> None:
    programme = parse_programme(event(languages=None) + session())

    assert programme.event.languages == UN_LANGUAGES
    assert programme.sessions[0].languages == UN_LANGUAGES


def test_every_field_written_is_read_into_the_programme() -> None:
    text = event(
        venue='"Geneva"',
        organisers='["ITU", "UNESCO"]',
        stakeholder_groups='["government", "youth"]',
    ) + session(
        "[sessions.qna]\nenabled = false\npremoderation = false\nanonymous_allowed = false\n"
        'max_chars = 2000\norder = "balanced"\n'
        "[sessions.floor]\nenabled = false\nspeaking_seconds = 3600\nremote_speakers = false\n"
        "revoke_on_expiry = true\n",
        track='"AI governance"',
        languages='["fr"]',
        moderators='["Claire Martin"]',
        speakers='["Nadia Haddad", "Jonas Lindqvist"]',
        capacity="100000",
        guest_access="true",
        description='"About AI."',
    )

    programme = parse_programme(text)

    assert programme.event.venue == "Geneva"
    assert programme.event.organisers == ("ITU", "UNESCO")
    assert programme.event.stakeholder_groups == ("government", "youth")
    only = programme.sessions[0]
    assert only.track == "AI governance"
    assert only.languages == ("fr",)
    assert only.moderators == ("Claire Martin",)
    assert only.speakers == ("Nadia Haddad", "Jonas Lindqvist")
    assert only.capacity == 100000
    assert only.guest_access is True
    assert only.description == "About AI."
    assert only.qna == QnaSettings(False, False, False, 2000, "balanced")
    assert only.floor == FloorSettings(False, 3600, False, True)


def test_qna_and_floor_may_be_written_as_inline_tables() -> None:
    text = event() + session(qna='{ order = "newest" }', floor="{ speaking_seconds = 60 }")

    only = parse_programme(text).sessions[0]

    assert only.qna.order == "newest"
    assert only.floor.speaking_seconds == 60


def test_offset_date_times_are_kept_as_written() -> None:
    only = parse_programme(event() + session()).sessions[0]

    assert only.start == datetime(2027, 5, 24, 8, 0, tzinfo=UTC)
    assert only.start.utcoffset() == timedelta(hours=2)


def test_local_date_times_are_read_in_the_event_time_zone_summer_and_winter() -> None:
    winter = session(start="2027-01-18T10:00:00", end="2027-01-18T11:00:00")
    summer = session(start="2027-05-24T10:00:00", end="2027-05-24T11:00:00", id='"summer"')

    programme = parse_programme(event() + winter + summer)

    assert programme.sessions[0].start == datetime(2027, 1, 18, 9, 0, tzinfo=UTC)
    assert programme.sessions[0].start.utcoffset() == timedelta(hours=1)
    assert programme.sessions[1].start == datetime(2027, 5, 24, 8, 0, tzinfo=UTC)
    assert programme.sessions[1].end.utcoffset() == timedelta(hours=2)


def test_session_of_exactly_24_hours_is_accepted() -> None:
    text = event() + session(end="2027-05-25T10:00:00+02:00")

    assert parse_programme(text).sessions[0].end.day == 25


def test_load_programme_reads_a_file_and_names_it_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(event() + session(), encoding="utf-8")
    assert load_programme(str(path)).event.id == "summit"

    path.write_text(event(title='""') + session(), encoding="utf-8")
    with pytest.raises(ProgrammeErrors) as caught:
        load_programme(path)
    assert str(caught.value) == f"{path}:3: event.title: must not be empty"


# ---------------------------------------------------------------- errors: reading and syntax


def test_missing_file_is_refused_with_the_file_name_and_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ProgrammeErrors) as caught:
        load_programme(path)

    assert str(caught.value) == f"{path}: cannot be read: No such file or directory"
    assert caught.value.errors[0].line is None


def test_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes(event(title='"Sommet à Genève"').encode("latin-1"))

    with pytest.raises(ProgrammeErrors) as caught:
        load_programme(path)

    assert "is not UTF-8 text" in str(caught.value)


def test_toml_syntax_error_is_refused_with_its_line() -> None:
    text = event() + session() + "capacity = \n"

    error = problem(text)

    assert error.line == len(text.splitlines())
    assert error.field == ""
    assert str(error).startswith(f"summit.toml:{error.line}: not valid TOML: Invalid value")


def test_toml_syntax_error_at_the_end_of_the_document_points_at_the_last_line() -> None:
    text = event() + "[sessions"

    error = problem(text)

    assert error.line == len(text.splitlines())
    assert "not valid TOML" in error.reason


def test_toml_syntax_error_without_a_position_keeps_the_message() -> None:
    assert _syntax_error("Something odd", "") == (None, "not valid TOML: Something odd")


def test_errors_print_file_line_field_and_reason_and_skip_what_is_unknown() -> None:
    assert str(ProgrammeError("a.toml", 4, "event.id", "is required")) == (
        "a.toml:4: event.id: is required"
    )
    assert (
        str(ProgrammeError("a.toml", None, "event", "is required")) == "a.toml: event: is required"
    )
    assert str(ProgrammeError("a.toml", 2, "", "not valid TOML")) == "a.toml:2: not valid TOML"


# ---------------------------------------------------------------- errors: the document and event


def test_missing_event_table_is_refused() -> None:
    error = problem(session())

    assert (error.field, error.line) == ("event", None)
    assert error.reason == "is required: add an [event] table"


def test_event_that_is_not_a_table_is_refused_naming_the_type_found() -> None:
    error = problem("event = 3\n" + session())

    assert (error.field, error.line, error.reason) == (
        "event",
        1,
        "must be a table, not an integer",
    )


def test_unknown_top_level_field_is_refused() -> None:
    error = problem("speakers = []\n" + event() + session())

    assert (error.field, error.line, error.reason) == ("speakers", 1, "unknown field")


def test_unknown_event_field_is_refused_with_a_suggestion() -> None:
    text = event(langauges='["en"]') + session()

    error = problem(text)

    assert error.field == "event.langauges"
    assert error.line == line_of(text, "langauges")
    assert error.reason == "unknown field (did you mean 'languages'?)"


def test_unknown_field_with_an_odd_name_is_quoted_in_the_field_path() -> None:
    error = problem(event() + '"odd key" = 1\n' + session())

    assert error.field == 'event."odd key"'
    assert error.line == 6


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ('"Summit 2027"', "'Summit 2027' must be 1 to 64 lowercase letters, digits or '-'"),
        ('"summit_2027"', "'summit_2027' must be 1 to 64"),
        ('"' + "a" * 65 + '"', "must be 1 to 64 lowercase letters"),
        ('""', "must not be empty"),
        ("7", "must be a string, not an integer"),
    ],
)
def test_event_id_that_is_not_a_slug_is_refused(value: str, reason: str) -> None:
    error = problem(event(id=value) + session())

    assert (error.field, error.line) == ("event.id", 2)
    assert reason in error.reason


def test_event_id_of_64_characters_is_accepted() -> None:
    assert parse_programme(event(id='"' + "a" * 64 + '"') + session()).event.id == "a" * 64


def test_missing_event_title_is_required_and_located_at_the_event_table() -> None:
    error = problem(event(title=None) + session())

    assert (error.field, error.line, error.reason) == ("event.title", 1, "is required")


def test_unknown_time_zone_is_refused() -> None:
    error = problem(event(timezone='"Europe/Geneva"') + session())

    assert error.field == "event.timezone"
    assert error.reason == "'Europe/Geneva' is not an IANA time zone, e.g. Europe/Zurich"


def test_time_zone_of_the_wrong_type_is_refused_once() -> None:
    error = problem(event(timezone="2") + session())

    assert (error.field, error.reason) == ("event.timezone", "must be a string, not an integer")


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ('["en", "de"]', "event.languages[1]", "'de' is not one of ar, zh, en, fr, ru, es"),
        ('["en", "en"]', "event.languages[1]", "'en' is listed twice"),
        ("[]", "event.languages", "must list at least one value"),
        ('"en"', "event.languages", "must be an array, not a string"),
        ('["en", 1]', "event.languages[1]", "must be a string, not an integer"),
    ],
)
def test_event_languages_outside_the_six_un_languages_are_refused(
    value: str, field: str, reason: str
) -> None:
    error = problem(event(languages=value) + session(languages='["en"]'))

    assert (error.field, error.reason) == (field, reason)


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ('["Civil Society"]', "event.stakeholder_groups[0]", "'Civil Society' must be 1 to 64"),
        ('["academia", "academia"]', "event.stakeholder_groups[1]", "'academia' is listed twice"),
    ],
)
def test_stakeholder_groups_must_be_distinct_slugs(value: str, field: str, reason: str) -> None:
    error = problem(event(stakeholder_groups=value) + session())

    assert error.field == field
    assert error.reason.startswith(reason)


@pytest.mark.parametrize(
    ("value", "field", "reason"),
    [
        ('["ITU", 3]', "event.organisers[1]", "must be a string, not an integer"),
        ('["ITU", " "]', "event.organisers[1]", "must not be empty"),
        ('"ITU"', "event.organisers", "must be an array, not a string"),
    ],
)
def test_organisers_must_be_an_array_of_names(value: str, field: str, reason: str) -> None:
    error = problem(event(organisers=value) + session())

    assert (error.field, error.reason) == (field, reason)


def test_venue_of_the_wrong_type_is_refused() -> None:
    error = problem(event(venue="true") + session())

    assert (error.field, error.reason) == ("event.venue", "must be a string, not a boolean")


# ---------------------------------------------------------------- errors: the list of sessions


def test_programme_without_sessions_is_refused() -> None:
    error = problem(event())

    assert (error.field, error.line) == ("sessions", None)
    assert error.reason.startswith("at least one session is required")


def test_empty_array_of_sessions_is_refused() -> None:
    error = problem("sessions = []\n" + event())

    assert (error.field, error.line) == ("sessions", 1)
    assert error.reason.startswith("at least one session is required")


def test_sessions_that_are_not_an_array_of_tables_are_refused() -> None:
    assert problem("sessions = 3\n" + event()).reason == (
        "must be an array of tables ([[sessions]]), not an integer"
    )
    error = problem("sessions = [1]\n" + event())
    assert (error.field, error.reason) == ("sessions[0]", "must be a table, not an integer")


def test_duplicate_session_id_is_refused_at_the_second_naming_the_first() -> None:
    text = event() + session() + session(title='"Again"')

    error = problem(text)

    assert error.field == "sessions[1].id"
    assert error.line == line_of(text, 'id = "opening"', occurrence=2)
    assert error.reason == "'opening' is already the id of sessions[0]"


def test_duplicate_id_is_found_even_when_the_first_session_has_other_errors() -> None:
    errors = problems(event() + session(start=None) + session())

    assert [e.field for e in errors] == ["sessions[0].start", "sessions[1].id"]


# ---------------------------------------------------------------- errors: one session


def test_session_ending_before_it_starts_is_refused_with_file_line_and_field() -> None:
    text = event() + session() + session(id='"second"', end="2027-05-24T09:00:00+02:00")

    error = problem(text)

    assert error.file == "summit.toml"
    assert error.line == line_of(text, "end = 2027-05-24T09:00:00+02:00")
    assert error.field == "sessions[1].end"
    assert str(error) == (
        f"summit.toml:{error.line}: sessions[1].end: "
        "must be after start (2027-05-24T10:00:00+02:00)"
    )


def test_session_ending_when_it_starts_is_refused() -> None:
    error = problem(event() + session(end="2027-05-24T10:00:00+02:00"))

    assert error.field == "sessions[0].end"
    assert error.reason.startswith("must be after start")


def test_session_longer_than_24_hours_is_refused() -> None:
    error = problem(event() + session(end="2027-05-25T10:00:01+02:00"))

    assert error.field == "sessions[0].end"
    assert error.reason == "makes the session longer than 24 hours (1 day, 0:00:01)"


def test_session_length_is_measured_in_real_time_across_a_clock_change() -> None:
    # 23:30 on the wall clock, but the night of 31 October 2027 has 25 hours in Zurich.
    text = event() + session(start="2027-10-31T00:00:00", end="2027-10-31T23:30:00")

    assert problem(text).reason == "makes the session longer than 24 hours (1 day, 0:30:00)"


def test_local_time_skipped_by_the_spring_clock_change_is_refused() -> None:
    error = problem(event() + session(start="2027-03-28T02:30:00", end="2027-03-28T04:00:00"))

    assert error.field == "sessions[0].start"
    assert error.reason == "2027-03-28T02:30:00 does not exist in Europe/Zurich (clocks go forward)"


def test_missing_start_is_required_with_an_example() -> None:
    text = event() + session(start=None)

    error = problem(text)

    assert error.field == "sessions[0].start"
    assert error.line == line_of(text, "[[sessions]]")
    assert error.reason == "is required, e.g. start = 2026-06-01T09:00:00+02:00"


def test_quoted_date_time_is_refused_with_a_hint_to_remove_the_quotes() -> None:
    error = problem(event() + session(start='"2027-05-24T10:00:00+02:00"'))

    assert error.field == "sessions[0].start"
    assert error.reason.endswith("not a string (write it without quotes)")


@pytest.mark.parametrize(
    ("value", "found"),
    [("2027-05-24", "a local date"), ("10:00:00", "a local time"), ("1.5", "a float")],
)
def test_start_that_is_not_a_date_time_is_refused_naming_what_was_found(
    value: str, found: str
) -> None:
    error = problem(event() + session(start=value))

    assert error.reason.startswith("must be a date-time, e.g. 2026-06-01T09:00:00+02:00")
    assert error.reason.endswith(f"not {found}")


def test_local_date_time_needs_a_valid_event_time_zone() -> None:
    text = event(timezone='"Nowhere/Special"') + session(start="2027-05-24T10:00:00")

    errors = problems(text)

    assert [e.field for e in errors] == ["event.timezone", "sessions[0].start"]
    assert str(errors[1]).startswith(
        f"summit.toml:{line_of(text, 'start =')}: sessions[0].start: must be a time-zone-aware "
        "date-time, e.g. 2026-06-01T09:00:00+02:00"
    )


def test_unknown_session_field_is_refused_with_a_suggestion() -> None:
    text = event() + session() + session(id='"second"', speaker='["Nadia Haddad"]')

    error = problem(text)

    assert error.field == "sessions[1].speaker"
    assert error.line == line_of(text, "speaker =")
    assert error.reason == "unknown field (did you mean 'speakers'?)"


def test_unknown_field_far_from_any_known_one_gets_no_suggestion() -> None:
    assert problem(event() + session(xyzzy="1")).reason == "unknown field"


@pytest.mark.parametrize(
    ("value", "reason"),
    [('"Opening Plenary"', "'Opening Plenary' must be 1 to 64"), ("1", "must be a string")],
)
def test_session_id_that_is_not_a_slug_is_refused(value: str, reason: str) -> None:
    error = problem(event() + session(id=value))

    assert error.field == "sessions[0].id"
    assert error.reason.startswith(reason)


@pytest.mark.parametrize("key", ["id", "title", "room"])
def test_session_id_title_and_room_are_required(key: str) -> None:
    error = problem(event() + session(**{key: None}))

    assert (error.field, error.reason) == (f"sessions[0].{key}", "is required")


def test_blank_session_room_is_refused() -> None:
    assert problem(event() + session(room='"  "')).reason == "must not be empty"


def test_session_language_outside_the_event_languages_is_refused() -> None:
    text = event() + session(languages='["en", "ru"]')

    error = problem(text)

    assert error.field == "sessions[0].languages[1]"
    assert error.line == line_of(text, 'languages = ["en", "ru"]')
    assert error.reason == "'ru' is not one of en, fr"


def test_session_with_an_empty_list_of_languages_is_refused() -> None:
    assert problem(event() + session(languages="[]")).reason == "must list at least one value"


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0", "must be between 1 and 100000, not 0"),
        ("100001", "must be between 1 and 100000, not 100001"),
        ("true", "must be an integer, not a boolean"),
        ("1.0", "must be an integer, not a float"),
        ('"1000"', "must be an integer, not a string"),
    ],
)
def test_capacity_outside_1_to_100000_or_not_an_integer_is_refused(value: str, reason: str) -> None:
    error = problem(event() + session(capacity=value))

    assert (error.field, error.reason) == ("sessions[0].capacity", reason)


def test_capacity_of_one_is_accepted() -> None:
    assert parse_programme(event() + session(capacity="1")).sessions[0].capacity == 1


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("guest_access", '"yes"', "must be a boolean (true or false), not a string"),
        ("guest_access", "1", "must be a boolean (true or false), not an integer"),
        ("description", "[]", "must be a string, not an array"),
        ("track", "{}", "must be a string, not a table"),
        ("moderators", '"Claire"', "must be an array, not a string"),
        ("speakers", "2027-05-24T10:00:00", "must be an array, not a local date-time"),
        ("title", "2027-05-24T10:00:00Z", "must be a string, not an offset date-time"),
    ],
)
def test_session_field_of_the_wrong_type_is_refused_naming_the_expected_type(
    key: str, value: str, reason: str
) -> None:
    error = problem(event() + session(**{key: value}))

    assert (error.field, error.reason) == (f"sessions[0].{key}", reason)


def test_speaker_that_is_not_a_name_is_refused_at_its_index() -> None:
    error = problem(event() + session(speakers='["Nadia Haddad", 3]'))

    assert (error.field, error.reason) == (
        "sessions[0].speakers[1]",
        "must be a string, not an integer",
    )


# ---------------------------------------------------------------- errors: qna and floor


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("max_chars = 0", "max_chars", "must be between 1 and 2000, not 0"),
        ("max_chars = 2001", "max_chars", "must be between 1 and 2000, not 2001"),
        (
            'order = "random"',
            "order",
            "must be one of votes, newest, moderator, balanced, not 'random'",
        ),
        ("order = 1", "order", "must be a string, not an integer"),
        ('enabled = "no"', "enabled", "must be a boolean (true or false), not a string"),
        ("premoderation = 0", "premoderation", "must be a boolean (true or false), not an integer"),
        (
            'anonymous_allowed = "x"',
            "anonymous_allowed",
            "must be a boolean (true or false), not a string",
        ),
        ("anonymous = true", "anonymous", "unknown field (did you mean 'anonymous_allowed'?)"),
    ],
)
def test_qna_settings_out_of_range_or_unknown_are_refused_on_their_line(
    body: str, field: str, reason: str
) -> None:
    text = event() + session() + session("[sessions.qna]\n" + body + "\n", id='"second"')

    error = problem(text)

    assert error.field == f"sessions[1].qna.{field}"
    assert error.line == len(text.splitlines())
    assert error.reason == reason


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ("speaking_seconds = 9", "speaking_seconds", "must be between 10 and 3600, not 9"),
        ("speaking_seconds = 3601", "speaking_seconds", "must be between 10 and 3600, not 3601"),
        (
            'remote_speakers = "yes"',
            "remote_speakers",
            "must be a boolean (true or false), not a string",
        ),
        ("enabled = 1", "enabled", "must be a boolean (true or false), not an integer"),
        ("timer = 60", "timer", "unknown field"),
    ],
)
def test_floor_settings_out_of_range_or_unknown_are_refused_on_their_line(
    body: str, field: str, reason: str
) -> None:
    text = event() + session("[sessions.floor]\n" + body + "\n")

    error = problem(text)

    assert error.field == f"sessions[0].floor.{field}"
    assert error.line == len(text.splitlines())
    assert error.reason == reason


@pytest.mark.parametrize("key", ["qna", "floor"])
def test_qna_or_floor_that_is_not_a_table_is_refused(key: str) -> None:
    text = event() + session(**{key: "true"})

    error = problem(text)

    assert (error.field, error.reason) == (f"sessions[0].{key}", "must be a table, not a boolean")
    assert error.line == line_of(text, f"{key} = true")


def test_dotted_key_error_is_located_on_its_own_line() -> None:
    text = event() + session(**{"qna.max_chars": "0"})

    error = problem(text)

    assert error.field == "sessions[0].qna.max_chars"
    assert error.line == line_of(text, "qna.max_chars")


def test_inline_table_error_is_located_on_the_line_of_its_key() -> None:
    text = event() + session(floor="{ speaking_seconds = 1 }")

    error = problem(text)

    assert error.field == "sessions[0].floor.speaking_seconds"
    assert error.line == line_of(text, "floor =")


# ---------------------------------------------------------------- several errors and line finding


def test_several_errors_are_collected_in_file_order_one_per_line() -> None:
    text = (
        event(title='""')
        + session(capacity="0")
        + session(id='"Second"', end="2027-05-24T09:00:00+02:00")
    )

    with pytest.raises(ProgrammeErrors) as caught:
        parse_programme(text, "summit.toml")

    lines = str(caught.value).splitlines()
    assert [e.field for e in caught.value.errors] == [
        "event.title",
        "sessions[0].capacity",
        "sessions[1].id",
        "sessions[1].end",
    ]
    assert lines[0] == "summit.toml:3: event.title: must not be empty"
    assert [e.line for e in caught.value.errors] == sorted(e.line or 0 for e in caught.value.errors)


def test_multi_line_strings_that_look_like_keys_do_not_shift_the_lines_found() -> None:
    text = event() + session(description='"""\nid = "not-a-key"\ncapacity = 3\n"""', capacity="0")

    error = problem(text)

    assert error.line == line_of(text, "capacity = 0")


def test_one_line_multi_line_string_does_not_hide_the_following_lines() -> None:
    text = event() + session(description="'''short'''", capacity="0")

    assert problem(text).line == line_of(text, "capacity = 0")


def test_sub_table_before_the_next_session_block_belongs_to_the_right_session() -> None:
    text = (
        event()
        + session("[sessions.floor]\nspeaking_seconds = 60\n")
        + session("[sessions.floor]\nspeaking_seconds = 5\n", id='"second"')
    )

    error = problem(text)

    assert error.field == "sessions[1].floor.speaking_seconds"
    assert error.line == line_of(text, "speaking_seconds = 5")
