"""Signaling owns the client connection: the wire protocol, authentication at the socket, the event
stream with resume, presence, the session lifecycle and the WebRTC signaling relay (``rtc.*`` between
the floor holder and the production desks; the media itself never passes through podium)."""
