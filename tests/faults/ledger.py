"""The ledger: every answer clients were given, compared afterwards with what the store holds.

Clients record each attempt — a question asked, a vote, a floor request, a moderator decision — with
its outcome: acknowledged (the server said it is done) or refused (a typed error, such as the
retryable ``store_unavailable``). ``Ledger.audit`` then reads the session's keys and counts:

- **lost**: acknowledged, but not in the store;
- **duplicated**: in the store more than once (one question stored twice, one decision audited
  twice, one vote counted twice);
- **refused but applied**: refused, yet in the store. Not a loss: a command whose reply never came
  back (the store died after running it, or the reply timed out) may have run. Votes, floor
  requests and decisions are safe to retry (a set, one entry per person, a version check); a
  retried question is not yet (docs/reliability.md, scenario 3).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, cast

import redis.asyncio as aioredis

from moderation.floor_store import FloorKeys
from moderation.keys import QaKeys
from signaling.keys import SessionKeys


@dataclass(frozen=True, slots=True)
class Audit:
    """What the store holds against what clients were told."""

    acknowledged: int
    refused: int
    lost: int
    duplicated: int
    refused_applied: int
    refused_applied_by: dict[str, int] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def row(self) -> dict[str, int]:
        """The figures, for a table."""
        return {
            "acknowledged": self.acknowledged,
            "refused": self.refused,
            "lost": self.lost,
            "duplicated": self.duplicated,
            "refused but applied": self.refused_applied,
        }


@dataclass
class Ledger:
    """The acknowledgements and refusals clients of one session received."""

    session: str
    prefix: str = "podium"
    questions: dict[tuple[str, str], list[str | None]] = field(default_factory=dict)
    votes: dict[tuple[str, str], list[bool]] = field(default_factory=dict)
    requests: dict[str, list[str | None]] = field(default_factory=dict)
    decisions: dict[tuple[str, str], list[bool]] = field(default_factory=dict)

    def asked(self, author: str, text: str, question: str | None) -> None:
        """A question was acknowledged (with its id) or refused (``None``); texts are unique."""
        self.questions.setdefault((author, text), []).append(question)

    def voted(self, question: str, voter: str, acknowledged: bool) -> None:
        """A vote for a question was acknowledged or refused."""
        self.votes.setdefault((question, voter), []).append(acknowledged)

    def requested_floor(self, sub: str, entry: str | None) -> None:
        """A floor request was acknowledged (with its entry id) or refused (``None``)."""
        self.requests.setdefault(sub, []).append(entry)

    def decided(self, question: str, action: str, acknowledged: bool) -> None:
        """A moderator's decision (``approve``, ``reject``, ``answer``…) was acknowledged or refused."""
        self.decisions.setdefault((question, action), []).append(acknowledged)

    @property
    def acknowledged(self) -> int:
        """How many writes were acknowledged."""
        return (
            sum(q is not None for tries in self.questions.values() for q in tries)
            + sum(ok for tries in self.votes.values() for ok in tries)
            + sum(e is not None for tries in self.requests.values() for e in tries)
            + sum(ok for tries in self.decisions.values() for ok in tries)
        )

    @property
    def refused(self) -> int:
        """How many writes were refused."""
        return (
            sum(q is None for tries in self.questions.values() for q in tries)
            + sum(not ok for tries in self.votes.values() for ok in tries)
            + sum(e is None for tries in self.requests.values() for e in tries)
            + sum(not ok for tries in self.decisions.values() for ok in tries)
        )

    def acknowledged_questions(self) -> list[str]:
        """The ids of every acknowledged question."""
        return [q for tries in self.questions.values() for q in tries if q is not None]

    async def audit(self, client: aioredis.Redis) -> Audit:
        """Reads the session's keys and compares them with the ledger."""
        session = SessionKeys(self.prefix, self.session)
        qa = QaKeys(session)
        floor = FloorKeys(session.tag)
        problems: list[str] = []
        lost = duplicated = 0
        applied: Counter[str] = Counter()

        stored = await _stored_questions(client, qa)
        by_text = Counter((q["author"], q["text"]) for q in stored.values())
        for (author, text), tries in self.questions.items():
            acked = [q for q in tries if q is not None]
            copies = by_text[(author, text)]
            for qid in acked:
                if qid not in stored:
                    lost += 1
                    problems.append(f"question {qid} acknowledged, not stored")
            if copies > 1:
                duplicated += copies - 1
                problems.append(f"question {text!r} stored {copies} times")
            if not acked and copies:
                applied["questions"] += 1

        for (qid, voter), outcomes in self.votes.items():
            member = bool(await client.sismember(qa.voters(qid), voter))
            if outcomes[-1] and not member:
                lost += 1
                problems.append(f"vote of {voter} for {qid} acknowledged, not stored")
            if not any(outcomes) and member:
                applied["votes"] += 1
        for qid in {qid for qid, _ in self.votes}:
            counted = int(await client.hget(qa.question(qid), "votes") or 0)
            voters = int(await client.scard(qa.voters(qid)))
            if counted != voters:
                duplicated += abs(counted - voters)
                problems.append(f"question {qid} counts {counted} votes for {voters} voters")

        question_audit = Counter(
            (e.get("question"), e.get("action")) for e in await _audit(client, qa.audit)
        )
        for (qid, action), outcomes in self.decisions.items():
            times = question_audit[(qid, action)]
            if any(outcomes) and times == 0:
                lost += 1
                problems.append(f"{action} of {qid} acknowledged, not in the audit trail")
            if times > 1:
                duplicated += times - 1
                problems.append(f"{action} of {qid} audited {times} times")
            if not any(outcomes) and times:
                applied["decisions"] += 1

        floor_audit = [e for e in await _audit(client, floor.audit) if e["action"] == "request"]
        entries = Counter(e["entry"] for e in floor_audit)
        per_sub = Counter(e["actor"] for e in floor_audit)
        for sub, tries in self.requests.items():
            acked = [e for e in tries if e is not None]
            for entry in acked:
                if entries[entry] == 0:
                    lost += 1
                    problems.append(f"floor request {entry} acknowledged, not in the audit trail")
                if entries[entry] > 1:
                    duplicated += entries[entry] - 1
            if per_sub[sub] > len(tries):
                duplicated += per_sub[sub] - len(tries)
                problems.append(f"{sub} requested {len(tries)} times, stored {per_sub[sub]}")
            applied["floor requests"] += max(0, min(per_sub[sub], len(tries)) - len(acked))

        return Audit(
            acknowledged=self.acknowledged,
            refused=self.refused,
            lost=lost,
            duplicated=duplicated,
            refused_applied=sum(applied.values()),
            refused_applied_by={kind: n for kind, n in applied.items() if n},
            problems=tuple(problems),
        )


async def _stored_questions(client: aioredis.Redis, qa: QaKeys) -> dict[str, dict[str, str]]:
    """Every question of the session, by id, as stored (``author`` and ``text`` at least)."""
    ids = [i.decode() for i in cast(list[bytes], await client.zrange(qa.ids, 0, -1))]
    pipe = client.pipeline(transaction=False)
    for qid in ids:
        pipe.hgetall(qa.question(qid))
    rows = cast(list[dict[bytes, bytes]], await pipe.execute())
    return {
        qid: {k.decode(): v.decode() for k, v in row.items()}
        for qid, row in zip(ids, rows, strict=True)
        if row
    }


async def _audit(client: aioredis.Redis, key: str) -> list[dict[str, Any]]:
    rows = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(key))
    return [json.loads(fields[b"e"]) for _, fields in rows]
