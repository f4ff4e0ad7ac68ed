"""Channels of a session and the rules around them (pure: no I/O, no clock reads).

Every session has the floor channel (the room's video and audio) and one audio channel per language
of its programme entry. A channel is ``offline`` or ``live``; it may carry an external playback URL
(HLS, web TV) registered by an operator. Who may publish where: production the floor, an
interpreter the channel of the language its token names (``lang`` claim), operators any channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from signaling.identity import Identity, Role
from streaming.errors import ChannelBusy, ChannelForbidden, InvalidBody, UnknownChannel

FLOOR = "floor"
EXTERNAL_URL = re.compile(r"https?://[^\s/@?#]+(/[^\s#]*)?(\?[^\s#]*)?")
MAX_URL = 2048


class Kind(StrEnum):
    """What a channel carries: the floor (video and audio) or one language (audio)."""

    FLOOR = "floor"
    LANGUAGE = "language"


class State(StrEnum):
    """A channel's state as everyone sees it."""

    OFFLINE = "offline"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class ChannelSpec:
    """One channel of a session: its id (``floor`` or a language code) and the media it takes."""

    id: str
    kind: Kind

    @property
    def max_video(self) -> int:
        """Video tracks a publisher may send: one on the floor, none on a language channel."""
        return 1 if self.kind is Kind.FLOOR else 0

    @property
    def language(self) -> str | None:
        """The language of an interpretation channel; None for the floor."""
        return None if self.kind is Kind.FLOOR else self.id


def channels_of(languages: tuple[str, ...]) -> tuple[ChannelSpec, ...]:
    """The floor channel and one channel per language, in programme order."""
    return (
        ChannelSpec(FLOOR, Kind.FLOOR),
        *(ChannelSpec(lang, Kind.LANGUAGE) for lang in languages),
    )


def channel_of(languages: tuple[str, ...], channel: str) -> ChannelSpec:
    """The session's channel with that id.

    Raises:
        UnknownChannel: neither ``floor`` nor one of the session's languages.
    """
    for spec in channels_of(languages):
        if spec.id == channel:
            return spec
    raise UnknownChannel(f"the session has no channel {channel!r} (floor or one of its languages)")


def check_publisher(identity: Identity, spec: ChannelSpec, *, takeover: bool) -> None:
    """Raises unless this person may publish to the channel (and force a takeover, if asked).

    Raises:
        ChannelForbidden: the role (or the interpreter's language) does not allow it.
    """
    if takeover and identity.role is not Role.OPERATOR:
        raise ChannelForbidden("only an operator may force a takeover of a channel")
    if identity.role is Role.OPERATOR:
        return
    if identity.role is Role.PRODUCTION and spec.kind is Kind.FLOOR:
        return
    if identity.role is Role.INTERPRETER and spec.kind is Kind.LANGUAGE:
        lang = identity.lang
        if lang == spec.id:
            return
        raise ChannelForbidden(
            f"this interpreter token is for the {lang!r} channel, not {spec.id!r}"
            if lang
            else "this interpreter token names no language (lang claim)"
        )
    raise ChannelForbidden(f"a {identity.role.value} may not publish to the {spec.id} channel")


def check_takeover(current_sub: str | None, identity: Identity, *, takeover: bool) -> bool:
    """Whether a new publisher replaces the current one; False when there is none.

    The same person replaces their own earlier connection (a reloaded booth page must not wait for
    the dead one to time out); anyone else needs an operator's forced takeover.

    Raises:
        ChannelBusy: another person publishes and no takeover was forced.
    """
    if current_sub is None:
        return False
    if takeover or current_sub == identity.sub:
        return True
    raise ChannelBusy("another publisher holds this channel; an operator may force a takeover")


def may_manage(identity: Identity) -> bool:
    """Operators and production manage channels (external URLs); operators see recordings."""
    return identity.role in (Role.OPERATOR, Role.PRODUCTION)


def external_url(body: dict[str, Any]) -> str:
    """The external playback URL of a ``{"url": …}`` body ("" clears it).

    Raises:
        InvalidBody: not exactly ``{"url": string | null}``, or not an http(s) URL without credentials.
    """
    url = body.get("url", ...)
    if set(body) != {"url"} or not (url is None or isinstance(url, str)):
        raise InvalidBody('the body must be {"url": "https://…"} or {"url": null}')
    if not url:
        return ""
    if len(url) > MAX_URL or not EXTERNAL_URL.fullmatch(url):
        raise InvalidBody("url must be an http(s) URL without spaces or credentials")
    return url


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    """A channel's shared state (in the store): what every node and client sees."""

    state: State = State.OFFLINE
    since: int = 0
    reason: str = ""
    external_url: str = ""
    node: str = ""
    lease: int = 0
    url: str = ""
    health: dict[str, Any] | None = None
    listeners: int = 0

    def live_at(self, now_ms: int) -> bool:
        """Live, and the node carrying it renewed its lease (a dead node's channels read offline)."""
        return self.state is State.LIVE and now_ms <= self.lease

    def went_live(self, node: str, now_ms: int, lease_ms: int, url: str = "") -> ChannelRecord:
        """The record once a publisher's media flows through ``node`` (reached at ``url``)."""
        return replace(self, state=State.LIVE, since=now_ms, reason="publishing", node=node,
                       lease=now_ms + lease_ms, url=url)  # fmt: skip

    def renewed(
        self, now_ms: int, lease_ms: int, health: dict[str, Any] | None, listeners: int
    ) -> ChannelRecord:
        """The live record with a later lease and the carrying node's latest figures.

        Everything else is kept as stored (an operator may have changed the external URL).
        """
        return replace(self, lease=now_ms + lease_ms, health=health, listeners=listeners)

    def went_offline(self, reason: str, now_ms: int) -> ChannelRecord:
        """The record once the publisher left (``reason``: deleted, no_media, failed, …)."""
        return replace(self, state=State.OFFLINE, since=now_ms, reason=reason, node="", lease=0,
                       url="", health=None, listeners=0)  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "state": self.state.value,
            "since": self.since,
            "reason": self.reason,
            "external_url": self.external_url,
            "node": self.node,
            "lease": self.lease,
            "url": self.url,
            "health": self.health,
            "listeners": self.listeners,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ChannelRecord:
        """The record from its stored form (unknown or missing fields fall back to defaults)."""
        return cls(
            state=State(data.get("state", "offline")),
            since=int(data.get("since", 0)),
            reason=str(data.get("reason", "")),
            external_url=str(data.get("external_url", "")),
            node=str(data.get("node", "")),
            lease=int(data.get("lease", 0)),
            url=str(data.get("url", "")),
            health=data.get("health") if isinstance(data.get("health"), dict) else None,
            listeners=int(data.get("listeners", 0)),
        )


def channel_view(
    session: str, spec: ChannelSpec, record: ChannelRecord, now_ms: int
) -> dict[str, Any]:
    """A channel as every participant of the session sees it (the player's input)."""
    live = record.live_at(now_ms)
    return {
        "id": spec.id,
        "kind": spec.kind.value,
        "language": spec.language,
        "state": State.LIVE.value if live else State.OFFLINE.value,
        "since": record.since,
        "reason": record.reason if live or record.state is State.OFFLINE else "node_lost",
        "video": spec.max_video > 0,
        "external_url": record.external_url or None,
        "whep": f"/whep/{session}/{spec.id}",
    }
