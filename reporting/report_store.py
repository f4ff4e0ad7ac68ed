"""Reads what the store recorded about sessions into the report's facts (the report's store edge).

A session's records are read in two round trips (a pipeline of its keys, then its questions), on
the session's keys only, from any node or from the command line with no node running:

- presence: ``{P:S}:pres:people`` (who each person was at their first join), ``:pres:uniq``
  (everyone who joined — people from before the people hash existed read as unspecified),
  ``:pres:peak`` (``online``, ``at``), ``:pres:series`` (``reporting.series``, if sampled);
- listeners: ``{P:S}:stream:heard:<channel>``, written by ``StreamingService.listen``;
- questions: the records (``{P:S}:qa:ids``, ``{P:S}:q:<id>``) and the audit trail ``:qa:audit``;
- the floor: its audit trail ``{P:S}:floor:audit``.

Both audit trails are streams without a cap (every action is kept), so the figures are complete.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, cast

from moderation.floor_store import FloorKeys
from moderation.keys import QaKeys
from reporting.report import (
    EventReport,
    Person,
    Point,
    QuestionFact,
    SessionFacts,
    SessionReport,
    event_report,
    session_report,
)
from reporting.series import parse_sample
from signaling.programme import Programme, Session
from signaling.store import SessionStore
from streaming.channels import channels_of

# Called after each session of an event report: (sessions done, sessions in all).
Progress = Callable[[int, int], None]
QUESTION_FIELDS = ("id", "state", "group", "lang", "votes", "merged_into")


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: object) -> int:
    try:
        return int(_text(value))
    except ValueError:
        return 0


def _person(raw: object) -> Person:
    try:
        return Person.of(json.loads(_text(raw)))
    except ValueError:
        return Person()


def _audit(rows: object) -> list[Mapping[str, Any]]:
    entries: list[Mapping[str, Any]] = []
    for _, fields in cast(list[tuple[bytes, dict[bytes, bytes]]], rows):
        try:
            entry = json.loads(fields[b"e"])
        except (KeyError, ValueError):
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class ReportStore:
    """The report's reads, on one deployment's store."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def facts(self, session: Session) -> SessionFacts:
        """Everything the report counts about one session.

        Raises:
            StoreUnavailable: the store did not answer.
        """
        client = self.store.client
        k = self.store.keys(session.id)
        qa = QaKeys(k)
        channels = [spec.id for spec in channels_of(session.languages)]
        pipe = client.pipeline(transaction=False)
        pipe.hget(k.meta, "state")
        pipe.hgetall(k.people)
        pipe.smembers(k.unique)
        pipe.hmget(k.peak, ["online", "at"])
        pipe.lrange(k.series, 0, -1)
        pipe.zrange(qa.ids, 0, -1)
        pipe.xrange(qa.audit)
        pipe.xrange(FloorKeys(k.tag).audit)
        for channel in channels:
            pipe.smembers(k.heard(channel))
        (
            state,
            people_raw,
            unique,
            (peak, peak_at),
            series,
            ids,
            qa_audit,
            floor_audit,
            *heard,
        ) = await self.store.guard("read", pipe.execute())
        people = {_text(sub): _person(raw) for sub, raw in people_raw.items()}
        for sub in unique:
            people.setdefault(_text(sub), Person())
        samples = (parse_sample(item) for item in series)
        return SessionFacts(
            session=session,
            state=_text(state) if state else "scheduled",
            people=people,
            peak_online=_int(peak or b"0"),
            peak_at_ms=_int(peak_at or b"0"),
            heard={
                channel: frozenset(_text(s) for s in subs)
                for channel, subs in zip(channels, heard, strict=True)
            },
            questions=await self._questions(qa, [_text(i) for i in ids]),
            qa_audit=_audit(qa_audit),
            floor_audit=_audit(floor_audit),
            series=tuple(Point(s.at, s.online, s.venue, s.remote) for s in samples if s),
        )

    async def _questions(self, qa: QaKeys, ids: list[str]) -> list[QuestionFact]:
        if not ids:
            return []
        pipe = self.store.client.pipeline(transaction=False)
        for qid in ids:
            pipe.hmget(qa.question(qid), list(QUESTION_FIELDS))
        rows = await self.store.guard("read", pipe.execute())
        found: list[QuestionFact] = []
        for row in rows:
            qid, state, group, lang, votes, merged = (_text(v) if v else "" for v in row)
            if qid:
                found.append(QuestionFact(qid, state, group, lang, _int(votes or "0"), merged))
        return found

    async def session_report(self, session: Session, *, now: float) -> SessionReport:
        """One session's report.

        Raises:
            StoreUnavailable: the store did not answer.
        """
        return session_report(await self.facts(session), now)

    async def event_report(
        self, programme: Programme, *, now: float, progress: Progress | None = None
    ) -> EventReport:
        """The event's report: every session of the programme, in order, then the totals.

        Args:
            programme: the event and its sessions.
            now: epoch seconds.
            progress: told after each session (sessions done, sessions in all).

        Raises:
            StoreUnavailable: the store did not answer.
        """
        facts: list[SessionFacts] = []
        total = len(programme.sessions)
        for session in programme.sessions:
            facts.append(await self.facts(session))
            if progress is not None:
                progress(len(facts), total)
        event = programme.event
        return event_report(event.id, event.title, facts, now=now)
