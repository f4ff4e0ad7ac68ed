"""Stream health from a peer connection's statistics (pure: figures in, figures out).

The edge samples the publisher's receiver statistics (bytes, packets received and lost, jitter in
RTP clock units) and the listeners' receiver reports (round-trip time) about once a second; this
module turns two samples into rates, and tells when media stopped arriving.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Sample:
    """Cumulative figures of one publisher connection at one instant (seconds)."""

    at: float
    bytes_received: int
    packets_received: int
    packets_lost: int
    jitter_seconds: float
    round_trip_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class Health:
    """A channel's health between two samples."""

    bitrate: float
    packets_lost: int
    lost_since_last: int
    jitter_seconds: float
    round_trip_seconds: float | None
    media_age: float

    def view(self) -> dict[str, float | int | None]:
        """The operator view's figures."""
        return {
            "inbound_bitrate_bps": round(self.bitrate),
            "packets_lost": self.packets_lost,
            "jitter_ms": round(self.jitter_seconds * 1000, 1),
            "round_trip_ms": None
            if self.round_trip_seconds is None
            else round(self.round_trip_seconds * 1000, 1),
            "media_age_s": round(self.media_age, 1),
        }


class HealthTracker:
    """Follows one publisher's samples; knows the rate and when packets last arrived."""

    def __init__(self, started: float) -> None:
        self._last: Sample | None = None
        self._media_at = started

    def update(self, sample: Sample) -> Health:
        """Takes a new sample and returns the health since the previous one."""
        last = self._last
        if last is None or sample.packets_received > last.packets_received:
            self._media_at = sample.at
        bitrate = 0.0
        lost_delta = sample.packets_lost
        if last is not None:
            span = sample.at - last.at
            if span > 0:
                bitrate = max(0, sample.bytes_received - last.bytes_received) * 8 / span
            lost_delta = max(0, sample.packets_lost - last.packets_lost)
        self._last = sample
        return Health(
            bitrate=bitrate,
            packets_lost=sample.packets_lost,
            lost_since_last=lost_delta,
            jitter_seconds=sample.jitter_seconds,
            round_trip_seconds=sample.round_trip_seconds,
            media_age=max(0.0, sample.at - self._media_at),
        )

    def media_seen(self, at: float) -> None:
        """A frame arrived (the media pump says so between samples)."""
        self._media_at = max(self._media_at, at)

    def stalled(self, now: float, timeout: float) -> bool:
        """True when no media arrived for ``timeout`` seconds."""
        return now - self._media_at > timeout
