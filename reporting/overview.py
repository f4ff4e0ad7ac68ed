"""The operators' overview: each session's live figures, read from the store in one round trip.

Whatever node answers, the figures are the store's (cluster-wide): lifecycle, people online by mode,
unique people, questions waiting for a moderator, requests for the floor, the speaker and their
time left, and each channel's state, listeners and health. ``overview_of`` is pure (raw store values
in, the view out); ``OverviewReader`` is the edge that reads them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from moderation.floor_store import FloorKeys
from moderation.keys import QaKeys
from signaling.presence import summarise
from signaling.programme import Programme, Session
from signaling.store import SessionStore
from streaming.channels import ChannelRecord, channel_view, channels_of
from streaming.store import listeners_key, streams_key

# Commands per session in the overview's pipeline (see ``OverviewReader.read``).
_PER_SESSION = 8


@dataclass(frozen=True, slots=True)
class Raw:
    """What the store holds of one session, as read (decoded, not yet interpreted)."""

    state: str = "scheduled"
    held: bool = False
    counts: dict[str, int] | None = None
    unique: int = 0
    waiting: int = 0
    requests: int = 0
    turn: str = ""
    expired: bool = False
    records: dict[str, str] | None = None
    listeners: str = ""


def day_of(moment: datetime, timezone: str) -> date:
    """The calendar day of an instant in the event's time zone."""
    return moment.astimezone(ZoneInfo(timezone)).date()


def sessions_of_day(programme: Programme, now: datetime, *, every_day: bool) -> list[Session]:
    """The sessions on the event's calendar day of ``now`` (any part of them), by start time; every
    session when ``every_day``."""
    tz = programme.event.timezone
    today = day_of(now, tz)
    chosen = [
        s
        for s in programme.sessions
        if every_day or day_of(s.start, tz) <= today <= day_of(s.end, tz)
    ]
    return sorted(chosen, key=lambda s: (s.start, s.id))


def overview_of(session: Session, raw: Raw, now_ms: int) -> dict[str, Any]:
    """One session's row of the overview."""
    counts = summarise(raw.counts or {}, raw.unique)
    return {
        "id": session.id,
        "title": session.title,
        "room": session.room,
        "start": session.start.isoformat(),
        "end": session.end.isoformat(),
        "state": raw.state,
        "held": raw.held,
        "online": {"total": counts.online, "venue": counts.venue, "remote": counts.remote},
        "unique": counts.unique,
        "questions": {"waiting": raw.waiting},
        "floor": {"requests": raw.requests, "speaker": _speaker(raw, now_ms)},
        "channels": _channels(session, raw, now_ms),
    }


def _speaker(raw: Raw, now_ms: int) -> dict[str, Any] | None:
    if not raw.turn:
        return None
    try:
        turn = json.loads(raw.turn)
        ends = float(turn["ends"])
        return {
            "name": str(turn["name"]),
            "group": str(turn.get("group", "")),
            "mode": str(turn.get("mode", "")),
            "ends": ends,
            "left": round(ends - now_ms / 1000, 1),
            "expired": raw.expired,
        }
    except (ValueError, KeyError, TypeError):
        return None  # a turn written by another version: no speaker rather than no overview


def _channels(session: Session, raw: Raw, now_ms: int) -> list[dict[str, Any]]:
    try:
        totals = {str(k): int(v) for k, v in json.loads(raw.listeners).items()}
    except (ValueError, AttributeError, TypeError):
        totals = {}
    out = []
    for spec in channels_of(session.languages):
        stored = (raw.records or {}).get(spec.id)
        record = ChannelRecord() if stored is None else ChannelRecord.from_json(json.loads(stored))
        view = channel_view(session.id, spec, record, now_ms)
        live = record.live_at(now_ms)
        out.append(
            {
                "id": spec.id,
                "kind": view["kind"],
                "state": view["state"],
                "since": view["since"],
                "reason": view["reason"],
                "node": record.node if live else None,
                "listeners": totals.get(spec.id, 0) if live else 0,
                "health": record.health if live else None,
            }
        )
    return out


class OverviewReader:
    """Reads the overview's figures of many sessions in one pipelined round trip."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store

    async def read(self, sessions: list[Session], now_ms: int) -> list[dict[str, Any]]:
        """Every listed session's overview row, in the order given."""
        pipe = self.store.client.pipeline(transaction=False)
        for session in sessions:
            k = self.store.keys(session.id)
            qa = QaKeys(k)
            floor = FloorKeys(k.tag)
            pipe.hmget(k.meta, ["state", "held"])
            pipe.hgetall(k.counts)
            pipe.scard(k.unique)
            pipe.hget(qa.counts, "pending")
            pipe.hmget(floor.state, ["turn", "expired"])
            pipe.zcard(floor.queue)
            pipe.hgetall(streams_key(self.store, session.id))
            pipe.hget(listeners_key(self.store, session.id), "_last")
        rows = await self.store.guard("read", pipe.execute())
        out = []
        for i, session in enumerate(sessions):
            meta, counts, unique, waiting, floor_state, requests, records, listeners = rows[
                i * _PER_SESSION : (i + 1) * _PER_SESSION
            ]
            raw = Raw(
                state=_text(meta[0] or b"scheduled"),
                held=meta[1] == b"1",
                counts={_text(key): int(n) for key, n in counts.items()},
                unique=int(unique),
                waiting=max(0, int(waiting or 0)),
                requests=int(requests),
                turn=_text(floor_state[0] or b""),
                expired=floor_state[1] == b"1",
                records={_text(key): _text(v) for key, v in records.items()},
                listeners=_text(listeners or b""),
            )
            out.append(overview_of(session, raw, now_ms))
        return out


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
