"""Store key names. Every key of one session shares the hash tag ``{<prefix>:<session>}``."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SessionKeys:
    """The keys and the pub/sub channel of one session; all hash to one Redis Cluster slot."""

    prefix: str
    session: str

    @property
    def tag(self) -> str:
        """The hash tag shared by the session's keys."""
        return "{" + self.prefix + ":" + self.session + "}"

    @property
    def meta(self) -> str:
        """Hash: epoch, seq, lifecycle state."""
        return self.tag + ":meta"

    @property
    def history(self) -> str:
        """Stream of event frames, id ``<seq>-0``."""
        return self.tag + ":hist"

    @property
    def channel(self) -> str:
        """Pub/sub channel carrying ``<seq> <audience> <ms>\\n<frame>`` messages."""
        return self.tag + ":chan"

    @property
    def tabs(self) -> str:
        """Hash: person → open connections across all nodes."""
        return self.tag + ":pres:tabs"

    @property
    def kinds(self) -> str:
        """Hash: person → ``mode|role`` of their first connection."""
        return self.tag + ":pres:kinds"

    @property
    def counts(self) -> str:
        """Hash: ``mode|role`` → people online."""
        return self.tag + ":pres:counts"

    @property
    def unique(self) -> str:
        """Set: every person who ever joined."""
        return self.tag + ":pres:uniq"

    @property
    def nodes(self) -> str:
        """Sorted set: node id → presence lease expiry (ms)."""
        return self.tag + ":pres:nodes"

    @property
    def presence_due(self) -> str:
        """Short-lived flag: a presence broadcast is already scheduled (the coalescing window)."""
        return self.tag + ":pres:due"

    @property
    def people(self) -> str:
        """Hash: person → ``{"mode","role","group","country"}`` (JSON) as they first joined."""
        return self.tag + ":pres:people"

    @property
    def peak(self) -> str:
        """Hash: ``online`` (the most people online at once) and ``at`` (ms, when first reached)."""
        return self.tag + ":pres:peak"

    @property
    def series(self) -> str:
        """List: ``"<ms> <online> <venue> <remote>"`` samples of people online, one per period."""
        return self.tag + ":pres:series"

    def heard(self, channel: str) -> str:
        """Set: everyone who listened to a stream channel (the report's languages listened)."""
        return self.tag + ":stream:heard:" + channel

    def node_tabs(self, node: str) -> str:
        """Hash: person → connections on one node (so a dead node's can be subtracted)."""
        return self.tag + ":pres:node:" + node


def join_code_key(prefix: str, code: str) -> str:
    """A join code's claims (JSON), with a TTL."""
    return prefix + ":joincode:" + code
