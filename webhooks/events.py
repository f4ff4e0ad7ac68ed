"""Which session events become webhooks, and their payloads — pure.

The session's history carries every event clients see; webhooks carry only decisions: a session's
state change, a question decided, the floor granted or a turn ended, a channel going live or
offline. Several of these are not events of their own in the history (a grant is the ``floor.list``
whose speaker changed; a decision is the staff's ``qa.question`` whose state changed; a channel's
``stream.channel`` also announces an external URL), so a ``Tracker`` carries what the previous
events said: the speaker, each question's state, each channel's state. The dispatcher keeps that
state in the store with its position, so whichever node continues derives the same webhooks.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moderation.questions import QState

SESSION_STATE = "session.state"
FLOOR_GRANTED = "floor.granted"
FLOOR_ENDED = "floor.ended"
CHANNEL_LIVE = "channel.live"
CHANNEL_OFFLINE = "channel.offline"
DECIDED = frozenset({QState.APPROVED, QState.REJECTED, QState.ANSWERED, QState.ARCHIVED})
HOOK_TYPES = frozenset(
    {SESSION_STATE, FLOOR_GRANTED, FLOOR_ENDED, CHANNEL_LIVE, CHANNEL_OFFLINE}
    | {"question." + s.value for s in DECIDED}
)
# What a receiver sees of a question: the public view plus the moderator's reason; never the
# asker's account id, nor the name behind an anonymous question.
QUESTION_FIELDS = (
    "id", "text", "lang", "state", "votes", "created", "anonymous", "author_name", "group", "reply",
    "labels", "reason", "merged_into",
)  # fmt: skip
SPEAKER = "speaker"
# The staff audience of a history entry (signaling.store.AUDIENCE_STAFF; this pure module does not
# import the store edge — a test keeps the two equal).
STAFF = "s"


@dataclass(frozen=True, slots=True)
class Frame:
    """One history entry, decoded."""

    seq: int
    audience: str
    name: str
    ts: int
    data: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Hook:
    """One webhook to deliver: the event's seq, its type, the commit time (ms) and its data."""

    seq: int
    type: str
    ts: int
    data: dict[str, Any]


def parse(seq: int, audience: str, frame: bytes) -> Frame | None:
    """A history entry as a frame; None for one that is not a well-formed event."""
    try:
        raw = json.loads(frame)
    except ValueError:
        return None
    if not isinstance(raw, dict) or not isinstance(raw.get("data"), dict):
        return None
    ts = raw.get("ts")
    return Frame(
        seq, audience, str(raw.get("name", "")), ts if isinstance(ts, int) else 0, raw["data"]
    )


def question_field(qid: str) -> str:
    """The tracker's field of a question's last state."""
    return "q:" + qid


def channel_field(channel: str) -> str:
    """The tracker's field of a channel's last state."""
    return "c:" + channel


def fields_needed(frames: Iterable[Frame]) -> list[str]:
    """The tracker fields deriving these frames reads (so the edge loads only those)."""
    needed = {SPEAKER}
    for frame in frames:
        if _is_question(frame):
            needed.add(question_field(str(frame.data["question"]["id"])))
        elif frame.name == "stream.channel" and isinstance(frame.data.get("channel"), dict):
            needed.add(channel_field(str(frame.data["channel"].get("id", ""))))
    return sorted(needed)


@dataclass(slots=True)
class Tracker:
    """What earlier events said, as stored fields; ``changed`` is what to write back."""

    known: dict[str, str]
    changed: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str:
        """A field's value ('' when never set)."""
        return self.changed.get(name, self.known.get(name, ""))

    def set(self, name: str, value: str) -> None:
        """Records a field's new value."""
        if self.get(name) != value:
            self.changed[name] = value


def derive(frame: Frame, tracker: Tracker) -> Hook | None:
    """The webhook one history event makes, if any; updates the tracker.

    Args:
        frame: the next event of the session, in seq order.
        tracker: the state the earlier events left.
    """
    if frame.name == SESSION_STATE:
        return Hook(frame.seq, SESSION_STATE, frame.ts, frame.data)
    if _is_question(frame):
        return _question(frame, tracker)
    if frame.name == "floor.list":
        return _floor_list(frame, tracker)
    if frame.name == "floor.ended":
        speaker = tracker.get(SPEAKER)
        tracker.set(SPEAKER, "")
        data = {**frame.data, "speaker": json.loads(speaker) if speaker else None}
        return Hook(frame.seq, FLOOR_ENDED, frame.ts, data)
    if frame.name == "stream.channel":
        return _channel(frame, tracker)
    return None


def _is_question(frame: Frame) -> bool:
    # Every question change emits exactly one staff-audience qa.question (the whole view).
    question = frame.data.get("question")
    return (
        frame.name == "qa.question"
        and frame.audience == STAFF
        and isinstance(question, dict)
        and "id" in question
    )


def _question(frame: Frame, tracker: Tracker) -> Hook | None:
    question: dict[str, Any] = frame.data["question"]
    name = question_field(str(question["id"]))
    previous = tracker.get(name)
    state = str(question.get("state", ""))
    tracker.set(name, state)
    if state == previous or state not in {s.value for s in DECIDED}:
        return None  # an edit, a label, a reply, a move — or a question waiting
    view = {k: question[k] for k in QUESTION_FIELDS if k in question}
    if view.get("anonymous"):
        view["author_name"] = ""
    data = {"question": view, "previous": previous or None}
    return Hook(frame.seq, "question." + state, frame.ts, data)


def _floor_list(frame: Frame, tracker: Tracker) -> Hook | None:
    speaker = frame.data.get("speaker")
    before = tracker.get(SPEAKER)
    if not isinstance(speaker, dict):
        tracker.set(SPEAKER, "")
        return None
    tracker.set(SPEAKER, json.dumps(speaker, separators=(",", ":"), sort_keys=True))
    if before and json.loads(before).get("entry") == speaker.get("entry"):
        return None  # the same turn, shown again with a list change
    return Hook(frame.seq, FLOOR_GRANTED, frame.ts, {"speaker": speaker})


def _channel(frame: Frame, tracker: Tracker) -> Hook | None:
    channel = frame.data.get("channel")
    if not isinstance(channel, dict):
        return None
    name = channel_field(str(channel.get("id", "")))
    previous = tracker.get(name) or "offline"
    state = str(channel.get("state", ""))
    tracker.set(name, state)
    if state == previous or state not in ("live", "offline"):
        return None  # an external URL set, a renewal: no change of state
    return Hook(
        frame.seq, CHANNEL_LIVE if state == "live" else CHANNEL_OFFLINE, frame.ts, frame.data
    )


def payload(session: str, epoch: str, hook: Hook) -> bytes:
    """The body of a webhook: exactly these bytes are signed and sent (compact JSON, stable keys)."""
    body = {
        "id": delivery_id(session, epoch, hook.seq),
        "type": hook.type,
        "session": session,
        "epoch": epoch,
        "seq": hook.seq,
        "at": iso(hook.ts) if hook.ts else None,
        "data": hook.data,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


def delivery_id(session: str, epoch: str, seq: int) -> str:
    """The stable id of a session's event: the same on every attempt and every node."""
    return f"{session}:{epoch}:{seq}"


def iso(ms: int) -> str:
    """Milliseconds since the epoch as an ISO 8601 UTC time."""
    return (
        datetime.fromtimestamp(ms / 1000, UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
