"""Streaming owns session rooms' live media: livestream state, WHIP/WHEP, interpretation channels,
recording and stream health (see the streaming issue)."""
