"""Signaling owns the client connection: the wire protocol, authentication at the socket, the event
stream with resume, presence, the session lifecycle and (later) the WebRTC signaling relay."""
