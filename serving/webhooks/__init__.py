"""Alerts pushed to other systems: signed webhooks after each published batch (issue #18)."""
