"""The poller: claims due reminders from Postgres and pushes their events to Redis."""
