"""The overview's pure core: raw store values in, the row operators see out; the day's sessions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from reporting.overview import Raw, overview_of, sessions_of_day
from signaling.programme import Event, Programme, Session

NOW = datetime(2026, 5, 24, 21, 30, tzinfo=UTC)  # 23:30 in Geneva
NOW_MS = int(NOW.timestamp() * 1000)


def _session(sid: str, start: datetime, hours: float = 1.0) -> Session:
    return Session(
        id=sid,
        title=sid.title(),
        room="Room XX",
        track="t",
        start=start,
        end=start + timedelta(hours=hours),
        languages=("en", "fr"),
    )


def _programme(*sessions: Session) -> Programme:
    return Programme(Event(id="e", title="E", timezone="Europe/Zurich"), sessions)


def test_the_day_is_the_event_s_calendar_day_and_a_session_across_midnight_counts_on_both() -> None:
    late = _session("late", NOW - timedelta(hours=1), hours=3)  # 22:30–01:30 Geneva
    morning = _session("morning", NOW - timedelta(hours=14))  # 09:30 Geneva, the same day
    tomorrow = _session("tomorrow", NOW + timedelta(hours=10))  # 09:30 Geneva, the next day
    programme = _programme(tomorrow, late, morning)
    assert [s.id for s in sessions_of_day(programme, NOW, every_day=False)] == ["morning", "late"]
    after_midnight = NOW + timedelta(hours=1)
    assert [s.id for s in sessions_of_day(programme, after_midnight, every_day=False)] == [
        "late",
        "tomorrow",
    ]
    assert [s.id for s in sessions_of_day(programme, NOW, every_day=True)] == [
        "morning",
        "late",
        "tomorrow",
    ]


def test_a_row_adds_people_by_mode_and_shows_the_speaker_s_time_left() -> None:
    turn = {"entry": "e1", "name": "Li", "group": "academia", "mode": "venue",
            "granted": NOW.timestamp() - 60, "seconds": 180, "ends": NOW.timestamp() + 120}  # fmt: skip
    raw = Raw(
        state="live",
        counts={
            "venue|participant": 3,
            "remote|participant": 5,
            "remote|moderator": 1,
            "venue|speaker": 0,
        },
        unique=11,
        waiting=4,
        requests=2,
        turn=json.dumps(turn),
    )
    row = overview_of(_session("plenary", NOW), raw, NOW_MS)
    assert row["online"] == {"total": 9, "venue": 3, "remote": 6}
    assert (row["unique"], row["questions"], row["state"]) == (11, {"waiting": 4}, "live")
    assert row["floor"] == {
        "requests": 2,
        "speaker": {
            "name": "Li",
            "group": "academia",
            "mode": "venue",
            "ends": turn["ends"],
            "left": 120.0,
            "expired": False,
        },
    }


def test_a_live_channel_shows_its_listeners_and_health_and_a_lapsed_one_reads_offline() -> None:
    health = {"inbound_bitrate_bps": 64000, "packets_lost": 0, "jitter_ms": 2.5,
              "round_trip_ms": None, "media_age_s": 0.1}  # fmt: skip
    live = {"state": "live", "since": NOW_MS - 5000, "reason": "publishing", "node": "node-2",
            "lease": NOW_MS + 10_000, "health": health, "listeners": 3}  # fmt: skip
    lapsed = {**live, "node": "node-3", "lease": NOW_MS - 1}
    raw = Raw(
        records={"fr": json.dumps(live), "floor": json.dumps(lapsed)},
        listeners=json.dumps({"fr": 7, "floor": 2}),
    )
    floor, en, fr = overview_of(_session("plenary", NOW), raw, NOW_MS)["channels"]
    assert fr == {"id": "fr", "kind": "language", "state": "live", "since": NOW_MS - 5000,
                  "reason": "publishing", "node": "node-2", "listeners": 7, "health": health}  # fmt: skip
    assert (floor["state"], floor["reason"], floor["listeners"], floor["health"]) == (
        "offline",
        "node_lost",
        0,
        None,
    )
    assert (en["state"], en["node"], en["listeners"]) == ("offline", None, 0)


def test_unreadable_store_values_cost_one_figure_never_the_overview() -> None:
    raw = Raw(turn='{"name": "Li"}', listeners="not json", records={})
    row = overview_of(_session("plenary", NOW), raw, NOW_MS)
    assert row["floor"]["speaker"] is None
    assert all(c["listeners"] == 0 for c in row["channels"])
    assert overview_of(_session("plenary", NOW), Raw(), NOW_MS)["online"] == {
        "total": 0,
        "venue": 0,
        "remote": 0,
    }
