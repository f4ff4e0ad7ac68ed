"""Q&A commands on the wire (registered with signaling's codec by the composition root)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from signaling.messages import Command

QuestionId = Annotated[str, msgspec.Meta(pattern=r"^q[0-9a-z]{4,40}$")]
# Generous raw caps: the text rules (moderation.text) give the precise, translated refusal.
RawText = Annotated[str, msgspec.Meta(max_length=8000)]
Language = Literal["ar", "zh", "en", "fr", "ru", "es"]
# The asker's key for one question: a retry with the same key gets the first question back.
AskKey = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$")]


class Ask(Command, tag="qa.ask"):
    """Ask a question (optionally anonymously) in one of the six languages."""

    text: RawText
    lang: Language = "en"
    anonymous: bool = False
    key: AskKey | None = None


class Vote(Command, tag="qa.vote"):
    """Upvote an approved question (once per person)."""

    question: QuestionId


class Unvote(Command, tag="qa.unvote"):
    """Take one's vote back."""

    question: QuestionId


class Approve(Command, tag="qa.approve"):
    """Moderator: a pending (or rejected) question goes public."""

    question: QuestionId


class Reject(Command, tag="qa.reject"):
    """Moderator: refuse a question, with a reason the asker sees."""

    question: QuestionId
    reason: Annotated[str, msgspec.Meta(max_length=2000)]


class MarkAnswered(Command, tag="qa.answer"):
    """Moderator: the question was answered."""

    question: QuestionId


class Archive(Command, tag="qa.archive"):
    """Moderator: take a question out of every lane."""

    question: QuestionId


class Edit(Command, tag="qa.edit"):
    """Moderator: correct a question's text (the original stays in the audit trail)."""

    question: QuestionId
    text: RawText


class Label(Command, tag="qa.label"):
    """Moderator: set a question's labels."""

    question: QuestionId
    labels: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=64)]], msgspec.Meta(max_length=16)
    ]


class Reply(Command, tag="qa.reply"):
    """Moderator: answer a question in writing."""

    question: QuestionId
    text: RawText


class Move(Command, tag="qa.move"):
    """Moderator: place a question in the moderator's order (lower rank first)."""

    question: QuestionId
    rank: Annotated[float, msgspec.Meta(ge=-1e15, le=1e15)]


class Pin(Command, tag="qa.pin"):
    """Moderator: put a question on screen (``null`` takes it off)."""

    question: QuestionId | None


class Merge(Command, tag="qa.merge"):
    """Moderator: merge a duplicate into another question (votes united, no one counted twice)."""

    source: QuestionId
    target: QuestionId


class Lock(Command, tag="qa.lock"):
    """Moderator: stop (or resume) taking new questions."""

    locked: bool


COMMANDS: tuple[type[Command], ...] = (
    Ask,
    Vote,
    Unvote,
    Approve,
    Reject,
    MarkAnswered,
    Archive,
    Edit,
    Label,
    Reply,
    Move,
    Pin,
    Merge,
    Lock,
)
