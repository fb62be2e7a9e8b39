"""Reminders: natural times, storage, the Redis due queue and their delivery."""
