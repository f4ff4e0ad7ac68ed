"""Participation figures: what the store recorded about a session, as reports and the operator overview."""
