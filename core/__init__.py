"""Shared core of the reminder service: settings, database pool, named queries, events, cron."""
