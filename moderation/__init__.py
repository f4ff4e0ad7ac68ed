"""Moderation owns the question queue and the speakers' list (see the Q&A and floor issues)."""
