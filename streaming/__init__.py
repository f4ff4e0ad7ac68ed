"""Streaming owns session rooms' live media: the floor and interpretation channels, WHIP ingest and
WHEP playback (aiortc), recordings and stream health.

Pure cores: ``channels`` (who publishes where, records, views), ``sdp`` (offers and trickle-ICE
fragments), ``health`` (rates and stalls from statistics), ``errors``. Edges: ``store`` (records and
events on Redis), ``peers`` (peer connections, channel and encoded tracks, recordings), ``live`` and
``service`` (the channels this node carries), ``routes`` (HTTP), ``metrics``.
"""
