"""The question queue as pure rules: states, who may do what, and what each action changes.

Nothing here touches the store or the clock: callers pass the question as read, the actor and the
time, and get back the question as it should be written (or a typed refusal). The store applies the
result atomically, only if the question is still at the version it was read at.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from moderation.errors import NotAllowed, QnaClosed, QuestionConflict, TextRefused
from moderation.text import WordFilter, clean
from signaling.identity import Role
from signaling.programme import QnaSettings

MODERATORS: frozenset[Role] = frozenset({Role.MODERATOR, Role.OPERATOR})
ASKERS: frozenset[Role] = frozenset(
    {Role.PARTICIPANT, Role.SPEAKER, Role.MODERATOR, Role.OPERATOR, Role.INTERPRETER}
)
LANGUAGES = frozenset({"ar", "zh", "en", "fr", "ru", "es"})
LABEL = re.compile(r"^[\w-]{1,24}$")
MAX_LABELS = 5
MAX_REASON = 300
MAX_REPLY = 1000


class QState(StrEnum):
    """Where a question is in its life."""

    PENDING = "pending"
    APPROVED = "approved"
    ANSWERED = "answered"
    REJECTED = "rejected"
    ARCHIVED = "archived"


VOTABLE = frozenset({QState.APPROVED})
PUBLIC = frozenset({QState.APPROVED, QState.ANSWERED})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acts: from the verified token only."""

    sub: str
    name: str
    role: Role
    group: str = ""

    @property
    def moderates(self) -> bool:
        """Moderators and operators run the queue."""
        return self.role in MODERATORS


@dataclass(frozen=True, slots=True)
class Question:
    """One question as stored."""

    id: str
    text: str
    lang: str
    author: str
    author_name: str
    group: str
    anonymous: bool
    state: QState
    created: float
    version: int = 0
    votes: int = 0
    held: tuple[str, ...] = ()
    reason: str = ""
    reply: str = ""
    labels: tuple[str, ...] = ()
    merged_into: str = ""
    rank: float = 0.0
    decided: float = 0.0
    edited: bool = False

    def public_view(self) -> dict[str, Any]:
        """What every participant may see (no author behind an anonymous question)."""
        view: dict[str, Any] = {
            "id": self.id,
            "text": self.text,
            "lang": self.lang,
            "state": self.state.value,
            "votes": self.votes,
            "created": self.created,
            "anonymous": self.anonymous,
            "author_name": "" if self.anonymous else self.author_name,
            "group": self.group,
            "reply": self.reply,
            "labels": list(self.labels),
            "rank": self.rank,
            "edited": self.edited,
        }
        return view

    def staff_view(self) -> dict[str, Any]:
        """What moderators see: everything, author included."""
        return {
            **self.public_view(),
            "author_name": self.author_name,
            "author": self.author,
            "held": list(self.held),
            "reason": self.reason,
            "merged_into": self.merged_into,
        }

    def author_view(self) -> dict[str, Any]:
        """What the asker sees of their own question: its fate and the reason for it."""
        return {
            **self.public_view(),
            "author_name": self.author_name,
            "reason": self.reason,
            "mine": True,
        }


def ask(
    qid: str,
    actor: Actor,
    text: str,
    lang: str,
    anonymous: bool,
    *,
    settings: QnaSettings,
    locked: bool,
    words: WordFilter,
    now: float,
) -> Question:
    """A new question, pending or approved depending on pre-moderation and the word filter.

    Raises:
        NotAllowed: the role may not ask.
        QnaClosed: Q&A is off, or locked for new questions.
        TextRefused: the text fails hygiene, or the language is not one of the six.
    """
    if actor.role not in ASKERS:
        raise NotAllowed(f"a {actor.role} cannot ask questions")
    if not settings.enabled:
        raise QnaClosed("this session has no Q&A")
    if locked:
        raise QnaClosed("the moderators have locked new questions")
    if anonymous and not settings.anonymous_allowed:
        raise TextRefused("this session does not take anonymous questions")
    if lang not in LANGUAGES:
        raise TextRefused("lang must be one of ar, zh, en, fr, ru, es")
    body = clean(text, max_chars=settings.max_chars)
    held = tuple(words.hits(body))
    premoderated = settings.premoderation or bool(held)
    return Question(
        id=qid,
        text=body,
        lang=lang,
        author=actor.sub,
        author_name=actor.name,
        group=actor.group,
        anonymous=anonymous,
        state=QState.PENDING if premoderated else QState.APPROVED,
        created=now,
        held=held,
        rank=now,
    )


def _moderator(actor: Actor) -> None:
    if not actor.moderates:
        raise NotAllowed("only moderators can do this")


def _from(q: Question, allowed: frozenset[QState], action: str) -> None:
    if q.state not in allowed:
        raise QuestionConflict(f"cannot {action} a question that is {q.state}")


def approve(q: Question, actor: Actor, now: float) -> Question:
    """Pending (or rejected, on second thought) → approved."""
    _moderator(actor)
    _from(q, frozenset({QState.PENDING, QState.REJECTED}), "approve")
    return replace(q, state=QState.APPROVED, reason="", decided=now)


def reject(q: Question, actor: Actor, reason: str, now: float) -> Question:
    """Pending or approved → rejected, with a reason the asker is shown."""
    _moderator(actor)
    _from(q, frozenset({QState.PENDING, QState.APPROVED}), "reject")
    why = clean(reason, max_chars=MAX_REASON, max_lines=3)
    return replace(q, state=QState.REJECTED, reason=why, decided=now)


def answer(q: Question, actor: Actor, now: float) -> Question:
    """Approved → answered."""
    _moderator(actor)
    _from(q, frozenset({QState.APPROVED}), "mark answered")
    return replace(q, state=QState.ANSWERED, decided=now)


def archive(q: Question, actor: Actor, now: float) -> Question:
    """Any live state → archived."""
    _moderator(actor)
    _from(q, frozenset(QState) - {QState.ARCHIVED}, "archive")
    return replace(q, state=QState.ARCHIVED, decided=now)


def edit(q: Question, actor: Actor, text: str, max_chars: int) -> Question:
    """A moderator corrects the text (the original stays in the audit trail)."""
    _moderator(actor)
    _from(q, frozenset(QState) - {QState.ARCHIVED}, "edit")
    body = clean(text, max_chars=max_chars)
    if body == q.text:
        raise QuestionConflict("the text is unchanged")
    return replace(q, text=body, edited=True)


def label(q: Question, actor: Actor, labels: list[str]) -> Question:
    """Sets the question's labels."""
    _moderator(actor)
    clean_labels = tuple(dict.fromkeys(lbl.strip() for lbl in labels))
    if len(clean_labels) > MAX_LABELS or not all(LABEL.match(lbl) for lbl in clean_labels):
        raise TextRefused(f"at most {MAX_LABELS} labels of 1–24 letters, digits, - or _")
    return replace(q, labels=clean_labels)


def reply(q: Question, actor: Actor, text: str) -> Question:
    """A moderator's written answer, shown with the question."""
    _moderator(actor)
    _from(q, frozenset(QState) - {QState.ARCHIVED}, "reply to")
    if not text.strip():
        return replace(q, reply="")  # an empty reply takes the written answer back
    return replace(q, reply=clean(text, max_chars=MAX_REPLY))


def move(q: Question, actor: Actor, rank: float) -> Question:
    """Places the question in the moderator's order (lower rank first)."""
    _moderator(actor)
    _from(q, PUBLIC | {QState.PENDING}, "reorder")
    return replace(q, rank=rank)


def check_pin(q: Question, actor: Actor) -> None:
    """Only an approved or answered question goes on screen."""
    _moderator(actor)
    _from(q, PUBLIC, "pin")


def check_merge(source: Question, target: Question, actor: Actor) -> None:
    """Merging a duplicate into another question: both live, not the same one."""
    _moderator(actor)
    if source.id == target.id:
        raise QuestionConflict("a question cannot be merged into itself")
    live = frozenset({QState.PENDING, QState.APPROVED, QState.ANSWERED})
    _from(source, live, "merge")
    _from(target, live, "merge into")


def check_vote(actor: Actor) -> None:
    """Anyone who may ask may vote (the store checks the question is votable, atomically)."""
    if actor.role not in ASKERS:
        raise NotAllowed(f"a {actor.role} cannot vote")


def visible_to(q: Question, actor: Actor) -> bool:
    """Participants see public questions and their own; moderators see all; displays the public."""
    if actor.moderates:
        return True
    if q.state in PUBLIC:
        return True
    return q.author == actor.sub and q.state is not QState.ARCHIVED


def ordered(questions: list[Question], order: str) -> list[Question]:
    """Public questions in the session's order: votes, newest, moderator, or balanced by group.

    The balanced order never gives one stakeholder group two slots in a row while another group
    has a waiting question with votes.
    """
    by_votes = sorted(questions, key=lambda q: (-q.votes, q.created, q.id))
    if order == "newest":
        return sorted(questions, key=lambda q: (-q.created, q.id))
    if order == "moderator":
        return sorted(questions, key=lambda q: (q.rank, q.created, q.id))
    if order != "balanced":
        return by_votes
    result: list[Question] = []
    waiting = by_votes
    while waiting:
        last = result[-1].group if result else None
        pick = next((q for q in waiting if q.group != last), None)
        if pick is None or (pick.votes == 0 and waiting[0].group == last):
            pick = waiting[0] if pick is None else pick
        result.append(pick)
        waiting = [q for q in waiting if q is not pick]
    return result


def to_fields(q: Question) -> dict[str, str]:
    """The question as a flat string hash (the store's form)."""
    return {
        "id": q.id,
        "text": q.text,
        "lang": q.lang,
        "author": q.author,
        "author_name": q.author_name,
        "group": q.group,
        "anonymous": "1" if q.anonymous else "0",
        "state": q.state.value,
        "created": repr(q.created),
        "held": "\x1f".join(q.held),
        "reason": q.reason,
        "reply": q.reply,
        "labels": "\x1f".join(q.labels),
        "merged_into": q.merged_into,
        "rank": repr(q.rank),
        "decided": repr(q.decided),
        "edited": "1" if q.edited else "0",
    }


def from_fields(fields: dict[str, str], votes: int, version: int) -> Question:
    """A question from its stored hash."""
    return Question(
        id=fields["id"],
        text=fields["text"],
        lang=fields["lang"],
        author=fields["author"],
        author_name=fields["author_name"],
        group=fields["group"],
        anonymous=fields["anonymous"] == "1",
        state=QState(fields["state"]),
        created=float(fields["created"]),
        version=version,
        votes=votes,
        held=tuple(h for h in fields.get("held", "").split("\x1f") if h),
        reason=fields.get("reason", ""),
        reply=fields.get("reply", ""),
        labels=tuple(lbl for lbl in fields.get("labels", "").split("\x1f") if lbl),
        merged_into=fields.get("merged_into", ""),
        rank=float(fields.get("rank", "0")),
        decided=float(fields.get("decided", "0")),
        edited=fields.get("edited") == "1",
    )
