"""Persistence: mentions, engagement, classifications, escalations, the alert outbox."""
