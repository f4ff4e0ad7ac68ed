"""Tests of the pretalx/frab schedule importer: round trips through the loader, and its errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from config.programme import parse_programme
from config.schedule_import import ScheduleImportError, import_schedule, slugify
from signaling.programme import Programme

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "frab_schedule.json"


def export() -> dict[str, Any]:
    """A fresh copy of the fixture export, free to change."""
    data: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return data


def conference(data: dict[str, Any]) -> dict[str, Any]:
    """The ``conference`` object of an export."""
    found: dict[str, Any] = data["schedule"]["conference"]
    return found


def first_talk(data: dict[str, Any]) -> dict[str, Any]:
    """The first talk of the first room of the first day."""
    found: dict[str, Any] = conference(data)["days"][0]["rooms"]["Room XVII"][0]
    return found


def with_talks(*talks: dict[str, Any]) -> dict[str, Any]:
    """The fixture export with its days replaced by one day holding ``talks`` in Room XVII."""
    data = export()
    conference(data)["days"] = [
        {"index": 1, "date": "2027-05-24", "rooms": {"Room XVII": list(talks)}}
    ]
    return data


def imported(data: dict[str, Any]) -> Programme:
    """Imports ``data`` and loads the TOML it gives."""
    return parse_programme(import_schedule(data), "imported.toml")


def refusal(data: object) -> str:
    """The message of the ScheduleImportError that importing ``data`` raises."""
    with pytest.raises(ScheduleImportError) as caught:
        import_schedule(data)  # type: ignore[arg-type]
    return str(caught.value)


# ---------------------------------------------------------------- round trips


def test_fixture_export_round_trips_into_a_programme_the_loader_accepts() -> None:
    programme = imported(export())

    assert programme.event.id == "gdc27"
    assert programme.event.title == "Geneva Digital Cooperation Days 2027"
    assert programme.event.timezone == "Europe/Zurich"
    assert [s.id for s in programme.sessions] == [
        "gdc27-101-measuring-meaningful-connectivity",
        "gdc27-102-community-networks",
        "gdc27-103-ai-in-public-services",
    ]
    first = programme.sessions[0]
    assert first.title == "Measuring meaningful connectivity"
    assert first.room == "Room XVII"
    assert first.track == "Digital inclusion"
    assert first.start == datetime(2027, 5, 24, 8, 0, tzinfo=UTC)
    assert first.end - first.start == timedelta(hours=1, minutes=30)
    assert first.speakers == ("Lucía Fernández", "Rafael Costa")
    assert first.description.startswith("Which indicators")


def test_talk_languages_map_to_un_languages_and_others_fall_back_to_english() -> None:
    programme = imported(export())

    assert [s.languages for s in programme.sessions] == [("fr",), ("en",), ("ar",)]
    assert programme.event.languages == ("ar", "en", "fr")


@pytest.mark.parametrize(
    ("language", "expected"),
    [("es-419", "es"), ("ZH_hans", "zh"), ("RU", "ru"), ("de", "en"), ("", "en"), (None, "en")],
)
def test_talk_language_tag_is_reduced_to_its_primary_subtag(
    language: str | None, expected: str
) -> None:
    data = export()
    first_talk(data)["language"] = language

    assert imported(data).sessions[0].languages == (expected,)


def test_text_with_quotes_newlines_and_arabic_survives_the_toml_round_trip() -> None:
    data = export()
    title = 'Say "hello"\\ back\tnow\x01 — الجلسة'
    first_talk(data)["title"] = title
    first_talk(data)["abstract"] = "line one\nline two\r\n\x7f\f\b"

    first = imported(data).sessions[0]

    assert first.title == title
    assert first.description == "line one\nline two\r\n\x7f\f\b".strip()


def test_missing_track_becomes_empty_and_abstract_falls_back_to_description() -> None:
    second = imported(export()).sessions[1]

    assert second.track == ""
    assert second.title == 'Community networks: "local" access'
    assert second.description == "Operators share\nwhat helped them."


def test_sessions_come_out_in_chronological_order_whatever_the_room_order() -> None:
    data = export()
    late, early = dict(first_talk(data)), dict(first_talk(data))
    late.update(slug="late", date="2027-05-24T16:00:00+02:00")
    early.update(slug="early", date="2027-05-24T09:00:00+02:00")

    assert [s.id for s in imported(with_talks(late, early)).sessions] == ["early", "late"]


def test_talk_date_without_an_offset_is_read_in_the_conference_time_zone() -> None:
    data = export()
    first_talk(data)["date"] = "2027-01-18T10:00:00"

    sessions = imported(data).sessions

    assert sessions[0].start == datetime(2027, 1, 18, 9, 0, tzinfo=UTC)


def test_duration_with_seconds_is_accepted() -> None:
    data = export()
    first_talk(data)["duration"] = "00:20:30"

    first = imported(data).sessions[0]

    assert first.end - first.start == timedelta(minutes=20, seconds=30)


def test_session_id_falls_back_to_guid_then_id_then_title() -> None:
    talk = first_talk(export())
    by_guid = {**talk, "slug": None}
    by_id = {**talk, "slug": "", "guid": None, "id": 7, "date": "2027-05-24T12:00:00+02:00"}
    by_title = {**talk, "slug": "!!", "guid": None, "id": True, "date": "2027-05-24T14:00:00+02:00"}
    untitled = {**by_title, "title": "؟؟", "date": "2027-05-24T16:00:00+02:00"}

    ids = [s.id for s in imported(with_talks(by_guid, by_id, by_title, untitled)).sessions]

    assert ids == [
        "5f0c5b1e-8d0a-5b55-9a53-6a1d2b3c4d01",
        "7",
        "measuring-meaningful-connectivity",
        "session",
    ]


def test_equal_slugs_are_made_unique_within_64_characters() -> None:
    talk = first_talk(export())
    long_slug = "x" * 70
    talks = [
        {**talk, "slug": "panel", "date": "2027-05-24T09:00:00+02:00"},
        {**talk, "slug": "Panel", "date": "2027-05-24T11:00:00+02:00"},
        {**talk, "slug": "panel", "date": "2027-05-24T13:00:00+02:00"},
        {**talk, "slug": long_slug, "date": "2027-05-24T15:00:00+02:00"},
        {**talk, "slug": long_slug, "date": "2027-05-24T17:00:00+02:00"},
    ]

    ids = [s.id for s in imported(with_talks(*talks)).sessions]

    assert ids == ["panel", "panel-2", "panel-3", "x" * 64, "x" * 62 + "-2"]


def test_room_comes_from_the_talk_else_from_the_room_list_it_sits_in() -> None:
    talk = {**first_talk(export()), "room": None}

    assert imported(with_talks(talk)).sessions[0].room == "Room XVII"


def test_speakers_use_the_public_name_else_the_name_and_skip_nameless_persons() -> None:
    data = export()
    first_talk(data)["persons"] = [
        {"public_name": " Nadia Haddad "},
        {"name": "Kwame Mensah"},
        {"public_name": "", "name": None},
        {"code": "X1"},
    ]

    assert imported(data).sessions[0].speakers == ("Nadia Haddad", "Kwame Mensah")


def test_talk_without_persons_has_no_speakers() -> None:
    data = export()
    del first_talk(data)["persons"]

    assert imported(data).sessions[0].speakers == ()


def test_event_id_comes_from_the_acronym_else_the_title() -> None:
    data = export()
    conference(data)["acronym"] = None
    assert imported(data).event.id == "geneva-digital-cooperation-days-2027"

    conference(data)["title"] = "!!!"
    assert imported(data).event.id == "event"


def test_imported_text_starts_with_a_note_to_review_it() -> None:
    assert import_schedule(export()).startswith("# Imported from a pretalx/frab schedule export.")


@pytest.mark.parametrize(
    ("text", "slug"),
    [
        ("Zürich Ökonomie", "zurich-okonomie"),
        ("  --Hello, World!--  ", "hello-world"),
        ("الجلسة", ""),
        ("a" * 63 + " b", "a" * 63),
    ],
)
def test_slugify_keeps_lowercase_ascii_letters_digits_and_single_dashes(
    text: str, slug: str
) -> None:
    assert slugify(text) == slug


# ---------------------------------------------------------------- errors


def test_export_that_is_not_an_object_is_refused_naming_what_was_found() -> None:
    assert refusal([]) == "$: must be a JSON object, found an array"
    assert refusal(1.5) == "$: must be a JSON object, found a number"
    assert refusal(True) == "$: must be a JSON object, found a boolean"
    assert refusal({"a"}) == "$: must be a JSON object, found a Python set"


def test_export_without_a_schedule_is_refused() -> None:
    assert refusal({"conference": {}}) == "schedule: must be a JSON object, found nothing"


def test_export_without_a_conference_is_refused() -> None:
    assert refusal({"schedule": {"conference": "x"}}) == (
        "schedule.conference: must be a JSON object, found a string"
    )


@pytest.mark.parametrize("key", ["title", "time_zone_name"])
def test_conference_without_title_or_time_zone_is_refused(key: str) -> None:
    data = export()
    conference(data)[key] = " "

    assert refusal(data) == f"schedule.conference.{key}: must be a non-empty string"


def test_conference_with_an_unknown_time_zone_is_refused() -> None:
    data = export()
    conference(data)["time_zone_name"] = "Mars/Olympus_Mons"

    assert refusal(data) == (
        "schedule.conference.time_zone_name: 'Mars/Olympus_Mons' is not an IANA time zone, "
        "e.g. Europe/Zurich"
    )


def test_conference_without_a_list_of_days_is_refused() -> None:
    data = export()
    conference(data)["days"] = {}

    assert refusal(data) == "schedule.conference.days: must be a list of days"


def test_day_that_is_not_an_object_or_has_no_rooms_is_refused() -> None:
    data = export()
    conference(data)["days"] = [1]
    assert refusal(data) == "schedule.conference.days[0]: must be a JSON object, found a number"

    conference(data)["days"] = [{"index": 1}]
    assert (
        refusal(data) == "schedule.conference.days[0].rooms: must be a JSON object, found nothing"
    )


def test_room_whose_talks_are_not_a_list_is_refused() -> None:
    data = export()
    conference(data)["days"][1]["rooms"]["Room XIX"] = {}

    assert refusal(data) == 'schedule.conference.days[1].rooms["Room XIX"]: must be a list of talks'


def test_talk_that_is_not_an_object_is_refused_at_its_path() -> None:
    data = export()
    conference(data)["days"][0]["rooms"]["Room XVII"][1] = "talk"

    assert refusal(data) == (
        'schedule.conference.days[0].rooms["Room XVII"][1]: must be a JSON object, found a string'
    )


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        ("title", None, "title: must be a non-empty string"),
        ("date", 20270524, "date: must be a non-empty string"),
        (
            "date",
            "24/05/2027 10:00",
            "date: must be an ISO 8601 date-time, e.g. 2027-05-24T09:00:00+02:00, "
            "not '24/05/2027 10:00'",
        ),
        ("duration", "90 min", 'duration: must be "HH:MM", e.g. "01:30", not \'90 min\''),
        ("duration", "00:00", "duration: must be longer than 00:00 and at most 24:00"),
        ("duration", "24:01", "duration: must be longer than 00:00 and at most 24:00"),
        ("persons", "Nadia Haddad", "persons: must be a list of persons"),
        ("persons", ["Nadia Haddad"], "persons[0]: must be a JSON object, found a string"),
    ],
)
def test_talk_with_an_unreadable_field_is_refused_naming_its_json_path(
    key: str, value: object, reason: str
) -> None:
    data = export()
    first_talk(data)[key] = value

    assert refusal(data) == f'schedule.conference.days[0].rooms["Room XVII"][0].{reason}'


def test_duration_of_exactly_24_hours_is_accepted() -> None:
    data = export()
    first_talk(data)["duration"] = "24:00"

    first = imported(data).sessions[0]

    assert first.end - first.start == timedelta(hours=24)


def test_schedule_without_talks_is_refused() -> None:
    data = export()
    conference(data)["days"] = [{"index": 1, "rooms": {"Room XVII": []}}]

    assert refusal(data) == (
        "schedule.conference.days: the schedule has no talks, and a programme needs a session"
    )


def test_export_that_converts_into_an_invalid_programme_is_refused_with_the_loader_errors() -> None:
    talk = {**first_talk(export()), "room": None}
    data = with_talks(talk)
    conference(data)["days"][0]["rooms"] = {" ": [talk]}

    message = refusal(data)

    assert message.startswith("the imported programme does not validate:\n")
    assert "sessions[0].room: must not be empty" in message
