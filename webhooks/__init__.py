"""Signed webhooks: session events delivered to configured URLs, in sequence order per session."""
