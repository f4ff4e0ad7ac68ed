"""The participation report's figures, computed from what the store recorded (pure: no I/O, no clock).

``reporting.report_store`` reads a session's records into ``SessionFacts``; ``session_report`` turns
them into the figures of one session, ``event_report`` those of every session plus the event's
totals (people counted once across sessions: the union of who joined, counted here in Python).
``reporting.render`` writes the figures as JSON, CSV and HTML.

Definitions (docs/reports.md says the same for organisers):

- *peak online*: the most people online at once in the session (tabs counted once), and when that
  number was first reached; for the event, the highest session peak.
- *unique*: everyone who joined at least once, whatever their role; split by mode (venue/remote),
  role, stakeholder group and country as the person's first join said.
- *language*: people who played a channel (``floor`` or a language) at least once.
- *questions*: asked; approved (made public: by a moderator, or at once without pre-moderation);
  answered; rejected (at any time); pending now; merged into another; votes on the questions that
  were not merged away.
- *floor*: requests put on the speakers' list (by the person or by a moderator); interventions
  (turns given); speaking time (seconds), each by the stakeholder group of the person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from signaling.programme import Session

UNSPECIFIED = "unspecified"
MODES = ("venue", "remote")
# The question states that mean the question was made public.
PUBLIC_STATES = frozenset({"approved", "answered"})


@dataclass(frozen=True, slots=True)
class Person:
    """Who a person was when they first joined a session (from their token)."""

    mode: str = ""
    role: str = ""
    group: str = ""
    country: str = ""

    @classmethod
    def of(cls, raw: object) -> Person:
        """A person from the store's JSON object; anything unexpected reads as unspecified."""
        if not isinstance(raw, Mapping):
            return cls()
        fields = {name: raw.get(name, "") for name in ("mode", "role", "group", "country")}
        return cls(**{k: v if isinstance(v, str) else "" for k, v in fields.items()})


@dataclass(frozen=True, slots=True)
class QuestionFact:
    """What the report needs of one question."""

    id: str
    state: str
    group: str = ""
    lang: str = ""
    votes: int = 0
    merged_into: str = ""


@dataclass(frozen=True, slots=True)
class Point:
    """One sample of the online series (``reporting.series``): when (ms) and how many were online."""

    at: int
    online: int
    venue: int
    remote: int


@dataclass(frozen=True, slots=True)
class SessionFacts:
    """Everything the store recorded about a session that the report counts."""

    session: Session
    state: str = "scheduled"
    people: Mapping[str, Person] = field(default_factory=dict)
    peak_online: int = 0
    peak_at_ms: int = 0
    heard: Mapping[str, frozenset[str]] = field(default_factory=dict)
    questions: Sequence[QuestionFact] = ()
    qa_audit: Sequence[Mapping[str, Any]] = ()
    floor_audit: Sequence[Mapping[str, Any]] = ()
    series: Sequence[Point] = ()


@dataclass(frozen=True, slots=True)
class Participation:
    """Who took part: peak online, unique people and their breakdowns."""

    peak_online: int
    peak_at_ms: int
    unique: int
    by_mode: dict[str, int]
    by_role: dict[str, int]
    by_group: dict[str, int]
    by_country: dict[str, int]
    by_language: dict[str, int]


@dataclass(frozen=True, slots=True)
class Questions:
    """The session's questions by outcome, and who asked them."""

    asked: int = 0
    approved: int = 0
    answered: int = 0
    rejected: int = 0
    pending: int = 0
    merged: int = 0
    votes: int = 0
    by_group: dict[str, int] = field(default_factory=dict)
    by_language: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GroupFloor:
    """One stakeholder group's use of the floor."""

    requests: int = 0
    interventions: int = 0
    speaking_seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class FloorFigures:
    """The speakers' list: requests, interventions and speaking time, in total and by group."""

    requests: int = 0
    interventions: int = 0
    speaking_seconds: float = 0.0
    by_group: dict[str, GroupFloor] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SessionReport:
    """One session's figures."""

    session: Session
    state: str
    participation: Participation
    questions: Questions
    floor: FloorFigures
    series: tuple[Point, ...] = ()


@dataclass(frozen=True, slots=True)
class Totals:
    """The event's figures: people counted once across sessions, the rest summed."""

    sessions: int
    peak_session: str
    participation: Participation
    questions: Questions
    floor: FloorFigures


@dataclass(frozen=True, slots=True)
class EventReport:
    """Every session's figures and the event's totals."""

    event_id: str
    title: str
    generated_at_ms: int
    sessions: tuple[SessionReport, ...]
    totals: Totals


# ---- participation ----------------------------------------------------------------------------------


def label(value: str) -> str:
    """A breakdown's key: the value, or ``unspecified`` when the token said nothing."""
    return value if value else UNSPECIFIED


def _ranked(counter: Counter[str]) -> dict[str, int]:
    # Largest first, then by name: the order tables and charts show.
    return dict(sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def participation(
    people: Mapping[str, Person],
    heard: Mapping[str, Iterable[str]],
    *,
    peak_online: int,
    peak_at_ms: int,
) -> Participation:
    """The participation figures of a set of people (one session's, or the event's union).

    Args:
        people: person → who they were at their first join.
        heard: channel → the people who played it (every channel listed, even unheard).
        peak_online: the most people online at once.
        peak_at_ms: when that was first reached (0: never).
    """
    persons = list(people.values())
    modes = Counter(p.mode for p in persons if p.mode in MODES)
    return Participation(
        peak_online=peak_online,
        peak_at_ms=peak_at_ms if peak_online else 0,
        unique=len(persons),
        by_mode={mode: modes.get(mode, 0) for mode in MODES},
        by_role=_ranked(Counter(label(p.role) for p in persons)),
        by_group=_ranked(Counter(label(p.group) for p in persons)),
        by_country=_ranked(Counter(label(p.country) for p in persons)),
        by_language={channel: len(set(subs)) for channel, subs in heard.items()},
    )


# ---- questions --------------------------------------------------------------------------------------


def questions(facts: Sequence[QuestionFact], audit: Sequence[Mapping[str, Any]]) -> Questions:
    """The questions' figures from the records (their state now) and the audit trail (their past).

    A question approved and later rejected or archived still counts as approved; one asked with
    pre-moderation off was public from the start (its later decisions say ``from: approved``).
    """
    known = {q.id for q in facts}
    approved = {q.id for q in facts if q.state in PUBLIC_STATES}
    answered = {q.id for q in facts if q.state == "answered"}
    rejected = {q.id for q in facts if q.state == "rejected"}
    for entry in audit:
        qid, action = entry.get("question"), entry.get("action")
        if not isinstance(qid, str) or qid not in known:
            continue
        detail = entry.get("detail")
        before = detail.get("from") if isinstance(detail, Mapping) else None
        if action in ("approve", "answer") or before in PUBLIC_STATES:
            approved.add(qid)
        if action == "answer":
            answered.add(qid)
        elif action == "reject":
            rejected.add(qid)
    return Questions(
        asked=len(facts),
        approved=len(approved),
        answered=len(answered),
        rejected=len(rejected),
        pending=sum(1 for q in facts if q.state == "pending"),
        merged=sum(1 for q in facts if q.merged_into),
        votes=sum(q.votes for q in facts if not q.merged_into),
        by_group=_ranked(Counter(label(q.group) for q in facts)),
        by_language=_ranked(Counter(label(q.lang) for q in facts)),
    )


# ---- the floor --------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Turn:
    group: str
    granted: float
    seconds: float


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0.0
    return max(0.0, float(value))


def floor(audit: Sequence[Mapping[str, Any]], now: float) -> FloorFigures:
    """The floor's figures from its audit trail, in order.

    A turn ends with a ``spoken`` time in the entry that ended it (a revoke, a withdrawal, a leave,
    or the grant that replaced it — whose entry names the *new* speaker, so the time goes to the
    group of the turn it ended); a turn that ran out and was ended by the timer spoke its whole
    time; a turn still going counts up to ``now`` (never past its time).

    Args:
        audit: the list's audit entries, oldest first.
        now: epoch seconds, for a turn still going.
    """
    requests: Counter[str] = Counter()
    interventions: Counter[str] = Counter()
    spoken: dict[str, float] = {}
    turn: _Turn | None = None

    def add_spoken(group: str, seconds: float) -> None:
        spoken[group] = spoken.get(group, 0.0) + seconds

    for entry in audit:
        action = entry.get("action")
        raw = entry.get("detail")
        detail: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
        group_value = detail.get("group", "")
        group = label(group_value if isinstance(group_value, str) else "")
        ended = "spoken" in detail
        if action in ("request", "add"):
            requests[group] += 1
        elif action == "grant":
            if turn is not None and ended:
                add_spoken(turn.group, _number(detail["spoken"]))
            turn = _Turn(group, _number(entry.get("at")), _number(detail.get("seconds")))
            interventions[group] += 1
        elif action in ("revoke", "withdraw", "leave") and ended:
            add_spoken(turn.group if turn is not None else group, _number(detail["spoken"]))
            turn = None
        elif action == "expire" and detail.get("revoke") is True and turn is not None:
            add_spoken(turn.group, turn.seconds)
            turn = None
    if turn is not None:
        add_spoken(turn.group, max(0.0, min(now, turn.granted + turn.seconds) - turn.granted))
    groups = sorted(set(requests) | set(interventions) | set(spoken))
    by_group = {
        g: GroupFloor(requests[g], interventions[g], round(spoken.get(g, 0.0), 1)) for g in groups
    }
    by_group = dict(
        sorted(by_group.items(), key=lambda kv: (-kv[1].speaking_seconds, -kv[1].requests, kv[0]))
    )
    return FloorFigures(
        requests=sum(requests.values()),
        interventions=sum(interventions.values()),
        speaking_seconds=round(sum(spoken.values()), 1),
        by_group=by_group,
    )


# ---- reports ----------------------------------------------------------------------------------------


def session_report(facts: SessionFacts, now: float) -> SessionReport:
    """One session's figures.

    Args:
        facts: what the store recorded about the session.
        now: epoch seconds (a speaker's turn still going counts up to now).
    """
    return SessionReport(
        session=facts.session,
        state=facts.state,
        participation=participation(
            facts.people, facts.heard, peak_online=facts.peak_online, peak_at_ms=facts.peak_at_ms
        ),
        questions=questions(facts.questions, facts.qa_audit),
        floor=floor(facts.floor_audit, now),
        series=tuple(facts.series),
    )


def _sum_questions(parts: Iterable[Questions]) -> Questions:
    parts = list(parts)
    by_group: Counter[str] = Counter()
    by_language: Counter[str] = Counter()
    for q in parts:
        by_group.update(q.by_group)
        by_language.update(q.by_language)
    return Questions(
        asked=sum(q.asked for q in parts),
        approved=sum(q.approved for q in parts),
        answered=sum(q.answered for q in parts),
        rejected=sum(q.rejected for q in parts),
        pending=sum(q.pending for q in parts),
        merged=sum(q.merged for q in parts),
        votes=sum(q.votes for q in parts),
        by_group=_ranked(by_group),
        by_language=_ranked(by_language),
    )


def _sum_floor(parts: Iterable[FloorFigures]) -> FloorFigures:
    parts = list(parts)
    groups: dict[str, GroupFloor] = {}
    for part in parts:
        for g, f in part.by_group.items():
            have = groups.get(g, GroupFloor())
            groups[g] = GroupFloor(
                have.requests + f.requests,
                have.interventions + f.interventions,
                round(have.speaking_seconds + f.speaking_seconds, 1),
            )
    return FloorFigures(
        requests=sum(f.requests for f in parts),
        interventions=sum(f.interventions for f in parts),
        speaking_seconds=round(sum(f.speaking_seconds for f in parts), 1),
        by_group=dict(
            sorted(groups.items(), key=lambda kv: (-kv[1].speaking_seconds, -kv[1].requests, kv[0]))
        ),
    )


def event_report(
    event_id: str, title: str, facts: Sequence[SessionFacts], *, now: float
) -> EventReport:
    """Every session's figures and the event's totals.

    People are counted once across sessions (the union of who joined; a person's breakdowns come
    from the first session, in programme order, they joined); channel listeners likewise per
    channel id. The event's peak is the highest session peak (``Totals.peak_session`` names it).

    Args:
        event_id: the event's id.
        title: the event's title.
        facts: every session's records, in programme order.
        now: epoch seconds.
    """
    reports = tuple(session_report(f, now) for f in facts)
    people: dict[str, Person] = {}
    heard: dict[str, set[str]] = {}
    for f in facts:
        for sub, person in f.people.items():
            people.setdefault(sub, person)
        for channel, subs in f.heard.items():
            heard.setdefault(channel, set()).update(subs)
    top = max(
        reports,
        key=lambda r: (r.participation.peak_online, -r.participation.peak_at_ms),
        default=None,
    )
    peak, peak_at = (top.participation.peak_online, top.participation.peak_at_ms) if top else (0, 0)
    return EventReport(
        event_id=event_id,
        title=title,
        generated_at_ms=int(now * 1000),
        sessions=reports,
        totals=Totals(
            sessions=len(reports),
            peak_session=top.session.id if top is not None and peak else "",
            participation=participation(people, heard, peak_online=peak, peak_at_ms=peak_at),
            questions=_sum_questions(r.questions for r in reports),
            floor=_sum_floor(r.floor for r in reports),
        ),
    )
