"""Server-to-client WebSocket frames, built once and written as the same bytes to every socket."""

from __future__ import annotations

import struct

_TEXT_FIN = 0x81


def text_frame(payload: bytes) -> bytes:
    """Returns an unmasked, uncompressed, final text frame carrying ``payload`` (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 1 << 16:
        return struct.pack("!BBH", _TEXT_FIN, 126, n) + payload
    return struct.pack("!BBQ", _TEXT_FIN, 127, n) + payload


def pong_frame(payload: bytes) -> bytes:
    """Returns the pong answering a ping with ``payload`` (at most 125 bytes, RFC 6455 §5.5)."""
    return bytes((0x8A, len(payload))) + payload
