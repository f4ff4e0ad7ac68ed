"""The participation report's figures and how they are written, with no store (pure)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from reporting import charts, render
from reporting.errors import UnknownFormat
from reporting.report import (
    Person,
    Point,
    QuestionFact,
    SessionFacts,
    event_report,
    floor,
    questions,
    session_report,
)
from signaling.programme import Session

START = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _session(sid: str = "plenary", languages: tuple[str, ...] = ("en", "fr")) -> Session:
    return Session(
        id=sid,
        title=f"Session {sid}",
        room="Room XX",
        track="t",
        start=START,
        end=START + timedelta(hours=1),
        languages=languages,
    )


def _grant(
    at: float, group: str, seconds: int = 180, spoken: float | None = None
) -> dict[str, Any]:
    detail: dict[str, Any] = {"name": "x", "group": group, "mode": "remote", "seconds": seconds}
    if spoken is not None:
        detail.update(reason="replaced", spoken=spoken)
    return {"at": at, "action": "grant", "entry": "f1", "detail": detail}


def _ended(action: str, group: str, spoken: float) -> dict[str, Any]:
    detail = {"group": group, "reason": action, "spoken": spoken}
    return {"at": 0, "action": action, "entry": "f1", "detail": detail}


def test_speaking_time_goes_to_the_group_whose_turn_ended_even_when_a_grant_replaced_it() -> None:
    audit = [
        {"at": 1, "action": "request", "detail": {"group": "civil-society"}},
        {"at": 2, "action": "request", "detail": {"group": "government"}},
        {"at": 3, "action": "add", "detail": {"group": ""}},
        _grant(10, "civil-society"),
        _grant(100, "government", spoken=90.0),  # the grant's entry names the NEW speaker
        _ended("revoke", "government", 45.0),
        {"at": 200, "action": "withdraw", "detail": {"group": "private-sector"}},  # queued only
    ]
    figures = floor(audit, now=1000)
    assert (figures.requests, figures.interventions, figures.speaking_seconds) == (3, 2, 135.0)
    by_group = {
        g: (f.requests, f.interventions, f.speaking_seconds) for g, f in figures.by_group.items()
    }
    assert by_group == {
        "civil-society": (1, 1, 90.0),
        "government": (1, 1, 45.0),
        "unspecified": (1, 0, 0.0),
    }


def test_a_turn_ended_by_the_timer_spoke_its_whole_time_and_a_turn_still_going_counts_to_now() -> (
    None
):
    expired = [
        _grant(0, "academia", seconds=120),
        {"at": 130, "action": "expire", "detail": {"revoke": True}},
    ]
    assert floor(expired, now=10_000).speaking_seconds == 120.0
    said_only = [
        _grant(0, "academia", seconds=120),
        {"at": 130, "action": "expire", "detail": {"revoke": False}},
    ]
    assert floor(said_only, now=60).speaking_seconds == 60.0
    assert floor(said_only, now=10_000).speaking_seconds == 120.0  # never past its time


def test_questions_count_each_outcome_once_from_records_and_audit() -> None:
    facts = [
        QuestionFact("q1", "answered", "civil-society", "en", votes=2),
        QuestionFact("q2", "rejected", "civil-society", "fr"),
        QuestionFact("q3", "archived", "government", "en"),  # approved, then archived
        QuestionFact("q4", "archived", "government", "en", votes=5, merged_into="q1"),
        QuestionFact("q5", "pending", "", "ar"),
        QuestionFact("q6", "rejected", "academia", "en"),  # public at once, then rejected
    ]
    audit: list[dict[str, Any]] = [
        {"action": "ask", "question": "q1"},
        {"action": "approve", "question": "q1", "detail": {"from": "pending", "to": "approved"}},
        {"action": "answer", "question": "q1", "detail": {"from": "approved", "to": "answered"}},
        {"action": "reject", "question": "q2", "detail": {"from": "pending", "to": "rejected"}},
        {"action": "approve", "question": "q3", "detail": {"from": "pending", "to": "approved"}},
        {"action": "archive", "question": "q3", "detail": {"from": "approved", "to": "archived"}},
        {"action": "merge", "question": "q4", "detail": {"into": "q1"}},
        {"action": "reject", "question": "q6", "detail": {"from": "approved", "to": "rejected"}},
        {"action": "approve", "question": "gone"},  # not a question of the session: ignored
    ]
    q = questions(facts, audit)
    assert (q.asked, q.approved, q.answered, q.rejected, q.pending, q.merged, q.votes) == (
        6, 3, 1, 2, 1, 1, 2,
    )  # fmt: skip
    assert q.by_group == {"civil-society": 2, "government": 2, "academia": 1, "unspecified": 1}
    assert q.by_language == {"en": 4, "ar": 1, "fr": 1}


def _facts(
    sid: str, people: dict[str, Person], peak: tuple[int, int], heard: dict[str, frozenset[str]]
) -> SessionFacts:
    return SessionFacts(
        session=_session(sid),
        state="live",
        people=people,
        peak_online=peak[0],
        peak_at_ms=peak[1],
        heard={"floor": frozenset(), "en": frozenset(), "fr": frozenset(), **heard},
    )


AMINA = Person("remote", "participant", "civil-society", "KE")
BRUNO = Person("venue", "participant", "government", "FR")
CHEN = Person("remote", "moderator", "", "")


def test_a_session_counts_people_by_mode_role_group_country_and_language_heard() -> None:
    facts = _facts(
        "plenary",
        {"a": AMINA, "b": BRUNO, "c": CHEN},
        (3, 1_764_406_800_000),
        {"en": frozenset({"a", "b"}), "fr": frozenset({"a"})},
    )
    p = session_report(facts, now=0).participation
    assert (p.peak_online, p.peak_at_ms, p.unique) == (3, 1_764_406_800_000, 3)
    assert p.by_mode == {"venue": 1, "remote": 2}
    assert p.by_role == {"participant": 2, "moderator": 1}
    assert p.by_group == {"civil-society": 1, "government": 1, "unspecified": 1}
    assert p.by_country == {"FR": 1, "KE": 1, "unspecified": 1}
    assert p.by_language == {"floor": 0, "en": 2, "fr": 1}


def test_the_event_counts_a_person_in_two_sessions_once_and_names_the_biggest_peak() -> None:
    one = _facts("one", {"a": AMINA, "b": BRUNO}, (2, 1000), {"en": frozenset({"a"})})
    two = _facts("two", {"a": Person("venue", "speaker", "x", "CH"), "c": CHEN}, (5, 2000),
                 {"en": frozenset({"a", "c"})})  # fmt: skip
    report = event_report("summit", "Summit", [one, two], now=3.0)
    t = report.totals
    assert (t.sessions, t.peak_session) == (2, "two")
    assert (t.participation.unique, t.participation.peak_online) == (3, 5)
    assert t.participation.peak_at_ms == 2000
    assert t.participation.by_mode == {"venue": 1, "remote": 2}  # Amina as she first joined
    assert t.participation.by_language == {"floor": 0, "en": 2, "fr": 0}
    assert [r.session.id for r in report.sessions] == ["one", "two"]


def test_an_empty_event_has_zero_figures_in_every_format() -> None:
    report = event_report("summit", "Summit", [], now=0)
    assert report.totals.peak_session == ""
    data = json.loads(render.event_json(report))
    assert data["totals"]["participation"]["peak_at"] is None
    assert data["sessions"] == []
    assert "Participation report" in render.event_html(report)
    assert render.event_csv(report).splitlines()[0] == "session,section,item,value"


def test_json_csv_and_html_carry_the_same_figures() -> None:
    facts = SessionFacts(
        session=_session(),
        state="closed",
        people={"a": AMINA, "b": BRUNO},
        peak_online=2,
        peak_at_ms=1_764_406_800_000,
        heard={"floor": frozenset({"b"}), "en": frozenset({"a"}), "fr": frozenset()},
        questions=[QuestionFact("q1", "answered", "civil-society", "en", votes=1)],
        qa_audit=[{"action": "approve", "question": "q1"}],
        floor_audit=[_grant(0, "government", seconds=60), _ended("revoke", "government", 42.0)],
        series=[Point(1_764_406_800_000, 1, 0, 1), Point(1_764_406_815_000, 2, 1, 1)],
    )
    report = session_report(facts, now=0)
    data = json.loads(render.session_json(report, event_id="e", event_title="E", now_ms=5))
    assert data["report"] == "session"
    assert data["session"]["state"] == "closed"
    assert data["participation"]["peak_at"] == "2025-11-29T09:00:00+00:00"
    assert data["questions"]["approved"] == 1
    assert data["floor"]["by_group"]["government"]["speaking_seconds"] == 42.0
    assert data["series"][1] == {
        "at": "2025-11-29T09:00:15+00:00",
        "online": 2,
        "venue": 1,
        "remote": 1,
    }
    rows = list(csv.reader(io.StringIO(render.session_csv(report))))
    table = {(r[1], r[2]): r[3] for r in rows[1:]}
    assert {r[0] for r in rows[1:]} == {"plenary"}
    assert table[("participation", "unique")] == "2"
    assert table[("language", "en")] == "1"
    assert table[("floor_speaking_seconds", "government")] == "42.0"
    page = render.session_html(report, event_title="E", now_ms=5)
    # Five breakdowns, the online line, questions by outcome and by group, speaking time.
    assert page.count("<svg") == 9
    assert "<script" not in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_a_csv_cell_that_would_run_as_a_formula_is_defused() -> None:
    facts = _facts(
        "plenary", {"a": Person("remote", "participant", "=HYPERLINK(1)", "")}, (1, 1), {}
    )
    text = render.session_csv(session_report(facts, now=0))
    assert "'=HYPERLINK(1)" in text


def test_html_escapes_what_tokens_carry() -> None:
    facts = _facts("plenary", {"a": Person("remote", "participant", "<b>x</b>", "")}, (1, 1), {})
    page = render.session_html(session_report(facts, now=0), event_title="<E>", now_ms=0)
    assert "<b>x</b>" not in page
    assert "&lt;b&gt;x&lt;/b&gt;" in page
    assert "<E>" not in page


def test_an_unknown_format_is_refused() -> None:
    report = event_report("summit", "Summit", [], now=0)
    with pytest.raises(UnknownFormat):
        render.event_text(report, "pdf")


def test_a_long_series_is_thinned_without_losing_its_peak() -> None:
    points = [Point(i * 1000, 1 if i != 4321 else 99, 0, 1) for i in range(5000)]
    kept = charts.thin(points)
    assert len(kept) == charts.MAX_POINTS
    assert max(p.online for p in kept) == 99


def test_the_report_policy_allows_exactly_the_report_style() -> None:
    assert "script-src" not in render.REPORT_CSP
    assert "default-src 'none'" in render.REPORT_CSP
    assert "'unsafe-inline'" not in render.REPORT_CSP


def test_the_event_sums_questions_and_the_floor_by_group_across_sessions() -> None:
    def with_floor(sid: str, spoken: float) -> SessionFacts:
        return SessionFacts(
            session=_session(sid),
            questions=[QuestionFact(f"{sid}-q", "approved", "youth", "en", votes=2)],
            floor_audit=[_grant(0, "youth"), _ended("revoke", "youth", spoken)],
        )

    t = event_report("summit", "Summit", [with_floor("one", 30.0), with_floor("two", 12.5)], now=0)
    assert t.totals.floor.by_group["youth"].speaking_seconds == 42.5
    assert t.totals.floor.by_group["youth"].interventions == 2
    assert (t.totals.questions.asked, t.totals.questions.votes) == (2, 4)
    assert t.totals.questions.by_group == {"youth": 2}


def test_odd_records_read_as_unspecified_or_zero_never_as_an_error() -> None:
    assert Person.of(["not", "an", "object"]) == Person()
    assert Person.of({"mode": 3, "group": "youth"}) == Person(group="youth")
    odd = [{"action": "grant", "at": "yesterday", "detail": {"group": 7, "seconds": True}}]
    assert floor(odd, now=100).by_group["unspecified"].interventions == 1
    assert floor(odd, now=100).speaking_seconds == 0.0
    one_sample = charts.line("People online", [Point(0, 1, 1, 0)])
    assert "not enough samples" in one_sample
