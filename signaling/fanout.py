"""Fan-out: one store subscription per session per node; each event framed once, written to every socket.

A ``Feed`` holds a session's local sinks by audience. Events arrive from (sharded) pub/sub in seq order;
a gap (a lost message, a pub/sub reconnect, a channel moved to another shard) is filled from the history
stream before delivery goes on, so sockets see every event once and in order. Each subscription
connection (one per store shard) has its own reader task. Writing never awaits: a sink whose send
buffer is over its bound is cut off by the sink itself and dropped here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

import redis.asyncio as aioredis
import redis.exceptions

from signaling.framing import text_frame
from signaling.store import AUDIENCE_ALL, TRANSIENT_SEQ, SessionStore
from signaling.subscriber import Subscriber

log = logging.getLogger("podium.fanout")

__all__ = ["TRANSIENT_SEQ", "FanoutMetrics", "Feed", "Hub", "Sink"]


class Sink(Protocol):
    """A local receiver of a session's frames (a client connection)."""

    @property
    def audiences(self) -> tuple[str, ...]:
        """The audiences this sink belongs to; always includes ``a`` (everyone)."""
        ...

    def write(self, frame: bytes) -> bool:
        """Writes a ready WebSocket frame without waiting; False when the sink was cut off."""
        ...


class FanoutMetrics(Protocol):
    """What the fan-out reports."""

    def delivered(self, count: int) -> None:
        """``count`` frames were written to sockets."""

    def latency(self, seconds: float) -> None:
        """From the event's commit in the store to the end of its local fan-out."""

    def slow_disconnect(self) -> None:
        """A sink was cut off for not reading."""


@dataclass(eq=False)
class Feed:
    """One session's local sinks and delivery position."""

    session: str
    channel: bytes
    last_seq: int = -1
    sinks: dict[str, set[Sink]] = field(default_factory=dict)
    waiting: dict[Sink, int] = field(default_factory=dict)
    backlog: list[tuple[int, str, int, bytes]] = field(default_factory=list)
    filling: bool = False
    ready: asyncio.Future[None] | None = None

    @property
    def size(self) -> int:
        """Local sinks attached (delivering or waiting)."""
        return len(self.sinks.get(AUDIENCE_ALL, ())) + len(self.waiting)


class Hub:
    """This node's fan-out: subscriptions, feeds and the reader task."""

    def __init__(
        self,
        client: aioredis.Redis,
        store: SessionStore,
        metrics: FanoutMetrics,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._store = store
        self._metrics = metrics
        self._clock = clock
        self._subscriber = Subscriber(client)
        self._feeds: dict[str, Feed] = {}
        self._by_channel: dict[bytes, Feed] = {}
        self._confirm: dict[bytes, asyncio.Future[None]] = {}
        self._readers: dict[str, asyncio.Task[None]] = {}
        self._stopping = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def feeds(self) -> dict[str, Feed]:
        """The sessions this node is subscribed to."""
        return self._feeds

    async def start(self) -> None:
        """Readies the hub; a shard's reader task starts with the first subscription on it."""
        self._stopping = False

    async def stop(self) -> None:
        """Stops reading and closes the subscription connections."""
        self._stopping = True
        tasks = [*self._readers.values(), *self._tasks]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)
        await self._subscriber.aclose()

    async def attach(self, session: str) -> Feed:
        """Returns the session's feed, subscribing first if this node has none yet."""
        feed = self._feeds.get(session)
        if feed is None:
            channel = self._store.keys(session).channel.encode()
            feed = Feed(session, channel)
            loop = asyncio.get_running_loop()
            feed.ready = loop.create_future()
            self._feeds[session] = feed
            self._by_channel[channel] = feed
            try:
                await self._store.guard("subscribe", self._subscribe(feed))
            except BaseException as exc:
                del self._feeds[session], self._by_channel[channel]
                feed.ready.set_exception(exc)
                feed.ready.exception()  # retrieved: the caller raises it
                raise
            feed.ready.set_result(None)
        elif feed.ready is not None and not feed.ready.done():
            await asyncio.shield(feed.ready)
        return feed

    def add(self, feed: Feed, sink: Sink, floor: int) -> None:
        """Adds a sink that has every event up to ``floor``; it receives those after it."""
        if floor > feed.last_seq or feed.filling:
            feed.waiting[sink] = floor
            return
        for audience in sink.audiences:
            feed.sinks.setdefault(audience, set()).add(sink)

    def remove(self, feed: Feed, sink: Sink) -> None:
        """Removes a sink (it is gone or cut off)."""
        feed.waiting.pop(sink, None)
        for audience in sink.audiences:
            members = feed.sinks.get(audience)
            if members is not None:
                members.discard(sink)

    def broadcast_local(self, feed: Feed, frame: bytes) -> int:
        """Writes one frame to every local sink of a feed (transient messages, drain notices)."""
        return self._write(feed, feed.sinks.get(AUDIENCE_ALL), text_frame(frame))

    async def _subscribe(self, feed: Feed) -> None:
        confirm: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._confirm[feed.channel] = confirm
        await self._subscriber.subscribe(feed.channel)
        self._start_readers()
        try:
            await asyncio.wait_for(confirm, timeout=10)
        except TimeoutError as exc:
            raise redis.exceptions.TimeoutError("no subscription confirmation") from exc
        # Subscribed first, position read second: any event after this position reaches the feed.
        _, seq = await self._store.position(feed.session)
        feed.last_seq = max(feed.last_seq, seq)
        self._drain_backlog(feed)

    def _start_readers(self) -> None:
        for shard in self._subscriber.shards():
            if shard not in self._readers and not self._stopping:
                task = asyncio.create_task(self._read(shard), name="podium-fanout-reader")
                self._readers[shard] = task
                task.add_done_callback(partial(self._reader_done, shard))

    def _reader_done(self, shard: str, task: asyncio.Task[None]) -> None:
        if self._readers.get(shard) is task:
            del self._readers[shard]

    async def _read(self, shard: str) -> None:
        """Reads one shard's connection until the hub stops or the shard holds no subscription."""
        delay = 0.05
        broken = False
        while not self._stopping:
            try:
                message = await self._subscriber.get_message(shard, timeout=1.0)
                if broken:
                    broken = False
                    self._resync_all()
                delay = 0.05
                if message is not None:
                    self._on_message(message)
                    if message.get("type") == "smessage":
                        continue  # an event: no subscription bookkeeping on the fan-out path
            except asyncio.CancelledError:
                raise
            except Exception:
                if not broken:
                    log.warning(
                        "fan-out subscription lost; will catch up from history", exc_info=True
                    )
                broken = True
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
            # After a confirmation, a quiet second or a break: a channel moved by a resharding may
            # have opened a shard, or left this one with no subscription.
            if shard not in self._subscriber.shards():
                return
            self._start_readers()

    def _on_message(self, message: dict[str, object]) -> None:
        kind = message.get("type")
        channel = message.get("channel")
        if not isinstance(channel, bytes):
            return
        feed = self._by_channel.get(channel)
        if kind == "ssubscribe":
            confirm = self._confirm.pop(channel, None)
            if confirm is not None and not confirm.done():
                confirm.set_result(None)
            elif feed is not None and feed.last_seq >= 0:
                # Subscribed again (a reconnect, or the channel moved to another shard): whatever
                # was published in between is in the history.
                self._fill(feed, None)
            return
        if kind == "sunsubscribe" and feed is not None:
            log.warning("session channel of %s moved; waiting to follow it", feed.session)
            return
        if kind != "smessage":
            return
        data = message.get("data")
        if feed is None or not isinstance(data, bytes):
            return
        header, _, frame = data.partition(b"\n")
        seq_s, audience, ms = header.decode().split(" ")
        seq = int(seq_s)
        if seq == TRANSIENT_SEQ:
            self._write(feed, _targets(feed, audience), text_frame(frame))
            return
        item = (seq, audience, int(ms), frame)
        if feed.last_seq < 0 or feed.filling:
            feed.backlog.append(item)
            return
        if seq > feed.last_seq + 1:
            feed.backlog.append(item)
            self._fill(feed, seq - 1)
            return
        self._deliver(feed, *item)

    def _deliver(self, feed: Feed, seq: int, audience: str, ms: int, frame: bytes) -> None:
        if seq <= feed.last_seq:
            return
        self._write(feed, _targets(feed, audience), text_frame(frame))
        feed.last_seq = seq
        if feed.waiting:
            self._promote(feed)
        self._metrics.latency(max(0.0, self._clock() - ms / 1000.0))

    def _write(self, feed: Feed, targets: set[Sink] | None, data: bytes) -> int:
        if not targets:
            return 0
        dead: list[Sink] = []
        for sink in targets:
            if not sink.write(data):
                dead.append(sink)
        for sink in dead:
            self.remove(feed, sink)
            self._metrics.slow_disconnect()
        count = len(targets) + len(dead)
        self._metrics.delivered(count - len(dead))
        return count

    def _promote(self, feed: Feed) -> None:
        ready = [sink for sink, floor in feed.waiting.items() if floor <= feed.last_seq]
        for sink in ready:
            del feed.waiting[sink]
            for audience in sink.audiences:
                feed.sinks.setdefault(audience, set()).add(sink)

    def _drain_backlog(self, feed: Feed) -> None:
        backlog, feed.backlog = sorted(feed.backlog), []
        for index, item in enumerate(backlog):
            if item[0] > feed.last_seq + 1:
                feed.backlog = backlog[index:]
                self._fill(feed, item[0] - 1)
                return
            self._deliver(feed, *item)
        if feed.waiting:
            self._promote(feed)

    def _fill(self, feed: Feed, upto: int | None) -> None:
        if feed.filling:
            return
        feed.filling = True
        task = asyncio.create_task(self._fill_from_history(feed, upto))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _fill_from_history(self, feed: Feed, upto: int | None) -> None:
        delay = 0.05
        while True:
            try:
                if upto is None:
                    _, upto = await self._store.position(feed.session)
                entries = await self._store.range(feed.session, feed.last_seq, upto)
                break
            except Exception:
                log.warning("fan-out gap fill failed for %s; retrying", feed.session, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        for entry in entries:
            self._deliver(feed, entry.seq, entry.audience, int(self._clock() * 1000), entry.frame)
        # Whatever the history no longer holds is gone for good: move past it.
        feed.last_seq = max(feed.last_seq, upto)
        feed.filling = False
        self._drain_backlog(feed)

    def _resync_all(self) -> None:
        for feed in self._feeds.values():
            if feed.last_seq >= 0:
                self._fill(feed, None)


def _targets(feed: Feed, audience: str) -> set[Sink] | None:
    """The sinks an audience names: one set (``a``, ``s``, ``u:<sub>``) or a union (``s|u:<sub>``)."""
    if "|" not in audience:
        return feed.sinks.get(audience)
    union: set[Sink] = set()
    for part in audience.split("|"):
        union |= feed.sinks.get(part, set())
    return union
