"""Store keys of a session's question queue, under the session's hash tag."""

from __future__ import annotations

from dataclasses import dataclass

from signaling.keys import SessionKeys


@dataclass(frozen=True, slots=True)
class QaKeys:
    """The Q&A keys of one session (same slot as its signaling keys)."""

    session: SessionKeys

    @property
    def settings(self) -> str:
        """Hash: ``locked``, ``pinned``."""
        return self.session.tag + ":qa"

    @property
    def ids(self) -> str:
        """Sorted set: question id → creation time."""
        return self.session.tag + ":qa:ids"

    @property
    def audit(self) -> str:
        """Stream: every action on the queue, in order, with its actor."""
        return self.session.tag + ":qa:audit"

    @property
    def counts(self) -> str:
        """Hash: state → questions in it."""
        return self.session.tag + ":qa:counts"

    @property
    def dirty(self) -> str:
        """Set: questions whose votes changed since the last coalesced broadcast."""
        return self.session.tag + ":qa:dirty"

    @property
    def votes_due(self) -> str:
        """Short-lived flag: a vote broadcast is scheduled (the coalescing window)."""
        return self.session.tag + ":qa:votedue"

    def rate(self, sub: str) -> str:
        """Counter: questions a person asked in the current window."""
        return self.session.tag + ":qa:rl:" + sub

    def ask_key(self, sub: str, key: str) -> str:
        """String (TTL): the question a person's ask key stands for (a retried ask stores none)."""
        return self.session.tag + ":qa:key:" + sub + ":" + key

    def question(self, qid: str) -> str:
        """Hash: one question (``ver`` counts its changes)."""
        return self.session.tag + ":q:" + qid

    def voters(self, qid: str) -> str:
        """Set: who voted for a question."""
        return self.session.tag + ":q:" + qid + ":votes"
