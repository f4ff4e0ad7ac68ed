"""The node's streaming service: channels on this node, their publishers, listeners and recordings.

Media of a channel flow through the node its publisher is connected to; the channel's state, its
external URL and the ``stream.channel`` events are in the store, so every node and client sees them.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from signaling.errors import RateLimited, StoreUnavailable
from signaling.identity import Identity
from signaling.programme import Programme, Session
from signaling.ratelimit import TokenBucket
from signaling.service import JoinRead, SignalingService, cancel_all
from streaming import sdp
from streaming.channels import (
    ChannelRecord,
    ChannelSpec,
    Kind,
    State,
    channel_of,
    channel_view,
    channels_of,
    check_publisher,
    check_takeover,
)
from streaming.errors import (
    ChannelBusy,
    ChannelElsewhere,
    ChannelForbidden,
    ChannelOffline,
    OverCapacity,
    PreconditionFailed,
    StreamingError,
    UnknownResource,
)
from streaming.live import LiveChannel, StreamLimits, staff_fields
from streaming.metrics import StreamingMetrics
from streaming.peers import (
    ChannelTrack,
    EncodedTrack,
    Peer,
    answer_listener,
    answer_publisher,
    new_peer,
)
from streaming.recording import Recording
from streaming.store import ChannelStore

if TYPE_CHECKING:
    from signaling.connection import Connection

log = logging.getLogger("podium.streaming")


IceServers = Callable[[Identity], list[dict[str, Any]]]

_ENDED = "the channel ended while it was being taken over; publish again"
RELEASED = "released"  # an operator let the channel go (a forced takeover from another booth)


class StreamingService:
    """One node's channels; the routes call it, the health loop watches it."""

    def __init__(
        self,
        programme: Programme,
        store: ChannelStore,
        metrics: StreamingMetrics,
        *,
        node: str,
        data_dir: Path,
        limits: StreamLimits | None = None,
        ice_servers: IceServers | None = None,
        public_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.programme = programme
        self.store = store
        self.metrics = metrics
        self.node = node
        self.recordings_dir = data_dir / "recordings"
        self.limits = limits or StreamLimits()
        self.ice_servers: IceServers = ice_servers or (lambda identity: [])
        self.public_url = public_url.rstrip("/")
        self.clock = clock
        self.channels: dict[tuple[str, str], LiveChannel] = {}
        self.resources: dict[str, Peer] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._loop: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._counting: set[str] = set()
        self._joining = 0
        self._buckets: dict[str, TokenBucket] = {}
        self._reaped = 0.0
        self._counted: dict[str, float] = {}

    # ---- lookups -----------------------------------------------------------------------------------

    def spec(self, session: Session, channel: str) -> ChannelSpec:
        """The session's channel (raises UnknownChannel)."""
        return channel_of(session.languages, channel)

    def now_ms(self) -> int:
        """The injected clock in milliseconds."""
        return int(self.clock() * 1000)

    def listener_count(self) -> int:
        """WHEP listeners on this node."""
        return sum(len(c.listeners) for c in self.channels.values())

    def resource(self, rid: str, *, publish: bool, session: str, channel: str) -> Peer:
        """The WHIP (or WHEP) session behind a resource URL.

        Raises:
            UnknownResource: no such session on this node, or one of the other kind or channel.
        """
        peer = self.resources.get(rid)
        if (
            peer is None
            or peer.publish != publish
            or (peer.session, peer.channel) != (session, channel)
        ):
            raise UnknownResource("no such WHIP/WHEP session here (it ended, or never existed)")
        return peer

    async def views(self, session: Session, *, staff: bool) -> list[dict[str, Any]]:
        """Every channel of a session as its participants see it; staff also get health and load."""
        return self._views(session, await self.store.records(session.id), staff=staff)

    async def all_views(self, sessions: list[Session]) -> list[dict[str, Any]]:
        """Every channel of these sessions, staff views (the operators' overview), one round trip."""
        raw = await self.store.all_records([s.id for s in sessions])
        out = []
        for session in sessions:
            records = {
                k: ChannelRecord.from_json(json.loads(v)) for k, v in raw[session.id].items()
            }
            out.append({"session": session.id, "title": session.title,
                        "channels": self._views(session, records, staff=True)})  # fmt: skip
        return out

    def _views(
        self, session: Session, records: dict[str, ChannelRecord], *, staff: bool
    ) -> list[dict[str, Any]]:
        now = self.now_ms()
        out = []
        for spec in channels_of(session.languages):
            record = records.get(spec.id, ChannelRecord())
            view = channel_view(session.id, spec, record, now)
            if staff:
                view |= staff_fields(self.channels.get((session.id, spec.id)), record, now)
            out.append(view)
        return out

    def register(self, signaling: SignalingService) -> None:
        """Adds the channels to the welcome snapshot of every client connection."""
        signaling.snapshot_parts["stream"] = JoinRead(
            lua=ChannelStore.snapshot_lua(),
            build=lambda conn, raw: self._view(conn, *ChannelStore.snapshot_from_reply(raw)),
            read=self.snapshot,
        )

    async def snapshot(self, conn: Connection) -> dict[str, Any]:
        """The session's channels and listener totals, as a participant sees them."""
        return self._view(conn, *await self.store.snapshot(conn.session))

    def _view(
        self, conn: Connection, records: dict[str, ChannelRecord], totals: dict[str, int]
    ) -> dict[str, Any]:
        session = self.programme.session(conn.session)
        now = self.now_ms()
        channels = [
            channel_view(conn.session, spec, records.get(spec.id, ChannelRecord()), now)
            for spec in (channels_of(session.languages) if session else ())
        ]
        return {"channels": channels, "listeners": totals}

    def admit(self, identity: Identity) -> None:
        """Counts one WHIP/WHEP offer of this person; every offer costs the node a connection.

        Raises:
            RateLimited: more offers than ``offers_per_second`` on average (bursts allowed).
        """
        bucket = self._buckets.get(identity.sub)
        if bucket is None:
            if len(self._buckets) >= 10_000:  # bounded: a flood of people resets it
                self._buckets.clear()
            bucket = self._buckets[identity.sub] = TokenBucket(
                self.limits.offers_per_second, self.limits.offers_burst
            )
        wait = bucket.take(time.monotonic())
        if wait:
            raise RateLimited("too many offers, try again shortly", retry_after=wait)

    # ---- WHIP --------------------------------------------------------------------------------------

    async def publish(
        self,
        session: Session,
        spec: ChannelSpec,
        identity: Identity,
        offer: bytes,
        *,
        takeover: bool,
        origin: str = "",
    ) -> tuple[Peer, str]:
        """Takes a WHIP offer for a channel; returns the new WHIP session and the SDP answer.

        Raises:
            ChannelForbidden: the role may not publish here (or force a takeover).
            MalformedSdp, NotAcceptable: the offer.
            ChannelBusy: another publisher holds the channel and no takeover was forced, or the
                channel taken over ended meanwhile (nothing is left open).
            OverCapacity: the node carries as many channels as it may.
        """
        check_publisher(identity, spec, takeover=takeover)
        parsed = sdp.parse_offer(offer)
        sdp.check_media(parsed, spec, publish=True)
        offer = self._screened(offer)
        key = (session.id, spec.id)
        async with self._lock(key):
            current = self.channels.get(key)
            if current is not None and current.live and await self._released(current):
                current = None  # an operator released it elsewhere: this publish starts afresh
            try:
                replacing = check_takeover(
                    current.publisher.sub if current else None, identity, takeover=takeover
                )
            except ChannelBusy as exc:
                raise ChannelBusy(f"{exc.message} (held by {self.node})") from None
            if not replacing and len(self.channels) >= self.limits.max_channels:
                raise OverCapacity(
                    "this node carries as many channels as it may",
                    retry_after=self.limits.retry_after,
                )
            # One publisher per channel across nodes (media cannot be swapped across them): the
            # channel is claimed in the store, atomically, before anything is set up or answered.
            claim = current.claim if current else uuid.uuid4().hex
            taken, holder = await self.store.claim(
                session.id, spec.id, self.node, claim, claim if current else "",
                self.now_ms(), self.now_ms() + self.limits.lease_ms,
            )  # fmt: skip
            if not taken:
                raise ChannelBusy(
                    f"the channel is held by {holder}; publish there (or DELETE it there)"
                )
            peer = new_peer(session.id, spec.id, publish=True, sub=identity.sub, name=identity.name)
            peer.ice_ufrag, peer.ice_pwd = parsed.ice_ufrag, parsed.ice_pwd
            try:
                answer = await answer_publisher(peer, offer.decode())
            except BaseException:
                await peer.close()
                if current is None:
                    with contextlib.suppress(Exception):  # else it lapses at its expiry
                        await self.store.held(session.id, spec.id, claim, 0)
                raise
            if current is not None and current.ended:
                # The channel ended while the takeover was answered (its end released the claim):
                # nothing to take over, and no 201 for a publisher that could never go live.
                await peer.close()
                raise ChannelBusy(_ENDED)
            # From here to the old publisher's close nothing awaits: an end of the channel either
            # comes before (above) or ends it with the new publisher (closed with it, below).
            old: Peer | None = None
            if current is not None:
                old, current.publisher = current.publisher, peer
                self.resources.pop(old.id, None)
                live = current
            else:
                live = LiveChannel(session.id, spec, peer, url=self.public_url or origin)
                live.claim, live.renewed = claim, time.monotonic()
                self.channels[key] = live
            for kind, track in peer.tracks.items():
                channel_track = live.tracks.get(kind)
                if channel_track is None:
                    channel_track = live.tracks[kind] = ChannelTrack(kind, self._on_frame(live))
                channel_track.attach(track)
            self.resources[peer.id] = peer
            self.metrics.publishers.set(len(self.channels))
            self._watch(live, peer)
            if old is not None:
                await old.close()
                log.info("channel taken over", extra={"session": session.id, "channel": spec.id})
                if live.ended:  # ended while the old publisher closed: the new one went with it
                    raise ChannelBusy(_ENDED)
                if live.live:
                    self.spawn(self._announce(live, "takeover"))
        return peer, answer

    def _on_frame(self, live: LiveChannel) -> Callable[[], None]:
        def seen() -> None:
            live.tracker.media_seen(time.monotonic())

        return seen

    def _watch(self, live: LiveChannel, peer: Peer) -> None:
        @peer.pc.on("connectionstatechange")
        async def changed() -> None:
            state = peer.pc.connectionState
            if live.publisher is not peer or live.ended:
                return
            if state == "connected" and not live.live:
                live.tracker.media_seen(time.monotonic())
                await self._go_live(live)
            elif state in ("failed", "closed"):
                await self.end(live, "failed")

    async def _go_live(self, live: LiveChannel) -> None:
        live.live = True
        live.renewed = time.monotonic()
        self.metrics.set_live(live.session, live.spec.id, True)
        if self.limits.record and live.tracks:
            live.recording = self._recording(live)
            await live.recording.start()
        await self._announce(live, "publishing")

    def _recording(self, live: LiveChannel) -> Recording:
        stamp = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y%m%dT%H%M%SZ")
        suffix = "mkv" if live.spec.kind is Kind.FLOOR else "ogg"
        name = f"{live.spec.id}-{stamp}-{live.publisher.id[:6]}.{suffix}"
        return Recording(self.recordings_dir / live.session / name, live.relay, live.tracks)

    async def _announce(self, live: LiveChannel, reason: str) -> None:
        # Only as the channel's holder: a node whose claim was taken meanwhile has lost it. The
        # record is made of the stored one at write time (an operator's external URL stays).
        now = self.now_ms()
        lease = now + self.limits.lease_ms

        def live_record(stored: ChannelRecord) -> tuple[ChannelRecord, dict[str, Any]] | None:
            if live.ended:
                return None
            record = stored.went_live(self.node, now, self.limits.lease_ms, live.url)
            if reason == "takeover":
                record = replace(record, reason="takeover")
            return record, channel_view(live.session, live.spec, record, now)

        s, ch = live.session, live.spec.id
        for _ in range(2):
            if await self.store.held_update(s, ch, live.claim, lease, live_record) >= 0:
                return
            if not await self._hold(live):
                return

    async def _hold(self, live: LiveChannel) -> bool:
        """Keeps (or takes again) the channel's claim; False when another node holds it now.

        A node that lost its channel (it could not renew through a store outage, and another node's
        publisher claimed it since) ends it here without writing: the record is the holder's.
        """
        now = self.now_ms()
        taken, holder = await self.store.claim(
            live.session, live.spec.id, self.node, live.claim, live.claim,
            now, now + self.limits.lease_ms,
        )  # fmt: skip
        if not taken and not live.ended:
            log.warning(
                "channel lost to another node",
                extra={"session": live.session, "channel": live.spec.id, "node": holder},
            )
            await self.end(live, "node_lost", lost=True)
        return taken

    async def end(self, live: LiveChannel, reason: str, *, lost: bool = False) -> None:
        """Takes a channel offline: its publisher, listeners and recording end; everyone is told.

        The channel's claim is released with it; a ``lost`` channel (another node holds it now)
        ends here only.
        """
        if live.ended:
            return
        live.ended = True
        key = (live.session, live.spec.id)
        if self.channels.get(key) is live:
            del self.channels[key]
        self.resources.pop(live.publisher.id, None)
        for encoded in live.encoded.values():
            encoded.stop()
        for track in live.tracks.values():
            track.stop()
        listeners = list(live.listeners.values())
        live.listeners.clear()
        for listener in listeners:
            self.resources.pop(listener.id, None)
        closing = [live.publisher.close(), *(p.close() for p in listeners)]
        if live.recording is not None:
            closing.append(live.recording.stop())
        await asyncio.gather(*closing, return_exceptions=True)
        self.metrics.set_live(live.session, live.spec.id, False)
        self.metrics.set_listeners(live.session, live.spec.id, 0)
        if listeners:
            self.listeners_changed(live.session)
        self.metrics.publishers.set(len(self.channels))
        self.metrics.offline(reason)
        log.info(
            "channel offline",
            extra={"session": live.session, "channel": live.spec.id, "reason": reason},
        )
        if lost:
            return
        if not live.live:
            await self.store.held(live.session, live.spec.id, live.claim, 0)
            return
        now = self.now_ms()

        def offline(stored: ChannelRecord) -> tuple[ChannelRecord, dict[str, Any]]:
            record = stored.went_offline(reason, now)
            return record, channel_view(live.session, live.spec, record, now)

        await self.store.held_update(live.session, live.spec.id, live.claim, 0, offline)

    async def unpublish(self, peer: Peer, identity: Identity) -> None:
        """A WHIP DELETE: the publisher (or an operator) ends the session; the channel goes offline."""
        self._check_owner(peer, identity)
        live = self.channels.get((peer.session, peer.channel))
        if live is not None and live.publisher is peer:
            await self.end(live, "deleted")
        else:
            self.resources.pop(peer.id, None)
            await peer.close()

    # ---- WHEP --------------------------------------------------------------------------------------

    async def listen(
        self, session: Session, spec: ChannelSpec, identity: Identity, offer: bytes
    ) -> tuple[Peer, str]:
        """Takes a WHEP offer; returns the new WHEP session and the SDP answer.

        Raises:
            MalformedSdp, NotAcceptable: the offer.
            ChannelOffline: the channel has no publisher on this node.
            OverCapacity: the node has as many listeners as it may.
        """
        parsed = sdp.parse_offer(offer)
        sdp.check_media(parsed, spec, publish=False)
        offer = self._screened(offer)
        if self.listener_count() + self._joining >= self.limits.max_listeners:
            raise OverCapacity(
                "this node has as many listeners as it may", retry_after=self.limits.retry_after
            )
        live = self.channels.get((session.id, spec.id))
        if live is None or not live.live:
            record = await self.store.record(session.id, spec.id)
            if record.live_at(self.now_ms()) and record.node != self.node and record.url:
                raise ChannelElsewhere(
                    f"the channel is live on {record.node}",
                    location=f"{record.url}/whep/{session.id}/{spec.id}",
                )
            raise ChannelOffline("the channel is not live")
        peer = new_peer(session.id, spec.id, publish=False, sub=identity.sub, name=identity.name)
        peer.ice_ufrag, peer.ice_pwd = parsed.ice_ufrag, parsed.ice_pwd
        self._joining += 1  # counted against the cap while negotiating, so a burst cannot pass it
        try:
            kinds = [m.kind for m in parsed.media if m.port and m.direction != "inactive"]
            answer = await answer_listener(
                peer, offer.decode(), kinds, live.packets, self._encoded(live)
            )
        except BaseException:
            await peer.close()
            raise
        finally:
            self._joining -= 1
        if live.ended:
            await peer.close()
            raise ChannelOffline("the channel went offline meanwhile")
        own = [p for p in live.listeners.values() if p.sub == identity.sub]
        for stale in own[: max(0, len(own) - self.limits.listeners_per_person + 1)]:
            # A person's reloaded players replace their oldest sessions: nobody holds many slots.
            await self._drop_listener(live, stale)
        live.listeners[peer.id] = peer
        self.resources[peer.id] = peer
        self.metrics.set_listeners(session.id, spec.id, len(live.listeners))
        self.listeners_changed(session.id)

        @peer.pc.on("connectionstatechange")
        async def changed() -> None:
            state = peer.pc.connectionState
            if state == "connected" and "video" in live.encoded:
                live.encoded["video"].request_keyframe()  # a picture for the newcomer now
            elif state in ("failed", "closed"):
                await self._drop_listener(live, peer)

        # Who heard which channel, for the participation report (reporting.report_store reads the
        # set; one per channel of the session, so bounded). Written last, after the synchronous
        # setup, and a store failure costs a report figure, never the playback already set up.
        store = self.store.store
        heard = store.keys(session.id).heard(spec.id)
        try:
            await store.guard("append", store.client.sadd(heard, identity.sub))
        except StoreUnavailable:
            log.warning("could not record a listener for the report", exc_info=True)
        return peer, answer

    def _encoded(self, live: LiveChannel) -> dict[str, EncodedTrack]:
        # Encoded once per channel, from the first listener on (no listener, no encoding).
        for kind, track in live.tracks.items():
            if kind not in live.encoded or live.encoded[kind].readyState != "live":
                source = live.relay.subscribe(track, buffered=False)
                live.encoded[kind] = EncodedTrack(kind, source)
        return live.encoded

    async def _drop_listener(self, live: LiveChannel, peer: Peer) -> None:
        self.resources.pop(peer.id, None)
        if live.listeners.pop(peer.id, None) is not None:
            self.metrics.set_listeners(live.session, live.spec.id, len(live.listeners))
            self.listeners_changed(live.session)
            if not live.listeners and not self._joining:
                for encoded in live.encoded.values():
                    encoded.stop()  # nobody to encode for; the next listener starts it again
                live.encoded.clear()
        await peer.close()

    async def unlisten(self, peer: Peer, identity: Identity) -> None:
        """A WHEP DELETE."""
        self._check_owner(peer, identity)
        live = self.channels.get((peer.session, peer.channel))
        if live is not None:
            await self._drop_listener(live, peer)
        else:
            self.resources.pop(peer.id, None)
            await peer.close()

    def listeners_changed(self, session: str) -> None:
        """Listener counts changed: one ``stream.listeners`` follows within the window (coalesced)."""
        if session in self._counting or self._stopping:
            return
        self._counting.add(session)
        self.spawn(self._count_later(session))

    async def _count_later(self, session: str) -> None:
        try:
            await asyncio.sleep(self.limits.listeners_window)
        finally:
            self._counting.discard(session)
        await self.count_listeners(session)

    async def count_listeners(self, session: str) -> None:
        """Writes this node's listener counts of a session (renewing their lease); told if changed."""
        programme_session = self.programme.session(session)
        if programme_session is None:
            return
        counts = {
            spec.id: len(live.listeners) if (live := self.channels.get((session, spec.id))) else 0
            for spec in channels_of(programme_session.languages)
        }
        self._counted[session] = time.monotonic()
        await self.store.listeners(session, self.node, counts, self.now_ms(), self.limits.lease_ms)

    # ---- both --------------------------------------------------------------------------------------

    async def trickle(self, peer: Peer, identity: Identity, if_match: str, fragment: bytes) -> None:
        """A PATCH with trickled candidates for the ICE session ``if_match`` names.

        Raises:
            PreconditionFailed: ``if_match`` is not the ICE session's entity-tag.
            MalformedSdp: the fragment.
            IceRestartUnsupported: the fragment (or ``If-Match: *``) asks for an ICE restart.
        """
        self._check_owner(peer, identity)
        restart = if_match.strip() == "*"
        if not restart and if_match.strip() != peer.etag:
            raise PreconditionFailed("If-Match does not name this ICE session (its ETag)")
        parsed = sdp.parse_fragment(fragment)
        sdp.check_no_restart(parsed, peer.ice_ufrag, peer.ice_pwd, restart_asked=restart)
        await peer.add_candidates(
            tuple(
                c
                for c in parsed.candidates
                if sdp.keep_candidate(c[2], allow_private=self.limits.allow_private)
            )
        )

    def _screened(self, offer: bytes) -> bytes:
        return sdp.drop_candidates(offer, allow_private=self.limits.allow_private)

    def _check_owner(self, peer: Peer, identity: Identity) -> None:
        if identity.sub != peer.sub and identity.role.value != "operator":
            raise ChannelForbidden(
                "only the one who opened this session, or an operator, may change it"
            )

    async def set_external(self, session: Session, spec: ChannelSpec, url: str) -> dict[str, Any]:
        """Registers (or clears) a channel's external playback URL; everyone is told.

        Only that field changes, atomically: a going-live, renewal or offline write meanwhile stays.
        """

        def change(stored: ChannelRecord) -> tuple[ChannelRecord, dict[str, Any]]:
            record = replace(stored, external_url=url)
            return record, channel_view(session.id, spec, record, self.now_ms())

        record = await self.store.update(session.id, spec.id, change)
        return channel_view(session.id, spec, record, self.now_ms())

    # ---- health and lifetime -----------------------------------------------------------------------

    async def reap_lost(self) -> list[tuple[str, str]]:
        """Takes offline every channel whose carrying node stopped renewing it (it died).

        Any node may do it; the write applies only if the record is still the one read, so of
        several nodes reaping at once one tells the clients, and a new publisher is never undone.

        Returns:
            The (session, channel) pairs this call took offline.
        """
        now = self.now_ms()
        sessions = {s.id: s for s in self.programme.sessions}
        reaped = []
        for session_id, raw in (await self.store.all_records(list(sessions))).items():
            for channel, value in raw.items():
                record = ChannelRecord.from_json(json.loads(value))
                if record.state is not State.LIVE or record.live_at(now):
                    continue
                if (session_id, channel) in self.channels:
                    continue  # carried here: the health round renews it
                try:
                    spec = self.spec(sessions[session_id], channel)
                except StreamingError:
                    continue
                lost = record.went_offline("node_lost", now)
                view = channel_view(session_id, spec, lost, now)
                if await self.store.replace(session_id, channel, value, lost, view, now):
                    self.metrics.offline("node_lost")
                    reaped.append((session_id, channel))
        return reaped

    async def check(self) -> None:
        """One health round: samples, stalled channels offline, unconnected peers dropped, leases."""
        now = time.monotonic()
        if now - self._reaped > self.limits.lease_ms / 3000:
            self._reaped = now
            await self.reap_lost()
        listened = {live.session for live in self.channels.values() if live.listeners}
        for session in listened:
            if now - self._counted.get(session, 0.0) > self.limits.lease_ms / 3000:
                await self.count_listeners(session)
        for live in list(self.channels.values()):
            publisher = live.publisher
            if not live.live:
                if now - publisher.created > self.limits.connect_timeout:
                    await self.end(live, "failed")
                elif now - live.renewed > self.limits.lease_ms / 3000:
                    live.renewed = now
                    await self._hold(live)  # answered, not connected yet: the claim is kept
                continue
            try:
                sample = await publisher.sample(list(live.listeners.values()))
            except Exception:  # a connection closing under the sampler: the next round sees it
                log.debug("stats failed", exc_info=True)
                continue
            live.health = live.tracker.update(sample)
            self.metrics.health(live.session, live.spec.id, live.health)
            if live.tracker.stalled(time.monotonic(), self.limits.media_timeout):
                await self.end(live, "no_media")
                continue
            if now - live.renewed > self.limits.lease_ms / 3000:
                live.renewed = now
                record = await self.store.record(live.session, live.spec.id)
                if live.ended:
                    pass
                elif _released(record):
                    await self.end(live, RELEASED, lost=True)  # an operator let it go elsewhere
                elif record.node != self.node or record.state is not State.LIVE:
                    # Reaped while this node could not renew (a store outage): live again.
                    await self._announce(live, "publishing")
                elif await self._renew(live) < 0 and not await self._released(live):
                    await self._announce(live, "publishing")  # reaped meanwhile (or lost)
            for listener in list(live.listeners.values()):
                if not listener.connected and now - listener.created > self.limits.connect_timeout:
                    await self._drop_listener(live, listener)

    async def release(self, session: Session, spec: ChannelSpec) -> tuple[dict[str, Any], bool]:
        """An operator's forced takeover: the channel's publisher is let go, whichever node has it.

        Carried here, the channel ends now. Elsewhere its claim is dropped and its record written
        offline (reason ``released``) in one script; the carrying node finds that at its next health
        round and closes its publisher without writing. Either way any publisher may publish at once.

        Returns:
            The channel's view now, and whether there was anything to release.
        """
        live = self.channels.get((session.id, spec.id))
        if live is not None and not live.ended:
            await self.end(live, RELEASED)
            record = await self.store.record(session.id, spec.id)
            return channel_view(session.id, spec, record, self.now_ms()), True
        now = self.now_ms()

        def offline(stored: ChannelRecord) -> tuple[ChannelRecord, dict[str, Any]] | None:
            if stored.state is not State.LIVE:
                return None
            record = stored.went_offline(RELEASED, now)
            return record, channel_view(session.id, spec, record, now)

        # Counted offline by the carrying node when it ends the channel (the metric is per node).
        record, seq = await self.store.release(session.id, spec.id, offline)
        return channel_view(session.id, spec, record, now), seq >= 0

    async def _released(self, live: LiveChannel) -> bool:
        """Ends a channel carried here that an operator released through another node."""
        if _released(await self.store.record(live.session, live.spec.id)):
            await self.end(live, RELEASED, lost=True)
            return True
        return False

    async def _renew(self, live: LiveChannel) -> int:
        # The lease and this node's figures, on the record as stored at write time (the external
        # URL an operator set meanwhile stays); -1 when the claim is not held.
        health = live.health.view() if live.health else None
        now, count = self.now_ms(), len(live.listeners)

        def renew(stored: ChannelRecord) -> tuple[ChannelRecord, None]:
            return stored.renewed(now, self.limits.lease_ms, health, count), None

        lease = now + self.limits.lease_ms
        return await self.store.held_update(live.session, live.spec.id, live.claim, lease, renew)

    async def start(self) -> None:
        """Starts the health loop."""
        self._loop = asyncio.create_task(self._run(), name="podium-stream-health")

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.check()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("stream health round failed")
            await asyncio.sleep(self.limits.health_interval)

    async def stop(self, timeout: float = 5.0) -> None:
        """Ends every channel and connection on this node, within ``timeout`` seconds."""
        self._stopping = True
        if self._loop is not None:
            await cancel_all([self._loop], timeout=1.0)
        await cancel_all(list(self._tasks), timeout=1.0)
        sessions = {live.session for live in self.channels.values() if live.listeners}
        ending = [self.end(live, "shutdown") for live in list(self.channels.values())]
        orphans = [p.close() for p in self.resources.values()]
        if ending or orphans:
            tasks = [asyncio.ensure_future(c) for c in (*ending, *orphans)]
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for task in pending:
                task.cancel()
            for task in tasks:
                if task.done() and not task.cancelled():
                    task.exception()
        self.resources.clear()
        for session in sessions:  # this node's listeners are gone: say so now, not at lease end
            try:
                await asyncio.wait_for(self.count_listeners(session), timeout=1.0)
            except Exception:
                log.warning("could not clear this node's listener counts", exc_info=True)

    def spawn(self, coro: Awaitable[None]) -> None:
        """Runs background work the service keeps track of (cancelled on stop)."""

        async def run() -> None:
            try:
                await coro
            except Exception:
                log.warning("streaming background work failed", exc_info=True)

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _lock(self, key: tuple[str, str]) -> asyncio.Lock:
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        return lock


def _released(record: ChannelRecord) -> bool:
    """The record says an operator released the channel (and no publisher went live since)."""
    return record.state is State.OFFLINE and record.reason == RELEASED
