"""Notifiers deliver queued alerts: the console (no Slack configured) and Slack."""
