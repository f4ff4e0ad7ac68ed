"""The media signaling relay: ``rtc.*`` between the floor holder's browser and a production desk.

Media never passes through podium; only the WebRTC negotiation does. Every relayed message is a
transient publish on the session's channel (never in history): ``u:<sub>`` reaches one person's
sockets on any node, ``r:production`` every desk of the session. A handler awaits its publish before
it acks, so one connection's messages reach the other end in the order they were sent.

Who may do what: the floor holder (the gate says who, from the store) offers and trickles
candidates; a production desk answers, and the first desk to answer takes the media session
(atomically, in the store); either end hangs up or reports its state. The media session lives in the
store (``{tag}:rtc:m:<id>``: speaker, desk, created, connected), so any node can relay for it. It ends
when either end hangs up or leaves, or when the speaker's turn ends (a floor hook).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, get_args

from signaling import rtc_messages as rtc
from signaling.errors import MediaConflict, MediaNotFound, NotAllowed
from signaling.identity import Role
from signaling.media import check_sdp, relayable_candidate
from signaling.messages import Message, encode
from signaling.service import Handler, SignalingService
from signaling.store import person
from signaling.turn import IceConfig, ice_servers

if TYPE_CHECKING:
    from signaling.connection import Connection

log = logging.getLogger("podium.relay")

DESKS = "r:" + Role.PRODUCTION.value
MEDIA_TTL = 12 * 3600
HANGUP_REASONS = frozenset(get_args(rtc.HangupReason))

# The first desk to answer takes the media session: {0} no such session, {2, desk} another desk
# has it, {1, speaker} taken (or already this desk's).
_CLAIM = r"""
local speaker = redis.call('HGET', KEYS[1], 'speaker')
if not speaker then return {0} end
local desk = redis.call('HGET', KEYS[1], 'desk')
if desk and desk ~= ARGV[1] then return {2, desk} end
if not desk then redis.call('HSET', KEYS[1], 'desk', ARGV[1]) end
return {1, speaker}
"""

# Forgets a media session once: only the caller that deleted it announces the hangup.
_FORGET = r"""
local h = redis.call('HMGET', KEYS[1], 'speaker', 'desk')
if not h[1] then return false end
redis.call('DEL', KEYS[1])
if redis.call('HGET', KEYS[2], h[1]) == ARGV[1] then redis.call('HDEL', KEYS[2], h[1]) end
return {h[1], h[2] or ''}
"""


class FloorGate(Protocol):
    """Who holds the floor of a session now (the speakers' list answers it, from the store)."""

    async def holder(self, session: str) -> str | None:
        """The sub of the current speaker, or None."""
        ...


@dataclass(frozen=True, slots=True)
class RelayConfig:
    """The relay's settings."""

    ice: IceConfig = field(default_factory=IceConfig)
    allow_private: bool = False
    max_sdp_bytes: int = 16 * 1024


@dataclass(frozen=True, slots=True)
class MediaSession:
    """A media session as the store holds it."""

    id: str
    speaker: str
    desk: str

    def other_end(self, sub: str) -> str:
        """The audience of the end that did not send: the desk (every desk before one answered)."""
        if sub == self.speaker:
            return person(self.desk) if self.desk else DESKS
        return person(self.speaker)


def new_media_id() -> str:
    """An unguessable media session id."""
    return "m" + secrets.token_hex(10)


class RelayService:
    """One node's media relay: the ``rtc.*`` handlers, the floor hooks and the close hook."""

    def __init__(
        self,
        signaling: SignalingService,
        gate: FloorGate,
        config: RelayConfig | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signaling = signaling
        self.store = signaling.store
        self.metrics = signaling.metrics
        self.gate = gate
        self.config = config or RelayConfig()
        self.clock = clock
        self._claim = self.store.client.register_script(_CLAIM)
        self._forget = self.store.client.register_script(_FORGET)
        # Node-local: the media sessions each connection here took part in (ended when it closes),
        # and the connected ones whose desk is here (the active-sessions gauge).
        self._owned: dict[Connection, set[str]] = {}
        self._active: dict[str, str] = {}

    def register(self) -> None:
        """Adds the ``rtc.*`` handlers and the connection-closed hook to the signaling service."""
        handlers: dict[type[Any], Handler] = {
            rtc.Ice: self.ice,
            rtc.Offer: self.offer,
            rtc.Answer: self.answer,
            rtc.Candidate: self.candidate,
            rtc.Restart: self.restart,
            rtc.Hangup: self.hangup,
            rtc.State: self.state,
        }
        self.signaling.handlers.update(handlers)
        self.signaling.closed_hooks.append(self.connection_closed)

    # ---- commands ----------------------------------------------------------------------------------

    async def ice(self, conn: Connection, cmd: rtc.Ice) -> dict[str, Any]:
        """ICE servers, with TURN credentials, for the floor holder or a desk."""
        self.metrics.rtc("ice")
        sub = conn.identity.sub
        if conn.identity.role is not Role.PRODUCTION and not await self._holds(conn):
            raise NotAllowed("only the floor holder and production desks get ICE servers")
        return ice_servers(self.config.ice, sub, self.clock())

    async def offer(self, conn: Connection, cmd: rtc.Offer) -> dict[str, Any]:
        """The floor holder offers media to the desks (or renegotiates its media session)."""
        self.metrics.rtc("offer")
        if not await self._holds(conn):
            raise NotAllowed("only the floor holder offers media")
        sdp = check_sdp(
            cmd.sdp,
            offer=True,
            max_bytes=self.config.max_sdp_bytes,
            allow_private=self.config.allow_private,
        ).sdp
        sub = conn.identity.sub
        if cmd.media is None:
            media = await self._begin(conn)
            target = DESKS
        else:
            current = await self._current(conn.session, sub)
            if current is None:
                raise MediaNotFound("the media session has ended; offer without media")
            if current != cmd.media:
                raise MediaConflict("that is not your current media session; offer without media")
            record = await self._media(conn.session, cmd.media)
            if record is None:
                raise MediaNotFound("the media session has ended")
            media, target = record.id, record.other_end(sub)
        self._own(conn, media)
        relayed = rtc.OfferRelayed(
            media=media, sdp=sdp, name=conn.identity.name, group=conn.identity.group
        )
        await self._publish(conn.session, target, relayed)
        return {"media": media}

    async def answer(self, conn: Connection, cmd: rtc.Answer) -> dict[str, Any]:
        """A desk answers; the first desk to answer takes the media session."""
        self.metrics.rtc("answer")
        if conn.identity.role is not Role.PRODUCTION:
            raise NotAllowed("only production desks answer media offers")
        sdp = check_sdp(
            cmd.sdp,
            offer=False,
            max_bytes=self.config.max_sdp_bytes,
            allow_private=self.config.allow_private,
        ).sdp
        key = self._key(conn.session, cmd.media)
        result = await self.store.guard("relay", self._claim(keys=[key], args=[conn.identity.sub]))
        if int(result[0]) == 0:
            raise MediaNotFound("the media session has ended")
        if int(result[0]) == 2:
            raise MediaConflict("another desk has taken this media session")
        self._own(conn, cmd.media)
        speaker = _text(result[1])
        await self._publish(conn.session, person(speaker), rtc.AnswerRelayed(cmd.media, sdp))
        return {"media": cmd.media}

    async def candidate(self, conn: Connection, cmd: rtc.Candidate) -> dict[str, Any]:
        """A trickled candidate for the other end; dropped (acked, not relayed) when blocked."""
        self.metrics.rtc("candidate")
        record = await self._party(conn, cmd.media, holding=True)
        if not relayable_candidate(cmd.candidate, allow_private=self.config.allow_private):
            return {"dropped": True}
        relayed = rtc.CandidateRelayed(cmd.media, cmd.candidate, cmd.mid, cmd.mline)
        await self._publish(conn.session, record.other_end(conn.identity.sub), relayed)
        return {"dropped": False}

    async def restart(self, conn: Connection, cmd: rtc.Restart) -> dict[str, Any]:
        """The desk asks the speaker for an ICE restart."""
        self.metrics.rtc("restart")
        record = await self._party(conn, cmd.media, holding=True)
        if conn.identity.sub != record.desk:
            raise NotAllowed("only the desk that answered asks for an ICE restart")
        await self._publish(conn.session, person(record.speaker), rtc.RestartRelayed(cmd.media))
        return {}

    async def hangup(self, conn: Connection, cmd: rtc.Hangup) -> dict[str, Any]:
        """Either end ends the media session."""
        self.metrics.rtc("hangup")
        record = await self._party(conn, cmd.media, holding=False)
        await self._end(
            conn.session, record.id, "hangup", notify=[record.other_end(conn.identity.sub)]
        )
        self._disown(conn, record.id)
        return {}

    async def state(self, conn: Connection, cmd: rtc.State) -> dict[str, Any]:
        """Either end's peer connection state: relayed, and measured."""
        self.metrics.rtc("state")
        if cmd.state in ("failed", "closed"):
            self._inactive(cmd.media)
        record = await self._party(conn, cmd.media, holding=False)
        sub = conn.identity.sub
        if cmd.state == "connected":
            if sub == record.desk:
                self._active[record.id] = conn.session
                self.metrics.media_sessions.set(len(self._active))
            await self._first_connected(conn.session, record)
        await self._publish(
            conn.session, record.other_end(sub), rtc.StateRelayed(cmd.media, cmd.state)
        )
        return {}

    # ---- floor and connection hooks ----------------------------------------------------------------

    async def floor_granted(self, session: str, sub: str, granted: float) -> None:
        """Remembers when the turn began (for the grant-to-media time)."""
        await self.store.guard(
            "relay", self.store.client.hset(self._granted_key(session), sub, repr(granted))
        )

    async def floor_ended(self, session: str, sub: str, reason: str) -> None:
        """The speaker's turn ended: their media session ends, both ends are told why."""
        client = self.store.client
        await self.store.guard("relay", client.hdel(self._granted_key(session), sub))
        media = await self._current(session, sub)
        if media is None:
            return
        why = reason if reason in HANGUP_REASONS else "hangup"
        await self._end(session, media, why, notify=None)

    async def connection_closed(self, conn: Connection) -> None:
        """A connection closed: the media sessions it took part in end (the other end hears 'left')."""
        for media in self._owned.pop(conn, set()):
            self._inactive(media)
            record = await self._media(conn.session, media)
            if record is None:
                continue
            other = record.other_end(conn.identity.sub)
            await self._end(conn.session, media, "left", notify=[other])

    async def refresh_metrics(self) -> None:
        """Drops from the active gauge the media sessions that ended on another node."""
        for media, session in list(self._active.items()):
            if not await self.store.client.exists(self._key(session, media)):
                self._inactive(media)
        self.metrics.media_sessions.set(len(self._active))

    async def run_metrics(self, period: float = 5.0) -> None:
        """Refreshes the active gauge forever."""
        while True:
            try:
                await self.refresh_metrics()
            except Exception:
                log.warning("media metrics refresh failed", exc_info=True)
            await asyncio.sleep(period)

    # ---- the store and the channel -----------------------------------------------------------------

    def _key(self, session: str, media: str) -> str:
        return self.store.keys(session).tag + ":rtc:m:" + media

    def _current_key(self, session: str) -> str:
        return self.store.keys(session).tag + ":rtc:current"

    def _granted_key(self, session: str) -> str:
        return self.store.keys(session).tag + ":rtc:granted"

    async def _holds(self, conn: Connection) -> bool:
        return await self.gate.holder(conn.session) == conn.identity.sub

    async def _begin(self, conn: Connection) -> str:
        """A new media session for the holder; one it had before ends (its desk hears 'replaced')."""
        session, sub = conn.session, conn.identity.sub
        old = await self._current(session, sub)
        if old is not None:
            await self._end(session, old, "replaced", notify=None)
            self._disown(conn, old)
        media = new_media_id()
        pipe = self.store.client.pipeline(transaction=True)
        key = self._key(session, media)
        pipe.hset(key, mapping={"speaker": sub, "created": repr(self.clock())})
        pipe.expire(key, MEDIA_TTL)
        pipe.hset(self._current_key(session), sub, media)
        await self.store.guard("relay", pipe.execute())
        return media

    async def _current(self, session: str, sub: str) -> str | None:
        value = await self.store.guard(
            "relay", self.store.client.hget(self._current_key(session), sub)
        )
        return None if value is None else _text(value)

    async def _media(self, session: str, media: str) -> MediaSession | None:
        fields = await self.store.guard(
            "relay", self.store.client.hmget(self._key(session, media), ["speaker", "desk"])
        )
        speaker, desk = fields
        if speaker is None:
            return None
        return MediaSession(media, _text(speaker), _text(desk) if desk is not None else "")

    async def _party(self, conn: Connection, media: str, *, holding: bool) -> MediaSession:
        """The media session, when the caller is one of its ends (the speaker still holding the
        floor, when ``holding``).

        Raises:
            NotAllowed: the caller is not an end of it (or a speaker no longer holding the floor).
            MediaConflict: a desk that is not the one that answered.
            MediaNotFound: it ended, and the caller could have been an end of it.
        """
        record = await self._media(conn.session, media)
        sub, desk = conn.identity.sub, conn.identity.role is Role.PRODUCTION
        if record is not None and sub == record.desk:
            return record
        if record is not None and sub == record.speaker:
            if not holding or await self._holds(conn):
                return record
            raise NotAllowed("your turn has ended")
        if record is None and (desk or await self._holds(conn)):
            raise MediaNotFound("the media session has ended")
        if record is not None and desk:
            raise MediaConflict("another desk has taken this media session")
        raise NotAllowed("only the floor holder and the desk that answered take part in media")

    async def _end(
        self, session: str, media: str, reason: str, *, notify: list[str] | None
    ) -> None:
        """Forgets a media session once and tells the ends (both when ``notify`` is None)."""
        keys = [self._key(session, media), self._current_key(session)]
        forgotten = await self.store.guard("relay", self._forget(keys=keys, args=[media]))
        self._inactive(media)
        if not forgotten:
            return
        record = MediaSession(media, _text(forgotten[0]), _text(forgotten[1]))
        if notify is None:
            notify = [person(record.speaker), record.other_end(record.speaker)]
        message = rtc.HangupRelayed(media, reason)  # type: ignore[arg-type]
        for audience in notify:
            await self._publish(session, audience, message)

    async def _first_connected(self, session: str, record: MediaSession) -> None:
        client = self.store.client
        first = await self.store.guard(
            "relay", client.hsetnx(self._key(session, record.id), "connected", repr(self.clock()))
        )
        if not first:
            return
        granted = await self.store.guard(
            "relay", client.hget(self._granted_key(session), record.speaker)
        )
        if granted is not None:
            self.metrics.grant_to_media.observe(max(0.0, self.clock() - float(granted)))

    async def _publish(self, session: str, audience: str, message: Message) -> None:
        await self.store.publish(session, encode(message), audience=audience, operation="relay")

    def _own(self, conn: Connection, media: str) -> None:
        self._owned.setdefault(conn, set()).add(media)

    def _disown(self, conn: Connection, media: str) -> None:
        owned = self._owned.get(conn)
        if owned is not None:
            owned.discard(media)

    def _inactive(self, media: str) -> None:
        if self._active.pop(media, None) is not None:
            self.metrics.media_sessions.set(len(self._active))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
