"""The channels' store edge: a channel's record and its ``stream.channel`` event, written atomically.

Records live in one hash per session (``{P:S}:stream``, field = channel id), under the session's
hash tag; every change clients must see is one script that writes the record and appends the event
through signaling's shared append, so the history and the record never disagree.
"""

from __future__ import annotations

import json
from typing import Any

from signaling.messages import encode, event_body
from signaling.store import APPEND_LUA, AUDIENCE_ALL, SessionStore, new_epoch
from streaming.channels import ChannelRecord

EVENT = "stream.channel"

# KEYS: meta hist chan streams; ARGV: session_json body audience maxlen epoch channel record
_WRITE = (
    APPEND_LUA
    + r"""
redis.call('HSET', KEYS[4], ARGV[6], ARGV[7])
local r = podium_append(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5])
return r[2]
"""
)


def streams_key(store: SessionStore, session: str) -> str:
    """The hash of a session's channel records."""
    return store.keys(session).tag + ":stream"


class ChannelStore:
    """Reads and writes channel records on the session store."""

    def __init__(self, store: SessionStore) -> None:
        self.store = store
        self._write = store.client.register_script(_WRITE)

    async def records(self, session: str) -> dict[str, ChannelRecord]:
        """Every channel record of a session (channels never written are absent)."""
        raw = await self.store.guard(
            "read", self.store.client.hgetall(streams_key(self.store, session))
        )
        return {_text(k): ChannelRecord.from_json(json.loads(v)) for k, v in raw.items()}

    async def record(self, session: str, channel: str) -> ChannelRecord:
        """One channel's record (offline with no URL when never written)."""
        raw = await self.store.guard(
            "read", self.store.client.hget(streams_key(self.store, session), channel)
        )
        return ChannelRecord() if raw is None else ChannelRecord.from_json(json.loads(raw))

    async def write(
        self, session: str, channel: str, record: ChannelRecord, view: dict[str, Any]
    ) -> int:
        """Stores the record and emits ``stream.channel`` with the channel's view; returns the seq."""
        k = self.store.keys(session)
        body = event_body(EVENT, {"channel": view})
        args: list[str | bytes | int] = [
            encode(session),
            body,
            AUDIENCE_ALL,
            self.store.history_size,
            new_epoch(),
        ]
        seq = await self.store.guard(
            "append",
            self._write(
                keys=[k.meta, k.history, k.channel, streams_key(self.store, session)],
                args=[*args, channel, json.dumps(record.to_json())],
            ),
        )
        return int(seq)

    async def renew(self, session: str, channel: str, record: ChannelRecord) -> None:
        """Rewrites a live record with a later lease (no event: nothing changed for clients)."""
        await self.store.guard(
            "append",
            self.store.client.hset(
                streams_key(self.store, session), channel, json.dumps(record.to_json())
            ),
        )


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
